//! [`Store`], the writer: the one read-write connection, owned by the
//! monitor, and every method the rest of edgeprobe calls on the store.
//! Each method hands its work to the file with that job: [`schema`]
//! opens and recreates the file, [`insert`] writes, [`prune`] carries out
//! retention, [`outbox`] and [`history`] read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::clock::Timestamp;
use crate::lock::lock;

use super::history::{self, Reader};
use super::insert::{self, TargetCache};
use super::notifications;
use super::outbox::{self, OutboxId, OutboxItem, RefusedRow, RollupItem, RollupMark};
use super::pending::Pending;
use super::prune;
use super::records::{
    AlertRow, AttemptRecord, Dropped, EventRecord, PendingNotification, ResultRecord, RoundId,
    RoundRecord, SilenceRow, StoreStats, TraceRecord,
};
use super::results;
use super::retention::RetentionPolicy;
use super::salvage;
use super::schema::{self, HistoryTable, DB_FILE};
use super::sql::sql;
use super::StoreError;

/// The writer: owned by the monitor, used from one thread at a time (call
/// it from `spawn_blocking`, it does file I/O).
pub struct Store {
    conn: Connection,
    path: PathBuf,
    policy: RetentionPolicy,
    /// Every row of `targets`, so a round only touches that table for new
    /// targets or changed labels.
    targets: TargetCache,
    /// Whether new rows are queued in the outbox; see [`Store::set_outbox`].
    outbox: bool,
    /// A damaged file found at open and moved aside, until reported.
    recovered: Option<String>,
    /// Bumped when the file is recreated, so readers reopen it.
    generation: Arc<AtomicU64>,
    /// The rollups of the hours still being counted, shared with the
    /// readers ([`super::pending`]).
    pending: Arc<Mutex<Pending>>,
}

/// Open (or create) the database at `path`, bring its schema up to date,
/// load its targets and rebuild the rollups that waited in memory.
fn open_file(path: &Path) -> Result<(Connection, TargetCache, Pending), StoreError> {
    let conn = schema::open_writer(path)?;
    let targets = TargetCache::load(&conn)?;
    let counters = schema::read_counters(&conn).map_err(sql("reading counters"))?;
    let pending = match (
        counters.get(schema::ROLLUPS_FROM_HOUR),
        counters.get(schema::ROLLUPS_FROM_ROUND),
    ) {
        (Some(&hour), Some(&round)) => Pending::recover(
            i64::try_from(hour).unwrap_or(i64::MAX),
            round,
            results::rollup_contributions(&conn, round)?,
        ),
        // No round written yet.
        _ => Pending::default(),
    };
    Ok((conn, targets, pending))
}

/// Carry what can be read of the unsent rows of the damaged file at
/// `aside` into the new file (see [`salvage`]), queued again, and the
/// file's last round number with them; `note` (what happened to the
/// file) gains a sentence saying how many rows came over or were lost.
fn carry_over(
    conn: &mut Connection,
    targets: &mut TargetCache,
    pending: &mut Pending,
    aside: &Path,
    note: String,
) -> Result<String, StoreError> {
    let salvage = salvage::read(aside);
    let op = "carrying the unsent rows of the damaged file into the new one";
    let plan = targets.write(conn, op, |tx, ids| {
        let plan = if salvage.unreadable.is_none() {
            Some(insert::insert_round(tx, ids, &salvage.rows, true, pending)?)
        } else {
            None
        };
        schema::add_counter(tx, schema::DROPPED_UNSYNCED, salvage.lost)?;
        Ok(plan)
    })?;
    if let Some(plan) = plan {
        pending.apply(plan);
    }
    if salvage.carried == 0 && salvage.lost == 0 && salvage.unreadable.is_none() {
        return Ok(note);
    }
    Ok(format!("{note}; {}", salvage.sentence()))
}

impl Store {
    /// Create the directory if needed, open or create `<dir>/edgeprobe.db`
    /// (WAL, `synchronous=NORMAL`: a power cut may lose the last rounds but
    /// never corrupts the file), and create or migrate the schema.
    ///
    /// A file SQLite calls damaged or not a database (a failing SD card, a
    /// stray copy) is moved aside as `edgeprobe.db.damaged-<time>` and a new
    /// one is started; [`Store::take_recovery`] then says so, once.
    pub fn open(dir: &Path, policy: RetentionPolicy) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let (conn, targets, pending, recovered) = match open_file(&path) {
            Ok((conn, targets, pending)) => (conn, targets, pending, None),
            Err(e) if e.is_damage() => {
                let (note, aside) = schema::set_aside(&path, &e)?;
                let (mut conn, mut targets, mut pending) = open_file(&path)?;
                let note = carry_over(&mut conn, &mut targets, &mut pending, &aside, note)?;
                (conn, targets, pending, Some(note))
            }
            Err(e) => return Err(e),
        };
        Ok(Store {
            conn,
            path,
            policy,
            outbox: false,
            targets,
            recovered,
            generation: Arc::new(AtomicU64::new(0)),
            pending: Arc::new(Mutex::new(pending)),
        })
    }

    /// Start a new file after `cause` showed the current one is damaged:
    /// the old one is moved aside (see [`Store::open`]), readers reopen.
    /// Returns the sentence for the event log.
    pub fn recreate(&mut self, cause: &StoreError) -> Result<String, StoreError> {
        // Close the damaged file before moving it.
        let op = "closing the damaged database";
        let closed = std::mem::replace(
            &mut self.conn,
            Connection::open_in_memory().map_err(sql(op))?,
        );
        let _ = closed.close();
        let started = schema::set_aside(&self.path, cause).and_then(|(note, aside)| {
            let (mut conn, mut targets, mut pending) = open_file(&self.path)?;
            let note = carry_over(&mut conn, &mut targets, &mut pending, &aside, note)?;
            Ok((note, (conn, targets, pending)))
        });
        match started {
            Ok((note, (conn, targets, pending))) => {
                self.conn = conn;
                self.targets = targets;
                *lock(&self.pending) = pending;
                self.generation.fetch_add(1, Ordering::Relaxed);
                Ok(note)
            }
            Err(e) => {
                // Could not move it or start anew (a card gone read-only):
                // keep using whatever is there, so that later writes report
                // what is wrong with it and can try this again.
                if let Ok((conn, targets, pending)) = open_file(&self.path) {
                    self.conn = conn;
                    self.targets = targets;
                    *lock(&self.pending) = pending;
                }
                Err(e)
            }
        }
    }

    /// What [`Store::open`] had to do to a damaged file, once.
    pub fn take_recovery(&mut self) -> Option<String> {
        self.recovered.take()
    }

    /// Queue new results, traces and events in the outbox for the upstream
    /// sync. Off until an upstream is configured: nothing would drain the
    /// queue, and queued rows are spared by age retention, so the history
    /// would only ever shrink by the size cap.
    pub fn set_outbox(&mut self, on: bool) {
        self.outbox = on;
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write a round in one transaction: its results, traces and events,
    /// the hourly rollups of its results, and an outbox row for each
    /// result, trace and event. On error nothing of it is stored.
    pub fn write_round(&mut self, round: &RoundRecord) -> Result<(), StoreError> {
        let op = format!("writing round {}", round.round.0);
        let outbox = self.outbox;
        let mut pending = lock(&self.pending);
        let plan = self.targets.write(&mut self.conn, &op, |tx, ids| {
            insert::insert_round(tx, ids, round, outbox, &pending)
        })?;
        pending.apply(plan);
        Ok(())
    }

    /// Up to `max` alert notifications due at `now`, oldest first.
    pub fn due_notifications(
        &self,
        now: Timestamp,
        max: usize,
    ) -> Result<Vec<PendingNotification>, StoreError> {
        notifications::due(&self.conn, now, max)
    }

    /// Record what a pass of the sender came to, in one transaction: all
    /// of it or, on an error, none (and the pass is tried again).
    pub fn record_attempts(
        &mut self,
        attempts: &[AttemptRecord],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let op = "recording what the alert sender did";
        let tx = self.conn.transaction().map_err(super::sql::sql(op))?;
        for a in attempts {
            match a {
                AttemptRecord::Settled { id, outcome, error } => {
                    notifications::settle(&tx, *id, *outcome, at, error.as_deref())?;
                }
                AttemptRecord::Retry {
                    id,
                    channel,
                    next_at,
                    error,
                } => {
                    notifications::retry(&tx, *id, *next_at, error)?;
                    notifications::postpone_channel(&tx, channel, *next_at)?;
                }
            }
        }
        tx.commit().map_err(super::sql::sql(op))
    }

    /// How many notifications wait, and when the oldest was made.
    pub fn notification_backlog(&self) -> Result<(u64, Option<Timestamp>), StoreError> {
        notifications::backlog(&self.conn)
    }

    /// The alerts firing as the last round that changed them left them.
    pub fn firing_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        notifications::alerts(&self.conn)
    }

    /// Make `silences` the ones in force, at once (not with a round).
    pub fn save_silences(&mut self, silences: &[SilenceRow]) -> Result<(), StoreError> {
        notifications::replace_silences(&self.conn, silences)
    }

    /// The silences saved last.
    pub fn silences(&self) -> Result<Vec<SilenceRow>, StoreError> {
        notifications::silences(&self.conn)
    }

    /// Record an event outside a round (the targets sheet was reloaded),
    /// in its own transaction, with its outbox row.
    pub fn record_event(&mut self, event: &EventRecord) -> Result<(), StoreError> {
        let op = format!("recording a {} event", event.kind.as_str());
        let outbox = self.outbox;
        self.targets.write(&mut self.conn, &op, |tx, ids| {
            insert::insert_event(tx, ids, event, outbox)
        })
    }

    /// Drop what the policy no longer keeps and return what this pass
    /// dropped (the totals since creation are in [`Store::stats`]).
    ///
    /// First by age: results, traces and events older than `max_age` that
    /// are not in the outbox, rollups older than `rollup_max_age`. Then, if
    /// the file and WAL are over `max_bytes`, down to 95 % of it, oldest
    /// first, in this order: synced results, traces and events (each the
    /// same share of its oldest rows); rollups too old for any uptime
    /// window; unsynced rows (counted in `unsynced`); the other rollups.
    /// The plan in `retention.rs` decides all of this; `prune.rs` carries
    /// it out.
    ///
    /// Age is judged in the order rows were written: a row written after
    /// the clock jumped back waits for its neighbours. A pass examines at
    /// most a fixed number of rows, so after a policy change the store
    /// may take several passes to come within it.
    pub fn apply_retention(&mut self, now: Timestamp) -> Result<Dropped, StoreError> {
        prune::apply(
            &mut self.conn,
            &self.path,
            &self.policy,
            self.targets.len(),
            now,
        )
    }

    /// Backlog, size and drop totals.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let (backlog, oldest_unsynced) = outbox::backlog(&self.conn)?;
        let (refused, last_refusal) = outbox::refused(&self.conn)?;
        let db_bytes =
            schema::file_len(&self.path)? + schema::file_len(&schema::wal_path(&self.path))?;
        let c = schema::read_counters(&self.conn).map_err(sql("reading store statistics"))?;
        let get = |name: &str| c.get(name).copied().unwrap_or(0);
        Ok(StoreStats {
            backlog,
            refused,
            refused_total: get(schema::REFUSED_TOTAL),
            last_refusal,
            oldest_unsynced,
            db_bytes,
            dropped: Dropped {
                results: get(HistoryTable::Results.dropped_counter()),
                traces: get(HistoryTable::Traces.dropped_counter()),
                events: get(HistoryTable::Events.dropped_counter()),
                unsynced: get(schema::DROPPED_UNSYNCED),
                rollups: get(schema::DROPPED_ROLLUPS),
            },
            errors: 0,
        })
    }

    /// The highest round written, so numbering continues after a restart
    /// (kept even when retention has dropped that round's rows).
    pub fn last_round(&self) -> Result<Option<RoundId>, StoreError> {
        history::last_round(&self.conn)
    }

    /// The newest result of every target.
    pub fn latest_results(&self) -> Result<Vec<ResultRecord>, StoreError> {
        history::latest_results(&self.conn)
    }

    /// The newest trace of every target.
    pub fn latest_traces(&self) -> Result<Vec<TraceRecord>, StoreError> {
        history::latest_traces(&self.conn)
    }

    /// For every target with results, the average RTT of its last `n`
    /// results, oldest first, `None` where nothing replied.
    pub fn recent_rtts(&self, n: usize) -> Result<HashMap<String, Vec<Option<f64>>>, StoreError> {
        history::recent_rtts(&self.conn, n)
    }

    /// Uptime over the 24 h before `now` of every target with rounds in
    /// that window, from the rollups (whole hours, see
    /// [`rollup`](super::rollup)).
    pub fn uptimes_24h(&self, now: Timestamp) -> Result<HashMap<String, f64>, StoreError> {
        history::uptimes_24h(&self.conn, &lock(&self.pending), now)
    }

    /// Up to `max` outbox rows, oldest first, each with its record as it
    /// is stored now (a result carries its target's current labels).
    ///
    /// An outbox row whose record is gone is deleted and skipped: there is
    /// nothing left to send, and keeping it would stall the queue. The
    /// store itself never leaves such rows (retention drops both together),
    /// so this only tidies up after a hand-edited or damaged file.
    ///
    /// Rows set aside as refused ([`Store::set_aside_refused`]) are not
    /// read again.
    pub fn outbox_batch(&self, max: usize) -> Result<Vec<OutboxItem>, StoreError> {
        outbox::batch(&self.conn, self.file_generation(), max)
    }

    /// Forget outbox rows the server has acknowledged, in one transaction.
    /// Ids that are not (or no longer) in the outbox are ignored, and so
    /// are ids read before the file was recreated: those rows went with
    /// the damaged file, and the new file's rows are others.
    pub fn mark_synced(&mut self, ids: &[OutboxId]) -> Result<(), StoreError> {
        let file = self.file_generation();
        outbox::mark_synced(&mut self.conn, file, ids)
    }

    /// Set aside outbox rows the server refused (a validator, a missing
    /// permission, a duplicate on an index other than `_id`), stamped
    /// `at`: they are never sent again and leave the backlog, so the rows
    /// behind them go on. Counted in `refused_total` and recorded as a
    /// `store` event with the server's reason, in one transaction. The
    /// event stays on the board (it is not queued itself: were the events
    /// the refused collection, each refusal would queue the next).
    pub fn set_aside_refused(
        &mut self,
        refused: &[RefusedRow],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(first) = refused.first() else {
            return Ok(());
        };
        let op = format!("setting aside {} rows the server refused", refused.len());
        let file = self.file_generation();
        let event = EventRecord {
            target: None,
            ts: at,
            kind: super::records::EventKind::Store,
            from: None,
            to: None,
            detail: format!(
                "the central database refused {} rows ({}); they are set aside on the \
                 board and not sent again, the rest goes on: check the collection's \
                 validator and the sync user's roles on the central database",
                refused.len(),
                first.reason
            ),
        };
        self.targets.write(&mut self.conn, &op, |tx, ids| {
            if outbox::set_aside(tx, file, refused, at)? > 0 {
                insert::insert_event(tx, ids, &event, false)?;
            }
            Ok(())
        })
    }

    /// Which file the writer has open: bumped by [`Store::recreate`].
    fn file_generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Up to `max` hourly rollups changed since the upstream sync last
    /// sent them, oldest hour first, with their absolute values now.
    pub fn rollup_batch(&self, max: usize) -> Result<Vec<RollupItem>, StoreError> {
        let pending = self.outbox.then(|| lock(&self.pending));
        outbox::rollup_batch(&self.conn, pending.as_deref(), max)
    }

    /// Record that the server holds these rollups as they were read.
    pub fn mark_rollups_synced(&mut self, marks: &[RollupMark]) -> Result<(), StoreError> {
        outbox::mark_rollups_synced(&mut self.conn, &mut lock(&self.pending), marks)
    }

    /// How many rollups wait to be sent.
    pub fn rollup_backlog(&self) -> Result<u64, StoreError> {
        let pending = self.outbox.then(|| lock(&self.pending));
        outbox::rollup_backlog(&self.conn, pending.as_deref())
    }

    /// A read-only connection for the dashboard.
    pub fn reader(&self) -> Result<Reader, StoreError> {
        Reader::open(
            self.path.clone(),
            Arc::clone(&self.generation),
            Arc::clone(&self.pending),
        )
    }

    /// The rollups still counted in memory, for tests that build older
    /// files.
    #[cfg(test)]
    pub(super) fn pending_rows(
        &self,
    ) -> Vec<(super::pending::RollupKey, super::pending::RollupCounts)> {
        lock(&self.pending).rows().map(|(k, c)| (k, *c)).collect()
    }

    /// The connection, for tests that look at or change the file directly.
    #[cfg(test)]
    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use crate::probe::Status;
    use crate::store::{History, OutboxRecord};

    use super::super::fixtures::*;
    use super::super::sql::get_u64;
    use super::*;

    #[test]
    fn the_hour_counted_in_memory_survives_a_crash_and_is_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let keys = targets(3);
        let statuses = [Status::Working, Status::NotWorking, Status::Degraded];
        let (uptime, sent) = {
            let mut store = open(dir.path());
            for (n, s) in (1..=3).zip(statuses) {
                store
                    .write_round(&round(n, NOW + n as i64 * 60_000, &keys, s))
                    .unwrap();
            }
            assert_eq!(
                count(&store, "rollups"),
                0,
                "the hour is still counted in memory"
            );
            let uptime = store
                .reader()
                .unwrap()
                .uptime(&keys[0], Timestamp(NOW + H / 2));
            let sent = store.rollup_batch(100).unwrap();
            // Dropped without anything more: a crash or a power cut.
            (uptime.unwrap(), sent)
        };
        assert_eq!(uptime.h24, Some(2.0 / 3.0));
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[0].row.rounds, 3);
        let mut store = open(dir.path());
        let again = store
            .reader()
            .unwrap()
            .uptime(&keys[0], Timestamp(NOW + H / 2));
        assert_eq!(again.unwrap(), uptime);
        assert_eq!(store.rollup_batch(100).unwrap(), sent, "rebuilt as it was");
        // The next hour's first round puts the hour in the table, once.
        store
            .write_round(&round(4, NOW + H + 60_000, &keys, Status::Working))
            .unwrap();
        let stored: (u64, u64, u64) = store
            .conn()
            .query_row(
                "SELECT rounds, not_working, unsynced FROM rollups WHERE hour = ?1 AND target = 1",
                [NOW],
                |r| Ok((get_u64(r, 0)?, get_u64(r, 1)?, get_u64(r, 2)?)),
            )
            .unwrap();
        assert_eq!(stored, (3, 1, 3));
        drop(store);
        let store = open(dir.path());
        let uptime = store
            .reader()
            .unwrap()
            .uptime(&keys[0], Timestamp(NOW + H + 90_000));
        assert_eq!(
            uptime.unwrap().h24,
            Some(3.0 / 4.0),
            "nothing counted twice"
        );
        // What the sync marks leaves the memory and the table alike.
        let batch = store.rollup_batch(100).unwrap();
        assert_eq!(batch.len(), 6);
        let mut store = store;
        store
            .mark_rollups_synced(&batch.iter().map(|r| r.mark).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(store.rollup_backlog().unwrap(), 0);
    }

    #[test]
    fn recreating_starts_afresh_and_readers_follow() {
        let (_dir, mut store) = fresh();
        let keys = vec!["127.0.0.1".to_string()];
        store
            .write_round(&round(1, NOW, &keys, Status::Working))
            .unwrap();
        let reader = store.reader().unwrap();
        assert_eq!(reader.results("127.0.0.1", 10).unwrap().len(), 1);

        // Everything was sent: nothing to carry over.
        sync_all(&store);
        let note = store.recreate(&malformed()).unwrap();
        assert!(note.contains("malformed"), "{note}");
        assert_eq!(count(&store, "results"), 0);
        assert!(
            reader.results("127.0.0.1", 10).unwrap().is_empty(),
            "the reader reopened"
        );
        store
            .write_round(&round(2, NOW + 60_000, &keys, Status::Working))
            .unwrap();
        assert_eq!(reader.results("127.0.0.1", 10).unwrap()[0].round.0, 2);
    }

    fn malformed() -> StoreError {
        StoreError::Unusable {
            path: "edgeprobe.db".into(),
            reason: "database disk image is malformed".into(),
        }
    }

    #[test]
    fn the_unsent_rows_of_a_recreated_file_are_carried_into_the_new_one() {
        let (_dir, mut store) = fresh();
        let keys = targets(3);
        store
            .write_round(&round(1, NOW, &keys, Status::Working))
            .unwrap();
        store
            .write_round(&round(2, NOW + 60_000, &keys, Status::Working))
            .unwrap();
        let sent: Vec<OutboxId> = store
            .outbox_batch(7)
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect();
        store.mark_synced(&sent).unwrap();
        let unsent: Vec<OutboxRecord> = store
            .outbox_batch(100)
            .unwrap()
            .into_iter()
            .map(|i| i.record)
            .collect();
        assert_eq!(unsent.len(), 7);

        let note = store.recreate(&malformed()).unwrap();
        assert!(
            note.contains("its 7 unsent rows were carried into the new file"),
            "{note}"
        );
        let carried: Vec<OutboxRecord> = store
            .outbox_batch(100)
            .unwrap()
            .into_iter()
            .map(|i| i.record)
            .collect();
        assert_eq!(carried.len(), 7);
        for r in &unsent {
            assert!(carried.contains(r), "{r:?} not carried over");
        }
        assert_eq!(count(&store, "results"), 3, "only the unsent ones");
        assert_eq!(store.last_round().unwrap(), Some(RoundId(2)));
    }
}
