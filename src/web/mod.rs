//! The dashboard: hyper 1.x serving maud pages, JSON, `/metrics`.
//!
//! Routes (all `GET` also answer `HEAD`):
//!
//! | path | what |
//! |---|---|
//! | `/` | header and table, problems first, 100 rows a page; `?status=&group=&q=&sort=&dir=&page=&page_size=`; `ETag`, 304 |
//! | `/targets/{key}` | one target: history, RTT chart, path, events |
//! | `/static/style.css` | the stylesheet |
//! | `/alerts` | alerts firing, silences, channels, recent notifications |
//! | `/api/v1/status` | JSON of the header and a page of rows (the same parameters, sheet order unless `sort=`); `ETag`, 304 |
//! | `/api/v1/alerts` | JSON of the alerts page |
//! | `/api/v1/targets/{key}` | JSON of one row plus its history |
//! | `/metrics` | Prometheus text format |
//! | `/healthz` | 200 while rounds keep finishing, else 503 |
//! | `POST /admin/targets?filename=F` | replace the sheet (bearer token) |
//! | `POST /admin/probe-now` | start a round now (bearer token) |
//! | `POST /admin/locate` | blink every LED together for 30 s (bearer token) |
//! | `POST /admin/silence?target=\|group=\|board&for=2h&reason=` | silence alerts (bearer token) |
//! | `POST /admin/test-alert` | a test message through every channel (bearer token) |
//!
//! The pure parts (views, table, alerts, svg, api, metrics, query, admin) render from a
//! [`Snapshot`] and `now`; [`serve`] is the thin edge around them. The
//! HTTP edge under it (connection cap, timeouts, security headers, the
//! page frame and shared view parts) is [`crate::http`], which
//! `edgeprobe central` serves with too.

mod admin;
mod alerts;
mod api;
mod metrics;
mod query;
mod server;
mod svg;
mod table;
mod views;

#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::alerts::sender::AlertSender;
use crate::http::{AllowedHosts, Limits};
use crate::leds::LedPanel;
use crate::monitor::{Command, Snapshot};
use crate::store::History;

pub use crate::monitor::{health, Health, HEALTH_MISSED_ROUNDS};
pub use query::IndexQuery;

/// What the dashboard reads and whom it asks.
pub struct WebState {
    /// The monitor's latest state; every request renders from a clone.
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    /// The board's history. Its calls block: the server runs them on
    /// tokio's blocking pool.
    pub history: Arc<dyn History>,
    /// The bearer token for `/admin/...`; `None` (or empty) turns those
    /// endpoints off (they answer 403 saying how to turn them on).
    pub admin_token: Option<String>,
    /// Where admin requests go.
    pub commands: mpsc::Sender<Command>,
    /// The LEDs: what they show (for the header and the API) and locate.
    pub leds: LedPanel,
    /// The alert channels: what was sent (`/metrics`, `/alerts`) and
    /// test messages (`POST /admin/test-alert`).
    pub alerts: Arc<AlertSender>,
    pub limits: Limits,
    /// The names it answers to besides its addresses (`[web]
    /// allowed_hosts`); others get 421.
    pub allowed_hosts: Arc<AllowedHosts>,
    /// HTTPS with this certificate (`[web] tls_certificate_file` and
    /// `tls_key_file`); `None`: plain HTTP.
    pub tls: Option<crate::http::tls::TlsAcceptor>,
}

/// Where a board's operator adds a name the dashboard answers to.
pub const WHERE_TO_ADD_HOSTS: &str = "`allowed_hosts` in the `[web]` section of the config file";

/// Serve the dashboard on `listener` until `shutdown` resolves.
///
/// On shutdown the listener closes at once; requests in flight finish
/// (idle keep-alive connections close) for up to
/// [`Limits::shutdown_grace`], then the rest are dropped. No error ends
/// the server: a connection's error is that connection's, and failing
/// accepts are retried with pauses (see [`crate::http::serve`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<WebState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    server::serve(listener, state, shutdown).await
}
