//! Store-and-forward sync from the board's outbox to a central MongoDB.
//!
//! The monitor queues every result, trace and event in the store's outbox
//! in the same transaction that writes it. The [`Syncer`] task drains that
//! queue in batches after each round, and upserts the board's own document
//! from the latest snapshot:
//!
//! - [`docs`] maps records and snapshots to BSON documents (pure; the
//!   write side of the schema in [`crate::fleet::schema`], which the
//!   central dashboard reads);
//! - [`backoff`] says how long to wait after a failure (pure);
//! - [`Upstream`] is the side effect, [`MongoUpstream`] the real driver
//!   (over the connection in [`crate::fleet::connection`]);
//! - [`sync`] is the loop that ties them together.
//!
//! After the outbox, each cycle uploads the hourly rollups that changed
//! since they were last sent, as whole documents of absolute values (the
//! store counts each row's changes, `Store::rollup_batch`), so a resend
//! replaces a document with the same one.
//!
//! Where the database is comes as a [`crate::fleet::MongoSettings`].
//!
//! Delivery is at least once on the wire and exactly once in the
//! database: a row leaves the outbox only after the server acknowledged
//! it, and every document has a deterministic `_id`, so a batch sent again
//! after a lost acknowledgement is absorbed as duplicate keys.

pub mod backoff;
pub mod docs;
mod mongo;
pub mod sync;

use std::future::Future;

use mongodb::bson::Document;

use crate::fleet::Collection;
use crate::store::StoreError;

pub use backoff::Backoff;
pub use mongo::MongoUpstream;
pub use sync::{Syncer, DEFAULT_BACKOFF_MAX};

/// The central database, as the sync needs it. Small enough to fake in a
/// test; [`MongoUpstream`] is the real one.
pub trait Upstream: Send + Sync + 'static {
    /// Where the data goes, without credentials, for messages and the
    /// dashboard header.
    fn server(&self) -> &str;

    /// Create the indexes the central dashboard queries by (idempotent).
    fn ensure_indexes(&self) -> impl Future<Output = Result<(), UpstreamError>> + Send;

    /// Insert documents, unordered, and return those the server refused
    /// (the others went in). Documents the server already holds (a
    /// duplicate key on `_id`) count as inserted: they were sent before
    /// and their acknowledgement was lost. Any other refusal of a document
    /// (a validator, a duplicate on another unique index, a user that may
    /// not write this collection) is a [`Refusal`]; an error is for a
    /// server that did not answer or did not take the batch as a whole.
    fn insert(
        &self,
        collection: Collection,
        docs: Vec<Document>,
    ) -> impl Future<Output = Result<Vec<Refusal>, UpstreamError>> + Send;

    /// Replace the rollup documents (see [`docs::rollup_doc`]) by these,
    /// creating those the server does not hold yet; one round trip.
    fn replace_rollups(
        &self,
        docs: Vec<Document>,
    ) -> impl Future<Output = Result<(), UpstreamError>> + Send;

    /// Apply `update` (see [`docs::board_update`]) to the board's document,
    /// creating it when it does not exist yet.
    fn upsert_board(
        &self,
        board: &str,
        update: Document,
    ) -> impl Future<Output = Result<(), UpstreamError>> + Send;
}

/// A document of a batch the server would not take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The document's place in the batch given to [`Upstream::insert`].
    pub index: usize,
    /// The server's error code (121 validation, 13 unauthorized, 11000 a
    /// duplicate on an index other than `_id`).
    pub code: i32,
    /// The server's message, in one line.
    pub message: String,
}

/// Why the sync could not do something. Messages name the server (never
/// its credentials) and the operation, and say what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    /// The URI cannot be used at all; a configuration error.
    #[error("MongoDB URI {server}: {reason}; fix [mongo] uri")]
    BadUri { server: String, reason: String },
    /// The server did not answer, refused us, or the operation failed.
    /// Rows stay in the outbox and are sent once it works again.
    #[error(
        "MongoDB at {server}: {op} failed: {reason}; check that the server is up and \
         reachable from the board and that the user may write to the database \
         (the outbox keeps the rows until then)"
    )]
    Server {
        server: String,
        /// What was being done, e.g. "inserting 500 results".
        op: String,
        reason: String,
    },
    /// The local store could not be read or updated.
    #[error("upstream sync: {0}")]
    Store(String),
}

impl From<StoreError> for UpstreamError {
    fn from(e: StoreError) -> UpstreamError {
        UpstreamError::Store(e.to_string())
    }
}
