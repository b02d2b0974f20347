//! `segura-shell`: the login shell of enrolled users. It records the real shell when PAM armed
//! this login (see `libsegura::login`), and otherwise execs the real shell at once.
//!
//! Installed setuid and setgid to the `segura` system user, so it can write the spool that users
//! cannot read or change; the recorded shell (and an unrecorded one) runs with the user's own
//! uid and gid. Nothing from the user's environment is trusted but the `SEGURA_SESSION` hint,
//! which only chooses among this user's root-written markers.
#![no_main]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use libsegura::config::Config;
use libsegura::enroll;
use libsegura::identity::{self, UserInfo};
use libsegura::login::{self, Marker, ENV_SESSION, MARKER_DIR};
use libsegura::record::{self, sys, RecordOptions};
use libsegura::spool::{AuditEvent, RecordingKind, RecordingMeta, Spool, SpoolOptions};

fn log(priority: i32, msg: &str) {
    sys::syslog(priority, &format!("segura-shell: {msg}"));
}

/// argv[0] for the real shell: `-bash` for a login shell, else its path.
fn shell_argv0(shell: &Path, login: bool) -> OsString {
    if login {
        let mut a = OsString::from("-");
        a.push(shell.file_name().unwrap_or(shell.as_os_str()));
        a
    } else {
        shell.as_os_str().to_owned()
    }
}

/// Replaces this process with the real shell, as the real user.
fn exec_real(shell: &Path, login: bool, args: &[OsString], uid: u32, gid: u32) -> ! {
    let _ = nix::unistd::setresgid(gid.into(), gid.into(), gid.into());
    let _ = nix::unistd::setresuid(uid.into(), uid.into(), uid.into());
    let err = Command::new(shell)
        .arg0(shell_argv0(shell, login))
        .args(args)
        .exec();
    eprintln!("segura-shell: cannot run {}: {err}", shell.display());
    log(
        libc::LOG_ERR,
        &format!("cannot run {}: {err}", shell.display()),
    );
    std::process::exit(127)
}

/// The command a file-transfer subsystem runs (`sftp-server`, `scp -t/-f`, `rsync --server`).
fn is_file_transfer(command: &OsStr) -> bool {
    let text = String::from_utf8_lossy(command.as_bytes());
    let mut words = text.split_whitespace();
    let prog = words
        .next()
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .unwrap_or("");
    let rest: Vec<&str> = words.collect();
    match prog {
        "sftp-server" => true,
        "scp" => rest.iter().any(|w| *w == "-t" || *w == "-f"),
        "rsync" => rest.contains(&"--server"),
        _ => false,
    }
}

libsegura::quick_main!(run);

fn run() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let login_shell = args.first().is_some_and(|a| a.as_bytes().starts_with(b"-"));
    let rest = args.get(1..).unwrap_or_default().to_vec();
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let hint = std::env::var(ENV_SESSION).ok();
    let marker = login::find_marker(Path::new(MARKER_DIR), uid, hint.as_deref());
    let fallback = || {
        ["/bin/bash", "/bin/sh"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("/bin/sh"))
    };
    let Some(marker) = marker else {
        // Not recorded: be quick. The login name from the environment only picks which of
        // the remembered shells to run as this very user (no privilege rides on it); the
        // name service is asked only when the environment does not say.
        let name = std::env::var("LOGNAME")
            .or_else(|_| std::env::var("USER"))
            .ok()
            .filter(|n| !n.is_empty())
            .or_else(|| identity::user_by_uid(uid).ok().map(|u| u.name));
        let shell = name
            .and_then(|n| enroll::real_shell(Path::new(enroll::SHELLS_FILE), &n))
            .unwrap_or_else(fallback);
        exec_real(&shell, login_shell, &rest, uid, gid);
    };
    let Ok(user) = identity::user_by_uid(uid) else {
        exec_real(&fallback(), login_shell, &rest, uid, gid);
    };
    let shell =
        enroll::real_shell(Path::new(enroll::SHELLS_FILE), &user.name).unwrap_or_else(fallback);
    match record_session(&marker, &user, &shell, login_shell, &rest, gid) {
        Ok(outcome) => outcome.exit(),
        Err(e) => {
            // Recording could not start: the login itself was armed (and fail=closed was
            // enforced by PAM); say so in the log and give the user their shell.
            log(
                libc::LOG_ERR,
                &format!(
                    "login {}: {e:#}; running the shell unrecorded",
                    marker.login
                ),
            );
            exec_real(&shell, login_shell, &rest, uid, gid);
        }
    }
}

fn record_session(
    marker: &Marker,
    user: &UserInfo,
    shell: &Path,
    login_shell: bool,
    rest: &[OsString],
    gid: u32,
) -> anyhow::Result<record::Outcome> {
    // The configuration and spool named by the root-written marker, never by the environment.
    let text = std::fs::read_to_string(&marker.config).unwrap_or_default();
    let mut config = Config::parse(&text, &marker.config)?;
    config.spool.path = marker.spool.clone();
    let spool = Spool::open(
        &config.spool.path,
        SpoolOptions::from_config(&config.spool).map_err(anyhow::Error::msg)?,
    )?;
    let Some(login) = spool.attach_login(marker.login, user.uid)? else {
        anyhow::bail!("the login is not open (ended, or not this user's)");
    };
    let command_line = (rest.first().map(|a| a.as_bytes()) == Some(b"-c"))
        .then(|| rest.get(1).cloned())
        .flatten();
    let transfer = command_line.as_deref().is_some_and(is_file_transfer);
    let kind = if command_line.is_some() {
        RecordingKind::Command
    } else {
        RecordingKind::Session
    };
    let mut opts = RecordOptions::new(shell.as_os_str(), rest.to_vec()).with_config(&config.record);
    opts.argv0 = Some(shell_argv0(shell, login_shell));
    opts.run_as = Some((user.uid, gid));
    opts.keep_data = !transfer || config.record.file_transfers;
    let mut command = vec![shell.display().to_string()];
    command.extend(rest.iter().map(|a| a.to_string_lossy().into_owned()));
    let mut meta = RecordingMeta::here(kind, user, login.meta.host.clone(), command.clone());
    meta.login_id = Some(login.meta.id);
    meta.service = login.meta.service.clone();
    meta.rhost = login.meta.rhost.clone();
    meta.rule = login.meta.rule.clone();
    let id = meta.id;
    let started = libsegura::time::now_us();
    let (outcome, spool) = record::record(&opts, meta, spool)?;
    if transfer {
        spool.add_audit_event(&AuditEvent {
            id: uuid::Uuid::now_v7(),
            at: started,
            kind: "file-transfer".into(),
            user: user.name.clone(),
            host: login.meta.host.clone(),
            body: serde_json::json!({
                "login": login.meta.id,
                "recording": id,
                "command": command,
                "bytes_from_host": outcome.bytes_out,
                "bytes_to_host": outcome.bytes_in,
                "recorded": opts.keep_data,
                "exit_code": outcome.exit_code,
                "exit_signal": outcome.exit_signal,
                "duration_us": libsegura::time::now_us() - started,
            }),
        })?;
    }
    drop(spool);
    Ok(outcome)
}
