//! `edgeprobe central`: the fleet dashboard and JSON API over the central
//! MongoDB that the boards sync to.
//!
//! Stateless but for seconds: requests read the database, the list of
//! boards through a summary cached for 5 s ([`summary`]), so any number of
//! these can run behind a load balancer; MongoDB is what scales. Routes
//! (`GET`, also answering `HEAD`, unless said otherwise), all under
//! `--base-path` when one is set ([`public_url`]):
//!
//! | path | what |
//! |---|---|
//! | `/login` | the sign-in form; `POST`: check name and password, set the session cookie |
//! | `/logout` | `POST`: clear the session cookie |
//! | `/?q=&page=&boards_page=` | the boards worst first and the targets across them, searched, paged |
//! | `/boards/{id}?page=` | one board: its targets (paged), counts, backlog, events, 30-day chart |
//! | `/targets/{addr}` | one target per board: status, availability 24 h / 7 d / 30 d, charts |
//! | `/availability?window=24h\|7d\|30d&page=` | availability of a page of (board, target) pairs |
//! | `/static/style.css` | the stylesheet both dashboards share (`crate::http`) |
//! | `/api/v1/boards?page=` | JSON: a page of boards |
//! | `/api/v1/availability?window=&page=` | JSON: a page of availability rows |
//! | `/api/v1/targets/{addr}` | JSON: one target per board |
//! | `/healthz` | 200 when MongoDB answers a ping, else 503; the server, the reason and `failed_logins` only to a signed-in caller |
//!
//! Every list is a page (`page_size` up to 500, [`crate::http::paging`]); a window or
//! page that does not exist is a 400 naming what does. Requests that read
//! MongoDB take one of `--max-queries` slots or get 429, and every query
//! has a server-side time limit.
//!
//! Sign-in (`--config` with an `[auth]` table, [`auth`]): every route but
//! `/login`, the stylesheet and `/healthz` needs a session cookie, a
//! bearer token or a trusted proxy's user header; `signin` is the HTTP
//! edge of it and `routes` calls its gate before anything is read. With
//! nothing configured sign-in is off and the CLI listens on loopback
//! only (or anywhere with `--no-auth`).
//!
//! Layers: [`model`] (documents to values, the online rule, windows,
//! search), [`pipeline`] (the queries as documents), [`crate::http::paging`],
//! [`charts`], [`public_url`], [`api`] and [`views`] (JSON and pages) are
//! pure; [`source`] is the MongoDB edge behind the [`FleetSource`] trait,
//! [`indexes`] what central creates at start (the TTL indexes among
//! them); `routes` ties them to the shared HTTP edge, [`crate::http`].
//!
//! The documents read are the fleet schema ([`crate::fleet::schema`]:
//! `rollups`, `events`, `boards`) that the boards' sync writes; central
//! never writes them, but expires old ones. Where the database is comes
//! as a [`crate::fleet::MongoSettings`].
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
pub mod charts;
pub mod claims;
pub mod indexes;
pub mod model;
pub mod pipeline;
pub mod public_url;
mod routes;
pub mod signin;
pub mod source;
pub mod summary;
pub mod views;

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::Semaphore;

pub use model::{is_online, offline_after, Window};
pub use source::{FleetError, FleetSource, MongoFleet};

use crate::http::{AllowedHosts, Limits};

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
    /// The path prefix it is published under.
    pub base_path: public_url::BasePath,
    /// The board documents, read at most every few seconds.
    pub summary: summary::SummaryCache,
    /// The cap on requests reading MongoDB at once.
    pub slots: summary::QuerySlots,
    /// The names it answers to besides its addresses (`--allowed-host`);
    /// none by default.
    pub allowed_hosts: Arc<AllowedHosts>,
}

impl CentralState {
    /// Serve `source` under `base_path`, with at most `query_slots`
    /// requests reading it at once.
    pub fn new(
        source: Arc<dyn FleetSource>,
        database: String,
        limits: Limits,
        auth: auth::AuthSettings,
        base_path: public_url::BasePath,
        query_slots: usize,
    ) -> CentralState {
        CentralState {
            source,
            database,
            limits,
            auth,
            failed_logins: AtomicU64::new(0),
            login_checks: Semaphore::new(signin::LOGIN_CHECKS_AT_ONCE),
            base_path,
            summary: summary::SummaryCache::default(),
            slots: summary::QuerySlots::new(query_slots),
            allowed_hosts: Arc::new(AllowedHosts::default()),
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
    let hosts = Arc::clone(&state.allowed_hosts);
    let handler = move |req| routes::route(state.clone(), req);
    crate::http::serve(listener, limits, hosts, None, handler, shutdown).await
}
