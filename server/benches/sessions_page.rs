//! The Remote Sessions page with 100 000 sessions: p50 and p95 page time over HTTP (sign-in
//! cookie, SQLite store, HTML rendered), unfiltered, with each filter, deep in the pages; beside
//! a baseline measured in the same run: the same page on an empty store (routing, the session
//! check and rendering, without the data).
//!
//! ```sh
//! cargo bench -p segura-server --bench sessions_page            # 100 000 sessions
//! SESSIONS=20000 cargo bench -p segura-server --bench sessions_page
//! ```
//! Target: p95 ≤ 100 ms with and without a filter.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libsegura::spool::{LoginRow, RecordingKind, RecordingState};
use segura_server::api::{self, AppState};
use segura_server::auth;
use segura_server::catalog::Catalog;
use segura_server::fixtures;
use segura_server::limits::RateLimiter;
use segura_server::sqlite::SqliteStore;
use segura_server::store::{NewHost, Role, Store};
use segura_server::web::WebOptions;
use serde_json::json;
use uuid::Uuid;

const HOSTS: usize = 50;
const USERS: usize = 500;
const REQUESTS: usize = 100;
const WORDS: [&str; 16] = [
    "ls",
    "cd",
    "vim",
    "make",
    "cargo",
    "git",
    "ssh",
    "grep",
    "systemctl",
    "journalctl",
    "tail",
    "apt",
    "docker",
    "kubectl",
    "psql",
    "curl",
];

/// A small deterministic generator (xorshift), so every run has the same data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn populate(store: &SqliteStore, sessions: usize) -> Vec<Uuid> {
    let mut hosts = Vec::new();
    for h in 0..HOSTS {
        let token = auth::secret_hash(&format!("token-{h}"));
        store.add_enroll_token(&token, i64::MAX).unwrap();
        let id = Uuid::now_v7();
        store
            .enroll(
                &token,
                &NewHost {
                    id,
                    hostname: format!("ws{h:03}.example.net"),
                    secret_hash: auth::secret_hash("s"),
                    enrolled_at: 0,
                },
            )
            .unwrap();
        store.decide_host(id, true, "bench").unwrap();
        hosts.push(id);
    }
    let mut rng = Rng(0x5eed_5eed_5eed_5eed);
    let start = 1_700_000_000_000_000i64;
    let t0 = Instant::now();
    for i in 0..sessions {
        let host = hosts[rng.below(HOSTS)];
        let user = format!("user{:03}", rng.below(USERS));
        let group = format!("team{}", rng.below(20));
        let started = start + i as i64 * 30_000_000;
        let roll = rng.below(100);
        if roll < 2 {
            let row: LoginRow = serde_json::from_value(json!({
                "id": Uuid::now_v7(), "user": user, "uid": 1000, "gid": 1000, "group": group,
                "host": "x", "service": "sshd", "tty": "ssh", "rhost": "10.0.0.1", "ruser": null,
                "rule": "record-all", "opened_at": started, "state": "unrecorded",
                "attached_at": null, "ended_at": started + 5_000_000, "recordings": 0
            }))
            .unwrap();
            store.put_login(host, &row).unwrap();
            continue;
        }
        let binary = roll < 20;
        let id = Uuid::now_v7();
        let mut row = fixtures::recording_row(id, "x");
        let m = &mut row.meta;
        (m.user, m.group, m.rule, m.started_at) = (user, group, Some("record-all".into()), started);
        if binary {
            m.kind = RecordingKind::Binary;
            m.service = None;
            m.command = ["/usr/bin/ping", "-c", "4", "127.0.0.1"]
                .map(String::from)
                .to_vec();
        }
        if roll >= 23 {
            row.ended_at = Some(started + 60_000_000 + rng.below(3_600) as i64 * 1_000_000);
            row.state = RecordingState::Ended;
        }
        if roll < 28 {
            row.chunks = 3;
        }
        store.put_recording(host, &row).unwrap();
        if row.chunks == 0 && row.ended_at.is_some() {
            let words: Vec<&str> = (0..40).map(|_| WORDS[rng.below(WORDS.len())]).collect();
            let transcript = format!("{} token{}", words.join(" "), i);
            store
                .index_text(id, Some((&transcript, &words[..5].join("\n"))))
                .unwrap();
        }
        if (i + 1) % 20_000 == 0 {
            eprintln!(
                "  {} sessions stored ({:.0} s)",
                i + 1,
                t0.elapsed().as_secs_f64()
            );
        }
    }
    hosts
}

/// Serves the platform on a loopback port in a background runtime; answers the address and a
/// signed-in cookie.
fn serve(store: SqliteStore) -> (SocketAddr, String) {
    store.add_user("bench", Role::Admin, "x").unwrap();
    let token = auth::new_secret();
    store
        .add_web_session(&auth::secret_hash(&token), "bench", "csrf", i64::MAX)
        .unwrap();
    let store = Arc::new(store);
    let state = Arc::new(AppState {
        store: store.clone(),
        catalog: store,
        web: WebOptions {
            secure: false,
            retention: Duration::from_secs(86_400 * 365),
        },
        hosts: RateLimiter::new(1e9, 1_000_000),
        anonymous: RateLimiter::new(1e9, 1_000_000),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(l, app).await.unwrap();
        });
    });
    (addr, format!("segura_session={token}"))
}

/// p50 and p95 (ms) of GET `path`, after a warm-up; checks the page says `expect`.
fn measure(addr: SocketAddr, cookie: &str, path: &str, expect: &str) -> (f64, f64) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("http://{addr}{path}");
    let get = || {
        let mut r = agent.get(&url).header("Cookie", cookie).call().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.body_mut().read_to_string().unwrap()
    };
    for _ in 0..5 {
        let body = get();
        assert!(body.contains(expect), "{path}: no {expect:?}");
    }
    let mut times: Vec<f64> = (0..REQUESTS)
        .map(|_| {
            let t = Instant::now();
            get();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[REQUESTS / 2], times[REQUESTS * 95 / 100])
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken.
    let sessions: usize = std::env::var("SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let empty_dir = tempfile::tempdir().unwrap();
    eprintln!("storing {sessions} sessions over {HOSTS} hosts and {USERS} users…");
    let store = SqliteStore::open(dir.path()).unwrap();
    populate(&store, sessions);
    let empty = SqliteStore::open(empty_dir.path()).unwrap();
    populate(&empty, 0);
    if std::env::var_os("KEEP_DB").is_some() {
        eprintln!("database kept in {}", dir.path().display());
        std::mem::forget(dir);
    }
    let (addr, cookie) = serve(store);
    let (empty_addr, empty_cookie) = serve(empty);

    let deep = sessions as u64 / 50 / 2;
    let cases: Vec<(&str, String)> = vec![
        ("no filter, page 1", "/sessions".into()),
        ("user", "/sessions?user=user042".into()),
        ("host", "/sessions?host=ws007.example.net".into()),
        ("primary group", "/sessions?group=team3".into()),
        ("service or binary", "/sessions?service=ping".into()),
        ("state pending upload", "/sessions?status=pending".into()),
        ("state unrecorded", "/sessions?status=unrecorded".into()),
        (
            "date range (1 day)",
            "/sessions?from=2023-11-15&to=2023-11-15".into(),
        ),
        ("free text (transcript)", "/sessions?q=kubectl+psql".into()),
        ("free text, rare word", "/sessions?q=token4242".into()),
        (
            "user + text + state",
            "/sessions?user=user042&q=git&status=ended".into(),
        ),
        ("sorted by size", "/sessions?sort=size&dir=desc".into()),
        ("deep page (middle)", format!("/sessions?page={deep}")),
    ];
    println!("Remote Sessions page, {sessions} sessions, {REQUESTS} requests each (ms)");
    println!(
        "{:<26} {:>8} {:>8} {:>12} {:>10}",
        "case", "p50", "p95", "empty p95", "ratio p95"
    );
    let mut worst: f64 = 0.0;
    for (name, path) in &cases {
        let (p50, p95) = measure(addr, &cookie, path, "Remote Sessions");
        let (_, base95) = measure(empty_addr, &empty_cookie, path, "Remote Sessions");
        worst = worst.max(p95);
        println!(
            "{name:<26} {p50:>8.1} {p95:>8.1} {base95:>12.1} {:>9.1}×",
            p95 / base95
        );
    }
    println!(
        "worst p95 {worst:.1} ms: target ≤ 100 ms {}",
        if worst <= 100.0 { "met" } else { "NOT met" }
    );
}
