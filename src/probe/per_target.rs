//! Probing one target, for the monitor's rounds and the one-shot `probe`
//! alike: a host name resolved through the process's [`Resolver`],
//! then one ping-and-trace path ([`ping_and_trace`]) that traces alongside
//! the ping, after it when the ping's outcome calls for it, or not at all.
//! The network sits behind the [`Probe`] trait: [`LiveProbe`] on a board,
//! a fake in tests (with tokio's clock paused).

use std::future::Future;
use std::net::IpAddr;

use super::{Path, PingOptions, PingOutcome, Prober, Resolver, TraceError, TraceOptions};
use crate::clock::Timestamp;

/// The network as probing a target uses it.
pub trait Probe: Send + Sync + 'static {
    /// Ping an address `count` times (paced).
    fn ping(&self, addr: IpAddr) -> impl Future<Output = PingOutcome> + Send;
    /// Trace the path to an address.
    fn trace(&self, addr: IpAddr) -> impl Future<Output = Result<Path, TraceError>> + Send;
    /// Resolve a host name; the error says why it gave no address.
    fn resolve(&self, host: &str) -> impl Future<Output = Result<IpAddr, String>> + Send;
}

/// The real network, through the shared sockets of a [`Prober`].
pub struct LiveProbe {
    pub prober: Prober,
    pub ping: PingOptions,
    pub trace: TraceOptions,
    /// Every host name of the process is resolved here.
    pub resolver: Resolver,
}

impl Probe for LiveProbe {
    async fn ping(&self, addr: IpAddr) -> PingOutcome {
        self.prober.ping(addr, &self.ping).await
    }

    async fn trace(&self, addr: IpAddr) -> Result<Path, TraceError> {
        self.prober.trace(addr, &self.trace).await
    }

    async fn resolve(&self, host: &str) -> Result<IpAddr, String> {
        self.resolver.resolve(host).await.map_err(|e| e.to_string())
    }
}

/// When a target's trace runs.
#[derive(Debug, Clone, Copy)]
pub enum TraceWhen<F = fn(&PingOutcome) -> bool> {
    /// Not at all: ping only.
    Never,
    /// At the same time as the ping (the one-shot `probe`).
    WithPing,
    /// After the ping, when `F` says so given its outcome (the monitor: a
    /// trace that is due, or a status about to change).
    AfterPing(F),
}

/// What pinging and tracing one address found.
#[derive(Debug)]
pub struct Probed {
    pub ping: PingOutcome,
    /// When the ping finished.
    pub pinged_at: Timestamp,
    /// `None` when no trace ran.
    pub trace: Option<Result<Path, TraceError>>,
}

/// Ping one address, and trace it as `when` says.
pub async fn ping_and_trace<P, F>(probe: &P, addr: IpAddr, when: TraceWhen<F>) -> Probed
where
    P: Probe,
    F: FnOnce(&PingOutcome) -> bool,
{
    let ping = async {
        let ping = probe.ping(addr).await;
        (ping, Timestamp::now())
    };
    // A trace's state is far larger than a ping's: boxed, it takes room
    // only where a trace runs, not in the future of every target (a
    // ping-only sweep of 100,000 targets would hold 100,000 of them).
    let trace = || Box::pin(probe.trace(addr));
    let ((ping, pinged_at), trace) = match when {
        TraceWhen::Never => (ping.await, None),
        TraceWhen::WithPing => {
            let (ping, trace) = tokio::join!(ping, trace());
            (ping, Some(trace))
        }
        TraceWhen::AfterPing(wanted) => {
            let (ping, pinged_at) = ping.await;
            let trace = if wanted(&ping) {
                Some(trace().await)
            } else {
                None
            };
            ((ping, pinged_at), trace)
        }
    };
    Probed {
        ping,
        pinged_at,
        trace,
    }
}
