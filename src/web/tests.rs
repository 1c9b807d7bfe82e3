//! Route tests: the real server on 127.0.0.1:0, raw HTTP/1.1 over a
//! TcpStream, a snapshot and an in-memory history from `testdata`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use std::io::{Read, Write};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::testdata::{self, FakeHistory};
use super::{serve, WebState};
use crate::clock::Timestamp;
use crate::http::Limits;
use crate::leds::LedPanel;
use crate::leds::LedSettings;
use crate::monitor::{Command, Snapshot};

const TOKEN: &str = "correct-horse-battery-staple";

struct TestServer {
    addr: SocketAddr,
    snapshot: watch::Sender<Arc<Snapshot>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    /// What the fake monitor received: "replace FILE LEN" or the command's
    /// Debug form.
    seen: Arc<Mutex<Vec<String>>>,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A snapshot whose last round finished just now, so /healthz is happy.
fn fresh_snapshot() -> Snapshot {
    let mut snap = testdata::snapshot();
    let now = Timestamp::now();
    if let Some(r) = &mut snap.last_round {
        r.finished = now;
    }
    snap.board.started_at = now.sub(Duration::from_secs(3600));
    snap
}

async fn start_with(admin_token: Option<&str>, limits: Limits, history: FakeHistory) -> TestServer {
    let (snap_tx, snap_rx) = watch::channel(Arc::new(fresh_snapshot()));
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(4);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_by_monitor = seen.clone();
    // A fake monitor: accepts sheets whose body starts with "good".
    tokio::spawn(async move {
        while let Some(cmd) = cmd_rx.recv().await {
            let mut seen = seen_by_monitor.lock().expect("not poisoned");
            match cmd {
                Command::ReplaceTargets {
                    file_name,
                    bytes,
                    reply,
                } => {
                    seen.push(format!("replace {file_name} {}", bytes.len()));
                    let answer = if bytes.starts_with(b"good") {
                        Ok(format!("3 targets from {file_name}"))
                    } else {
                        Err(vec![format!(
                            "{file_name}: Sheet1 row 2: \"<x>\" is not an IP address or host name"
                        )])
                    };
                    let _ = reply.send(answer);
                }
                // Matched by name so that commands added to the monitor
                // later need no change here.
                other => seen.push(format!("{other:?}")),
            }
        }
    });
    let state = Arc::new(WebState {
        snapshot: snap_rx,
        history: Arc::new(history),
        admin_token: admin_token.map(str::to_string),
        commands: cmd_tx,
        leds: LedPanel::new(&LedSettings::default(), vec![]),
        alerts: Arc::new(
            crate::alerts::sender::AlertSender::new(&Default::default(), Default::default())
                .expect("no channels"),
        ),
        limits,
        tls: None,
        allowed_hosts: Arc::new(crate::http::AllowedHosts::new(
            &["board"],
            super::WHERE_TO_ADD_HOSTS,
        )),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state, async move {
        let _ = stop_rx.await;
    }));
    TestServer {
        addr,
        snapshot: snap_tx,
        shutdown: Some(stop_tx),
        task,
        seen,
    }
}

async fn start() -> TestServer {
    start_with(Some(TOKEN), Limits::default(), FakeHistory::with_data()).await
}

/// A server without admin or history that serves at most
/// `max_connections` connections at once.
async fn start_capped(max_connections: usize) -> TestServer {
    let limits = Limits {
        max_connections,
        ..Limits::default()
    };
    start_with(None, limits, FakeHistory::default()).await
}

/// Send raw bytes, read until the server closes, parse the response.
/// Blocking std sockets on the blocking pool: tokio's `io-util` is not a
/// feature this crate needs otherwise.
async fn raw(addr: SocketAddr, request: &[u8]) -> Reply {
    let request = request.to_vec();
    let buf = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(&request).expect("write");
        let mut buf = Vec::new();
        // A reset after the response (the server did not read a refused
        // body) is fine as long as the response came.
        if let Err(e) = s.read_to_end(&mut buf) {
            assert!(!buf.is_empty(), "read failed before any response: {e}");
        }
        buf
    })
    .await
    .expect("client task");
    parse(&buf)
}

fn parse(buf: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let reply = Reply {
        status,
        headers,
        body: body.to_string(),
    };
    // Every response these tests get, errors included.
    assert_security_headers(&reply);
    reply
}

async fn request(addr: SocketAddr, method: &str, path: &str, extra: &str, body: &[u8]) -> Reply {
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: board\r\nConnection: close\r\n{extra}");
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, &bytes).await
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, "", b"").await
}

/// An admin upload of `body` as `t.csv`, with `extra` headers.
async fn upload_t_csv(addr: SocketAddr, extra: &str, body: &[u8]) -> Reply {
    request(addr, "POST", "/admin/targets?filename=t.csv", extra, body).await
}

/// The reply to a spawned request, which must come within `secs`
/// (`what` says what not getting it means).
async fn reply_within(secs: u64, what: &str, spawned: JoinHandle<Reply>) -> Reply {
    tokio::time::timeout(Duration::from_secs(secs), spawned)
        .await
        .expect(what)
        .expect("task")
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

fn assert_security_headers(r: &Reply) {
    assert_eq!(
        r.header("content-security-policy"),
        Some("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
}

#[tokio::test]
async fn index_renders_the_table_escaped_with_headers() {
    let srv = start().await;
    let r = get(srv.addr, "/?sort=rtt&dir=desc&status=bogus").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(
        r.header("cache-control"),
        Some("no-cache"),
        "kept, asked again"
    );
    assert!(r.header("etag").is_some_and(|t| t.starts_with("W/\"")));
    assert_security_headers(&r);
    assert_eq!(r.body.matches("<tr class=\"st-").count(), 4, "{}", r.body);
    for row in ["198.18.0.1", "198.18.0.9", "2001:db8::1", "printer.lan"] {
        assert!(r.body.contains(&format!(">{row}</a>")), "row {row}");
    }
    assert!(r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!r.body.to_lowercase().contains("<script"));
    assert!(!r.body.contains(" style="));
    assert!(
        r.body.contains("url=/?sort=rtt&amp;dir=desc"),
        "refresh keeps the query"
    );
}

#[tokio::test]
async fn the_page_and_the_status_answer_304_until_the_monitor_publishes() {
    let srv = start().await;
    for path in ["/?status=problems", "/api/v1/status?page_size=2"] {
        let first = get(srv.addr, path).await;
        assert_eq!(first.status, 200, "{path}: {}", first.body);
        let tag = first.header("etag").expect("an ETag").to_string();
        let asked = format!("If-None-Match: {tag}\r\n");

        let again = request(srv.addr, "GET", path, &asked, b"").await;
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty(), "{path}: a 304 has no body");
        assert_eq!(again.header("etag"), Some(tag.as_str()));

        // Another query is another representation.
        let other = request(srv.addr, "GET", &format!("{path}&sort=sno"), &asked, b"").await;
        assert_eq!(other.status, 200, "{path}");

        // The next snapshot (a round) makes the held copy stale.
        let mut next = (**srv.snapshot.borrow()).clone();
        next.published += 1;
        srv.snapshot.send_replace(Arc::new(next));
        let after = request(srv.addr, "GET", path, &asked, b"").await;
        assert_eq!(after.status, 200, "{path}");
        assert_ne!(after.header("etag"), Some(tag.as_str()));
    }
}

#[tokio::test]
async fn the_status_api_refuses_a_page_that_does_not_exist() {
    let srv = start().await;
    for (path, says) in [
        ("/api/v1/status?page=9", "beyond the end"),
        ("/api/v1/status?page_size=0", "page_size=1 to page_size=500"),
        ("/api/v1/status?page=x", "pages count from page=1"),
    ] {
        let r = get(srv.addr, path).await;
        assert_eq!(r.status, 400, "{path}");
        assert!(
            r.json()["error"].as_str().unwrap().contains(says),
            "{path}: {}",
            r.body
        );
    }
    // The page, typed by a person, shows the last page instead.
    let r = get(srv.addr, "/?page=9").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.matches("<tr class=\"st-").count(), 4, "{}", r.body);
}

#[tokio::test]
async fn stylesheet_is_served_and_cacheable() {
    let srv = start().await;
    let r = get(srv.addr, "/static/style.css").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=3600"));
    assert_security_headers(&r);
    assert!(r.body.contains(".tablewrap"));
}

#[tokio::test]
async fn api_status_has_the_contract_fields() {
    let srv = start().await;
    let r = get(srv.addr, "/api/v1/status").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_security_headers(&r);
    let v = r.json();
    assert_eq!(v["board"]["id"], "closet-3");
    assert_eq!(v["counts"]["working"], 1);
    let targets = v["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 4);
    for field in testdata::TARGET_FIELDS {
        assert!(targets[0].get(field).is_some(), "missing {field}");
    }
    assert_eq!(targets[0]["group"], testdata::HOSTILE_GROUP);
    assert_eq!(targets[1]["status"], "not_working");
}

#[tokio::test]
async fn api_target_detail_and_unknown() {
    let srv = start().await;
    let r = get(srv.addr, "/api/v1/targets/198.18.0.1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["addr"], "198.18.0.1");
    assert_eq!(v["uptime"]["h24"], 0.8);
    assert_eq!(v["results"].as_array().map(Vec::len), Some(5));
    assert_eq!(v["traces"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["events"][0]["kind"], "status");

    let r = get(srv.addr, "/api/v1/targets/198.18.9.9").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.json()["error"].is_string());
}

#[tokio::test]
async fn target_page_decodes_ipv6_keys() {
    let srv = start().await;
    for path in ["/targets/2001%3Adb8%3A%3A1", "/targets/2001:db8::1"] {
        let r = get(srv.addr, path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(r.body.contains("v6 host"), "{path}");
        assert!(r.body.contains("<svg class=\"chart\""), "{path}");
    }
    let r = get(srv.addr, "/targets/198.18.0.1").await;
    assert!(r.body.contains("Recent results"));
    assert!(!r.body.to_lowercase().contains("<script"));

    for path in ["/targets/198.18.9.9", "/targets/%zz", "/targets/"] {
        let r = get(srv.addr, path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_security_headers(&r);
    }
}

#[tokio::test]
async fn store_errors_degrade_gracefully() {
    let history = FakeHistory {
        fail: true,
        ..FakeHistory::default()
    };
    let srv = start_with(None, Limits::default(), history).await;
    let r = get(srv.addr, "/targets/198.18.0.1").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("History unavailable"), "{}", r.body);
    assert!(r.body.contains("disk on fire"), "{}", r.body);
    let r = get(srv.addr, "/api/v1/targets/198.18.0.1").await;
    assert_eq!(r.status, 503);
    assert!(r.json()["error"]
        .as_str()
        .is_some_and(|e| e.contains("disk on fire")));
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let srv = start().await;
    let r = get(srv.addr, "/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(r.body.contains("# TYPE edgeprobe_target_up gauge"));
    assert!(
        r.body.contains("name=\"core \\\"sw\\\"\\\\1\\nx\""),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn healthz_follows_the_rounds() {
    let srv = start().await;
    let r = get(srv.addr, "/healthz").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "ok");

    let mut stale = fresh_snapshot();
    let long_ago = Timestamp::now().sub(Duration::from_secs(600));
    if let Some(r) = &mut stale.last_round {
        r.finished = long_ago;
    }
    srv.snapshot.send_replace(Arc::new(stale));
    let r = get(srv.addr, "/healthz").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["status"], "stale");
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods() {
    let srv = start().await;
    let r = get(srv.addr, "/nope").await;
    assert_eq!(r.status, 404);
    assert_security_headers(&r);
    let r = get(srv.addr, "/api/v1/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));

    let r = request(srv.addr, "POST", "/", "", b"x").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = request(srv.addr, "DELETE", "/api/v1/status", "", b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = get(srv.addr, "/admin/probe-now").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
}

#[tokio::test]
async fn head_answers_without_a_body() {
    let srv = start().await;
    let r = request(srv.addr, "HEAD", "/api/v1/status", "", b"").await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty(), "{:?}", r.body);
    let len: usize = r
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    assert!(len > 100);
}

#[tokio::test]
async fn admin_is_off_without_a_token() {
    let srv = start_with(None, Limits::default(), FakeHistory::default()).await;
    let r = request(srv.addr, "POST", "/admin/probe-now", &bearer(TOKEN), b"").await;
    assert_eq!(r.status, 403);
    let msg = r.json()["error"].as_str().unwrap_or("").to_string();
    assert!(
        msg.contains("admin_token") && msg.contains("--admin-token-file"),
        "{msg}"
    );
    assert!(srv.seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn admin_needs_the_right_bearer_token() {
    let srv = start().await;
    for extra in [
        String::new(),
        bearer("wrong"),
        bearer(&TOKEN[..TOKEN.len() - 1]),
        format!("Authorization: Basic {TOKEN}\r\n"),
    ] {
        let r = request(srv.addr, "POST", "/admin/probe-now", &extra, b"").await;
        assert_eq!(r.status, 401, "{extra:?}");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{extra:?}"
        );
        assert_security_headers(&r);
    }
    assert!(srv.seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn admin_probe_now_queues_a_round() {
    let srv = start().await;
    let r = request(srv.addr, "POST", "/admin/probe-now", &bearer(TOKEN), b"").await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["status"], "queued");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(*srv.seen.lock().expect("lock"), ["ProbeNow"]);
}

#[tokio::test]
async fn admin_locate_blinks_every_led_for_thirty_seconds() {
    let srv = start().await;
    let before = get(srv.addr, "/api/v1/status").await.json();
    assert_eq!(
        before["leds"]["red"], "on",
        "a target of the test data is down"
    );
    assert_eq!(before["led_driver"]["backend"], "virtual");

    let r = request(srv.addr, "POST", "/admin/locate", "", b"").await;
    assert_eq!(r.status, 401, "admin only");
    let r = request(srv.addr, "POST", "/admin/locate", &bearer(TOKEN), b"").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "locating");
    let until = r.json()["until"].as_str().expect("until").to_string();
    assert!(until.ends_with('Z'), "{until}");

    let during = get(srv.addr, "/api/v1/status").await.json();
    for colour in ["green", "red", "amber"] {
        assert_eq!(during["leds"][colour], "locate", "{colour}");
    }
    let page = get(srv.addr, "/").await.body;
    assert!(page.contains("led led-amber pat-locate"), "{page}");
}

#[tokio::test]
async fn admin_upload_replaces_or_reports_problems() {
    let limits = Limits {
        body_max: 1024,
        ..Limits::default()
    };
    let srv = start_with(Some(TOKEN), limits, FakeHistory::default()).await;
    let auth = bearer(TOKEN);

    let r = request(
        srv.addr,
        "POST",
        "/admin/targets?filename=targets.csv",
        &auth,
        b"good,rows",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["summary"], "3 targets from targets.csv");

    let cd = format!("{auth}Content-Disposition: attachment; filename=\"../site b.csv\"\r\n");
    let r = request(srv.addr, "POST", "/admin/targets", &cd, b"bad rows").await;
    assert_eq!(r.status, 422, "{}", r.body);
    let problems = r.json()["problems"].clone();
    assert!(
        problems[0]
            .as_str()
            .is_some_and(|p| p.contains("site b.csv: Sheet1 row 2")),
        "{problems}"
    );

    // Announced too large: refused before reading.
    let big = vec![b'x'; 2048];
    let r = upload_t_csv(srv.addr, &auth, &big).await;
    assert_eq!(r.status, 413, "{}", r.body);

    // Chunked, so only Limited notices.
    let mut chunked = format!(
        "POST /admin/targets?filename=t.csv HTTP/1.1\r\nHost: board\r\nConnection: close\r\n{auth}Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..3 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend_from_slice(&[b'y'; 0x200]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = raw(srv.addr, &chunked).await;
    assert_eq!(r.status, 413, "{}", r.body);

    let r = request(srv.addr, "POST", "/admin/targets", &auth, b"good").await;
    assert_eq!(r.status, 400, "no file name: {}", r.body);
    let r = upload_t_csv(srv.addr, &auth, b"").await;
    assert_eq!(r.status, 400, "empty body: {}", r.body);

    // Wrong token: nothing reaches the monitor.
    let r = upload_t_csv(srv.addr, &bearer("x"), b"good").await;
    assert_eq!(r.status, 401);

    let seen = srv.seen.lock().expect("lock").clone();
    assert_eq!(seen, ["replace targets.csv 9", "replace site b.csv 8"]);
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let srv = start_with(None, limits, FakeHistory::default()).await;
    let addr = srv.addr;
    let closed = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(b"GET / HTTP/1.1\r\nHost: bo").expect("write");
        let mut buf = Vec::new();
        // EOF or reset: closed. A timeout error: still held open.
        match s.read_to_end(&mut buf) {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    })
    .await
    .expect("client task");
    assert!(
        closed,
        "the server kept a slow client past the header timeout"
    );
}

#[tokio::test]
async fn a_request_slower_than_the_request_timeout_is_answered_503() {
    let limits = Limits {
        request_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let srv = start_with(Some(TOKEN), limits, FakeHistory::default()).await;
    // An upload that announces 100 bytes and sends 4: the handler waits
    // on the body until the time limit answers for it.
    let head = format!(
        "POST /admin/targets?filename=t.csv HTTP/1.1\r\nHost: board\r\nConnection: close\r\n{}Content-Length: 100\r\n\r\ngood",
        bearer(TOKEN)
    );
    // `raw`'s 10 s read timeout is the stall detector.
    let r = raw(srv.addr, head.as_bytes()).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body.contains("took longer than") && r.body.contains("try again"),
        "{}",
        r.body
    );
    assert!(
        srv.seen.lock().expect("lock").is_empty(),
        "nothing reached the monitor"
    );
}

#[tokio::test]
async fn connection_cap_holds_new_connections_back() {
    let srv = start_capped(1).await;
    let hog = TcpStream::connect(srv.addr).await.expect("connect");
    // Let the server accept the hog first.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = tokio::spawn(get(srv.addr, "/healthz"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "served past the connection cap");
    drop(hog);
    let r = reply_within(5, "served once the hog left", second).await;
    assert_eq!(r.status, 200);
}

/// A connection that asks for `path` again and again and reads nothing:
/// a tiny receive buffer and segment size, so that a few answers fill all
/// the kernel holds for it and the server's writes stall.
fn stalled_reader(addr: SocketAddr, path: &str) -> socket2::Socket {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    s.set_recv_buffer_size(2048).expect("SO_RCVBUF");
    s.set_tcp_mss(536).expect("TCP_MAXSEG");
    s.connect(&addr.into()).expect("connect");
    s.set_nonblocking(true).expect("non-blocking");
    let request = format!("GET {path} HTTP/1.1\r\nHost: board\r\n\r\n");
    for _ in 0..400 {
        if s.send(request.as_bytes()).is_err() {
            break;
        }
    }
    s
}

#[tokio::test]
async fn a_client_that_reads_nothing_is_cut_after_the_write_stall_limit() {
    let limits = Limits {
        max_connections: 1,
        write_stall_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let srv = start_with(None, limits, FakeHistory::default()).await;
    let hog = stalled_reader(srv.addr, "/");
    // The hog holds the only connection until its answers stall and it
    // is cut; then the next client is served.
    let next = tokio::spawn(get(srv.addr, "/healthz"));
    let r = reply_within(20, "the stalled connection was never cut", next).await;
    assert_eq!(r.status, 200);
    drop(hog);
}

#[tokio::test]
async fn one_client_gets_its_share_of_connections_and_429_beyond() {
    let limits = Limits {
        max_connections_per_client: 2,
        ..Limits::default()
    };
    let srv = start_with(None, limits, FakeHistory::default()).await;
    let _held: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(srv.addr).expect("connect"))
        .collect();
    let r = reply_within(
        20,
        "answered at once",
        tokio::spawn(get(srv.addr, "/healthz")),
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("10"));
    assert!(r.body.contains("2 connections"), "{}", r.body);
}

#[tokio::test]
async fn many_clients_at_once_are_all_served_within_the_cap() {
    let srv = start_capped(4).await;
    // Ten times the cap, all at once: the ones over it wait their turn
    // instead of being refused.
    let clients: Vec<_> = (0..40)
        .map(|i| {
            let path = if i % 2 == 0 { "/healthz" } else { "/" };
            tokio::spawn(get(srv.addr, path))
        })
        .collect();
    for c in clients {
        let r = reply_within(20, "served", c).await;
        assert_eq!(r.status, 200);
    }
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let mut srv = start().await;
    assert_eq!(get(srv.addr, "/healthz").await.status, 200);
    // An idle keep-alive connection must not hold the shutdown up.
    let _idle = TcpStream::connect(srv.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = srv.shutdown.take().map(|tx| tx.send(()));
    let done = tokio::time::timeout(Duration::from_secs(5), &mut srv.task)
        .await
        .expect("serve returned within the grace period");
    assert!(matches!(done, Ok(Ok(()))));
    assert!(
        TcpStream::connect(srv.addr).await.is_err(),
        "still accepting"
    );
}
