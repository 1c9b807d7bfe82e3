//! The outbox: what the upstream sync has not sent yet. Queueing a row as
//! it is written, reading a batch back with its records, forgetting what
//! the server acknowledged, and the backlog the statistics report.
//!
//! Outbox ids never repeat within a file (`AUTOINCREMENT`, schema 4), and
//! an [`OutboxId`] also names the file it was read from: marks made after
//! the file was recreated (a damaged card) touch nothing in the new one.
//!
//! A row the server refused is set aside ([`set_aside`]): it keeps its
//! place with the server's message, is never read into a batch again and
//! is not part of the backlog.
//!
//! Rollups are not queued row by row: a rollup changes with every round
//! of its hour, so the row itself counts its changes since it was last
//! sent (`rollups.unsynced`), and the sync uploads the row's current
//! absolute values ([`rollup_batch`], [`mark_rollups_synced`]). The rows
//! of the hours still counted in memory ([`super::pending`]) count their
//! changes there and are sent the same way.

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Timestamp;

use super::history::{self, EVENT_SELECT};
use super::pending::{Pending, RollupCounts, RollupKey};
use super::records::{EventRecord, LastRefusal, ResultRecord, TraceRecord};
use super::sql::{all_rows, get_u64, sql, sql_limit};
use super::StoreError;

/// What an outbox row points to; the integer is `outbox.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxKind {
    Result = 1,
    Trace = 2,
    Event = 3,
}

impl OutboxKind {
    /// Every kind.
    pub const ALL: [OutboxKind; 3] = [OutboxKind::Result, OutboxKind::Trace, OutboxKind::Event];

    /// The value of `outbox.kind`.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The inverse of [`OutboxKind::code`].
    pub fn from_code(code: i64) -> Option<OutboxKind> {
        OutboxKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// A row the upstream sync has not sent yet, read back in full.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxRecord {
    Result(ResultRecord),
    Trace(TraceRecord),
    Event(EventRecord),
}

/// Which outbox row, in which file: the store's generation (bumped when a
/// damaged file is replaced by a new one) and the row's id there, which
/// is never given twice in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutboxId {
    file: u64,
    row: i64,
}

/// One outbox row and its record; `id` is what
/// [`Store::mark_synced`](super::Store::mark_synced) takes once the server
/// has acknowledged the record.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: OutboxId,
    pub record: OutboxRecord,
}

/// An outbox row the server refused, and why in one line (the collection,
/// the server's code and message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRow {
    pub id: OutboxId,
    pub reason: String,
}

/// A target's hour as the upstream sync uploads it: the absolute counts
/// (see [`super::rollup::RollupRow`]) and RTT sum now in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupItem {
    /// The target's key (its address or host name).
    pub target: String,
    pub row: super::rollup::RollupRow,
    /// The rounds' average RTTs added up, in ms.
    pub rtt_sum_ms: f64,
    /// How many rounds had an RTT.
    pub rtt_rounds: u64,
    /// Where the row is and how many changes this upload covers; what
    /// [`Store::mark_rollups_synced`](super::Store::mark_rollups_synced)
    /// takes back.
    pub mark: RollupMark,
}

/// A rollup row and the number of its changes an upload carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupMark {
    hour: i64,
    target: i64,
    changes: i64,
}

/// Up to `max` rollups changed since they were last sent, oldest hour
/// first: the table's, and (with `pending`, when an upstream is on) those
/// still counted in memory, which hold later hours than any in the table.
pub(super) fn rollup_batch(
    conn: &Connection,
    pending: Option<&Pending>,
    max: usize,
) -> Result<Vec<RollupItem>, StoreError> {
    let mut items = all_rows(
        conn,
        "reading the rollups to send",
        "SELECT u.hour, u.target, t.key, u.rounds, u.working, u.degraded, u.not_working, \
         u.rtt_sum_us, u.rtt_rounds, u.unsynced FROM rollups u JOIN targets t ON t.id = u.target \
         WHERE u.unsynced > 0 ORDER BY u.hour, u.target LIMIT ?1",
        params![sql_limit(max)],
        |r| {
            let counts = RollupCounts {
                rounds: get_u64(r, 3)?,
                working: get_u64(r, 4)?,
                degraded: get_u64(r, 5)?,
                not_working: get_u64(r, 6)?,
                rtt_sum_us: r.get(7)?,
                rtt_rounds: get_u64(r, 8)?,
                unsynced: get_u64(r, 9)?,
            };
            Ok(rollup_item((r.get(0)?, r.get(1)?), r.get(2)?, &counts))
        },
    )?;
    let Some(pending) = pending.filter(|_| items.len() < max) else {
        return Ok(items);
    };
    let mut waiting: Vec<_> = pending.rows().filter(|(_, c)| c.unsynced > 0).collect();
    waiting.sort_unstable_by_key(|(k, _)| *k);
    waiting.truncate(max - items.len());
    let mut key_of = conn
        .prepare_cached("SELECT key FROM targets WHERE id = ?1")
        .map_err(sql("reading the rollups to send"))?;
    for (key, counts) in waiting {
        let target: Option<String> = key_of
            .query_row([key.1], |r| r.get(0))
            .optional()
            .map_err(sql("reading the rollups to send"))?;
        if let Some(target) = target {
            items.push(rollup_item(key, target, counts));
        }
    }
    Ok(items)
}

fn rollup_item((hour, target): RollupKey, key: String, c: &RollupCounts) -> RollupItem {
    RollupItem {
        target: key,
        row: super::rollup::RollupRow {
            hour: Timestamp(hour),
            rounds: c.rounds,
            working: c.working,
            degraded: c.degraded,
            not_working: c.not_working,
        },
        rtt_sum_ms: super::encode::us_to_ms(c.rtt_sum_us),
        rtt_rounds: c.rtt_rounds,
        mark: RollupMark {
            hour,
            target,
            changes: i64::try_from(c.unsynced).unwrap_or(i64::MAX),
        },
    }
}

/// Take the changes the server acknowledged off their rows: in memory
/// where the row still waits there, else in the table, in one
/// transaction. A row that changed again meanwhile keeps the rest and is
/// sent again.
pub(super) fn mark_rollups_synced(
    conn: &mut Connection,
    pending: &mut Pending,
    marks: &[RollupMark],
) -> Result<(), StoreError> {
    let in_table: Vec<&RollupMark> = marks
        .iter()
        .filter(|m| !pending.mark_synced((m.hour, m.target), m.changes.max(0) as u64))
        .collect();
    if in_table.is_empty() {
        return Ok(());
    }
    let op = format!("marking {} rollups as sent upstream", in_table.len());
    let tx = conn.transaction().map_err(sql(&op))?;
    {
        let mut update = tx
            .prepare_cached(
                "UPDATE rollups SET unsynced = MAX(unsynced - ?3, 0) \
                 WHERE hour = ?1 AND target = ?2",
            )
            .map_err(sql(&op))?;
        for m in in_table {
            update
                .execute(params![m.hour, m.target, m.changes])
                .map_err(sql(&op))?;
        }
    }
    tx.commit().map_err(sql(&op))
}

/// How many rollups wait to be sent: the table's, and those in memory
/// (`pending`, when an upstream is on).
pub(super) fn rollup_backlog(
    conn: &Connection,
    pending: Option<&Pending>,
) -> Result<u64, StoreError> {
    let table = conn
        .query_row("SELECT COUNT(*) FROM rollups WHERE unsynced > 0", [], |r| {
            get_u64(r, 0)
        })
        .map_err(sql("reading store statistics"))?;
    let waiting = pending.map_or(0, |p| p.rows().filter(|(_, c)| c.unsynced > 0).count());
    Ok(table + waiting as u64)
}

/// Queue the row `row_id` (stamped `ts`) of the table `kind` points into.
pub(super) fn queue(
    conn: &Connection,
    kind: OutboxKind,
    row_id: i64,
    ts: Timestamp,
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO outbox (kind, row_id, ts) VALUES (?1, ?2, ?3)")?
        .execute(params![kind.code(), row_id, ts.millis()])?;
    Ok(())
}

/// How many records wait to be sent (a result block counts its results),
/// and the timestamp of the oldest (the rows set aside as refused are not
/// among them).
pub(super) fn backlog(conn: &Connection) -> Result<(u64, Option<Timestamp>), StoreError> {
    let op = "reading store statistics";
    let backlog = records_in(conn, "refused IS NULL").map_err(sql(op))?;
    let oldest_unsynced = conn
        .query_row(
            "SELECT ts FROM outbox WHERE refused IS NULL ORDER BY id LIMIT 1",
            [],
            |r| r.get(0).map(Timestamp),
        )
        .optional()
        .map_err(sql(op))?;
    Ok((backlog, oldest_unsynced))
}

/// How many records the outbox rows matching `filter` point to: a row
/// each, or a result block's count.
pub(super) fn records_in(conn: &Connection, filter: &str) -> rusqlite::Result<u64> {
    conn.query_row(
        &format!(
            "SELECT COALESCE(SUM(CASE WHEN o.kind = ?1 \
               THEN (SELECT count FROM results r WHERE r.id = o.row_id) ELSE 1 END), 0) \
             FROM outbox o WHERE {filter}"
        ),
        [OutboxKind::Result.code()],
        |r| get_u64(r, 0),
    )
}

/// How many rows are set aside as refused, and the newest refusal.
pub(super) fn refused(conn: &Connection) -> Result<(u64, Option<LastRefusal>), StoreError> {
    let op = "reading store statistics";
    let n = records_in(conn, "refused IS NOT NULL").map_err(sql(op))?;
    let last = conn
        .query_row(
            "SELECT refused_at, refused FROM outbox WHERE refused IS NOT NULL \
             ORDER BY refused_at DESC, id DESC LIMIT 1",
            [],
            |r| {
                Ok(LastRefusal {
                    at: Timestamp(r.get(0)?),
                    reason: r.get(1)?,
                })
            },
        )
        .optional()
        .map_err(sql(op))?;
    Ok((n, last))
}

/// The records of up to `max` outbox rows waiting to be sent, oldest
/// first, each with its record as it is stored now, their ids naming the
/// file `file`; see [`Store::outbox_batch`](super::Store::outbox_batch).
/// A result block's results share its row's id and are never split
/// between batches, so a batch may hold up to a block more than `max`.
pub(super) fn batch(
    conn: &Connection,
    file: u64,
    max: usize,
) -> Result<Vec<OutboxItem>, StoreError> {
    let op = "reading the outbox";
    let mut items = Vec::with_capacity(max.min(4096));
    let mut after = i64::MIN;
    'read: while items.len() < max {
        let want = max - items.len();
        let queued: Vec<(i64, i64, i64)> = all_rows(
            conn,
            op,
            "SELECT id, kind, row_id FROM outbox WHERE refused IS NULL AND id > ?1 \
             ORDER BY id LIMIT ?2",
            params![after, sql_limit(want)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let exhausted = queued.len() < want;
        let mut gone = Vec::new();
        for (id, kind, row_id) in queued {
            after = id;
            let records = outbox_records(conn, kind, row_id).map_err(sql(op))?;
            match records.filter(|r| !r.is_empty()) {
                Some(records) => items.extend(records.into_iter().map(|record| OutboxItem {
                    id: OutboxId { file, row: id },
                    record,
                })),
                None => gone.push(id),
            }
            if items.len() >= max {
                drop_orphans(conn, &gone)?;
                break 'read;
            }
        }
        drop_orphans(conn, &gone)?;
        if exhausted {
            break;
        }
    }
    Ok(items)
}

fn drop_orphans(conn: &Connection, gone: &[i64]) -> Result<(), StoreError> {
    if gone.is_empty() {
        return Ok(());
    }
    delete_outbox(conn, gone).map_err(sql("dropping orphaned outbox rows"))
}

/// Forget the outbox rows `ids` of the file `file`, in one transaction;
/// ids read from another file (before it was recreated) are ignored.
pub(super) fn mark_synced(
    conn: &mut Connection,
    file: u64,
    ids: &[OutboxId],
) -> Result<(), StoreError> {
    let rows = rows_of(file, ids.iter());
    if rows.is_empty() {
        return Ok(());
    }
    let op = format!("marking {} rows as sent upstream", rows.len());
    let tx = conn.transaction().map_err(sql(&op))?;
    delete_outbox(&tx, &rows).map_err(sql(&op))?;
    tx.commit().map_err(sql(&op))
}

/// Set the rows `refused` (of the file `file`) aside with their reasons,
/// stamped `at`, and count them in `refused_total`; inside the caller's
/// transaction. Returns how many were newly set aside (rows no longer in
/// the outbox, already set aside or of another file are skipped).
pub(super) fn set_aside(
    conn: &Connection,
    file: u64,
    refused: &[RefusedRow],
    at: Timestamp,
) -> rusqlite::Result<u64> {
    let mut st = conn.prepare_cached(
        "UPDATE outbox SET refused = ?2, refused_at = ?3 WHERE id = ?1 AND refused IS NULL",
    )?;
    let mut n = 0u64;
    for r in refused.iter().filter(|r| r.id.file == file) {
        if st.execute(params![r.id.row, r.reason, at.millis()])? > 0 {
            n += records_in(conn, &format!("o.id = {}", r.id.row))?;
        }
    }
    super::schema::add_counter(conn, super::schema::REFUSED_TOTAL, n)?;
    Ok(n)
}

/// The row ids among `ids` that were read from the file `file`.
fn rows_of<'a>(file: u64, ids: impl Iterator<Item = &'a OutboxId>) -> Vec<i64> {
    ids.filter(|id| id.file == file).map(|id| id.row).collect()
}

/// The records an outbox row points to (a result block's results, one
/// trace, one event); `None` when they are gone (or the kind is one this
/// build does not know, which only a newer build writes).
fn outbox_records(
    conn: &Connection,
    kind: i64,
    row_id: i64,
) -> rusqlite::Result<Option<Vec<OutboxRecord>>> {
    let Some(kind) = OutboxKind::from_code(kind) else {
        return Ok(None);
    };
    match kind {
        OutboxKind::Result => super::results::block_records(conn, row_id)
            .map(|r| r.map(|rs| rs.into_iter().map(OutboxRecord::Result).collect())),
        OutboxKind::Trace => history::TRACES
            .by_id(conn, row_id)
            .map(|r| r.map(|t| vec![OutboxRecord::Trace(t)])),
        OutboxKind::Event => conn
            .prepare_cached(&format!("{EVENT_SELECT} WHERE e.id = ?1"))?
            .query_row([row_id], history::event_from_row)
            .optional()
            .map(|r| r.map(|e| vec![OutboxRecord::Event(e)])),
    }
}

fn delete_outbox(conn: &Connection, ids: &[i64]) -> rusqlite::Result<()> {
    let mut st = conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
    for id in ids {
        st.execute([id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::probe::Status;
    use crate::store::{EventKind, History, StoreError};

    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn rollups_are_sent_as_they_are_and_again_after_a_change_in_flight() {
        let (_dir, mut store) = fresh();
        let keys = targets(2);
        store
            .write_round(&round(1, NOW, &keys, Status::Working))
            .unwrap();
        store
            .write_round(&round(2, NOW + 60_000, &keys, Status::NotWorking))
            .unwrap();
        let batch = store.rollup_batch(100).unwrap();
        assert_eq!(batch.len(), 2);
        let first = &batch[0];
        assert_eq!(first.target, keys[0]);
        assert_eq!(first.row.hour, Timestamp(NOW));
        assert_eq!(
            (first.row.rounds, first.row.working, first.row.not_working),
            (2, 1, 1)
        );
        // One round had an RTT (2.25 ms), the Not Working one none.
        assert_eq!((first.rtt_sum_ms, first.rtt_rounds), (2.25, 1));
        // A third round lands while the batch is on the wire: marking the
        // batch sent leaves the newer change to send.
        store
            .write_round(&round(3, NOW + 120_000, &keys, Status::Working))
            .unwrap();
        let marks: Vec<_> = batch.iter().map(|r| r.mark).collect();
        store.mark_rollups_synced(&marks).unwrap();
        let again = store.rollup_batch(100).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again[0].row.rounds, 3);
        assert_eq!(again[0].rtt_sum_ms, 4.5);
        store
            .mark_rollups_synced(&again.iter().map(|r| r.mark).collect::<Vec<_>>())
            .unwrap();
        assert!(store.rollup_batch(100).unwrap().is_empty());
        assert_eq!(store.rollup_backlog().unwrap(), 0);
        // Marking the same batch twice (a retry) takes nothing below zero.
        store.mark_rollups_synced(&marks).unwrap();
        store
            .write_round(&round(4, NOW + 180_000, &keys, Status::Working))
            .unwrap();
        assert_eq!(store.rollup_batch(100).unwrap().len(), 2);
    }

    #[test]
    fn without_an_upstream_no_rollup_waits() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            crate::store::Store::open(dir.path(), crate::store::RetentionPolicy::default())
                .unwrap();
        store
            .write_round(&round(1, NOW, &targets(3), Status::Working))
            .unwrap();
        assert_eq!(store.rollup_backlog().unwrap(), 0);
    }

    #[test]
    fn outbox_batches_come_oldest_first_with_their_records() {
        let (_dir, mut store) = fresh();
        let keys = targets(2);
        let r1 = round(1, NOW, &keys, Status::Working);
        let r2 = round(2, NOW + 60_000, &keys, Status::NotWorking);
        store.write_round(&r1).unwrap();
        store.write_round(&r2).unwrap();
        // Per round: 2 results (one block, one outbox row), 2 traces, 1
        // event, in that order.
        let all = store.outbox_batch(100).unwrap();
        assert_eq!(all.len(), 10);
        assert!(all.windows(2).all(|w| w[0].id <= w[1].id));
        assert_eq!(
            all[0].id, all[1].id,
            "a round's results share their block's row"
        );
        assert!(all[1].id < all[2].id);
        let expected: Vec<OutboxRecord> = [&r1, &r2]
            .into_iter()
            .flat_map(|r| {
                r.results
                    .iter()
                    .cloned()
                    .map(OutboxRecord::Result)
                    .chain(r.traces.iter().cloned().map(OutboxRecord::Trace))
                    .chain(r.events.iter().cloned().map(OutboxRecord::Event))
            })
            .collect();
        let got: Vec<OutboxRecord> = all.iter().map(|i| i.record.clone()).collect();
        assert_eq!(got, expected);

        let first = store.outbox_batch(3).unwrap();
        assert_eq!(first, all[..3].to_vec());
        assert!(store.outbox_batch(0).unwrap().is_empty());
    }

    #[test]
    fn mark_synced_removes_exactly_those_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = one_round(dir.path(), 3);
        let batch = store.outbox_batch(4).unwrap();
        let ids: Vec<OutboxId> = batch.iter().map(|i| i.id).collect();
        store.mark_synced(&ids).unwrap();
        assert_eq!(store.stats().unwrap().backlog, 7 - 4);
        let rest = store.outbox_batch(100).unwrap();
        assert_eq!(rest.len(), 3);
        assert!(rest.iter().all(|i| !ids.contains(&i.id)));
        // Again, and with nothing: both harmless.
        store.mark_synced(&ids).unwrap();
        store.mark_synced(&[]).unwrap();
        assert_eq!(store.stats().unwrap().backlog, 3);
        // The history itself stays.
        assert_eq!(count(&store, "results"), 3);
    }

    #[test]
    fn outbox_ids_never_repeat_once_the_outbox_emptied() {
        let (_dir, mut store) = fresh();
        let keys = targets(2);
        store
            .write_round(&round(1, NOW, &keys, Status::Working))
            .unwrap();
        // A sync reads round 1 and is slow; meanwhile the outbox empties
        // (a drain, or the size cap) and round 2 is queued.
        let first: Vec<OutboxId> = store
            .outbox_batch(100)
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect();
        sync_all(&store);
        store
            .write_round(&round(2, NOW + 60_000, &keys, Status::Working))
            .unwrap();
        let second: Vec<OutboxId> = store
            .outbox_batch(100)
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect();
        assert!(
            second.iter().all(|id| !first.contains(id)),
            "{first:?} {second:?}"
        );
        // The slow sync's marks forget nothing of round 2.
        store.mark_synced(&first).unwrap();
        assert_eq!(store.stats().unwrap().backlog, 5);
        // Also across a restart.
        sync_all(&store);
        drop(store);
        let mut store = open(_dir.path());
        store
            .write_round(&round(3, NOW + 120_000, &keys, Status::Working))
            .unwrap();
        let third = store.outbox_batch(100).unwrap();
        assert!(third
            .iter()
            .all(|i| !second.contains(&i.id) && !first.contains(&i.id)));
    }

    #[test]
    fn marks_from_before_the_file_was_recreated_forget_nothing_in_the_new_one() {
        let (_dir, mut store) = fresh();
        let keys = targets(2);
        store
            .write_round(&round(1, NOW, &keys, Status::Working))
            .unwrap();
        let old: Vec<OutboxId> = store
            .outbox_batch(100)
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect();
        let cause = StoreError::Unusable {
            path: "edgeprobe.db".into(),
            reason: "database disk image is malformed".into(),
        };
        // Round 1's rows are carried into the new file (with the same row
        // numbers there: the new file counts from 1 again), round 2 joins.
        store.recreate(&cause).unwrap();
        store
            .write_round(&round(2, NOW + 60_000, &keys, Status::Working))
            .unwrap();
        assert_eq!(store.stats().unwrap().backlog, 10);
        store.mark_synced(&old).unwrap();
        assert_eq!(
            store.stats().unwrap().backlog,
            10,
            "the new file's rows stay"
        );
        let refused: Vec<RefusedRow> = old
            .iter()
            .map(|&id| RefusedRow {
                id,
                reason: "results: code 121: no".into(),
            })
            .collect();
        store.set_aside_refused(&refused, Timestamp(NOW)).unwrap();
        let stats = store.stats().unwrap();
        assert_eq!((stats.backlog, stats.refused), (10, 0));
    }

    #[test]
    fn refused_rows_are_set_aside_counted_and_told() {
        let (_dir, mut store) = fresh();
        let keys = targets(2);
        store
            .write_round(&round(1, NOW, &keys, Status::Working))
            .unwrap();
        let batch = store.outbox_batch(100).unwrap();
        let refused = vec![RefusedRow {
            id: batch[4].id,
            reason: "events: code 121: Document failed validation".into(),
        }];
        store.mark_synced(&[batch[2].id]).unwrap();
        store
            .set_aside_refused(&refused, Timestamp(NOW + 5))
            .unwrap();
        // Again (a retry): not counted twice.
        store
            .set_aside_refused(&refused, Timestamp(NOW + 6))
            .unwrap();
        let stats = store.stats().unwrap();
        assert_eq!(
            (stats.backlog, stats.refused, stats.refused_total),
            (3, 1, 1)
        );
        assert_eq!(
            stats.last_refusal,
            Some(LastRefusal {
                at: Timestamp(NOW + 5),
                reason: refused[0].reason.clone()
            })
        );
        let again = store.outbox_batch(100).unwrap();
        assert_eq!(again.len(), 3);
        assert!(
            again.iter().all(|i| i.id != batch[4].id),
            "never read again"
        );
        let events = store.reader().unwrap().events(None, 10).unwrap();
        let told = events
            .iter()
            .find(|e| e.kind == EventKind::Store)
            .expect("a store event");
        assert!(
            told.detail.contains("Document failed validation"),
            "{}",
            told.detail
        );
        assert_eq!(count(&store, "events"), 2);
        // The event is the board's own: not queued for the server.
        assert_eq!(store.stats().unwrap().backlog, 3);
    }

    #[test]
    fn a_version_3_outbox_keeps_its_rows_and_ids_continue_after_them() {
        let (dir, mut store) = fresh();
        let keys = targets(2);
        store
            .write_round(&round(1, NOW, &keys, Status::Working))
            .unwrap();
        results_as_version_4(&store);
        store
            .conn()
            .execute_batch(
                "DROP INDEX outbox_waiting; \
                 ALTER TABLE outbox DROP COLUMN refused; \
                 ALTER TABLE outbox DROP COLUMN refused_at; \
                 CREATE TABLE outbox_v3 (id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, \
                   row_id INTEGER NOT NULL, ts INTEGER NOT NULL); \
                 INSERT INTO outbox_v3 SELECT id, kind, row_id, ts FROM outbox; \
                 DROP TABLE outbox; ALTER TABLE outbox_v3 RENAME TO outbox; \
                 CREATE UNIQUE INDEX outbox_row ON outbox (kind, row_id); \
                 PRAGMA user_version = 3;",
            )
            .unwrap();
        drop(store);
        let mut store = open(dir.path());
        let before = store.outbox_batch(100).unwrap();
        assert_eq!(before.len(), 5, "the backlog survives the migration");
        let event = before
            .iter()
            .find(|i| matches!(i.record, OutboxRecord::Event(_)))
            .unwrap();
        store.mark_synced(&[event.id]).unwrap();
        store
            .write_round(&round(2, NOW + 60_000, &keys, Status::Working))
            .unwrap();
        let after = store.outbox_batch(100).unwrap();
        assert_eq!(after.len(), 9);
        let newest_before = before.iter().map(|i| i.id).max().unwrap();
        let new = after.iter().filter(|i| i.id > newest_before);
        assert_eq!(
            new.count(),
            5,
            "the new round's ids come after the old ones"
        );
        let version: i64 = store
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 5);
    }

    #[test]
    fn outbox_rows_without_a_record_are_skipped_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (store, keys) = one_round(dir.path(), 3);
        // As a hand-edited file could have it: the results (one block)
        // and a trace gone.
        store.conn().execute("DELETE FROM results", []).unwrap();
        store
            .conn()
            .execute("DELETE FROM traces WHERE target = 1", [])
            .unwrap();
        // Five rows queued, two orphaned: a batch of two still fills up.
        let batch = store.outbox_batch(2).unwrap();
        assert_eq!(batch.len(), 2);
        assert!(matches!(batch[0].record, OutboxRecord::Trace(ref t) if t.target == keys[1]));
        assert!(matches!(batch[1].record, OutboxRecord::Trace(ref t) if t.target == keys[2]));
        assert_eq!(store.stats().unwrap().backlog, 3);
        let rest = store.outbox_batch(10).unwrap();
        assert_eq!(rest.len(), 3);
        assert!(matches!(rest[2].record, OutboxRecord::Event(_)));
    }

    #[test]
    fn an_event_without_a_target_reads_back_from_the_outbox() {
        let (_dir, mut store) = fresh();
        let e = EventRecord {
            kind: EventKind::Targets,
            detail: "loaded 3 targets\u{7}\n from x.csv".into(),
            from: None,
            to: None,
            ..event(None, NOW)
        };
        store.record_event(&e).unwrap();
        let batch = store.outbox_batch(10).unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].record, OutboxRecord::Event(e));
    }
}
