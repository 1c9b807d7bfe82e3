//! How long history is kept and how much to drop when the store is over
//! its size cap: pure planning, time and sizes passed in. The store
//! carries the plans out in [`sqlite`](super::sqlite).

use std::time::Duration;

use crate::clock::Timestamp;

use super::rollup;

/// What the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Results, traces and events older than this are dropped (once synced).
    pub max_age: Duration,
    /// Hourly rollups older than this are dropped.
    pub rollup_max_age: Duration,
    /// Cap on the database file plus its WAL, in bytes.
    pub max_bytes: u64,
}

impl Default for RetentionPolicy {
    /// 30 days of rounds, 400 days of rollups, 256 MiB.
    fn default() -> RetentionPolicy {
        RetentionPolicy {
            max_age: Duration::from_secs(30 * 24 * 3600),
            rollup_max_age: Duration::from_secs(400 * 24 * 3600),
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Below which timestamps rows are old enough to drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgeCutoffs {
    /// Results, traces and events with `ts` before this.
    pub rows: Timestamp,
    /// Rollups whose hour starts before this (an hour boundary, so an hour
    /// is dropped whole).
    pub rollups: Timestamp,
    /// Rollups before this feed no uptime window: under the size cap they
    /// go before any unsynced row.
    pub rollups_unused: Timestamp,
}

impl RetentionPolicy {
    /// The cutoffs at `now`.
    pub fn cutoffs(&self, now: Timestamp) -> AgeCutoffs {
        AgeCutoffs {
            rows: now.sub(self.max_age),
            rollups: rollup::hour_start(now.sub(self.rollup_max_age)),
            rollups_unused: rollup::window_start(now, rollup::MONTH),
        }
    }

    /// The size a pass over the cap shrinks the store to: 5 % under the
    /// cap, so that the next few rounds fit without another pass (each
    /// pass rewrites pages, and the SD card counts writes).
    pub fn low_water(&self) -> u64 {
        self.max_bytes - self.max_bytes / 20
    }
}

/// How many of `rows` (the oldest first) to drop to bring `used` bytes down
/// to `target`, assuming these rows hold all the bytes. They rarely do
/// (indexes, other tables), so this under-estimates and the caller measures
/// again and repeats; dropping too little costs another step, too much
/// costs history. At least one row when over, none when not.
pub fn rows_to_drop(used: u64, target: u64, rows: u64) -> u64 {
    if used <= target || rows == 0 || used == 0 {
        return 0;
    }
    let over = u128::from(used - target);
    let n = (u128::from(rows) * over).div_ceil(u128::from(used));
    u64::try_from(n).unwrap_or(u64::MAX).clamp(1, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let p = RetentionPolicy::default();
        assert_eq!(p.max_age, Duration::from_secs(2_592_000));
        assert_eq!(p.rollup_max_age.as_secs(), 400 * 86_400);
        assert_eq!(p.max_bytes, 268_435_456);
        assert_eq!(p.low_water(), 255_013_684);
    }

    #[test]
    fn cutoffs_from_now() {
        let p = RetentionPolicy {
            max_age: Duration::from_secs(3600),
            rollup_max_age: Duration::from_secs(2 * 3600),
            max_bytes: 1,
        };
        let now = Timestamp(10 * rollup::HOUR_MS + 1234);
        let c = p.cutoffs(now);
        assert_eq!(c.rows, Timestamp(9 * rollup::HOUR_MS + 1234));
        assert_eq!(c.rollups, Timestamp(8 * rollup::HOUR_MS));
        assert_eq!(
            c.rollups_unused,
            Timestamp(0).sub(Duration::from_secs(710 * 3600))
        );
    }

    #[test]
    fn drop_counts() {
        assert_eq!(rows_to_drop(100, 100, 50), 0, "at the cap");
        assert_eq!(rows_to_drop(90, 100, 50), 0, "under the cap");
        assert_eq!(
            rows_to_drop(200, 100, 50),
            25,
            "half the bytes, half the rows"
        );
        assert_eq!(rows_to_drop(1001, 1000, 10), 1, "never zero when over");
        assert_eq!(rows_to_drop(1000, 0, 10), 10, "never more than there are");
        assert_eq!(rows_to_drop(1000, 0, 0), 0);
        assert_eq!(rows_to_drop(u64::MAX, 0, u64::MAX), u64::MAX);
    }
}
