//! What one round's observation of one target changes in its state: the
//! reported status, the path (merged with what earlier traces saw, and a
//! path event when a router changed), the sparkline, the cause, a status
//! event, and the result to store. Pure;
//! [`MonitorState::apply_round`](super::MonitorState::apply_round) calls
//! it once per target, after the board's own gateways.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::probe::{self, Gateway, Hop, Path, RouteTable, Status};
use crate::store::{EventKind, EventRecord, ResultRecord, RoundId, RoundRecord, TraceRecord};

use super::super::cause::{self, Evidence};
use super::super::paths;
use super::super::status::Thresholds;
use super::{LastResult, Observation, PathState, TargetState, TraceOutcome};

/// What a round's observations are judged with.
pub(super) struct RoundContext<'a> {
    pub round: RoundId,
    pub thresholds: Thresholds,
    pub trace_every: Duration,
    pub routes: &'a RouteTable,
    /// Whether each of the board's own gateways answers (`None`: not
    /// known yet), after this round's pings.
    pub board_gateways: &'a HashMap<IpAddr, Option<bool>>,
}

impl TargetState {
    /// Take this round's observation of the target; its events, trace and
    /// result go into `record`.
    pub(super) fn observe(
        &mut self,
        obs: Observation,
        ctx: &RoundContext<'_>,
        record: &mut RoundRecord,
    ) {
        let ip = obs.ip.as_ref().ok().copied();
        let gateway = ip.and_then(|ip| ctx.routes.gateway_for(ip));
        let observed = if ip.is_some() {
            obs.ping.status
        } else {
            Status::NotWorking
        };
        let previous = self.tracker.reported;
        let change = self.tracker.observe(observed, ctx.thresholds, obs.ts);
        self.ip = ip.or(self.ip);
        match obs.trace {
            Some(TraceOutcome::Path(path)) => {
                self.take_path(path, ip, gateway, obs.ts, ctx, record);
            }
            Some(TraceOutcome::Failed(why)) => self.trace_error = Some(why),
            Some(TraceOutcome::Deferred) => self.trace_pending = true,
            None => {}
        }
        self.recent_rtt.push(obs.ping.rtt.map(|r| r.avg as f32));

        let reported = self.tracker.reported.unwrap_or(observed);
        let resolve_error = obs.ip.as_ref().err().map(String::as_str);
        self.cause = (reported == Status::NotWorking)
            .then(|| self.not_working_cause(ip, gateway, resolve_error, ctx));
        if let (Some(change), Some(from)) = (change, previous) {
            record
                .events
                .push(self.status_event(from, change.to, obs.ts));
        }

        let result = ResultRecord {
            target: self.labels.key.to_string(),
            round: ctx.round,
            ts: obs.ts,
            name: self.labels.name.as_deref().map(str::to_owned),
            group: self.labels.group.as_deref().map(str::to_owned),
            status: observed,
            reported,
            sent: obs.ping.sent,
            received: obs.ping.received,
            loss: obs.ping.loss(),
            rtt: obs.ping.rtt,
            gateway,
        };
        self.last = Some(LastResult::from(&result));
        record.results.push(result);
    }

    /// A new trace: merged with what earlier ones saw, stored, and a path
    /// event when a router changed.
    fn take_path(
        &mut self,
        path: Path,
        ip: Option<IpAddr>,
        gateway: Option<Gateway>,
        ts: Timestamp,
        ctx: &RoundContext<'_>,
        record: &mut RoundRecord,
    ) {
        let unreachable = probe::unreachable_note(&path, ip);
        let hops = match &self.path {
            Some(old) => paths::merge(
                ip,
                &old.hops,
                old.ts,
                &path,
                ts,
                paths::keep_for(ctx.trace_every),
            ),
            None => path.hops.clone(),
        };
        record.events.extend(self.path_event(ip, &path, &hops, ts));
        record.traces.push(TraceRecord {
            target: self.labels.key.to_string(),
            round: ctx.round,
            ts,
            hops: hops.clone(),
            reached: path.reached,
        });
        // Nothing at all answered a target behind a router: the router's
        // ration (spent by the pings to an unrouted address, say) is the
        // likely reason.
        let nothing = path.hops.iter().all(|h| h.addr.is_none());
        let unsettled = path.unsettled() || (nothing && matches!(gateway, Some(Gateway::Via(_))));
        self.path = Some(PathState {
            hops: hops.into(),
            reached: path.reached,
            ts,
            unreachable,
            unsettled,
        });
        self.trace_pending = self.retries.after_trace(unsettled, ts, ctx.trace_every);
        self.trace_error = None;
    }

    /// The event of a path that changed, if it did: the old path against
    /// the new trace, which shows as `hops`.
    fn path_event(
        &self,
        ip: Option<IpAddr>,
        path: &Path,
        hops: &[Hop],
        ts: Timestamp,
    ) -> Option<EventRecord> {
        let old = self.path.as_ref()?;
        if !cause::path_changed(ip, &old.hops, old.reached, &path.hops, path.reached) {
            return None;
        }
        let was = path_text(&old.hops, old.reached);
        let now = path_text(hops, path.reached);
        Some(EventRecord {
            target: Some(self.labels.key.to_string()),
            ts,
            kind: EventKind::Path,
            detail: format!("the path changed: was {was}, now {now}"),
            from: Some(was),
            to: Some(now),
        })
    }

    /// Why the target is Not Working, from all that is known of it.
    fn not_working_cause(
        &self,
        ip: Option<IpAddr>,
        gateway: Option<Gateway>,
        resolve_error: Option<&str>,
        ctx: &RoundContext<'_>,
    ) -> String {
        let board_gateway_up = match gateway {
            Some(Gateway::Via(g)) => ctx.board_gateways.get(&g).copied().flatten(),
            _ => None,
        };
        let path = self.path.as_ref();
        cause::not_working_cause(
            ip,
            &Evidence {
                gateway,
                board_gateway_up,
                hops: path.map(|p| &*p.hops),
                unreachable: path.and_then(|p| p.unreachable.as_deref()),
                unsettled: path.is_some_and(|p| p.unsettled),
                resolve_error,
                trace_error: self.trace_error.as_deref(),
            },
        )
    }

    /// The event of a reported status that changed, with the cause.
    fn status_event(&self, from: Status, to: Status, ts: Timestamp) -> EventRecord {
        let detail = match &self.cause {
            Some(c) => format!("{} -> {}: {c}", from.label(), to.label()),
            None => format!("{} -> {}", from.label(), to.label()),
        };
        EventRecord {
            target: Some(self.labels.key.to_string()),
            ts,
            kind: EventKind::Status,
            from: Some(from.as_str().into()),
            to: Some(to.as_str().into()),
            detail,
        }
    }
}

/// A path and whether it reached, for an event.
fn path_text(hops: &[Hop], reached: bool) -> String {
    let path = cause::describe_path(hops);
    if reached {
        path
    } else {
        format!("{path} (unreachable)")
    }
}
