//! What the monitor writes to the store and reads back: one round's
//! results, traces and events. Plain data, shared by the monitor, the
//! store, the dashboard and the upstream sync.

use serde::Serialize;

use crate::clock::Timestamp;
use crate::probe::{Gateway, Hop, RttSummary, Status};

/// The number of a round, counted on from the store after a restart so
/// that (board, target, round) stays unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct RoundId(pub u64);

/// Everything one round produced, written in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoundRecord {
    pub round: RoundId,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub results: Vec<ResultRecord>,
    pub traces: Vec<TraceRecord>,
    pub events: Vec<EventRecord>,
    /// Alert messages to queue, one per channel.
    pub notifications: Vec<QueuedNotification>,
    /// Messages that only say again what is firing (Alertmanager's
    /// refresh): each replaces its channel's refresh still waiting, and is
    /// not kept once delivered.
    pub refreshes: Vec<QueuedNotification>,
    /// The alerts firing after this round, when the round changed them.
    pub alerts: Option<Vec<AlertRow>>,
}

/// One alert message for one channel, as queued and sent.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedNotification {
    /// The channel's label (see `alerts::settings::Channel::label`).
    pub channel: String,
    pub made_at: Timestamp,
    pub subject: String,
    pub content_type: String,
    /// The request body (or the mail's text) as the channel takes it.
    pub body: Vec<u8>,
}

/// A queued notification read back for sending.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingNotification {
    pub id: i64,
    pub attempts: u32,
    pub notification: QueuedNotification,
}

/// How a notification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// The channel answered that it will not take it (4xx, 5xx for SMTP).
    Refused,
    /// Still failing when it was older than `give_up_after`.
    GivenUp,
}

impl Outcome {
    /// The word stored, shown and used as the metric's `result` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Refused => "refused",
            Outcome::GivenUp => "given_up",
        }
    }

    fn from_stored(s: &str) -> Option<Outcome> {
        [Outcome::Delivered, Outcome::Refused, Outcome::GivenUp]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// What one attempt at a queued notification came to, as the store
/// records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptRecord {
    /// Done: delivered, refused or given up; `error` says why when it was
    /// not delivered.
    Settled {
        id: i64,
        outcome: Outcome,
        error: Option<String>,
    },
    /// Tried again at `next_at`, with its channel's later messages behind it.
    Retry {
        id: i64,
        channel: String,
        next_at: Timestamp,
        error: String,
    },
}

/// A notification as the page of recent ones shows it: waiting (no
/// outcome yet) or settled.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRecord {
    pub id: i64,
    pub channel: String,
    pub made_at: Timestamp,
    pub subject: String,
    pub attempts: u32,
    /// Why the last attempt failed, or the refusal.
    pub last_error: Option<String>,
    pub outcome: Option<Outcome>,
    /// When it settled, or when it is tried next while it waits.
    pub at: Timestamp,
}

impl NotificationRecord {
    /// The stored outcome; an unknown word (a newer version's) reads as
    /// still waiting rather than failing the page.
    pub(super) fn outcome_from(stored: Option<String>) -> Option<Outcome> {
        stored.as_deref().and_then(Outcome::from_stored)
    }
}

/// A silence as the store keeps it; `scope` is
/// `alerts::SilenceScope::key`'s text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceRow {
    pub scope: String,
    pub until: Timestamp,
    pub made_at: Timestamp,
    pub reason: Option<String>,
}

/// A firing alert as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub key: String,
    pub since: Timestamp,
    pub last_sent: Option<Timestamp>,
    pub detail: String,
    pub name: Option<String>,
    pub group: Option<String>,
}

/// One target's ping result in one round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultRecord {
    /// The target's key: the address as the sheet gives it (an IP in its
    /// canonical form, or a lower-case host name).
    pub target: String,
    pub round: RoundId,
    pub ts: Timestamp,
    pub name: Option<String>,
    pub group: Option<String>,
    /// This round's own verdict.
    pub status: Status,
    /// The status shown after this round, once `down_after` / `up_after`
    /// smoothed it.
    pub reported: Status,
    pub sent: u32,
    pub received: u32,
    pub loss: f64,
    pub rtt: Option<RttSummary>,
    pub gateway: Option<Gateway>,
}

/// One traceroute of one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceRecord {
    pub target: String,
    pub round: RoundId,
    pub ts: Timestamp,
    pub hops: Vec<Hop>,
    pub reached: bool,
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A target's reported status changed (`from` / `to` are status names).
    Status,
    /// A target's path changed (`from` / `to` are hop lists, `*` for silence).
    Path,
    /// The board's own gateway stopped or started answering.
    Gateway,
    /// The targets sheet was loaded, reloaded or rejected.
    Targets,
    /// Something about the store itself: rows dropped, file recreated.
    Store,
    /// Alerting: a silence set or lifted.
    Alerts,
}

impl EventKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Status => "status",
            EventKind::Path => "path",
            EventKind::Gateway => "gateway",
            EventKind::Targets => "targets",
            EventKind::Store => "store",
            EventKind::Alerts => "alerts",
        }
    }

    /// The inverse of [`EventKind::as_str`].
    pub fn parse(s: &str) -> Option<EventKind> {
        Some(match s {
            "status" => EventKind::Status,
            "path" => EventKind::Path,
            "gateway" => EventKind::Gateway,
            "targets" => EventKind::Targets,
            "store" => EventKind::Store,
            "alerts" => EventKind::Alerts,
            _ => return None,
        })
    }
}

/// A change worth remembering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    /// The target concerned; `None` for the board itself.
    pub target: Option<String>,
    pub ts: Timestamp,
    pub kind: EventKind,
    pub from: Option<String>,
    pub to: Option<String>,
    /// One sentence for the operator, e.g. the cause of an outage.
    pub detail: String,
}

/// Uptime fractions (rounds not Not Working / rounds) over the standard
/// windows; `None` where the window has no rounds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Uptime {
    pub h24: Option<f64>,
    pub d7: Option<f64>,
    pub d30: Option<f64>,
}

/// What retention dropped since the store was created (kept across
/// restarts), so the dashboard can show that history has gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Dropped {
    pub results: u64,
    pub traces: u64,
    pub events: u64,
    /// Rows dropped before the upstream sync had sent them.
    pub unsynced: u64,
    /// Hourly rollup rows (one target, one hour) dropped.
    pub rollups: u64,
}

/// The last outbox row the server refused: when it was set aside and the
/// server's reason (collection, code, message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastRefusal {
    pub at: Timestamp,
    pub reason: String,
}

/// The store's own figures, for the header and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct StoreStats {
    /// Rows in the outbox waiting to be sent: results, traces and events
    /// not yet upstream (the refused ones are not counted here).
    pub backlog: u64,
    /// Outbox rows the server refused, set aside: never sent again, kept
    /// until the size cap drops them.
    pub refused: u64,
    /// Rows the server refused since the file was created.
    pub refused_total: u64,
    /// The newest refusal still set aside.
    pub last_refusal: Option<LastRefusal>,
    /// When the oldest outbox row was written.
    pub oldest_unsynced: Option<Timestamp>,
    /// Size of the database file (and its WAL).
    pub db_bytes: u64,
    pub dropped: Dropped,
    /// Store operations that failed since the monitor started (a full
    /// disk, a damaged file); counted by the monitor, 0 from the store.
    pub errors: u64,
}
