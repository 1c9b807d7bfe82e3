//! Where the fleet's data comes from: the [`FleetSource`] trait (small
//! enough to fake in tests) and [`MongoFleet`], its MongoDB adapter, the
//! read side over the connection of [`crate::fleet::connection`]. Every
//! message names the server by its label, without credentials.

use futures::future::BoxFuture;
use futures::TryStreamExt;
use mongodb::bson::Document;
use mongodb::{Collection, Database};

use super::model::{AvailabilityRow, Board, ClockAhead, Event, HourRow};
use super::pipeline::{self, Scope};
use crate::clock::Timestamp;
use crate::fleet::connection::{scrub, server_label, Connection, SetupError};
use crate::fleet::schema::{Collection as FleetCollection, BOARDS, ROLLUPS};
use crate::fleet::MongoSettings;

/// How long the server may spend on one query of a page (`maxTimeMS`):
/// it stops a query itself instead of running on after the request gave
/// up.
const QUERY_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the fleet could not be read. Every message names the server by
/// [`server_label`] and has credentials scrubbed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    /// The connection string is unusable; a configuration error.
    #[error("the MongoDB connection string is not valid ({detail}); check --mongo-uri")]
    BadUri { detail: String },
    /// The server did not answer or refused the operation.
    #[error("MongoDB at {server} did not answer {operation}: {detail}")]
    Unavailable {
        server: String,
        operation: &'static str,
        detail: String,
    },
}

/// The reads central makes. Each call is one round trip (or a few) to the
/// database; nothing is cached, so any number of central processes can
/// serve the same fleet.
pub trait FleetSource: Send + Sync {
    /// The server as it may be shown: [`server_label`] of the URI.
    fn server(&self) -> &str;

    /// Whether the server answers at all.
    fn ping(&self) -> BoxFuture<'_, Result<(), FleetError>>;

    /// Every board document.
    fn boards(&self) -> BoxFuture<'_, Result<Vec<Board>, FleetError>>;

    /// Every board with only what the offline rule needs: `_id`,
    /// `last_seen` and `interval_s` (the rest of a [`Board`] is left at
    /// its default). For the alert loop, which reads every board each
    /// pass and needs none of their target lists.
    fn heartbeats(&self) -> BoxFuture<'_, Result<Vec<Board>, FleetError>>;

    /// One board by id.
    fn board<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Board>, FleetError>>;

    /// A board's newest `limit` events, newest first.
    fn events<'a>(
        &'a self,
        board: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<Event>, FleetError>>;

    /// Availability per (board, target) of `scope` over the hours from
    /// `first_hour` on, computed by the server from the rollups (see
    /// [`pipeline::availability`]).
    fn availability<'a>(
        &'a self,
        scope: Scope<'a>,
        first_hour: Timestamp,
    ) -> BoxFuture<'a, Result<Vec<AvailabilityRow>, FleetError>>;

    /// Rounds and Not Working rounds per hour from `first_hour` on, of one
    /// board's targets together or of one of them (see
    /// [`pipeline::hourly`]), in no particular order.
    fn hourly<'a>(
        &'a self,
        board: &'a str,
        target: Option<&'a str>,
        first_hour: Timestamp,
    ) -> BoxFuture<'a, Result<Vec<HourRow>, FleetError>>;

    /// The boards that uploaded rollups for hours after `after`.
    fn clock_ahead(&self, after: Timestamp) -> BoxFuture<'_, Result<Vec<ClockAhead>, FleetError>>;
}

/// The fleet in a MongoDB database.
pub struct MongoFleet {
    /// Made on first use, and again after a failure: building it resolves
    /// `mongodb+srv` names, which may fail while DNS is down, and central
    /// must keep serving (a banner saying so) until it is back.
    conn: Connection,
    server: String,
}

impl std::fmt::Debug for MongoFleet {
    // By hand: the URI with its password stays inside the connection.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoFleet")
            .field("server", &self.server)
            .field("database", &self.conn.database_name())
            .finish_non_exhaustive()
    }
}

impl MongoFleet {
    /// Check the connection string's syntax now (a typo is a start-up
    /// error), connect lazily.
    pub fn new(settings: &MongoSettings) -> Result<MongoFleet, FleetError> {
        let uri = &settings.uri;
        let conn = Connection::new(uri, &settings.database, "edgeprobe-central").map_err(|e| {
            FleetError::BadUri {
                detail: scrub(&e.to_string(), uri),
            }
        })?;
        Ok(MongoFleet {
            conn,
            server: server_label(uri),
        })
    }

    fn unavailable(&self, operation: &'static str, e: &mongodb::error::Error) -> FleetError {
        FleetError::Unavailable {
            server: self.server.clone(),
            operation,
            // The kind, without the driver's error labels.
            detail: self.conn.scrub(&e.kind.to_string()),
        }
    }

    pub async fn database(&self) -> Result<Database, FleetError> {
        self.conn.database().await.map_err(|e| match e {
            SetupError::Options(e) | SetupError::Client(e) => {
                self.unavailable("connection setup", &e)
            }
        })
    }

    async fn collection(&self, name: &str) -> Result<Collection<Document>, FleetError> {
        Ok(self.database().await?.collection(name))
    }

    /// Every document of a cursor that `parse` understands (the rest are
    /// skipped), or why the server could not give them.
    async fn read_all<T>(
        &self,
        op: &'static str,
        cursor: mongodb::error::Result<mongodb::Cursor<Document>>,
        parse: fn(&Document) -> Option<T>,
    ) -> Result<Vec<T>, FleetError> {
        let docs: Vec<Document> = cursor
            .map_err(|e| self.unavailable(op, &e))?
            .try_collect()
            .await
            .map_err(|e| self.unavailable(op, &e))?;
        Ok(docs.iter().filter_map(parse).collect())
    }

    async fn find_boards(&self, filter: Document) -> Result<Vec<Board>, FleetError> {
        let op = "a read of boards";
        let cursor = self
            .collection(BOARDS)
            .await?
            .find(filter)
            .max_time(QUERY_TIME_LIMIT)
            .await;
        self.read_all(op, cursor, Board::from_doc).await
    }

    async fn find_heartbeats(&self) -> Result<Vec<Board>, FleetError> {
        let op = "a read of boards";
        let cursor = self
            .collection(BOARDS)
            .await?
            .find(Document::new())
            .projection(mongodb::bson::doc! { "_id": 1, "last_seen": 1, "interval_s": 1 })
            .max_time(QUERY_TIME_LIMIT)
            .await;
        self.read_all(op, cursor, Board::from_doc).await
    }
}

impl FleetSource for MongoFleet {
    fn server(&self) -> &str {
        &self.server
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), FleetError>> {
        Box::pin(async move {
            self.database()
                .await?
                .run_command(mongodb::bson::doc! { "ping": 1 })
                .await
                .map_err(|e| self.unavailable("a ping", &e))?;
            Ok(())
        })
    }

    fn boards(&self) -> BoxFuture<'_, Result<Vec<Board>, FleetError>> {
        Box::pin(self.find_boards(Document::new()))
    }

    fn heartbeats(&self) -> BoxFuture<'_, Result<Vec<Board>, FleetError>> {
        Box::pin(self.find_heartbeats())
    }

    fn board<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Board>, FleetError>> {
        Box::pin(async move {
            let doc = self
                .collection(BOARDS)
                .await?
                .find_one(mongodb::bson::doc! { "_id": id })
                .max_time(QUERY_TIME_LIMIT)
                .await
                .map_err(|e| self.unavailable("a read of boards", &e))?;
            Ok(doc.as_ref().and_then(Board::from_doc))
        })
    }

    fn events<'a>(
        &'a self,
        board: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<Event>, FleetError>> {
        Box::pin(async move {
            let op = "a read of events";
            let cursor = self
                .collection(FleetCollection::Events.name())
                .await?
                .find(pipeline::events_of(board))
                .sort(pipeline::newest_first())
                .limit(limit)
                .max_time(QUERY_TIME_LIMIT)
                .await;
            self.read_all(op, cursor, Event::from_doc).await
        })
    }

    fn availability<'a>(
        &'a self,
        scope: Scope<'a>,
        first_hour: Timestamp,
    ) -> BoxFuture<'a, Result<Vec<AvailabilityRow>, FleetError>> {
        Box::pin(self.aggregate(
            "the availability aggregation",
            pipeline::availability(scope, first_hour),
            AvailabilityRow::from_doc,
        ))
    }

    fn hourly<'a>(
        &'a self,
        board: &'a str,
        target: Option<&'a str>,
        first_hour: Timestamp,
    ) -> BoxFuture<'a, Result<Vec<HourRow>, FleetError>> {
        Box::pin(self.aggregate(
            "the hourly availability aggregation",
            pipeline::hourly(board, target, first_hour),
            HourRow::from_doc,
        ))
    }

    fn clock_ahead(&self, after: Timestamp) -> BoxFuture<'_, Result<Vec<ClockAhead>, FleetError>> {
        Box::pin(self.aggregate(
            "the board clock check",
            pipeline::clock_ahead(after),
            ClockAhead::from_doc,
        ))
    }
}

impl MongoFleet {
    /// Run an aggregation over the rollups and decode its rows.
    async fn aggregate<T>(
        &self,
        op: &'static str,
        stages: Vec<Document>,
        parse: fn(&Document) -> Option<T>,
    ) -> Result<Vec<T>, FleetError> {
        let cursor = self
            .collection(ROLLUPS)
            .await?
            .aggregate(stages)
            .max_time(QUERY_TIME_LIMIT)
            .await;
        self.read_all(op, cursor, parse).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(uri: &str) -> Result<MongoFleet, FleetError> {
        MongoFleet::new(&MongoSettings::new(uri))
    }

    #[test]
    fn bad_uris_are_reported_without_their_password() {
        let e = fleet("mongodb://ops:hunter2@h:27017/?bogusOption=%zz")
            .map(|_| ())
            .unwrap_err();
        let text = e.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        let e = fleet("postgres://ops:hunter2@h").map(|_| ()).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let fleet = fleet("mongodb://ops:hunter2@h:27017").expect("valid");
        assert!(!format!("{fleet:?}").contains("hunter2"));
        assert_eq!(fleet.server(), "mongodb://h:27017");
    }
}
