//! What the platform keeps, behind one trait so that the embedded SQLite store
//! ([`crate::sqlite::SqliteStore`]) can be joined by PostgreSQL later without touching the API.
//!
//! Every method is blocking: the API calls them inside `tokio::task::spawn_blocking`.

use std::collections::BTreeMap;

use libsegura::chunk::SealedChunk;
use libsegura::policy::Rule;
use libsegura::spool::{AuditEvent, LoginRow, RecordingRow};
use libsegura::wire::{Acks, PolicyBundle};
use serde::Serialize;
use uuid::Uuid;

/// SHA-256 of a secret (host secret, enrollment token): what the store keeps instead of it.
pub type SecretHash = [u8; 32];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The enrollment token is unknown, already used or expired.
    #[error("unknown, used or expired enrollment token")]
    BadToken,
    #[error("{0}")]
    NotFound(String),
    /// The thing exists but belongs to another host.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// A chunk does not extend the stored chain of its stream.
    #[error("hash chain broken at stream {stream} seq {seq}")]
    ChainBroken { stream: u8, seq: u64 },
    /// The request is well-formed but its content is not acceptable.
    #[error("{0}")]
    Invalid(String),
    #[error("database {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("data directory {path}: {action}: {source}")]
    Io {
        path: String,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("database {path} has schema version {found}, newer than this segura-server understands ({supported})")]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    /// A stored row cannot be read back (a bug or a damaged database).
    #[error("database row {what}: {detail}")]
    Corrupt { what: String, detail: String },
}

/// What a platform user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Admin,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    /// The role [`Role::as_str`] names.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Admin, Role::Auditor]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A new enrolled host, as the store records it.
#[derive(Debug, Clone)]
pub struct NewHost {
    pub id: Uuid,
    pub hostname: String,
    pub secret_hash: SecretHash,
    pub enrolled_at: i64,
}

/// What authentication needs to know about a host.
#[derive(Debug, Clone)]
pub struct HostCredential {
    pub id: Uuid,
    pub secret_hash: SecretHash,
    pub revoked: bool,
    pub last_seen: Option<i64>,
}

/// A host as `admin hosts` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    pub id: Uuid,
    pub hostname: String,
    /// `pending` until an admin approves it, `approved`, or `rejected`.
    pub state: String,
    /// Microseconds since the epoch.
    pub enrolled_at: i64,
    pub last_seen: Option<i64>,
    pub revoked_at: Option<i64>,
    pub recordings: u64,
}

/// What the platform holds of one stream of a recording.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamSummary {
    /// Chunks held, contiguously from seq 0 (the store never holds a gap).
    pub chunks: u64,
    /// Bytes stored (compressed blobs).
    pub stored_bytes: u64,
    /// Payload bytes those chunks carry.
    pub raw_bytes: u64,
}

/// A recording as `admin recordings` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingSummary {
    pub id: Uuid,
    pub host_id: Uuid,
    /// The enrolled name of the host that uploaded it.
    pub hostname: String,
    pub user: String,
    pub command: Vec<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub state: libsegura::spool::RecordingState,
    /// How many chunks the agent said it had (in its last PUT).
    pub agent_chunks: u64,
    /// By stream name (`output`, `input`, `events`, `stderr`).
    pub streams: BTreeMap<String, StreamSummary>,
    /// Ended, and every chunk the agent announced is held (each stream is contiguous by
    /// construction).
    pub complete: bool,
}

/// Whether a PUT created the row or updated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    Updated,
}

/// The platform's storage.
pub trait Store: Send + Sync + 'static {
    /// Records a one-time enrollment token (by its hash) valid until `expires_at` (µs).
    fn add_enroll_token(&self, token: &SecretHash, expires_at: i64) -> Result<(), StoreError>;

    /// Uses up the token and records the host, atomically; [`StoreError::BadToken`] when the
    /// token is unknown, used or expired.
    fn enroll(&self, token: &SecretHash, host: &NewHost) -> Result<(), StoreError>;

    fn host_credential(&self, id: Uuid) -> Result<Option<HostCredential>, StoreError>;

    /// Notes that the host was seen at `now` (µs).
    fn touch_host(&self, id: Uuid, now: i64) -> Result<(), StoreError>;

    fn hosts(&self) -> Result<Vec<HostInfo>, StoreError>;

    /// Revokes a host's credential; false when there is no such host.
    fn revoke_host(&self, id: Uuid, now: i64) -> Result<bool, StoreError>;

    /// Adds a platform user; [`StoreError::Conflict`] if the name is taken.
    fn add_user(&self, name: &str, role: Role, password_hash: &str) -> Result<(), StoreError>;

    fn policy(&self) -> Result<PolicyBundle, StoreError>;

    /// Replaces the rules and bumps the version; returns the new version.
    fn set_policy(&self, rules: &[Rule]) -> Result<u64, StoreError>;

    /// Creates or updates a login of `host` (the first PUT binds the id to the host).
    fn put_login(&self, host: Uuid, row: &LoginRow) -> Result<Put, StoreError>;

    /// Creates or updates a recording of `host` (the first PUT binds the id to the host).
    fn put_recording(&self, host: Uuid, row: &RecordingRow) -> Result<Put, StoreError>;

    /// Stores a batch of chunks of `host`'s recording, all or nothing, and answers the acks.
    fn add_chunks(
        &self,
        host: Uuid,
        recording: Uuid,
        chunks: &[SealedChunk],
    ) -> Result<Acks, StoreError>;

    /// The acks of `host`'s recording.
    fn acks(&self, host: Uuid, recording: Uuid) -> Result<Acks, StoreError>;

    /// Stores audit events of `host` (all or nothing); returns how many were new.
    fn add_audit(&self, host: Uuid, events: &[AuditEvent]) -> Result<u64, StoreError>;

    /// Every recording, newest first.
    fn recordings(&self) -> Result<Vec<RecordingSummary>, StoreError>;

    /// The recording whose id is `id` or starts with it, as the agent last PUT it.
    fn recording(&self, id: &str) -> Result<RecordingRow, StoreError>;

    /// The chunks held of one stream, in seq order.
    fn chunks(
        &self,
        recording: Uuid,
        stream: libsegura::chunk::Stream,
    ) -> Result<Vec<SealedChunk>, StoreError>;
}
