//! Records and snapshots as the documents the central database holds:
//! the write side of the schema in [`crate::fleet::schema`] (collection
//! and field names, `_id` formats and types are described there). Pure.
//! Change a field's name or type here and the fleet view breaks.

use mongodb::bson::{doc, Bson, DateTime, Document};

use crate::clock::Timestamp;
use crate::monitor::{Snapshot, TargetView};
use crate::probe::{Gateway, Hop, RttSummary, Status};
use crate::store::{EventRecord, OutboxRecord, ResultRecord, RollupItem, RoundId, TraceRecord};

use crate::fleet::schema::{event_id, rollup_id, round_id, BoardStatus, Collection};

/// A record as the document for its collection.
pub fn record_doc(board: &str, record: &OutboxRecord) -> (Collection, Document) {
    match record {
        OutboxRecord::Result(r) => (Collection::Results, result_doc(board, r)),
        OutboxRecord::Trace(t) => (Collection::Traces, trace_doc(board, t)),
        OutboxRecord::Event(e) => (Collection::Events, event_doc(board, e)),
    }
}

/// A result's document.
pub fn result_doc(board: &str, r: &ResultRecord) -> Document {
    doc! {
        "_id": round_id(board, &r.target, r.round, r.ts),
        "board": board,
        "target": &r.target,
        "name": opt_str(r.name.as_deref()),
        "group": opt_str(r.group.as_deref()),
        "round": round_number(r.round),
        "ts": date(r.ts),
        "status": r.status.as_str(),
        "reported": r.reported.as_str(),
        "sent": i64::from(r.sent),
        "received": i64::from(r.received),
        "loss": r.loss,
        "rtt": r.rtt.as_ref().map_or(Bson::Null, |s| Bson::Document(rtt_doc(s))),
        "gateway": opt_string(r.gateway.as_ref().map(Gateway::to_string)),
    }
}

/// A trace's document.
pub fn trace_doc(board: &str, t: &TraceRecord) -> Document {
    doc! {
        "_id": round_id(board, &t.target, t.round, t.ts),
        "board": board,
        "target": &t.target,
        "round": round_number(t.round),
        "ts": date(t.ts),
        "hops": t.hops.iter().map(|h| Bson::Document(hop_doc(h))).collect::<Vec<_>>(),
        "reached": t.reached,
    }
}

/// An event's document.
pub fn event_doc(board: &str, e: &EventRecord) -> Document {
    doc! {
        "_id": event_id(board, e),
        "board": board,
        "target": opt_str(e.target.as_deref()),
        "ts": date(e.ts),
        "kind": e.kind.as_str(),
        "from": opt_str(e.from.as_deref()),
        "to": opt_str(e.to.as_deref()),
        "detail": &e.detail,
    }
}

/// A rollup's whole document, with its absolute values: what replaces
/// the server's copy (see [`crate::fleet::schema`]). `board_clock` is the
/// board's time of writing, which tells a board with a wrong clock.
pub fn rollup_doc(board: &str, r: &RollupItem, now: Timestamp) -> Document {
    let row = &r.row;
    doc! {
        "_id": rollup_id(board, &r.target, row.hour),
        "board": board,
        "target": &r.target,
        "hour": date(row.hour),
        "hour_ms": row.hour.millis(),
        "rounds": count(row.rounds),
        "working": count(row.working),
        "degraded": count(row.degraded),
        "not_working": count(row.not_working),
        "rtt_sum_ms": r.rtt_sum_ms,
        "rtt_rounds": count(r.rtt_rounds),
        "board_clock": date(now),
    }
}

/// The board's document, without `first_seen`.
pub fn board_doc(board: &str, snap: &Snapshot, status: &BoardStatus<'_>) -> Document {
    let counts = snap.counts();
    let info = &snap.board;
    doc! {
        "_id": board,
        "name": board,
        "site": Bson::Null,
        "version": &info.version,
        "started_at": date(info.started_at),
        "last_seen": date(status.now),
        "interval_s": info.interval.as_secs_f64(),
        "counts": {
            "working": count(counts.working),
            "degraded": count(counts.degraded),
            "not_working": count(counts.not_working),
            "pending": count(counts.pending),
        },
        "backlog": i64::try_from(status.backlog).unwrap_or(i64::MAX),
        "oldest_unsynced": status.oldest_unsynced.map_or(Bson::Null, date),
        "upstream_state": status.upstream_state,
        "targets": snap.targets.iter().map(|t| Bson::Document(board_target(t))).collect::<Vec<_>>(),
    }
}

/// The update that upserts the board's document: everything in `$set`
/// (the filter carries `_id`), `first_seen` only when it is created.
pub fn board_update(board: &str, snap: &Snapshot, status: &BoardStatus<'_>) -> Document {
    let mut set = board_doc(board, snap, status);
    // `_id` cannot be `$set`; an upsert takes it from the filter.
    set.remove("_id");
    doc! {
        "$set": set,
        "$setOnInsert": { "first_seen": date(status.now) },
    }
}

fn board_target(t: &TargetView) -> Document {
    doc! {
        "target": &*t.key,
        "name": opt_str(t.name.as_deref()),
        "group": opt_str(t.group.as_deref()),
        "status": opt_str(t.status.map(Status::as_str)),
        "since": t.status_since.map_or(Bson::Null, date),
        "last_updated": t.last_updated.map_or(Bson::Null, date),
        "loss": t.loss.map_or(Bson::Null, Bson::Double),
        "rtt_avg": t.rtt_ms.map_or(Bson::Null, |r| Bson::Double(r.avg)),
        "gateway": opt_string(t.gateway.as_ref().map(Gateway::to_string)),
        "cause": opt_str(t.cause.as_deref()),
    }
}

fn rtt_doc(s: &RttSummary) -> Document {
    doc! { "min": s.min, "avg": s.avg, "max": s.max, "mdev": s.mdev }
}

fn hop_doc(h: &Hop) -> Document {
    doc! {
        "ttl": i32::from(h.ttl.0),
        "addr": opt_string(h.addr.map(|a| a.to_string())),
        "rtt_ms": h.rtt_ms.map_or(Bson::Null, Bson::Double),
    }
}

fn date(ts: Timestamp) -> Bson {
    Bson::DateTime(DateTime::from_millis(ts.millis()))
}

fn round_number(r: RoundId) -> i64 {
    i64::try_from(r.0).unwrap_or(i64::MAX)
}

fn count(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

fn opt_str(s: Option<&str>) -> Bson {
    s.map_or(Bson::Null, |s| Bson::String(s.to_string()))
}

fn opt_string(s: Option<String>) -> Bson {
    s.map_or(Bson::Null, Bson::String)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::monitor::BoardInfo;
    use crate::monitor::RoundInfo;
    use crate::probe::Ttl;
    use crate::store::EventKind;

    /// 2026-11-25T12:00:00.123Z
    const T: i64 = 1_795_608_000_123;

    /// Canonical extended JSON: field order and every BSON type spelled
    /// out (`$numberInt`, `$numberLong`, `$numberDouble`, `$date`).
    fn ext(d: Document) -> String {
        Bson::Document(d).into_canonical_extjson().to_string()
    }

    fn result() -> ResultRecord {
        ResultRecord {
            target: "198.18.0.7".into(),
            round: RoundId(42),
            ts: Timestamp(T),
            name: Some("core switch".into()),
            group: Some("closet 3".into()),
            status: Status::Degraded,
            reported: Status::Working,
            sent: 4,
            received: 3,
            loss: 0.25,
            rtt: Some(RttSummary {
                min: 1.5,
                avg: 2.0,
                max: 3.125,
                mdev: 0.612,
            }),
            gateway: Some(Gateway::Via("198.18.0.1".parse().unwrap())),
        }
    }

    #[test]
    fn result_document() {
        assert_eq!(
            ext(result_doc("closet-3", &result())),
            r#"{"_id":"closet-3/198.18.0.7/42/1795608000123","board":"closet-3","target":"198.18.0.7","name":"core switch","group":"closet 3","round":{"$numberLong":"42"},"ts":{"$date":{"$numberLong":"1795608000123"}},"status":"degraded","reported":"working","sent":{"$numberLong":"4"},"received":{"$numberLong":"3"},"loss":{"$numberDouble":"0.25"},"rtt":{"min":{"$numberDouble":"1.5"},"avg":{"$numberDouble":"2.0"},"max":{"$numberDouble":"3.125"},"mdev":{"$numberDouble":"0.612"}},"gateway":"198.18.0.1"}"#
        );
    }

    #[test]
    fn result_document_nulls() {
        let r = ResultRecord {
            name: None,
            group: None,
            status: Status::NotWorking,
            reported: Status::NotWorking,
            sent: 0,
            received: 0,
            loss: 1.0,
            rtt: None,
            gateway: None,
            round: RoundId(u64::MAX),
            ..result()
        };
        assert_eq!(
            ext(result_doc("b", &r)),
            r#"{"_id":"b/198.18.0.7/18446744073709551615/1795608000123","board":"b","target":"198.18.0.7","name":null,"group":null,"round":{"$numberLong":"9223372036854775807"},"ts":{"$date":{"$numberLong":"1795608000123"}},"status":"not_working","reported":"not_working","sent":{"$numberLong":"0"},"received":{"$numberLong":"0"},"loss":{"$numberDouble":"1.0"},"rtt":null,"gateway":null}"#
        );
        let direct = ResultRecord {
            gateway: Some(Gateway::Direct),
            ..result()
        };
        assert_eq!(
            result_doc("b", &direct).get_str("gateway").unwrap(),
            "direct"
        );
        let v6 = ResultRecord {
            target: "2001:db8::7".into(),
            gateway: Some(Gateway::Via("2001:db8::1".parse().unwrap())),
            ..result()
        };
        let d = result_doc("b", &v6);
        assert_eq!(d.get_str("_id").unwrap(), "b/2001:db8::7/42/1795608000123");
        assert_eq!(d.get_str("gateway").unwrap(), "2001:db8::1");
    }

    #[test]
    fn trace_document() {
        let t = TraceRecord {
            target: "198.18.0.7".into(),
            round: RoundId(42),
            ts: Timestamp(T),
            hops: vec![
                Hop::new(Ttl(1), Some("198.18.0.1".parse().unwrap()), Some(0.412)),
                Hop::new(Ttl(2), None, None),
                Hop::new(Ttl(255), Some("198.18.0.7".parse().unwrap()), Some(2.0)),
            ],
            reached: true,
        };
        assert_eq!(
            ext(trace_doc("closet-3", &t)),
            r#"{"_id":"closet-3/198.18.0.7/42/1795608000123","board":"closet-3","target":"198.18.0.7","round":{"$numberLong":"42"},"ts":{"$date":{"$numberLong":"1795608000123"}},"hops":[{"ttl":{"$numberInt":"1"},"addr":"198.18.0.1","rtt_ms":{"$numberDouble":"0.412"}},{"ttl":{"$numberInt":"2"},"addr":null,"rtt_ms":null},{"ttl":{"$numberInt":"255"},"addr":"198.18.0.7","rtt_ms":{"$numberDouble":"2.0"}}],"reached":true}"#
        );
        let empty = TraceRecord {
            hops: vec![],
            reached: false,
            ..t
        };
        assert_eq!(
            ext(trace_doc("b", &empty)),
            r#"{"_id":"b/198.18.0.7/42/1795608000123","board":"b","target":"198.18.0.7","round":{"$numberLong":"42"},"ts":{"$date":{"$numberLong":"1795608000123"}},"hops":[],"reached":false}"#
        );
    }

    fn event() -> EventRecord {
        EventRecord {
            target: Some("198.18.0.7".into()),
            ts: Timestamp(T),
            kind: EventKind::Status,
            from: Some("working".into()),
            to: Some("not_working".into()),
            detail: "no reply to 4 requests".into(),
        }
    }

    #[test]
    fn event_document() {
        let e = event();
        let id = event_id("closet-3", &e);
        assert!(
            id.starts_with("closet-3/1795608000123/198.18.0.7/status/"),
            "{id}"
        );
        assert_eq!(
            id.len(),
            "closet-3/1795608000123/198.18.0.7/status/".len() + 16
        );
        assert_eq!(
            ext(event_doc("closet-3", &e)),
            format!(
                r#"{{"_id":"{id}","board":"closet-3","target":"198.18.0.7","ts":{{"$date":{{"$numberLong":"1795608000123"}}}},"kind":"status","from":"working","to":"not_working","detail":"no reply to 4 requests"}}"#
            )
        );
        let board = EventRecord {
            target: None,
            kind: EventKind::Targets,
            from: None,
            to: None,
            detail: "loaded 3 targets".into(),
            ..e
        };
        let id = event_id("b", &board);
        assert!(id.starts_with("b/1795608000123/-/targets/"), "{id}");
        assert_eq!(
            ext(event_doc("b", &board)),
            format!(
                r#"{{"_id":"{id}","board":"b","target":null,"ts":{{"$date":{{"$numberLong":"1795608000123"}}}},"kind":"targets","from":null,"to":null,"detail":"loaded 3 targets"}}"#
            )
        );
    }

    /// The raw BSON of an event, assembled by hand from the spec, so that
    /// the types (0x02 string, 0x0A null, 0x09 UTC datetime) are pinned
    /// independently of the bson crate's own writer.
    #[test]
    fn event_document_bytes() {
        fn el(out: &mut Vec<u8>, ty: u8, key: &str, value: &[u8]) {
            out.push(ty);
            out.extend_from_slice(key.as_bytes());
            out.push(0);
            out.extend_from_slice(value);
        }
        fn string(s: &str) -> Vec<u8> {
            let mut v = ((s.len() + 1) as i32).to_le_bytes().to_vec();
            v.extend_from_slice(s.as_bytes());
            v.push(0);
            v
        }
        let e = EventRecord {
            target: None,
            kind: EventKind::Gateway,
            from: Some("up".into()),
            to: None,
            detail: "gw\0down".into(),
            ..event()
        };
        let id = event_id("b", &e);
        let mut body = Vec::new();
        el(&mut body, 0x02, "_id", &string(&id));
        el(&mut body, 0x02, "board", &string("b"));
        el(&mut body, 0x0A, "target", &[]);
        el(&mut body, 0x09, "ts", &T.to_le_bytes());
        el(&mut body, 0x02, "kind", &string("gateway"));
        el(&mut body, 0x02, "from", &string("up"));
        el(&mut body, 0x0A, "to", &[]);
        el(&mut body, 0x02, "detail", &string("gw\0down"));
        let mut expected = ((body.len() + 5) as i32).to_le_bytes().to_vec();
        expected.extend_from_slice(&body);
        expected.push(0);
        assert_eq!(
            mongodb::bson::to_vec(&event_doc("b", &e)).unwrap(),
            expected
        );
    }

    #[test]
    fn event_ids_differ_for_different_events_at_the_same_moment() {
        // A dual-stack board whose two gateways stop answering in one
        // round: same ms, no target, same kind.
        let gw = |addr: &str| EventRecord {
            target: None,
            kind: EventKind::Gateway,
            from: Some("up".into()),
            to: Some("down".into()),
            detail: format!("the board's own gateway {addr} stopped answering"),
            ..event()
        };
        let a = event_id("b", &gw("198.18.0.1"));
        let b = event_id("b", &gw("2001:db8::1"));
        assert_ne!(a, b);
        assert_eq!(a, event_id("b", &gw("198.18.0.1")), "deterministic");
        // None and an empty string are different events.
        let none = EventRecord {
            from: None,
            ..event()
        };
        let empty = EventRecord {
            from: Some(String::new()),
            ..event()
        };
        assert_ne!(event_id("b", &none), event_id("b", &empty));
        // Parts do not run into each other.
        let ab = EventRecord {
            from: Some("a".into()),
            to: Some("b".into()),
            ..event()
        };
        let a_b = EventRecord {
            from: Some("a;".into()),
            to: Some("".into()),
            ..event()
        };
        assert_ne!(event_id("b", &ab), event_id("b", &a_b));
    }

    #[test]
    fn control_characters_survive() {
        let nasty = "core\u{0}\t\u{7}\u{1b}[31m\r\n\u{7f}\u{202e}switch";
        let r = ResultRecord {
            name: Some(nasty.into()),
            group: Some("\"quoted\" \\ group".into()),
            ..result()
        };
        let d = result_doc("b", &r);
        let bytes = mongodb::bson::to_vec(&d).unwrap();
        let back: Document = mongodb::bson::from_slice(&bytes).unwrap();
        assert_eq!(back.get_str("name").unwrap(), nasty);
        assert_eq!(back.get_str("group").unwrap(), "\"quoted\" \\ group");
        assert_eq!(back, d);
    }

    fn snapshot() -> Snapshot {
        let target = |sno: usize, key: &str, status: Option<Status>| TargetView {
            sno,
            key: key.into(),
            addr: key.into(),
            ip: key.parse().ok(),
            name: Some(format!("{key} name").into()),
            group: None,
            notes: None,
            status,
            status_since: status.map(|_| Timestamp(T - 60_000)),
            sent: 4,
            received: if status == Some(Status::NotWorking) {
                0
            } else {
                4
            },
            loss: status.map(|s| if s == Status::NotWorking { 1.0 } else { 0.0 }),
            rtt_ms: (status == Some(Status::Working)).then_some(RttSummary {
                min: 1.0,
                avg: 1.5,
                max: 2.0,
                mdev: 0.25,
            }),
            gateway: status.map(|_| Gateway::Direct),
            hops: Default::default(),
            reached: status == Some(Status::Working),
            last_trace: None,
            last_updated: status.map(|_| Timestamp(T)),
            uptime_24h: None,
            recent_rtt: Default::default(),
            cause: (status == Some(Status::NotWorking)).then(|| "no route".to_string()),
        };
        Snapshot {
            board: BoardInfo {
                id: "closet-3".into(),
                version: "0.1.0".into(),
                started_at: Timestamp(T - 3_600_000),
                started_mono: None,
                interval: Duration::from_millis(60_500),
            },
            last_round: Some(RoundInfo {
                round: RoundId(42),
                started: Timestamp(T - 2000),
                finished: Timestamp(T),
                duration: Duration::from_secs(2),
                finished_mono: None,
            }),
            targets: vec![
                target(1, "198.18.0.7", Some(Status::Working)),
                target(2, "198.18.0.8", Some(Status::NotWorking)),
                target(3, "host.example", None),
            ],
            ..Snapshot::default()
        }
    }

    #[test]
    fn board_update_document() {
        let status = BoardStatus {
            backlog: 12,
            oldest_unsynced: Some(Timestamp(T - 500)),
            upstream_state: "draining",
            now: Timestamp(T + 1000),
        };
        assert_eq!(
            ext(board_update("closet-3", &snapshot(), &status)),
            concat!(
                r#"{"$set":{"name":"closet-3","site":null,"version":"0.1.0","#,
                r#""started_at":{"$date":{"$numberLong":"1795604400123"}},"#,
                r#""last_seen":{"$date":{"$numberLong":"1795608001123"}},"#,
                r#""interval_s":{"$numberDouble":"60.5"},"#,
                r#""counts":{"working":{"$numberLong":"1"},"degraded":{"$numberLong":"0"},"not_working":{"$numberLong":"1"},"pending":{"$numberLong":"1"}},"#,
                r#""backlog":{"$numberLong":"12"},"#,
                r#""oldest_unsynced":{"$date":{"$numberLong":"1795607999623"}},"#,
                r#""upstream_state":"draining","targets":["#,
                r#"{"target":"198.18.0.7","name":"198.18.0.7 name","group":null,"status":"working","since":{"$date":{"$numberLong":"1795607940123"}},"last_updated":{"$date":{"$numberLong":"1795608000123"}},"loss":{"$numberDouble":"0.0"},"rtt_avg":{"$numberDouble":"1.5"},"gateway":"direct","cause":null},"#,
                r#"{"target":"198.18.0.8","name":"198.18.0.8 name","group":null,"status":"not_working","since":{"$date":{"$numberLong":"1795607940123"}},"last_updated":{"$date":{"$numberLong":"1795608000123"}},"loss":{"$numberDouble":"1.0"},"rtt_avg":null,"gateway":"direct","cause":"no route"},"#,
                r#"{"target":"host.example","name":"host.example name","group":null,"status":null,"since":null,"last_updated":null,"loss":null,"rtt_avg":null,"gateway":null,"cause":null}"#,
                r#"]},"$setOnInsert":{"first_seen":{"$date":{"$numberLong":"1795608001123"}}}}"#
            )
        );
    }

    #[test]
    fn board_document_has_its_id_and_no_backlog_date_when_empty() {
        let status = BoardStatus {
            backlog: 0,
            oldest_unsynced: None,
            upstream_state: "synced",
            now: Timestamp(T),
        };
        let d = board_doc("closet-3", &snapshot(), &status);
        assert_eq!(d.get_str("_id").unwrap(), "closet-3");
        assert_eq!(d.get("oldest_unsynced"), Some(&Bson::Null));
        assert_eq!(d.get_i64("backlog").unwrap(), 0);
        let empty = board_doc("b", &Snapshot::default(), &status);
        assert_eq!(empty.get_array("targets").unwrap().len(), 0);
    }

    #[test]
    fn record_doc_picks_the_collection() {
        let (c, d) = record_doc("b", &OutboxRecord::Result(result()));
        assert_eq!(
            (c, d.get_str("_id").unwrap()),
            (Collection::Results, "b/198.18.0.7/42/1795608000123")
        );
        let (c, _) = record_doc("b", &OutboxRecord::Event(event()));
        assert_eq!(c, Collection::Events);
    }
}
