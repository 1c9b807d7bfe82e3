//! Hourly rollups and the uptime they give: pure functions over rows and
//! `now`.
//!
//! A rollup counts one target's rounds in one clock hour (UTC) by their own
//! verdict. Uptime over a window is read from whole hours: every hour whose
//! start is at or after `floor_to_hour(now - window)` and not after `now`.
//! The window is therefore up to one hour longer than asked (the hour that
//! contains its start counts entirely), which is the price of keeping one
//! small row per target and hour instead of every round.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::probe::Status;

use super::records::Uptime;

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// The standard uptime windows.
pub const DAY: Duration = Duration::from_secs(24 * 3600);
/// Seven days.
pub const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
/// Thirty days: the longest window the dashboard shows.
pub const MONTH: Duration = Duration::from_secs(30 * 24 * 3600);

/// The start of the UTC hour containing `ts` (floor, also before 1970).
pub fn hour_start(ts: Timestamp) -> Timestamp {
    Timestamp(ts.millis().div_euclid(HOUR_MS) * HOUR_MS)
}

/// The first hour counted in a window of length `window` ending at `now`.
pub fn window_start(now: Timestamp, window: Duration) -> Timestamp {
    hour_start(now.sub(window))
}

/// One target's rounds in one hour, by their own verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RollupRow {
    /// Start of the hour, unix ms.
    pub hour: Timestamp,
    pub rounds: u64,
    pub working: u64,
    pub degraded: u64,
    pub not_working: u64,
}

impl RollupRow {
    /// The counts one round with this verdict adds.
    pub fn one(hour: Timestamp, status: Status) -> RollupRow {
        RollupRow {
            hour,
            rounds: 1,
            working: u64::from(status == Status::Working),
            degraded: u64::from(status == Status::Degraded),
            not_working: u64::from(status == Status::NotWorking),
        }
    }
}

/// Rounds not Not Working / rounds; `None` without rounds.
pub fn fraction(rounds: u64, not_working: u64) -> Option<f64> {
    (rounds > 0).then(|| rounds.saturating_sub(not_working) as f64 / rounds as f64)
}

/// Uptime over `window` before `now` from one target's rollup rows (in any
/// order; rows outside the window are ignored).
pub fn uptime_over(rows: &[RollupRow], now: Timestamp, window: Duration) -> Option<f64> {
    let start = window_start(now, window);
    let (rounds, down) = rows
        .iter()
        .filter(|r| r.hour >= start && r.hour <= now)
        .fold((0u64, 0u64), |(n, d), r| (n + r.rounds, d + r.not_working));
    fraction(rounds, down)
}

/// The three standard windows at once.
pub fn uptime(rows: &[RollupRow], now: Timestamp) -> Uptime {
    Uptime {
        h24: uptime_over(rows, now, DAY),
        d7: uptime_over(rows, now, WEEK),
        d30: uptime_over(rows, now, MONTH),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-25T23:58:31.123Z
    const T: i64 = 1_795_651_111_123;

    #[test]
    fn hour_start_floors() {
        assert_eq!(hour_start(Timestamp(T)), Timestamp(1_795_647_600_000));
        assert_eq!(
            hour_start(Timestamp(1_795_647_600_000)).0,
            1_795_647_600_000
        );
        assert_eq!(hour_start(Timestamp(0)), Timestamp(0));
        assert_eq!(hour_start(Timestamp(-1)), Timestamp(-HOUR_MS));
    }

    fn row(hour: i64, rounds: u64, not_working: u64) -> RollupRow {
        RollupRow {
            hour: Timestamp(hour),
            rounds,
            working: rounds - not_working,
            degraded: 0,
            not_working,
        }
    }

    #[test]
    fn window_counts_whole_hours_from_the_hour_of_its_start() {
        let now = Timestamp(T);
        let h = hour_start(now).0;
        // 24 h back from 23:58 is 23:58 the day before: its hour (23:00)
        // counts, 22:00 does not.
        let rows = [
            row(h - 25 * HOUR_MS, 10, 10),
            row(h - 24 * HOUR_MS, 4, 1),
            row(h, 4, 0),
        ];
        assert_eq!(uptime_over(&rows, now, DAY), Some(7.0 / 8.0));
        assert_eq!(uptime_over(&rows, now, WEEK), Some(7.0 / 18.0));
    }

    #[test]
    fn degraded_counts_as_up_and_empty_window_is_none() {
        let now = Timestamp(T);
        let h = hour_start(now);
        let mut r = RollupRow::one(h, Status::Degraded);
        assert_eq!((r.rounds, r.degraded, r.not_working), (1, 1, 0));
        r.rounds += 1;
        r.not_working += 1;
        assert_eq!(uptime_over(&[r], now, DAY), Some(0.5));
        assert_eq!(uptime_over(&[], now, DAY), None);
        let old = row(h.0 - 40 * 24 * HOUR_MS, 3, 0);
        assert_eq!(
            uptime(&[old], now),
            Uptime {
                h24: None,
                d7: None,
                d30: None
            }
        );
    }

    #[test]
    fn hours_after_now_are_ignored() {
        // The clock went back: rows from the "future" do not count.
        let now = Timestamp(T);
        let rows = [
            row(hour_start(now).0 + HOUR_MS, 5, 5),
            row(hour_start(now).0, 2, 0),
        ];
        assert_eq!(uptime_over(&rows, now, DAY), Some(1.0));
    }
}
