//! How long to wait before trying the server again: exponential, capped,
//! with optional jitter. Pure: no clock and no random number generator;
//! the jitter comes from a seed the caller passes in (the sync derives it
//! from the board id, so that a fleet whose central server comes back does
//! not retry in lockstep).

use std::time::Duration;

use crate::clock::Timestamp;

/// The first wait after a failure.
pub const DEFAULT_START: Duration = Duration::from_secs(1);
/// Each further failure multiplies the wait by this.
pub const DEFAULT_FACTOR: u32 = 2;
/// The wait never exceeds this.
pub const DEFAULT_CAP: Duration = Duration::from_secs(5 * 60);

/// Consecutive failures and the wait they earn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    start: Duration,
    factor: u32,
    cap: Duration,
    /// `None`: exact waits. `Some(seed)`: each wait is drawn from the upper
    /// half of the exact one, `[d / 2, d]`.
    jitter: Option<u64>,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new(DEFAULT_START, DEFAULT_FACTOR, DEFAULT_CAP)
    }
}

impl Backoff {
    /// Waits of `start`, `start * factor`, ... up to `cap`, without jitter.
    /// A zero `start` is taken as 1 ms and a `factor` below 1 as 1, so a
    /// misconfiguration never turns into a busy loop.
    pub fn new(start: Duration, factor: u32, cap: Duration) -> Backoff {
        let start = start.max(Duration::from_millis(1));
        Backoff {
            start,
            factor: factor.max(1),
            cap: cap.max(start),
            jitter: None,
            failures: 0,
        }
    }

    /// The same, with jitter derived from `seed`.
    pub fn with_jitter(mut self, seed: u64) -> Backoff {
        self.jitter = Some(seed);
        self
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The wait after the `n`-th consecutive failure (1-based), before
    /// jitter.
    pub fn exact(&self, n: u32) -> Duration {
        let mut d = self.start;
        for _ in 1..n {
            d = d.saturating_mul(self.factor);
            if d >= self.cap {
                return self.cap;
            }
        }
        d.min(self.cap)
    }

    /// The wait after the `n`-th consecutive failure, jitter included.
    pub fn wait(&self, n: u32) -> Duration {
        let d = self.exact(n);
        match self.jitter {
            None => d,
            Some(seed) => {
                let half = d / 2;
                // A fraction in [0, 1) from the top 53 bits of the mix.
                let frac = (splitmix64(seed ^ u64::from(n)) >> 11) as f64 / (1u64 << 53) as f64;
                half + (d - half).mul_f64(frac)
            }
        }
    }

    /// Count a failure and return how long to wait before the next try.
    pub fn fail(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.wait(self.failures)
    }

    /// Count a failure at `now` and return when to try again.
    pub fn fail_at(&mut self, now: Timestamp) -> Timestamp {
        now.add(self.fail())
    }

    /// A success: the next failure starts from `start` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// SplitMix64's output function: a well-mixed 64-bit value from any seed.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::schema::fnv1a;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn doubles_from_one_second_up_to_five_minutes() {
        let mut b = Backoff::default();
        let waits: Vec<Duration> = (0..12).map(|_| b.fail()).collect();
        assert_eq!(
            waits,
            [
                S(1),
                S(2),
                S(4),
                S(8),
                S(16),
                S(32),
                S(64),
                S(128),
                S(256),
                S(300),
                S(300),
                S(300)
            ]
        );
        assert_eq!(b.failures(), 12);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::default();
        b.fail();
        b.fail();
        b.reset();
        assert_eq!(b.fail(), S(1));
    }

    #[test]
    fn never_overflows() {
        let b = Backoff::new(S(1), 10, Duration::MAX);
        assert_eq!(b.exact(u32::MAX), Duration::MAX);
        let mut b = Backoff::default();
        for _ in 0..100_000 {
            b.fail();
        }
        assert_eq!(b.fail(), S(300));
    }

    #[test]
    fn degenerate_settings_still_wait() {
        let b = Backoff::new(Duration::ZERO, 0, Duration::ZERO);
        assert_eq!(b.exact(1), Duration::from_millis(1));
        assert_eq!(b.exact(50), Duration::from_millis(1));
        let b = Backoff::new(S(10), 2, S(3));
        assert_eq!(b.exact(1), S(10), "the cap is at least the start");
    }

    #[test]
    fn jitter_stays_in_the_upper_half_and_is_reproducible() {
        let b = Backoff::default().with_jitter(42);
        for n in 1..40 {
            let exact = b.exact(n);
            let w = b.wait(n);
            assert!(w >= exact / 2 && w <= exact, "{n}: {w:?} of {exact:?}");
            assert_eq!(w, b.wait(n));
        }
        assert!(b.wait(20) <= DEFAULT_CAP);
    }

    #[test]
    fn different_seeds_spread_out() {
        let waits: Vec<Duration> = (0..20)
            .map(|board| Backoff::default().with_jitter(fnv1a(&format!("closet-{board}"))))
            .map(|b| b.wait(9))
            .collect();
        let mut distinct = waits.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() >= 18, "{waits:?}");
        let lo = waits.iter().min().unwrap();
        let hi = waits.iter().max().unwrap();
        assert!(*hi - *lo > S(30), "{lo:?}..{hi:?}");
    }

    #[test]
    fn fail_at_adds_the_wait_to_now() {
        let mut b = Backoff::default();
        assert_eq!(b.fail_at(Timestamp(10_000)), Timestamp(11_000));
        assert_eq!(b.fail_at(Timestamp(10_000)), Timestamp(12_000));
    }
}
