//! A synthetic fleet in MongoDB for `bench/central.sh`, and the two
//! availability queries it compares, timed against the server directly.
//!
//!   seed_central --uri URI seed --boards B --targets T --days D [--from-board K] [--raw]
//!   seed_central --uri URI rollup-query [--page N] [--page-size M] [--repeat R]
//!   seed_central --uri URI raw-query [--days 30] [--repeat R]
//!
//! `seed` writes board documents (online: `last_seen` is now) whose
//! targets are `198.18.x.y` labels (nothing is probed), and for every
//! (board, target) one `rollups` document per hour of the last `D` days,
//! in the schema's shape (`edgeprobe::fleet::schema`; the fields of
//! `upstream::docs::rollup_doc`, written by hand because a `RollupItem`
//! carries the board store's private marks). With `--raw` it writes
//! `results` documents instead (`upstream::docs::result_doc`, one per
//! minute per pair) and no boards. `--from-board K` adds boards K.. to a
//! fleet already seeded with boards 0..K, so one database can grow.
//! Batches of `--batch` documents go through `insert_many`,
//! `--concurrency` at a time; progress and documents/s go to stderr.
//!
//! `rollup-query` runs the aggregation central sends for one page of
//! `/api/v1/availability?window=30d` (`central::pipeline::availability`
//! over the page's pairs, as `central::model::board_target_pairs` orders
//! them) and `raw-query` the one central sent before rollups (every
//! result of the window, grouped by board and target). Both print, as
//! `key=value` lines on stdout: the documents their `$match` selects
//! (counted with the same filter), the rows returned and the median wall
//! time of `--repeat` runs.

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use edgeprobe::central::model::{board_target_pairs, targets_by_board, Board, Window};
use edgeprobe::central::pipeline::{self, Scope};
use edgeprobe::clock::Timestamp;
use edgeprobe::fleet::schema::{self, Collection, BOARDS, ROLLUPS};
use edgeprobe::probe::{Gateway, RttSummary, Status};
use edgeprobe::store::rollup::{hour_start, HOUR_MS};
use edgeprobe::store::{ResultRecord, RoundId};
use edgeprobe::upstream::docs;
use futures::stream::{self, StreamExt, TryStreamExt};
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::{Client, Database, IndexModel};

#[derive(Parser)]
struct Args {
    /// mongodb://127.0.0.1:PORT (loopback only).
    #[arg(long)]
    uri: String,
    #[arg(long, default_value = "edgeprobe")]
    database: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Insert boards and their rollups (or raw results with --raw).
    Seed {
        #[arg(long)]
        boards: usize,
        #[arg(long)]
        targets: usize,
        #[arg(long)]
        days: i64,
        /// The first board to write: boards before it are already there.
        #[arg(long, default_value_t = 0)]
        from_board: usize,
        /// Raw `results`, one per pair and interval, instead of rollups.
        #[arg(long)]
        raw: bool,
        /// Seconds between a pair's raw results.
        #[arg(long, default_value_t = 60)]
        interval: i64,
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
        #[arg(long, default_value_t = 3)]
        concurrency: usize,
    },
    /// Time central's rollup aggregation for one availability page.
    RollupQuery {
        #[arg(long, default_value_t = 1)]
        page: usize,
        #[arg(long, default_value_t = 100)]
        page_size: usize,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// Time the old aggregation over every raw result of the window.
    RawQuery {
        #[arg(long, default_value_t = 30)]
        days: u64,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
}

fn board_id(b: usize) -> String {
    format!("bench-{b:04}")
}

/// The `t`-th target label: 198.18.0.1, ..., 198.18.0.250, 198.18.1.1, ...
fn target(t: usize) -> String {
    format!("198.18.{}.{}", t / 250, t % 250 + 1)
}

/// A deterministic mix: most hours all working, some degraded rounds,
/// now and then an outage.
fn hour_counts(b: usize, t: usize, h: i64) -> (i64, i64, i64) {
    let k = (b as i64 * 7919 + t as i64 * 104_729 + h).rem_euclid(97);
    match k {
        0 => (60, 0, 60),
        1..=4 => (60, 5, 0),
        _ => (60, 0, 0),
    }
}

fn at(ms: i64) -> Bson {
    Bson::DateTime(DateTime::from_millis(ms))
}

fn rollup(b: usize, t: usize, hour_ms: i64, now: Timestamp) -> Document {
    let (board, target) = (board_id(b), target(t));
    let (rounds, degraded, not_working) = hour_counts(b, t, hour_ms / HOUR_MS);
    let answered = rounds - not_working;
    doc! {
        "_id": schema::rollup_id(&board, &target, Timestamp(hour_ms)),
        "board": board, "target": target,
        "hour": at(hour_ms), "hour_ms": hour_ms,
        "rounds": rounds, "working": answered - degraded, "degraded": degraded,
        "not_working": not_working,
        "rtt_sum_ms": 0.25 * answered as f64, "rtt_rounds": answered,
        "board_clock": at(now.millis()),
    }
}

fn result(b: usize, t: usize, round: u64, ts_ms: i64) -> Document {
    let (_, _, not_working) = hour_counts(b, t, ts_ms / HOUR_MS);
    let (status, rtt) = if not_working > 0 {
        (Status::NotWorking, None)
    } else {
        let rtt = RttSummary {
            min: 0.2,
            avg: 0.25,
            max: 0.3,
            mdev: 0.05,
        };
        (Status::Working, Some(rtt))
    };
    let r = ResultRecord {
        target: target(t),
        round: RoundId(round),
        ts: Timestamp(ts_ms),
        name: Some(format!("host {t}")),
        group: Some("bench".into()),
        status,
        reported: status,
        sent: 3,
        received: if rtt.is_some() { 3 } else { 0 },
        loss: if rtt.is_some() { 0.0 } else { 1.0 },
        rtt,
        gateway: rtt.map(|_| Gateway::Direct),
    };
    docs::result_doc(&board_id(b), &r)
}

/// A board document as the sync writes it (`upstream::docs::board_doc`
/// plus `first_seen`), seen just now, every target working.
fn board_doc(b: usize, targets: usize, now: Timestamp) -> Document {
    let id = board_id(b);
    let now_ms = now.millis();
    let entries: Vec<Bson> = (0..targets)
        .map(|t| {
            Bson::Document(doc! {
                "target": target(t), "name": format!("host {t}"), "group": "bench",
                "status": "working", "since": at(now_ms - 86_400_000),
                "last_updated": at(now_ms), "loss": 0.0, "rtt_avg": 0.25,
                "gateway": "direct", "cause": Bson::Null,
            })
        })
        .collect();
    doc! {
        "_id": &id, "name": &id, "site": Bson::Null, "version": "0.1.0",
        "started_at": at(now_ms - 86_400_000), "last_seen": at(now_ms),
        "interval_s": 60.0,
        "counts": { "working": targets as i64, "degraded": 0_i64, "not_working": 0_i64, "pending": 0_i64 },
        "backlog": 0_i64, "oldest_unsynced": Bson::Null, "upstream_state": "synced",
        "targets": entries,
        "first_seen": at(now_ms - 40 * 86_400_000),
    }
}

/// The schema's indexes of `collection` (what boards and central create).
async fn ensure_indexes(db: &Database, collection: &str) {
    for (name, keys) in schema::indexes() {
        if name != collection {
            continue;
        }
        for k in keys {
            db.collection::<Document>(name)
                .create_index(IndexModel::builder().keys(k).build())
                .await
                .unwrap_or_else(|e| panic!("index on {name}: {e}"));
        }
    }
}

/// Insert what `make` builds for each item index `0..n`, `batch` at a
/// time and `concurrency` batches at once; prints progress.
async fn insert_all(
    db: &Database,
    collection: &str,
    n: usize,
    batch: usize,
    concurrency: usize,
    make: impl Fn(usize) -> Document + Sync,
) -> (usize, Duration) {
    let coll = db.collection::<Document>(collection);
    let started = Instant::now();
    let batches = n.div_ceil(batch);
    let mut done = 0usize;
    let mut last_report = Instant::now();
    let make = &make;
    let mut inserts = stream::iter(0..batches)
        .map(|i| {
            let coll = coll.clone();
            let docs: Vec<Document> = (i * batch..((i + 1) * batch).min(n)).map(make).collect();
            async move {
                let len = docs.len();
                coll.insert_many(docs)
                    .await
                    .unwrap_or_else(|e| panic!("insert into {collection}: {e}"));
                len
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(len) = inserts.next().await {
        done += len;
        if last_report.elapsed() >= Duration::from_secs(10) || done == n {
            last_report = Instant::now();
            let s = started.elapsed().as_secs_f64();
            eprintln!(
                "seed_central: {collection}: {done}/{n} documents in {s:.0} s, {:.0} documents/s",
                done as f64 / s
            );
        }
    }
    (done, started.elapsed())
}

#[allow(clippy::too_many_arguments)]
async fn seed(
    db: &Database,
    boards: usize,
    targets: usize,
    days: i64,
    from_board: usize,
    raw: bool,
    interval: i64,
    batch: usize,
    concurrency: usize,
) {
    let now = Timestamp::now();
    let new_boards = boards.saturating_sub(from_board);
    let pairs = new_boards * targets;
    let (collection, per_pair, n, elapsed) = if raw {
        ensure_indexes(db, Collection::Results.name()).await;
        let per_pair = (days * 86_400 / interval) as usize;
        let first = now.millis() - (per_pair as i64 - 1) * interval * 1000;
        // Pair-major order within a round: like boards syncing side by side.
        let (n, elapsed) = insert_all(
            db,
            Collection::Results.name(),
            pairs * per_pair,
            batch,
            concurrency,
            |i| {
                let (round, pair) = (i / pairs, i % pairs);
                let (b, t) = (from_board + pair / targets, pair % targets);
                result(
                    b,
                    t,
                    round as u64 + 1,
                    first + round as i64 * interval * 1000,
                )
            },
        )
        .await;
        (Collection::Results.name(), per_pair, n, elapsed)
    } else {
        ensure_indexes(db, BOARDS).await;
        ensure_indexes(db, ROLLUPS).await;
        let docs: Vec<Document> = (from_board..boards)
            .map(|b| board_doc(b, targets, now))
            .collect();
        if !docs.is_empty() {
            db.collection::<Document>(BOARDS)
                .insert_many(docs)
                .await
                .unwrap_or_else(|e| panic!("insert boards: {e}"));
        }
        let per_pair = (days * 24) as usize;
        let current = hour_start(now).millis();
        let first = current - (per_pair as i64 - 1) * HOUR_MS;
        let (n, elapsed) = insert_all(db, ROLLUPS, pairs * per_pair, batch, concurrency, |i| {
            let (pair, h) = (i / per_pair, i % per_pair);
            let (b, t) = (from_board + pair / targets, pair % targets);
            rollup(b, t, first + h as i64 * HOUR_MS, now)
        })
        .await;
        (ROLLUPS, per_pair, n, elapsed)
    };
    let s = elapsed.as_secs_f64();
    println!("collection={collection}");
    println!("boards={new_boards}");
    println!("targets={targets}");
    println!("per_pair={per_pair}");
    println!("inserted={n}");
    println!("seconds={s:.1}");
    println!("docs_per_s={:.0}", n as f64 / s);
}

/// Median wall time in ms of `repeat` runs of `pipeline`, and the rows
/// of the last.
async fn time_aggregate(
    db: &Database,
    collection: &str,
    pipeline: &[Document],
    repeat: usize,
) -> (f64, Vec<Document>) {
    let coll = db.collection::<Document>(collection);
    let mut times = Vec::new();
    let mut rows = Vec::new();
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let out: Vec<Document> = coll
            .aggregate(pipeline.to_vec())
            .await
            .unwrap_or_else(|e| panic!("aggregate {collection}: {e}"))
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("aggregate {collection}: {e}"));
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        rows = out;
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], rows)
}

fn print_query(pairs: usize, docs: u64, rows: usize, median_ms: f64) {
    println!("pairs={pairs}");
    println!("docs={docs}");
    println!("rows={rows}");
    println!("median_ms={median_ms:.1}");
}

/// The documents `filter` selects, counted by the server's `$count`.
/// An `$or` is counted clause by clause (central's clauses are disjoint:
/// one per board): nx-27017 runs a `$match` with `$or` as a scan of the
/// whole collection in Python, a plain one in SQL.
async fn count(db: &Database, collection: &str, filter: &Document) -> u64 {
    if let Ok(clauses) = filter.get_array("$or") {
        let mut n = 0;
        for c in clauses {
            let c = c.as_document().expect("an $or clause is a document");
            n += Box::pin(count(db, collection, c)).await;
        }
        return n;
    }
    let out: Vec<Document> = db
        .collection::<Document>(collection)
        .aggregate(vec![
            doc! { "$match": filter.clone() },
            doc! { "$count": "n" },
        ])
        .await
        .unwrap_or_else(|e| panic!("count {collection}: {e}"))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("count {collection}: {e}"));
    out.first().map_or(0, |d| match d.get("n") {
        Some(Bson::Int32(n)) => *n as u64,
        Some(Bson::Int64(n)) => *n as u64,
        Some(Bson::Double(n)) => *n as u64,
        _ => 0,
    })
}

async fn rollup_query(db: &Database, page: usize, page_size: usize, repeat: usize) {
    let boards: Vec<Board> = db
        .collection::<Document>(BOARDS)
        .find(doc! {})
        .await
        .unwrap_or_else(|e| panic!("boards: {e}"))
        .try_collect::<Vec<Document>>()
        .await
        .unwrap_or_else(|e| panic!("boards: {e}"))
        .iter()
        .filter_map(Board::from_doc)
        .collect();
    let pairs = board_target_pairs(&boards);
    let start = (page.max(1) - 1) * page_size;
    let on_page = &pairs[start.min(pairs.len())..(start + page_size).min(pairs.len())];
    let first_hour = Window::Month.first_hour(Timestamp::now());
    // What central sends for a page: one aggregation per board on it.
    let by_board = targets_by_board(on_page);
    let mut docs = 0;
    for (b, ts) in &by_board {
        let stages = pipeline::availability(Scope::BoardTargets(b, ts), first_hour);
        let filter = stages[0].get_document("$match").expect("match").clone();
        docs += count(db, ROLLUPS, &filter).await;
    }
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        rows = 0;
        for (b, ts) in &by_board {
            let stages = pipeline::availability(Scope::BoardTargets(b, ts), first_hour);
            let out: Vec<Document> = db
                .collection::<Document>(ROLLUPS)
                .aggregate(stages)
                .await
                .unwrap_or_else(|e| panic!("aggregate rollups: {e}"))
                .try_collect()
                .await
                .unwrap_or_else(|e| panic!("aggregate rollups: {e}"));
            rows += out.len();
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!("fleet_pairs={}", pairs.len());
    print_query(on_page.len(), docs, rows, times[times.len() / 2]);
}

/// What central ran before rollups (its pipeline up to commit b36c12c):
/// every result of the window, grouped per (board, target).
fn raw_availability(since: Timestamp) -> Vec<Document> {
    let available = doc! { "$cond": [ { "$ne": ["$status", "not_working"] }, 1, 0 ] };
    vec![
        doc! { "$match": { "ts": { "$gte": pipeline::bson_time(since) } } },
        doc! { "$group": {
            "_id": { "$concat": ["$board", "\u{1f}", "$target"] },
            "board": { "$max": "$board" },
            "target": { "$max": "$target" },
            "rounds": { "$sum": 1 },
            "working": { "$sum": available.clone() },
            "availability": { "$avg": available },
        } },
    ]
}

async fn raw_query(db: &Database, days: u64, repeat: usize) {
    let since = Timestamp::now().sub(Duration::from_secs(days * 86_400));
    let stages = raw_availability(since);
    let filter = stages[0].get_document("$match").expect("match").clone();
    let results = Collection::Results.name();
    let docs = count(db, results, &filter).await;
    let (median, rows) = time_aggregate(db, results, &stages, repeat).await;
    print_query(rows.len(), docs, rows.len(), median);
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let client = Client::with_uri_str(&args.uri)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", args.uri));
    let db = client.database(&args.database);
    match args.command {
        Command::Seed {
            boards,
            targets,
            days,
            from_board,
            raw,
            interval,
            batch,
            concurrency,
        } => {
            seed(
                &db,
                boards,
                targets,
                days,
                from_board,
                raw,
                interval,
                batch,
                concurrency,
            )
            .await
        }
        Command::RollupQuery {
            page,
            page_size,
            repeat,
        } => rollup_query(&db, page, page_size, repeat).await,
        Command::RawQuery { days, repeat } => raw_query(&db, days, repeat).await,
    }
}
