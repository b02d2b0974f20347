//! [`Catalog`] over the embedded SQLite store, and the catalog rows kept beside logins,
//! recordings and chunks (schema version 2).

use libsegura::spool::{LoginRow, LoginState, RecordingKind, RecordingRow};
use libsegura::time::now_us;
use rusqlite::types::ToSql;
use rusqlite::{params, params_from_iter, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use super::{count, from_json, parse_uuid, SqliteStore};
use crate::catalog::{
    AccessEntry, AuditQuery, AuditRow, Catalog, EndpointUser, HostRow, PlatformUser, PurgeEntry,
    SessionEntry, SessionPage, SessionQuery, Sort, Status, Viewer, WebSession,
};
use crate::store::{Role, StoreError};

pub(super) const SCHEMA_V2: &str = "
CREATE TABLE sessions (
    num INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    rec_kind TEXT,
    login_id TEXT,
    host_id TEXT NOT NULL,
    hostname TEXT NOT NULL COLLATE NOCASE,
    user TEXT NOT NULL COLLATE NOCASE,
    grp TEXT NOT NULL COLLATE NOCASE,
    service TEXT NOT NULL,
    binary TEXT NOT NULL,
    command TEXT NOT NULL,
    rule TEXT,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    status TEXT NOT NULL,
    agent_chunks INTEGER NOT NULL DEFAULT 0,
    held_chunks INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    hold INTEGER NOT NULL DEFAULT 0,
    indexed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_start ON sessions(started_at);
CREATE INDEX sessions_by_user ON sessions(user, started_at);
CREATE INDEX sessions_by_host ON sessions(hostname, started_at);
CREATE INDEX sessions_by_group ON sessions(grp, started_at);
CREATE INDEX sessions_by_status ON sessions(status, started_at);
CREATE INDEX sessions_by_login ON sessions(login_id);
CREATE INDEX sessions_by_rule ON sessions(rule);
CREATE INDEX sessions_unindexed ON sessions(indexed, status);
CREATE VIRTUAL TABLE session_text USING fts5(
    transcript, commands, content='', contentless_delete=1, tokenize='unicode61'
);
CREATE TABLE session_auditors (
    session TEXT NOT NULL,
    user TEXT NOT NULL,
    PRIMARY KEY (session, user)
) WITHOUT ROWID;
CREATE INDEX session_auditors_by_user ON session_auditors(user);
CREATE TABLE rule_auditors (
    rule TEXT NOT NULL,
    user TEXT NOT NULL,
    PRIMARY KEY (rule, user)
) WITHOUT ROWID;
CREATE TABLE access_log (
    at INTEGER NOT NULL,
    user TEXT NOT NULL,
    action TEXT NOT NULL,
    session TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX access_log_by_time ON access_log(at);
CREATE TABLE purge_log (
    at INTEGER NOT NULL,
    by TEXT NOT NULL,
    session TEXT NOT NULL,
    user TEXT NOT NULL,
    hostname TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE TABLE host_reports (
    host_id TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    pending_recordings INTEGER NOT NULL,
    pending_bytes INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE web_sessions (
    token_hash BLOB PRIMARY KEY,
    user TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Schema version 3: hosts are approved by an admin (those enrolled before stay approved), and
/// the users seen on hosts are listed, matched across hosts by identical username.
pub(super) const SCHEMA_V3: &str = "
ALTER TABLE hosts ADD COLUMN state TEXT NOT NULL DEFAULT 'approved';
ALTER TABLE hosts ADD COLUMN decided_at INTEGER;
ALTER TABLE hosts ADD COLUMN decided_by TEXT;
-- Sessions of a host not approved (yet): kept, not shown.
ALTER TABLE sessions ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
-- Partial: only the few quarantined rows, so no plan is tempted to walk quarantined = 0.
CREATE INDEX sessions_quarantined ON sessions(num) WHERE quarantined = 1;
CREATE INDEX audit_events_by_time ON audit_events(at);
-- The list's other sort orders.
CREATE INDEX sessions_by_size ON sessions(bytes);
CREATE INDEX sessions_by_duration ON sessions((coalesce(ended_at, started_at) - started_at));
CREATE TABLE endpoint_users (
    name TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    approved_at INTEGER,
    approved_by TEXT
) WITHOUT ROWID;
CREATE TABLE endpoint_user_hosts (
    name TEXT NOT NULL,
    host_id TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (name, host_id)
) WITHOUT ROWID;
CREATE INDEX endpoint_user_hosts_by_host ON endpoint_user_hosts(host_id);
INSERT INTO endpoint_users (name, first_seen, last_seen)
    SELECT user, min(started_at), max(started_at) FROM sessions GROUP BY user;
INSERT INTO endpoint_user_hosts (name, host_id, first_seen, last_seen)
    SELECT user, host_id, min(started_at), max(started_at) FROM sessions GROUP BY user, host_id;
";

type Sql = Result<(), rusqlite::Error>;

/// Notes that `user` was seen on `host` at `at` (µs).
fn seen(tx: &Transaction<'_>, user: &str, host: &str, at: i64) -> Sql {
    tx.execute(
        "INSERT INTO endpoint_users (name, first_seen, last_seen) VALUES (?1, ?2, ?2)
         ON CONFLICT (name) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),
            last_seen = max(last_seen, excluded.last_seen)",
        params![user, at],
    )?;
    tx.execute(
        "INSERT INTO endpoint_user_hosts (name, host_id, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (name, host_id) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),
            last_seen = max(last_seen, excluded.last_seen)",
        params![user, host, at],
    )?;
    Ok(())
}

/// Lists a recording (creating or updating its catalog row) and takes its login off the list:
/// a login with recordings is shown through them.
pub(super) fn catalog_recording(tx: &Transaction<'_>, host: &str, row: &RecordingRow) -> Sql {
    let m = &row.meta;
    let (held, bytes): (i64, i64) = tx.query_row(
        "SELECT count(*), coalesce(sum(c.raw_len), 0) FROM chunks c
         JOIN recordings r ON r.num = c.rec WHERE r.id = ?1",
        [m.id.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let status = Status::of_recording(row.ended_at.is_some(), count(held), row.chunks);
    let binary = match m.kind {
        RecordingKind::Binary => m.command.first().cloned().unwrap_or_default(),
        _ => String::new(),
    };
    tx.execute(
        "INSERT INTO sessions (id, kind, rec_kind, login_id, host_id, hostname, user, grp, service,
            binary, command, rule, started_at, ended_at, status, agent_chunks, held_chunks, bytes,
            quarantined)
         VALUES (?1, 'recording', ?2, ?3, ?4, (SELECT hostname FROM hosts WHERE id = ?4), ?5, ?6,
            ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
            (SELECT state <> 'approved' FROM hosts WHERE id = ?4))
         ON CONFLICT (id) DO UPDATE SET ended_at = excluded.ended_at, status = excluded.status,
            agent_chunks = excluded.agent_chunks, held_chunks = excluded.held_chunks,
            bytes = excluded.bytes",
        params![
            m.id.to_string(),
            kind_name(m.kind),
            m.login_id.map(|l| l.to_string()),
            host,
            m.user,
            m.group,
            m.service.clone().unwrap_or_default(),
            binary,
            shell_words(&m.command),
            m.rule,
            m.started_at,
            row.ended_at,
            status.as_str(),
            i64::try_from(row.chunks).unwrap_or(i64::MAX),
            held,
            bytes,
        ],
    )?;
    if let Some(login) = m.login_id {
        tx.execute(
            "DELETE FROM sessions WHERE id = ?1 AND kind = 'login'",
            [login.to_string()],
        )?;
    }
    seen(tx, &m.user, host, m.started_at)
}

/// Lists a login that has no recording (an unrecorded login, or one still waiting for its
/// recorder); a login with recordings is taken off the list.
pub(super) fn catalog_login(tx: &Transaction<'_>, host: &str, row: &LoginRow) -> Sql {
    let m = &row.meta;
    let id = m.id.to_string();
    seen(tx, &m.user, host, m.opened_at)?;
    let has_recordings: bool = row.recordings > 0
        || tx
            .query_row(
                "SELECT 1 FROM sessions WHERE login_id = ?1 LIMIT 1",
                [&id],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
    if has_recordings {
        tx.execute(
            "DELETE FROM sessions WHERE id = ?1 AND kind = 'login'",
            [&id],
        )?;
        return Ok(());
    }
    let status = match (row.state, row.ended_at) {
        (LoginState::Unrecorded, _) => Status::Unrecorded,
        (_, None) => Status::Active,
        (_, Some(_)) => Status::Ended,
    };
    tx.execute(
        "INSERT INTO sessions (id, kind, host_id, hostname, user, grp, service, binary, command,
            rule, started_at, ended_at, status, quarantined)
         VALUES (?1, 'login', ?2, (SELECT hostname FROM hosts WHERE id = ?2), ?3, ?4, ?5, '', '',
            ?6, ?7, ?8, ?9, (SELECT state <> 'approved' FROM hosts WHERE id = ?2))
         ON CONFLICT (id) DO UPDATE SET ended_at = excluded.ended_at, status = excluded.status",
        params![
            id,
            host,
            m.user,
            m.group,
            m.service.clone().unwrap_or_default(),
            m.rule,
            m.opened_at,
            row.ended_at,
            status.as_str()
        ],
    )?;
    Ok(())
}

/// After a batch stored `stored` chunks carrying `raw` payload bytes: how much of the
/// recording is held, and so its status (counted up, not recounted: a batch costs the same
/// however long the recording already is).
pub(super) fn catalog_chunks(tx: &Transaction<'_>, id: Uuid, stored: u64, raw: u64) -> Sql {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let Some((ended, announced, held)) = tx
        .query_row(
            "SELECT ended_at IS NOT NULL, agent_chunks, held_chunks + ?2 FROM sessions
             WHERE id = ?1",
            params![id.to_string(), n(stored)],
            |r| {
                Ok((
                    r.get::<_, bool>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()?
    else {
        return Ok(());
    };
    let status = Status::of_recording(ended, count(held), count(announced));
    tx.execute(
        "UPDATE sessions SET held_chunks = ?1, bytes = bytes + ?2, status = ?3 WHERE id = ?4",
        params![held, n(raw), status.as_str(), id.to_string()],
    )?;
    Ok(())
}

/// Fills the catalog from the rows stored before it existed (migration to version 2).
pub(super) fn backfill(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let sql = |e: rusqlite::Error| StoreError::Corrupt {
        what: "catalog backfill".into(),
        detail: e.to_string(),
    };
    for (table, is_login) in [("recordings", false), ("logins", true)] {
        let rows: Vec<(String, String)> = tx
            .prepare(&format!("SELECT host_id, row FROM {table}"))
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()
            })
            .map_err(sql)?;
        for (host, text) in rows {
            if is_login {
                catalog_login(tx, &host, &from_json("login row", &text)?).map_err(sql)?;
            } else {
                catalog_recording(tx, &host, &from_json("recording row", &text)?).map_err(sql)?;
            }
        }
    }
    Ok(())
}

fn kind_name(k: RecordingKind) -> &'static str {
    match k {
        RecordingKind::Session => "session",
        RecordingKind::Command => "command",
        RecordingKind::Binary => "binary",
    }
}

/// A command line as one string, quoting words that need it.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

const ENTRY_COLUMNS: &str = "s.id, s.kind, s.rec_kind, s.login_id, s.host_id, s.hostname, s.user,
    s.grp, s.service, s.binary, s.command, s.rule, s.started_at, s.ended_at, s.status, s.bytes,
    s.hold, coalesce((SELECT u.approved_at IS NOT NULL FROM endpoint_users u WHERE u.name = s.user), 0)";

/// Sessions of hosts an admin has not approved stay in quarantine: kept, not shown.
const HOST_APPROVED: &str = "s.quarantined = 0";

fn entry(r: &Row<'_>) -> rusqlite::Result<SessionEntry> {
    let uuid = |i: usize| -> rusqlite::Result<Uuid> {
        let s: String = r.get(i)?;
        Uuid::parse_str(&s).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    let status: String = r.get(14)?;
    Ok(SessionEntry {
        id: uuid(0)?,
        kind: r.get(1)?,
        recording_kind: r.get(2)?,
        login_id: match r.get::<_, Option<String>>(3)? {
            Some(_) => Some(uuid(3)?),
            None => None,
        },
        host_id: uuid(4)?,
        hostname: r.get(5)?,
        user: r.get(6)?,
        group: r.get(7)?,
        service: r.get(8)?,
        binary: r.get(9)?,
        command: r.get(10)?,
        rule: r.get(11)?,
        started_at: r.get(12)?,
        ended_at: r.get(13)?,
        status: Status::parse(&status).unwrap_or(Status::Ended),
        bytes: count(r.get(15)?),
        hold: r.get(16)?,
        user_approved: r.get(17)?,
    })
}

/// The condition under which an auditor may see session `s` (admins see all).
const AUDITOR_SEES: &str = "(s.id IN (SELECT session FROM session_auditors WHERE user = ?)
    OR s.rule IN (SELECT rule FROM rule_auditors WHERE user = ?))";

/// An FTS5 query in which every word of `text` must appear (each quoted, so no syntax of the
/// user's reaches FTS5).
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// `LIKE` pattern for "contains", with the wildcards of `s` escaped.
fn contains(s: &str) -> String {
    let mut p = String::from("%");
    for c in s.trim().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The range of strings that start with `s` (the columns compare without case), so that an
/// index serves a prefix filter.
fn prefix_range(s: &str) -> (String, String) {
    let lo = s.trim().to_string();
    let hi = format!("{lo}\u{10FFFF}");
    (lo, hi)
}

/// Full-text matches above which the page probes the index row by row (newest first, until the
/// page is full) instead of collecting every match first.
const COMMON_TEXT: i64 = 2_000;

impl Catalog for SqliteStore {
    fn sessions(&self, viewer: &Viewer, q: &SessionQuery) -> Result<SessionPage, StoreError> {
        let mut cond: Vec<String> = vec![HOST_APPROVED.into()];
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        if !viewer.is_admin() {
            cond.push(AUDITOR_SEES.into());
            args.push(Box::new(viewer.name.clone()));
            args.push(Box::new(viewer.name.clone()));
        }
        for (column, value) in [
            ("s.user", &q.user),
            ("s.hostname", &q.host),
            ("s.grp", &q.group),
        ] {
            if !value.trim().is_empty() {
                let (lo, hi) = prefix_range(value);
                cond.push(format!("{column} >= ? AND {column} < ?"));
                args.push(Box::new(lo));
                args.push(Box::new(hi));
            }
        }
        if !q.service.trim().is_empty() {
            cond.push("(s.service LIKE ? ESCAPE '\\' OR s.binary LIKE ? ESCAPE '\\')".into());
            args.push(Box::new(contains(&q.service)));
            args.push(Box::new(contains(&q.service)));
        }
        if let Some(from) = q.from {
            cond.push("s.started_at >= ?".into());
            args.push(Box::new(from));
        }
        if let Some(to) = q.to {
            cond.push("s.started_at < ?".into());
            args.push(Box::new(to));
        }
        if let Some(status) = q.status {
            cond.push("s.status = ?".into());
            args.push(Box::new(status.as_str()));
        }
        // Filters that narrow the candidates on their own (an index or few assigned rows).
        let selective = !viewer.is_admin()
            || [&q.user, &q.host, &q.group]
                .iter()
                .any(|v| !v.trim().is_empty())
            || q.status.is_some()
            || q.from.is_some()
            || q.to.is_some();
        let only_text = !selective && q.service.trim().is_empty();
        let conn = self.reader()?;
        // Each order is an index's (ties by start, then row), so a page reads no more rows
        // than it shows.
        let dir = if q.descending { "DESC" } else { "ASC" };
        let order = match q.sort {
            Sort::Started => format!("s.started_at {dir}, s.num {dir}"),
            Sort::User => format!("s.user {dir}, s.started_at {dir}, s.num {dir}"),
            Sort::Host => format!("s.hostname {dir}, s.started_at {dir}, s.num {dir}"),
            Sort::Duration => {
                format!("(coalesce(s.ended_at, s.started_at) - s.started_at) {dir}, s.num {dir}")
            }
            Sort::Size => format!("s.bytes {dir}, s.num {dir}"),
        };
        let count_of = |cond: &[&str], args: &[&dyn ToSql]| -> Result<i64, StoreError> {
            conn.prepare_cached(&format!(
                "SELECT count(*) FROM sessions s WHERE {}",
                cond.join(" AND ")
            ))
            .and_then(|mut st| st.query_row(args, |r| r.get(0)))
            .map_err(self.sql())
        };
        let base: Vec<&str> = cond.iter().map(String::as_str).collect();
        let base_args: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
        // Free text. Few matches: collect them (IN). Many: the page probes the index row by
        // row, newest first, until it is full (EXISTS); the count then probes too when other
        // filters narrow the rows, or is the index's own count less what is in quarantine.
        const COLLECT: &str =
            "s.num IN (SELECT rowid FROM session_text WHERE session_text MATCH ?)";
        const PROBE: &str =
            "EXISTS (SELECT 1 FROM session_text WHERE session_text MATCH ? AND rowid = s.num)";
        let (total, page_text) = match fts_query(&q.text) {
            // Everything an admin may see: the table's count less what is in quarantine.
            None if only_text => (
                count_of(&["1"], &[])? - count_of(&["s.quarantined = 1"], &[])?,
                None,
            ),
            None => (count_of(&base, &base_args)?, None),
            Some(fts) => {
                let matches: i64 = conn
                    .prepare_cached("SELECT count(*) FROM session_text WHERE session_text MATCH ?1")
                    .and_then(|mut st| st.query_row([&fts], |r| r.get(0)))
                    .map_err(self.sql())?;
                if matches == 0 {
                    return Ok(SessionPage {
                        total: 0,
                        entries: Vec::new(),
                    });
                }
                let with = |extra: &'static str| {
                    let mut c = base.clone();
                    c.push(extra);
                    let mut a = base_args.clone();
                    a.push(&fts);
                    count_of(&c, &a)
                };
                if matches <= COMMON_TEXT {
                    (with(COLLECT)?, Some((COLLECT, fts.clone())))
                } else if only_text {
                    // The few quarantined rows, each probed (the partial index, named so that
                    // no plan walks the matches instead).
                    let hidden: i64 = conn
                        .prepare_cached(&format!(
                            "SELECT count(*) FROM sessions s INDEXED BY sessions_quarantined
                             WHERE s.quarantined = 1 AND {PROBE}"
                        ))
                        .and_then(|mut st| st.query_row([&fts], |r| r.get(0)))
                        .map_err(self.sql())?;
                    (matches - hidden, Some((PROBE, fts.clone())))
                } else if selective {
                    (with(PROBE)?, Some((PROBE, fts.clone())))
                } else {
                    (with(COLLECT)?, Some((PROBE, fts.clone())))
                }
            }
        };
        let limit = i64::try_from(q.limit.clamp(1, 500)).unwrap_or(50);
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        if let Some((text_cond, fts)) = page_text {
            cond.push(text_cond.into());
            args.push(Box::new(fts));
        }
        let filter = format!("WHERE {}", cond.join(" AND "));
        args.push(Box::new(limit));
        args.push(Box::new(offset));
        let entries = conn
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM sessions s {filter}
                 ORDER BY {order} LIMIT ? OFFSET ?"
            ))
            .and_then(|mut st| {
                st.query_map(params_from_iter(args.iter()), entry)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(self.sql())?;
        Ok(SessionPage {
            total: count(total),
            entries,
        })
    }

    fn session(&self, viewer: &Viewer, id: Uuid) -> Result<SessionEntry, StoreError> {
        let conn = self.reader()?;
        let found = conn
            .query_row(
                &format!("SELECT {ENTRY_COLUMNS} FROM sessions s WHERE s.id = ?1"),
                [id.to_string()],
                entry,
            )
            .optional()
            .map_err(self.sql())?
            .ok_or_else(|| StoreError::NotFound(format!("no session {id}")))?;
        let approved = conn
            .query_row(
                &format!("SELECT 1 FROM sessions s WHERE s.id = ?1 AND {HOST_APPROVED}"),
                [id.to_string()],
                |_| Ok(()),
            )
            .optional()
            .map_err(self.sql())?
            .is_some();
        if !approved {
            return Err(StoreError::Forbidden(format!(
                "session {id} is in quarantine until an admin approves its host"
            )));
        }
        if viewer.is_admin() {
            return Ok(found);
        }
        let allowed = conn
            .query_row(
                &format!("SELECT 1 FROM sessions s WHERE s.id = ? AND {AUDITOR_SEES}"),
                params![id.to_string(), viewer.name, viewer.name],
                |_| Ok(()),
            )
            .optional()
            .map_err(self.sql())?
            .is_some();
        if allowed {
            Ok(found)
        } else {
            Err(StoreError::Forbidden(format!(
                "{} is not an auditor of session {id}",
                viewer.name
            )))
        }
    }

    fn set_hold(&self, id: Uuid, hold: bool, by: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let n = tx
            .execute(
                "UPDATE sessions SET hold = ?1 WHERE id = ?2",
                params![hold, id.to_string()],
            )
            .map_err(self.sql())?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("no session {id}")));
        }
        log_access_conn(
            &tx,
            by,
            if hold { "prevent-purge" } else { "allow-purge" },
            Some(id),
            "",
        )
        .map_err(self.sql())?;
        tx.commit().map_err(self.sql())
    }

    fn session_auditors(&self, id: Uuid) -> Result<Vec<String>, StoreError> {
        self.strings(
            "SELECT user FROM session_auditors WHERE session = ?1 ORDER BY user",
            &id.to_string(),
        )
    }

    fn set_session_auditors(
        &self,
        id: Uuid,
        auditors: &[String],
        by: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let exists = tx
            .query_row(
                "SELECT 1 FROM sessions WHERE id = ?1",
                [id.to_string()],
                |_| Ok(()),
            )
            .optional()
            .map_err(self.sql())?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound(format!("no session {id}")));
        }
        check_auditors(&tx, auditors).map_err(|e| self.sql_or(e))?;
        tx.execute(
            "DELETE FROM session_auditors WHERE session = ?1",
            [id.to_string()],
        )
        .map_err(self.sql())?;
        for a in auditors {
            tx.execute(
                "INSERT OR IGNORE INTO session_auditors (session, user) VALUES (?1, ?2)",
                params![id.to_string(), a],
            )
            .map_err(self.sql())?;
        }
        log_access_conn(&tx, by, "configure-auditors", Some(id), &auditors.join(","))
            .map_err(self.sql())?;
        tx.commit().map_err(self.sql())
    }

    fn rule_auditors(&self, rule: &str) -> Result<Vec<String>, StoreError> {
        self.strings(
            "SELECT user FROM rule_auditors WHERE rule = ?1 ORDER BY user",
            rule,
        )
    }

    fn set_rule_auditors(&self, rule: &str, auditors: &[String]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        check_auditors(&tx, auditors).map_err(|e| self.sql_or(e))?;
        tx.execute("DELETE FROM rule_auditors WHERE rule = ?1", [rule])
            .map_err(self.sql())?;
        for a in auditors {
            tx.execute(
                "INSERT OR IGNORE INTO rule_auditors (rule, user) VALUES (?1, ?2)",
                params![rule, a],
            )
            .map_err(self.sql())?;
        }
        tx.commit().map_err(self.sql())
    }

    fn users(&self) -> Result<Vec<PlatformUser>, StoreError> {
        let conn = self.reader()?;
        let mut st = conn
            .prepare("SELECT name, role, created_at FROM users ORDER BY name")
            .map_err(self.sql())?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        rows.into_iter()
            .map(|(name, role, created_at)| {
                Ok(PlatformUser {
                    role: role_of(&name, &role)?,
                    name,
                    created_at,
                })
            })
            .collect()
    }

    fn user_login(&self, name: &str) -> Result<Option<(Role, String)>, StoreError> {
        let row: Option<(String, String)> = self
            .reader()?
            .query_row(
                "SELECT role, password_hash FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sql())?;
        row.map(|(role, hash)| Ok((role_of(name, &role)?, hash)))
            .transpose()
    }

    fn set_password(&self, name: &str, hash: &str, by: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let n = tx
            .execute(
                "UPDATE users SET password_hash = ?1 WHERE name = ?2",
                params![hash, name],
            )
            .map_err(self.sql())?;
        if n == 1 {
            tx.execute("DELETE FROM web_sessions WHERE user = ?1", [name])
                .map_err(self.sql())?;
            log_access_conn(&tx, by, "set-password", None, name).map_err(self.sql())?;
        }
        tx.commit().map_err(self.sql())?;
        Ok(n == 1)
    }

    fn remove_user(&self, name: &str, by: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let n = tx
            .execute("DELETE FROM users WHERE name = ?1", [name])
            .map_err(self.sql())?;
        if n == 1 {
            for table in ["web_sessions", "session_auditors", "rule_auditors"] {
                tx.execute(&format!("DELETE FROM {table} WHERE user = ?1"), [name])
                    .map_err(self.sql())?;
            }
            log_access_conn(&tx, by, "remove-account", None, name).map_err(self.sql())?;
        }
        tx.commit().map_err(self.sql())?;
        Ok(n == 1)
    }

    fn log_access(
        &self,
        user: &str,
        action: &str,
        session: Option<Uuid>,
        detail: &str,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        log_access_conn(&conn, user, action, session, detail).map_err(self.sql())
    }

    fn access_log(&self, limit: u64) -> Result<Vec<AccessEntry>, StoreError> {
        let conn = self.reader()?;
        let mut st = conn
            .prepare(
                "SELECT at, user, action, session, detail FROM access_log
                 ORDER BY at DESC, rowid DESC LIMIT ?1",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(AccessEntry {
                    at: r.get(0)?,
                    user: r.get(1)?,
                    action: r.get(2)?,
                    session: r.get(3)?,
                    detail: r.get(4)?,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    fn purge(&self, before: i64, by: &str) -> Result<Vec<PurgeEntry>, StoreError> {
        let now = now_us();
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let victims: Vec<(i64, String, String, String, String, i64, i64)> = tx
            .prepare(
                "SELECT num, id, kind, user, hostname, started_at, bytes FROM sessions
                 WHERE started_at < ?1 AND hold = 0",
            )
            .and_then(|mut st| {
                st.query_map([before], |r| r.try_into())?
                    .collect::<Result<_, _>>()
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for (num, id, kind, user, hostname, started_at, bytes) in victims {
            let run = || -> rusqlite::Result<()> {
                if kind == "recording" {
                    tx.execute(
                        "DELETE FROM chunks WHERE rec = (SELECT num FROM recordings WHERE id = ?1)",
                        [&id],
                    )?;
                    tx.execute("DELETE FROM recordings WHERE id = ?1", [&id])?;
                } else {
                    tx.execute("DELETE FROM logins WHERE id = ?1", [&id])?;
                }
                tx.execute("DELETE FROM session_text WHERE rowid = ?1", [num])?;
                tx.execute("DELETE FROM session_auditors WHERE session = ?1", [&id])?;
                tx.execute("DELETE FROM sessions WHERE num = ?1", [num])?;
                tx.execute(
                    "INSERT INTO purge_log (at, by, session, user, hostname, started_at, bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![now, by, id, user, hostname, started_at, bytes],
                )?;
                Ok(())
            };
            run().map_err(self.sql())?;
            tracing::info!(session = %id, %user, %hostname, by, "purged (older than the retention)");
            out.push(PurgeEntry {
                at: now,
                by: by.to_string(),
                session: id,
                user,
                hostname,
                started_at,
                bytes: count(bytes),
            });
        }
        // Audit events follow the same retention (nothing holds them).
        let events = tx
            .execute("DELETE FROM audit_events WHERE at < ?1", [before])
            .map_err(self.sql())?;
        if events > 0 {
            log_access_conn(
                &tx,
                by,
                "purge-audit",
                None,
                &format!("{events} audit events"),
            )
            .map_err(self.sql())?;
            tracing::info!(events, by, "audit events purged (older than the retention)");
        }
        // Logins whose recordings are all gone leave no row behind them.
        tx.execute(
            "DELETE FROM logins WHERE opened_at < ?1
               AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = logins.id OR s.login_id = logins.id)
               AND NOT EXISTS (SELECT 1 FROM recordings r WHERE json_extract(r.row, '$.login_id') = logins.id)",
            [before],
        )
        .map_err(self.sql())?;
        tx.commit().map_err(self.sql())?;
        Ok(out)
    }

    fn purge_log(&self, limit: u64) -> Result<Vec<PurgeEntry>, StoreError> {
        let conn = self.reader()?;
        let mut st = conn
            .prepare(
                "SELECT at, by, session, user, hostname, started_at, bytes FROM purge_log
                 ORDER BY at DESC, rowid DESC LIMIT ?1",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(PurgeEntry {
                    at: r.get(0)?,
                    by: r.get(1)?,
                    session: r.get(2)?,
                    user: r.get(3)?,
                    hostname: r.get(4)?,
                    started_at: r.get(5)?,
                    bytes: count(r.get(6)?),
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    fn host_rows(&self) -> Result<Vec<HostRow>, StoreError> {
        let conn = self.reader()?;
        let mut st = conn
            .prepare(
                "SELECT h.id, h.hostname, h.enrolled_at, h.last_seen, h.revoked_at,
                    (SELECT count(*) FROM sessions s WHERE s.host_id = h.id),
                    p.pending_bytes, p.pending_recordings, p.at,
                    (SELECT count(*) FROM sessions s
                      WHERE s.host_id = h.id AND s.status = 'unrecorded'),
                    h.state,
                    (SELECT count(*) FROM endpoint_user_hosts e WHERE e.host_id = h.id),
                    (SELECT count(*) FROM endpoint_user_hosts e JOIN endpoint_users u
                       ON u.name = e.name WHERE e.host_id = h.id AND u.approved_at IS NULL)
                 FROM hosts h LEFT JOIN host_reports p ON p.host_id = h.id
                 ORDER BY h.hostname, h.id",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    HostRow {
                        id: Uuid::nil(),
                        hostname: r.get(1)?,
                        enrolled_at: r.get(2)?,
                        last_seen: r.get(3)?,
                        revoked_at: r.get(4)?,
                        sessions: count(r.get(5)?),
                        pending_bytes: r.get::<_, Option<i64>>(6)?.map(count),
                        pending_recordings: r.get::<_, Option<i64>>(7)?.map(count),
                        reported_at: r.get(8)?,
                        unrecorded: count(r.get(9)?),
                        state: r.get(10)?,
                        users: count(r.get(11)?),
                        users_unapproved: count(r.get(12)?),
                    },
                ))
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        rows.into_iter()
            .map(|(id, mut h)| {
                h.id = parse_uuid("host id", &id)?;
                Ok(h)
            })
            .collect()
    }

    fn host_report(
        &self,
        host: Uuid,
        pending_recordings: u64,
        pending_bytes: u64,
    ) -> Result<(), StoreError> {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.conn()
            .execute(
                "INSERT INTO host_reports (host_id, at, pending_recordings, pending_bytes)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (host_id) DO UPDATE SET at = excluded.at,
                    pending_recordings = excluded.pending_recordings,
                    pending_bytes = excluded.pending_bytes",
                params![
                    host.to_string(),
                    now_us(),
                    n(pending_recordings),
                    n(pending_bytes)
                ],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    fn add_web_session(
        &self,
        token: &[u8; 32],
        user: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let now = now_us();
        let conn = self.conn();
        conn.execute("DELETE FROM web_sessions WHERE expires_at < ?1", [now])
            .map_err(self.sql())?;
        conn.execute(
            "INSERT INTO web_sessions (token_hash, user, csrf, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![token.as_slice(), user, csrf, now, expires_at],
        )
        .map_err(self.sql())?;
        Ok(())
    }

    fn web_session(&self, token: &[u8; 32], now: i64) -> Result<Option<WebSession>, StoreError> {
        let row: Option<(String, String, String)> = self
            .reader()?
            .query_row(
                "SELECT w.user, u.role, w.csrf FROM web_sessions w JOIN users u ON u.name = w.user
                 WHERE w.token_hash = ?1 AND w.expires_at > ?2",
                params![token.as_slice(), now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.sql())?;
        row.map(|(user, role, csrf)| {
            Ok(WebSession {
                role: role_of(&user, &role)?,
                user,
                csrf,
            })
        })
        .transpose()
    }

    fn end_web_session(&self, token: &[u8; 32]) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "DELETE FROM web_sessions WHERE token_hash = ?1",
                [token.as_slice()],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    fn decide_host(&self, id: Uuid, approve: bool, by: &str) -> Result<bool, StoreError> {
        let now = now_us();
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let n = if approve {
            tx.execute(
                "UPDATE hosts SET state = 'approved', decided_at = ?1, decided_by = ?2
                 WHERE id = ?3 AND revoked_at IS NULL",
                params![now, by, id.to_string()],
            )
        } else {
            tx.execute(
                "UPDATE hosts SET state = 'rejected', decided_at = ?1, decided_by = ?2,
                    revoked_at = coalesce(revoked_at, ?1)
                 WHERE id = ?3 AND state <> 'approved'",
                params![now, by, id.to_string()],
            )
        }
        .map_err(self.sql())?;
        if n == 1 && approve {
            tx.execute(
                "UPDATE sessions SET quarantined = 0 WHERE host_id = ?1",
                [id.to_string()],
            )
            .map_err(self.sql())?;
        }
        if n == 1 {
            log_access_conn(
                &tx,
                by,
                if approve {
                    "approve-host"
                } else {
                    "reject-host"
                },
                None,
                &id.to_string(),
            )
            .map_err(self.sql())?;
        }
        tx.commit().map_err(self.sql())?;
        Ok(n == 1)
    }

    fn endpoint_users(&self) -> Result<Vec<EndpointUser>, StoreError> {
        let conn = self.reader()?;
        let mut st = conn
            .prepare(
                "SELECT u.name, u.approved_at, u.approved_by, u.first_seen, u.last_seen,
                    (SELECT group_concat(h.hostname, char(10)) FROM endpoint_user_hosts e
                       JOIN hosts h ON h.id = e.host_id WHERE e.name = u.name),
                    (SELECT count(*) FROM sessions s WHERE s.user = u.name)
                 FROM endpoint_users u ORDER BY u.name",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map([], |r| {
                let hosts: Option<String> = r.get(5)?;
                let mut hosts: Vec<String> = hosts
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect();
                hosts.sort();
                Ok(EndpointUser {
                    name: r.get(0)?,
                    approved_at: r.get(1)?,
                    approved_by: r.get(2)?,
                    first_seen: r.get(3)?,
                    last_seen: r.get(4)?,
                    hosts,
                    sessions: count(r.get(6)?),
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    fn approve_user(&self, name: &str, approve: bool, by: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let n = if approve {
            tx.execute(
                "UPDATE endpoint_users SET approved_at = coalesce(approved_at, ?1),
                    approved_by = coalesce(approved_by, ?2) WHERE name = ?3",
                params![now_us(), by, name],
            )
        } else {
            tx.execute(
                "UPDATE endpoint_users SET approved_at = NULL, approved_by = NULL WHERE name = ?1",
                [name],
            )
        }
        .map_err(self.sql())?;
        if n == 1 {
            let action = if approve {
                "approve-user"
            } else {
                "unapprove-user"
            };
            log_access_conn(&tx, by, action, None, name).map_err(self.sql())?;
        }
        tx.commit().map_err(self.sql())?;
        Ok(n == 1)
    }

    fn approve_host_users(&self, host: Uuid, by: &str) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let n = tx
            .execute(
                "UPDATE endpoint_users SET approved_at = ?1, approved_by = ?2
                 WHERE approved_at IS NULL
                   AND name IN (SELECT name FROM endpoint_user_hosts WHERE host_id = ?3)",
                params![now_us(), by, host.to_string()],
            )
            .map_err(self.sql())?;
        log_access_conn(
            &tx,
            by,
            "approve-host-users",
            None,
            &format!("{host}: {n} users"),
        )
        .map_err(self.sql())?;
        tx.commit().map_err(self.sql())?;
        Ok(n as u64)
    }

    fn approved_scopes(&self) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let conn = self.reader()?;
        let list = |sql: &str| -> Result<Vec<String>, StoreError> {
            let mut st = conn.prepare(sql).map_err(self.sql())?;
            let rows = st.query_map([], |r| r.get(0)).map_err(self.sql())?;
            rows.collect::<Result<_, _>>().map_err(self.sql())
        };
        Ok((
            list(
                "SELECT DISTINCT hostname FROM hosts
                 WHERE state = 'approved' AND revoked_at IS NULL ORDER BY hostname",
            )?,
            list("SELECT name FROM endpoint_users WHERE approved_at IS NOT NULL ORDER BY name")?,
        ))
    }

    fn audit_events(&self, q: &AuditQuery) -> Result<(u64, Vec<AuditRow>), StoreError> {
        let mut cond: Vec<&str> = vec!["h.state = 'approved'"];
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        if !q.user.trim().is_empty() {
            let (lo, hi) = prefix_range(&q.user);
            cond.push("a.user >= ? AND a.user < ?");
            args.push(Box::new(lo));
            args.push(Box::new(hi));
        }
        if !q.host.trim().is_empty() {
            let (lo, hi) = prefix_range(&q.host);
            cond.push("h.hostname >= ? AND h.hostname < ?");
            args.push(Box::new(lo));
            args.push(Box::new(hi));
        }
        if !q.kind.trim().is_empty() {
            cond.push("a.kind = ?");
            args.push(Box::new(q.kind.trim().to_string()));
        }
        if !q.program.trim().is_empty() {
            cond.push("a.body LIKE ? ESCAPE '\\'");
            args.push(Box::new(contains(&q.program)));
        }
        if let Some(from) = q.from {
            cond.push("a.at >= ?");
            args.push(Box::new(from));
        }
        if let Some(to) = q.to {
            cond.push("a.at < ?");
            args.push(Box::new(to));
        }
        let filter = format!(
            "FROM audit_events a JOIN hosts h ON h.id = a.host_id WHERE {}",
            cond.join(" AND ")
        );
        let conn = self.reader()?;
        let total: i64 = conn
            .prepare_cached(&format!("SELECT count(*) {filter}"))
            .and_then(|mut st| st.query_row(params_from_iter(args.iter()), |r| r.get(0)))
            .map_err(self.sql())?;
        args.push(Box::new(
            i64::try_from(q.limit.clamp(1, 500)).unwrap_or(100),
        ));
        args.push(Box::new(i64::try_from(q.offset).unwrap_or(i64::MAX)));
        let rows: Vec<(String, i64, String, String, String, String)> = conn
            .prepare_cached(&format!(
                "SELECT a.id, a.at, a.kind, a.user, h.hostname, a.body {filter}
                 ORDER BY a.at DESC, a.id DESC LIMIT ? OFFSET ?"
            ))
            .and_then(|mut st| {
                st.query_map(params_from_iter(args.iter()), |r| r.try_into())?
                    .collect::<Result<_, _>>()
            })
            .map_err(self.sql())?;
        let rows = rows
            .into_iter()
            .map(|(id, at, kind, user, hostname, body)| {
                Ok(AuditRow {
                    body: from_json(&format!("audit event {id}"), &body)?,
                    id,
                    at,
                    kind,
                    user,
                    hostname,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((count(total), rows))
    }

    fn unindexed(&self, limit: u64, max_bytes: u64) -> Result<Vec<Uuid>, StoreError> {
        let ids = {
            let conn = self.reader()?;
            let mut st = conn
                .prepare_cached(
                    "SELECT id FROM sessions WHERE indexed = 0 AND status = 'ended'
                       AND kind = 'recording' AND bytes <= ?2 ORDER BY num LIMIT ?1",
                )
                .map_err(self.sql())?;
            let rows = st
                .query_map(
                    params![
                        i64::try_from(limit).unwrap_or(i64::MAX),
                        i64::try_from(max_bytes).unwrap_or(i64::MAX)
                    ],
                    |r| r.get::<_, String>(0),
                )
                .map_err(self.sql())?;
            rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())?
        };
        ids.iter().map(|s| parse_uuid("session id", s)).collect()
    }

    fn index_text(&self, id: Uuid, text: Option<(&str, &str)>) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let num: Option<i64> = tx
            .query_row(
                "SELECT num FROM sessions WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())?;
        let Some(num) = num else {
            return Ok(());
        };
        tx.execute("DELETE FROM session_text WHERE rowid = ?1", [num])
            .map_err(self.sql())?;
        let state = match text {
            Some((transcript, commands)) => {
                tx.execute(
                    "INSERT INTO session_text (rowid, transcript, commands) VALUES (?1, ?2, ?3)",
                    params![num, transcript, commands],
                )
                .map_err(self.sql())?;
                1
            }
            None => 2,
        };
        tx.execute(
            "UPDATE sessions SET indexed = ?1 WHERE num = ?2",
            params![state, num],
        )
        .map_err(self.sql())?;
        tx.commit().map_err(self.sql())
    }
}

impl SqliteStore {
    fn strings(&self, sql: &str, arg: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.reader()?;
        let mut st = conn.prepare_cached(sql).map_err(self.sql())?;
        let rows = st.query_map([arg], |r| r.get(0)).map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    fn sql_or(&self, e: AuditorError) -> StoreError {
        match e {
            AuditorError::Sql(e) => self.sql()(e),
            AuditorError::NotAuditor(name) => {
                StoreError::Invalid(format!("{name:?} is not an auditor"))
            }
        }
    }
}

enum AuditorError {
    Sql(rusqlite::Error),
    NotAuditor(String),
}

fn check_auditors(tx: &Transaction<'_>, names: &[String]) -> Result<(), AuditorError> {
    for name in names {
        let role: Option<String> = tx
            .query_row("SELECT role FROM users WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(AuditorError::Sql)?;
        if role.as_deref() != Some(Role::Auditor.as_str()) {
            return Err(AuditorError::NotAuditor(name.clone()));
        }
    }
    Ok(())
}

fn log_access_conn(
    conn: &rusqlite::Connection,
    user: &str,
    action: &str,
    session: Option<Uuid>,
    detail: &str,
) -> Sql {
    conn.execute(
        "INSERT INTO access_log (at, user, action, session, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            now_us(),
            user,
            action,
            session.map(|s| s.to_string()),
            detail
        ],
    )?;
    Ok(())
}

fn role_of(user: &str, role: &str) -> Result<Role, StoreError> {
    Role::parse(role).ok_or_else(|| StoreError::Corrupt {
        what: format!("user {user}"),
        detail: format!("unknown role {role:?}"),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::{NewHost, Store};

    fn store() -> (tempfile::TempDir, SqliteStore, Uuid) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        let token = [7u8; 32];
        s.add_enroll_token(&token, i64::MAX).unwrap();
        let host = Uuid::now_v7();
        s.enroll(
            &token,
            &NewHost {
                id: host,
                hostname: "ws1".into(),
                secret_hash: [0; 32],
                enrolled_at: 0,
            },
        )
        .unwrap();
        s.decide_host(host, true, "test").unwrap();
        for (name, role) in [
            ("ada", Role::Admin),
            ("ann", Role::Auditor),
            ("abe", Role::Auditor),
        ] {
            s.add_user(name, role, "x").unwrap();
        }
        (dir, s, host)
    }

    /// An ended login-shell recording of carol (primary group ops) that announced 2 chunks.
    fn recording(rule: &str, login: Option<Uuid>, started: i64) -> RecordingRow {
        let mut row = crate::fixtures::recording_row(Uuid::now_v7(), "ws1");
        let m = &mut row.meta;
        (m.user, m.group, m.rule, m.login_id, m.started_at) = (
            "carol".into(),
            "ops".into(),
            Some(rule.into()),
            login,
            started,
        );
        (row.ended_at, row.exit_code) = (Some(started + 1), Some(0));
        (row.state, row.chunks) = (libsegura::spool::RecordingState::Ended, 2);
        row
    }

    fn viewer(name: &str, role: Role) -> Viewer {
        Viewer {
            name: name.into(),
            role,
        }
    }

    fn all() -> SessionQuery {
        SessionQuery {
            limit: 50,
            descending: true,
            ..Default::default()
        }
    }

    #[test]
    fn auditors_see_sessions_of_their_rules_and_their_own_only() {
        let (_d, s, host) = store();
        let by_rule = recording("record ops", None, 10);
        let direct = recording("other", None, 20);
        let unseen = recording("other", None, 30);
        for r in [&by_rule, &direct, &unseen] {
            s.put_recording(host, r).unwrap();
        }
        s.set_rule_auditors("record ops", &["ann".into()]).unwrap();
        s.set_session_auditors(direct.meta.id, &["ann".into()], "ada")
            .unwrap();
        let ann = viewer("ann", Role::Auditor);
        let ids: Vec<Uuid> = s
            .sessions(&ann, &all())
            .unwrap()
            .entries
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, vec![direct.meta.id, by_rule.meta.id]);
        assert!(matches!(
            s.session(&ann, unseen.meta.id),
            Err(StoreError::Forbidden(_))
        ));
        assert_eq!(
            s.sessions(&viewer("abe", Role::Auditor), &all())
                .unwrap()
                .total,
            0
        );
        assert_eq!(
            s.sessions(&viewer("ada", Role::Admin), &all())
                .unwrap()
                .total,
            3
        );
        // Only auditors can be assigned.
        assert!(s
            .set_session_auditors(direct.meta.id, &["ada".into()], "ada")
            .is_err());
    }

    #[test]
    fn status_unrecorded_logins_and_a_purge_that_spares_held_sessions() {
        let (_d, s, host) = store();
        let admin = viewer("ada", Role::Admin);
        // Announced 2 chunks, holds none: pending upload.
        let rec = recording("r", None, 10);
        s.put_recording(host, &rec).unwrap();
        assert_eq!(
            s.session(&admin, rec.meta.id).unwrap().status,
            Status::Pending
        );
        let login: LoginRow = serde_json::from_value(json!({
            "id": Uuid::now_v7(), "user": "dave", "uid": 1001, "gid": 1001, "group": "dev",
            "host": "ws1", "service": "sshd", "tty": "ssh", "rhost": null, "ruser": null,
            "rule": "r", "opened_at": 5, "state": "unrecorded", "attached_at": null,
            "ended_at": 6, "recordings": 0
        }))
        .unwrap();
        s.put_login(host, &login).unwrap();
        let q = SessionQuery {
            status: Some(Status::Unrecorded),
            ..all()
        };
        let page = s.sessions(&admin, &q).unwrap();
        assert_eq!(page.total, 1);
        assert_eq!(page.entries[0].user, "dave");
        assert_eq!(page.entries[0].hostname, "ws1");
        // A recording of that login takes its place in the list.
        let attached = recording("r", Some(login.meta.id), 7);
        s.put_recording(host, &attached).unwrap();
        assert_eq!(s.sessions(&admin, &q).unwrap().total, 0);
        assert_eq!(s.sessions(&admin, &all()).unwrap().total, 2);

        s.set_hold(rec.meta.id, true, "ada").unwrap();
        let gone = s.purge(100, "test").unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].session, attached.meta.id.to_string());
        let left = s.sessions(&admin, &all()).unwrap();
        assert_eq!(left.total, 1);
        assert_eq!(left.entries[0].id, rec.meta.id);
        assert!(s.recording(&attached.meta.id.to_string()).is_err());
        assert_eq!(s.purge_log(10).unwrap().len(), 1);
        // Audit events older than the retention go too.
        let old = libsegura::spool::AuditEvent {
            id: Uuid::now_v7(),
            at: 50,
            kind: "binary-run".into(),
            user: "carol".into(),
            host: "ws1".into(),
            body: json!({}),
        };
        let new = libsegura::spool::AuditEvent {
            id: Uuid::now_v7(),
            at: 500,
            ..old.clone()
        };
        s.add_audit(host, &[old, new]).unwrap();
        s.purge(100, "test").unwrap();
        let (n, left) = s
            .audit_events(&AuditQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!((n, left[0].at), (1, 500));
    }

    #[test]
    fn text_search_takes_words_not_fts_syntax() {
        assert_eq!(fts_query("  "), None);
        assert_eq!(fts_query("a NEAR(b"), Some("\"a\" \"NEAR(b\"".into()));
        assert_eq!(
            fts_query("say \"hi\""),
            Some("\"say\" \"\"\"hi\"\"\"".into())
        );
        assert_eq!(contains("50%_x\\"), r"%50\%\_x\\%");
    }
}
