//! Running one round: every target's probe starts at its offset within the
//! round, pings, and traces when a trace is due or its status is about to
//! change. The probing itself sits behind the [`Probe`] trait, so a round
//! can be run against a fake network with tokio's clock paused.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::watch;

use crate::clock::Timestamp;
use crate::probe::{PingOptions, PingOutcome, Prober, TraceError, TraceOptions};
use crate::targets::TargetAddr;

use super::schedule;
use super::state::{Observation, ProbeJob, TraceOutcome};
use super::status::Thresholds;

/// The network as the probe loop uses it.
pub trait Probe: Send + Sync + 'static {
    /// Ping an address `count` times (paced).
    fn ping(&self, addr: IpAddr) -> impl Future<Output = PingOutcome> + Send;
    /// Trace the path to an address; `None` when tracing is unavailable
    /// (reported once, at start, not per target).
    fn trace(&self, addr: IpAddr) -> impl Future<Output = Option<TraceOutcome>> + Send;
    /// Resolve a host name.
    fn resolve(&self, host: &str) -> impl Future<Output = Result<IpAddr, String>> + Send;
}

/// The real network, through the shared sockets of a [`Prober`].
pub struct LiveProbe {
    pub prober: Prober,
    pub ping: PingOptions,
    pub trace: TraceOptions,
}

/// How long a name lookup may take before the target counts as
/// unresolved for this round.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

impl Probe for LiveProbe {
    async fn ping(&self, addr: IpAddr) -> PingOutcome {
        self.prober.ping(addr, &self.ping).await
    }

    async fn trace(&self, addr: IpAddr) -> Option<TraceOutcome> {
        match self.prober.trace(addr, &self.trace).await {
            Ok(path) => Some(TraceOutcome::Path(path)),
            Err(TraceError::Unavailable(_)) => None,
            Err(e) => Some(TraceOutcome::Failed(e.to_string())),
        }
    }

    async fn resolve(&self, host: &str) -> Result<IpAddr, String> {
        let lookup = tokio::net::lookup_host((host, 0));
        match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            Err(_) => Err(format!(
                "no answer from the resolver within {}s",
                RESOLVE_TIMEOUT.as_secs()
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(mut addrs)) => addrs
                .next()
                .map(|a| a.ip())
                .ok_or_else(|| "the name has no addresses".to_string()),
        }
    }
}

/// Probe every job of a round; each starts at its offset in `window`.
/// When `stop` turns true, jobs that have not started are skipped and the
/// ones in flight finish, so a shutdown still stores a (partial) round.
pub async fn run_round<P: Probe>(
    probe: &Arc<P>,
    jobs: Vec<ProbeJob>,
    window: Duration,
    thresholds: Thresholds,
    stop: watch::Receiver<bool>,
) -> Vec<Observation> {
    let count = jobs.len();
    let started = tokio::time::Instant::now();
    let probes = jobs.into_iter().enumerate().map(|(i, job)| {
        let mut stop = stop.clone();
        let probe = Arc::clone(probe);
        async move {
            let at = started + schedule::start_offset(i, count, window);
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return None,
                _ = tokio::time::sleep_until(at) => {}
            }
            Some(probe_one(&*probe, job, thresholds).await)
        }
    });
    join_all(probes).await.into_iter().flatten().collect()
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

async fn probe_one<P: Probe>(probe: &P, job: ProbeJob, thresholds: Thresholds) -> Observation {
    let ip = match &job.target.addr {
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
    let ping = probe.ping(addr).await;
    let ts = Timestamp::now();
    // A status about to change is traced at once, so the event can say
    // where the path stops (or that it is back).
    let trace = if job.trace_due || job.tracker.would_change(ping.status, thresholds) {
        probe.trace(addr).await
    } else {
        None
    };
    Observation {
        key: job.key,
        ts,
        ip,
        ping,
        trace,
    }
}
