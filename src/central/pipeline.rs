//! The queries central sends to MongoDB, built as plain documents so they
//! are tested (and read) apart from the driver.
//!
//! Availability is computed on the server from the hourly `rollups`: one
//! `$group` per (board, target) over the window's hours, so the app
//! receives one small row per pair, and the server reads at most one
//! document per pair and hour (720 for 30 days), however often the boards
//! probe. Which pairs is always bounded ([`Scope`]): one board's targets
//! on a page, or one target's boards.
//!
//! Written for two servers at once, real MongoDB and the nx-27017 test
//! server, so it keeps to what both accept and what nx-27017 answers
//! from its indexes:
//! - a query covers one board or one target, so the group key is a plain
//!   field path (the other of the two); nx-27017 takes a document `_id`
//!   in `$group` literally (every row in one group) and answers an `$or`
//!   in `$match` by scanning the whole collection;
//! - `board` and `target` come back with `$max` (the same value throughout
//!   a group);
//! - hours are ranged over `hour_ms`, an integer: nx-27017 stores a date
//!   written by an update as text (see [`crate::fleet::schema`]);
//! - no `$sort`: the app sorts the rows it shows.

use mongodb::bson::{doc, DateTime, Document};

use crate::clock::Timestamp;

/// A BSON date for `ts`.
pub fn bson_time(ts: Timestamp) -> DateTime {
    DateTime::from_millis(ts.millis())
}

/// Which (board, target) pairs an availability query covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// These targets of one board (its part of a page of pairs): one range
    /// of the `{board, target, hour_ms}` index per target.
    BoardTargets(&'a str, &'a [&'a str]),
    /// One target, on every board that has it.
    Target(&'a str),
}

/// The `$match` of `scope` from the hour starting at `first_hour` on.
/// Plain equality and `$in`, never `$or`: nx-27017, the test server,
/// answers an `$or` by scanning the whole collection, and a page is one
/// query per board anyway (on a sharded cluster, each to its shard).
fn scope_filter(scope: Scope<'_>, first_hour: Timestamp) -> Document {
    let hours = doc! { "$gte": first_hour.millis() };
    match scope {
        Scope::Target(t) => doc! { "target": t, "hour_ms": hours },
        Scope::BoardTargets(b, targets) => {
            doc! { "board": b, "target": { "$in": targets }, "hour_ms": hours }
        }
    }
}

/// Rows `{board, target, rounds, not_working, degraded, rtt_sum_ms,
/// rtt_rounds, hours, latest_hour_ms}` per (board, target) of `scope` over
/// the rollups of the hours from `first_hour` on (see
/// `model::AvailabilityRow::from_doc`).
pub fn availability(scope: Scope<'_>, first_hour: Timestamp) -> Vec<Document> {
    // The field that differs between the scope's pairs.
    let key = match scope {
        Scope::BoardTargets(..) => "$target",
        Scope::Target(_) => "$board",
    };
    vec![
        doc! { "$match": scope_filter(scope, first_hour) },
        doc! { "$group": {
            "_id": key,
            "board": { "$max": "$board" },
            "target": { "$max": "$target" },
            "rounds": { "$sum": "$rounds" },
            "not_working": { "$sum": "$not_working" },
            "degraded": { "$sum": "$degraded" },
            "rtt_sum_ms": { "$sum": "$rtt_sum_ms" },
            "rtt_rounds": { "$sum": "$rtt_rounds" },
            "hours": { "$sum": 1 },
            "latest_hour_ms": { "$max": "$hour_ms" },
        } },
    ]
}

/// Rows `{_id: hour_ms, rounds, not_working}` per hour from `first_hour`
/// on: one board's targets added up, or one pair's when `target` is given.
/// What the availability charts draw.
pub fn hourly(board: &str, target: Option<&str>, first_hour: Timestamp) -> Vec<Document> {
    let mut filter = doc! { "board": board, "hour_ms": { "$gte": first_hour.millis() } };
    if let Some(t) = target {
        filter.insert("target", t);
    }
    vec![
        doc! { "$match": filter },
        doc! { "$group": {
            "_id": "$hour_ms",
            "rounds": { "$sum": "$rounds" },
            "not_working": { "$sum": "$not_working" },
        } },
    ]
}

/// Rows `{_id: board, latest_hour_ms}` of the boards that uploaded
/// rollups for hours starting after `after`: their clock runs ahead.
pub fn clock_ahead(after: Timestamp) -> Vec<Document> {
    vec![
        doc! { "$match": { "hour_ms": { "$gt": after.millis() } } },
        doc! { "$group": { "_id": "$board", "latest_hour_ms": { "$max": "$hour_ms" } } },
    ]
}

/// A board's events.
pub fn events_of(board: &str) -> Document {
    doc! { "board": board }
}

/// Newest first.
pub fn newest_first() -> Document {
    doc! { "ts": -1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_groups_rollup_sums_per_pair() {
        let p = availability(Scope::Target("2001:db8::1"), Timestamp(1_795_608_000_000));
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0],
            doc! { "$match": { "target": "2001:db8::1", "hour_ms": { "$gte": 1_795_608_000_000_i64 } } }
        );
        let group = p[1].get_document("$group").expect("group stage");
        // One target: a group per board.
        assert_eq!(group.get_str("_id"), Ok("$board"));
        assert_eq!(
            group.get_document("rounds").unwrap(),
            &doc! { "$sum": "$rounds" }
        );
        assert_eq!(
            group.get_document("not_working").unwrap(),
            &doc! { "$sum": "$not_working" }
        );
    }

    #[test]
    fn a_boards_part_of_a_page_is_one_match_without_or() {
        let targets = ["198.18.0.1", "198.18.0.2"];
        let p = availability(Scope::BoardTargets("a", &targets), Timestamp(0));
        assert_eq!(
            p[1].get_document("$group").unwrap().get_str("_id"),
            Ok("$target")
        );
        assert_eq!(
            p[0],
            doc! { "$match": { "board": "a", "target": { "$in": ["198.18.0.1", "198.18.0.2"] }, "hour_ms": { "$gte": 0_i64 } } }
        );
    }

    #[test]
    fn charts_group_by_hour() {
        let p = hourly("a", Some("198.18.0.1"), Timestamp(5));
        let m = p[0].get_document("$match").unwrap();
        assert_eq!(m.get_str("board"), Ok("a"));
        assert_eq!(m.get_str("target"), Ok("198.18.0.1"));
        assert_eq!(
            p[1].get_document("$group").unwrap().get_str("_id"),
            Ok("$hour_ms")
        );
    }
}
