//! Platform identity against the real segura-server: hosts start pending and their uploads wait
//! in quarantine until an admin approves them; a revoked host is refused at once and what it
//! delivered stays; a recording belongs to the endpoint user with the identical username, on
//! every host; users not approved are kept and flagged, never dropped.

use segura_tests::platform::{agent_env, Server};
use segura_tests::Env;

const ADMIN: (&str, &str) = ("ada", "ada-secret-pw");

fn host(server: &Server, name: &str) -> (Env, String) {
    let env = agent_env("");
    let out = env.ok([
        "enroll-host",
        "--server",
        &server.url(),
        "--token",
        &server.token(),
        "--name",
        name,
    ]);
    assert!(String::from_utf8_lossy(&out).contains("pending"));
    let id = server
        .hosts()
        .iter()
        .find(|h| h["hostname"] == name)
        .map(|h| h["id"].as_str().unwrap().to_string())
        .unwrap();
    (env, id)
}

fn record(env: &Env, text: &str) -> String {
    env.ok(["rec", "--", "echo", text]);
    env.last_id()
}

#[test]
fn a_pending_host_uploads_into_quarantine_until_approved() {
    let server = Server::new();
    server.add_user(ADMIN.0, "admin", ADMIN.1);
    let (env, host_id) = host(&server, "laptop-1");
    let hosts = server.hosts();
    assert_eq!(hosts[0]["state"], "pending");
    let id = record(&env, "while-pending");
    env.ok(["sync"]);
    // Accepted (the platform holds every chunk) but not shown, nor openable.
    assert_eq!(server.recordings().len(), 1);
    assert_eq!(server.recordings()[0]["complete"], true);
    let web = server.web(ADMIN.0, ADMIN.1);
    assert!(web.listed("").is_empty());
    let (status, page) = web.get(&format!("/sessions/{id}"));
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("quarantine"));
    let (_, hosts_page) = web.get("/hosts");
    assert!(hosts_page.contains("1 sessions in quarantine"));

    server.admin(&["approve-host", &host_id]);
    assert_eq!(server.hosts()[0]["state"], "approved");
    assert_eq!(web.listed(""), vec![id.clone()]);
    // Every chunk the agent announced is held: ended, not pending upload.
    assert_eq!(web.listed("status=ended"), vec![id.clone()]);
    assert!(web.listed("status=pending").is_empty());
    let (status, page) = web.get(&format!("/sessions/{id}"));
    assert_eq!(status, 200);
    assert!(page.contains("while-pending"));
    // Approving twice is refused clearly; a host already approved is revoked, not rejected.
    let out = std::process::Command::new(segura_tests::bin("segura-server"))
        .args(["admin", "reject-host", &host_id, "--data"])
        .arg(server.data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revoke it instead"));
}

#[test]
fn a_revoked_host_is_refused_at_once_and_what_it_delivered_stays() {
    let server = Server::new();
    server.add_user(ADMIN.0, "admin", ADMIN.1);
    let (env, host_id) = host(&server, "laptop-2");
    server.admin(&["approve-host", &host_id]);
    let first = record(&env, "delivered-before");
    env.ok(["sync"]);
    server.admin(&["revoke-host", &host_id]);

    let second = record(&env, "after-revocation");
    let out = env.run(["sync"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401") || err.contains("revoked"), "{err}");
    // Kept on the host, waiting.
    let local = env.recordings();
    let pending = local.iter().find(|r| r["id"] == second.as_str()).unwrap();
    assert!(
        pending["chunks_pending_upload"].as_u64().unwrap() > 0,
        "{pending}"
    );
    // And what it delivered before stays on the platform, visible.
    let web = server.web(ADMIN.0, ADMIN.1);
    assert_eq!(web.listed(""), vec![first.clone()]);
    let ids: Vec<String> = server
        .recordings()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![first]);
}

#[test]
fn recordings_belong_to_the_identically_named_user_across_hosts() {
    let server = Server::new();
    server.add_user(ADMIN.0, "admin", ADMIN.1);
    let (a, a_id) = host(&server, "ws-a");
    let (b, b_id) = host(&server, "ws-b");
    server.admin(&["approve-host", &a_id]);
    server.admin(&["approve-host", &b_id]);
    let on_a = record(&a, "on-a");
    let on_b = record(&b, "on-b");
    a.ok(["sync"]);
    b.ok(["sync"]);
    let user = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();

    let web = server.web(ADMIN.0, ADMIN.1);
    let mut mine = web.listed(&format!("user={user}"));
    mine.sort();
    let mut both = vec![on_a.clone(), on_b.clone()];
    both.sort();
    assert_eq!(mine, both, "one user, two hosts");
    // One endpoint user, seen on both hosts, not approved yet: listed and flagged, not dropped.
    let (_, users) = web.get("/users");
    let row = users
        .split("<tr data-user=")
        .find(|r| r.starts_with(&format!("\"{user}\"")))
        .expect("the user is listed");
    assert!(row.contains("ws-a, ws-b"), "{row}");
    assert!(row.contains("not approved"), "{row}");
    let (_, list) = web.get("/sessions");
    assert_eq!(list.matches("class=\"unapproved\"").count(), 2);

    server.admin(&["approve-user", &user]);
    let (_, list) = web.get("/sessions");
    assert_eq!(list.matches("class=\"unapproved\"").count(), 0);
    let (_, users) = web.get("/users");
    assert!(users.contains(" by admin command"), "{users}");
    // Approving all users of a host is one step too.
    let out = std::process::Command::new(segura_tests::bin("segura-server"))
        .args(["admin", "approve-user", "--host", &b_id, "--data"])
        .arg(server.data.path())
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn the_audit_page_lists_binary_runs_and_transfers_of_approved_hosts() {
    use libsegura::spool::{AuditEvent, Spool, SpoolOptions};
    let server = Server::new();
    server.add_user(ADMIN.0, "admin", ADMIN.1);
    let (env, host_id) = host(&server, "ws-audit");
    // Two events, as segura-launch and segura-shell write them into the spool.
    {
        std::fs::create_dir_all(env.spool.parent().unwrap()).unwrap();
        let spool = Spool::open(&env.spool, SpoolOptions::default()).unwrap();
        let now = libsegura::time::now_us();
        for (kind, body) in [
            (
                "binary-run",
                serde_json::json!({"path": "/usr/bin/ping", "argv": ["ping", "-c", "1", "<b>x</b>"],
                    "exit_code": 0, "duration_us": 1_200_000, "recorded": null}),
            ),
            (
                "file-transfer",
                serde_json::json!({"command": ["sftp-server"], "bytes_from_host": 10,
                    "exit_code": 0, "duration_us": 5_000}),
            ),
        ] {
            spool
                .add_audit_event(&AuditEvent {
                    id: uuid::Uuid::now_v7(),
                    at: now,
                    kind: kind.into(),
                    user: "dora".into(),
                    host: "ws-audit".into(),
                    body,
                })
                .unwrap();
        }
    }
    env.ok(["sync"]);
    let web = server.web(ADMIN.0, ADMIN.1);
    // A pending host's events wait with its sessions.
    let (_, page) = web.get("/audit");
    assert!(page.contains("0 events"), "{page}");
    server.admin(&["approve-host", &host_id]);
    let (status, page) = web.get("/audit");
    assert_eq!(status, 200);
    assert!(page.contains("2 events"), "{page}");
    assert!(
        page.contains("ping -c 1 &lt;b&gt;x&lt;/b&gt;"),
        "escaped: {page}"
    );
    assert!(page.contains("not recorded"));
    let (_, page) = web.get("/audit?kind=file-transfer");
    assert!(page.contains("1 events") && page.contains("sftp-server"));
    let (_, page) = web.get("/audit?program=ping&user=dora");
    assert!(page.contains("1 events"));
    let (_, page) = web.get("/audit?user=nobody");
    assert!(page.contains("0 events"));
}

#[test]
fn odd_query_strings_get_pages_or_clear_errors_never_a_crash() {
    let server = Server::new();
    server.add_user(ADMIN.0, "admin", ADMIN.1);
    let web = server.web(ADMIN.0, ADMIN.1);
    for q in [
        "page=18446744073709551615",
        "page=-3",
        "page=99999999999999999999999",
        "sort=%00&dir=sideways",
        "from=2024-13-45&to=yesterday",
        "status=%3Cscript%3E",
        "q=%22%22%22%20NEAR(%20*",
        "user=%25%5F%5C&host=%F0%9F%98%80&group=%E2%80%AE",
    ] {
        let (status, page) = web.get(&format!("/sessions?{q}"));
        assert_eq!(status, 200, "{q}: {page}");
        assert!(!page.contains("<script>"), "{q}");
        let (status, _) = web.get(&format!("/audit?{q}"));
        assert_eq!(status, 200, "{q}");
    }
    let (_, page) = web.get("/sessions?from=2024-13-45");
    assert!(page.contains("is not a date"));
    for path in [
        "/sessions/not-a-uuid",
        "/sessions/00000000-0000-0000-0000-000000000000/video",
        "/sessions/x/cast",
        "/nothing-here",
    ] {
        let (status, page) = web.get(path);
        assert_eq!(status, 404, "{path}: {page}");
    }
    let (status, _) = web.get("/sessions/00000000-0000-0000-0000-000000000000/video?t=NaN");
    assert_eq!(status, 404);
}

#[test]
fn a_recording_too_large_for_the_browser_is_offered_as_a_download() {
    let server = Server::new();
    server.add_user(ADMIN.0, "admin", ADMIN.1);
    let (env, host_id) = host(&server, "ws-big");
    server.admin(&["approve-host", &host_id]);
    env.ok(["rec", "--", "head", "-c", "70M", "/dev/zero"]);
    let id = env.last_id();
    env.ok(["sync"]);
    let web = server.web(ADMIN.0, ADMIN.1);
    assert_eq!(web.listed("status=ended"), vec![id.clone()]);
    for path in [format!("/sessions/{id}"), format!("/sessions/{id}/video")] {
        let (status, page) = web.get(&path);
        assert_eq!(status, 200, "{path}");
        assert!(
            page.contains("70.0 MiB, more than the 64.0 MiB"),
            "{path}: {page}"
        );
        assert!(page.contains("admin export"));
    }
    // The player's whole-file fetch is refused; a download is still given.
    assert_eq!(web.get(&format!("/sessions/{id}/cast")).0, 413);
    let (status, cast) = web.get(&format!("/sessions/{id}/cast?download=1"));
    assert_eq!(status, 200);
    let header: serde_json::Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert!(cast.len() > 70 << 20);
}
