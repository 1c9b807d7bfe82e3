//! Insert throughput of the upstream sync's MongoDB adapter, for
//! `bench/upstream.sh`: result documents as the sync builds them, sent in
//! batches of 500 (what the sync does) and one per insert (the peer).
//!
//!   sync_throughput mongodb://127.0.0.1:PORT

use std::time::Instant;

use edgeprobe::clock::Timestamp;
use edgeprobe::fleet::Collection;
use edgeprobe::probe::{Gateway, RttSummary, Status};
use edgeprobe::store::{ResultRecord, RoundId};
use edgeprobe::upstream::{docs, MongoUpstream, Upstream};

fn result(board_round: u64, i: usize) -> ResultRecord {
    ResultRecord {
        target: format!("127.4.{}.{}", i / 250, i % 250 + 1),
        round: RoundId(board_round),
        ts: Timestamp::now(),
        name: Some(format!("host {i}")),
        group: Some("rack 1".into()),
        status: Status::Working,
        reported: Status::Working,
        sent: 3,
        received: 3,
        loss: 0.0,
        rtt: Some(RttSummary {
            min: 0.1,
            avg: 0.2,
            max: 0.3,
            mdev: 0.05,
        }),
        gateway: Some(Gateway::Direct),
    }
}

/// Insert `n` fresh result documents `per_insert` at a time; documents/s.
async fn measure(up: &MongoUpstream, board: &str, n: usize, per_insert: usize) -> f64 {
    let docs: Vec<_> = (0..n)
        .map(|i| docs::result_doc(board, &result(1 + (i / 1000) as u64, i % 1000)))
        .collect();
    let started = Instant::now();
    for chunk in docs.chunks(per_insert) {
        up.insert(Collection::Results, chunk.to_vec())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let uri = std::env::args()
        .nth(1)
        .expect("usage: sync_throughput mongodb://127.0.0.1:PORT");
    let up = MongoUpstream::new(&uri, "edgeprobe_bench").unwrap_or_else(|e| panic!("{e}"));
    up.ensure_indexes().await.unwrap_or_else(|e| panic!("{e}"));
    let batched = measure(&up, "bench-batched", 20_000, 500).await;
    let single = measure(&up, "bench-single", 2_000, 1).await;
    println!("batches of 500: {batched:.0} documents/s (20,000 documents)");
    println!("one per insert: {single:.0} documents/s (2,000 documents)");
    println!("ratio batched / one by one: {:.1}x", batched / single);
}
