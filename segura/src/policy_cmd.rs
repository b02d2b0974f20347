//! `segura policy`: check a decision, and add, list or remove local rules in the configuration
//! file (edited in place with toml_edit, so comments and layout survive).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use libsegura::config::{Config, DEFAULT_CONFIG_PATH, ENV_CONFIG};
use libsegura::identity;
use libsegura::policy::{self, Guideline, Permission, Request, Rule, Scope, SubjectType};

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Show what the policy decides for a user (and a program)
    Check {
        #[arg(long)]
        user: String,
        /// PAM service asking (informational)
        #[arg(long)]
        service: Option<String>,
        /// A program, for binary-run rules
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
        /// Decide as this workstation [default: this host's name]
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Add a local rule
    Add(AddArgs),
    /// List local rules
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a local rule by name
    Remove { name: String },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum YesNo {
    Yes,
    No,
}

impl YesNo {
    fn get(self) -> bool {
        matches!(self, YesNo::Yes)
    }
}

#[derive(clap::Args)]
pub struct AddArgs {
    /// Policy name (unique)
    #[arg(long)]
    name: String,
    #[arg(long, value_enum, default_value = "yes")]
    enabled: YesNo,
    /// Where the rule applies
    #[arg(long, value_enum, default_value = "all")]
    scope: ScopeArg,
    /// The workstation (host name) or user for --scope workstation|user
    #[arg(long, value_name = "NAME")]
    scope_target: Option<String>,
    #[arg(long, value_enum)]
    guideline: GuidelineArg,
    /// Enable audit (binary runs are logged)
    #[arg(long, value_enum, default_value = "yes")]
    audit: YesNo,
    /// Enable session recording
    #[arg(long, value_enum, default_value = "no")]
    record: YesNo,
    /// Application path, as `which CMD` prints it (binary-run rules)
    #[arg(long, value_name = "PATH")]
    application: Option<PathBuf>,
    /// The application path is a symbolic link: cover the link and its target
    #[arg(long, value_enum, default_value = "no")]
    symlink: YesNo,
    #[arg(long, value_enum, default_value = "allow-recording")]
    permission: PermissionArg,
    /// The rule is for this user
    #[arg(long, conflicts_with = "group", required_unless_present = "group")]
    user: Option<String>,
    /// The rule is for users whose primary group this is
    #[arg(long)]
    group: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    All,
    Workstation,
    User,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum GuidelineArg {
    LoginSession,
    BinaryRun,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PermissionArg {
    AllowRecording,
    DenyRecording,
}

pub fn run(cmd: PolicyCmd, cli_config: Option<&Path>, config: &Config) -> Result<i32> {
    match cmd {
        PolicyCmd::Check {
            user,
            service,
            binary,
            host,
            json,
        } => {
            let info = identity::user_by_name(&user)?;
            let host = host.unwrap_or_else(identity::hostname);
            let rules = libsegura::policy_cache::effective_rules(config);
            let d = policy::decide(
                &rules,
                &Request {
                    user: &info,
                    host: &host,
                    service: service.as_deref(),
                    binary: binary.as_deref(),
                },
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                println!(
                    "user:     {} (uid {}, primary group {})",
                    info.name, info.uid, info.group
                );
                println!("record:   {}", if d.record { "yes" } else { "no" });
                if binary.is_some() {
                    println!("audit:    {}", if d.audit { "yes" } else { "no" });
                }
                println!(
                    "rule:     {}",
                    d.rule.as_ref().map_or("none", |r| r.name.as_str())
                );
                println!("why:      {}", d.reason);
                for s in &d.skipped {
                    println!("  skipped {s}");
                }
            }
            Ok(0)
        }
        PolicyCmd::List { json } => {
            if json {
                println!("{}", serde_json::to_string_pretty(&config.rules)?);
                return Ok(0);
            }
            if config.rules.is_empty() {
                println!("no local rules");
            }
            for (i, r) in config.rules.iter().enumerate() {
                println!("#{i} {}", describe(r));
            }
            Ok(0)
        }
        PolicyCmd::Add(a) => {
            let rule = Rule {
                id: None,
                name: a.name,
                enabled: a.enabled.get(),
                scope: match a.scope {
                    ScopeArg::All => Scope::All,
                    ScopeArg::Workstation => Scope::Workstation,
                    ScopeArg::User => Scope::User,
                },
                scope_target: a.scope_target,
                guideline: match a.guideline {
                    GuidelineArg::LoginSession => Guideline::LoginSession,
                    GuidelineArg::BinaryRun => Guideline::BinaryRun,
                },
                enable_audit: a.audit.get(),
                enable_recording: a.record.get(),
                application_path: a.application,
                path_is_symlink: a.symlink.get(),
                permission: match a.permission {
                    PermissionArg::AllowRecording => Permission::AllowRecording,
                    PermissionArg::DenyRecording => Permission::DenyRecording,
                },
                subject_type: if a.group.is_some() {
                    SubjectType::Group
                } else {
                    SubjectType::User
                },
                subject: a.group.or(a.user).unwrap_or_default(),
            };
            if let Err((field, msg)) = rule.validate() {
                bail!("{field}: {msg}");
            }
            if config.rules.iter().any(|r| r.name == rule.name) {
                bail!("a rule named {:?} exists already", rule.name);
            }
            let path = config_path(cli_config);
            edit(&path, |doc| {
                let encoded: toml_edit::DocumentMut = toml::to_string(&rule)
                    .context("encoding the rule")?
                    .parse()
                    .context("encoding the rule")?;
                let table = encoded.as_table().clone();
                let rules = doc
                    .entry("rule")
                    .or_insert(toml_edit::Item::ArrayOfTables(Default::default()));
                let Some(array) = rules.as_array_of_tables_mut() else {
                    bail!("`rule` in {} is not an array of tables", path.display());
                };
                array.push(table);
                Ok(())
            })?;
            println!("added rule {} to {}", rule.label(), path.display());
            Ok(0)
        }
        PolicyCmd::Remove { name } => {
            let path = config_path(cli_config);
            edit(&path, |doc| {
                let Some(array) = doc.get_mut("rule").and_then(|r| r.as_array_of_tables_mut())
                else {
                    bail!("{} has no rules", path.display());
                };
                let before = array.len();
                array.retain(|t| t.get("name").and_then(|n| n.as_str()) != Some(name.as_str()));
                if array.len() == before {
                    bail!("no rule named {name:?} in {}", path.display());
                }
                Ok(())
            })?;
            println!("removed rule '{name}' from {}", path.display());
            Ok(0)
        }
    }
}

fn describe(r: &Rule) -> String {
    let subject = match r.subject_type {
        SubjectType::User => format!("user {}", r.subject),
        SubjectType::Group => format!("primary group {}", r.subject),
    };
    let scope = match (r.scope, &r.scope_target) {
        (Scope::All, _) => "all workstations".to_string(),
        (Scope::Workstation, t) => format!("workstation {}", t.as_deref().unwrap_or("?")),
        (Scope::User, t) => format!("user {}", t.as_deref().unwrap_or("?")),
    };
    let what = match (r.guideline, &r.application_path) {
        (Guideline::BinaryRun, Some(p)) => format!(
            "binary run {}{}",
            p.display(),
            if r.path_is_symlink {
                " (and its link target)"
            } else {
                ""
            }
        ),
        _ => "login session".to_string(),
    };
    format!(
        "{} [{}] {what}; {subject}; {scope}; record={} audit={} permission={:?}",
        r.label(),
        if r.enabled { "enabled" } else { "disabled" },
        if r.enable_recording { "yes" } else { "no" },
        if r.enable_audit { "yes" } else { "no" },
        r.permission
    )
}

fn config_path(cli: Option<&Path>) -> PathBuf {
    cli.map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os(ENV_CONFIG)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

/// Edits the configuration file in place: the result must still be a valid configuration, and
/// it replaces the old file atomically with the same permissions.
fn edit(path: &Path, f: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<()>) -> Result<()> {
    let (text, mode) = match std::fs::read_to_string(path) {
        Ok(t) => {
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
            (t, mode)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), 0o644),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    // Refuse to edit a file that is already broken: the user must see that error first.
    Config::parse(&text, path)?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("parsing {}", path.display()))?;
    f(&mut doc)?;
    let new = doc.to_string();
    Config::parse(&new, path).context("the edited configuration would be invalid")?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.segura-tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("config"),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(new.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("writing {}", path.display()))
    })
}
