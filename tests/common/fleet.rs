//! Fleet documents in the schema's shape (`edgeprobe::fleet::schema`),
//! written by hand as another writer would, for the central tests: boards,
//! their targets, events and hourly rollups, and the seeding of a server.

use std::time::Duration;

use edgeprobe::clock::Timestamp;
use mongodb::bson::{doc, Bson, DateTime, Document};

pub fn at(ts: Timestamp) -> DateTime {
    DateTime::from_millis(ts.millis())
}

pub fn ago(now: Timestamp, secs: u64) -> Timestamp {
    now.sub(Duration::from_secs(secs))
}

/// The start of the UTC hour `hours` before the one holding `now`.
pub fn hour(now: Timestamp, hours: i64) -> Timestamp {
    Timestamp(now.millis().div_euclid(3_600_000) * 3_600_000 - hours * 3_600_000)
}

/// A `rollups` document in the contract's shape: `rounds` in the hour,
/// `not_working` and `degraded` of them, 0.2 ms for each answered one.
pub fn rollup(
    board: &str,
    target: &str,
    at_hour: Timestamp,
    rounds: i64,
    not_working: i64,
    degraded: i64,
) -> Document {
    let answered = rounds - not_working;
    doc! {
        "_id": format!("{board}/{target}/{}", at_hour.millis()),
        "board": board, "target": target, "hour": at(at_hour), "hour_ms": at_hour.millis(),
        "rounds": rounds, "working": answered - degraded, "degraded": degraded,
        "not_working": not_working, "rtt_sum_ms": 0.2 * answered as f64, "rtt_rounds": answered,
        "board_clock": at(at_hour),
    }
}

pub fn board_target(
    target: &str,
    name: &str,
    status: &str,
    now: Timestamp,
    cause: Option<&str>,
) -> Bson {
    Bson::Document(doc! {
        "target": target, "name": name, "group": Bson::Null, "status": status,
        "since": at(ago(now, 600)), "last_updated": at(ago(now, 2)),
        "loss": if status == "not_working" { 1.0 } else { 0.0 },
        "rtt_avg": if status == "not_working" { Bson::Null } else { Bson::Double(0.25) },
        "gateway": if status == "not_working" { Bson::Null } else { Bson::String("direct".into()) },
        "cause": cause.map_or(Bson::Null, |c| Bson::String(c.into())),
    })
}

pub fn board(
    id: &str,
    now: Timestamp,
    last_seen: Timestamp,
    counts: [i64; 4],
    backlog: i64,
    targets: Vec<Bson>,
) -> Document {
    doc! {
        "_id": id, "name": id, "site": Bson::Null, "version": "0.1.0",
        "started_at": at(ago(now, 86_400)), "last_seen": at(last_seen),
        "first_seen": at(ago(now, 40 * 86_400)), "interval_s": 60.0,
        "counts": {"working": counts[0], "degraded": counts[1], "not_working": counts[2], "pending": counts[3]},
        "backlog": backlog, "oldest_unsynced": Bson::Null, "upstream_state": "synced",
        "targets": targets,
    }
}

pub fn event(board: &str, target: &str, ts: Timestamp, detail: &str) -> Document {
    doc! {
        "_id": format!("{board}/{detail}"), "board": board, "target": target, "ts": at(ts),
        "kind": "status", "from": "working", "to": "not_working", "detail": detail,
    }
}

/// Insert `docs` into `collection` of the `edgeprobe` database at `uri`.
pub fn insert(uri: &str, collection: &str, docs: Vec<Document>) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(uri).await.expect("client");
        client
            .database("edgeprobe")
            .collection::<Document>(collection)
            .insert_many(docs)
            .await
            .unwrap_or_else(|e| panic!("insert {collection}: {e:?}"));
    });
}
