//! The platform's web UI in a real browser (Debian's headless Chromium driven through
//! ChromeDriver) against the real segura-server, with recordings made by `segura rec` on a pty
//! and delivered by `segura sync`.

use std::path::PathBuf;
use std::time::Duration;

use segura_tests::browser::Browser;
use segura_tests::platform::{agent_env, enroll, Server};
use segura_tests::{Env, Term, SIZE};
use serde_json::json;

const ADMIN: (&str, &str) = ("ada", "ada-secret-pw");
const AUDITOR: (&str, &str) = ("ann", "ann-secret-pw");
const OTHER_AUDITOR: (&str, &str) = ("abe", "abe-secret-pw");

/// A platform with an admin and two auditors, and an enrolled host (approved unless the test
/// approves it itself).
fn platform(serve_args: &[&str]) -> (Server, Env) {
    let (server, env) = pending_platform(serve_args);
    server.approve_hosts();
    (server, env)
}

fn pending_platform(serve_args: &[&str]) -> (Server, Env) {
    let server = Server::with_args(serve_args);
    for ((name, pw), role) in [
        (ADMIN, "admin"),
        (AUDITOR, "auditor"),
        (OTHER_AUDITOR, "auditor"),
    ] {
        server.add_user(name, role, pw);
    }
    let env = agent_env("");
    enroll(&env, &server.url(), &server.token());
    (server, env)
}

/// An interactive shell session: two commands typed 1.5 s apart. Returns its id.
fn record_two_commands(env: &Env) -> String {
    let mut cmd = env.segura();
    cmd.args(["rec", "--", "sh"]).env("PS1", "$ ");
    let mut t = Term::spawn(&mut cmd, SIZE, false);
    t.expect(b"$ ");
    t.write(b"echo alpha-$((1+1))\n");
    t.expect(b"alpha-2");
    std::thread::sleep(Duration::from_millis(1500));
    t.write(b"echo beta-$((2+2))\n");
    t.expect(b"beta-4");
    std::thread::sleep(Duration::from_millis(300));
    t.write(b"exit\n");
    let (_, status) = t.finish(Duration::from_secs(20));
    assert!(status.success());
    env.last_id()
}

/// A recording whose output is hostile: markup, script, a title escape, colours.
fn record_hostile(env: &Env) -> String {
    let script = r#"printf '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"> \033]0;evil-title\007\033[31mred-text\033[0m\n'"#;
    let mut cmd = env.segura();
    cmd.args(["rec", "--", "sh", "-c", script]);
    let (_, status) = Term::spawn(&mut cmd, SIZE, false).finish(Duration::from_secs(20));
    assert!(status.success());
    env.last_id()
}

fn sync(env: &Env) {
    let report: serde_json::Value = serde_json::from_slice(&env.ok(["sync", "--json"])).unwrap();
    assert!(report["report_error"].is_null(), "{report}");
}

fn sign_in(b: &Browser, server: &Server, (name, pw): (&str, &str)) {
    b.goto(&format!("{}/sessions", server.url()));
    // Not signed in: sent to the sign-in page, then back.
    b.find("form.signin");
    b.fill("input[name=name]", name);
    b.fill("input[name=password]", pw);
    b.click_to_load("form.signin button[type=submit]");
    b.find("h1");
    assert!(b.url().ends_with("/sessions"), "{}", b.url());
    assert!(b.text(".who").starts_with(name), "{}", b.text(".who"));
}

fn sign_out(b: &Browser) {
    if b.try_text("form.signout").is_none() {
        b.goto(&b.url().split("/").take(3).collect::<Vec<_>>().join("/"));
    }
    b.click_to_load("form.signout button[type=submit]");
    b.find("form.signin");
}

/// The "N sessions" count of the list.
fn listed(b: &Browser) -> u64 {
    b.text("p.count")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count: {}", b.text("body")))
}

fn list(b: &Browser, server: &Server, query: &str) -> u64 {
    b.goto(&format!("{}/sessions?{query}", server.url()));
    listed(b)
}

/// Screenshots go to docs/screenshots when SEGURA_UPDATE_SCREENSHOTS=1, else beside the test.
fn shot(b: &Browser, env: &Env, name: &str) {
    let dir = if std::env::var_os("SEGURA_UPDATE_SCREENSHOTS").is_some() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
    } else {
        env.dir.path().join("screenshots")
    };
    let path = dir.join(format!("{name}.png"));
    b.screenshot(&path);
    assert!(std::fs::metadata(&path).unwrap().len() > 1000);
}

/// What the player's terminal shows now.
fn screen(b: &Browser) -> String {
    b.exec(
        "const t = document.querySelector('#player .ap-term-text'); return t ? t.innerText : '';",
        json!([]),
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// No script ran that should not have, and the browser refused nothing on our pages.
fn assert_clean_console(b: &Browser) {
    let bad: Vec<String> = b
        .console()
        .into_iter()
        .filter(|m| {
            m.contains("Content Security Policy")
                || m.contains("Refused to")
                || m.starts_with("SEVERE")
        })
        .filter(|m| !m.contains("favicon.ico"))
        .collect();
    assert!(bad.is_empty(), "browser console: {bad:#?}");
    assert_eq!(b.exec("return typeof window.pwned", json!([])), "undefined");
}

#[test]
fn remote_sessions_log_and_video_in_a_real_browser() {
    let (server, env) = platform(&[]);
    let shell = record_two_commands(&env);
    let hostile = record_hostile(&env);
    sync(&env);
    let b = Browser::start();
    sign_in(&b, &server, ADMIN);
    shot(&b, &env, "remote-sessions");

    // The list, its filters and counts.
    assert_eq!(listed(&b), 2);
    assert_eq!(b.find_all("table.sessions tbody tr[data-id]").len(), 2);
    assert_eq!(list(&b, &server, "user=root"), 2);
    assert_eq!(list(&b, &server, "user=nobody-here"), 0);
    assert_eq!(list(&b, &server, "status=ended"), 2);
    assert_eq!(list(&b, &server, "status=unrecorded"), 0);
    assert_eq!(list(&b, &server, "from=2000-01-01&to=2000-12-31"), 0);
    // The form itself, as a user fills it.
    b.goto(&format!("{}/sessions", server.url()));
    b.fill("form.filters input[name=user]", "root");
    b.select("form.filters select[name=status]", "ended");
    b.click_to_load("form.filters button[type=submit]");
    b.wait_until("the filtered list", Duration::from_secs(5), |b| {
        b.url().contains("user=root")
    });
    assert_eq!(listed(&b), 2);
    // Free text matches transcripts and commands once the indexer has read them.
    b.wait_until("the text index", Duration::from_secs(20), |b| {
        list(b, &server, "q=beta-4") == 1
    });
    assert!(b.find_all(&format!("tr[data-id=\"{shell}\"]")).len() == 1);
    assert_eq!(list(&b, &server, "q=red-text"), 1);
    assert_eq!(list(&b, &server, "q=%22no+such+words%22"), 0);
    // FTS5 syntax typed by a user is just words.
    assert_eq!(list(&b, &server, "q=NEAR%28a+b%29+OR+*"), 0);

    // Session Log: metadata, commands with offsets, transcript with find.
    b.goto(&format!("{}/sessions", server.url()));
    b.click_to_load(&format!(
        "tr[data-id=\"{shell}\"] td.actions a[href$=\"{shell}\"]"
    ));
    b.find("table.commands");
    let cmds = b.text("table.commands");
    assert!(
        cmds.contains("echo alpha-$((1+1))") && cmds.contains("echo beta-$((2+2))"),
        "{cmds}"
    );
    let transcript = b.text("pre.transcript");
    assert!(
        transcript.contains("alpha-2") && transcript.contains("beta-4"),
        "{transcript}"
    );
    b.fill("form.find input[name=find]", "beta");
    b.click_to_load("form.find button[type=submit]");
    b.find("ol.hits");
    assert!(
        b.text("p.count").starts_with("2 matching lines"),
        "{}",
        b.text("p.count")
    );
    shot(&b, &env, "session-log");

    // Jump from a command to the video at that moment.
    let links = b.find_all("table.commands a.seek");
    assert_eq!(links.len(), 3, "two commands and exit");
    let t_alpha: f64 = b.attr(&links[0], "data-t").unwrap().parse().unwrap();
    let t_beta: f64 = b.attr(&links[1], "data-t").unwrap().parse().unwrap();
    assert!(t_beta - t_alpha >= 1.4, "{t_alpha} {t_beta}");
    b.click_el_to_load(&links[1]);
    b.find("#player");
    b.wait_until(
        "the player at the second command",
        Duration::from_secs(20),
        |b| screen(b).contains("echo beta-$((2+2))"),
    );
    let s = screen(&b);
    assert!(
        s.contains("alpha-2"),
        "earlier output is on the screen: {s}"
    );
    // Seek back to the first command from the side list: the later one is not typed yet.
    let side = b.find_all("ol.commands a.seek");
    b.click(&side[0]);
    b.wait_until(
        "the player at the first command",
        Duration::from_secs(20),
        |b| {
            let s = screen(b);
            s.contains("echo alpha-$((1+1))") && !s.contains("beta")
        },
    );
    // Speed: the player starts again where it was.
    b.select("#speed", "4");
    b.wait_until("the player at speed 4", Duration::from_secs(20), |b| {
        screen(b).contains("alpha")
    });
    shot(&b, &env, "session-video");
    assert_clean_console(&b);

    // Download as asciicast.
    let got = b.exec(
        "const x = new XMLHttpRequest(); x.open('GET', arguments[0], false); x.send(); \
         return [x.status, x.getResponseHeader('content-disposition'), x.responseText.split('\\n')[0]];",
        json!([format!("/sessions/{shell}/cast?download=1")]),
    );
    assert_eq!(got[0], 200);
    assert!(got[1].as_str().unwrap().contains("attachment"), "{got}");
    let header: serde_json::Value = serde_json::from_str(got[2].as_str().unwrap()).unwrap();
    assert_eq!(header["version"], 2);

    // Hostile output renders inert, in the log and in the player.
    b.goto(&format!("{}/sessions/{hostile}", server.url()));
    let t = b.text("pre.transcript");
    assert!(
        t.contains("<script>window.pwned=1</script>"),
        "shown as text: {t}"
    );
    assert_eq!(b.find_all("main img").len(), 0);
    assert!(!b
        .exec("return document.title", json!([]))
        .as_str()
        .unwrap()
        .contains("evil"));
    assert_clean_console(&b);
    b.goto(&format!("{}/sessions/{hostile}/video?t=5", server.url()));
    b.wait_until(
        "the hostile recording's last frame",
        Duration::from_secs(20),
        |b| screen(b).contains("red-text"),
    );
    assert!(screen(&b).contains("<script>"));
    assert_eq!(b.find_all("#player img, #player script").len(), 0);
    assert_clean_console(&b);

    // Hosts: last contact and the agent's report of its spool.
    b.goto(&format!("{}/hosts", server.url()));
    let hosts = b.text("table.hosts tbody");
    assert!(hosts.contains("0 B in 0 recordings"), "{hosts}");
    shot(&b, &env, "hosts");

    // Every view was logged.
    b.goto(&format!("{}/access-log", server.url()));
    let log = b.text("table.access");
    for action in ["view-log", "view-video", "download", "sign-in"] {
        assert!(log.contains(action), "{action} in {log}");
    }
}

#[test]
fn prevent_purge_keeps_a_session_through_the_retention_purge() {
    let (server, env) = platform(&["--retention", "1s", "--purge-every", "1h"]);
    let kept = {
        env.ok(["rec", "--", "echo", "keep-me"]);
        env.last_id()
    };
    let gone = {
        env.ok(["rec", "--", "echo", "purge-me"]);
        env.last_id()
    };
    sync(&env);
    std::thread::sleep(Duration::from_millis(1200));
    let b = Browser::start();
    sign_in(&b, &server, ADMIN);
    assert_eq!(listed(&b), 2);
    b.click_to_load(&format!(
        "tr[data-id=\"{kept}\"] form[action$=\"/hold\"] button"
    ));
    b.find(&format!("tr[data-id=\"{kept}\"] .hold"));
    assert!(b
        .find_all(&format!("tr[data-id=\"{gone}\"] .hold"))
        .is_empty());

    b.goto(&format!("{}/access-log", server.url()));
    assert!(b.text("main").contains("older than 1 seconds"));
    b.click_to_load("form[action=\"/purge\"] button");
    b.find("table.purges");
    let purged = b.text("table.purges");
    assert!(
        purged.contains(&gone) && !purged.contains(&kept),
        "{purged}"
    );
    assert!(b.text("table.access").contains("prevent-purge"));

    assert_eq!(list(&b, &server, ""), 1);
    assert_eq!(b.find_all(&format!("tr[data-id=\"{kept}\"]")).len(), 1);
    // The platform holds nothing more of the purged recording.
    let left: Vec<String> = server
        .recordings()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, vec![kept.clone()]);
}

#[test]
fn auditors_see_only_the_sessions_they_are_assigned_to() {
    let (server, env) = platform(&[]);
    env.ok(["rec", "--", "echo", "for-ann"]);
    let a = env.last_id();
    env.ok(["rec", "--", "echo", "for-nobody"]);
    let other = env.last_id();
    sync(&env);
    let b = Browser::start();
    sign_in(&b, &server, ADMIN);
    b.click_to_load(&format!("tr[data-id=\"{a}\"] a[href$=\"/auditors\"]"));
    b.click_on(&format!("input[name=auditor][value=\"{}\"]", AUDITOR.0));
    b.click_to_load("form.auditors button[type=submit]");
    b.find(&format!(
        "input[name=auditor][value=\"{}\"]:checked",
        AUDITOR.0
    ));
    sign_out(&b);

    sign_in(&b, &server, AUDITOR);
    assert_eq!(listed(&b), 1);
    assert_eq!(b.find_all(&format!("tr[data-id=\"{a}\"]")).len(), 1);
    // No admin pages, no admin actions.
    assert!(b.find_all("a[href=\"/policies\"]").is_empty());
    assert!(b.find_all("form[action$=\"/hold\"]").is_empty());
    b.goto(&format!("{}/sessions/{a}", server.url()));
    assert!(b.text("pre.transcript").contains("for-ann"));
    b.goto(&format!("{}/sessions/{other}", server.url()));
    assert!(b.text("h1").starts_with("403"), "{}", b.text("body"));
    b.goto(&format!("{}/policies", server.url()));
    assert!(b.text("h1").starts_with("403"));
    sign_out(&b);

    sign_in(&b, &server, OTHER_AUDITOR);
    assert_eq!(listed(&b), 0);
    for path in ["", "/video", "/cast"] {
        b.goto(&format!("{}/sessions/{a}{path}", server.url()));
        assert!(
            b.text("h1").starts_with("403"),
            "{path}: {}",
            b.text("body")
        );
    }
    sign_out(&b);

    sign_in(&b, &server, ADMIN);
    b.goto(&format!("{}/access-log", server.url()));
    let log = b.text("table.access");
    assert!(log.contains("configure-auditors"), "{log}");
    assert!(log.contains("refused: not an auditor of it"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains(AUDITOR.0) && l.contains("view-log") && l.contains(&a)),
        "{log}"
    );
}

#[test]
fn a_rule_made_in_the_policy_form_reaches_the_host_on_its_next_sync() {
    let (server, env) = platform(&[]);
    // A rule for one user names an approved user: root, seen through a synced recording.
    env.ok(["rec", "--", "true"]);
    sync(&env);
    server.admin(&["approve-user", "root"]);
    let b = Browser::start();
    sign_in(&b, &server, ADMIN);
    b.goto(&format!("{}/policies", server.url()));
    b.click_on("details.menu summary");
    b.click_to_load("details.menu a[href=\"/policies/new?scope=user\"]");
    assert_eq!(b.text("h1"), "New rule for user");
    // Only the user picker shows for a rule for a user; it offers the approved users.
    assert!(
        b.exec(
            "return document.querySelector('label.scope-for[data-scope=workstation]').hidden",
            json!([])
        ) == true
    );
    b.select("select[name=scope_user]", "root");
    // Refused: no name, no subject; the errors sit beside their fields.
    b.click_to_load("form.rule button[type=submit]");
    b.find("#name-error");
    assert!(b.text("#name-error").contains("must not be empty"));
    // The Application tab holds the subject and shows its error when opened.
    assert_eq!(
        b.attr(&b.find("form.rule button[type=submit]"), "name")
            .as_deref(),
        Some("submit")
    );
    b.fill("input[name=name]", "web: record root");
    b.select("select[name=guideline]", "login-session");
    b.click_on("button[data-tab=application]");
    assert_eq!(b.text("select[name=enable_audit] option:checked"), "Yes");
    b.select("select[name=enable_recording]", "yes");
    b.select("select[name=subject_type]", "user");
    b.fill("input[name=subject]", "root");
    shot(&b, &env, "policy-form");
    b.click_to_load("form.rule button[type=submit]");
    b.find("p.notice");
    assert!(b.text("p.notice").contains("web: record root"));
    assert!(b.text("table.rules").contains("user root"));
    shot(&b, &env, "policies");

    // A binary-run rule without a path is refused beside the path.
    b.goto(&format!("{}/policies/new", server.url()));
    b.fill("input[name=name]", "ping");
    b.select("select[name=guideline]", "binary-run");
    b.click_on("button[data-tab=application]");
    b.fill("input[name=subject]", "root");
    b.click_to_load("form.rule button[type=submit]");
    b.find("#application_path-error");

    let check = || -> serde_json::Value {
        serde_json::from_slice(&env.ok(["policy", "check", "--user", "root", "--json"])).unwrap()
    };
    assert_eq!(check()["record"], false);
    sync(&env);
    assert_eq!(check()["rule"]["name"], "web: record root");
    assert_eq!(check()["record"], true);
}

#[test]
fn an_admin_approves_a_host_and_a_user_in_the_browser() {
    let (server, env) = pending_platform(&[]);
    env.ok(["rec", "--", "echo", "from-a-pending-host"]);
    let id = env.last_id();
    sync(&env);
    let b = Browser::start();
    sign_in(&b, &server, ADMIN);
    // Delivered, but in quarantine until the host is approved.
    assert_eq!(listed(&b), 0);
    b.goto(&format!("{}/hosts", server.url()));
    assert!(
        b.text("table.hosts").contains("1 sessions in quarantine"),
        "{}",
        b.text("table.hosts")
    );
    b.click_to_load("form[action$=\"/approve\"] button");
    b.find("span.approval.approved");
    assert_eq!(list(&b, &server, ""), 1);
    // Its user is not approved yet: kept and flagged.
    assert_eq!(
        b.find_all(&format!("tr[data-id=\"{id}\"] .unapproved"))
            .len(),
        1
    );
    b.goto(&format!("{}/users", server.url()));
    assert!(b.text("tr[data-user=root]").contains("not approved"));
    shot(&b, &env, "users");
    b.click_to_load("tr[data-user=root] form[action$=\"/approve\"] button");
    b.wait_until("root approved", Duration::from_secs(5), |b| {
        let t = b.text("tr[data-user=root]");
        t.contains(" by ada") && !t.contains("not approved")
    });
    assert_eq!(list(&b, &server, ""), 1);
    assert!(b
        .find_all(&format!("tr[data-id=\"{id}\"] .unapproved"))
        .is_empty());
    // Both decisions are in the access log.
    b.goto(&format!("{}/access-log", server.url()));
    let log = b.text("table.access");
    assert!(
        log.contains("approve-host") && log.contains("approve-user"),
        "{log}"
    );
}

#[test]
fn an_admin_adds_resets_and_removes_accounts_in_the_browser() {
    let (server, env) = platform(&[]);
    let b = Browser::start();
    sign_in(&b, &server, ADMIN);
    b.click_to_load("a[href=\"/accounts\"]");
    b.find("form.account");
    // The admin cannot remove their own account.
    assert!(b
        .find_all(&format!(
            "tr[data-account={}] form[action$=\"/remove\"]",
            ADMIN.0
        ))
        .is_empty());
    let add = |name: &str, pw: &str, pw2: &str| {
        b.fill("form.account input[name=name]", name);
        b.select("form.account select[name=role]", "auditor");
        b.fill("form.account input[name=password]", pw);
        b.fill("form.account input[name=password2]", pw2);
        // Past the browser's own checks, to see the server's.
        b.exec(
            "document.querySelector('form.account').noValidate = true",
            json!([]),
        );
        b.click_to_load("form.account button[type=submit]");
        b.find("h1");
    };
    add("carl", "short", "short");
    assert!(
        b.text("p.error").contains("at least 12 characters"),
        "{}",
        b.text("main")
    );
    add("carl", "carl-long-password", "carl-other-password");
    assert!(b.text("p.error").contains("differ"));
    add("carl bad", "carl-long-password", "carl-long-password");
    assert!(b.text("p.error").contains("no spaces"));
    add("carl", "carl-long-password", "carl-long-password");
    assert!(b.text("tr[data-account=carl]").contains("auditor"));
    add("carl", "carl-long-password", "carl-long-password");
    assert!(b.text("p.error").contains("already exists"));
    shot(&b, &env, "accounts");

    // The new auditor signs in, sees no admin page.
    let carl = server.web("carl", "carl-long-password");
    assert_eq!(carl.get("/sessions").0, 200);
    assert_eq!(carl.get("/accounts").0, 403);
    // A new password ends carl's sign-ins.
    b.goto(&format!("{}/accounts", server.url()));
    b.fill(
        "tr[data-account=carl] input[name=password]",
        "carl-new-password",
    );
    b.click_to_load("tr[data-account=carl] form[action$=\"/password\"] button");
    b.find("form.account");
    assert_eq!(carl.get("/sessions").0, 303, "sent to sign in again");
    assert!(server.try_web("carl", "carl-long-password").is_none());
    let carl = server.web("carl", "carl-new-password");
    // Removed: signed out at once, and no way back in.
    b.mark();
    b.click_on("tr[data-account=carl] form[action$=\"/remove\"] button");
    b.accept_alert();
    b.wait_loaded();
    b.wait_until("carl removed", Duration::from_secs(5), |b| {
        b.find_all("tr[data-account=carl]").is_empty()
    });
    assert_eq!(carl.get("/sessions").0, 303);
    assert!(server.try_web("carl", "carl-new-password").is_none());
    b.goto(&format!("{}/access-log", server.url()));
    let log = b.text("table.access");
    for action in ["add-account", "set-password", "remove-account"] {
        assert!(log.contains(action), "{action}: {log}");
    }
}
