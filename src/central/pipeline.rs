//! The queries central sends to MongoDB, built as plain documents so they
//! are tested (and read) apart from the driver.
//!
//! Availability is computed on the server: one `$group` per (board,
//! target) over the window's results, so the app receives one small row
//! per pair, never the results themselves.
//!
//! Written for two servers at once, real MongoDB and the nx-27017 test
//! server, so it keeps to what both accept:
//! - the group key is a `$concat` string, not a compound `{board, target}`
//!   document: nx-27017 takes a document `_id` literally (every result
//!   lands in one group whose `_id` is `{board: "$board", ...}`; seen on
//!   nx-27017 reporting version 7.0.0); real MongoDB accepts both;
//! - `board` and `target` come back with `$max` (the same value throughout
//!   a group) rather than by splitting the key;
//! - the fraction is `$avg` of the same 0/1 `$cond` that `working` sums:
//!   both servers return 0.7 for 7 of 10, so nothing is divided in the app.
//!   (`$divide` in a `$project` stage works on nx-27017 too; `$avg` saves
//!   the stage.)
//! - no `$sort`: the app sorts the rows it shows.

use mongodb::bson::{doc, DateTime, Document};

use crate::clock::Timestamp;

/// Between board and target in the group key. A control character that
/// neither board ids nor addresses contain, so that `("a|b", "c")` and
/// `("a", "b|c")` cannot share a group as they would with `|`.
pub const KEY_SEPARATOR: &str = "\u{1f}";

/// The contract's spelling of the one status that counts as unavailable.
const NOT_WORKING: &str = "not_working";

/// A BSON date for `ts`.
pub fn bson_time(ts: Timestamp) -> DateTime {
    DateTime::from_millis(ts.millis())
}

/// Rows `{board, target, rounds, working, availability}` per (board,
/// target) over the `results` with `ts >= since`, of one `target` only
/// when given. `working` counts results whose `status` is not
/// `not_working`; `availability` is `working / rounds`.
pub fn availability(since: Timestamp, target: Option<&str>) -> Vec<Document> {
    let mut filter = doc! { "ts": { "$gte": bson_time(since) } };
    if let Some(t) = target {
        filter.insert("target", t);
    }
    // 1 for a result that counts as available, else 0.
    let available = doc! { "$cond": [ { "$ne": ["$status", NOT_WORKING] }, 1, 0 ] };
    vec![
        doc! { "$match": filter },
        doc! { "$group": {
            "_id": { "$concat": ["$board", KEY_SEPARATOR, "$target"] },
            "board": { "$max": "$board" },
            "target": { "$max": "$target" },
            "rounds": { "$sum": 1 },
            "working": { "$sum": available.clone() },
            "availability": { "$avg": available },
        } },
    ]
}

/// Boards whose `targets` array lists `target`. Dot notation into an
/// array of documents: both servers match any element.
pub fn boards_seeing(target: &str) -> Document {
    doc! { "targets.target": target }
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
    use mongodb::bson::Bson;

    #[test]
    fn availability_pipeline_is_the_documented_one() {
        let since = Timestamp(1_795_651_111_000);
        let p = availability(since, None);
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0],
            doc! { "$match": { "ts": { "$gte": DateTime::from_millis(1_795_651_111_000) } } }
        );
        let group = p[1].get_document("$group").expect("group stage");
        assert_eq!(
            group.get("_id"),
            Some(&Bson::Document(
                doc! { "$concat": ["$board", "\u{1f}", "$target"] }
            ))
        );
        let cond = doc! { "$cond": [ { "$ne": ["$status", "not_working"] }, 1, 0 ] };
        assert_eq!(
            group.get_document("working").expect("working"),
            &doc! { "$sum": cond.clone() }
        );
        assert_eq!(
            group.get_document("availability").expect("availability"),
            &doc! { "$avg": cond }
        );
    }

    #[test]
    fn one_target_adds_to_the_match() {
        let p = availability(Timestamp(0), Some("2001:db8::1"));
        let m = p[0].get_document("$match").expect("match");
        assert_eq!(m.get_str("target"), Ok("2001:db8::1"));
        assert!(m.contains_key("ts"));
    }
}
