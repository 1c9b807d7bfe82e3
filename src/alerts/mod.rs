//! Alerts: telling people when something breaks.
//!
//! - [`rules`] is the pure core: from what a round observed, which alerts
//!   fire, remind and resolve (one alert for a dead board gateway, holding
//!   the targets behind it; silences);
//! - [`settings`] says which channels are configured and the rules;
//! - [`board`] is a board's alerting between rounds: the book, the
//!   silences, and the round's notices as one queued message per channel
//!   (stored in the round's own transaction by the monitor);
//! - [`message`] writes a round's notices for each channel (text, our
//!   JSON, Slack, Discord, Alertmanager's API v2);
//! - [`deliver`] posts a message over HTTP and says whether it arrived,
//!   was refused (4xx, not retried) or failed (tried again); [`email`]
//!   does the same over SMTP;
//! - [`sender`] sends the store's queue, a pass at a time: a courier a
//!   channel, backoff, refusals and giving up, test messages, and the
//!   counts `/metrics` and the `/alerts` page show.
//!
//! The monitor holds a [`BoardAlerts`] and hands it each round's
//! [`Snapshot`](crate::monitor::Snapshot), the one monitor type read here;
//! `edgeprobe run` runs the [`sender::AlertSender`] as a task of its own,
//! so a channel that hangs never slows the probing.
//! `edgeprobe central` reuses [`message`], [`settings`] and the couriers
//! for its board-offline alerts (`crate::central::alerting`).

pub mod board;
pub mod deliver;
pub mod email;
pub mod message;
pub mod rules;
pub mod sender;
pub mod settings;

pub use board::{AlertsView, BoardAlerts, RoundAlerts};
pub use rules::{
    ActiveAlert, AlertBook, AlertKind, AlertRules, Notice, NoticeKind, Observed, Silence,
    SilenceScope, TargetObserved,
};
