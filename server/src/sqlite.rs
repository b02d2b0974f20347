//! The embedded store: one SQLite database (WAL mode) in the data directory.
//!
//! One connection behind a mutex: SQLite serialises writers anyway, and the API calls the store
//! from `spawn_blocking`, so no async task ever waits on the lock.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use libsegura::chunk::{SealedChunk, Stream};
use libsegura::policy::Rule;
use libsegura::spool::{AuditEvent, LoginRow, RecordingRow};
use libsegura::time::now_us;
use libsegura::wire::{Acks, PolicyBundle};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::ingest::{self, ChunkTx, Head};

mod catalog;
use crate::store::{
    HostCredential, HostInfo, NewHost, Put, RecordingSummary, Role, SecretHash, Store, StoreError,
    StreamSummary,
};

/// The database file inside the data directory.
pub const DB_FILE: &str = "segura-server.db";
/// The schema version this code writes.
const SCHEMA_VERSION: i64 = 3;
/// Read connections kept open for the web UI's queries.
const READERS: usize = 4;

const SCHEMA_V1: &str = "
CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    enrolled_at INTEGER NOT NULL,
    last_seen INTEGER,
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE TABLE enroll_tokens (
    token_hash BLOB PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    host_id TEXT
) WITHOUT ROWID;
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE policy (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    rules TEXT NOT NULL,
    updated_at INTEGER
);
INSERT INTO policy (id, version, rules) VALUES (1, 0, '[]');
-- The row as the agent last PUT it is kept whole (JSON); the columns beside it are for queries.
CREATE TABLE logins (
    id TEXT PRIMARY KEY,
    host_id TEXT NOT NULL REFERENCES hosts(id),
    user TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    ended_at INTEGER,
    state TEXT NOT NULL,
    row TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE recordings (
    num INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    host_id TEXT NOT NULL REFERENCES hosts(id),
    user TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    state TEXT NOT NULL,
    row TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX recordings_by_start ON recordings(started_at);
-- Small columns first, the blob last. Each stream is held contiguously from seq 0.
CREATE TABLE chunks (
    rec INTEGER NOT NULL REFERENCES recordings(num),
    stream INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    first_us INTEGER NOT NULL,
    last_us INTEGER NOT NULL,
    raw_len INTEGER NOT NULL,
    stored_len INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    hash BLOB NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (rec, stream, seq)
);
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    host_id TEXT NOT NULL REFERENCES hosts(id),
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at INTEGER NOT NULL
) WITHOUT ROWID;
";

pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Idle read-only connections (WAL lets them read while the writer writes).
    readers: Mutex<Vec<Connection>>,
    path: String,
}

/// A read connection, given back to the pool when dropped.
struct Reader<'a> {
    conn: Option<Connection>,
    store: &'a SqliteStore,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a reader holds its connection until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let mut pool = self.store.readers.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < READERS {
                pool.push(c);
            }
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`: the directory 0700, the database 0600.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        let io = |action: &'static str, p: &Path| {
            let path = p.display().to_string();
            move |source| StoreError::Io {
                path,
                action,
                source,
            }
        };
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io("creating it", dir))?;
        } else if let Ok(m) = std::fs::metadata(dir) {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    dir = %dir.display(),
                    mode = format!("{:o}", m.permissions().mode() & 0o777),
                    "the data directory is accessible to others; 0700 is recommended"
                );
            }
        }
        let path: PathBuf = dir.join(DB_FILE);
        // Create the file ourselves so its mode is right from the first byte; SQLite gives the
        // -wal and -shm files the same mode.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("creating the database", &path)(e)),
        }
        let shown = path.display().to_string();
        let sql = |source| StoreError::Sqlite {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(sql)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt {
                what: shown,
                detail: format!("cannot switch to WAL mode (journal mode is {mode})"),
            });
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(sql)?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            path: shown,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Moves WAL checkpoints off the request path: the request connection no longer
    /// checkpoints (SQLite's default makes whichever commit crosses 4 MiB of WAL copy it into
    /// the database while holding the store's lock); a thread with its own connection does it
    /// every half second instead, and forces a restart of the WAL if it grows past 256 MiB.
    pub fn start_checkpointer(&self) -> Result<(), StoreError> {
        let path = self.path.clone();
        self.conn()
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(self.sql())?;
        let conn = Connection::open(&path).map_err(self.sql())?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(self.sql())?;
        let wal = format!("{path}-wal");
        std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(500));
                let big = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 256 << 20);
                let mode = if big { "RESTART" } else { "PASSIVE" };
                if let Err(e) =
                    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
                {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            })
            .map_err(|e| StoreError::Io {
                path: path.clone(),
                action: "starting the checkpoint thread",
                source: e,
            })?;
        Ok(())
    }

    /// Inserts or updates a login or recording row, idempotent on its id: the first PUT binds
    /// it to `host`; later ones may change only its state and end (`same_meta` compares the
    /// stored row's identity fields with the new one's).
    fn put_row(
        &self,
        host: Uuid,
        u: &Upsert,
        same_meta: impl FnOnce(&str) -> Result<bool, StoreError>,
        catalog: impl FnOnce(&Transaction<'_>, &str) -> rusqlite::Result<()>,
    ) -> Result<Put, StoreError> {
        let (table, id) = (u.table, u.id);
        let now = now_us();
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let bound: Bound = tx
            .query_row(
                &format!("SELECT host_id, row FROM {table} WHERE id = ?1"),
                [id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sql())?;
        let put = match bound {
            None => {
                tx.execute(
                    &format!(
                        "INSERT INTO {table} (id, host_id, user, {}, ended_at, state, row,
                            received_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                        u.start_column
                    ),
                    params![
                        id.to_string(),
                        host.to_string(),
                        u.user,
                        u.start,
                        u.ended_at,
                        u.state,
                        u.text,
                        now
                    ],
                )
                .map_err(self.sql())?;
                Put::Created
            }
            Some((owner, _)) if owner != host.to_string() => {
                return Err(StoreError::Forbidden(format!(
                    "{} {id} belongs to another host",
                    u.what
                )))
            }
            Some((_, stored)) => {
                if !same_meta(&stored)? {
                    return Err(StoreError::Conflict(format!(
                        "{} {id}: only its state and end may change after the first PUT",
                        u.what
                    )));
                }
                tx.execute(
                    &format!(
                        "UPDATE {table} SET ended_at = ?1, state = ?2, row = ?3, updated_at = ?4
                         WHERE id = ?5"
                    ),
                    params![u.ended_at, u.state, u.text, now, id.to_string()],
                )
                .map_err(self.sql())?;
                Put::Updated
            }
        };
        catalog(&tx, &host.to_string()).map_err(self.sql())?;
        tx.commit().map_err(self.sql())?;
        Ok(put)
    }

    /// A read-only connection from the pool (opened when none is idle).
    fn reader(&self) -> Result<Reader<'_>, StoreError> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(self.sql())?;
                c.busy_timeout(Duration::from_secs(10))
                    .map_err(self.sql())?;
                c
            }
        };
        Ok(Reader {
            conn: Some(conn),
            store: self,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held leaves no open transaction behind (rusqlite rolls
        // back on drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(self.sql())?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.sql())?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < 1 {
            tx.execute_batch(SCHEMA_V1).map_err(self.sql())?;
        }
        if version < 2 {
            tx.execute_batch(catalog::SCHEMA_V2).map_err(self.sql())?;
        }
        if version < 3 {
            tx.execute_batch(catalog::SCHEMA_V3).map_err(self.sql())?;
        }
        if version < 2 {
            // The catalog (and the users seen) from what version 1 stored.
            catalog::backfill(&tx)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            .map_err(self.sql())?;
        tx.commit().map_err(self.sql())
    }

    /// The recording's row number, checking that it belongs to `host`.
    fn owned_recording(
        &self,
        tx: &Transaction<'_>,
        host: Uuid,
        recording: Uuid,
    ) -> Result<i64, StoreError> {
        let found: Option<(i64, String)> = tx
            .query_row(
                "SELECT num, host_id FROM recordings WHERE id = ?1",
                [recording.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sql())?;
        match found {
            None => Err(StoreError::NotFound(format!(
                "recording {recording} not found (PUT it first)"
            ))),
            Some((_, owner)) if owner != host.to_string() => Err(StoreError::Forbidden(format!(
                "recording {recording} belongs to another host"
            ))),
            Some((num, _)) => Ok(num),
        }
    }

    fn acks_of(&self, tx: &Transaction<'_>, num: i64, recording: Uuid) -> Result<Acks, StoreError> {
        let mut acks = Acks {
            recording,
            streams: Default::default(),
        };
        let mut ctx = SqliteChunkTx {
            tx,
            rec: num,
            now: 0,
            path: &self.path,
        };
        for stream in Stream::ALL {
            if let Some(head) = ctx.head(stream)? {
                acks.streams.insert(stream as u8, head.seq + 1);
            }
        }
        Ok(acks)
    }

    fn stream_summaries(
        &self,
        conn: &Connection,
        num: i64,
    ) -> Result<Vec<(Stream, StreamSummary)>, StoreError> {
        let mut st = conn
            .prepare_cached(
                "SELECT stream, count(*), coalesce(sum(stored_len), 0), coalesce(sum(raw_len), 0)
                 FROM chunks WHERE rec = ?1 GROUP BY stream ORDER BY stream",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map([num], |r| {
                Ok((
                    r.get::<_, u8>(0)?,
                    StreamSummary {
                        chunks: count(r.get(1)?),
                        stored_bytes: count(r.get(2)?),
                        raw_bytes: count(r.get(3)?),
                    },
                ))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (n, s) = row.map_err(self.sql())?;
            let stream = Stream::from_u8(n).map_err(|e| StoreError::Corrupt {
                what: format!("chunks of recording #{num}"),
                detail: e.to_string(),
            })?;
            out.push((stream, s));
        }
        Ok(out)
    }
}

/// The rules of [`ingest`] over one SQLite transaction.
struct SqliteChunkTx<'a> {
    tx: &'a Transaction<'a>,
    rec: i64,
    now: i64,
    path: &'a str,
}

impl SqliteChunkTx<'_> {
    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.to_string(),
            source,
        }
    }
}

impl ChunkTx for SqliteChunkTx<'_> {
    fn head(&mut self, stream: Stream) -> Result<Option<Head>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = self
            .tx
            .prepare_cached(
                "SELECT seq, hash FROM chunks WHERE rec = ?1 AND stream = ?2
                 ORDER BY seq DESC LIMIT 1",
            )
            .and_then(|mut st| {
                st.query_row(params![self.rec, stream as u8], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .map_err(|e| self.sql(e))?;
        row.map(|(seq, hash)| {
            Ok(Head {
                seq: seq as u64,
                hash: hash32(hash, &format_args!("#{}", self.rec), stream, seq)?,
            })
        })
        .transpose()
    }

    fn hash_at(&mut self, stream: Stream, seq: u64) -> Result<Option<[u8; 32]>, StoreError> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let row: Option<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT hash FROM chunks WHERE rec = ?1 AND stream = ?2 AND seq = ?3")
            .and_then(|mut st| {
                st.query_row(params![self.rec, stream as u8, seq], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.sql(e))?;
        row.map(|h| hash32(h, &format_args!("#{}", self.rec), stream, seq))
            .transpose()
    }

    fn insert(&mut self, c: &SealedChunk) -> Result<(), StoreError> {
        // ingest::apply checked that these fit in an i64.
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.tx
            .prepare_cached(
                "INSERT INTO chunks (rec, stream, seq, first_us, last_us, raw_len, stored_len,
                    received_at, hash, blob)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    self.rec,
                    c.stream as u8,
                    n(c.seq),
                    n(c.first_us),
                    n(c.last_us),
                    n(c.raw_len),
                    c.blob.len() as i64,
                    self.now,
                    c.hash.as_slice(),
                    c.blob.as_slice(),
                ])
            })
            .map_err(|e| self.sql(e))?;
        Ok(())
    }
}

fn hash32(
    h: Vec<u8>,
    rec: &dyn std::fmt::Display,
    stream: Stream,
    seq: i64,
) -> Result<[u8; 32], StoreError> {
    h.try_into().map_err(|h: Vec<u8>| StoreError::Corrupt {
        what: format!("chunk of recording {rec} stream {stream} seq {seq}"),
        detail: format!("hash of {} bytes", h.len()),
    })
}

/// A count or size read back from SQLite (never negative as written).
fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: what.to_string(),
        detail: e.to_string(),
    })
}

/// The kebab-case name serde gives a state enum.
fn state_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn parse_uuid(what: &str, s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt {
        what: what.to_string(),
        detail: e.to_string(),
    })
}

/// The host a row is bound to, and the row as stored.
type Bound = Option<(String, String)>;

/// A login or recording row to insert or update ([`SqliteStore::put_row`]).
struct Upsert<'a> {
    table: &'static str,
    start_column: &'static str,
    what: &'static str,
    id: Uuid,
    user: &'a str,
    start: i64,
    ended_at: Option<i64>,
    state: String,
    text: String,
}

impl Store for SqliteStore {
    fn add_enroll_token(&self, token: &SecretHash, expires_at: i64) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO enroll_tokens (token_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
                params![token.as_slice(), now_us(), expires_at],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    fn enroll(&self, token: &SecretHash, host: &NewHost) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let used = tx
            .execute(
                "UPDATE enroll_tokens SET used_at = ?1, host_id = ?2
                 WHERE token_hash = ?3 AND used_at IS NULL AND expires_at > ?1",
                params![host.enrolled_at, host.id.to_string(), token.as_slice()],
            )
            .map_err(self.sql())?;
        if used != 1 {
            return Err(StoreError::BadToken);
        }
        tx.execute(
            "INSERT INTO hosts (id, hostname, secret_hash, enrolled_at, state)
             VALUES (?1, ?2, ?3, ?4, 'pending')",
            params![
                host.id.to_string(),
                host.hostname,
                host.secret_hash.as_slice(),
                host.enrolled_at
            ],
        )
        .map_err(self.sql())?;
        tx.commit().map_err(self.sql())
    }

    fn host_credential(&self, id: Uuid) -> Result<Option<HostCredential>, StoreError> {
        let row: Option<(Vec<u8>, Option<i64>, Option<i64>)> = self
            .conn()
            .query_row(
                "SELECT secret_hash, revoked_at, last_seen FROM hosts WHERE id = ?1",
                [id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.sql())?;
        let Some((hash, revoked_at, last_seen)) = row else {
            return Ok(None);
        };
        let secret_hash = hash.try_into().map_err(|_| StoreError::Corrupt {
            what: format!("host {id}"),
            detail: "secret hash is not 32 bytes".into(),
        })?;
        Ok(Some(HostCredential {
            id,
            secret_hash,
            revoked: revoked_at.is_some(),
            last_seen,
        }))
    }

    fn touch_host(&self, id: Uuid, now: i64) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE hosts SET last_seen = ?1 WHERE id = ?2",
                params![now, id.to_string()],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    fn hosts(&self) -> Result<Vec<HostInfo>, StoreError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT h.id, h.hostname, h.enrolled_at, h.last_seen, h.revoked_at,
                    (SELECT count(*) FROM recordings r WHERE r.host_id = h.id), h.state
                 FROM hosts h ORDER BY h.enrolled_at, h.id",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    count(r.get::<_, i64>(5)?),
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, hostname, enrolled_at, last_seen, revoked_at, recordings, state) =
                row.map_err(self.sql())?;
            out.push(HostInfo {
                state,
                id: parse_uuid("host id", &id)?,
                hostname,
                enrolled_at,
                last_seen,
                revoked_at,
                recordings,
            });
        }
        Ok(out)
    }

    fn revoke_host(&self, id: Uuid, now: i64) -> Result<bool, StoreError> {
        let conn = self.conn();
        let changed = conn
            .execute(
                "UPDATE hosts SET revoked_at = coalesce(revoked_at, ?1) WHERE id = ?2",
                params![now, id.to_string()],
            )
            .map_err(self.sql())?;
        Ok(changed == 1)
    }

    fn add_user(&self, name: &str, role: Role, password_hash: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        match conn.execute(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.as_str(), password_hash, now_us()],
        ) {
            Ok(_) => Ok(()),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                Err(StoreError::Conflict(format!(
                    "user {name:?} already exists"
                )))
            }
            Err(e) => Err(self.sql()(e)),
        }
    }

    fn policy(&self) -> Result<PolicyBundle, StoreError> {
        let (version, rules): (i64, String) = self
            .conn()
            .query_row("SELECT version, rules FROM policy WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(self.sql())?;
        Ok(PolicyBundle {
            version: count(version),
            rules: from_json("policy rules", &rules)?,
        })
    }

    fn set_policy(&self, rules: &[Rule]) -> Result<u64, StoreError> {
        let text = to_json(&rules)?;
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        tx.execute(
            "UPDATE policy SET version = version + 1, rules = ?1, updated_at = ?2 WHERE id = 1",
            params![text, now_us()],
        )
        .map_err(self.sql())?;
        let version: i64 = tx
            .query_row("SELECT version FROM policy WHERE id = 1", [], |r| r.get(0))
            .map_err(self.sql())?;
        tx.commit().map_err(self.sql())?;
        Ok(count(version))
    }

    fn put_login(&self, host: Uuid, row: &LoginRow) -> Result<Put, StoreError> {
        self.put_row(
            host,
            &Upsert {
                table: "logins",
                start_column: "opened_at",
                what: "login",
                id: row.meta.id,
                user: &row.meta.user,
                start: row.meta.opened_at,
                ended_at: row.ended_at,
                state: state_name(&row.state),
                text: to_json(row)?,
            },
            |stored| {
                Ok(
                    from_json::<LoginRow>(&format!("login {}", row.meta.id), stored)?.meta
                        == row.meta,
                )
            },
            |tx, host| catalog::catalog_login(tx, host, row),
        )
    }

    fn put_recording(&self, host: Uuid, row: &RecordingRow) -> Result<Put, StoreError> {
        self.put_row(
            host,
            &Upsert {
                table: "recordings",
                start_column: "started_at",
                what: "recording",
                id: row.meta.id,
                user: &row.meta.user,
                start: row.meta.started_at,
                ended_at: row.ended_at,
                state: state_name(&row.state),
                text: to_json(row)?,
            },
            |stored| {
                Ok(
                    from_json::<RecordingRow>(&format!("recording {}", row.meta.id), stored)?.meta
                        == row.meta,
                )
            },
            |tx, host| catalog::catalog_recording(tx, host, row),
        )
    }

    fn add_chunks(
        &self,
        host: Uuid,
        recording: Uuid,
        chunks: &[SealedChunk],
    ) -> Result<Acks, StoreError> {
        if let Some(c) = chunks.iter().find(|c| c.recording != recording) {
            return Err(StoreError::Invalid(format!(
                "a chunk of recording {} in a batch for {recording}",
                c.recording
            )));
        }
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(self.sql())?;
        let num = self.owned_recording(&tx, host, recording)?;
        let outcome = ingest::apply(
            &mut SqliteChunkTx {
                tx: &tx,
                rec: num,
                now: now_us(),
                path: &self.path,
            },
            chunks,
        )?;
        let acks = self.acks_of(&tx, num, recording)?;
        if outcome.stored > 0 {
            catalog::catalog_chunks(&tx, recording, outcome.stored, outcome.stored_raw)
                .map_err(self.sql())?;
        }
        tx.commit().map_err(self.sql())?;
        tracing::debug!(%recording, stored = outcome.stored, duplicates = outcome.duplicates, "chunk batch");
        Ok(acks)
    }

    fn acks(&self, host: Uuid, recording: Uuid) -> Result<Acks, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let num = self.owned_recording(&tx, host, recording)?;
        self.acks_of(&tx, num, recording)
    }

    fn add_audit(&self, host: Uuid, events: &[AuditEvent]) -> Result<u64, StoreError> {
        let now = now_us();
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let mut stored = 0;
        for ev in events {
            let owner: Option<String> = tx
                .query_row(
                    "SELECT host_id FROM audit_events WHERE id = ?1",
                    [ev.id.to_string()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(self.sql())?;
            match owner {
                Some(o) if o == host.to_string() => continue,
                Some(_) => {
                    return Err(StoreError::Forbidden(format!(
                        "audit event {} belongs to another host",
                        ev.id
                    )))
                }
                None => {}
            }
            tx.execute(
                "INSERT INTO audit_events (id, host_id, at, kind, user, host, body, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    ev.id.to_string(),
                    host.to_string(),
                    ev.at,
                    ev.kind,
                    ev.user,
                    ev.host,
                    to_json(&ev.body)?,
                    now
                ],
            )
            .map_err(self.sql())?;
            stored += 1;
        }
        tx.commit().map_err(self.sql())?;
        Ok(stored)
    }

    fn recordings(&self) -> Result<Vec<RecordingSummary>, StoreError> {
        let conn = self.conn();
        let rows: Vec<(i64, String, String, String, String)> = {
            let mut st = conn
                .prepare(
                    "SELECT r.num, r.id, r.host_id, h.hostname, r.row
                     FROM recordings r JOIN hosts h ON h.id = r.host_id
                     ORDER BY r.started_at DESC, r.id DESC",
                )
                .map_err(self.sql())?;
            let rows = st
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(self.sql())?;
            rows.collect::<Result<_, _>>().map_err(self.sql())?
        };
        let mut out = Vec::new();
        for (num, id, host_id, hostname, text) in rows {
            let row: RecordingRow = from_json(&format!("recording {id}"), &text)?;
            let streams: std::collections::BTreeMap<String, StreamSummary> = self
                .stream_summaries(&conn, num)?
                .into_iter()
                .map(|(s, sum)| (s.name().to_string(), sum))
                .collect();
            let held: u64 = streams.values().map(|s| s.chunks).sum();
            out.push(RecordingSummary {
                id: parse_uuid("recording id", &id)?,
                host_id: parse_uuid("recording host id", &host_id)?,
                hostname,
                user: row.meta.user,
                command: row.meta.command,
                started_at: row.meta.started_at,
                ended_at: row.ended_at,
                state: row.state,
                agent_chunks: row.chunks,
                complete: row.ended_at.is_some() && held >= row.chunks,
                streams,
            });
        }
        Ok(out)
    }

    fn recording(&self, id: &str) -> Result<RecordingRow, StoreError> {
        let prefix = id.trim().to_ascii_lowercase();
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(StoreError::NotFound(format!("no recording matches {id:?}")));
        }
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT row FROM recordings WHERE id >= ?1 AND id < ?1 || 'g' LIMIT 2")
            .map_err(self.sql())?;
        let rows: Vec<String> = st
            .query_map([&prefix], |r| r.get(0))
            .map_err(self.sql())?
            .collect::<Result<_, _>>()
            .map_err(self.sql())?;
        match rows.as_slice() {
            [] => Err(StoreError::NotFound(format!("no recording matches {id:?}"))),
            [text] => from_json(&format!("recording {prefix}"), text),
            _ => Err(StoreError::Conflict(format!(
                "{id:?} matches several recordings; give more of the id"
            ))),
        }
    }

    fn chunks(&self, recording: Uuid, stream: Stream) -> Result<Vec<SealedChunk>, StoreError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT c.seq, c.first_us, c.last_us, c.raw_len, c.hash, c.blob
                 FROM chunks c JOIN recordings r ON r.num = c.rec
                 WHERE r.id = ?1 AND c.stream = ?2 ORDER BY c.seq",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map(params![recording.to_string(), stream as u8], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                ))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, first_us, last_us, raw_len, hash, blob) = row.map_err(self.sql())?;
            out.push(SealedChunk {
                recording,
                stream,
                seq: seq as u64,
                first_us: first_us as u64,
                last_us: last_us as u64,
                raw_len: raw_len as u64,
                hash: hash32(hash, &recording, stream, seq)?,
                blob,
            });
        }
        Ok(out)
    }
}
