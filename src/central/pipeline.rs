//! The queries central sends to MongoDB, built as plain documents so they
//! are tested (and read) apart from the driver.
//!
//! Availability is computed on the server from the hourly `rollups`: one
//! `$group` per (board, target) over the window's hours, so the app
//! receives one small row per pair, and the server reads at most one
//! document per pair and hour (720 for 30 days), however often the boards
//! probe. Which pairs is always bounded: a page's pairs, one target's
//! boards, or one board ([`Scope`]).
//!
//! Written for two servers at once, real MongoDB and the nx-27017 test
//! server, so it keeps to what both accept:
//! - the group key is a `$concat` string, not a compound `{board, target}`
//!   document: nx-27017 takes a document `_id` literally (every row
//!   lands in one group whose `_id` is `{board: "$board", ...}`; seen on
//!   nx-27017 reporting version 7.0.0); real MongoDB accepts both;
//! - `board` and `target` come back with `$max` (the same value throughout
//!   a group) rather than by splitting the key;
//! - hours are ranged over `hour_ms`, an integer: nx-27017 stores a date
//!   written by an update as text (see [`crate::fleet::schema`]);
//! - no `$sort`: the app sorts the rows it shows.

use mongodb::bson::{doc, Bson, DateTime, Document};

use crate::clock::Timestamp;

/// Between board and target in the group key. A control character that
/// neither board ids nor addresses contain, so that `("a|b", "c")` and
/// `("a", "b|c")` cannot share a group as they would with `|`.
pub const KEY_SEPARATOR: &str = "\u{1f}";

/// A BSON date for `ts`.
pub fn bson_time(ts: Timestamp) -> DateTime {
    DateTime::from_millis(ts.millis())
}

/// Which (board, target) pairs an availability query covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// These pairs (a page of the availability list).
    Pairs(&'a [(String, String)]),
    /// One target, on every board that has it.
    Target(&'a str),
    /// Every target of one board.
    Board(&'a str),
}

/// The `$match` of `scope` from the hour starting at `first_hour` on.
/// Pairs become one clause per board, `{board, target: {$in: [...]}}`,
/// each a range of the `{board, target, hour_ms}` index.
fn scope_filter(scope: Scope<'_>, first_hour: Timestamp) -> Document {
    let hours = doc! { "$gte": first_hour.millis() };
    match scope {
        Scope::Target(t) => doc! { "target": t, "hour_ms": hours },
        Scope::Board(b) => doc! { "board": b, "hour_ms": hours },
        Scope::Pairs(pairs) => {
            let mut by_board: Vec<(&str, Vec<&str>)> = Vec::new();
            for (b, t) in pairs {
                match by_board.iter_mut().find(|(id, _)| id == b) {
                    Some((_, targets)) => targets.push(t),
                    None => by_board.push((b, vec![t])),
                }
            }
            let clauses: Vec<Bson> = by_board
                .into_iter()
                .map(|(b, targets)| {
                    Bson::Document(doc! {
                        "board": b,
                        "target": { "$in": targets },
                        "hour_ms": hours.clone(),
                    })
                })
                .collect();
            // An empty `$or` is an error on MongoDB; no pairs match nothing.
            if clauses.is_empty() {
                doc! { "_id": { "$in": [] } }
            } else {
                doc! { "$or": clauses }
            }
        }
    }
}

/// Rows `{board, target, rounds, not_working, degraded, rtt_sum_ms,
/// rtt_rounds, hours, latest_hour_ms}` per (board, target) of `scope` over
/// the rollups of the hours from `first_hour` on (see
/// `model::AvailabilityRow::from_doc`).
pub fn availability(scope: Scope<'_>, first_hour: Timestamp) -> Vec<Document> {
    vec![
        doc! { "$match": scope_filter(scope, first_hour) },
        doc! { "$group": {
            "_id": { "$concat": ["$board", KEY_SEPARATOR, "$target"] },
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
        assert_eq!(
            group.get("_id"),
            Some(&Bson::Document(
                doc! { "$concat": ["$board", "\u{1f}", "$target"] }
            ))
        );
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
    fn pairs_are_one_index_range_per_board() {
        let pairs = [
            ("a".to_string(), "198.18.0.1".to_string()),
            ("a".to_string(), "198.18.0.2".to_string()),
            ("b".to_string(), "198.18.0.1".to_string()),
        ];
        let p = availability(Scope::Pairs(&pairs), Timestamp(0));
        let m = p[0].get_document("$match").unwrap();
        let or = m.get_array("$or").unwrap();
        assert_eq!(or.len(), 2);
        assert_eq!(
            or[0].as_document().unwrap(),
            &doc! { "board": "a", "target": { "$in": ["198.18.0.1", "198.18.0.2"] }, "hour_ms": { "$gte": 0_i64 } }
        );
        let none = availability(Scope::Pairs(&[]), Timestamp(0));
        assert!(none[0].get_document("$match").unwrap().contains_key("_id"));
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
