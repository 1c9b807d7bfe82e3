//! Reading results back out of their blocks ([`super::block`]): one
//! target's newest, every target's latest and recent RTTs (what a
//! restarted monitor starts from), and one block's results for the
//! upstream sync. Each result carries its target's current key and labels
//! from `targets`.

use std::collections::HashMap;

use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension};

use super::block::{self, Entry};
use super::encode;
use super::pending::{Contribution, RollupCounts};
use super::records::{ResultRecord, RoundId};
use super::rollup;
use super::sql::{bad, get_u64, sql};
use super::StoreError;

/// A target's key and the labels it was last written with.
#[derive(Debug, Clone)]
struct Labels {
    key: String,
    name: Option<String>,
    group: Option<String>,
}

fn record(entry: Entry, round: RoundId, labels: &Labels) -> ResultRecord {
    ResultRecord {
        target: labels.key.clone(),
        round,
        ts: entry.ts,
        name: labels.name.clone(),
        group: labels.group.clone(),
        status: entry.status,
        reported: entry.reported,
        sent: entry.sent,
        received: entry.received,
        loss: entry.loss,
        rtt: entry.rtt,
        gateway: entry.gateway,
    }
}

/// A row of `SELECT id, key, name, grp FROM targets`.
fn id_and_labels(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Labels)> {
    Ok((
        r.get(0)?,
        Labels {
            key: r.get(1)?,
            name: r.get(2)?,
            group: r.get(3)?,
        },
    ))
}

/// The targets of `chunk`, by id.
fn chunk_labels(conn: &Connection, chunk: i64) -> rusqlite::Result<HashMap<i64, Labels>> {
    let first = chunk.saturating_mul(block::CHUNK_SIZE);
    let mut st =
        conn.prepare_cached("SELECT id, key, name, grp FROM targets WHERE id >= ?1 AND id < ?2")?;
    let rows = st.query_map(
        params![first, first.saturating_add(block::CHUNK_SIZE)],
        id_and_labels,
    )?;
    rows.collect()
}

/// The blocks of one chunk, newest round first, each decoded; `visit`
/// returns false to stop.
fn each_block(
    conn: &Connection,
    chunk: i64,
    mut visit: impl FnMut(RoundId, Vec<Entry>) -> bool,
) -> rusqlite::Result<()> {
    // The (round, chunk) index read backwards is already in this order:
    // no sort, so the scan stops as soon as `visit` has enough.
    let mut st = conn.prepare_cached(
        "SELECT round, data FROM results INDEXED BY results_round WHERE chunk = ?1 \
         ORDER BY round DESC, chunk DESC, id DESC",
    )?;
    let mut rows = st.query([chunk])?;
    while let Some(r) = rows.next()? {
        let round = RoundId(get_u64(r, 0)?);
        let data: Vec<u8> = r.get(1)?;
        let entries = block::decode(chunk, &data).map_err(|e| bad(1, Type::Blob, e))?;
        if !visit(round, entries) {
            break;
        }
    }
    Ok(())
}

/// One target's results, newest first.
pub(super) fn newest(
    conn: &Connection,
    key: &str,
    limit: usize,
) -> Result<Vec<ResultRecord>, StoreError> {
    let op = format!("reading the results of {key}");
    let target = conn
        .prepare_cached("SELECT id, key, name, grp FROM targets WHERE key = ?1")
        .and_then(|mut st| st.query_row([key], id_and_labels).optional())
        .map_err(sql(&op))?;
    let Some((id, labels)) = target else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    each_block(conn, block::chunk_of(id), |round, entries| {
        out.extend(
            entries
                .into_iter()
                .filter(|e| e.target == id)
                .map(|e| record(e, round, &labels)),
        );
        out.len() < limit
    })
    .map_err(sql(&op))?;
    out.truncate(limit);
    Ok(out)
}

/// A target's labels and some of its results, each with its round.
type TargetResults = (Labels, Vec<(RoundId, Entry)>);

/// Every target's newest `n` results, newest first, by target id with
/// its labels: per chunk, its blocks from the newest until each of its
/// targets has `n` (or the blocks run out, for a target no longer probed).
fn newest_of_all(conn: &Connection, n: usize) -> rusqlite::Result<Vec<TargetResults>> {
    let mut chunks: Vec<i64> = conn
        .prepare("SELECT DISTINCT id >> ?1 FROM targets")?
        .query_map([block::CHUNK_BITS], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    chunks.sort_unstable();
    let mut out = Vec::new();
    for chunk in chunks {
        let labels = chunk_labels(conn, chunk)?;
        let mut found: HashMap<i64, Vec<(RoundId, Entry)>> = HashMap::new();
        let mut complete = 0;
        each_block(conn, chunk, |round, entries| {
            for e in entries {
                let have = found.entry(e.target).or_default();
                if have.len() < n {
                    have.push((round, e));
                    if have.len() == n {
                        complete += 1;
                    }
                }
            }
            complete < labels.len()
        })?;
        for (id, results) in found {
            if let Some(l) = labels.get(&id) {
                out.push((l.clone(), results));
            }
        }
    }
    Ok(out)
}

/// The newest result of every target, by key.
pub(super) fn latest(conn: &Connection) -> Result<Vec<ResultRecord>, StoreError> {
    let mut out: Vec<ResultRecord> = newest_of_all(conn, 1)
        .map_err(sql("reading the latest results"))?
        .into_iter()
        .filter_map(|(labels, mut results)| {
            let (round, e) = results.pop()?;
            Some(record(e, round, &labels))
        })
        .collect();
    out.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(out)
}

/// For every target with results, the average RTT of its last `n`
/// results, oldest first, `None` where nothing replied.
pub(super) fn recent_rtts(
    conn: &Connection,
    n: usize,
) -> Result<HashMap<String, Vec<Option<f64>>>, StoreError> {
    if n == 0 {
        return Ok(HashMap::new());
    }
    let all = newest_of_all(conn, n).map_err(sql("reading recent round-trip times"))?;
    Ok(all
        .into_iter()
        .map(|(labels, results)| {
            let rtts = results
                .iter()
                .rev()
                .map(|(_, e)| e.rtt.as_ref().map(|s| s.avg))
                .collect();
            (labels.key, rtts)
        })
        .collect())
}

/// The results of the block `id`, if there is one; a result whose target
/// is no longer in `targets` (a hand-edited file) is left out.
pub(super) fn block_records(
    conn: &Connection,
    id: i64,
) -> rusqlite::Result<Option<Vec<ResultRecord>>> {
    let row = conn
        .prepare_cached("SELECT round, chunk, data FROM results WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((
                RoundId(get_u64(r, 0)?),
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .optional()?;
    let Some((round, chunk, data)) = row else {
        return Ok(None);
    };
    let entries = block::decode(chunk, &data).map_err(|e| bad(2, Type::Blob, e))?;
    let labels = chunk_labels(conn, chunk)?;
    Ok(Some(
        entries
            .into_iter()
            .filter_map(|e| {
                let l = labels.get(&e.target)?;
                Some(record(e, round, l))
            })
            .collect(),
    ))
}

/// What the results of rounds from `from_round` on add to the rollups,
/// for [`Pending::recover`](super::pending::Pending::recover); every one
/// counted as unsent (the upstream sync sends absolute values, so a row
/// sent again changes nothing).
pub(super) fn rollup_contributions(
    conn: &Connection,
    from_round: u64,
) -> Result<Vec<Contribution>, StoreError> {
    let op = "reading the results of the rollups of this hour";
    let mut st = conn
        .prepare("SELECT round, chunk, data FROM results WHERE round >= ?1")
        .map_err(sql(op))?;
    let mut rows = st
        .query([super::sql::int(from_round).map_err(sql(op))?])
        .map_err(sql(op))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(sql(op))? {
        let round = get_u64(r, 0).map_err(sql(op))?;
        let chunk: i64 = r.get(1).map_err(sql(op))?;
        let data: Vec<u8> = r.get(2).map_err(sql(op))?;
        let entries = block::decode(chunk, &data)
            .map_err(|e| bad(2, Type::Blob, e))
            .map_err(sql(op))?;
        out.extend(entries.into_iter().map(|e| Contribution {
            round,
            key: (rollup::hour_start(e.ts).millis(), e.target),
            counts: RollupCounts::one(
                e.status,
                e.rtt.as_ref().map(|s| encode::ms_to_us(s.avg)),
                true,
            ),
        }));
    }
    Ok(out)
}
