//! libsegura's C ABI from a C program compiled with gcc: a session recorded through it and
//! exported byte-exact by the `segura` command; misuse answered with error codes; no leaks
//! under valgrind.

use std::path::{Path, PathBuf};
use std::process::Command;

use segura_tests::{bin, Env};

/// Compiles tests/c/NAME.c against target/…/libsegura.so and ffi/segura.h.
fn compile(name: &str, out_dir: &Path) -> PathBuf {
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lib_dir = bin("libsegura.so").parent().unwrap().to_path_buf();
    let exe = out_dir.join(name);
    // The library's SONAME is libsegura.so.0 (what an install provides beside libsegura.so).
    let so_dir = out_dir.join("lib");
    let _ = std::fs::create_dir(&so_dir);
    let _ = std::os::unix::fs::symlink(lib_dir.join("libsegura.so"), so_dir.join("libsegura.so.0"));
    let out = Command::new("gcc")
        .args(["-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(top.join(format!("tests/c/{name}.c")))
        .arg("-I")
        .arg(top.join("ffi"))
        .arg("-L")
        .arg(&lib_dir)
        .arg(format!("-Wl,-rpath,{}", so_dir.display()))
        .arg("-lsegura")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

#[test]
fn a_c_program_records_a_session_the_cli_exports_byte_exact() {
    let env = Env::with_config(
        "[[rule]]\nname = \"root logins\"\nguideline = \"login-session\"\nenable_recording = true\nsubject_type = \"user\"\nsubject = \"root\"\n",
    );
    let exe = compile("record", env.dir.path());
    let out = Command::new(&exe)
        .env("SEGURA_SPOOL", &env.spool)
        .env("SEGURA_CONFIG", &env.config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("version {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(
        text.contains("policy root: record=1 audit=0 rule=root logins"),
        "{text}"
    );
    assert!(text.contains("pending 1 recordings"), "{text}");
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("id "))
        .unwrap()
        .to_string();
    let mut expected = "hello from C €\r\n".as_bytes().to_vec();
    expected.extend_from_slice(&[0xff, 0x00, 0xfe, b'x', b'\r', b'\n']);
    assert_eq!(env.raw(&id, "output"), expected);
    assert_eq!(env.raw(&id, "input"), b"ls -l\r");
    let rec = &env.recordings()[0];
    assert_eq!(
        (rec["exit_status"].as_str(), rec["cols"].as_u64()),
        (Some("7"), Some(100))
    );
    let cast = String::from_utf8(env.ok(["export", &id])).unwrap();
    assert!(cast.contains("\"r\", \"120x40\""), "{cast}");
    env.ok(["check", &id]);
}

#[test]
fn misuse_gets_error_codes_not_crashes_and_valgrind_finds_no_leak() {
    let env = Env::new();
    let exe = compile("misuse", env.dir.path());
    let run = |wrapper: Option<&[&str]>| {
        let mut c = match wrapper {
            Some(w) => {
                let mut c = Command::new(w[0]);
                c.args(&w[1..]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        c.env("SEGURA_SPOOL", &env.spool)
            .env("SEGURA_CONFIG", &env.config)
            .output()
            .unwrap()
    };
    let out = run(None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("all misuse reported"),
        "{text}"
    );
    assert!(
        text.contains("close twice: -3 (handle is not open (closed twice?))"),
        "{text}"
    );
    // The same under valgrind: no invalid access, nothing definitely lost.
    let out = run(Some(&[
        "valgrind",
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite",
        "--quiet",
    ]));
    assert!(
        out.status.success(),
        "valgrind: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
