//! The HTTP edge both dashboards stand on, the board's (`crate::web`) and
//! the fleet's (`crate::central`):
//!
//! - [`server`]: the accept loop under a connection cap, header and
//!   request timeouts, graceful shutdown, with the [`Limits`] below;
//! - [`response`]: the security headers (CSP) every response carries, the
//!   stylesheet, 404 / 405, and the HTML, text and JSON builders;
//! - [`route`]: route tables, `/api/` or page, which methods read;
//! - [`secret`]: the constant-time comparison and the bearer token of an
//!   `Authorization` header;
//! - [`query`]: percent-decoding and -encoding, query parameters;
//! - [`layout`]: the page frame and the view parts both dashboards use
//!   (status badge, times, table cells, the error page);
//! - [`fmt`]: how numbers, times and durations read on the pages.
//!
//! Nothing here knows a dashboard's routes or data.

pub mod fmt;
pub mod layout;
pub mod query;
pub mod response;
pub mod route;
pub mod secret;
pub mod server;

use std::time::Duration;

pub use response::{ErrorDoc, Resp};
pub use server::{serve, Peer};

/// Bounds on what one client can cost the board (or the fleet server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time to send the request line and headers; also how long an idle
    /// keep-alive connection is kept.
    pub header_read_timeout: Duration,
    /// Largest request body (a sheet upload); larger ones get 413.
    pub body_max: usize,
    /// Time from the headers to the response, body upload included;
    /// slower requests get 503.
    pub request_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// After shutdown, how long in-flight requests may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            body_max: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            max_connections: 256,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}
