//! Hosts (enrolled workstations, what their agents report, revocation), the access log and
//! retention (the purge log, and running the purge now).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use libsegura::time::now_us;
use maud::html;
use uuid::Uuid;

use super::page::{self, bytes, csrf, time, visible, Nav};
use super::{blocking, error_page, redirect, Form, Signed};
use crate::api::Shared;
use crate::catalog::Catalog;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/hosts", get(hosts))
        .route("/hosts/{id}/revoke", post(revoke))
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
            p.count { (rows.len()) " enrolled hosts" }
            table.hosts {
                thead { tr {
                    th { "Host" } th { "Enrolled" } th { "Last contact" } th { "Sessions" }
                    th { "Pending upload (agent's report)" } th { "Unrecorded logins" } th { "Status" } th { "Action" }
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
                        td { @if let Some(at) = h.revoked_at { "revoked " (time(at)) } @else { "active" } }
                        td { @if h.revoked_at.is_none() {
                            form.inline method="post" action=(format!("/hosts/{}/revoke", h.id)) {
                                (csrf(&signed))
                                button type="submit" data-confirm="Revoke this host's credential? Its uploads are refused from now on." { "Revoke" }
                            }
                        } }
                    }
                } }
            }
        },
    )
}

async fn revoke(
    State(state): State<Shared>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.admin_form(&form) {
        return r.into_response();
    }
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

async fn purge_now(State(state): State<Shared>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.admin_form(&form) {
        return r.into_response();
    }
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
