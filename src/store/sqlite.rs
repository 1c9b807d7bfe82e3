//! The store's SQLite edge: the schema, the single writer connection that
//! the monitor owns ([`Store`]) and the read-only connection the dashboard
//! reads through ([`Reader`]).
//!
//! Everything that decides (hour boundaries, uptime, what retention drops,
//! how values are packed) is a pure function in the sibling modules; this
//! file only moves rows.
//!
//! # Schema (version 1, in `PRAGMA user_version`)
//!
//! Timestamps are integer unix milliseconds. Targets are interned: the
//! per-round tables hold a small integer instead of repeating the
//! address text in every row (and in every index entry).
//!
//! - `targets(id, key, name, grp)`: one row per target key, with the name
//!   and group it was last written with. A result read back carries these
//!   current labels, not the ones of its own round.
//! - `results(id, target, round, ts, status, reported, sent, received,
//!   loss, rtt_min, rtt_avg, rtt_max, rtt_mdev, gateway)`: statuses as
//!   0/1/2 (Working/Degraded/Not Working), RTTs in whole µs, `loss` NULL
//!   when it is the usual `(sent - received) / sent` (1 when nothing was
//!   sent), `gateway` NULL unknown, empty for direct, else the 4 or 16
//!   address bytes. Index `(target, ts)`.
//! - `traces(id, target, round, ts, reached, hops)`: hops as
//!   `[[ttl,"addr"|null,rtt_us|null],...]`. Index `(target, ts)`.
//! - `events(id, target, ts, kind, before, after, detail)`: `target` NULL
//!   for the board itself. Index `(target, ts)`.
//! - `rollups(hour, target, rounds, working, degraded, not_working)`: one
//!   row per target and UTC hour, by each round's own status. Keyed by
//!   `(hour, target)` so the all-targets 24 h query reads one contiguous
//!   range; index `(target, hour)` for one target's windows.
//! - `outbox(id, kind, row_id, ts)`: what the upstream sync has not sent
//!   yet. `kind` is 1 result, 2 trace, 3 event ([`OutboxKind`]); `row_id`
//!   is the row's id in that table; `ts` is the row's own timestamp; `id`
//!   orders the rows as written. The sync sends the rows and deletes their
//!   outbox rows; until then age retention keeps them and only the size
//!   cap drops them, last, counting them as unsynced. Unique index
//!   `(kind, row_id)`.
//! - `counters(name, value)`: `last_round` and the `dropped_*` totals,
//!   kept across restarts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::Type;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use crate::clock::Timestamp;
use crate::probe::RttSummary;

use super::encode::{self, BadValue};
use super::records::{
    Dropped, EventKind, EventRecord, ResultRecord, RoundId, RoundRecord, StoreStats, TraceRecord,
    Uptime,
};
use super::retention::{self, AgeCutoffs, RetentionPolicy};
use super::rollup::{self, RollupRow};
use super::{History, StoreError};

/// The database file's name in the state directory.
pub const DB_FILE: &str = "edgeprobe.db";

/// The schema this code writes; older files are migrated on open.
const SCHEMA_VERSION: i64 = 1;

/// How long a statement waits for a lock (a checkpoint, the other
/// connection) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// After a checkpoint, a WAL file larger than this is truncated to it, so
/// one large transaction (a retention pass) does not leave a large file.
const WAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

/// Rows (or ids) per delete transaction: short enough that a pass never
/// holds the write lock for long, large enough to amortise the commit.
const DELETE_CHUNK: u64 = 5_000;

/// Ids a retention pass may look at. A pass runs after every round, so a
/// large backlog (a shortened `max_age`, a lowered cap) is worked off over
/// several rounds instead of stalling one.
const PASS_BUDGET: u64 = 200_000;

/// Measure-and-drop steps per phase of the size cap.
const CAP_STEPS: usize = 8;

const SCHEMA: &str = "
CREATE TABLE targets (
    id   INTEGER PRIMARY KEY,
    key  TEXT NOT NULL UNIQUE,
    name TEXT,
    grp  TEXT
);
CREATE TABLE results (
    id       INTEGER PRIMARY KEY,
    target   INTEGER NOT NULL,
    round    INTEGER NOT NULL,
    ts       INTEGER NOT NULL,
    status   INTEGER NOT NULL,
    reported INTEGER NOT NULL,
    sent     INTEGER NOT NULL,
    received INTEGER NOT NULL,
    loss     REAL,
    rtt_min  INTEGER,
    rtt_avg  INTEGER,
    rtt_max  INTEGER,
    rtt_mdev INTEGER,
    gateway  BLOB
);
CREATE INDEX results_target_ts ON results (target, ts);
CREATE TABLE traces (
    id      INTEGER PRIMARY KEY,
    target  INTEGER NOT NULL,
    round   INTEGER NOT NULL,
    ts      INTEGER NOT NULL,
    reached INTEGER NOT NULL,
    hops    TEXT NOT NULL
);
CREATE INDEX traces_target_ts ON traces (target, ts);
CREATE TABLE events (
    id     INTEGER PRIMARY KEY,
    target INTEGER,
    ts     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    before TEXT,
    after  TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX events_target_ts ON events (target, ts);
CREATE TABLE rollups (
    hour        INTEGER NOT NULL,
    target      INTEGER NOT NULL,
    rounds      INTEGER NOT NULL,
    working     INTEGER NOT NULL,
    degraded    INTEGER NOT NULL,
    not_working INTEGER NOT NULL,
    PRIMARY KEY (hour, target)
) WITHOUT ROWID;
CREATE INDEX rollups_target_hour ON rollups (target, hour);
CREATE TABLE outbox (
    id     INTEGER PRIMARY KEY,
    kind   INTEGER NOT NULL,
    row_id INTEGER NOT NULL,
    ts     INTEGER NOT NULL
);
CREATE UNIQUE INDEX outbox_row ON outbox (kind, row_id);
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Which table an outbox row points into; the integer is `outbox.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxKind {
    Result = 1,
    Trace = 2,
    Event = 3,
}

impl OutboxKind {
    /// Every kind, in the order retention visits them.
    pub const ALL: [OutboxKind; 3] = [OutboxKind::Result, OutboxKind::Trace, OutboxKind::Event];

    /// The value of `outbox.kind`.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The inverse of [`OutboxKind::code`].
    pub fn from_code(code: i64) -> Option<OutboxKind> {
        OutboxKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The table the row lives in.
    pub fn table(self) -> &'static str {
        match self {
            OutboxKind::Result => "results",
            OutboxKind::Trace => "traces",
            OutboxKind::Event => "events",
        }
    }

    fn counter(self) -> &'static str {
        match self {
            OutboxKind::Result => "dropped_results",
            OutboxKind::Trace => "dropped_traces",
            OutboxKind::Event => "dropped_events",
        }
    }
}

/// A row the upstream sync has not sent yet, read back in full.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxRecord {
    Result(ResultRecord),
    Trace(TraceRecord),
    Event(EventRecord),
}

/// One outbox row and its record; `id` is what [`Store::mark_synced`]
/// takes once the server has acknowledged the record.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub record: OutboxRecord,
}

/// Wrap a rusqlite error with what was being done.
fn sql(op: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite {
        op: op.into(),
        source,
    }
}

/// A column's value is not one the store writes: reported as a conversion
/// failure of that column, so it carries the column index.
fn bad(col: usize, ty: Type, e: BadValue) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, ty, Box::new(e))
}

/// A round number or count as SQLite's signed integer; one that does not
/// fit is an error, not a wrapped number.
fn int(n: u64) -> rusqlite::Result<i64> {
    i64::try_from(n).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// The inverse of [`int`].
fn get_u64(row: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(i)?;
    u64::try_from(v)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Integer, Box::new(e)))
}

fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A file's length, 0 when it does not exist (the WAL between sessions).
fn file_len(path: &Path) -> Result<u64, StoreError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(StoreError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// A target's id and the labels stored with it.
#[derive(Debug, Clone, PartialEq)]
struct TargetRow {
    id: i64,
    name: Option<String>,
    group: Option<String>,
}

/// The writer: owned by the monitor, used from one thread at a time (call
/// it from `spawn_blocking`, it does file I/O).
pub struct Store {
    conn: Connection,
    path: PathBuf,
    policy: RetentionPolicy,
    /// Every row of `targets`, so a round only touches that table for new
    /// targets or changed labels.
    targets: HashMap<String, TargetRow>,
    /// Whether new rows are queued in the outbox; see [`Store::set_outbox`].
    outbox: bool,
    /// A damaged file found at open and moved aside, until reported.
    recovered: Option<String>,
    /// Bumped when the file is recreated, so readers reopen it.
    generation: Arc<AtomicU64>,
}

/// Open (or create) the database at `path` and bring its schema up to date.
fn open_file(path: &Path) -> Result<(Connection, HashMap<String, TargetRow>), StoreError> {
    let op = format!("opening {}", path.display());
    let mut conn = Connection::open(path).map_err(sql(&op))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql(&op))?;
    // Only takes effect before the first table exists, which is when it
    // is needed: freed pages can then go back to the file system.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(sql(&op))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(sql(&op))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unusable {
            path: path.display().to_string(),
            reason: format!(
                "SQLite cannot use write-ahead logging here (journal mode {mode}); \
                 put the state directory on a local file system"
            ),
        });
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql(&op))?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
        .map_err(sql(&op))?;
    migrate(&mut conn, path)?;
    let targets = load_targets(&conn).map_err(sql("loading targets"))?;
    Ok((conn, targets))
}

/// Move a damaged database (and its WAL and shared-memory files) out of
/// the way, keeping it for inspection. Returns what happened, in a
/// sentence.
fn set_aside(path: &Path, cause: &StoreError) -> Result<String, StoreError> {
    let stamp = Timestamp::now().0;
    let aside = PathBuf::from(format!("{}.damaged-{stamp}", path.display()));
    std::fs::rename(path, &aside).map_err(|source| StoreError::Io {
        path: path.display().to_string(),
        source,
    })?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            let _ = std::fs::rename(&side, format!("{}{suffix}", aside.display()));
        }
    }
    let note = format!(
        "the history database was damaged ({cause}); it was moved to {} and a new one started",
        aside.display()
    );
    eprintln!("edgeprobe: {note}");
    Ok(note)
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
        let (conn, targets, recovered) = match open_file(&path) {
            Ok((conn, targets)) => (conn, targets, None),
            Err(e) if e.is_damage() => {
                let note = set_aside(&path, &e)?;
                let (conn, targets) = open_file(&path)?;
                (conn, targets, Some(note))
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
        let started =
            set_aside(&self.path, cause).and_then(|note| Ok((note, open_file(&self.path)?)));
        match started {
            Ok((note, (conn, targets))) => {
                self.conn = conn;
                self.targets = targets;
                self.generation.fetch_add(1, Ordering::Relaxed);
                Ok(note)
            }
            Err(e) => {
                // Could not move it or start anew (a card gone read-only):
                // keep using whatever is there, so that later writes report
                // what is wrong with it and can try this again.
                if let Ok((conn, targets)) = open_file(&self.path) {
                    self.conn = conn;
                    self.targets = targets;
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
        let tx = self.conn.transaction().map_err(sql(&op))?;
        let mut interned = Interner {
            known: &self.targets,
            new: HashMap::new(),
        };
        insert_round(&tx, &mut interned, round, self.outbox).map_err(sql(&op))?;
        let new = interned.new;
        tx.commit().map_err(sql(&op))?;
        // Only now: a rolled-back round must not leave ids in the cache.
        self.targets.extend(new);
        Ok(())
    }

    /// Record an event outside a round (the targets sheet was reloaded),
    /// in its own transaction, with its outbox row.
    pub fn record_event(&mut self, event: &EventRecord) -> Result<(), StoreError> {
        let op = format!("recording a {} event", event.kind.as_str());
        let tx = self.conn.transaction().map_err(sql(&op))?;
        let mut interned = Interner {
            known: &self.targets,
            new: HashMap::new(),
        };
        insert_event(&tx, &mut interned, event, self.outbox).map_err(sql(&op))?;
        let new = interned.new;
        tx.commit().map_err(sql(&op))?;
        self.targets.extend(new);
        Ok(())
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
    ///
    /// Age is judged in the order rows were written: a row written after
    /// the clock jumped back waits for its neighbours. A pass examines at
    /// most a fixed number of rows, so after a policy change the store
    /// may take several passes to come within it.
    pub fn apply_retention(&mut self, now: Timestamp) -> Result<Dropped, StoreError> {
        let cut = self.policy.cutoffs(now);
        let mut pass = Pass {
            dropped: Dropped::default(),
            budget: PASS_BUDGET,
        };
        for kind in OutboxKind::ALL {
            self.drop_old(kind, cut.rows, &mut pass)?;
        }
        self.drop_rollups_before(cut.rollups, u64::MAX, &mut pass)?;
        self.enforce_cap(cut, &mut pass)?;
        Ok(pass.dropped)
    }

    /// Backlog, size and drop totals.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let op = "reading store statistics";
        let backlog: u64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| get_u64(r, 0))
            .map_err(sql(op))?;
        let oldest_unsynced = self
            .conn
            .query_row("SELECT ts FROM outbox ORDER BY id LIMIT 1", [], |r| {
                r.get(0).map(Timestamp)
            })
            .optional()
            .map_err(sql(op))?;
        let db_bytes = file_len(&self.path)? + file_len(&wal_path(&self.path))?;
        let c = read_counters(&self.conn).map_err(sql(op))?;
        let get = |name: &str| c.get(name).copied().unwrap_or(0);
        Ok(StoreStats {
            backlog,
            oldest_unsynced,
            db_bytes,
            dropped: Dropped {
                results: get(OutboxKind::Result.counter()),
                traces: get(OutboxKind::Trace.counter()),
                events: get(OutboxKind::Event.counter()),
                unsynced: get("dropped_unsynced"),
                rollups: get("dropped_rollups"),
            },
            errors: 0,
        })
    }

    /// The highest round written, so numbering continues after a restart
    /// (kept even when retention has dropped that round's rows).
    pub fn last_round(&self) -> Result<Option<RoundId>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM counters WHERE name = 'last_round'",
                [],
                |r| get_u64(r, 0).map(RoundId),
            )
            .optional()
            .map_err(sql("reading the last round"))
    }

    /// The newest result of every target.
    pub fn latest_results(&self) -> Result<Vec<ResultRecord>, StoreError> {
        latest_results(&self.conn)
    }

    /// The newest trace of every target.
    pub fn latest_traces(&self) -> Result<Vec<TraceRecord>, StoreError> {
        latest_traces(&self.conn)
    }

    /// For every target with results, the average RTT of its last `n`
    /// results, oldest first, `None` where nothing replied.
    pub fn recent_rtts(&self, n: usize) -> Result<HashMap<String, Vec<Option<f64>>>, StoreError> {
        recent_rtts(&self.conn, n)
    }

    /// Uptime over the 24 h before `now` of every target with rounds in
    /// that window, from the rollups (whole hours, see [`rollup`]).
    pub fn uptimes_24h(&self, now: Timestamp) -> Result<HashMap<String, f64>, StoreError> {
        uptimes_24h(&self.conn, now)
    }

    /// Up to `max` outbox rows, oldest first, each with its record as it
    /// is stored now (a result carries its target's current labels).
    ///
    /// An outbox row whose record is gone is deleted and skipped: there is
    /// nothing left to send, and keeping it would stall the queue. The
    /// store itself never leaves such rows (retention drops both together),
    /// so this only tidies up after a hand-edited or damaged file.
    pub fn outbox_batch(&self, max: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let op = "reading the outbox";
        let mut items = Vec::with_capacity(max.min(4096));
        let mut after = i64::MIN;
        while items.len() < max {
            let want = max - items.len();
            let queued: Vec<(i64, i64, i64)> = {
                let mut st = self
                    .conn
                    .prepare_cached(
                        "SELECT id, kind, row_id FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
                    )
                    .map_err(sql(op))?;
                let rows = st
                    .query_map(params![after, sql_limit(want)], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .map_err(sql(op))?;
                rows.collect::<rusqlite::Result<_>>().map_err(sql(op))?
            };
            let Some(&(last, _, _)) = queued.last() else {
                break;
            };
            after = last;
            let exhausted = queued.len() < want;
            let mut gone = Vec::new();
            for (id, kind, row_id) in queued {
                match outbox_record(&self.conn, kind, row_id).map_err(sql(op))? {
                    Some(record) => items.push(OutboxItem { id, record }),
                    None => gone.push(id),
                }
            }
            if !gone.is_empty() {
                delete_outbox(&self.conn, &gone).map_err(sql("dropping orphaned outbox rows"))?;
            }
            if exhausted {
                break;
            }
        }
        Ok(items)
    }

    /// Forget outbox rows the server has acknowledged, in one transaction.
    /// Ids that are not (or no longer) in the outbox are ignored.
    pub fn mark_synced(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let op = format!("marking {} rows as sent upstream", ids.len());
        let tx = self.conn.transaction().map_err(sql(&op))?;
        delete_outbox(&tx, ids).map_err(sql(&op))?;
        tx.commit().map_err(sql(&op))
    }

    /// A read-only connection for the dashboard.
    pub fn reader(&self) -> Result<Reader, StoreError> {
        let generation = self.generation.load(Ordering::Relaxed);
        Ok(Reader {
            conn: Mutex::new((generation, open_reader(&self.path)?)),
            path: self.path.clone(),
            generation: Arc::clone(&self.generation),
        })
    }

    /// Results, traces or events older than `cutoff` and not in the
    /// outbox, in id ranges from the oldest row, until the first row that
    /// is young enough.
    fn drop_old(
        &mut self,
        kind: OutboxKind,
        cutoff: Timestamp,
        pass: &mut Pass,
    ) -> Result<(), StoreError> {
        let op = format!("dropping old {}", kind.table());
        let Some((mut lo, _)) = self.id_span(kind).map_err(sql(&op))? else {
            return Ok(());
        };
        // The usual case after a round: nothing has aged out. Skip the
        // (empty) write transaction.
        let oldest: i64 = self
            .conn
            .query_row(
                &format!("SELECT ts FROM {} WHERE id = ?1", kind.table()),
                [lo],
                |r| r.get(0),
            )
            .map_err(sql(&op))?;
        if oldest >= cutoff.millis() {
            return Ok(());
        }
        while pass.budget > 0 {
            let hi = lo.saturating_add(chunk_of(pass.budget, DELETE_CHUNK));
            self.delete_range(kind, lo, hi, Mode::Age(cutoff), pass)
                .map_err(sql(&op))?;
            let next: Option<(i64, i64)> = self
                .conn
                .query_row(
                    &format!(
                        "SELECT id, ts FROM {} WHERE id >= ?1 ORDER BY id LIMIT 1",
                        kind.table()
                    ),
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
        Ok(())
    }

    /// Delete ids `lo..hi` of one table in one transaction and count them.
    fn delete_range(
        &mut self,
        kind: OutboxKind,
        lo: i64,
        hi: i64,
        mode: Mode,
        pass: &mut Pass,
    ) -> rusqlite::Result<u64> {
        let t = kind.table();
        let tx = self.conn.transaction()?;
        let not_queued =
            format!("NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = ?3 AND o.row_id = {t}.id)");
        let (deleted, unsynced) = match mode {
            Mode::Age(cutoff) => {
                let n = tx.execute(
                    &format!(
                        "DELETE FROM {t} WHERE id >= ?1 AND id < ?2 AND ts < ?4 AND {not_queued}"
                    ),
                    params![lo, hi, kind.code(), cutoff.millis()],
                )?;
                (n, 0)
            }
            Mode::Synced => {
                let n = tx.execute(
                    &format!("DELETE FROM {t} WHERE id >= ?1 AND id < ?2 AND {not_queued}"),
                    params![lo, hi, kind.code()],
                )?;
                (n, 0)
            }
            Mode::Everything => {
                let queued = tx.execute(
                    "DELETE FROM outbox WHERE kind = ?3 AND row_id >= ?1 AND row_id < ?2",
                    params![lo, hi, kind.code()],
                )?;
                let n = tx.execute(
                    &format!("DELETE FROM {t} WHERE id >= ?1 AND id < ?2"),
                    params![lo, hi],
                )?;
                (n, queued)
            }
        };
        let (deleted, unsynced) = (deleted as u64, unsynced as u64);
        add_counter(&tx, kind.counter(), deleted)?;
        add_counter(&tx, "dropped_unsynced", unsynced)?;
        tx.commit()?;
        match kind {
            OutboxKind::Result => pass.dropped.results += deleted,
            OutboxKind::Trace => pass.dropped.traces += deleted,
            OutboxKind::Event => pass.dropped.events += deleted,
        }
        pass.dropped.unsynced += unsynced;
        pass.budget = pass
            .budget
            .saturating_sub(u64::try_from(hi.saturating_sub(lo)).unwrap_or(u64::MAX));
        Ok(deleted)
    }

    /// Up to `max` rollup rows of the hours before `before`, oldest first.
    fn drop_rollups_before(
        &mut self,
        before: Timestamp,
        max: u64,
        pass: &mut Pass,
    ) -> Result<u64, StoreError> {
        let op = "dropping old rollups";
        let mut done = 0u64;
        while done < max && pass.budget > 0 {
            let n = chunk_of(pass.budget.min(max - done), DELETE_CHUNK);
            let tx = self.conn.transaction().map_err(sql(op))?;
            let deleted = tx
                .execute(
                    "DELETE FROM rollups WHERE (hour, target) IN \
                     (SELECT hour, target FROM rollups WHERE hour < ?1 ORDER BY hour LIMIT ?2)",
                    params![before.millis(), n],
                )
                .map_err(sql(op))? as u64;
            add_counter(&tx, "dropped_rollups", deleted).map_err(sql(op))?;
            tx.commit().map_err(sql(op))?;
            done += deleted;
            pass.dropped.rollups += deleted;
            pass.budget = pass.budget.saturating_sub(deleted.max(1));
            if deleted < u64::try_from(n).unwrap_or(0) {
                break;
            }
        }
        Ok(done)
    }

    /// Bring the file and WAL under the cap when they are over it.
    fn enforce_cap(&mut self, cut: AgeCutoffs, pass: &mut Pass) -> Result<(), StoreError> {
        if self.used_bytes()? <= self.policy.max_bytes {
            return self.shrink_file();
        }
        let goal = self.policy.low_water();
        'phases: for phase in [
            Phase::Synced,
            Phase::UnusedRollups,
            Phase::Unsynced,
            Phase::AllRollups,
        ] {
            for _ in 0..CAP_STEPS {
                // Deleting writes pages to the WAL: fold it back first so
                // that it does not count as history to drop.
                self.checkpoint()?;
                let used = self.used_bytes()?;
                if used <= goal || pass.budget == 0 {
                    break 'phases;
                }
                if self.drop_for_cap(phase, used, goal, cut, pass)? == 0 {
                    break;
                }
            }
        }
        self.shrink_file()
    }

    /// One step of one phase of the size cap; how many rows it dropped.
    fn drop_for_cap(
        &mut self,
        phase: Phase,
        used: u64,
        goal: u64,
        cut: AgeCutoffs,
        pass: &mut Pass,
    ) -> Result<u64, StoreError> {
        match phase {
            Phase::Synced | Phase::Unsynced => {
                let mut total = 0;
                for kind in OutboxKind::ALL {
                    let op = format!("dropping {} over the size cap", kind.table());
                    let Some((min, max)) = self.id_span(kind).map_err(sql(&op))? else {
                        continue;
                    };
                    let span = u64::try_from(max - min + 1).unwrap_or(0);
                    let want = retention::rows_to_drop(used, goal, span);
                    total += if phase == Phase::Synced {
                        self.drop_oldest_synced(kind, min, max, want, pass)
                    } else {
                        self.drop_oldest_all(kind, min, want, pass)
                    }
                    .map_err(sql(&op))?;
                }
                Ok(total)
            }
            Phase::UnusedRollups | Phase::AllRollups => {
                let before = if phase == Phase::UnusedRollups {
                    cut.rollups_unused
                } else {
                    Timestamp(i64::MAX)
                };
                let rows = self.rollup_rows_before(before)?;
                let want = retention::rows_to_drop(used, goal, rows);
                self.drop_rollups_before(before, want, pass)
            }
        }
    }

    /// The oldest `want` rows not in the outbox, skipping those that are.
    fn drop_oldest_synced(
        &mut self,
        kind: OutboxKind,
        min: i64,
        max: i64,
        want: u64,
        pass: &mut Pass,
    ) -> rusqlite::Result<u64> {
        let (mut lo, mut done) = (min, 0);
        while done < want && lo <= max && pass.budget > 0 {
            // A range never holds more rows than ids, so this never drops
            // more than asked.
            let hi = lo.saturating_add(chunk_of(pass.budget.min(want - done), DELETE_CHUNK));
            done += self.delete_range(kind, lo, hi, Mode::Synced, pass)?;
            lo = hi;
        }
        Ok(done)
    }

    /// The oldest `want` ids, in the outbox or not.
    fn drop_oldest_all(
        &mut self,
        kind: OutboxKind,
        min: i64,
        want: u64,
        pass: &mut Pass,
    ) -> rusqlite::Result<u64> {
        let (mut lo, mut left, mut done) = (min, want, 0);
        while left > 0 && pass.budget > 0 {
            let n = chunk_of(pass.budget.min(left), DELETE_CHUNK);
            done += self.delete_range(kind, lo, lo.saturating_add(n), Mode::Everything, pass)?;
            lo = lo.saturating_add(n);
            left = left.saturating_sub(u64::try_from(n).unwrap_or(0));
        }
        Ok(done)
    }

    /// The lowest and highest id of a table; ids are dense because rows
    /// are only ever dropped from the old end, so the span counts rows.
    fn id_span(&self, kind: OutboxKind) -> rusqlite::Result<Option<(i64, i64)>> {
        self.conn.query_row(
            &format!("SELECT MIN(id), MAX(id) FROM {}", kind.table()),
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
        Ok(hours.saturating_mul(self.targets.len().max(1) as u64))
    }

    /// Bytes the history takes: pages in use plus the WAL file. Free pages
    /// are left out: they are reused before the file grows, and
    /// [`Store::shrink_file`] returns them when the file is over the cap.
    fn used_bytes(&self) -> Result<u64, StoreError> {
        let (pages, free, page_size) = self.page_counts()?;
        Ok(pages.saturating_sub(free) * page_size + file_len(&wal_path(&self.path))?)
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

    /// When the file and WAL are over the cap, give the free pages back to
    /// the file system and fold the WAL in.
    fn shrink_file(&mut self) -> Result<(), StoreError> {
        let (pages, free, page_size) = self.page_counts()?;
        let wal = file_len(&wal_path(&self.path))?;
        if pages * page_size + wal <= self.policy.max_bytes {
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

/// `n` as an i64 chunk length of at most `chunk`, and at least 1.
fn chunk_of(n: u64, chunk: u64) -> i64 {
    i64::try_from(n.clamp(1, chunk)).unwrap_or(1)
}

/// What a retention pass has dropped and may still examine.
struct Pass {
    dropped: Dropped,
    budget: u64,
}

/// Which rows of an id range [`Store::delete_range`] drops.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Older than the cutoff and not in the outbox.
    Age(Timestamp),
    /// Not in the outbox.
    Synced,
    /// All of them, with their outbox rows.
    Everything,
}

/// The order in which the size cap drops things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Synced,
    UnusedRollups,
    Unsynced,
    AllRollups,
}

/// Create the schema, or migrate an older one.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let op = format!("creating the schema in {}", path.display());
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql(&op))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Unusable {
            path: path.display().to_string(),
            reason: format!(
                "written by a newer edgeprobe (schema {version}, this one knows up to \
                 {SCHEMA_VERSION}); upgrade edgeprobe or move the file away"
            ),
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    // Version 0: a new file. Later versions add their steps here, each in
    // the same transaction as the version bump.
    let tx = conn.transaction().map_err(sql(&op))?;
    tx.execute_batch(SCHEMA).map_err(sql(&op))?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(sql(&op))?;
    tx.commit().map_err(sql(&op))
}

fn load_targets(conn: &Connection) -> rusqlite::Result<HashMap<String, TargetRow>> {
    let mut st = conn.prepare("SELECT id, key, name, grp FROM targets")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(1)?,
            TargetRow {
                id: r.get(0)?,
                name: r.get(2)?,
                group: r.get(3)?,
            },
        ))
    })?;
    rows.collect()
}

fn read_counters(conn: &Connection) -> rusqlite::Result<HashMap<String, u64>> {
    let mut st = conn.prepare_cached("SELECT name, value FROM counters")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, get_u64(r, 1)?)))?;
    rows.collect()
}

fn add_counter(conn: &Connection, name: &str, n: u64) -> rusqlite::Result<()> {
    if n == 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO counters (name, value) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
    )?
    .execute(params![name, int(n)?])?;
    Ok(())
}

/// Target ids during one transaction: the committed ones, plus those this
/// transaction added or relabelled (merged into the cache on commit).
struct Interner<'a> {
    known: &'a HashMap<String, TargetRow>,
    new: HashMap<String, TargetRow>,
}

impl Interner<'_> {
    fn get(&self, key: &str) -> Option<&TargetRow> {
        self.new.get(key).or_else(|| self.known.get(key))
    }

    /// The id of `key`; `labels` (from a result) replace the stored ones
    /// when they differ, `None` (a trace, an event) leaves them.
    fn id(
        &mut self,
        conn: &Connection,
        key: &str,
        labels: Option<(&Option<String>, &Option<String>)>,
    ) -> rusqlite::Result<i64> {
        let existing = self.get(key).cloned();
        match (existing, labels) {
            (Some(row), None) => Ok(row.id),
            (Some(row), Some((name, group))) if row.name == *name && row.group == *group => {
                Ok(row.id)
            }
            (Some(row), Some((name, group))) => {
                conn.prepare_cached("UPDATE targets SET name = ?2, grp = ?3 WHERE id = ?1")?
                    .execute(params![row.id, name, group])?;
                self.new.insert(
                    key.to_string(),
                    TargetRow {
                        id: row.id,
                        name: name.clone(),
                        group: group.clone(),
                    },
                );
                Ok(row.id)
            }
            (None, labels) => {
                let (name, group) = labels.map_or((None, None), |(n, g)| (n.clone(), g.clone()));
                let id = conn
                    .prepare_cached("INSERT INTO targets (key, name, grp) VALUES (?1, ?2, ?3)")?
                    .insert(params![key, name, group])?;
                self.new
                    .insert(key.to_string(), TargetRow { id, name, group });
                Ok(id)
            }
        }
    }
}

fn queue(conn: &Connection, kind: OutboxKind, row_id: i64, ts: Timestamp) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO outbox (kind, row_id, ts) VALUES (?1, ?2, ?3)")?
        .execute(params![kind.code(), row_id, ts.millis()])?;
    Ok(())
}

fn insert_round(
    conn: &Connection,
    targets: &mut Interner<'_>,
    round: &RoundRecord,
    outbox: bool,
) -> rusqlite::Result<()> {
    for r in &round.results {
        let target = targets.id(conn, &r.target, Some((&r.name, &r.group)))?;
        let rtt_us = |f: fn(&RttSummary) -> f64| r.rtt.as_ref().map(|s| encode::ms_to_us(f(s)));
        let id = conn
            .prepare_cached(
                "INSERT INTO results (target, round, ts, status, reported, sent, received, loss, \
                 rtt_min, rtt_avg, rtt_max, rtt_mdev, gateway) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .insert(params![
                target,
                int(r.round.0)?,
                r.ts.millis(),
                encode::status_code(r.status),
                encode::status_code(r.reported),
                r.sent,
                r.received,
                encode::loss_to_column(r.sent, r.received, r.loss),
                rtt_us(|s| s.min),
                rtt_us(|s| s.avg),
                rtt_us(|s| s.max),
                rtt_us(|s| s.mdev),
                encode::gateway_to_blob(r.gateway),
            ])?;
        if outbox {
            queue(conn, OutboxKind::Result, id, r.ts)?;
        }
        let add = RollupRow::one(rollup::hour_start(r.ts), r.status);
        conn.prepare_cached(
            "INSERT INTO rollups (hour, target, rounds, working, degraded, not_working) \
             VALUES (?1, ?2, 1, ?3, ?4, ?5) \
             ON CONFLICT (hour, target) DO UPDATE SET rounds = rounds + 1, \
             working = working + excluded.working, degraded = degraded + excluded.degraded, \
             not_working = not_working + excluded.not_working",
        )?
        .execute(params![
            add.hour.millis(),
            target,
            int(add.working)?,
            int(add.degraded)?,
            int(add.not_working)?
        ])?;
    }
    for t in &round.traces {
        let target = targets.id(conn, &t.target, None)?;
        let id = conn
            .prepare_cached(
                "INSERT INTO traces (target, round, ts, reached, hops) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .insert(params![
                target,
                int(t.round.0)?,
                t.ts.millis(),
                t.reached,
                encode::hops_to_json(&t.hops)
            ])?;
        if outbox {
            queue(conn, OutboxKind::Trace, id, t.ts)?;
        }
    }
    for e in &round.events {
        insert_event(conn, targets, e, outbox)?;
    }
    conn.prepare_cached(
        "INSERT INTO counters (name, value) VALUES ('last_round', ?1) \
         ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
    )?
    .execute([int(round.round.0)?])?;
    Ok(())
}

fn insert_event(
    conn: &Connection,
    targets: &mut Interner<'_>,
    e: &EventRecord,
    outbox: bool,
) -> rusqlite::Result<()> {
    let target = match &e.target {
        Some(key) => Some(targets.id(conn, key, None)?),
        None => None,
    };
    let id = conn
        .prepare_cached(
            "INSERT INTO events (target, ts, kind, before, after, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .insert(params![
            target,
            e.ts.millis(),
            e.kind.as_str(),
            e.from,
            e.to,
            e.detail
        ])?;
    if outbox {
        queue(conn, OutboxKind::Event, id, e.ts)?;
    }
    Ok(())
}

/// The record an outbox row points to; `None` when it is gone (or the
/// kind is one this build does not know, which only a newer build writes).
fn outbox_record(
    conn: &Connection,
    kind: i64,
    row_id: i64,
) -> rusqlite::Result<Option<OutboxRecord>> {
    let Some(kind) = OutboxKind::from_code(kind) else {
        return Ok(None);
    };
    match kind {
        OutboxKind::Result => conn
            .prepare_cached(&format!(
                "SELECT {RESULT_COLUMNS} FROM results r JOIN targets t ON t.id = r.target \
                 WHERE r.id = ?1"
            ))?
            .query_row([row_id], result_from_row)
            .optional()
            .map(|r| r.map(OutboxRecord::Result)),
        OutboxKind::Trace => conn
            .prepare_cached(&format!(
                "SELECT {TRACE_COLUMNS} FROM traces r JOIN targets t ON t.id = r.target \
                 WHERE r.id = ?1"
            ))?
            .query_row([row_id], trace_from_row)
            .optional()
            .map(|r| r.map(OutboxRecord::Trace)),
        OutboxKind::Event => conn
            .prepare_cached(&format!("{EVENT_SELECT} WHERE e.id = ?1"))?
            .query_row([row_id], event_from_row)
            .optional()
            .map(|r| r.map(OutboxRecord::Event)),
    }
}

fn delete_outbox(conn: &Connection, ids: &[i64]) -> rusqlite::Result<()> {
    let mut st = conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
    for id in ids {
        st.execute([id])?;
    }
    Ok(())
}

const RESULT_COLUMNS: &str = "t.key, t.name, t.grp, r.round, r.ts, r.status, r.reported, \
     r.sent, r.received, r.loss, r.rtt_min, r.rtt_avg, r.rtt_max, r.rtt_mdev, r.gateway";

fn result_from_row(row: &Row<'_>) -> rusqlite::Result<ResultRecord> {
    let status =
        |i: usize| encode::status_from_code(row.get(i)?).map_err(|e| bad(i, Type::Integer, e));
    let sent: u32 = row.get(7)?;
    let received: u32 = row.get(8)?;
    let us: [Option<i64>; 4] = [row.get(10)?, row.get(11)?, row.get(12)?, row.get(13)?];
    let rtt = match us {
        [Some(min), Some(avg), Some(max), Some(mdev)] => Some(RttSummary {
            min: encode::us_to_ms(min),
            avg: encode::us_to_ms(avg),
            max: encode::us_to_ms(max),
            mdev: encode::us_to_ms(mdev),
        }),
        _ => None,
    };
    let gateway: Option<Vec<u8>> = row.get(14)?;
    Ok(ResultRecord {
        target: row.get(0)?,
        name: row.get(1)?,
        group: row.get(2)?,
        round: RoundId(get_u64(row, 3)?),
        ts: Timestamp(row.get(4)?),
        status: status(5)?,
        reported: status(6)?,
        sent,
        received,
        loss: row
            .get::<_, Option<f64>>(9)?
            .unwrap_or_else(|| encode::usual_loss(sent, received)),
        rtt,
        gateway: encode::gateway_from_blob(gateway.as_deref())
            .map_err(|e| bad(14, Type::Blob, e))?,
    })
}

const TRACE_COLUMNS: &str = "t.key, r.round, r.ts, r.reached, r.hops";

fn trace_from_row(row: &Row<'_>) -> rusqlite::Result<TraceRecord> {
    let hops: String = row.get(4)?;
    Ok(TraceRecord {
        target: row.get(0)?,
        round: RoundId(get_u64(row, 1)?),
        ts: Timestamp(row.get(2)?),
        reached: row.get(3)?,
        hops: encode::hops_from_json(&hops).map_err(|e| bad(4, Type::Text, e))?,
    })
}

const EVENT_SELECT: &str = "SELECT t.key, e.ts, e.kind, e.before, e.after, e.detail \
     FROM events e LEFT JOIN targets t ON t.id = e.target";

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<EventRecord> {
    let kind: String = row.get(2)?;
    Ok(EventRecord {
        target: row.get(0)?,
        ts: Timestamp(row.get(1)?),
        kind: EventKind::parse(&kind)
            .ok_or_else(|| bad(2, Type::Text, BadValue(format!("event kind {kind:?}"))))?,
        from: row.get(3)?,
        to: row.get(4)?,
        detail: row.get(5)?,
    })
}

fn results(conn: &Connection, target: &str, limit: usize) -> Result<Vec<ResultRecord>, StoreError> {
    newest_of(
        conn,
        "results",
        RESULT_COLUMNS,
        result_from_row,
        target,
        limit,
    )
}

fn traces(conn: &Connection, target: &str, limit: usize) -> Result<Vec<TraceRecord>, StoreError> {
    newest_of(conn, "traces", TRACE_COLUMNS, trace_from_row, target, limit)
}

/// One target's rows of `table` (results or traces), newest first.
fn newest_of<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    from_row: fn(&Row<'_>) -> rusqlite::Result<T>,
    target: &str,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let op = format!("reading the {table} of {target}");
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {columns} FROM {table} r JOIN targets t ON t.id = r.target \
             WHERE r.target = (SELECT id FROM targets WHERE key = ?1) \
             ORDER BY r.ts DESC, r.id DESC LIMIT ?2"
        ))
        .map_err(sql(&op))?;
    let rows = st
        .query_map(params![target, sql_limit(limit)], from_row)
        .map_err(sql(&op))?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql(&op))
}

fn events(
    conn: &Connection,
    target: Option<&str>,
    limit: usize,
) -> Result<Vec<EventRecord>, StoreError> {
    let op = "reading events";
    let from = EVENT_SELECT;
    let rows = match target {
        Some(key) => {
            let mut st = conn
                .prepare_cached(&format!(
                    "{from} WHERE e.target = (SELECT id FROM targets WHERE key = ?1) \
                     ORDER BY e.ts DESC, e.id DESC LIMIT ?2"
                ))
                .map_err(sql(op))?;
            let rows = st
                .query_map(params![key, sql_limit(limit)], event_from_row)
                .map_err(sql(op))?;
            rows.collect::<rusqlite::Result<_>>()
        }
        None => {
            // All events: newest written first, which needs no sort.
            let mut st = conn
                .prepare_cached(&format!("{from} ORDER BY e.id DESC LIMIT ?1"))
                .map_err(sql(op))?;
            let rows = st
                .query_map([sql_limit(limit)], event_from_row)
                .map_err(sql(op))?;
            rows.collect::<rusqlite::Result<_>>()
        }
    };
    rows.map_err(sql(op))
}

fn uptime(conn: &Connection, target: &str, now: Timestamp) -> Result<Uptime, StoreError> {
    let op = format!("reading the uptime of {target}");
    let mut st = conn
        .prepare_cached(
            "SELECT hour, rounds, working, degraded, not_working FROM rollups \
             WHERE target = (SELECT id FROM targets WHERE key = ?1) AND hour >= ?2 AND hour <= ?3",
        )
        .map_err(sql(&op))?;
    let start = rollup::window_start(now, rollup::MONTH);
    let rows = st
        .query_map(params![target, start.millis(), now.millis()], |r| {
            Ok(RollupRow {
                hour: Timestamp(r.get(0)?),
                rounds: get_u64(r, 1)?,
                working: get_u64(r, 2)?,
                degraded: get_u64(r, 3)?,
                not_working: get_u64(r, 4)?,
            })
        })
        .map_err(sql(&op))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql(&op))?;
    Ok(rollup::uptime(&rows, now))
}

fn latest_results(conn: &Connection) -> Result<Vec<ResultRecord>, StoreError> {
    let op = "reading the latest results";
    // One index probe per target rather than a scan of all results.
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {RESULT_COLUMNS} FROM targets t JOIN results r ON r.id = \
             (SELECT id FROM results WHERE target = t.id ORDER BY ts DESC, id DESC LIMIT 1) \
             ORDER BY t.key"
        ))
        .map_err(sql(op))?;
    let rows = st.query_map([], result_from_row).map_err(sql(op))?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql(op))
}

fn latest_traces(conn: &Connection) -> Result<Vec<TraceRecord>, StoreError> {
    let op = "reading the latest traces";
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {TRACE_COLUMNS} FROM targets t JOIN traces r ON r.id = \
             (SELECT id FROM traces WHERE target = t.id ORDER BY ts DESC, id DESC LIMIT 1) \
             ORDER BY t.key"
        ))
        .map_err(sql(op))?;
    let rows = st.query_map([], trace_from_row).map_err(sql(op))?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql(op))
}

fn recent_rtts(
    conn: &Connection,
    n: usize,
) -> Result<HashMap<String, Vec<Option<f64>>>, StoreError> {
    let op = "reading recent round-trip times";
    let mut targets = conn
        .prepare_cached("SELECT id, key FROM targets")
        .map_err(sql(op))?;
    let targets = targets
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql(op))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql(op))?;
    let mut st = conn
        .prepare_cached(
            "SELECT rtt_avg FROM results WHERE target = ?1 ORDER BY ts DESC, id DESC LIMIT ?2",
        )
        .map_err(sql(op))?;
    let mut out = HashMap::with_capacity(targets.len());
    for (id, key) in targets {
        let mut rtts = st
            .query_map(params![id, sql_limit(n)], |r| {
                Ok(r.get::<_, Option<i64>>(0)?.map(encode::us_to_ms))
            })
            .map_err(sql(op))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql(op))?;
        if !rtts.is_empty() {
            rtts.reverse();
            out.insert(key, rtts);
        }
    }
    Ok(out)
}

fn uptimes_24h(conn: &Connection, now: Timestamp) -> Result<HashMap<String, f64>, StoreError> {
    let op = "reading 24 h uptimes";
    let start = rollup::window_start(now, rollup::DAY);
    // One range of the (hour, target) key: about 25 rows per target.
    let mut st = conn
        .prepare_cached(
            "SELECT t.key, SUM(u.rounds), SUM(u.not_working) FROM rollups u \
             JOIN targets t ON t.id = u.target \
             WHERE u.hour >= ?1 AND u.hour <= ?2 GROUP BY u.target",
        )
        .map_err(sql(op))?;
    let rows = st
        .query_map(params![start.millis(), now.millis()], |r| {
            Ok((r.get::<_, String>(0)?, get_u64(r, 1)?, get_u64(r, 2)?))
        })
        .map_err(sql(op))?;
    let mut out = HashMap::new();
    for row in rows {
        let (key, rounds, down) = row.map_err(sql(op))?;
        if let Some(f) = rollup::fraction(rounds, down) {
            out.insert(key, f);
        }
    }
    Ok(out)
}

/// The dashboard's connection: read-only, its own lock, so a page never
/// waits for a round being written (WAL lets both run at once).
pub struct Reader {
    /// The connection, and the store's generation it was opened in.
    conn: Mutex<(u64, Connection)>,
    path: PathBuf,
    generation: Arc<AtomicU64>,
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let op = format!("opening {} for reading", path.display());
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(sql(&op))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql(&op))?;
    Ok(conn)
}

impl Reader {
    /// The connection, reopened first if the store was recreated since.
    fn conn(&self) -> Result<ReaderGuard<'_>, StoreError> {
        // A panic elsewhere while holding the lock leaves the connection
        // itself intact: keep serving.
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.generation.load(Ordering::Relaxed);
        if guard.0 != now {
            *guard = (now, open_reader(&self.path)?);
        }
        Ok(ReaderGuard(guard))
    }
}

struct ReaderGuard<'a>(MutexGuard<'a, (u64, Connection)>);

impl std::ops::Deref for ReaderGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0 .1
    }
}

impl History for Reader {
    fn results(&self, target: &str, limit: usize) -> Result<Vec<ResultRecord>, StoreError> {
        results(&*self.conn()?, target, limit)
    }

    fn traces(&self, target: &str, limit: usize) -> Result<Vec<TraceRecord>, StoreError> {
        traces(&*self.conn()?, target, limit)
    }

    fn events(&self, target: Option<&str>, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        events(&*self.conn()?, target, limit)
    }

    fn uptime(&self, target: &str, now: Timestamp) -> Result<Uptime, StoreError> {
        uptime(&*self.conn()?, target, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Gateway, Hop, Status, Ttl};

    const H: i64 = rollup::HOUR_MS;
    const DAY_MS: i64 = 24 * H;
    /// 2026-11-25T12:00:00Z, on an hour boundary.
    const NOW: i64 = 1_795_608_000_000;

    fn result(target: &str, round: u64, ts: i64, status: Status) -> ResultRecord {
        let received = match status {
            Status::Working => 3,
            Status::Degraded => 2,
            Status::NotWorking => 0,
        };
        ResultRecord {
            target: target.to_string(),
            round: RoundId(round),
            ts: Timestamp(ts),
            name: Some(format!("{target} name")),
            group: Some("core".to_string()),
            status,
            reported: status,
            sent: 3,
            received,
            loss: encode::usual_loss(3, received),
            rtt: (received > 0).then_some(RttSummary {
                min: 1.5,
                avg: 2.25,
                max: 3.125,
                mdev: 0.612,
            }),
            gateway: Some(Gateway::Via("198.18.1.1".parse().unwrap())),
        }
    }

    fn trace(target: &str, round: u64, ts: i64) -> TraceRecord {
        TraceRecord {
            target: target.to_string(),
            round: RoundId(round),
            ts: Timestamp(ts),
            hops: vec![
                Hop::new(Ttl(1), Some("198.18.1.1".parse().unwrap()), Some(0.5)),
                Hop::new(Ttl(2), None, None),
                Hop::new(Ttl(3), Some(target.parse().unwrap()), Some(2.25)),
            ],
            reached: true,
        }
    }

    fn event(target: Option<&str>, ts: i64) -> EventRecord {
        EventRecord {
            target: target.map(str::to_string),
            ts: Timestamp(ts),
            kind: EventKind::Status,
            from: Some("working".into()),
            to: Some("not_working".into()),
            detail: "no reply to 3 requests".into(),
        }
    }

    fn targets(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("198.19.{}.{}", i / 250, i % 250 + 1))
            .collect()
    }

    /// A round at `ts`: a result and a trace per target, one event.
    fn round(n: u64, ts: i64, keys: &[String], status: Status) -> RoundRecord {
        RoundRecord {
            round: RoundId(n),
            started: Timestamp(ts),
            finished: Timestamp(ts + 1000),
            results: keys.iter().map(|k| result(k, n, ts, status)).collect(),
            traces: keys.iter().map(|k| trace(k, n, ts)).collect(),
            events: vec![event(keys.first().map(String::as_str), ts)],
        }
    }

    /// A store as a board with an upstream has it: rows queued for sync.
    fn open(dir: &Path) -> Store {
        let mut store = Store::open(dir, RetentionPolicy::default()).unwrap();
        store.set_outbox(true);
        store
    }

    #[test]
    fn rounds_from_before_the_first_ntp_sync_stay_in_their_own_hours() {
        // A board without a real-time clock: two rounds stamped in 1970,
        // then the clock is set and rounds are stamped in 2026.
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), RetentionPolicy::default()).unwrap();
        let keys = vec!["127.0.0.1".to_string()];
        store
            .write_round(&round(1, 60_000, &keys, Status::NotWorking))
            .unwrap();
        store
            .write_round(&round(2, 120_000, &keys, Status::NotWorking))
            .unwrap();
        store
            .write_round(&round(3, NOW, &keys, Status::Working))
            .unwrap();
        // The 24 h uptime counts what happened in the last 24 h, by the
        // clock now right: the 1970 rounds are not in it.
        assert_eq!(
            store.uptimes_24h(Timestamp(NOW + 1000)).unwrap()["127.0.0.1"],
            1.0
        );
        // Retention then drops the 1970 rows as old, and nothing else.
        store.apply_retention(Timestamp(NOW + 1000)).unwrap();
        assert_eq!(count(&store, "results"), 1);
        assert_eq!(count(&store, "rollups"), 1);
        // Set back by an hour: the newer rows are not "from the future"
        // to retention, nothing is dropped, and the uptime is still right.
        store
            .write_round(&round(4, NOW - H, &keys, Status::Working))
            .unwrap();
        store.apply_retention(Timestamp(NOW - H + 1000)).unwrap();
        assert_eq!(count(&store, "results"), 2);
        assert_eq!(
            store.uptimes_24h(Timestamp(NOW + 1000)).unwrap()["127.0.0.1"],
            1.0
        );
    }

    #[test]
    fn a_damaged_file_is_moved_aside_and_a_new_one_started() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DB_FILE);
        let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        std::fs::write(&db, &garbage).unwrap();

        let mut store = open(dir.path());
        let note = store.take_recovery().expect("a recovery note");
        assert!(
            note.contains("damaged") && note.contains(".damaged-"),
            "{note}"
        );
        assert_eq!(store.take_recovery(), None, "said once");
        let keys = vec!["127.0.0.1".to_string()];
        store
            .write_round(&round(1, NOW, &keys, Status::Working))
            .unwrap();
        assert_eq!(count(&store, "results"), 1);
        // The damaged file is kept, byte for byte, beside the new one (with
        // its WAL, if SQLite left one).
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("edgeprobe.db.damaged-"))
            .collect();
        assert!(!aside.is_empty(), "{aside:?}");
        let kept = aside.iter().find(|n| !n.ends_with("-wal")).unwrap();
        assert_eq!(std::fs::read(dir.path().join(kept)).unwrap(), garbage);
    }

    #[test]
    fn recreating_starts_afresh_and_readers_follow() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let keys = vec!["127.0.0.1".to_string()];
        store
            .write_round(&round(1, NOW, &keys, Status::Working))
            .unwrap();
        let reader = store.reader().unwrap();
        assert_eq!(reader.results("127.0.0.1", 10).unwrap().len(), 1);

        let cause = StoreError::Unusable {
            path: "edgeprobe.db".into(),
            reason: "database disk image is malformed".into(),
        };
        let note = store.recreate(&cause).unwrap();
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

    #[test]
    fn damage_and_a_full_disk_are_told_apart() {
        let err = |code| StoreError::Sqlite {
            op: "x".into(),
            source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        };
        assert!(err(rusqlite::ffi::SQLITE_CORRUPT).is_damage());
        assert!(err(rusqlite::ffi::SQLITE_NOTADB).is_damage());
        assert!(!err(rusqlite::ffi::SQLITE_FULL).is_damage());
        assert!(err(rusqlite::ffi::SQLITE_FULL).is_full());
    }

    fn count(store: &Store, table: &str) -> u64 {
        store
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                get_u64(r, 0)
            })
            .unwrap()
    }

    /// What the upstream sync will do: mark the rows of rounds from
    /// `first` on as sent.
    fn sync(store: &Store, kind: OutboxKind, first: i64) {
        store
            .conn
            .execute(
                &format!(
                    "DELETE FROM outbox WHERE kind = ?1 AND row_id IN \
                     (SELECT id FROM {} WHERE {} >= ?2)",
                    kind.table(),
                    // Events have no round; the test's are a minute apart.
                    if kind == OutboxKind::Event {
                        "(ts - 1795608000000) / 60000"
                    } else {
                        "round"
                    }
                ),
                params![kind.code(), first],
            )
            .unwrap();
    }

    fn sync_all(store: &Store) {
        store.conn.execute("DELETE FROM outbox", []).unwrap();
    }

    #[test]
    fn a_round_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        assert_eq!(store.last_round().unwrap(), None);
        let keys = targets(3);
        let mut r = round(7, NOW, &keys, Status::Working);
        r.results[1] = result(&keys[1], 7, NOW, Status::NotWorking);
        r.results[2].gateway = Some(Gateway::Direct);
        r.results[2].rtt = None;
        r.results[2].loss = 0.5;
        r.events.push(event(None, NOW + 5));
        store.write_round(&r).unwrap();

        let reader = store.reader().unwrap();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(reader.results(k, 10).unwrap(), vec![r.results[i].clone()]);
            assert_eq!(reader.traces(k, 10).unwrap(), vec![r.traces[i].clone()]);
        }
        assert_eq!(
            reader.events(None, 10).unwrap(),
            vec![r.events[1].clone(), r.events[0].clone()],
            "newest first"
        );
        assert_eq!(
            reader.events(Some(&keys[0]), 10).unwrap(),
            vec![r.events[0].clone()]
        );
        assert_eq!(reader.results("198.19.255.1", 10).unwrap(), vec![]);
        assert_eq!(store.last_round().unwrap(), Some(RoundId(7)));
        assert_eq!(store.latest_results().unwrap(), r.results);
        assert_eq!(store.latest_traces().unwrap(), r.traces);
        let rtts = store.recent_rtts(5).unwrap();
        assert_eq!(rtts[&keys[0]], vec![Some(2.25)]);
        assert_eq!(rtts[&keys[1]], vec![None]);

        let stats = store.stats().unwrap();
        assert_eq!(stats.backlog, 3 + 3 + 2, "a row per result, trace, event");
        assert_eq!(stats.oldest_unsynced, Some(Timestamp(NOW)));
        assert!(stats.db_bytes > 0);
        assert_eq!(stats.dropped, Dropped::default());
    }

    #[test]
    fn history_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let keys = targets(2);
        {
            let mut store = open(dir.path());
            for n in 1..=3 {
                store
                    .write_round(&round(n, NOW + n as i64 * 60_000, &keys, Status::Working))
                    .unwrap();
            }
        }
        let mut store = open(dir.path());
        assert_eq!(store.last_round().unwrap(), Some(RoundId(3)));
        store
            .write_round(&round(4, NOW + 240_000, &keys, Status::Degraded))
            .unwrap();
        assert_eq!(count(&store, "targets"), 2, "targets reused after reopen");
        let got = store.reader().unwrap().results(&keys[0], 10).unwrap();
        let rounds: Vec<u64> = got.iter().map(|r| r.round.0).collect();
        assert_eq!(rounds, [4, 3, 2, 1]);
        assert_eq!(store.stats().unwrap().backlog, 4 * 5);
        assert_eq!(
            store.recent_rtts(2).unwrap()[&keys[1]],
            vec![Some(2.25), Some(2.25)]
        );
    }

    #[test]
    fn labels_are_the_latest_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let keys = targets(1);
        store
            .write_round(&round(1, NOW, &keys, Status::Working))
            .unwrap();
        let mut r = round(2, NOW + 60_000, &keys, Status::Working);
        r.results[0].name = Some("renamed".into());
        r.results[0].group = None;
        store.write_round(&r).unwrap();
        let got = store.reader().unwrap().results(&keys[0], 10).unwrap();
        assert!(got
            .iter()
            .all(|r| r.name.as_deref() == Some("renamed") && r.group.is_none()));
    }

    #[test]
    fn a_failing_round_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let keys = targets(2);
        store
            .write_round(&round(1, NOW, &keys[..1], Status::Working))
            .unwrap();
        let before: Vec<u64> = [
            "results", "traces", "events", "rollups", "outbox", "targets",
        ]
        .iter()
        .map(|t| count(&store, t))
        .collect();
        // The second result's round number does not fit SQLite's integer,
        // after the first result, its rollup and outbox row went in.
        let mut bad = round(2, NOW + H, &keys, Status::Working);
        bad.results[1].round = RoundId(u64::MAX);
        let err = store.write_round(&bad).unwrap_err();
        assert!(err.to_string().contains("writing round 2"), "{err}");
        let after: Vec<u64> = [
            "results", "traces", "events", "rollups", "outbox", "targets",
        ]
        .iter()
        .map(|t| count(&store, t))
        .collect();
        assert_eq!(before, after);
        assert_eq!(store.last_round().unwrap(), Some(RoundId(1)));
        // The new target's id from the rolled-back round is not cached.
        store
            .write_round(&round(2, NOW + H, &keys, Status::Working))
            .unwrap();
        assert_eq!(store.latest_results().unwrap().len(), 2);
    }

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
            let n = store.conn.execute(
                "INSERT INTO outbox (kind, row_id, ts) SELECT ?1, id, ts FROM results WHERE round = 2",
                [OutboxKind::Result.code()],
            );
            assert_eq!(n.unwrap(), 4);

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

    fn fill(store: &mut Store, keys: &[String], rounds: std::ops::RangeInclusive<u64>) {
        for n in rounds {
            store
                .write_round(&round(n, NOW + n as i64 * 60_000, keys, Status::Working))
                .unwrap();
        }
    }

    fn oldest_round(store: &Store) -> u64 {
        store
            .conn
            .query_row("SELECT MIN(round) FROM results", [], |r| get_u64(r, 0))
            .unwrap()
    }

    const CAP: u64 = 384 * 1024;

    fn capped(dir: &Path) -> Store {
        let policy = RetentionPolicy {
            max_bytes: CAP,
            ..RetentionPolicy::default()
        };
        let mut store = Store::open(dir, policy).unwrap();
        store.set_outbox(true);
        store
    }

    #[test]
    fn size_cap_drops_synced_rows_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = capped(dir.path());
        let keys = targets(20);
        fill(&mut store, &keys, 1..=300);
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
        let mut store = capped(dir.path());
        let keys = targets(20);
        fill(&mut store, &keys, 1..=300);
        // Rounds from 16 on went upstream, the older ones did not: the
        // cap takes the newer rows first. (It takes about 80 % of the rows
        // here, more than the overflow: with 20 targets, each page of the
        // (target, ts) index holds one target's entries and only empties
        // when nearly all of them are gone. With long runs per target the
        // oldest pages of each run empty first.)
        for kind in OutboxKind::ALL {
            sync(&store, kind, 16);
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
        let mut store = capped(dir.path());
        let keys = targets(20);
        fill(&mut store, &keys, 1..=300);
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

    #[test]
    fn outbox_batches_come_oldest_first_with_their_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let keys = targets(2);
        let r1 = round(1, NOW, &keys, Status::Working);
        let r2 = round(2, NOW + 60_000, &keys, Status::NotWorking);
        store.write_round(&r1).unwrap();
        store.write_round(&r2).unwrap();
        // Per round: 2 results, 2 traces, 1 event, in that order.
        let all = store.outbox_batch(100).unwrap();
        assert_eq!(all.len(), 10);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
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
        let mut store = open(dir.path());
        let keys = targets(3);
        store
            .write_round(&round(1, NOW, &keys, Status::Working))
            .unwrap();
        let batch = store.outbox_batch(4).unwrap();
        let ids: Vec<i64> = batch.iter().map(|i| i.id).collect();
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
    fn outbox_rows_without_a_record_are_skipped_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let keys = targets(3);
        store
            .write_round(&round(1, NOW, &keys, Status::Working))
            .unwrap();
        // As a hand-edited file could have it: the first four records gone.
        store
            .conn
            .execute("DELETE FROM results WHERE target IN (1, 2, 3)", [])
            .unwrap();
        store
            .conn
            .execute("DELETE FROM traces WHERE target = 1", [])
            .unwrap();
        // Seven queued, four orphaned: a batch of two still fills up.
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
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
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

    #[test]
    fn uptime_windows_from_rollups() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let keys = targets(2);
        let at = |n: u64, ts: i64, s: Status| RoundRecord {
            results: vec![result(&keys[0], n, ts, s)],
            ..round(n, ts, &[], s)
        };
        // 10 days ago: down; 3 days ago: up twice; 2 h ago: degraded; now:
        // down.
        for (n, ts, s) in [
            (1, NOW - 10 * DAY_MS, Status::NotWorking),
            (2, NOW - 3 * DAY_MS, Status::Working),
            (3, NOW - 3 * DAY_MS + 1, Status::Working),
            (4, NOW - 2 * H, Status::Degraded),
            (5, NOW + 10, Status::NotWorking),
        ] {
            store.write_round(&at(n, ts, s)).unwrap();
        }
        store
            .write_round(&RoundRecord {
                results: vec![result(&keys[1], 6, NOW - H, Status::Working)],
                ..round(6, NOW - H, &[], Status::Working)
            })
            .unwrap();
        let now = Timestamp(NOW + 20);
        let u = store.reader().unwrap().uptime(&keys[0], now).unwrap();
        assert_eq!(
            u,
            Uptime {
                h24: Some(0.5),
                d7: Some(0.75),
                d30: Some(0.6)
            }
        );
        assert_eq!(
            store.reader().unwrap().uptime("198.19.255.1", now).unwrap(),
            Uptime::default()
        );
        let all = store.uptimes_24h(now).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[&keys[0]], 0.5);
        assert_eq!(all[&keys[1]], 1.0);
    }

    #[test]
    fn uptimes_for_ten_thousand_targets() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let keys = targets(10_000);
        for n in 0..3u64 {
            let ts = NOW - 20 * H + n as i64 * 10 * H;
            store
                .write_round(&RoundRecord {
                    traces: vec![],
                    events: vec![],
                    ..round(n + 1, ts, &keys, Status::Working)
                })
                .unwrap();
        }
        // Timing is for bench/, not for a test on a noisy machine.
        let all = store.uptimes_24h(Timestamp(NOW)).unwrap();
        assert_eq!(all.len(), 10_000);
        assert!(all.values().all(|&u| u == 1.0));
    }

    /// Pages a round of 1,000 results (no traces) adds, as SQLite's own
    /// page accounting sees them.
    #[test]
    fn bytes_per_round() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let keys = targets(1000);
        let used = |s: &Store| {
            s.conn
                .query_row("SELECT SUM(pgsize - unused) FROM dbstat", [], |r| {
                    r.get::<_, i64>(0)
                })
                .unwrap()
        };
        let rec = |n: u64| RoundRecord {
            traces: vec![],
            events: vec![],
            ..round(n, NOW + n as i64 * 60_000, &keys, Status::Working)
        };
        store.write_round(&rec(1)).unwrap();
        let first = used(&store);
        for n in 2..=11 {
            store.write_round(&rec(n)).unwrap();
        }
        let per_round = (used(&store) - first) / 10;
        sync_all(&store);
        let synced = used(&store);
        for n in 12..=21 {
            store.write_round(&rec(n)).unwrap();
            sync_all(&store);
        }
        let per_round_synced = (used(&store) - synced) / 10;
        eprintln!(
            "per round of 1,000 results: {per_round} bytes with the outbox, \
             {per_round_synced} once synced"
        );
        assert!(per_round_synced < 1000 * 80, "{per_round_synced}");
    }
}
