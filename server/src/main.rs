//! `segura-server`: the segura platform's collector. Enrolled hosts upload logins, recordings
//! (hash-chained chunks), and audit events, and fetch their policy; operators administer it with
//! `segura-server admin`.
#![forbid(unsafe_code)]

mod man;

use segura_server::{admin, serve, store};

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use store::Role;

#[derive(Parser)]
#[command(name = "segura-server", version = libsegura::VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (HTTPS; plain HTTP only on a loopback address).
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8443 (port 0: any free port, printed).
        #[arg(long)]
        listen: String,
        /// The data directory (created 0700).
        #[arg(long)]
        data: PathBuf,
        /// PEM certificate chain for HTTPS.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for HTTPS.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Requests per second allowed to each host, on average.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Requests a host may send in a burst.
        #[arg(long, default_value_t = 400)]
        burst: u32,
        /// Keep recordings this long (e.g. 365d, 12h); older ones are purged unless held.
        #[arg(long, default_value = "365d", value_parser = serve::parse_duration)]
        retention: std::time::Duration,
        /// How often the retention purge runs.
        #[arg(long, default_value = "1h", value_parser = serve::parse_duration)]
        purge_every: std::time::Duration,
    },
    /// Administer the platform.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Write the manual pages generated from these definitions into a directory.
    #[command(hide = true)]
    ManPages { out: PathBuf },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Add a platform user; the password is read from stdin.
    CreateUser {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        data: PathBuf,
    },
    /// Print a new one-time enrollment token.
    EnrollToken {
        #[arg(long)]
        data: PathBuf,
        /// How long the token stays valid.
        #[arg(long, default_value_t = 24)]
        valid_hours: u32,
    },
    /// List enrolled hosts.
    Hosts {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Approve an enrolled host: its sessions leave quarantine and show in the web UI.
    ApproveHost {
        host_id: String,
        #[arg(long)]
        data: PathBuf,
    },
    /// Reject a pending host: its credential is refused, its sessions stay in quarantine.
    RejectHost {
        host_id: String,
        #[arg(long)]
        data: PathBuf,
    },
    /// Approve an endpoint user (a username seen on enrolled hosts), or every user of a host.
    ApproveUser {
        /// The username (identical on every host).
        name: Option<String>,
        /// Approve every user seen on this host instead.
        #[arg(long, conflicts_with = "name")]
        host: Option<String>,
        #[arg(long)]
        data: PathBuf,
    },
    /// Revoke a host's credential: its requests are refused from now on.
    RevokeHost {
        host_id: String,
        #[arg(long)]
        data: PathBuf,
    },
    /// List recordings with what is held of each stream.
    Recordings {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Write the platform's copy of a recording to stdout.
    Export {
        /// The recording id (or a unique prefix of it).
        recording_id: String,
        #[arg(long, value_enum)]
        format: admin::Format,
        #[arg(long)]
        data: PathBuf,
    },
    /// Replace the rules with a JSON array of rules (bumps the policy version).
    PolicySet {
        file: PathBuf,
        #[arg(long)]
        data: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Auditor,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Auditor => Role::Auditor,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("segura-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            data,
            tls_cert,
            tls_key,
            rate,
            burst,
            retention,
            purge_every,
        } => serve::run(serve::ServeOptions {
            listen,
            data,
            tls: tls_cert.zip(tls_key),
            rate,
            burst,
            retention,
            purge_every,
        }),
        Command::ManPages { out } => man::write_pages(&out),
        Command::Admin { command } => match command {
            AdminCommand::CreateUser { name, role, data } => {
                admin::create_user(&data, &name, role.into())
            }
            AdminCommand::EnrollToken { data, valid_hours } => {
                admin::enroll_token(&data, valid_hours)
            }
            AdminCommand::Hosts { data, json } => admin::hosts(&data, json),
            AdminCommand::RevokeHost { host_id, data } => admin::revoke_host(&data, &host_id),
            AdminCommand::ApproveHost { host_id, data } => {
                admin::decide_host(&data, &host_id, true)
            }
            AdminCommand::RejectHost { host_id, data } => {
                admin::decide_host(&data, &host_id, false)
            }
            AdminCommand::ApproveUser { name, host, data } => {
                admin::approve_user(&data, name.as_deref(), host.as_deref())
            }
            AdminCommand::Recordings { data, json } => admin::recordings(&data, json),
            AdminCommand::Export {
                recording_id,
                format,
                data,
            } => admin::export(&data, &recording_id, format),
            AdminCommand::PolicySet { file, data } => admin::policy_set(&data, &file),
        },
    }
}
