//! Reading the history back: a stored row decoded into its record, one
//! target's results, traces, events and uptime, every target's latest
//! result and trace, recent RTTs and 24 h uptimes, and [`Reader`], the
//! dashboard's read-only connection that implements [`History`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::clock::Timestamp;
use crate::lock::lock;

use super::encode::{self, BadValue};
use super::pending::Pending;
use super::records::{
    EventKind, EventRecord, NotificationRecord, ResultRecord, RoundId, TraceRecord, Uptime,
};
use super::rollup::{self, RollupRow};
use super::schema::{self, HistoryTable};
use super::sql::{all_rows, bad, get_u64, sql, sql_limit};
use super::{History, StoreError};

/// The columns [`trace_from_row`] decodes, of `traces r` joined with
/// `targets t`.
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

/// The query [`event_from_row`] decodes, of `events e` joined with
/// `targets t`, to add a `WHERE` and `ORDER BY` to.
pub(super) const EVENT_SELECT: &str = "SELECT t.key, e.ts, e.kind, e.before, e.after, e.detail \
     FROM events e LEFT JOIN targets t ON t.id = e.target";

pub(super) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<EventRecord> {
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

/// A table of a row per target and round, with the columns and decoder
/// to read it: [`TRACES`]. (Results are stored in blocks and read by
/// [`super::results`].)
pub(super) struct Rounds<T> {
    table: HistoryTable,
    columns: &'static str,
    from_row: fn(&Row<'_>) -> rusqlite::Result<T>,
}

pub(super) const TRACES: Rounds<TraceRecord> = Rounds {
    table: HistoryTable::Traces,
    columns: TRACE_COLUMNS,
    from_row: trace_from_row,
};

impl<T> Rounds<T> {
    /// One target's rows, newest first.
    fn newest(&self, conn: &Connection, target: &str, limit: usize) -> Result<Vec<T>, StoreError> {
        let (table, columns) = (self.table.name(), self.columns);
        all_rows(
            conn,
            &format!("reading the {table} of {target}"),
            &format!(
                "SELECT {columns} FROM {table} r JOIN targets t ON t.id = r.target \
                 WHERE r.target = (SELECT id FROM targets WHERE key = ?1) \
                 ORDER BY r.ts DESC, r.id DESC LIMIT ?2"
            ),
            params![target, sql_limit(limit)],
            self.from_row,
        )
    }

    /// The row with id `id`, if there is one.
    pub(super) fn by_id(&self, conn: &Connection, id: i64) -> rusqlite::Result<Option<T>> {
        let (table, columns) = (self.table.name(), self.columns);
        conn.prepare_cached(&format!(
            "SELECT {columns} FROM {table} r JOIN targets t ON t.id = r.target WHERE r.id = ?1"
        ))?
        .query_row([id], self.from_row)
        .optional()
    }

    /// The newest row of every target.
    fn latest(&self, conn: &Connection) -> Result<Vec<T>, StoreError> {
        let (table, columns) = (self.table.name(), self.columns);
        // One index probe per target rather than a scan of the table.
        all_rows(
            conn,
            &format!("reading the latest {table}"),
            &format!(
                "SELECT {columns} FROM targets t JOIN {table} r ON r.id = \
                 (SELECT id FROM {table} WHERE target = t.id ORDER BY ts DESC, id DESC LIMIT 1) \
                 ORDER BY t.key"
            ),
            [],
            self.from_row,
        )
    }
}

fn events(
    conn: &Connection,
    target: Option<&str>,
    limit: usize,
) -> Result<Vec<EventRecord>, StoreError> {
    let op = "reading events";
    let from = EVENT_SELECT;
    match target {
        Some(key) => all_rows(
            conn,
            op,
            &format!(
                "{from} WHERE e.target = (SELECT id FROM targets WHERE key = ?1) \
                 ORDER BY e.ts DESC, e.id DESC LIMIT ?2"
            ),
            params![key, sql_limit(limit)],
            event_from_row,
        ),
        // All events: newest written first, which needs no sort.
        None => all_rows(
            conn,
            op,
            &format!("{from} ORDER BY e.id DESC LIMIT ?1"),
            [sql_limit(limit)],
            event_from_row,
        ),
    }
}

fn uptime(
    conn: &Connection,
    pending: &Mutex<Pending>,
    target: &str,
    now: Timestamp,
) -> Result<Uptime, StoreError> {
    let op = format!("reading the uptime of {target}");
    let id: Option<i64> = conn
        .query_row("SELECT id FROM targets WHERE key = ?1", [target], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql(&op))?;
    let Some(id) = id else {
        return Ok(rollup::uptime(&[], now));
    };
    // One point lookup on the (hour, target) key per hour of the window:
    // at most 721, where an index on (target, hour) would cost every
    // round's first write of the hour a page all over the index.
    let mut st = conn
        .prepare_cached(
            "SELECT rounds, working, degraded, not_working FROM rollups \
             WHERE hour = ?1 AND target = ?2",
        )
        .map_err(sql(&op))?;
    let mut rows = Vec::new();
    let mut hour = rollup::window_start(now, rollup::MONTH);
    // The hours still counted in memory (none of them is in the table).
    {
        let pending = lock(pending);
        let mut h = hour;
        while h.millis() <= now.millis() {
            if let Some(c) = pending.get((h.millis(), id)) {
                rows.push(RollupRow {
                    hour: h,
                    rounds: c.rounds,
                    working: c.working,
                    degraded: c.degraded,
                    not_working: c.not_working,
                });
            }
            h = Timestamp(h.millis() + rollup::HOUR_MS);
        }
    }
    while hour.millis() <= now.millis() {
        let row = st
            .query_row(params![hour.millis(), id], |r| {
                Ok(RollupRow {
                    hour,
                    rounds: get_u64(r, 0)?,
                    working: get_u64(r, 1)?,
                    degraded: get_u64(r, 2)?,
                    not_working: get_u64(r, 3)?,
                })
            })
            .optional()
            .map_err(sql(&op))?;
        rows.extend(row);
        hour = Timestamp(hour.millis() + rollup::HOUR_MS);
    }
    Ok(rollup::uptime(&rows, now))
}

/// The newest result of every target.
pub(super) fn latest_results(conn: &Connection) -> Result<Vec<ResultRecord>, StoreError> {
    super::results::latest(conn)
}

/// The newest trace of every target.
pub(super) fn latest_traces(conn: &Connection) -> Result<Vec<TraceRecord>, StoreError> {
    TRACES.latest(conn)
}

/// For every target with results, the average RTT of its last `n`
/// results, oldest first, `None` where nothing replied.
pub(super) fn recent_rtts(
    conn: &Connection,
    n: usize,
) -> Result<HashMap<String, Vec<Option<f64>>>, StoreError> {
    super::results::recent_rtts(conn, n)
}

/// Uptime over the 24 h before `now` of every target with rounds in
/// that window, from the rollups: the table's and those still counted in
/// `pending`.
pub(super) fn uptimes_24h(
    conn: &Connection,
    pending: &Pending,
    now: Timestamp,
) -> Result<HashMap<String, f64>, StoreError> {
    let op = "reading 24 h uptimes";
    let start = rollup::window_start(now, rollup::DAY);
    let in_window = |hour: i64| hour >= start.millis() && hour <= now.millis();
    // One range of the (hour, target) key: about 25 rows per target.
    let mut st = conn
        .prepare_cached(
            "SELECT target, SUM(rounds), SUM(not_working) FROM rollups \
             WHERE hour >= ?1 AND hour <= ?2 GROUP BY target",
        )
        .map_err(sql(op))?;
    let rows = st
        .query_map(params![start.millis(), now.millis()], |r| {
            Ok((r.get::<_, i64>(0)?, get_u64(r, 1)?, get_u64(r, 2)?))
        })
        .map_err(sql(op))?;
    let mut by_id: HashMap<i64, (u64, u64)> = HashMap::new();
    for row in rows {
        let (id, rounds, down) = row.map_err(sql(op))?;
        by_id.insert(id, (rounds, down));
    }
    for ((hour, id), c) in pending.rows() {
        if in_window(hour) {
            let sums = by_id.entry(id).or_default();
            sums.0 += c.rounds;
            sums.1 += c.not_working;
        }
    }
    let keys = all_rows(conn, op, "SELECT id, key FROM targets", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    Ok(keys
        .into_iter()
        .filter_map(|(id, key)| {
            let (rounds, down) = by_id.get(&id)?;
            rollup::fraction(*rounds, *down).map(|f| (key, f))
        })
        .collect())
}

/// The highest round written (kept in `counters`).
pub(super) fn last_round(conn: &Connection) -> Result<Option<RoundId>, StoreError> {
    conn.query_row(
        "SELECT value FROM counters WHERE name = 'last_round'",
        [],
        |r| get_u64(r, 0).map(RoundId),
    )
    .optional()
    .map_err(sql("reading the last round"))
}

/// The dashboard's connection: read-only, its own lock, so a page never
/// waits for a round being written (WAL lets both run at once).
pub struct Reader {
    /// The connection, and the store's generation it was opened in.
    conn: Mutex<(u64, Connection)>,
    path: PathBuf,
    generation: Arc<AtomicU64>,
    /// The writer's rollups still counted in memory.
    pending: Arc<Mutex<Pending>>,
}

impl Reader {
    /// A reader of the database at `path`, which follows the writer's
    /// `generation` (bumped when the file is recreated).
    pub(super) fn open(
        path: PathBuf,
        generation: Arc<AtomicU64>,
        pending: Arc<Mutex<Pending>>,
    ) -> Result<Reader, StoreError> {
        let now = generation.load(Ordering::Relaxed);
        Ok(Reader {
            conn: Mutex::new((now, schema::open_reader(&path)?)),
            path,
            generation,
            pending,
        })
    }

    /// The connection, reopened first if the store was recreated since.
    fn conn(&self) -> Result<ReaderGuard<'_>, StoreError> {
        // A panic elsewhere while holding the lock leaves the connection
        // itself intact: keep serving.
        let mut guard = lock(&self.conn);
        let now = self.generation.load(Ordering::Relaxed);
        if guard.0 != now {
            *guard = (now, schema::open_reader(&self.path)?);
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
        super::results::newest(&*self.conn()?, target, limit)
    }

    fn traces(&self, target: &str, limit: usize) -> Result<Vec<TraceRecord>, StoreError> {
        TRACES.newest(&*self.conn()?, target, limit)
    }

    fn events(&self, target: Option<&str>, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        events(&*self.conn()?, target, limit)
    }

    fn uptime(&self, target: &str, now: Timestamp) -> Result<Uptime, StoreError> {
        uptime(&*self.conn()?, &self.pending, target, now)
    }

    fn notifications(&self, limit: usize) -> Result<Vec<NotificationRecord>, StoreError> {
        super::notifications::recent(&*self.conn()?, limit)
    }
}

#[cfg(test)]
mod tests {
    use crate::probe::Status;
    use crate::store::{RetentionPolicy, RoundRecord, Store};

    use super::super::fixtures::*;
    use super::*;

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
        // The 1970 hours went to the table when round 3 began a later
        // hour, and retention dropped them; round 3's hour is still
        // counted in memory.
        assert_eq!(count(&store, "rollups"), 0);
        let uptime = store
            .reader()
            .unwrap()
            .uptime("127.0.0.1", Timestamp(NOW + 1000));
        assert_eq!(uptime.unwrap().h24, Some(1.0));
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
    fn uptime_windows_from_rollups() {
        let (_dir, mut store) = fresh();
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
        let (_dir, mut store) = fresh();
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
}
