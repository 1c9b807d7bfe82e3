//! [`Upstream`] over the official MongoDB driver.
//!
//! The client is created on first use, not at start: parsing a
//! `mongodb+srv://` URI resolves DNS, and a board that boots while the
//! network is down must still start (and keep its outbox). Timeouts are
//! short so that a dead server fails a sync attempt in seconds rather than
//! the driver's default 30 s; options in the URI win over ours.
//!
//! Tested against `nx-27017` (a MongoDB wire-protocol server on SQLite),
//! see `tests/upstream_sync.rs`; where it differs from MongoDB is noted
//! there.

use std::fmt;
use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::error::{ErrorKind, InsertManyError};
use mongodb::options::{ClientOptions, ConnectionString};
use mongodb::{Client, Database, IndexModel};
use tokio::sync::OnceCell;

use super::{Collection, Upstream, UpstreamError, BOARDS};

/// How long an operation waits for a usable server before failing.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest one operation (an insert of a batch, a board update) may
/// take before the server counts as unreachable for this attempt.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// MongoDB's code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;
/// Error texts from the driver can be long (a whole topology
/// description); the dashboard header shows at most this much.
const MAX_REASON: usize = 600;

/// The indexes the central dashboard's queries use: a board's targets
/// newest first, time ranges for availability, the fleet by last contact.
fn indexes() -> Vec<(&'static str, Vec<Document>)> {
    vec![
        (
            Collection::Results.name(),
            // By board (board pages), by window (availability), by
            // target and window (a target's page across boards).
            vec![
                doc! { "board": 1, "target": 1, "ts": -1 },
                doc! { "ts": 1 },
                doc! { "target": 1, "ts": 1 },
            ],
        ),
        (
            Collection::Traces.name(),
            vec![doc! { "board": 1, "target": 1, "ts": -1 }],
        ),
        (
            Collection::Events.name(),
            vec![doc! { "board": 1, "ts": -1 }],
        ),
        (BOARDS, vec![doc! { "last_seen": -1 }]),
    ]
}

/// The central MongoDB.
pub struct MongoUpstream {
    /// With credentials: never printed (see the `Debug` impl).
    uri: String,
    database: String,
    /// `host:port[,host:port]/database`, for messages.
    server: String,
    client: OnceCell<Client>,
}

impl fmt::Debug for MongoUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoUpstream")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl MongoUpstream {
    /// Check the URI (no network yet) and remember where to write.
    pub fn new(uri: &str, database: &str) -> Result<MongoUpstream, UpstreamError> {
        if let Err(e) = ConnectionString::parse(uri) {
            return Err(UpstreamError::BadUri {
                server: redact(uri),
                reason: scrub(&e.kind.to_string(), uri),
            });
        }
        let hosts = redacted_parts(uri).map_or(INVALID, |(h, _)| h);
        if database.is_empty() {
            return Err(UpstreamError::BadUri {
                server: redact(uri),
                reason: "the database name is empty".into(),
            });
        }
        let server = format!("{hosts}/{database}");
        Ok(MongoUpstream {
            uri: uri.to_string(),
            database: database.to_string(),
            server,
            client: OnceCell::new(),
        })
    }

    async fn db(&self) -> Result<Database, UpstreamError> {
        let client = self
            .client
            .get_or_try_init(|| async {
                let mut opts = ClientOptions::parse(&self.uri)
                    .await
                    .map_err(|e| self.fail("reading the URI", &e))?;
                opts.server_selection_timeout
                    .get_or_insert(SERVER_SELECTION_TIMEOUT);
                opts.connect_timeout.get_or_insert(CONNECT_TIMEOUT);
                opts.app_name.get_or_insert_with(|| "edgeprobe".to_string());
                Client::with_options(opts).map_err(|e| self.fail("creating the client", &e))
            })
            .await?;
        Ok(client.database(&self.database))
    }

    /// Run one operation with a time limit. The driver has no
    /// per-operation timeout, and a server that accepts and then stalls
    /// (a half-open link over LTE or NAT) would otherwise hold the sync
    /// for as long as TCP keeps the connection.
    async fn limited<T>(
        &self,
        op: impl Into<String>,
        f: impl std::future::Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, UpstreamError> {
        match tokio::time::timeout(OPERATION_TIMEOUT, f).await {
            Ok(r) => r,
            Err(_) => Err(UpstreamError::Server {
                server: self.server.clone(),
                op: op.into(),
                reason: format!("no answer within {} s", OPERATION_TIMEOUT.as_secs()),
            }),
        }
    }

    fn fail(&self, op: impl Into<String>, e: &mongodb::error::Error) -> UpstreamError {
        UpstreamError::Server {
            server: self.server.clone(),
            op: op.into(),
            reason: scrub(&reason(e), &self.uri),
        }
    }
}

impl Upstream for MongoUpstream {
    fn server(&self) -> &str {
        &self.server
    }

    async fn ensure_indexes(&self) -> Result<(), UpstreamError> {
        self.limited("creating the indexes", self.create_indexes())
            .await
    }

    async fn insert(
        &self,
        collection: Collection,
        docs: Vec<Document>,
    ) -> Result<(), UpstreamError> {
        let op = format!("inserting {} {}", docs.len(), collection.name());
        self.limited(op, self.insert_many(collection, docs)).await
    }

    async fn upsert_board(&self, board: &str, update: Document) -> Result<(), UpstreamError> {
        let op = format!("updating board {board}");
        self.limited(op, self.update_board(board, update)).await
    }
}

impl MongoUpstream {
    async fn create_indexes(&self) -> Result<(), UpstreamError> {
        let db = self.db().await?;
        for (name, keys) in indexes() {
            let models = keys
                .into_iter()
                .map(|k| IndexModel::builder().keys(k).build());
            db.collection::<Document>(name)
                .create_indexes(models)
                .await
                .map_err(|e| self.fail(format!("creating the indexes of {name}"), &e))?;
        }
        Ok(())
    }

    async fn insert_many(
        &self,
        collection: Collection,
        docs: Vec<Document>,
    ) -> Result<(), UpstreamError> {
        if docs.is_empty() {
            // The driver refuses an empty insert_many.
            return Ok(());
        }
        let n = docs.len();
        let db = self.db().await?;
        match db
            .collection::<Document>(collection.name())
            .insert_many(docs)
            .ordered(false)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if only_duplicates(&e) => Ok(()),
            Err(e) => Err(self.fail(format!("inserting {n} {}", collection.name()), &e)),
        }
    }

    async fn update_board(&self, board: &str, update: Document) -> Result<(), UpstreamError> {
        let db = self.db().await?;
        db.collection::<Document>(BOARDS)
            .update_one(doc! { "_id": board }, update)
            .upsert(true)
            .await
            .map_err(|e| self.fail(format!("updating board {board}"), &e))?;
        Ok(())
    }
}

/// Whether an unordered insert failed only because the server already
/// holds some of the documents: every write error is a duplicate key and
/// there is no write concern error. Those documents were sent before and
/// their acknowledgement was lost; the others went in.
fn only_duplicates(e: &mongodb::error::Error) -> bool {
    match &*e.kind {
        ErrorKind::InsertMany(InsertManyError {
            write_errors: Some(errors),
            write_concern_error: None,
            ..
        }) => !errors.is_empty() && errors.iter().all(|w| w.code == DUPLICATE_KEY),
        _ => false,
    }
}

/// A driver error in one line of reasonable length. A bulk error lists
/// every refused document; summarise it instead.
fn reason(e: &mongodb::error::Error) -> String {
    let text = match &*e.kind {
        ErrorKind::InsertMany(InsertManyError {
            write_errors,
            write_concern_error,
            ..
        }) => {
            let mut parts = Vec::new();
            if let Some(errors) = write_errors.as_deref().filter(|w| !w.is_empty()) {
                let first = &errors[0];
                parts.push(format!(
                    "{} documents refused, the first with code {} ({}): {}",
                    errors.len(),
                    first.code,
                    first.code_name.as_deref().unwrap_or("no name"),
                    first.message
                ));
            }
            if let Some(wc) = write_concern_error {
                parts.push(format!(
                    "write concern not satisfied: code {}: {}",
                    wc.code, wc.message
                ));
            }
            parts.join("; ")
        }
        kind => kind.to_string(),
    };
    let one_line = text.replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(MAX_REASON) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// What [`redact`] gives for a URI it cannot read.
const INVALID: &str = "(unreadable MongoDB URI)";

/// The servers and database of a MongoDB URI, without credentials or
/// options: `host:port[,host:port][/db]`, hosts as written (an SRV URI
/// gives its DNS name). Safe to log and to show.
///
/// Parsed here rather than by the driver, which refuses URIs with options
/// it does not know, and those still need a name in messages. Everything
/// up to the last `@` is dropped (a password with an unescaped `?` or `/`
/// must not leak either), and a result that does not look like host names
/// and a database name gives a fixed placeholder instead.
pub fn redact(uri: &str) -> String {
    redacted_parts(uri).map_or_else(
        || INVALID.to_string(),
        |(hosts, db)| match db {
            Some(db) => format!("{hosts}/{db}"),
            None => hosts.to_string(),
        },
    )
}

/// The host list and the database of a URI, as [`redact`] shows them.
fn redacted_parts(uri: &str) -> Option<(&str, Option<&str>)> {
    let (scheme, rest) = uri.split_once("://")?;
    if scheme != "mongodb" && scheme != "mongodb+srv" {
        return None;
    }
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let end = rest.find('?').unwrap_or(rest.len());
    let rest = &rest[..end];
    let (hosts, db) = match rest.split_once('/') {
        Some((h, db)) => (h, Some(db).filter(|d| !d.is_empty())),
        None => (rest, None),
    };
    let host_ok = |c: char| c.is_ascii_alphanumeric() || ".-_:[],%".contains(c);
    let db_ok = |c: char| c.is_ascii_alphanumeric() || "-_".contains(c);
    // Each host is a name or [IPv6], then an optional numeric port: so
    // `user:pass` without an `@` is not taken for a host and port.
    let port_ok = |h: &str| {
        let after = h.rsplit_once(']').map_or(h, |(_, p)| p);
        after
            .rsplit_once(':')
            .is_none_or(|(_, port)| !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()))
    };
    let plausible = !hosts.is_empty()
        && hosts.chars().all(host_ok)
        && hosts.split(',').all(|h| !h.is_empty() && port_ok(h))
        && db.is_none_or(|d| d.chars().all(db_ok));
    plausible.then_some((hosts, db))
}

/// `text` with the URI's password removed, as written and decoded. The
/// driver does not put credentials in its errors as far as we know; this
/// makes sure of it for ours.
fn scrub(text: &str, uri: &str) -> String {
    let Some((_, rest)) = uri.split_once("://") else {
        return text.to_string();
    };
    let before_options = rest.split_once('?').map_or(rest, |(a, _)| a);
    let Some((user_info, _)) = before_options.rsplit_once('@') else {
        return text.to_string();
    };
    let Some((_, password)) = user_info.split_once(':') else {
        return text.to_string();
    };
    let mut out = text.to_string();
    for secret in [password.to_string(), percent_decode(password)] {
        if !secret.is_empty() {
            out = out.replace(&secret, "***");
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_drops_credentials_and_options() {
        assert_eq!(redact("mongodb://user:pass@h:1/?x=1"), "h:1");
        assert_eq!(
            redact("mongodb://user:p%40ss@h1:1,h2:2/fleet?replicaSet=rs0&authSource=admin"),
            "h1:1,h2:2/fleet"
        );
        assert_eq!(redact("mongodb://h"), "h");
        assert_eq!(
            redact("mongodb://127.0.0.1:27018/edgeprobe"),
            "127.0.0.1:27018/edgeprobe"
        );
        assert_eq!(
            redact("mongodb+srv://admin:s3cret@cluster0.example.net/edgeprobe?retryWrites=true"),
            "cluster0.example.net/edgeprobe"
        );
        assert_eq!(redact("mongodb://[::1]:27017/db"), "[::1]:27017/db");
    }

    #[test]
    fn redact_never_echoes_credentials() {
        for (uri, shown) in [
            ("http://user:pass@h:1/", INVALID),
            ("user:pass@h:1", INVALID),
            ("", INVALID),
            ("mongodb://user:pa:ss@h:1/", "h:1"),
            ("mongodb://user:pa/ss@h:1/db", "h:1/db"),
            ("mongodb://user:pa?ss@h:1/db?w=1", "h:1/db"),
            ("mongodb://user:pa@ss@h:1", "h:1"),
            ("mongodb://user:pass@", INVALID),
            ("mongodb://user:pass", INVALID),
        ] {
            let r = redact(uri);
            assert_eq!(r, shown, "{uri}");
            assert!(!r.contains("pa") && !r.contains("user"), "{uri} -> {r}");
        }
    }

    #[test]
    fn new_refuses_a_bad_uri_without_showing_the_password() {
        let e = MongoUpstream::new("mongodb://user:hunter2@h:1/?notAnOption=@@", "edgeprobe");
        if let Err(e) = e {
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        let e = MongoUpstream::new("postgres://user:hunter2@h:1/", "edgeprobe").unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.contains("fix [mongo] uri"), "{msg}");
        assert!(MongoUpstream::new("mongodb://h:1", "").is_err());
    }

    #[test]
    fn server_names_hosts_and_database() {
        let up = MongoUpstream::new(
            "mongodb://u:secret@127.0.0.1:27018/admin?authSource=admin",
            "edgeprobe",
        )
        .unwrap();
        assert_eq!(up.server(), "127.0.0.1:27018/edgeprobe");
        assert!(!format!("{up:?}").contains("secret"));
    }

    /// A bulk error as the driver builds it from a server reply.
    fn bulk(codes: &[i32], write_concern: bool) -> mongodb::error::Error {
        let errors: Vec<Document> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| doc! { "index": i as i32, "code": c, "errmsg": format!("E{c}") })
            .collect();
        let mut reply = doc! { "writeErrors": errors };
        if write_concern {
            reply.insert(
                "writeConcernError",
                doc! { "code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out" },
            );
        }
        let e: InsertManyError = mongodb::bson::from_document(reply).unwrap();
        mongodb::error::Error::from(ErrorKind::InsertMany(e))
    }

    #[test]
    fn only_duplicate_keys_count_as_inserted() {
        assert!(only_duplicates(&bulk(&[11000], false)));
        assert!(only_duplicates(&bulk(&[11000, 11000, 11000], false)));
        assert!(
            !only_duplicates(&bulk(&[11000, 121], false)),
            "one validation failure"
        );
        assert!(!only_duplicates(&bulk(&[2], false)));
        assert!(!only_duplicates(&bulk(&[], false)));
        assert!(
            !only_duplicates(&bulk(&[11000], true)),
            "write concern failed"
        );
        let other = mongodb::error::Error::from(ErrorKind::Io(std::sync::Arc::new(
            std::io::Error::other("reset"),
        )));
        assert!(!only_duplicates(&other));
    }

    #[test]
    fn a_bulk_failure_is_summarised() {
        let r = reason(&bulk(&[121, 11000, 121], true));
        assert_eq!(
            r,
            "3 documents refused, the first with code 121 (no name): E121; \
             write concern not satisfied: code 64: waiting for replication timed out"
        );
        let long = mongodb::error::Error::from(ErrorKind::Io(std::sync::Arc::new(
            std::io::Error::other("x\n".repeat(1000)),
        )));
        let r = reason(&long);
        assert!(
            r.chars().count() <= MAX_REASON + 1 && !r.contains('\n'),
            "{r}"
        );
    }

    #[test]
    fn scrub_removes_the_password_as_written_and_decoded() {
        let uri = "mongodb://ops:p%40ss%2Fw0rd@h:1/db";
        assert_eq!(
            scrub("auth failed for p%40ss%2Fw0rd and p@ss/w0rd", uri),
            "auth failed for *** and ***"
        );
        assert_eq!(scrub("nothing here", "mongodb://h:1"), "nothing here");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
