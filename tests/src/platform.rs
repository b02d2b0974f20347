//! The platform (segura-server) as the tests run it: a real process on a fixed loopback port,
//! stopped and started again on the same port, removed on drop.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bin;

/// The platform, started (and restarted) on a fixed loopback port.
pub struct Server {
    pub data: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Server {
    pub fn new() -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Server {
            data: tempfile::tempdir().unwrap(),
            port,
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
        let child = Command::new(bin("segura-server"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--data",
            ])
            .arg(self.data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
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

    pub fn export(&self, id: &str) -> Vec<u8> {
        self.admin(&["export", id, "--format", "asciicast"])
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
