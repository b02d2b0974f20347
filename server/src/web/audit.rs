//! Audit: every binary run and file transfer the agents reported (recorded or not), with
//! filters; each links to its recording when there is one.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde_json::Value;

use super::page::{self, duration, time, visible, Nav};
use super::sessions::parse_date;
use super::{blocking, with_param, Form, Signed};
use crate::api::Shared;
use crate::catalog::{AuditQuery, AuditRow};

const PAGE_ROWS: u64 = 100;
const FILTERS: [&str; 6] = ["user", "host", "kind", "program", "from", "to"];

pub fn routes() -> Router<Shared> {
    Router::new().route("/audit", get(list))
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// What ran: the program and its arguments, or the transfer's command.
fn what(e: &AuditRow) -> String {
    let b = &e.body;
    match (b.get("argv"), b.get("command")) {
        (Some(argv), _) if !argv.is_null() => text(argv),
        (_, Some(cmd)) => text(cmd),
        _ => text(b.get("path").unwrap_or(&Value::Null)),
    }
}

fn outcome(b: &Value) -> String {
    match (b.get("exit_code"), b.get("exit_signal")) {
        (Some(Value::Number(c)), _) => format!("exit {c}"),
        (_, Some(Value::Number(s))) => format!("signal {s}"),
        _ => String::new(),
    }
}

fn details(b: &Value) -> Markup {
    html! {
        details {
            summary { "details" }
            dl.meta { @if let Value::Object(m) = b { @for (k, v) in m {
                @if !v.is_null() { dt { (k) } dd { code { (visible(&text(v))) } } }
            } } }
        }
    }
}

async fn list(State(state): State<Shared>, signed: Signed, uri: Uri) -> Response {
    if let Err(r) = signed.admin() {
        return r.into_response();
    }
    let form = Form::query(uri.query());
    let page_no: u64 = form.get("page").parse().unwrap_or(1).max(1);
    let mut errors = Vec::new();
    let mut date = |key: &str, end: bool| match form.get(key).trim() {
        "" => None,
        v => parse_date(v, end).or_else(|| {
            errors.push(format!("{key}: {v:?} is not a date (YYYY-MM-DD)"));
            None
        }),
    };
    let q = AuditQuery {
        user: form.get("user").into(),
        host: form.get("host").into(),
        kind: form.get("kind").into(),
        program: form.get("program").into(),
        from: date("from", false),
        to: date("to", true),
        offset: (page_no - 1).saturating_mul(PAGE_ROWS),
        limit: PAGE_ROWS,
    };
    let cat = state.catalog.clone();
    let query = q.clone();
    let (total, rows) = match blocking(move || cat.audit_events(&query)).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let params: HashMap<String, String> = FILTERS
        .iter()
        .map(|k| (k.to_string(), form.get(k).to_string()))
        .collect();
    let pages = total.div_ceil(PAGE_ROWS).max(1);
    page::layout(
        "Audit",
        &signed,
        Nav::Audit,
        html! {
            h1 { "Audit" }
            p { "Every run of a program a binary-run rule audits, and every file transfer, as the hosts reported them — recorded or not." }
            form.filters method="get" action="/audit" {
                label { "User" input name="user" value=(form.get("user")); }
                label { "Host" input name="host" value=(form.get("host")); }
                label { "Kind"
                    select name="kind" {
                        option value="" { "any" }
                        @for (v, l) in [("binary-run", "binary run"), ("file-transfer", "file transfer")] {
                            option value=(v) selected[form.get("kind") == v] { (l) }
                        }
                    }
                }
                label { "Program or command" input name="program" value=(form.get("program")); }
                label { "From" input type="date" name="from" value=(form.get("from")); }
                label { "To" input type="date" name="to" value=(form.get("to")); }
                button type="submit" { "Filter" }
                a.button href="/audit" { "Reset" }
            }
            @for e in &errors { p.error role="alert" { (e) } }
            p.count { (total) " events" }
            table.audit {
                thead { tr { th { "When (UTC)" } th { "Host" } th { "User" } th { "Kind" } th { "What" } th { "Outcome" } th { "Duration" } th { "Recording" } th {} } }
                tbody {
                    @for e in &rows {
                        @let rec = e.body.get("recorded").or_else(|| e.body.get("recording")).and_then(Value::as_str).filter(|s| !s.is_empty());
                        tr data-event=(e.id) {
                            td { (time(e.at)) }
                            td { (visible(&e.hostname)) }
                            td { (visible(&e.user)) }
                            td { (e.kind) }
                            td { code { (visible(&what(e))) } }
                            td { (outcome(&e.body)) }
                            td { @if let Some(d) = e.body.get("duration_us").and_then(Value::as_i64) { (duration(d)) } }
                            td { @if let Some(id) = rec { a href=(format!("/sessions/{}", super::urlencode(id))) { "Session Log" } } @else { "not recorded" } }
                            td { (details(&e.body)) }
                        }
                    }
                    @if rows.is_empty() { tr { td colspan="9" { "No event matches." } } }
                }
            }
            nav.pager {
                @if page_no > 1 { a rel="prev" href=(format!("/audit?{}", with_param(&params, "page", &(page_no - 1).to_string()))) { "← Previous" } }
                span { "Page " (page_no) " of " (pages) }
                @if page_no < pages { a rel="next" href=(format!("/audit?{}", with_param(&params, "page", &(page_no + 1).to_string()))) { "Next →" } }
            }
        },
    )
}
