//! edgeprobe: an IP monitoring probe for a small board in a network closet.
//!
//! - [`targets`] reads the spreadsheet of addresses to watch;
//! - [`probe`] pings and traces them over shared ICMP sockets;
//! - [`monitor`] runs rounds of probes and keeps the live state;
//! - [`leds`] turns the state into LED patterns and drives the pins;
//! - [`store`] keeps the history on the board (SQLite);
//! - [`fleet`] is what the board and the fleet share about the central
//!   MongoDB: the document schema, the connection, the settings;
//! - [`upstream`] forwards the store's outbox to that MongoDB;
//! - [`http`] is the HTTP edge both dashboards serve with: server, limits,
//!   headers, the page layout and common view parts;
//! - [`web`] serves the board's dashboard, the JSON API and `/metrics`;
//! - [`central`] is the fleet dashboard over the central MongoDB;
//! - [`systemd`] tells systemd the service is ready and feeds its watchdog;
//! - [`config`] and [`cli`] are the settings and the command line on top;
//! - [`heap`] tunes glibc's allocator for a small board, [`sandbox`]
//!   confines the workbook reader process, [`clock`] has the wall and
//!   monotonic clocks, and [`lock`] takes a mutex a panic poisoned.

pub mod alerts;
pub mod central;
pub mod cli;
pub mod clock;
pub mod config;
pub mod fleet;
pub mod heap;
pub mod http;
pub mod leds;
pub mod lock;
pub mod monitor;
pub mod probe;
pub mod sandbox;
pub mod store;
pub mod systemd;
pub mod targets;
pub mod upstream;
pub mod web;
