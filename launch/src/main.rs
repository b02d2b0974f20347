//! `segura-launch`: what `segura wrap` puts where a program was. Per run it decides from the
//! binary-run rules: no rule → the real program at once; audit → the program runs, then an
//! audit event is written; record → the program runs under the recorder, and its recording is
//! uploaded at once (briefly; `segura sync` takes over when offline).
//!
//! Installed setuid and setgid to the spool's owner (like segura-shell), so it can write the
//! spool; the program itself always runs with the user's own uid and gid, and so gets its own
//! setuid bit or file capabilities (ping's cap_net_raw) from its exec as before.
#![no_main]

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;

use libsegura::config::Config;
use libsegura::identity;
use libsegura::login::{self, ENV_SESSION, MARKER_DIR};
use libsegura::policy::{self, Request};
use libsegura::policy_cache::effective_rules;
use libsegura::record::{self, sys, RecordOptions};
use libsegura::spool::{AuditEvent, RecordingKind, RecordingMeta, Spool, SpoolOptions};
use libsegura::wrap::{self, Wrapped, WRAPPED_FILE};

fn die(msg: &str) -> ! {
    eprintln!("segura-launch: {msg}");
    sys::syslog(libc::LOG_ERR, &format!("segura-launch: {msg}"));
    std::process::exit(127)
}

/// Replaces this process with the real program, as the real user.
fn exec_real(w: &Wrapped, args: &[OsString], uid: u32, gid: u32) -> ! {
    let _ = nix::unistd::setresgid(gid.into(), gid.into(), gid.into());
    let _ = nix::unistd::setresuid(uid.into(), uid.into(), uid.into());
    let mut cmd = Command::new(&w.real);
    if let Some(a0) = args.first() {
        cmd.arg0(a0);
    }
    let err = cmd.args(args.get(1..).unwrap_or_default()).exec();
    die(&format!("cannot run {}: {err}", w.real.display()))
}

libsegura::quick_main!(run);

fn run() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
    let Some(w) = wrap::lookup(Path::new(WRAPPED_FILE), &exe) else {
        die(&format!(
            "{} is not a program segura wrapped",
            exe.display()
        ));
    };
    // The configuration the (root-written) table names; never one from the environment.
    let text = std::fs::read_to_string(&w.config).unwrap_or_default();
    let Ok(config) = Config::parse(&text, &w.config) else {
        sys::syslog(
            libc::LOG_ERR,
            &format!("segura-launch: bad configuration {}", w.config.display()),
        );
        exec_real(&w, &args, uid, gid);
    };
    let Ok(user) = identity::user_by_uid(uid) else {
        exec_real(&w, &args, uid, gid);
    };
    // The name it was run by (a link, say) decides which rules cover it.
    let invoked = sys::exec_path()
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                std::env::current_dir().unwrap_or_default().join(p)
            }
        })
        .unwrap_or_else(|| w.path.clone());
    let host = identity::hostname();
    let rules = effective_rules(&config);
    let decision = policy::decide(
        &rules,
        &Request {
            user: &user,
            host: &host,
            service: None,
            binary: Some(&invoked),
        },
    );
    if !decision.record && !decision.audit {
        exec_real(&w, &args, uid, gid);
    }
    let started = libsegura::time::now_us();
    let opened = SpoolOptions::from_config(&config.spool)
        .map_err(|e| e.to_string())
        .and_then(|o| Spool::open(&config.spool.path, o).map_err(|e| e.to_string()));
    let spool = match opened {
        Ok(s) => s,
        Err(e) => {
            sys::syslog(
                libc::LOG_ERR,
                &format!(
                    "segura-launch: spool: {e}; running {} unrecorded",
                    w.real.display()
                ),
            );
            exec_real(&w, &args, uid, gid);
        }
    };
    let rule = decision.rule.as_ref().map(|r| r.name.clone());
    let login_id = login::find_marker(
        Path::new(MARKER_DIR),
        uid,
        std::env::var(ENV_SESSION).ok().as_deref(),
    )
    .map(|m| m.login);
    let argv: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (code, signal, recording, idle_spool) = if decision.record {
        let mut opts = RecordOptions::new(
            w.real.as_os_str(),
            args.get(1..).unwrap_or_default().to_vec(),
        )
        .with_config(&config.record);
        opts.argv0 = args.first().cloned();
        opts.run_as = Some((uid, gid));
        let mut meta =
            RecordingMeta::here(RecordingKind::Binary, &user, host.clone(), argv.clone());
        meta.login_id = login_id;
        meta.rule = rule.clone();
        let id = meta.id;
        match record::record(&opts, meta, spool) {
            Ok((outcome, spool)) => (
                outcome.exit_code,
                outcome.exit_signal,
                Some((id, spool)),
                None,
            ),
            Err(e) => die(&format!("recording {}: {e}", w.real.display())),
        }
    } else {
        // Audit only: the program runs with the terminal as it is; this process only waits.
        let mut cmd = Command::new(&w.real);
        if let Some(a0) = args.first() {
            cmd.arg0(a0);
        }
        cmd.args(args.get(1..).unwrap_or_default());
        sys::drop_privileges_on_exec(&mut cmd, uid, gid);
        let mask = sys::block_terminal_signals();
        sys::unblock_signals_on_exec(&mut cmd);
        let status = match cmd.status() {
            Ok(s) => s,
            Err(e) => die(&format!("cannot run {}: {e}", w.real.display())),
        };
        // Signals the terminal sent meanwhile were the program's: drop them, do not act on them.
        std::mem::forget(mask);
        (status.code(), status.signal(), None, Some(spool))
    };
    if decision.audit {
        let audit_spool = recording.as_ref().map(|(_, s)| s);
        let event = AuditEvent {
            id: uuid::Uuid::now_v7(),
            at: started,
            kind: "binary-run".into(),
            user: user.name.clone(),
            host: host.clone(),
            body: serde_json::json!({
                "uid": uid, "primary_group": user.group, "path": invoked, "canonical_path": w.path,
                "argv": argv, "cwd": std::env::current_dir().ok(),
                "tty": nix::unistd::ttyname(sys::std_fd(0)).ok(),
                "start": libsegura::time::rfc3339(started),
                "duration_us": libsegura::time::now_us() - started,
                "exit_code": code, "exit_signal": signal,
                "rule": rule, "recorded": recording.as_ref().map(|(id, _)| id.to_string()),
                "login": login_id,
            }),
        };
        let result = match audit_spool {
            Some(s) => s.add_audit_event(&event),
            None => match &idle_spool {
                Some(s) => s.add_audit_event(&event),
                None => Ok(()),
            },
        };
        if let Err(e) = result {
            sys::syslog(libc::LOG_ERR, &format!("segura-launch: audit event: {e}"));
        }
    }
    if let Some((id, spool)) = recording {
        drop(spool);
        upload_now(&w, &config, id);
    }
    libsegura::policy_cache::nudge();
    sys::exit_like(code, signal)
}

/// Sends this run's recording now by running `segura upload-now` (which announces it, or says
/// the run is kept). The launcher itself links no network library, so an unrecorded run costs
/// one exec. The environment is cleared: `segura` must take the spool and the configuration from
/// the table, not from the user.
fn upload_now(w: &Wrapped, config: &Config, id: uuid::Uuid) {
    let status = Command::new(&w.segura)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .arg("--config")
        .arg(&w.config)
        .arg("--spool")
        .arg(&config.spool.path)
        .arg("upload-now")
        .arg(id.to_string())
        .status();
    if let Err(e) = status {
        eprintln!(
            "segura: the recording could not be sent now ({}: {e}); it is kept on this machine and will be sent later",
            w.segura.display()
        );
    }
}
