//! Alerts: telling people when something breaks.
//!
//! - [`rules`] is the pure core: from what a round observed, which alerts
//!   fire, remind and resolve (one alert for a dead board gateway, holding
//!   the targets behind it; silences);
//! - [`settings`] says which channels are configured and the rules;
//! - [`board`] is a board's alerting between rounds: the book, and the
//!   round's notices as one queued message per channel;
//! - [`message`] writes a round's notices for each channel (text, our
//!   JSON, Slack, Discord, Alertmanager's API v2);
//! - [`deliver`] posts a message over HTTP and says whether it arrived,
//!   was refused (4xx, not retried) or failed (tried again); [`email`]
//!   does the same over SMTP;
//! - [`sender`] is one pass over the store's queue: a courier a channel,
//!   backoff, refusals and giving up.
//!
//! Work in progress for issue 17: the monitor does not feed the book yet,
//! and nothing runs the sender; the dashboard, the API, silences from the
//! admin endpoints and central's board-offline alerts come next.

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
