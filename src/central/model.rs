//! The fleet as the central dashboard sees it: boards, their targets'
//! latest state, events and availability rows, read from MongoDB documents
//! by tolerant decoders; the online / offline rule; the availability
//! windows; and the cross-board view of every target. Pure: documents and
//! `now` in, values out.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use mongodb::bson::{Bson, Document};
use serde::Serialize;

use crate::clock::Timestamp;
use crate::probe::Status;

/// However short a board's interval, it is judged offline only after this
/// long without a sync: a board syncs after its round, and a round plus an
/// upload can take a few seconds.
pub const MIN_OFFLINE_AFTER: Duration = Duration::from_secs(5);

/// Intervals a board may miss before it is judged offline.
pub const MISSED_INTERVALS: f64 = 3.0;

/// How long after `last_seen` a board with this probe interval is judged
/// offline: `max(3 × interval, 5 s)`. A missing or nonsensical interval
/// leaves the 5 s floor.
pub fn offline_after(interval_s: Option<f64>) -> Duration {
    let interval = interval_s
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::ZERO, |s| {
            Duration::try_from_secs_f64(s * MISSED_INTERVALS).unwrap_or(Duration::MAX)
        });
    interval.max(MIN_OFFLINE_AFTER)
}

/// The online rule: a board is offline when `now - last_seen` exceeds
/// [`offline_after`]. Never seen is offline; a `last_seen` in the future
/// (the board's clock is ahead) counts as just now.
pub fn is_online(last_seen: Option<Timestamp>, interval_s: Option<f64>, now: Timestamp) -> bool {
    last_seen.is_some_and(|seen| now.since(seen) <= offline_after(interval_s))
}

/// The windows availability is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Window {
    Day,
    Week,
    Month,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 3] = [Window::Day, Window::Week, Window::Month];

    /// The default of `?window=`.
    pub const DEFAULT: Window = Window::Day;

    /// `24h`, `7d` or `30d` (the only accepted spellings).
    pub fn parse(s: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.as_str() == s)
    }

    /// The spelling in URLs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
            Window::Month => "30d",
        }
    }

    /// How the pages name it.
    pub fn label(self) -> &'static str {
        match self {
            Window::Day => "24 h",
            Window::Week => "7 d",
            Window::Month => "30 d",
        }
    }

    /// Its length.
    pub fn duration(self) -> Duration {
        let days = match self {
            Window::Day => 1,
            Window::Week => 7,
            Window::Month => 30,
        };
        Duration::from_secs(days * 86_400)
    }

    /// Where it starts, seen from `now`.
    pub fn since(self, now: Timestamp) -> Timestamp {
        now.sub(self.duration())
    }

    /// The accepted values, for error messages.
    pub fn allowed() -> String {
        Window::ALL.map(Window::as_str).join(", ")
    }
}

/// A board's counts of its targets by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub working: u64,
    pub degraded: u64,
    pub not_working: u64,
    pub pending: u64,
}

/// One target as a board last reported it (an entry of the board
/// document's `targets` array).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoardTarget {
    pub target: String,
    pub name: Option<String>,
    pub group: Option<String>,
    /// `None`: not probed yet, or a status this version does not know.
    pub status: Option<Status>,
    pub since: Option<Timestamp>,
    pub last_updated: Option<Timestamp>,
    pub loss: Option<f64>,
    pub rtt_avg: Option<f64>,
    /// `"direct"`, a gateway address, or `None` (no route, or not known).
    pub gateway: Option<String>,
    pub cause: Option<String>,
}

/// A board document of the `boards` collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Board {
    pub id: String,
    pub name: Option<String>,
    pub site: Option<String>,
    pub version: Option<String>,
    pub started_at: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    pub first_seen: Option<Timestamp>,
    pub interval_s: Option<f64>,
    pub counts: Counts,
    pub backlog: Option<i64>,
    pub oldest_unsynced: Option<Timestamp>,
    pub upstream_state: Option<String>,
    pub targets: Vec<BoardTarget>,
}

impl Board {
    /// Whether the board is online at `now` (see [`is_online`]).
    pub fn online(&self, now: Timestamp) -> bool {
        is_online(self.last_seen, self.interval_s, now)
    }

    /// Its entry for `target`, if it monitors it.
    pub fn target(&self, target: &str) -> Option<&BoardTarget> {
        self.targets.iter().find(|t| t.target == target)
    }
}

/// An event of the `events` collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub board: String,
    pub target: Option<String>,
    pub ts: Option<Timestamp>,
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub detail: String,
}

/// Availability of one target seen from one board over a window: the
/// server's aggregation, one row per (board, target).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AvailabilityRow {
    pub board: String,
    pub target: String,
    /// Results in the window.
    pub rounds: u64,
    /// Results whose status is not `not_working` (Degraded counts as
    /// available: the target answered).
    pub working: u64,
    /// `working / rounds`, as a fraction in 0..=1.
    pub availability: f64,
}

// Tolerant field access: a field that is missing, null or of another type
// reads as `None`, so one odd document (an older board, a hand edit) costs
// a blank cell, never the page.

fn string(doc: &Document, key: &str) -> Option<String> {
    match doc.get(key)? {
        Bson::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn time(doc: &Document, key: &str) -> Option<Timestamp> {
    match doc.get(key)? {
        Bson::DateTime(d) => Some(Timestamp(d.timestamp_millis())),
        // MongoDB keeps a date a date. The test server (nx-27017 0.8.1)
        // stores a date written by `$set` into an existing document as
        // text, `2026-11-25 12:00:00.123000` (UTC); RFC 3339 is accepted
        // too, for writers that store text on purpose.
        Bson::String(text) => parse_text_time(text),
        _ => None,
    }
}

/// A UTC time written as `YYYY-MM-DD HH:MM:SS[.ffffff]` or RFC 3339.
fn parse_text_time(text: &str) -> Option<Timestamp> {
    use time::format_description::well_known::Rfc3339;
    let t = text.trim();
    // The space-separated form is RFC 3339 with a space for the `T` and
    // no offset (UTC).
    let rfc = if t.len() > 10 && t.as_bytes()[10] == b' ' {
        format!("{}T{}Z", &t[..10], &t[11..])
    } else {
        t.to_string()
    };
    let parsed = time::OffsetDateTime::parse(&rfc, &Rfc3339).ok()?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
        .ok()
        .map(Timestamp)
}

/// A number of any BSON numeric type: writers in other languages store
/// `3.0` as an int as readily as a double.
fn number(doc: &Document, key: &str) -> Option<f64> {
    match doc.get(key)? {
        Bson::Double(v) => Some(*v),
        Bson::Int32(v) => Some(f64::from(*v)),
        // Precision loss above 2^53 is irrelevant for these fields.
        #[allow(clippy::cast_precision_loss)]
        Bson::Int64(v) => Some(*v as f64),
        _ => None,
    }
}

fn integer(doc: &Document, key: &str) -> Option<i64> {
    match doc.get(key)? {
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Int64(v) => Some(*v),
        #[allow(clippy::cast_possible_truncation)]
        Bson::Double(v) if v.is_finite() && v.fract() == 0.0 => Some(*v as i64),
        _ => None,
    }
}

fn count(doc: &Document, key: &str) -> u64 {
    integer(doc, key).map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

impl Counts {
    fn from_doc(doc: &Document) -> Counts {
        Counts {
            working: count(doc, "working"),
            degraded: count(doc, "degraded"),
            not_working: count(doc, "not_working"),
            pending: count(doc, "pending"),
        }
    }
}

impl BoardTarget {
    /// Decode an entry of a board's `targets`; `None` without a `target`.
    pub fn from_doc(doc: &Document) -> Option<BoardTarget> {
        Some(BoardTarget {
            target: string(doc, "target")?,
            name: string(doc, "name"),
            group: string(doc, "group"),
            status: string(doc, "status")
                .as_deref()
                .and_then(|s| s.parse().ok()),
            since: time(doc, "since"),
            last_updated: time(doc, "last_updated"),
            loss: number(doc, "loss"),
            rtt_avg: number(doc, "rtt_avg"),
            gateway: string(doc, "gateway"),
            cause: string(doc, "cause"),
        })
    }
}

impl Board {
    /// Decode a `boards` document; `None` when its `_id` is not a string.
    pub fn from_doc(doc: &Document) -> Option<Board> {
        let targets = match doc.get("targets") {
            Some(Bson::Array(a)) => a
                .iter()
                .filter_map(|t| match t {
                    Bson::Document(d) => BoardTarget::from_doc(d),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let counts = match doc.get("counts") {
            Some(Bson::Document(c)) => Counts::from_doc(c),
            _ => Counts::default(),
        };
        Some(Board {
            id: string(doc, "_id")?,
            name: string(doc, "name"),
            site: string(doc, "site"),
            version: string(doc, "version"),
            started_at: time(doc, "started_at"),
            last_seen: time(doc, "last_seen"),
            first_seen: time(doc, "first_seen"),
            interval_s: number(doc, "interval_s"),
            counts,
            backlog: integer(doc, "backlog"),
            oldest_unsynced: time(doc, "oldest_unsynced"),
            upstream_state: string(doc, "upstream_state"),
            targets,
        })
    }
}

impl Event {
    /// Decode an `events` document; `None` without a `board`.
    pub fn from_doc(doc: &Document) -> Option<Event> {
        Some(Event {
            board: string(doc, "board")?,
            target: string(doc, "target"),
            ts: time(doc, "ts"),
            kind: string(doc, "kind").unwrap_or_default(),
            from: string(doc, "from"),
            to: string(doc, "to"),
            detail: string(doc, "detail").unwrap_or_default(),
        })
    }
}

impl AvailabilityRow {
    /// Decode a row of the availability pipeline's output (see
    /// `pipeline::availability`); `None` when `board` or `target` is
    /// missing (results without them group under a null key).
    pub fn from_doc(doc: &Document) -> Option<AvailabilityRow> {
        let rounds = u64::try_from(integer(doc, "rounds")?).ok()?;
        let working = u64::try_from(integer(doc, "working").unwrap_or(0)).unwrap_or(0);
        Some(AvailabilityRow {
            board: string(doc, "board")?,
            target: string(doc, "target")?,
            rounds,
            working,
            availability: number(doc, "availability").unwrap_or(f64::NAN),
        })
    }
}

/// One board's view of a target, for the fleet-wide table.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting<'a> {
    pub board: &'a str,
    pub online: bool,
    pub entry: &'a BoardTarget,
}

/// A target across the fleet: every board that monitors it and what each
/// last saw.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetTarget<'a> {
    pub target: &'a str,
    /// The first name a board gives it (boards usually share a sheet).
    pub name: Option<&'a str>,
    /// By board id.
    pub sightings: Vec<Sighting<'a>>,
}

/// How bad a status is, worst highest; pending is least alarming.
fn severity(status: Option<Status>) -> u8 {
    match status {
        Some(Status::NotWorking) => 3,
        Some(Status::Degraded) => 2,
        Some(Status::Working) => 1,
        None => 0,
    }
}

impl FleetTarget<'_> {
    /// The worst status any online board reports, else the worst of all
    /// (a target only offline boards monitor still shows what they said).
    pub fn worst(&self) -> Option<Status> {
        let worst_of = |online_only: bool| {
            self.sightings
                .iter()
                .filter(|s| s.online || !online_only)
                .map(|s| s.entry.status)
                .max_by_key(|s| severity(*s))
        };
        worst_of(true).or_else(|| worst_of(false)).flatten()
    }

    /// Board ids grouped by what they see, worst first:
    /// `[(Some(NotWorking), ["closet-3"]), (Some(Working), ["closet-1"])]`.
    pub fn by_status(&self) -> Vec<(Option<Status>, Vec<&Sighting<'_>>)> {
        let mut groups: Vec<(Option<Status>, Vec<&Sighting<'_>>)> = Vec::new();
        for s in &self.sightings {
            match groups.iter_mut().find(|(st, _)| *st == s.entry.status) {
                Some((_, v)) => v.push(s),
                None => groups.push((s.entry.status, vec![s])),
            }
        }
        groups.sort_by_key(|(st, _)| std::cmp::Reverse(severity(*st)));
        groups
    }
}

/// Addresses in address order (IPv4 before IPv6, numerically), host names
/// after them alphabetically.
pub fn compare_targets(a: &str, b: &str) -> Ordering {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// Every target any board monitors, with what each board last saw; worst
/// status first (what an operator looks for), then in address order.
pub fn fleet_targets(boards: &[Board], now: Timestamp) -> Vec<FleetTarget<'_>> {
    let mut by_target: BTreeMap<&str, FleetTarget<'_>> = BTreeMap::new();
    for board in boards {
        let online = board.online(now);
        for entry in &board.targets {
            let t = by_target
                .entry(entry.target.as_str())
                .or_insert_with(|| FleetTarget {
                    target: &entry.target,
                    name: None,
                    sightings: Vec::new(),
                });
            if t.name.is_none() {
                t.name = entry.name.as_deref();
            }
            t.sightings.push(Sighting {
                board: &board.id,
                online,
                entry,
            });
        }
    }
    let mut targets: Vec<FleetTarget<'_>> = by_target.into_values().collect();
    for t in &mut targets {
        t.sightings.sort_by(|a, b| a.board.cmp(b.board));
    }
    targets.sort_by(|a, b| {
        severity(b.worst())
            .cmp(&severity(a.worst()))
            .then_with(|| compare_targets(a.target, b.target))
    });
    targets
}

/// Boards in id order.
pub fn sort_boards(boards: &mut [Board]) {
    boards.sort_by(|a, b| a.id.cmp(&b.id));
}

/// Availability rows by board, then target in address order.
pub fn sort_availability(rows: &mut [AvailabilityRow]) {
    rows.sort_by(|a, b| {
        a.board
            .cmp(&b.board)
            .then_with(|| compare_targets(&a.target, &b.target))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, DateTime};

    const NOW: Timestamp = Timestamp(1_795_651_111_000);

    fn secs_ago(s: u64) -> Option<Timestamp> {
        Some(NOW.sub(Duration::from_secs(s)))
    }

    #[test]
    fn online_rule_three_intervals_with_a_floor() {
        // 60 s interval: offline after 180 s.
        assert!(is_online(secs_ago(180), Some(60.0), NOW));
        assert!(!is_online(secs_ago(181), Some(60.0), NOW));
        // 1 s interval: the 5 s floor wins over 3 s.
        assert!(is_online(secs_ago(5), Some(1.0), NOW));
        assert!(!is_online(secs_ago(6), Some(1.0), NOW));
        // No usable interval: the floor.
        assert!(is_online(secs_ago(4), None, NOW));
        assert!(!is_online(secs_ago(6), Some(f64::NAN), NOW));
        assert!(!is_online(secs_ago(6), Some(-60.0), NOW));
        // Never seen, or seen "in the future".
        assert!(!is_online(None, Some(60.0), NOW));
        assert!(is_online(
            Some(NOW.add(Duration::from_secs(30))),
            Some(1.0),
            NOW
        ));
        // A huge interval does not overflow.
        assert!(is_online(secs_ago(86_400), Some(f64::MAX), NOW));
    }

    #[test]
    fn windows_parse_only_their_spellings() {
        assert_eq!(Window::parse("24h"), Some(Window::Day));
        assert_eq!(Window::parse("7d"), Some(Window::Week));
        assert_eq!(Window::parse("30d"), Some(Window::Month));
        for bad in ["", "1d", "24H", "7", "30d ", "week"] {
            assert_eq!(Window::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Window::allowed(), "24h, 7d, 30d");
        assert_eq!(
            Window::Week.since(NOW),
            NOW.sub(Duration::from_secs(7 * 86_400))
        );
    }

    #[test]
    fn board_documents_decode_tolerantly() {
        let seen = DateTime::from_millis(NOW.0 - 1000);
        let d = doc! {
            "_id": "closet-1", "name": "Closet 1", "site": null, "version": "0.1.0",
            "last_seen": seen, "interval_s": 60_i32,
            "counts": {"working": 2_i64, "degraded": 0_i32, "not_working": 1.0, "pending": -1},
            "backlog": 12_i64, "oldest_unsynced": null, "upstream_state": "synced",
            "targets": [
                {"target": "198.19.0.1", "name": "<b>core</b>", "group": null, "status": "not_working",
                 "since": seen, "last_updated": seen, "loss": 1.0, "rtt_avg": null,
                 "gateway": "direct", "cause": "no reply"},
                {"target": "198.19.0.2", "status": null},
                {"name": "no target field: skipped"},
                "not a document",
            ],
        };
        let b = Board::from_doc(&d).expect("decodes");
        assert_eq!(b.id, "closet-1");
        assert_eq!(b.site, None);
        assert_eq!(b.interval_s, Some(60.0));
        assert_eq!(
            b.counts,
            Counts {
                working: 2,
                degraded: 0,
                not_working: 1,
                pending: 0
            }
        );
        assert_eq!(b.backlog, Some(12));
        assert_eq!(b.last_seen, Some(Timestamp(NOW.0 - 1000)));
        assert_eq!(
            parse_text_time("1970-01-01 00:00:01.500000"),
            Some(Timestamp(1500))
        );
        assert_eq!(
            parse_text_time("1970-01-01 00:00:02"),
            Some(Timestamp(2000))
        );
        assert_eq!(
            parse_text_time("1970-01-01T00:00:03.250Z"),
            Some(Timestamp(3250))
        );
        assert_eq!(parse_text_time("yesterday"), None);
        assert!(b.online(NOW));
        assert_eq!(b.targets.len(), 2);
        assert_eq!(b.targets[0].status, Some(Status::NotWorking));
        assert_eq!(b.targets[0].gateway.as_deref(), Some("direct"));
        assert_eq!(b.targets[1].status, None);
        assert!(Board::from_doc(&doc! {"_id": 5}).is_none());
    }

    #[test]
    fn availability_rows_decode() {
        let r = AvailabilityRow::from_doc(&doc! {
            "_id": "a\u{1f}198.19.0.1", "board": "a", "target": "198.19.0.1",
            "rounds": 10_i32, "working": 7_i64, "availability": 0.7,
        })
        .expect("decodes");
        assert_eq!((r.rounds, r.working, r.availability), (10, 7, 0.7));
        assert!(
            AvailabilityRow::from_doc(&doc! {"board": null, "target": "x", "rounds": 1}).is_none()
        );
    }

    fn board(id: &str, last_seen: Option<Timestamp>, targets: &[(&str, Option<Status>)]) -> Board {
        Board {
            id: id.into(),
            last_seen,
            interval_s: Some(60.0),
            targets: targets
                .iter()
                .map(|(t, s)| BoardTarget {
                    target: (*t).into(),
                    status: *s,
                    ..BoardTarget::default()
                })
                .collect(),
            ..Board::default()
        }
    }

    #[test]
    fn fleet_targets_group_by_address_worst_first() {
        let boards = vec![
            board(
                "closet-1",
                secs_ago(10),
                &[
                    ("198.19.0.10", Some(Status::Working)),
                    ("198.19.0.9", Some(Status::Working)),
                    ("2001:db8::1", Some(Status::Working)),
                ],
            ),
            board(
                "closet-3",
                secs_ago(10),
                &[
                    ("198.19.0.10", Some(Status::NotWorking)),
                    ("host.example", None),
                ],
            ),
            // Offline: its Not Working is stale and does not make 198.19.0.9 worst.
            board(
                "old",
                secs_ago(100_000),
                &[("198.19.0.9", Some(Status::NotWorking))],
            ),
        ];
        let fleet = fleet_targets(&boards, NOW);
        let order: Vec<&str> = fleet.iter().map(|t| t.target).collect();
        assert_eq!(
            order,
            ["198.19.0.10", "198.19.0.9", "2001:db8::1", "host.example"]
        );
        let first = &fleet[0];
        assert_eq!(first.worst(), Some(Status::NotWorking));
        let groups = first.by_status();
        assert_eq!(groups[0].0, Some(Status::NotWorking));
        assert_eq!(groups[0].1[0].board, "closet-3");
        assert_eq!(groups[1].0, Some(Status::Working));
        assert_eq!(groups[1].1[0].board, "closet-1");
        assert_eq!(fleet[1].worst(), Some(Status::Working));
        assert_eq!(fleet[1].sightings.len(), 2);
        assert!(!fleet[1].sightings[1].online);
        assert_eq!(fleet[3].worst(), None);
    }
}
