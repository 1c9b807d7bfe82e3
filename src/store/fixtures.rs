//! What the store's tests share: records and rounds to write, stores
//! opened as a board has them, and looks at the file behind the API.

use std::path::Path;

use rusqlite::params;

use crate::clock::Timestamp;
use crate::probe::{Gateway, Hop, RttSummary, Status, Ttl};

use super::encode;
use super::records::{EventKind, EventRecord, ResultRecord, RoundId, RoundRecord, TraceRecord};
use super::retention::RetentionPolicy;
use super::rollup;
use super::schema::HistoryTable;
use super::sql::get_u64;
use super::Store;

pub(super) const H: i64 = rollup::HOUR_MS;
pub(super) const DAY_MS: i64 = 24 * H;
/// 2026-11-25T12:00:00Z, on an hour boundary.
pub(super) const NOW: i64 = 1_795_608_000_000;

pub(super) fn result(target: &str, round: u64, ts: i64, status: Status) -> ResultRecord {
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

pub(super) fn trace(target: &str, round: u64, ts: i64) -> TraceRecord {
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

pub(super) fn event(target: Option<&str>, ts: i64) -> EventRecord {
    EventRecord {
        target: target.map(str::to_string),
        ts: Timestamp(ts),
        kind: EventKind::Status,
        from: Some("working".into()),
        to: Some("not_working".into()),
        detail: "no reply to 3 requests".into(),
    }
}

pub(super) fn targets(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("198.19.{}.{}", i / 250, i % 250 + 1))
        .collect()
}

/// A round at `ts`: a result and a trace per target, one event.
pub(super) fn round(n: u64, ts: i64, keys: &[String], status: Status) -> RoundRecord {
    RoundRecord {
        round: RoundId(n),
        started: Timestamp(ts),
        finished: Timestamp(ts + 1000),
        results: keys.iter().map(|k| result(k, n, ts, status)).collect(),
        traces: keys.iter().map(|k| trace(k, n, ts)).collect(),
        events: vec![event(keys.first().map(String::as_str), ts)],
        ..RoundRecord::default()
    }
}

/// A store as a board with an upstream has it: rows queued for sync.
pub(super) fn open(dir: &Path) -> Store {
    let mut store = Store::open(dir, RetentionPolicy::default()).unwrap();
    store.set_outbox(true);
    store
}

/// A store as [`open`] has it, in a new temporary folder that lasts as
/// long as the returned guard.
pub(super) fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    (dir, store)
}

/// How many records `table` holds: its rows, or for `results` the
/// results in its blocks.
pub(super) fn count(store: &Store, table: &str) -> u64 {
    let rows = if table == "results" {
        "COALESCE(SUM(count), 0)"
    } else {
        "COUNT(*)"
    };
    store
        .conn()
        .query_row(&format!("SELECT {rows} FROM {table}"), [], |r| {
            get_u64(r, 0)
        })
        .unwrap()
}

/// What the upstream sync will do: mark the rows of rounds from
/// `first` on as sent.
pub(super) fn sync(store: &Store, table: HistoryTable, first: i64) {
    store
        .conn()
        .execute(
            &format!(
                "DELETE FROM outbox WHERE kind = ?1 AND row_id IN \
                 (SELECT id FROM {} WHERE {} >= ?2)",
                table.name(),
                // Events have no round; the test's are a minute apart.
                if table == HistoryTable::Events {
                    "(ts - 1795608000000) / 60000"
                } else {
                    "round"
                }
            ),
            params![table.outbox_kind().code(), first],
        )
        .unwrap();
}

pub(super) fn sync_all(store: &Store) {
    store.conn().execute("DELETE FROM outbox", []).unwrap();
}

pub(super) fn fill(store: &mut Store, keys: &[String], rounds: std::ops::RangeInclusive<u64>) {
    for n in rounds {
        store
            .write_round(&round(n, NOW + n as i64 * 60_000, keys, Status::Working))
            .unwrap();
    }
}

pub(super) fn oldest_round(store: &Store) -> u64 {
    store
        .conn()
        .query_row("SELECT MIN(round) FROM results", [], |r| get_u64(r, 0))
        .unwrap()
}

pub(super) const CAP: u64 = 384 * 1024;

pub(super) fn capped(dir: &Path) -> Store {
    let policy = RetentionPolicy {
        max_bytes: CAP,
        ..RetentionPolicy::default()
    };
    let mut store = Store::open(dir, policy).unwrap();
    store.set_outbox(true);
    store
}

/// A capped store over its cap: 300 rounds of 20 targets, all queued.
pub(super) fn full_capped(dir: &Path) -> Store {
    let mut store = capped(dir);
    let keys = targets(20);
    fill(&mut store, &keys, 1..=300);
    store
}

/// A store as [`open`] has it, with round 1 of `n` targets written at
/// [`NOW`]; and the targets' keys.
pub(super) fn one_round(dir: &Path, n: usize) -> (Store, Vec<String>) {
    let mut store = open(dir);
    let keys = targets(n);
    store
        .write_round(&round(1, NOW, &keys, Status::Working))
        .unwrap();
    (store, keys)
}

/// Turn the store's result blocks back into the table of a row per result
/// that schema versions 1 to 4 had, outbox rows included, as a board
/// upgraded from an older build has it before its first open.
pub(super) fn results_as_version_4(store: &Store) {
    let conn = store.conn();
    // Version 4 had every round in the rollups table.
    for ((hour, target), c) in store.pending_rows() {
        conn.execute(
            "INSERT INTO rollups (hour, target, rounds, working, degraded, not_working, \
             rtt_sum_us, rtt_rounds, unsynced) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                hour,
                target,
                c.rounds as i64,
                c.working as i64,
                c.degraded as i64,
                c.not_working as i64,
                c.rtt_sum_us,
                c.rtt_rounds as i64,
                c.unsynced as i64
            ],
        )
        .unwrap();
    }
    conn.execute(
        "DELETE FROM counters WHERE name IN ('rollups_from_hour', 'rollups_from_round')",
        [],
    )
    .unwrap();
    conn.execute_batch(
        "CREATE TABLE results_v4 (id INTEGER PRIMARY KEY, target INTEGER NOT NULL, \
           round INTEGER NOT NULL, ts INTEGER NOT NULL, status INTEGER NOT NULL, \
           reported INTEGER NOT NULL, sent INTEGER NOT NULL, received INTEGER NOT NULL, \
           loss REAL, rtt_min INTEGER, rtt_avg INTEGER, rtt_max INTEGER, rtt_mdev INTEGER, \
           gateway BLOB);",
    )
    .unwrap();
    let blocks: Vec<(i64, i64, i64, Vec<u8>)> = conn
        .prepare("SELECT id, round, chunk, data FROM results ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let queued: Vec<(i64, i64)> = conn
        .prepare("SELECT row_id, ts FROM outbox WHERE kind = 1 ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    conn.execute("DELETE FROM outbox WHERE kind = 1", [])
        .unwrap();
    let mut rows_of_block = std::collections::HashMap::new();
    for (id, round, chunk, data) in blocks {
        let mut rows = Vec::new();
        for e in super::block::decode(chunk, &data).unwrap() {
            let us = |f: fn(&RttSummary) -> f64| e.rtt.as_ref().map(|s| encode::ms_to_us(f(s)));
            conn.execute(
                "INSERT INTO results_v4 (target, round, ts, status, reported, sent, received, \
                 loss, rtt_min, rtt_avg, rtt_max, rtt_mdev, gateway) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    e.target,
                    round,
                    e.ts.millis(),
                    encode::status_code(e.status),
                    encode::status_code(e.reported),
                    e.sent,
                    e.received,
                    encode::loss_to_column(e.sent, e.received, e.loss),
                    us(|s| s.min),
                    us(|s| s.avg),
                    us(|s| s.max),
                    us(|s| s.mdev),
                    encode::gateway_to_blob(e.gateway),
                ],
            )
            .unwrap();
            rows.push((conn.last_insert_rowid(), e.ts.millis()));
        }
        rows_of_block.insert(id, rows);
    }
    for (block, _) in queued {
        for (row, ts) in &rows_of_block[&block] {
            conn.execute(
                "INSERT INTO outbox (kind, row_id, ts) VALUES (1, ?1, ?2)",
                params![row, ts],
            )
            .unwrap();
        }
    }
    conn.execute_batch(
        "DROP TABLE results; ALTER TABLE results_v4 RENAME TO results; \
         CREATE INDEX results_target_ts ON results (target, ts); \
         CREATE INDEX rollups_target_hour ON rollups (target, hour); \
         PRAGMA user_version = 4;",
    )
    .unwrap();
}
