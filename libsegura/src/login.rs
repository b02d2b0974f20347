//! Logins armed for recording: what pam_segura does at open_session and close_session, and how
//! the recorder (`segura-shell`) finds the login it belongs to.
//!
//! At open_session the module decides from local policy only (never the network), writes a login
//! row ("armed") to the spool and a *marker* file `/run/segura/armed/UID/LOGIN_ID`, owned by root,
//! naming the login, the spool and the configuration. The shell entry point runs as the user, so
//! it trusts nothing from the user's environment: `SEGURA_SESSION` only says which of the user's
//! markers to prefer; the marker (which only root can write) says where the spool is; and the
//! login row must belong to the same uid and still be open.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use uuid::Uuid;

use crate::config::Config;
use crate::identity::{self, UserInfo};
use crate::policy::{self, Request};
use crate::spool::{LoginMeta, Spool, SpoolError, SpoolOptions};

/// Where markers live: a root-owned directory on tmpfs (gone at reboot, like the logins).
pub const MARKER_DIR: &str = "/run/segura/armed";
/// The PAM path folds the spool's WAL in once it passes this size (see
/// [`SpoolOptions::checkpoint_on_close`]).
const WAL_FOLD_BYTES: u64 = 256 * 1024;
/// The environment variable pam_segura sets for the session.
pub const ENV_SESSION: &str = "SEGURA_SESSION";

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("{0}")]
    Options(String),
    #[error("marker {path}: {source}")]
    Marker {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What PAM tells about a login.
#[derive(Debug, Clone, Default)]
pub struct LoginRequest {
    pub user: String,
    pub service: Option<String>,
    pub tty: Option<String>,
    pub rhost: Option<String>,
    pub ruser: Option<String>,
}

/// The decision at open_session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Armed {
    /// Not recorded: no rule asks for it (the reason says which rules were considered).
    No { reason: String },
    /// Armed: a login row and a marker exist.
    Yes { id: Uuid, reason: String },
}

/// Decides whether a login is recorded and, if so, arms it. `config_path` is where the
/// configuration was read from (the recorder reads the same file).
pub fn arm(
    req: &LoginRequest,
    config: &Config,
    config_path: &Path,
    busy_timeout: Duration,
) -> Result<Armed, LoginError> {
    let user: UserInfo = identity::user_by_name(&req.user)?;
    let host = identity::hostname();
    let rules = crate::policy_cache::effective_rules(config);
    let decision = policy::decide(
        &rules,
        &Request {
            user: &user,
            host: &host,
            service: req.service.as_deref(),
            binary: None,
        },
    );
    if !decision.record {
        return Ok(Armed::No {
            reason: decision.reason,
        });
    }
    let spool = open_quick(config, busy_timeout)?;
    let id = Uuid::now_v7();
    spool.create_login(&LoginMeta {
        id,
        user: user.name.clone(),
        uid: user.uid,
        gid: user.gid,
        group: user.group.clone(),
        host,
        service: req.service.clone(),
        tty: req.tty.clone(),
        rhost: req.rhost.clone(),
        ruser: req.ruser.clone(),
        rule: decision.rule.as_ref().map(|r| r.name.clone()),
        opened_at: crate::time::now_us(),
    })?;
    spool.fold_wal_if_over(WAL_FOLD_BYTES);
    write_marker(
        Path::new(MARKER_DIR),
        &Marker {
            login: id,
            uid: user.uid,
            spool: config.spool.path.clone(),
            config: config_path.to_path_buf(),
        },
    )?;
    Ok(Armed::Yes {
        id,
        reason: decision.reason,
    })
}

/// Closes an armed login: marks it ended (or unrecorded) and removes its marker.
pub fn disarm(id: Uuid, config: &Config, busy_timeout: Duration) -> Result<(), LoginError> {
    let spool = open_quick(config, busy_timeout)?;
    let login = spool.login(id)?;
    spool.end_login(id)?;
    spool.fold_wal_if_over(WAL_FOLD_BYTES);
    crate::policy_cache::nudge();
    if let Some(l) = login {
        let path = Path::new(MARKER_DIR)
            .join(l.meta.uid.to_string())
            .join(id.to_string());
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(LoginError::Marker { path, source }),
        }
    }
    Ok(())
}

/// Opens the spool for a login's critical path: bounded lock wait, no checkpoint on close.
fn open_quick(config: &Config, busy_timeout: Duration) -> Result<Spool, LoginError> {
    let mut opts = SpoolOptions::from_config(&config.spool).map_err(LoginError::Options)?;
    opts.busy_timeout = busy_timeout;
    opts.checkpoint_on_close = false;
    Ok(Spool::open(&config.spool.path, opts)?)
}

/// What a marker says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub login: Uuid,
    pub uid: u32,
    pub spool: PathBuf,
    pub config: PathBuf,
}

fn write_marker(dir: &Path, m: &Marker) -> Result<(), LoginError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LoginError::Marker { path, source }
    };
    let user_dir = dir.join(m.uid.to_string());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&user_dir)
        .map_err(err(&user_dir))?;
    let path = user_dir.join(m.login.to_string());
    let tmp = user_dir.join(format!(".{}.tmp", m.login));
    let text = format!(
        "login={}\nuid={}\nspool={}\nconfig={}\n",
        m.login,
        m.uid,
        m.spool.display(),
        m.config.display()
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(err(&tmp))?;
    f.write_all(text.as_bytes()).map_err(err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(err(&path))
}

/// Reads a marker, trusting it only if root owns it and its directories and nobody else may
/// write them.
fn read_marker(path: &Path, uid: u32) -> Option<Marker> {
    for p in [path, path.parent()?, path.parent()?.parent()?] {
        let md = std::fs::symlink_metadata(p).ok()?;
        if md.uid() != 0 || md.mode() & 0o022 != 0 || md.file_type().is_symlink() {
            return None;
        }
    }
    let text = std::fs::read_to_string(path).ok()?;
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
    };
    let m = Marker {
        login: Uuid::parse_str(field("login")?).ok()?,
        uid: field("uid")?.parse().ok()?,
        spool: PathBuf::from(field("spool")?),
        config: PathBuf::from(field("config")?),
    };
    (m.uid == uid).then_some(m)
}

/// The armed login a recorder for `uid` should attach to: the one `hint` names if it is this
/// user's, else the newest of this user's markers. Costs a failed `stat` when there is none.
pub fn find_marker(dir: &Path, uid: u32, hint: Option<&str>) -> Option<Marker> {
    let user_dir = dir.join(uid.to_string());
    if let Some(h) = hint.and_then(|h| Uuid::parse_str(h).ok()) {
        if let Some(m) = read_marker(&user_dir.join(h.to_string()), uid) {
            return Some(m);
        }
    }
    let mut newest: Option<Marker> = None;
    for e in std::fs::read_dir(&user_dir).ok()?.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        if let Some(m) = read_marker(&e.path(), uid) {
            // UUID v7 ids sort by time.
            if newest.as_ref().is_none_or(|n| m.login > n.login) {
                newest = Some(m);
            }
        }
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_by_hint_or_newest_and_only_for_their_uid() {
        if !nix::unistd::geteuid().is_root() {
            return; // markers must be root-owned; the end-to-end tests run as root
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let mk = |uid| Marker {
            login: Uuid::now_v7(),
            uid,
            spool: "/var/lib/segura/spool.db".into(),
            config: "/etc/segura/segura.toml".into(),
        };
        let (a, b, other) = (mk(1000), mk(1000), mk(1001));
        for m in [&a, &b, &other] {
            write_marker(dir.path(), m).unwrap();
        }
        assert_eq!(find_marker(dir.path(), 1000, None), Some(b.clone()));
        assert_eq!(
            find_marker(dir.path(), 1000, Some(&a.login.to_string())),
            Some(a.clone())
        );
        // Another user's login id as a hint does not attach to it.
        assert_eq!(
            find_marker(dir.path(), 1000, Some(&other.login.to_string())),
            Some(b.clone())
        );
        assert_eq!(find_marker(dir.path(), 1002, None), None);
        // A marker others may write is not trusted.
        let p = dir.path().join("1001").join(other.login.to_string());
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        assert_eq!(find_marker(dir.path(), 1001, None), None);
    }
}
