//! The fleet's MongoDB schema: what the boards' sync (`crate::upstream`)
//! writes and the fleet dashboard (`crate::central`) reads. THE SCHEMA IS
//! A CONTRACT between them: the collection names, the `_id` formats, the
//! board status document and the indexes are defined here once; the
//! writer is `upstream::docs`, the reader `central::model`.
//!
//! Every document has a deterministic `_id`, so sending one twice (an
//! acknowledgement lost, a crash between insert and `mark_synced`) is a
//! duplicate key, not a second copy.
//!
//! Types: timestamps are BSON dates (UTC ms); counters and round numbers
//! are 64-bit integers (a round number above `i64::MAX` is stored as
//! `i64::MAX`); hop TTLs are 32-bit integers; RTTs are doubles in ms;
//! statuses are `"working"`, `"degraded"` or `"not_working"`; an unknown
//! value is `null`, never a missing field.
//!
//! - `results`: `{_id: "<board>/<target>/<round>/<ts ms>", board, target, name,
//!   group, round, ts, status, reported, sent, received, loss,
//!   rtt: {min, avg, max, mdev} | null, gateway: "<ip>" | "direct" | null}`;
//!   `status` is the round's own verdict, `reported` the smoothed one.
//!   `name` and `group` are the target's labels when the row was sent.
//! - `traces`: `{_id: "<board>/<target>/<round>/<ts ms>", board, target, round, ts,
//!   hops: [{ttl, addr | null, rtt_ms | null}], reached}`.
//! - `events`: `{_id: "<board>/<ts ms>/<target or '-'>/<kind>/<hash>",
//!   board, target | null, ts, kind, from | null, to | null, detail}`;
//!   `<hash>` is 16 hex digits of FNV-1a over `from`, `to` and `detail`,
//!   because one round can hold two events of one kind for the board
//!   itself (both of its gateways going down), which would otherwise share
//!   an `_id` and the second would be taken for a resend and lost.
//! - `boards`: `{_id: <board>, name, site: null, version, started_at,
//!   last_seen, interval_s, counts: {working, degraded, not_working,
//!   pending}, backlog, oldest_unsynced | null, upstream_state, targets:
//!   [{target, name, group, status, since, last_updated, loss, rtt_avg,
//!   gateway, cause}], first_seen}`, written with
//!   `upstream::docs::board_update`: everything but `first_seen` in
//!   `$set`, `first_seen` in `$setOnInsert`; what it says beyond the
//!   snapshot is a [`BoardStatus`].
//! - `rollups` ([`ROLLUPS`]): `{_id: "<board>/<target>/<hour ms>", board,
//!   target, hour, hour_ms, rounds, working, degraded, not_working,
//!   rtt_sum_ms, rtt_rounds, board_clock}`: one target's rounds in one UTC
//!   hour by their own verdict, as the board's store counts them
//!   (`crate::store::rollup`). `hour` is the hour's start as a date (what
//!   the TTL index expires by), `hour_ms` the same instant as a 64-bit
//!   integer (what queries range over: nx-27017, the test server, keeps a
//!   date written by an update as text, which compares as no date does);
//!   `rtt_sum_ms` adds up the rounds' average RTTs, over `rtt_rounds`
//!   rounds; `board_clock` is the board's clock when it sent the row.
//!   Written by `upstream::docs::rollup_doc` as a whole-document upsert of
//!   absolute values, never an increment: sending a row twice, late, or
//!   again after a restart leaves the same document.
//! - `alert_claims` ([`ALERT_CLAIMS`]): written by central only, one
//!   document per board outage, `_id: "board-offline/<board>/<last_seen
//!   ms>"`; how central replicas agree on who sends its messages. Its
//!   fields are described in `central::claims`.

use mongodb::bson::{doc, Document};

use crate::clock::Timestamp;
use crate::store::{EventRecord, RoundId};

/// The collections the outbox drains into (the board's own document goes
/// through `upstream::Upstream::upsert_board`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collection {
    Results,
    Traces,
    Events,
}

impl Collection {
    /// Every collection, in the order a batch is sent.
    pub const ALL: [Collection; 3] = [Collection::Results, Collection::Traces, Collection::Events];

    /// The collection's name in the database.
    pub fn name(self) -> &'static str {
        match self {
            Collection::Results => "results",
            Collection::Traces => "traces",
            Collection::Events => "events",
        }
    }
}

/// The name of the collection of board documents.
pub const BOARDS: &str = "boards";

/// The name of the collection of hourly rollups.
pub const ROLLUPS: &str = "rollups";

/// The collection where central replicas claim board-offline alerts
/// (`central::claims`); the boards never read or write it.
pub const ALERT_CLAIMS: &str = "alert_claims";

/// The indexes of central's queries, which the boards create too (so a
/// fleet without central yet is ready for it). The TTL indexes that
/// expire old documents are central's alone (`central::indexes`): their
/// lifetimes are its settings.
///
/// | collection | keys | for |
/// |---|---|---|
/// | results | board, target, ts desc | one board's target, newest first |
/// | results | target, ts | one target across boards |
/// | traces | board, target, ts desc | one board's target, newest first |
/// | events | board, ts desc | a board's events |
/// | boards | last_seen desc | the fleet by last contact |
/// | rollups | board, target, hour_ms | availability and charts of a page of pairs, a board |
/// | rollups | target, hour_ms | one target across boards |
/// | rollups | board, hour_ms | a board's chart, all its targets together |
/// | rollups | hour_ms | boards whose clock runs ahead |
///
/// Nothing indexes the boards' `targets.target`: central finds the boards
/// of a target in its summary of every board document. (nx-27017, the
/// test server, also stops matching array elements by that path once it
/// is indexed.)
pub fn indexes() -> Vec<(&'static str, Vec<Document>)> {
    vec![
        (
            Collection::Results.name(),
            vec![
                doc! { "board": 1, "target": 1, "ts": -1 },
                doc! { "target": 1, "ts": 1 },
            ],
        ),
        (
            Collection::Traces.name(),
            vec![doc! { "board": 1, "target": 1, "ts": -1 }],
        ),
        (
            Collection::Events.name(),
            vec![doc! { "board": 1, "ts": -1 }],
        ),
        (BOARDS, vec![doc! { "last_seen": -1 }]),
        (
            ROLLUPS,
            vec![
                doc! { "board": 1, "target": 1, "hour_ms": 1 },
                doc! { "target": 1, "hour_ms": 1 },
                doc! { "board": 1, "hour_ms": 1 },
                doc! { "hour_ms": 1 },
            ],
        ),
    ]
}

/// `<board>/<target>/<round>/<ts_ms>`: one result and one trace per
/// target and round. Board ids never hold `/` (the config refuses them);
/// targets are IPs or host names, which do not either. The time keeps the
/// id unique when round numbers start again (a new SD card, a store that
/// was recreated): without it the new rows would collide with old
/// documents and be taken for resends.
pub fn round_id(board: &str, target: &str, round: RoundId, ts: Timestamp) -> String {
    format!("{board}/{target}/{}/{}", round.0, ts.millis())
}

/// `<board>/<target>/<hour ms>`: one rollup per target and hour.
pub fn rollup_id(board: &str, target: &str, hour: Timestamp) -> String {
    format!("{board}/{target}/{}", hour.millis())
}

/// An event's `_id`; see the module header for why it ends in a hash.
pub fn event_id(board: &str, e: &EventRecord) -> String {
    // Length-prefixed parts with presence marks, so that no two different
    // (from, to, detail) triples hash the same text.
    let mut text = String::new();
    for part in [e.from.as_deref(), e.to.as_deref(), Some(e.detail.as_str())] {
        match part {
            Some(s) => text.push_str(&format!("{}:{s};", s.len())),
            None => text.push('-'),
        }
    }
    format!(
        "{board}/{}/{}/{}/{:016x}",
        e.ts.millis(),
        e.target.as_deref().unwrap_or("-"),
        e.kind.as_str(),
        fnv1a(&text)
    )
}

/// FNV-1a (64 bit) of `text`: stable across builds and platforms, unlike
/// the standard library's hasher. The hash in event `_id`s, and the seed
/// of a board's retry jitter (from its id).
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What the board document says beyond the snapshot: figures the sync
/// knows better (the backlog right after a drain) and the time of writing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoardStatus<'a> {
    /// Rows still in the outbox.
    pub backlog: u64,
    pub oldest_unsynced: Option<Timestamp>,
    /// The sync's state, as `UpstreamView::state_name` names it.
    pub upstream_state: &'a str,
    /// Now: becomes `last_seen`, and `first_seen` on the first write.
    pub now: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_seed_is_stable() {
        // FNV-1a 64 of "" and "a", the published test vectors.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
