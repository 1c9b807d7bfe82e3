//! Where the fleet's data comes from: the [`FleetSource`] trait (small
//! enough to fake in tests) and [`MongoFleet`], its MongoDB adapter. Also
//! the one place that turns a connection string into something safe to
//! print: every message names the server without its credentials.

use futures::future::BoxFuture;
use futures::TryStreamExt;
use mongodb::bson::Document;
use mongodb::options::{ClientOptions, ConnectionString};
use mongodb::{Client, Collection};
use tokio::sync::OnceCell;

use super::model::{AvailabilityRow, Board, Event};
use super::pipeline;
use crate::clock::Timestamp;

/// How long the server may spend on one query of a page (`maxTimeMS`).
const QUERY_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

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

    /// One board by id.
    fn board<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Board>, FleetError>>;

    /// Boards whose latest state lists `target`.
    fn boards_seeing<'a>(
        &'a self,
        target: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Board>, FleetError>>;

    /// A board's newest `limit` events, newest first.
    fn events<'a>(
        &'a self,
        board: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<Event>, FleetError>>;

    /// Availability per (board, target) since `since`, of one target when
    /// given; computed by the server (see [`pipeline::availability`]).
    fn availability<'a>(
        &'a self,
        since: Timestamp,
        target: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<AvailabilityRow>, FleetError>>;
}

/// `mongodb://user:pw@a:27017,b:27017/db?authSource=x` →
/// `mongodb://a:27017,b:27017`: scheme and hosts only. User info, the
/// database and the options (some carry secrets, e.g. a TLS key password)
/// are left out. Something without a scheme is not echoed at all.
pub fn server_label(uri: &str) -> String {
    let Some((scheme, rest)) = uri.trim().split_once("://") else {
        return "the configured MongoDB server".to_string();
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{hosts}")
}

/// The secret parts of `uri`: its user info as written, the password alone
/// and both percent-decoded, longest first (so the whole is replaced
/// before its parts).
fn secrets(uri: &str) -> Vec<String> {
    let Some((_, rest)) = uri.trim().split_once("://") else {
        return vec![uri.trim().to_string()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return Vec::new();
    };
    let mut out = vec![userinfo.to_string()];
    if let Some((_, password)) = userinfo.split_once(':') {
        out.push(password.to_string());
    }
    let decoded: Vec<String> = out
        .iter()
        .filter_map(|s| crate::http::query::percent_decode(s, false))
        .collect();
    out.extend(decoded);
    out.retain(|s| !s.is_empty());
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `message` with every credential of `uri` replaced by `***`. The
/// driver's messages are not known to quote the password, but this makes
/// sure of it for every message central shows or logs.
pub fn scrub(message: &str, uri: &str) -> String {
    let mut out = message.to_string();
    for secret in secrets(uri) {
        out = out.replace(&secret, "***");
    }
    out
}

/// The fleet in a MongoDB database.
pub struct MongoFleet {
    uri: String,
    database: String,
    server: String,
    /// Made on first use, and again after a failure: building it resolves
    /// `mongodb+srv` names, which may fail while DNS is down, and central
    /// must keep serving (a banner saying so) until it is back.
    client: OnceCell<Client>,
}

impl std::fmt::Debug for MongoFleet {
    // By hand: the derived form would print the URI with its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoFleet")
            .field("server", &self.server)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// How long to look for a server before an operation fails. The driver's
/// default (30 s) would hold every page that long while MongoDB is down;
/// a URI's own `serverSelectionTimeoutMS` wins.
const SERVER_SELECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl MongoFleet {
    /// Check the connection string's syntax now (a typo is a start-up
    /// error), connect lazily.
    pub fn new(uri: &str, database: &str) -> Result<MongoFleet, FleetError> {
        ConnectionString::parse(uri).map_err(|e| FleetError::BadUri {
            detail: scrub(&e.to_string(), uri),
        })?;
        Ok(MongoFleet {
            uri: uri.to_string(),
            database: database.to_string(),
            server: server_label(uri),
            client: OnceCell::new(),
        })
    }

    fn unavailable(&self, operation: &'static str, e: &mongodb::error::Error) -> FleetError {
        FleetError::Unavailable {
            server: self.server.clone(),
            operation,
            // The kind, without the driver's error labels.
            detail: scrub(&e.kind.to_string(), &self.uri),
        }
    }

    async fn client(&self) -> Result<&Client, FleetError> {
        self.client
            .get_or_try_init(|| async {
                let mut options = ClientOptions::parse(&self.uri)
                    .await
                    .map_err(|e| self.unavailable("connection setup", &e))?;
                options
                    .server_selection_timeout
                    .get_or_insert(SERVER_SELECTION_TIMEOUT);
                options.connect_timeout.get_or_insert(CONNECT_TIMEOUT);
                options
                    .app_name
                    .get_or_insert_with(|| "edgeprobe-central".to_string());
                Client::with_options(options).map_err(|e| self.unavailable("connection setup", &e))
            })
            .await
    }

    async fn collection(&self, name: &str) -> Result<Collection<Document>, FleetError> {
        Ok(self
            .client()
            .await?
            .database(&self.database)
            .collection(name))
    }

    /// Every document of a cursor, or why the server could not give them.
    async fn read_all(
        &self,
        op: &'static str,
        cursor: mongodb::error::Result<mongodb::Cursor<Document>>,
    ) -> Result<Vec<Document>, FleetError> {
        cursor
            .map_err(|e| self.unavailable(op, &e))?
            .try_collect()
            .await
            .map_err(|e| self.unavailable(op, &e))
    }

    async fn find_boards(&self, filter: Document) -> Result<Vec<Board>, FleetError> {
        let op = "a read of boards";
        let cursor = self
            .collection("boards")
            .await?
            .find(filter)
            .max_time(QUERY_TIME_LIMIT)
            .await;
        let docs = self.read_all(op, cursor).await?;
        Ok(docs.iter().filter_map(Board::from_doc).collect())
    }
}

impl FleetSource for MongoFleet {
    fn server(&self) -> &str {
        &self.server
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), FleetError>> {
        Box::pin(async move {
            self.client()
                .await?
                .database(&self.database)
                .run_command(mongodb::bson::doc! { "ping": 1 })
                .await
                .map_err(|e| self.unavailable("a ping", &e))?;
            Ok(())
        })
    }

    fn boards(&self) -> BoxFuture<'_, Result<Vec<Board>, FleetError>> {
        Box::pin(self.find_boards(Document::new()))
    }

    fn board<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Board>, FleetError>> {
        Box::pin(async move {
            let doc = self
                .collection("boards")
                .await?
                .find_one(mongodb::bson::doc! { "_id": id })
                .await
                .map_err(|e| self.unavailable("a read of boards", &e))?;
            Ok(doc.as_ref().and_then(Board::from_doc))
        })
    }

    fn boards_seeing<'a>(
        &'a self,
        target: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Board>, FleetError>> {
        Box::pin(self.find_boards(pipeline::boards_seeing(target)))
    }

    fn events<'a>(
        &'a self,
        board: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<Event>, FleetError>> {
        Box::pin(async move {
            let op = "a read of events";
            let cursor = self
                .collection("events")
                .await?
                .find(pipeline::events_of(board))
                .sort(pipeline::newest_first())
                .limit(limit)
                .max_time(QUERY_TIME_LIMIT)
                .await;
            let docs = self.read_all(op, cursor).await?;
            Ok(docs.iter().filter_map(Event::from_doc).collect())
        })
    }

    fn availability<'a>(
        &'a self,
        since: Timestamp,
        target: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<AvailabilityRow>, FleetError>> {
        Box::pin(async move {
            let op = "the availability aggregation";
            let cursor = self
                .collection("results")
                .await?
                .aggregate(pipeline::availability(since, target))
                // The server stops a long window over a big fleet itself,
                // instead of running on after the request gave up.
                .max_time(QUERY_TIME_LIMIT)
                .await;
            let docs = self.read_all(op, cursor).await?;
            Ok(docs.iter().filter_map(AvailabilityRow::from_doc).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_scheme_and_hosts_only() {
        assert_eq!(
            server_label("mongodb://127.0.0.1:27017"),
            "mongodb://127.0.0.1:27017"
        );
        assert_eq!(
            server_label("mongodb://ops:s3cr%40t@a.example:27017,b.example/edgeprobe?authSource=admin&tlsCertificateKeyFilePassword=x"),
            "mongodb://a.example:27017,b.example"
        );
        assert_eq!(
            server_label("mongodb+srv://u:p@cluster0.example.net/?retryWrites=true"),
            "mongodb+srv://cluster0.example.net"
        );
        // A password containing '@' (wrongly unescaped): still cut at the last '@'.
        assert_eq!(server_label("mongodb://u:p@ss@h:1"), "mongodb://h:1");
        assert_eq!(server_label("u:p@h:1"), "the configured MongoDB server");
    }

    #[test]
    fn scrub_removes_user_info_and_password_in_every_spelling() {
        let uri = "mongodb://ops:s3cr%40t@h:27017/";
        let msg = "auth failed for ops:s3cr%40t, password s3cr@t or s3cr%40t";
        let out = scrub(msg, uri);
        assert!(!out.contains("s3cr"), "{out}");
        assert_eq!(scrub("nothing secret", "mongodb://h:1"), "nothing secret");
    }

    #[test]
    fn bad_uris_are_reported_without_their_password() {
        let e = MongoFleet::new(
            "mongodb://ops:hunter2@h:27017/?bogusOption=%zz",
            "edgeprobe",
        )
        .map(|_| ())
        .unwrap_err();
        let text = e.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        let e = MongoFleet::new("postgres://ops:hunter2@h", "edgeprobe")
            .map(|_| ())
            .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let fleet = MongoFleet::new("mongodb://ops:hunter2@h:27017", "edgeprobe").expect("valid");
        assert!(!format!("{fleet:?}").contains("hunter2"));
        assert_eq!(fleet.server(), "mongodb://h:27017");
    }
}
