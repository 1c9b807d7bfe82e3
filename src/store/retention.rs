//! What retention keeps, and what a pass drops, in what order and how
//! much: pure planning, time and sizes passed in. `plan` says what a pass
//! does (the deletions by age, then the phases of the size cap);
//! `CapPlan::rows_step` and `CapPlan::rollups_step` size one measured step
//! of a phase; `Budget` bounds the ids a pass examines and the size of
//! each delete. The store carries the plan out against SQLite in
//! `prune.rs`, measuring between steps.

use std::time::Duration;

use crate::clock::Timestamp;

use super::rollup;
use super::schema::HistoryTable;

/// Ids a retention pass may look at. A pass runs after every round, so a
/// large backlog (a shortened `max_age`, a lowered cap) is worked off over
/// several rounds instead of stalling one.
pub(super) const PASS_BUDGET: u64 = 200_000;

/// Rows (or ids) per delete transaction: short enough that a pass never
/// holds the write lock for long, large enough to amortise the commit.
pub(super) const DELETE_CHUNK: u64 = 5_000;

/// Measure-and-drop steps per phase of the size cap.
pub(super) const CAP_STEPS: usize = 8;

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

/// One deletion of a retention pass; each takes the oldest rows first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Deletion {
    /// By age: the rows of `table` stamped before `before` and not in the
    /// outbox, from the oldest row on until the first that is young
    /// enough (in the order written, so a row written after the clock
    /// jumped back waits for its neighbours).
    Aged {
        table: HistoryTable,
        before: Timestamp,
    },
    /// Up to `rows` rollup rows of the hours before `before`.
    Rollups { before: Timestamp, rows: u64 },
    /// Up to `rows` rows of `table` that are not in the outbox, among its
    /// ids `first..=last`.
    Synced {
        table: HistoryTable,
        first: i64,
        last: i64,
        rows: u64,
    },
    /// The `rows` ids of `table` from `first` on, in the outbox or not;
    /// the queued ones count as unsynced.
    Oldest {
        table: HistoryTable,
        first: i64,
        rows: u64,
    },
}

/// A phase of the size cap: what it drops from, up to [`CapPlan::steps`]
/// times, each step sized from what the store measured just before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Results, traces and events, the same share of each table's ids:
    /// only rows not in the outbox, or (`with_unsynced`) all of them.
    Rows { with_unsynced: bool },
    /// Rollups of the hours before `before`.
    Rollups { before: Timestamp },
}

/// What one retention pass does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// First, always: rows and rollups too old to keep.
    pub age: [Deletion; 4],
    /// Then, when the store is over its cap: the size cap.
    pub cap: CapPlan,
}

/// The size cap of a pass: when the file and WAL are over `max_bytes`,
/// the phases in order, each up to `steps` measured steps, until the store
/// is down to `goal` (or the pass's [`Budget`] is spent). A phase ends
/// early when a step drops nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CapPlan {
    pub max_bytes: u64,
    pub goal: u64,
    pub phases: [Phase; 4],
    pub steps: usize,
}

/// The plan of a retention pass at `now`.
///
/// By age: results, traces and events older than `max_age` that are not
/// in the outbox, then rollups older than `rollup_max_age`. Over the cap,
/// down to [`RetentionPolicy::low_water`]: synced results, traces and
/// events; rollups too old for any uptime window; unsynced rows; the
/// other rollups.
pub(super) fn plan(policy: &RetentionPolicy, now: Timestamp) -> Plan {
    let cut = policy.cutoffs(now);
    let aged = |table| Deletion::Aged {
        table,
        before: cut.rows,
    };
    Plan {
        age: [
            aged(HistoryTable::Results),
            aged(HistoryTable::Traces),
            aged(HistoryTable::Events),
            Deletion::Rollups {
                before: cut.rollups,
                rows: u64::MAX,
            },
        ],
        cap: CapPlan {
            max_bytes: policy.max_bytes,
            goal: policy.low_water(),
            phases: [
                Phase::Rows {
                    with_unsynced: false,
                },
                Phase::Rollups {
                    before: cut.rollups_unused,
                },
                Phase::Rows {
                    with_unsynced: true,
                },
                Phase::Rollups {
                    before: Timestamp(i64::MAX),
                },
            ],
            steps: CAP_STEPS,
        },
    }
}

impl CapPlan {
    /// Whether a store using `used` bytes needs the size cap.
    pub fn applies(&self, used: u64) -> bool {
        used > self.max_bytes
    }

    /// Whether a store using `used` bytes is down to the goal.
    pub fn reached(&self, used: u64) -> bool {
        used <= self.goal
    }

    /// One step of a [`Phase::Rows`] phase with the store at `used` bytes:
    /// from each table in `spans` (its lowest and highest id; ids are dense,
    /// so the span counts its rows), the share [`rows_to_drop`] gives.
    pub fn rows_step(
        &self,
        with_unsynced: bool,
        used: u64,
        spans: &[(HistoryTable, i64, i64)],
    ) -> Vec<Deletion> {
        spans
            .iter()
            .filter_map(|&(table, first, last)| {
                let span = u64::try_from(last - first + 1).unwrap_or(0);
                let rows = rows_to_drop(used, self.goal, span);
                if rows == 0 {
                    None
                } else if with_unsynced {
                    Some(Deletion::Oldest { table, first, rows })
                } else {
                    Some(Deletion::Synced {
                        table,
                        first,
                        last,
                        rows,
                    })
                }
            })
            .collect()
    }

    /// One step of a [`Phase::Rollups`] phase with the store at `used`
    /// bytes and about `rows` rollup rows before `before`; nothing when
    /// there are none.
    pub fn rollups_step(&self, before: Timestamp, used: u64, rows: u64) -> Option<Deletion> {
        let rows = rows_to_drop(used, self.goal, rows);
        (rows > 0).then_some(Deletion::Rollups { before, rows })
    }
}

/// The ids a retention pass may still examine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Budget(u64);

impl Budget {
    /// A new pass's: [`PASS_BUDGET`].
    pub fn pass() -> Budget {
        Budget(PASS_BUDGET)
    }

    /// Whether nothing is left to examine.
    pub fn is_spent(self) -> bool {
        self.0 == 0
    }

    /// The length of the next delete's id range (or its row limit) when
    /// `want` more are wanted: at most [`DELETE_CHUNK`] and what is left,
    /// and at least 1.
    pub fn chunk(self, want: u64) -> i64 {
        i64::try_from(self.0.min(want).clamp(1, DELETE_CHUNK)).unwrap_or(1)
    }

    /// Count `ids` as examined.
    pub fn spend(&mut self, ids: u64) {
        self.0 = self.0.saturating_sub(ids);
    }
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

    fn policy() -> RetentionPolicy {
        RetentionPolicy {
            max_age: Duration::from_secs(3600),
            rollup_max_age: Duration::from_secs(2 * 3600),
            max_bytes: 1000,
        }
    }

    #[test]
    fn a_pass_drops_by_age_first_then_by_size_in_this_order() {
        let now = Timestamp(10 * rollup::HOUR_MS + 1234);
        let p = plan(&policy(), now);
        let cut = policy().cutoffs(now);
        let aged = |table| Deletion::Aged {
            table,
            before: cut.rows,
        };
        assert_eq!(
            p.age,
            [
                aged(HistoryTable::Results),
                aged(HistoryTable::Traces),
                aged(HistoryTable::Events),
                Deletion::Rollups {
                    before: cut.rollups,
                    rows: u64::MAX
                },
            ],
            "results, traces, events, then every rollup older than rollup_max_age"
        );
        assert_eq!(
            p.cap,
            CapPlan {
                max_bytes: 1000,
                goal: 950,
                phases: [
                    Phase::Rows {
                        with_unsynced: false
                    },
                    Phase::Rollups {
                        before: cut.rollups_unused
                    },
                    Phase::Rows {
                        with_unsynced: true
                    },
                    Phase::Rollups {
                        before: Timestamp(i64::MAX)
                    },
                ],
                steps: CAP_STEPS,
            },
            "synced rows, unused rollups, unsynced rows, all rollups"
        );
        assert_eq!(p.cap.steps, 8);
    }

    #[test]
    fn the_cap_applies_over_max_bytes_and_stops_at_the_goal() {
        let cap = plan(&policy(), Timestamp(0)).cap;
        assert!(!cap.applies(1000), "at the cap");
        assert!(cap.applies(1001));
        assert!(!cap.reached(951));
        assert!(cap.reached(950), "at the goal");
        assert!(cap.reached(0));
    }

    #[test]
    fn a_row_step_takes_the_same_share_of_each_table() {
        let cap = plan(&policy(), Timestamp(0)).cap;
        // Twice the goal: half of each table's ids.
        let spans = [
            (HistoryTable::Results, 1, 100),
            (HistoryTable::Events, 51, 60),
        ];
        assert_eq!(
            cap.rows_step(false, 1900, &spans),
            vec![
                Deletion::Synced {
                    table: HistoryTable::Results,
                    first: 1,
                    last: 100,
                    rows: 50
                },
                Deletion::Synced {
                    table: HistoryTable::Events,
                    first: 51,
                    last: 60,
                    rows: 5
                },
            ]
        );
        assert_eq!(
            cap.rows_step(true, 1900, &spans),
            vec![
                Deletion::Oldest {
                    table: HistoryTable::Results,
                    first: 1,
                    rows: 50
                },
                Deletion::Oldest {
                    table: HistoryTable::Events,
                    first: 51,
                    rows: 5
                },
            ],
            "the unsynced phase takes ids from the oldest, queued or not"
        );
        assert_eq!(
            cap.rows_step(false, 951, &spans[..1]),
            vec![Deletion::Synced {
                table: HistoryTable::Results,
                first: 1,
                last: 100,
                rows: 1
            }],
            "at least a row when over"
        );
        assert!(cap.rows_step(false, 950, &spans).is_empty(), "at the goal");
        assert!(cap.rows_step(true, 1900, &[]).is_empty(), "no rows");
    }

    #[test]
    fn a_rollup_step_takes_its_share_of_the_rollups_before_its_hour() {
        let cap = plan(&policy(), Timestamp(0)).cap;
        let before = Timestamp(5 * rollup::HOUR_MS);
        assert_eq!(
            cap.rollups_step(before, 1900, 400),
            Some(Deletion::Rollups { before, rows: 200 })
        );
        assert_eq!(cap.rollups_step(before, 1900, 0), None, "no rollups");
        assert_eq!(cap.rollups_step(before, 900, 400), None, "under the goal");
    }

    #[test]
    fn the_budget_bounds_each_delete_and_the_pass() {
        let mut b = Budget::pass();
        assert_eq!(b, Budget(PASS_BUDGET));
        assert!(!b.is_spent());
        assert_eq!(b.chunk(u64::MAX), 5_000, "a chunk at most");
        assert_eq!(b.chunk(12), 12, "what is wanted");
        assert_eq!(b.chunk(0), 1, "at least one");
        b.spend(PASS_BUDGET - 7);
        assert_eq!(b.chunk(u64::MAX), 7, "what is left");
        b.spend(u64::MAX);
        assert!(b.is_spent());
        assert_eq!(b.chunk(100), 1);
    }
}
