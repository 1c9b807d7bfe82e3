//! Ping: echo requests through surge-ping over one shared ICMP socket per
//! address family, for every target of a round.
//!
//! surge-ping runs one receive task per socket and matches replies to
//! waiters by (address, identifier, sequence). We use one identifier for
//! the whole process and a process-wide sequence counter, so no two
//! requests in flight share a key, and ten thousand targets cost futures,
//! not threads or sockets.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use surge_ping::{Client, Config, IcmpPacket, PingIdentifier, PingSequence, SurgeError, ICMP};

use super::pacer::Pacer;
use super::stats::{RttSummary, Status};
use super::sys::{self, Family, PingSocketKind, PrivilegeError};

/// Payload of every echo request; recognisable in a capture.
const PING_PAYLOAD: &[u8] = b"edgeprobe-ping!!edgeprobe-ping!!";

/// ICMP type of an echo reply, per family.
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REPLY_V6: u8 = 129;

/// How one target is pinged in a round.
#[derive(Debug, Clone, Copy)]
pub struct PingOptions {
    /// Echo requests per target.
    pub count: u32,
    /// How long to wait for each reply.
    pub timeout: Duration,
    /// Loss fraction at or over which a target is Degraded.
    pub degraded_loss: f64,
}

/// The outcome of pinging one target.
#[derive(Debug, Clone, PartialEq)]
pub struct PingOutcome {
    pub sent: u32,
    pub received: u32,
    pub rtt: Option<RttSummary>,
    pub status: Status,
    /// Why requests could not be sent, if they could not (e.g. no route).
    /// A missing socket is not repeated here: [`Pinger::unavailable`]
    /// reports it once.
    pub send_error: Option<String>,
}

impl PingOutcome {
    /// Fraction lost; nothing sent (no socket, no route) is total loss.
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            return 1.0;
        }
        super::stats::loss(self.sent, self.received)
    }
}

/// The shared ping sockets and their state.
pub struct Pinger {
    v4: Result<Client, PrivilegeError>,
    v6: Result<Client, PrivilegeError>,
    ident: PingIdentifier,
    next_seq: AtomicU16,
}

impl Pinger {
    /// Open one socket per family: raw where CAP_NET_RAW allows it,
    /// otherwise an unprivileged ping socket. A family that cannot be
    /// opened keeps its error for [`Pinger::unavailable`]; its targets come
    /// back Not Working with nothing sent.
    /// Must be called inside a tokio runtime.
    pub fn new(ident: u16) -> Pinger {
        Pinger {
            v4: open_client(Family::V4),
            v6: open_client(Family::V6),
            ident: PingIdentifier(ident),
            next_seq: AtomicU16::new(0),
        }
    }

    /// Whether at least one family can ping.
    pub fn any_available(&self) -> bool {
        self.v4.is_ok() || self.v6.is_ok()
    }

    /// Socket problems, one per family that cannot ping, for a warning.
    pub fn unavailable(&self) -> Vec<&PrivilegeError> {
        [&self.v4, &self.v6]
            .into_iter()
            .filter_map(|c| c.as_ref().err())
            .collect()
    }

    fn client(&self, family: Family) -> Result<&Client, &PrivilegeError> {
        match family {
            Family::V4 => self.v4.as_ref(),
            Family::V6 => self.v6.as_ref(),
        }
    }

    /// Send `count` echo requests to `addr`, each through the pacer, and
    /// wait for their replies concurrently.
    pub async fn ping(&self, addr: IpAddr, opts: &PingOptions, pacer: &Pacer) -> PingOutcome {
        let Ok(client) = self.client(Family::of(addr)) else {
            return PingOutcome {
                sent: 0,
                received: 0,
                rtt: None,
                status: Status::NotWorking,
                send_error: None,
            };
        };
        let attempts = (0..opts.count).map(|_| {
            let seq = PingSequence(self.next_seq.fetch_add(1, Ordering::Relaxed));
            async move {
                pacer.wait().await;
                // A surge-ping `Pinger` is a cheap handle on the shared
                // socket and reply map; one per request lets the requests
                // of a target wait concurrently.
                let mut pinger = client.pinger(addr, self.ident).await;
                pinger.timeout(opts.timeout);
                let started = Instant::now();
                pinger.ping(seq, PING_PAYLOAD).await.map(|(packet, rtt)| {
                    // surge-ping stamps the send after `send_to` returns, so
                    // a reply faster than that (loopback, a veth) can come
                    // out as zero; then our own clock, started before the
                    // send, is the honest (upper) bound.
                    let rtt = if rtt.is_zero() {
                        started.elapsed()
                    } else {
                        rtt
                    };
                    (packet, rtt)
                })
            }
        });
        let results = join_all(attempts).await;
        summarise(&results, opts)
    }
}

fn open_client(family: Family) -> Result<Client, PrivilegeError> {
    let kind = sys::ping_socket_kind(family)?;
    let sock_type = match kind {
        PingSocketKind::Raw => socket2::Type::RAW,
        PingSocketKind::Datagram => socket2::Type::DGRAM,
    };
    let icmp = match family {
        Family::V4 => ICMP::V4,
        Family::V6 => ICMP::V6,
    };
    let config = Config::builder()
        .kind(icmp)
        .sock_type_hint(sock_type)
        .build();
    let client = Client::new(&config).map_err(|source| PrivilegeError::Other { family, source })?;
    if kind == PingSocketKind::Raw {
        sys::tune_receive(&SurgeSocketFd(&client), family);
    }
    Ok(client)
}

/// The descriptor of surge-ping's socket, which it exposes only raw.
struct SurgeSocketFd<'a>(&'a Client);

impl std::os::fd::AsFd for SurgeSocketFd<'_> {
    #[allow(unsafe_code)]
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: the client owns this socket and lives at least as long as
        // the borrow (`'_` ties it to `self`, which borrows the client).
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.0.get_socket().get_native_sock()) }
    }
}

fn is_echo_reply(packet: &IcmpPacket) -> bool {
    match packet {
        IcmpPacket::V4(p) => p.get_icmp_type().0 == ECHO_REPLY_V4,
        IcmpPacket::V6(p) => p.get_icmpv6_type().0 == ECHO_REPLY_V6,
    }
}

/// Fold the per-request results into counts, RTTs and a status. A request
/// that could not even be sent (e.g. no route) is not counted as sent;
/// an ICMP error in answer to it counts as sent and lost.
fn summarise(
    results: &[Result<(IcmpPacket, Duration), SurgeError>],
    opts: &PingOptions,
) -> PingOutcome {
    let mut sent = 0u32;
    let mut rtts = Vec::new();
    let mut send_error = None;
    for r in results {
        match r {
            Ok((packet, rtt)) => {
                sent += 1;
                if is_echo_reply(packet) {
                    rtts.push(*rtt);
                }
            }
            Err(SurgeError::Timeout { .. }) => sent += 1,
            Err(e) => send_error = Some(e.to_string()),
        }
    }
    let received = rtts.len() as u32;
    PingOutcome {
        sent,
        received,
        rtt: RttSummary::from_rtts(&rtts),
        status: Status::classify(sent, received, opts.degraded_loss),
        send_error,
    }
}
