//! The monitor's memory between rounds, and what a round changes in it.
//!
//! Pure: the probe loop hands in what a round observed (with the times and
//! the routing table) and gets back the [`RoundRecord`] to store; readers
//! get a [`Snapshot`]. Nothing here touches a socket, a file or the clock.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use crate::clock::Timestamp;
use crate::probe::{self, Gateway, Hop, Path, PingOutcome, RouteTable, Status};
use crate::store::{
    EventKind, EventRecord, ResultRecord, RoundId, RoundRecord, StoreStats, TraceRecord,
};
use crate::targets::{Target, TargetList};

use super::cause::{self, Evidence};
use super::schedule;
use super::snapshot::{
    BoardGateway, BoardInfo, LedPattern, LedView, RejectedSheet, RoundInfo, SheetView, Snapshot,
    TargetView, UpstreamView,
};
use super::status::{StatusTracker, Thresholds};

/// How many recent rounds the sparkline shows.
pub const SPARKLINE_ROUNDS: usize = 30;

/// One target's state.
#[derive(Debug, Clone)]
struct TargetState {
    target: Target,
    key: String,
    tracker: StatusTracker,
    ip: Option<IpAddr>,
    last: Option<ResultRecord>,
    path: Option<PathState>,
    recent_rtt: VecDeque<Option<f64>>,
    uptime_24h: Option<f64>,
    cause: Option<String>,
}

/// The latest trace of a target.
#[derive(Debug, Clone)]
struct PathState {
    hops: Vec<Hop>,
    reached: bool,
    ts: Timestamp,
    /// A router's "unreachable" answer, in words.
    unreachable: Option<String>,
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
}

/// What the probe loop needs to probe one target this round.
#[derive(Debug, Clone)]
pub struct ProbeJob {
    pub key: String,
    pub target: Target,
    /// The target's smoothing state, to decide whether this round's
    /// verdict changes its status (and so needs a trace at once).
    pub tracker: StatusTracker,
    /// A periodic trace is due.
    pub trace_due: bool,
}

/// How a target's trace went this round.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceOutcome {
    Path(Path),
    /// The trace could not run; the message says why.
    Failed(String),
}

/// What probing one target found in one round.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub key: String,
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
    index: HashMap<String, usize>,
    gateways: Vec<GatewayState>,
    next_round: RoundId,
    last_round: Option<RoundInfo>,
    sheet: SheetView,
    thresholds: Thresholds,
    trace_every: std::time::Duration,
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
        let mut old: HashMap<String, TargetState> = self
            .targets
            .drain(..)
            .map(|t| (t.key.clone(), t))
            .collect();
        let before = old.len();
        for target in &list.targets {
            let key = target.addr.key();
            let state = match old.remove(&key) {
                Some(mut s) => {
                    s.target = target.clone();
                    s
                }
                None => TargetState {
                    target: target.clone(),
                    key,
                    tracker: StatusTracker::default(),
                    ip: match target.addr {
                        crate::targets::TargetAddr::Ip(ip) => Some(ip),
                        crate::targets::TargetAddr::Host(_) => None,
                    },
                    last: None,
                    path: None,
                    recent_rtt: VecDeque::new(),
                    uptime_24h: None,
                    cause: None,
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
            detail: format!(
                "loaded {} targets from {} ({} kept, {} removed, {} rows with problems)",
                list.targets.len(),
                list.file,
                kept,
                old.len(),
                list.problems.len()
            ),
        }
    }

    /// A sheet that could not replace the running list: remember why, so
    /// the dashboard shows it until a good sheet arrives.
    pub fn reject_sheet(
        &mut self,
        source: &str,
        problems: Vec<String>,
        now: Timestamp,
    ) -> EventRecord {
        let first = problems.first().cloned().unwrap_or_default();
        self.sheet.rejected = Some(RejectedSheet {
            source: source.to_string(),
            at: now,
            problems,
        });
        EventRecord {
            target: None,
            ts: now,
            kind: EventKind::Targets,
            from: self.sheet.source.clone(),
            to: None,
            detail: format!(
                "{source} was not loaded; still monitoring the previous list ({} targets): {first}",
                self.targets.len()
            ),
        }
    }

    /// Bring back what the store remembers after a restart: the latest
    /// result and trace of each target still in the sheet, and the recent
    /// RTTs. The reported status resumes without counting as a change.
    pub fn restore(
        &mut self,
        results: Vec<ResultRecord>,
        traces: Vec<TraceRecord>,
        recent_rtt: HashMap<String, Vec<Option<f64>>>,
    ) {
        for r in results {
            if let Some(&i) = self.index.get(&r.target) {
                let t = &mut self.targets[i];
                t.tracker = StatusTracker::resume(r.reported, None);
                t.last = Some(r);
            }
        }
        for tr in traces {
            if let Some(&i) = self.index.get(&tr.target) {
                self.targets[i].path = Some(PathState {
                    hops: tr.hops,
                    reached: tr.reached,
                    ts: tr.ts,
                    unreachable: None,
                });
            }
        }
        for (key, rtts) in recent_rtt {
            if let Some(&i) = self.index.get(&key) {
                let skip = rtts.len().saturating_sub(SPARKLINE_ROUNDS);
                self.targets[i].recent_rtt = rtts.into_iter().skip(skip).collect();
            }
        }
    }

    /// Set the 24 h uptime of every target (from the store's rollups).
    pub fn set_uptimes(&mut self, uptimes: &HashMap<String, f64>) {
        for t in &mut self.targets {
            t.uptime_24h = uptimes.get(&t.key).copied();
        }
    }

    /// The board's own gateways to watch this round (from the default
    /// routes); a gateway that is no longer a default route is dropped.
    pub fn set_board_gateways(&mut self, addrs: &[IpAddr]) {
        let mut next = Vec::with_capacity(addrs.len());
        for &addr in addrs {
            let kept = self.gateways.iter().find(|g| g.addr == addr).copied();
            next.push(kept.unwrap_or(GatewayState {
                addr,
                tracker: StatusTracker::default(),
            }));
        }
        self.gateways = next;
    }

    /// The board's gateways being watched.
    pub fn board_gateways(&self) -> Vec<IpAddr> {
        self.gateways.iter().map(|g| g.addr).collect()
    }

    /// What to probe this round.
    pub fn jobs(&self, now: Timestamp) -> Vec<ProbeJob> {
        self.targets
            .iter()
            .map(|t| ProbeJob {
                key: t.key.clone(),
                target: t.target.clone(),
                tracker: t.tracker,
                trace_due: schedule::trace_due(t.path.as_ref().map(|p| p.ts), now, self.trace_every),
            })
            .collect()
    }

    /// The smoothing thresholds.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Take a finished round: update every target and gateway, and return
    /// what to store. Observations of targets that were removed meanwhile
    /// are ignored.
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
            events: Vec::new(),
        };

        for (addr, ping) in gateway_pings {
            let Some(g) = self.gateways.iter_mut().find(|g| g.addr == *addr) else {
                continue;
            };
            let was_down = g.down();
            let change = g.tracker.observe(ping.status, self.thresholds, finished);
            if change.is_some() && g.down() != was_down {
                record.events.push(EventRecord {
                    target: None,
                    ts: finished,
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
        let down_gateways: Vec<IpAddr> = self
            .gateways
            .iter()
            .filter(|g| g.down())
            .map(|g| g.addr)
            .collect();

        for obs in observations {
            let Some(&i) = self.index.get(&obs.key) else {
                continue;
            };
            let thresholds = self.thresholds;
            let t = &mut self.targets[i];
            let ip = obs.ip.as_ref().ok().copied();
            let gateway = ip.and_then(|ip| routes.gateway_for(ip));
            let observed = if ip.is_some() {
                obs.ping.status
            } else {
                Status::NotWorking
            };
            let previous = t.tracker.reported;
            let change = t.tracker.observe(observed, thresholds, obs.ts);
            t.ip = ip.or(t.ip);

            if let Some(trace) = obs.trace {
                match trace {
                    TraceOutcome::Path(path) => {
                        let unreachable = path.unreachable_code.map(|code| {
                            let who = path
                                .last_answering()
                                .and_then(|h| h.addr)
                                .map_or_else(|| "a router".to_string(), |a| a.to_string());
                            let reason = ip.map_or("unreachable", |ip| {
                                probe::unreachable_reason(ip, code)
                            });
                            format!("{who} reports the destination unreachable ({reason})")
                        });
                        if let Some(old) = &t.path {
                            if cause::path_changed(&old.hops, old.reached, &path.hops, path.reached)
                            {
                                record.events.push(EventRecord {
                                    target: Some(t.key.clone()),
                                    ts: obs.ts,
                                    kind: EventKind::Path,
                                    from: Some(path_text(&old.hops, old.reached)),
                                    to: Some(path_text(&path.hops, path.reached)),
                                    detail: format!(
                                        "the path changed: was {}, now {}",
                                        path_text(&old.hops, old.reached),
                                        path_text(&path.hops, path.reached)
                                    ),
                                });
                            }
                        }
                        record.traces.push(TraceRecord {
                            target: t.key.clone(),
                            round,
                            ts: obs.ts,
                            hops: path.hops.clone(),
                            reached: path.reached,
                        });
                        t.path = Some(PathState {
                            hops: path.hops,
                            reached: path.reached,
                            ts: obs.ts,
                            unreachable,
                        });
                    }
                    TraceOutcome::Failed(_) => {}
                }
            }

            let rtt_avg = obs.ping.rtt.map(|r| r.avg);
            t.recent_rtt.push_back(rtt_avg);
            while t.recent_rtt.len() > SPARKLINE_ROUNDS {
                t.recent_rtt.pop_front();
            }

            let reported = t.tracker.reported.unwrap_or(observed);
            t.cause = (reported == Status::NotWorking).then(|| {
                let board_gateway_down =
                    matches!(gateway, Some(Gateway::Via(g)) if down_gateways.contains(&g));
                cause::not_working_cause(
                    ip,
                    &Evidence {
                        gateway,
                        board_gateway_down,
                        hops: t.path.as_ref().map(|p| p.hops.as_slice()),
                        unreachable: t.path.as_ref().and_then(|p| p.unreachable.as_deref()),
                        resolve_error: obs.ip.as_ref().err().map(String::as_str),
                    },
                )
            });

            if let (Some(change), Some(from)) = (change, previous) {
                let detail = match &t.cause {
                    Some(c) => format!("{} -> {}: {c}", from.label(), change.to.label()),
                    None => format!("{} -> {}", from.label(), change.to.label()),
                };
                record.events.push(EventRecord {
                    target: Some(t.key.clone()),
                    ts: obs.ts,
                    kind: EventKind::Status,
                    from: Some(status_name(from).into()),
                    to: Some(status_name(change.to).into()),
                    detail,
                });
            }

            let result = ResultRecord {
                target: t.key.clone(),
                round,
                ts: obs.ts,
                name: t.target.name.clone(),
                group: t.target.group.clone(),
                status: observed,
                reported,
                sent: obs.ping.sent,
                received: obs.ping.received,
                loss: obs.ping.loss(),
                rtt: obs.ping.rtt,
                gateway,
            };
            t.last = Some(result.clone());
            record.results.push(result);
        }

        self.last_round = Some(RoundInfo {
            round,
            started,
            finished,
            duration: finished.since(started),
        });
        record
    }

    /// The state as the dashboard shows it.
    pub fn snapshot(
        &self,
        board: BoardInfo,
        store: StoreStats,
        warnings: Vec<String>,
    ) -> Snapshot {
        let targets = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let last = t.last.as_ref();
                TargetView {
                    sno: i + 1,
                    key: t.key.clone(),
                    addr: t.target.addr.to_string(),
                    ip: t.ip,
                    name: t.target.name.clone(),
                    group: t.target.group.clone(),
                    notes: t.target.notes.clone(),
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
                    recent_rtt: t.recent_rtt.iter().copied().collect(),
                    cause: t.cause.clone(),
                }
            })
            .collect();
        let board_gateways = self
            .gateways
            .iter()
            .map(|g| BoardGateway {
                addr: g.addr,
                up: g.tracker.reported.map(|s| s != Status::NotWorking),
            })
            .collect();
        let mut snap = Snapshot {
            board,
            last_round: self.last_round,
            targets,
            sheet: self.sheet.clone(),
            board_gateways,
            store,
            upstream: UpstreamView::Off,
            leds: LedView::default(),
            warnings,
        };
        snap.leds = leds_for(&snap, self.gateways.iter().any(GatewayState::down));
        snap
    }
}

/// The LEDs' patterns for a state: DESIGN.md's table, without upstream.
fn leds_for(snap: &Snapshot, board_gateway_down: bool) -> LedView {
    if snap.last_round.is_none() {
        return LedView {
            green: LedPattern::Chase,
            red: LedPattern::Chase,
            amber: LedPattern::Chase,
        };
    }
    let counts = snap.counts();
    LedView {
        green: if counts.not_working == 0 {
            LedPattern::Heartbeat
        } else {
            LedPattern::Off
        },
        red: if board_gateway_down {
            LedPattern::FastBlink
        } else if counts.not_working > 0 {
            LedPattern::On
        } else {
            LedPattern::Off
        },
        amber: LedPattern::Off,
    }
}

impl MonitorState {
    fn reindex(&mut self) {
        self.index = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.key.clone(), i))
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

/// The name stored for a status: `working`, `degraded`, `not_working`.
pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Working => "working",
        Status::Degraded => "degraded",
        Status::NotWorking => "not_working",
    }
}

fn path_text(hops: &[Hop], reached: bool) -> String {
    let path = cause::describe_path(hops);
    if reached {
        path
    } else {
        format!("{path} (unreachable)")
    }
}
