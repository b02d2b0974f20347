//! The PAM module and the login-shell recorder, for real: pamtester, su, login and an sshd on
//! 127.0.0.1, with test users. Runs as root (CI does); every test undoes what it changed.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use segura_tests::system::{
    exclusive, run, Group, Install, PamService, Restore, Sshd, Syslog, User,
};
use segura_tests::{bin, find, Term, SIZE};

const RULES: &str = r#"
[[rule]]
name = "record sgtrec"
guideline = "login-session"
enable_recording = true
subject_type = "group"
subject = "sgtrec"
"#;

/// alice: primary group sgtrec (recorded); bob: primary sgtother, secondary sgtrec (not);
/// carol: sgtother only (not).
struct People {
    alice: User,
    bob: User,
    carol: User,
    _groups: (Group, Group),
}

fn people() -> People {
    let rec = Group::create("sgtrec");
    let other = Group::create("sgtother");
    People {
        alice: User::create("sgtalice", "sgtrec", &[]),
        bob: User::create("sgtbob", "sgtother", &["sgtrec"]),
        carol: User::create("sgtcarol", "sgtother", &[]),
        _groups: (rec, other),
    }
}

fn pam_file(install: &Install, extra: &str) -> String {
    format!(
        "auth required pam_permit.so\naccount required pam_permit.so\n{}\n",
        install.pam_line(extra)
    )
}

fn pamtester(service: &str, user: &str, ops: &[&str]) -> std::process::Output {
    Command::new("pamtester")
        .args(["-v", service, user])
        .args(ops)
        .output()
        .expect("pamtester")
}

#[test]
fn pamtester_arms_matching_users_only_and_close_marks_unrecorded() {
    let _lock = exclusive();
    let p = people();
    let install = Install::new(RULES);
    let svc = PamService::create("sgt-pamtester", &pam_file(&install, "debug"));

    let out = pamtester(&svc.name, &p.alice.name, &["open_session"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logins = install.logins();
    assert_eq!(logins.len(), 1, "{logins:?}");
    let l = &logins[0];
    assert_eq!(l["user"], "sgtalice");
    assert_eq!(l["uid"], p.alice.uid);
    assert_eq!(l["group"], "sgtrec");
    assert_eq!(l["service"], "sgt-pamtester");
    assert_eq!(l["rule"], "record sgtrec");
    assert_eq!(l["state"], "armed");
    let id = l["id"].as_str().unwrap().to_string();
    let marker = Path::new("/run/segura/armed")
        .join(p.alice.uid.to_string())
        .join(&id);
    let md = std::fs::metadata(&marker).expect("marker written");
    assert_eq!((md.uid(), md.mode() & 0o777), (0, 0o644));
    let text = std::fs::read_to_string(&marker).unwrap();
    assert!(
        text.contains(&format!("spool={}", install.spool.display())),
        "{text}"
    );
    // The spool belongs to the spool owner, not to root and not to the user.
    let md = std::fs::metadata(&install.spool).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o777), (install.owner.uid, 0o660));

    // Open and close: nobody attached a recorder, so the login ran unrecorded, visibly.
    let out = pamtester(&svc.name, &p.alice.name, &["open_session", "close_session"]);
    assert!(out.status.success());
    let logins = install.logins();
    assert_eq!(logins.len(), 2);
    assert_eq!(logins[0]["state"], "unrecorded");
    let ls = String::from_utf8(run(install.segura().arg("ls")).stdout).unwrap();
    assert!(
        ls.contains("unrecorded") && ls.contains("no recorder attached"),
        "{ls}"
    );
    let closed = Path::new("/run/segura/armed")
        .join(p.alice.uid.to_string())
        .join(logins[0]["id"].as_str().unwrap());
    assert!(!closed.exists(), "close_session removes the marker");

    // A secondary member of the group and a non-member: nothing.
    for u in [&p.bob, &p.carol] {
        let out = pamtester(&svc.name, &u.name, &["open_session", "close_session"]);
        assert!(out.status.success());
    }
    assert_eq!(install.logins().len(), 2, "bob and carol are not recorded");
    assert!(!Path::new("/run/segura/armed")
        .join(p.bob.uid.to_string())
        .exists());
}

#[test]
fn broken_configuration_fails_open_or_closed_as_configured() {
    let _lock = exclusive();
    let p = people();
    let install = Install::new(RULES);
    std::fs::write(&install.config, "[spool\nthis is not toml").unwrap();
    let syslog = Syslog::listen();
    if std::env::var_os("CI").is_some() {
        assert!(
            syslog.is_some(),
            "CI has no syslog daemon: the test listens on /dev/log itself"
        );
    }
    let open = PamService::create("sgt-failopen", &pam_file(&install, "fail=open"));
    let closed = PamService::create("sgt-failclosed", &pam_file(&install, "fail=closed"));

    let out = pamtester(
        &open.name,
        &p.alice.name,
        &["open_session", "close_session"],
    );
    assert!(out.status.success(), "fail=open lets the login in");
    if let Some(log) = &syslog {
        let text = log.drain();
        assert!(
            text.contains("pam_segura: open_session for sgtalice") && text.contains("fail=open"),
            "logged: {text}"
        );
        // AUTHPRIV (10) with priority ERR (3): <83>
        assert!(text.contains("<83>"), "{text}");
    }
    let out = pamtester(&closed.name, &p.alice.name, &["open_session"]);
    assert!(!out.status.success(), "fail=closed refuses the session");
    if let Some(log) = &syslog {
        assert!(log.drain().contains("refusing the session (fail=closed)"));
    }
    // An unknown argument is logged, not fatal.
    std::fs::write(&install.config, RULES).unwrap();
    let odd = PamService::create("sgt-oddarg", &pam_file(&install, "colour=blue"));
    let out = pamtester(&odd.name, &p.carol.name, &["open_session", "close_session"]);
    assert!(out.status.success());
    if let Some(log) = &syslog {
        assert!(log
            .drain()
            .contains("ignoring unknown argument \"colour=blue\""));
    }
}

/// Enrolls users with the test installation's setuid shell; undone on drop.
struct Enrolled<'a> {
    users: Vec<&'a User>,
    _shells: Restore,
}

fn enroll<'a>(install: &Install, users: &[&'a User]) -> Enrolled<'a> {
    let shells = Restore::new("/etc/segura/shells");
    let mut c = Command::new(bin("segura"));
    c.arg("enroll").arg("--shell").arg(&install.shell);
    for u in users {
        c.arg(&u.name);
    }
    run(&mut c);
    for u in users {
        assert_eq!(u.shell(), install.shell.display().to_string());
    }
    Enrolled {
        users: users.to_vec(),
        _shells: shells,
    }
}

impl Drop for Enrolled<'_> {
    fn drop(&mut self) {
        let mut c = Command::new(bin("segura"));
        c.arg("unenroll");
        for u in &self.users {
            c.arg(&u.name);
        }
        let _ = c.output();
    }
}

#[test]
fn su_and_login_sessions_are_recorded_and_setup_is_undone_byte_for_byte() {
    let _lock = exclusive();
    let p = people();
    let install = Install::new(RULES);
    let files = ["su-l", "login"].map(|s| Restore::new(Path::new("/etc/pam.d").join(s)));
    {
        let enrolled = enroll(&install, &[&p.alice]);
        run(Command::new(bin("segura"))
            .args(["setup", "--services", "su-l,login", "--module"])
            .arg(install.module())
            .arg("--module-args")
            .arg(format!("config={}", install.config.display())));
        // Twice is the same as once.
        run(Command::new(bin("segura"))
            .args(["setup", "--services", "su-l,login", "--module"])
            .arg(install.module()));
        let su_l = std::fs::read_to_string("/etc/pam.d/su-l").unwrap();
        assert_eq!(su_l.matches("pam_segura").count(), 1, "{su_l}");

        // su - alice -c CMD on a terminal: recorded, byte-exact.
        let mut su = Command::new("su");
        su.args([
            "-",
            &p.alice.name,
            "-c",
            "printf 'su works \\342\\202\\254 %s\\n' $(id -un)",
        ]);
        let (seen, status) = Term::spawn(&mut su, SIZE, false).finish(Duration::from_secs(30));
        assert!(status.success(), "{}", String::from_utf8_lossy(&seen));
        let recs = install.recordings();
        assert_eq!(recs.len(), 1, "{recs:?}");
        assert_eq!(recs[0]["service"], "su-l");
        assert_eq!(recs[0]["user"], "sgtalice");
        assert_eq!(recs[0]["kind"], "command");
        let out = install.raw(recs[0]["id"].as_str().unwrap(), "output");
        assert_eq!(out, "su works € sgtalice\r\n".as_bytes());
        assert!(find(&seen, &out).is_some());
        let logins = install.logins();
        assert_eq!(
            (
                logins[0]["state"].as_str(),
                logins[0]["recordings"].as_u64()
            ),
            (Some("ended"), Some(1))
        );

        // login -f alice: an interactive login shell.
        let mut login = Command::new("login");
        login.args(["-f", &p.alice.name]);
        let mut term = Term::spawn(&mut login, SIZE, false);
        std::thread::sleep(Duration::from_millis(800));
        term.write(b"echo login-$((6*7)); exit\r");
        term.expect(b"login-42");
        let (_, status) = term.finish(Duration::from_secs(30));
        assert!(status.success());
        let recs = install.recordings();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[0]["service"].as_str(), recs[0]["kind"].as_str()),
            (Some("login"), Some("session"))
        );
        let text = String::from_utf8(
            run(install.segura().args([
                "export",
                recs[0]["id"].as_str().unwrap(),
                "--format",
                "text",
            ]))
            .stdout,
        )
        .unwrap();
        assert!(text.contains("login-42"), "{text}");
        let cmds = String::from_utf8(
            run(install.segura().args([
                "export",
                recs[0]["id"].as_str().unwrap(),
                "--format",
                "commands",
            ]))
            .stdout,
        )
        .unwrap();
        assert!(cmds.contains("echo login-$((6*7)); exit"), "{cmds}");

        run(Command::new(bin("segura")).args(["setup", "--remove", "--services", "su-l,login"]));
        drop(enrolled);
        assert_eq!(p.alice.shell(), "/bin/bash", "unenroll restores the shell");
    }
    for f in &files {
        let name = if std::ptr::eq(f, &files[0]) {
            "su-l"
        } else {
            "login"
        };
        assert_eq!(
            std::fs::read(Path::new("/etc/pam.d").join(name)).unwrap(),
            f.original().unwrap(),
            "/etc/pam.d/{name} is byte-identical after setup --remove"
        );
    }
}

#[test]
fn sshd_sessions_commands_multiplexing_and_sftp() {
    let _lock = exclusive();
    let p = people();
    let install = Install::new(RULES);
    let _enrolled = enroll(&install, &[&p.alice, &p.carol]);
    let pam = format!(
        "@include common-account\n{}\n@include common-session\n",
        install.pam_line("")
    );
    let sshd = Sshd::start("sshd-sgt", &pam);

    // ssh host 'cmd' </dev/null: all output delivered and recorded.
    let out = run(sshd
        .ssh(&p.alice.name)
        .arg("for i in $(seq 1 2000); do echo line $i; done; echo err >&2; echo done")
        .stdin(Stdio::null()));
    let expected: String = (1..=2000)
        .map(|i| format!("line {i}\n"))
        .collect::<String>()
        + "done\n";
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let recs = install.recordings();
    assert_eq!(recs.len(), 1, "{}", sshd.log());
    let id = recs[0]["id"].as_str().unwrap();
    assert_eq!(recs[0]["service"], "sshd-sgt");
    assert_eq!(recs[0]["mode"], "pipe");
    assert_eq!(install.raw(id, "output"), expected.as_bytes());
    assert_eq!(install.raw(id, "stderr"), b"err\n");
    let logins = install.logins();
    assert_eq!(
        (logins[0]["tty"].as_str(), logins[0]["rhost"].as_str()),
        (Some("ssh"), Some("127.0.0.1"))
    );

    // Interactive ssh -tt: byte-exact between what the client showed and what was recorded.
    let mut ssh = sshd.ssh(&p.alice.name);
    ssh.arg("-tt");
    let mut term = Term::spawn(&mut ssh, SIZE, false);
    std::thread::sleep(Duration::from_millis(800));
    term.write(b"echo interactive-$((2+3)); exit\r");
    term.expect(b"interactive-5");
    let (seen, _) = term.finish(Duration::from_secs(30));
    let recs = install.recordings();
    assert_eq!(recs.len(), 2);
    assert_eq!(
        (recs[0]["mode"].as_str(), recs[0]["kind"].as_str()),
        (Some("pty"), Some("session"))
    );
    let out = install.raw(recs[0]["id"].as_str().unwrap(), "output");
    assert!(
        !out.is_empty() && find(&seen, &out).is_some(),
        "recorded output is what the client showed"
    );

    // Multiplexing: one connection (one PAM session), three commands, three recordings.
    let sock = sshd.dir.path().join("mux.sock");
    run(sshd
        .ssh(&p.alice.name)
        .args([
            "-o",
            "ControlMaster=yes",
            "-o",
            "ControlPersist=30",
            "-fN",
            "-S",
        ])
        .arg(&sock)
        .stdin(Stdio::null()));
    for i in 1..=3 {
        let out = run(sshd
            .ssh(&p.alice.name)
            .arg("-S")
            .arg(&sock)
            .arg(format!("echo mux-{i}"))
            .stdin(Stdio::null()));
        assert_eq!(out.stdout, format!("mux-{i}\n").as_bytes());
    }
    let _ = sshd
        .ssh(&p.alice.name)
        .arg("-S")
        .arg(&sock)
        .args(["-O", "exit"])
        .output();
    std::thread::sleep(Duration::from_millis(500));
    let logins = install.logins();
    let mux = logins
        .iter()
        .find(|l| l["recordings"] == 3)
        .unwrap_or_else(|| panic!("{logins:#?}"));
    assert_eq!(mux["service"], "sshd-sgt");

    // sftp works; the transfer is audited, its bytes are not stored.
    let payload = sshd.dir.path().join("payload.bin");
    std::fs::write(&payload, vec![7u8; 100_000]).unwrap();
    std::fs::set_permissions(&payload, std::fs::Permissions::from_mode(0o644)).unwrap();
    let batch = sshd.dir.path().join("batch");
    std::fs::write(
        &batch,
        format!(
            "put {} /tmp/sgt-upload.bin\nget /tmp/sgt-upload.bin {}/back.bin\n",
            payload.display(),
            sshd.dir.path().display()
        ),
    )
    .unwrap();
    let mut sftp = Command::new("sftp");
    sftp.arg("-i")
        .arg(sshd.dir.path().join("client"))
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-P",
        ])
        .arg(sshd.port.to_string())
        .arg("-b")
        .arg(&batch)
        .arg(format!("{}@127.0.0.1", p.alice.name));
    run(&mut sftp);
    let _ = std::fs::remove_file("/tmp/sgt-upload.bin");
    assert_eq!(
        std::fs::read(sshd.dir.path().join("back.bin")).unwrap(),
        vec![7u8; 100_000]
    );
    let recs = install.recordings();
    let sftp_rec = recs
        .iter()
        .find(|r| r["command"].to_string().contains("sftp-server"))
        .expect("sftp recording");
    assert_eq!(
        install.raw(sftp_rec["id"].as_str().unwrap(), "output"),
        b"",
        "protocol bytes not stored"
    );
    let db = rusqlite::Connection::open(&install.spool).unwrap();
    let body: String = db
        .query_row(
            "SELECT body FROM audit_events WHERE kind = 'file-transfer'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(body["bytes_to_host"].as_u64().unwrap() >= 100_000, "{body}");
    assert!(
        body["bytes_from_host"].as_u64().unwrap() >= 100_000,
        "{body}"
    );

    // carol is enrolled but no rule covers her: not recorded, nothing armed.
    let before = install.recordings().len();
    let out = run(sshd
        .ssh(&p.carol.name)
        .arg("echo carol")
        .stdin(Stdio::null()));
    assert_eq!(out.stdout, b"carol\n");
    assert_eq!(install.recordings().len(), before);
    assert!(install.logins().iter().all(|l| l["user"] != "sgtcarol"));
    drop(sshd);

    // A service without the pam line does not record alice either.
    let plain = Sshd::start(
        "sshd-sgtplain",
        "@include common-account\n@include common-session\n",
    );
    let out = run(plain
        .ssh(&p.alice.name)
        .arg("echo plain")
        .stdin(Stdio::null()));
    assert_eq!(out.stdout, b"plain\n");
    assert_eq!(install.recordings().len(), before);
}

#[test]
fn users_cannot_read_the_spool_nor_attach_to_another_users_login() {
    let _lock = exclusive();
    let p = people();
    let install = Install::new(RULES);
    let _enrolled = enroll(&install, &[&p.alice, &p.bob]);
    let svc = PamService::create("sgt-forge", &pam_file(&install, ""));
    // alice's login is armed (pamtester leaves it open).
    assert!(pamtester(&svc.name, &p.alice.name, &["open_session"])
        .status
        .success());
    let alice_login = install.logins()[0]["id"].as_str().unwrap().to_string();

    let as_user = |u: &User, cmd: &str| {
        Command::new("setpriv")
            .args([
                "--reuid",
                &u.uid.to_string(),
                "--regid",
                &u.gid.to_string(),
                "--init-groups",
                "--",
            ])
            .args(["sh", "-c", cmd])
            .env("SEGURA_SESSION", &alice_login)
            .output()
            .unwrap()
    };
    // Neither user can read or change the spool.
    for u in [&p.alice, &p.bob] {
        let out = as_user(u, &format!("cat {} > /dev/null", install.spool.display()));
        assert!(!out.status.success());
        let out = as_user(u, &format!("echo x >> {}", install.spool.display()));
        assert!(!out.status.success());
    }
    // bob runs the recorder with alice's login id: it is not his, so nothing attaches to it.
    let out = as_user(
        &p.bob,
        &format!("{} -c 'echo forged'", install.shell.display()),
    );
    assert_eq!(out.stdout, b"forged\n");
    assert!(
        install.recordings().is_empty(),
        "bob did not get a recording in alice's login"
    );
    assert_eq!(install.logins()[0]["state"], "armed");
    // The recorded shell runs as the user, not as the spool owner.
    let out = as_user(
        &p.alice,
        &format!("{} -c 'id -u; id -g'", install.shell.display()),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n{}\n", p.alice.uid, p.alice.gid)
    );
    let recs = install.recordings();
    assert_eq!(recs.len(), 1, "alice's own shell attaches to her login");
    assert_eq!(recs[0]["login_id"], alice_login.as_str());
}

#[test]
fn unenroll_all_restores_shells_and_forgets_users_deleted_since() {
    let _lock = exclusive();
    let p = people();
    let install = Install::new(RULES);
    let enrolled = enroll(&install, &[&p.alice, &p.bob]);
    // bob is deleted while enrolled (his entry stays in /etc/segura/shells).
    let People { alice, bob, .. } = &p;
    run(Command::new("userdel").args(["-f", &bob.name]));
    let out = run(Command::new(bin("segura")).args(["unenroll", "--all"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sgtalice: shell restored"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sgtbob no longer exists"));
    assert_eq!(alice.shell(), "/bin/bash");
    let left = std::fs::read_to_string("/etc/segura/shells").unwrap_or_default();
    assert!(
        !left.contains("sgtalice") && !left.contains("sgtbob"),
        "{left}"
    );
    drop(enrolled);
}
