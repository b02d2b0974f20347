//! Binary-run rules, for real: `segura wrap` puts the launcher in front of a program (and of
//! the real /usr/bin/ping, capabilities and dpkg diversion included); runs by a matching user
//! are recorded and uploaded at once, runs by others audited or left alone; `segura unwrap`
//! restores the program byte for byte. Runs as root; undoes everything.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use segura_tests::platform::Server;
use segura_tests::system::{exclusive, run, Group, Install, Restore, User};
use segura_tests::{bin, Term, SIZE};

fn sha256(path: &Path) -> String {
    String::from_utf8(run(Command::new("sha256sum").arg(path)).stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn getcap(path: &Path) -> String {
    String::from_utf8(run(Command::new("getcap").arg(path)).stdout).unwrap()
}

/// `segura ARGS` with the installation's configuration (root).
fn segura(install: &Install, args: &[&str]) -> Output {
    run(install.segura().args(args))
}

fn as_user(u: &User, argv: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid",
            &u.uid.to_string(),
            "--regid",
            &u.gid.to_string(),
            "--init-groups",
            "--",
        ])
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn audit_events(install: &Install) -> Vec<serde_json::Value> {
    let db = rusqlite::Connection::open(&install.spool).unwrap();
    let mut st = db
        .prepare("SELECT body FROM audit_events WHERE kind = 'binary-run' ORDER BY at")
        .unwrap();
    let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(|b| serde_json::from_str(&b.unwrap()).unwrap())
        .collect()
}

/// Unwraps on drop if the test did not get to it (a failed assertion must not leave a system
/// program behind the launcher).
struct WrapGuard<'a> {
    install: &'a Install,
    path: &'a str,
}

impl Drop for WrapGuard<'_> {
    fn drop(&mut self) {
        let _ = self.install.segura().args(["unwrap", self.path]).output();
    }
}

/// Keeps /etc/segura as it was (the table of wrapped programs lives there).
fn keep_etc_segura() -> Restore {
    Restore::new("/etc/segura/wrapped")
}

#[test]
fn a_wrapped_program_and_its_link_are_recorded_for_the_primary_group_and_audited_for_others() {
    let _lock = exclusive();
    let _etc = keep_etc_segura();
    let (_g1, _g2) = (Group::create("sgtrec"), Group::create("sgtother"));
    let alice = User::create("sgtalice", "sgtrec", &[]);
    let bob = User::create("sgtbob", "sgtother", &["sgtrec"]);
    let install = Install::new("");
    let progs = install.dir.path().join("progs");
    std::fs::create_dir(&progs).unwrap();
    std::fs::set_permissions(&progs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let prog = progs.join("prog");
    std::fs::write(
        &prog,
        "#!/bin/sh\nif [ \"$1\" = many ]; then i=0; while :; do echo line $i; i=$((i+1)); done; fi\n\
         echo \"prog ran: $*\"\necho to-stderr >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let link = progs.join("prog-link");
    std::os::unix::fs::symlink(&prog, &link).unwrap();
    let rules = format!(
        "\n[[rule]]\nname = \"record prog\"\nguideline = \"binary-run\"\napplication_path = \"{l}\"\n\
         path_is_symlink = true\nenable_recording = true\nsubject_type = \"group\"\nsubject = \"sgtrec\"\n\
         \n[[rule]]\nname = \"audit prog\"\nguideline = \"binary-run\"\napplication_path = \"{l}\"\n\
         path_is_symlink = true\nsubject_type = \"group\"\nsubject = \"sgtother\"\n",
        l = link.display()
    );
    let mut config = std::fs::read_to_string(&install.config).unwrap();
    config.push_str(&rules);
    std::fs::write(&install.config, config).unwrap();
    let before = (sha256(&prog), std::fs::metadata(&prog).unwrap().mode());

    let syslog = segura_tests::system::Syslog::listen();
    segura(
        &install,
        &[
            "wrap",
            link.to_str().unwrap(),
            "--launcher",
            bin("segura-launch").to_str().unwrap(),
        ],
    );
    let link_text = link.display().to_string();
    let _unwrap = WrapGuard {
        install: &install,
        path: &link_text,
    };
    let md = std::fs::metadata(&prog).unwrap();
    assert_eq!(
        (md.uid(), md.mode() & 0o7777),
        (install.owner.uid, 0o6755),
        "the launcher is in place"
    );

    // alice (primary group sgtrec), through the link and through the target: recorded.
    for name in [&link, &prog] {
        let out = as_user(&alice, &[name.to_str().unwrap(), "a", "b c"]);
        assert_eq!(out.status.code(), Some(3), "the program's own exit status");
        assert_eq!(
            out.stdout, b"prog ran: a b c\n",
            "arguments and output untouched"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("to-stderr\n"), "{err}");
        assert!(
            err.contains("kept on this machine and will be sent later"),
            "{err} {:?} {:?}",
            syslog.as_ref().map(|s| s.drain()),
            install.recordings()
        );
    }
    let recs = install.recordings();
    assert_eq!(recs.len(), 2, "{recs:#?}");
    for r in &recs {
        assert_eq!(
            (r["kind"].as_str(), r["rule"].as_str(), r["user"].as_str()),
            (Some("binary"), Some("record prog"), Some("sgtalice"))
        );
        assert_eq!(
            install.raw(r["id"].as_str().unwrap(), "output"),
            b"prog ran: a b c\n"
        );
        assert_eq!(r["exit_status"], "3");
    }
    // A reader that goes away (EPIPE) ends the program as it would end it without the launcher
    // (SIGPIPE), and the recording is complete, not interrupted.
    let out = as_user(
        &alice,
        &["sh", "-c", &format!("{} many | head -n 2", link.display())],
    );
    assert_eq!(out.stdout, b"line 0\nline 1\n");
    let recs = install.recordings();
    assert_eq!(recs.len(), 3);
    assert_eq!(
        (recs[0]["state"].as_str(), recs[0]["exit_signal"].as_i64()),
        (Some("ended"), Some(13)),
        "{}",
        recs[0]
    );
    // bob has sgtrec only as a secondary group: not recorded, but his primary group is audited.
    let out = as_user(&bob, &[link.to_str().unwrap(), "x"]);
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(3), &b"prog ran: x\n"[..])
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("recording"),
        "nothing said to bob"
    );
    assert_eq!(install.recordings().len(), 3);
    let audit = audit_events(&install);
    assert_eq!(audit.len(), 4, "{audit:#?}");
    let bobs = &audit[3];
    assert_eq!(
        (bobs["exit_code"].as_i64(), bobs["recorded"].is_null()),
        (Some(3), true)
    );
    assert_eq!(bobs["canonical_path"], prog.display().to_string());
    assert_eq!(bobs["path"], link.display().to_string());
    assert_eq!(bobs["primary_group"], "sgtother");
    assert_eq!(bobs["argv"][1], "x");

    segura(&install, &["unwrap", link.to_str().unwrap()]);
    let after = (sha256(&prog), std::fs::metadata(&prog).unwrap().mode());
    assert_eq!(
        before, after,
        "unwrap restores the program byte for byte, mode included"
    );
    assert!(!PathBuf::from(format!("{}.segura-real", prog.display())).exists());
}

#[test]
fn wrapped_ping_keeps_its_capability_uploads_at_exit_and_keeps_the_run_when_offline() {
    let _lock = exclusive();
    let _etc = keep_etc_segura();
    let ping = Path::new("/usr/bin/ping");
    let before = (
        sha256(ping),
        getcap(ping),
        std::fs::metadata(ping).unwrap().mode(),
    );
    assert!(
        before.1.contains("cap_net_raw"),
        "ping has its file capability: {}",
        before.1
    );
    let _g = Group::create("sgtrec");
    let alice = User::create("sgtalice", "sgtrec", &[]);
    let install = Install::new(
        "[[rule]]\nname = \"record ping\"\nguideline = \"binary-run\"\napplication_path = \"/usr/bin/ping\"\n\
         enable_recording = true\nsubject_type = \"group\"\nsubject = \"sgtrec\"\n",
    );
    let creds = install.dir.path().join("host.toml");
    let mut config = std::fs::read_to_string(&install.config).unwrap();
    config.push_str(&format!(
        "\n[upload]\ncredentials = \"{}\"\ntimeout_ms = 3000\n",
        creds.display()
    ));
    // [upload] must come before the rules: rewrite the file with it in front.
    let (head, rules) = config.split_at(config.find("[[rule]]").unwrap());
    let upload = &rules[rules.find("\n[upload]").unwrap()..];
    let rules = &rules[..rules.find("\n[upload]").unwrap()];
    std::fs::write(&install.config, format!("{head}{upload}\n{rules}")).unwrap();
    let mut server = Server::new();
    let token = server.token();
    segura(
        &install,
        &["enroll-host", "--server", &server.url(), "--token", &token],
    );

    segura(
        &install,
        &[
            "wrap",
            "/usr/bin/ping",
            "--launcher",
            bin("segura-launch").to_str().unwrap(),
        ],
    );
    let _unwrap = WrapGuard {
        install: &install,
        path: "/usr/bin/ping",
    };
    assert!(
        getcap(Path::new("/usr/bin/ping.segura-real")).contains("cap_net_raw"),
        "capability kept"
    );
    let diversions =
        String::from_utf8(run(Command::new("dpkg-divert").arg("--list")).stdout).unwrap();
    assert!(
        diversions.contains("/bin/ping to /bin/ping.segura-real by segura"),
        "{diversions}"
    );

    let ping_as_alice = || {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &alice.uid.to_string(),
            "--regid",
            &alice.gid.to_string(),
            "--init-groups",
            "--",
        ])
        .args(["ping", "-c", "4", "-i", "0.2", "127.0.0.1"]);
        Term::spawn(&mut c, SIZE, false).finish(Duration::from_secs(60))
    };
    let (seen, status) = ping_as_alice();
    let text = String::from_utf8_lossy(&seen);
    assert!(status.success(), "{text}");
    assert!(
        text.contains("4 packets transmitted, 4 received"),
        "ping works unprivileged: {text}"
    );
    assert!(
        text.contains("Uploading recorded output data...\r\nOK.\r\n\r\nUploading recorded input data...\r\nOK.\r\n"),
        "{text}"
    );
    let remote = server.recordings();
    assert_eq!(remote.len(), 1, "{remote:#?}");
    let id = remote[0]["id"].as_str().unwrap().to_string();
    assert_eq!(remote[0]["complete"], true);
    let cast = String::from_utf8(server.export(&id)).unwrap();
    assert!(cast.contains("icmp_seq=4"), "{cast}");

    // Offline: the run is kept, and `segura sync` delivers it later.
    server.stop();
    let (seen, status) = ping_as_alice();
    let text = String::from_utf8_lossy(&seen);
    assert!(status.success());
    assert!(
        text.contains("kept on this machine and will be sent later"),
        "{text}"
    );
    server.start();
    segura(&install, &["sync"]);
    assert_eq!(server.recordings().len(), 2);
    assert!(server.recordings().iter().all(|r| r["complete"] == true));

    segura(&install, &["unwrap", "/usr/bin/ping"]);
    let after = (
        sha256(ping),
        getcap(ping),
        std::fs::metadata(ping).unwrap().mode(),
    );
    assert_eq!(before, after, "hash, capability and mode restored");
    let diversions =
        String::from_utf8(run(Command::new("dpkg-divert").arg("--list")).stdout).unwrap();
    assert!(!diversions.contains("segura"), "{diversions}");
}

#[test]
fn wrapping_follows_the_platforms_policy_on_sync() {
    let _lock = exclusive();
    let _etc = keep_etc_segura();
    let install = Install::new("");
    let progs = install.dir.path().join("progs");
    std::fs::create_dir(&progs).unwrap();
    let prog = progs.join("tool");
    std::fs::write(&prog, "#!/bin/sh\necho tool\n").unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let original = sha256(&prog);
    let creds = install.dir.path().join("host.toml");
    let config = std::fs::read_to_string(&install.config).unwrap();
    std::fs::write(
        &install.config,
        format!(
            "{config}\n[upload]\ncredentials = \"{}\"\n",
            creds.display()
        ),
    )
    .unwrap();
    let server = Server::new();
    segura(
        &install,
        &[
            "enroll-host",
            "--server",
            &server.url(),
            "--token",
            &server.token(),
        ],
    );
    let prog_text = prog.display().to_string();
    let _unwrap = WrapGuard {
        install: &install,
        path: &prog_text,
    };
    let rules = install.dir.path().join("rules.json");
    std::fs::write(
        &rules,
        format!(
            r#"[{{"id": "b1", "name": "tool runs", "guideline": "binary-run", "application_path": "{prog_text}", "enable_recording": true, "subject_type": "group", "subject": "nogroup"}}]"#
        ),
    )
    .unwrap();
    server.admin(&["policy-set", rules.to_str().unwrap()]);
    segura(&install, &["sync"]);
    let table = std::fs::read_to_string("/etc/segura/wrapped").unwrap();
    assert!(table.contains(&prog_text), "{table}");
    assert_ne!(sha256(&prog), original, "the launcher is in place");
    // The rule goes away on the platform: the program is put back.
    std::fs::write(&rules, "[]").unwrap();
    server.admin(&["policy-set", rules.to_str().unwrap()]);
    segura(&install, &["sync"]);
    assert_eq!(sha256(&prog), original);
    assert!(
        std::fs::read_to_string("/etc/segura/wrapped").map_or(true, |t| !t.contains(&prog_text))
    );
}

#[test]
fn unwrap_all_puts_every_wrapped_program_back() {
    let _lock = exclusive();
    let _etc = keep_etc_segura();
    let install = Install::new("");
    let progs = install.dir.path().join("progs");
    std::fs::create_dir(&progs).unwrap();
    let mut before = Vec::new();
    for (name, mode) in [("one", 0o755), ("two", 0o4750)] {
        let p = progs.join(name);
        std::fs::write(&p, format!("#!/bin/sh\necho {name}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        before.push((p, sha256(&progs.join(name)), mode));
    }
    let paths: Vec<String> = before
        .iter()
        .map(|(p, _, _)| p.display().to_string())
        .collect();
    let launcher = bin("segura-launch");
    let _guards: Vec<WrapGuard> = paths
        .iter()
        .map(|path| {
            segura(
                &install,
                &["wrap", path, "--launcher", launcher.to_str().unwrap()],
            );
            WrapGuard {
                install: &install,
                path,
            }
        })
        .collect();
    for (p, sha, _) in &before {
        assert_ne!(&sha256(p), sha, "{} is wrapped", p.display());
    }
    let out = segura(&install, &["unwrap", "--all"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("unwrapped")
            .count(),
        2
    );
    for (p, sha, mode) in &before {
        assert_eq!(&sha256(p), sha, "{} is back byte for byte", p.display());
        assert_eq!(std::fs::metadata(p).unwrap().mode() & 0o7777, *mode);
    }
    assert!(
        libsegura::wrap::read(Path::new(libsegura::wrap::WRAPPED_FILE))
            .unwrap()
            .is_empty()
    );
    let out = segura(&install, &["unwrap", "--all"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing is wrapped"));
}

#[test]
fn a_recorded_run_inside_an_armed_login_belongs_to_that_login() {
    let _lock = exclusive();
    let _etc = keep_etc_segura();
    let _g = Group::create("sgtrec");
    let alice = User::create("sgtalice", "sgtrec", &[]);
    let install = Install::new("");
    let progs = install.dir.path().join("progs");
    std::fs::create_dir(&progs).unwrap();
    std::fs::set_permissions(&progs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let prog = progs.join("prog");
    std::fs::write(&prog, "#!/bin/sh\necho \"in the login: $*\"\n").unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Logins of sgtrec are armed by PAM; runs of prog by sgtrec are recorded.
    let mut config = std::fs::read_to_string(&install.config).unwrap();
    config.push_str(&format!(
        "\n[[rule]]\nname = \"arm sgtrec\"\nguideline = \"login-session\"\nenable_recording = true\n\
         subject_type = \"group\"\nsubject = \"sgtrec\"\n\
         \n[[rule]]\nname = \"record prog\"\nguideline = \"binary-run\"\napplication_path = \"{}\"\n\
         enable_recording = true\nsubject_type = \"group\"\nsubject = \"sgtrec\"\n",
        prog.display()
    ));
    std::fs::write(&install.config, config).unwrap();
    segura(
        &install,
        &[
            "wrap",
            prog.to_str().unwrap(),
            "--launcher",
            bin("segura-launch").to_str().unwrap(),
        ],
    );
    let prog_text = prog.display().to_string();
    let _unwrap = WrapGuard {
        install: &install,
        path: &prog_text,
    };
    let _su_l = Restore::new("/etc/pam.d/su-l");
    run(Command::new(bin("segura"))
        .args(["setup", "--services", "su-l", "--module"])
        .arg(install.module())
        .arg("--module-args")
        .arg(format!("config={}", install.config.display())));

    // su - alice -c PROG: PAM arms the login (alice's shell is not segura-shell here), the
    // launcher records the run and links it to the login it finds armed for alice.
    let mut su = Command::new("su");
    su.args(["-", &alice.name, "-c", &format!("{} x", prog.display())]);
    let (seen, status) = Term::spawn(&mut su, SIZE, false).finish(Duration::from_secs(30));
    assert!(status.success(), "{}", String::from_utf8_lossy(&seen));
    assert!(String::from_utf8_lossy(&seen).contains("in the login: x"));
    let logins = install.logins();
    assert_eq!(logins.len(), 1, "{logins:#?}");
    let recs = install.recordings();
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(
        (recs[0]["kind"].as_str(), recs[0]["rule"].as_str()),
        (Some("binary"), Some("record prog"))
    );
    let login_id = logins[0]["id"].as_str().expect("the login's id");
    assert_eq!(
        recs[0]["login_id"].as_str(),
        Some(login_id),
        "{:#?}",
        recs[0]
    );
    // Outside any login (no marker for alice any more), the same run stands alone.
    let out = as_user(&alice, &[prog.to_str().unwrap(), "y"]);
    assert_eq!(out.stdout, b"in the login: y\n");
    let recs = install.recordings();
    assert_eq!(recs.len(), 2);
    assert!(
        recs[0].get("login_id").is_some_and(|v| v.is_null()),
        "{:#?}",
        recs[0]
    );
    run(Command::new(bin("segura")).args(["setup", "--remove", "--services", "su-l"]));
}
