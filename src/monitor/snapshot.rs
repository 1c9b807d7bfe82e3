//! The monitor's state as readers see it: a cheap, immutable copy that the
//! dashboard, the API and `/metrics` render from without taking a lock that
//! the probe loop also holds.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::clock::{Mono, Timestamp};
use crate::probe::{Gateway, Hop, RttSummary, Status};
use crate::store::{RoundId, StoreStats};

/// Everything the dashboard header and table show.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub board: BoardInfo,
    /// The last finished round, if any.
    pub last_round: Option<RoundInfo>,
    /// Every monitored target in sheet order.
    pub targets: Vec<TargetView>,
    pub sheet: SheetView,
    /// The board's own default gateways and whether they answer.
    pub board_gateways: Vec<BoardGateway>,
    pub store: StoreStats,
    pub upstream: UpstreamView,
    /// Problems with the board itself (missing privileges, store faults),
    /// each saying what to do.
    pub warnings: Vec<String>,
    /// The alerts firing and the silences in force (`/api/v1/alerts`
    /// writes its own document of them).
    #[serde(skip)]
    pub alerts: crate::alerts::AlertsView,
    /// Which of the monitor's snapshots this is: 1 for its first, one
    /// more each time it publishes. With `board.started_at` it names the
    /// data, for the dashboard's entity tags.
    #[serde(skip)]
    pub published: u64,
}

impl Snapshot {
    /// How many targets are in each reported status (targets not probed
    /// yet are in none).
    pub fn counts(&self) -> StatusCounts {
        let mut c = StatusCounts::default();
        for t in &self.targets {
            match t.status {
                Some(Status::Working) => c.working += 1,
                Some(Status::Degraded) => c.degraded += 1,
                Some(Status::NotWorking) => c.not_working += 1,
                None => c.pending += 1,
            }
        }
        c
    }

    /// The target whose key is `key`.
    pub fn target(&self, key: &str) -> Option<&TargetView> {
        self.targets.iter().find(|t| &*t.key == key)
    }
}

/// Targets per reported status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StatusCounts {
    pub working: usize,
    pub degraded: usize,
    pub not_working: usize,
    /// Not probed yet.
    pub pending: usize,
}

/// Who this board is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BoardInfo {
    pub id: String,
    pub version: String,
    pub started_at: Timestamp,
    /// The start on the monotonic clock (see [`RoundInfo::finished_mono`]).
    #[serde(skip)]
    pub started_mono: Option<Mono>,
    #[serde(with = "duration_secs")]
    pub interval: Duration,
}

/// A finished round.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RoundInfo {
    pub round: RoundId,
    pub started: Timestamp,
    pub finished: Timestamp,
    /// Time from the first send to the last answer or timeout, on the
    /// monotonic clock.
    #[serde(with = "duration_secs")]
    pub duration: Duration,
    /// When it finished on the monotonic clock; `None` where a snapshot was
    /// not made by a running monitor (tests, restored data).
    #[serde(skip)]
    pub finished_mono: Option<Mono>,
}

/// One row of the dashboard table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetView {
    /// 1-based position in the sheet order (the S.No column).
    pub sno: usize,
    /// The store key: canonical IP or lower-case host name.
    pub key: Arc<str>,
    /// The address as the sheet gives it.
    pub addr: Arc<str>,
    /// What a host name resolved to; equals `addr` for IP targets.
    pub ip: Option<IpAddr>,
    pub name: Option<Arc<str>>,
    pub group: Option<Arc<str>>,
    pub notes: Option<Arc<str>>,
    /// The reported (smoothed) status; `None` until the first round.
    pub status: Option<Status>,
    /// The status since when.
    pub status_since: Option<Timestamp>,
    pub sent: u32,
    pub received: u32,
    pub loss: Option<f64>,
    pub rtt_ms: Option<RttSummary>,
    pub gateway: Option<Gateway>,
    /// The latest trace's hops (destination last when it answered).
    pub hops: Arc<[Hop]>,
    /// Reachable: the destination answered ping or traceroute.
    pub reached: bool,
    pub last_trace: Option<Timestamp>,
    pub last_updated: Option<Timestamp>,
    pub uptime_24h: Option<f64>,
    /// Average RTT of the recent rounds, oldest first; `None` for a round
    /// without replies. Drawn as the sparkline. `f32` is ample for a
    /// drawing, and 30 rounds of every target in the monitor and in each
    /// snapshot are half the memory of `f64`.
    pub recent_rtt: super::sparkline::Sparkline,
    /// When not Working: where the path stops, or why it could not be
    /// probed.
    pub cause: Option<String>,
}

impl TargetView {
    /// The routers: hops without the destination itself.
    pub fn routers(&self) -> &[Hop] {
        match self.hops.split_last() {
            Some((last, routers)) if last.addr.is_some() && last.addr == self.ip => routers,
            _ => &self.hops,
        }
    }
}

/// The targets sheet as loaded, and the last rejected reload, if any.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SheetView {
    /// Where the list came from; `None` when no sheet is configured yet.
    pub source: Option<String>,
    pub loaded_at: Option<Timestamp>,
    /// Rows skipped in the running list.
    pub problems: Vec<String>,
    /// A reload that was refused; the old list keeps running until a good
    /// sheet replaces it.
    pub rejected: Option<RejectedSheet>,
}

/// A sheet that did not replace the running list, and why.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedSheet {
    pub source: String,
    pub at: Timestamp,
    pub problems: Vec<String>,
    /// When the same file is read again by itself, after a failure of the
    /// moment (the reader could not run, the file could not be opened);
    /// `None`: only a change to the file is read again.
    pub retry_at: Option<Timestamp>,
}

/// One of the board's own default gateways.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BoardGateway {
    pub addr: IpAddr,
    /// `None` until it was pinged.
    pub up: Option<bool>,
}

/// The upstream sync as the header shows it. `server` is the MongoDB
/// address without credentials.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UpstreamView {
    /// No upstream configured: results stay on the board.
    #[default]
    Off,
    /// Configured, not reached yet since the start.
    Connecting { server: String },
    /// Reached; the outbox is empty or holds only the latest round.
    Synced {
        server: String,
        last_sync: Timestamp,
    },
    /// Reached again after an outage, sending the backlog.
    Draining {
        server: String,
        last_sync: Timestamp,
    },
    /// Cannot be reached; rows wait in the outbox until it can.
    Unreachable {
        server: String,
        since: Timestamp,
        error: String,
        retry_at: Timestamp,
    },
}

impl UpstreamView {
    /// The state's name: `off`, `connecting`, `synced`, `draining` or
    /// `unreachable`; the same in the API's `upstream.state`, the board's
    /// `/metrics` and the board document's `upstream_state` upstream.
    pub fn state_name(&self) -> &'static str {
        match self {
            UpstreamView::Off => "off",
            UpstreamView::Connecting { .. } => "connecting",
            UpstreamView::Synced { .. } => "synced",
            UpstreamView::Draining { .. } => "draining",
            UpstreamView::Unreachable { .. } => "unreachable",
        }
    }
}

/// The liveness verdict of `/healthz`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// `ok` or `stale`.
    pub status: &'static str,
    /// Seconds since the last round finished (or since start, before the
    /// first round).
    pub age_s: f64,
    /// The age past which the monitor is judged stuck.
    pub limit_s: f64,
    pub last_round: Option<Timestamp>,
}

impl Health {
    /// Whether `/healthz` answers 200.
    pub fn ok(&self) -> bool {
        self.status == "ok"
    }
}

/// Rounds that may be missed before `/healthz` fails.
pub const HEALTH_MISSED_ROUNDS: u32 = 3;

/// Judge whether the probe loop is alive.
///
/// The rule: the monitor is alive while the last round finished less than
/// [`HEALTH_MISSED_ROUNDS`] intervals ago. Before the first round the clock
/// starts at `started_at`, so a board gets as long to finish its first
/// round as it gets between any two. A round that takes longer than the
/// interval delays the next one, which three intervals leave room for.
/// The interval is taken as at least one second, so a zero interval does
/// not make every check fail.
///
/// Ages are measured on the monotonic clock where the snapshot has its
/// readings, so setting the wall clock (the first NTP sync of a board
/// without a real-time clock) neither fails the check nor feeds a stuck
/// loop's watchdog; `now` is used only without them.
pub fn health(snap: &Snapshot, now: Timestamp, now_mono: Mono) -> Health {
    let last = snap.last_round.map(|r| r.finished);
    let mono_since = match snap.last_round {
        Some(r) => r.finished_mono,
        None => snap.board.started_mono,
    };
    let age = match mono_since {
        Some(since) => now_mono.since(since),
        None => now.since(last.unwrap_or(snap.board.started_at)),
    };
    let limit = snap.board.interval.max(Duration::from_secs(1)) * HEALTH_MISSED_ROUNDS;
    Health {
        status: if age < limit { "ok" } else { "stale" },
        age_s: age.as_secs_f64(),
        limit_s: limit.as_secs_f64(),
        last_round: last,
    }
}

mod duration_secs {
    use std::time::Duration;

    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names() {
        assert_eq!(UpstreamView::Off.state_name(), "off");
        assert_eq!(
            UpstreamView::Unreachable {
                server: "h:1".into(),
                since: Timestamp(0),
                error: "x".into(),
                retry_at: Timestamp(0)
            }
            .state_name(),
            "unreachable"
        );
    }

    #[test]
    fn health_follows_the_monotonic_clock_when_the_wall_clock_is_set() {
        // Booted without a real-time clock: the wall clock reads 1970 and
        // jumps to 2026 at the first NTP sync.
        let boot = Timestamp(60_000);
        let mono = |s| Mono(Duration::from_secs(s));
        let mut snap = Snapshot {
            board: BoardInfo {
                started_at: boot,
                started_mono: Some(mono(0)),
                interval: Duration::from_secs(60),
                ..BoardInfo::default()
            },
            ..Snapshot::default()
        };
        let synced = Timestamp(1_795_608_000_000);
        assert!(
            health(&snap, synced, mono(10)).ok(),
            "a forward jump is not a stall"
        );
        snap.last_round = Some(RoundInfo {
            round: RoundId(1),
            started: synced,
            finished: synced.add(Duration::from_secs(5)),
            duration: Duration::from_secs(5),
            finished_mono: Some(mono(15)),
        });
        // Set back an hour: still judged by the time that really passed.
        let back = synced.sub(Duration::from_secs(3600));
        assert!(health(&snap, back, mono(100)).ok());
        let stuck = health(&snap, back, mono(15 + 180));
        assert!(
            !stuck.ok(),
            "a stuck loop is seen whatever the wall clock says"
        );
        assert_eq!(stuck.age_s, 180.0);
    }

    #[test]
    fn health_allows_three_intervals() {
        let start = Timestamp(1_000_000);
        let finished = start.add(Duration::from_secs(65));
        let mut snap = Snapshot {
            board: BoardInfo {
                started_at: start,
                interval: Duration::from_secs(60),
                ..BoardInfo::default()
            },
            last_round: Some(RoundInfo {
                round: RoundId(1),
                started: start,
                finished,
                duration: Duration::from_secs(5),
                finished_mono: None,
            }),
            ..Snapshot::default()
        };
        assert!(health(
            &snap,
            finished.add(Duration::from_secs(179)),
            Mono::default()
        )
        .ok());
        let stale = health(
            &snap,
            finished.add(Duration::from_secs(180)),
            Mono::default(),
        );
        assert!(!stale.ok());
        assert_eq!(stale.limit_s, 180.0);

        // Before the first round the clock runs from the start.
        snap.last_round = None;
        assert!(health(&snap, start.add(Duration::from_secs(10)), Mono::default()).ok());
        assert!(!health(&snap, start.add(Duration::from_secs(181)), Mono::default()).ok());

        // A zero interval still leaves three seconds.
        snap.board.interval = Duration::ZERO;
        assert!(health(&snap, start.add(Duration::from_secs(2)), Mono::default()).ok());
    }
}
