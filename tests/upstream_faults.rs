//! The upstream sync end to end: real monitors on loopback targets, a
//! real MongoDB-protocol server (nx-27017), and `edgeprobe central` over
//! it. Faults: the server down for many rounds, restarted mid-batch, the
//! monitor killed with SIGKILL mid-batch. After each, every result the
//! boards stored is upstream exactly once.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::mongo::TestMongo;
use common::monitor::{quick_args, RunningMonitor};
use edgeprobe::store::{History, RetentionPolicy, Store};
use mongodb::bson::{doc, Document};
use serde_json::Value;

/// `n` loopback targets 127.2.B.x for board number `b`.
fn sheet(dir: &Path, b: u8, n: usize) -> String {
    let path = dir.join(format!("board{b}.csv"));
    let mut text = String::from("ip,name\n");
    for i in 0..n {
        text.push_str(&format!("127.2.{b}.{},host {i}\n", i + 1));
    }
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn monitor(board: &str, sheet: &str, state: &Path, uri: &str) -> RunningMonitor {
    let state = state.to_str().unwrap();
    RunningMonitor::start_local(&quick_args(
        sheet,
        state,
        &["--board-id", board, "--rate", "0", "--mongo-uri", uri],
    ))
}

fn backlog(v: &Value) -> u64 {
    v["store"]["backlog"].as_u64().unwrap_or(u64::MAX)
}

/// Every result a board's store holds, per target: (round numbers, rounds
/// not Not Working). Read through the store's own API after the monitor
/// stopped.
fn stored_results(state: &Path, targets: &[String]) -> HashMap<String, (Vec<u64>, u64)> {
    let store = Store::open(state, RetentionPolicy::default()).unwrap();
    assert_eq!(store.stats().unwrap().backlog, 0, "everything was sent");
    let reader = store.reader().unwrap();
    targets
        .iter()
        .map(|t| {
            let rs = reader.results(t, usize::MAX).unwrap();
            let rounds: Vec<u64> = rs.iter().map(|r| r.round.0).collect();
            let working = rs
                .iter()
                .filter(|r| r.status != edgeprobe::probe::Status::NotWorking)
                .count() as u64;
            (t.clone(), (rounds, working))
        })
        .collect()
}

/// The `results` documents of one board, per target: round numbers.
fn upstream_rounds(uri: &str, board: &str) -> HashMap<String, Vec<u64>> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(uri).await.unwrap();
        let coll = client
            .database("edgeprobe")
            .collection::<Document>("results");
        let mut cursor = coll.find(doc! {"board": board}).await.unwrap();
        let mut out: HashMap<String, Vec<u64>> = HashMap::new();
        while cursor.advance().await.unwrap() {
            let d = cursor.deserialize_current().unwrap();
            let target = d.get_str("target").unwrap().to_string();
            // nx-27017 hands back an int64 that fits as an int32.
            let round = match d.get("round") {
                Some(mongodb::bson::Bson::Int64(r)) => *r as u64,
                Some(mongodb::bson::Bson::Int32(r)) => *r as u64,
                other => panic!("round is {other:?} in {d}"),
            };
            out.entry(target).or_default().push(round);
        }
        out
    })
}

/// Stop a monitor cleanly once it has caught up (a round's worth of rows
/// at most waiting); the stop sends the rest.
fn drain_and_stop(mut m: RunningMonitor, targets: usize) {
    m.wait_for("the backlog sent", Duration::from_secs(180), |v| {
        v["upstream"]["state"] == "synced" && backlog(v) <= 2 * targets as u64 + 10
    });
    m.signal("TERM");
    let st = m
        .wait_exit(Duration::from_secs(30))
        .expect("stops on SIGTERM");
    assert!(st.success(), "{st:?}\n{}", m.log());
}

/// Each stored result is upstream exactly once, and nothing else is.
fn assert_exactly_once(uri: &str, board: &str, state: &Path, targets: &[String]) {
    let stored = stored_results(state, targets);
    let mut upstream = upstream_rounds(uri, board);
    for t in targets {
        let (mut want, _) = stored[t].clone();
        want.sort_unstable();
        let mut got = upstream.remove(t).unwrap_or_default();
        got.sort_unstable();
        assert!(!want.is_empty(), "{board} {t}: no results at all");
        assert_eq!(got, want, "{board} {t}: upstream rounds vs stored rounds");
    }
    assert!(
        upstream.is_empty(),
        "unexpected targets upstream: {:?}",
        upstream.keys()
    );
}

fn targets(b: u8, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("127.2.{b}.{}", i + 1)).collect()
}

#[test]
fn two_boards_sync_to_one_server_and_central_counts_what_they_counted() {
    common::require_root();
    let server = TestMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let (sa, sb) = (dir.path().join("a"), dir.path().join("b"));
    let a = monitor("closet-a", &sheet(dir.path(), 1, 3), &sa, &server.uri());
    let b = monitor("closet-b", &sheet(dir.path(), 2, 2), &sb, &server.uri());
    for m in [&a, &b] {
        m.wait_for("five synced rounds", Duration::from_secs(60), |v| {
            v["last_round"]["round"].as_u64().is_some_and(|r| r >= 5)
                && v["upstream"]["state"] == "synced"
        });
    }
    let central = RunningMonitor::start_central(&["--mongo-uri", &server.uri()]);
    let page = central.get("/api/v1/boards").json();
    let boards = &page["boards"];
    let ids: Vec<&str> = boards
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["board"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{boards:#}");
    assert!(ids.contains(&"closet-a") && ids.contains(&"closet-b"));
    assert!(boards
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["online"] == true));

    drain_and_stop(a, 3);
    drain_and_stop(b, 2);
    assert_exactly_once(&server.uri(), "closet-a", &sa, &targets(1, 3));
    assert_exactly_once(&server.uri(), "closet-b", &sb, &targets(2, 2));

    // Availability from the server's aggregation of the uploaded rollups
    // = what the boards counted, round for round.
    let avail = central.get("/api/v1/availability?window=24h").json();
    let rows = avail["rows"].as_array().expect("an array of rows");
    for (board, state, b, n) in [("closet-a", &sa, 1, 3), ("closet-b", &sb, 2, 2)] {
        let stored = stored_results(state, &targets(b, n));
        for t in targets(b, n) {
            let row = rows
                .iter()
                .find(|r| r["board"] == board && r["target"] == t.as_str())
                .unwrap_or_else(|| panic!("no availability for {board} {t}: {avail:#}"));
            let (rounds, working) = &stored[&t];
            assert_eq!(row["rounds"].as_u64(), Some(rounds.len() as u64), "{row}");
            assert_eq!(row["working"].as_u64(), Some(*working), "{row}");
            let fraction = *working as f64 / rounds.len() as f64;
            assert!(
                (row["availability"].as_f64().unwrap() - fraction).abs() < 1e-9,
                "{row}"
            );
        }
    }

    // Heartbeats stopped: both boards go offline.
    central.wait_until_json("/api/v1/boards", Duration::from_secs(30), |v| {
        v["boards"]
            .as_array()
            .is_some_and(|bs| bs.iter().all(|b| b["online"] == false))
    });
}

#[test]
fn a_server_down_for_many_rounds_then_restarted_mid_batch_loses_and_doubles_nothing() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestMongo::start_persistent(&dir.path().join("mongo.db"));
    let state = dir.path().join("state");
    let list = targets(3, 200);
    let m = monitor(
        "closet-f",
        &sheet(dir.path(), 3, 200),
        &state,
        &server.uri(),
    );
    m.wait_for("synced once", Duration::from_secs(60), |v| {
        v["upstream"]["state"] == "synced" && v["last_round"]["round"].as_u64().is_some()
    });

    // Down for many rounds: the outbox grows, the dashboard says so.
    server.stop();
    let round = m.status()["last_round"]["round"].as_u64().unwrap();
    let v = m.wait_for(
        "eight rounds while the server is down",
        Duration::from_secs(60),
        |v| {
            v["last_round"]["round"]
                .as_u64()
                .is_some_and(|r| r >= round + 8)
                && v["upstream"]["state"] == "unreachable"
        },
    );
    assert!(backlog(&v) >= 8 * 200, "{}", backlog(&v));
    assert_eq!(v["leds"]["amber"], "on", "{v:#}");

    // Back, and killed again while the backlog drains.
    server.restart();
    m.wait_for("draining", Duration::from_secs(60), |v| {
        v["upstream"]["state"] == "draining" || backlog(v) < 8 * 200
    });
    server.restart();
    drain_and_stop(m, 200);
    assert_exactly_once(&server.uri(), "closet-f", &state, &list);
}

#[test]
fn a_monitor_killed_mid_batch_sends_the_rest_after_a_restart_exactly_once() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestMongo::start_persistent(&dir.path().join("mongo.db"));
    let state = dir.path().join("state");
    let list = targets(4, 200);
    let sheet = sheet(dir.path(), 4, 200);
    server.stop();
    let mut m = monitor("closet-k", &sheet, &state, &server.uri());
    m.wait_for("a backlog", Duration::from_secs(60), |v| {
        backlog(v) >= 10 * 200
    });
    server.restart();
    m.wait_for("the drain started", Duration::from_secs(60), |v| {
        v["upstream"]["state"] == "draining"
    });
    m.signal("KILL");
    m.wait_exit(Duration::from_secs(10)).expect("killed");
    drop(m);

    let m = monitor("closet-k", &sheet, &state, &server.uri());
    drain_and_stop(m, 200);
    assert_exactly_once(&server.uri(), "closet-k", &state, &list);
}

/// How many documents of `collection` the server holds for `board`, and
/// the board document's `last_seen` (the heartbeat).
fn upstream_counts(uri: &str, board: &str, collection: &str) -> (u64, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(uri).await.unwrap();
        let db = client.database("edgeprobe");
        let n = db
            .collection::<Document>(collection)
            .count_documents(doc! {"board": board})
            .await
            .unwrap();
        let seen = db
            .collection::<Document>("boards")
            .find_one(doc! {"_id": board})
            .await
            .unwrap()
            .and_then(|d| d.get("last_seen").map(|v| v.to_string()))
            .unwrap_or_default();
        (n, seen)
    })
}

/// Rewrite a board's sheet with one more target: the monitor reloads it
/// and records a `targets` event, which goes upstream.
fn add_a_target(sheet: &str, b: u8, n: usize) {
    let mut text = std::fs::read_to_string(sheet).unwrap();
    text.push_str(&format!("127.2.{b}.{},host {n}\n", n + 1));
    std::fs::write(sheet, text).unwrap();
}

/// The rows the board set aside as refused, once it says it is in sync.
fn wait_refused(m: &RunningMonitor, what: &str) -> Value {
    m.wait_for(what, Duration::from_secs(90), |v| {
        v["store"]["refused"].as_u64().is_some_and(|n| n >= 1)
            && v["upstream"]["state"] == "synced"
            && backlog(v) <= 20
    })
}

#[test]
fn a_refused_event_is_set_aside_and_results_and_the_heartbeat_go_on() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mongo.db");
    let server = TestMongo::start_persistent(&db);
    let state = dir.path().join("state");
    let sheet = sheet(dir.path(), 5, 3);
    let m = monitor("closet-r", &sheet, &state, &server.uri());
    m.wait_for("synced once", Duration::from_secs(60), |v| {
        v["upstream"]["state"] == "synced" && backlog(v) == 0
    });
    assert!(upstream_counts(&server.uri(), "closet-r", "events").0 >= 1);

    // From now on the server refuses every event with a server-side error
    // that is not a duplicate key, as a validator (121) or a user that may
    // not write `events` (13) would: a trigger inside nx-27017's own file
    // that writes to a table that does not exist (nx-27017 answers that
    // write error with code 8 and SQLite's message).
    let sql = rusqlite::Connection::open(&db).unwrap();
    sql.execute_batch(
        "CREATE TRIGGER refuse_events BEFORE INSERT ON events BEGIN \
         INSERT INTO \"events may not be written here\" VALUES (1); END;",
    )
    .unwrap();
    drop(sql);
    add_a_target(&sheet, 5, 3);
    let v = wait_refused(&m, "the event set aside");
    let reason = v["store"]["last_refusal"]["reason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("events: code 8:") && reason.contains("events may not be written here"),
        "{v:#}"
    );
    assert!(v["store"]["refused_total"].as_u64() >= Some(1), "{v:#}");
    // The board says so in its own event log, with the server's message.
    let events = Store::open(&state, RetentionPolicy::default())
        .unwrap()
        .reader()
        .unwrap()
        .events(None, 50)
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == edgeprobe::store::EventKind::Store
                && e.detail.contains("refused")
                && e.detail.contains("events may not be written here")),
        "{events:#?}"
    );
    let metrics = m.get("/metrics").text();
    assert!(
        metrics.contains("edgeprobe_upstream_refused_rows 1")
            && metrics.contains("edgeprobe_upstream_refused_total 1"),
        "{metrics}"
    );
    assert!(m.get("/").text().contains("refused by the server"));

    // Results keep going up, and so does the heartbeat.
    let (results, seen) = upstream_counts(&server.uri(), "closet-r", "results");
    let round = v["last_round"]["round"].as_u64().unwrap();
    m.wait_for("two more rounds", Duration::from_secs(60), |v| {
        v["last_round"]["round"]
            .as_u64()
            .is_some_and(|r| r >= round + 2)
            && v["upstream"]["state"] == "synced"
            && backlog(v) == 0
    });
    let (later, seen_later) = upstream_counts(&server.uri(), "closet-r", "results");
    assert!(later > results, "{later} > {results}");
    assert_ne!(seen_later, seen, "the board's heartbeat went on");
}

#[test]
fn a_duplicate_on_another_unique_index_is_set_aside_not_counted_as_sent() {
    common::require_root();
    let server = TestMongo::start();
    // One event per board: the board's second event is a duplicate key,
    // but not on `_id`, so the server does not hold it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
        let index = mongodb::IndexModel::builder()
            .keys(doc! {"board": 1})
            .options(
                mongodb::options::IndexOptions::builder()
                    .unique(true)
                    .build(),
            )
            .build();
        client
            .database("edgeprobe")
            .collection::<Document>("events")
            .create_index(index)
            .await
            .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let sheet = sheet(dir.path(), 6, 2);
    let m = monitor("closet-u", &sheet, &state, &server.uri());
    m.wait_for("synced once", Duration::from_secs(60), |v| {
        v["upstream"]["state"] == "synced" && backlog(v) == 0
    });
    assert_eq!(upstream_counts(&server.uri(), "closet-u", "events").0, 1);
    add_a_target(&sheet, 6, 2);
    let v = wait_refused(&m, "the duplicate set aside");
    assert_eq!(v["store"]["refused"], 1, "{v:#}");
    let reason = v["store"]["last_refusal"]["reason"].as_str().unwrap_or("");
    // nx-27017 names the index in SQLite's words; MongoDB would say
    // "E11000 ... index: board_1".
    assert!(
        reason.starts_with("events: code 11000:") && reason.contains("board"),
        "{v:#}"
    );
    assert_eq!(upstream_counts(&server.uri(), "closet-u", "events").0, 1);
}

/// Damage the page of the `outbox_row` index, which every round writes
/// while the server is away and nothing reads at start: the next round
/// finds the file damaged, the rest of it still reads.
fn damage_the_outbox_index(state: &Path) {
    let db = state.join(edgeprobe::store::DB_FILE);
    let (root, page_size): (i64, i64) = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'outbox_row'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        (root, page_size)
    };
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    f.seek(SeekFrom::Start(((root - 1) * page_size) as u64))
        .unwrap();
    f.write_all(&vec![0xff; page_size as usize]).unwrap();
}

#[test]
fn the_unsent_rows_of_a_damaged_file_are_carried_into_the_new_one_and_sent() {
    common::require_root();
    let mut server = TestMongo::start();
    server.stop();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let list = targets(7, 3);
    let sheet = sheet(dir.path(), 7, 3);
    // Rounds while the server is away: their rows wait in the outbox.
    let mut m = monitor("closet-d", &sheet, &state, &server.uri());
    m.wait_for("a backlog of three rounds", Duration::from_secs(60), |v| {
        v["last_round"]["round"].as_u64().is_some_and(|r| r >= 3)
    });
    m.signal("TERM");
    assert!(m.wait_exit(Duration::from_secs(30)).is_some());
    drop(m);
    let before: HashMap<String, Vec<u64>> = {
        let store = Store::open(&state, RetentionPolicy::default()).unwrap();
        assert!(store.stats().unwrap().backlog >= 9);
        let reader = store.reader().unwrap();
        list.iter()
            .map(|t| {
                let rounds = reader.results(t, usize::MAX).unwrap();
                (t.clone(), rounds.iter().map(|r| r.round.0).collect())
            })
            .collect()
    };
    damage_the_outbox_index(&state);

    // The next round finds the damage; the file is moved aside.
    let m = monitor("closet-d", &sheet, &state, &server.uri());
    let aside = common::eventually(Duration::from_secs(60), Duration::from_millis(200), || {
        std::fs::read_dir(&state)
            .unwrap()
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().contains(".damaged-"))
    });
    assert!(aside.is_some(), "the damage was never found:\n{}", m.log());
    server.restart();
    drain_and_stop(m, 3);

    let upstream = upstream_rounds(&server.uri(), "closet-d");
    for t in &list {
        let got = upstream.get(t).cloned().unwrap_or_default();
        for r in &before[t] {
            assert!(
                got.contains(r),
                "{t}: round {r} of the damaged file never went up: {got:?}"
            );
        }
    }
    let store = Store::open(&state, RetentionPolicy::default()).unwrap();
    let events = store.reader().unwrap().events(None, 100).unwrap();
    assert!(
        events.iter().any(|e| e
            .detail
            .contains("unsent rows were carried into the new file")),
        "{events:#?}"
    );
}
