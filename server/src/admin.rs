//! `segura-server admin …`: the operator's commands, run on the platform host against the data
//! directory (safe while the server runs: SQLite WAL).

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use libsegura::export::{transcript, write_asciicast, ExportError, Timeline};
use libsegura::policy::Rule;
use libsegura::time::{now_us, rfc3339};
use uuid::Uuid;

use crate::auth;
use crate::catalog::Catalog;
use crate::sqlite::SqliteStore;
use crate::store::{Role, Store};

/// What `admin export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// asciicast v2 (asciinema's player and CLI).
    Asciicast,
    /// The transcript, as the screen showed it.
    Text,
}

fn open(data: &Path) -> Result<SqliteStore> {
    SqliteStore::open(data).with_context(|| format!("opening the store in {}", data.display()))
}

/// Adds a platform user; the password is the first line of stdin.
pub fn create_user(data: &Path, name: &str, role: Role) -> Result<()> {
    let name = name.trim();
    auth::check_user_name(name).map_err(anyhow::Error::msg)?;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password for {name} (shown as typed; pipe it in to avoid that): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("empty password (give it on stdin)");
    }
    auth::check_new_password(password).map_err(anyhow::Error::msg)?;
    let hash = auth::hash_password(password)?;
    open(data)?.add_user(name, role, &hash)?;
    eprintln!("user {name} ({}) created", role.as_str());
    Ok(())
}

/// Prints a new one-time enrollment token valid for `hours`.
pub fn enroll_token(data: &Path, hours: u32) -> Result<()> {
    let token = auth::new_secret();
    let expires_at = now_us().saturating_add(i64::from(hours) * 3_600_000_000);
    open(data)?.add_enroll_token(&auth::secret_hash(&token), expires_at)?;
    println!("{token}");
    eprintln!(
        "one-time enrollment token, valid until {}",
        rfc3339(expires_at)
    );
    Ok(())
}

pub fn hosts(data: &Path, json: bool) -> Result<()> {
    let hosts = open(data)?.hosts()?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &hosts)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<36}  {:<24}  {:<27}  {:<27}  {:>10}  {:<9} STATUS",
        "HOST ID", "HOSTNAME", "ENROLLED", "LAST SEEN", "RECORDINGS", "APPROVAL"
    )?;
    for h in hosts {
        writeln!(
            out,
            "{:<36}  {:<24}  {:<27}  {:<27}  {:>10}  {:<9} {}",
            h.id,
            h.hostname,
            rfc3339(h.enrolled_at),
            h.last_seen.map(rfc3339).unwrap_or_else(|| "-".into()),
            h.recordings,
            h.state,
            if h.revoked_at.is_some() {
                "revoked"
            } else {
                "active"
            }
        )?;
    }
    Ok(())
}

fn host_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id.trim()).with_context(|| format!("{id:?} is not a host id"))
}

/// Approves (or rejects) an enrolled host.
pub fn decide_host(data: &Path, id: &str, approve: bool) -> Result<()> {
    let id = host_id(id)?;
    if !open(data)?.decide_host(id, approve, "admin command")? {
        bail!(
            "no host {id}{}",
            if approve {
                " that can be approved (unknown, or revoked)"
            } else {
                " that can be rejected (unknown, or already approved: revoke it instead)"
            }
        );
    }
    if approve {
        eprintln!("host {id} approved: its sessions are visible");
    } else {
        eprintln!("host {id} rejected: its credential is refused, its sessions stay in quarantine");
    }
    Ok(())
}

/// Approves a username, or every user seen on a host.
pub fn approve_user(data: &Path, name: Option<&str>, host: Option<&str>) -> Result<()> {
    let store = open(data)?;
    match (name, host) {
        (Some(name), None) => {
            if !store.approve_user(name, true, "admin command")? {
                bail!("no user {name:?} has been seen on an enrolled host");
            }
            eprintln!("user {name} approved");
        }
        (None, Some(host)) => {
            let n = store.approve_host_users(host_id(host)?, "admin command")?;
            eprintln!("{n} users of host {host} approved");
        }
        _ => bail!("give a username or --host HOST_ID"),
    }
    Ok(())
}

pub fn revoke_host(data: &Path, id: &str) -> Result<()> {
    let id = host_id(id)?;
    if !open(data)?.revoke_host(id, now_us())? {
        bail!("no host {id}");
    }
    eprintln!("host {id} revoked: its uploads are refused from now on");
    Ok(())
}

pub fn recordings(data: &Path, json: bool) -> Result<()> {
    let recs = open(data)?.recordings()?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &recs)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<36}  {:<20}  {:<12}  {:<27}  {:>7}  {:>12}  {:<8}  COMMAND",
        "ID", "HOST", "USER", "STARTED", "CHUNKS", "STORED", "COMPLETE"
    )?;
    for r in recs {
        let chunks: u64 = r.streams.values().map(|s| s.chunks).sum();
        let stored: u64 = r.streams.values().map(|s| s.stored_bytes).sum();
        writeln!(
            out,
            "{:<36}  {:<20}  {:<12}  {:<27}  {:>7}  {:>12}  {:<8}  {}",
            r.id,
            r.hostname,
            r.user,
            rfc3339(r.started_at),
            chunks,
            stored,
            if r.complete { "yes" } else { "no" },
            r.command.join(" ")
        )?;
    }
    Ok(())
}

/// Writes the platform's copy of a recording (verified chunk by chunk) to stdout.
pub fn export(data: &Path, id: &str, format: Format) -> Result<()> {
    let store = open(data)?;
    let row = store.recording(id)?;
    let rid = row.meta.id;
    let timeline = Timeline::build(row, |stream| {
        store
            .chunks(rid, stream)
            .map_err(|e| ExportError::Io(std::io::Error::other(e.to_string())))
    })
    .with_context(|| format!("recording {rid}"))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        Format::Asciicast => write_asciicast(&timeline, &mut out)?,
        Format::Text => out.write_all(transcript(&timeline).as_bytes())?,
    }
    out.flush()?;
    Ok(())
}

/// Replaces the platform's rules with a JSON array of rules; the version goes up by one.
pub fn policy_set(data: &Path, file: &Path) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))?;
    let mut de = serde_json::Deserializer::from_str(&text);
    let mut rules: Vec<Rule> = serde_path_to_error::deserialize(&mut de)
        .with_context(|| format!("{}: not a JSON array of rules", file.display()))?;
    let mut ids = HashSet::new();
    for (i, rule) in rules.iter_mut().enumerate() {
        if let Err((field, why)) = rule.validate() {
            bail!(
                "{}: rule {i} ({}): {field} {why}",
                file.display(),
                rule.name
            );
        }
        // The platform names every rule, so that decisions on hosts can say which one matched.
        let id = rule
            .id
            .get_or_insert_with(|| Uuid::now_v7().to_string())
            .clone();
        if !ids.insert(id.clone()) {
            bail!("{}: rule id {id:?} appears twice", file.display());
        }
    }
    let version = open(data)?.set_policy(&rules)?;
    eprintln!("policy version {version}: {} rules", rules.len());
    Ok(())
}
