//! The real server over real HTTP: enrollment, authentication, policy, recordings and chunks,
//! limits, the admin commands.

mod common;

use common::*;
use libsegura::chunk::{ChunkEncoder, Record, Stream};
use libsegura::wire::{ChunkBatch, WireChunk, MAX_BATCH_CHUNKS, MAX_BODY_BYTES};
use serde_json::{json, Value};
use uuid::Uuid;

fn acks_of(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["streams"].clone()
}

#[test]
fn enrollment_tokens_are_one_time_and_requests_need_a_credential() {
    let s = Server::start();
    let token = s.token();
    assert_eq!(token.len(), 64);
    let r = s.try_enroll(&token, "ws1");
    assert_eq!(r.status, 201, "{r:?}");
    let host = Host {
        id: r.json()["host_id"].as_str().unwrap().parse().unwrap(),
        secret: r.json()["secret"].as_str().unwrap().to_string(),
    };
    // Reused or unknown tokens.
    let r = s.try_enroll(&token, "ws2");
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.error().contains("enrollment token"), "{r:?}");
    assert_eq!(s.try_enroll("0123abcd", "ws2").status, 401);
    // A token is good for one host only, and only the first time.
    let token2 = s.token();
    assert_eq!(s.try_enroll(&token2, "bad name").status, 400);
    assert_eq!(s.try_enroll(&token2, "ws2").status, 201);

    // Unauthenticated, wrong secret, malformed header, unknown host: 401 with a message.
    let r = s.get("/api/v1/policy", None, &[]);
    assert_eq!(r.status, 401);
    assert!(r.error().contains("Authorization"), "{r:?}");
    let wrong = Host {
        id: host.id,
        secret: "f".repeat(64),
    };
    assert_eq!(s.get("/api/v1/policy", Some(&wrong), &[]).status, 401);
    let unknown = Host {
        id: Uuid::now_v7(),
        secret: host.secret.clone(),
    };
    assert_eq!(s.get("/api/v1/policy", Some(&unknown), &[]).status, 401);
    let r = s.get("/api/v1/policy", None, &[("Authorization", "Basic YTpi")]);
    assert_eq!(r.status, 401);
    let rec = recording_row(Uuid::now_v7());
    let r = s.put_json(&format!("/api/v1/recordings/{}", rec.meta.id), &wrong, &rec);
    assert_eq!(r.status, 401);
    assert_eq!(s.get("/api/v1/policy", Some(&host), &[]).status, 200);

    // The store keeps hosts, never the secret itself.
    let hosts: Value = serde_json::from_str(&s.admin_ok(&["hosts", "--json"])).unwrap();
    assert_eq!(hosts.as_array().unwrap().len(), 2);
    assert_eq!(hosts[0]["hostname"], "ws1");
    assert_eq!(hosts[0]["id"], host.id.to_string());
    let db = std::fs::read(s.data().join("segura-server.db")).unwrap();
    let wal = std::fs::read(s.data().join("segura-server.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes
            .windows(host.secret.len())
            .any(|w| w == host.secret.as_bytes()));
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }
    let table = s.admin_ok(&["hosts"]);
    assert!(table.contains("ws1") && table.contains("active"), "{table}");

    // A revoked host is refused.
    s.admin_ok(&["revoke-host", &host.id.to_string()]);
    let r = s.get("/api/v1/policy", Some(&host), &[]);
    assert_eq!(r.status, 401);
    assert!(r.error().contains("revoked"), "{r:?}");
}

#[test]
fn policy_has_an_etag_and_304s() {
    let s = Server::start();
    let host = s.enroll("ws1");
    let r = s.get("/api/v1/policy", Some(&host), &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"version": 0, "rules": []}));
    let etag = r.etag.clone().unwrap();
    let r = s.get("/api/v1/policy", Some(&host), &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    assert_eq!(r.body, "");
    assert_eq!(r.etag.as_deref(), Some(etag.as_str()));

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        json!([{
            "name": "record admins",
            "guideline": "login-session",
            "enable_recording": true,
            "subject_type": "group",
            "subject": "admins"
        }])
        .to_string(),
    )
    .unwrap();
    s.admin_ok(&["policy-set", file.path().to_str().unwrap()]);
    let r = s.get("/api/v1/policy", Some(&host), &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["version"], 1);
    assert_eq!(v["rules"][0]["name"], "record admins");
    assert!(v["rules"][0]["id"].is_string(), "the platform names rules");
    let etag2 = r.etag.unwrap();
    assert_ne!(etag, etag2);
    assert_eq!(
        s.get("/api/v1/policy", Some(&host), &[("If-None-Match", &etag2)])
            .status,
        304
    );

    // An invalid rule file is refused and changes nothing.
    std::fs::write(file.path(), r#"[{"name": "x", "guideline": "nonsense"}]"#).unwrap();
    let out = s.admin(&["policy-set", file.path().to_str().unwrap()], "");
    assert!(!out.status.success());
    assert_eq!(
        s.get("/api/v1/policy", Some(&host), &[("If-None-Match", &etag2)])
            .status,
        304
    );
}

#[test]
fn chunks_are_stored_once_acked_contiguously_and_exported() {
    let s = Server::start();
    let host = s.enroll("ws1");
    let sess = Session::new(5);
    let row = recording_row(sess.id);

    // Chunks of a recording the platform does not know yet.
    let r = s.post_chunks(&host, sess.id, &[&sess.output[0]]);
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(s.acks(&host, sess.id).status, 404);

    assert_eq!(s.put_recording(&host, &row).status, 201);
    assert_eq!(s.put_recording(&host, &row).status, 200);
    assert_eq!(acks_of(&s.acks(&host, sess.id)), json!({}));

    // Two batches that overlap on output seq 2.
    let o = &sess.output;
    let r = s.post_chunks(&host, sess.id, &[&o[0], &o[1], &o[2], &sess.events[0]]);
    assert_eq!(r.json()["recording"], sess.id.to_string());
    assert_eq!(acks_of(&r), json!({"0": 3, "2": 1}));
    let r = s.post_chunks(
        &host,
        sess.id,
        &[&o[2], &o[3], &o[4], &sess.input[0], &sess.input[1]],
    );
    assert_eq!(acks_of(&r), json!({"0": 5, "1": 2, "2": 1}));
    assert_eq!(
        acks_of(&s.acks(&host, sess.id)),
        json!({"0": 5, "1": 2, "2": 1})
    );

    let recs = s.recordings();
    let check = |recs: &Value, complete: bool| {
        assert_eq!(recs.as_array().unwrap().len(), 1, "{recs}");
        let r = &recs[0];
        assert_eq!(r["id"], sess.id.to_string());
        assert_eq!(r["host_id"], host.id.to_string());
        assert_eq!(r["hostname"], "ws1");
        assert_eq!(r["user"], "alice");
        assert_eq!(r["streams"]["output"]["chunks"], 5);
        assert_eq!(r["streams"]["input"]["chunks"], 2);
        assert_eq!(r["streams"]["events"]["chunks"], 1);
        let stored: usize = sess.output.iter().map(|c| c.blob.len()).sum();
        assert_eq!(r["streams"]["output"]["stored_bytes"], stored);
        assert_eq!(r["streams"]["output"]["raw_bytes"], sess.output_text.len());
        assert_eq!(r["complete"], complete, "{r}");
    };
    check(&recs, false);

    // Everything again, in one batch: same acks, nothing stored twice.
    let r = s.post_chunks(&host, sess.id, &sess.all());
    assert_eq!(acks_of(&r), json!({"0": 5, "1": 2, "2": 1}));
    check(&s.recordings(), false);

    // The end arrives: the recording is complete.
    assert_eq!(
        s.put_recording(&host, &ended(row.clone(), sess.count()))
            .status,
        200
    );
    check(&s.recordings(), true);
    // Its identity cannot change afterwards; the id in the path must be the body's.
    let mut other = ended(row.clone(), sess.count());
    other.meta.user = "mallory".into();
    assert_eq!(s.put_recording(&host, &other).status, 409);
    let r = s.put_json(
        &format!("/api/v1/recordings/{}", Uuid::now_v7()),
        &host,
        &row,
    );
    assert_eq!(r.status, 400);
    assert!(r.error().contains("path"), "{r:?}");

    // The platform's copy plays back what was recorded, byte for byte.
    let out = s.admin_ok(&["export", &sess.id.to_string(), "--format", "asciicast"]);
    let mut lines = out.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert_eq!(header["width"], 80);
    let mut output = String::new();
    let mut codes = std::collections::BTreeSet::new();
    for line in lines {
        let ev: Value = serde_json::from_str(line).unwrap();
        let code = ev[1].as_str().unwrap().to_string();
        if code == "o" {
            output.push_str(ev[2].as_str().unwrap());
        }
        codes.insert(code);
    }
    assert_eq!(output, sess.output_text);
    assert_eq!(
        codes.into_iter().collect::<Vec<_>>(),
        ["i", "o", "r"],
        "input and the resize are there too"
    );
    // A unique prefix is enough.
    let prefix = &sess.id.to_string()[..13];
    assert_eq!(
        s.admin_ok(&["export", prefix, "--format", "asciicast"]),
        out
    );
}

#[test]
fn broken_chains_gaps_and_conflicts_store_nothing() {
    let s = Server::start();
    let host = s.enroll("ws1");
    let sess = Session::new(4);
    assert_eq!(s.put_recording(&host, &recording_row(sess.id)).status, 201);
    let o = &sess.output;

    // An altered blob in the middle of a batch: 422, and the good chunk before it is not kept.
    let mut altered = o[1].clone();
    let last = altered.blob.len() - 1;
    altered.blob[last] ^= 0x40;
    let r = s.post_chunks(&host, sess.id, &[&o[0], &altered, &o[2]]);
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.error(), "hash chain broken at stream 0 seq 1");
    assert_eq!(acks_of(&s.acks(&host, sess.id)), json!({}));
    // A chunk whose hash was recomputed over the altered blob does not chain either... once
    // the real chunk 0 is held, only the original chunk 1 fits.
    assert_eq!(
        acks_of(&s.post_chunks(&host, sess.id, &[&o[0]])),
        json!({"0": 1})
    );

    // A gap: seq 2 while only seq 0 is held.
    let r = s.post_chunks(&host, sess.id, &[&o[2]]);
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.error().contains("gap"), "{r:?}");
    // The gap is refused even after good chunks in the same batch: nothing of it is stored.
    let r = s.post_chunks(&host, sess.id, &[&sess.input[0], &o[1], &o[3]]);
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(acks_of(&s.acks(&host, sess.id)), json!({"0": 1}));

    // The same seq with other content: 409.
    let mut enc = ChunkEncoder::new(sess.id, Stream::Output, 3);
    let impostor = enc
        .seal(
            0,
            vec![Record {
                delay_us: 0,
                data: b"something else".to_vec(),
            }],
        )
        .unwrap();
    let r = s.post_chunks(&host, sess.id, &[&impostor]);
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.error().contains("different hash"), "{r:?}");

    // A chunk of another recording's chain does not fit this one.
    let other = Session::new(1);
    let r = s.post_chunks(&host, sess.id, &[&other.output[0], &o[1]]);
    assert_eq!(r.status, 409, "seq 0 is held with another hash: {r:?}");
    let r = s.post_chunks(&host, sess.id, &[&other.input[0]]);
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.error(), "hash chain broken at stream 1 seq 0");

    // Hostile batches: bad postcard, an unknown stream, huge numbers, wrong content type.
    let r = s.post_batch(
        &host,
        sess.id,
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01".to_vec(),
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.error().contains("invalid chunk batch"), "{r:?}");
    let mut w = WireChunk::from_sealed(&o[1]);
    w.stream = 9;
    let r = s.post_batch(&host, sess.id, ChunkBatch { chunks: vec![w] }.encode());
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.error().contains("unknown stream number 9"), "{r:?}");
    let mut w = WireChunk::from_sealed(&o[1]);
    w.raw_len = u64::MAX;
    let r = s.post_batch(&host, sess.id, ChunkBatch { chunks: vec![w] }.encode());
    assert_eq!(r.status, 400, "{r:?}");
    let mut w = WireChunk::from_sealed(&o[1]);
    w.seq = u64::MAX;
    let r = s.post_batch(&host, sess.id, ChunkBatch { chunks: vec![w] }.encode());
    assert!(r.status == 400 || r.status == 409, "{r:?}");
    // A length prefix that claims far more than the body holds.
    let r = s.post_batch(&host, sess.id, vec![0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
    assert_eq!(r.status, 400, "{r:?}");
    let r = s.send(
        "POST",
        &format!("/api/v1/recordings/{}/chunks", sess.id),
        Some(&host),
        Some("application/json"),
        b"{}".to_vec(),
    );
    assert_eq!(r.status, 415, "{r:?}");

    // After all that, the good chunks still go in.
    let r = s.post_chunks(&host, sess.id, &[&o[1], &o[2], &o[3], &sess.input[0]]);
    assert_eq!(acks_of(&r), json!({"0": 4, "1": 1}));
    let recs = s.recordings();
    assert_eq!(recs[0]["streams"]["output"]["chunks"], 4);
    assert_eq!(recs[0]["streams"]["input"]["chunks"], 1);
}

#[test]
fn a_host_writes_only_its_own_recordings() {
    let s = Server::start();
    let a = s.enroll("ws-a");
    let b = s.enroll("ws-b");
    let sess = Session::new(2);
    let row = recording_row(sess.id);
    assert_eq!(s.put_recording(&a, &row).status, 201);
    assert_eq!(
        acks_of(&s.post_chunks(&a, sess.id, &[&sess.output[0]])),
        json!({"0": 1})
    );

    let r = s.put_recording(&b, &row);
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.error().contains("another host"), "{r:?}");
    assert_eq!(s.post_chunks(&b, sess.id, &[&sess.output[1]]).status, 403);
    assert_eq!(s.acks(&b, sess.id).status, 403);
    assert_eq!(acks_of(&s.acks(&a, sess.id)), json!({"0": 1}));

    // Logins: the same binding.
    let login = json!({
        "id": Uuid::now_v7(), "user": "alice", "uid": 1000, "gid": 1000, "group": "alice",
        "host": "ws-a", "service": "sshd", "tty": "ssh", "rhost": "10.0.0.9", "ruser": null,
        "rule": "r1", "opened_at": 1_780_000_000_000_000i64, "state": "armed",
        "attached_at": null, "ended_at": null, "recordings": 0
    });
    let path = format!("/api/v1/logins/{}", login["id"].as_str().unwrap());
    assert_eq!(s.put_json(&path, &a, &login).status, 201);
    let mut later = login.clone();
    later["state"] = json!("ended");
    later["ended_at"] = json!(1_780_000_010_000_000i64);
    assert_eq!(s.put_json(&path, &a, &later).status, 200);
    assert_eq!(s.put_json(&path, &b, &later).status, 403);
    let r = s.put_json(&format!("/api/v1/logins/{}", Uuid::now_v7()), &a, &login);
    assert_eq!(r.status, 400, "{r:?}");
    let r = s.put_json(&path, &a, &json!({"id": login["id"], "user": 3}));
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.error().starts_with("invalid JSON body"), "{r:?}");
}

#[test]
fn limits_and_malformed_requests_are_4xx() {
    let s = Server::start();
    let host = s.enroll("ws1");
    let sess = Session::new(1);
    assert_eq!(s.put_recording(&host, &recording_row(sess.id)).status, 201);

    // A declared body over the limit is refused before it is read.
    let head = format!(
        "POST /api/v1/recordings/{}/chunks HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: application/x-segura-chunks\r\nContent-Length: {}\r\n\r\n",
        sess.id,
        host.bearer(),
        MAX_BODY_BYTES + 1
    );
    let answer = s.raw(head.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("over the limit"), "{answer}");

    // A body over the limit without a declared length (chunked) is cut off once the limit is
    // passed. (The client stops there: a server that refuses a body never reads the rest, so a
    // client still sending would see its connection reset instead of the answer.)
    let mut req = format!(
        "POST /api/v1/recordings/{}/chunks HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: application/x-segura-chunks\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n",
        sess.id,
        host.bearer(),
        2 * MAX_BODY_BYTES
    )
    .into_bytes();
    req.resize(req.len() + MAX_BODY_BYTES + 1, 0);
    let answer = s.raw(&req);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("over the limit"), "{answer}");

    // Too many chunks in one batch.
    let w = WireChunk::from_sealed(&sess.output[0]);
    let many = ChunkBatch {
        chunks: vec![w; MAX_BATCH_CHUNKS + 1],
    };
    let r = s.post_batch(&host, sess.id, many.encode());
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(acks_of(&s.acks(&host, sess.id)), json!({}));

    // Garbage JSON, a bad id in the path, an unknown endpoint, a wrong method.
    let r = s.send(
        "PUT",
        &format!("/api/v1/recordings/{}", sess.id),
        Some(&host),
        Some("application/json"),
        b"\x00garbage{".to_vec(),
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.error().starts_with("invalid JSON body"), "{r:?}");
    let r = s.send(
        "PUT",
        "/api/v1/recordings/not-a-uuid",
        Some(&host),
        Some("application/json"),
        b"{}".to_vec(),
    );
    assert_eq!(r.status, 400, "{r:?}");
    let r = s.get("/api/v1/nothing", Some(&host), &[]);
    assert_eq!(r.status, 404);
    assert!(!r.error().is_empty());
    assert_eq!(s.get("/api/v1/audit", Some(&host), &[]).status, 405);
    let r = s.send("POST", "/api/v1/enroll", None, None, b"[1,2".to_vec());
    assert_eq!(r.status, 400, "{r:?}");

    // Audit events: idempotent on their ids.
    let events = json!([
        {"id": Uuid::now_v7(), "at": 1, "kind": "binary-run", "user": "alice", "host": "ws1",
         "body": {"path": "/usr/bin/vim", "exit": 0}},
        {"id": Uuid::now_v7(), "at": 2, "kind": "login", "user": "bob", "host": "ws1",
         "body": null}
    ]);
    let r = s.post_json("/api/v1/audit", &host, &events);
    assert_eq!((r.status, r.json()), (200, json!({"stored": 2})));
    let r = s.post_json("/api/v1/audit", &host, &events);
    assert_eq!((r.status, r.json()), (200, json!({"stored": 0})));
    let other = s.enroll("ws2");
    assert_eq!(s.post_json("/api/v1/audit", &other, &events).status, 403);

    // Nothing above upset the server.
    assert!(!s.log().contains("panicked"), "{}", s.log());
    assert_eq!(s.get("/api/v1/policy", Some(&host), &[]).status, 200);
}

#[test]
fn each_host_is_rate_limited() {
    let s = Server::start_with(&["--rate", "1", "--burst", "5"], None);
    let a = s.enroll("ws-a");
    let b = s.enroll("ws-b");
    let statuses: Vec<u16> = (0..8)
        .map(|_| s.get("/api/v1/policy", Some(&a), &[]).status)
        .collect();
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    assert!(statuses[5..].contains(&429), "{statuses:?}");
    let r = s.get("/api/v1/policy", Some(&a), &[]);
    if r.status == 429 {
        assert!(r.error().contains("too many"), "{r:?}");
    }
    // Another host is not held back by the first.
    assert_eq!(s.get("/api/v1/policy", Some(&b), &[]).status, 200);

    // A client that keeps failing to authenticate is slowed down, but hosts that authenticate
    // from the same address are not.
    let wrong = Host {
        id: b.id,
        secret: "0".repeat(64),
    };
    let statuses: Vec<u16> = (0..40)
        .map(|_| s.get("/api/v1/policy", Some(&wrong), &[]).status)
        .collect();
    assert_eq!(statuses[0], 401);
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.iter().all(|&c| c == 401 || c == 429));
    assert_eq!(s.get("/api/v1/policy", Some(&b), &[]).status, 200);
}

#[test]
fn tls_and_plain_http_only_on_loopback() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, der) = self_signed(certs.path());
    let s = Server::start_with(
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        Some(trusting(der)),
    );
    assert!(s.base.starts_with("https://"));
    let host = s.enroll("ws-tls");
    assert_eq!(s.get("/api/v1/policy", Some(&host), &[]).status, 200);
    // Plain HTTP to the TLS port gets nowhere.
    let answer = s.raw(b"GET /api/v1/policy HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!answer.contains("200 OK"), "{answer}");

    // Without TLS, only loopback.
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve plain HTTP"), "{err}");
    // A key without a certificate is a usage error.
    let out = std::process::Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-key",
            "k",
            "--data",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn admin_users_and_the_data_directory() {
    use std::os::unix::fs::PermissionsExt;

    let s = Server::start();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.data()), 0o700);
    assert_eq!(mode(&s.data().join("segura-server.db")), 0o600);

    let out = s.admin(
        &["create-user", "carol", "--role", "auditor"],
        "pa55 word, long enough\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.admin(
        &["create-user", "carol", "--role", "admin"],
        "another one, long\n",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = s.admin(&["create-user", "dave", "--role", "admin"], "");
    assert!(!out.status.success(), "an empty password is refused");
    let out = s.admin(&["create-user", "dave", "--role", "admin"], "short\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12 characters"));
    let db = std::fs::read(s.data().join("segura-server.db")).unwrap();
    let wal = std::fs::read(s.data().join("segura-server.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(22).any(|w| w == b"pa55 word, long enough"));
    }
    // Recordings listing works on an empty platform, as a table and as JSON.
    assert_eq!(s.recordings(), json!([]));
    assert!(s.admin_ok(&["recordings"]).starts_with("ID"));
    let out = s.admin(
        &[
            "export",
            &Uuid::now_v7().to_string(),
            "--format",
            "asciicast",
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no recording"));
}
