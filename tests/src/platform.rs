//! The platform (segura-server) as the tests run it: a real process on a fixed loopback port,
//! stopped and started again on the same port, removed on drop.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{bin, Env};

/// A host's spool and configuration with upload credentials beside it (`[upload]` plus
/// `extra` configuration lines).
pub fn agent_env(extra: &str) -> Env {
    let env = Env::with_config("");
    let creds = env.dir.path().join("host.toml");
    std::fs::write(
        &env.config,
        format!(
            "[upload]\ncredentials = \"{}\"\ntimeout_ms = 1500\n{extra}",
            creds.display()
        ),
    )
    .unwrap();
    env
}

/// `segura enroll-host` against the platform at `url`.
pub fn enroll(env: &Env, url: &str, token: &str) {
    env.ok(["enroll-host", "--server", url, "--token", token]);
}

/// The platform, started (and restarted) on a fixed loopback port.
pub struct Server {
    pub data: tempfile::TempDir,
    pub port: u16,
    /// More `serve` arguments.
    pub args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    pub fn new() -> Server {
        Server::with_args(&[])
    }

    /// A server started with more `serve` arguments.
    pub fn with_args(args: &[&str]) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Server {
            data: tempfile::tempdir().unwrap(),
            port,
            args: args.iter().map(|a| a.to_string()).collect(),
            child: None,
        };
        s.start();
        s
    }

    pub fn admin(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new(bin("segura-server"))
            .arg("admin")
            .args(args)
            .arg("--data")
            .arg(self.data.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    pub fn start(&mut self) {
        // The server's log, kept beside its data for when a test fails.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.path().join("server.log"))
            .unwrap();
        let child = Command::new(bin("segura-server"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--data",
            ])
            .arg(self.data.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn token(&self) -> String {
        String::from_utf8(self.admin(&["enroll-token"]))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    }

    pub fn recordings(&self) -> Vec<serde_json::Value> {
        serde_json::from_slice(&self.admin(&["recordings", "--json"])).unwrap()
    }

    /// The enrolled hosts, as `admin hosts --json` lists them.
    pub fn hosts(&self) -> Vec<serde_json::Value> {
        serde_json::from_slice(&self.admin(&["hosts", "--json"])).unwrap()
    }

    /// Approves every pending host (its sessions leave quarantine).
    pub fn approve_hosts(&self) {
        for h in self.hosts() {
            if h["state"] == "pending" {
                self.admin(&["approve-host", h["id"].as_str().unwrap()]);
            }
        }
    }

    /// Adds a platform user (the password goes in on stdin).
    pub fn add_user(&self, name: &str, role: &str, password: &str) {
        use std::io::Write;
        let mut child = Command::new(bin("segura-server"))
            .args(["admin", "create-user", name, "--role", role, "--data"])
            .arg(self.data.path())
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        assert!(child.wait().unwrap().success(), "create-user {name}");
    }

    /// Signs in to the web UI over HTTP (no browser).
    pub fn web(&self, name: &str, password: &str) -> Web {
        self.try_web(name, password)
            .unwrap_or_else(|| panic!("sign-in of {name} refused"))
    }

    /// Signs in to the web UI over HTTP, if the platform lets this user in.
    pub fn try_web(&self, name: &str, password: &str) -> Option<Web> {
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let resp = http
            .post(&format!("{}/login", self.url()))
            .send_form([
                ("name", name),
                ("password", password),
                ("next", "/sessions"),
            ])
            .unwrap();
        if resp.status() != 303 {
            return None;
        }
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_string();
        Some(Web {
            http,
            base: self.url(),
            cookie,
        })
    }

    pub fn export(&self, id: &str) -> Vec<u8> {
        self.admin(&["export", id, "--format", "asciicast"])
    }
}

/// A signed-in web UI session, over plain HTTP.
pub struct Web {
    http: ureq::Agent,
    base: String,
    cookie: String,
}

impl Web {
    /// GET `path`: the status and the page.
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut r = self
            .http
            .get(&format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .call()
            .unwrap();
        let body = r
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .unwrap();
        (r.status().as_u16(), body)
    }

    /// The ids of the sessions a Remote Sessions page lists (`query` is its query string).
    pub fn listed(&self, query: &str) -> Vec<String> {
        let (status, page) = self.get(&format!("/sessions?{query}"));
        assert_eq!(status, 200, "{page}");
        page.split("data-id=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_string())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}
