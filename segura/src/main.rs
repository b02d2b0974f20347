//! `segura`: record terminal sessions into the local spool and get them back out.

mod admin;
mod man;
mod policy_cmd;
mod sync_cmd;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use libsegura::chunk::Stream;
use libsegura::config::Config;
use libsegura::export::{self, Item, Timeline};
use libsegura::identity;
use libsegura::record::{self, RecordOptions};
use libsegura::spool::{Mode, RecordingKind, RecordingMeta, Spool, SpoolOptions};
use libsegura::time::rfc3339;

#[derive(Parser)]
#[command(
    name = "segura",
    version,
    about = "Record terminal sessions and get them back out"
)]
struct Cli {
    /// Configuration file [default: $SEGURA_CONFIG or /etc/segura/segura.toml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Spool database [default: $SEGURA_SPOOL or spool.path of the configuration]
    #[arg(long, global = true, value_name = "FILE")]
    spool: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a command (default: your shell) and record its terminal session
    Rec {
        /// Force pty or pipe mode [default: pty when stdin is a terminal]
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
        /// The command and its arguments
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        cmd: Vec<OsString>,
    },
    /// List recordings, newest first, and logins that ran unrecorded
    Ls {
        /// One JSON array, for scripts
        #[arg(long)]
        json: bool,
        /// List the PAM logins (armed, active, ended, unrecorded) instead
        #[arg(long)]
        logins: bool,
    },
    /// Replay a recording's output in this terminal
    Play {
        /// Recording id (or a unique prefix)
        id: String,
        /// Playback speed factor
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Longest pause kept between two outputs, in seconds
        #[arg(long, value_name = "SECONDS")]
        max_idle: Option<f64>,
    },
    /// Export a recording
    Export {
        /// Recording id (or a unique prefix)
        id: String,
        #[arg(long, value_enum, default_value = "asciicast")]
        format: Format,
        /// For --format raw: which stream
        #[arg(long, value_enum, default_value = "output")]
        stream: StreamArg,
        /// Write to this file instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Verify recordings' hash chains and the database's integrity
    Check {
        /// Only this recording
        id: Option<String>,
    },
    /// Show the spool: size, quota, what waits for upload
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Enroll this host with the platform (a one-time token from its administrator)
    EnrollHost {
        /// The platform's URL, e.g. https://segura.example.com
        #[arg(long)]
        server: String,
        /// The one-time enrollment token
        #[arg(long)]
        token: String,
        /// The name the platform shows for this host (default: its host name)
        #[arg(long)]
        name: Option<String>,
    },
    /// Deliver recordings, logins and audit events to the platform, and pull the policy
    Sync {
        /// Keep running: a pass at every interval, when nudged, and soon after a failure
        #[arg(long)]
        daemon: bool,
        /// Put recordings the platform refused back in the queue first
        #[arg(long)]
        retry_quarantined: bool,
        #[arg(long)]
        json: bool,
    },
    /// Upload one recording now, saying so (run by the launcher when a recorded program ends)
    #[command(hide = true)]
    UploadNow { id: String },
    /// Put the launcher in front of a program (binary-run rules); both a link and its target are covered
    Wrap {
        /// The program, as `which` prints it (a link is followed to its final target)
        path: PathBuf,
        /// The launcher [default: segura-launch beside this program, or in ../sbin]
        #[arg(long, value_name = "PATH")]
        launcher: Option<PathBuf>,
    },
    /// Put a wrapped program back, byte for byte
    Unwrap {
        /// The wrapped program
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        path: Option<PathBuf>,
        /// Every wrapped program (those listed in /etc/segura/wrapped)
        #[arg(long)]
        all: bool,
    },
    /// Make segura-shell the login shell of users (remembering their real shells)
    Enroll {
        /// User names
        users: Vec<String>,
        /// Also every local user whose primary group this is
        #[arg(long)]
        group: Option<String>,
        /// The recorder shell [default: segura-shell beside this program]
        #[arg(long, value_name = "PATH")]
        shell: Option<PathBuf>,
    },
    /// Give enrolled users their real shells back
    Unenroll {
        users: Vec<String>,
        /// Every enrolled user
        #[arg(long)]
        all: bool,
    },
    /// Add pam_segura to services' PAM files (or take it out again)
    Setup {
        /// Comma-separated PAM services, e.g. sshd,login,su,su-l
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
        /// Take the line out again, restoring the files byte for byte
        #[arg(long)]
        remove: bool,
        /// With --remove: every service whose PAM file has the line (instead of --services)
        #[arg(long, requires = "remove", conflicts_with = "services")]
        all: bool,
        /// Module arguments, e.g. "fail=closed"
        #[arg(long, default_value = "")]
        module_args: String,
        /// "optional" (a broken module never blocks a login) or "required"
        #[arg(long, default_value = "optional")]
        control: String,
        /// The module: a name in the PAM module directory, or an absolute path
        #[arg(long, default_value = "pam_segura.so", value_name = "MODULE")]
        module: String,
        #[arg(long, default_value = "/etc/pam.d", value_name = "DIR")]
        pam_dir: PathBuf,
    },
    /// Local access rules (for standalone hosts)
    Policy {
        #[command(subcommand)]
        command: policy_cmd::PolicyCmd,
    },
    /// The spool schema version this segura understands (for package scripts)
    #[command(hide = true)]
    SpoolSchema {
        /// Print the version of the configured spool instead (0: there is none), changing nothing
        #[arg(long, conflicts_with = "migrate")]
        of_spool: bool,
        /// Open the configured spool, migrating it forward; fail clearly if it is too new
        #[arg(long)]
        migrate: bool,
    },
    /// Write the manual pages generated from these definitions into a directory
    #[command(hide = true)]
    ManPages {
        /// Where to write segura.8 and a page per subcommand
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Pty,
    Pipe,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// asciicast v2 (asciinema)
    Asciicast,
    /// The transcript as the screen showed it
    Text,
    /// The commands typed, with their time offsets
    Commands,
    /// The commands as JSON
    CommandsJson,
    /// One stream's bytes, exactly as recorded
    Raw,
}

#[derive(Clone, Copy, ValueEnum)]
enum StreamArg {
    Output,
    Input,
    Stderr,
}

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("segura: error: {e:#}");
            std::process::exit(1);
        }
    }
}

/// The spool owner's (uid, gid), which setuid programs (segura-shell, the launcher) run as.
fn spool_owner(config: &Config) -> Result<Option<(u32, u32)>> {
    Ok(match (&config.spool.owner, &config.spool.group) {
        (Some(u), g) => {
            let user = libsegura::identity::user_by_name(u)?;
            let gid = match g {
                Some(g) => libsegura::identity::group_gid(g)?.unwrap_or(user.gid),
                None => user.gid,
            };
            Some((user.uid, gid))
        }
        (None, _) => None,
    })
}

/// A program installed with this one: beside it, or in ../sbin (where make install puts it).
fn sibling_program(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let here = exe.with_file_name(name);
    let sbin = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("sbin").join(name));
    Ok(match sbin {
        Some(s) if !here.exists() && s.exists() => s,
        _ => here,
    })
}

fn load_config(cli_config: Option<&Path>, cli_spool: Option<&Path>) -> Result<Config> {
    let mut config = Config::load(cli_config)?;
    if let Some(spool) = cli_spool {
        config.spool.path = spool.to_path_buf();
    }
    Ok(config)
}

fn open_spool(config: &Config) -> Result<Spool> {
    let opts = SpoolOptions::from_config(&config.spool).map_err(anyhow::Error::msg)?;
    let path = &config.spool.path;
    let spool = Spool::open(path, opts).with_context(|| {
        if nix::unistd::geteuid().is_root() {
            String::from("opening the spool")
        } else {
            "opening the spool (as a non-root user, point --spool or SEGURA_SPOOL at a file you may write, e.g. ~/.local/share/segura/spool.db)".to_string()
        }
    })?;
    if let Some(r) = spool.recovered() {
        eprintln!(
            "segura: warning: the spool {} was corrupt ({}); it was moved aside to {} and a new spool was created",
            path.display(),
            r.reason,
            r.moved_to.display()
        );
    }
    Ok(spool)
}

fn run(cli: Cli) -> Result<i32> {
    let shells = Path::new(libsegura::enroll::SHELLS_FILE);
    match cli.command {
        Cmd::Enroll {
            users,
            group,
            shell,
        } => {
            let shell = match shell {
                Some(s) => s,
                None => sibling_program("segura-shell")?,
            };
            return admin::enroll(&users, group.as_deref(), &shell, shells);
        }
        Cmd::Unenroll { users, all } => return admin::unenroll(&users, all, shells),
        Cmd::ManPages { out } => return man::write_pages(&out),
        // Needs no configuration: the package's prerm runs it even when the file is broken.
        Cmd::Unwrap { path, .. } => {
            let wrapped = Path::new(libsegura::wrap::WRAPPED_FILE);
            return match path {
                Some(path) => admin::unwrap(&path, wrapped),
                None => admin::unwrap_all(wrapped),
            };
        }
        Cmd::Setup {
            services,
            remove,
            all,
            module_args,
            control,
            module,
            pam_dir,
        } => {
            if control != "optional" && control != "required" {
                bail!("--control must be optional or required");
            }
            let line = format!("session {control} {module} {module_args}");
            let services = if all {
                admin::services_with_line(&pam_dir)?
            } else {
                services
            };
            if all && services.is_empty() {
                println!("{}: no service has the segura line", pam_dir.display());
                return Ok(0);
            }
            return admin::setup(&services, remove, &pam_dir, line.trim_end());
        }
        _ => {}
    }
    let config = load_config(cli.config.as_deref(), cli.spool.as_deref())?;
    if let Cmd::Policy { command } = cli.command {
        return policy_cmd::run(command, cli.config.as_deref(), &config);
    }
    let wrapped = Path::new(libsegura::wrap::WRAPPED_FILE);
    let config_path = match cli.config.clone() {
        Some(c) => c,
        None => std::env::var_os(libsegura::config::ENV_CONFIG)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(libsegura::config::DEFAULT_CONFIG_PATH)),
    };
    let config_path = std::fs::canonicalize(&config_path).unwrap_or(config_path);
    if let Cmd::Wrap { path, launcher } = &cli.command {
        let launcher = match launcher {
            Some(l) => l.clone(),
            None => sibling_program("segura-launch")?,
        };
        return admin::wrap(
            path,
            &launcher,
            &config_path,
            spool_owner(&config)?,
            wrapped,
        );
    }
    if let Cmd::EnrollHost {
        server,
        token,
        name,
    } = &cli.command
    {
        return sync_cmd::enroll_host(&config, server, token, name.as_deref());
    }
    if let Cmd::SpoolSchema { of_spool, migrate } = &cli.command {
        return spool_schema(&config, *of_spool, *migrate);
    }
    let spool = open_spool(&config)?;
    if let Cmd::UploadNow { id } = &cli.command {
        return sync_cmd::upload_now(&config, &spool, id);
    }
    if let Cmd::Sync {
        daemon,
        retry_quarantined,
        json,
    } = cli.command
    {
        let follow = |config: &Config| -> Result<()> {
            // Wrapping follows the binary-run rules once the host is enrolled (root only).
            if nix::unistd::geteuid().is_root() && config.upload.credentials.exists() {
                let launcher = sibling_program("segura-launch")?;
                if launcher.exists() {
                    admin::follow_policy(
                        config,
                        &config_path,
                        &launcher,
                        spool_owner(config)?,
                        wrapped,
                    )?;
                }
            }
            Ok(())
        };
        return sync_cmd::sync(&config, &spool, daemon, retry_quarantined, json, &follow);
    }
    match cli.command {
        Cmd::Rec { mode, cmd } => rec(&config, spool, mode, cmd),
        Cmd::Ls { json, logins } => ls(&spool, json, logins),
        Cmd::Play {
            id,
            speed,
            max_idle,
        } => play(&spool, &id, speed, max_idle),
        Cmd::Export {
            id,
            format,
            stream,
            output,
        } => export_cmd(&spool, &id, format, stream, output.as_deref()),
        Cmd::Check { id } => check(&spool, id.as_deref()),
        Cmd::Status { json } => status(&spool, json),
        Cmd::Policy { .. }
        | Cmd::Enroll { .. }
        | Cmd::Unenroll { .. }
        | Cmd::Setup { .. }
        | Cmd::EnrollHost { .. }
        | Cmd::Wrap { .. }
        | Cmd::Unwrap { .. }
        | Cmd::UploadNow { .. }
        | Cmd::SpoolSchema { .. }
        | Cmd::ManPages { .. }
        | Cmd::Sync { .. } => {
            unreachable!("handled above")
        }
    }
}

/// `segura spool-schema`: what the package scripts ask before they let a downgrade through, and
/// after an upgrade (to migrate the spool while nobody waits on a login).
fn spool_schema(config: &Config, of_spool: bool, migrate: bool) -> Result<i32> {
    let path = &config.spool.path;
    if of_spool {
        let found = libsegura::spool::schema_version_of(path)
            .with_context(|| format!("reading the schema version of {}", path.display()))?;
        println!("{}", found.unwrap_or(0));
    } else if migrate {
        if !path.exists() {
            println!("{}: no spool yet", path.display());
            return Ok(0);
        }
        let before = libsegura::spool::schema_version_of(path)?.unwrap_or(0);
        drop(open_spool(config)?);
        println!(
            "{}: schema version {} (was {before})",
            path.display(),
            libsegura::spool::SCHEMA_VERSION
        );
    } else {
        println!("{}", libsegura::spool::SCHEMA_VERSION);
    }
    Ok(0)
}

fn rec(config: &Config, spool: Spool, mode: Option<ModeArg>, cmd: Vec<OsString>) -> Result<i32> {
    let user = identity::current_user().context("who is recording")?;
    let (kind, program, args) = match cmd.split_first() {
        Some((p, a)) => (RecordingKind::Command, p.clone(), a.to_vec()),
        None => {
            let shell = std::env::var_os("SHELL")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| user.shell.clone().into_os_string());
            (RecordingKind::Session, shell, Vec::new())
        }
    };
    let mut opts = RecordOptions::new(program.clone(), args.clone()).with_config(&config.record);
    opts.mode = mode.map(|m| match m {
        ModeArg::Pty => Mode::Pty,
        ModeArg::Pipe => Mode::Pipe,
    });
    let command: Vec<String> = std::iter::once(&program)
        .chain(&args)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let meta = RecordingMeta::here(kind, &user, identity::hostname(), command);
    let (outcome, spool) = record::record(&opts, meta, spool)?;
    // Close the spool (SQLite folds and removes its -wal file) before exiting like the program.
    drop(spool);
    outcome.exit()
}

fn ls(spool: &Spool, json: bool, logins: bool) -> Result<i32> {
    let uid = nix::unistd::getuid();
    let filter = (!uid.is_root()).then_some(uid.as_raw());
    let mut out = std::io::stdout().lock();
    let login_rows = spool.logins(filter)?;
    if logins {
        if json {
            serde_json::to_writer_pretty(&mut out, &login_rows)?;
            writeln!(out)?;
            return Ok(0);
        }
        writeln!(
            out,
            "{:<36}  {:<12} {:<14} {:<10} {:<16} {:<24} {:<11} RECORDINGS",
            "LOGIN", "USER", "SERVICE", "TTY", "FROM", "OPENED", "STATE"
        )?;
        for l in &login_rows {
            let m = &l.meta;
            writeln!(
                out,
                "{:<36}  {:<12} {:<14} {:<10} {:<16} {:<24} {:<11} {}",
                m.id,
                m.user,
                m.service.as_deref().unwrap_or("-"),
                m.tty.as_deref().unwrap_or("-"),
                m.rhost.as_deref().unwrap_or("-"),
                &rfc3339(m.opened_at)[..19],
                l.state.as_str(),
                l.recordings
            )?;
        }
        return Ok(0);
    }
    let rows = spool.recordings(filter)?;
    if json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("started_at".into(), rfc3339(r.meta.started_at).into());
                    o.insert("ended_at".into(), r.ended_at.map(rfc3339).into());
                    o.insert("started_at_us".into(), r.meta.started_at.into());
                    o.insert(
                        "exit_status".into(),
                        exit_text(r.exit_code, r.exit_signal).into(),
                    );
                }
                v
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
        return Ok(0);
    }
    writeln!(
        out,
        "{:<36}  {:<10} {:<12} {:<12} {:<24} {:<11} {:>6} {:>10} {:>9}  COMMAND",
        "ID", "USER", "HOST", "SERVICE", "STARTED", "STATE", "EXIT", "OUT", "IN"
    )?;
    for r in &rows {
        let m = &r.meta;
        writeln!(
            out,
            "{:<36}  {:<10} {:<12} {:<12} {:<24} {:<11} {:>6} {:>10} {:>9}  {}",
            m.id,
            m.user,
            m.host,
            m.service.as_deref().unwrap_or("-"),
            &rfc3339(m.started_at)[..19],
            r.state.as_str(),
            exit_text(r.exit_code, r.exit_signal).unwrap_or_else(|| "-".into()),
            r.bytes_out,
            r.bytes_in,
            m.command.join(" ")
        )?;
    }
    // Logins that PAM armed but that ran without a recorder: evasion is visible here.
    for l in login_rows
        .iter()
        .filter(|l| l.state == libsegura::spool::LoginState::Unrecorded)
    {
        let m = &l.meta;
        writeln!(
            out,
            "{:<36}  {:<10} {:<12} {:<12} {:<24} {:<11} {:>6} {:>10} {:>9}  (login from {}: no recorder attached)",
            m.id,
            m.user,
            m.host,
            m.service.as_deref().unwrap_or("-"),
            &rfc3339(m.opened_at)[..19],
            "unrecorded",
            "-",
            "-",
            "-",
            m.rhost.as_deref().or(m.tty.as_deref()).unwrap_or("?")
        )?;
    }
    Ok(0)
}

fn exit_text(code: Option<i32>, signal: Option<i32>) -> Option<String> {
    match (code, signal) {
        (Some(c), _) => Some(c.to_string()),
        (None, Some(s)) => Some(
            nix::sys::signal::Signal::try_from(s)
                .map_or_else(|_| format!("signal {s}"), |s| s.as_str().to_string()),
        ),
        _ => None,
    }
}

fn play(spool: &Spool, id: &str, speed: f64, max_idle: Option<f64>) -> Result<i32> {
    if !(speed > 0.0 && speed.is_finite()) {
        bail!("--speed must be a positive number");
    }
    let tl = Timeline::load(spool, id)?;
    let mut out = std::io::stdout().lock();
    let mut last = 0u64;
    for item in &tl.items {
        let data = match &item.item {
            Item::Output(d) | Item::Stderr(d) => d,
            _ => continue,
        };
        let mut wait = item.t_us.saturating_sub(last) as f64 / 1e6 / speed;
        if let Some(m) = max_idle {
            wait = wait.min(m.max(0.0));
        }
        if wait > 0.0005 {
            out.flush()?;
            std::thread::sleep(std::time::Duration::from_secs_f64(wait));
        }
        last = item.t_us;
        out.write_all(data)?;
    }
    out.flush()?;
    Ok(0)
}

fn export_cmd(
    spool: &Spool,
    id: &str,
    format: Format,
    stream: StreamArg,
    output: Option<&Path>,
) -> Result<i32> {
    let tl = Timeline::load(spool, id)?;
    let mut sink: Box<dyn Write> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match format {
        Format::Asciicast => export::write_asciicast(&tl, &mut sink)?,
        Format::Text => sink.write_all(export::transcript(&tl).as_bytes())?,
        Format::Commands => {
            for c in export::commands(&tl) {
                writeln!(sink, "{:>10.3}s  {}", c.t_us as f64 / 1e6, c.line)?;
            }
        }
        Format::CommandsJson => {
            serde_json::to_writer_pretty(&mut sink, &export::commands(&tl))?;
            writeln!(sink)?;
        }
        Format::Raw => {
            let s = match stream {
                StreamArg::Output => Stream::Output,
                StreamArg::Input => Stream::Input,
                StreamArg::Stderr => Stream::Stderr,
            };
            sink.write_all(&tl.raw(s))?;
        }
    }
    sink.flush()?;
    Ok(0)
}

fn check(spool: &Spool, id: Option<&str>) -> Result<i32> {
    let problems = spool.integrity_check()?;
    let mut bad = problems.len();
    for p in &problems {
        println!("database: {p}");
    }
    let rows = match id {
        Some(id) => vec![spool.recording(id)?],
        None => spool.recordings(None)?,
    };
    for r in &rows {
        match Timeline::load(spool, &r.meta.id.to_string()) {
            Ok(tl) => println!(
                "{}: ok ({} records, state {})",
                r.meta.id,
                tl.items.len(),
                r.state.as_str()
            ),
            Err(e) => {
                bad += 1;
                println!("{}: {e}", r.meta.id);
            }
        }
    }
    if bad > 0 {
        bail!("{bad} problem(s) found");
    }
    Ok(0)
}

fn status(spool: &Spool, json: bool) -> Result<i32> {
    let s = spool.status()?;
    if json {
        let mut v = serde_json::to_value(&s)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("queue".into(), serde_json::to_value(spool.recordings_to_upload()?.iter().map(|r| serde_json::json!({
                "id": r.meta.id, "state": r.state.as_str(),
                "chunks_pending": r.chunks_pending_upload, "bytes_pending": r.bytes_pending_upload,
            })).collect::<Vec<_>>())?);
            o.insert(
                "quarantined".into(),
                serde_json::to_value(spool.quarantined()?)?,
            );
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!("spool:            {}", s.path.display());
    println!(
        "size:             {} bytes of {} ({:.1}%)",
        s.size_bytes,
        s.max_bytes,
        100.0 * s.size_bytes as f64 / s.max_bytes.max(1) as f64
    );
    println!("recordings:       {}", s.recordings);
    println!(
        "pending upload:   {} recording(s), {} chunk(s), {} bytes",
        s.recordings_pending_upload, s.chunks_pending_upload, s.bytes_pending_upload
    );
    if let Some(t) = s.oldest_pending_started_at {
        let age = (libsegura::time::now_us() - t).max(0) / 1_000_000;
        println!("oldest pending:   {} ({}s ago)", rfc3339(t), age);
    }
    println!(
        "audit events:     {} pending upload",
        s.audit_events_pending_upload
    );
    let queue = spool.recordings_to_upload()?;
    if !queue.is_empty() {
        println!();
        println!(
            "{:<36}  {:<11} {:>8} {:>12}  STARTED",
            "WAITING FOR UPLOAD", "STATE", "CHUNKS", "BYTES"
        );
        for r in &queue {
            println!(
                "{:<36}  {:<11} {:>8} {:>12}  {}",
                r.meta.id,
                r.state.as_str(),
                r.chunks_pending_upload,
                r.bytes_pending_upload,
                &rfc3339(r.meta.started_at)[..19]
            );
        }
    }
    for (id, why) in spool.quarantined()? {
        println!("quarantined {id}: {why}");
    }
    Ok(0)
}
