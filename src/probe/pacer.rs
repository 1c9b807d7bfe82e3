//! The send timeline shared by every probe of a process. Pure: the
//! [`PacedSender`](super::sender::PacedSender) thread asks it when the next
//! packet may leave and waits until then.
//!
//! Slots are `1 / rate` apart on one timeline, so the whole process never
//! sends faster than the set rate, whatever the number of targets. A send
//! that left late (the machine was busy) does not pull the next one
//! forward into a burst: consecutive packets are never closer than half a
//! gap, and the timeline resumes from there.

use std::time::{Duration, Instant};

/// Hands out send slots at a fixed packet rate.
#[derive(Debug)]
pub struct Pacer {
    gap: Option<Duration>,
    next_slot: Option<Instant>,
}

impl Pacer {
    /// A pacer for `packets_per_second`; 0 means unpaced.
    pub fn new(packets_per_second: u32) -> Self {
        let gap = (packets_per_second > 0)
            .then(|| Duration::from_secs_f64(1.0 / f64::from(packets_per_second)));
        Self {
            gap,
            next_slot: None,
        }
    }

    /// Reserve the next slot at or after `now` and return its time.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let Some(gap) = self.gap else {
            return now;
        };
        // An idle pacer does not bank slots from the past: that would allow
        // a burst after a quiet spell.
        let slot = self.next_slot.map_or(now, |n| n.max(now));
        self.next_slot = Some(slot + gap);
        slot
    }

    /// Say when the packet of the last slot really left.
    pub fn sent(&mut self, at: Instant) {
        if let (Some(gap), Some(next)) = (self.gap, self.next_slot) {
            self.next_slot = Some(next.max(at + gap / 2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_by_the_rate() {
        let mut pacer = Pacer::new(100);
        let t0 = Instant::now();
        let ms: Vec<u128> = (0..5)
            .map(|_| (pacer.reserve(t0) - t0).as_millis())
            .collect();
        assert_eq!(ms, vec![0, 10, 20, 30, 40]);
    }

    #[test]
    fn a_late_sender_gets_the_next_slot_on_the_timeline_not_a_new_one() {
        let mut pacer = Pacer::new(1000);
        let t0 = Instant::now();
        assert_eq!(pacer.reserve(t0), t0);
        // Asked 0.4 ms late: the slot is still 1 ms after the first...
        let slot = pacer.reserve(t0 + Duration::from_micros(400));
        assert_eq!(slot - t0, Duration::from_millis(1));
        // ...and asked after its slot has passed, it is now.
        let late = t0 + Duration::from_micros(2500);
        assert_eq!(pacer.reserve(late), late);
        assert_eq!(pacer.reserve(late) - late, Duration::from_millis(1));
    }

    #[test]
    fn a_late_send_is_not_followed_at_once_by_the_next() {
        let mut pacer = Pacer::new(1000);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(pacer.reserve(t0), t0);
        // The thread woke 3 ms late: slots 1 and 2 are in the past.
        pacer.sent(t0 + ms(3));
        let next = pacer.reserve(t0 + ms(3));
        assert_eq!(next - t0, Duration::from_micros(3500), "half a gap later");
        pacer.sent(next);
        assert_eq!(pacer.reserve(next) - next, ms(1), "then the full gap again");
        // Slightly late sends keep the timeline (and so the rate).
        let on_time = pacer.reserve(t0);
        pacer.sent(on_time + Duration::from_micros(50));
        assert_eq!(pacer.reserve(t0) - on_time, ms(1));
    }

    #[test]
    fn idle_time_is_not_banked_into_a_burst() {
        let mut pacer = Pacer::new(10);
        let t0 = Instant::now();
        pacer.reserve(t0);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(pacer.reserve(later), later);
        assert_eq!(pacer.reserve(later), later + Duration::from_millis(100));
    }

    #[test]
    fn unpaced_never_waits() {
        let mut pacer = Pacer::new(0);
        let t0 = Instant::now();
        assert!((0..1000).all(|_| pacer.reserve(t0) == t0));
    }
}
