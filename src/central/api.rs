//! The JSON API's documents. Times are RFC 3339 strings (UTC, ms),
//! statuses the contract's `working` / `degraded` / `not_working`.

use serde::Serialize;

use super::model::{AvailabilityRow, Board, BoardTarget, Counts, Window};
use crate::clock::Timestamp;
use crate::http::paging::PageInfo;
use crate::probe::Status;

/// An entry of `GET /api/v1/boards`.
#[derive(Debug, Serialize)]
pub struct BoardDoc<'a> {
    pub board: &'a str,
    pub online: bool,
    pub last_seen: Option<Timestamp>,
    pub version: Option<&'a str>,
    pub counts: Counts,
    pub backlog: Option<i64>,
    pub interval_s: Option<f64>,
}

/// `GET /api/v1/boards?page=`: a page of boards in id order.
#[derive(Debug, Serialize)]
pub struct BoardsPage<'a> {
    #[serde(flatten)]
    pub page: PageInfo,
    pub boards: Vec<BoardDoc<'a>>,
}

/// The boards of one page, online or not at `now`.
pub fn boards<'a>(boards: &[&'a Board], now: Timestamp) -> Vec<BoardDoc<'a>> {
    boards
        .iter()
        .map(|b| BoardDoc {
            board: &b.id,
            online: b.online(now),
            last_seen: b.last_seen,
            version: b.version.as_deref(),
            counts: b.counts,
            backlog: b.backlog,
            interval_s: b.interval_s,
        })
        .collect()
}

/// `GET /api/v1/availability?window=&page=`: a page of (board, target)
/// pairs, each with its rounds over the window (zero rounds and a null
/// availability when the window holds none).
#[derive(Debug, Serialize)]
pub struct AvailabilityPage<'a> {
    pub window: &'static str,
    /// The start of the window's first hour.
    pub first_hour: Timestamp,
    #[serde(flatten)]
    pub page: PageInfo,
    pub rows: Vec<PairDoc<'a>>,
}

/// One pair of an [`AvailabilityPage`].
#[derive(Debug, Serialize)]
pub struct PairDoc<'a> {
    pub board: &'a str,
    pub target: &'a str,
    pub rounds: u64,
    pub working: u64,
    pub degraded: u64,
    pub availability: Option<f64>,
    pub rtt_avg_ms: Option<f64>,
    pub latest_hour: Option<Timestamp>,
}

impl<'a> PairDoc<'a> {
    pub fn new(board: &'a str, target: &'a str, row: Option<&AvailabilityRow>) -> PairDoc<'a> {
        PairDoc {
            board,
            target,
            rounds: row.map_or(0, |r| r.rounds),
            working: row.map_or(0, |r| r.working),
            degraded: row.map_or(0, |r| r.degraded),
            availability: row.map(|r| r.availability),
            rtt_avg_ms: row.and_then(|r| r.rtt_avg_ms),
            latest_hour: row.and_then(|r| r.latest_hour),
        }
    }
}

/// Rounds, working rounds and their fraction over one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowDoc {
    pub rounds: u64,
    pub working: u64,
    pub availability: f64,
}

impl From<&AvailabilityRow> for WindowDoc {
    fn from(r: &AvailabilityRow) -> WindowDoc {
        WindowDoc {
            rounds: r.rounds,
            working: r.working,
            availability: r.availability,
        }
    }
}

/// One board's view of a target in `GET /api/v1/targets/{addr}`.
#[derive(Debug, Serialize)]
pub struct TargetBoardDoc<'a> {
    pub board: &'a str,
    pub online: bool,
    /// `None` when the board no longer lists the target (its results are
    /// still in the windows).
    pub status: Option<Status>,
    pub name: Option<&'a str>,
    pub since: Option<Timestamp>,
    pub last_updated: Option<Timestamp>,
    pub loss: Option<f64>,
    pub rtt_avg: Option<f64>,
    pub gateway: Option<&'a str>,
    pub cause: Option<&'a str>,
    pub availability: WindowsDoc,
}

/// Availability by window; `null` for a window without results.
#[derive(Debug, Default, Serialize)]
pub struct WindowsDoc {
    #[serde(rename = "24h")]
    pub day: Option<WindowDoc>,
    #[serde(rename = "7d")]
    pub week: Option<WindowDoc>,
    #[serde(rename = "30d")]
    pub month: Option<WindowDoc>,
}

impl WindowsDoc {
    fn new(windows: &[(Window, Option<&AvailabilityRow>)]) -> WindowsDoc {
        let mut doc = WindowsDoc::default();
        for (w, row) in windows {
            let slot = match w {
                Window::Day => &mut doc.day,
                Window::Week => &mut doc.week,
                Window::Month => &mut doc.month,
            };
            *slot = row.map(WindowDoc::from);
        }
        doc
    }
}

/// `GET /api/v1/targets/{addr}`.
#[derive(Debug, Serialize)]
pub struct TargetDetailDoc<'a> {
    pub target: &'a str,
    pub boards: Vec<TargetBoardDoc<'a>>,
}

/// What the fleet knows about one target: each board that lists it or has
/// results for it, in board order.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetAcross<'a> {
    pub board: &'a str,
    pub online: bool,
    pub entry: Option<&'a BoardTarget>,
    /// The availability row per window, when there were results.
    pub windows: Vec<(Window, Option<&'a AvailabilityRow>)>,
}

/// Join the boards that list `target` with the availability rows of each
/// window (rows of other targets are ignored).
pub fn target_across<'a>(
    target: &str,
    boards: &'a [Board],
    windows: &'a [(Window, Vec<AvailabilityRow>)],
    now: Timestamp,
) -> Vec<TargetAcross<'a>> {
    let mut ids: Vec<&'a str> = boards
        .iter()
        .filter(|b| b.target(target).is_some())
        .map(|b| b.id.as_str())
        .collect();
    for (_, rows) in windows {
        ids.extend(
            rows.iter()
                .filter(|r| r.target == target)
                .map(|r| r.board.as_str()),
        );
    }
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let board = boards.iter().find(|b| b.id == id);
            TargetAcross {
                board: id,
                online: board.is_some_and(|b| b.online(now)),
                entry: board.and_then(|b| b.target(target)),
                windows: windows
                    .iter()
                    .map(|(w, rows)| {
                        (
                            *w,
                            rows.iter().find(|r| r.board == id && r.target == target),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

/// `GET /api/v1/targets/{addr}` from [`target_across`].
pub fn target_detail<'a>(target: &'a str, across: &[TargetAcross<'a>]) -> TargetDetailDoc<'a> {
    TargetDetailDoc {
        target,
        boards: across
            .iter()
            .map(|a| TargetBoardDoc {
                board: a.board,
                online: a.online,
                status: a.entry.and_then(|e| e.status),
                name: a.entry.and_then(|e| e.name.as_deref()),
                since: a.entry.and_then(|e| e.since),
                last_updated: a.entry.and_then(|e| e.last_updated),
                loss: a.entry.and_then(|e| e.loss),
                rtt_avg: a.entry.and_then(|e| e.rtt_avg),
                gateway: a.entry.and_then(|e| e.gateway.as_deref()),
                cause: a.entry.and_then(|e| e.cause.as_deref()),
                availability: WindowsDoc::new(&a.windows),
            })
            .collect(),
    }
}

/// `{"error": "..."}`, and for a bad window the values it takes.
#[derive(Debug, Serialize)]
pub struct ErrorDoc<'a> {
    pub error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<&'static str>>,
}

impl<'a> ErrorDoc<'a> {
    /// Just the message.
    pub fn new(error: &'a str) -> ErrorDoc<'a> {
        ErrorDoc {
            error,
            allowed: None,
        }
    }
}

/// `GET /healthz`: `status` for everyone, the rest only for a caller
/// who is signed in (or when sign-in is off).
#[derive(Debug, Serialize)]
pub struct HealthDoc<'a> {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// The MongoDB server, without credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Failed sign-ins since this process started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_logins: Option<u64>,
}

impl<'a> HealthDoc<'a> {
    /// What a caller who is not signed in learns: ok or not.
    pub fn bare(ok: bool) -> HealthDoc<'a> {
        HealthDoc {
            status: if ok { "ok" } else { "unavailable" },
            server: None,
            error: None,
            failed_logins: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    const NOW: Timestamp = Timestamp(1_795_651_111_000);

    fn board(id: &str, seen_ago: u64) -> Board {
        Board {
            id: id.into(),
            version: Some("0.1.0".into()),
            last_seen: Some(NOW.sub(Duration::from_secs(seen_ago))),
            interval_s: Some(10.0),
            counts: Counts {
                working: 2,
                degraded: 1,
                not_working: 0,
                pending: 0,
            },
            backlog: Some(3),
            targets: vec![BoardTarget {
                target: "198.19.0.1".into(),
                status: Some(Status::NotWorking),
                gateway: Some("direct".into()),
                ..BoardTarget::default()
            }],
            ..Board::default()
        }
    }

    #[test]
    fn boards_json_has_the_contract_fields() {
        let bs = [board("a", 5), board("b", 31)];
        let refs: Vec<&Board> = bs.iter().collect();
        let v = serde_json::to_value(boards(&refs, NOW)).expect("json");
        assert_eq!(
            v[0],
            json!({
                "board": "a", "online": true, "last_seen": "2026-11-25T23:58:26.000Z",
                "version": "0.1.0",
                "counts": {"working": 2, "degraded": 1, "not_working": 0, "pending": 0},
                "backlog": 3, "interval_s": 10.0,
            })
        );
        assert_eq!(v[1]["online"], json!(false));
    }

    fn row(board: &str, rounds: u64, working: u64) -> AvailabilityRow {
        AvailabilityRow {
            board: board.into(),
            target: "198.19.0.1".into(),
            rounds,
            working,
            degraded: 0,
            availability: working as f64 / rounds as f64,
            rtt_avg_ms: None,
            latest_hour: None,
        }
    }

    #[test]
    fn a_pair_without_rounds_is_zero_and_null() {
        let r = row("a", 10, 7);
        assert_eq!(
            serde_json::to_value(PairDoc::new("a", "198.19.0.1", Some(&r))).expect("json"),
            json!({"board": "a", "target": "198.19.0.1", "rounds": 10, "working": 7,
                   "degraded": 0, "availability": 0.7, "rtt_avg_ms": null, "latest_hour": null})
        );
        let none = serde_json::to_value(PairDoc::new("a", "198.19.0.2", None)).expect("json");
        assert_eq!(none["rounds"], 0);
        assert_eq!(none["availability"], json!(null));
    }

    #[test]
    fn target_detail_joins_boards_and_windows() {
        let bs = [board("a", 5)];
        let row = |b: &str, rounds| row(b, rounds, rounds / 2);
        let windows = vec![
            (Window::Day, vec![row("a", 2)]),
            // Board "gone" has old results but no longer a board document.
            (Window::Week, vec![row("a", 4), row("gone", 8)]),
            (Window::Month, vec![row("a", 6), row("gone", 8)]),
        ];
        let across = target_across("198.19.0.1", &bs, &windows, NOW);
        let v = serde_json::to_value(target_detail("198.19.0.1", &across)).expect("json");
        assert_eq!(v["target"], "198.19.0.1");
        assert_eq!(v["boards"][0]["board"], "a");
        assert_eq!(v["boards"][0]["status"], "not_working");
        assert_eq!(v["boards"][0]["gateway"], "direct");
        assert_eq!(
            v["boards"][0]["availability"]["24h"],
            json!({"rounds": 2, "working": 1, "availability": 0.5})
        );
        assert_eq!(v["boards"][1]["board"], "gone");
        assert_eq!(v["boards"][1]["online"], false);
        assert_eq!(v["boards"][1]["status"], json!(null));
        assert_eq!(v["boards"][1]["availability"]["24h"], json!(null));
        assert_eq!(v["boards"][1]["availability"]["7d"]["rounds"], 8);
    }

    #[test]
    fn errors_list_allowed_values_only_when_given() {
        assert_eq!(
            serde_json::to_value(ErrorDoc::new("x")).expect("json"),
            json!({"error": "x"})
        );
    }
}
