//! What traces have learnt about the paths around the board, shared by
//! every trace of a process. Pure: times go in.
//!
//! The routers near the board are on the way to nearly every target, and
//! asking each of them again for every target spends their ICMP ration
//! (see [`budget`](super::budget)) on answers the board already has. So,
//! as Doubletree does (Donnet et al., SIGMETRICS 2005), a trace starts at
//! the far end, where the target is expected, and probes backwards only
//! until it meets a router already seen at that TTL: the hops before it
//! are the ones seen before it then (the *stop set*). And as mtr and
//! trippy do, what earlier traces learnt is kept: each target's last path,
//! and the last path into its subnet (IPv4 /24, IPv6 /64) for a target
//! not traced yet. Everything learnt expires after `fresh_for` (the trace
//! cycle), so each cycle asks the shared hops once again.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::budget::Asked;
use super::trace::{Path, Ttl};

/// What is known of the path to one place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownPath {
    /// Who answered at each TTL from 1 (`None`: nobody); the destination
    /// is last when it answered.
    pub hops: Vec<Option<IpAddr>>,
    /// The TTL at which the destination itself answered.
    pub reached_at: Option<Ttl>,
    /// The TTL at which a router said the destination is unreachable
    /// (that router answers every TTL from there, from its ration).
    pub unreachable_at: Option<Ttl>,
}

impl KnownPath {
    fn of(path: &Path) -> KnownPath {
        KnownPath {
            hops: path.hops.iter().map(|h| h.addr).collect(),
            reached_at: path
                .reached
                .then(|| path.hops.last().map(|h| h.ttl))
                .flatten(),
            unreachable_at: path
                .unreachable_code
                .and_then(|_| path.hops.last().map(|h| h.ttl)),
        }
    }

    /// The TTL a trace starts at: where the destination answered, else
    /// just past the last router seen, else 1 (every hop is asked).
    pub fn start_ttl(&self) -> Ttl {
        self.reached_at.or(self.unreachable_at).unwrap_or_else(|| {
            let past_last_router = self
                .hops
                .iter()
                .rposition(Option::is_some)
                .map_or(0, |i| i + 1);
            Ttl(u8::try_from(past_last_router + 1).unwrap_or(u8::MAX))
        })
    }

    /// Whether a probe with this TTL is expected to reach the destination
    /// (which answers echo requests without rationing).
    pub fn reaches(&self, ttl: Ttl) -> bool {
        self.reached_at.is_some_and(|d| ttl >= d)
    }

    /// The router expected to answer at `ttl`, if one was seen there.
    pub fn router_at(&self, ttl: Ttl) -> Option<IpAddr> {
        if self.reaches(ttl) {
            return None;
        }
        self.hops
            .get(usize::from(ttl.0).checked_sub(1)?)
            .copied()
            .flatten()
    }

    /// Whose ration a probe with this TTL spends; `None` when it is
    /// expected to reach the destination, or to go past the last router
    /// a trace of this place saw (into silence: a destination that does
    /// not answer costs no router anything; a router that does answer
    /// there is charged then).
    pub fn asked_at(&self, dst: IpAddr, ttl: Ttl) -> Option<Asked> {
        if let Some(at) = self.unreachable_at.filter(|at| ttl >= *at) {
            return Some(match self.router_at(at) {
                Some(router) => Asked::Router(router),
                None => Asked::Unknown {
                    v6: dst.is_ipv6(),
                    ttl: at,
                },
            });
        }
        let past_known = !self.is_empty() && usize::from(ttl.0) > self.hops.len();
        if self.reaches(ttl) || past_known {
            return None;
        }
        Some(match self.router_at(ttl) {
            Some(router) => Asked::Router(router),
            None => Asked::Unknown {
                v6: dst.is_ipv6(),
                ttl,
            },
        })
    }

    /// Whether nothing at all is known.
    pub fn is_empty(&self) -> bool {
        self.reached_at.is_none()
            && self.unreachable_at.is_none()
            && self.hops.iter().all(Option::is_none)
    }

    /// This path, with the gaps filled from `other`.
    pub fn or(mut self, other: &KnownPath) -> KnownPath {
        if self.reached_at.is_none() && self.unreachable_at.is_none() {
            self.reached_at = other.reached_at;
            self.unreachable_at = other.unreachable_at;
        }
        let end = self
            .reached_at
            .map_or(other.hops.len(), |d| usize::from(d.0).saturating_sub(1));
        if self.hops.len() < end {
            self.hops.resize(end, None);
        }
        for (mine, theirs) in self.hops.iter_mut().zip(&other.hops).take(end) {
            if mine.is_none() {
                *mine = *theirs;
            }
        }
        self
    }
}

#[derive(Debug, Clone)]
struct Learnt<T> {
    value: T,
    at: Instant,
}

/// Whose path is remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Place {
    Target(IpAddr),
    /// The network part of an address: IPv4 /24, IPv6 /64.
    Subnet(IpAddr),
}

/// The subnet a target is assumed to share its last routers with.
pub fn subnet_of(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & 0xffff_ff00)),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & !((1u128 << 64) - 1))),
    }
}

/// Beyond this many remembered entries of a kind, stale ones are dropped.
const PRUNE_AT: usize = 20_000;

/// The paths learnt so far.
#[derive(Debug, Default)]
pub struct PathKnowledge {
    /// Doubletree's stop set: a router seen at a TTL, and the routers
    /// before it on that trace.
    stop_set: HashMap<(Ttl, IpAddr), Learnt<Vec<IpAddr>>>,
    paths: HashMap<Place, Learnt<KnownPath>>,
    /// When each router last answered any probe.
    answered: HashMap<IpAddr, Instant>,
}

impl PathKnowledge {
    /// What a trace to `dst` can expect: its own last path, with the gaps
    /// filled from its subnet's, if either was learnt within `fresh_for`.
    pub fn expect(&self, dst: IpAddr, now: Instant, fresh_for: Duration) -> KnownPath {
        let fresh = |place| {
            self.paths
                .get(&place)
                .filter(|l| now.saturating_duration_since(l.at) < fresh_for)
                .map(|l| &l.value)
        };
        match (
            fresh(Place::Target(dst)),
            fresh(Place::Subnet(subnet_of(dst))),
        ) {
            (Some(own), Some(subnet)) => own.clone().or(subnet),
            (Some(own), None) => own.clone(),
            (None, Some(subnet)) => subnet.clone(),
            (None, None) => KnownPath::default(),
        }
    }

    /// The routers before `router` when it was seen at `ttl` within
    /// `fresh_for` (one per TTL from 1), if it was.
    pub fn prefix_before(
        &self,
        ttl: Ttl,
        router: IpAddr,
        now: Instant,
        fresh_for: Duration,
    ) -> Option<&[IpAddr]> {
        self.stop_set
            .get(&(ttl, router))
            .filter(|l| now.saturating_duration_since(l.at) < fresh_for)
            .map(|l| l.value.as_slice())
    }

    /// Whether `router` answered any probe within `within`.
    pub fn answers_others(&self, router: IpAddr, now: Instant, within: Duration) -> bool {
        self.answered
            .get(&router)
            .is_some_and(|at| now.saturating_duration_since(*at) < within)
    }

    /// Take in a finished trace to `dst`.
    pub fn learn(&mut self, dst: IpAddr, path: &Path, now: Instant, fresh_for: Duration) {
        let end = path.hops.len() - usize::from(path.reached);
        let mut prefix: Vec<IpAddr> = Vec::new();
        let mut prefix_complete = true;
        // Whether the prefix so far was copied rather than asked: then an
        // entry that exists keeps its age, so that it still expires a
        // cycle after the shared hops were last really asked, and the next
        // trace asks them again.
        let mut prefix_copied = false;
        for (i, hop) in path.hops.iter().enumerate() {
            let Some(addr) = hop.addr else {
                prefix_complete = false;
                continue;
            };
            if !hop.inferred && hop.last_seen.is_none() {
                self.answered.insert(addr, now);
            }
            if i < end && prefix_complete {
                if !hop.inferred {
                    let key = (hop.ttl, addr);
                    let at = match self.stop_set.get(&key) {
                        Some(old) if prefix_copied => old.at,
                        _ => now,
                    };
                    self.stop_set.insert(
                        key,
                        Learnt {
                            value: prefix.clone(),
                            at,
                        },
                    );
                }
                prefix_copied |= hop.inferred;
                prefix.push(addr);
            }
        }
        let known = KnownPath::of(path);
        let subnet = Place::Subnet(subnet_of(dst));
        // A subnet keeps a path that reached its destination over one that
        // did not (its silent hosts say less about where it is).
        let replace_subnet = known.hops.iter().any(Option::is_some)
            && self.paths.get(&subnet).is_none_or(|old| {
                known.reached_at.is_some()
                    || old.value.reached_at.is_none()
                    || now.saturating_duration_since(old.at) >= fresh_for
            });
        if replace_subnet {
            self.paths.insert(
                subnet,
                Learnt {
                    value: known.clone(),
                    at: now,
                },
            );
        }
        self.paths.insert(
            Place::Target(dst),
            Learnt {
                value: known,
                at: now,
            },
        );
        self.prune(now, fresh_for);
    }

    fn prune(&mut self, now: Instant, fresh_for: Duration) {
        let fresh = |at: &Instant| now.saturating_duration_since(*at) < fresh_for;
        if self.paths.len() > PRUNE_AT {
            self.paths.retain(|_, l| fresh(&l.at));
        }
        if self.stop_set.len() > PRUNE_AT {
            self.stop_set.retain(|_, l| fresh(&l.at));
        }
        if self.answered.len() > PRUNE_AT {
            self.answered.retain(|_, at| fresh(at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Hop;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn path(addrs: &[Option<&str>], reached: bool) -> Path {
        Path {
            hops: addrs
                .iter()
                .enumerate()
                .map(|(i, a)| Hop::new(Ttl(i as u8 + 1), a.map(ip), a.map(|_| 1.0)))
                .collect(),
            reached,
            unreachable_code: None,
            limits: Vec::new(),
        }
    }

    const CYCLE: Duration = Duration::from_secs(600);
    const R1: &str = "198.18.1.1";
    const R2: &str = "198.18.2.2";

    /// Teaches `k` that `dst` answered at `at` through r1 and r2.
    fn learn_through_r1_r2(k: &mut PathKnowledge, dst: &str, at: Instant) {
        k.learn(
            ip(dst),
            &path(&[Some(R1), Some(R2), Some(dst)], true),
            at,
            CYCLE,
        );
    }

    #[test]
    fn a_trace_fills_the_stop_set_with_the_routers_before_each_hop() {
        let mut k = PathKnowledge::default();
        let t0 = Instant::now();
        let dst = ip("198.19.4.7");
        learn_through_r1_r2(&mut k, "198.19.4.7", t0);
        assert_eq!(
            k.prefix_before(Ttl(2), ip(R2), t0, CYCLE),
            Some(&[ip(R1)][..])
        );
        assert_eq!(k.prefix_before(Ttl(1), ip(R1), t0, CYCLE), Some(&[][..]));
        // The destination is no stop: the path goes no further through it.
        assert_eq!(k.prefix_before(Ttl(3), dst, t0, CYCLE), None);
        // A router seen at another TTL is another place in the tree.
        assert_eq!(k.prefix_before(Ttl(3), ip(R2), t0, CYCLE), None);
        // Stale after a cycle.
        assert_eq!(k.prefix_before(Ttl(2), ip(R2), t0 + CYCLE, CYCLE), None);
    }

    #[test]
    fn a_copied_prefix_does_not_keep_the_stop_set_young() {
        let mut k = PathKnowledge::default();
        let t0 = Instant::now();
        learn_through_r1_r2(&mut k, "198.19.4.7", t0);
        // Later traces copy r1 from the stop set and ask r2 only.
        let mut copied = path(&[Some(R1), Some(R2), Some("198.19.4.8")], true);
        copied.hops[0].inferred = true;
        let half = t0 + CYCLE / 2;
        k.learn(ip("198.19.4.8"), &copied, half, CYCLE);
        assert!(k.prefix_before(Ttl(2), ip(R2), half, CYCLE).is_some());
        // A cycle after r1 was really asked, the entry is stale: the next
        // trace goes back to r1.
        assert_eq!(k.prefix_before(Ttl(2), ip(R2), t0 + CYCLE, CYCLE), None);
        // Asked again in full: young again.
        learn_through_r1_r2(&mut k, "198.19.4.7", t0 + CYCLE);
        assert!(k.prefix_before(Ttl(2), ip(R2), t0 + CYCLE, CYCLE).is_some());
    }

    #[test]
    fn a_gap_ends_what_the_stop_set_can_vouch_for() {
        let mut k = PathKnowledge::default();
        let t0 = Instant::now();
        k.learn(ip("198.19.5.1"), &path(&[None, Some(R2)], false), t0, CYCLE);
        assert_eq!(k.prefix_before(Ttl(2), ip(R2), t0, CYCLE), None);
        // Its neighbours start past the last router it showed, and the
        // probes into the silence beyond cost no router anything.
        let e = k.expect(ip("198.19.5.2"), t0, CYCLE);
        assert_eq!(e.start_ttl(), Ttl(3));
        assert_eq!(e.asked_at(ip("198.19.5.2"), Ttl(3)), None);
        assert_eq!(
            e.asked_at(ip("198.19.5.2"), Ttl(1)),
            Some(Asked::Unknown {
                v6: false,
                ttl: Ttl(1)
            }),
            "a gap in what is known"
        );
        assert!(k.answers_others(ip(R2), t0, CYCLE));
        assert!(!k.answers_others(ip(R1), t0, CYCLE));
    }

    #[test]
    fn a_new_target_expects_its_subnets_path() {
        let mut k = PathKnowledge::default();
        let t0 = Instant::now();
        learn_through_r1_r2(&mut k, "198.19.4.7", t0);
        let e = k.expect(ip("198.19.4.99"), t0, CYCLE);
        assert_eq!(e.start_ttl(), Ttl(3));
        assert_eq!(e.router_at(Ttl(2)), Some(ip(R2)));
        assert_eq!(
            e.asked_at(ip("198.19.4.99"), Ttl(2)),
            Some(Asked::Router(ip(R2)))
        );
        assert_eq!(
            e.asked_at(ip("198.19.4.99"), Ttl(3)),
            None,
            "the destination"
        );
        // Another subnet knows nothing: every hop is asked, from TTL 1.
        let other = k.expect(ip("198.19.9.1"), t0, CYCLE);
        assert_eq!(other.start_ttl(), Ttl(1));
        assert_eq!(
            other.asked_at(ip("198.19.9.1"), Ttl(4)),
            Some(Asked::Unknown {
                v6: false,
                ttl: Ttl(4)
            })
        );
    }

    #[test]
    fn a_silent_host_does_not_hide_its_subnets_live_path() {
        let mut k = PathKnowledge::default();
        let t0 = Instant::now();
        learn_through_r1_r2(&mut k, "198.19.3.10", t0);
        k.learn(
            ip("198.19.3.20"),
            &path(&[Some(R1), None], false),
            t0,
            CYCLE,
        );
        // The silent host's own path has a gap at 2; its subnet fills it.
        let e = k.expect(ip("198.19.3.20"), t0, CYCLE);
        assert_eq!(e.router_at(Ttl(2)), Some(ip(R2)));
        assert_eq!(e.start_ttl(), Ttl(3));
    }

    #[test]
    fn an_unreachable_place_is_asked_at_the_router_that_says_so() {
        let mut k = PathKnowledge::default();
        let t0 = Instant::now();
        let dst = ip("198.19.200.1");
        let mut p = path(&[Some(R1)], false);
        p.unreachable_code = Some(0);
        k.learn(dst, &p, t0, CYCLE);
        let e = k.expect(dst, t0, CYCLE);
        assert_eq!(e.start_ttl(), Ttl(1));
        // Every TTL from there costs r1's ration: it answers them all.
        assert_eq!(e.asked_at(dst, Ttl(1)), Some(Asked::Router(ip(R1))));
        assert_eq!(e.asked_at(dst, Ttl(3)), Some(Asked::Router(ip(R1))));
    }

    #[test]
    fn a_long_path_does_not_overflow_the_start() {
        let e = KnownPath {
            hops: vec![Some(ip(R1)); 255],
            ..KnownPath::default()
        };
        assert_eq!(e.start_ttl(), Ttl(255));
    }

    #[test]
    fn subnets_are_v4_24_and_v6_64() {
        assert_eq!(subnet_of(ip("198.19.4.77")), ip("198.19.4.0"));
        assert_eq!(subnet_of(ip("2001:db8:4::77")), ip("2001:db8:4::"));
        assert_eq!(subnet_of(ip("2001:db8:4:0:1::1")), ip("2001:db8:4::"));
    }
}
