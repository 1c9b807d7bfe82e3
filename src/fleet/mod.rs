//! What the board and the fleet share about the central MongoDB: the
//! boards' sync (`crate::upstream`) writes it, the fleet dashboard
//! (`crate::central`) reads it, and both stand on this.
//!
//! - [`schema`]: the contract: collection names, `_id` formats, the board
//!   status document, the indexes the fleet's queries use;
//! - [`connection`]: the MongoDB client (options, timeouts, made on first
//!   use) and credential-free labels and messages;
//! - [`settings`]: [`MongoSettings`], where the database is.

pub mod connection;
pub mod schema;
pub mod settings;

pub use connection::{redact, scrub, server_label, Connection, SetupError};
pub use schema::{Collection, BOARDS};
pub use settings::{MongoSettings, DEFAULT_BATCH, DEFAULT_DATABASE};
