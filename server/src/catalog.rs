//! The platform's catalog of sessions for the web UI: one row per recording (and per login that
//! has no recording, so unrecorded logins are listed too), with the columns the Remote Sessions
//! filters need, a full-text index of transcripts and commands, auditor assignments, the access
//! log, retention holds and the purge log.
//!
//! The catalog is kept in the same transactions that store logins, recordings and chunks, so it
//! never disagrees with them.

use serde::Serialize;
use uuid::Uuid;

use crate::store::{Role, StoreError};

/// How a session stands, as the Remote Sessions list filters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Its recorder is running (or the login is open).
    Active,
    /// Ended, and everything the agent announced is held.
    Ended,
    /// Ended on the host, but chunks are still to be uploaded.
    Pending,
    /// PAM armed the login but no recorder attached: it ran unrecorded.
    Unrecorded,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Active,
        Status::Ended,
        Status::Pending,
        Status::Unrecorded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Ended => "ended",
            Status::Pending => "pending",
            Status::Unrecorded => "unrecorded",
        }
    }

    /// How the UI names it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Ended => "ended",
            Status::Pending => "pending upload",
            Status::Unrecorded => "unrecorded",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// A recording's status from its end and how many of the chunks the agent announced are
    /// held.
    pub fn of_recording(ended: bool, held: u64, announced: u64) -> Status {
        match (ended, held >= announced) {
            (false, _) => Status::Active,
            (true, true) => Status::Ended,
            (true, false) => Status::Pending,
        }
    }
}

/// One row of the Remote Sessions list.
#[derive(Debug, Clone, Serialize)]
pub struct SessionEntry {
    pub id: Uuid,
    /// `recording` or `login` (a login without any recording).
    pub kind: String,
    /// For a recording: session (login shell), command or binary.
    pub recording_kind: Option<String>,
    pub login_id: Option<Uuid>,
    pub host_id: Uuid,
    pub hostname: String,
    pub user: String,
    pub group: String,
    pub service: String,
    pub binary: String,
    pub command: String,
    pub rule: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub status: Status,
    pub bytes: u64,
    pub hold: bool,
    /// The endpoint user (by identical username) is approved on the platform.
    pub user_approved: bool,
}

/// A user seen on enrolled hosts, matched across hosts by identical username.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointUser {
    pub name: String,
    pub approved_at: Option<i64>,
    pub approved_by: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Host names it was seen on.
    pub hosts: Vec<String>,
    pub sessions: u64,
}

/// The Remote Sessions filters; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub user: String,
    pub host: String,
    pub group: String,
    /// PAM service or binary path (substring of either).
    pub service: String,
    /// Microseconds since the epoch, inclusive.
    pub from: Option<i64>,
    /// Microseconds since the epoch, exclusive.
    pub to: Option<i64>,
    pub status: Option<Status>,
    /// Words that must all appear in the transcript or the commands.
    pub text: String,
    pub sort: Sort,
    pub descending: bool,
    pub offset: u64,
    pub limit: u64,
}

/// Sortable columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Started,
    User,
    Host,
    Duration,
    Size,
}

impl Sort {
    pub const ALL: [Sort; 5] = [
        Sort::Started,
        Sort::User,
        Sort::Host,
        Sort::Duration,
        Sort::Size,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Started => "started",
            Sort::User => "user",
            Sort::Host => "host",
            Sort::Duration => "duration",
            Sort::Size => "size",
        }
    }

    pub fn parse(s: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Who is looking: admins see everything, auditors only what they are assigned to.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    pub role: Role,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A page of the list and how many match in all.
#[derive(Debug, Clone, Serialize)]
pub struct SessionPage {
    pub total: u64,
    pub entries: Vec<SessionEntry>,
}

/// A platform user, for the auditor pickers.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformUser {
    pub name: String,
    pub role: Role,
    pub created_at: i64,
}

/// A line of the access log.
#[derive(Debug, Clone, Serialize)]
pub struct AccessEntry {
    pub at: i64,
    pub user: String,
    pub action: String,
    pub session: Option<String>,
    pub detail: String,
}

/// An audit event (a binary run, a file transfer) as the Audit page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub kind: String,
    pub user: String,
    /// The enrolled name of the host that sent it.
    pub hostname: String,
    pub body: serde_json::Value,
}

/// The Audit page's filters; empty ones do not filter.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub user: String,
    pub host: String,
    pub kind: String,
    /// Substring of the program path or command.
    pub program: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub offset: u64,
    pub limit: u64,
}

/// A line of the purge log.
#[derive(Debug, Clone, Serialize)]
pub struct PurgeEntry {
    pub at: i64,
    pub by: String,
    pub session: String,
    pub user: String,
    pub hostname: String,
    pub started_at: i64,
    pub bytes: u64,
}

/// A host as the Hosts page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HostRow {
    pub id: Uuid,
    pub hostname: String,
    /// `pending`, `approved` or `rejected`.
    pub state: String,
    /// Users seen on it, and how many of them are not approved yet.
    pub users: u64,
    pub users_unapproved: u64,
    pub enrolled_at: i64,
    pub last_seen: Option<i64>,
    pub revoked_at: Option<i64>,
    pub sessions: u64,
    /// What the agent last reported of its spool.
    pub pending_bytes: Option<u64>,
    pub pending_recordings: Option<u64>,
    pub reported_at: Option<i64>,
    /// Logins that ran unrecorded.
    pub unrecorded: u64,
}

/// A signed-in browser session.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub user: String,
    pub role: Role,
    pub csrf: String,
}

/// What the web UI needs from the store, beside [`crate::store::Store`].
pub trait Catalog: Send + Sync + 'static {
    fn sessions(&self, viewer: &Viewer, q: &SessionQuery) -> Result<SessionPage, StoreError>;

    /// One entry, if it exists and `viewer` may see it ([`StoreError::Forbidden`] otherwise).
    fn session(&self, viewer: &Viewer, id: Uuid) -> Result<SessionEntry, StoreError>;

    fn set_hold(&self, id: Uuid, hold: bool, by: &str) -> Result<(), StoreError>;

    /// The auditors assigned to a session directly.
    fn session_auditors(&self, id: Uuid) -> Result<Vec<String>, StoreError>;

    fn set_session_auditors(
        &self,
        id: Uuid,
        auditors: &[String],
        by: &str,
    ) -> Result<(), StoreError>;

    /// A rule's default auditors (keyed by rule name, as recordings name their rule).
    fn rule_auditors(&self, rule: &str) -> Result<Vec<String>, StoreError>;

    fn set_rule_auditors(&self, rule: &str, auditors: &[String]) -> Result<(), StoreError>;

    fn users(&self) -> Result<Vec<PlatformUser>, StoreError>;

    /// The user's role and password hash.
    fn user_login(&self, name: &str) -> Result<Option<(Role, String)>, StoreError>;

    /// Replaces a platform user's password hash and ends their signed-in sessions; false when
    /// there is no such user.
    fn set_password(&self, name: &str, hash: &str, by: &str) -> Result<bool, StoreError>;

    /// Removes a platform user, their sessions and auditor assignments; false when there is no
    /// such user. The access log keeps what they did.
    fn remove_user(&self, name: &str, by: &str) -> Result<bool, StoreError>;

    fn log_access(
        &self,
        user: &str,
        action: &str,
        session: Option<Uuid>,
        detail: &str,
    ) -> Result<(), StoreError>;

    fn access_log(&self, limit: u64) -> Result<Vec<AccessEntry>, StoreError>;

    /// Deletes sessions that started before `before` (µs) and are not held; logs each.
    fn purge(&self, before: i64, by: &str) -> Result<Vec<PurgeEntry>, StoreError>;

    fn purge_log(&self, limit: u64) -> Result<Vec<PurgeEntry>, StoreError>;

    fn host_rows(&self) -> Result<Vec<HostRow>, StoreError>;

    /// Records a host's report of its spool.
    fn host_report(
        &self,
        host: Uuid,
        pending_recordings: u64,
        pending_bytes: u64,
    ) -> Result<(), StoreError>;

    /// Stores a new browser session (by the token's hash).
    fn add_web_session(
        &self,
        token: &[u8; 32],
        user: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<(), StoreError>;

    fn web_session(&self, token: &[u8; 32], now: i64) -> Result<Option<WebSession>, StoreError>;

    fn end_web_session(&self, token: &[u8; 32]) -> Result<(), StoreError>;

    /// Approves (or rejects) an enrolled host: its sessions become visible (rejected: its
    /// credential is refused from now on and its sessions stay in quarantine). False when there
    /// is no such host.
    fn decide_host(&self, id: Uuid, approve: bool, by: &str) -> Result<bool, StoreError>;

    fn endpoint_users(&self) -> Result<Vec<EndpointUser>, StoreError>;

    /// Approves a username (or withdraws the approval); false when it was never seen.
    fn approve_user(&self, name: &str, approve: bool, by: &str) -> Result<bool, StoreError>;

    /// Approves every user seen on a host; answers how many were newly approved.
    fn approve_host_users(&self, host: Uuid, by: &str) -> Result<u64, StoreError>;

    /// Names of approved, unrevoked hosts, and of approved users: what rules may be scoped to.
    fn approved_scopes(&self) -> Result<(Vec<String>, Vec<String>), StoreError>;

    /// Audit events of approved hosts, newest first, and how many match.
    fn audit_events(&self, q: &AuditQuery) -> Result<(u64, Vec<AuditRow>), StoreError>;

    /// Up to `limit` ended recordings of at most `max_bytes` whose text is not indexed yet.
    fn unindexed(&self, limit: u64, max_bytes: u64) -> Result<Vec<Uuid>, StoreError>;

    /// Stores the transcript and commands of a recording in the full-text index (or marks it
    /// as failed with `None`).
    fn index_text(&self, id: Uuid, text: Option<(&str, &str)>) -> Result<(), StoreError>;
}
