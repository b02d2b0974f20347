//! The recorder through a real pty and real pipes: byte-exact round trips, input, hidden input,
//! resizes, exit codes and signals, and what a kill -9 leaves behind.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use segura_tests::{find, Env, Term, SIZE};

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; n];
    rng.fill(&mut v[..]);
    v
}

/// `segura rec -- ARGS` on a new terminal.
fn rec_on_term(env: &Env, args: &[&str], raw: bool) -> Term {
    let mut cmd = env.segura();
    cmd.arg("rec").arg("--").args(args);
    Term::spawn(&mut cmd, SIZE, raw)
}

#[test]
fn random_binary_output_round_trips_byte_exact_through_a_pty() {
    let env = Env::new();
    // Every byte value, invalid UTF-8 included.
    let data = random_bytes(3 << 20, 1);
    let file = env.dir.path().join("random.bin");
    std::fs::write(&file, &data).unwrap();
    // A raw outer terminal: the inner pty copies its settings, so nothing is translated.
    let term = rec_on_term(&env, &["cat", file.to_str().unwrap()], true);
    let (seen, status) = term.finish(Duration::from_secs(60));
    assert!(status.success(), "{status}");
    assert!(
        seen == data,
        "terminal got {} bytes, expected {}",
        seen.len(),
        data.len()
    );
    let id = env.last_id();
    assert!(
        env.raw(&id, "output") == data,
        "recorded output differs from the terminal's"
    );
    let rec = &env.recordings()[0];
    assert_eq!(rec["mode"], "pty");
    assert_eq!(rec["bytes_out"], data.len() as u64);
    assert_eq!(rec["state"], "ended");
    assert_eq!(rec["exit_status"], "0");
}

#[test]
fn a_hundred_mebibytes_reach_the_terminal_and_the_log() {
    let env = Env::new();
    let data = random_bytes(100 << 20, 2);
    let file = env.dir.path().join("big.bin");
    std::fs::write(&file, &data).unwrap();
    let term = rec_on_term(&env, &["cat", file.to_str().unwrap()], true);
    let (seen, status) = term.finish(Duration::from_secs(300));
    assert!(status.success());
    assert_eq!(seen.len(), data.len());
    assert!(seen == data, "terminal bytes differ");
    let id = env.last_id();
    let logged = env.raw(&id, "output");
    assert_eq!(logged.len(), data.len());
    assert!(logged == data, "logged bytes differ");
    // Chunks are at most 64 KiB: at least 1600 of them, all verified by `segura check`.
    let rec = &env.recordings()[0];
    assert!(rec["chunks"].as_u64().unwrap() >= 1600, "{rec}");
    env.ok(["check", &id]);
}

#[test]
fn cooked_terminal_output_is_logged_as_the_terminal_got_it() {
    let env = Env::new();
    let term = rec_on_term(&env, &["printf", "a\\nb\\n"], false);
    let (seen, status) = term.finish(Duration::from_secs(20));
    assert!(status.success());
    assert_eq!(seen, b"a\r\nb\r\n");
    assert_eq!(env.raw(&env.last_id(), "output"), b"a\r\nb\r\n");
}

#[test]
fn pipe_mode_relays_and_records_all_streams_and_drains_after_stdin_eof() {
    let env = Env::new();
    let mut child = env
        .segura()
        .args([
            "rec",
            "--",
            "sh",
            "-c",
            "cat; echo to-stderr >&2; sleep 0.3; printf 'after-eof\\377\\n'",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = random_bytes(200_000, 3);
    let mut stdin = child.stdin.take().unwrap();
    let feed = input.clone();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&feed).unwrap();
        // dropping stdin is the EOF
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    let mut expected = input.clone();
    expected.extend_from_slice(b"after-eof\xff\n");
    assert!(
        out.stdout == expected,
        "stdout differs ({} bytes)",
        out.stdout.len()
    );
    assert_eq!(out.stderr, b"to-stderr\n");
    let id = env.last_id();
    assert!(env.raw(&id, "output") == expected);
    assert!(env.raw(&id, "input") == input);
    assert_eq!(env.raw(&id, "stderr"), b"to-stderr\n");
    assert_eq!(env.recordings()[0]["mode"], "pipe");
}

#[test]
fn pipe_mode_with_no_stdin_still_delivers_all_output() {
    // Like `ssh host 'cmd' </dev/null`.
    let env = Env::new();
    let out = env.run(["rec", "--", "sh", "-c", "echo hi; sleep 0.2; echo there"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hi\nthere\n");
    assert_eq!(env.raw(&env.last_id(), "output"), b"hi\nthere\n");
}

#[test]
fn pipe_mode_passes_eof_and_sigpipe_like_a_pipeline() {
    let env = Env::new();
    // `yes` under the recorder, read by `head`: yes must die of SIGPIPE, not hang.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} rec -- yes | head -n 3",
            segura_tests::bin("segura").display()
        ))
        .env("SEGURA_SPOOL", &env.spool)
        .env("SEGURA_CONFIG", &env.config)
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"y\ny\ny\n");
    let rec = &env.recordings()[0];
    assert_eq!(rec["exit_signal"], libc::SIGPIPE, "{rec}");
}

#[test]
fn typed_input_is_recorded_and_echo_off_input_is_not() {
    let env = Env::new();
    let script =
        "printf 'name? '; read name; stty -echo; printf 'password? '; read pw; stty echo; \
                  echo; echo \"hello $name, ${#pw} chars\"";
    let mut term = rec_on_term(&env, &["sh", "-c", script], false);
    term.expect(b"name? ");
    term.write(b"alice\r");
    term.expect(b"password? ");
    term.write(b"s3cr3t-Pa55\r");
    term.expect(b"hello alice, 11 chars");
    let (seen, status) = term.finish(Duration::from_secs(20));
    assert!(status.success());
    assert!(
        find(&seen, b"s3cr3t").is_none(),
        "the terminal must not echo it"
    );
    let id = env.last_id();
    let input = env.raw(&id, "input");
    assert_eq!(input, b"alice\r", "only the echoed input is stored");
    let cast = String::from_utf8(env.ok(["export", &id, "--format", "asciicast"])).unwrap();
    assert!(!cast.contains("s3cr3t"));
    assert!(
        cast.contains("\"m\", \"input hidden (terminal echo off)\""),
        "{cast}"
    );
    // The command list holds the line at the cursor when Enter was pressed.
    let cmds = String::from_utf8(env.ok(["export", &id, "--format", "commands"])).unwrap();
    assert!(cmds.contains("name? alice"), "{cmds}");
    assert!(!cmds.contains("s3cr3t"), "{cmds}");
}

#[test]
fn hidden_input_is_kept_when_configured() {
    let env = Env::with_config("[record]\nhidden_input = true\n");
    let mut term = rec_on_term(
        &env,
        &["sh", "-c", "stty -echo; read pw; stty echo; echo got"],
        false,
    );
    std::thread::sleep(Duration::from_millis(300));
    term.write(b"topsecret\r");
    term.expect(b"got");
    let (_, status) = term.finish(Duration::from_secs(20));
    assert!(status.success());
    assert_eq!(env.raw(&env.last_id(), "input"), b"topsecret\r");
}

#[test]
fn window_size_is_copied_and_resizes_are_passed_in_and_recorded() {
    let env = Env::new();
    let script = "stty size; printf ready; read x; stty size";
    let mut term = rec_on_term(&env, &["sh", "-c", script], false);
    let at = term.expect(b"ready");
    assert!(find(&term.seen, b"24 80").is_some(), "initial size copied");
    term.resize(libsegura::record::sys::Size {
        cols: 132,
        rows: 43,
    });
    std::thread::sleep(Duration::from_millis(300));
    term.write(b"\r");
    term.expect_from(at, b"43 132", Duration::from_secs(20));
    let (_, status) = term.finish(Duration::from_secs(20));
    assert!(status.success());
    let id = env.last_id();
    let cast = String::from_utf8(env.ok(["export", &id, "--format", "asciicast"])).unwrap();
    let header: serde_json::Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
    assert_eq!(
        (header["width"].as_u64(), header["height"].as_u64()),
        (Some(80), Some(24))
    );
    assert!(cast.contains("\"r\", \"132x43\""), "{cast}");
}

#[test]
fn exit_codes_and_signals_are_passed_on_and_recorded() {
    let env = Env::new();
    let out = env.run(["rec", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(env.recordings()[0]["exit_status"], "7");

    // Killed by a signal in pipe mode: the recorder dies of the same signal.
    let out = env.run(["rec", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.signal(), Some(libc::SIGTERM));
    assert_eq!(env.recordings()[0]["exit_signal"], libc::SIGTERM);

    // In a pty: ^C typed at the terminal interrupts the program inside.
    let mut term = rec_on_term(&env, &["sh", "-c", "echo started; exec sleep 60"], false);
    term.expect(b"started");
    std::thread::sleep(Duration::from_millis(200));
    term.write(b"\x03");
    let (_, status) = term.finish(Duration::from_secs(20));
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status}");
    assert_eq!(env.recordings()[0]["exit_signal"], libc::SIGINT);

    // A missing program is a clear error.
    let out = env.run(["rec", "--", "/nonexistent/program"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot start /nonexistent/program"));
}

#[test]
fn job_control_works_inside_the_recorded_terminal() {
    let env = Env::new();
    let mut term = rec_on_term(&env, &["bash", "--norc", "--noprofile", "-i"], false);
    term.write(b"PS1='$ '; sleep 60\r");
    std::thread::sleep(Duration::from_millis(500));
    term.write(b"\x1a"); // ^Z
    let at = term.expect(b"Stopped");
    term.write(b"fg\r");
    term.expect_from(at, b"sleep 60\r\n", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    term.write(b"\x03"); // ^C reaches the job brought back to the foreground
    term.write(b"echo bye-$?; exit\r");
    term.expect_from(at, b"bye-130", Duration::from_secs(20));
    let (_, status) = term.finish(Duration::from_secs(20));
    assert!(status.success(), "{status}");
    let text = String::from_utf8(env.ok(["export", &env.last_id(), "--format", "text"])).unwrap();
    assert!(text.contains("Stopped"), "{text}");
}

#[test]
fn kill_9_of_the_recorder_leaves_every_committed_chunk_readable() {
    let env = Env::new();
    let script = "i=0; while [ $i -lt 100000 ]; do echo line$i; i=$((i+1)); sleep 0.01; done";
    let mut term = rec_on_term(&env, &["sh", "-c", script], false);
    // line100 comes about 1.2 s in; by line300 (over 3 s) the chunk holding it (cut at most 1 s
    // after it began) has long been committed.
    term.expect(b"line300\r\n");
    let pid = term.child.id() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let (seen, status) = term.finish(Duration::from_secs(20));
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let rec = &env.recordings()[0];
    assert_eq!(rec["state"], "interrupted", "{rec}");
    let id = rec["id"].as_str().unwrap();
    env.ok(["check", id]);
    let logged = env.raw(id, "output");
    assert!(
        seen.starts_with(&logged),
        "what was logged is what the terminal showed"
    );
    // The recorder commits at least every second: the first hundred lines are long committed.
    assert!(
        find(&logged, b"line100\r\n").is_some(),
        "logged {} bytes",
        logged.len()
    );
}

#[test]
fn a_notice_is_shown_and_recorded_when_configured() {
    let env = Env::with_config("[record]\nnotice = \"This session is recorded.\"\n");
    let term = rec_on_term(&env, &["echo", "x"], false);
    let (seen, _) = term.finish(Duration::from_secs(20));
    assert!(
        seen.starts_with(b"This session is recorded.\r\n"),
        "{seen:?}"
    );
    let cast = String::from_utf8(env.ok(["export", &env.last_id()])).unwrap();
    assert!(cast.contains("notice: This session is recorded."));
    // Without a notice nothing is added.
    let env = Env::new();
    let term = rec_on_term(&env, &["echo", "x"], false);
    let (seen, _) = term.finish(Duration::from_secs(20));
    assert_eq!(seen, b"x\r\n");
}
