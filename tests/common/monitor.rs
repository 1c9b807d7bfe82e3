//! The real `edgeprobe run` as a child process, and a tiny HTTP/1.1 client
//! to talk to its dashboard (no HTTP client crate is a dependency).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// `/api/v1/status` with up to 500 targets on its one page: every target
/// of the sheets these tests write.
const STATUS_ALL: &str = "/api/v1/status?page_size=500";

/// A running monitor; killed when dropped.
pub struct RunningMonitor {
    pub child: Child,
    pub addr: SocketAddr,
    /// Everything it wrote to stderr so far.
    pub log: Arc<Mutex<String>>,
}

/// `edgeprobe run` arguments: this sheet and state directory, then
/// `settings` (flags and their values).
pub fn run_args<'a>(sheet: &'a str, state: &'a str, settings: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["--targets", sheet, "--state-dir", state];
    a.extend_from_slice(settings);
    a
}

/// [`run_args`] for a quick test monitor: a round a second, one ping of
/// 200 ms a target, then `extra`.
pub fn quick_args<'a>(sheet: &'a str, state: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = run_args(
        sheet,
        state,
        &["--interval", "1s", "--timeout", "200ms", "--count", "1"],
    );
    a.extend_from_slice(extra);
    a
}

/// A free port on the host's loopback (closed again; a small race that
/// tests can live with).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl RunningMonitor {
    /// Run `edgeprobe run ARGS` in this (host) namespace with
    /// `--listen 127.0.0.1:0`, and find the port in its start-up line.
    pub fn start_local(args: &[&str]) -> RunningMonitor {
        RunningMonitor::start_local_env(&[], args)
    }

    /// [`RunningMonitor::start_local`] with extra environment variables.
    pub fn start_local_env(env: &[(&str, &str)], args: &[&str]) -> RunningMonitor {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgeprobe"));
        cmd.arg("run")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied());
        RunningMonitor::spawn(cmd, None)
    }

    /// [`RunningMonitor::start_local`] with `edgeprobe` started through
    /// `wrapper`, a command line that ends in the edgeprobe binary and
    /// starts it as a child (e.g. `strace -o FILE`): the pid kept is the
    /// wrapper's.
    pub fn start_local_via(wrapper: &[String], args: &[&str]) -> RunningMonitor {
        let mut cmd = Command::new(&wrapper[0]);
        cmd.args(&wrapper[1..])
            .arg("run")
            .args(["--listen", "127.0.0.1:0"])
            .args(args);
        RunningMonitor::spawn(cmd, None)
    }

    /// Run `edgeprobe central --listen 127.0.0.1:0 ARGS` in this namespace.
    pub fn start_central(args: &[&str]) -> RunningMonitor {
        let mut all = vec!["central", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        RunningMonitor::start_command(&all)
    }

    /// Run `edgeprobe ARGS` (any subcommand that announces "dashboard on
    /// http://ADDR/" on stderr, e.g. `central`) and find the port in it.
    pub fn start_command(args: &[&str]) -> RunningMonitor {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgeprobe"));
        cmd.args(args);
        RunningMonitor::spawn(cmd, None)
    }

    /// Run `edgeprobe run ARGS` inside namespace `ns`, serving the host's
    /// 127.0.0.1 through scripts/lib/netns-listen.py, as the demo does.
    pub fn start_in_netns(ns: &str, args: &[&str]) -> RunningMonitor {
        let port = free_port();
        let mut cmd = Command::new(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/netns-listen.py"),
        );
        cmd.arg(format!("127.0.0.1:{port}"))
            .arg(ns)
            .arg(env!("CARGO_BIN_EXE_edgeprobe"))
            .arg("run")
            .args(args);
        RunningMonitor::spawn(cmd, Some(port))
    }

    /// [`RunningMonitor::start_in_netns`] with `edgeprobe` started through
    /// `wrapper`, a command line that ends in the edgeprobe binary (e.g.
    /// [`super::as_nobody_with`]) and keeps the pid (it must exec).
    pub fn start_in_netns_via(ns: &str, wrapper: &[String], args: &[&str]) -> RunningMonitor {
        let port = free_port();
        let mut cmd = Command::new(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/netns-listen.py"),
        );
        cmd.arg(format!("127.0.0.1:{port}"))
            .arg(ns)
            .args(wrapper)
            .arg("run")
            .args(args);
        RunningMonitor::spawn(cmd, Some(port))
    }

    fn spawn(mut cmd: Command, port: Option<u16>) -> RunningMonitor {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn edgeprobe");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<u16>();
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Log the line before announcing the port, so a test that
                // reads the log once started sees the line that started it.
                {
                    let mut l = sink.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
                let after = line.split("dashboard on http").nth(1);
                let rest = after.and_then(|r| r.strip_prefix("://").or(r.strip_prefix("s://")));
                if let Some(rest) = rest {
                    let port = rest
                        .split('/')
                        .next()
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| p.parse().ok());
                    if let Some(p) = port {
                        let _ = tx.send(p);
                    }
                }
            }
        });
        let announced = rx.recv_timeout(Duration::from_secs(60));
        let port = match (port, announced) {
            (Some(p), Ok(_)) => p,
            (None, Ok(p)) => p,
            (_, Err(_)) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(200));
                panic!("edgeprobe did not start:\n{}", log.lock().unwrap());
            }
        };
        RunningMonitor {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Its stderr once `done` holds of it, waiting up to ten seconds: a
    /// line reaches the test through a pipe and a reader thread, so one
    /// written just before an answer or an exit may arrive after it.
    /// Whatever the log is by then, for the caller's assertions.
    pub fn log_once(&self, done: impl Fn(&str) -> bool) -> String {
        let wait = Duration::from_secs(10);
        super::eventually(wait, Duration::from_millis(50), || {
            let log = self.log();
            done(&log).then_some(log)
        })
        .unwrap_or_else(|| self.log())
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], b"")
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        request(self.addr, "POST", path, headers, body)
    }

    /// `/api/v1/status` as JSON, with every target of a test sheet: one
    /// page of the largest size (the API pages its rows).
    pub fn status(&self) -> Value {
        self.get(STATUS_ALL).json()
    }

    /// The status JSON's entry for target `addr`.
    pub fn target(&self, addr: &str) -> Value {
        let s = self.status();
        s["targets"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["addr"] == addr).cloned())
            .unwrap_or(Value::Null)
    }

    /// Poll `/api/v1/status` until `done` holds, or panic with what was
    /// last seen and the monitor's log.
    pub fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        self.poll_json(what, STATUS_ALL, timeout, done)
    }

    /// Poll a JSON endpoint until `done` holds.
    pub fn wait_until_json(
        &self,
        path: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        self.poll_json(path, path, timeout, done)
    }

    fn poll_json(
        &self,
        what: &str,
        path: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut last = Value::Null;
        let answer = super::eventually(timeout, Duration::from_millis(200), || {
            let v: Value = try_request(self.addr, "GET", path, &[], b"")
                .ok()
                .and_then(|r| serde_json::from_slice(&r.body).ok())?;
            if done(&v) {
                return Some(v);
            }
            last = v;
            None
        });
        if let Some(v) = answer {
            return v;
        }
        panic!(
            "timed out waiting for {what}; last answer from {path}:\n{last:#}\nlog:\n{}",
            self.log()
        );
    }

    /// Reload the sheet with SIGHUP and stop (SIGSTOP) the workbook reader
    /// that starts, as a board too busy to run it would, once `ready`
    /// says so of its pid (it runs on in steps of a millisecond until
    /// then). Tried again when a reader finishes before it is caught.
    /// Returns the stopped reader's pid.
    pub fn stop_next_workbook_reader(&self, ready: impl Fn(u32) -> bool) -> u32 {
        let pid = self.child.id();
        for _ in 0..10 {
            let catcher = std::thread::spawn(move || {
                let until = std::time::Instant::now() + Duration::from_secs(5);
                while std::time::Instant::now() < until {
                    if let Some(&reader) = workbook_readers_of(pid).first() {
                        return signal_pid(reader, "STOP").then_some(reader);
                    }
                }
                None
            });
            self.signal("HUP");
            let Some(reader) = catcher.join().unwrap() else {
                continue;
            };
            for _ in 0..1000 {
                if !is_stopped(reader) {
                    break;
                }
                if ready(reader) {
                    return reader;
                }
                signal_pid(reader, "CONT");
                std::thread::sleep(Duration::from_millis(1));
                signal_pid(reader, "STOP");
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("never caught the workbook reader running:\n{}", self.log());
    }

    /// Send a signal with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{sig} failed");
    }

    /// Wait for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        super::eventually(timeout, Duration::from_millis(50), || {
            self.child.try_wait().ok().flatten()
        })
    }
}

impl Drop for RunningMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}:\n{}", self.status, self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    try_request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// [`request`], with the failure to connect or read as an error.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    exchange(s, addr, method, path, headers, body)
}

/// [`try_request`] from the loopback address `source` (any of
/// 127.0.0.0/8), so one test can be several clients.
pub fn try_request_from(
    source: std::net::IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let s = connect_from(source, addr)?;
    exchange(s.into(), addr, method, path, headers, body)
}

/// A TCP socket bound to `source` and connected to `addr`.
pub fn connect_from(
    source: std::net::IpAddr,
    addr: SocketAddr,
) -> std::io::Result<socket2::Socket> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    s.bind(&SocketAddr::new(source, 0).into())?;
    s.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    Ok(s)
}

/// Send one request on `s` and read the response to the end.
fn exchange(
    mut s: TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    // The address as `Host`, unless the caller names another.
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..eol])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 || data.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[(eol + 4 + size).min(data.len())..];
    }
}

/// A target's status in an `/api/v1/status` document, by address.
pub fn status_of(v: &Value, addr: &str) -> Option<String> {
    v["targets"]
        .as_array()?
        .iter()
        .find(|t| t["addr"] == addr)?["status"]
        .as_str()
        .map(str::to_string)
}

/// The workbook reader processes `pid` has started, as they appear: the
/// children of its threads whose command line says `read-workbook`.
pub fn workbook_readers_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .filter(|child| {
            std::fs::read(format!("/proc/{child}/cmdline"))
                .is_ok_and(|c| c.windows(13).any(|w| w == b"read-workbook"))
        })
        .collect()
}

/// `kill -SIG PID`; whether it was delivered.
pub fn signal_pid(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether process `pid` is stopped (state `T`).
pub fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('T'))
    })
}
