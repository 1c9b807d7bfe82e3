//! A global packet-rate pacer shared by every probe of a round.
//!
//! Each send reserves the next free slot on a single timeline spaced
//! `1 / rate` apart, so the whole process never sends faster than the set
//! rate, whatever the number of targets, and never in a burst.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Hands out send slots at a fixed packet rate.
#[derive(Debug)]
pub struct Pacer {
    gap: Option<Duration>,
    next_slot: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer for `packets_per_second`; 0 means unpaced.
    pub fn new(packets_per_second: u32) -> Self {
        let gap = (packets_per_second > 0)
            .then(|| Duration::from_secs_f64(1.0 / f64::from(packets_per_second)));
        Self {
            gap,
            next_slot: Mutex::new(None),
        }
    }

    /// Reserve the next slot at or after `now` and return its time.
    pub fn reserve(&self, now: Instant) -> Instant {
        let Some(gap) = self.gap else {
            return now;
        };
        let mut next = self.next_slot.lock().unwrap_or_else(|e| e.into_inner());
        // An idle pacer does not bank slots from the past: that would allow
        // a burst after a quiet spell.
        let slot = next.map_or(now, |n| n.max(now));
        *next = Some(slot + gap);
        slot
    }

    /// Wait for this caller's slot.
    pub async fn wait(&self) {
        let slot = self.reserve(Instant::now());
        if slot > Instant::now() {
            tokio::time::sleep_until(slot).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_by_the_rate() {
        let pacer = Pacer::new(100);
        let t0 = Instant::now();
        let slots: Vec<_> = (0..5).map(|_| pacer.reserve(t0) - t0).collect();
        let ms: Vec<u128> = slots.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![0, 10, 20, 30, 40]);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_banked_into_a_burst() {
        let pacer = Pacer::new(10);
        let t0 = Instant::now();
        pacer.reserve(t0);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(pacer.reserve(later), later);
        assert_eq!(pacer.reserve(later), later + Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn unpaced_never_waits() {
        let pacer = Pacer::new(0);
        let t0 = Instant::now();
        assert!((0..1000).all(|_| pacer.reserve(t0) == t0));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_are_released_one_gap_apart() {
        let pacer = std::sync::Arc::new(Pacer::new(50));
        let t0 = Instant::now();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let p = pacer.clone();
                tokio::spawn(async move {
                    p.wait().await;
                    Instant::now() - t0
                })
            })
            .collect();
        let mut released = Vec::new();
        for h in handles {
            released.push(h.await.unwrap().as_millis());
        }
        released.sort();
        assert_eq!(released, vec![0, 20, 40, 60]);
    }
}
