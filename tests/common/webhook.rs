//! `scripts/lib/webhook-receiver.py`, the webhook receiver the alert tests
//! send to: it answers every POST with 200 and appends the body, a line
//! each, to a file of its own, read back here as JSON.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::monitor::free_port;
use super::Lab;

/// A running webhook receiver; killed when dropped.
pub struct WebhookReceiver {
    child: Child,
    /// The port it listens on, on 127.0.0.1 (of its namespace).
    pub port: u16,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl WebhookReceiver {
    /// On the host's 127.0.0.1, on a free port.
    pub fn start() -> WebhookReceiver {
        let port = free_port();
        WebhookReceiver::spawn(Command::new("/usr/bin/python3"), port, &[])
    }

    /// On 127.0.0.1 of the lab's probe namespace, on `port` (one the
    /// monitor may have been told to use before anything listened there).
    pub fn start_in(lab: &Lab, port: u16) -> WebhookReceiver {
        WebhookReceiver::spawn(lab.command_in("probe", "/usr/bin/python3"), port, &[])
    }

    /// On the host's 127.0.0.1, on a free port, speaking HTTPS with this
    /// certificate chain and key (PEM).
    pub fn start_https(cert: &Path, key: &Path) -> WebhookReceiver {
        let port = free_port();
        let tls = [
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ];
        WebhookReceiver::spawn(Command::new("/usr/bin/python3"), port, &tls)
    }

    /// `python` (a command for /usr/bin/python3, in some namespace)
    /// running the script on `port` with `extra` arguments, until "ready".
    fn spawn(mut python: Command, port: u16, extra: &[&std::ffi::OsStr]) -> WebhookReceiver {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bodies.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/webhook-receiver.py");
        let mut child = python
            .arg(script)
            .arg(format!("127.0.0.1:{port}"))
            .arg(&file)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the webhook receiver with /usr/bin/python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "webhook receiver on {port}");
        WebhookReceiver {
            child,
            port,
            file,
            _dir: dir,
        }
    }

    /// Every body received so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
