//! Status smoothing: a target's reported status changes only after
//! `down_after` consecutive worse rounds or `up_after` consecutive better
//! ones, so a single lost packet doesn't flap the LEDs. Pure: each round's
//! own verdict and the time go in, the reported status and any change come
//! out.

use crate::clock::Timestamp;
use crate::probe::Status;

/// How many consecutive rounds it takes to change the reported status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Rounds worse than the reported status before it gets worse.
    pub down_after: u32,
    /// Rounds better than the reported status before it gets better.
    pub up_after: u32,
}

/// A change of the reported status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    /// `None` for a target's first round.
    pub from: Option<Status>,
    pub to: Status,
}

/// One target's smoothing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusTracker {
    /// What the dashboard shows; `None` until the first round.
    pub reported: Option<Status>,
    /// When `reported` last changed.
    pub since: Option<Timestamp>,
    /// Consecutive rounds that disagreed with `reported` in the same
    /// direction.
    streak: u32,
    /// The direction of the streak: towards worse (`true`) or better.
    worsening: bool,
}

fn severity(s: Status) -> u8 {
    match s {
        Status::Working => 0,
        Status::Degraded => 1,
        Status::NotWorking => 2,
    }
}

impl StatusTracker {
    /// A tracker that resumes from a status shown before a restart, so a
    /// reboot does not count as a change.
    pub fn resume(reported: Status, since: Option<Timestamp>) -> StatusTracker {
        StatusTracker {
            reported: Some(reported),
            since,
            streak: 0,
            worsening: false,
        }
    }

    /// Take one round's verdict. The first round is reported as it is:
    /// there is nothing to smooth against yet.
    pub fn observe(
        &mut self,
        observed: Status,
        thresholds: Thresholds,
        now: Timestamp,
    ) -> Option<StatusChange> {
        let Some(reported) = self.reported else {
            self.reported = Some(observed);
            self.since = Some(now);
            return Some(StatusChange {
                from: None,
                to: observed,
            });
        };
        if observed == reported {
            self.streak = 0;
            return None;
        }
        let worsening = severity(observed) > severity(reported);
        if self.streak == 0 || worsening != self.worsening {
            self.streak = 0;
            self.worsening = worsening;
        }
        self.streak += 1;
        let needed = if worsening {
            thresholds.down_after
        } else {
            thresholds.up_after
        };
        if self.streak < needed {
            return None;
        }
        self.reported = Some(observed);
        self.since = Some(now);
        self.streak = 0;
        Some(StatusChange {
            from: Some(reported),
            to: observed,
        })
    }

    /// Whether one more round with `observed` would change the reported
    /// status; decides whether to trace right away.
    pub fn would_change(&self, observed: Status, thresholds: Thresholds) -> bool {
        let mut probe = *self;
        probe.observe(observed, thresholds, Timestamp(0)).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    const TWO_DOWN_ONE_UP: Thresholds = Thresholds {
        down_after: 2,
        up_after: 1,
    };

    fn run(t: &mut StatusTracker, th: Thresholds, rounds: &[Status]) -> Vec<Option<Status>> {
        rounds
            .iter()
            .enumerate()
            .map(|(i, s)| {
                t.observe(*s, th, Timestamp(i as i64 * 1000));
                t.reported
            })
            .collect()
    }

    #[test]
    fn the_first_round_is_reported_at_once() {
        let mut t = StatusTracker::default();
        let change = t.observe(NotWorking, TWO_DOWN_ONE_UP, Timestamp(5));
        assert_eq!(
            change,
            Some(StatusChange {
                from: None,
                to: NotWorking
            })
        );
        assert_eq!(t.since, Some(Timestamp(5)));
    }

    #[test]
    fn going_down_takes_down_after_rounds() {
        let mut t = StatusTracker::resume(Working, None);
        let seen = run(
            &mut t,
            TWO_DOWN_ONE_UP,
            &[NotWorking, NotWorking, NotWorking],
        );
        assert_eq!(
            seen,
            vec![Some(Working), Some(NotWorking), Some(NotWorking)]
        );
        assert_eq!(t.since, Some(Timestamp(1000)));
    }

    #[test]
    fn a_single_lost_round_does_not_flap() {
        let mut t = StatusTracker::resume(Working, None);
        let seen = run(
            &mut t,
            TWO_DOWN_ONE_UP,
            &[NotWorking, Working, NotWorking, Working],
        );
        assert!(seen.iter().all(|s| *s == Some(Working)), "{seen:?}");
    }

    #[test]
    fn coming_back_takes_up_after_rounds() {
        let th = Thresholds {
            down_after: 1,
            up_after: 3,
        };
        let mut t = StatusTracker::resume(NotWorking, None);
        let seen = run(
            &mut t,
            th,
            &[Working, Working, NotWorking, Working, Working, Working],
        );
        assert_eq!(
            seen,
            vec![
                Some(NotWorking),
                Some(NotWorking),
                Some(NotWorking),
                Some(NotWorking),
                Some(NotWorking),
                Some(Working)
            ]
        );
    }

    #[test]
    fn a_streak_in_the_other_direction_starts_over() {
        // Degraded, then two worse and one better round: the better one
        // breaks the worsening streak.
        let mut t = StatusTracker::resume(Degraded, None);
        let seen = run(&mut t, TWO_DOWN_ONE_UP, &[NotWorking, Working, NotWorking]);
        assert_eq!(seen, vec![Some(Degraded), Some(Working), Some(Working)]);
    }

    #[test]
    fn worse_rounds_of_mixed_kinds_count_together() {
        let mut t = StatusTracker::resume(Working, None);
        let seen = run(&mut t, TWO_DOWN_ONE_UP, &[Degraded, NotWorking]);
        assert_eq!(seen, vec![Some(Working), Some(NotWorking)]);
    }

    #[test]
    fn would_change_does_not_touch_the_tracker() {
        let mut t = StatusTracker::resume(Working, None);
        assert!(!t.would_change(NotWorking, TWO_DOWN_ONE_UP));
        t.observe(NotWorking, TWO_DOWN_ONE_UP, Timestamp(1));
        assert!(t.would_change(NotWorking, TWO_DOWN_ONE_UP));
        assert_eq!(t.reported, Some(Working));
        // A target's first round is a change: it gets traced at once.
        assert!(StatusTracker::default().would_change(Working, TWO_DOWN_ONE_UP));
    }
}
