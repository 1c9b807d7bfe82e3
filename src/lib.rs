//! edgeprobe: an IP monitoring probe for a small board in a network closet.
//!
//! - [`targets`] reads the spreadsheet of addresses to watch;
//! - [`probe`] pings and traces them over shared ICMP sockets;
//! - [`cli`] is the command line on top.

pub mod cli;
pub mod probe;
pub mod targets;
