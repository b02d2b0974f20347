//! The platform's web UI: server-rendered HTML (maud escapes everything it renders), one small
//! script of ours and asciinema-player from npm, under a strict Content-Security-Policy.
//!
//! Sign-in makes a random session token (the store keeps its SHA-256) in an HttpOnly,
//! SameSite=Strict cookie; every form carries the session's CSRF token, and a POST from another
//! site is refused whatever it carries.

mod accounts;
mod audit;
mod hosts;
mod page;
mod policies;
mod sessions;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, REFERRER_POLICY,
    SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use libsegura::time::now_us;
use maud::{html, Markup};

use crate::api::Shared;
use crate::auth;
use crate::catalog::Viewer;
use crate::store::StoreError;

pub use hosts::start_purger;
pub use sessions::start_indexer;

/// The Content-Security-Policy of every page: our script and the player only (the player
/// compiles its terminal emulator from WebAssembly), our stylesheets, nothing inline.
pub const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
    worker-src 'self' blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How long a sign-in lasts.
const SESSION_LIFETIME_US: i64 = 12 * 3_600_000_000;

/// Options of the web UI.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// Cookies are `Secure` (and `__Host-` prefixed): the server speaks HTTPS.
    pub secure: bool,
    /// Recordings older than this are purged, unless held.
    pub retention: Duration,
}

impl WebOptions {
    fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-segura_session"
        } else {
            "segura_session"
        }
    }

    fn cookie(&self, value: &str, max_age: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
            self.cookie_name()
        )
    }
}

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/", get(|| async { redirect("/sessions") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .merge(sessions::routes())
        .merge(policies::routes())
        .merge(hosts::routes())
        .merge(accounts::routes())
        .merge(audit::routes())
        .route("/static/{file}", get(page::asset))
        .route("/favicon.ico", get(page::favicon))
        .layer(middleware::from_fn(security_headers))
}

/// Headers on every response of the UI.
async fn security_headers(req: Request, next: Next) -> Response {
    let is_post = req.method() == Method::POST;
    // A form posted from another site is refused before any handler runs (browsers send
    // Sec-Fetch-Site; the CSRF token covers the others).
    if is_post
        && req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return error_page(StatusCode::FORBIDDEN, "cross-site form posts are refused");
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// A signed-in user, from the session cookie.
pub struct Signed {
    pub viewer: Viewer,
    pub csrf: String,
    token_hash: [u8; 32],
}

impl Signed {
    /// Checks the CSRF token a form carried.
    pub fn check(&self, form: &Form) -> Result<(), Refused> {
        let sent = form.get("_csrf");
        if auth::same_hash(&auth::secret_hash(sent), &auth::secret_hash(&self.csrf))
            && !sent.is_empty()
        {
            Ok(())
        } else {
            Err(Refused(
                StatusCode::FORBIDDEN,
                "the form's security token is missing or stale: reload the page and try again",
            ))
        }
    }

    /// Refuses anyone but an admin.
    pub fn admin(&self) -> Result<(), Refused> {
        if self.viewer.is_admin() {
            Ok(())
        } else {
            Err(Refused(StatusCode::FORBIDDEN, "this needs the admin role"))
        }
    }

    /// An admin's form with a valid CSRF token.
    pub fn admin_form(&self, form: &Form) -> Result<(), Refused> {
        self.check(form)?;
        self.admin()
    }
}

/// An admin's form post: signed in as an admin, the CSRF token checked, the fields parsed.
pub struct AdminForm {
    pub signed: Signed,
    pub form: Form,
}

impl FromRequest<Shared> for AdminForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Shared) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = Form::parse(&body);
        signed
            .admin_form(&form)
            .map_err(IntoResponse::into_response)?;
        Ok(AdminForm { signed, form })
    }
}

/// A refusal, shown as an error page.
#[derive(Debug)]
pub struct Refused(pub StatusCode, pub &'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error_page(self.0, self.1)
    }
}

impl FromRequestParts<Shared> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        let name = state.web.cookie_name();
        let token = cookie(&parts.headers, name);
        let token_hash = token.as_deref().map(auth::secret_hash).unwrap_or_default();
        let found = match token {
            Some(_) => {
                let cat = state.catalog.clone();
                blocking(move || cat.web_session(&token_hash, now_us()))
                    .await
                    .map_err(|e| e.into_response())?
            }
            None => None,
        };
        match found {
            Some(s) => Ok(Signed {
                token_hash,
                viewer: Viewer {
                    name: s.user,
                    role: s.role,
                },
                csrf: s.csrf,
            }),
            None if parts.method == Method::GET => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                Err(redirect(&format!("/login?next={}", urlencode(next))))
            }
            None => Err(error_page(
                StatusCode::UNAUTHORIZED,
                "your sign-in has expired: sign in again",
            )),
        }
    }
}

/// A URL-encoded form or query string; repeated keys keep every value.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(bytes: &[u8]) -> Form {
        Form(form_urlencoded::parse(bytes).into_owned().collect())
    }

    pub fn query(query: Option<&str>) -> Form {
        Form::parse(query.unwrap_or("").as_bytes())
    }

    /// The first value of `key`, or "".
    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
}

/// Runs store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, WebError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(WebError::Store),
        Err(e) => Err(WebError::Internal(e.to_string())),
    }
}

/// An error shown as a page.
#[derive(Debug)]
pub enum WebError {
    Store(StoreError),
    Internal(String),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::Store(e) => {
                let status = match &e {
                    StoreError::NotFound(_) => StatusCode::NOT_FOUND,
                    StoreError::Forbidden(_) => StatusCode::FORBIDDEN,
                    StoreError::Conflict(_) => StatusCode::CONFLICT,
                    StoreError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                if status == StatusCode::INTERNAL_SERVER_ERROR {
                    tracing::error!("web UI: {e}");
                    error_page(status, "internal error (logged on the server)")
                } else {
                    error_page(status, &e.to_string())
                }
            }
            WebError::Internal(e) => {
                tracing::error!("web UI: {e}");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (logged on the server)",
                )
            }
        }
    }
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    let body = page::bare(
        status.canonical_reason().unwrap_or("Error"),
        html! {
            main.narrow {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p.error { (message) }
                p { a href="/sessions" { "Remote Sessions" } }
            }
        },
    );
    (status, body).into_response()
}

pub fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
        )],
    )
        .into_response()
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Where to go after signing in: only a path on this site.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/sessions"
    }
}

async fn login_page(uri: axum::http::Uri) -> Response {
    let q = Form::query(uri.query());
    login_form(safe_next(q.get("next")), None, StatusCode::OK)
}

fn login_form(next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = page::bare(
        "Sign in",
        html! {
            main.narrow {
                h1 { "segura" }
                form.signin method="post" action="/login" {
                    input type="hidden" name="next" value=(next);
                    label { "User name" input name="name" autocomplete="username" required autofocus; }
                    label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                    button type="submit" { "Sign in" }
                }
            }
        },
    );
    (status, body).into_response()
}

async fn login(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let next = safe_next(form.get("next")).to_string();
    let (name, password) = (
        form.get("name").to_string(),
        form.get("password").to_string(),
    );
    if !state.anonymous.allow(&peer.ip()) {
        return login_form(
            &next,
            Some("too many attempts from your address; wait a minute"),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let cat = state.catalog.clone();
    let lookup = name.clone();
    let user = match blocking(move || cat.user_login(&lookup)).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    // Verify against a hash even for unknown users, so timing does not tell which names exist.
    let (role, phc) = match user {
        Some((role, phc)) => (Some(role), phc),
        None => (None, dummy_hash()),
    };
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false);
    let Some(role) = role.filter(|_| ok) else {
        tracing::info!(user = %name, peer = %peer.ip(), "web sign-in refused");
        return login_form(
            &next,
            Some("unknown user name or wrong password"),
            StatusCode::UNAUTHORIZED,
        );
    };
    let token = auth::new_secret();
    let csrf = auth::new_secret();
    let hash = auth::secret_hash(&token);
    let cat = state.catalog.clone();
    let who = name.clone();
    let expires = now_us() + SESSION_LIFETIME_US;
    if let Err(e) = blocking(move || {
        cat.add_web_session(&hash, &who, &csrf, expires)?;
        cat.log_access(&who, "sign-in", None, &peer.ip().to_string())
    })
    .await
    {
        return e.into_response();
    }
    tracing::info!(user = %name, role = role.as_str(), peer = %peer.ip(), "web sign-in");
    let mut resp = redirect(&next);
    if let Ok(v) = HeaderValue::from_str(&state.web.cookie(&token, SESSION_LIFETIME_US / 1_000_000))
    {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    resp
}

/// An argon2id hash of a random password nobody knows, made once.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| auth::hash_password(&auth::new_secret()).unwrap_or_default())
        .clone()
}

async fn logout(State(state): State<Shared>, signed: Signed, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if let Err(r) = signed.check(&form) {
        return r.into_response();
    }
    let mut resp = redirect("/login");
    if let Ok(v) = HeaderValue::from_str(&state.web.cookie("", 0)) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    let cat = state.catalog.clone();
    let who = signed.viewer.name.clone();
    let hash = signed.token_hash;
    if let Err(e) = blocking(move || {
        cat.end_web_session(&hash)?;
        cat.log_access(&who, "sign-out", None, "")
    })
    .await
    {
        return e.into_response();
    }
    resp
}

/// The page's content type.
pub fn html_response(markup: Markup) -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        markup.into_string(),
    )
        .into_response()
}

/// Query-string helper: the pairs of a form with one key replaced.
pub fn with_param(pairs: &HashMap<String, String>, key: &str, value: &str) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    let mut keys: Vec<&String> = pairs.keys().collect();
    keys.sort();
    for k in keys {
        if k != key && !pairs[k].is_empty() {
            s.append_pair(k, &pairs[k]);
        }
    }
    if !value.is_empty() {
        s.append_pair(key, value);
    }
    s.finish()
}
