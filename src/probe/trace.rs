//! Traceroute with ICMP echo probes that respects each router's ICMP
//! ration.
//!
//! One raw socket per family receives for every trace; the probes leave
//! through the [`PacedSender`] thread on a send-only raw socket, which sets
//! each probe's TTL just before sending it. A receive task per family
//! parses each datagram with [`wire`] and hands it to the
//! trace that owns the quoted probe id, after checking that the probe was
//! going where the message says. Probe ids come from a keyed permutation
//! (`IdPermutation`), so none can be guessed from one seen. A verified
//! answer (it carries the probe's token) settles its probe; an ICMP error
//! quoting too little to hold the token is passed on as unverified and
//! leaves the probe waiting for a verified one (see `answers` for what an
//! unverified answer may still show).
//!
//! A trace of a place the board knows nothing about sends every TTL at
//! once, lowest first, and costs about one timeout. Once something is
//! known ([`knowledge`]), a trace starts where the
//! destination answered last time (or where its subnet's did), goes on
//! forwards if it is not there, and then backwards, one TTL at a time,
//! until it meets a router of the stop set, whose earlier hops it copies
//! (marked inferred). Every probe expected to expire at a router first
//! takes a token of that router's ration ([`budget`](super::budget)),
//! waiting for it up to the trace's patience; a probe that would wait
//! longer is not sent, and the hop is filled from what neighbouring paths
//! show (inferred) and listed in [`Path::limits`]. What one trace heard,
//! TTL by TTL, is kept and turned into a [`Path`] by the pure
//! `answers` module.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::answers::{Answers, Heard};
use super::budget::{Asked, RouterBudgets};
use super::ids::IdPermutation;
use super::knowledge::{self, KnownPath, PathKnowledge};
use super::sender::{Outgoing, PacedSender};
use super::sys::{self, EchoReplies, Family, IcmpSocket, PrivilegeError};
use super::wire::{self, ProbeId, ProbeTokens, Reply, ReplyKind, Verdict};
use super::FamilySockets;
use crate::clock::Timestamp;
use crate::lock::lock;

/// Time to live / hop limit of a probe: which hop it expires at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Ttl(pub u8);

/// How a trace is run.
#[derive(Debug, Clone, Copy)]
pub struct TraceOptions {
    /// Highest TTL probed (at most 255).
    pub max_hops: u8,
    /// How long to wait for each probe's answer.
    pub timeout: Duration,
    /// How long a probe may wait for a token of its router's ration;
    /// beyond, the hop is not asked this time.
    pub patience: Duration,
    /// How long what a trace learnt stays good for the next ones (the
    /// trace cycle).
    pub remember: Duration,
}

/// One hop of a path: who answered at this TTL, if anyone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Hop {
    pub ttl: Ttl,
    pub addr: Option<IpAddr>,
    pub rtt_ms: Option<f64>,
    /// Not asked in this trace: copied from a path that shares this hop
    /// (Doubletree's stop set), or from the target's neighbours when the
    /// router's ration was spent.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inferred: bool,
    /// Not answered in the latest trace: `addr` was last seen here then
    /// (the monitor keeps a hop seen within the last trace cycle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
}

impl Hop {
    /// A hop as one probe found it: `addr` answered (with `rtt_ms`), or
    /// nobody did.
    pub fn new(ttl: Ttl, addr: Option<IpAddr>, rtt_ms: Option<f64>) -> Hop {
        Hop {
            ttl,
            addr,
            rtt_ms,
            inferred: false,
            last_seen: None,
        }
    }

    /// Whether `addr` answered in the trace that produced this hop.
    pub fn fresh(&self) -> bool {
        self.addr.is_some() && !self.inferred && self.last_seen.is_none()
    }
}

/// A hop whose router's ICMP ration held the trace back.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HopLimit {
    pub ttl: Ttl,
    /// The router expected there, when the board knows it.
    pub router: Option<IpAddr>,
    /// How long the probe waited for a token (or would have had to wait,
    /// when it was not sent).
    #[serde(rename = "waited_ms", serialize_with = "as_millis")]
    pub waited: Duration,
    /// `false`: the probe was not sent (it would have waited past the
    /// trace's patience), or the router, which answers other traces, did
    /// not answer it.
    pub answered: bool,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The path to a destination.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Path {
    /// Hops from TTL 1; the destination is the last hop when it answered.
    /// Unanswered hops past the last answer are not listed.
    pub hops: Vec<Hop>,
    /// Whether the destination itself answered (Reachable).
    pub reached: bool,
    /// Set when a router said the destination cannot be reached.
    pub unreachable_code: Option<u8>,
    /// Hops whose router's ration delayed or skipped their probe.
    pub limits: Vec<HopLimit>,
}

impl Path {
    /// The last hop that answered: where the path stops.
    pub fn last_answering(&self) -> Option<&Hop> {
        self.hops.iter().rev().find(|h| h.addr.is_some())
    }

    /// Whether a router's ration kept a hop from being answered: worth
    /// asking again once it has refilled.
    pub fn unsettled(&self) -> bool {
        self.limits.iter().any(|l| !l.answered)
    }
}

/// Why a trace could not be run.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// No raw socket for this family; the same error for every trace, and
    /// reported once by [`Tracer::unavailable`].
    #[error(transparent)]
    Unavailable(Arc<PrivilegeError>),
    #[error("sending a probe to {dst} failed: {source}")]
    Send { dst: IpAddr, source: std::io::Error },
}

struct Pending {
    dst: IpAddr,
    ttl: Ttl,
    /// The probe's token (see [`ProbeTokens`]).
    token: u64,
    /// An unverified answer was passed on: only the first is, so a flood
    /// of them cannot fill the trace's channel.
    heard_unverified: bool,
    answers: mpsc::UnboundedSender<Heard>,
}

/// Probes in flight, keyed by their id; shared with the receive task.
type PendingMap = Arc<Mutex<HashMap<ProbeId, Pending>>>;

/// One family's sockets, its probes in flight and its receive task.
type FamilyTracer = FamilySockets<PendingMap>;

/// What every trace of the process shares: the routers' rations and what
/// earlier traces learnt.
#[derive(Debug, Default)]
struct Shared {
    budgets: RouterBudgets,
    knowledge: PathKnowledge,
    /// Subnets that a trace is finding out about now (see
    /// [`Tracer::expectation`]).
    scouts: HashMap<IpAddr, watch::Sender<()>>,
}

/// Traces paths over shared raw ICMP sockets.
pub struct Tracer {
    v4: Result<FamilyTracer, Arc<PrivilegeError>>,
    v6: Result<FamilyTracer, Arc<PrivilegeError>>,
    /// Counts probes; [`Tracer::allocate_id`] permutes it.
    next_id: AtomicU32,
    ids: IdPermutation,
    /// The identifier ping uses; never handed out here, so a trace never
    /// claims a ping's reply.
    reserved_ident: u16,
    tokens: ProbeTokens,
    shared: Mutex<Shared>,
}

impl Tracer {
    /// Open a raw socket per family (CAP_NET_RAW). A family that cannot be
    /// opened keeps its error and reports it for each trace of that family.
    /// `reserved_ident` (ping's) is never handed out.
    pub fn new(reserved_ident: u16) -> Tracer {
        Tracer {
            v4: FamilyTracer::open(Family::V4, reserved_ident).map_err(Arc::new),
            v6: FamilyTracer::open(Family::V6, reserved_ident).map_err(Arc::new),
            next_id: AtomicU32::new(0),
            ids: IdPermutation::new(),
            tokens: ProbeTokens::new(),
            reserved_ident,
            shared: Mutex::default(),
        }
    }

    /// The error of each family that cannot trace, for a warning.
    pub fn unavailable(&self) -> Vec<&PrivilegeError> {
        [&self.v4, &self.v6]
            .into_iter()
            .filter_map(|f| f.as_ref().err().map(|e| &**e))
            .collect()
    }

    /// The id of the next probe: unique among the last 2^32, never with
    /// ping's identifier, and not to be guessed from the ones before.
    fn allocate_id(&self) -> ProbeId {
        loop {
            let n = self.next_id.fetch_add(1, Ordering::Relaxed);
            let id = self.ids.of_u32(n);
            let id = ProbeId {
                ident: (id >> 16) as u16,
                seq: id as u16,
            };
            // One counter value in 65,536 lands on ping's identifier.
            if id.ident != self.reserved_ident {
                return id;
            }
        }
    }

    /// Trace the path to `dst` (see the module's documentation for the
    /// order of the probes).
    pub async fn trace(
        &self,
        dst: IpAddr,
        opts: &TraceOptions,
        sender: &PacedSender,
    ) -> Result<Path, TraceError> {
        let family = match Family::of(dst) {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        };
        let family = family
            .as_ref()
            .map_err(|e| TraceError::Unavailable(e.clone()))?;
        let (expected, _scouting) = self.expectation(dst, opts).await;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut run = TraceRun {
            tracer: self,
            family,
            sender,
            dst,
            opts,
            answers: Answers::new(opts.max_hops),
            limits: Vec::new(),
            asked: vec![None; usize::from(opts.max_hops)],
            tx,
            rx,
            sent: ProbesInFlight {
                pending: &family.in_flight,
                ids: Vec::new(),
            },
            first_send: true,
            give_up_at: Instant::now() + opts.patience + opts.timeout * TRACE_TIMEOUTS,
        };
        let start = expected.start_ttl().min(Ttl(opts.max_hops));
        run.forward(start, &expected).await?;
        // The destination may be closer than expected: back from there.
        let back_from = run.answers.end_ttl().map_or(start, |end| end.min(start));
        run.backward(back_from, &expected).await?;
        run.ask_silent_again(&expected).await?;
        run.take_answers();
        let now = Instant::now();
        let mut shared = lock(&self.shared);
        // What other traces learnt meanwhile counts too.
        let expected = expected.or(&shared.knowledge.expect(dst, now, opts.remember));
        run.fill_limited(&expected, &shared.knowledge, now);
        let path = run.answers.into_path(run.limits);
        shared.knowledge.learn(dst, &path, now, opts.remember);
        Ok(path)
    }

    /// What a trace to `dst` can expect. When nothing is known of its
    /// subnet and another trace is already finding out, wait for that one
    /// (a while at most) instead of asking the same routers at the same
    /// time; when none is, this trace is the subnet's scout until the
    /// returned guard is dropped.
    async fn expectation(
        &self,
        dst: IpAddr,
        opts: &TraceOptions,
    ) -> (KnownPath, Option<Scouting<'_>>) {
        let subnet = knowledge::subnet_of(dst);
        let mut waited = false;
        loop {
            let scout = {
                let mut shared = lock(&self.shared);
                let expected = shared.knowledge.expect(dst, Instant::now(), opts.remember);
                if !expected.is_empty() {
                    return (expected, None);
                }
                match shared.scouts.get(&subnet) {
                    Some(done) if !waited => done.subscribe(),
                    _ => {
                        let (done, _) = watch::channel(());
                        shared.scouts.insert(subnet, done.clone());
                        return (
                            expected,
                            Some(Scouting {
                                tracer: self,
                                subnet,
                                done,
                            }),
                        );
                    }
                }
            };
            waited = true;
            let mut scout = scout;
            let scout_time = opts.timeout * 2 + opts.patience;
            // Changed or closed: the scout is done either way.
            let _ = tokio::time::timeout(scout_time, scout.changed()).await;
        }
    }
}

/// The trace that finds out about a subnet for the others; when it ends
/// (however it ends), the ones waiting go on.
struct Scouting<'a> {
    tracer: &'a Tracer,
    subnet: IpAddr,
    done: watch::Sender<()>,
}

impl Drop for Scouting<'_> {
    fn drop(&mut self) {
        let mut shared = lock(&self.tracer.shared);
        // A trace that gave up waiting may have become the scout since.
        if shared
            .scouts
            .get(&self.subnet)
            .is_some_and(|d| d.same_channel(&self.done))
        {
            shared.scouts.remove(&self.subnet);
        }
        self.done.send_replace(());
    }
}

/// A router that answered some trace this recently, and is silent to this
/// one, is taken to be rationing its answers rather than gone.
const ALIVE_WITHIN: Duration = Duration::from_secs(120);

/// Timeouts a trace may take beside its patience (see
/// [`TraceRun::give_up_at`]).
const TRACE_TIMEOUTS: u32 = 4;

/// TTLs sent together past a known part of the path.
const FORWARD_WINDOW: u8 = 3;

/// One trace in progress.
struct TraceRun<'a> {
    tracer: &'a Tracer,
    family: &'a FamilyTracer,
    sender: &'a PacedSender,
    dst: IpAddr,
    opts: &'a TraceOptions,
    answers: Answers,
    limits: Vec<HopLimit>,
    /// Whose ration each TTL's probe took, by TTL from 1.
    asked: Vec<Option<Asked>>,
    tx: mpsc::UnboundedSender<Heard>,
    rx: mpsc::UnboundedReceiver<Heard>,
    sent: ProbesInFlight<'a>,
    /// No probe has left yet: a send error then means no route at all.
    first_send: bool,
    /// Past this, no probe waits for a ration any more, and the backward
    /// and second asks stop: a trace never takes much more than its
    /// patience and a few timeouts.
    give_up_at: Instant,
}

/// What became of one probe.
enum Sent {
    /// It left at this time.
    At(Instant),
    /// Its router's ration would not allow it within the patience.
    NotAsked,
    /// The kernel refused it (no route beyond some point).
    Refused,
}

impl TraceRun<'_> {
    /// Probe `start` and the TTLs above it, lowest first, until the
    /// destination (or a router saying it is unreachable) answers below the
    /// next TTL, and wait for the answers. From TTL 1 every TTL is sent at
    /// once; from further out (the place is known) a few at a time, going
    /// on only while routers answer past what was expected: a silent
    /// destination then costs a few probes, not one per TTL.
    async fn forward(&mut self, start: Ttl, expected: &KnownPath) -> Result<(), TraceError> {
        let window = if start.0 == 1 {
            self.opts.max_hops
        } else {
            FORWARD_WINDOW
        };
        let mut from = start.0;
        while from <= self.opts.max_hops {
            let to = from.saturating_add(window - 1).min(self.opts.max_hops);
            let mut deadline = None;
            let mut refused = false;
            for ttl in from..=to {
                self.take_answers();
                if self.answers.end_ttl().is_some_and(|end| end.0 < ttl) {
                    break;
                }
                match self.send(Ttl(ttl), expected).await? {
                    Sent::At(at) => deadline = Some(at + self.opts.timeout),
                    Sent::NotAsked => {}
                    Sent::Refused => {
                        refused = true;
                        break;
                    }
                }
            }
            let Some(deadline) = deadline else {
                return Ok(());
            };
            self.wait_until(deadline, |a| a.complete_from(start)).await;
            let goes_on = (from..=to).any(|t| self.answers.router_at(Ttl(t)).is_some());
            if refused || self.answers.end_ttl().is_some() || !goes_on || to == self.opts.max_hops {
                return Ok(());
            }
            from = to + 1;
        }
        Ok(())
    }

    /// Probe the TTLs below `start`, highest first, one at a time, until a
    /// router of the stop set answers; its earlier hops are copied.
    async fn backward(&mut self, start: Ttl, expected: &KnownPath) -> Result<(), TraceError> {
        for ttl in (1..start.0).rev() {
            if Instant::now() >= self.give_up_at {
                return Ok(());
            }
            if let Some(router) = self.answers.router_at(Ttl(ttl + 1)) {
                if self.copy_prefix_before(Ttl(ttl + 1), router) {
                    return Ok(());
                }
            }
            match self.send(Ttl(ttl), expected).await? {
                Sent::At(at) => {
                    self.wait_until(at + self.opts.timeout, |a| a.answered(Ttl(ttl)))
                        .await;
                }
                // Its router's ration is spent; if the router expected
                // there is in the stop set, the rest is known without
                // asking the routers before it either.
                Sent::NotAsked => {
                    if let Some(router) = expected.router_at(Ttl(ttl)) {
                        if self.copy_prefix_before(Ttl(ttl), router) {
                            self.answers.infer(Ttl(ttl), router);
                            return Ok(());
                        }
                    }
                }
                Sent::Refused => return Ok(()),
            }
        }
        Ok(())
    }

    /// Ask once more, when their rations allow, the hops before the last
    /// answer that were asked and stayed silent, or the first hop when
    /// nothing answered at all: a router whose ration another process or
    /// the pings spent (echo requests to an unrouted address cost the
    /// router that says so one error each) answers the second time.
    async fn ask_silent_again(&mut self, expected: &KnownPath) -> Result<(), TraceError> {
        self.take_answers();
        if Instant::now() >= self.give_up_at {
            return Ok(());
        }
        let before = self.answers.end_ttl().map_or_else(
            || {
                self.answers
                    .highest_answered()
                    .map_or(0, |t| usize::from(t.0 - 1))
            },
            |end| usize::from(end.0 - 1),
        );
        let nothing = self.answers.end_ttl().is_none()
            && (1..=self.opts.max_hops).all(|t| !self.answers.known(Ttl(t)));
        let before = if nothing {
            // Give the first router a token's time first: the pings to
            // this target may have spent its ration (Linux: one error a
            // second to each destination).
            let refill = tokio::time::Instant::now() + super::budget::ERROR_GAP;
            tokio::time::sleep_until(refill.min(tokio::time::Instant::from_std(self.give_up_at)))
                .await;
            1
        } else {
            before
        };
        let silent: Vec<Ttl> = (0..before)
            .filter(|&i| {
                self.answers.was_sent(Ttl(i as u8 + 1)) && !self.answers.known(Ttl(i as u8 + 1))
            })
            .map(|i| Ttl(i as u8 + 1))
            .collect();
        let mut deadline = None;
        for &ttl in &silent {
            if let Sent::At(at) = self.send(ttl, expected).await? {
                deadline = Some(at + self.opts.timeout);
            }
        }
        if let Some(deadline) = deadline {
            self.wait_until(deadline, |a| silent.iter().all(|&t| a.known(t)))
                .await;
        }
        Ok(())
    }

    /// If `router` was seen at `ttl` and is in the stop set, fill the hops
    /// before it from there (inferred). Returns whether it did.
    fn copy_prefix_before(&mut self, ttl: Ttl, router: IpAddr) -> bool {
        let shared = lock(&self.tracer.shared);
        let Some(prefix) =
            shared
                .knowledge
                .prefix_before(ttl, router, Instant::now(), self.opts.remember)
        else {
            return false;
        };
        for (i, addr) in prefix.iter().enumerate() {
            self.answers.infer(Ttl(i as u8 + 1), *addr);
        }
        true
    }

    /// Send the probe with this TTL once its router's ration allows.
    async fn send(&mut self, ttl: Ttl, expected: &KnownPath) -> Result<Sent, TraceError> {
        let asked = expected.asked_at(self.dst, ttl);
        self.asked[usize::from(ttl.0 - 1)] = asked;
        if let Some(who) = asked {
            let now = Instant::now();
            let latest = (now + self.opts.patience).min(self.give_up_at.max(now));
            let slot = lock(&self.tracer.shared).budgets.reserve(who, now, latest);
            let router = match who {
                Asked::Router(r) => Some(r),
                Asked::Unknown { .. } => None,
            };
            match slot {
                None => {
                    let waited = lock(&self.tracer.shared).budgets.wait(who, now);
                    self.limits.push(HopLimit {
                        ttl,
                        router,
                        waited,
                        answered: false,
                    });
                    return Ok(Sent::NotAsked);
                }
                Some(at) if at > now => {
                    // Answered once its answer comes (see `record`).
                    self.limits.push(HopLimit {
                        ttl,
                        router,
                        waited: at - now,
                        answered: false,
                    });
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                }
                Some(_) => {}
            }
        }
        let dst = self.dst;
        let id = self.tracer.allocate_id();
        let data = self.tracer.tokens.payload(dst, id, wire::PROBE_PAYLOAD);
        let packet = match dst {
            IpAddr::V4(_) => wire::emit_echo_v4(id, &data),
            IpAddr::V6(_) => wire::emit_echo_v6(id, &data),
        };
        // Registered before the send: an answer can be queued before
        // `sendto` even returns.
        lock(&self.family.in_flight).insert(
            id,
            Pending {
                dst,
                ttl,
                token: self.tracer.tokens.of(dst, id),
                heard_unverified: false,
                answers: self.tx.clone(),
            },
        );
        self.sent.ids.push(id);
        let outgoing = Outgoing {
            socket: self.family.send.clone(),
            dst,
            ttl: Some(ttl.0),
            packet,
        };
        let first = std::mem::take(&mut self.first_send);
        match self.sender.send(outgoing).await {
            Ok(sent_at) => {
                self.answers.sent(ttl, sent_at);
                Ok(Sent::At(sent_at))
            }
            // No route at all is an answer too: nothing lies beyond.
            Err(source) if first => Err(TraceError::Send { dst, source }),
            Err(_) => Ok(Sent::Refused),
        }
    }

    fn take_answers(&mut self) {
        while let Ok(heard) = self.rx.try_recv() {
            self.record(heard);
        }
    }

    fn record(&mut self, heard: Heard) {
        if !heard.verified {
            // Kept aside for the path; it changes no ration or limit.
            self.answers.record(heard);
            return;
        }
        // A router the trace did not expect spent an error on it.
        let index = usize::from(heard.ttl.0).wrapping_sub(1);
        if heard.kind != ReplyKind::EchoReply {
            let who = Asked::Router(heard.from);
            if self.asked.get(index).copied().flatten() != Some(who) {
                lock(&self.tracer.shared).budgets.spent(who, Instant::now());
            }
        }
        for limit in self.limits.iter_mut().filter(|l| l.ttl == heard.ttl) {
            limit.answered = true;
        }
        self.answers.record(heard);
    }

    /// Take answers until `done` holds or `deadline` passes.
    async fn wait_until(&mut self, deadline: Instant, done: impl Fn(&Answers) -> bool) {
        let deadline = tokio::time::Instant::from_std(deadline);
        self.take_answers();
        while !done(&self.answers) {
            tokio::select! {
                heard = self.rx.recv() => match heard {
                    Some(h) => self.record(h),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
    }

    /// Hops that were not answered because of a router's ration (not
    /// asked, or asked of a router that answers other traces): filled with
    /// the router expected there, marked inferred, and listed as limits.
    /// Answers still queued must be taken first ([`Self::take_answers`]):
    /// this runs under the shared lock, which recording an answer takes.
    fn fill_limited(&mut self, expected: &KnownPath, knowledge: &PathKnowledge, now: Instant) {
        let end = self
            .answers
            .end_ttl()
            .map_or(self.answers.max_hops(), |t| usize::from(t.0 - 1));
        for i in 0..end {
            let ttl = Ttl(i as u8 + 1);
            if self.answers.known(ttl) {
                continue;
            }
            let Some(router) = expected.router_at(ttl) else {
                continue;
            };
            let skipped = self.limits.iter().any(|l| l.ttl == ttl && !l.answered);
            let silent_but_alive = self.answers.was_sent(ttl)
                && knowledge.answers_others(router, now, ALIVE_WITHIN.min(self.opts.remember));
            if !(skipped || silent_but_alive) {
                continue;
            }
            self.answers.infer(ttl, router);
            if !skipped {
                self.limits.push(HopLimit {
                    ttl,
                    router: Some(router),
                    waited: Duration::ZERO,
                    answered: false,
                });
            }
        }
        // One per TTL: answered if any of its probes was, the longest wait.
        self.limits
            .sort_by_key(|l| (l.ttl, !l.answered, std::cmp::Reverse(l.waited)));
        self.limits.dedup_by_key(|l| l.ttl);
    }
}

/// The probes one trace sent; unregistered when the trace ends, however it
/// ends (including cancellation), so late answers are dropped.
struct ProbesInFlight<'a> {
    pending: &'a PendingMap,
    ids: Vec<ProbeId>,
}

impl Drop for ProbesInFlight<'_> {
    fn drop(&mut self) {
        let mut pending = lock(self.pending);
        for id in &self.ids {
            pending.remove(id);
        }
    }
}

impl FamilyTracer {
    /// `ping_ident`'s echo replies are ping's: the kernel drops them here.
    fn open(family: Family, ping_ident: u16) -> Result<FamilyTracer, PrivilegeError> {
        let receive = IcmpSocket::open_raw(family)?;
        receive.filter_echo_replies(EchoReplies::Except(ping_ident));
        let send = Arc::new(sys::open_raw_sender(family)?);
        Ok(FamilyTracer::start(
            send,
            PendingMap::default(),
            |pending| receive_loop(receive, pending),
        ))
    }
}

/// Read every ICMP message on the socket and route the ones that answer a
/// pending probe. Malformed and foreign packets are dropped.
async fn receive_loop(socket: IcmpSocket, pending: PendingMap) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (reply, now) = socket.next_reply(&mut buf).await;
        if let Some((probe, answer)) = match_reply(&pending, &reply, now) {
            // The trace may have finished meanwhile; then nobody listens.
            let _ = probe.send(answer);
        }
    }
}

/// The answer a reply gives to the pending probe it names, if it is one
/// of ours and was really going where the reply says. A verified answer
/// claims the probe; the first unverified one leaves it pending, so that
/// a verified answer can still come and win, and later ones are dropped.
fn match_reply(
    pending: &PendingMap,
    reply: &Reply,
    now: Instant,
) -> Option<(mpsc::UnboundedSender<Heard>, Heard)> {
    let mut pending = lock(pending);
    let probe = pending.get_mut(&reply.probe)?;
    if probe.dst != reply.probe_dst {
        return None;
    }
    let verified = match ProbeTokens::verdict(reply, probe.token) {
        Verdict::Verified => true,
        Verdict::Unverified if !probe.heard_unverified => false,
        Verdict::Unverified | Verdict::Refused => return None,
    };
    probe.heard_unverified |= !verified;
    let heard = Heard {
        ttl: probe.ttl,
        from: reply.from,
        at: now,
        kind: reply.kind,
        verified,
    };
    let answers = if verified {
        pending.remove(&reply.probe)?.answers
    } else {
        probe.answers.clone()
    };
    Some((answers, heard))
}

#[cfg(test)]
mod tests;
