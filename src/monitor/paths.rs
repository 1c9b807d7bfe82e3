//! What a target's path shows between traces: a new trace merged with
//! what earlier ones saw, and when an unsettled trace is asked again.
//! Pure.
//!
//! Routers ration their ICMP answers, so a trace can come back with a hop
//! missing that was there a round ago. A hop seen within the last trace
//! cycle stays on the dashboard, marked with when it was last seen; only
//! a different router seen fresh at a TTL changes the path
//! ([`cause::path_changed`](super::cause::path_changed)). A trace that a
//! ration held back is asked again in a later round, once the ration has
//! refilled, a few times per cycle.

use std::net::IpAddr;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::probe::{Hop, Path};

/// How many times per trace cycle a trace that a ration held back is
/// asked again.
pub const RETRIES_PER_CYCLE: u8 = 4;

/// How long a hop that stopped answering stays on the page: through the
/// trace cycle after the one it was last seen in. A target's periodic
/// trace comes a cycle after the last, so one cycle would drop the hop at
/// the very trace that first misses it.
pub fn keep_for(trace_every: Duration) -> Duration {
    trace_every.saturating_mul(2)
}

/// The hops to show after a trace at `now`: the new ones, with a hop the
/// trace did not get an answer from filled from `old` when that hop was
/// seen within `keep_for` (the target's own sighting says more than one
/// inferred from its neighbours). `old_ts` is when `old` was traced (the time its fresh hops
/// were seen). The destination of `old` is never carried over as a
/// router, and nothing is kept past the end of a path that ended.
pub fn merge(
    target: Option<IpAddr>,
    old: &[Hop],
    old_ts: Timestamp,
    new: &Path,
    now: Timestamp,
    keep_for: Duration,
) -> Vec<Hop> {
    let ended = new.reached || new.unreachable_code.is_some();
    let old_routers = old
        .iter()
        .take_while(|h| !(h.addr.is_some() && h.addr == target))
        .collect::<Vec<_>>();
    let len = if ended {
        new.hops.len()
    } else {
        new.hops.len().max(old_routers.len())
    };
    let end_index = ended.then(|| new.hops.len().saturating_sub(1));
    (0..len)
        .map(|i| {
            let fresh = new.hops.get(i).copied();
            if fresh.is_some_and(|h| h.fresh()) || Some(i) == end_index {
                return fresh.expect("within the new path");
            }
            let ttl = crate::probe::Ttl(i as u8 + 1);
            let kept = old_routers.get(i).and_then(|h| {
                let seen = h.last_seen.unwrap_or(old_ts);
                // Only what this target's own traces saw is kept.
                let own = h.addr.is_some() && !h.inferred;
                (own && now.since(seen) < keep_for).then_some(Hop {
                    rtt_ms: None,
                    last_seen: Some(seen),
                    ..**h
                })
            });
            kept.unwrap_or_else(|| fresh.unwrap_or(Hop::new(ttl, None, None)))
        })
        .collect()
}

/// Retries of a target's trace that rations held back.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retries {
    /// When the first held-back trace of this run was taken.
    since: Option<Timestamp>,
    count: u8,
}

impl Retries {
    /// Take in a trace at `now`; returns whether to trace again next
    /// round. A settled trace ends the run; a held-back one is retried up
    /// to [`RETRIES_PER_CYCLE`] times within a cycle, and a new run starts
    /// a cycle later.
    pub fn after_trace(&mut self, unsettled: bool, now: Timestamp, cycle: Duration) -> bool {
        if !unsettled {
            *self = Retries::default();
            return false;
        }
        match self.since {
            Some(since) if now.since(since) < cycle => {}
            _ => {
                self.since = Some(now);
                self.count = 0;
            }
        }
        self.count = self.count.saturating_add(1);
        self.count <= RETRIES_PER_CYCLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::testkit::{hop, ip, path};

    const CYCLE: Duration = Duration::from_secs(600);
    const DST: &str = "198.19.4.7";

    /// The path to [`DST`] through r1 and r2, all answering.
    fn via_r1_r2() -> [Hop; 3] {
        [
            hop(1, Some("198.18.1.1")),
            hop(2, Some("198.18.2.2")),
            hop(3, Some(DST)),
        ]
    }

    /// [`merge`] of the path to [`DST`] traced at `t0` with `new`, five
    /// seconds on.
    fn merge_five_seconds_on(old: &[Hop], t0: Timestamp, new: &Path) -> Vec<Hop> {
        merge(
            Some(ip(DST)),
            old,
            t0,
            new,
            t0.add(Duration::from_secs(5)),
            CYCLE,
        )
    }

    #[test]
    fn a_hop_missing_now_but_seen_within_the_cycle_stays_with_when() {
        let t0 = Timestamp(1_000_000);
        let old = via_r1_r2();
        let new = path(
            vec![hop(1, Some("198.18.1.1")), hop(2, None), hop(3, Some(DST))],
            true,
        );
        let now = t0.add(Duration::from_secs(60));
        let merged = merge(Some(ip(DST)), &old, t0, &new, now, CYCLE);
        assert_eq!(merged[1].addr, Some(ip("198.18.2.2")));
        assert_eq!(merged[1].last_seen, Some(t0));
        assert_eq!(merged[1].rtt_ms, None);
        assert!(merged[0].fresh() && merged[2].fresh());
        // Kept again a round later: still the time it was really seen.
        let later = now.add(Duration::from_secs(60));
        let again = merge(Some(ip(DST)), &merged, now, &new, later, CYCLE);
        assert_eq!(again[1].last_seen, Some(t0));
        // A cycle after it was seen, it is gone.
        let gone = merge(Some(ip(DST)), &merged, now, &new, t0.add(CYCLE), CYCLE);
        assert_eq!(gone[1].addr, None);
        // Inferred from the neighbours this time: the own sighting wins
        // while it is recent, the inference after.
        let mut inferred = new.clone();
        inferred.hops[1] = Hop {
            inferred: true,
            ..hop(2, Some("198.18.2.2"))
        };
        let kept = merge(Some(ip(DST)), &old, t0, &inferred, now, CYCLE);
        assert_eq!(kept[1].last_seen, Some(t0));
        let later = merge(Some(ip(DST)), &old, t0, &inferred, t0.add(CYCLE), CYCLE);
        assert!(later[1].inferred && later[1].last_seen.is_none());
        // An inferred hop was never seen by this target: not kept.
        let merged = merge(Some(ip(DST)), &later, t0, &new, now, CYCLE);
        assert_eq!(merged[1].addr, None);
    }

    #[test]
    fn a_silent_destination_keeps_the_routers_before_it() {
        let t0 = Timestamp(1_000_000);
        let old = via_r1_r2();
        // Down now, and r2's ration spent: only r1 answered.
        let new = path(vec![hop(1, Some("198.18.1.1"))], false);
        let merged = merge_five_seconds_on(&old, t0, &new);
        let addrs: Vec<_> = merged.iter().map(|h| h.addr).collect();
        assert_eq!(
            addrs,
            [Some(ip("198.18.1.1")), Some(ip("198.18.2.2"))],
            "not the destination"
        );
    }

    #[test]
    fn nothing_is_kept_past_the_end_of_a_path_that_ended() {
        let t0 = Timestamp(1_000_000);
        let old = [
            hop(1, Some("198.18.1.1")),
            hop(2, Some("198.18.5.2")),
            hop(3, Some("198.18.6.2")),
        ];
        let new = path(vec![hop(1, None), hop(2, Some(DST))], true);
        let merged = merge_five_seconds_on(&old, t0, &new);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].addr, Some(ip("198.18.1.1")));
        assert_eq!(merged[1].addr, Some(ip(DST)));
    }

    #[test]
    fn held_back_traces_are_retried_a_few_times_a_cycle() {
        let mut r = Retries::default();
        let t0 = Timestamp(1_000_000);
        let at = |s: u64| t0.add(Duration::from_secs(s));
        let retried: Vec<bool> = (0..6)
            .map(|i| r.after_trace(true, at(i * 60), CYCLE))
            .collect();
        assert_eq!(retried, [true, true, true, true, false, false]);
        // A cycle on, a new run.
        assert!(r.after_trace(true, at(600), CYCLE));
        assert!(!r.after_trace(false, at(660), CYCLE));
        assert!(
            r.after_trace(true, at(720), CYCLE),
            "settled, then held back: a new run"
        );
    }
}
