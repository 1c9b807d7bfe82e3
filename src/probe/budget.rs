//! How many ICMP errors a trace may ask of each router. Pure: times go in.
//!
//! Routers answer a probe whose TTL runs out (and one they cannot
//! deliver) with an ICMP error, and they ration those errors. Linux sends
//! one a second to each destination after a burst of six
//! (`net.ipv4.icmp_ratelimit`), many vendors one a second in all. A
//! probe sent to a router whose ration is spent is not answered, and the
//! trace shows `*` where the router is. So every probe that will expire
//! at a router first takes a token from that router's bucket here: about
//! one a second after a small burst, for each router the board can name.
//! Where the board cannot yet name the router (a TTL never traced), the
//! bucket is the TTL's: as strict, since it may be one router.
//!
//! The buckets are kept as virtual schedules (the generic cell rate
//! algorithm): each holds the time its next token is due, so a request
//! learns at once when it may be sent, and a request that would wait too
//! long takes nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::trace::Ttl;

/// One token per this long, for each router. A little over a second, so
/// that our clock and the router's never race for the same token.
pub const ERROR_GAP: Duration = Duration::from_millis(1050);

/// Tokens a router that has not been asked for a while may spend at once.
/// Below both Linux's (6) and nftables' default (5).
pub const ERROR_BURST: u32 = 4;

/// Whose ration a probe spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Asked {
    /// A router the board has seen at this point of the path.
    Router(IpAddr),
    /// Whoever is at this TTL, not yet known, on the way for this family.
    Unknown { v6: bool, ttl: Ttl },
}

/// Beyond this many buckets, full ones are forgotten (they are the same
/// as no bucket at all).
const PRUNE_AT: usize = 4096;

/// The ICMP error budgets of the routers around the board.
#[derive(Debug)]
pub struct RouterBudgets {
    gap: Duration,
    /// How far ahead of now a bucket's schedule may run and still allow a
    /// send: the burst.
    burst_span: Duration,
    /// Per bucket, when its next token is due if nobody spends early.
    due: HashMap<Asked, Instant>,
}

impl Default for RouterBudgets {
    fn default() -> Self {
        RouterBudgets::new(ERROR_GAP, ERROR_BURST)
    }
}

impl RouterBudgets {
    /// Buckets of one token per `gap`, holding at most `burst`.
    pub fn new(gap: Duration, burst: u32) -> RouterBudgets {
        RouterBudgets {
            gap,
            burst_span: gap * burst.saturating_sub(1),
            due: HashMap::new(),
        }
    }

    /// Reserve one error of `who` for a probe ready at `now`. Returns when
    /// the probe may leave (`now` when there is a token), or `None` when
    /// that would be after `latest`; then nothing is reserved.
    pub fn reserve(&mut self, who: Asked, now: Instant, latest: Instant) -> Option<Instant> {
        let due = self.due.get(&who).copied().unwrap_or(now).max(now);
        let at = due
            .checked_sub(self.burst_span)
            .map_or(now, |earliest| earliest.max(now));
        if at > latest {
            return None;
        }
        self.due.insert(who, due + self.gap);
        if self.due.len() > PRUNE_AT {
            self.due.retain(|_, d| *d > now);
        }
        Some(at)
    }

    /// Count an error that `who` sent without a reservation (the trace
    /// named the router wrongly): its next tokens come later.
    pub fn spent(&mut self, who: Asked, now: Instant) {
        let far = now + self.gap * 1_000;
        let _ = self.reserve(who, now, far);
    }

    /// How long a probe ready at `now` would wait for a token of `who`.
    pub fn wait(&self, who: Asked, now: Instant) -> Duration {
        let due = self.due.get(&who).copied().unwrap_or(now).max(now);
        due.checked_sub(self.burst_span)
            .map_or(Duration::ZERO, |earliest| {
                earliest.saturating_duration_since(now)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: u8) -> Asked {
        Asked::Router(IpAddr::from([198, 18, 1, n]))
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_burst_then_one_a_gap() {
        let mut b = RouterBudgets::new(S, 4);
        let t0 = Instant::now();
        let far = t0 + S * 100;
        let slots: Vec<Duration> = (0..7)
            .map(|_| b.reserve(r(1), t0, far).unwrap() - t0)
            .collect();
        assert_eq!(
            slots,
            [0, 0, 0, 0, 1, 2, 3].map(Duration::from_secs).to_vec()
        );
        // Another router has its own ration.
        assert_eq!(b.reserve(r(2), t0, far), Some(t0));
    }

    #[test]
    fn a_request_that_would_wait_too_long_takes_nothing() {
        let mut b = RouterBudgets::new(S, 1);
        let t0 = Instant::now();
        assert_eq!(b.reserve(r(1), t0, t0), Some(t0));
        assert_eq!(b.reserve(r(1), t0, t0 + S / 2), None);
        assert_eq!(b.wait(r(1), t0), S);
        // Nothing was taken: the next token is still due at one gap.
        assert_eq!(b.reserve(r(1), t0, t0 + S), Some(t0 + S));
    }

    #[test]
    fn the_bucket_refills_while_nobody_asks() {
        let mut b = RouterBudgets::new(S, 2);
        let t0 = Instant::now();
        let far = t0 + S * 100;
        for _ in 0..4 {
            b.reserve(r(1), t0, far);
        }
        // Three gaps on: every reserved token has been spent, one is back.
        let later = t0 + S * 4;
        assert_eq!(b.wait(r(1), later), Duration::ZERO);
        assert_eq!(b.reserve(r(1), later, later), Some(later));
        assert_eq!(b.reserve(r(1), later, later), Some(later), "a burst of two");
        assert_eq!(b.reserve(r(1), later, later), None);
    }

    #[test]
    fn an_unreserved_error_delays_the_next_tokens() {
        let mut b = RouterBudgets::new(S, 1);
        let t0 = Instant::now();
        b.spent(r(1), t0);
        assert_eq!(b.wait(r(1), t0), S);
        let unknown = Asked::Unknown {
            v6: false,
            ttl: Ttl(2),
        };
        assert_eq!(b.wait(unknown, t0), Duration::ZERO);
    }
}
