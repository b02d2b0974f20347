//! The ingest API (`/api/v1`): JSON for control messages, postcard for chunk batches. Every
//! error is a status code with an [`ApiError`] body.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, Request, State};
use axum::http::header::{
    AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH, WWW_AUTHENTICATE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use libsegura::chunk::SealedChunk;
use libsegura::time::now_us;
use libsegura::wire::{
    ApiError, AuditUpload, ChunkBatch, EnrollRequest, EnrollResponse, HostReport, LoginUpload,
    RecordingUpload, API, CHUNKS_CONTENT_TYPE, MAX_BATCH_CHUNKS, MAX_BODY_BYTES,
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::auth::{self, AuthError};
use crate::catalog::Catalog;
use crate::limits::RateLimiter;
use crate::store::{NewHost, Put, Store, StoreError};
use crate::web::{self, WebOptions};

/// Longest host name accepted at enrollment.
const MAX_HOSTNAME: usize = 253;
/// How often (µs) a host's `last_seen` is written, at most.
const TOUCH_EVERY_US: i64 = 60_000_000;

/// What every handler shares.
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The same store, as the web UI queries it.
    pub catalog: Arc<dyn Catalog>,
    pub web: WebOptions,
    /// Per enrolled host.
    pub hosts: RateLimiter<Uuid>,
    /// Per client address, for enrollment and failed authentication.
    pub anonymous: RateLimiter<IpAddr>,
}

pub type Shared = Arc<AppState>;

/// The router of the whole server: the API under [`API`], the web UI beside it.
pub fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/enroll", post(enroll))
        .route("/policy", get(policy))
        .route("/logins/{id}", put(put_login))
        .route("/recordings/{id}", put(put_recording))
        .route("/recordings/{id}/chunks", post(post_chunks))
        .route("/recordings/{id}/acks", get(get_acks))
        .route("/audit", post(post_audit))
        .route("/report", put(put_report))
        .fallback(|| async { ApiErr::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiErr::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this endpoint",
            )
        });
    Router::new()
        .nest(API, api)
        .merge(web::router())
        .fallback(|| async { web::error_page(StatusCode::NOT_FOUND, "no such page") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(refuse_large_bodies))
        .layer(middleware::from_fn(log_requests))
        .with_state(state)
}

/// An error answer: a status and a message, sent as [`ApiError`] JSON.
#[derive(Debug)]
pub struct ApiErr {
    status: StatusCode,
    message: String,
}

impl ApiErr {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiErr {
        ApiErr {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiErr {
        ApiErr::new(StatusCode::BAD_REQUEST, message)
    }

    fn internal(detail: impl std::fmt::Display) -> ApiErr {
        tracing::error!("{detail}");
        ApiErr::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            Json(ApiError {
                error: self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<StoreError> for ApiErr {
    fn from(e: StoreError) -> ApiErr {
        let status = match &e {
            StoreError::BadToken => StatusCode::UNAUTHORIZED,
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Forbidden(_) => StatusCode::FORBIDDEN,
            StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::ChainBroken { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            StoreError::Sqlite { source, .. }
                if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
            {
                tracing::warn!("{e}");
                return ApiErr::new(StatusCode::SERVICE_UNAVAILABLE, "busy; retry later");
            }
            StoreError::Sqlite { .. }
            | StoreError::Io { .. }
            | StoreError::TooNew { .. }
            | StoreError::Corrupt { .. } => return ApiErr::internal(e),
        };
        ApiErr::new(status, e.to_string())
    }
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    st: &Shared,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiErr> {
    let store = st.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| ApiErr::internal(format!("store task failed: {e}")))?
        .map_err(ApiErr::from)
}

/// An authenticated, rate-limited enrolled host.
pub struct HostId(pub Uuid);

impl FromRequestParts<Shared> for HostId {
    type Rejection = ApiErr;

    async fn from_request_parts(parts: &mut Parts, st: &Shared) -> Result<HostId, ApiErr> {
        let ip = client_ip(parts);
        let header = match parts.headers.get(AUTHORIZATION).map(|v| v.to_str()) {
            None => Ok(None),
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(_)) => Err(AuthError::Malformed),
        };
        let checked = match header.and_then(auth::parse_bearer) {
            Ok((id, secret)) => {
                let hash = auth::secret_hash(secret);
                blocking(st, move |store| {
                    let Some(cred) = store.host_credential(id)? else {
                        return Ok(Err(AuthError::BadCredential));
                    };
                    if !auth::same_hash(&cred.secret_hash, &hash) {
                        return Ok(Err(AuthError::BadCredential));
                    }
                    if cred.revoked {
                        return Ok(Err(AuthError::Revoked));
                    }
                    let now = now_us();
                    if cred.last_seen.is_none_or(|t| now - t >= TOUCH_EVERY_US) {
                        store.touch_host(id, now)?;
                    }
                    Ok(Ok(cred.id))
                })
                .await?
            }
            Err(e) => Err(e),
        };
        match checked {
            Ok(id) if st.hosts.allow(&id) => Ok(HostId(id)),
            Ok(_) => Err(too_many()),
            // Failures count against the client's address: one that keeps failing is slowed
            // down, without holding back the hosts that authenticate from the same address
            // (a NAT, a reverse proxy).
            Err(e) if ip.is_some_and(|ip| !st.anonymous.allow(&ip)) => {
                tracing::debug!("refused: {e}");
                Err(too_many())
            }
            Err(e) => Err(unauthorized(e)),
        }
    }
}

fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The client's address, when the server was started with connection info.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientIp, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

fn unauthorized(e: AuthError) -> ApiErr {
    ApiErr::new(StatusCode::UNAUTHORIZED, e.to_string())
}

fn too_many() -> ApiErr {
    ApiErr::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many requests; slow down",
    )
}

/// The body, or why it could not be read (413 over [`MAX_BODY_BYTES`]).
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiErr> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiErr::new(r.status(), r.body_text())
        }
    })
}

fn too_large() -> ApiErr {
    ApiErr::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body over the limit of {MAX_BODY_BYTES} bytes"),
    )
}

fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiErr> {
    let bytes = body_bytes(body)?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let v = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| ApiErr::bad_request(format!("invalid JSON body: {e}")))?;
    de.end()
        .map_err(|e| ApiErr::bad_request(format!("invalid JSON body: {e}")))?;
    Ok(v)
}

/// The `{id}` of the path, as a UUID.
fn path_id(path: Result<Path<String>, PathRejection>, what: &str) -> Result<Uuid, ApiErr> {
    let Path(id) = path.map_err(|r| ApiErr::new(r.status(), r.body_text()))?;
    Uuid::parse_str(&id).map_err(|_| ApiErr::bad_request(format!("{what} id {id:?} is not a UUID")))
}

/// Refuses a declared body over the limit before reading any of it.
async fn refuse_large_bodies(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        let mut resp = too_large().into_response();
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
    next.run(req).await
}

async fn log_requests(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let t0 = Instant::now();
    let resp = next.run(req).await;
    let (status, ms) = (resp.status().as_u16(), t0.elapsed().as_millis());
    if resp.status().is_server_error() {
        tracing::error!(%method, path, status, ms, "request");
    } else if resp.status().is_client_error() {
        tracing::info!(%method, path, status, ms, "request");
    } else {
        tracing::debug!(%method, path, status, ms, "request");
    }
    resp
}

/// `POST /api/v1/enroll`: a one-time token for a host credential (201).
async fn enroll(
    State(st): State<Shared>,
    ClientIp(ip): ClientIp,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<EnrollResponse>), ApiErr> {
    if ip.is_some_and(|ip| !st.anonymous.allow(&ip)) {
        return Err(too_many());
    }
    let req: EnrollRequest = json_body(body)?;
    let hostname = req.hostname.trim().to_string();
    if hostname.is_empty()
        || hostname.len() > MAX_HOSTNAME
        || hostname
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ApiErr::bad_request(format!(
            "invalid hostname {:?}",
            req.hostname
        )));
    }
    let token = auth::secret_hash(req.token.trim());
    let secret = auth::new_secret();
    let host = NewHost {
        id: Uuid::now_v7(),
        hostname,
        secret_hash: auth::secret_hash(&secret),
        enrolled_at: now_us(),
    };
    let (id, name) = (host.id, host.hostname.clone());
    blocking(&st, move |s| s.enroll(&token, &host)).await?;
    tracing::info!(host_id = %id, hostname = name, "host enrolled");
    Ok((
        StatusCode::CREATED,
        Json(EnrollResponse {
            host_id: id,
            secret,
        }),
    ))
}

/// Whether an `If-None-Match` value names `etag`.
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// `GET /api/v1/policy`: the rules, with an `ETag`; 304 when `If-None-Match` has it.
async fn policy(
    HostId(_): HostId,
    State(st): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiErr> {
    let bundle = blocking(&st, |s| s.policy()).await?;
    let etag = format!("\"{}\"", bundle.version);
    let etag_value = HeaderValue::from_str(&etag).map_err(ApiErr::internal)?;
    let fresh = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| etag_matches(v, &etag));
    if fresh {
        return Ok((StatusCode::NOT_MODIFIED, [(ETAG, etag_value)]).into_response());
    }
    Ok(([(ETAG, etag_value)], Json(bundle)).into_response())
}

fn put_status(p: Put, id: Uuid) -> (StatusCode, Json<serde_json::Value>) {
    let status = match p {
        Put::Created => StatusCode::CREATED,
        Put::Updated => StatusCode::OK,
    };
    (status, Json(serde_json::json!({ "id": id })))
}

/// `PUT /api/v1/logins/{id}`: 201 when new, 200 when updated.
async fn put_login(
    HostId(host): HostId,
    State(st): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiErr> {
    let id = path_id(id, "login")?;
    let row: LoginUpload = json_body(body)?;
    if row.meta.id != id {
        return Err(ApiErr::bad_request(format!(
            "the body is login {}, the path says {id}",
            row.meta.id
        )));
    }
    let p = blocking(&st, move |s| s.put_login(host, &row)).await?;
    Ok(put_status(p, id))
}

/// `PUT /api/v1/recordings/{id}`: 201 when new, 200 when updated.
async fn put_recording(
    HostId(host): HostId,
    State(st): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiErr> {
    let id = path_id(id, "recording")?;
    let row: RecordingUpload = json_body(body)?;
    if row.meta.id != id {
        return Err(ApiErr::bad_request(format!(
            "the body is recording {}, the path says {id}",
            row.meta.id
        )));
    }
    let p = blocking(&st, move |s| s.put_recording(host, &row)).await?;
    Ok(put_status(p, id))
}

/// `POST /api/v1/recordings/{id}/chunks` (postcard [`ChunkBatch`]): the acks after storing.
async fn post_chunks(
    HostId(host): HostId,
    State(st): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiErr> {
    let recording = path_id(id, "recording")?;
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or_default();
    if !content_type.eq_ignore_ascii_case(CHUNKS_CONTENT_TYPE) {
        return Err(ApiErr::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send chunk batches as {CHUNKS_CONTENT_TYPE}"),
        ));
    }
    let bytes = body_bytes(body)?;
    let batch = ChunkBatch::decode(&bytes)
        .map_err(|e| ApiErr::bad_request(format!("invalid chunk batch: {e}")))?;
    if batch.chunks.len() > MAX_BATCH_CHUNKS {
        return Err(ApiErr::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} chunks in one batch; at most {MAX_BATCH_CHUNKS}",
                batch.chunks.len()
            ),
        ));
    }
    let chunks = batch
        .chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let (stream, seq) = (c.stream, c.seq);
            c.into_sealed(recording).map_err(|e| {
                ApiErr::bad_request(format!("chunk {i} (stream {stream} seq {seq}): {e}"))
            })
        })
        .collect::<Result<Vec<SealedChunk>, ApiErr>>()?;
    let acks = blocking(&st, move |s| s.add_chunks(host, recording, &chunks)).await?;
    Ok(Json(acks).into_response())
}

/// `GET /api/v1/recordings/{id}/acks`.
async fn get_acks(
    HostId(host): HostId,
    State(st): State<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiErr> {
    let recording = path_id(id, "recording")?;
    let acks = blocking(&st, move |s| s.acks(host, recording)).await?;
    Ok(Json(acks).into_response())
}

/// `POST /api/v1/audit`: `{"stored": n}`, n the events that were new.
async fn post_audit(
    HostId(host): HostId,
    State(st): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiErr> {
    let events: AuditUpload = json_body(body)?;
    let stored = blocking(&st, move |s| s.add_audit(host, &events)).await?;
    Ok(Json(serde_json::json!({ "stored": stored })))
}

async fn put_report(
    HostId(host): HostId,
    State(st): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiErr> {
    let report: HostReport = json_body(body)?;
    let cat = st.catalog.clone();
    tokio::task::spawn_blocking(move || {
        cat.host_report(host, report.pending_recordings, report.pending_bytes)
    })
    .await
    .map_err(|e| ApiErr::internal(format!("store task failed: {e}")))??;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_forms() {
        assert!(etag_matches("\"3\"", "\"3\""));
        assert!(etag_matches("W/\"3\"", "\"3\""));
        assert!(etag_matches("\"1\", \"3\"", "\"3\""));
        assert!(etag_matches("*", "\"3\""));
        assert!(!etag_matches("\"2\"", "\"3\""));
        assert!(!etag_matches("3", "\"3\""));
    }
}
