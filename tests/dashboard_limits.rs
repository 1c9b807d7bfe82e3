//! The board's dashboard under clients that cost it: many connections
//! from one address that ask and never read their answers. Through the
//! real `edgeprobe run`, with clients on several loopback addresses.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::monitor::{quick_args, try_request_from, Response, RunningMonitor};
use socket2::{Domain, Socket, Type};

const TOKEN: &str = "test-token-0123456789abcdef";

/// As many connections as the dashboard serves at once.
const SERVED_AT_ONCE: usize = 256;

/// Requests each stalled connection sends without reading an answer.
const PIPELINED: usize = 400;

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A connection from `source` that sends `PIPELINED` requests for `path`
/// and reads none of the answers. A tiny receive buffer and segment size
/// make a few answers fill all the kernel holds for it, so the server's
/// writes stall. The caller keeps it open.
fn stalled_reader(source: IpAddr, addr: SocketAddr, path: &str) -> Socket {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    s.set_recv_buffer_size(2048).expect("SO_RCVBUF");
    s.set_tcp_mss(536).expect("TCP_MAXSEG");
    s.bind(&SocketAddr::new(source, 0).into()).expect("bind");
    s.connect_timeout(&addr.into(), Duration::from_secs(5))
        .expect("connect");
    s.set_nonblocking(true).expect("non-blocking");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    for _ in 0..PIPELINED {
        // Full buffers (the server stopped reading) or a refusal: either
        // way this client has asked all it can.
        if s.send(request.as_bytes()).is_err() {
            break;
        }
    }
    s
}

fn assert_busy_is_well_formed(r: &Response) {
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    assert!(
        r.text().contains("connections") && r.text().contains("close"),
        "says why and what to do: {}",
        r.text()
    );
}

#[test]
fn clients_that_never_read_keep_neither_another_client_nor_the_admin_out() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("t.csv");
    std::fs::write(&sheet, "ip,name\n127.0.0.1,one\n").unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let state = dir.path().join("state");
    let m = RunningMonitor::start_local(&quick_args(
        sheet.to_str().unwrap(),
        state.to_str().unwrap(),
        &["--admin-token-file", token_file.to_str().unwrap()],
    ));
    m.wait_for("a first round", Duration::from_secs(30), |v| {
        v["targets"][0]["status"] == "working"
    });

    let hog = loopback(2);
    let stalled: Vec<Socket> = (0..SERVED_AT_ONCE)
        .map(|_| stalled_reader(hog, m.addr, "/"))
        .collect();

    // Another client, and the admin: answered although one address asked
    // for every connection the dashboard serves at once. (The 30 s read
    // timeout of `try_request_from` is the stall detector.)
    let other = try_request_from(loopback(3), m.addr, "GET", "/healthz", &[], b"")
        .unwrap_or_else(|e| panic!("another client got no answer: {e}\nlog:\n{}", m.log()));
    assert_eq!(other.status, 200, "{}", other.text());
    let bearer = format!("Bearer {TOKEN}");
    let admin = try_request_from(
        loopback(4),
        m.addr,
        "POST",
        "/admin/probe-now",
        &[("Authorization", &bearer)],
        b"",
    )
    .unwrap_or_else(|e| panic!("the admin got no answer: {e}\nlog:\n{}", m.log()));
    assert_eq!(admin.status, 202, "{}", admin.text());

    // The hog's address itself is at its cap: told so, at once.
    let refused = try_request_from(hog, m.addr, "GET", "/healthz", &[], b"")
        .unwrap_or_else(|e| panic!("no answer beyond the per-client cap: {e}"));
    assert_busy_is_well_formed(&refused);

    // Its stalled connections are cut once nothing of their answers was
    // read for the write-stall limit: the address gets answers again.
    let served_again = common::eventually(Duration::from_secs(120), Duration::from_secs(1), || {
        try_request_from(hog, m.addr, "GET", "/healthz", &[], b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    assert!(
        served_again.is_some(),
        "the connections that read nothing were never cut; log:\n{}",
        m.log()
    );
    drop(stalled);
}

/// The open file descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

fn set_nofile(pid: u32, limit: &str) {
    let out = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={limit}")])
        .output()
        .expect("run prlimit");
    common::assert_success(&out, "prlimit --nofile");
}

#[test]
fn running_out_of_file_descriptors_pauses_the_dashboard_and_never_ends_it() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("t.csv");
    std::fs::write(&sheet, "ip,name\n127.0.0.1,one\n").unwrap();
    let state = dir.path().join("state");
    let m = RunningMonitor::start_local(&quick_args(
        sheet.to_str().unwrap(),
        state.to_str().unwrap(),
        &[],
    ));
    m.wait_for("a first round", Duration::from_secs(30), |v| {
        v["targets"][0]["status"] == "working"
    });
    let pid = m.child.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    // Soft limits only: raising a hard one back needs CAP_SYS_RESOURCE.
    let (soft, hard) = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| {
            let n: Vec<&str> = l.split_whitespace().collect();
            Some((n.get(3)?.to_string(), n.get(4)?.to_string()))
        })
        .expect("Max open files in /proc/PID/limits");
    let original = format!("{soft}:{hard}");

    // A few descriptors to spare, then connections that take them all:
    // accept fails with EMFILE while they are held.
    set_nofile(pid, &format!("{}:{hard}", open_fds(pid) + 3));
    let holders: Vec<Socket> = (0..8)
        .map(|_| stalled_reader(loopback(5), m.addr, "/"))
        .collect();
    let saw_emfile =
        common::eventually(Duration::from_secs(30), Duration::from_millis(200), || {
            m.log().contains("cannot accept").then_some(())
        });
    assert!(saw_emfile.is_some(), "no accept error logged:\n{}", m.log());

    // The trouble lasts a while (not a timing assertion: how long the
    // descriptors stay taken), so that retries add up.
    std::thread::sleep(Duration::from_secs(3));

    // Descriptors free again: the dashboard serves as before.
    set_nofile(pid, &original);
    drop(holders);
    let served = common::eventually(Duration::from_secs(60), Duration::from_millis(500), || {
        try_request_from(loopback(6), m.addr, "GET", "/healthz", &[], b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    assert!(
        served.is_some(),
        "the dashboard did not serve again once descriptors were free; log:\n{}",
        m.log()
    );
    let mut m = m;
    assert!(
        m.child.try_wait().unwrap().is_none(),
        "edgeprobe exited:\n{}",
        m.log()
    );
    let log = m.log_once(|l| l.contains("accepting connections again"));
    assert!(
        log.contains("accepting connections again"),
        "says when it is over:\n{log}"
    );
    let logged = log.matches("cannot accept").count();
    assert!(
        logged <= 2,
        "the accept error is logged when it starts, not per retry ({logged} lines):\n{log}"
    );
    assert!(
        log.contains("raise LimitNOFILE="),
        "says what to do:\n{log}"
    );
}

/// The security headers every answer carries, refusals included.
fn assert_security_headers(r: &Response) {
    assert!(
        r.header("content-security-policy")
            .is_some_and(|p| p.starts_with("default-src 'none'")),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

/// `GET /healthz` with this `Host` header.
fn healthz_for(addr: SocketAddr, host: &str) -> Response {
    try_request_from(loopback(7), addr, "GET", "/healthz", &[("Host", host)], b"")
        .unwrap_or_else(|e| panic!("Host {host}: {e}"))
}

/// DNS rebinding: a page of another site whose name now points at the
/// board gets nothing; the board's names and addresses work.
fn assert_answers_its_own_names_only(addr: SocketAddr, configured: &str, where_to_add: &str) {
    let port = addr.port();
    for host in [
        configured.to_string(),
        format!("{configured}:{port}"),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("127.0.0.2:{port}"),
    ] {
        let r = healthz_for(addr, &host);
        assert_eq!(r.status, 200, "Host {host}: {}", r.text());
    }
    for host in [format!("rebound.example:{port}"), "198.18.0.99".to_string()] {
        let r = healthz_for(addr, &host);
        assert_eq!(r.status, 421, "Host {host}: {}", r.text());
        assert!(
            r.text().contains(where_to_add),
            "says what to do: {}",
            r.text()
        );
        assert_security_headers(&r);
    }
}

#[test]
fn the_board_answers_only_to_its_names_and_addresses() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("t.csv");
    std::fs::write(&sheet, "ip,name\n127.0.0.1,one\n").unwrap();
    let config = dir.path().join("edgeprobe.toml");
    std::fs::write(
        &config,
        "[web]\nallowed_hosts = [\"closet-3.example.net\"]\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let m = RunningMonitor::start_local(&quick_args(
        sheet.to_str().unwrap(),
        state.to_str().unwrap(),
        &["--config", config.to_str().unwrap()],
    ));
    assert_answers_its_own_names_only(m.addr, "closet-3.example.net", "allowed_hosts");
}

#[test]
fn central_answers_only_to_its_names_and_addresses() {
    let mongo = common::mongo::TestMongo::start();
    let m = RunningMonitor::start_central(&[
        "--mongo-uri",
        &mongo.uri(),
        "--allowed-host",
        "fleet.example.net",
    ]);
    assert_answers_its_own_names_only(m.addr, "fleet.example.net", "--allowed-host");
}
