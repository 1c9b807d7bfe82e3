//! The JSON API (`/api/v1/...`) and `/healthz`: documents built from the
//! snapshot and the history.
//!
//! The field names are a contract with whoever scripts against the board,
//! so the documents are their own structs here rather than whatever the
//! monitor's types happen to serialize to. Errors are
//! [`crate::http::ErrorDoc`], shared with `edgeprobe central`. serde_json
//! escapes every string and writes non-finite numbers as `null`, so the
//! output is valid JSON whatever the sheet holds.

use std::net::IpAddr;

use serde::Serialize;

use crate::clock::Timestamp;
use crate::http::paging::PageInfo;
use crate::leds::{LedDriverStatus, LedReport, LedView};
use crate::monitor::{
    BoardGateway, RoundInfo, SheetView, Snapshot, StatusCounts, TargetView, UpstreamView,
};
use crate::probe::{Gateway, Hop, RttSummary, Status};
use crate::store::{EventRecord, ResultRecord, StoreStats, TraceRecord, Uptime};

/// `GET /api/v1/status`.
#[derive(Debug, Serialize)]
pub struct StatusDoc<'a> {
    pub board: BoardDoc<'a>,
    pub last_round: Option<&'a RoundInfo>,
    pub counts: StatusCounts,
    /// Each LED's pattern now, whatever the backend.
    pub leds: LedView,
    /// The backend, the LEDs it drives, and any that it cannot.
    pub led_driver: &'a LedDriverStatus,
    pub upstream: &'a UpstreamView,
    pub store: &'a StoreStats,
    pub sheet: &'a SheetView,
    pub board_gateways: &'a [BoardGateway],
    pub warnings: &'a [String],
    /// Where `targets` sits among the rows that match the query: `page`,
    /// `page_size`, `pages`, and `total` matching rows.
    #[serde(flatten)]
    pub page: PageInfo,
    /// One page of the rows that match the query.
    pub targets: Vec<TargetDoc<'a>>,
}

/// Who the board is.
#[derive(Debug, Serialize)]
pub struct BoardDoc<'a> {
    pub id: &'a str,
    pub version: &'a str,
    pub started_at: Timestamp,
    pub interval_s: f64,
}

/// One target, as in the dashboard's table.
#[derive(Debug, Serialize)]
pub struct TargetDoc<'a> {
    pub sno: usize,
    pub key: &'a str,
    pub addr: &'a str,
    pub ip: Option<IpAddr>,
    pub name: Option<&'a str>,
    pub group: Option<&'a str>,
    pub notes: Option<&'a str>,
    /// `working`, `degraded`, `not_working`, or `null` before the first
    /// round.
    pub status: Option<Status>,
    pub status_since: Option<Timestamp>,
    pub sent: u32,
    pub received: u32,
    pub loss: Option<f64>,
    pub rtt_ms: Option<&'a RttSummary>,
    /// An IP, `direct`, or `null` when no route reaches the target.
    pub gateway: Option<Gateway>,
    pub hops: &'a [Hop],
    pub reached: bool,
    pub last_trace: Option<Timestamp>,
    pub last_updated: Option<Timestamp>,
    pub uptime_24h: Option<f64>,
    pub recent_rtt: &'a crate::monitor::sparkline::Sparkline,
    pub cause: Option<&'a str>,
}

impl<'a> TargetDoc<'a> {
    /// The document for one row.
    pub fn new(t: &'a TargetView) -> TargetDoc<'a> {
        TargetDoc {
            sno: t.sno,
            key: &t.key,
            addr: &t.addr,
            ip: t.ip,
            name: t.name.as_deref(),
            group: t.group.as_deref(),
            notes: t.notes.as_deref(),
            status: t.status,
            status_since: t.status_since,
            sent: t.sent,
            received: t.received,
            loss: t.loss,
            rtt_ms: t.rtt_ms.as_ref(),
            gateway: t.gateway,
            hops: &t.hops,
            reached: t.reached,
            last_trace: t.last_trace,
            last_updated: t.last_updated,
            uptime_24h: t.uptime_24h,
            recent_rtt: &t.recent_rtt,
            cause: t.cause.as_deref(),
        }
    }
}

/// The status document for a snapshot, with one page of its rows.
pub fn status<'a>(
    snap: &'a Snapshot,
    leds: &'a LedReport,
    rows: &[&'a TargetView],
    page: PageInfo,
) -> StatusDoc<'a> {
    StatusDoc {
        board: BoardDoc {
            id: &snap.board.id,
            version: &snap.board.version,
            started_at: snap.board.started_at,
            interval_s: snap.board.interval.as_secs_f64(),
        },
        last_round: snap.last_round.as_ref(),
        counts: snap.counts(),
        leds: leds.patterns,
        led_driver: &leds.driver,
        upstream: &snap.upstream,
        store: &snap.store,
        sheet: &snap.sheet,
        board_gateways: &snap.board_gateways,
        warnings: &snap.warnings,
        page,
        targets: rows.iter().map(|t| TargetDoc::new(t)).collect(),
    }
}

/// What the target page and `GET /api/v1/targets/{key}` read from the
/// store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetHistory {
    pub uptime: Uptime,
    /// Newest first.
    pub results: Vec<ResultRecord>,
    /// Newest first.
    pub traces: Vec<TraceRecord>,
    /// Newest first.
    pub events: Vec<EventRecord>,
}

/// `GET /api/v1/targets/{key}`: the row's fields plus its history.
#[derive(Debug, Serialize)]
pub struct TargetDetailDoc<'a> {
    #[serde(flatten)]
    pub target: TargetDoc<'a>,
    #[serde(flatten)]
    pub history: &'a TargetHistory,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::query::IndexQuery;
    use crate::web::{table, testdata};
    use serde_json::Value;

    fn to_value<T: Serialize>(v: &T) -> Value {
        serde_json::to_value(v).expect("serializes")
    }

    /// `/api/v1/status?QUERY` of a snapshot, as the server builds it.
    fn status_of(snap: &Snapshot, query: &str) -> Value {
        let q = IndexQuery::parse_api(Some(query)).expect("a valid page");
        let matching = table::rows(snap, &q);
        let (rows, page) = q.page.slice(&matching).expect("the page exists");
        to_value(&status(snap, &testdata::leds(), rows, page))
    }

    #[test]
    fn status_document_keeps_the_contract() {
        let snap = testdata::snapshot();
        let v = status_of(&snap, "");
        assert_eq!(v["board"]["id"], "closet-3");
        assert_eq!(v["board"]["interval_s"], 60.0);
        assert!(v["board"]["started_at"].as_str().is_some());
        assert_eq!(v["counts"]["pending"], 1);
        assert_eq!(v["leds"]["red"], "on");
        assert_eq!(v["leds"]["green"], "off");
        assert_eq!(v["led_driver"]["backend"], "rppal");
        assert!(v["led_driver"]["faults"][0]
            .as_str()
            .is_some_and(|f| f.starts_with("amber (pin 22")));
        assert_eq!(v["upstream"]["state"], "off");
        assert_eq!(v["store"]["backlog"], 12);
        assert_eq!(v["store"]["refused"], 3);
        assert_eq!(v["store"]["refused_total"], 5);
        assert_eq!(
            v["store"]["last_refusal"]["reason"],
            "events: code 121: Document failed validation"
        );
        assert_eq!(v["store"]["dropped"]["results"], 7);
        assert_eq!(v["last_round"]["duration"], 4.5);
        let t = &v["targets"][0];
        for field in testdata::TARGET_FIELDS {
            assert!(t.get(field).is_some(), "missing {field}: {t}");
        }
        assert_eq!(t["status"], "working");
        assert_eq!(t["name"], testdata::HOSTILE_NAME);
        assert_eq!(t["rtt_ms"]["avg"], 2.5);
        assert_eq!(t["gateway"], "198.18.0.254");
        assert_eq!(
            t["hops"][1],
            serde_json::json!({"ttl": 2, "addr": null, "rtt_ms": null})
        );
        assert_eq!(t["last_updated"], "2026-11-25T23:58:11.000Z");
        assert_eq!(v["targets"][1]["status"], "not_working");
        assert_eq!(v["targets"][1]["gateway"], "direct");
        assert_eq!(v["targets"][1]["rtt_ms"], Value::Null);
        assert_eq!(v["targets"][3]["status"], Value::Null);
        assert_eq!(v["targets"][3]["last_updated"], Value::Null);
    }

    #[test]
    fn rows_come_a_page_at_a_time_in_sheet_order_with_counts_over_all() {
        let snap = testdata::snapshot();
        let v = status_of(&snap, "page=2&page_size=3");
        assert_eq!(
            (&v["page"], &v["page_size"], &v["pages"], &v["total"]),
            (&2.into(), &3.into(), &2.into(), &4.into())
        );
        assert_eq!(v["targets"].as_array().unwrap().len(), 1);
        assert_eq!(v["targets"][0]["sno"], 4);
        assert_eq!(v["counts"]["pending"], 1, "counts cover every target");

        let v = status_of(&snap, "status=problems&sort=status");
        let keys: Vec<&str> = v["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["198.18.0.9", "2001:db8::1"]);
        assert_eq!(v["total"], 2);
    }

    #[test]
    fn non_finite_numbers_become_null() {
        let mut snap = testdata::snapshot();
        snap.targets[0].loss = Some(f64::NAN);
        snap.targets[0].recent_rtt = [Some(f32::INFINITY)].into_iter().collect();
        let v = status_of(&snap, "");
        assert_eq!(v["targets"][0]["loss"], Value::Null);
        assert_eq!(v["targets"][0]["recent_rtt"][0], Value::Null);
    }

    #[test]
    fn detail_flattens_target_and_history() {
        let snap = testdata::snapshot();
        let history = TargetHistory {
            uptime: Uptime {
                h24: Some(1.0),
                d7: None,
                d30: None,
            },
            ..TargetHistory::default()
        };
        let v = to_value(&TargetDetailDoc {
            target: TargetDoc::new(&snap.targets[0]),
            history: &history,
        });
        assert_eq!(v["addr"], "198.18.0.1");
        assert_eq!(v["uptime"]["h24"], 1.0);
        assert!(v["results"].is_array() && v["traces"].is_array() && v["events"].is_array());
    }
}
