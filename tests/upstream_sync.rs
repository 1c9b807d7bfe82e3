//! The upstream sync against a real MongoDB wire-protocol server.
//!
//! The server is `nx-27017` (MongoDB's wire protocol on SQLite, `pip
//! install nx-27017==0.8.1`), started per test on a free loopback port and
//! killed at the end. These tests fail, loudly, when it is missing: a sync
//! that was never run against a server is not tested.
//!
//! Where nx-27017 differs from MongoDB, as far as these tests saw:
//! - integers come back as 32-bit when they fit (it stores JSON), where
//!   MongoDB returns the 64-bit integers the sync wrote; the checks here
//!   accept either width, the unit tests in `src/upstream/docs.rs` pin
//!   the types written;
//! - a date written with `$set` to an existing document is stored as text
//!   (`"2026-11-25 12:00:00.123000"`), at the top level and by dotted
//!   path; dates inside arrays, from `$setOnInsert` and from inserts stay
//!   dates. MongoDB keeps them dates. So on nx-27017 a board's
//!   `last_seen`, `started_at` and `oldest_unsynced` turn into text from
//!   its second update on;
//! - `replace_one` with `upsert` ignores the filter's `_id` and inserts a
//!   document with a new ObjectId (the sync does not use it);
//! - index directions are not kept (`{board: 1, ts: -1}` is listed as
//!   `ts: 1`), so only that the indexes exist is checked;
//! - duplicate `_id`s in an unordered `insert_many` come back per document
//!   with code 11000, as MongoDB does, which is what the sync relies on;
//! - it serves every database from one SQLite file (`--db memory`), so
//!   the database name is not isolated as on a real server.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::eventually_async;
use common::mongo::TestMongo;
use common::monitor::free_port;
use edgeprobe::clock::Timestamp;
use edgeprobe::fleet::{Collection, MongoSettings};
use edgeprobe::monitor::{BoardInfo, RoundInfo, Snapshot, TargetView, UpstreamView};
use edgeprobe::probe::{Gateway, Hop, RttSummary, Status, Ttl};
use edgeprobe::store::{
    EventKind, EventRecord, ResultRecord, RetentionPolicy, RoundId, RoundRecord, Store, TraceRecord,
};
use edgeprobe::upstream::{docs, MongoUpstream, Syncer, Upstream, DEFAULT_BACKOFF_MAX};
use mongodb::bson::{doc, Document};
use tokio::sync::watch;

const BOARD: &str = "closet-3";
/// 2026-11-25T12:00:00Z
const T0: i64 = 1_795_608_000_000;

/// Short timeouts so that a test with the server down does not wait the
/// default five seconds per attempt.
fn uri(port: u16) -> String {
    format!("mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=500&connectTimeoutMS=500")
}

fn target(i: usize) -> String {
    format!("198.18.{}.{}", i / 250, i % 250 + 1)
}

/// A round of `targets` results, one trace per target and one status
/// event, with a name that holds control characters.
fn round(n: u64, targets: usize) -> RoundRecord {
    round_at(n, T0 + n as i64 * 60_000, targets)
}

/// [`round`], stamped `ts_ms`.
fn round_at(n: u64, ts_ms: i64, targets: usize) -> RoundRecord {
    let ts = Timestamp(ts_ms);
    RoundRecord {
        round: RoundId(n),
        started: ts,
        finished: ts,
        results: (0..targets)
            .map(|i| ResultRecord {
                target: target(i),
                round: RoundId(n),
                ts,
                name: Some(format!("switch {i}\u{0}\t\u{1b}[31m")),
                group: (i % 2 == 0).then(|| "core".to_string()),
                status: if i == 0 {
                    Status::NotWorking
                } else {
                    Status::Working
                },
                reported: if i == 0 {
                    Status::NotWorking
                } else {
                    Status::Working
                },
                sent: 3,
                received: if i == 0 { 0 } else { 3 },
                loss: if i == 0 { 1.0 } else { 0.0 },
                rtt: (i != 0).then_some(RttSummary {
                    min: 1.0,
                    avg: 1.5,
                    max: 2.0,
                    mdev: 0.25,
                }),
                gateway: Some(Gateway::Via("198.18.0.1".parse().unwrap())),
            })
            .collect(),
        traces: (0..targets)
            .map(|i| TraceRecord {
                target: target(i),
                round: RoundId(n),
                ts,
                hops: vec![
                    Hop::new(Ttl(1), Some("198.18.0.1".parse().unwrap()), Some(0.5)),
                    Hop::new(Ttl(2), None, None),
                ],
                reached: false,
            })
            .collect(),
        events: vec![EventRecord {
            target: Some(target(0)),
            ts,
            kind: EventKind::Status,
            from: Some("working".into()),
            to: Some("not_working".into()),
            detail: format!("round {n}: no reply"),
        }],
        ..RoundRecord::default()
    }
}

fn open_store(dir: &Path) -> Arc<Mutex<Store>> {
    let mut store = Store::open(dir, RetentionPolicy::default()).unwrap();
    store.set_outbox(true);
    Arc::new(Mutex::new(store))
}

fn write(store: &Arc<Mutex<Store>>, rounds: std::ops::RangeInclusive<u64>, targets: usize) {
    let mut s = store.lock().unwrap();
    for n in rounds {
        s.write_round(&round(n, targets)).unwrap();
    }
}

fn backlog(store: &Arc<Mutex<Store>>) -> u64 {
    store.lock().unwrap().stats().unwrap().backlog
}

fn snapshot(n: u64, targets: usize) -> Arc<Snapshot> {
    let view = |i: usize| TargetView {
        sno: i + 1,
        key: target(i).into(),
        addr: target(i).into(),
        ip: target(i).parse().ok(),
        name: Some(format!("switch {i}").into()),
        group: None,
        notes: None,
        status: match i {
            0 => Some(Status::NotWorking),
            1 => None,
            _ => Some(Status::Working),
        },
        status_since: Some(Timestamp(T0)),
        sent: 3,
        received: 3,
        loss: Some(0.0),
        rtt_ms: None,
        gateway: Some(Gateway::Direct),
        hops: Default::default(),
        reached: true,
        last_trace: None,
        last_updated: Some(Timestamp(T0 + n as i64 * 60_000)),
        uptime_24h: None,
        recent_rtt: Default::default(),
        cause: None,
    };
    Arc::new(Snapshot {
        board: BoardInfo {
            id: BOARD.into(),
            version: "0.1.0-test".into(),
            started_at: Timestamp(T0),
            started_mono: None,
            interval: Duration::from_secs(60),
        },
        last_round: Some(RoundInfo {
            round: RoundId(n),
            started: Timestamp(T0),
            finished: Timestamp(T0),
            duration: Duration::from_secs(1),
            finished_mono: None,
        }),
        targets: (0..targets).map(view).collect(),
        ..Snapshot::default()
    })
}

/// A running sync and the ends of its channels.
struct Running {
    snapshots: watch::Sender<Arc<Snapshot>>,
    status: watch::Receiver<UpstreamView>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn spawn(uri: &str, store: &Arc<Mutex<Store>>, batch: usize, first: Arc<Snapshot>) -> Running {
    let mut settings = MongoSettings::new(uri);
    settings.batch = batch;
    let syncer = Syncer::new(&settings, DEFAULT_BACKOFF_MAX, BOARD, Arc::clone(store)).unwrap();
    let (snapshots, snap_rx) = watch::channel(first);
    let (status_tx, status) = watch::channel(UpstreamView::Off);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(syncer.run(snap_rx, status_tx, stop_rx));
    Running {
        snapshots,
        status,
        stop,
        task,
    }
}

impl Running {
    async fn until(&mut self, what: &str, f: impl Fn(&UpstreamView) -> bool) -> UpstreamView {
        let wait = async {
            loop {
                let v = self.status.borrow_and_update().clone();
                if f(&v) {
                    return v;
                }
                self.status.changed().await.unwrap();
            }
        };
        match tokio::time::timeout(Duration::from_secs(60), wait).await {
            Ok(v) => v,
            Err(_) => panic!("never {what}; last: {:?}", self.status.borrow()),
        }
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(2), self.task)
            .await
            .expect("the sync stops promptly")
            .unwrap();
    }
}

/// An integer field. The sync writes 64-bit integers (the unit tests pin
/// that); nx-27017 stores documents as JSON and hands small ones back as
/// 32-bit, where MongoDB keeps the type it was given.
fn int(d: &Document, key: &str) -> i64 {
    match d.get(key) {
        Some(mongodb::bson::Bson::Int64(n)) => *n,
        Some(mongodb::bson::Bson::Int32(n)) => i64::from(*n),
        other => panic!("{key} is not an integer: {other:?}"),
    }
}

fn synced(v: &UpstreamView) -> bool {
    matches!(v, UpstreamView::Synced { .. })
}

fn unreachable(v: &UpstreamView) -> bool {
    matches!(v, UpstreamView::Unreachable { .. })
}

async fn db(uri: &str) -> mongodb::Database {
    mongodb::Client::with_uri_str(uri)
        .await
        .unwrap()
        .database("edgeprobe")
}

async fn count(db: &mongodb::Database, coll: &str) -> u64 {
    db.collection::<Document>(coll)
        .count_documents(doc! {})
        .await
        .unwrap()
}

/// How many results, traces and events the central database holds.
async fn synced_rows(db: &mongodb::Database) -> [u64; 3] {
    [
        count(db, "results").await,
        count(db, "traces").await,
        count(db, "events").await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_synced_exactly_once_with_the_board() {
    let nx = TestMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // 3 rounds of 7 targets: 21 results, 21 traces, 3 events; batches of
    // 10 so that it takes several.
    write(&store, 1..=3, 7);
    let mut run = spawn(&uri(nx.port), &store, 10, snapshot(3, 4));
    run.until("synced", synced).await;
    let db = db(&uri(nx.port)).await;
    assert_eq!(synced_rows(&db).await, [21, 21, 3]);
    assert_eq!(backlog(&store), 0);

    // What the dashboard reads: the contract's names and types.
    let r = db
        .collection::<Document>("results")
        .find_one(doc! { "board": BOARD, "target": target(3), "round": 2_i64 })
        .await
        .unwrap()
        .expect("the result of round 2");
    assert_eq!(r.get_str("board").unwrap(), BOARD);
    assert_eq!(int(&r, "round"), 2);
    assert_eq!(r.get_str("status").unwrap(), "working");
    assert_eq!(r.get_str("name").unwrap(), "switch 3\u{0}\t\u{1b}[31m");
    assert!(r.get_datetime("ts").is_ok());
    assert_eq!(r.get_document("rtt").unwrap().get_f64("avg").unwrap(), 1.5);
    let down = db
        .collection::<Document>("results")
        .find_one(doc! { "board": BOARD, "target": target(0), "round": 2_i64 })
        .await
        .unwrap()
        .unwrap();
    assert!(down.is_null("rtt"));
    assert_eq!(down.get_str("reported").unwrap(), "not_working");

    let board = db
        .collection::<Document>("boards")
        .find_one(doc! { "_id": BOARD })
        .await
        .unwrap()
        .expect("board document");
    let counts = board.get_document("counts").unwrap();
    assert_eq!(int(counts, "working"), 2);
    assert_eq!(int(counts, "not_working"), 1);
    assert_eq!(int(counts, "pending"), 1);
    assert_eq!(int(&board, "backlog"), 0);
    assert_eq!(board.get_str("upstream_state").unwrap(), "synced");
    assert_eq!(board.get_array("targets").unwrap().len(), 4);
    let first_seen = *board.get_datetime("first_seen").unwrap();

    // The next round: only its rows go up, the board is updated in place
    // and keeps its first_seen.
    tokio::time::sleep(Duration::from_millis(20)).await;
    write(&store, 4..=4, 7);
    run.snapshots.send_replace(snapshot(4, 4));
    let synced4 = eventually_async(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async { (count(&db, "results").await >= 28 && backlog(&store) == 0).then_some(()) },
    );
    assert!(synced4.await.is_some(), "round 4 was not synced");
    run.until("synced", synced).await;
    assert_eq!(synced_rows(&db).await, [28, 28, 4]);
    assert_eq!(count(&db, "boards").await, 1);
    let round4 = mongodb::bson::DateTime::from_millis(T0 + 4 * 60_000);
    let updated = eventually_async(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let board = db
                .collection::<Document>("boards")
                .find_one(doc! { "_id": BOARD })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(*board.get_datetime("first_seen").unwrap(), first_seen);
            let targets = board.get_array("targets").unwrap();
            let t0 = targets[0].as_document().unwrap();
            if *t0.get_datetime("last_updated").unwrap() == round4 {
                // MongoDB keeps `last_seen` a date. nx-27017 stores a date
                // `$set` on an existing document as text ("2026-11-25
                // 12:00:00.123000"), top level or dotted; dates inside arrays
                // and from `$setOnInsert` stay dates.
                match board.get("last_seen") {
                    Some(mongodb::bson::Bson::DateTime(_)) => {}
                    Some(mongodb::bson::Bson::String(s)) => assert!(s.starts_with("20"), "{s}"),
                    other => panic!("last_seen: {other:?}"),
                }
                return Some(());
            }
            None
        },
    );
    assert!(updated.await.is_some(), "the board was not updated");

    let names = db
        .collection::<Document>("results")
        .list_index_names()
        .await
        .unwrap();
    assert!(names.len() >= 3, "indexes on results: {names:?}");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_batch_is_absorbed_not_doubled() {
    let nx = TestMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    write(&store, 1..=2, 5);

    // As if the last sync crashed between the server's acknowledgement and
    // mark_synced: the first 8 rows are upstream and still queued.
    let up = MongoUpstream::new(&uri(nx.port), "edgeprobe").unwrap();
    let first = store.lock().unwrap().outbox_batch(8).unwrap();
    let resend: Vec<Document> = first
        .iter()
        .map(|i| docs::record_doc(BOARD, &i.record))
        .filter(|(c, _)| *c == Collection::Results)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(resend.len(), 5);
    up.insert(Collection::Results, resend.clone())
        .await
        .unwrap();
    // Sent again on its own: every document a duplicate, still success.
    up.insert(Collection::Results, resend.clone())
        .await
        .expect("all duplicates count as inserted");
    let db = db(&uri(nx.port)).await;
    assert_eq!(count(&db, "results").await, 5);
    assert_eq!(backlog(&store), 22);

    let mut run = spawn(&uri(nx.port), &store, 500, snapshot(2, 3));
    run.until("synced", synced).await;
    assert_eq!(synced_rows(&db).await, [10, 10, 2]);
    assert_eq!(backlog(&store), 0);
    run.stop().await;
}

/// The rollup documents of the board, by `_id`: (rounds, working,
/// not_working, rtt_rounds).
async fn rollups(db: &mongodb::Database) -> std::collections::BTreeMap<String, [i64; 4]> {
    use futures::TryStreamExt;
    let docs: Vec<Document> = db
        .collection::<Document>("rollups")
        .find(doc! { "board": BOARD })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    docs.iter()
        .map(|d| {
            let counts = ["rounds", "working", "not_working", "rtt_rounds"].map(|k| int(d, k));
            (d.get_str("_id").unwrap().to_string(), counts)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_stay_exact_through_a_retry_a_late_board_and_a_restart() {
    let nx = TestMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // 3 rounds of 4 targets in the hour of T0; target 0 is down.
    write(&store, 1..=3, 4);
    let mut run = spawn(&uri(nx.port), &store, 500, snapshot(3, 4));
    run.until("synced", synced).await;
    let db = db(&uri(nx.port)).await;
    let id = |i: usize, hour: i64| format!("{BOARD}/{}/{hour}", target(i));
    let first = rollups(&db).await;
    assert_eq!(first.len(), 4, "{first:?}");
    assert_eq!(first[&id(0, T0)], [3, 0, 3, 0]);
    assert_eq!(first[&id(1, T0)], [3, 3, 0, 3]);
    let doc = db
        .collection::<Document>("rollups")
        .find_one(doc! { "_id": id(1, T0) })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(int(&doc, "hour_ms"), T0);
    assert_eq!(doc.get_f64("rtt_sum_ms").unwrap(), 4.5);
    run.stop().await;

    // A retry: the same documents again (an acknowledgement lost after
    // the server applied them) change nothing.
    let up = MongoUpstream::new(&uri(nx.port), "edgeprobe").unwrap();
    let now = Timestamp(T0 + 3_600_000);
    let again: Vec<Document> = {
        let s = store.lock().unwrap();
        // Nothing waits; read the rows as they are by marking them again.
        assert_eq!(s.rollup_backlog().unwrap(), 0);
        drop(s);
        write(&store, 4..=4, 4);
        let s = store.lock().unwrap();
        let batch = s.rollup_batch(100).unwrap();
        batch
            .iter()
            .map(|r| docs::rollup_doc(BOARD, r, now))
            .collect()
    };
    up.replace_rollups(again.clone()).await.unwrap();
    up.replace_rollups(again).await.unwrap();
    let retried = rollups(&db).await;
    assert_eq!(retried.len(), 4);
    assert_eq!(
        retried[&id(0, T0)],
        [4, 0, 4, 0],
        "sent twice, counted once"
    );

    // A late board: rounds from two hours before arrive after the newer
    // ones; they make their own hour and leave the others alone.
    write_rounds(&store, &[round_at(90, T0 - 2 * 3_600_000 + 60_000, 4)]);
    // A restart: the store is reopened from its file and a new sync
    // starts; the rows it sent before are not counted again.
    drop(up);
    let store = {
        drop(store);
        open_store(dir.path())
    };
    write(&store, 5..=5, 4);
    let mut run = spawn(&uri(nx.port), &store, 2, snapshot(5, 4));
    run.until("synced", synced).await;
    let last = rollups(&db).await;
    assert_eq!(last.len(), 8, "{last:?}");
    assert_eq!(last[&id(0, T0)], [5, 0, 5, 0]);
    assert_eq!(last[&id(3, T0)], [5, 5, 0, 5]);
    assert_eq!(last[&id(2, T0 - 2 * 3_600_000)], [1, 1, 0, 1]);
    assert_eq!(store.lock().unwrap().rollup_backlog().unwrap(), 0);
    run.stop().await;
}

fn write_rounds(store: &Arc<Mutex<Store>>, rounds: &[RoundRecord]) {
    let mut s = store.lock().unwrap();
    for r in rounds {
        s.write_round(r).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_keeps_the_outbox_then_drains_when_it_is_up() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    write(&store, 1..=2, 5);
    let queued = backlog(&store);
    assert_eq!(queued, 22);

    let mut run = spawn(&uri(port), &store, 500, snapshot(2, 3));
    let v = run.until("unreachable", unreachable).await;
    let UpstreamView::Unreachable {
        server,
        since,
        error,
        retry_at,
    } = v
    else {
        unreachable!()
    };
    assert_eq!(server, format!("127.0.0.1:{port}/edgeprobe"));
    assert!(retry_at > since, "{since} {retry_at}");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert!(error.contains("check that the server is up"), "{error}");
    assert_eq!(backlog(&store), queued, "nothing lost while down");

    // Rounds go on while it is down.
    write(&store, 3..=3, 5);
    run.snapshots.send_replace(snapshot(3, 3));

    let nx = TestMongo::start_on(port);
    run.until("synced", synced).await;
    let db = db(&uri(nx.port)).await;
    assert_eq!(synced_rows(&db).await, [15, 15, 3]);
    assert_eq!(backlog(&store), 0);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_is_noticed_in_seconds_and_shutdown_is_prompt() {
    // No options in the URI: the sync's own 5 s server selection timeout.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    write(&store, 1..=1, 1);
    let started = Instant::now();
    let mut run = spawn(
        &format!("mongodb://127.0.0.1:{port}"),
        &store,
        500,
        snapshot(1, 1),
    );
    run.until("unreachable", unreachable).await;
    // Figures, not assertions: these machines are noisy.
    eprintln!("a dead server was reported after {:?}", started.elapsed());
    // Stop in the middle of the next attempt's server selection.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t = Instant::now();
    run.stop().await;
    eprintln!("the sync stopped {:?} after it was asked to", t.elapsed());
    assert_eq!(backlog(&store), 3);
}

/// How fast a backlog drains (printed; run with `--nocapture`). Not a
/// benchmark of MongoDB: nx-27017 is Python on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_rate() {
    let nx = TestMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // 20 rounds of 100 targets: 4,020 rows.
    write(&store, 1..=20, 100);
    let rows = backlog(&store);
    let started = Instant::now();
    let mut run = spawn(&uri(nx.port), &store, 500, snapshot(20, 3));
    run.until("synced", synced).await;
    let took = started.elapsed();
    assert_eq!(backlog(&store), 0);
    let db = db(&uri(nx.port)).await;
    assert_eq!(count(&db, "results").await, 2000);
    eprintln!(
        "drained {rows} rows in {took:?}: {:.0} docs/s (batches of 500, nx-27017)",
        rows as f64 / took.as_secs_f64()
    );
    run.stop().await;
}
