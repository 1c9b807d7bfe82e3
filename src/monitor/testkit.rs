//! Builders and fakes for the monitor's tests: addresses, hops, paths,
//! target lists and the lab's routing table; a fake network ([`FakeNet`])
//! and a store that fails on demand ([`FakeStore`]).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::probe::{Hop, Path, PingOutcome, Probe, RouteTable, Status, TraceError, Ttl};
use crate::store::{
    AlertRow, Dropped, EventRecord, QueuedNotification, RoundId, RoundRecord, SilenceRow,
    StoreError, StoreStats,
};
use crate::targets::{Target, TargetAddr, TargetList};

use super::round_store::{Remembered, RoundStore};

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A hop where `addr` answered in 1 ms, or nobody did.
pub fn hop(ttl: u8, addr: Option<&str>) -> Hop {
    Hop::new(Ttl(ttl), addr.map(ip), addr.map(|_| 1.0))
}

/// [`hop`]s at TTL 1, 2, ... for `addrs` in order.
pub fn hops(addrs: &[Option<&str>]) -> Vec<Hop> {
    (1..).zip(addrs).map(|(ttl, a)| hop(ttl, *a)).collect()
}

/// A path without an unreachable answer or ration limits.
pub fn path(hops: Vec<Hop>, reached: bool) -> Path {
    Path {
        hops,
        reached,
        unreachable_code: None,
        limits: Vec::new(),
    }
}

/// A sheet `t.csv` of these addresses, named `host 0`, `host 1`...
pub fn list(addrs: &[&str]) -> TargetList {
    TargetList {
        file: "t.csv".into(),
        sheet: None,
        targets: addrs
            .iter()
            .enumerate()
            .map(|(i, a)| Target {
                row: i as u32 + 2,
                addr: TargetAddr::Ip(ip(a)),
                name: Some(format!("host {i}")),
                group: None,
                notes: None,
            })
            .collect(),
        problems: Vec::new(),
    }
}

/// The lab's routes: default via 198.18.1.1.
pub fn routes() -> RouteTable {
    RouteTable::parse(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
         eth0\t00000000\t010112C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
         eth0\t000112C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
        "",
    )
}

/// A network where listed addresses answer and the rest stay silent;
/// it records when each call was made.
pub struct FakeNet {
    answering: Vec<IpAddr>,
    start: tokio::time::Instant,
    pub calls: Mutex<Vec<(Duration, &'static str, IpAddr)>>,
}

impl FakeNet {
    pub fn new(answering: &[&str]) -> FakeNet {
        FakeNet {
            answering: answering.iter().map(|a| ip(a)).collect(),
            start: tokio::time::Instant::now(),
            calls: Mutex::new(Vec::new()),
        }
    }

    fn note(&self, what: &'static str, addr: IpAddr) {
        let at = self.start.elapsed();
        self.calls.lock().unwrap().push((at, what, addr));
    }
}

impl Probe for FakeNet {
    async fn ping(&self, addr: IpAddr) -> PingOutcome {
        self.note("ping", addr);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let received = if self.answering.contains(&addr) { 3 } else { 0 };
        PingOutcome {
            sent: 3,
            received,
            rtt: None,
            status: Status::classify(3, received, 0.2),
            send_error: None,
        }
    }

    async fn trace(&self, addr: IpAddr) -> Result<Path, TraceError> {
        self.note("trace", addr);
        Ok(path(Vec::new(), false))
    }

    async fn resolve(&self, host: &str) -> Result<IpAddr, String> {
        Err(format!("{host}: no such host"))
    }
}

/// A SQLite failure with this result code, as the store reports one.
pub fn sqlite_error(code: std::ffi::c_int) -> StoreError {
    StoreError::Sqlite {
        op: "writing a round".into(),
        source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
    }
}

/// What SQLite says of a damaged file.
pub fn damaged() -> StoreError {
    sqlite_error(rusqlite::ffi::SQLITE_CORRUPT)
}

/// What SQLite says when the disk is full.
pub fn disk_full() -> StoreError {
    sqlite_error(rusqlite::ffi::SQLITE_FULL)
}

/// A store that keeps nothing but a log of what it was asked, and fails
/// the calls it is told to.
#[derive(Debug, Default)]
pub struct FakeStore {
    /// Every call that changes something, in order: `write round 3`,
    /// `write round 3: failed`, `event targets`, `retention`, `recreate`.
    pub log: Vec<String>,
    /// What each `recreate` was told of the damage.
    pub recreated: Vec<String>,
    /// The events recorded outside rounds.
    pub events: Vec<EventRecord>,
    /// The next writes of a round fail with these, first first.
    pub write_failures: VecDeque<StoreError>,
    /// The next retention passes fail with these.
    pub retention_failures: VecDeque<StoreError>,
    /// The next `recreate` calls fail with these.
    pub recreate_failures: VecDeque<StoreError>,
    /// What opening the store had to do, told once.
    pub recovery: Option<String>,
    /// The silences saved last.
    pub silences: Vec<SilenceRow>,
    /// Each stored round's alert messages and firing set.
    pub alerts_written: Vec<(Vec<QueuedNotification>, Option<Vec<AlertRow>>)>,
}

impl RoundStore for FakeStore {
    fn write_round(&mut self, round: &RoundRecord) -> Result<(), StoreError> {
        let what = format!("write round {}", round.round.0);
        if let Some(e) = self.write_failures.pop_front() {
            self.log.push(format!("{what}: failed"));
            return Err(e);
        }
        self.log.push(what);
        self.alerts_written
            .push((round.notifications.clone(), round.alerts.clone()));
        Ok(())
    }

    fn record_event(&mut self, event: &EventRecord) -> Result<(), StoreError> {
        self.log.push(format!("event {}", event.kind.as_str()));
        self.events.push(event.clone());
        Ok(())
    }

    fn save_silences(&mut self, silences: &[SilenceRow]) -> Result<(), StoreError> {
        self.log.push(format!("silences {}", silences.len()));
        self.silences = silences.to_vec();
        Ok(())
    }

    fn apply_retention(&mut self, _now: Timestamp) -> Result<Dropped, StoreError> {
        self.log.push("retention".into());
        match self.retention_failures.pop_front() {
            Some(e) => Err(e),
            None => Ok(Dropped::default()),
        }
    }

    fn recreate_after(&mut self, damage: String) -> Result<String, StoreError> {
        self.log.push("recreate".into());
        self.recreated.push(damage);
        match self.recreate_failures.pop_front() {
            Some(e) => Err(e),
            None => Ok("the history database was damaged; a new one started".into()),
        }
    }

    fn take_recovery(&mut self) -> Option<String> {
        self.recovery.take()
    }

    fn last_round(&self) -> Result<Option<RoundId>, StoreError> {
        Ok(None)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        Ok(StoreStats::default())
    }

    fn uptimes_24h(&self, _now: Timestamp) -> Result<HashMap<String, f64>, StoreError> {
        Ok(HashMap::new())
    }

    fn remembered(&self, _rtt_rounds: usize) -> Result<Remembered, StoreError> {
        Ok(Remembered::default())
    }
}
