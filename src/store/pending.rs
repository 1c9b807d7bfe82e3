//! The rollups of the hours still being counted, kept in memory. Pure.
//!
//! Every round changes every target's row of the current hour, so writing
//! the rollups each round rewrote all of that hour's pages: most of what a
//! steady round wrote to the SD card. Instead the rows of the hours the
//! newest round touched wait here, and go into the `rollups` table in the
//! transaction of the first round of a later hour ([`Pending::plan`]).
//!
//! Nothing is lost in a crash: the results are in their blocks, and
//! [`Pending::recover`]'s inputs (the results of rounds from the plan's
//! `from_round` on, in hours from its `from_hour` on,
//! both kept in `counters` in the same transactions) rebuild exactly what
//! was here.
//!
//! The table and this never hold the same row: the table has the hours
//! before `from_hour`, this the hours from it on. A result stamped before
//! `from_hour` (the clock went back, a round carried over from a damaged
//! file) goes into the table with its round.

use std::collections::HashMap;

use crate::probe::Status;

/// A row's key: the hour's start (unix ms) and the target's id.
pub type RollupKey = (i64, i64);

/// Counts added to one target's hour, or the whole row while it waits
/// here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RollupCounts {
    pub rounds: u64,
    pub working: u64,
    pub degraded: u64,
    pub not_working: u64,
    /// The rounds' average RTTs added up, whole µs.
    pub rtt_sum_us: i64,
    /// How many rounds had an RTT.
    pub rtt_rounds: u64,
    /// How many of these rounds the upstream sync has not sent.
    pub unsynced: u64,
}

impl RollupCounts {
    /// What one result adds: its own verdict, its average RTT if any, and
    /// whether it waits to be sent.
    pub fn one(status: Status, rtt_avg_us: Option<i64>, queued: bool) -> RollupCounts {
        RollupCounts {
            rounds: 1,
            working: u64::from(status == Status::Working),
            degraded: u64::from(status == Status::Degraded),
            not_working: u64::from(status == Status::NotWorking),
            rtt_sum_us: rtt_avg_us.unwrap_or(0),
            rtt_rounds: u64::from(rtt_avg_us.is_some()),
            unsynced: u64::from(queued),
        }
    }

    fn add(&mut self, o: &RollupCounts) {
        self.rounds += o.rounds;
        self.working += o.working;
        self.degraded += o.degraded;
        self.not_working += o.not_working;
        self.rtt_sum_us = self.rtt_sum_us.saturating_add(o.rtt_sum_us);
        self.rtt_rounds += o.rtt_rounds;
        self.unsynced += o.unsynced;
    }
}

/// One result's contribution: its round, its key and its counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contribution {
    pub round: u64,
    pub key: RollupKey,
    pub counts: RollupCounts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    counts: RollupCounts,
    /// The oldest round counted in the row.
    first_round: u64,
}

/// The rows of the hours from `from_hour` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    rows: HashMap<RollupKey, Row>,
    from_hour: i64,
    from_round: u64,
}

impl Default for Pending {
    /// A new file: every hour waits, from round 0.
    fn default() -> Pending {
        Pending::starting(i64::MIN, 0)
    }
}

/// What writing one round does to the rollups: the rows to add to the
/// table in the round's transaction, and the bounds to keep in
/// `counters` with it. [`Pending::apply`] takes it once that commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Added to the table now (upserts that add to the row).
    pub to_table: Vec<(RollupKey, RollupCounts)>,
    pub from_hour: i64,
    pub from_round: u64,
    /// Rows at `from_hour` or later that leave this for the table.
    folded_before: i64,
    /// The round's contributions, kept whole rather than copied: those
    /// of hours from `waits_from` on wait here, the rest are in
    /// `to_table`. (A copy was a megabyte at 10,000 targets, at the
    /// monitor's highest moment of memory.)
    contributions: Vec<Contribution>,
    waits_from: i64,
}

impl Pending {
    /// Nothing waiting, bounds as `counters` has them.
    pub fn starting(from_hour: i64, from_round: u64) -> Pending {
        Pending {
            rows: HashMap::new(),
            from_hour,
            from_round,
        }
    }

    /// After a restart: the bounds from `counters` and the contributions
    /// of the results of rounds from `from_round` on; those before
    /// `from_hour` are already in the table and are skipped.
    pub fn recover(
        from_hour: i64,
        from_round: u64,
        results: impl IntoIterator<Item = Contribution>,
    ) -> Pending {
        let mut p = Pending::starting(from_hour, from_round);
        for c in results.into_iter().filter(|c| c.key.0 >= from_hour) {
            p.wait(c);
        }
        p
    }

    /// The first hour whose rows wait here.
    #[cfg(test)]
    pub fn first_hour(&self) -> i64 {
        self.from_hour
    }

    /// The oldest round with a result counted here.
    #[cfg(test)]
    pub fn first_round(&self) -> u64 {
        self.from_round
    }

    /// What writing a round with these contributions does: results
    /// stamped before `from_hour` go to the table; once the round's
    /// earliest hour is later than `from_hour`, the rows of the hours
    /// before it are complete and go to the table too.
    pub fn plan(&self, round: u64, contributions: Vec<Contribution>) -> Plan {
        let waits_from = self.from_hour;
        // One pass: contributions of earlier hours go to the table; of the
        // rest, the earliest hour and round are kept.
        let mut to_table: Vec<(RollupKey, RollupCounts)> = Vec::new();
        let (mut earliest, mut first_round) = (None::<i64>, None::<u64>);
        for c in &contributions {
            if c.key.0 < waits_from {
                to_table.push((c.key, c.counts));
            } else {
                earliest = Some(earliest.map_or(c.key.0, |h| h.min(c.key.0)));
                first_round = Some(first_round.map_or(c.round, |r| r.min(c.round)));
            }
        }
        let folded_before = earliest.map_or(self.from_hour, |h| h.max(self.from_hour));
        let mut from_round = first_round.unwrap_or(round);
        for (key, row) in &self.rows {
            if key.0 < folded_before {
                to_table.push((*key, row.counts));
            } else {
                from_round = from_round.min(row.first_round);
            }
        }
        to_table.sort_unstable_by_key(|(k, _)| *k);
        Plan {
            to_table,
            from_hour: folded_before,
            from_round,
            folded_before,
            contributions,
            waits_from,
        }
    }

    /// The round of `plan` committed: its rows moved to the table, its
    /// contributions wait here.
    pub fn apply(&mut self, plan: Plan) {
        self.rows.retain(|k, _| k.0 >= plan.folded_before);
        for c in plan.contributions {
            if c.key.0 >= plan.waits_from {
                self.wait(c);
            }
        }
        self.from_hour = plan.from_hour;
        self.from_round = plan.from_round;
    }

    fn wait(&mut self, c: Contribution) {
        let row = self.rows.entry(c.key).or_insert(Row {
            counts: RollupCounts::default(),
            first_round: c.round,
        });
        row.counts.add(&c.counts);
        row.first_round = row.first_round.min(c.round);
    }

    /// One row, if it waits here.
    pub fn get(&self, key: RollupKey) -> Option<&RollupCounts> {
        self.rows.get(&key).map(|r| &r.counts)
    }

    /// Every row waiting here, in no particular order.
    pub fn rows(&self) -> impl Iterator<Item = (RollupKey, &RollupCounts)> {
        self.rows.iter().map(|(k, r)| (*k, &r.counts))
    }

    /// The upstream sync has sent `changes` of a row: take them off,
    /// never below zero. False when the row is not here (it went to the
    /// table since).
    pub fn mark_synced(&mut self, key: RollupKey, changes: u64) -> bool {
        match self.rows.get_mut(&key) {
            Some(r) => {
                r.counts.unsynced = r.counts.unsynced.saturating_sub(changes);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn c(round: u64, hour: i64, target: i64, status: Status) -> Contribution {
        Contribution {
            round,
            key: (hour * H, target),
            counts: RollupCounts::one(status, Some(1000), true),
        }
    }

    fn write(p: &mut Pending, round: u64, cs: &[Contribution]) -> Vec<(RollupKey, RollupCounts)> {
        let plan = p.plan(round, cs.to_vec());
        let out = plan.to_table.clone();
        p.apply(plan);
        out
    }

    #[test]
    fn an_hour_waits_until_a_round_of_a_later_hour() {
        let mut p = Pending::default();
        for round in 1..=3 {
            let to_table = write(&mut p, round, &[c(round, 10, 1, Status::Working)]);
            assert!(to_table.is_empty(), "round {round}");
        }
        assert_eq!(p.get((10 * H, 1)).unwrap().rounds, 3);
        assert_eq!((p.first_hour(), p.first_round()), (10 * H, 1));
        // Round 4 straddles into hour 11; round 5 is all in hour 11.
        let to_table = write(
            &mut p,
            4,
            &[
                c(4, 10, 1, Status::NotWorking),
                c(4, 11, 2, Status::Working),
            ],
        );
        assert!(to_table.is_empty());
        let to_table = write(&mut p, 5, &[c(5, 11, 1, Status::Working)]);
        assert_eq!(to_table.len(), 1);
        let (key, counts) = to_table[0];
        assert_eq!(key, (10 * H, 1));
        assert_eq!(
            (counts.rounds, counts.working, counts.not_working),
            (4, 3, 1)
        );
        assert_eq!(p.get((10 * H, 1)), None);
        // Hour 11 holds round 4's result for target 2: the round to read
        // back from after a crash is 4.
        assert_eq!((p.first_hour(), p.first_round()), (11 * H, 4));
    }

    #[test]
    fn results_stamped_before_the_waiting_hours_go_to_the_table_at_once() {
        let mut p = Pending::default();
        write(&mut p, 1, &[c(1, 10, 1, Status::Working)]);
        // The clock went back an hour.
        let to_table = write(&mut p, 2, &[c(2, 9, 1, Status::Working)]);
        assert_eq!(
            to_table,
            vec![(
                (9 * H, 1),
                RollupCounts::one(Status::Working, Some(1000), true)
            )]
        );
        assert_eq!(p.get((10 * H, 1)).unwrap().rounds, 1, "hour 10 still waits");
        assert_eq!(p.first_hour(), 10 * H);
    }

    #[test]
    fn recovery_rebuilds_what_waited() {
        let mut p = Pending::default();
        let rounds: Vec<Vec<Contribution>> = vec![
            vec![c(1, 10, 1, Status::Working), c(1, 10, 2, Status::Working)],
            vec![c(2, 10, 1, Status::Degraded), c(2, 11, 2, Status::Working)],
            vec![
                c(3, 11, 1, Status::NotWorking),
                c(3, 11, 2, Status::Working),
            ],
            vec![c(4, 9, 1, Status::Working), c(4, 11, 2, Status::Working)],
        ];
        for (i, cs) in rounds.iter().enumerate() {
            write(&mut p, i as u64 + 1, cs);
        }
        let from_round = p.first_round();
        let again = Pending::recover(
            p.first_hour(),
            from_round,
            rounds
                .iter()
                .flatten()
                .copied()
                .filter(|c| c.round >= from_round),
        );
        assert_eq!(again, p);
    }

    #[test]
    fn marks_take_what_was_sent_and_never_go_below_zero() {
        let mut p = Pending::default();
        write(&mut p, 1, &[c(1, 10, 1, Status::Working)]);
        write(&mut p, 2, &[c(2, 10, 1, Status::Working)]);
        assert!(p.mark_synced((10 * H, 1), 1));
        assert_eq!(p.get((10 * H, 1)).unwrap().unsynced, 1);
        assert!(p.mark_synced((10 * H, 1), 5));
        assert_eq!(p.get((10 * H, 1)).unwrap().unsynced, 0);
        assert!(!p.mark_synced((11 * H, 1), 1));
    }
}
