//! Runs the real `segura-server` binary on 127.0.0.1:0 with a temporary data directory and
//! talks to it over real HTTP (ureq). The server is killed when the guard is dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use libsegura::chunk::{ChunkEncoder, Event, Record, SealedChunk, Stream};
use libsegura::spool::{RecordingRow, RecordingState};
use libsegura::wire::{ChunkBatch, WireChunk, CHUNKS_CONTENT_TYPE};
use serde_json::Value;
use uuid::Uuid;

pub const BIN: &str = env!("CARGO_BIN_EXE_segura-server");

pub struct Server {
    child: Child,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT` (or https).
    pub base: String,
    pub agent: ureq::Agent,
}

/// An enrolled host's credential.
#[derive(Clone, Debug)]
pub struct Host {
    pub id: Uuid,
    pub secret: String,
}

impl Host {
    pub fn bearer(&self) -> String {
        format!("Bearer {}.{}", self.id, self.secret)
    }
}

/// A response: status, headers we look at, body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub etag: Option<String>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    /// The `error` of an ApiError body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {:?}", self.body))
            .to_string()
    }
}

pub fn agent(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
    let mut cfg = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)));
    if let Some(tls) = tls {
        cfg = cfg.tls_config(tls);
    }
    cfg.build().into()
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[], None)
    }

    /// Starts the server with extra `serve` arguments; `tls` is the client's TLS configuration
    /// when the server is given a certificate.
    pub fn start_with(extra: &[&str], tls: Option<ureq::tls::TlsConfig>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let https = tls.is_some();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            panic!("the server did not start: {line:?}\n{log}");
        };
        let scheme = if https { "https" } else { "http" };
        Server {
            base: format!("{scheme}://{addr}"),
            child,
            dir,
            agent: agent(tls),
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn addr(&self) -> &str {
        self.base.split("://").nth(1).unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs `segura-server admin ARGS --data DIR`.
    pub fn admin(&self, args: &[&str], stdin: &str) -> Output {
        admin_in(&self.data(), args, stdin)
    }

    /// Runs an admin command that must succeed; returns its stdout.
    pub fn admin_ok(&self, args: &[&str]) -> String {
        let out = self.admin(args, "");
        assert!(
            out.status.success(),
            "admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn token(&self) -> String {
        self.admin_ok(&["enroll-token"]).trim().to_string()
    }

    pub fn try_enroll(&self, token: &str, hostname: &str) -> Resp {
        self.send(
            "POST",
            "/api/v1/enroll",
            None,
            Some("application/json"),
            serde_json::json!({ "token": token, "hostname": hostname })
                .to_string()
                .into_bytes(),
        )
    }

    pub fn enroll(&self, hostname: &str) -> Host {
        let r = self.try_enroll(&self.token(), hostname);
        assert_eq!(r.status, 201, "{r:?}");
        let v = r.json();
        Host {
            id: v["host_id"].as_str().unwrap().parse().unwrap(),
            secret: v["secret"].as_str().unwrap().to_string(),
        }
    }

    pub fn get(&self, path: &str, host: Option<&Host>, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(h) = host {
            req = req.header("Authorization", h.bearer());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        resp(req.call().unwrap())
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        host: Option<&Host>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "POST" => self.agent.post(url),
            "PUT" => self.agent.put(url),
            other => panic!("method {other}"),
        };
        if let Some(h) = host {
            req = req.header("Authorization", h.bearer());
        }
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        resp(req.send(&body[..]).unwrap())
    }

    pub fn put_json(&self, path: &str, host: &Host, body: &impl serde::Serialize) -> Resp {
        self.send(
            "PUT",
            path,
            Some(host),
            Some("application/json"),
            serde_json::to_vec(body).unwrap(),
        )
    }

    pub fn post_json(&self, path: &str, host: &Host, body: &impl serde::Serialize) -> Resp {
        self.send(
            "POST",
            path,
            Some(host),
            Some("application/json"),
            serde_json::to_vec(body).unwrap(),
        )
    }

    pub fn put_recording(&self, host: &Host, row: &RecordingRow) -> Resp {
        self.put_json(&format!("/api/v1/recordings/{}", row.meta.id), host, row)
    }

    pub fn post_chunks(&self, host: &Host, recording: Uuid, chunks: &[&SealedChunk]) -> Resp {
        self.post_batch(host, recording, batch(chunks).encode())
    }

    pub fn post_batch(&self, host: &Host, recording: Uuid, body: Vec<u8>) -> Resp {
        self.send(
            "POST",
            &format!("/api/v1/recordings/{recording}/chunks"),
            Some(host),
            Some(CHUNKS_CONTENT_TYPE),
            body,
        )
    }

    pub fn acks(&self, host: &Host, recording: Uuid) -> Resp {
        self.get(
            &format!("/api/v1/recordings/{recording}/acks"),
            Some(host),
            &[],
        )
    }

    /// `admin recordings --json`, as JSON.
    pub fn recordings(&self) -> Value {
        serde_json::from_str(&self.admin_ok(&["recordings", "--json"])).unwrap()
    }

    /// Sends raw bytes over a new TCP connection and returns what the server answers.
    pub fn raw(&self, request: &[u8]) -> String {
        let mut s = std::net::TcpStream::connect(self.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(request).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn admin_in(data: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .arg("admin")
        .args(args)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn resp(mut r: ureq::http::Response<ureq::Body>) -> Resp {
    Resp {
        status: r.status().as_u16(),
        etag: r
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_string()),
        body: r.body_mut().read_to_string().unwrap(),
    }
}

pub fn batch(chunks: &[&SealedChunk]) -> ChunkBatch {
    ChunkBatch {
        chunks: chunks.iter().map(|c| WireChunk::from_sealed(c)).collect(),
    }
}

/// A recording's metadata as an agent would PUT it.
pub fn recording_row(id: Uuid) -> RecordingRow {
    segura_server::fixtures::recording_row(id, "ws1")
}

/// The same recording, ended, announcing `chunks` chunks.
pub fn ended(mut row: RecordingRow, chunks: u64) -> RecordingRow {
    row.ended_at = Some(row.meta.started_at + 9_000_000);
    row.exit_code = Some(0);
    row.state = RecordingState::Ended;
    row.chunks = chunks;
    row
}

/// A recorded session: its chunks per stream and the output they carry.
pub struct Session {
    pub id: Uuid,
    pub output: Vec<SealedChunk>,
    pub input: Vec<SealedChunk>,
    pub events: Vec<SealedChunk>,
    pub output_text: String,
}

impl Session {
    pub fn new(output_chunks: u64) -> Session {
        let id = Uuid::now_v7();
        let mut text = String::new();
        let mut out = ChunkEncoder::new(id, Stream::Output, 3);
        let output = (0..output_chunks)
            .map(|i| {
                let records: Vec<Record> = (0..3)
                    .map(|j| {
                        let line = format!("chunk {i} line {j}: héllo wörld\r\n");
                        text.push_str(&line);
                        Record {
                            delay_us: 1000,
                            data: line.into_bytes(),
                        }
                    })
                    .collect();
                out.seal(i * 100_000, records).unwrap()
            })
            .collect();
        let mut inp = ChunkEncoder::new(id, Stream::Input, 3);
        let input = (0..2)
            .map(|i| {
                inp.seal(
                    i * 100_000 + 500,
                    vec![Record {
                        delay_us: 0,
                        data: format!("ls {i}\r").into_bytes(),
                    }],
                )
                .unwrap()
            })
            .collect();
        let mut ev = ChunkEncoder::new(id, Stream::Events, 3);
        let events = vec![ev
            .seal(
                50,
                vec![Record {
                    delay_us: 0,
                    data: Event::Resize {
                        cols: 100,
                        rows: 30,
                    }
                    .encode(),
                }],
            )
            .unwrap()];
        Session {
            id,
            output,
            input,
            events,
            output_text: text,
        }
    }

    pub fn all(&self) -> Vec<&SealedChunk> {
        self.output
            .iter()
            .chain(&self.input)
            .chain(&self.events)
            .collect()
    }

    pub fn count(&self) -> u64 {
        (self.output.len() + self.input.len() + self.events.len()) as u64
    }
}

/// A self-signed certificate for 127.0.0.1 written to `dir`: (cert path, key path, DER).
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    (cert, key, ck.cert.der().to_vec())
}

/// A client TLS configuration trusting exactly `der`.
pub fn trusting(der: Vec<u8>) -> ureq::tls::TlsConfig {
    ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[
            ureq::tls::Certificate::from_der(&der).to_owned(),
        ]))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build()
}
