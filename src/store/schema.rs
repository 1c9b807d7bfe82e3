//! The database file: its schema and migration, opening the writer's and
//! the readers' connections, moving a damaged file aside, the table names
//! the other store files share ([`HistoryTable`]) and the `counters` table.
//!
//! # Schema (version 5, in `PRAGMA user_version`)
//!
//! Timestamps are integer unix milliseconds. Targets are interned: the
//! per-round tables hold a small integer instead of repeating the
//! address text in every row (and in every index entry).
//!
//! - `targets(id, key, name, grp)`: one row per target key, with the name
//!   and group it was last written with. A result read back carries these
//!   current labels, not the ones of its own round.
//! - `results(id, round, chunk, ts, count, data)`: since version 5, a
//!   block per round and chunk of 256 target ids ([`super::block`]):
//!   `data` holds the `count` results of those targets in that round
//!   (status, reported status, packets, loss, RTTs in whole µs,
//!   gateway), `ts` is the newest of their timestamps. Index
//!   `(round, chunk)`, appended at its end by every round. Version 1 to 4
//!   kept a row per result with an index on `(target, ts)`.
//! - `traces(id, target, round, ts, reached, hops)`: hops as
//!   `[[ttl,"addr"|null,rtt_us|null],...]`. Index `(target, ts)`.
//! - `events(id, target, ts, kind, before, after, detail)`: `target` NULL
//!   for the board itself. Index `(target, ts)`.
//! - `rollups(hour, target, rounds, working, degraded, not_working)`: one
//!   row per target and UTC hour, by each round's own status. Keyed by
//!   `(hour, target)` so the all-targets 24 h query reads one contiguous
//!   range and an hour goes in as one run of pages; one target's windows
//!   are point lookups on that key (version 5 dropped the `(target,
//!   hour)` index). Since version 5 the hours still being counted wait in
//!   memory ([`super::pending`]); the counters `rollups_from_hour` and
//!   `rollups_from_round` say what a restart rebuilds from the results.
//! - `outbox(id, kind, row_id, ts)`: what the upstream sync has not sent
//!   yet. `kind` is 1 result block, 2 trace, 3 event ([`OutboxKind`]); `row_id`
//!   is the row's id in that table; `ts` is the row's own timestamp; `id`
//!   orders the rows as written. The sync sends the rows and deletes their
//!   outbox rows; until then age retention keeps them and only the size
//!   cap drops them, last, counting them as unsynced. Unique index
//!   `(kind, row_id)`.
//! - `counters(name, value)`: `last_round` and the `dropped_*` totals,
//!   kept across restarts.
//! - Version 2 adds `notifications(id, channel, made_at, subject,
//!   content_type, body, attempts, next_at, last_error, outcome,
//!   settled_at, refresh)`: a message for one channel, queued in the round's
//!   transaction (`id` AUTOINCREMENT: never reused). `outcome` is NULL
//!   while it waits, then `delivered`, `refused` or `given_up`. A
//!   `refresh` (Alertmanager told again what fires) replaces its channel's
//!   waiting refresh and is deleted once delivered; any other settled
//!   row keeps its subject and error (its body is emptied) so the page of
//!   recent notifications can show it, and only the newest
//!   [`SETTLED_KEPT`](super::notifications::SETTLED_KEPT) settled rows are
//!   kept. `alerts_active(key, since, last_sent, detail, name, grp)`: the
//!   alerts firing, replaced by each round that changes them.
//!   `silences(scope, until, made_at, reason)`: the silences in force,
//!   kept across restarts.
//! - Version 3 adds to `rollups` the RTT sums the fleet's averages come
//!   from, `rtt_sum_us` (the rounds' average RTTs added up, whole µs) and
//!   `rtt_rounds` (how many rounds had one), and `unsynced`: how many
//!   times the row changed since the upstream sync last sent it (0 when
//!   the server holds it as it is, or no upstream is configured). The
//!   sync uploads every row with `unsynced > 0` (partial index
//!   `rollups_unsynced`) as absolute values and subtracts what it sent,
//!   so a change made while the upload was on the wire is sent again.
//!   The migration marks the last 30 days unsynced (the longest window
//!   central shows).
//! - Version 4 rebuilds `outbox` with `id INTEGER PRIMARY KEY
//!   AUTOINCREMENT`, so an id is never given twice in a file (without it
//!   SQLite restarts at 1 once the table is empty, after every drain, and
//!   a sync holding the ids it read could forget a newer round's rows),
//!   and adds `refused` (the server's message) and `refused_at`: a row
//!   the server refused (a validator, a permission, a duplicate on an
//!   index other than `_id`) is set aside there, never sent again, out of
//!   the backlog, and dropped only by the size cap, with the unsynced
//!   rows. Partial index `outbox_waiting` on the rows not refused.
//! - Version 5 turns `results` into blocks (above) and points the
//!   outbox's result rows at blocks: one outbox row per block, which the
//!   sync reads back as its results. A block waits while any of its
//!   results did before the migration.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags};

use crate::clock::Timestamp;

use super::outbox::OutboxKind;
use super::sql::{get_u64, int, sql};
use super::StoreError;
use super::{block, encode};

/// The database file's name in the state directory.
pub const DB_FILE: &str = "edgeprobe.db";

/// The schema this code writes; older files are migrated on open.
const SCHEMA_VERSION: i64 = 5;

/// How long a statement waits for a lock (a checkpoint, the other
/// connection) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The page cache of the writer's connection, in KiB (SQLite's default is
/// 2 MiB per connection). A round dirties a few hundred pages at most (its
/// blocks, an hour of rollups, a trace cycle's traces), which fit; the
/// cache is resident memory on a board that has little.
const WRITER_CACHE_KIB: i64 = 1024;

/// The page cache of a reader's connection, in KiB: a page reads a target's
/// blocks and an hour's rollup rows, which the kernel's page cache keeps
/// anyway.
const READER_CACHE_KIB: i64 = 256;

/// After a checkpoint, a WAL file larger than this is truncated to it, so
/// one large transaction (a retention pass) does not leave a large file.
const WAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

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

/// Version 2: the alert notifications waiting to go out (and the last
/// ones settled), the alerts firing and the silences (so a restart neither
/// repeats nor forgets them).
const SCHEMA_V2: &str = "
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    channel      TEXT NOT NULL,
    made_at      INTEGER NOT NULL,
    subject      TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body         BLOB NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    last_error   TEXT,
    outcome      TEXT,
    settled_at   INTEGER,
    refresh      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notifications_due ON notifications (next_at) WHERE outcome IS NULL;
CREATE TABLE alerts_active (
    key       TEXT PRIMARY KEY,
    since     INTEGER NOT NULL,
    last_sent INTEGER,
    detail    TEXT NOT NULL,
    name      TEXT,
    grp       TEXT
) WITHOUT ROWID;
CREATE TABLE silences (
    scope   TEXT PRIMARY KEY,
    until   INTEGER NOT NULL,
    made_at INTEGER NOT NULL,
    reason  TEXT
) WITHOUT ROWID;
";

/// Version 3: RTT sums in the rollups, and which rollups the upstream
/// sync has not sent as they are now.
const SCHEMA_V3: &str = "
ALTER TABLE rollups ADD COLUMN rtt_sum_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups ADD COLUMN rtt_rounds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups ADD COLUMN unsynced INTEGER NOT NULL DEFAULT 0;
CREATE INDEX rollups_unsynced ON rollups (hour, target) WHERE unsynced > 0;
";

/// Version 4: outbox ids that never repeat, and refused rows set aside.
/// The rows keep their ids; AUTOINCREMENT continues after the highest.
const SCHEMA_V4: &str = "
CREATE TABLE outbox_v4 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       INTEGER NOT NULL,
    row_id     INTEGER NOT NULL,
    ts         INTEGER NOT NULL,
    refused    TEXT,
    refused_at INTEGER
);
INSERT INTO outbox_v4 (id, kind, row_id, ts) SELECT id, kind, row_id, ts FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v4 RENAME TO outbox;
CREATE UNIQUE INDEX outbox_row ON outbox (kind, row_id);
CREATE INDEX outbox_waiting ON outbox (id) WHERE refused IS NULL;
";

/// Version 5: results as blocks ([`super::block`]), a row per round and
/// chunk of targets, appended in the order written; the index on the
/// round (and chunk) only ever grows at its end. The rollups lose their
/// `(target, hour)` index, whose entries landed all over it every hour:
/// one target's windows are point lookups on the `(hour, target)` key.
/// The rows of `results` are carried over by [`results_into_blocks`].
const SCHEMA_V5: &str = "
CREATE TABLE result_blocks (
    id    INTEGER PRIMARY KEY,
    round INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    ts    INTEGER NOT NULL,
    count INTEGER NOT NULL,
    data  BLOB NOT NULL
);
DROP INDEX IF EXISTS rollups_target_hour;
";

/// What [`results_into_blocks`] ends with: the old table gone, the new
/// one in its place.
const SCHEMA_V5_END: &str = "
DROP TABLE results;
ALTER TABLE result_blocks RENAME TO results;
CREATE INDEX results_round ON results (round, chunk);
";

/// Carry a version 4 `results` table (a row per result) into blocks, the
/// outbox rows with them: a block waits to be sent if any of its results
/// did, and is set aside as refused only if all of them were.
fn results_into_blocks(tx: &Connection) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TEMP TABLE block_of (result INTEGER PRIMARY KEY, block INTEGER NOT NULL)",
    )?;
    {
        let mut rows = tx.prepare(
            "SELECT id, target, round, ts, status, reported, sent, received, loss, \
             rtt_min, rtt_avg, rtt_max, rtt_mdev, gateway FROM results \
             ORDER BY round, target, id",
        )?;
        let mut insert = tx.prepare(
            "INSERT INTO result_blocks (round, chunk, ts, count, data) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut map = tx.prepare("INSERT INTO temp.block_of (result, block) VALUES (?1, ?2)")?;
        let mut flush = |key: (i64, i64), block: &mut Vec<(i64, block::Entry)>| {
            if block.is_empty() {
                return Ok(());
            }
            let entries: Vec<block::Entry> = block.iter().map(|(_, e)| e.clone()).collect();
            let newest = entries.iter().map(|e| e.ts.millis()).max().unwrap_or(0);
            let id = insert.insert(params![
                key.0,
                key.1,
                newest,
                entries.len() as i64,
                block::encode(&entries)
            ])?;
            for (old, _) in block.drain(..) {
                map.execute(params![old, id])?;
            }
            Ok::<(), rusqlite::Error>(())
        };
        let mut current = (i64::MIN, i64::MIN);
        let mut pending = Vec::new();
        let mut it = rows.query([])?;
        while let Some(r) = it.next()? {
            let (old, entry, round) = v4_result(r)?;
            let key = (round, block::chunk_of(entry.target));
            if key != current {
                flush(current, &mut pending)?;
                current = key;
            }
            pending.push((old, entry));
        }
        flush(current, &mut pending)?;
    }
    tx.execute_batch(
        "CREATE TEMP TABLE block_outbox AS \
           SELECT m.block AS block, MAX(o.ts) AS ts, \
             CASE WHEN COUNT(o.refused) = COUNT(*) THEN MAX(o.refused) END AS refused, \
             CASE WHEN COUNT(o.refused) = COUNT(*) THEN MAX(o.refused_at) END AS refused_at \
           FROM outbox o JOIN temp.block_of m ON m.result = o.row_id \
           WHERE o.kind = 1 GROUP BY m.block;
         DELETE FROM outbox WHERE kind = 1;
         INSERT INTO outbox (kind, row_id, ts, refused, refused_at) \
           SELECT 1, block, ts, refused, refused_at FROM temp.block_outbox ORDER BY block;
         DROP TABLE temp.block_outbox;
         DROP TABLE temp.block_of;",
    )?;
    // The rollups of a version 4 file are complete: nothing waits in
    // memory, and the rounds to come are counted from the next hour on.
    tx.execute_batch(
        "INSERT OR REPLACE INTO counters (name, value) \
           SELECT 'rollups_from_hour', COALESCE(MAX(hour) + 3600000, 0) FROM rollups;
         INSERT OR REPLACE INTO counters (name, value) \
           SELECT 'rollups_from_round', COALESCE(MAX(value), 0) + 1 FROM counters \
           WHERE name = 'last_round';",
    )?;
    tx.execute_batch(SCHEMA_V5_END)
}

/// A version 4 result row: its id, the entry for a block, its round.
fn v4_result(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, block::Entry, i64)> {
    let bad = |i: usize, e: super::encode::BadValue| {
        super::sql::bad(i, rusqlite::types::Type::Integer, e)
    };
    let status = |i: usize| encode::status_from_code(r.get(i)?).map_err(|e| bad(i, e));
    let sent: u32 = r.get(6)?;
    let received: u32 = r.get(7)?;
    let us: [Option<i64>; 4] = [r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?];
    let rtt = match us {
        [Some(min), Some(avg), Some(max), Some(mdev)] => Some(crate::probe::RttSummary {
            min: encode::us_to_ms(min),
            avg: encode::us_to_ms(avg),
            max: encode::us_to_ms(max),
            mdev: encode::us_to_ms(mdev),
        }),
        _ => None,
    };
    let gateway: Option<Vec<u8>> = r.get(13)?;
    let entry = block::Entry {
        target: r.get(1)?,
        ts: Timestamp(r.get(3)?),
        status: status(4)?,
        reported: status(5)?,
        sent,
        received,
        loss: r
            .get::<_, Option<f64>>(8)?
            .unwrap_or_else(|| encode::usual_loss(sent, received)),
        rtt,
        gateway: encode::gateway_from_blob(gateway.as_deref()).map_err(|e| bad(13, e))?,
    };
    Ok((r.get(0)?, entry, r.get(2)?))
}

/// The tables that hold a row per result, trace or event: what retention
/// drops from and what outbox rows point into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum HistoryTable {
    Results,
    Traces,
    Events,
}

impl HistoryTable {
    /// Every history table, in the order retention visits them.
    pub const ALL: [HistoryTable; 3] = [
        HistoryTable::Results,
        HistoryTable::Traces,
        HistoryTable::Events,
    ];

    /// The table's name in SQL.
    pub fn name(self) -> &'static str {
        match self {
            HistoryTable::Results => "results",
            HistoryTable::Traces => "traces",
            HistoryTable::Events => "events",
        }
    }

    /// The kind of the outbox rows that queue this table's rows.
    pub fn outbox_kind(self) -> OutboxKind {
        match self {
            HistoryTable::Results => OutboxKind::Result,
            HistoryTable::Traces => OutboxKind::Trace,
            HistoryTable::Events => OutboxKind::Event,
        }
    }

    /// How many records a row of this table holds, in SQL: a result
    /// block counts its results.
    pub fn records(self) -> &'static str {
        match self {
            HistoryTable::Results => "count",
            HistoryTable::Traces | HistoryTable::Events => "1",
        }
    }

    /// The counter of this table's records dropped by retention.
    pub fn dropped_counter(self) -> &'static str {
        match self {
            HistoryTable::Results => "dropped_results",
            HistoryTable::Traces => "dropped_traces",
            HistoryTable::Events => "dropped_events",
        }
    }
}

/// The counter of queued rows the size cap dropped before they were sent.
pub(super) const DROPPED_UNSYNCED: &str = "dropped_unsynced";

/// The counter of outbox rows the server refused, set aside since the
/// file was created.
pub(super) const REFUSED_TOTAL: &str = "refused_total";

/// The first hour whose rollups wait in memory ([`super::pending`]).
pub(super) const ROLLUPS_FROM_HOUR: &str = "rollups_from_hour";

/// The oldest round with a result counted in the rollups that wait in
/// memory: where a restart reads the results back from.
pub(super) const ROLLUPS_FROM_ROUND: &str = "rollups_from_round";

/// Set a counter to `value`.
pub(super) fn set_counter(conn: &Connection, name: &str, value: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO counters (name, value) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![name, int(value)?])?;
    Ok(())
}

/// The counter of rollup rows retention dropped.
pub(super) const DROPPED_ROLLUPS: &str = "dropped_rollups";

/// Open (or create) the database at `path` for writing and bring its
/// schema up to date.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
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
    // Negative: a size in KiB rather than in pages.
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
        .map_err(sql(&op))?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// A read-only connection to the database at `path`.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let op = format!("opening {} for reading", path.display());
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(sql(&op))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql(&op))?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
        .map_err(sql(&op))?;
    Ok(conn)
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
    // Each version's step runs in the same transaction as the bump.
    let tx = conn.transaction().map_err(sql(&op))?;
    if version < 1 {
        tx.execute_batch(SCHEMA).map_err(sql(&op))?;
    }
    if version < 2 {
        tx.execute_batch(SCHEMA_V2).map_err(sql(&op))?;
    }
    if version < 3 {
        tx.execute_batch(SCHEMA_V3).map_err(sql(&op))?;
        if version >= 1 {
            // What an upgraded board already counted goes up too, for as
            // far back as central's longest window looks.
            let since = super::rollup::window_start(Timestamp::now(), super::rollup::MONTH);
            tx.execute(
                "UPDATE rollups SET unsynced = 1 WHERE hour >= ?1",
                params![since.millis()],
            )
            .map_err(sql(&op))?;
        }
    }
    if version < 4 {
        tx.execute_batch(SCHEMA_V4).map_err(sql(&op))?;
    }
    if version < 5 {
        tx.execute_batch(SCHEMA_V5).map_err(sql(&op))?;
        results_into_blocks(&tx).map_err(sql(&op))?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(sql(&op))?;
    tx.commit().map_err(sql(&op))
}

/// Move a damaged database (and its WAL and shared-memory files) out of
/// the way, keeping it for inspection. Returns what happened, in a
/// sentence, and where the file is now.
pub(super) fn set_aside(path: &Path, cause: &StoreError) -> Result<(String, PathBuf), StoreError> {
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
    Ok((note, aside))
}

/// Every counter and its value.
pub(super) fn read_counters(conn: &Connection) -> rusqlite::Result<HashMap<String, u64>> {
    let mut st = conn.prepare_cached("SELECT name, value FROM counters")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, get_u64(r, 1)?)))?;
    rows.collect()
}

/// Add `n` to a counter (a new one starts at 0).
pub(super) fn add_counter(conn: &Connection, name: &str, n: u64) -> rusqlite::Result<()> {
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

/// A file's length, 0 when it does not exist (the WAL between sessions).
pub(super) fn file_len(path: &Path) -> Result<u64, StoreError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(StoreError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The WAL file beside the database file `db`.
pub(super) fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use crate::probe::Status;
    use crate::store::{History, RoundId};

    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn the_writer_logs_ahead_and_syncs_at_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join(DB_FILE)).unwrap();
        let pragma = |name: &str| -> String {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| match v {
                rusqlite::types::Value::Text(t) => t,
                rusqlite::types::Value::Integer(i) => i.to_string(),
                other => format!("{other:?}"),
            })
            .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "wal");
        // 1 is NORMAL: in WAL mode a power cut may lose the last commits,
        // never the file's consistency.
        assert_eq!(pragma("synchronous"), "1");
        assert_eq!(pragma("auto_vacuum"), "2", "incremental");
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
    fn a_version_4_file_keeps_its_results_and_their_place_in_the_outbox() {
        let dir = tempfile::tempdir().unwrap();
        // Two chunks of targets, three rounds, the last one already sent.
        let keys = targets(300);
        let (results, queued, backlog) = {
            let mut store = open(dir.path());
            for (n, status) in [
                (1, Status::Working),
                (2, Status::Degraded),
                (3, Status::NotWorking),
            ] {
                store
                    .write_round(&round(n, NOW + n as i64 * 60_000, &keys, status))
                    .unwrap();
            }
            sync(&store, HistoryTable::Results, 3);
            let results = store.reader().unwrap().results(&keys[299], 10).unwrap();
            let uptime = store
                .reader()
                .unwrap()
                .uptime(&keys[299], Timestamp(NOW + H / 2));
            assert_eq!(uptime.unwrap().h24, Some(2.0 / 3.0));
            let queued: Vec<_> = store
                .outbox_batch(100_000)
                .unwrap()
                .into_iter()
                .map(|i| i.record)
                .collect();
            let backlog = store.stats().unwrap().backlog;
            results_as_version_4(&store);
            (results, queued, backlog)
        };
        assert_eq!(results.len(), 3);
        let store = open(dir.path());
        let version: i64 = store
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 5);
        assert_eq!(count(&store, "results"), 900);
        assert_eq!(
            store.reader().unwrap().results(&keys[299], 10).unwrap(),
            results
        );
        let uptime = store
            .reader()
            .unwrap()
            .uptime(&keys[299], Timestamp(NOW + H / 2));
        assert_eq!(
            uptime.unwrap().h24,
            Some(2.0 / 3.0),
            "the rollups are counted once"
        );
        let after: Vec<_> = store
            .outbox_batch(100_000)
            .unwrap()
            .into_iter()
            .map(|i| i.record)
            .collect();
        assert_eq!(after.len(), queued.len());
        assert!(
            queued.iter().all(|r| after.contains(r)),
            "the same rows wait"
        );
        assert_eq!(store.stats().unwrap().backlog, backlog);
        let scattered: u64 = store
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master \
                 WHERE name IN ('results_target_ts', 'rollups_target_hour')",
                [],
                |r| get_u64(r, 0),
            )
            .unwrap();
        assert_eq!(scattered, 0, "the indexes written all over are gone");
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
}
