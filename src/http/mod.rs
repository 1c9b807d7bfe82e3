//! The HTTP edge both dashboards stand on, the board's (`crate::web`) and
//! the fleet's (`crate::central`):
//!
//! - [`server`]: the accept loop under a connection cap, header and
//!   request timeouts, graceful shutdown, with the [`Limits`] below;
//! - [`clients`]: the cap on connections per client;
//! - [`host`]: the names a dashboard answers to (421 for others);
//! - [`stall`]: the cut of a connection whose client reads nothing;
//! - [`tls`]: the optional certificate and key a dashboard serves HTTPS with;
//! - [`response`]: the security headers (CSP) every response carries, the
//!   stylesheet, 404 / 405, and the HTML, text and JSON builders;
//! - [`route`]: route tables, `/api/` or page, which methods read;
//! - [`secret`]: the constant-time comparison and the bearer token of an
//!   `Authorization` header;
//! - [`query`]: percent-decoding and -encoding, query parameters;
//! - [`paging`]: `?page=&page_size=` over a list, as both APIs take it;
//! - [`conditional`]: entity tags and `304 Not Modified` for pages and
//!   documents that change once a round;
//! - [`layout`]: the page frame and the view parts both dashboards use
//!   (status badge, times, table cells, the error page);
//! - [`fmt`]: how numbers, times and durations read on the pages.
//!
//! Nothing here knows a dashboard's routes or data.

pub mod clients;
pub mod conditional;
pub mod fmt;
pub mod host;
pub mod layout;
pub mod paging;
pub mod query;
pub mod response;
pub mod route;
pub mod secret;
pub mod server;
pub mod stall;
pub mod tls;

use std::time::Duration;

pub use host::AllowedHosts;
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
    /// Connections one client (an IPv4 address, an IPv6 /64) may hold at
    /// once; more are answered 429, so one client cannot take them all.
    pub max_connections_per_client: usize,
    /// How long an answer may wait on a client that reads none of it
    /// before the connection is cut; also the sockets' `TCP_USER_TIMEOUT`
    /// (sent data the client's kernel leaves unacknowledged that long
    /// ends the connection).
    pub write_stall_timeout: Duration,
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
            max_connections_per_client: 32,
            write_stall_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values README and SECURITY.md promise.
    #[test]
    fn default_limits_are_the_documented_ones() {
        assert_eq!(
            Limits::default(),
            Limits {
                header_read_timeout: Duration::from_secs(10),
                body_max: 8 * 1024 * 1024,
                request_timeout: Duration::from_secs(60),
                max_connections: 256,
                max_connections_per_client: 32,
                write_stall_timeout: Duration::from_secs(30),
                shutdown_grace: Duration::from_secs(10),
            }
        );
    }
}
