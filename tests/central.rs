//! `edgeprobe central` end to end: a real MongoDB-compatible server
//! (nx-27017, in memory, on 127.0.0.1), documents of two boards written in
//! the upstream contract's shape with the mongodb crate, the real binary,
//! and plain HTTP against it. Then the server goes away: banners, 503s,
//! and never a credential in any of it.

mod common;

use std::time::Duration;

use common::fleet::{ago, board, board_target, event, hour, rollup};
use common::mongo::TestMongo;
use common::monitor::{free_port, request, Response, RunningMonitor};
use edgeprobe::clock::Timestamp;
use mongodb::bson::Document;
use serde_json::{json, Value};

/// The fleet the test reads back:
/// - closet-1 (seen 1 s ago: online) and closet-3 (seen an hour ago with
///   a 60 s interval: offline), both monitoring 198.19.0.1;
/// - closet-1/198.19.0.1: 10 rounds in the current hour, 3 of them
///   not_working (7 count: 5 working, 2 degraded), plus one not_working
///   round 3 days ago (in 7 d, not in 24 h);
/// - closet-1/2001:db8::1: 2 degraded in 24 h, one working 10 days ago;
/// - closet-3/198.19.0.1: 4 not_working in 24 h;
/// - closet-1 also sent a rollup for an hour 5 h ahead, for a target it
///   no longer lists: its clock ran ahead.
fn seed(uri: &str, now: Timestamp) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(uri).await.expect("client");
        let db = client.database("edgeprobe");
        let rollups = vec![
            rollup("closet-1", "198.19.0.1", hour(now, 0), 10, 3, 2),
            rollup("closet-1", "198.19.0.1", hour(now, 72), 1, 1, 0),
            rollup("closet-1", "2001:db8::1", hour(now, 0), 2, 0, 2),
            rollup("closet-1", "2001:db8::1", hour(now, 240), 1, 0, 0),
            rollup("closet-3", "198.19.0.1", hour(now, 0), 4, 4, 0),
            rollup("closet-1", "198.19.0.200", hour(now, -5), 1, 0, 0),
        ];
        let boards = vec![
            board(
                "closet-1",
                now,
                ago(now, 1),
                [1, 1, 0, 0],
                0,
                vec![
                    board_target("198.19.0.1", "core switch", "working", now, None),
                    board_target("2001:db8::1", "v6 router", "degraded", now, None),
                ],
            ),
            board(
                "closet-3",
                now,
                ago(now, 3600),
                [0, 0, 1, 0],
                42,
                vec![board_target(
                    "198.19.0.1",
                    "<script>alert('x')</script>",
                    "not_working",
                    now,
                    Some("no reply from 198.19.0.1"),
                )],
            ),
        ];
        let events = vec![
            event(
                "closet-1",
                "198.19.0.1",
                ago(now, 300),
                "older closet-1 event",
            ),
            event(
                "closet-1",
                "198.19.0.1",
                ago(now, 100),
                "newer closet-1 event",
            ),
            event("closet-3", "198.19.0.1", ago(now, 200), "closet-3 event"),
        ];
        for (name, docs) in [("rollups", rollups), ("boards", boards), ("events", events)] {
            db.collection::<Document>(name)
                .insert_many(docs)
                .await
                .unwrap_or_else(|e| panic!("insert {name}: {e:?}"));
        }
    });
}

fn get(central: &RunningMonitor, path: &str) -> Response {
    request(central.addr, "GET", path, &[], b"")
}

fn get_json(central: &RunningMonitor, path: &str) -> Value {
    let r = get(central, path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

/// A pair's row of an availability page, with the fields the test pins.
fn row(page: &Value, board: &str, target: &str) -> Value {
    let r = page["rows"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["board"] == board && r["target"] == target)
        })
        .unwrap_or_else(|| panic!("no row {board} {target} in {page:#}"));
    json!({
        "rounds": r["rounds"], "working": r["working"], "degraded": r["degraded"],
        "availability": r["availability"],
    })
}

/// The TTL of the index on `field` of `collection`, once central made it.
fn ttl_of(uri: &str, collection: &str, field: &str) -> Option<i64> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        use futures::TryStreamExt;
        let client = mongodb::Client::with_uri_str(uri).await.expect("client");
        let coll = client
            .database("edgeprobe")
            .collection::<Document>(collection);
        let indexes: Vec<_> = coll.list_indexes().await.ok()?.try_collect().await.ok()?;
        indexes.iter().find_map(|i| {
            let keys: Vec<&String> = i.keys.keys().collect();
            let ttl = i.options.as_ref()?.expire_after?;
            (keys == [field]).then_some(ttl.as_secs() as i64)
        })
    })
}

#[test]
fn central_reads_the_fleet_from_mongodb() {
    let mut nx = TestMongo::start();
    let now = Timestamp::now();
    seed(&nx.uri(), now);
    let central = RunningMonitor::start_command(&[
        "central",
        "--mongo-uri",
        &nx.uri(),
        "--listen",
        "127.0.0.1:0",
    ]);

    // Boards: one online, one offline by last_seen; a page in id order.
    let page = get_json(&central, "/api/v1/boards");
    assert_eq!(
        (
            &page["page"],
            &page["pages"],
            &page["total"],
            &page["page_size"]
        ),
        (&json!(1), &json!(1), &json!(2), &json!(100)),
        "{page:#}"
    );
    let boards = &page["boards"];
    assert_eq!(boards.as_array().map(Vec::len), Some(2), "{boards:#}");
    assert_eq!(boards[0]["board"], "closet-1");
    assert_eq!(boards[0]["online"], true);
    assert_eq!(
        boards[0]["counts"],
        json!({"working": 1, "degraded": 1, "not_working": 0, "pending": 0})
    );
    assert_eq!(boards[0]["version"], "0.1.0");
    assert_eq!(boards[0]["interval_s"], 60.0);
    assert_eq!(boards[0]["last_seen"], json!(ago(now, 1).rfc3339()));
    assert_eq!(boards[1]["board"], "closet-3");
    assert_eq!(boards[1]["online"], false);
    assert_eq!(boards[1]["backlog"], 42);
    let second = get_json(&central, "/api/v1/boards?page=2&page_size=1");
    assert_eq!(second["boards"][0]["board"], "closet-3");
    assert_eq!(second["pages"], 2);
    let beyond = get(&central, "/api/v1/boards?page=3&page_size=1");
    assert_eq!(beyond.status, 400, "{}", beyond.text());
    assert!(
        beyond.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("use page=1 to page=2")),
        "{}",
        beyond.text()
    );
    let huge = get(&central, "/api/v1/availability?page_size=100000");
    assert_eq!(huge.status, 400, "an unbounded page is refused");

    // Availability over 24 h, computed by the server from the rollups,
    // for each pair the boards list, to the digit.
    let day = get_json(&central, "/api/v1/availability?window=24h");
    assert_eq!(day["rows"].as_array().map(Vec::len), Some(3), "{day:#}");
    assert_eq!(day["window"], "24h");
    assert_eq!(
        row(&day, "closet-1", "198.19.0.1"),
        json!({"rounds": 10, "working": 7, "degraded": 2, "availability": 0.7})
    );
    assert_eq!(
        row(&day, "closet-1", "2001:db8::1"),
        json!({"rounds": 2, "working": 2, "degraded": 2, "availability": 1.0})
    );
    assert_eq!(
        row(&day, "closet-3", "198.19.0.1"),
        json!({"rounds": 4, "working": 0, "degraded": 0, "availability": 0.0})
    );
    let first = day["rows"][0].clone();
    assert_eq!(first["rtt_avg_ms"], 0.2);
    assert_eq!(
        get_json(&central, "/api/v1/availability"),
        day,
        "24h is the default"
    );
    let paged = get_json(&central, "/api/v1/availability?page=2&page_size=2");
    assert_eq!(paged["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(paged["rows"][0]["board"], "closet-3");

    // 7 d takes in the 3-day-old round; 30 d the 10-day-old one too.
    let week = get_json(&central, "/api/v1/availability?window=7d");
    let r = row(&week, "closet-1", "198.19.0.1");
    assert_eq!(
        (r["rounds"].as_u64(), r["working"].as_u64()),
        (Some(11), Some(7))
    );
    let a = r["availability"].as_f64().expect("fraction");
    assert!((a - 7.0 / 11.0).abs() < 1e-12, "{a}");
    assert_eq!(row(&week, "closet-1", "2001:db8::1")["rounds"], 2);
    let month = get_json(&central, "/api/v1/availability?window=30d");
    assert_eq!(row(&month, "closet-1", "2001:db8::1")["rounds"], 3);

    let bad = get(&central, "/api/v1/availability?window=1y");
    assert_eq!(bad.status, 400, "{}", bad.text());
    let bad = bad.json();
    assert!(
        bad["error"]
            .as_str()
            .is_some_and(|e| e.contains("24h") && e.contains("30d")),
        "{bad}"
    );
    assert_eq!(bad["allowed"], json!(["24h", "7d", "30d"]));
    assert_eq!(get(&central, "/availability?window=1y").status, 400);

    // One target across boards; IPv6 raw or percent-encoded.
    let t = get_json(&central, "/api/v1/targets/198.19.0.1");
    assert_eq!(t["target"], "198.19.0.1");
    assert_eq!(t["boards"][0]["board"], "closet-1");
    assert_eq!(t["boards"][0]["status"], "working");
    assert_eq!(t["boards"][0]["availability"]["24h"]["availability"], 0.7);
    assert_eq!(t["boards"][0]["availability"]["7d"]["rounds"], 11);
    assert_eq!(t["boards"][1]["board"], "closet-3");
    assert_eq!(t["boards"][1]["online"], false);
    assert_eq!(t["boards"][1]["status"], "not_working");
    assert_eq!(t["boards"][1]["cause"], "no reply from 198.19.0.1");
    let v6 = get_json(&central, "/api/v1/targets/2001%3Adb8%3A%3A1");
    assert_eq!(v6["target"], "2001:db8::1");
    assert_eq!(v6["boards"][0]["availability"]["30d"]["rounds"], 3);
    assert_eq!(get(&central, "/api/v1/targets/192.0.2.99").status, 404);

    // The pages.
    let index = get(&central, "/");
    assert_eq!(index.status, 200, "{}", index.text());
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(index
        .header("content-security-policy")
        .is_some_and(|c| c.starts_with("default-src 'none'")));
    let html = index.text();
    for needle in [
        "href=\"/boards/closet-1\"",
        "href=\"/boards/closet-3\"",
        "href=\"/targets/2001:db8::1\"",
        ">Online<",
        ">Offline<",
        // 198.19.0.1 is down on closet-3, up on closet-1.
        "Not Working</span> on <a href=\"/boards/closet-3\">closet-3</a>",
        "Working</span> on <a href=\"/boards/closet-1\">closet-1</a>",
    ] {
        assert!(html.contains(needle), "/ lacks {needle}:\n{html}");
    }
    assert!(!html.contains("<script>"), "unescaped name:\n{html}");

    let page = get(&central, "/boards/closet-1");
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    for needle in [
        "S.No",
        "Default Gateway",
        "core switch",
        "v6 router",
        "2001:db8::1",
        "direct",
    ] {
        assert!(
            html.contains(needle),
            "/boards/closet-1 lacks {needle}:\n{html}"
        );
    }
    let newer = html.find("newer closet-1 event").expect("newer event");
    let older = html.find("older closet-1 event").expect("older event");
    assert!(newer < older, "events newest first");
    assert!(!html.contains("closet-3 event"), "another board's event");
    let page = get(&central, "/boards/closet-3");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("no reply from 198.19.0.1"));
    assert!(page.text().contains("42 rows not yet synced"));
    assert_eq!(get(&central, "/boards/nope").status, 404);

    let page = get(&central, "/targets/198.19.0.1");
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(
        html.contains("href=\"/boards/closet-1\"") && html.contains("href=\"/boards/closet-3\"")
    );
    assert!(
        html.contains("70 %") && html.contains("7/10 rounds"),
        "{html}"
    );
    let page = get(&central, "/targets/2001%3Adb8%3A%3A1");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("v6 router"));

    let page = get(&central, "/availability?window=7d");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("63.6 %"), "{}", page.text());

    // The charts: 30 daily bars on the board page, and one per board on
    // the target page; the board whose clock runs ahead is flagged.
    let html = get(&central, "/boards/closet-1").text();
    assert_eq!(html.matches("<rect").count(), 30, "{html}");
    assert!(html.contains("runs ahead"), "{html}");
    let html = get(&central, "/targets/198.19.0.1").text();
    assert_eq!(html.matches("<svg").count(), 2, "{html}");
    let html = get(&central, "/").text();
    assert!(
        html.contains("The clock of <a href=\"/boards/closet-1\">closet-1</a> runs ahead"),
        "{html}"
    );
    // Search across the fleet, by name here.
    let html = get(&central, "/?q=v6+ROUTER").text();
    assert!(
        html.contains("2001:db8::1") && !html.contains(">198.19.0.1<"),
        "{html}"
    );

    // Central made the TTL indexes: raw results 14 days, rollups 400.
    let uri = nx.uri();
    let ttl = common::eventually(Duration::from_secs(10), Duration::from_millis(200), || {
        ttl_of(&uri, "results", "ts")
    });
    assert_eq!(ttl, Some(14 * 86_400), "{}", central.log());
    assert_eq!(ttl_of(&uri, "rollups", "hour"), Some(400 * 86_400));
    assert_eq!(get(&central, "/static/style.css").status, 200);
    let health = get_json(&central, "/healthz");
    assert_eq!(health["status"], "ok");
    let post = request(central.addr, "POST", "/", &[], b"");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    // MongoDB goes away: pages still render, with a banner; JSON says 503.
    nx.stop();
    let health = get(&central, "/healthz");
    assert_eq!(health.status, 503, "{}", health.text());
    let why = health.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        why.contains(&format!("127.0.0.1:{}", nx.port)),
        "names the server: {why}"
    );
    // The board list is a summary up to 5 s old; then it is read again.
    let index = common::eventually(Duration::from_secs(15), Duration::from_millis(250), || {
        let r = get(&central, "/");
        (r.status == 503).then_some(r)
    })
    .expect("the fleet page says 503 once its summary is stale");
    assert!(index.text().contains("role=\"alert\""), "{}", index.text());
    assert_eq!(get(&central, "/api/v1/boards").status, 503);
}

#[test]
fn credentials_never_show() {
    // Nothing listens on this port: every read fails, and every failure
    // is reported. The URI comes from a file, as it would in production.
    let port = free_port();
    let password = "hunter2-Secret";
    let uri = format!(
        "mongodb://ops:{password}@127.0.0.1:{port}/edgeprobe?authSource=admin&serverSelectionTimeoutMS=500"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mongo-uri");
    std::fs::write(&file, format!("{uri}\n")).expect("write uri file");
    let central = RunningMonitor::start_command(&[
        "central",
        "--mongo-uri-file",
        file.to_str().expect("utf-8 path"),
        "--listen",
        "127.0.0.1:0",
    ]);
    for path in [
        "/healthz",
        "/",
        "/api/v1/boards",
        "/boards/x",
        "/targets/198.19.0.1",
        "/api/v1/availability",
    ] {
        let r = get(&central, path);
        assert_eq!(r.status, 503, "{path}: {}", r.text());
        let body = r.text();
        assert!(
            !body.contains(password) && !body.contains("ops:"),
            "{path} leaks:\n{body}"
        );
        assert!(
            body.contains(&format!("127.0.0.1:{port}")),
            "{path} names the server:\n{body}"
        );
    }
    let log = central.log();
    assert!(!log.contains(password), "stderr leaks:\n{log}");

    // `--help` must not print the URI from the environment either.
    let help = common::edgeprobe()
        .args(["central", "--help"])
        .env("EDGEPROBE_MONGO_URI", &uri)
        .output()
        .expect("run --help");
    assert!(!String::from_utf8_lossy(&help.stdout).contains(password));

    // A bad connection string stops it at start, without the password.
    let out = common::edgeprobe()
        .args(["central", "--listen", "127.0.0.1:0", "--mongo-uri"])
        .arg(format!(
            "mongodb://ops:{password}@127.0.0.1:{port}/?connectTimeoutMS=soon"
        ))
        .output()
        .expect("run central");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not valid") && !err.contains(password),
        "{err}"
    );
}
