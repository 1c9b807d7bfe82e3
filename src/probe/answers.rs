//! What one trace heard, TTL by TTL, and the [`Path`] it makes: which
//! TTLs answered, with what and after how long, which hops are inferred
//! from other traces, and when the trace is complete. Pure: the trace in
//! [`trace`](super::trace) feeds it the answers its receive task hears.
//!
//! Verified answers win. An unverified one (an ICMP error whose quote is
//! too short to hold the probe's token, see [`Verdict`]) is kept aside:
//! while the trace runs it counts as silence, so it decides nothing (not
//! where the path ends, not when to stop waiting, not what to ask next),
//! and in the finished path it fills its hop only when nothing verified
//! answered there. Such a hop is what a router that quotes the RFC 792
//! minimum said, or what someone who saw the probe (the destination, or a
//! host on the path) forged; a blind forger cannot name the probe, whose
//! id is keyed.
//!
//! [`Verdict`]: super::wire::Verdict

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::trace::{Hop, HopLimit, Path, Ttl};
use super::wire::ReplyKind;

/// An answer as the receive task hears it, for the trace that sent the
/// probe (which knows when the probe left).
#[derive(Debug, Clone, Copy)]
pub(super) struct Heard {
    pub(super) ttl: Ttl,
    pub(super) from: IpAddr,
    pub(super) at: Instant,
    pub(super) kind: ReplyKind,
    /// It carried the probe's token (see [`Verdict`](super::wire::Verdict)).
    pub(super) verified: bool,
}

/// An answer with its round-trip time.
#[derive(Debug, Clone, Copy)]
struct HopAnswer {
    ttl: Ttl,
    from: IpAddr,
    rtt: Duration,
    kind: ReplyKind,
}

/// The answers of one trace so far, and when it is complete. Pure.
#[derive(Debug)]
pub(super) struct Answers {
    /// Verified answers: the only ones the trace acts on.
    by_ttl: Vec<Option<HopAnswer>>,
    /// The first unverified answer of each TTL, for a hop nothing
    /// verified answered.
    unverified: Vec<Option<HopAnswer>>,
    sent_at: Vec<Option<Instant>>,
    /// Hops not answered but known from elsewhere (see [`Hop::inferred`]).
    inferred: Vec<Option<IpAddr>>,
}

impl Answers {
    pub(super) fn new(max_hops: u8) -> Answers {
        Answers {
            by_ttl: vec![None; usize::from(max_hops)],
            unverified: vec![None; usize::from(max_hops)],
            sent_at: vec![None; usize::from(max_hops)],
            inferred: vec![None; usize::from(max_hops)],
        }
    }

    /// When the probe with this TTL left (for its round-trip time).
    pub(super) fn sent(&mut self, ttl: Ttl, at: Instant) {
        if let Some(slot) = self.sent_at.get_mut(usize::from(ttl.0).wrapping_sub(1)) {
            *slot = Some(at);
        }
    }

    pub(super) fn record(&mut self, heard: Heard) {
        let index = usize::from(heard.ttl.0).wrapping_sub(1);
        // Heard only for probes handed to the sender, whose send the trace
        // awaited before it reads answers.
        let rtt = self
            .sent_at
            .get(index)
            .copied()
            .flatten()
            .map_or(Duration::ZERO, |sent| {
                heard.at.saturating_duration_since(sent)
            });
        let answer = HopAnswer {
            ttl: heard.ttl,
            from: heard.from,
            rtt,
            kind: heard.kind,
        };
        if heard.verified {
            if let Some(slot) = self.by_ttl.get_mut(index) {
                *slot = Some(answer);
            }
        } else if let Some(slot) = self.unverified.get_mut(index) {
            slot.get_or_insert(answer);
        }
    }

    /// A hop known without an answer in this trace.
    pub(super) fn infer(&mut self, ttl: Ttl, addr: IpAddr) {
        let index = usize::from(ttl.0).wrapping_sub(1);
        if self.by_ttl.get(index).is_some_and(Option::is_none) {
            self.inferred[index] = Some(addr);
        }
    }

    /// How many TTLs the trace may ask.
    pub(super) fn max_hops(&self) -> usize {
        self.by_ttl.len()
    }

    /// Whether the hop at `ttl` answered this trace.
    pub(super) fn answered(&self, ttl: Ttl) -> bool {
        let index = usize::from(ttl.0).wrapping_sub(1);
        self.by_ttl.get(index).is_some_and(Option::is_some)
    }

    /// Whether a probe went out at `ttl`.
    pub(super) fn was_sent(&self, ttl: Ttl) -> bool {
        let index = usize::from(ttl.0).wrapping_sub(1);
        self.sent_at.get(index).is_some_and(Option::is_some)
    }

    /// The highest TTL that answered, if any did.
    pub(super) fn highest_answered(&self) -> Option<Ttl> {
        let index = self.by_ttl.iter().rposition(Option::is_some)?;
        Some(Ttl(index as u8 + 1))
    }

    /// Whether the hop at `ttl` is answered or inferred.
    pub(super) fn known(&self, ttl: Ttl) -> bool {
        let index = usize::from(ttl.0).wrapping_sub(1);
        self.by_ttl.get(index).is_some_and(Option::is_some)
            || self.inferred.get(index).is_some_and(Option::is_some)
    }

    /// The router that answered at `ttl` with "time exceeded".
    pub(super) fn router_at(&self, ttl: Ttl) -> Option<IpAddr> {
        let a = (*self.by_ttl.get(usize::from(ttl.0).wrapping_sub(1))?)?;
        (a.kind == ReplyKind::TimeExceeded).then_some(a.from)
    }

    /// The lowest TTL at which the path ended: the destination answered,
    /// or someone said it is unreachable.
    pub(super) fn end_ttl(&self) -> Option<Ttl> {
        end_of(&self.by_ttl)
    }

    /// Complete from `start` when the path has ended and every hop from
    /// `start` to the end answered: nothing more can change that part.
    pub(super) fn complete_from(&self, start: Ttl) -> bool {
        match self.end_ttl() {
            Some(end) => {
                let from = usize::from(start.0 - 1).min(usize::from(end.0 - 1));
                self.by_ttl[from..usize::from(end.0 - 1)]
                    .iter()
                    .all(Option::is_some)
            }
            None => false,
        }
    }

    /// The path: each hop from its verified answer, else its unverified
    /// one, else from what is known elsewhere. An unverified end (echo
    /// replies are never unverified: an unreachable) that a verified
    /// answer further out contradicts is dropped.
    pub(super) fn into_path(self, limits: Vec<HopLimit>) -> Path {
        let furthest_verified = self.highest_answered();
        let usable = |u: &HopAnswer| {
            u.kind == ReplyKind::TimeExceeded || furthest_verified.is_none_or(|f| u.ttl > f)
        };
        let by_ttl: Vec<Option<HopAnswer>> = self
            .by_ttl
            .iter()
            .zip(&self.unverified)
            .map(|(verified, unverified)| verified.or(unverified.filter(usable)))
            .collect();
        let end = end_of(&by_ttl);
        let last = end.map_or_else(
            || {
                by_ttl
                    .iter()
                    .zip(&self.inferred)
                    .rposition(|(a, i)| a.is_some() || i.is_some())
                    .map_or(0, |i| i + 1)
            },
            |t| usize::from(t.0),
        );
        let hops = by_ttl[..last]
            .iter()
            .zip(&self.inferred)
            .enumerate()
            .map(|(i, (a, inferred))| {
                let ttl = Ttl(i as u8 + 1);
                match (a, inferred) {
                    (Some(a), _) => Hop::new(ttl, Some(a.from), Some(a.rtt.as_secs_f64() * 1000.0)),
                    (None, Some(addr)) => Hop {
                        inferred: true,
                        ..Hop::new(ttl, Some(*addr), None)
                    },
                    (None, None) => Hop::new(ttl, None, None),
                }
            })
            .collect();
        let end_answer = end.and_then(|t| by_ttl[usize::from(t.0 - 1)]);
        Path {
            hops,
            reached: matches!(end_answer.map(|a| a.kind), Some(ReplyKind::EchoReply)),
            unreachable_code: match end_answer.map(|a| a.kind) {
                Some(ReplyKind::Unreachable { code }) => Some(code),
                _ => None,
            },
            limits: limits
                .into_iter()
                .filter(|l| usize::from(l.ttl.0) <= last)
                .collect(),
        }
    }
}

/// The lowest TTL of `answers` at which the path ended: the destination
/// answered, or someone said it is unreachable.
fn end_of(answers: &[Option<HopAnswer>]) -> Option<Ttl> {
    answers
        .iter()
        .flatten()
        .filter(|a| !matches!(a.kind, ReplyKind::TimeExceeded))
        .map(|a| a.ttl)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Heard `ttl` ms after the probe left at `T0`.
    fn answer(ttl: u8, from: &str, kind: ReplyKind) -> Heard {
        Heard {
            ttl: Ttl(ttl),
            from: ip(from),
            at: *T0 + Duration::from_millis(u64::from(ttl)),
            kind,
            verified: true,
        }
    }

    /// The same, from an error whose quote was too short to check.
    fn unverified(ttl: u8, from: &str, kind: ReplyKind) -> Heard {
        Heard {
            verified: false,
            ..answer(ttl, from, kind)
        }
    }

    static T0: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

    /// Answers with every probe sent at `T0`.
    fn answers(max_hops: u8) -> Answers {
        let mut a = Answers::new(max_hops);
        for ttl in 1..=max_hops {
            a.sent(Ttl(ttl), *T0);
        }
        a
    }

    #[test]
    fn path_stops_at_the_destination() {
        let mut a = answers(30);
        a.record(answer(4, "198.19.3.10", ReplyKind::EchoReply));
        a.record(answer(3, "198.19.3.10", ReplyKind::EchoReply));
        a.record(answer(1, "198.18.1.1", ReplyKind::TimeExceeded));
        assert!(!a.complete_from(Ttl(1)), "hop 2 still missing");
        a.record(answer(2, "198.18.2.2", ReplyKind::TimeExceeded));
        assert!(a.complete_from(Ttl(1)));
        let p = a.into_path(Vec::new());
        assert!(p.reached);
        let addrs: Vec<_> = p.hops.iter().map(|h| h.addr.unwrap()).collect();
        assert_eq!(
            addrs,
            [ip("198.18.1.1"), ip("198.18.2.2"), ip("198.19.3.10")]
        );
        assert_eq!(p.hops[2].rtt_ms, Some(3.0));
    }

    #[test]
    fn silent_destination_ends_at_the_last_answer() {
        let mut a = answers(30);
        a.record(answer(1, "198.18.1.1", ReplyKind::TimeExceeded));
        a.record(answer(2, "198.18.2.2", ReplyKind::TimeExceeded));
        assert!(!a.complete_from(Ttl(1)));
        let p = a.into_path(Vec::new());
        assert!(!p.reached);
        assert_eq!(p.hops.len(), 2);
        assert_eq!(p.last_answering().unwrap().addr, Some(ip("198.18.2.2")));
    }

    #[test]
    fn silent_hop_in_the_middle_is_kept_as_a_gap() {
        let mut a = answers(30);
        a.record(answer(1, "198.18.1.1", ReplyKind::TimeExceeded));
        a.record(answer(3, "198.19.3.10", ReplyKind::EchoReply));
        let p = a.into_path(Vec::new());
        assert!(p.reached);
        assert_eq!(p.hops.len(), 3);
        assert_eq!(p.hops[1].addr, None);
        assert_eq!(p.hops[1].rtt_ms, None);
    }

    #[test]
    fn unreachable_ends_the_path_unreached() {
        let mut a = answers(30);
        a.record(answer(1, "198.18.1.1", ReplyKind::Unreachable { code: 0 }));
        a.record(answer(2, "198.18.1.1", ReplyKind::Unreachable { code: 0 }));
        assert!(a.complete_from(Ttl(1)));
        let p = a.into_path(Vec::new());
        assert!(!p.reached);
        assert_eq!(p.unreachable_code, Some(0));
        assert_eq!(p.hops.len(), 1);
    }

    #[test]
    fn nothing_answered_is_an_empty_path() {
        let p = answers(30).into_path(Vec::new());
        assert!(p.hops.is_empty() && !p.reached);
        assert_eq!(p.last_answering(), None);
    }

    #[test]
    fn verified_answers_win_and_unverified_ones_decide_nothing() {
        let mut a = answers(30);
        a.record(answer(1, "198.18.1.1", ReplyKind::TimeExceeded));
        // A forged hop and a forged end, before the real answers.
        a.record(unverified(2, "198.19.3.66", ReplyKind::TimeExceeded));
        a.record(unverified(
            3,
            "198.19.3.66",
            ReplyKind::Unreachable { code: 1 },
        ));
        assert!(!a.answered(Ttl(2)) && !a.known(Ttl(2)));
        assert_eq!(a.router_at(Ttl(2)), None);
        assert_eq!(a.end_ttl(), None, "an unverified error ends nothing");
        assert!(!a.complete_from(Ttl(1)));
        a.record(answer(2, "198.18.2.2", ReplyKind::TimeExceeded));
        a.record(unverified(2, "198.19.3.67", ReplyKind::TimeExceeded));
        a.record(answer(3, "198.19.3.10", ReplyKind::EchoReply));
        assert!(a.complete_from(Ttl(1)));
        let p = a.into_path(Vec::new());
        let addrs: Vec<_> = p.hops.iter().map(|h| h.addr.unwrap()).collect();
        assert_eq!(
            addrs,
            [ip("198.18.1.1"), ip("198.18.2.2"), ip("198.19.3.10")]
        );
        assert!(p.reached);
        assert_eq!(p.unreachable_code, None);
    }

    #[test]
    fn an_unverified_end_counts_only_past_every_verified_answer() {
        let mut a = answers(30);
        a.record(answer(1, "198.18.1.1", ReplyKind::TimeExceeded));
        a.record(unverified(
            2,
            "198.19.3.66",
            ReplyKind::Unreachable { code: 1 },
        ));
        a.record(answer(4, "198.19.3.10", ReplyKind::EchoReply));
        let p = a.into_path(Vec::new());
        assert!(p.reached, "the destination's own reply is verified");
        assert_eq!(p.hops.len(), 4);
        assert_eq!(p.hops[1].addr, None);

        // A router that quotes the minimum, saying the network is gone.
        let mut a = answers(30);
        a.record(answer(1, "198.18.1.1", ReplyKind::TimeExceeded));
        a.record(unverified(
            2,
            "198.18.2.2",
            ReplyKind::Unreachable { code: 0 },
        ));
        let p = a.into_path(Vec::new());
        assert_eq!(p.unreachable_code, Some(0));
        assert_eq!(p.hops.len(), 2);
    }

    #[test]
    fn a_router_quoting_the_minimum_still_shows_where_nothing_verified_did() {
        let mut a = answers(30);
        a.record(unverified(1, "198.18.1.1", ReplyKind::TimeExceeded));
        a.record(unverified(1, "198.19.3.66", ReplyKind::TimeExceeded));
        a.record(answer(2, "198.19.3.10", ReplyKind::EchoReply));
        let p = a.into_path(Vec::new());
        assert!(p.reached);
        assert_eq!(p.hops[0].addr, Some(ip("198.18.1.1")), "the first kept");
    }

    #[test]
    fn out_of_range_ttl_is_ignored() {
        let mut a = answers(3);
        a.record(answer(0, "198.18.1.1", ReplyKind::EchoReply));
        a.record(answer(9, "198.18.1.1", ReplyKind::EchoReply));
        assert!(a.into_path(Vec::new()).hops.is_empty());
    }
}
