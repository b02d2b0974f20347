//! The page frame, the static assets and the formatting every page shares.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::{html_response, Signed};

/// Our stylesheet and script (the repository's own), and asciinema-player from npm when the
/// build found it (see build.rs).
const APP_CSS: &str = include_str!("../../web/app.css");
const APP_JS: &str = include_str!("../../web/app.js");
const PLAYER_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/asciinema-player.min.js"));
const PLAYER_CSS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/asciinema-player.css"));

/// Whether the player was built in.
pub fn have_player() -> bool {
    !PLAYER_JS.is_empty()
}

pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&[u8], &str) = match file.as_str() {
        "app.css" => (APP_CSS.as_bytes(), "text/css; charset=utf-8"),
        "app.js" => (APP_JS.as_bytes(), "text/javascript; charset=utf-8"),
        "asciinema-player.min.js" if have_player() => (PLAYER_JS, "text/javascript; charset=utf-8"),
        "asciinema-player.css" if have_player() => (PLAYER_CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_str(kind)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The browser's tab icon: a small SVG (a record dot).
pub async fn favicon() -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("image/svg+xml")),
            (CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
        ],
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="6" fill="#b3261e"/></svg>"##,
    )
        .into_response()
}

/// Which entry of the navigation is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Sessions,
    Audit,
    Policies,
    Hosts,
    Users,
    Accounts,
    Log,
}

fn head(title: &str, extra: Markup) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · segura" }
            link rel="stylesheet" href="/static/app.css";
            (extra)
            script src="/static/app.js" defer {}
        }
    }
}

/// A page for a signed-in user: navigation, who is signed in, sign-out.
pub fn layout(title: &str, signed: &Signed, nav: Nav, content: Markup) -> Response {
    layout_with(title, signed, nav, html! {}, content)
}

pub fn layout_with(
    title: &str,
    signed: &Signed,
    nav: Nav,
    extra_head: Markup,
    content: Markup,
) -> Response {
    let item = |n: Nav, href: &str, label: &str| {
        html! {
            a href=(href) aria-current=[(n == nav).then_some("page")] { (label) }
        }
    };
    let admin = signed.viewer.is_admin();
    html_response(html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, extra_head))
                body {
                    header.top {
                        span.brand { "segura" }
                        nav {
                            (item(Nav::Sessions, "/sessions", "Remote Sessions"))
                            @if admin {
                                (item(Nav::Audit, "/audit", "Audit"))
                            (item(Nav::Policies, "/policies", "Policies"))
    (item(Nav::Hosts, "/hosts", "Hosts"))
                                (item(Nav::Users, "/users", "Users"))
                            (item(Nav::Accounts, "/accounts", "Accounts"))
                                (item(Nav::Log, "/access-log", "Access log"))
                            }
                        }
                        form.signout method="post" action="/logout" {
                            span.who { (signed.viewer.name) " (" (signed.viewer.role.as_str()) ")" }
                            input type="hidden" name="_csrf" value=(signed.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                    main { (content) }
                }
            }
        })
}

/// A page without navigation (sign-in, errors).
pub fn bare(title: &str, content: Markup) -> Response {
    html_response(html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, html! {}))
            body { (content) }
        }
    })
}

/// The hidden CSRF field of a form.
pub fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name="_csrf" value=(signed.csrf); }
}

/// A time (µs since the epoch) as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(us: i64) -> String {
    let t = libsegura::time::rfc3339(us);
    // rfc3339 gives 2026-11-27T17:36:08.123456Z
    let t = t.replacen('T', " ", 1);
    match t.find('.') {
        Some(dot) => t[..dot].to_string(),
        None => t.trim_end_matches('Z').to_string(),
    }
}

pub fn duration(us: i64) -> String {
    let s = us.max(0) / 1_000_000;
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}.{}s", s, (us.max(0) / 100_000) % 10)
    }
}

/// An offset into a recording as `M:SS.s`.
pub fn offset(us: u64) -> String {
    let tenths = us / 100_000;
    format!("{}:{:02}.{}", tenths / 600, tenths / 10 % 60, tenths % 10)
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Text from a recording, with control characters (terminal escapes among them) shown as
/// visible symbols instead of being passed to the page. maud escapes HTML on top of this.
pub fn visible(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            '\u{1b}' => '␛',
            c if (c as u32) < 0x20 => char::from_u32(0x2400 + c as u32).unwrap_or('�'),
            '\u{7f}' => '␡',
            c if c.is_control() => '�',
            // Bidirectional overrides could make text read differently from what it is.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => '�',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_made_visible() {
        assert_eq!(visible("a\x1b[31mb\x07\n"), "a␛[31mb␇\n");
        assert_eq!(visible("x\u{202e}y"), "x�y");
        // maud escapes markup on top.
        let m = html! { pre { (visible("<script>alert(1)</script>")) } };
        assert_eq!(
            m.into_string(),
            "<pre>&lt;script&gt;alert(1)&lt;/script&gt;</pre>"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(offset(83_400_000), "1:23.4");
        assert_eq!(duration(3_723_000_000), "1h02m03s");
        assert_eq!(duration(1_500_000), "1.5s");
    }
}
