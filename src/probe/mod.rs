//! Probing addresses: ping for status, traceroute for the path, and the
//! kernel routing table for the default gateway.
//!
//! [`Prober`] owns the shared sockets (per family, for ping and for
//! traceroute) and the [`PacedSender`] thread that sends every packet on
//! one global timeline; probing a target is a future, so a round of ten
//! thousand targets is ten thousand futures. [`per_target`] is the one path
//! from a target to its ping and trace (and a host name to its address),
//! for the monitor and for [`probe_all`], which the one-shot `probe`
//! command turns into [`ProbeResult`]s.

mod answers;
pub mod budget;
mod ids;
pub mod knowledge;
pub mod pacer;
pub mod per_target;
pub mod ping;
pub mod resolver;
pub mod routes;
pub mod sender;
pub mod stats;
pub mod sys;
pub mod trace;
pub mod wire;

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use futures::future::join_all;
use serde::Serialize;
use socket2::Socket;

pub use per_target::{ping_and_trace, LiveProbe, Probe, Probed, TraceWhen};
pub use ping::{PingOptions, PingOutcome, Pinger};
pub use resolver::{ResolveError, Resolver, RESOLVE_TIMEOUT};
pub use routes::{Gateway, RouteTable};
pub use sender::PacedSender;
pub use stats::{RttSummary, Status};
pub use trace::{Hop, HopLimit, Path, TraceError, TraceOptions, Tracer, Ttl};

/// The result of probing one address: the columns of the dashboard table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeResult {
    /// The target as given (an address or a host name).
    pub addr: String,
    /// The address probed, when `addr` is a host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<IpAddr>,
    pub status: Status,
    pub sent: u32,
    pub received: u32,
    pub loss: f64,
    pub rtt_ms: Option<RttSummary>,
    pub gateway: Option<Gateway>,
    pub hops: Vec<Hop>,
    /// Hops whose router's ICMP ration delayed or skipped their probe.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<HopLimit>,
    /// Reachable: the destination answered, to ping or to traceroute.
    pub reached: bool,
    /// The address probed (`addr` itself, or what the name resolved to);
    /// `None` when a name did not resolve.
    #[serde(skip)]
    pub ip: Option<IpAddr>,
    /// Problems worth telling the operator: no route, no privilege...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl ProbeResult {
    /// The columns of `addr` (given as `label`, reached through `gateway`)
    /// from what pinging and tracing it found, with a note for each
    /// problem worth telling.
    pub fn new(
        label: String,
        addr: IpAddr,
        gateway: Option<Gateway>,
        probed: Probed,
    ) -> ProbeResult {
        let Probed { ping, trace, .. } = probed;
        let mut notes = Vec::new();
        if let Some(e) = &ping.send_error {
            notes.push(format!("ping: {e}"));
        }
        let path = match trace {
            Some(Ok(path)) => Some(path),
            // Reported once for the whole run by `warnings`.
            Some(Err(TraceError::Unavailable(_))) => None,
            Some(Err(e)) => {
                notes.push(format!("traceroute: {e}"));
                None
            }
            None => None,
        };
        notes.extend(path.as_ref().and_then(|p| unreachable_note(p, Some(addr))));
        let trace_reached = path.as_ref().is_some_and(|p| p.reached);
        let (hops, limits) = path.map_or_else(Default::default, |p| (p.hops, p.limits));
        ProbeResult {
            resolved: None,
            status: ping.status,
            sent: ping.sent,
            received: ping.received,
            loss: ping.loss(),
            rtt_ms: ping.rtt,
            gateway,
            hops,
            limits,
            reached: ping.received > 0 || trace_reached,
            ip: Some(addr),
            notes,
            addr: label,
        }
    }

    /// The routers on the way: the hops without the destination itself
    /// (which ends the list when it answered, even with an error).
    pub fn routers(&self) -> &[Hop] {
        match self.hops.split_last() {
            Some((last, routers)) if last.addr.is_some() && last.addr == self.ip => routers,
            _ => &self.hops,
        }
    }
}

/// One family's sending socket, what it has in flight (`M`, shared with
/// the receive task) and that task, which stops when this is dropped.
struct FamilySockets<M> {
    send: Arc<Socket>,
    in_flight: M,
    receiver: tokio::task::JoinHandle<()>,
}

impl<M: Clone> FamilySockets<M> {
    /// Spawn `receive` on a handle to `in_flight`.
    fn start<F>(send: Arc<Socket>, in_flight: M, receive: impl FnOnce(M) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let receiver = tokio::spawn(receive(in_flight.clone()));
        FamilySockets {
            send,
            in_flight,
            receiver,
        }
    }
}

impl<M> Drop for FamilySockets<M> {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

/// The shared probing machinery for a process.
pub struct Prober {
    pinger: Pinger,
    tracer: Tracer,
    sender: PacedSender,
}

impl Prober {
    /// Open the sockets and start the sending thread. Must be called inside
    /// a tokio runtime. Families or features that lack privileges are
    /// reported per target, and listed by [`Prober::warnings`]; `Err` only
    /// when the system refuses a thread.
    pub fn new(packets_per_second: u32) -> std::io::Result<Prober> {
        // Random identifiers keep our replies apart from another edgeprobe
        // or ping on the same machine (a pid is too close to the next one).
        let ping_ident = random_u64() as u16;
        Ok(Prober {
            pinger: Pinger::new(ping_ident),
            tracer: Tracer::new(ping_ident),
            sender: PacedSender::start(packets_per_second)?,
        })
    }

    /// Whether any address family can be pinged at all.
    pub fn can_ping(&self) -> bool {
        self.pinger.any_available()
    }

    /// Why some probing is unavailable (missing privileges, no IPv6), each
    /// message saying how to fix it. Empty when everything works.
    pub fn warnings(&self, tracing: bool) -> Vec<String> {
        let mut w: Vec<String> = self
            .pinger
            .unavailable()
            .iter()
            .map(|e| e.to_string())
            .collect();
        if tracing {
            for e in self.tracer.unavailable() {
                let msg = e.to_string();
                if !w.contains(&msg) {
                    w.push(msg);
                }
            }
        }
        w
    }

    /// Ping one address `opts.count` times.
    pub async fn ping(&self, addr: IpAddr, opts: &PingOptions) -> PingOutcome {
        self.pinger.ping(addr, opts, &self.sender).await
    }

    /// Trace the path to one address.
    pub async fn trace(&self, addr: IpAddr, opts: &TraceOptions) -> Result<Path, TraceError> {
        self.tracer.trace(addr, opts, &self.sender).await
    }
}

/// Probe many addresses concurrently, results in input order. Their
/// traces share what they learn: the first into a subnet scouts it for
/// the others (see [`Tracer`]).
pub async fn probe_all<P: Probe>(
    probe: &P,
    targets: Vec<(String, IpAddr)>,
    routes: &RouteTable,
    when: TraceWhen,
) -> Vec<ProbeResult> {
    join_all(targets.into_iter().map(|(label, addr)| async move {
        let probed = ping_and_trace(probe, addr, when).await;
        ProbeResult::new(label, addr, routes.gateway_for(addr), probed)
    }))
    .await
}

/// A router's "unreachable" answer in a trace to `dst`, in words: who
/// said it and why.
pub fn unreachable_note(path: &Path, dst: Option<IpAddr>) -> Option<String> {
    let code = path.unreachable_code?;
    let who = path
        .last_answering()
        .and_then(|h| h.addr)
        .map_or_else(|| "a router".to_string(), |a| a.to_string());
    let reason = dst.map_or("unreachable", |dst| unreachable_reason(dst, code));
    Some(format!(
        "{who} reports the destination unreachable ({reason})"
    ))
}

/// 64 bits that differ between processes and runs; enough to keep probe
/// identifiers apart, not for secrets.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// A readable name for an ICMP destination-unreachable code.
pub fn unreachable_reason(addr: IpAddr, code: u8) -> &'static str {
    match (addr, code) {
        (IpAddr::V4(_), 0) => "network unreachable",
        (IpAddr::V4(_), 1) => "host unreachable",
        (IpAddr::V4(_), 3) => "port unreachable",
        (IpAddr::V4(_), 9 | 10 | 13) => "administratively prohibited",
        (IpAddr::V6(_), 0) => "no route to destination",
        (IpAddr::V6(_), 1) => "administratively prohibited",
        (IpAddr::V6(_), 3) => "address unreachable",
        (IpAddr::V6(_), 4) => "port unreachable",
        _ => "unreachable",
    }
}
