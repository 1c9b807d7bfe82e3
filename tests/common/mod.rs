//! Shared by the integration tests: the edgeprobe binary, the namespace lab
//! of `scripts/lab.sh`, a root check, and [`eventually`], the one way a
//! test waits for something to happen; the test MongoDB ([`mongo`]) and
//! fleet documents to seed it with ([`fleet`]), the
//! running monitor ([`monitor`]) and the webhook receiver ([`webhook`]).

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub mod central;
pub mod fleet;
pub mod mongo;
pub mod monitor;
pub mod webhook;

/// The binary under test, built by cargo for this test run.
pub fn edgeprobe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgeprobe"))
}

/// `tests/fixtures/NAME`: sheets made by a real office suite.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Ask `check` every `every` until it gives a value, for at most
/// `timeout`; `None` if it never did. The caller panics with what it was
/// waiting for and what it last saw. Never a timing assertion: the limit
/// is a stall detector, far above what a normal run needs.
pub fn eventually<T>(
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// [`eventually`] for async checks, waiting and measuring on tokio's
/// clock (so it also ends under a paused test clock).
pub async fn eventually_async<T, F: Future<Output = Option<T>>>(
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> F,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// Tests that create namespaces or raw sockets need root; CI runs as root.
/// Fail loudly rather than pass without testing anything.
pub fn require_root() {
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test needs root (network namespaces, raw sockets): run scripts/test.sh as root"
    );
}

/// A lab of `scripts/lab.sh`, torn down when dropped.
pub struct Lab {
    pub name: String,
}

impl Lab {
    /// Build lab `name` (1-6 letters/digits, unique per test).
    pub fn up(name: &str) -> Lab {
        require_root();
        let lab = Lab { name: name.into() };
        let out = Command::new(lab_script())
            .args(["up", name])
            .output()
            .expect("run scripts/lab.sh");
        assert!(
            out.status.success(),
            "lab.sh up {name} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    /// A command run inside namespace `NAME-role`.
    pub fn command_in(&self, role: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &format!("{}-{role}", self.name)])
            .arg(program);
        c
    }

    /// edgeprobe run inside the lab's probe namespace.
    pub fn edgeprobe(&self) -> Command {
        self.command_in("probe", env!("CARGO_BIN_EXE_edgeprobe"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(lab_script())
            .args(["down", &self.name])
            .output();
    }
}

fn lab_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab.sh")
}

/// Panics with `what` and the command's stderr unless it exited 0.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stdout as JSON, with stderr in the panic message if it is not.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}); exit {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The `addr` of every entry in the `targets` array of `check --json`.
pub fn target_addrs(v: &serde_json::Value) -> Vec<&str> {
    v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["addr"].as_str().unwrap())
        .collect()
}

/// The hop addresses (`null` as "*") of one probe result.
pub fn hop_addrs(result: &serde_json::Value) -> Vec<String> {
    result["hops"]
        .as_array()
        .expect("hops array")
        .iter()
        .map(|h| h["addr"].as_str().unwrap_or("*").to_string())
        .collect()
}

/// The hop addresses `traceroute -I -n` prints, `*` for a silent hop.
pub fn parse_traceroute(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.next()?.parse::<u32>().ok()?;
            Some(words.next()?.to_string())
        })
        .collect()
}

/// `setpriv` arguments that run as `nobody` with exactly these capabilities.
pub fn as_nobody_with(caps: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ]
    .map(String::from)
    .to_vec();
    if caps.is_empty() {
        v.push("--inh-caps=-all".into());
    } else {
        v.push(format!("--inh-caps=-all,+{caps}"));
        v.push(format!("--ambient-caps=+{caps}"));
    }
    v.push(env!("CARGO_BIN_EXE_edgeprobe").into());
    v
}

/// A bare network namespace with only `lo` up, deleted when dropped.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Netns {
        require_root();
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        let ok = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .expect("run ip netns add");
        assert!(ok.success(), "ip netns add {name} failed");
        let ns = Netns { name: name.into() };
        assert!(ns.run(&["ip", "link", "set", "lo", "up"]).status.success());
        ns
    }

    /// Run `argv` inside the namespace.
    pub fn run(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .expect("run ip netns exec")
    }

    /// `edgeprobe ARGS...` run as root inside the namespace.
    pub fn edgeprobe(&self, args: &[&str]) -> Output {
        let mut argv = vec![env!("CARGO_BIN_EXE_edgeprobe")];
        argv.extend_from_slice(args);
        self.run(&argv)
    }

    /// Allow or forbid unprivileged ICMP sockets here (per namespace).
    pub fn set_ping_group_range(&self, range: &str) {
        let out = self.run(&[
            "sysctl",
            "-w",
            &format!("net.ipv4.ping_group_range={range}"),
        ]);
        assert_success(&out, "sysctl net.ipv4.ping_group_range");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
