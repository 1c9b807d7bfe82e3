//! `edgeprobe central` under 300 concurrent requests, through the real
//! binary: against a database that stalls (every query slot held, the
//! rest told 429 with `Retry-After` instead of piling up), and against a
//! working one (every answer a page or a 429, and it serves normally
//! right after). The counts are checked, never the times.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fleet::{board, board_target, hour, insert, rollup};
use common::mongo::TestMongo;
use common::monitor::{try_request, try_request_from, Response, RunningMonitor};
use edgeprobe::clock::Timestamp;

const CONCURRENT: usize = 300;

/// The loopback addresses the burst comes from: 20 connections each, under
/// the 32 one client may hold, so that the query slots are what answers
/// 429 here.
const CLIENTS: usize = 15;

/// `CONCURRENT` GETs of `paths` (round robin) at once, one thread and one
/// connection each, from `CLIENTS` loopback addresses; what each got
/// back, or why it got nothing.
fn burst(addr: SocketAddr, paths: &[&str]) -> Vec<Result<Response, String>> {
    let threads: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let path = paths[i % paths.len()].to_string();
            std::thread::spawn(move || {
                let client = std::net::Ipv4Addr::new(127, 0, 1, 1 + (i % CLIENTS) as u8);
                try_request_from(client.into(), addr, "GET", &path, &[], b"")
                    .map_err(|e| format!("{path}: {e}"))
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("request thread"))
        .collect()
}

/// Every 429 says when to come back and why, in the form asked for.
fn assert_busy_is_well_formed(r: &Response) {
    assert_eq!(r.header("retry-after"), Some("2"), "{}", r.text());
    assert!(r.text().contains("central is busy"), "{}", r.text());
}

/// A MongoDB that accepts connections and never answers: every query
/// holds its slot until the driver gives up.
fn stalled_server() -> (SocketAddr, Arc<Mutex<Vec<TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            keep.lock().unwrap().push(conn);
        }
    });
    (addr, held)
}

#[test]
fn a_stalled_database_answers_429_beyond_the_slots_and_keeps_serving() {
    let (db, _held) = stalled_server();
    let uri = format!("mongodb://{db}/?serverSelectionTimeoutMS=8000&connectTimeoutMS=8000");
    let central = RunningMonitor::start_central(&["--mongo-uri", &uri, "--max-queries", "2"]);
    let results = burst(central.addr, &["/api/v1/availability?window=30d", "/"]);
    let mut busy = 0;
    let mut unavailable = 0;
    for r in &results {
        let r = r.as_ref().unwrap_or_else(|e| panic!("no answer: {e}"));
        match r.status {
            429 => {
                assert_busy_is_well_formed(r);
                busy += 1;
            }
            // The two that held the slots, once the driver gave up.
            503 => unavailable += 1,
            other => panic!("status {other}: {}", r.text()),
        }
    }
    assert!(unavailable <= 2, "{unavailable} got a slot; the cap is 2");
    assert_eq!(busy + unavailable, CONCURRENT);
    // What needs no query never waits for a slot.
    let style = try_request(central.addr, "GET", "/static/style.css", &[], b"").expect("style");
    assert_eq!(style.status, 200);
    let health = try_request(central.addr, "GET", "/healthz", &[], b"").expect("healthz");
    assert_eq!(health.status, 503, "{}", health.text());
    assert_eq!(health.json()["status"], "unavailable", "{}", health.text());
}

#[test]
fn three_hundred_requests_at_a_working_database_get_pages_or_429() {
    let nx = TestMongo::start();
    let now = Timestamp::now();
    let targets: Vec<String> = (1..=20).map(|i| format!("198.18.7.{i}")).collect();
    let entries = targets
        .iter()
        .map(|t| board_target(t, "switch", "working", now, None))
        .collect();
    insert(
        &nx.uri(),
        "boards",
        vec![board("closet-7", now, now, [20, 0, 0, 0], 0, entries)],
    );
    let rollups = targets
        .iter()
        .flat_map(|t| (0..720).map(move |h| rollup("closet-7", t, hour(now, h), 60, 1, 0)))
        .collect();
    insert(&nx.uri(), "rollups", rollups);
    let central = RunningMonitor::start_central(&["--mongo-uri", &nx.uri()]);
    let paths = [
        "/api/v1/availability?window=30d",
        "/availability?window=7d",
        "/boards/closet-7",
        "/",
        "/api/v1/boards",
    ];
    let results = burst(central.addr, &paths);
    let mut served = 0;
    for r in &results {
        let r = r.as_ref().unwrap_or_else(|e| panic!("no answer: {e}"));
        match r.status {
            200 => served += 1,
            429 => assert_busy_is_well_formed(r),
            other => panic!("status {other}: {}", r.text()),
        }
    }
    assert!(served > 0, "nothing was served");
    // After the burst it answers as before, with the exact figures.
    let after = common::eventually(Duration::from_secs(10), Duration::from_millis(200), || {
        try_request(
            central.addr,
            "GET",
            "/api/v1/availability?window=30d",
            &[],
            b"",
        )
        .ok()
        .filter(|r| r.status == 200)
    })
    .expect("served after the burst");
    let page = after.json();
    let rows = page["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 20);
    assert!(
        rows.iter()
            .all(|r| r["rounds"] == 720 * 60 && r["working"] == 720 * 59),
        "{page:#}"
    );
}
