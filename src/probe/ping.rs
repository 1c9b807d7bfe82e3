//! Ping: echo requests over one shared ICMP socket per address family,
//! for every target of a round.
//!
//! The requests leave through the [`PacedSender`] thread; a receive task
//! per family reads every reply and hands it to the request waiting for it,
//! keyed by (destination, sequence). The process uses one identifier and a
//! process-wide sequence counter, passed through a keyed permutation
//! (`IdPermutation`) so that the next sequence number cannot be guessed
//! from one seen; ten thousand targets cost futures, not threads or
//! sockets. Only a reply that carries the request's token back settles it:
//! an ICMP error whose quote is too short to hold the token may be forged
//! by anyone, so the request goes on waiting for a verified answer until
//! its deadline. With CAP_NET_RAW the requests go out on a send-only
//! raw socket and the replies come in on another, so sending and receiving
//! never wait for each other; without it, one unprivileged ping socket does
//! both and the kernel owns the identifier.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::sync::oneshot;

use super::ids::IdPermutation;
use super::sender::{Outgoing, PacedSender};
use super::stats::{RttSummary, Status};
use super::sys::{self, EchoReplies, Family, IcmpSocket, PingSocketKind, PrivilegeError};
use super::wire::{self, ProbeId, ProbeTokens, Reply, ReplyKind, Verdict};
use super::FamilySockets;
use crate::lock::lock;

/// Echo data of every request after its token; recognisable in a capture.
const PING_PAYLOAD: &[u8] = b"edgeprobe-ping!!edgeprobe";

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
    v4: Result<EchoSockets, PrivilegeError>,
    v6: Result<EchoSockets, PrivilegeError>,
    ident: u16,
    /// Counts requests; [`Pinger::next_probe_id`] permutes it.
    next_seq: AtomicU16,
    seq_ids: IdPermutation,
    tokens: ProbeTokens,
}

/// A request waiting for its answer: keyed by where it went and its
/// sequence number, which a reply or an ICMP error quoting it carries back.
/// Each holds the request's token, which an echo reply must carry back.
type WaitKey = (IpAddr, u16);
type Waiting = Arc<Mutex<HashMap<WaitKey, (u64, oneshot::Sender<Answer>)>>>;

/// What came back for one echo request, and when.
#[derive(Debug, Clone, Copy)]
struct Answer {
    kind: ReplyKind,
    at: Instant,
}

/// One family's sockets, its requests in flight and its receive task.
type EchoSockets = FamilySockets<Waiting>;

impl Pinger {
    /// Open the sockets of each family: raw where CAP_NET_RAW allows it,
    /// otherwise an unprivileged ping socket. A family that cannot be
    /// opened keeps its error for [`Pinger::unavailable`]; its targets come
    /// back Not Working with nothing sent.
    /// Must be called inside a tokio runtime.
    pub fn new(ident: u16) -> Pinger {
        Pinger {
            v4: EchoSockets::open(Family::V4, ident),
            v6: EchoSockets::open(Family::V6, ident),
            ident,
            next_seq: AtomicU16::new(0),
            seq_ids: IdPermutation::new(),
            tokens: ProbeTokens::new(),
        }
    }

    /// The id of the next echo request: unique among the last 65,536,
    /// and not to be guessed from the ones before.
    fn next_probe_id(&self) -> ProbeId {
        let n = self.next_seq.fetch_add(1, Ordering::Relaxed);
        ProbeId {
            ident: self.ident,
            seq: self.seq_ids.of_u16(n),
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

    /// Send `count` echo requests to `addr`, each at its slot on the
    /// sender's timeline, and wait for their replies concurrently.
    pub async fn ping(
        &self,
        addr: IpAddr,
        opts: &PingOptions,
        sender: &PacedSender,
    ) -> PingOutcome {
        let sockets = match Family::of(addr) {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        };
        let Ok(sockets) = sockets else {
            return PingOutcome {
                sent: 0,
                received: 0,
                rtt: None,
                status: Status::NotWorking,
                send_error: None,
            };
        };
        let attempts = (0..opts.count).map(|_| {
            sockets.echo(
                addr,
                self.next_probe_id(),
                opts.timeout,
                sender,
                &self.tokens,
            )
        });
        let results = join_all(attempts).await;
        summarise(&results, opts)
    }
}

impl EchoSockets {
    fn open(family: Family, ident: u16) -> Result<EchoSockets, PrivilegeError> {
        let (receive, send) = match IcmpSocket::open_raw(family) {
            Ok(receive) => {
                receive.filter_echo_replies(EchoReplies::Only(ident));
                (receive, sys::open_raw_sender(family)?)
            }
            Err(PrivilegeError::NoRawIcmp { .. }) => {
                let receive = IcmpSocket::open_datagram(family)?;
                let send = receive
                    .try_clone()
                    .map_err(|source| PrivilegeError::Other { family, source })?;
                (receive, send)
            }
            Err(e) => return Err(e),
        };
        // The kernel picks the identifier of a ping socket and delivers it
        // only the replies that carry it; a raw socket sees everyone's.
        let ident = (receive.kind() == PingSocketKind::Raw).then_some(ident);
        Ok(EchoSockets::start(
            Arc::new(send),
            Waiting::default(),
            |waiting| receive_loop(receive, ident, waiting),
        ))
    }

    /// One echo request: `Ok(None)` when nothing came back in time,
    /// `Err` when it could not be sent.
    async fn echo(
        &self,
        dst: IpAddr,
        id: ProbeId,
        timeout: Duration,
        sender: &PacedSender,
        tokens: &ProbeTokens,
    ) -> io::Result<Option<(ReplyKind, Duration)>> {
        let (tx, rx) = oneshot::channel();
        // Registered before the send: on loopback the reply is queued
        // before `sendto` even returns.
        let token = tokens.of(dst, id);
        let _waiting = WaitGuard::register(&self.in_flight, (dst, id.seq), token, tx);
        let data = tokens.payload(dst, id, PING_PAYLOAD);
        let packet = match dst {
            IpAddr::V4(_) => wire::emit_echo_v4(id, &data),
            IpAddr::V6(_) => wire::emit_echo_v6(id, &data),
        };
        let sent_at = sender
            .send(Outgoing {
                socket: self.send.clone(),
                dst,
                ttl: None,
                packet,
            })
            .await?;
        let deadline = tokio::time::Instant::from_std(sent_at + timeout);
        Ok(match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(answer)) => Some((answer.kind, answer.at.saturating_duration_since(sent_at))),
            _ => None,
        })
    }
}

/// Takes a request off the waiting list however its future ends, so that
/// a late reply finds nobody and the list never grows.
struct WaitGuard<'a> {
    waiting: &'a Waiting,
    key: WaitKey,
}

impl<'a> WaitGuard<'a> {
    fn register(
        waiting: &'a Waiting,
        key: WaitKey,
        token: u64,
        tx: oneshot::Sender<Answer>,
    ) -> Self {
        // Replacing an entry needs 65,536 requests to one address in
        // flight at once; the replaced request then counts as lost.
        lock(waiting).insert(key, (token, tx));
        WaitGuard { waiting, key }
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        lock(self.waiting).remove(&self.key);
    }
}

/// Read every reply on the socket and hand each answer to its request.
async fn receive_loop(socket: IcmpSocket, ident: Option<u16>, waiting: Waiting) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (reply, at) = socket.next_reply(&mut buf).await;
        if let Some((tx, answer)) = settle(&waiting, &reply, ident, at) {
            let _ = tx.send(answer);
        }
    }
}

/// Take the request `reply` answers off the waiting list, if it is one of
/// ours and carries the request's token. An error whose quote stops
/// before the token settles nothing: the request waits on for its reply.
fn settle(
    waiting: &Waiting,
    reply: &Reply,
    ident: Option<u16>,
    at: Instant,
) -> Option<(oneshot::Sender<Answer>, Answer)> {
    let (key, answer) = answer_for(reply, ident, at)?;
    let mut waiting = lock(waiting);
    let (token, _) = waiting.get(&key)?;
    if ProbeTokens::verdict(reply, *token) != Verdict::Verified {
        return None;
    }
    let (_, tx) = waiting.remove(&key)?;
    Some((tx, answer))
}

/// Which request a reply answers, if it is one of ours: the identifier
/// must be ours (`None`: the kernel already checked it), and the request
/// must have gone where the reply says.
fn answer_for(reply: &Reply, ident: Option<u16>, at: Instant) -> Option<(WaitKey, Answer)> {
    if ident.is_some_and(|ours| ours != reply.probe.ident) {
        return None;
    }
    Some((
        (reply.probe_dst, reply.probe.seq),
        Answer {
            kind: reply.kind,
            at,
        },
    ))
}

/// Fold the per-request results into counts, RTTs and a status. A request
/// that could not even be sent (e.g. no route) is not counted as sent;
/// an ICMP error in answer to it counts as sent and lost.
fn summarise(
    results: &[io::Result<Option<(ReplyKind, Duration)>>],
    opts: &PingOptions,
) -> PingOutcome {
    let mut sent = 0u32;
    let mut rtts = Vec::new();
    let mut send_error = None;
    for r in results {
        match r {
            Ok(answer) => {
                sent += 1;
                if let Some((ReplyKind::EchoReply, rtt)) = answer {
                    rtts.push(*rtt);
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 5));

    fn reply(kind: ReplyKind, ident: u16, seq: u16) -> Reply {
        Reply {
            from: DST,
            kind,
            probe: ProbeId { ident, seq },
            probe_dst: DST,
            token: Some(0),
        }
    }

    fn opts(count: u32) -> PingOptions {
        PingOptions {
            count,
            timeout: Duration::from_secs(1),
            degraded_loss: 0.2,
        }
    }

    #[test]
    fn a_reply_with_our_identifier_answers_the_request_it_quotes() {
        let at = Instant::now();
        let (key, answer) = answer_for(&reply(ReplyKind::EchoReply, 7, 42), Some(7), at).unwrap();
        assert_eq!(key, (DST, 42));
        assert_eq!(answer.kind, ReplyKind::EchoReply);
        assert_eq!(answer.at, at);
    }

    #[test]
    fn someone_elses_ping_is_ignored_on_a_raw_socket_only() {
        let r = reply(ReplyKind::EchoReply, 8, 42);
        assert!(answer_for(&r, Some(7), Instant::now()).is_none());
        // A ping socket's identifier is the kernel's, which it checked.
        assert!(answer_for(&r, None, Instant::now()).is_some());
    }

    #[test]
    fn counts_rtts_and_status() {
        let ms = Duration::from_millis;
        let results = vec![
            Ok(Some((ReplyKind::EchoReply, ms(2)))),
            Ok(Some((ReplyKind::EchoReply, ms(4)))),
            Ok(None),
            Ok(Some((ReplyKind::Unreachable { code: 1 }, ms(1)))),
        ];
        let out = summarise(&results, &opts(4));
        assert_eq!((out.sent, out.received), (4, 2));
        assert_eq!(out.status, Status::Degraded);
        assert_eq!(out.rtt.unwrap().avg, 3.0);
        assert!(out.send_error.is_none());
    }

    #[test]
    fn requests_that_could_not_leave_are_not_counted_as_sent() {
        let results = vec![
            Err(io::Error::from_raw_os_error(101)),
            Err(io::Error::from_raw_os_error(101)),
        ];
        let out = summarise(&results, &opts(2));
        assert_eq!((out.sent, out.received), (0, 0));
        assert_eq!(out.status, Status::NotWorking);
        assert_eq!(out.loss(), 1.0);
        assert!(out.send_error.unwrap().contains("unreachable"));
    }

    #[test]
    fn only_a_reply_with_the_token_settles_a_request() {
        let waiting = Waiting::default();
        let (tx, _rx) = oneshot::channel();
        let _g = WaitGuard::register(&waiting, (DST, 42), 0x5eed, tx);
        let quote_too_short = Reply {
            token: None,
            ..reply(ReplyKind::Unreachable { code: 1 }, 7, 42)
        };
        let at = Instant::now();
        assert!(settle(&waiting, &quote_too_short, Some(7), at).is_none());
        let wrong_token = Reply {
            token: Some(0x5eee),
            ..quote_too_short
        };
        assert!(settle(&waiting, &wrong_token, Some(7), at).is_none());
        assert_eq!(lock(&waiting).len(), 1, "still waiting for its reply");
        let verified = Reply {
            token: Some(0x5eed),
            ..reply(ReplyKind::EchoReply, 7, 42)
        };
        let (_, answer) = settle(&waiting, &verified, Some(7), at).unwrap();
        assert_eq!(answer.kind, ReplyKind::EchoReply);
        assert!(lock(&waiting).is_empty());
    }

    #[tokio::test]
    async fn sequence_numbers_do_not_follow_from_the_last_one() {
        // Without privileges the sockets fail to open; the ids are the same.
        let pinger = Pinger::new(7);
        let seqs: Vec<u16> = (0..1000).map(|_| pinger.next_probe_id().seq).collect();
        let near = seqs
            .windows(2)
            .filter(|w| {
                let gap = w[1].wrapping_sub(w[0]);
                gap <= 8 || gap >= 0xffff - 7
            })
            .count();
        // A counter puts all 999 there, random ids about 0.26.
        assert!(near <= 10, "{near} of 999 within 8 of the one before");
        let unique: std::collections::HashSet<u16> = seqs.iter().copied().collect();
        assert_eq!(unique.len(), seqs.len());
    }

    #[test]
    fn the_wait_guard_leaves_nothing_behind() {
        let waiting = Waiting::default();
        let (tx, _rx) = oneshot::channel();
        {
            let _g = WaitGuard::register(&waiting, (DST, 1), 0, tx);
            assert_eq!(lock(&waiting).len(), 1);
        }
        assert!(lock(&waiting).is_empty());
    }
}
