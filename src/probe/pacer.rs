//! The send timeline shared by every probe of a process. Pure: the
//! [`PacedSender`](super::sender::PacedSender) thread asks it when the next
//! packet may leave and waits until then.
//!
//! Slots are `1 / rate` apart on one timeline, so the whole process never
//! sends faster than the set rate on average, whatever the number of
//! targets. When the sending thread wakes late (a busy machine, a virtual
//! one losing its core for a few milliseconds), the timeline is kept and
//! the missed slots are caught up, but never closer than half a gap apart:
//! the rate holds and there is no burst. When the thread had nothing to
//! send, the timeline starts afresh: idle time is never banked.

use std::time::{Duration, Instant};

/// How far behind the timeline a busy sender may catch up. Further behind
/// (the machine stalled), the slots are given up.
const MAX_CATCH_UP: Duration = Duration::from_millis(100);

/// Hands out send slots at a fixed packet rate.
#[derive(Debug)]
pub struct Pacer {
    gap: Option<Duration>,
    /// The next slot on the timeline; `None` after an idle spell.
    next_slot: Option<Instant>,
    /// When the last packet really left.
    last_sent: Option<Instant>,
}

impl Pacer {
    /// A pacer for `packets_per_second`; 0 means unpaced.
    pub fn new(packets_per_second: u32) -> Self {
        let gap = (packets_per_second > 0)
            .then(|| Duration::from_secs_f64(1.0 / f64::from(packets_per_second)));
        Self {
            gap,
            next_slot: None,
            last_sent: None,
        }
    }

    /// Reserve the next slot for a packet that is ready at `now`.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let Some(gap) = self.gap else {
            return now;
        };
        let oldest = now.checked_sub(MAX_CATCH_UP).unwrap_or(now);
        let (on_timeline, closest) = match self.next_slot {
            // Catching up: half a gap after the last packet at the least.
            Some(next) => (next.max(oldest), gap / 2),
            // A new timeline: a full gap after the last packet, so an
            // idle spell of a few milliseconds never lifts the rate.
            None => (now, gap),
        };
        let slot = match self.last_sent {
            Some(last) => on_timeline.max(last + closest),
            None => on_timeline,
        };
        self.next_slot = Some(on_timeline + gap);
        slot
    }

    /// Say when the packet of the last slot really left.
    pub fn sent(&mut self, at: Instant) {
        self.last_sent = Some(at);
    }

    /// Say that there was nothing to send: the next packet starts a new
    /// timeline instead of catching up with the old one.
    pub fn idle(&mut self) {
        self.next_slot = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn slots_are_spaced_by_the_rate() {
        let mut pacer = Pacer::new(100);
        let t0 = Instant::now();
        let ms: Vec<u128> = (0..5)
            .map(|_| (pacer.reserve(t0) - t0).as_millis())
            .collect();
        assert_eq!(ms, vec![0, 10, 20, 30, 40]);
    }

    /// Send `n` packets at 1,000/s, the thread waking `late(k)` after
    /// slot k; returns when each left.
    fn send_all(n: u32, late: impl Fn(u32) -> Duration) -> Vec<Instant> {
        let mut pacer = Pacer::new(1000);
        let t0 = Instant::now();
        let mut now = t0;
        (0..n)
            .map(|k| {
                let slot = pacer.reserve(now);
                now = now.max(slot) + late(k);
                pacer.sent(now);
                now
            })
            .collect()
    }

    #[test]
    fn a_late_wake_is_caught_up_without_a_burst() {
        // The thread loses its core for 5 ms at packet 10.
        let sent = send_all(100, |k| if k == 10 { 5 * MS } else { Duration::ZERO });
        let gaps: Vec<Duration> = sent.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|g| *g >= MS / 2),
            "never closer than half a gap"
        );
        // Caught up: the 100 packets took the same 99 ms as on time.
        assert_eq!(sent[99] - sent[0], 99 * MS);
    }

    #[test]
    fn small_lateness_everywhere_keeps_the_rate() {
        let sent = send_all(1000, |_| Duration::from_micros(60));
        let took = sent[999] - sent[0];
        assert!(took <= 1000 * MS, "{took:?} for 999 gaps of 1 ms");
    }

    #[test]
    fn a_long_stall_is_not_caught_up() {
        let sent = send_all(3, |k| {
            if k == 0 {
                2 * MAX_CATCH_UP
            } else {
                Duration::ZERO
            }
        });
        // After 200 ms lost, catching up stops at 100 ms: the rest is given up.
        assert!(sent[2] - sent[1] >= MS / 2);
        let mut pacer = Pacer::new(1000);
        let t0 = Instant::now();
        pacer.reserve(t0);
        let much_later = t0 + 10 * MAX_CATCH_UP;
        assert_eq!(pacer.reserve(much_later), much_later - MAX_CATCH_UP);
    }

    /// A pacer at `per_second` that sent one packet at `t0` and went idle.
    fn idle_after_one_packet(per_second: u32) -> (Pacer, Instant) {
        let mut pacer = Pacer::new(per_second);
        let t0 = Instant::now();
        pacer.reserve(t0);
        pacer.sent(t0);
        pacer.idle();
        (pacer, t0)
    }

    #[test]
    fn idle_time_is_not_banked_into_a_burst() {
        let (mut pacer, t0) = idle_after_one_packet(10);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(pacer.reserve(later), later);
        assert_eq!(pacer.reserve(later), later + 100 * MS);
    }

    #[test]
    fn a_short_idle_spell_still_keeps_a_full_gap() {
        let (mut pacer, t0) = idle_after_one_packet(100);
        // The next packet is ready 5 ms later: it waits for the full 10 ms.
        assert_eq!(pacer.reserve(t0 + 5 * MS) - t0, 10 * MS);
    }

    #[test]
    fn unpaced_never_waits() {
        let mut pacer = Pacer::new(0);
        let t0 = Instant::now();
        assert!((0..1000).all(|_| pacer.reserve(t0) == t0));
    }
}
