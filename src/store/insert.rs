//! Writing rows: a round (its results, traces, events and the hourly
//! rollups of its results) or a lone event, each in one transaction, with
//! an outbox row per record when the outbox is on. Target keys are
//! interned through [`TargetCache`], which only learns ids on commit.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::block;
use super::encode;
use super::notifications;
use super::outbox::{queue, OutboxKind};
use super::pending::{Contribution, Pending, Plan, RollupCounts, RollupKey};
use super::records::{EventRecord, RoundRecord};
use super::rollup;
use super::schema;
use super::sql::{int, sql};
use super::StoreError;

/// A target's id and the labels stored with it.
#[derive(Debug, Clone, PartialEq)]
struct TargetRow {
    id: i64,
    name: Option<String>,
    group: Option<String>,
}

/// Every row of `targets`, so a round only touches that table for new
/// targets or changed labels.
pub(super) struct TargetCache(HashMap<String, TargetRow>);

impl TargetCache {
    /// The committed rows of `targets`.
    pub(super) fn load(conn: &Connection) -> Result<TargetCache, StoreError> {
        load_targets(conn)
            .map(TargetCache)
            .map_err(sql("loading targets"))
    }

    /// How many targets there are.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Run `write` in one transaction with an interner over the cache,
    /// committed only if it succeeds; the cache only takes the ids of a
    /// committed transaction (a rolled-back one must not leave ids in it).
    pub(super) fn write<T>(
        &mut self,
        conn: &mut Connection,
        op: &str,
        write: impl FnOnce(&Connection, &mut Interner<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let tx = conn.transaction().map_err(sql(op))?;
        let mut interned = Interner {
            known: &self.0,
            new: HashMap::new(),
        };
        let done = write(&tx, &mut interned).map_err(sql(op))?;
        let new = interned.new;
        tx.commit().map_err(sql(op))?;
        self.0.extend(new);
        Ok(done)
    }
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

/// Target ids during one transaction: the committed ones, plus those this
/// transaction added or relabelled (merged into the cache on commit).
pub(super) struct Interner<'a> {
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
        // Compared in place: every result of every round comes here, and
        // nearly all of them find their target as it was. `relabel`: the
        // labels given, where they differ from the stored ones.
        let existing = self.get(key).map(|row| {
            let relabel = labels.filter(|&(name, group)| row.name != *name || row.group != *group);
            (row.id, relabel)
        });
        match existing {
            Some((id, None)) => Ok(id),
            Some((id, Some((name, group)))) => {
                conn.prepare_cached("UPDATE targets SET name = ?2, grp = ?3 WHERE id = ?1")?
                    .execute(params![id, name, group])?;
                self.new.insert(
                    key.to_string(),
                    TargetRow {
                        id,
                        name: name.clone(),
                        group: group.clone(),
                    },
                );
                Ok(id)
            }
            None => {
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

/// Insert a round's rows, the rollups that leave `pending` for the table
/// and the `last_round` counter. Returns what the round does to
/// `pending`, for [`Pending::apply`] once the transaction commits.
pub(super) fn insert_round(
    conn: &Connection,
    targets: &mut Interner<'_>,
    round: &RoundRecord,
    outbox: bool,
    pending: &Pending,
) -> rusqlite::Result<Plan> {
    let mut contributions = Vec::with_capacity(round.results.len());
    // Each result's round, target id and place in the record.
    let mut order: Vec<(u64, i64, usize)> = Vec::with_capacity(round.results.len());
    for (i, r) in round.results.iter().enumerate() {
        let target = targets.id(conn, &r.target, Some((&r.name, &r.group)))?;
        contributions.push(Contribution {
            round: r.round.0,
            key: (rollup::hour_start(r.ts).millis(), target),
            counts: RollupCounts::one(
                r.status,
                r.rtt.as_ref().map(|s| encode::ms_to_us(s.avg)),
                outbox,
            ),
        });
        order.push((r.round.0, target, i));
    }
    // A block per round and chunk, ascending by target id: the results
    // put in that order, then packed one chunk at a time (the entries of
    // a whole round at once were a megabyte at 10,000 targets).
    order.sort_by_key(|&(round, target, _)| (round, target));
    let same_block = |a: &(u64, i64, usize), b: &(u64, i64, usize)| {
        a.0 == b.0 && block::chunk_of(a.1) == block::chunk_of(b.1)
    };
    let mut entries = Vec::new();
    for group in order.chunk_by(same_block) {
        entries.clear();
        entries.extend(group.iter().map(|&(_, target, i)| {
            let r = &round.results[i];
            block::Entry {
                target,
                ts: r.ts,
                status: r.status,
                reported: r.reported,
                sent: r.sent,
                received: r.received,
                loss: r.loss,
                rtt: r.rtt,
                gateway: r.gateway,
            }
        }));
        let (round_id, first_target, _) = group[0];
        let newest = entries
            .iter()
            .map(|e| e.ts)
            .max()
            .expect("a block has entries");
        let id = conn
            .prepare_cached(
                "INSERT INTO results (round, chunk, ts, count, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .insert(params![
                int(round_id)?,
                block::chunk_of(first_target),
                newest.millis(),
                int(entries.len() as u64)?,
                block::encode(&entries),
            ])?;
        if outbox {
            queue(conn, OutboxKind::Result, id, newest)?;
        }
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
    for n in &round.notifications {
        notifications::queue_notification(conn, n)?;
    }
    for n in &round.refreshes {
        notifications::queue_refresh(conn, n)?;
    }
    if let Some(alerts) = &round.alerts {
        notifications::replace_alerts(conn, alerts)?;
    }
    conn.prepare_cached(
        "INSERT INTO counters (name, value) VALUES ('last_round', ?1) \
         ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
    )?
    .execute([int(round.round.0)?])?;
    let plan = pending.plan(round.round.0, contributions);
    for (key, counts) in &plan.to_table {
        add_to_rollups(conn, *key, counts, outbox)?;
    }
    // Before 1970 (a clock never set) counts as 1970: such rows are
    // rebuilt after a restart only from that hour on.
    schema::set_counter(
        conn,
        schema::ROLLUPS_FROM_HOUR,
        plan.from_hour.max(0) as u64,
    )?;
    schema::set_counter(conn, schema::ROLLUPS_FROM_ROUND, plan.from_round)?;
    Ok(plan)
}

/// Add counts to a rollup row of the table (unsynced only with an
/// upstream: rows rebuilt after a restart count every round as unsent).
fn add_to_rollups(
    conn: &Connection,
    (hour, target): RollupKey,
    c: &RollupCounts,
    outbox: bool,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO rollups (hour, target, rounds, working, degraded, not_working, \
         rtt_sum_us, rtt_rounds, unsynced) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (hour, target) DO UPDATE SET rounds = rounds + excluded.rounds, \
         working = working + excluded.working, degraded = degraded + excluded.degraded, \
         not_working = not_working + excluded.not_working, \
         rtt_sum_us = rtt_sum_us + excluded.rtt_sum_us, \
         rtt_rounds = rtt_rounds + excluded.rtt_rounds, \
         unsynced = unsynced + excluded.unsynced",
    )?
    .execute(params![
        hour,
        target,
        int(c.rounds)?,
        int(c.working)?,
        int(c.degraded)?,
        int(c.not_working)?,
        c.rtt_sum_us,
        int(c.rtt_rounds)?,
        int(if outbox { c.unsynced } else { 0 })?,
    ])?;
    Ok(())
}

/// Insert an event, queued when `outbox` is on.
pub(super) fn insert_event(
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

#[cfg(test)]
mod tests {
    use crate::clock::Timestamp;
    use crate::probe::{Gateway, Status};
    use crate::store::{Dropped, History, RoundId, Store};

    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn a_round_reads_back() {
        let (_dir, mut store) = fresh();
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
    fn labels_are_the_latest_written() {
        let (_dir, mut store) = fresh();
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
        let (_dir, mut store) = fresh();
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

    /// Pages a round of 1,000 results (no traces) adds, as SQLite's own
    /// page accounting sees them.
    #[test]
    fn bytes_per_round() {
        let (_dir, mut store) = fresh();
        let keys = targets(1000);
        let used = |s: &Store| {
            s.conn()
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
