//! Running one round: every target's probe starts at its offset within the
//! round, pings, and traces when a trace is due or its status is about to
//! change, within the round's trace budget. Probing one target is the
//! probe layer's [`ping_and_trace`]; the network sits behind its [`Probe`]
//! trait, so a round can be run against a fake network with tokio's clock
//! paused.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;

use crate::clock::Timestamp;
use crate::probe::{ping_and_trace, PingOutcome, Probe, Status, TraceWhen};
use crate::targets::TargetAddr;

use super::schedule;
use super::state::{Observation, ProbeJob, TraceOutcome};
use super::status::Thresholds;

/// How a round is run.
#[derive(Debug, Clone, Copy)]
pub struct RoundPlan {
    /// Starts are spread evenly over this.
    pub window: Duration,
    pub thresholds: Thresholds,
    /// At most this many traces this round; the rest wait for the next.
    pub trace_budget: usize,
}

/// Probe every job of a round; each starts at its offset in the window.
/// When `stop` turns true, jobs that have not started are skipped and the
/// ones in flight finish, so a shutdown still stores a (partial) round.
/// A job's probe exists only from its start to its end, so a round of ten
/// thousand targets holds the probes in flight, not ten thousand waiting.
/// Observations come back in job order.
pub async fn run_round<P: Probe>(
    probe: &Arc<P>,
    jobs: Vec<ProbeJob>,
    plan: RoundPlan,
    mut stop: watch::Receiver<bool>,
) -> Vec<Observation> {
    let count = jobs.len();
    let started = tokio::time::Instant::now();
    let start_of = |i: usize| started + schedule::start_offset(i, count, plan.window);
    let traces_left = AtomicUsize::new(plan.trace_budget);
    let mut waiting = jobs.into_iter().enumerate().peekable();
    let mut running = FuturesUnordered::new();
    let mut done = Vec::with_capacity(count);
    let mut stopped = false;
    loop {
        let now = tokio::time::Instant::now();
        while let Some((i, job)) = waiting.next_if(|(i, _)| !stopped && start_of(*i) <= now) {
            let traces_left = &traces_left;
            running.push(async move {
                (
                    i,
                    probe_one(&**probe, job, plan.thresholds, traces_left).await,
                )
            });
        }
        let next_start = waiting
            .peek()
            .filter(|_| !stopped)
            .map(|(i, _)| start_of(*i));
        if next_start.is_none() && running.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s), if next_start.is_some() => stopped = true,
            Some(finished) = running.next(), if !running.is_empty() => done.push(finished),
            _ = tokio::time::sleep_until(next_start.unwrap_or(now)), if next_start.is_some() => {}
        }
    }
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter()
        .map(|(_, observation)| observation)
        .collect()
}

/// Take one trace from the round's budget, if any is left.
fn take_trace(left: &AtomicUsize) -> bool {
    left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// Ping the board's own gateways, all at once.
pub async fn ping_gateways<P: Probe>(probe: &P, gateways: &[IpAddr]) -> Vec<(IpAddr, PingOutcome)> {
    join_all(
        gateways
            .iter()
            .map(|&g| async move { (g, probe.ping(g).await) }),
    )
    .await
}

async fn probe_one<P: Probe>(
    probe: &P,
    job: ProbeJob,
    thresholds: Thresholds,
    traces_left: &AtomicUsize,
) -> Observation {
    let ip = match &job.addr {
        TargetAddr::Ip(ip) => Ok(*ip),
        TargetAddr::Host(host) => probe.resolve(host).await,
    };
    let Ok(addr) = ip else {
        return Observation {
            key: job.key,
            ts: Timestamp::now(),
            ip,
            ping: PingOutcome {
                sent: 0,
                received: 0,
                rtt: None,
                status: crate::probe::Status::NotWorking,
                send_error: None,
            },
            trace: None,
        };
    };
    // A status about to change is traced at once, so the event can say
    // where the path stops (or that it is back) - unless the board's own
    // gateway is down, which already says it. A target first seen Working
    // needs no cause: its trace waits for its turn in the cycle.
    let mut deferred = false;
    let wanted = |ping: &PingOutcome| {
        let first_seen_working = job.tracker.reported.is_none() && ping.status == Status::Working;
        let changing = job.tracker.would_change(ping.status, thresholds)
            && !job.behind_down_gateway
            && !first_seen_working;
        if !(job.trace_due || changing) {
            return false;
        }
        deferred = !take_trace(traces_left);
        !deferred
    };
    let probed = ping_and_trace(probe, addr, TraceWhen::AfterPing(wanted)).await;
    let trace = match probed.trace {
        Some(Ok(path)) => Some(TraceOutcome::Path(path)),
        Some(Err(e)) => Some(TraceOutcome::Failed(e.to_string())),
        None if deferred => Some(TraceOutcome::Deferred),
        None => None,
    };
    Observation {
        key: job.key,
        ts: probed.pinged_at,
        ip,
        ping: probed.ping,
        trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::status::StatusTracker;
    use crate::monitor::testkit::FakeNet;
    use crate::probe::Status;

    const TH: Thresholds = Thresholds {
        down_after: 2,
        up_after: 1,
    };

    fn plan(window_s: u64, trace_budget: usize) -> RoundPlan {
        RoundPlan {
            window: Duration::from_secs(window_s),
            thresholds: TH,
            trace_budget,
        }
    }

    fn job(addr: &str, tracker: StatusTracker, trace_due: bool) -> ProbeJob {
        let addr = crate::targets::parse_address(addr).unwrap();
        ProbeJob {
            key: addr.key().into(),
            addr,
            tracker,
            trace_due,
            behind_down_gateway: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn starts_are_spread_over_the_window_and_traces_follow_changes() {
        let net = Arc::new(FakeNet::new(&["198.19.3.10", "198.19.3.11"]));
        let working = StatusTracker::resume(Status::Working, None);
        let jobs = vec![
            // Steady and not due: ping only.
            job("198.19.3.10", working, false),
            // Due: traced.
            job("198.19.3.11", working, true),
            // Silent, first bad round of two: no change yet, no trace.
            job("198.19.3.20", working, false),
            // Silent and never seen: its first status is a change, traced.
            job("198.19.3.21", StatusTracker::default(), false),
        ];
        let (_stop_tx, stop) = watch::channel(false);
        let obs = run_round(&net, jobs, plan(8, 100), stop).await;
        assert_eq!(obs.len(), 4);

        let calls = net.calls.lock().unwrap().clone();
        let pings: Vec<Duration> = calls
            .iter()
            .filter(|c| c.1 == "ping")
            .map(|c| c.0)
            .collect();
        assert_eq!(pings, [0, 2, 4, 6].map(Duration::from_secs).to_vec());
        let traced: Vec<String> = calls
            .iter()
            .filter(|c| c.1 == "trace")
            .map(|c| c.2.to_string())
            .collect();
        assert_eq!(traced, ["198.19.3.11", "198.19.3.21"]);
        // A trace comes after its ping, not alongside it.
        let (at, _, _) = calls.iter().find(|c| c.1 == "trace").unwrap();
        assert_eq!(*at, Duration::from_millis(2100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_skips_targets_not_yet_started() {
        let net = Arc::new(FakeNet::new(&["198.19.3.10"]));
        let jobs: Vec<ProbeJob> = (10..20)
            .map(|i| job(&format!("198.19.3.{i}"), StatusTracker::default(), false))
            .collect();
        let (stop_tx, stop) = watch::channel(false);
        let round = tokio::spawn({
            let net = Arc::clone(&net);
            async move { run_round(&net, jobs, plan(10, 100), stop).await }
        });
        tokio::time::sleep(Duration::from_millis(2500)).await;
        stop_tx.send(true).unwrap();
        let obs = round.await.unwrap();
        // Started at 0, 1 and 2 s; the other seven never did.
        assert_eq!(obs.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn traces_beyond_the_budget_wait_for_the_next_round() {
        let net = Arc::new(FakeNet::new(&[]));
        let mut jobs: Vec<ProbeJob> = (10..15)
            .map(|i| job(&format!("198.19.3.{i}"), StatusTracker::default(), false))
            .collect();
        // Behind a dead gateway: a change is not traced at all.
        jobs[4].behind_down_gateway = true;
        let (_tx, stop) = watch::channel(false);
        let obs = run_round(&net, jobs, plan(4, 2), stop).await;
        let kinds: Vec<&str> = obs
            .iter()
            .map(|o| match &o.trace {
                Some(TraceOutcome::Path(_)) => "traced",
                Some(TraceOutcome::Deferred) => "deferred",
                Some(TraceOutcome::Failed(_)) => "failed",
                None => "none",
            })
            .collect();
        assert_eq!(kinds, ["traced", "traced", "deferred", "deferred", "none"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_name_that_does_not_resolve_is_not_working_without_a_ping() {
        let net = Arc::new(FakeNet::new(&[]));
        let (_tx, stop) = watch::channel(false);
        let obs = run_round(
            &net,
            vec![job("printer.invalid", StatusTracker::default(), true)],
            plan(0, 100),
            stop,
        )
        .await;
        assert!(obs[0].ip.as_ref().unwrap_err().contains("no such host"));
        assert_eq!(obs[0].ping.status, Status::NotWorking);
        assert!(net.calls.lock().unwrap().is_empty());
    }
}
