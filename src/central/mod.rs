//! `edgeprobe central`: the fleet dashboard and JSON API over the central
//! MongoDB that the boards sync to.
//!
//! Stateless: every request reads the database, so any number of these can
//! run behind a load balancer; MongoDB is what scales. Routes (`GET`,
//! also answering `HEAD`, unless said otherwise):
//!
//! | path | what |
//! |---|---|
//! | `/login` | the sign-in form; `POST`: check name and password, set the session cookie |
//! | `/logout` | `POST`: clear the session cookie |
//! | `/` | every board (online / offline) and every target across boards |
//! | `/boards/{id}` | one board: its targets table, counts, backlog, events |
//! | `/targets/{addr}` | one target per board: status, availability 24 h / 7 d / 30 d |
//! | `/availability?window=24h\|7d\|30d` | availability per board and target |
//! | `/static/style.css` | the stylesheet both dashboards share (`crate::http`) |
//! | `/api/v1/boards` | JSON: boards |
//! | `/api/v1/availability?window=` | JSON: availability rows (bad window: 400) |
//! | `/api/v1/targets/{addr}` | JSON: one target per board |
//! | `/healthz` | 200 when MongoDB answers a ping, else 503; the server, the reason and `failed_logins` only to a signed-in caller |
//!
//! Sign-in (`--config` with an `[auth]` table, [`auth`]): every route but
//! `/login`, the stylesheet and `/healthz` needs a session cookie, a
//! bearer token or a trusted proxy's user header; `signin` is the HTTP
//! edge of it and `routes` calls its gate before anything is read. With
//! nothing configured sign-in is off and the CLI listens on loopback
//! only (or anywhere with `--no-auth`).
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
pub mod auth;
pub mod claims;
pub mod model;
pub mod pipeline;
mod routes;
pub mod signin;
pub mod source;
pub mod views;

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::Semaphore;

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
    /// Who may read, and the proxies that are believed; the default is
    /// sign-in off.
    pub auth: auth::AuthSettings,
    /// Failed sign-ins since start (`/healthz` shows them to a signed-in
    /// caller).
    pub failed_logins: AtomicU64,
    /// Password checks running now, at most
    /// [`signin::LOGIN_CHECKS_AT_ONCE`].
    pub login_checks: Semaphore,
}

impl CentralState {
    pub fn new(
        source: Arc<dyn FleetSource>,
        database: String,
        limits: Limits,
        auth: auth::AuthSettings,
    ) -> CentralState {
        CentralState {
            source,
            database,
            limits,
            auth,
            failed_logins: AtomicU64::new(0),
            login_checks: Semaphore::new(signin::LOGIN_CHECKS_AT_ONCE),
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
