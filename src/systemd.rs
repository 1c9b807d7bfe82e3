//! Talking to systemd when it runs us as a `Type=notify` service with a
//! watchdog: the `sd_notify` protocol, one datagram per message to the
//! socket named in `$NOTIFY_SOCKET` (a path, or `@name` in the abstract
//! namespace). Nothing here does anything when systemd did not ask for it.
//!
//! The watchdog is fed only while the probe loop is alive by the same rule
//! as `/healthz` ([`crate::monitor::health`]): when rounds stop finishing,
//! the feeding stops and systemd restarts the service after `WatchdogSec`.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use crate::monitor::Snapshot;

/// A connection to systemd's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier systemd asked for through `$NOTIFY_SOCKET`, if any.
    pub fn from_env() -> Option<Notifier> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        match Notifier::new(&name.to_string_lossy()) {
            Ok(n) => Some(n),
            Err(e) => {
                eprintln!("edgeprobe: NOTIFY_SOCKET={name:?} cannot be used ({e}); not telling systemd anything");
                None
            }
        }
    }

    /// A notifier for the socket `name`: a path, or `@abstract`.
    pub fn new(name: &str) -> io::Result<Notifier> {
        let addr = match name.strip_prefix('@') {
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(abstract_name.as_bytes())?
            }
            None => SocketAddr::from_pathname(name)?,
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            addr,
        })
    }

    /// Send one message, e.g. `READY=1` (newline-separated assignments).
    pub fn notify(&self, message: &str) -> io::Result<()> {
        self.socket
            .send_to_addr(message.as_bytes(), &self.addr)
            .map(|_| ())
    }
}

/// How often to feed the watchdog: half of `$WATCHDOG_USEC`, when it is
/// set for this process (`$WATCHDOG_PID`, if present, is our pid).
pub fn watchdog_period() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok()?;
    let pid = std::env::var("WATCHDOG_PID").ok();
    watchdog_period_from(&usec, pid.as_deref(), std::process::id())
}

/// [`watchdog_period`] with the environment passed in.
pub fn watchdog_period_from(usec: &str, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if pid.is_some_and(|p| p.trim().parse::<u32>().ok() != Some(own_pid)) {
        return None;
    }
    let usec = usec.trim().parse::<u64>().ok().filter(|u| *u > 0)?;
    Some(Duration::from_micros(usec) / 2)
}

/// The one-line status `systemctl status` shows, from a snapshot.
pub fn status_line(snap: &Snapshot) -> String {
    let c = snap.counts();
    match &snap.last_round {
        None => format!("STATUS={} targets, first round running", snap.targets.len()),
        Some(r) => format!(
            "STATUS=round {}: {} working, {} degraded, {} not working, {} pending",
            r.round.0, c.working, c.degraded, c.not_working, c.pending
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::{RoundInfo, TargetView};
    use crate::probe::Status;
    use crate::store::RoundId;

    #[test]
    fn the_watchdog_period_is_half_of_what_systemd_set_for_us() {
        assert_eq!(
            watchdog_period_from("60000000", None, 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_period_from("2000000", Some("7"), 7),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            watchdog_period_from("2000000", Some("8"), 7),
            None,
            "another process's"
        );
        assert_eq!(watchdog_period_from("0", None, 7), None);
        assert_eq!(watchdog_period_from("soon", None, 7), None);
    }

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(path.to_str().unwrap()).unwrap();
        n.notify("READY=1").unwrap();
        let mut buf = [0u8; 64];
        let len = systemd.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("edgeprobe-test-{}", std::process::id());
        let systemd =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        Notifier::new(&format!("@{name}"))
            .unwrap()
            .notify("WATCHDOG=1")
            .unwrap();
        let mut buf = [0u8; 64];
        let len = systemd.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn status_line_counts_the_targets() {
        let mut snap = Snapshot {
            targets: vec![
                TargetView {
                    status: Some(Status::Working),
                    ..TargetView::default()
                },
                TargetView {
                    status: Some(Status::NotWorking),
                    ..TargetView::default()
                },
            ],
            ..Snapshot::default()
        };
        assert_eq!(status_line(&snap), "STATUS=2 targets, first round running");
        snap.last_round = Some(RoundInfo {
            round: RoundId(12),
            started: crate::clock::Timestamp(0),
            finished: crate::clock::Timestamp(0),
            duration: Duration::ZERO,
            finished_mono: None,
        });
        assert_eq!(
            status_line(&snap),
            "STATUS=round 12: 1 working, 0 degraded, 1 not working, 0 pending"
        );
    }
}
