//! Hosts (enrolled workstations, what their agents report, revocation), the access log and
//! retention (the purge log, and running the purge now).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use libsegura::time::now_us;
use maud::html;
use uuid::Uuid;

use super::page::{self, bytes, csrf, time, visible, Nav};
use super::AdminForm;
use super::{blocking, error_page, redirect, Refused, Signed};
use crate::api::Shared;
use crate::catalog::Catalog;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/hosts", get(hosts))
        .route("/hosts/{id}/revoke", post(revoke))
        .route("/hosts/{id}/approve", post(approve_host))
        .route("/hosts/{id}/reject", post(reject_host))
        .route("/hosts/{id}/approve-users", post(approve_host_users))
        .route("/users", get(users))
        .route("/users/{name}/approve", post(approve_user))
        .route("/users/{name}/unapprove", post(unapprove_user))
        .route("/access-log", get(access_log))
        .route("/purge", post(purge_now))
}

async fn hosts(State(state): State<Shared>, signed: Signed) -> Response {
    if let Err(r) = signed.admin() {
        return r.into_response();
    }
    let cat = state.catalog.clone();
    let rows = match blocking(move || cat.host_rows()).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    page::layout(
        "Hosts",
        &signed,
        Nav::Hosts,
        html! {
                    h1 { "Hosts" }
        p.count { (rows.len()) " enrolled hosts" @let pending = rows.iter().filter(|h| h.state == "pending").count();
                    @if pending > 0 { " · " span.warn { (pending) " waiting for approval: their uploads are kept in quarantine until then" } } }
                    table.hosts {
                        thead { tr {
                            th { "Host" } th { "Enrolled" } th { "Last contact" } th { "Sessions" }
        th { "Pending upload (agent's report)" } th { "Unrecorded logins" } th { "Users" } th { "Approval" } th { "Credential" } th { "Action" }
                        } }
                        tbody { @for h in &rows {
                            tr data-host=(h.hostname) {
                                td { (visible(&h.hostname)) br; small { code { (h.id) } } }
                                td { (time(h.enrolled_at)) }
                                td { (h.last_seen.map(time).unwrap_or_else(|| "never".into())) }
                                td { a href=(format!("/sessions?host={}", super::urlencode(&h.hostname))) { (h.sessions) } }
                                td { @match (h.pending_bytes, h.pending_recordings, h.reported_at) {
                                    (Some(b), Some(n), Some(at)) => { (bytes(b)) " in " (n) " recordings" br; small { "reported " (time(at)) } },
                                    _ => { "no report yet" },
                                } }
                                td { @if h.unrecorded > 0 {
                                    a.warn href=(format!("/sessions?host={}&status=unrecorded", super::urlencode(&h.hostname))) { (h.unrecorded) }
                                } @else { "0" } }
        td { (h.users) @if h.users_unapproved > 0 { " (" span.warn { (h.users_unapproved) " not approved" } ")" } }
                            td { span class=(format!("approval {}", h.state)) { (h.state) }
                                 @if h.state == "pending" && h.sessions > 0 { br; small { (h.sessions) " sessions in quarantine" } } }
                            td { @if let Some(at) = h.revoked_at { "revoked " (time(at)) } @else { "active" } }
                            td.actions {
                                @if h.state == "pending" && h.revoked_at.is_none() {
                                    form.inline method="post" action=(format!("/hosts/{}/approve", h.id)) {
                                        (csrf(&signed)) button type="submit" { "Approve" }
                                    }
                                    form.inline method="post" action=(format!("/hosts/{}/reject", h.id)) {
                                        (csrf(&signed))
                                        button type="submit" data-confirm="Reject this host? Its credential is refused from now on; what it sent stays in quarantine." { "Reject" }
                                    }
                                }
                                @if h.users_unapproved > 0 {
                                    form.inline method="post" action=(format!("/hosts/{}/approve-users", h.id)) {
                                        (csrf(&signed)) button type="submit" { "Approve its users" }
                                    }
                                }
                                @if h.revoked_at.is_none() {
                                    form.inline method="post" action=(format!("/hosts/{}/revoke", h.id)) {
                                        (csrf(&signed))
                                        button type="submit" data-confirm="Revoke this host's credential? Its uploads are refused from now on." { "Revoke" }
                                    }
                                }
                            }
                            }
                        } }
                    }
                },
    )
}

fn host_id(id: &str) -> Result<Uuid, Refused> {
    Uuid::parse_str(id).map_err(|_| Refused(StatusCode::NOT_FOUND, "no such host"))
}

async fn approve_host(
    State(state): State<Shared>,
    Path(id): Path<String>,
    f: AdminForm,
) -> Response {
    decide(state, f.signed, id, true).await
}

async fn reject_host(
    State(state): State<Shared>,
    Path(id): Path<String>,
    f: AdminForm,
) -> Response {
    decide(state, f.signed, id, false).await
}

async fn decide(state: Shared, signed: Signed, id: String, approve: bool) -> Response {
    let id = match host_id(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let cat = state.catalog.clone();
    let by = signed.viewer.name.clone();
    match blocking(move || cat.decide_host(id, approve, &by)).await {
        Ok(true) => {
            tracing::info!(host = %id, approve, by = %signed.viewer.name, "host decided");
            redirect("/hosts")
        }
        Ok(false) => error_page(
            StatusCode::CONFLICT,
            "this host cannot be decided on (unknown, revoked, or already approved: revoke it instead)",
        ),
        Err(e) => e.into_response(),
    }
}

async fn approve_host_users(
    State(state): State<Shared>,
    Path(id): Path<String>,
    AdminForm { signed, .. }: AdminForm,
) -> Response {
    let id = match host_id(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let cat = state.catalog.clone();
    let by = signed.viewer.name.clone();
    match blocking(move || cat.approve_host_users(id, &by)).await {
        Ok(_) => redirect("/hosts"),
        Err(e) => e.into_response(),
    }
}

async fn users(State(state): State<Shared>, signed: Signed) -> Response {
    if let Err(r) = signed.admin() {
        return r.into_response();
    }
    let cat = state.catalog.clone();
    let rows = match blocking(move || cat.endpoint_users()).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    page::layout(
        "Users",
        &signed,
        Nav::Users,
        html! {
            h1 { "Endpoint users" }
            p { "Users seen on enrolled hosts. A recording belongs to the user with the identical username, on every host. Recordings of users not approved yet are kept and flagged." }
            p.count { (rows.len()) " users · " (rows.iter().filter(|u| u.approved_at.is_none()).count()) " not approved" }
            table.users {
                thead { tr { th { "Username" } th { "Hosts" } th { "First seen" } th { "Last seen" } th { "Sessions" } th { "Approval" } th { "Action" } } }
                tbody { @for u in &rows {
                    tr data-user=(u.name) {
                        td { (visible(&u.name)) }
                        td { (visible(&u.hosts.join(", "))) }
                        td { (time(u.first_seen)) }
                        td { (time(u.last_seen)) }
                        td { a href=(format!("/sessions?user={}", super::urlencode(&u.name))) { (u.sessions) } }
                        td { @match (&u.approved_at, &u.approved_by) {
                            (Some(at), by) => { span.approval.approved { "approved" } br; small { (time(*at)) @if let Some(b) = by { " by " (visible(b)) } } },
                            (None, _) => { span.approval.pending { "not approved" } },
                        } }
                        td.actions {
                            @let name = super::urlencode(&u.name);
                            @if u.approved_at.is_none() {
                                form.inline method="post" action=(format!("/users/{name}/approve")) {
                                    (csrf(&signed)) button type="submit" { "Approve" }
                                }
                            } @else {
                                form.inline method="post" action=(format!("/users/{name}/unapprove")) {
                                    (csrf(&signed)) button type="submit" { "Withdraw approval" }
                                }
                            }
                        }
                    }
                } }
            }
        },
    )
}

async fn approve_user(
    State(state): State<Shared>,
    Path(name): Path<String>,
    f: AdminForm,
) -> Response {
    set_user(state, f.signed, name, true).await
}

async fn unapprove_user(
    State(state): State<Shared>,
    Path(name): Path<String>,
    f: AdminForm,
) -> Response {
    set_user(state, f.signed, name, false).await
}

async fn set_user(state: Shared, signed: Signed, name: String, approve: bool) -> Response {
    let cat = state.catalog.clone();
    let by = signed.viewer.name.clone();
    match blocking(move || cat.approve_user(&name, approve, &by)).await {
        Ok(true) => redirect("/users"),
        Ok(false) => error_page(StatusCode::NOT_FOUND, "no such user has been seen"),
        Err(e) => e.into_response(),
    }
}

async fn revoke(
    State(state): State<Shared>,
    Path(id): Path<String>,
    AdminForm { signed, .. }: AdminForm,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return error_page(StatusCode::NOT_FOUND, "no such host");
    };
    let (store, cat) = (state.store.clone(), state.catalog.clone());
    let by = signed.viewer.name.clone();
    match blocking(move || {
        let found = store.revoke_host(id, now_us())?;
        cat.log_access(&by, "revoke-host", None, &id.to_string())?;
        Ok(found)
    })
    .await
    {
        Ok(true) => redirect("/hosts"),
        Ok(false) => error_page(StatusCode::NOT_FOUND, "no such host"),
        Err(e) => e.into_response(),
    }
}

async fn access_log(State(state): State<Shared>, signed: Signed) -> Response {
    if let Err(r) = signed.admin() {
        return r.into_response();
    }
    let cat = state.catalog.clone();
    let data = blocking(move || Ok((cat.access_log(500)?, cat.purge_log(200)?))).await;
    let (entries, purges) = match data {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let retention = state.web.retention;
    page::layout(
        "Access log",
        &signed,
        Nav::Log,
        html! {
            h1 { "Access log" }
            p { "Every view of a session, every download and every change an admin makes, newest first." }
            table.access {
                thead { tr { th { "When (UTC)" } th { "Who" } th { "What" } th { "Session" } th { "Detail" } } }
                tbody { @for e in &entries {
                    tr {
                        td { (time(e.at)) }
                        td { (visible(&e.user)) }
                        td { (e.action) }
                        td { @if let Some(s) = &e.session { a href=(format!("/sessions/{s}")) { code { (s) } } } }
                        td { (visible(&e.detail)) }
                    }
                } }
            }
            h2 #retention { "Retention" }
            p { "Recordings older than " (retention_label(retention)) " are purged automatically, except those under Prevent purge." }
            form.inline method="post" action="/purge" {
                (csrf(&signed))
                button type="submit" { "Run purge now" }
            }
            h3 { "Purge log" }
            table.purges {
                thead { tr { th { "When (UTC)" } th { "By" } th { "Session" } th { "User" } th { "Host" } th { "Started" } th { "Size" } } }
                tbody {
                    @for p in &purges {
                        tr {
                            td { (time(p.at)) } td { (visible(&p.by)) } td { code { (p.session) } }
                            td { (visible(&p.user)) } td { (visible(&p.hostname)) } td { (time(p.started_at)) } td { (bytes(p.bytes)) }
                        }
                    }
                    @if purges.is_empty() { tr { td colspan="7" { "Nothing purged yet." } } }
                }
            }
        },
    )
}

pub fn retention_label(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s => format!("{s} seconds"),
    }
}

async fn purge_now(State(state): State<Shared>, AdminForm { signed, .. }: AdminForm) -> Response {
    let cat = state.catalog.clone();
    let by = signed.viewer.name.clone();
    let retention = state.web.retention;
    match blocking(move || purge(&cat, retention, &by)).await {
        Ok(_) => redirect("/access-log#retention"),
        Err(e) => e.into_response(),
    }
}

fn purge(
    cat: &Arc<dyn Catalog>,
    retention: Duration,
    by: &str,
) -> Result<usize, crate::store::StoreError> {
    let before = now_us().saturating_sub(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX));
    let gone = cat.purge(before, by)?;
    cat.log_access(
        by,
        "purge",
        None,
        &format!(
            "{} sessions older than {}",
            gone.len(),
            retention_label(retention)
        ),
    )?;
    Ok(gone.len())
}

/// Purges every `every` (a thread).
pub fn start_purger(
    cat: Arc<dyn Catalog>,
    retention: Duration,
    every: Duration,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("purge".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            match purge(&cat, retention, "retention job") {
                Ok(n) => tracing::info!(purged = n, "retention purge"),
                Err(e) => tracing::warn!("retention purge: {e}"),
            }
        })
        .map(|_| ())
}
