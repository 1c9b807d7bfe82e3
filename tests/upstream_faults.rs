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
