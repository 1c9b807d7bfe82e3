//! The monitor's memory between rounds, and what a round changes in it.
//!
//! Pure: the probe loop hands in what a round observed (with the times and
//! the routing table) and gets back the [`RoundRecord`] to store; readers
//! get a [`Snapshot`]. Nothing here touches a socket, a file or the clock.
//! Here: the targets and the board's own gateways, which targets to probe
//! and trace, and a round's gateway pings; what an observation changes in
//! one target is in `observe`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Mono, Timestamp};
use crate::probe::{Gateway, Hop, Path, PingOutcome, RouteTable, RttSummary, Status};
use crate::store::{
    EventKind, EventRecord, ResultRecord, RoundId, RoundRecord, StoreStats, TraceRecord,
};
use crate::targets::{Target, TargetAddr, TargetList};

use super::paths::Retries;
use super::schedule;
use super::snapshot::{
    BoardGateway, BoardInfo, RejectedSheet, RoundInfo, SheetView, Snapshot, TargetView,
    UpstreamView,
};
use super::sparkline::Sparkline;
use super::status::{StatusTracker, Thresholds};

/// One target's state.
#[derive(Debug, Clone)]
struct TargetState {
    addr: TargetAddr,
    labels: Labels,
    tracker: StatusTracker,
    ip: Option<IpAddr>,
    last: Option<LastResult>,
    path: Option<PathState>,
    recent_rtt: Sparkline,
    uptime_24h: Option<f64>,
    cause: Option<String>,
    /// A trace was wanted but the round's trace budget was spent, or a
    /// router's ICMP ration held the last one back: trace it next round.
    trace_pending: bool,
    /// Traces that rations held back, asked again.
    retries: Retries,
    /// Why the last trace could not run, until one does.
    trace_error: Option<String>,
}

/// A target's words, shared with every snapshot (copied, they were four
/// strings a target a snapshot).
#[derive(Debug, Clone)]
struct Labels {
    /// The store key: canonical IP or lower-case host name.
    key: Arc<str>,
    /// The address as the sheet gives it.
    addr: Arc<str>,
    name: Option<Arc<str>>,
    group: Option<Arc<str>>,
    notes: Option<Arc<str>>,
}

impl Labels {
    fn of(target: &Target) -> Labels {
        let key: Arc<str> = target.addr.key().into();
        let addr = target.addr.to_string();
        // An IP's key is the address itself: one string for both.
        let addr = if *addr == *key {
            Arc::clone(&key)
        } else {
            addr.into()
        };
        Labels {
            key,
            addr,
            name: target.name.as_deref().map(Arc::from),
            group: target.group.as_deref().map(Arc::from),
            notes: target.notes.as_deref().map(Arc::from),
        }
    }
}

/// The figures of a target's latest result, without the labels that
/// [`ResultRecord`] repeats from the target (three strings a target).
#[derive(Debug, Clone, Copy)]
struct LastResult {
    ts: Timestamp,
    sent: u32,
    received: u32,
    loss: f64,
    rtt: Option<RttSummary>,
    gateway: Option<Gateway>,
}

impl From<&ResultRecord> for LastResult {
    fn from(r: &ResultRecord) -> LastResult {
        LastResult {
            ts: r.ts,
            sent: r.sent,
            received: r.received,
            loss: r.loss,
            rtt: r.rtt,
            gateway: r.gateway,
        }
    }
}

/// The latest trace of a target.
#[derive(Debug, Clone)]
struct PathState {
    /// Its hops, with those it did not get kept from earlier traces (see
    /// [`paths::merge`]).
    hops: Arc<[Hop]>,
    reached: bool,
    ts: Timestamp,
    /// A router's "unreachable" answer, in words.
    unreachable: Option<String>,
    /// A router's ICMP ration kept a hop from being answered.
    unsettled: bool,
}

/// One of the board's own default gateways.
#[derive(Debug, Clone, Copy)]
struct GatewayState {
    addr: IpAddr,
    tracker: StatusTracker,
}

impl GatewayState {
    fn down(&self) -> bool {
        self.tracker.reported == Some(Status::NotWorking)
    }

    /// Whether it answers: `None` until it was pinged.
    fn up(&self) -> Option<bool> {
        self.tracker.reported.map(|s| s != Status::NotWorking)
    }
}

/// What the probe loop needs to probe one target this round.
#[derive(Debug, Clone)]
pub struct ProbeJob {
    pub key: Arc<str>,
    pub addr: TargetAddr,
    /// The target's smoothing state, to decide whether this round's
    /// verdict changes its status (and so needs a trace at once).
    pub tracker: StatusTracker,
    /// A trace is due: periodic, or deferred from an earlier round.
    pub trace_due: bool,
    /// Its route goes through a board gateway that is down: the cause is
    /// known, so a status change is not traced at once (a dead path costs
    /// every TTL, for every target behind that gateway).
    pub behind_down_gateway: bool,
}

/// How a target's trace went this round.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceOutcome {
    Path(Path),
    /// The trace could not run; the message says why.
    Failed(String),
    /// The round's trace budget was spent; traced next round.
    Deferred,
}

/// What probing one target found in one round.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub key: Arc<str>,
    /// When the ping finished.
    pub ts: Timestamp,
    /// The address probed, or why a host name gave none.
    pub ip: Result<IpAddr, String>,
    pub ping: PingOutcome,
    /// `None` when no trace was run this round.
    pub trace: Option<TraceOutcome>,
}

/// The monitor's state.
#[derive(Debug, Clone)]
pub struct MonitorState {
    targets: Vec<TargetState>,
    index: HashMap<Arc<str>, usize>,
    gateways: Vec<GatewayState>,
    next_round: RoundId,
    last_round: Option<RoundInfo>,
    sheet: SheetView,
    thresholds: Thresholds,
    trace_every: std::time::Duration,
    /// Events noticed between rounds, stored with the next round.
    pending_events: Vec<EventRecord>,
}

impl MonitorState {
    /// An empty state; rounds are numbered on from `last_round`.
    pub fn new(
        thresholds: Thresholds,
        trace_every: std::time::Duration,
        last_round: Option<RoundId>,
    ) -> MonitorState {
        MonitorState {
            targets: Vec::new(),
            index: HashMap::new(),
            gateways: Vec::new(),
            next_round: RoundId(last_round.map_or(1, |r| r.0 + 1)),
            last_round: None,
            sheet: SheetView::default(),
            thresholds,
            trace_every,
            pending_events: Vec::new(),
        }
    }

    /// How many targets are monitored.
    pub fn target_count(&self) -> usize {
        self.targets.len()
    }

    /// Monitor the targets of `list` from now on. Targets that stay keep
    /// their state; new ones start fresh; removed ones are forgotten here
    /// (their history stays in the store).
    pub fn replace_targets(&mut self, list: &TargetList, now: Timestamp) -> EventRecord {
        let mut old: HashMap<Arc<str>, TargetState> = self
            .targets
            .drain(..)
            .map(|t| (Arc::clone(&t.labels.key), t))
            .collect();
        let before = old.len();
        // Exactly as many as the list: grown by doubling, 10,000 targets
        // would hold room for 16,384.
        self.targets = Vec::with_capacity(list.targets.len());
        for target in &list.targets {
            let labels = Labels::of(target);
            let state = match old.remove(&labels.key) {
                Some(mut s) => {
                    s.addr = target.addr.clone();
                    s.labels = labels;
                    s
                }
                None => TargetState {
                    addr: target.addr.clone(),
                    labels,
                    tracker: StatusTracker::default(),
                    ip: match target.addr {
                        TargetAddr::Ip(ip) => Some(ip),
                        TargetAddr::Host(_) => None,
                    },
                    last: None,
                    path: None,
                    recent_rtt: Sparkline::default(),
                    uptime_24h: None,
                    cause: None,
                    trace_pending: false,
                    retries: Retries::default(),
                    trace_error: None,
                },
            };
            self.targets.push(state);
        }
        self.reindex();
        self.sheet = SheetView {
            source: Some(list.file.clone()),
            loaded_at: Some(now),
            problems: list.problems.iter().map(|p| p.to_string()).collect(),
            rejected: None,
        };
        let kept = before - old.len();
        EventRecord {
            target: None,
            ts: now,
            kind: EventKind::Targets,
            from: None,
            to: Some(list.file.clone()),
            detail: if before == 0 {
                format!(
                    "loaded {} targets from {} ({} rows with problems)",
                    list.targets.len(),
                    list.file,
                    list.problems.len()
                )
            } else {
                format!(
                    "reloaded {} targets from {} ({} kept, {} removed, {} rows with problems)",
                    list.targets.len(),
                    list.file,
                    kept,
                    old.len(),
                    list.problems.len()
                )
            },
        }
    }

    /// A sheet that could not replace the running list: remember why, so
    /// the dashboard shows it until a good sheet arrives.
    pub fn reject_sheet(
        &mut self,
        source: &str,
        problems: Vec<String>,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> EventRecord {
        let mut first = problems.first().cloned().unwrap_or_default();
        if let Some(at) = retry_at {
            first = format!("{first}; tried again in {} s", at.since(now).as_secs());
        }
        let detail = if self.sheet.source.is_none() && self.targets.is_empty() {
            format!("no targets yet: {first}")
        } else {
            format!(
                "{source} was not loaded; still monitoring the previous list ({} targets): {first}",
                self.targets.len()
            )
        };
        self.sheet.rejected = Some(RejectedSheet {
            source: source.to_string(),
            at: now,
            problems,
            retry_at,
        });
        EventRecord {
            target: None,
            ts: now,
            kind: EventKind::Targets,
            from: self.sheet.source.clone(),
            to: None,
            detail,
        }
    }

    /// Whether some target has no state yet that the store may remember
    /// (after a start, or a reload that brought targets back).
    pub fn needs_restore(&self) -> bool {
        self.targets.iter().any(|t| t.last.is_none())
    }

    /// Bring back what the store remembers: the latest result and trace
    /// and the recent RTTs of each target that has no state of its own yet.
    /// The reported status resumes without counting as a change.
    pub fn restore(
        &mut self,
        results: Vec<ResultRecord>,
        traces: Vec<TraceRecord>,
        recent_rtt: HashMap<String, Vec<Option<f64>>>,
    ) {
        let blank: Vec<bool> = self.targets.iter().map(|t| t.last.is_none()).collect();
        let index = |key: &str| self.index.get(key).copied().filter(|&i| blank[i]);
        for r in results {
            if let Some(i) = index(&r.target) {
                let t = &mut self.targets[i];
                t.tracker = StatusTracker::resume(r.reported, None);
                t.last = Some(LastResult::from(&r));
            }
        }
        for tr in traces {
            if let Some(i) = index(&tr.target) {
                self.targets[i].path = Some(PathState {
                    hops: tr.hops.into(),
                    reached: tr.reached,
                    ts: tr.ts,
                    unreachable: None,
                    unsettled: false,
                });
            }
        }
        for (key, rtts) in recent_rtt {
            if let Some(i) = index(&key) {
                self.targets[i].recent_rtt = rtts
                    .into_iter()
                    .map(|rtt| rtt.map(|ms| ms as f32))
                    .collect();
            }
        }
    }

    /// Set the 24 h uptime of every target (from the store's rollups).
    pub fn set_uptimes(&mut self, uptimes: &HashMap<String, f64>) {
        for t in &mut self.targets {
            t.uptime_24h = uptimes.get(&*t.labels.key).copied();
        }
    }

    /// The board's own gateways worth watching: the routers of the default
    /// routes that some target is reached through. A board whose targets
    /// are all on-link (or loopback) pings no gateway at all.
    pub fn gateways_in_use(&self, routes: &RouteTable) -> Vec<IpAddr> {
        let defaults = routes.default_gateways();
        defaults
            .into_iter()
            .filter(|gw| {
                self.targets
                    .iter()
                    .any(|t| t.ip.and_then(|ip| routes.gateway_for(ip)) == Some(Gateway::Via(*gw)))
            })
            .collect()
    }

    /// The board's own gateways to watch this round; a gateway no longer
    /// in the list is forgotten. One whose default route is gone (lost
    /// uplink, DHCP lease ended) is an event: targets behind it now have
    /// no route; it goes into the next round's record.
    pub fn set_board_gateways(&mut self, addrs: &[IpAddr], routes: &RouteTable, now: Timestamp) {
        let defaults = routes.default_gateways();
        let lost: Vec<EventRecord> = self
            .gateways
            .iter()
            .filter(|g| !addrs.contains(&g.addr) && !defaults.contains(&g.addr))
            .map(|g| EventRecord {
                target: None,
                ts: now,
                kind: EventKind::Gateway,
                from: Some(updown(g.down()).into()),
                to: Some("no route".into()),
                detail: format!(
                    "the board's default route via {} is gone; targets behind it have no route",
                    g.addr
                ),
            })
            .collect();
        let mut next = Vec::with_capacity(addrs.len());
        for &addr in addrs {
            let kept = self.gateways.iter().find(|g| g.addr == addr).copied();
            next.push(kept.unwrap_or(GatewayState {
                addr,
                tracker: StatusTracker::default(),
            }));
        }
        self.gateways = next;
        self.pending_events.extend(lost);
    }

    /// The board's gateways being watched.
    pub fn board_gateways(&self) -> Vec<IpAddr> {
        self.gateways.iter().map(|g| g.addr).collect()
    }

    /// What to probe this round. At most `trace_quota` targets get a
    /// trace that is due (first the ones never traced, then the ones asked
    /// again, then the oldest), so a cycle's traces are spread over it;
    /// a status change is traced besides (see [`super::round`]). Behind a
    /// board gateway that is down, nothing is traced: it would only show
    /// the dead gateway again.
    pub fn jobs(&self, routes: &RouteTable, now: Timestamp, trace_quota: usize) -> Vec<ProbeJob> {
        let down: Vec<IpAddr> = self
            .gateways
            .iter()
            .filter(|g| g.down())
            .map(|g| g.addr)
            .collect();
        let behind_down: Vec<bool> = self
            .targets
            .iter()
            .map(|t| {
                matches!(
                    t.ip.and_then(|ip| routes.gateway_for(ip)),
                    Some(Gateway::Via(g)) if down.contains(&g)
                )
            })
            .collect();
        let mut due: Vec<(u8, Timestamp, usize)> = self
            .targets
            .iter()
            .enumerate()
            .filter(|(i, _)| !behind_down[*i])
            .filter_map(|(i, t)| {
                let last = t.path.as_ref().map(|p| p.ts);
                // Never traced first, unless its traces cannot run (a name
                // that does not resolve, no privilege, no route): last.
                let rank = match last {
                    None if t.ip.is_none() || t.trace_error.is_some() => 3,
                    None => 0,
                    Some(_) if t.trace_pending => 1,
                    Some(_) if schedule::trace_due(last, now, self.trace_every) => 2,
                    Some(_) => return None,
                };
                Some((rank, last.unwrap_or_default(), i))
            })
            .collect();
        due.sort_unstable();
        let mut trace_due = vec![false; self.targets.len()];
        for (_, _, i) in due.into_iter().take(trace_quota) {
            trace_due[i] = true;
        }
        self.targets
            .iter()
            .zip(trace_due.into_iter().zip(behind_down))
            .map(|(t, (trace_due, behind_down_gateway))| ProbeJob {
                key: Arc::clone(&t.labels.key),
                addr: t.addr.clone(),
                tracker: t.tracker,
                trace_due,
                behind_down_gateway,
            })
            .collect()
    }

    /// The smoothing thresholds.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Take a finished round: update every gateway, then every target
    /// (`observe`), and return what to store. Observations of targets
    /// that were removed meanwhile are ignored.
    pub fn apply_round(
        &mut self,
        observations: Vec<Observation>,
        gateway_pings: &[(IpAddr, PingOutcome)],
        routes: &RouteTable,
        started: Timestamp,
        finished: Timestamp,
    ) -> RoundRecord {
        let round = self.next_round;
        self.next_round = RoundId(round.0 + 1);
        let mut record = RoundRecord {
            round,
            started,
            finished,
            results: Vec::with_capacity(observations.len()),
            traces: Vec::new(),
            events: std::mem::take(&mut self.pending_events),
            ..RoundRecord::default()
        };
        self.observe_gateways(gateway_pings, finished, &mut record.events);
        let board_gateways: HashMap<IpAddr, Option<bool>> =
            self.gateways.iter().map(|g| (g.addr, g.up())).collect();
        let ctx = observe::RoundContext {
            round,
            thresholds: self.thresholds,
            trace_every: self.trace_every,
            routes,
            board_gateways: &board_gateways,
        };
        for obs in observations {
            if let Some(&i) = self.index.get(&obs.key) {
                self.targets[i].observe(obs, &ctx, &mut record);
            }
        }
        self.last_round = Some(RoundInfo {
            round,
            started,
            finished,
            duration: finished.since(started),
            finished_mono: None,
        });
        record
    }

    /// Take this round's pings of the board's own gateways; one that goes
    /// down or comes back is an event.
    fn observe_gateways(
        &mut self,
        pings: &[(IpAddr, PingOutcome)],
        now: Timestamp,
        events: &mut Vec<EventRecord>,
    ) {
        for (addr, ping) in pings {
            let Some(g) = self.gateways.iter_mut().find(|g| g.addr == *addr) else {
                continue;
            };
            let was_down = g.down();
            let change = g.tracker.observe(ping.status, self.thresholds, now);
            if change.is_some() && g.down() != was_down {
                events.push(EventRecord {
                    target: None,
                    ts: now,
                    kind: EventKind::Gateway,
                    from: Some(updown(was_down).into()),
                    to: Some(updown(g.down()).into()),
                    detail: if g.down() {
                        format!("the board's own gateway {addr} stopped answering; targets behind it are reported against it")
                    } else {
                        format!("the board's own gateway {addr} answers again")
                    },
                });
            }
        }
    }

    /// Replace the last round's duration with the one measured on the
    /// monotonic clock, and note when it finished there: the wall clock
    /// may have been set during the round.
    pub fn time_round(&mut self, took: Duration, finished: Mono) {
        if let Some(r) = &mut self.last_round {
            r.duration = took;
            r.finished_mono = Some(finished);
        }
    }

    /// The state as the dashboard shows it.
    pub fn snapshot(
        &self,
        board: BoardInfo,
        store: StoreStats,
        upstream: UpstreamView,
        warnings: Vec<String>,
    ) -> Snapshot {
        let mut snap = Snapshot {
            targets: Vec::with_capacity(self.targets.len()),
            ..Snapshot::default()
        };
        self.refresh_snapshot(&mut snap, board, store, upstream, warnings);
        snap
    }

    /// [`Self::snapshot`] written over an old one that nobody reads any
    /// more, into the memory its targets already hold: publishing then
    /// needs no second copy of every target beside the first (at 10,000
    /// targets, 4 MB at the monitor's highest moment of memory). Leaves
    /// `alerts` and `published` to the caller.
    pub fn refresh_snapshot(
        &self,
        snap: &mut Snapshot,
        board: BoardInfo,
        store: StoreStats,
        upstream: UpstreamView,
        warnings: Vec<String>,
    ) {
        snap.targets.clear();
        snap.targets
            .extend(self.targets.iter().enumerate().map(|(i, t)| {
                let last = t.last.as_ref();
                TargetView {
                    sno: i + 1,
                    key: Arc::clone(&t.labels.key),
                    addr: Arc::clone(&t.labels.addr),
                    ip: t.ip,
                    name: t.labels.name.clone(),
                    group: t.labels.group.clone(),
                    notes: t.labels.notes.clone(),
                    status: t.tracker.reported,
                    status_since: t.tracker.since,
                    sent: last.map_or(0, |r| r.sent),
                    received: last.map_or(0, |r| r.received),
                    loss: last.map(|r| r.loss),
                    rtt_ms: last.and_then(|r| r.rtt),
                    gateway: last.and_then(|r| r.gateway),
                    hops: t.path.as_ref().map(|p| p.hops.clone()).unwrap_or_default(),
                    reached: last.is_some_and(|r| r.received > 0)
                        || t.path.as_ref().is_some_and(|p| p.reached),
                    last_trace: t.path.as_ref().map(|p| p.ts),
                    last_updated: last.map(|r| r.ts),
                    uptime_24h: t.uptime_24h,
                    recent_rtt: t.recent_rtt,
                    cause: t.cause.clone(),
                }
            }));
        snap.board_gateways.clear();
        snap.board_gateways
            .extend(self.gateways.iter().map(|g| BoardGateway {
                addr: g.addr,
                up: g.up(),
            }));
        snap.board = board;
        snap.last_round = self.last_round;
        snap.sheet = self.sheet.clone();
        snap.store = store;
        snap.upstream = upstream;
        snap.warnings = warnings;
    }
}

impl MonitorState {
    fn reindex(&mut self) {
        self.index = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| (Arc::clone(&t.labels.key), i))
            .collect();
    }
}

fn updown(down: bool) -> &'static str {
    if down {
        "down"
    } else {
        "up"
    }
}

mod observe;
#[cfg(test)]
mod tests;
