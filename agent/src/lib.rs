//! segura-agent: the upload agent (`segura sync`). Delivers logins, recordings, their chunks and audit events to the platform,
//! exactly once, resuming from what the platform acknowledged; and pulls the policy bundle.
//!
//! - libcurl, one handle reused for every request of a pass (keep-alive).
//! - Chunks go in batches sized by bytes; the platform answers, per stream, how many chunks it
//!   holds contiguously, and only then are they marked acknowledged locally (deleted later, after
//!   `upload.keep_uploaded_hours`). A crash at any point resends at most unacknowledged chunks,
//!   which the platform takes idempotently.
//! - Transport errors, timeouts and 5xx answers are retried with exponential backoff and jitter;
//!   a 4xx answer for one recording quarantines that recording with the platform's message and the
//!   rest of the queue goes on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use libsegura::chunk::SealedChunk;
use libsegura::chunk::Stream;
use libsegura::config::UploadConfig;
use libsegura::policy_cache::{cached_etag, store_policy};
use libsegura::spool::{RecordingState, Spool, SpoolError, SpoolOptions};
use libsegura::wire::{
    self, Acks, ChunkBatch, EnrollRequest, EnrollResponse, PolicyBundle, WireChunk,
};

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Could not talk to the platform (offline, refused, timed out): try again later.
    #[error("cannot reach {url}: {detail}")]
    Transport { url: String, detail: String },
    /// The platform failed (5xx): try again later.
    #[error("{url}: the platform answered {status}: {message}")]
    Server {
        url: String,
        status: u32,
        message: String,
    },
    /// The platform refused the request (4xx): retrying the same request will not help.
    #[error("{url}: refused ({status}): {message}")]
    Rejected {
        url: String,
        status: u32,
        message: String,
    },
    #[error("{url}: unexpected answer: {detail}")]
    Protocol { url: String, detail: String },
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("credentials {path}: {detail}")]
    Credentials { path: PathBuf, detail: String },
}

impl UploadError {
    /// Worth retrying (the network or the platform may recover).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            UploadError::Transport { .. } | UploadError::Server { .. }
        ) || matches!(self, UploadError::Rejected { status: 429, .. })
    }
}

/// What `segura enroll-host` stores (0600): where the platform is and who this host is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub server: String,
    pub host_id: Uuid,
    pub secret: String,
}

impl Credentials {
    pub fn load(path: &Path) -> Result<Credentials, UploadError> {
        let err = |detail: String| UploadError::Credentials {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(format!(
                "{e} (enroll this host first: segura enroll-host --server URL --token T)"
            ))
        })?;
        toml::from_str(&text).map_err(|e| err(e.to_string()))
    }

    pub fn save(&self, path: &Path) -> Result<(), UploadError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let err = |e: std::io::Error| UploadError::Credentials {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = PathBuf::from(format!("{}.tmp", path.display()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(toml::to_string(self).unwrap_or_default().as_bytes())
            .map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

/// An HTTP client for the platform's API.
pub struct Client {
    base: String,
    auth: Option<String>,
    easy: curl::easy::Easy,
    timeout: Duration,
}

struct Reply {
    status: u32,
    body: Vec<u8>,
    etag: Option<String>,
}

impl Client {
    pub fn new(base: &str, timeout: Duration) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            auth: None,
            easy: curl::easy::Easy::new(),
            timeout,
        }
    }

    pub fn with_credentials(c: &Credentials, timeout: Duration) -> Client {
        let mut client = Client::new(&c.server, timeout);
        client.auth = Some(format!("Bearer {}.{}", c.host_id, c.secret));
        client
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        if_none_match: Option<&str>,
    ) -> Result<Reply, UploadError> {
        let url = format!("{}{}{path}", self.base, wire::API);
        let transport = |e: curl::Error| UploadError::Transport {
            url: url.clone(),
            detail: e.to_string(),
        };
        let e = &mut self.easy;
        e.reset();
        e.url(&url).map_err(transport)?;
        e.connect_timeout(Duration::from_secs(5).min(self.timeout))
            .map_err(transport)?;
        e.timeout(self.timeout).map_err(transport)?;
        // A transfer that stalls below 1 byte/s for 10 s (or the timeout) is abandoned.
        e.low_speed_limit(1).map_err(transport)?;
        e.low_speed_time(Duration::from_secs(10).min(self.timeout))
            .map_err(transport)?;
        e.signal(false).map_err(transport)?;
        let mut headers = curl::easy::List::new();
        if let Some(a) = &self.auth {
            headers
                .append(&format!("Authorization: {a}"))
                .map_err(transport)?;
        }
        if let Some(tag) = if_none_match {
            headers
                .append(&format!("If-None-Match: {tag}"))
                .map_err(transport)?;
        }
        headers.append("Expect:").map_err(transport)?;
        match (method, body) {
            ("GET", _) => e.get(true).map_err(transport)?,
            (m, Some((ctype, data))) => {
                headers
                    .append(&format!("Content-Type: {ctype}"))
                    .map_err(transport)?;
                e.custom_request(m).map_err(transport)?;
                e.post_fields_copy(data).map_err(transport)?;
            }
            (m, None) => e.custom_request(m).map_err(transport)?,
        }
        e.http_headers(headers).map_err(transport)?;
        let mut body_out = Vec::new();
        let mut etag = None;
        {
            let mut t = e.transfer();
            t.write_function(|d| {
                body_out.extend_from_slice(d);
                Ok(d.len())
            })
            .map_err(transport)?;
            t.header_function(|h| {
                let line = String::from_utf8_lossy(h);
                if let Some((k, v)) = line.split_once(':') {
                    if k.trim().eq_ignore_ascii_case("etag") {
                        etag = Some(v.trim().to_string());
                    }
                }
                true
            })
            .map_err(transport)?;
            t.perform().map_err(transport)?;
        }
        let status = e.response_code().map_err(transport)?;
        let message = || {
            serde_json::from_slice::<wire::ApiError>(&body_out)
                .map(|a| a.error)
                .unwrap_or_else(|_| {
                    String::from_utf8_lossy(&body_out)
                        .chars()
                        .take(200)
                        .collect()
                })
        };
        match status {
            200..=399 => Ok(Reply {
                status,
                body: body_out,
                etag,
            }),
            500..=599 | 0 => Err(UploadError::Server {
                url,
                status,
                message: message(),
            }),
            _ => Err(UploadError::Rejected {
                url,
                status,
                message: message(),
            }),
        }
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        reply: &Reply,
    ) -> Result<T, UploadError> {
        serde_json::from_slice(&reply.body).map_err(|e| UploadError::Protocol {
            url: format!("{}{}{path}", self.base, wire::API),
            detail: e.to_string(),
        })
    }

    /// Trades a one-time token for this host's credential.
    pub fn enroll(&mut self, token: &str, hostname: &str) -> Result<EnrollResponse, UploadError> {
        let body = serde_json::to_vec(&EnrollRequest {
            token: token.to_string(),
            hostname: hostname.to_string(),
        })
        .unwrap_or_default();
        let r = self.request("POST", "/enroll", Some(("application/json", &body)), None)?;
        self.json("/enroll", &r)
    }

    /// The policy bundle, unless it is still `etag`.
    pub fn policy(
        &mut self,
        etag: Option<&str>,
    ) -> Result<Option<(PolicyBundle, Option<String>)>, UploadError> {
        let r = self.request("GET", "/policy", None, etag)?;
        if r.status == 304 {
            return Ok(None);
        }
        let bundle = self.json("/policy", &r)?;
        Ok(Some((bundle, r.etag)))
    }

    fn put_json<T: Serialize>(&mut self, path: &str, value: &T) -> Result<(), UploadError> {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.request("PUT", path, Some(("application/json", &body)), None)?;
        Ok(())
    }

    pub fn acks(&mut self, id: Uuid) -> Result<Acks, UploadError> {
        let path = format!("/recordings/{id}/acks");
        let r = self.request("GET", &path, None, None)?;
        self.json(&path, &r)
    }

    pub fn chunks(&mut self, id: Uuid, batch: &ChunkBatch) -> Result<Acks, UploadError> {
        let path = format!("/recordings/{id}/chunks");
        let r = self.request(
            "POST",
            &path,
            Some((wire::CHUNKS_CONTENT_TYPE, &batch.encode())),
            None,
        )?;
        self.json(&path, &r)
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub policy_updated: bool,
    pub logins: usize,
    pub recordings: usize,
    pub chunks: usize,
    pub bytes: u64,
    pub audit_events: usize,
    pub quarantined: Vec<(Uuid, String)>,
    pub purged_chunks: usize,
    /// Why a policy bundle from the platform was refused (the last good one stays in force).
    pub policy_rejected: Option<String>,
    /// The spool report could not be sent (the sync itself succeeded).
    pub report_error: Option<String>,
}

/// Runs `f`, retrying transient failures with exponential backoff and jitter.
pub fn with_retries<T>(
    attempts: u32,
    mut f: impl FnMut() -> Result<T, UploadError>,
) -> Result<T, UploadError> {
    let mut delay = Duration::from_millis(100);
    let mut n = 0;
    loop {
        match f() {
            Err(e) if e.is_transient() && n + 1 < attempts => {
                n += 1;
                let jitter = rand::random::<f64>() * 0.5 + 0.75;
                std::thread::sleep(delay.mul_f64(jitter));
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// One pass: policy, logins, recordings and their chunks, audit events, then the purge of
/// long-delivered chunks. Stops at the first transient failure (the caller retries later);
/// permanent refusals of one recording quarantine it and the pass goes on.
pub fn sync_once(
    spool: &Spool,
    client: &mut Client,
    cfg: &UploadConfig,
) -> Result<SyncReport, UploadError> {
    let mut report = SyncReport::default();
    let retries = 4;
    spool.use_mmap(1 << 30);

    // Policy: replace the cached bundle only with a valid one.
    let etag = cached_etag(spool.path());
    if let Some((bundle, tag)) = with_retries(retries, || client.policy(etag.as_deref()))? {
        match bundle.rules.iter().try_for_each(|r| r.validate()) {
            Ok(()) => {
                store_policy(spool.path(), &bundle, tag.as_deref()).map_err(|e| {
                    UploadError::Protocol {
                        url: "policy cache".into(),
                        detail: e.to_string(),
                    }
                })?;
                report.policy_updated = true;
            }
            Err((field, msg)) => {
                let why = format!("invalid rule field {field}: {msg}");
                libsegura::record::sys::syslog(
                    libc::LOG_WARNING,
                    &format!("segura sync: refused the platform's policy bundle ({why}); keeping the last good one"),
                );
                report.policy_rejected = Some(why);
            }
        }
    }

    for login in spool.logins_to_upload()? {
        let path = format!("/logins/{}", login.meta.id);
        with_retries(retries, || client.put_json(&path, &login))?;
        spool.login_uploaded(login.meta.id, login.state)?;
        report.logins += 1;
    }

    for rec in spool.recordings_to_upload()? {
        let id = rec.meta.id;
        match upload_recording(spool, client, cfg, &rec, &mut report) {
            Ok(()) => report.recordings += 1,
            Err(UploadError::Rejected {
                status, message, ..
            }) if status != 429 && status != 401 => {
                let reason = format!("refused by the platform ({status}): {message}");
                spool.quarantine(id, &reason)?;
                report.quarantined.push((id, reason));
            }
            Err(e) => return Err(e),
        }
    }

    loop {
        let events = spool.audit_to_upload(500)?;
        if events.is_empty() {
            break;
        }
        let body = serde_json::to_vec(&events).unwrap_or_default();
        with_retries(retries, || {
            client
                .request("POST", "/audit", Some(("application/json", &body)), None)
                .map(|_| ())
        })?;
        spool.audit_uploaded(&events.iter().map(|e| e.id).collect::<Vec<_>>())?;
        report.audit_events += events.len();
    }

    let keep_us =
        i64::try_from(cfg.keep_uploaded_hours.saturating_mul(3_600_000_000)).unwrap_or(i64::MAX);
    report.purged_chunks =
        spool.purge_uploaded(libsegura::time::now_us().saturating_sub(keep_us))?;

    // What is still to send, for the platform's Hosts page: a failure here fails nothing.
    let status = spool.status()?;
    let host_report = libsegura::wire::HostReport {
        pending_recordings: status.recordings_pending_upload,
        pending_bytes: status.bytes_pending_upload,
    };
    if let Err(e) = client.put_json("/report", &host_report) {
        report.report_error = Some(e.to_string());
    }
    Ok(report)
}

fn upload_recording(
    spool: &Spool,
    client: &mut Client,
    cfg: &UploadConfig,
    rec: &libsegura::spool::RecordingRow,
    report: &mut SyncReport,
) -> Result<(), UploadError> {
    upload_streams(spool, client, cfg, rec, &Stream::ALL, report)?;
    if rec.state != RecordingState::Recording {
        // The final state, once every chunk is there.
        spool.recording_uploaded(rec.meta.id, rec.state)?;
    }
    Ok(())
}

/// Registers a recording with the platform and sends its unacknowledged chunks of `streams`.
pub fn upload_streams(
    spool: &Spool,
    client: &mut Client,
    cfg: &UploadConfig,
    rec: &libsegura::spool::RecordingRow,
    streams: &[Stream],
    report: &mut SyncReport,
) -> Result<(), UploadError> {
    let id = rec.meta.id;
    let path = format!("/recordings/{id}");
    with_retries(4, || client.put_json(&path, rec))?;
    // Resume from what the platform holds (a crash may have come after it stored a batch).
    let acks = with_retries(4, || client.acks(id))?;
    mark(spool, id, &acks)?;
    // A reader on its own connection pages ahead (two batches) while this thread sends, so
    // reading the spool and the platform's work overlap.
    let reader = Spool::open(spool.path(), SpoolOptions::default())?;
    reader.use_mmap(1 << 30);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<SealedChunk>, SpoolError>>(2);
    std::thread::scope(|scope| -> Result<(), UploadError> {
        scope.spawn(move || {
            let mut after = None;
            loop {
                let batch = reader.unacked_chunks_after(
                    id,
                    streams,
                    after,
                    cfg.batch_bytes,
                    wire::MAX_BATCH_CHUNKS,
                );
                let done = match &batch {
                    Ok(chunks) => match chunks.last() {
                        Some(c) => {
                            after = Some((c.stream, c.seq));
                            false
                        }
                        None => true,
                    },
                    Err(_) => true,
                };
                // The sender stops listening on the first failure: stop reading then too.
                if done || tx.send(batch).is_err() {
                    break;
                }
            }
        });
        for chunks in rx {
            let chunks = chunks?;
            let batch = ChunkBatch {
                chunks: chunks.iter().map(WireChunk::from_sealed).collect(),
            };
            let acks = with_retries(4, || client.chunks(id, &batch))?;
            let before = spool.unacked_count(id)?;
            mark(spool, id, &acks)?;
            let after = spool.unacked_count(id)?;
            if after >= before {
                return Err(UploadError::Protocol {
                    url: path.clone(),
                    detail: "the platform acknowledged none of the batch".into(),
                });
            }
            report.chunks += (before - after) as usize;
            report.bytes += batch
                .chunks
                .iter()
                .map(|c| c.blob.len() as u64)
                .sum::<u64>();
        }
        Ok(())
    })
}

/// Notes that the platform holds a finished recording completely (after [`upload_streams`]
/// sent every stream).
pub fn recording_delivered(
    spool: &Spool,
    rec: &libsegura::spool::RecordingRow,
) -> Result<(), UploadError> {
    if rec.state != RecordingState::Recording && spool.unacked_count(rec.meta.id)? == 0 {
        spool.recording_uploaded(rec.meta.id, rec.state)?;
    }
    Ok(())
}

fn mark(spool: &Spool, id: Uuid, acks: &Acks) -> Result<(), UploadError> {
    let list: Vec<(Stream, u64)> = acks
        .streams
        .iter()
        .filter_map(|(s, n)| Stream::from_u8(*s).ok().map(|s| (s, *n)))
        .collect();
    spool.mark_acked(id, &list)?;
    Ok(())
}
