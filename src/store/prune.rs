//! Carrying out retention against SQLite: the deletions and size-cap
//! phases [`retention::plan`] lists, in short transactions, measuring the
//! file between the cap's steps, counting what goes in `counters`, and
//! giving freed pages back to the file system. What to drop, in what
//! order and how much is decided in [`retention`], not here.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Timestamp;

use super::outbox;
use super::records::Dropped;
use super::retention::{self, Budget, CapPlan, Deletion, Phase, RetentionPolicy};
use super::rollup;
use super::schema::{self, HistoryTable, DROPPED_ROLLUPS, DROPPED_UNSYNCED};
use super::sql::{get_u64, sql};
use super::StoreError;

/// Carry out a retention pass at `now` and return what it dropped; see
/// [`Store::apply_retention`](super::Store::apply_retention). `targets`
/// is how many targets the store has, to size the rollups.
pub(super) fn apply(
    conn: &mut Connection,
    path: &Path,
    policy: &RetentionPolicy,
    targets: usize,
    now: Timestamp,
) -> Result<Dropped, StoreError> {
    let plan = retention::plan(policy, now);
    let mut pruner = Pruner {
        conn,
        wal: schema::wal_path(path),
        targets,
        dropped: Dropped::default(),
        budget: Budget::pass(),
    };
    for deletion in plan.age {
        pruner.delete(deletion)?;
    }
    pruner.enforce_cap(&plan.cap)?;
    Ok(pruner.dropped)
}

/// One pass over the writer's connection: what it has dropped and may
/// still examine.
struct Pruner<'a> {
    conn: &'a mut Connection,
    /// The WAL file, measured with the database.
    wal: PathBuf,
    targets: usize,
    dropped: Dropped,
    budget: Budget,
}

/// Delete the rows of `table` matching `pred` and return how many
/// records they held (a result block holds many, so the rows are counted
/// before they go).
fn delete_counting(
    tx: &Connection,
    table: HistoryTable,
    pred: &str,
    args: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<u64> {
    let (t, records) = (table.name(), table.records());
    let n = tx.query_row(
        &format!("SELECT COALESCE(SUM({records}), 0) FROM {t} WHERE {pred}"),
        args,
        |r| get_u64(r, 0),
    )?;
    tx.execute(&format!("DELETE FROM {t} WHERE {pred}"), args)?;
    Ok(n)
}

/// Which rows of an id range [`Pruner::delete_range`] drops.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Older than the cutoff and not in the outbox.
    Age(Timestamp),
    /// Not in the outbox.
    Synced,
    /// All of them, with their outbox rows.
    Everything,
}

impl Pruner<'_> {
    /// Carry out one deletion; how many rows it dropped.
    fn delete(&mut self, deletion: Deletion) -> Result<u64, StoreError> {
        match deletion {
            Deletion::Aged { table, before } => self.drop_old(table, before),
            Deletion::Rollups { before, rows } => self.drop_rollups_before(before, rows),
            Deletion::Synced {
                table,
                first,
                last,
                rows,
            } => self
                .drop_oldest_synced(table, first, last, rows)
                .map_err(sql(over_cap(table))),
            Deletion::Oldest { table, first, rows } => self
                .drop_oldest_all(table, first, rows)
                .map_err(sql(over_cap(table))),
        }
    }

    /// Bring the file and WAL under the cap when they are over it.
    fn enforce_cap(&mut self, cap: &CapPlan) -> Result<(), StoreError> {
        if !cap.applies(self.used_bytes()?) {
            return self.shrink_file(cap.max_bytes);
        }
        'phases: for &phase in &cap.phases {
            for _ in 0..cap.steps {
                // Deleting writes pages to the WAL: fold it back first so
                // that it does not count as history to drop.
                self.checkpoint()?;
                let used = self.used_bytes()?;
                if cap.reached(used) || self.budget.is_spent() {
                    break 'phases;
                }
                let step = match phase {
                    Phase::Rows { with_unsynced } => {
                        cap.rows_step(with_unsynced, used, &self.id_spans()?)
                    }
                    Phase::Rollups { before } => {
                        let rows = self.rollup_rows_before(before)?;
                        cap.rollups_step(before, used, rows).into_iter().collect()
                    }
                };
                let mut dropped = 0;
                for deletion in step {
                    dropped += self.delete(deletion)?;
                }
                if dropped == 0 {
                    break;
                }
            }
        }
        self.shrink_file(cap.max_bytes)
    }

    /// Rows of `table` older than `cutoff` and not in the outbox, in id
    /// ranges from the oldest row, until the first row that is young
    /// enough.
    fn drop_old(&mut self, table: HistoryTable, cutoff: Timestamp) -> Result<u64, StoreError> {
        let t = table.name();
        let op = format!("dropping old {t}");
        let Some((mut lo, _)) = self.id_span(table).map_err(sql(&op))? else {
            return Ok(0);
        };
        // The usual case after a round: nothing has aged out. Skip the
        // (empty) write transaction.
        let oldest: i64 = self
            .conn
            .query_row(&format!("SELECT ts FROM {t} WHERE id = ?1"), [lo], |r| {
                r.get(0)
            })
            .map_err(sql(&op))?;
        if oldest >= cutoff.millis() {
            return Ok(0);
        }
        let mut done = 0;
        while !self.budget.is_spent() {
            let hi = lo.saturating_add(self.budget.chunk(u64::MAX));
            done += self
                .delete_range(table, lo, hi, Mode::Age(cutoff))
                .map_err(sql(&op))?;
            let next: Option<(i64, i64)> = self
                .conn
                .query_row(
                    &format!("SELECT id, ts FROM {t} WHERE id >= ?1 ORDER BY id LIMIT 1"),
                    [hi],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(sql(&op))?;
            match next {
                Some((id, ts)) if ts < cutoff.millis() => lo = id,
                _ => break,
            }
        }
        Ok(done)
    }

    /// Delete ids `lo..hi` of one table in one transaction and count them.
    fn delete_range(
        &mut self,
        table: HistoryTable,
        lo: i64,
        hi: i64,
        mode: Mode,
    ) -> rusqlite::Result<u64> {
        let t = table.name();
        let kind = table.outbox_kind().code();
        let tx = self.conn.transaction()?;
        let not_queued =
            format!("NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = ?3 AND o.row_id = {t}.id)");
        let (deleted, unsynced) = match mode {
            Mode::Age(cutoff) => {
                let pred = format!("id >= ?1 AND id < ?2 AND ts < ?4 AND {not_queued}");
                let n = delete_counting(&tx, table, &pred, params![lo, hi, kind, cutoff.millis()])?;
                (n, 0)
            }
            Mode::Synced => {
                let pred = format!("id >= ?1 AND id < ?2 AND {not_queued}");
                (
                    delete_counting(&tx, table, &pred, params![lo, hi, kind])?,
                    0,
                )
            }
            Mode::Everything => {
                let queued = outbox::records_in(
                    &tx,
                    &format!("o.kind = {kind} AND o.row_id >= {lo} AND o.row_id < {hi}"),
                )?;
                tx.execute(
                    "DELETE FROM outbox WHERE kind = ?3 AND row_id >= ?1 AND row_id < ?2",
                    params![lo, hi, kind],
                )?;
                let n = delete_counting(&tx, table, "id >= ?1 AND id < ?2", params![lo, hi])?;
                (n, queued)
            }
        };
        schema::add_counter(&tx, table.dropped_counter(), deleted)?;
        schema::add_counter(&tx, DROPPED_UNSYNCED, unsynced)?;
        tx.commit()?;
        match table {
            HistoryTable::Results => self.dropped.results += deleted,
            HistoryTable::Traces => self.dropped.traces += deleted,
            HistoryTable::Events => self.dropped.events += deleted,
        }
        self.dropped.unsynced += unsynced;
        self.budget
            .spend(u64::try_from(hi.saturating_sub(lo)).unwrap_or(u64::MAX));
        Ok(deleted)
    }

    /// Up to `max` rollup rows of the hours before `before`, oldest first.
    fn drop_rollups_before(&mut self, before: Timestamp, max: u64) -> Result<u64, StoreError> {
        let op = "dropping old rollups";
        let mut done = 0u64;
        while done < max && !self.budget.is_spent() {
            let n = self.budget.chunk(max - done);
            let tx = self.conn.transaction().map_err(sql(op))?;
            let deleted = tx
                .execute(
                    "DELETE FROM rollups WHERE (hour, target) IN \
                     (SELECT hour, target FROM rollups WHERE hour < ?1 ORDER BY hour LIMIT ?2)",
                    params![before.millis(), n],
                )
                .map_err(sql(op))? as u64;
            schema::add_counter(&tx, DROPPED_ROLLUPS, deleted).map_err(sql(op))?;
            tx.commit().map_err(sql(op))?;
            done += deleted;
            self.dropped.rollups += deleted;
            self.budget.spend(deleted.max(1));
            if deleted < u64::try_from(n).unwrap_or(0) {
                break;
            }
        }
        Ok(done)
    }

    /// The oldest `want` rows not in the outbox, skipping those that are.
    fn drop_oldest_synced(
        &mut self,
        table: HistoryTable,
        min: i64,
        max: i64,
        want: u64,
    ) -> rusqlite::Result<u64> {
        let (mut lo, mut done) = (min, 0);
        while done < want && lo <= max && !self.budget.is_spent() {
            // A range never holds more rows than ids, so this never drops
            // more than asked.
            let hi = lo.saturating_add(self.budget.chunk(want - done));
            done += self.delete_range(table, lo, hi, Mode::Synced)?;
            lo = hi;
        }
        Ok(done)
    }

    /// The oldest `want` ids, in the outbox or not.
    fn drop_oldest_all(
        &mut self,
        table: HistoryTable,
        min: i64,
        want: u64,
    ) -> rusqlite::Result<u64> {
        let (mut lo, mut left, mut done) = (min, want, 0);
        while left > 0 && !self.budget.is_spent() {
            let n = self.budget.chunk(left);
            done += self.delete_range(table, lo, lo.saturating_add(n), Mode::Everything)?;
            lo = lo.saturating_add(n);
            left = left.saturating_sub(u64::try_from(n).unwrap_or(0));
        }
        Ok(done)
    }

    /// Every history table that has rows, with its lowest and highest id.
    fn id_spans(&self) -> Result<Vec<(HistoryTable, i64, i64)>, StoreError> {
        let mut spans = Vec::with_capacity(HistoryTable::ALL.len());
        for table in HistoryTable::ALL {
            if let Some((min, max)) = self.id_span(table).map_err(sql(over_cap(table)))? {
                spans.push((table, min, max));
            }
        }
        Ok(spans)
    }

    /// The lowest and highest id of a table; ids are dense because rows
    /// are only ever dropped from the old end, so the span counts rows.
    fn id_span(&self, table: HistoryTable) -> rusqlite::Result<Option<(i64, i64)>> {
        self.conn.query_row(
            &format!("SELECT MIN(id), MAX(id) FROM {}", table.name()),
            [],
            |r| Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?)),
        )
    }

    /// An estimate of the rollup rows before `before` (every target in
    /// every hour), without counting a table that may hold millions.
    fn rollup_rows_before(&self, before: Timestamp) -> Result<u64, StoreError> {
        let op = "sizing the rollups";
        let (min, max): (Option<i64>, Option<i64>) = self
            .conn
            .query_row(
                "SELECT MIN(hour), MAX(hour) FROM rollups WHERE hour < ?1",
                [before.millis()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(sql(op))?;
        let (Some(min), Some(max)) = (min, max) else {
            return Ok(0);
        };
        let hours = u64::try_from((max - min) / rollup::HOUR_MS + 1).unwrap_or(0);
        Ok(hours.saturating_mul(self.targets.max(1) as u64))
    }

    /// Bytes the history takes: pages in use plus the WAL file. Free pages
    /// are left out: they are reused before the file grows, and
    /// [`Pruner::shrink_file`] returns them when the file is over the cap.
    fn used_bytes(&self) -> Result<u64, StoreError> {
        let (pages, free, page_size) = self.page_counts()?;
        Ok(pages.saturating_sub(free) * page_size + schema::file_len(&self.wal)?)
    }

    fn page_counts(&self) -> Result<(u64, u64, u64), StoreError> {
        let op = "measuring the database";
        let get = |p: &str| {
            self.conn
                .pragma_query_value(None, p, |r| get_u64(r, 0))
                .map_err(sql(op))
        };
        Ok((
            get("page_count")?,
            get("freelist_count")?,
            get("page_size")?,
        ))
    }

    /// When the file and WAL are over `max_bytes`, give the free pages back
    /// to the file system and fold the WAL in.
    fn shrink_file(&mut self, max_bytes: u64) -> Result<(), StoreError> {
        let (pages, free, page_size) = self.page_counts()?;
        let wal = schema::file_len(&self.wal)?;
        if pages * page_size + wal <= max_bytes {
            return Ok(());
        }
        if free > 0 {
            let op = "returning free pages to the file system";
            let mut st = self
                .conn
                .prepare("PRAGMA incremental_vacuum")
                .map_err(sql(op))?;
            let mut rows = st.query([]).map_err(sql(op))?;
            while rows.next().map_err(sql(op))?.is_some() {}
        }
        self.checkpoint()
    }

    /// Copy the WAL into the database and truncate it. A reader in the
    /// middle of a query can keep part of it; that is measured, not an
    /// error.
    fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(sql("checkpointing the WAL"))
    }
}

/// What a size-cap step on `table` is, for its errors.
fn over_cap(table: HistoryTable) -> String {
    format!("dropping {} over the size cap", table.name())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::probe::Status;
    use crate::store::{History, OutboxKind, RoundId, Store};

    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn retention_by_age_keeps_unsynced_rows() {
        let dir = tempfile::tempdir().unwrap();
        let policy = RetentionPolicy {
            max_age: Duration::from_secs(24 * 3600),
            rollup_max_age: Duration::from_secs(3 * 24 * 3600),
            max_bytes: 1 << 30,
        };
        let keys = targets(4);
        {
            let mut store = Store::open(dir.path(), policy).unwrap();
            store.set_outbox(true);
            store
                .write_round(&round(1, NOW - 5 * DAY_MS, &keys, Status::Working))
                .unwrap();
            store
                .write_round(&round(2, NOW - 2 * DAY_MS, &keys, Status::Working))
                .unwrap();
            store
                .write_round(&round(3, NOW - H, &keys, Status::Working))
                .unwrap();
            // Rounds 1 and 3 went upstream, round 2 did not.
            sync_all(&store);
            let n = store.conn().execute(
                "INSERT INTO outbox (kind, row_id, ts) SELECT ?1, id, ts FROM results WHERE round = 2",
                [OutboxKind::Result.code()],
            );
            assert_eq!(n.unwrap(), 1, "the round's four results are one block");

            let d = store.apply_retention(Timestamp(NOW)).unwrap();
            assert_eq!(
                d,
                Dropped {
                    results: 4,
                    traces: 8,
                    events: 2,
                    unsynced: 0,
                    rollups: 4,
                }
            );
            assert_eq!(
                store.apply_retention(Timestamp(NOW)).unwrap(),
                Dropped::default(),
                "nothing more to drop"
            );
        }
        let store = Store::open(dir.path(), policy).unwrap();
        assert_eq!(
            store.stats().unwrap().dropped.results,
            4,
            "kept across restarts"
        );
        assert_eq!(store.stats().unwrap().dropped.rollups, 4);
        let rounds: Vec<u64> = store
            .reader()
            .unwrap()
            .results(&keys[0], 10)
            .unwrap()
            .iter()
            .map(|r| r.round.0)
            .collect();
        assert_eq!(rounds, [3, 2], "round 2 is old but not yet upstream");
        assert_eq!(store.last_round().unwrap(), Some(RoundId(3)));
    }

    #[test]
    fn size_cap_drops_synced_rows_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = full_capped(dir.path());
        sync_all(&store);
        assert!(store.stats().unwrap().db_bytes > CAP);
        let d = store.apply_retention(Timestamp(NOW)).unwrap();
        assert!(d.results > 0 && d.traces > 0, "{d:?}");
        assert_eq!(d.unsynced, 0);
        let stats = store.stats().unwrap();
        assert!(stats.db_bytes <= CAP, "{} bytes", stats.db_bytes);
        assert_eq!(stats.dropped, d);
        assert!(oldest_round(&store) > 1);
        assert_eq!(store.latest_results().unwrap()[0].round, RoundId(300));
        assert_eq!(
            count(&store, "results"),
            300 * 20 - d.results,
            "counted exactly what went"
        );
    }

    #[test]
    fn size_cap_drops_unsynced_rows_last() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = full_capped(dir.path());
        // Rounds from 16 on went upstream, the older ones did not: the
        // cap takes the newer rows first. (It takes about 80 % of the rows
        // here, more than the overflow: with 20 targets, each page of the
        // (target, ts) index holds one target's entries and only empties
        // when nearly all of them are gone. With long runs per target the
        // oldest pages of each run empty first.)
        for table in HistoryTable::ALL {
            sync(&store, table, 16);
        }
        let d = store.apply_retention(Timestamp(NOW)).unwrap();
        assert!(d.results > 0, "{d:?}");
        assert_eq!(d.unsynced, 0, "{d:?}");
        assert_eq!(oldest_round(&store), 1, "unsynced rows kept");
        assert!(store.stats().unwrap().db_bytes <= CAP);
    }

    #[test]
    fn size_cap_drops_and_counts_unsynced_rows_when_nothing_else_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = full_capped(dir.path());
        let backlog = store.stats().unwrap().backlog;
        let d = store.apply_retention(Timestamp(NOW)).unwrap();
        assert!(d.results > 0);
        assert_eq!(d.unsynced, d.results + d.traces + d.events, "{d:?}");
        let stats = store.stats().unwrap();
        assert!(stats.db_bytes <= CAP, "{} bytes", stats.db_bytes);
        assert_eq!(stats.backlog, backlog - d.unsynced);
        assert!(oldest_round(&store) > 1);
        assert_eq!(store.latest_results().unwrap()[0].round, RoundId(300));
    }
}
