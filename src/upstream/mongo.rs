//! [`Upstream`] over the official MongoDB driver: the write side of the
//! sync (indexes, unordered inserts that absorb duplicate keys, the board
//! document's upsert), each under a time limit. The connection itself
//! (client options, timeouts, made on first use, credential-free
//! messages) is [`crate::fleet::connection`], shared with central.
//!
//! Tested against `nx-27017` (a MongoDB wire-protocol server on SQLite),
//! see `tests/upstream_sync.rs`; where it differs from MongoDB is noted
//! there.

use std::fmt;
use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::error::{ErrorKind, InsertManyError};
use mongodb::{Database, IndexModel};

use super::{Refusal, Upstream, UpstreamError};
use crate::fleet::connection::{redact, redacted_hosts, scrub, Connection, SetupError};
use crate::fleet::schema::{indexes, Collection, BOARDS, ROLLUPS};

/// The longest one operation (an insert of a batch, a board update) may
/// take before the server counts as unreachable for this attempt.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// MongoDB's code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;
/// MongoDB's code for a user without the privilege (here: to insert
/// into this collection); the whole command is refused.
const UNAUTHORIZED: i32 = 13;
/// MongoDB's code for a document that failed the collection's validator
/// (a command error when the whole command is refused).
const DOCUMENT_VALIDATION_FAILURE: i32 = 121;
/// Error texts from the driver can be long (a whole topology
/// description); the dashboard header shows at most this much.
const MAX_REASON: usize = 600;

/// The central MongoDB.
pub struct MongoUpstream {
    conn: Connection,
    /// `host:port[,host:port]/database`, for messages.
    server: String,
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
        let conn = match Connection::new(uri, database, "edgeprobe") {
            Ok(c) => c,
            Err(e) => {
                return Err(UpstreamError::BadUri {
                    server: redact(uri),
                    reason: scrub(&e.kind.to_string(), uri),
                })
            }
        };
        let hosts = redacted_hosts(uri);
        if database.is_empty() {
            return Err(UpstreamError::BadUri {
                server: redact(uri),
                reason: "the database name is empty".into(),
            });
        }
        let server = format!("{hosts}/{database}");
        Ok(MongoUpstream { conn, server })
    }

    async fn db(&self) -> Result<Database, UpstreamError> {
        self.conn.database().await.map_err(|e| match e {
            SetupError::Options(e) => self.fail("reading the URI", &e),
            SetupError::Client(e) => self.fail("creating the client", &e),
        })
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
            reason: self.conn.scrub(&reason(e)),
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
    ) -> Result<Vec<Refusal>, UpstreamError> {
        let op = format!("inserting {} {}", docs.len(), collection.name());
        self.limited(op, self.insert_many(collection, docs)).await
    }

    async fn replace_rollups(&self, docs: Vec<Document>) -> Result<(), UpstreamError> {
        let op = format!("writing {} rollups", docs.len());
        self.limited(op, self.upsert_rollups(docs)).await
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
    ) -> Result<Vec<Refusal>, UpstreamError> {
        if docs.is_empty() {
            // The driver refuses an empty insert_many.
            return Ok(Vec::new());
        }
        let n = docs.len();
        let db = self.db().await?;
        match db
            .collection::<Document>(collection.name())
            .insert_many(docs)
            .ordered(false)
            .await
        {
            Ok(_) => Ok(Vec::new()),
            Err(e) => refusals(&e, n)
                .map(|refused| {
                    refused
                        .into_iter()
                        .map(|r| Refusal {
                            message: self.conn.scrub(&r.message),
                            ..r
                        })
                        .collect()
                })
                .ok_or_else(|| self.fail(format!("inserting {n} {}", collection.name()), &e)),
        }
    }

    /// One `update` command with a replacement upsert per document,
    /// unordered. (The driver's `bulk_write` needs MongoDB 8; the `update`
    /// command with many statements is as old as the write commands, and
    /// nx-27017 takes it too.)
    async fn upsert_rollups(&self, docs: Vec<Document>) -> Result<(), UpstreamError> {
        if docs.is_empty() {
            return Ok(());
        }
        let n = docs.len();
        let op = || format!("writing {n} rollups");
        let updates: Vec<Document> = docs
            .into_iter()
            .map(|d| doc! { "q": rollup_filter(&d), "u": d, "upsert": true })
            .collect();
        let db = self.db().await?;
        let reply = db
            .run_command(doc! { "update": ROLLUPS, "updates": updates, "ordered": false })
            .await
            .map_err(|e| self.fail(op(), &e))?;
        match refused_statements(&reply) {
            None => Ok(()),
            Some(reason) => Err(UpstreamError::Server {
                server: self.server.clone(),
                op: op(),
                reason: self.conn.scrub(&reason),
            }),
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

/// The documents of an unordered insert of `n` the server refused, or
/// `None` when the error is not about documents (the server is away, the
/// write concern failed): then nothing counts as done and all is sent
/// again.
///
/// Per document: a duplicate key on `_id` is a document sent before whose
/// acknowledgement was lost, so not a refusal; any other write error is.
/// A command refused as a whole because the user may not insert here, or
/// because of validation, refuses every document of it.
fn refusals(e: &mongodb::error::Error, n: usize) -> Option<Vec<Refusal>> {
    match &*e.kind {
        ErrorKind::InsertMany(InsertManyError {
            write_errors: Some(errors),
            write_concern_error: None,
            ..
        }) => Some(
            errors
                .iter()
                .filter(|w| !(w.code == DUPLICATE_KEY && duplicate_on_id(&w.message)))
                .map(|w| Refusal {
                    index: w.index,
                    code: w.code,
                    message: one_line(&w.message),
                })
                .collect(),
        ),
        ErrorKind::Command(c) if [UNAUTHORIZED, DOCUMENT_VALIDATION_FAILURE].contains(&c.code) => {
            Some(
                (0..n)
                    .map(|index| Refusal {
                        index,
                        code: c.code,
                        message: one_line(&c.message),
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Whether a duplicate key error's message names the `_id` index.
///
/// MongoDB: `E11000 duplicate key error collection: db.results index:
/// _id_ dup key: { _id: "..." }` (the driver does not keep the reply's
/// `keyPattern`, so the message is what there is). nx-27017 answers code
/// 11000 with SQLite's own text instead: `UNIQUE constraint failed:
/// results._id` for `_id`, `... index 'idx_results_...'` for another
/// unique index, and any other constraint (a trigger's `RAISE`) with its
/// own message; only the first is `_id`.
fn duplicate_on_id(message: &str) -> bool {
    if let Some((_, rest)) = message.split_once(" index: ") {
        return rest.split_whitespace().next() == Some("_id_");
    }
    message
        .strip_prefix("UNIQUE constraint failed: ")
        .is_some_and(|columns| columns.ends_with("._id") && !columns.contains(','))
}

/// A server message in one line of reasonable length.
fn one_line(text: &str) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(MAX_REASON) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// Which document a rollup replaces: its `_id`, and the fields a sharded
/// `rollups` would be keyed by (`board`, `target`, `hour_ms`: an upsert
/// into a sharded collection must name the shard key). All follow from
/// the `_id`, so the filter matches the same one document either way.
fn rollup_filter(d: &Document) -> Document {
    let mut q = Document::new();
    for key in ["_id", "board", "target", "hour_ms"] {
        if let Some(v) = d.get(key) {
            q.insert(key, v.clone());
        }
    }
    q
}

/// What a write command's reply says went wrong, in one line, or `None`
/// when every statement was applied. A command answers `ok: 1` and lists
/// the statements it refused in `writeErrors`.
fn refused_statements(reply: &Document) -> Option<String> {
    let mut parts = Vec::new();
    if let Ok(errors) = reply.get_array("writeErrors") {
        if let Some(first) = errors.first().and_then(|e| e.as_document()) {
            parts.push(format!(
                "{} statements refused, the first with code {}: {}",
                errors.len(),
                first
                    .get("code")
                    .map_or_else(|| "?".into(), |c| c.to_string()),
                first.get_str("errmsg").unwrap_or("no message")
            ));
        }
    }
    if let Ok(wc) = reply.get_document("writeConcernError") {
        parts.push(format!(
            "write concern not satisfied: {}",
            wc.get_str("errmsg").unwrap_or("no message")
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
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
    one_line(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let errors: Vec<(i32, String)> = codes.iter().map(|c| (*c, format!("E{c}"))).collect();
        bulk_with(&errors, write_concern)
    }

    /// A bulk error of these codes and messages, one per document.
    fn bulk_with(errors: &[(i32, String)], write_concern: bool) -> mongodb::error::Error {
        let errors: Vec<Document> = errors
            .iter()
            .enumerate()
            .map(|(i, (c, m))| doc! { "index": i as i32, "code": c, "errmsg": m })
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

    const ID_DUP: &str =
        "E11000 duplicate key error collection: edgeprobe.results index: _id_ dup key: { _id: \"b1/1\" }";
    const OTHER_DUP: &str = "E11000 duplicate key error collection: edgeprobe.results \
         index: board_1_target_1_ts_1 dup key: { board: \"b1\" }";

    #[test]
    fn only_a_duplicate_on_the_id_counts_as_already_sent() {
        let codes = |e| -> Vec<(usize, i32)> {
            refusals(&e, 9)
                .expect("refusals")
                .iter()
                .map(|r| (r.index, r.code))
                .collect()
        };
        let id_dup = (11000, ID_DUP.to_string());
        assert_eq!(
            codes(bulk_with(&[id_dup.clone(), id_dup.clone()], false)),
            []
        );
        // nx-27017's words for the same.
        let nx_id = (11000, "UNIQUE constraint failed: results._id".to_string());
        assert_eq!(codes(bulk_with(&[nx_id], false)), []);
        // A duplicate on another unique index, a validator, a trigger.
        let refused = [
            id_dup,
            (11000, OTHER_DUP.to_string()),
            (121, "Document failed validation".to_string()),
            (
                11000,
                "UNIQUE constraint failed: index 'idx_results_board_k'".to_string(),
            ),
            (11000, "refused by a trigger".to_string()),
        ];
        assert_eq!(
            codes(bulk_with(&refused, false)),
            [(1, 11000), (2, 121), (3, 11000), (4, 11000)]
        );
        let r = refusals(&bulk_with(&refused, false), 9).unwrap();
        assert_eq!(r[1].message, "Document failed validation");
        // Not about documents: nothing is refused, all is sent again.
        assert_eq!(refusals(&bulk(&[11000], true), 9), None, "write concern");
        let other = mongodb::error::Error::from(ErrorKind::Io(std::sync::Arc::new(
            std::io::Error::other("reset"),
        )));
        assert_eq!(refusals(&other, 9), None);
    }

    #[test]
    fn a_user_that_may_not_insert_here_refuses_every_document() {
        let e: mongodb::error::CommandError = mongodb::bson::from_document(doc! {
            "code": 13,
            "codeName": "Unauthorized",
            "errmsg": "not authorized on edgeprobe to execute command { insert: \"events\" }",
        })
        .unwrap();
        let e = mongodb::error::Error::from(ErrorKind::Command(e));
        let r = refusals(&e, 3).unwrap();
        assert_eq!(r.iter().map(|r| r.index).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(r
            .iter()
            .all(|r| r.code == 13 && r.message.contains("events")));
    }

    #[test]
    fn refused_update_statements_are_reported() {
        assert_eq!(
            refused_statements(&doc! { "ok": 1, "n": 3, "nModified": 1 }),
            None
        );
        let reply = doc! {
            "ok": 1,
            "n": 1,
            "writeErrors": [
                { "index": 1, "code": 121, "errmsg": "Document failed validation" },
                { "index": 2, "code": 121, "errmsg": "Document failed validation" },
            ],
        };
        assert_eq!(
            refused_statements(&reply).as_deref(),
            Some("2 statements refused, the first with code 121: Document failed validation")
        );
        let wc = doc! { "ok": 1, "writeConcernError": { "code": 64, "errmsg": "timed out" } };
        assert_eq!(
            refused_statements(&wc).as_deref(),
            Some("write concern not satisfied: timed out")
        );
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
}
