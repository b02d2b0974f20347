//! Test harness for segura's end-to-end tests: a real terminal (a pty this process owns, like a
//! terminal emulator), temporary spools and configurations, and the built binaries.
//!
//! The binaries are those of the workspace's target directory (`cargo build --workspace` first;
//! the project's test script does), or of `SEGURA_BIN_DIR`.

pub mod browser;
pub mod platform;
pub mod system;

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use libsegura::record::sys::{self, Size};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios;

/// Path of a binary built by this workspace.
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("SEGURA_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let path = target.join(profile).join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build --workspace` before the tests (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A temporary spool and configuration, and a way to run `segura` against them.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub spool: PathBuf,
    pub config: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        Env::with_config("")
    }

    pub fn with_config(config: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = dir.path().join("spool/spool.db");
        let config_path = dir.path().join("segura.toml");
        std::fs::write(&config_path, config).expect("write config");
        Env {
            dir,
            spool,
            config: config_path,
        }
    }

    /// `segura ARGS` with this environment's spool and configuration.
    pub fn segura(&self) -> Command {
        let mut c = Command::new(bin("segura"));
        c.env("SEGURA_SPOOL", &self.spool)
            .env("SEGURA_CONFIG", &self.config);
        c
    }

    /// Runs `segura ARGS` to completion (stdin from /dev/null).
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.segura()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run segura")
    }

    /// Runs `segura ARGS` and returns stdout, failing the test if it fails.
    pub fn ok<I, S>(&self, args: I) -> Vec<u8>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "segura failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `segura ls --json`, newest first.
    pub fn recordings(&self) -> Vec<serde_json::Value> {
        serde_json::from_slice(&self.ok(["ls", "--json"])).expect("ls --json")
    }

    /// The id of the newest recording.
    pub fn last_id(&self) -> String {
        let list = self.recordings();
        list.first().expect("a recording")["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// A stream of a recording, byte-exact.
    pub fn raw(&self, id: &str, stream: &str) -> Vec<u8> {
        self.ok(["export", id, "--format", "raw", "--stream", stream])
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

/// A terminal: the master side of a pty whose slave is the controlling terminal of the child.
pub struct Term {
    pub master: OwnedFd,
    pub child: Child,
    /// Everything read from the terminal so far.
    pub seen: Vec<u8>,
    eof: bool,
}

impl Term {
    /// Starts `cmd` on a new terminal of `size`. With `raw`, the terminal starts in raw mode
    /// (no newline translation, no echo), so bytes arrive exactly as the program wrote them.
    pub fn spawn(cmd: &mut Command, size: Size, raw: bool) -> Term {
        let settings = raw.then(|| {
            // Start from a fresh terminal's settings, made raw.
            let (_m, s) = sys::open_pty(size, None).expect("open pty");
            let mut t = termios::tcgetattr(&s).expect("tcgetattr");
            termios::cfmakeraw(&mut t);
            t
        });
        let (master, slave) = sys::open_pty(size, settings.as_ref()).expect("open pty");
        let child = sys::spawn_on_pty(cmd, &slave).expect("spawn on pty");
        drop(slave);
        Term {
            master,
            child,
            seen: Vec::new(),
            eof: false,
        }
    }

    /// Types bytes into the terminal.
    pub fn write(&self, bytes: &[u8]) {
        sys::write_all(&self.master, bytes).expect("write to terminal");
    }

    /// Reads what is available within `wait`; false at EOF.
    fn pump(&mut self, wait: Duration) -> bool {
        if self.eof {
            return false;
        }
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        let _ = poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        );
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            let mut buf = vec![0u8; 65536];
            match sys::read(&self.master, &mut buf) {
                Ok(0) | Err(_) => self.eof = true,
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
            }
        }
        !self.eof
    }

    /// Reads until `needle` has been seen after byte offset `from`; panics after `timeout`.
    pub fn expect_from(&mut self, from: usize, needle: &[u8], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = find(&self.seen[from.min(self.seen.len())..], needle) {
                return from + pos + needle.len();
            }
            assert!(
                Instant::now() < deadline && !self.eof,
                "terminal never showed {:?}; it showed (tail) {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&self.seen[self.seen.len().saturating_sub(500)..])
            );
            self.pump(Duration::from_millis(100));
        }
    }

    /// Reads until `needle` appears anywhere in what was seen.
    pub fn expect(&mut self, needle: &[u8]) -> usize {
        self.expect_from(0, needle, Duration::from_secs(20))
    }

    /// Reads everything until the terminal closes, then waits for the child.
    pub fn finish(mut self, timeout: Duration) -> (Vec<u8>, ExitStatus) {
        let deadline = Instant::now() + timeout;
        while self.pump(Duration::from_millis(200)) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "terminal still open after {timeout:?}; tail {:?}",
                    String::from_utf8_lossy(&self.seen[self.seen.len().saturating_sub(300)..])
                );
            }
        }
        let status = self.child.wait().expect("wait");
        (std::mem::take(&mut self.seen), status)
    }

    /// Changes the terminal's size (the kernel sends SIGWINCH to its foreground job).
    pub fn resize(&self, size: Size) {
        sys::set_window_size(self.master.as_fd(), size).expect("resize");
    }
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Standard terminal size for tests.
pub const SIZE: Size = Size { cols: 80, rows: 24 };
