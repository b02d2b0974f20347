//! Remote Sessions: the list with its filters, and per session its Session Log, Session Video,
//! asciicast download, Prevent purge and Configure auditors; plus the indexer that makes
//! transcripts and commands searchable.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use libsegura::export::{commands, transcript, write_asciicast, ExportError, Item, Timeline};
use maud::{html, Markup};
use uuid::Uuid;

use super::page::{self, bytes, csrf, duration, offset, time, visible, Nav};
use super::AdminForm;
use super::{blocking, error_page, redirect, with_param, Form, Refused, Signed};
use crate::api::Shared;
use crate::catalog::{Catalog, SessionEntry, SessionQuery, Sort, Status};
use crate::store::{Role, Store, StoreError};

/// Rows per page of the list.
const PAGE_ROWS: u64 = 50;
/// The most of a transcript the full-text index takes.
const MAX_INDEXED_TEXT: usize = 8 << 20;
/// Recordings up to this size (payload bytes) are read whole for the Session Log, the Session
/// Video and the text index; larger ones are offered as a download (or `admin export`).
pub const MAX_IN_BROWSER: u64 = 64 << 20;
/// The largest recording the web UI exports as asciicast (it is built in memory).
const MAX_DOWNLOAD: u64 = 512 << 20;

/// What the page says instead of reading a recording too large for it.
fn too_large(e: &SessionEntry) -> Markup {
    html! {
        p.note role="status" {
            "This recording holds " (bytes(e.bytes)) ", more than the " (bytes(MAX_IN_BROWSER))
            " the browser pages read whole. "
            @if e.bytes <= MAX_DOWNLOAD {
                a href=(format!("/sessions/{}/cast?download=1", e.id)) { "Download it as asciicast" }
                " and replay it with asciinema, or export it on the platform host: "
            } @else { "Export it on the platform host: " }
            code { "segura-server admin export " (e.id) " --format asciicast|text --data DIR" }
        }
    }
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/sessions", get(list))
        .route("/sessions/{id}", get(log))
        .route("/sessions/{id}/video", get(video))
        .route("/sessions/{id}/cast", get(cast))
        .route("/sessions/{id}/hold", post(hold))
        .route(
            "/sessions/{id}/auditors",
            get(auditors_form).post(auditors_save),
        )
}

/// The filters of the list, as the form and the query string carry them.
const FILTERS: [&str; 8] = [
    "user", "host", "group", "service", "from", "to", "status", "q",
];

fn parse_query(form: &Form) -> (SessionQuery, Vec<String>) {
    let mut errors = Vec::new();
    let mut date = |key: &str, end: bool| -> Option<i64> {
        let v = form.get(key).trim();
        if v.is_empty() {
            return None;
        }
        match parse_date(v, end) {
            Some(us) => Some(us),
            None => {
                errors.push(format!(
                    "{key}: {v:?} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)"
                ));
                None
            }
        }
    };
    let from = date("from", false);
    let to = date("to", true);
    let status = match form.get("status") {
        "" => None,
        s => {
            let st = Status::parse(s);
            if st.is_none() {
                errors.push(format!("state: unknown state {s:?}"));
            }
            st
        }
    };
    let page: u64 = form.get("page").parse().unwrap_or(1).max(1);
    let q = SessionQuery {
        user: form.get("user").to_string(),
        host: form.get("host").to_string(),
        group: form.get("group").to_string(),
        service: form.get("service").to_string(),
        from,
        to,
        status,
        text: form.get("q").to_string(),
        sort: Sort::parse(form.get("sort")).unwrap_or_default(),
        descending: form.get("dir") != "asc",
        offset: (page - 1).saturating_mul(PAGE_ROWS),
        limit: PAGE_ROWS,
    };
    (q, errors)
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]` (UTC) as µs since the epoch; a bare date as an end
/// of range means the end of that day.
pub fn parse_date(s: &str, end: bool) -> Option<i64> {
    let (d, t) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut dp = d.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (dp.next()??, dp.next()??, dp.next()??);
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let secs_of_day = match t {
        Some(t) => {
            let mut tp = t.split(':').map(|p| p.parse::<i64>().ok());
            let (h, mi) = (tp.next()??, tp.next()??);
            let sec = tp.next().unwrap_or(Some(0))?;
            if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..61).contains(&sec) {
                return None;
            }
            h * 3600 + mi * 60 + sec
        }
        None if end => 86_400,
        None => 0,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + secs_of_day) * 1_000_000)
}

async fn list(State(state): State<Shared>, signed: Signed, uri: Uri) -> Response {
    let form = Form::query(uri.query());
    let (q, errors) = parse_query(&form);
    let cat = state.catalog.clone();
    let viewer = signed.viewer.clone();
    let query = q.clone();
    let page = match blocking(move || cat.sessions(&viewer, &query)).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let params: HashMap<String, String> = FILTERS
        .iter()
        .chain(["sort", "dir"].iter())
        .map(|k| (k.to_string(), form.get(k).to_string()))
        .collect();
    let admin = signed.viewer.is_admin();
    let current_page = q.offset / PAGE_ROWS + 1;
    let pages = page.total.div_ceil(PAGE_ROWS).max(1);
    let first = if page.total == 0 { 0 } else { q.offset + 1 };
    let last = q.offset + page.entries.len() as u64;
    let sort_link = |s: Sort, label: &str| {
        let dir = if q.sort == s && q.descending {
            "asc"
        } else {
            "desc"
        };
        let mut p = params.clone();
        p.insert("sort".into(), s.as_str().into());
        let href = format!("/sessions?{}", with_param(&p, "dir", dir));
        let mark = match (q.sort == s, q.descending) {
            (true, true) => " ▾",
            (true, false) => " ▴",
            _ => "",
        };
        html! { a href=(href) { (label) (mark) } }
    };
    page::layout(
        "Remote Sessions",
        &signed,
        Nav::Sessions,
        html! {
            h1 { "Remote Sessions" }
            form.filters method="get" action="/sessions" {
                label { "User" input name="user" value=(form.get("user")); }
                label { "Host" input name="host" value=(form.get("host")); }
                label { "Primary group" input name="group" value=(form.get("group")); }
                label { "Service or binary" input name="service" value=(form.get("service")); }
                label { "From" input type="date" name="from" value=(form.get("from")); }
                label { "To" input type="date" name="to" value=(form.get("to")); }
                label { "State"
                    select name="status" {
                        option value="" { "any" }
                        @for s in Status::ALL {
                            option value=(s.as_str()) selected[q.status == Some(s)] { (s.label()) }
                        }
                    }
                }
                label.wide { "Text in transcript or commands" input type="search" name="q" value=(form.get("q")); }
                input type="hidden" name="sort" value=(form.get("sort"));
                input type="hidden" name="dir" value=(form.get("dir"));
                button type="submit" { "Filter" }
                a.button href="/sessions" { "Reset" }
            }
            @for e in &errors { p.error role="alert" { (e) } }
            p.count { (page.total) " sessions" @if page.total > 0 { " · showing " (first) "–" (last) } }
            table.sessions {
                thead { tr {
                    th { (sort_link(Sort::Started, "Started")) }
                    th { (sort_link(Sort::Duration, "Duration")) }
                    th { (sort_link(Sort::User, "User")) }
                    th { "Group" }
                    th { (sort_link(Sort::Host, "Host")) }
                    th { "Service / binary" }
                    th { "Command" }
                    th { "State" }
                    th { (sort_link(Sort::Size, "Size")) }
                    th { "Action" }
                } }
                tbody {
                    @for e in &page.entries { (row(e, admin, &signed)) }
                    @if page.entries.is_empty() { tr { td colspan="10" { "No session matches." } } }
                }
            }
            nav.pager {
                @if current_page > 1 {
                    a rel="prev" href=(format!("/sessions?{}", with_param(&params, "page", &(current_page - 1).to_string()))) { "← Previous" }
                }
                span { "Page " (current_page) " of " (pages) }
                @if current_page < pages {
                    a rel="next" href=(format!("/sessions?{}", with_param(&params, "page", &(current_page + 1).to_string()))) { "Next →" }
                }
            }
        },
    )
}

fn row(e: &SessionEntry, admin: bool, signed: &Signed) -> Markup {
    let dur = e
        .ended_at
        .map(|end| duration(end - e.started_at))
        .unwrap_or_else(|| "running".into());
    let what = if e.binary.is_empty() {
        e.service.clone()
    } else {
        e.binary.clone()
    };
    let recording = e.kind == "recording";
    html! {
            tr data-id=(e.id) data-status=(e.status.as_str()) {
                td { (time(e.started_at)) }
                td { (dur) }
    td.user { (visible(&e.user))
                    @if !e.user_approved { " " span.unapproved title="This username is not approved on the platform yet" { "not approved" } } }
                td { (visible(&e.group)) }
                td.host { (visible(&e.hostname)) }
                td { (visible(&what)) }
                td.command { code { (visible(&e.command)) } }
                td { span class=(format!("state {}", e.status.as_str())) { (e.status.label()) }
                     @if e.hold { " " span.hold title="Prevent purge is on" { "held" } } }
                td { @if recording { (bytes(e.bytes)) } }
                td.actions {
                    a href=(format!("/sessions/{}", e.id)) { "Session Log" }
                    @if recording {
                        a href=(format!("/sessions/{}/video", e.id)) { "Session Video" }
                        a href=(format!("/sessions/{}/cast?download=1", e.id)) { "Download" }
                    }
                    @if admin {
                        form.inline method="post" action=(format!("/sessions/{}/hold", e.id)) {
                            (csrf(signed))
                            input type="hidden" name="hold" value=(if e.hold { "0" } else { "1" });
                            button type="submit" { (if e.hold { "Allow purge" } else { "Prevent purge" }) }
                        }
                        a href=(format!("/sessions/{}/auditors", e.id)) { "Configure auditors" }
                    }
                }
            }
        }
}

/// Where a command's link puts the player: just after the first output that follows the
/// Enter (the echo of the line), so the screen shows the command as it was entered.
fn seek_time(tl: &Timeline, t_us: u64) -> String {
    let at = tl
        .items
        .iter()
        .find(|i| i.t_us >= t_us && matches!(i.item, Item::Output(_)))
        .map_or(t_us, |i| i.t_us + 1_000);
    format!("{:.3}", at as f64 / 1e6)
}

fn parse_id(id: &str) -> Result<Uuid, Refused> {
    Uuid::parse_str(id).map_err(|_| Refused(StatusCode::NOT_FOUND, "no such session"))
}

/// The entry, if the viewer may see it, with the view written to the access log.
async fn visit(
    state: &Shared,
    signed: &Signed,
    id: &str,
    action: &'static str,
) -> Result<SessionEntry, Box<Response>> {
    let id = parse_id(id).map_err(|r| Box::new(r.into_response()))?;
    let cat = state.catalog.clone();
    let viewer = signed.viewer.clone();
    let entry = blocking(move || {
        let found = cat.session(&viewer, id);
        let detail = match &found {
            Ok(_) => "",
            Err(StoreError::Forbidden(_)) => "refused: not an auditor of it",
            Err(_) => "not found",
        };
        cat.log_access(&viewer.name, action, Some(id), detail)?;
        found
    })
    .await
    .map_err(|e| Box::new(e.into_response()))?;
    Ok(entry)
}

fn load_timeline(store: &Arc<dyn Store>, id: Uuid) -> Result<Timeline, StoreError> {
    let row = store.recording(&id.to_string())?;
    Timeline::build(row, |stream| {
        store
            .chunks(id, stream)
            .map_err(|e| ExportError::Io(std::io::Error::other(e.to_string())))
    })
    .map_err(|e| StoreError::Corrupt {
        what: format!("recording {id}"),
        detail: e.to_string(),
    })
}

fn metadata(e: &SessionEntry, row: Option<&libsegura::spool::RecordingRow>) -> Markup {
    html! {
            dl.meta {
                dt { "Session" } dd { code { (e.id) } }
    dt { "User" } dd.user { (visible(&e.user))
                    @if !e.user_approved { " (not approved on the platform yet)" } }
                dt { "Primary group" } dd { (visible(&e.group)) }
                dt { "Host" } dd { (visible(&e.hostname)) }
                @if !e.service.is_empty() { dt { "Service" } dd { (visible(&e.service)) } }
                @if !e.binary.is_empty() { dt { "Binary" } dd { code { (visible(&e.binary)) } } }
                @if !e.command.is_empty() { dt { "Command" } dd { code { (visible(&e.command)) } } }
                @if let Some(r) = &e.rule { dt { "Rule" } dd { (visible(r)) } }
                dt { "Started" } dd { (time(e.started_at)) " UTC" }
                @if let Some(end) = e.ended_at { dt { "Ended" } dd { (time(end)) " UTC (" (duration(end - e.started_at)) ")" } }
                dt { "State" } dd { (e.status.label()) @if e.hold { " · Prevent purge is on" } }
                @if let Some(r) = row {
                    @if let Some(tty) = &r.meta.tty { dt { "Terminal" } dd { (visible(tty)) } }
                    @if let Some(rh) = &r.meta.rhost { dt { "From" } dd { (visible(rh)) } }
                    @if let Some(cwd) = &r.meta.cwd { dt { "Directory" } dd { code { (visible(cwd)) } } }
                    dt { "Size" } dd { (r.meta.cols) "×" (r.meta.rows) }
                    @if let Some(c) = r.exit_code { dt { "Exit status" } dd { (c) } }
                    @if let Some(s) = r.exit_signal { dt { "Ended by signal" } dd { (s) } }
                    @if let Some(n) = &r.note { dt { "Note" } dd { (visible(n)) } }
                }
            }
        }
}

fn session_actions(e: &SessionEntry, signed: &Signed) -> Markup {
    html! {
        p.actions {
            a href=(format!("/sessions/{}", e.id)) { "Session Log" }
            @if e.kind == "recording" {
                a href=(format!("/sessions/{}/video", e.id)) { "Session Video" }
                a href=(format!("/sessions/{}/cast?download=1", e.id)) { "Download asciicast" }
            }
            @if signed.viewer.is_admin() {
                a href=(format!("/sessions/{}/auditors", e.id)) { "Configure auditors" }
            }
        }
    }
}

async fn log(
    State(state): State<Shared>,
    signed: Signed,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    let e = match visit(&state, &signed, &id, "view-log").await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let find = Form::query(uri.query()).get("find").to_string();
    let title = format!("Session Log · {}@{}", e.user, e.hostname);
    if e.kind != "recording" {
        return page::layout(
            &title,
            &signed,
            Nav::Sessions,
            html! {
                h1 { "Session Log" }
                (metadata(&e, None))
                p.note { @match e.status {
                    Status::Unrecorded => "PAM armed this login for recording, but no recorder attached to it: it ran unrecorded.",
                    _ => "This login has no recording.",
                } }
            },
        );
    }
    if e.bytes > MAX_IN_BROWSER {
        return page::layout(
            &title,
            &signed,
            Nav::Sessions,
            html! {
                h1 { "Session Log" }
                (session_actions(&e, &signed))
                (metadata(&e, None))
                (too_large(&e))
            },
        );
    }
    let store = state.store.clone();
    let id = e.id;
    let tl = match blocking(move || load_timeline(&store, id)).await {
        Ok(t) => t,
        Err(err) => return err.into_response(),
    };
    let cmds = commands(&tl);
    let text = visible(&transcript(&tl));
    let needle = find.trim().to_lowercase();
    let hits: Vec<(usize, &str)> = if needle.is_empty() {
        Vec::new()
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| l.to_lowercase().contains(&needle))
            .collect()
    };
    page::layout(
        &title,
        &signed,
        Nav::Sessions,
        html! {
            h1 { "Session Log" }
            (session_actions(&e, &signed))
            (metadata(&e, Some(&tl.row)))
            h2 { "Commands" }
            @if cmds.is_empty() { p { "No command lines." } } @else {
                table.commands {
                    thead { tr { th { "At" } th { "Command line" } } }
                    tbody { @for c in &cmds {
                        tr {
                            td { a.seek href=(format!("/sessions/{}/video?t={}", e.id, seek_time(&tl, c.t_us))) data-t=(seek_time(&tl, c.t_us)) { (offset(c.t_us)) } }
                            td { code { (visible(&c.line)) } }
                        }
                    } }
                }
            }
            h2 { "Transcript" }
            form.find method="get" action=(format!("/sessions/{}", e.id)) {
                label { "Find in transcript" input type="search" name="find" value=(find); }
                button type="submit" { "Find" }
            }
            @if !needle.is_empty() {
                p.count { (hits.len()) " matching lines" }
                ol.hits { @for (n, l) in &hits { li { a href=(format!("#L{}", n + 1)) { "line " (n + 1) } ": " code { (l) } } } }
            }
            pre.transcript { @for (n, l) in text.lines().enumerate() {
                span id=(format!("L{}", n + 1)) { (l) } "\n"
            } }
        },
    )
}

async fn video(
    State(state): State<Shared>,
    signed: Signed,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    let e = match visit(&state, &signed, &id, "view-video").await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    if e.kind != "recording" {
        return error_page(
            StatusCode::NOT_FOUND,
            "this login has no recording to replay",
        );
    }
    let t: f64 = Form::query(uri.query())
        .get("t")
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .unwrap_or(0.0);
    if e.bytes > MAX_IN_BROWSER {
        let title = format!("Session Video · {}@{}", e.user, e.hostname);
        return page::layout(
            &title,
            &signed,
            Nav::Sessions,
            html! {
                h1 { "Session Video" }
                (session_actions(&e, &signed))
                (too_large(&e))
            },
        );
    }
    let store = state.store.clone();
    let id = e.id;
    let tl = match blocking(move || load_timeline(&store, id)).await {
        Ok(t) => t,
        Err(err) => return err.into_response(),
    };
    let cmds = commands(&tl);
    let title = format!("Session Video · {}@{}", e.user, e.hostname);
    page::layout_with(
        &title,
        &signed,
        Nav::Sessions,
        html! {
            link rel="stylesheet" href="/static/asciinema-player.css";
            script src="/static/asciinema-player.min.js" defer {}
        },
        html! {
            h1 { "Session Video" }
            (session_actions(&e, &signed))
            p.summary { (visible(&e.user)) "@" (visible(&e.hostname)) " · " (time(e.started_at)) " UTC"
                @if !e.command.is_empty() { " · " code { (visible(&e.command)) } } }
            @if page::have_player() {
                div.video {
                    div #player data-cast=(format!("/sessions/{}/cast", e.id)) data-start=(format!("{t:.3}"))
                        data-cols=(tl.row.meta.cols) data-rows=(tl.row.meta.rows) {}
                    aside {
                        label { "Speed "
                            select #speed {
                                @for s in ["0.5", "1", "2", "4", "8"] { option value=(s) selected[s == "1"] { (s) "×" } }
                            }
                        }
                        h2 { "Commands" }
                        ol.commands { @for c in &cmds {
                            li { a.seek href=(format!("?t={}", seek_time(&tl, c.t_us))) data-t=(seek_time(&tl, c.t_us)) {
                                span.at { (offset(c.t_us)) } " " code { (visible(&c.line)) } } }
                        } }
                    }
                }
            } @else {
                p.error { "This server was built without the player: run npm ci --prefix server/web and rebuild segura-server. The recording can still be downloaded as asciicast." }
            }
        },
    )
}

async fn cast(
    State(state): State<Shared>,
    signed: Signed,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    let download = Form::query(uri.query()).has("download");
    let action = if download { "download" } else { "play" };
    let e = match visit(&state, &signed, &id, action).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    if e.kind != "recording" {
        return error_page(StatusCode::NOT_FOUND, "this login has no recording");
    }
    if e.bytes > MAX_DOWNLOAD || (!download && e.bytes > MAX_IN_BROWSER) {
        return error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "this recording is too large to export through the web UI: use segura-server admin export on the platform host",
        );
    }
    let store = state.store.clone();
    let id = e.id;
    let body = blocking(move || {
        let tl = load_timeline(&store, id)?;
        let mut out = Vec::new();
        write_asciicast(&tl, &mut out).map_err(|err| StoreError::Corrupt {
            what: format!("recording {id}"),
            detail: err.to_string(),
        })?;
        Ok(out)
    })
    .await;
    let body = match body {
        Ok(b) => b,
        Err(err) => return err.into_response(),
    };
    let mut resp = (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-asciicast"),
        )],
        body,
    )
        .into_response();
    if download {
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"segura-{id}.cast\""))
        {
            resp.headers_mut().insert(CONTENT_DISPOSITION, v);
        }
    }
    resp
}

async fn hold(
    State(state): State<Shared>,
    Path(id): Path<String>,
    AdminForm { signed, form }: AdminForm,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let on = form.get("hold") == "1";
    let cat = state.catalog.clone();
    let by = signed.viewer.name.clone();
    if let Err(e) = blocking(move || cat.set_hold(id, on, &by)).await {
        return e.into_response();
    }
    tracing::info!(session = %id, hold = on, by = %signed.viewer.name, "prevent purge");
    redirect(back(&form, "/sessions"))
}

/// The page a form came from (a path on this site), or `default`.
fn back<'a>(form: &'a Form, default: &'a str) -> &'a str {
    match form.get("back") {
        b if b.starts_with('/') && !b.starts_with("//") => b,
        _ => default,
    }
}

async fn auditors_form(
    State(state): State<Shared>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = signed.admin() {
        return r.into_response();
    }
    let e = match visit(&state, &signed, &id, "view-auditors").await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let cat = state.catalog.clone();
    let (sid, rule) = (e.id, e.rule.clone());
    let data = blocking(move || {
        let users = cat.users()?;
        let direct = cat.session_auditors(sid)?;
        let by_rule = match &rule {
            Some(r) => cat.rule_auditors(r)?,
            None => Vec::new(),
        };
        Ok((users, direct, by_rule))
    })
    .await;
    let (users, direct, by_rule) = match data {
        Ok(d) => d,
        Err(err) => return err.into_response(),
    };
    page::layout(
        "Configure auditors",
        &signed,
        Nav::Sessions,
        html! {
            h1 { "Configure auditors" }
            (metadata(&e, None))
            form.auditors method="post" action=(format!("/sessions/{}/auditors", e.id)) {
                (csrf(&signed))
                fieldset {
                    legend { "Auditors who may view this session" }
                    @for u in users.iter().filter(|u| u.role == Role::Auditor) {
                        label.check {
                            input type="checkbox" name="auditor" value=(u.name) checked[direct.contains(&u.name)];
                            (u.name)
                            @if by_rule.contains(&u.name) { " " span.hint { "(also through the rule's default auditors)" } }
                        }
                    }
                    @if !users.iter().any(|u| u.role == Role::Auditor) {
                        p { "There are no auditors yet: add one on the " a href="/accounts" { "Accounts" } " page." }
                    }
                }
                button type="submit" { "Save" }
            }
        },
    )
}

async fn auditors_save(
    State(state): State<Shared>,
    Path(id): Path<String>,
    AdminForm { signed, form }: AdminForm,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let chosen = form.all("auditor");
    let cat = state.catalog.clone();
    let by = signed.viewer.name.clone();
    if let Err(e) = blocking(move || cat.set_session_auditors(id, &chosen, &by)).await {
        return e.into_response();
    }
    redirect(&format!("/sessions/{id}/auditors"))
}

/// Indexes the transcript and commands of every ended recording (a thread, polling).
pub fn start_indexer(store: Arc<dyn Store>, cat: Arc<dyn Catalog>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("text-index".into())
        .spawn(move || loop {
            match cat.unindexed(16, MAX_IN_BROWSER) {
                Ok(ids) if !ids.is_empty() => {
                    for id in ids {
                        index_one(&store, &cat, id);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("text index: {e}"),
            }
            std::thread::sleep(Duration::from_secs(1));
        })
        .map(|_| ())
}

fn index_one(store: &Arc<dyn Store>, cat: &Arc<dyn Catalog>, id: Uuid) {
    let result = match load_timeline(store, id) {
        Ok(tl) => {
            let mut text = transcript(&tl);
            if text.len() > MAX_INDEXED_TEXT {
                let mut cut = MAX_INDEXED_TEXT;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            let cmds: Vec<String> = commands(&tl).into_iter().map(|c| c.line).collect();
            cat.index_text(id, Some((&text, &cmds.join("\n"))))
        }
        Err(e) => {
            tracing::warn!(recording = %id, "cannot index the text of the recording: {e}");
            cat.index_text(id, None)
        }
    };
    if let Err(e) = result {
        tracing::warn!(recording = %id, "text index: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01", false), Some(0));
        assert_eq!(parse_date("1970-01-01", true), Some(86_400_000_000));
        assert_eq!(
            parse_date("2026-11-27T17:36", false),
            Some(parse_date("2026-11-27", false).unwrap() + (17 * 3600 + 36 * 60) * 1_000_000)
        );
        assert_eq!(
            libsegura::time::rfc3339(parse_date("2024-02-29T12:00:00", false).unwrap()),
            "2024-02-29T12:00:00.000000Z"
        );
        for bad in [
            "2024-13-01",
            "yesterday",
            "2024-01-01T25:00",
            "2024-01",
            "2024-01-01-02",
        ] {
            assert_eq!(parse_date(bad, false), None, "{bad}");
        }
    }
}
