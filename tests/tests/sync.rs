//! The upload agent against the real segura-server on 127.0.0.1: offline recording delivered
//! later, kill -9 during uploads, a proxy injecting 500s, stalls and altered bytes, refusals.
//! Exactly once: the platform's copy is byte-identical and holds no chunk twice.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use segura_tests::platform::{agent_env, enroll, Server};
use segura_tests::Env;

/// Every local recording is on the platform, byte-identical, each chunk once.
fn assert_delivered(env: &Env, server: &Server) {
    let local = env.recordings();
    let remote = server.recordings();
    assert_eq!(local.len(), remote.len(), "{remote:#?}");
    for r in &local {
        let id = r["id"].as_str().unwrap();
        let rem = remote
            .iter()
            .find(|x| x["id"] == id)
            .expect("on the platform");
        let local_chunks = r["chunks"].as_u64().unwrap();
        let remote_chunks: u64 = rem["streams"]
            .as_object()
            .unwrap()
            .values()
            .map(|s| s["chunks"].as_u64().unwrap())
            .sum();
        assert_eq!(
            local_chunks, remote_chunks,
            "no chunk lost, none twice: {rem}"
        );
        assert_eq!(rem["complete"], true, "{rem}");
        assert!(
            env.ok(["export", id]) == server.export(id),
            "asciicast of {id} differs"
        );
        assert_eq!(r["chunks_pending_upload"], 0);
    }
}

#[test]
fn recorded_offline_delivered_when_the_platform_returns() {
    let mut server = Server::new();
    let env = agent_env("");
    enroll(&env, &server.url(), &server.token());
    server.stop();
    // Offline: record a pipe-mode command and a terminal session.
    env.ok(["rec", "--", "sh", "-c", "seq 1 100000; echo done >&2"]);
    let mut cmd = env.segura();
    cmd.args([
        "rec",
        "--",
        "sh",
        "-c",
        "printf 'offline \\342\\202\\254\\n'; sleep 0.2; echo end",
    ]);
    let (_, st) = segura_tests::Term::spawn(&mut cmd, segura_tests::SIZE, false)
        .finish(Duration::from_secs(20));
    assert!(st.success());
    let out = env.run(["sync"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach"), "{err}");
    let status: serde_json::Value = serde_json::from_slice(&env.ok(["status", "--json"])).unwrap();
    assert_eq!(status["recordings_pending_upload"], 2, "{status}");
    server.start();
    let report: serde_json::Value = serde_json::from_slice(&env.ok(["sync", "--json"])).unwrap();
    assert_eq!(report["recordings"], 2, "{report}");
    assert_delivered(&env, &server);
    // A second pass sends nothing.
    let report: serde_json::Value = serde_json::from_slice(&env.ok(["sync", "--json"])).unwrap();
    assert_eq!(
        (report["chunks"].as_u64(), report["recordings"].as_u64()),
        (Some(0), Some(0)),
        "{report}"
    );
}

#[test]
fn kill_9_of_the_agent_twenty_times_loses_and_duplicates_nothing() {
    let server = Server::new();
    let env = agent_env("batch_bytes = 65536\n");
    enroll(&env, &server.url(), &server.token());
    for _ in 0..2 {
        let out = env.run(["rec", "--", "head", "-c", "16000000", "/dev/urandom"]);
        assert!(out.status.success());
    }
    let mut rng_state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let pending = || -> u64 {
        let s: serde_json::Value = serde_json::from_slice(&env.ok(["status", "--json"])).unwrap();
        s["chunks_pending_upload"].as_u64().unwrap()
    };
    let total = pending();
    let mut interrupted = 0;
    for _ in 0..20 {
        let before = pending();
        let mut child = env
            .segura()
            .arg("sync")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(10 + next() % 120));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let after = pending();
        if after > 0 && after < before {
            interrupted += 1; // killed in the middle of an upload that had made progress
        }
    }
    assert!(total > 300, "{total} chunks to send");
    assert!(
        interrupted >= 3,
        "only {interrupted} kills landed mid-upload"
    );
    env.ok(["sync"]);
    assert_delivered(&env, &server);
}

/// Points the host's credential at `proxy` instead of the platform; returns the credential as it
/// was, to put back.
fn route_through(env: &Env, server: &Server, proxy: &Proxy) -> String {
    let creds = env.dir.path().join("host.toml");
    let good = std::fs::read_to_string(&creds).unwrap();
    let via = good.replace(&server.url(), &format!("http://127.0.0.1:{}", proxy.port));
    std::fs::write(&creds, via).unwrap();
    good
}

/// A loopback HTTP proxy that fails some requests: 500s, stalls, and (optionally) one altered
/// byte in chunk uploads.
struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU32>,
}

impl Proxy {
    fn start(upstream: u16, fail_every: u32, stall_every: u32, corrupt_chunks: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU32::new(0));
        let (stop2, served2) = (stop.clone(), served.clone());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let n = served2.fetch_add(1, Ordering::Relaxed) + 1;
                std::thread::spawn(move || {
                    let _ = handle(conn, upstream, n, fail_every, stall_every, corrupt_chunks);
                });
            }
        });
        Proxy { port, stop, served }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn read_request(conn: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    let head_end = loop {
        let n = conn.read(&mut tmp)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = segura_tests::find(&buf, b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut tmp)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    Ok(buf)
}

/// A bundle the platform would never send (a binary-run rule without a program), standing in
/// for a corrupt or hostile answer.
const BAD_POLICY: &str = r#"{"version": 99, "rules": [{"name": "bad", "guideline": "binary-run", "subject_type": "user", "subject": "root"}]}"#;

fn handle(
    mut conn: TcpStream,
    upstream: u16,
    n: u32,
    fail_every: u32,
    stall_every: u32,
    corrupt: bool,
) -> std::io::Result<()> {
    let mut req = read_request(&mut conn)?;
    if corrupt && req.starts_with(b"GET /api/v1/policy ") {
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"99\"\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{BAD_POLICY}",
            BAD_POLICY.len()
        )?;
        return Ok(());
    }
    if fail_every > 0 && n.is_multiple_of(fail_every) {
        let body = b"{\"error\":\"injected failure\"}";
        write!(conn, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
        return conn.write_all(body);
    }
    if stall_every > 0 && n.is_multiple_of(stall_every) {
        std::thread::sleep(Duration::from_secs(4)); // longer than the agent's timeout
        return Ok(());
    }
    if corrupt && segura_tests::find(&req, b"/chunks HTTP/1.1").is_some() {
        let last = req.len() - 10; // a byte inside the last chunk's blob
        req[last] ^= 0x20;
    }
    // Ask the upstream to close after answering, so its reply ends at EOF.
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    let head_end = segura_tests::find(&req, b"\r\n\r\n").unwrap() + 2;
    up.write_all(&req[..head_end])?;
    up.write_all(b"Connection: close\r\n")?;
    up.write_all(&req[head_end..])?;
    let mut reply = Vec::new();
    up.read_to_end(&mut reply)?;
    conn.write_all(&reply)
}

#[test]
fn failures_and_stalls_on_the_way_still_deliver_exactly_once() {
    let server = Server::new();
    let proxy = Proxy::start(server.port, 3, 7, false);
    let env = agent_env("batch_bytes = 65536\n");
    enroll(&env, &server.url(), &server.token());
    // The credential says where the platform is: point it through the proxy.
    route_through(&env, &server, &proxy);
    for i in 0..3 {
        let out = env.run([
            "rec",
            "--",
            "sh",
            "-c",
            &format!("head -c 400000 /dev/urandom | base64; echo run {i}"),
        ]);
        assert!(out.status.success());
    }
    let mut passes = 0;
    loop {
        passes += 1;
        assert!(passes < 40, "sync never completed through the faulty proxy");
        let out = env.run(["sync", "--json"]);
        if out.status.success() {
            let status: serde_json::Value =
                serde_json::from_slice(&env.ok(["status", "--json"])).unwrap();
            if status["recordings_pending_upload"] == 0 {
                break;
            }
        }
    }
    assert!(proxy.served.load(Ordering::Relaxed) > 10);
    assert_delivered(&env, &server);
}

#[test]
fn an_altered_chunk_is_caught_by_the_chain_and_set_aside_then_delivered() {
    let server = Server::new();
    let proxy = Proxy::start(server.port, 0, 0, true);
    let env = agent_env("");
    enroll(&env, &server.url(), &server.token());
    let good = route_through(&env, &server, &proxy);
    let creds = env.dir.path().join("host.toml");
    env.ok(["rec", "--", "sh", "-c", "seq 1 20000"]);
    let out = env.run(["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("set aside") && err.contains("hash chain broken"),
        "{err}"
    );
    let status = String::from_utf8(env.ok(["status"])).unwrap();
    assert!(
        status.contains("quarantined") && status.contains("hash chain broken"),
        "{status}"
    );
    // Nothing of the altered batch was stored.
    let remote = server.recordings();
    assert!(
        remote
            .iter()
            .all(|r| r["streams"].as_object().is_none_or(|s| s.is_empty())),
        "{remote:#?}"
    );
    // Straight to the platform again: delivered intact.
    std::fs::write(&creds, good).unwrap();
    env.ok(["sync", "--retry-quarantined"]);
    assert_delivered(&env, &server);
}

#[test]
fn refusals_are_clear_and_lose_nothing() {
    let server = Server::new();
    let env = agent_env("");
    let out = env.run([
        "enroll-host",
        "--server",
        &server.url(),
        "--token",
        "not-a-token",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused (401)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.run(["sync"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("enroll this host first"));
    enroll(&env, &server.url(), &server.token());
    env.ok(["rec", "--", "echo", "kept"]);
    let creds = env.dir.path().join("host.toml");
    let good = std::fs::read_to_string(&creds).unwrap();
    let bad: String = good
        .lines()
        .map(|l| {
            if l.starts_with("secret") {
                "secret = \"wrong\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&creds, bad).unwrap();
    let out = env.run(["sync"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&env.ok(["status", "--json"])).unwrap();
    assert_eq!(
        status["recordings_pending_upload"], 1,
        "still pending, not quarantined: {status}"
    );
    std::fs::write(&creds, good).unwrap();
    env.ok(["sync"]);
    assert_delivered(&env, &server);
}

#[test]
fn the_policy_is_pulled_cached_for_offline_use_and_a_bad_bundle_is_refused() {
    let mut server = Server::new();
    let env = agent_env("");
    enroll(&env, &server.url(), &server.token());
    let rules = env.dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"[{"id": "p1", "name": "platform: record root", "guideline": "login-session", "enable_recording": true, "subject_type": "user", "subject": "root"}]"#,
    )
    .unwrap();
    server.admin(&["policy-set", rules.to_str().unwrap()]);
    let check = || -> serde_json::Value {
        serde_json::from_slice(&env.ok(["policy", "check", "--user", "root", "--json"])).unwrap()
    };
    assert_eq!(check()["record"], false, "no local rules yet");
    let report: serde_json::Value = serde_json::from_slice(&env.ok(["sync", "--json"])).unwrap();
    assert_eq!(report["policy_updated"], true);
    assert_eq!(check()["rule"]["name"], "platform: record root");
    // Unchanged policy: one small request, nothing rewritten.
    let report: serde_json::Value = serde_json::from_slice(&env.ok(["sync", "--json"])).unwrap();
    assert_eq!(report["policy_updated"], false);
    // Offline, the cached policy still decides.
    server.stop();
    assert_eq!(check()["record"], true);
    server.start();
    // A bad bundle is refused and the last good one kept.
    let proxy = Proxy::start(server.port, 0, 0, true);
    route_through(&env, &server, &proxy);
    let report: serde_json::Value = serde_json::from_slice(&env.ok(["sync", "--json"])).unwrap();
    assert_eq!(report["policy_updated"], false, "{report}");
    assert!(
        report["policy_rejected"]
            .as_str()
            .unwrap()
            .contains("application_path"),
        "{report}"
    );
    assert_eq!(check()["rule"]["name"], "platform: record root");
}
