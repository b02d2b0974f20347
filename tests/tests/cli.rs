//! The `segura` command line: configuration errors, local policy, a corrupt or full spool,
//! exports checked by a real asciinema client.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use segura_tests::{bin, Env, Term, SIZE};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_configuration_names_the_file_the_line_and_the_key() {
    let env = Env::with_config("[spool]\nmax_bytes = \"lots\"\n");
    let out = env.run(["ls"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let file = env.config.display().to_string();
    assert!(
        err.contains(&format!("{file}:2:13: key `spool.max_bytes`")),
        "{err}"
    );

    let env = Env::with_config(
        "[[rule]]\nname = \"x\"\nguideline = \"login\"\nsubject_type = \"user\"\nsubject = \"a\"\n",
    );
    let err = stderr(&env.run(["policy", "list"]));
    assert!(
        err.contains(":3:") && err.contains("rule[0].guideline"),
        "{err}"
    );

    // An explicitly named configuration must exist.
    let out = bin_with(&["--config", "/nonexistent/segura.toml", "ls"]);
    assert!(
        stderr(&out).contains("/nonexistent/segura.toml: cannot read"),
        "{}",
        stderr(&out)
    );
}

fn bin_with(args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin("segura"))
        .args(args)
        .env_remove("SEGURA_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn policy_rules_are_added_listed_checked_and_removed_keeping_comments() {
    let env = Env::with_config("# site policy: keep this comment\n[record]\ninput = true\n");
    env.ok([
        "policy",
        "add",
        "--name",
        "root sessions",
        "--guideline",
        "login-session",
        "--group",
        "root",
        "--record",
        "yes",
    ]);
    let dir = env.dir.path();
    let target = dir.join("tool.real");
    std::fs::write(&target, "#!/bin/sh\n").unwrap();
    let link = dir.join("tool");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    env.ok([
        "policy",
        "add",
        "--name",
        "tool runs",
        "--guideline",
        "binary-run",
        "--user",
        "root",
        "--application",
        link.to_str().unwrap(),
        "--symlink",
        "yes",
        "--record",
        "yes",
    ]);
    // A duplicate name and an incomplete rule are refused with a reason.
    let out = env.run([
        "policy",
        "add",
        "--name",
        "tool runs",
        "--guideline",
        "login-session",
        "--user",
        "x",
    ]);
    assert!(stderr(&out).contains("exists already"), "{}", stderr(&out));
    let out = env.run([
        "policy",
        "add",
        "--name",
        "bad",
        "--guideline",
        "binary-run",
        "--user",
        "x",
    ]);
    assert!(
        stderr(&out).contains("application_path"),
        "{}",
        stderr(&out)
    );

    let text = std::fs::read_to_string(&env.config).unwrap();
    assert!(
        text.starts_with("# site policy: keep this comment\n"),
        "{text}"
    );
    let list = String::from_utf8(env.ok(["policy", "list"])).unwrap();
    assert!(
        list.contains("#0 'root sessions' [enabled] login session; primary group root"),
        "{list}"
    );
    assert!(list.contains("#1 'tool runs'"), "{list}");

    let check = |args: &[&str]| -> serde_json::Value {
        let mut a = vec!["policy", "check", "--json"];
        a.extend_from_slice(args);
        serde_json::from_slice(&env.ok(a)).unwrap()
    };
    let d = check(&["--user", "root"]);
    assert_eq!(d["record"], true);
    assert_eq!(d["rule"]["name"], "root sessions");
    let d = check(&["--user", "nobody"]);
    assert_eq!(d["record"], false, "{d}");
    // Both the link and its target are covered.
    for p in [&link, &target] {
        let d = check(&["--user", "root", "--binary", p.to_str().unwrap()]);
        assert_eq!(
            (d["record"].as_bool(), d["audit"].as_bool()),
            (Some(true), Some(true)),
            "{d}"
        );
    }
    let human = String::from_utf8(env.ok(["policy", "check", "--user", "nobody"])).unwrap();
    assert!(human.contains("not nobody's primary group"), "{human}");

    env.ok(["policy", "remove", "root sessions"]);
    let list = String::from_utf8(env.ok(["policy", "list"])).unwrap();
    assert!(
        !list.contains("root sessions") && list.contains("tool runs"),
        "{list}"
    );
    assert!(std::fs::read_to_string(&env.config)
        .unwrap()
        .starts_with("# site policy: keep this comment\n"));
    let out = env.run(["policy", "remove", "no such rule"]);
    assert!(!out.status.success());
}

#[test]
fn the_spool_is_private() {
    let env = Env::new();
    env.ok(["rec", "--", "true"]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.spool), 0o600);
    assert_eq!(mode(env.spool.parent().unwrap()), 0o700);
}

#[test]
fn a_corrupt_spool_is_moved_aside_with_a_clear_message_and_recording_goes_on() {
    let env = Env::new();
    std::fs::create_dir_all(env.spool.parent().unwrap()).unwrap();
    let garbage: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&env.spool, &garbage).unwrap();
    let out = env.run(["rec", "--", "echo", "fresh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("was corrupt") && err.contains("moved aside to"),
        "{err}"
    );
    let moved: Vec<_> = std::fs::read_dir(env.spool.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(
        std::fs::read(&moved[0]).unwrap(),
        garbage,
        "the old file is kept as it was"
    );
    assert_eq!(env.recordings().len(), 1);
}

#[test]
fn an_altered_chunk_is_detected_not_exported() {
    let env = Env::new();
    env.ok(["rec", "--", "sh", "-c", "seq 1 20000"]);
    let id = env.last_id();
    env.ok(["check", &id]);
    let db = rusqlite::Connection::open(&env.spool).unwrap();
    let mut blob: Vec<u8> = db
        .query_row(
            "SELECT data FROM chunks WHERE seq = 0 AND stream = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    blob[20] ^= 0x01;
    db.execute(
        "UPDATE chunks SET data = ?1 WHERE seq = 0 AND stream = 0",
        [&blob],
    )
    .unwrap();
    drop(db);
    let out = env.run(["export", &id, "--format", "raw"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("hash chain broken"),
        "{}",
        stderr(&out)
    );
    let out = env.run(["check"]);
    assert_eq!(out.status.code(), Some(1));
    // A chunk row deleted from the middle of a stream is detected too.
    env.ok(["rec", "--", "sh", "-c", "seq 1 200000"]);
    let id2 = env.last_id();
    let db = rusqlite::Connection::open(&env.spool).unwrap();
    let n = db
        .execute(
            "DELETE FROM chunks WHERE stream = 0 AND seq = 1
             AND rec = (SELECT num FROM recordings WHERE id = ?1)",
            [&id2],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    let out = env.run(["export", &id2]);
    assert!(
        stderr(&out).contains("hash chain broken"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_full_spool_stops_recording_with_a_clear_message_but_not_the_session() {
    let env = Env::with_config("[spool]\nmax_bytes = 1048576\n");
    let out = env.run(["rec", "--", "head", "-c", "4000000", "/dev/urandom"]);
    assert!(out.status.success());
    assert_eq!(
        out.stdout.len(),
        4_000_000,
        "the user still gets every byte"
    );
    let err = stderr(&out);
    assert!(
        err.contains("recording stopped") && err.contains("quota"),
        "{err}"
    );
    let rec = &env.recordings()[0];
    assert_eq!(rec["state"], "truncated", "{rec}");
    assert!(rec["note"].as_str().unwrap().contains("quota"), "{rec}");
    let status: serde_json::Value = serde_json::from_slice(&env.ok(["status", "--json"])).unwrap();
    assert!(
        status["size_bytes"].as_u64().unwrap() <= 1_048_576,
        "{status}"
    );
    // What was stored before the quota is intact.
    env.ok(["check"]);
}

#[test]
fn asciicast_export_is_accepted_by_the_real_asciinema_client() {
    let env = Env::new();
    let script = r#"printf '\033[1;31mred\033[0m caf\303\251 \377\376 <b>&amp;</b>\n'; printf 'split \342\202'; printf '\254 euro\n'"#;
    let mut cmd = env.segura();
    cmd.args(["rec", "--", "sh", "-c", script]);
    let (seen, status) = Term::spawn(&mut cmd, SIZE, true).finish(Duration::from_secs(20));
    assert!(status.success());
    let id = env.last_id();
    let cast = env.dir.path().join("s.cast");
    env.ok([
        "export",
        &id,
        "--format",
        "asciicast",
        "-o",
        cast.to_str().unwrap(),
    ]);
    // asciinema 2 insists on a terminal for `cat`.
    let mut cat = std::process::Command::new("asciinema");
    cat.arg("cat").arg(&cast);
    let (shown, status) = Term::spawn(&mut cat, SIZE, true).finish(Duration::from_secs(30));
    assert!(
        status.success(),
        "asciinema cat failed: {}",
        String::from_utf8_lossy(&shown)
    );
    assert_eq!(
        String::from_utf8(shown).unwrap(),
        String::from_utf8_lossy(&seen)
    );
    assert!(String::from_utf8_lossy(&seen).contains("€ euro"));
}

#[test]
fn transcript_reads_as_the_screen_did_and_play_replays_the_bytes() {
    let env = Env::new();
    let script = r#"printf 'abc\rX\n\033[32mgreen\033[0m\n'; printf 'gone\033[2K\rkept\n'"#;
    let mut cmd = env.segura();
    cmd.args(["rec", "--", "sh", "-c", script]);
    let (seen, _) = Term::spawn(&mut cmd, SIZE, false).finish(Duration::from_secs(20));
    let id = env.last_id();
    let text = String::from_utf8(env.ok(["export", &id, "--format", "text"])).unwrap();
    assert_eq!(text, "Xbc\ngreen\nkept\n");
    assert_eq!(env.ok(["play", &id, "--speed", "50"]), seen);
}

#[test]
fn status_reports_what_waits_for_upload() {
    let env = Env::new();
    env.ok(["rec", "--", "echo", "one"]);
    env.ok(["rec", "--", "echo", "two"]);
    let s: serde_json::Value = serde_json::from_slice(&env.ok(["status", "--json"])).unwrap();
    assert_eq!(s["recordings"], 2);
    assert_eq!(s["recordings_pending_upload"], 2);
    assert!(s["chunks_pending_upload"].as_u64().unwrap() >= 2);
    let human = String::from_utf8(env.ok(["status"])).unwrap();
    assert!(
        human.contains("pending upload:   2 recording(s)"),
        "{human}"
    );
    let ls = String::from_utf8(env.ok(["ls"])).unwrap();
    assert_eq!(ls.lines().count(), 3, "{ls}");
    assert!(ls.contains("echo two"));
}

#[test]
fn every_subcommand_has_help_and_bad_usage_fails() {
    for sub in ["rec", "ls", "play", "export", "check", "status", "policy"] {
        let out = bin_with(&[sub, "--help"]);
        assert!(out.status.success(), "{sub} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{sub}"
        );
    }
    let out = bin_with(&["export"]);
    assert_eq!(out.status.code(), Some(2));
    let env = Env::new();
    let out = env.run(["export", "ffffffff"]);
    assert!(
        stderr(&out).contains("no recording matches"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn make_install_stages_everything_under_destdir_and_uninstall_removes_it() {
    let dest = tempfile::tempdir().unwrap();
    let top = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let make = |target: &str| {
        std::process::Command::new("make")
            .current_dir(&top)
            .arg(target)
            .arg(format!("DESTDIR={}", dest.path().display()))
            .args(["PREFIX=/usr", &format!("PROFILE={profile}")])
            .env("CARGO", "true") // the binaries are built already; do not rebuild here
            .output()
            .unwrap()
    };
    let out = make("install");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = dest.path();
    let multiarch = String::from_utf8(
        std::process::Command::new("gcc")
            .arg("-print-multiarch")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let module = d.join(format!("lib/{}/security/pam_segura.so", multiarch.trim()));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&module), 0o644);
    assert_eq!(mode(&d.join("usr/bin/segura")), 0o755);
    assert!(d.join("usr/sbin/segura-shell").exists());
    assert!(d.join("usr/sbin/segura-launch").exists());
    assert_eq!(mode(&d.join("var/lib/segura")), 0o770);
    let config = std::fs::read_to_string(d.join("etc/segura/segura.toml")).unwrap();
    assert!(
        config.contains("\nowner = \"segura\"\n") && config.contains("\ngroup = \"segura\"\n"),
        "{config}"
    );
    // The installed configuration is valid.
    libsegura::config::Config::parse(&config, std::path::Path::new("segura.toml")).unwrap();
    let out = make("uninstall");
    assert!(out.status.success());
    assert!(!module.exists() && !d.join("usr/bin/segura").exists());
    assert!(!d.join("usr/sbin/segura-launch").exists());
    assert!(
        d.join("etc/segura/segura.toml").exists(),
        "configuration kept"
    );
}

#[test]
fn the_pam_module_and_the_login_shell_do_not_load_libcurl() {
    // They run inside sshd, su and login, and before every user's shell: no network library,
    // no curl_global_init at load time. Only `segura` (sync) links libcurl.
    for name in ["libpam_segura.so", "segura-shell"] {
        let out = std::process::Command::new("readelf")
            .arg("-d")
            .arg(bin(name))
            .output()
            .unwrap();
        let needed = String::from_utf8_lossy(&out.stdout);
        assert!(needed.contains("NEEDED"), "{needed}");
        assert!(
            !needed.contains("libcurl"),
            "{name} links libcurl: {needed}"
        );
    }
    let out = std::process::Command::new("readelf")
        .arg("-d")
        .arg(bin("segura"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("libcurl"));
}

#[test]
fn setup_remove_all_finds_every_service_with_the_line_and_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let pam = dir.path();
    let originals = [
        ("sshd-x", "@include common-session\n"),
        ("login-x", "session required pam_unix.so"),
        ("other-x", "auth required pam_deny.so\n"),
    ];
    for (name, text) in originals {
        std::fs::write(pam.join(name), text).unwrap();
    }
    let pam_dir = pam.to_str().unwrap();
    let out = bin_with(&[
        "setup",
        "--services",
        "sshd-x,login-x",
        "--pam-dir",
        pam_dir,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // --all is only for taking lines out.
    let out = bin_with(&["setup", "--all", "--pam-dir", pam_dir]);
    assert!(!out.status.success());
    let out = bin_with(&["setup", "--remove", "--all", "--pam-dir", pam_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("sshd-x: removed") && said.contains("login-x: removed"),
        "{said}"
    );
    assert!(!said.contains("other-x"), "{said}");
    for (name, text) in originals {
        assert_eq!(
            std::fs::read_to_string(pam.join(name)).unwrap(),
            text,
            "{name}"
        );
    }
    let out = bin_with(&["setup", "--remove", "--all", "--pam-dir", pam_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no service has the segura line"));
}

#[test]
fn spool_schema_reports_versions_and_a_newer_spool_is_refused_untouched() {
    let env = Env::new();
    let supported: i64 = String::from_utf8(env.ok(["spool-schema"]))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(supported, libsegura::spool::SCHEMA_VERSION);
    let of_spool = |env: &Env| {
        String::from_utf8(env.ok(["spool-schema", "--of-spool"]))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(of_spool(&env), "0");
    assert!(!env.spool.exists(), "asking creates nothing");
    env.ok(["rec", "--", "true"]);
    assert_eq!(of_spool(&env), supported.to_string());
    env.ok(["spool-schema", "--migrate"]);

    // A spool a newer segura wrote: reported, and refused without being changed.
    let db = rusqlite::Connection::open(&env.spool).unwrap();
    db.execute_batch(&format!("PRAGMA user_version = {}", supported + 1))
        .unwrap();
    drop(db);
    let before = std::fs::read(&env.spool).unwrap();
    assert_eq!(of_spool(&env), (supported + 1).to_string());
    for args in [&["spool-schema", "--migrate"][..], &["ls"][..]] {
        let out = env.run(args);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("newer than this segura understands"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(std::fs::read(&env.spool).unwrap(), before);
}

#[test]
fn manual_pages_are_generated_from_the_command_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin_with(&["man-pages", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(dir.path().join("segura.8")).unwrap();
    assert!(page.contains(".TH segura 8"), "{page}");
    assert!(page.contains("segura\\-setup(8)"), "subcommands listed");
    assert!(page.contains("/etc/segura/segura.toml"), "FILES section");
    assert!(!page.contains("man\\-pages"), "hidden commands stay hidden");
    let setup = std::fs::read_to_string(dir.path().join("segura-setup.8")).unwrap();
    assert!(setup.contains("\\-\\-remove"), "{setup}");
    assert!(dir.path().join("segura-policy-add.8").exists());
}
