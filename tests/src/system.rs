//! Whole-system fixtures for the root-only tests: users and groups, PAM service files, files in
//! /etc restored on drop, a test installation of segura (setuid recorder, spool owner, config),
//! an sshd on 127.0.0.1, a syslog listener. Everything is undone when dropped.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::bin;

static SYSTEM: Mutex<()> = Mutex::new(());

/// Serializes the tests that change the system (users, /etc/pam.d), and checks for root.
pub fn exclusive() -> MutexGuard<'static, ()> {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test changes the system (users, PAM) and must run as root; CI runs it as root"
    );
    SYSTEM.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs a command, failing the test with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn quiet(cmd: &mut Command) {
    let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// A local group, removed on drop.
pub struct Group(pub String);

impl Group {
    pub fn create(name: &str) -> Group {
        quiet(Command::new("groupdel").arg(name));
        run(Command::new("groupadd").arg(name));
        Group(name.to_string())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        quiet(Command::new("groupdel").arg(&self.0));
    }
}

/// A local user, removed (with its home) on drop.
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl User {
    /// A login user with this primary group and these secondary groups.
    pub fn create(name: &str, primary: &str, secondary: &[&str]) -> User {
        quiet(Command::new("userdel").args(["-r", "-f", name]));
        let mut c = Command::new("useradd");
        c.args(["-m", "-s", "/bin/bash", "-g", primary]);
        if !secondary.is_empty() {
            c.args(["-G", &secondary.join(",")]);
        }
        run(c.arg(name));
        User::lookup(name)
    }

    /// A system user with its own group and no login (the spool's owner).
    pub fn system(name: &str) -> User {
        quiet(Command::new("userdel").args(["-f", name]));
        quiet(Command::new("groupdel").arg(name));
        run(Command::new("useradd").args(["-r", "-M", "-U", "-s", "/usr/sbin/nologin", name]));
        User::lookup(name)
    }

    fn lookup(name: &str) -> User {
        let u = libsegura::identity::user_by_name(name).expect("user just created");
        User {
            name: name.to_string(),
            uid: u.uid,
            gid: u.gid,
            home: u.home,
        }
    }

    /// `getent passwd` shell field.
    pub fn shell(&self) -> String {
        libsegura::identity::user_by_name(&self.name)
            .map(|u| u.shell.display().to_string())
            .unwrap_or_default()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        quiet(Command::new("pkill").args(["-KILL", "-u", &self.name]));
        std::thread::sleep(Duration::from_millis(50));
        quiet(Command::new("userdel").args(["-r", "-f", &self.name]));
        quiet(Command::new("groupdel").arg(&self.name));
        let _ = std::fs::remove_dir_all(
            Path::new(libsegura::login::MARKER_DIR).join(self.uid.to_string()),
        );
    }
}

/// A file as it was: restored (or removed, if it did not exist) on drop; its directory too
/// is removed if the test made it (and left it empty).
pub struct Restore {
    path: PathBuf,
    original: Option<(Vec<u8>, u32)>,
    /// The parent directory, when it did not exist yet.
    new_dir: Option<PathBuf>,
}

impl Restore {
    pub fn new(path: impl Into<PathBuf>) -> Restore {
        let path = path.into();
        let original = std::fs::read(&path).ok().map(|b| {
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode())
                .unwrap_or(0o644);
            (b, mode)
        });
        let new_dir = path.parent().filter(|d| !d.exists()).map(Path::to_path_buf);
        Restore {
            path,
            original,
            new_dir,
        }
    }

    /// What the file held before the test.
    pub fn original(&self) -> Option<&[u8]> {
        self.original.as_ref().map(|(b, _)| b.as_slice())
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        match &self.original {
            Some((bytes, mode)) => {
                let _ = std::fs::write(&self.path, bytes);
                let _ =
                    std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(*mode));
            }
            None => {
                let _ = std::fs::remove_file(&self.path);
            }
        }
        if let Some(dir) = &self.new_dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// A PAM service file in /etc/pam.d, removed on drop.
pub struct PamService {
    pub name: String,
    _file: Restore,
}

impl PamService {
    pub fn create(name: &str, text: &str) -> PamService {
        let path = Path::new("/etc/pam.d").join(name);
        let file = Restore::new(&path);
        std::fs::write(&path, text).expect("write pam service");
        PamService {
            name: name.to_string(),
            _file: file,
        }
    }
}

/// A test installation of segura: a world-traversable directory holding the configuration,
/// the spool (owned by a dedicated system user) and a setuid copy of segura-shell.
pub struct Install {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub spool: PathBuf,
    pub shell: PathBuf,
    pub owner: User,
}

impl Install {
    /// `rules` is TOML for `[[rule]]` tables.
    pub fn new(rules: &str) -> Install {
        let dir = tempfile::Builder::new()
            .prefix("segura-sys-")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let owner = User::system("sgtspool");
        let spool = dir.path().join("spool/spool.db");
        // As `make install` does: the spool directory belongs to the spool's owner.
        let spool_dir = dir.path().join("spool");
        std::fs::create_dir(&spool_dir).unwrap();
        std::os::unix::fs::chown(&spool_dir, Some(owner.uid), Some(owner.gid)).unwrap();
        std::fs::set_permissions(&spool_dir, std::fs::Permissions::from_mode(0o770)).unwrap();
        let config = dir.path().join("segura.toml");
        std::fs::write(
            &config,
            format!(
                "[spool]\npath = \"{}\"\nowner = \"sgtspool\"\ngroup = \"sgtspool\"\n\n{rules}",
                spool.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        let bin_dir = dir.path().join("bin");
        std::fs::create_dir(&bin_dir).unwrap();
        std::fs::set_permissions(&bin_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let shell = bin_dir.join("segura-shell");
        std::fs::copy(bin("segura-shell"), &shell).unwrap();
        std::os::unix::fs::chown(&shell, Some(owner.uid), Some(owner.gid)).unwrap();
        std::fs::set_permissions(&shell, std::fs::Permissions::from_mode(0o6755)).unwrap();
        Install {
            dir,
            config,
            spool,
            shell,
            owner,
        }
    }

    /// The pam_segura module built by this workspace.
    pub fn module(&self) -> PathBuf {
        bin("libpam_segura.so")
    }

    /// The PAM line for this installation.
    pub fn pam_line(&self, extra: &str) -> String {
        format!(
            "session optional {} config={} {extra}",
            self.module().display(),
            self.config.display()
        )
    }

    /// `segura` against this installation's configuration and spool.
    pub fn segura(&self) -> Command {
        let mut c = Command::new(bin("segura"));
        c.env("SEGURA_CONFIG", &self.config)
            .env("SEGURA_SPOOL", &self.spool);
        c
    }

    pub fn json(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let out = run(self.segura().args(args));
        serde_json::from_slice(&out.stdout).expect("json")
    }

    pub fn recordings(&self) -> Vec<serde_json::Value> {
        if !self.spool.exists() {
            return Vec::new();
        }
        self.json(&["ls", "--json"])
    }

    pub fn logins(&self) -> Vec<serde_json::Value> {
        if !self.spool.exists() {
            return Vec::new();
        }
        self.json(&["ls", "--logins", "--json"])
    }

    pub fn raw(&self, id: &str, stream: &str) -> Vec<u8> {
        run(self
            .segura()
            .args(["export", id, "--format", "raw", "--stream", stream]))
        .stdout
    }
}

/// Listens on /dev/log (when no syslog daemon does) and collects what is logged.
pub struct Syslog {
    sock: std::os::unix::net::UnixDatagram,
}

impl Syslog {
    /// `None` when a syslog daemon already owns /dev/log.
    pub fn listen() -> Option<Syslog> {
        if Path::new("/dev/log").exists() {
            return None;
        }
        let sock = std::os::unix::net::UnixDatagram::bind("/dev/log").ok()?;
        std::fs::set_permissions("/dev/log", std::fs::Permissions::from_mode(0o666)).ok()?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .ok()?;
        Some(Syslog { sock })
    }

    /// Everything logged so far.
    pub fn drain(&self) -> String {
        let mut out = String::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = self.sock.recv(&mut buf) {
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
            out.push('\n');
        }
        out
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file("/dev/log");
    }
}

/// An sshd on 127.0.0.1 whose PAM service is `service` (sshd names its PAM service after the
/// name it is run as), with public-key authentication.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    _pam: PamService,
    _link: PathBuf,
}

impl Sshd {
    pub fn start(service: &str, pam_text: &str) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(d.join("hostkey")));
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(d.join("client")));
        let pam = PamService::create(service, pam_text);
        let link = d.join(service);
        std::os::unix::fs::symlink("/usr/sbin/sshd", &link).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nUsePAM yes\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 AuthorizedKeysFile {}/authorized_keys\nStrictModes no\nPermitRootLogin no\n\
                 Subsystem sftp /usr/lib/openssh/sftp-server\nLogLevel VERBOSE\nMaxSessions 10\n",
                d.join("hostkey").display(),
                d.join("sshd.pid").display(),
                d.display()
            ),
        )
        .unwrap();
        let pubkey = std::fs::read_to_string(d.join("client.pub")).unwrap();
        std::fs::write(d.join("authorized_keys"), pubkey).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let child = Command::new(&link)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start: {}",
                std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd {
            child,
            port,
            dir,
            _pam: pam,
            _link: link,
        }
    }

    /// `ssh USER@127.0.0.1 -p PORT` with the test key, no host-key prompts.
    pub fn ssh(&self, user: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-i")
            .arg(self.dir.path().join("client"))
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-p"])
            .arg(self.port.to_string())
            .arg(format!("{user}@127.0.0.1"));
        c
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
