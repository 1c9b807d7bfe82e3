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

    /// How many hourly rollups it covers per pair.
    pub fn hours(self) -> i64 {
        (self.duration().as_secs() / 3600) as i64
    }

    /// The start of its first hour seen from `now`: the window is the
    /// [`Window::hours`] whole UTC hours that end with the one under way,
    /// so 30 d reads at most 720 rollups per pair.
    pub fn first_hour(self, now: Timestamp) -> Timestamp {
        let current = crate::store::rollup::hour_start(now);
        Timestamp(current.millis() - (self.hours() - 1) * crate::store::rollup::HOUR_MS)
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
/// server's aggregation of its hourly rollups, one row per (board, target).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AvailabilityRow {
    pub board: String,
    pub target: String,
    /// Rounds in the window.
    pub rounds: u64,
    /// Rounds whose own verdict was not Not Working (Degraded counts as
    /// available: the target answered).
    pub working: u64,
    /// Of those, the Degraded ones.
    pub degraded: u64,
    /// `working / rounds`, as a fraction in 0..=1.
    pub availability: f64,
    /// The average RTT over the rounds that had one, in ms.
    pub rtt_avg_ms: Option<f64>,
    /// The newest hour with rounds.
    pub latest_hour: Option<Timestamp>,
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
    /// missing, or the hours hold no rounds.
    pub fn from_doc(doc: &Document) -> Option<AvailabilityRow> {
        let rounds = u64::try_from(integer(doc, "rounds")?).ok()?;
        let down = count(doc, "not_working").min(rounds);
        let working = rounds - down;
        let rtt_rounds = count(doc, "rtt_rounds");
        Some(AvailabilityRow {
            board: string(doc, "board")?,
            target: string(doc, "target")?,
            rounds,
            working,
            degraded: count(doc, "degraded").min(working),
            availability: crate::store::rollup::fraction(rounds, down)?,
            rtt_avg_ms: number(doc, "rtt_sum_ms")
                .filter(|_| rtt_rounds > 0)
                .map(|sum| sum / rtt_rounds as f64),
            latest_hour: integer(doc, "latest_hour_ms").map(Timestamp),
        })
    }
}

/// Availability per hour: one bar of a chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourRow {
    pub hour: Timestamp,
    pub rounds: u64,
    pub not_working: u64,
}

impl HourRow {
    /// Decode a row of `pipeline::hourly`.
    pub fn from_doc(doc: &Document) -> Option<HourRow> {
        Some(HourRow {
            hour: Timestamp(integer(doc, "_id")?),
            rounds: count(doc, "rounds"),
            not_working: count(doc, "not_working"),
        })
    }
}

/// A board whose rollups are stamped ahead of central's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockAhead {
    pub board: String,
    /// The latest hour it uploaded.
    pub latest_hour: Timestamp,
}

impl ClockAhead {
    /// Decode a row of `pipeline::clock_ahead`.
    pub fn from_doc(doc: &Document) -> Option<ClockAhead> {
        Some(ClockAhead {
            board: string(doc, "_id")?,
            latest_hour: Timestamp(integer(doc, "latest_hour_ms")?),
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

/// Boards in id order: the API's order, stable across pages.
pub fn sort_boards_by_id(boards: &mut [&Board]) {
    boards.sort_by(|a, b| a.id.cmp(&b.id));
}

/// Boards worst first, for the fleet page: offline before online, then
/// more Not Working targets, then more Degraded, then by id.
pub fn sort_boards_worst_first(boards: &mut [&Board], now: Timestamp) {
    boards.sort_by(|a, b| {
        a.online(now)
            .cmp(&b.online(now))
            .then_with(|| b.counts.not_working.cmp(&a.counts.not_working))
            .then_with(|| b.counts.degraded.cmp(&a.counts.degraded))
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// Whether a search term is in `text`, ignoring case.
fn contains_folded(text: &str, needle_lower: &str) -> bool {
    text.to_lowercase().contains(needle_lower)
}

/// A search of the fleet pages (`?q=`): a piece of an address, a name, a
/// group, a board id or site, ignoring case. Blank matches everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search(String);

impl Search {
    pub fn new(q: Option<&str>) -> Search {
        Search(q.unwrap_or("").trim().to_lowercase())
    }

    pub fn is_blank(&self) -> bool {
        self.0.is_empty()
    }

    /// The term as typed (lower case), for the search box.
    pub fn term(&self) -> &str {
        &self.0
    }

    /// A board by its id, name or site.
    pub fn board(&self, b: &Board) -> bool {
        self.is_blank()
            || [Some(&b.id), b.name.as_ref(), b.site.as_ref()]
                .into_iter()
                .flatten()
                .any(|t| contains_folded(t, &self.0))
    }

    /// A target by its address, or the name or group any board gives it.
    pub fn target(&self, t: &FleetTarget<'_>) -> bool {
        self.is_blank()
            || contains_folded(t.target, &self.0)
            || t.sightings.iter().any(|s| {
                [s.entry.name.as_deref(), s.entry.group.as_deref()]
                    .into_iter()
                    .flatten()
                    .any(|n| contains_folded(n, &self.0))
            })
    }
}

/// Every (board, target) pair the boards report, by board id and then
/// address order: what the availability list pages through.
pub fn board_target_pairs(boards: &[Board]) -> Vec<(String, String)> {
    let mut sorted: Vec<&Board> = boards.iter().collect();
    sort_boards_by_id(&mut sorted);
    sorted
        .into_iter()
        .flat_map(|b| {
            let mut targets: Vec<&str> = b.targets.iter().map(|t| t.target.as_str()).collect();
            targets.sort_by(|x, y| compare_targets(x, y));
            targets.dedup();
            targets
                .into_iter()
                .map(|t| (b.id.clone(), t.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A page of [`board_target_pairs`] as each board's targets on it, in
/// page order: what the page's queries are, one per board.
pub fn targets_by_board(pairs: &[(String, String)]) -> Vec<(&str, Vec<&str>)> {
    let mut by_board: Vec<(&str, Vec<&str>)> = Vec::new();
    for (b, t) in pairs {
        match by_board.last_mut() {
            Some((id, targets)) if id == b => targets.push(t),
            _ => by_board.push((b, vec![t])),
        }
    }
    by_board
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
        // NOW is not on an hour: the window starts 167 hours before the
        // start of NOW's hour.
        let hour = crate::store::rollup::hour_start(NOW);
        assert_eq!(Window::Week.hours(), 168);
        assert_eq!(
            Window::Week.first_hour(NOW),
            hour.sub(Duration::from_secs(167 * 3600))
        );
        assert_eq!(Window::Month.hours(), 720);
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
        // As either server returns the sums: 32- or 64-bit integers.
        let r = AvailabilityRow::from_doc(&doc! {
            "_id": "a\u{1f}198.19.0.1", "board": "a", "target": "198.19.0.1",
            "rounds": 10_i32, "not_working": 3_i64, "degraded": 2_i32,
            "rtt_sum_ms": 14.0, "rtt_rounds": 7_i32, "latest_hour_ms": 1_795_608_000_000_i64,
        })
        .expect("decodes");
        assert_eq!(
            (r.rounds, r.working, r.degraded, r.availability),
            (10, 7, 2, 0.7)
        );
        assert_eq!(r.rtt_avg_ms, Some(2.0));
        assert_eq!(r.latest_hour, Some(Timestamp(1_795_608_000_000)));
        // More Not Working than rounds (a hand edit) cannot go negative.
        let odd = AvailabilityRow::from_doc(&doc! {
            "board": "a", "target": "x", "rounds": 2, "not_working": 5, "rtt_rounds": 0,
        })
        .expect("decodes");
        assert_eq!(
            (odd.working, odd.availability, odd.rtt_avg_ms),
            (0, 0.0, None)
        );
        assert!(
            AvailabilityRow::from_doc(&doc! {"board": "a", "target": "x", "rounds": 0}).is_none()
        );
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
    fn boards_sort_worst_first_and_pairs_by_id_then_address() {
        let mut down = board(
            "b-down",
            secs_ago(10),
            &[("198.19.0.2", None), ("198.19.0.10", None)],
        );
        down.counts.not_working = 2;
        let mut degraded = board("a-degraded", secs_ago(10), &[]);
        degraded.counts.degraded = 1;
        let offline = board("c-offline", secs_ago(86_400), &[("198.19.0.1", None)]);
        let fine = board("a-fine", secs_ago(10), &[]);
        let all = [fine, degraded, down, offline];
        let mut order: Vec<&Board> = all.iter().collect();
        sort_boards_worst_first(&mut order, NOW);
        let ids: Vec<&str> = order.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["c-offline", "b-down", "a-degraded", "a-fine"]);
        let pairs = board_target_pairs(&all);
        let as_str: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(b, t)| (b.as_str(), t.as_str()))
            .collect();
        assert_eq!(
            as_str,
            [
                ("b-down", "198.19.0.2"),
                ("b-down", "198.19.0.10"),
                ("c-offline", "198.19.0.1")
            ]
        );
    }

    #[test]
    fn search_matches_addresses_names_groups_and_boards_ignoring_case() {
        let mut b = board(
            "closet-1",
            secs_ago(10),
            &[("198.19.0.10", Some(Status::Working))],
        );
        b.site = Some("Amsterdam".into());
        b.targets[0].name = Some("Core Switch".into());
        b.targets[0].group = Some("LAN".into());
        let boards = [b];
        let fleet = fleet_targets(&boards, NOW);
        for q in ["0.10", "core sw", "lan", " LAN "] {
            assert!(Search::new(Some(q)).target(&fleet[0]), "{q}");
        }
        assert!(!Search::new(Some("wan")).target(&fleet[0]));
        assert!(Search::new(Some("amster")).board(&boards[0]));
        assert!(Search::new(Some("CLOSET")).board(&boards[0]));
        assert!(!Search::new(Some("closet-2")).board(&boards[0]));
        assert!(Search::new(None).target(&fleet[0]) && Search::new(Some("  ")).is_blank());
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
