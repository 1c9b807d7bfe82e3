//! `edgeprobe central`: the fleet dashboard and JSON API over the central
//! MongoDB that the boards sync to.
//!
//! Stateless: every request reads the database, so any number of these can
//! run behind a load balancer; MongoDB is what scales. Routes (all `GET`,
//! also answering `HEAD`):
//!
//! | path | what |
//! |---|---|
//! | `/` | every board (online / offline) and every target across boards |
//! | `/boards/{id}` | one board: its targets table, counts, backlog, events |
//! | `/targets/{addr}` | one target per board: status, availability 24 h / 7 d / 30 d |
//! | `/availability?window=24h\|7d\|30d` | availability per board and target |
//! | `/static/style.css` | the stylesheet both dashboards share (`crate::http`) |
//! | `/api/v1/boards` | JSON: boards |
//! | `/api/v1/availability?window=` | JSON: availability rows (bad window: 400) |
//! | `/api/v1/targets/{addr}` | JSON: one target per board |
//! | `/healthz` | 200 when MongoDB answers a ping, else 503 with the reason |
//!
//! Layers: [`model`] (documents to values, the online rule, windows),
//! [`pipeline`] (the queries as documents), [`api`] and [`views`] (JSON
//! and pages) are pure; [`source`] is the MongoDB edge behind the
//! [`FleetSource`] trait; `routes` ties them to the shared HTTP edge, [`crate::http`].
//!
//! The documents read are the fleet schema ([`crate::fleet::schema`]:
//! `results`, `events`, `boards`) that the boards' sync writes; central
//! never writes them. Where the database is comes as a
//! [`crate::fleet::MongoSettings`].
//!
//! Alerts (`--alerts-config`): central raises what a board cannot send
//! itself, that it went offline and that it is back. [`alerting`] is the
//! pure part (which boards are offline, the deterministic id of an outage,
//! what each replica does this pass, the messages); [`claims`] is the one
//! collection central writes, `alert_claims`, where the replicas agree on
//! who sends each message, so any number of them send it once and none
//! keeps state; [`alerter`] is the loop that ties them to the board's
//! channels.

pub mod alerter;
pub mod alerting;
pub mod api;
pub mod charts;
pub mod claims;
pub mod indexes;
pub mod model;
pub mod paging;
pub mod pipeline;
pub mod public_url;
mod routes;
pub mod source;
pub mod summary;
pub mod views;

use std::future::Future;
use std::sync::Arc;

pub use model::{is_online, offline_after, Window};
pub use source::{FleetError, FleetSource, MongoFleet};

use crate::http::Limits;

/// What the fleet dashboard reads from and how it serves.
pub struct CentralState {
    /// The fleet's database.
    pub source: Arc<dyn FleetSource>,
    /// The database name, shown on the pages.
    pub database: String,
    pub limits: Limits,
    /// The path prefix it is published under.
    pub base_path: public_url::BasePath,
    /// The board documents, read at most every few seconds.
    pub summary: summary::SummaryCache,
    /// The cap on requests reading MongoDB at once.
    pub slots: summary::QuerySlots,
}

impl CentralState {
    /// Serve `source` under `base_path` with the default limits.
    pub fn new(
        source: Arc<dyn FleetSource>,
        database: String,
        base_path: public_url::BasePath,
        query_slots: usize,
    ) -> CentralState {
        CentralState {
            source,
            database,
            limits: Limits::default(),
            base_path,
            summary: summary::SummaryCache::default(),
            slots: summary::QuerySlots::new(query_slots),
        }
    }
}

/// Serve the fleet dashboard on `listener` until `shutdown` resolves,
/// on the HTTP edge both dashboards share: connection cap, header and
/// request timeouts, security headers, graceful shutdown (see
/// [`crate::http::serve`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<CentralState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = state.limits;
    let handler = move |req| routes::route(state.clone(), req);
    crate::http::serve(listener, limits, handler, shutdown).await
}
