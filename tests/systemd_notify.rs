//! `edgeprobe run` under systemd's notify protocol, with the socket played
//! by the test: ready once serving, a watchdog fed while rounds finish,
//! a status line, and "stopping" on SIGTERM. Probes loopback only.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::monitor::{run_args, RunningMonitor};

/// Every datagram received until `until` holds for the messages so far.
fn receive_until(
    socket: &UnixDatagram,
    timeout: Duration,
    until: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // The socket's read timeout paces the polling.
    common::eventually(timeout, Duration::ZERO, || {
        if until(&seen) {
            return Some(());
        }
        if let Ok(len) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        None
    });
    seen
}

#[test]
fn tells_systemd_it_is_ready_feeds_the_watchdog_and_says_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let systemd = UnixDatagram::bind(&path).unwrap();
    let sheet = dir.path().join("targets.csv");
    std::fs::write(&sheet, "IP\n127.0.0.1\n").unwrap();
    let state = dir.path().join("state");
    let mut m = RunningMonitor::start_local_env(
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            // A 400 ms watchdog: fed every 200 ms.
            ("WATCHDOG_USEC", "400000"),
        ],
        &run_args(
            sheet.to_str().unwrap(),
            state.to_str().unwrap(),
            &["--interval", "1s", "--count", "1", "--timeout", "300ms"],
        ),
    );
    let seen = receive_until(&systemd, Duration::from_secs(30), |seen| {
        seen.iter()
            .filter(|m| m.starts_with("WATCHDOG=1\n"))
            .count()
            >= 3
            && seen.iter().any(|m| m.contains("STATUS=round "))
    });
    assert_eq!(
        seen.first().map(String::as_str),
        Some("READY=1"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|m| m.contains("1 working, 0 degraded, 0 not working")),
        "{seen:?}\n{}",
        m.log()
    );

    m.signal("TERM");
    let after = receive_until(&systemd, Duration::from_secs(20), |seen| {
        seen.iter().any(|m| m == "STOPPING=1")
    });
    assert!(after.iter().any(|m| m == "STOPPING=1"), "{after:?}");
    assert!(m
        .wait_exit(Duration::from_secs(20))
        .expect("stops")
        .success());
}
