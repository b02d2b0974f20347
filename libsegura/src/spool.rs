//! The local spool: one SQLite database (WAL mode) holding logins, recordings, their chunks and
//! audit events until the platform has acknowledged them.
//!
//! - Every chunk is committed in its own short transaction: a crash loses at most what the
//!   recorder had not yet flushed (under a second).
//! - The directory is created 0700 and the files 0600 (0770/0660 with a `segura` group).
//! - A size quota: appending past it fails with [`SpoolError::QuotaExceeded`].
//! - A file that is not a database, or a corrupt one, is moved aside (never overwritten) and a
//!   fresh spool is created; [`Spool::recovered`] says so, so callers can tell the user.
//! - The schema is versioned (`PRAGMA user_version`) and migrated forward; a spool written by a
//!   newer segura is refused rather than damaged.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, Row};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::chunk::{SealedChunk, Stream};

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("spool {path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("spool {path} is full: {used} bytes used, quota {max} bytes (spool.max_bytes); recording stopped")]
    QuotaExceeded { path: PathBuf, used: u64, max: u64 },
    #[error("spool {path} has schema version {found}, newer than this segura understands ({SCHEMA_VERSION}); refusing to touch it (upgrade segura)")]
    TooNew { path: PathBuf, found: i64 },
    #[error("no recording matches {0:?}")]
    NotFound(String),
    #[error("{0:?} matches several recordings; give more of the id")]
    Ambiguous(String),
    #[error("spool {path}: recording {id}: {detail}")]
    BadRow {
        path: PathBuf,
        id: String,
        detail: String,
    },
}

/// How to open a spool.
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    /// Quota on the database's size in bytes.
    pub max_bytes: u64,
    /// Group that may use the spool (0770 directory, 0660 files); `None`: owner only.
    pub group: Option<u32>,
    /// User that owns what this process creates (when it runs as root), e.g. `segura`, so that
    /// the setuid recorder can write the spool the PAM module created.
    pub owner: Option<u32>,
    /// How long to wait for another writer's lock.
    pub busy_timeout: Duration,
    /// Fold the WAL into the database when this connection is the last to close (the default).
    /// Short-lived connections on a login's critical path (the PAM module) turn it off and call
    /// [`Spool::fold_wal_if_over`] instead: a checkpoint costs two fsyncs, while the next
    /// opener's recovery reads the whole WAL, so the WAL is kept short but folded in only every
    /// few logins.
    pub checkpoint_on_close: bool,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            max_bytes: 2 << 30,
            group: None,
            owner: None,
            busy_timeout: Duration::from_secs(5),
            checkpoint_on_close: true,
        }
    }
}

impl SpoolOptions {
    /// Options from the `[spool]` configuration (resolving the group name).
    pub fn from_config(c: &crate::config::SpoolConfig) -> Result<SpoolOptions, String> {
        let group = match &c.group {
            None => None,
            Some(name) => match crate::identity::group_gid(name) {
                Ok(Some(gid)) => Some(gid),
                Ok(None) => return Err(format!("spool.group: no such group {name:?}")),
                Err(e) => return Err(format!("spool.group: {e}")),
            },
        };
        let owner = match &c.owner {
            None => None,
            Some(name) => match crate::identity::user_by_name(name) {
                Ok(u) => Some(u.uid),
                Err(e) => return Err(format!("spool.owner: {e}")),
            },
        };
        Ok(SpoolOptions {
            max_bytes: c.max_bytes,
            group,
            owner,
            busy_timeout: Duration::from_millis(u64::from(c.busy_timeout_ms)),
            checkpoint_on_close: true,
        })
    }
}

/// A corrupt spool that was moved aside when opening.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub moved_to: PathBuf,
    pub reason: String,
}

/// What kind of thing a recording is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingKind {
    /// A login shell.
    Session,
    /// A command (`segura rec -- CMD`, `ssh host CMD`).
    Command,
    /// A run of a program under a binary-run rule.
    Binary,
}

impl RecordingKind {
    fn as_str(self) -> &'static str {
        match self {
            RecordingKind::Session => "session",
            RecordingKind::Command => "command",
            RecordingKind::Binary => "binary",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "session" => RecordingKind::Session,
            "command" => RecordingKind::Command,
            "binary" => RecordingKind::Binary,
            _ => return None,
        })
    }
}

/// How the recorder was connected to the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Pty,
    Pipe,
}

/// What is known of a recording when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingMeta {
    pub id: Uuid,
    pub login_id: Option<Uuid>,
    pub kind: RecordingKind,
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub group: String,
    pub host: String,
    pub service: Option<String>,
    pub tty: Option<String>,
    pub rhost: Option<String>,
    pub command: Vec<String>,
    pub cwd: Option<String>,
    pub term: Option<String>,
    pub mode: Mode,
    pub cols: u16,
    pub rows: u16,
    pub rule: Option<String>,
    /// Microseconds since the epoch.
    pub started_at: i64,
    pub recorder_pid: u32,
}

impl RecordingMeta {
    /// A new recording of `command`, run by `user` from this process's terminal (if any) and
    /// directory. Callers add the login, service, remote host and rule; the recorder fills in
    /// the mode, size, start time and its pid.
    pub fn here(
        kind: RecordingKind,
        user: &crate::identity::UserInfo,
        host: String,
        command: Vec<String>,
    ) -> RecordingMeta {
        RecordingMeta {
            id: Uuid::now_v7(),
            login_id: None,
            kind,
            user: user.name.clone(),
            uid: user.uid,
            gid: user.gid,
            group: user.group.clone(),
            host,
            service: None,
            tty: nix::unistd::ttyname(crate::record::sys::std_fd(0))
                .ok()
                .map(|p| p.display().to_string()),
            rhost: None,
            command,
            cwd: std::env::current_dir()
                .ok()
                .map(|p| p.display().to_string()),
            term: std::env::var("TERM").ok(),
            mode: Mode::Pty,
            cols: 80,
            rows: 24,
            rule: None,
            started_at: 0,
            recorder_pid: 0,
        }
    }
}

/// How a recording ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingEnd {
    pub ended_at: i64,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    /// Set when recording stopped before the session did (e.g. the quota).
    pub truncated: Option<String>,
}

/// The state of a recording as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingState {
    /// Its recorder is running.
    Recording,
    /// Ended normally.
    Ended,
    /// Ended, but recording had stopped early (see the note).
    Truncated,
    /// Its recorder died without ending it (killed, crashed, power loss); committed chunks remain.
    Interrupted,
}

impl RecordingState {
    /// The state's name, as listed and as the platform is told it.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Recording => "recording",
            RecordingState::Ended => "ended",
            RecordingState::Truncated => "truncated",
            RecordingState::Interrupted => "interrupted",
        }
    }
}

/// A recording as listed by `segura ls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingRow {
    #[serde(flatten)]
    pub meta: RecordingMeta,
    pub ended_at: Option<i64>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub state: RecordingState,
    pub note: Option<String>,
    pub chunks: u64,
    pub chunks_pending_upload: u64,
    pub bytes_pending_upload: u64,
}

/// Spool-wide figures for `segura status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolStatus {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub max_bytes: u64,
    pub recordings: u64,
    pub recordings_pending_upload: u64,
    pub chunks_pending_upload: u64,
    pub bytes_pending_upload: u64,
    /// Microseconds since the epoch when the oldest pending recording started.
    pub oldest_pending_started_at: Option<i64>,
    pub audit_events_pending_upload: u64,
}

/// An audit event (a binary run, a file transfer, a login decision).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: Uuid,
    pub at: i64,
    pub kind: String,
    pub user: String,
    pub host: String,
    pub body: serde_json::Value,
}

/// A PAM login (session) that pam_segura armed for recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginMeta {
    pub id: Uuid,
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub group: String,
    pub host: String,
    pub service: Option<String>,
    pub tty: Option<String>,
    pub rhost: Option<String>,
    pub ruser: Option<String>,
    /// The rule that asked for recording.
    pub rule: Option<String>,
    /// Microseconds since the epoch.
    pub opened_at: i64,
}

/// The state of a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoginState {
    /// Armed at login; no recorder has attached yet (within the grace period).
    Armed,
    /// A recorder attached; the login is open.
    Active,
    /// Closed after being recorded.
    Ended,
    /// No recorder attached within the grace period (or before the login closed): the session
    /// ran unrecorded. Evasion is visible here.
    Unrecorded,
}

impl LoginState {
    /// The state's name, as listed and as the platform is told it.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginState::Armed => "armed",
            LoginState::Active => "active",
            LoginState::Ended => "ended",
            LoginState::Unrecorded => "unrecorded",
        }
    }
}

/// How long a recorder has to attach to an armed login before it counts as unrecorded.
pub const ATTACH_GRACE_US: i64 = 10_000_000;

/// A login as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRow {
    #[serde(flatten)]
    pub meta: LoginMeta,
    pub state: LoginState,
    pub attached_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub recordings: u64,
}

/// An open spool.
pub struct Spool {
    conn: Connection,
    path: PathBuf,
    opts: SpoolOptions,
    recovered: Option<Recovered>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("path", &self.path).finish()
    }
}

const SCHEMA_V1: &str = "
CREATE TABLE logins (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, group_name TEXT NOT NULL,
    host TEXT NOT NULL, service TEXT, tty TEXT, rhost TEXT, ruser TEXT, rule TEXT,
    state TEXT NOT NULL,
    opened_at INTEGER NOT NULL, attached_at INTEGER, ended_at INTEGER,
    uploaded_state TEXT
) WITHOUT ROWID;
CREATE TABLE recordings (
    num INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    login_id TEXT,
    kind TEXT NOT NULL,
    user TEXT NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, group_name TEXT NOT NULL,
    host TEXT NOT NULL, service TEXT, tty TEXT, rhost TEXT,
    command TEXT NOT NULL, cwd TEXT, term TEXT, mode TEXT NOT NULL,
    cols INTEGER NOT NULL, rows INTEGER NOT NULL, rule TEXT,
    started_at INTEGER NOT NULL, ended_at INTEGER,
    exit_code INTEGER, exit_signal INTEGER,
    bytes_out INTEGER NOT NULL DEFAULT 0, bytes_in INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL, note TEXT,
    recorder_pid INTEGER NOT NULL, recorder_start INTEGER,
    uploaded_state TEXT,
    quarantine TEXT
);
-- Small columns first, the blob last: SQLite reads a row's columns in order, and the blob
-- spills into overflow pages. The key is (rec << 34) | (stream << 32) | seq: unique per
-- (recording, stream, seq) and in that order, with no separate index to store.
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    rec INTEGER NOT NULL REFERENCES recordings(num),
    stream INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    first_us INTEGER NOT NULL, last_us INTEGER NOT NULL,
    raw_len INTEGER NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0,
    hash BLOB NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    body TEXT NOT NULL,
    uploaded_at INTEGER
) WITHOUT ROWID;
CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
";

/// The schema version of the spool at `path`, read without changing anything (no migration, no
/// files created); `None` when there is no spool there. Package scripts use it to refuse a
/// downgrade to a segura that would not understand the spool.
pub fn schema_version_of(path: &Path) -> Result<Option<i64>, SpoolError> {
    if !path.exists() {
        return Ok(None);
    }
    let sql = |source| SpoolError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map(Some)
        .map_err(sql)
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

impl Spool {
    /// Opens (creating if needed) the spool at `path`.
    pub fn open(path: &Path, opts: SpoolOptions) -> Result<Spool, SpoolError> {
        match Spool::open_once(path, &opts) {
            Err(SpoolError::Sqlite { source, .. }) if is_corruption(&source) => {
                let moved_to = move_aside(path)?;
                let mut spool = Spool::open_once(path, &opts)?;
                spool.recovered = Some(Recovered {
                    moved_to,
                    reason: source.to_string(),
                });
                Ok(spool)
            }
            other => other,
        }
    }

    fn open_once(path: &Path, opts: &SpoolOptions) -> Result<Spool, SpoolError> {
        let io = |action: &'static str| {
            move |source| SpoolError::Io {
                path: path.to_path_buf(),
                action,
                source,
            }
        };
        let (dir_mode, file_mode) = if opts.group.is_some() {
            (0o770, 0o660)
        } else {
            (0o700, 0o600)
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(dir_mode)
                    .create(dir)
                    .map_err(io("creating its directory"))?;
                set_owner(dir, opts, dir_mode).map_err(io("setting its directory's owner"))?;
            }
        }
        // Create the file ourselves so its mode is right from the first byte; SQLite gives the
        // -wal and -shm files the same mode and owner.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(file_mode)
            .open(path)
        {
            Ok(_) => set_owner(path, opts, file_mode).map_err(io("setting its owner"))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("creating it")(e)),
        }
        let sql = |source| SpoolError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(opts.busy_timeout).map_err(sql)?;
        if !opts.checkpoint_on_close {
            conn.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            )
            .map_err(sql)?;
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(sql)?;
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(sql(rusqlite::Error::InvalidQuery));
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(sql)?;
        let spool = Spool {
            conn,
            path: path.to_path_buf(),
            opts: opts.clone(),
            recovered: None,
        };
        spool.migrate()?;
        Ok(spool)
    }

    fn migrate(&self) -> Result<(), SpoolError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        if version > SCHEMA_VERSION {
            return Err(SpoolError::TooNew {
                path: self.path.clone(),
                found: version,
            });
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = self.conn.unchecked_transaction().map_err(|e| self.sql(e))?;
        // Re-read inside the write transaction: another process may have migrated meanwhile.
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        if version < 1 {
            tx.execute_batch(SCHEMA_V1).map_err(|e| self.sql(e))?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            .map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))
    }

    fn sql(&self, source: rusqlite::Error) -> SpoolError {
        SpoolError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Set when the spool found at open was corrupt and was moved aside.
    pub fn recovered(&self) -> Option<&Recovered> {
        self.recovered.as_ref()
    }

    /// Bytes the database uses (pages in use times page size).
    pub fn size_bytes(&self) -> Result<u64, SpoolError> {
        let q = |p: &str| -> Result<i64, SpoolError> {
            self.conn
                .query_row(p, [], |r| r.get(0))
                .map_err(|e| self.sql(e))
        };
        let used = q("PRAGMA page_count")? - q("PRAGMA freelist_count")?;
        Ok(u64::try_from(used * q("PRAGMA page_size")?).unwrap_or(0))
    }

    /// Lets SQLite read through a memory map of up to `bytes` (fewer system calls when a
    /// large backlog is read for upload).
    pub fn use_mmap(&self, bytes: u64) {
        let _ = self
            .conn
            .query_row(&format!("PRAGMA mmap_size = {bytes}"), [], |_| Ok(()));
    }

    /// Folds the WAL into the database and truncates it when it is larger than `bytes`
    /// (best effort: readers may keep it from completing; it is tried again next time).
    pub fn fold_wal_if_over(&self, bytes: u64) {
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > bytes) {
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }

    /// Registers a login armed for recording.
    pub fn create_login(&self, m: &LoginMeta) -> Result<(), SpoolError> {
        self.conn
            .execute(
                "INSERT INTO logins (id, user, uid, gid, group_name, host, service, tty, rhost,
                    ruser, rule, state, opened_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'armed', ?12)",
                params![
                    m.id.to_string(),
                    m.user,
                    m.uid,
                    m.gid,
                    m.group,
                    m.host,
                    m.service,
                    m.tty,
                    m.rhost,
                    m.ruser,
                    m.rule,
                    m.opened_at
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// A recorder attaches to a login: only a login of this `uid` that has not ended.
    /// Returns the login, or `None` when there is no such open login.
    pub fn attach_login(&self, id: Uuid, uid: u32) -> Result<Option<LoginRow>, SpoolError> {
        let n = self
            .conn
            .execute(
                "UPDATE logins SET state = 'active', attached_at = coalesce(attached_at, ?3)
                 WHERE id = ?1 AND uid = ?2 AND state IN ('armed', 'active')",
                params![id.to_string(), uid, crate::time::now_us()],
            )
            .map_err(|e| self.sql(e))?;
        if n == 0 {
            return Ok(None);
        }
        self.login(id)
    }

    /// Closes a login: `ended` if a recorder attached, `unrecorded` otherwise.
    pub fn end_login(&self, id: Uuid) -> Result<(), SpoolError> {
        self.conn
            .execute(
                "UPDATE logins SET ended_at = ?2,
                    state = CASE WHEN attached_at IS NULL THEN 'unrecorded' ELSE 'ended' END
                 WHERE id = ?1 AND ended_at IS NULL",
                params![id.to_string(), crate::time::now_us()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// One login.
    pub fn login(&self, id: Uuid) -> Result<Option<LoginRow>, SpoolError> {
        Ok(self
            .query_logins("WHERE l.id = ?1", params![id.to_string()])?
            .pop())
    }

    /// Logins, newest first; only those of `uid` when given.
    pub fn logins(&self, uid: Option<u32>) -> Result<Vec<LoginRow>, SpoolError> {
        self.query_logins(
            "WHERE (?1 IS NULL OR l.uid = ?1) ORDER BY l.opened_at DESC",
            params![uid],
        )
    }

    fn query_logins(
        &self,
        tail: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<LoginRow>, SpoolError> {
        let sql = format!(
            "SELECT l.id, l.user, l.uid, l.gid, l.group_name, l.host, l.service, l.tty, l.rhost,
                l.ruser, l.rule, l.state, l.opened_at, l.attached_at, l.ended_at,
                (SELECT count(*) FROM recordings r WHERE r.login_id = l.id)
             FROM logins l {tail}"
        );
        let now = crate::time::now_us();
        let mut st = self.conn.prepare(&sql).map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(args, |r| {
                let id: String = r.get(0)?;
                let state: String = r.get(11)?;
                let opened_at: i64 = r.get(12)?;
                let state = match state.as_str() {
                    "armed" if now - opened_at > ATTACH_GRACE_US => LoginState::Unrecorded,
                    "armed" => LoginState::Armed,
                    "active" => LoginState::Active,
                    "ended" => LoginState::Ended,
                    _ => LoginState::Unrecorded,
                };
                Ok(LoginRow {
                    meta: LoginMeta {
                        id: Uuid::parse_str(&id).unwrap_or_default(),
                        user: r.get(1)?,
                        uid: r.get(2)?,
                        gid: r.get(3)?,
                        group: r.get(4)?,
                        host: r.get(5)?,
                        service: r.get(6)?,
                        tty: r.get(7)?,
                        rhost: r.get(8)?,
                        ruser: r.get(9)?,
                        rule: r.get(10)?,
                        opened_at,
                    },
                    state,
                    attached_at: r.get(13)?,
                    ended_at: r.get(14)?,
                    recordings: r.get::<_, i64>(15)? as u64,
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Registers a new recording (state `recording`).
    pub fn begin_recording(&self, m: &RecordingMeta) -> Result<(), SpoolError> {
        let command = serde_json::to_string(&m.command).unwrap_or_else(|_| "[]".into());
        let start = proc_start_time(m.recorder_pid);
        self.conn
            .execute(
                "INSERT INTO recordings (id, login_id, kind, user, uid, gid, group_name, host,
                    service, tty, rhost, command, cwd, term, mode, cols, rows, rule, started_at,
                    state, recorder_pid, recorder_start)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19, 'recording', ?20, ?21)",
                params![
                    m.id.to_string(),
                    m.login_id.map(|l| l.to_string()),
                    m.kind.as_str(),
                    m.user,
                    m.uid,
                    m.gid,
                    m.group,
                    m.host,
                    m.service,
                    m.tty,
                    m.rhost,
                    command,
                    m.cwd,
                    m.term,
                    match m.mode {
                        Mode::Pty => "pty",
                        Mode::Pipe => "pipe",
                    },
                    m.cols,
                    m.rows,
                    m.rule,
                    m.started_at,
                    m.recorder_pid,
                    start.map(|s| s as i64),
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Stores one chunk in its own transaction, enforcing the quota.
    pub fn append_chunk(&self, c: &SealedChunk) -> Result<(), SpoolError> {
        if c.seq >= 1 << 32 {
            return Err(SpoolError::BadRow {
                path: self.path.clone(),
                id: c.recording.to_string(),
                detail: "more than 2^32 chunks in one stream".into(),
            });
        }
        let used = self.size_bytes()?;
        // Row and page overhead is small next to a chunk; count the blob and hash.
        if used + c.blob.len() as u64 + 64 > self.opts.max_bytes {
            return Err(SpoolError::QuotaExceeded {
                path: self.path.clone(),
                used,
                max: self.opts.max_bytes,
            });
        }
        let id = c.recording.to_string();
        let tx = self.conn.unchecked_transaction().map_err(|e| self.sql(e))?;
        let num: i64 = tx
            .prepare_cached("SELECT num FROM recordings WHERE id = ?1")
            .and_then(|mut st| st.query_row([&id], |r| r.get(0)))
            .map_err(|e| self.sql(e))?;
        tx.prepare_cached(
            "INSERT INTO chunks (id, rec, stream, seq, first_us, last_us, raw_len, hash, data)
             VALUES ((?1 << 34) | (?2 << 32) | ?3, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut st| {
            st.execute(params![
                num,
                c.stream as u8,
                c.seq as i64,
                c.first_us as i64,
                c.last_us as i64,
                c.raw_len as i64,
                &c.hash[..],
                &c.blob
            ])
        })
        .map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))
    }

    /// Marks a recording ended.
    pub fn end_recording(&self, id: Uuid, end: &RecordingEnd) -> Result<(), SpoolError> {
        let state = if end.truncated.is_some() {
            "truncated"
        } else {
            "ended"
        };
        self.conn
            .execute(
                "UPDATE recordings SET ended_at = ?1, exit_code = ?2, exit_signal = ?3, state = ?4,
                    note = ?5,
                    bytes_out = (SELECT coalesce(sum(raw_len), 0) FROM chunks
                        WHERE id >= num << 34 AND id < (num + 1) << 34 AND stream IN (0, 3)),
                    bytes_in = (SELECT coalesce(sum(raw_len), 0) FROM chunks
                        WHERE id >= num << 34 AND id < (num + 1) << 34 AND stream = 1)
                 WHERE id = ?6",
                params![
                    end.ended_at,
                    end.exit_code,
                    end.exit_signal,
                    state,
                    end.truncated,
                    id.to_string()
                ],
            )
            .map_err(|e| self.sql(e))?;
        // Keep the WAL small once a recording is done (best effort: readers may hold it).
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        Ok(())
    }

    /// All recordings, newest first; only those of `uid` when given.
    pub fn recordings(&self, uid: Option<u32>) -> Result<Vec<RecordingRow>, SpoolError> {
        self.query_recordings(
            "WHERE (?1 IS NULL OR r.uid = ?1) ORDER BY r.started_at DESC, r.id DESC",
            params![uid],
        )
    }

    /// The recording whose id is `id` or starts with it.
    pub fn recording(&self, id: &str) -> Result<RecordingRow, SpoolError> {
        let prefix = id.trim().to_ascii_lowercase();
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(SpoolError::NotFound(id.to_string()));
        }
        let mut rows = self.query_recordings(
            "WHERE r.id >= ?1 AND r.id < ?1 || 'g' ORDER BY r.id LIMIT 2",
            params![prefix],
        )?;
        match rows.len() {
            0 => Err(SpoolError::NotFound(id.to_string())),
            1 => Ok(rows.remove(0)),
            _ => Err(SpoolError::Ambiguous(id.to_string())),
        }
    }

    fn query_recordings(
        &self,
        tail: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<RecordingRow>, SpoolError> {
        let sql = format!(
            "SELECT r.id, r.login_id, r.kind, r.user, r.uid, r.gid, r.group_name, r.host,
                r.service, r.tty, r.rhost, r.command, r.cwd, r.term, r.mode, r.cols, r.rows,
                r.rule, r.started_at, r.recorder_pid, r.recorder_start, r.ended_at, r.exit_code,
                r.exit_signal,
                CASE WHEN r.ended_at IS NULL THEN (SELECT coalesce(sum(raw_len), 0) FROM chunks c
                    WHERE c.id >= r.num << 34 AND c.id < (r.num + 1) << 34 AND c.stream IN (0, 3)) ELSE r.bytes_out END,
                CASE WHEN r.ended_at IS NULL THEN (SELECT coalesce(sum(raw_len), 0) FROM chunks c
                    WHERE c.id >= r.num << 34 AND c.id < (r.num + 1) << 34 AND c.stream = 1) ELSE r.bytes_in END,
                r.state, r.note,
                (SELECT count(*) FROM chunks c WHERE c.id >= r.num << 34 AND c.id < (r.num + 1) << 34),
                (SELECT count(*) FROM chunks c WHERE c.id >= r.num << 34 AND c.id < (r.num + 1) << 34 AND c.acked = 0),
                (SELECT coalesce(sum(length(c.data)), 0) FROM chunks c
                    WHERE c.id >= r.num << 34 AND c.id < (r.num + 1) << 34 AND c.acked = 0)
             FROM recordings r {tail}"
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(args, |row| Ok(read_row(row)))
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let row = row.map_err(|e| self.sql(e))?;
            out.push(row.map_err(|(id, detail)| SpoolError::BadRow {
                path: self.path.clone(),
                id,
                detail,
            })?);
        }
        Ok(out)
    }

    /// The chunks of one stream of a recording, in order.
    pub fn chunks(&self, id: Uuid, stream: Stream) -> Result<Vec<SealedChunk>, SpoolError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT seq, first_us, last_us, raw_len, hash, data FROM chunks
                 WHERE id >= ((SELECT num FROM recordings WHERE id = ?1) << 34) + (?2 << 32)
                   AND id < ((SELECT num FROM recordings WHERE id = ?1) << 34) + ((?2 + 1) << 32)
                 ORDER BY seq",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![id.to_string(), stream as u8], |r| {
                let hash: Vec<u8> = r.get(4)?;
                Ok(SealedChunk {
                    recording: id,
                    stream,
                    seq: r.get::<_, i64>(0)? as u64,
                    first_us: r.get::<_, i64>(1)? as u64,
                    last_us: r.get::<_, i64>(2)? as u64,
                    raw_len: r.get::<_, i64>(3)? as u64,
                    hash: hash.try_into().unwrap_or([0; 32]),
                    blob: r.get(5)?,
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Records an audit event.
    pub fn add_audit_event(&self, ev: &AuditEvent) -> Result<(), SpoolError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO audit_events (id, at, kind, user, host, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    ev.id.to_string(),
                    ev.at,
                    ev.kind,
                    ev.user,
                    ev.host,
                    ev.body.to_string()
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Audit events, oldest first.
    pub fn audit_events(&self) -> Result<Vec<AuditEvent>, SpoolError> {
        let mut st = self
            .conn
            .prepare("SELECT id, at, kind, user, host, body FROM audit_events ORDER BY at, id")
            .map_err(|e| self.sql(e))?;
        let rows = st.query_map([], read_audit).map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Spool-wide figures.
    pub fn status(&self) -> Result<SpoolStatus, SpoolError> {
        let (recordings, pending_recs, chunks, bytes, oldest): (i64, i64, i64, i64, Option<i64>) =
            self.conn
                .query_row(
                    "SELECT (SELECT count(*) FROM recordings),
                        (SELECT count(DISTINCT rec) FROM chunks WHERE acked = 0),
                        (SELECT count(*) FROM chunks WHERE acked = 0),
                        (SELECT coalesce(sum(length(data)), 0) FROM chunks WHERE acked = 0),
                        (SELECT min(r.started_at) FROM recordings r
                            WHERE EXISTS (SELECT 1 FROM chunks c
                                WHERE c.id >= r.num << 34 AND c.id < (r.num + 1) << 34 AND c.acked = 0))",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .map_err(|e| self.sql(e))?;
        let audit: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM audit_events WHERE uploaded_at IS NULL",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))?;
        Ok(SpoolStatus {
            path: self.path.clone(),
            size_bytes: self.size_bytes()?,
            max_bytes: self.opts.max_bytes,
            recordings: recordings as u64,
            recordings_pending_upload: pending_recs as u64,
            chunks_pending_upload: chunks as u64,
            bytes_pending_upload: bytes as u64,
            oldest_pending_started_at: oldest,
            audit_events_pending_upload: audit as u64,
        })
    }

    // ---- upload bookkeeping (the sync agent) ----

    /// Logins whose current state the platform has not been told yet.
    pub fn logins_to_upload(&self) -> Result<Vec<LoginRow>, SpoolError> {
        let all = self.logins(None)?;
        let mut st = self
            .conn
            .prepare_cached("SELECT uploaded_state FROM logins WHERE id = ?1")
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for l in all {
            let sent: Option<String> = st
                .query_row([l.meta.id.to_string()], |r| r.get(0))
                .map_err(|e| self.sql(e))?;
            if sent.as_deref() != Some(l.state.as_str()) {
                out.push(l);
            }
        }
        Ok(out)
    }

    /// Notes that the platform holds this login in this state.
    pub fn login_uploaded(&self, id: Uuid, state: LoginState) -> Result<(), SpoolError> {
        self.conn
            .execute(
                "UPDATE logins SET uploaded_state = ?2 WHERE id = ?1",
                params![id.to_string(), state.as_str()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Recordings with something the platform does not have yet (chunks, or their latest
    /// state), not quarantined; oldest first.
    pub fn recordings_to_upload(&self) -> Result<Vec<RecordingRow>, SpoolError> {
        let rows =
            self.query_recordings("WHERE r.quarantine IS NULL ORDER BY r.started_at, r.id", [])?;
        let mut out = Vec::new();
        for r in rows {
            let sent = self.recording_uploaded_state(r.meta.id)?;
            if r.chunks_pending_upload > 0
                || r.state == RecordingState::Recording
                || sent.as_deref() != Some(r.state.as_str())
            {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Whether the platform was told this recording's current (final) state.
    pub fn recording_uploaded_state(&self, id: Uuid) -> Result<Option<String>, SpoolError> {
        self.conn
            .query_row(
                "SELECT uploaded_state FROM recordings WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))
    }

    /// Notes the state the platform holds for a recording.
    pub fn recording_uploaded(&self, id: Uuid, state: RecordingState) -> Result<(), SpoolError> {
        self.conn
            .execute(
                "UPDATE recordings SET uploaded_state = ?2 WHERE id = ?1",
                params![id.to_string(), state.as_str()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Unacknowledged chunks of a recording, in (stream, seq) order, up to `max_bytes` of blob
    /// (at least one) and `max_chunks`.
    pub fn unacked_chunks(
        &self,
        id: Uuid,
        max_bytes: usize,
        max_chunks: usize,
    ) -> Result<Vec<SealedChunk>, SpoolError> {
        self.unacked_chunks_in(id, &Stream::ALL, max_bytes, max_chunks)
    }

    /// Like [`Spool::unacked_chunks`], only of these streams.
    pub fn unacked_chunks_in(
        &self,
        id: Uuid,
        streams: &[Stream],
        max_bytes: usize,
        max_chunks: usize,
    ) -> Result<Vec<SealedChunk>, SpoolError> {
        self.unacked_chunks_after(id, streams, None, max_bytes, max_chunks)
    }

    /// Like [`Spool::unacked_chunks_in`], only chunks after `after` (stream, seq) in
    /// (stream, seq) order: for a reader that pages ahead of the acknowledgements.
    pub fn unacked_chunks_after(
        &self,
        id: Uuid,
        streams: &[Stream],
        after: Option<(Stream, u64)>,
        max_bytes: usize,
        max_chunks: usize,
    ) -> Result<Vec<SealedChunk>, SpoolError> {
        let list = streams
            .iter()
            .map(|s| (*s as u8).to_string())
            .collect::<Vec<_>>()
            .join(",");
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT stream, seq, first_us, last_us, raw_len, hash, data FROM chunks
                 WHERE id >= ((SELECT num FROM recordings WHERE id = ?1) << 34)
                   AND id < (((SELECT num FROM recordings WHERE id = ?1) + 1) << 34)
                   AND acked = 0 AND stream IN ({list})
                   AND id > ((SELECT num FROM recordings WHERE id = ?1) << 34) + ?2
                 ORDER BY id"
            ))
            .map_err(|e| self.sql(e))?;
        // The cursor as an offset inside the recording's key range; -1: from the start.
        let cursor: i64 = after.map_or(-1, |(st, seq)| ((st as i64) << 32) + seq as i64);
        let mut rows = st
            .query(params![id.to_string(), cursor])
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        let mut bytes = 0;
        while let Some(r) = rows.next().map_err(|e| self.sql(e))? {
            let blob: Vec<u8> = r.get(6).map_err(|e| self.sql(e))?;
            if !out.is_empty() && (bytes + blob.len() > max_bytes || out.len() >= max_chunks) {
                break;
            }
            bytes += blob.len();
            let hash: Vec<u8> = r.get(5).map_err(|e| self.sql(e))?;
            let stream: u8 = r.get(0).map_err(|e| self.sql(e))?;
            out.push(SealedChunk {
                recording: id,
                stream: Stream::from_u8(stream).map_err(|e| SpoolError::BadRow {
                    path: self.path.clone(),
                    id: id.to_string(),
                    detail: e.to_string(),
                })?,
                seq: r.get::<_, i64>(1).map_err(|e| self.sql(e))? as u64,
                first_us: r.get::<_, i64>(2).map_err(|e| self.sql(e))? as u64,
                last_us: r.get::<_, i64>(3).map_err(|e| self.sql(e))? as u64,
                raw_len: r.get::<_, i64>(4).map_err(|e| self.sql(e))? as u64,
                hash: hash.try_into().unwrap_or([0; 32]),
                blob,
            });
        }
        Ok(out)
    }

    /// How many chunks of a recording await acknowledgement.
    pub fn unacked_count(&self, id: Uuid) -> Result<u64, SpoolError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM chunks
                 WHERE id >= ((SELECT num FROM recordings WHERE id = ?1) << 34)
                   AND id < (((SELECT num FROM recordings WHERE id = ?1) + 1) << 34)
                   AND acked = 0",
                [id.to_string()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    /// Marks chunks acknowledged: for each (stream, n), seqs below n.
    pub fn mark_acked(&self, id: Uuid, acks: &[(Stream, u64)]) -> Result<(), SpoolError> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.sql(e))?;
        for (stream, n) in acks {
            tx.execute(
                "UPDATE chunks SET acked = 1
                 WHERE id >= ((SELECT num FROM recordings WHERE id = ?1) << 34) + (?2 << 32)
                   AND id < ((SELECT num FROM recordings WHERE id = ?1) << 34) + (?2 << 32) + ?3
                   AND acked = 0",
                params![id.to_string(), *stream as u8, *n as i64],
            )
            .map_err(|e| self.sql(e))?;
        }
        tx.commit().map_err(|e| self.sql(e))
    }

    /// Sets a recording aside after a permanent refusal, with the reason; the rest of the
    /// queue goes on.
    pub fn quarantine(&self, id: Uuid, reason: &str) -> Result<(), SpoolError> {
        self.conn
            .execute(
                "UPDATE recordings SET quarantine = ?2 WHERE id = ?1",
                params![id.to_string(), reason],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Quarantined recordings and why.
    pub fn quarantined(&self) -> Result<Vec<(Uuid, String)>, SpoolError> {
        let mut st = self
            .conn
            .prepare("SELECT id, quarantine FROM recordings WHERE quarantine IS NOT NULL")
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([], |r| {
                let id: String = r.get(0)?;
                Ok((Uuid::parse_str(&id).unwrap_or_default(), r.get(1)?))
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Puts quarantined recordings back in the queue.
    pub fn release_quarantine(&self) -> Result<usize, SpoolError> {
        self.conn
            .execute(
                "UPDATE recordings SET quarantine = NULL WHERE quarantine IS NOT NULL",
                [],
            )
            .map_err(|e| self.sql(e))
    }

    /// Deletes the chunks of recordings that ended before `before_us` and that the platform
    /// holds completely. Returns how many chunks went.
    pub fn purge_uploaded(&self, before_us: i64) -> Result<usize, SpoolError> {
        self.conn
            .execute(
                "DELETE FROM chunks WHERE acked = 1 AND rec IN (
                    SELECT num FROM recordings WHERE ended_at IS NOT NULL AND ended_at < ?1
                      AND uploaded_state IN ('ended', 'truncated'))",
                [before_us],
            )
            .map_err(|e| self.sql(e))
    }

    /// Audit events not yet delivered, oldest first.
    pub fn audit_to_upload(&self, max: usize) -> Result<Vec<AuditEvent>, SpoolError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, at, kind, user, host, body FROM audit_events
                 WHERE uploaded_at IS NULL ORDER BY at, id LIMIT ?1",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([max as i64], read_audit)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Notes audit events as delivered.
    pub fn audit_uploaded(&self, ids: &[Uuid]) -> Result<(), SpoolError> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.sql(e))?;
        let now = crate::time::now_us();
        for id in ids {
            tx.execute(
                "UPDATE audit_events SET uploaded_at = ?2 WHERE id = ?1",
                params![id.to_string(), now],
            )
            .map_err(|e| self.sql(e))?;
        }
        tx.commit().map_err(|e| self.sql(e))
    }

    /// Runs SQLite's integrity check; `Ok(())` or the problems it found.
    pub fn integrity_check(&self) -> Result<Vec<String>, SpoolError> {
        let mut st = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.sql(e))?;
        let lines: Vec<String> = rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))?;
        Ok(lines.into_iter().filter(|l| l != "ok").collect())
    }
}

fn read_audit(r: &Row) -> rusqlite::Result<AuditEvent> {
    let id: String = r.get(0)?;
    let body: String = r.get(5)?;
    Ok(AuditEvent {
        id: Uuid::parse_str(&id).unwrap_or_default(),
        at: r.get(1)?,
        kind: r.get(2)?,
        user: r.get(3)?,
        host: r.get(4)?,
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    })
}

type RowResult = Result<RecordingRow, (String, String)>;

fn read_row(r: &Row) -> RowResult {
    let id: String = r.get(0).unwrap_or_default();
    let fail = |detail: String| (id.clone(), detail);
    let get_err = |e: rusqlite::Error| fail(e.to_string());
    let uuid = |s: String| Uuid::parse_str(&s).map_err(|e| fail(e.to_string()));
    let login: Option<String> = r.get(1).map_err(get_err)?;
    let kind: String = r.get(2).map_err(get_err)?;
    let command: String = r.get(11).map_err(get_err)?;
    let mode: String = r.get(14).map_err(get_err)?;
    let pid: u32 = r.get(19).map_err(get_err)?;
    let start: Option<i64> = r.get(20).map_err(get_err)?;
    let state: String = r.get(26).map_err(get_err)?;
    let state = match state.as_str() {
        "ended" => RecordingState::Ended,
        "truncated" => RecordingState::Truncated,
        "recording" if recorder_alive(pid, start) => RecordingState::Recording,
        "recording" => RecordingState::Interrupted,
        other => return Err(fail(format!("unknown state {other:?}"))),
    };
    Ok(RecordingRow {
        meta: RecordingMeta {
            id: uuid(id.clone())?,
            login_id: login.map(uuid).transpose()?,
            kind: RecordingKind::parse(&kind)
                .ok_or_else(|| fail(format!("unknown kind {kind:?}")))?,
            user: r.get(3).map_err(get_err)?,
            uid: r.get(4).map_err(get_err)?,
            gid: r.get(5).map_err(get_err)?,
            group: r.get(6).map_err(get_err)?,
            host: r.get(7).map_err(get_err)?,
            service: r.get(8).map_err(get_err)?,
            tty: r.get(9).map_err(get_err)?,
            rhost: r.get(10).map_err(get_err)?,
            command: serde_json::from_str(&command).map_err(|e| fail(e.to_string()))?,
            cwd: r.get(12).map_err(get_err)?,
            term: r.get(13).map_err(get_err)?,
            mode: if mode == "pipe" {
                Mode::Pipe
            } else {
                Mode::Pty
            },
            cols: r.get(15).map_err(get_err)?,
            rows: r.get(16).map_err(get_err)?,
            rule: r.get(17).map_err(get_err)?,
            started_at: r.get(18).map_err(get_err)?,
            recorder_pid: pid,
        },
        ended_at: r.get(21).map_err(get_err)?,
        exit_code: r.get(22).map_err(get_err)?,
        exit_signal: r.get(23).map_err(get_err)?,
        bytes_out: r.get::<_, i64>(24).map_err(get_err)? as u64,
        bytes_in: r.get::<_, i64>(25).map_err(get_err)? as u64,
        state,
        note: r.get(27).map_err(get_err)?,
        chunks: r.get::<_, i64>(28).map_err(get_err)? as u64,
        chunks_pending_upload: r.get::<_, i64>(29).map_err(get_err)? as u64,
        bytes_pending_upload: r.get::<_, i64>(30).map_err(get_err)? as u64,
    })
}

/// Is the process `pid`, started at `start` (clock ticks after boot), still running?
fn recorder_alive(pid: u32, start: Option<i64>) -> bool {
    match (proc_start_time(pid), start) {
        (Some(now), Some(then)) => now as i64 == then,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// A process's start time in clock ticks after boot (field 22 of /proc/PID/stat).
pub fn proc_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn set_owner(path: &Path, opts: &SpoolOptions, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let owner = opts.owner.filter(|_| nix::unistd::geteuid().is_root());
    if owner.is_some() || opts.group.is_some() {
        std::os::unix::fs::chown(path, owner, opts.group)?;
        // chown may clear setgid bits; set the mode again so it is exactly what was asked.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Moves a corrupt database (and its -wal and -shm) aside; returns the new name.
fn move_aside(path: &Path) -> Result<PathBuf, SpoolError> {
    let stamp = crate::time::rfc3339(crate::time::now_us()).replace([':', '.'], "");
    let mut target = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    let mut n = 1;
    while target.exists() {
        target = PathBuf::from(format!("{}.corrupt-{stamp}-{n}", path.display()));
        n += 1;
    }
    std::fs::rename(path, &target).map_err(|source| SpoolError::Io {
        path: path.to_path_buf(),
        action: "moving the corrupt spool aside",
        source,
    })?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            let _ = std::fs::rename(&side, format!("{}{suffix}", target.display()));
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{ChunkEncoder, Record};
    use std::os::unix::fs::PermissionsExt;

    fn meta(id: Uuid) -> RecordingMeta {
        RecordingMeta {
            id,
            login_id: None,
            kind: RecordingKind::Command,
            user: "alice".into(),
            uid: 1000,
            gid: 1000,
            group: "alice".into(),
            host: "h".into(),
            service: None,
            tty: None,
            rhost: None,
            command: vec!["sh".into()],
            cwd: None,
            term: None,
            mode: Mode::Pty,
            cols: 80,
            rows: 24,
            rule: None,
            started_at: 1,
            recorder_pid: std::process::id(),
        }
    }

    fn chunk(enc: &mut ChunkEncoder, data: Vec<u8>) -> SealedChunk {
        enc.seal(0, vec![Record { delay_us: 0, data }]).unwrap()
    }

    #[test]
    fn files_are_private_and_rows_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/spool.db");
        let spool = Spool::open(&path, SpoolOptions::default()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&dir.path().join("sub/spool.db-wal")), 0o600);

        let id = Uuid::now_v7();
        spool.begin_recording(&meta(id)).unwrap();
        let c0 = chunk(
            &mut ChunkEncoder::new(id, Stream::Output, 3),
            b"hello".to_vec(),
        );
        spool.append_chunk(&c0).unwrap();
        let row = spool.recording(&id.to_string()[..8]).unwrap();
        assert_eq!(row.state, RecordingState::Recording);
        assert_eq!((row.bytes_out, row.chunks), (5, 1));
        assert_eq!(spool.chunks(id, Stream::Output).unwrap(), vec![c0.clone()]);
        // The same chunk twice is refused, not duplicated.
        assert!(spool.append_chunk(&c0).is_err());
        spool
            .end_recording(
                id,
                &RecordingEnd {
                    ended_at: 2,
                    exit_code: Some(3),
                    ..Default::default()
                },
            )
            .unwrap();
        let row = spool.recording(&id.to_string()).unwrap();
        assert_eq!((row.state, row.exit_code), (RecordingState::Ended, Some(3)));
        assert!(matches!(
            spool.recording("zz"),
            Err(SpoolError::NotFound(_))
        ));
    }

    #[test]
    fn chunks_are_kept_apart_by_recording_and_stream() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(&dir.path().join("s.db"), SpoolOptions::default()).unwrap();
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        for id in &ids {
            spool.begin_recording(&meta(*id)).unwrap();
        }
        // Interleave recordings and streams, as concurrent recorders would.
        for seq in 0..3u8 {
            for (n, id) in ids.iter().enumerate() {
                for stream in Stream::ALL {
                    let mut enc = ChunkEncoder::new(*id, stream, 3);
                    let mut c = None;
                    for _ in 0..=seq {
                        c = Some(chunk(&mut enc, vec![n as u8, stream as u8, seq]));
                    }
                    spool.append_chunk(&c.unwrap()).unwrap();
                }
            }
        }
        for (n, id) in ids.iter().enumerate() {
            for stream in Stream::ALL {
                let got = spool.chunks(*id, stream).unwrap();
                assert_eq!(got.len(), 3, "recording {n} stream {stream}");
                assert!(got
                    .iter()
                    .enumerate()
                    .all(|(i, c)| c.seq == i as u64 && c.recording == *id && c.stream == stream));
            }
        }
        let rows = spool.recordings(None).unwrap();
        assert!(rows
            .iter()
            .all(|r| r.chunks == 12 && r.bytes_out == 18 && r.bytes_in == 9));
    }

    #[test]
    fn state_names_are_the_serialized_names() {
        use RecordingState::*;
        for s in [Recording, Ended, Truncated, Interrupted] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in [
            LoginState::Armed,
            LoginState::Active,
            LoginState::Ended,
            LoginState::Unrecorded,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn dead_recorder_shows_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(&dir.path().join("s.db"), SpoolOptions::default()).unwrap();
        let mut m = meta(Uuid::now_v7());
        m.recorder_pid = u32::MAX - 1;
        spool.begin_recording(&m).unwrap();
        assert_eq!(
            spool.recordings(None).unwrap()[0].state,
            RecordingState::Interrupted
        );
    }

    #[test]
    fn quota_is_enforced_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SpoolOptions {
            max_bytes: 200 * 1024,
            ..Default::default()
        };
        let spool = Spool::open(&dir.path().join("s.db"), opts).unwrap();
        let id = Uuid::now_v7();
        spool.begin_recording(&meta(id)).unwrap();
        let mut enc = ChunkEncoder::new(id, Stream::Output, 3);
        let mut stored = 0u32;
        let err = loop {
            // Data that does not repeat, so each chunk really takes room.
            let data: Vec<u8> = (0..60_000u32)
                .map(|i| ((i + 60_000 * stored).wrapping_mul(2654435761) >> 13) as u8)
                .collect();
            match spool.append_chunk(&chunk(&mut enc, data)) {
                Ok(()) => stored += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(err, SpoolError::QuotaExceeded { .. }));
        assert!(err.to_string().contains("quota"), "{err}");
        assert!(stored >= 1);
        assert!(spool.size_bytes().unwrap() <= 200 * 1024);
    }

    #[test]
    fn garbage_file_is_moved_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let garbage = b"this is not a database, but somebody's data".repeat(200);
        std::fs::write(&path, &garbage).unwrap();
        let spool = Spool::open(&path, SpoolOptions::default()).unwrap();
        let rec = spool.recovered().expect("recovery reported").clone();
        assert!(rec.reason.contains("not a database"), "{}", rec.reason);
        assert_eq!(std::fs::read(&rec.moved_to).unwrap(), garbage);
        assert!(spool.recordings(None).unwrap().is_empty());
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(Spool::open(&path, SpoolOptions::default()).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(c);
        let err = Spool::open(&path, SpoolOptions::default()).unwrap_err();
        assert!(matches!(err, SpoolError::TooNew { found: 99, .. }), "{err}");
        // Refusing left the spool as it was, and its version can still be read.
        assert_eq!(schema_version_of(&path).unwrap(), Some(99));
    }

    #[test]
    fn schema_version_is_read_without_creating_anything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        assert_eq!(schema_version_of(&path).unwrap(), None);
        assert!(!path.exists());
        drop(Spool::open(&path, SpoolOptions::default()).unwrap());
        assert_eq!(schema_version_of(&path).unwrap(), Some(SCHEMA_VERSION));
    }
}
