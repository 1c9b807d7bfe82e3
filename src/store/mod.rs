//! The board's own history: SQLite (WAL) in the state directory.
//!
//! One transaction per round holds the round's results, traces, events,
//! the hourly rollups they update, the outbox rows the upstream sync
//! drains and the alert notifications it caused. Retention by age and by size runs after a round; what it drops
//! is counted. The dashboard reads through [`History`], on its own
//! connection, so a page never waits for the probe loop.
//!
//! One file per job. Pure, no SQLite: `records` (the data written and
//! read), `encode` (how values are packed into columns), `block` (a
//! round's results of up to 256 targets packed into one row), `pending`
//! (the rollups of the hours still being counted, in memory), `rollup` (hours
//! and uptime), `retention` (the policy and the plan of a pass: what is
//! dropped, in what order, how much). Against SQLite: `schema` (the schema
//! and its migration, opening connections, a damaged file moved aside,
//! counters), `salvage` (the unsent rows of a damaged file carried into
//! the new one), `writer` ([`Store`], the writer connection and its methods),
//! `insert` (writing rounds and events), `history` (reading them back,
//! [`Reader`]), `results` (results read out of their blocks), `outbox` (what the upstream sync has not sent yet),
//! `notifications` (the alert queue and the alerts firing),
//! `prune` (carrying out a retention plan), and `sql` (the helpers they
//! share). This file: the error type and the [`History`] trait.

mod block;
mod encode;
#[cfg(test)]
mod fixtures;
mod history;
mod insert;
mod notifications;
mod outbox;
mod pending;
mod prune;
mod records;
mod results;
pub mod retention;
pub mod rollup;
mod salvage;
mod schema;
mod sql;
mod writer;

pub use history::Reader;
pub use outbox::{
    OutboxId, OutboxItem, OutboxKind, OutboxRecord, RefusedRow, RollupItem, RollupMark,
};
pub use records::{
    AlertRow, AttemptRecord, Dropped, EventKind, EventRecord, LastRefusal, NotificationRecord,
    Outcome, PendingNotification, QueuedNotification, ResultRecord, RoundId, RoundRecord,
    SilenceRow, StoreStats, TraceRecord, Uptime,
};
pub use retention::RetentionPolicy;
pub use schema::DB_FILE;
pub use writer::Store;

use crate::clock::Timestamp;

/// Why the store could not do something; each message names the file or
/// the operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A SQLite call failed.
    #[error("local store {op}: {source}")]
    Sqlite {
        /// What was being done, e.g. "writing round 12".
        op: String,
        #[source]
        source: rusqlite::Error,
    },
    /// The state directory or database file could not be used.
    #[error("local store {path}: {source}; check that the state directory exists and is writable by edgeprobe")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The database file exists but this build cannot use it.
    #[error("local store {path}: {reason}")]
    Unusable { path: String, reason: String },
}

impl StoreError {
    /// Whether SQLite found the file damaged or not a database at all:
    /// the cases [`Store::recreate`] is for. A full disk or a permission
    /// problem is not damage; those pass.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            )
        )
    }

    /// Whether the disk (or the store's own cap on the file) is full.
    pub fn is_full(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if e.code == rusqlite::ErrorCode::DiskFull
        )
    }
}

/// Run `f` on a store behind a mutex on tokio's blocking pool: SQLite
/// calls block, and async tasks (the probe loop, the alert sender) must
/// not. A task that panics comes back as an error.
pub async fn blocking<S, T, F>(
    store: &std::sync::Arc<std::sync::Mutex<S>>,
    f: F,
) -> Result<T, StoreError>
where
    S: Send + 'static,
    T: Send + 'static,
    F: FnOnce(&mut S) -> Result<T, StoreError> + Send + 'static,
{
    let store = std::sync::Arc::clone(store);
    tokio::task::spawn_blocking(move || f(&mut crate::lock::lock(&store)))
        .await
        .unwrap_or_else(|e| {
            Err(StoreError::Io {
                path: "(store task)".into(),
                source: std::io::Error::other(format!(
                    "internal error in the store task ({e}); restart edgeprobe and report it"
                )),
            })
        })
}

/// Read access to the history, for the dashboard and the API.
pub trait History: Send + Sync + 'static {
    /// A target's results, newest first.
    fn results(&self, target: &str, limit: usize) -> Result<Vec<ResultRecord>, StoreError>;
    /// A target's traces, newest first.
    fn traces(&self, target: &str, limit: usize) -> Result<Vec<TraceRecord>, StoreError>;
    /// Events, newest first: one target's, or all of them with `None`.
    fn events(&self, target: Option<&str>, limit: usize) -> Result<Vec<EventRecord>, StoreError>;
    /// A target's uptime over 24 h, 7 d and 30 d before `now`.
    fn uptime(&self, target: &str, now: Timestamp) -> Result<Uptime, StoreError>;
    /// The newest alert notifications, waiting or settled, newest first.
    fn notifications(&self, limit: usize) -> Result<Vec<NotificationRecord>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_and_a_full_disk_are_told_apart() {
        let err = |code| StoreError::Sqlite {
            op: "x".into(),
            source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        };
        assert!(err(rusqlite::ffi::SQLITE_CORRUPT).is_damage());
        assert!(err(rusqlite::ffi::SQLITE_NOTADB).is_damage());
        assert!(!err(rusqlite::ffi::SQLITE_FULL).is_damage());
        assert!(err(rusqlite::ffi::SQLITE_FULL).is_full());
    }
}
