//! The claims of board-offline alerts in MongoDB: how central replicas
//! agree on who sends each message, with no state in any process
//! (the rules are in [`super::alerting`]).
//!
//! One document per outage in `alert_claims`
//! ([`crate::fleet::schema::ALERT_CLAIMS`]):
//!
//! ```text
//! {_id: "board-offline/<board>/<last_seen ms>", board, last_seen_ms,
//!  offline_at_ms, state: "firing"|"fired"|"resolving"|"resolved",
//!  by, lease_until_ms, attempts, made_at_ms, done: [channel label],
//!  last_error | null, back_at_ms | null, am_next_ms | null,
//!  fired_by, fired_at_ms, resolved_by, resolved_at_ms}
//! ```
//!
//! - Opening an outage is an insert with that `_id`: a duplicate key
//!   (11000) means another replica has it.
//! - Every later step is one `update_one` whose filter is the state the
//!   replica read (`state`, and for a message in flight `by` and
//!   `lease_until_ms`): MongoDB applies an update to one document
//!   atomically, so of replicas racing on the same read exactly one sees
//!   `modified_count == 1` and goes on; the others find the document
//!   changed and leave it. `lease_until_ms` doubles as the fencing token:
//!   a replica that overran its lease cannot record over its successor.
//! - A message is delivered at least once: a replica that dies after a
//!   channel took the message but before it recorded that is followed,
//!   after the lease, by one that sends it again. Nothing is lost.
//!
//! Times are integer milliseconds (`_ms`), not BSON dates: nx-27017, the
//! test server, stores a date written by `$set` as text, and these fields
//! are compared in filters. The claim steps filter on equalities only;
//! the one range filter, `resolved_at_ms < cutoff` in [`MongoClaims::sweep`],
//! is on an integer that both servers compare as numbers (these times do
//! not fit in 32 bits, so nx-27017 keeps them 64-bit as written).
//!
//! The collection keeps one small document per outage; a pass deletes
//! the resolved ones older than [`KEEP_RESOLVED`], and the open ones are
//! found through an index on `state` ([`MongoClaims::ensure_index`]).

use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::{Collection, IndexModel};

use super::alerting::{Claim, ClaimState, Outage};
use super::source::FleetError;
use crate::clock::Timestamp;
use crate::fleet::connection::{scrub, server_label, Connection, SetupError};
use crate::fleet::schema::ALERT_CLAIMS;
use crate::fleet::MongoSettings;

/// MongoDB's code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;

/// The longest one operation may take (the driver has no per-operation
/// timeout for writes).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a resolved claim is kept (for whoever looks at what central
/// sent) before a pass deletes it.
pub const KEEP_RESOLVED: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why the index on `state` is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexError {
    /// The server answered no (a user without the `createIndex`
    /// privilege, say): passes scan the collection, which works, slower.
    Refused(String),
    /// No answer: try again later.
    Unavailable(FleetError),
}

/// The claims collection.
pub struct MongoClaims {
    conn: Connection,
    server: String,
}

impl std::fmt::Debug for MongoClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoClaims")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// How a message in flight ends this attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Every channel is done: `firing` becomes `fired`, `resolving`
    /// `resolved`.
    Finished { am_next: Option<Timestamp> },
    /// Some channel failed: these are done, the rest are tried again at
    /// `retry_at` (the new lease, by whoever passes then). `am_next`:
    /// when Alertmanager, done now, is first to hear again that the alert
    /// still fires (`None`: leave it as it is).
    Retry {
        done: Vec<String>,
        retry_at: Timestamp,
        error: String,
        am_next: Option<Timestamp>,
    },
}

impl MongoClaims {
    /// Check the URI (no network yet).
    pub fn new(settings: &MongoSettings) -> Result<MongoClaims, FleetError> {
        let uri = &settings.uri;
        let conn = Connection::new(uri, &settings.database, "edgeprobe-central").map_err(|e| {
            FleetError::BadUri {
                detail: scrub(&e.to_string(), uri),
            }
        })?;
        Ok(MongoClaims {
            conn,
            server: server_label(uri),
        })
    }

    fn unavailable(&self, operation: &'static str, detail: &str) -> FleetError {
        FleetError::Unavailable {
            server: self.server.clone(),
            operation,
            detail: self.conn.scrub(detail),
        }
    }

    async fn collection(&self) -> Result<Collection<Document>, FleetError> {
        let db = self.conn.database().await.map_err(|e| match e {
            SetupError::Options(e) | SetupError::Client(e) => {
                self.unavailable("connection setup", &e.kind.to_string())
            }
        })?;
        Ok(db.collection(ALERT_CLAIMS))
    }

    /// Run `op` under [`OPERATION_TIMEOUT`].
    async fn limited<T>(
        &self,
        operation: &'static str,
        op: impl std::future::IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<mongodb::error::Result<T>, FleetError> {
        tokio::time::timeout(OPERATION_TIMEOUT, op)
            .await
            .map_err(|_| self.unavailable(operation, "no answer in 20 s"))
    }

    /// Every claim not yet resolved.
    pub async fn open(&self) -> Result<Vec<Claim>, FleetError> {
        Ok(self.read_open().await?.0)
    }

    /// Every claim not yet resolved, and the ids of the open documents
    /// this version cannot read (written by another version): those
    /// outages are someone's already, not new ones to claim.
    pub async fn read_open(&self) -> Result<(Vec<Claim>, Vec<String>), FleetError> {
        const OP: &str = "a read of alert_claims";
        let open: Vec<&str> = ClaimState::OPEN.iter().map(|s| s.as_str()).collect();
        let coll = self.collection().await?;
        let docs: Vec<Document> = self
            .limited(OP, async {
                coll.find(doc! { "state": { "$in": open } })
                    .await?
                    .try_collect()
                    .await
            })
            .await?
            .map_err(|e| self.unavailable(OP, &e.kind.to_string()))?;
        let mut claims = Vec::with_capacity(docs.len());
        let mut unreadable = Vec::new();
        for d in &docs {
            match from_doc(d) {
                Some(c) => claims.push(c),
                None => unreadable.extend(d.get_str("_id").ok().map(str::to_string)),
            }
        }
        Ok((claims, unreadable))
    }

    /// Claim a new outage for `me`: the claim if ours, `None` if another
    /// replica inserted it first.
    pub async fn open_outage(
        &self,
        o: &Outage,
        me: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<Claim>, FleetError> {
        const OP: &str = "an insert into alert_claims";
        let claim = Claim {
            id: o.id.clone(),
            board: o.board.clone(),
            last_seen: o.last_seen,
            offline_at: o.offline_at,
            state: ClaimState::Firing,
            by: me.to_string(),
            lease_until: now.add(lease),
            attempts: 0,
            made_at: now,
            done: Vec::new(),
            back_at: None,
            am_next: None,
        };
        let coll = self.collection().await?;
        match self.limited(OP, coll.insert_one(to_doc(&claim))).await? {
            Ok(_) => Ok(Some(claim)),
            Err(e) if is_duplicate(&e) => Ok(None),
            Err(e) => Err(self.unavailable(OP, &e.kind.to_string())),
        }
    }

    /// One compare-and-swap: `$set` on the document still matching
    /// `filter`; whether it did.
    async fn swap(&self, filter: Document, set: Document) -> Result<bool, FleetError> {
        const OP: &str = "an update of alert_claims";
        let coll = self.collection().await?;
        let r = self
            .limited(OP, coll.update_one(filter, doc! { "$set": set }))
            .await?
            .map_err(|e| self.unavailable(OP, &e.kind.to_string()))?;
        Ok(r.modified_count == 1)
    }

    /// Take over the message in flight of `c`, whose lease has ended.
    pub async fn take_over(
        &self,
        c: &Claim,
        me: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<Claim>, FleetError> {
        let lease_until = now.add(lease);
        let won = self
            .swap(
                in_flight(c),
                doc! { "by": me, "lease_until_ms": lease_until.millis() },
            )
            .await?;
        Ok(won.then(|| Claim {
            by: me.to_string(),
            lease_until,
            ..c.clone()
        }))
    }

    /// Claim the "back online" message of fired `c` (the board synced at
    /// `back_at`); with `send` off, close it without one. The claim to
    /// send when ours.
    pub async fn resolve(
        &self,
        c: &Claim,
        back_at: Timestamp,
        me: &str,
        now: Timestamp,
        lease: Duration,
        send: bool,
    ) -> Result<Option<Claim>, FleetError> {
        let filter = doc! { "_id": &c.id, "state": ClaimState::Fired.as_str() };
        if !send {
            self.swap(
                filter,
                doc! {
                    "state": ClaimState::Resolved.as_str(), "back_at_ms": back_at.millis(),
                    "resolved_by": me, "resolved_at_ms": now.millis(),
                },
            )
            .await?;
            return Ok(None);
        }
        let claim = Claim {
            state: ClaimState::Resolving,
            by: me.to_string(),
            lease_until: now.add(lease),
            attempts: 0,
            made_at: now,
            done: Vec::new(),
            back_at: Some(back_at),
            ..c.clone()
        };
        let won = self
            .swap(
                filter,
                doc! {
                    "state": claim.state.as_str(), "by": me,
                    "lease_until_ms": claim.lease_until.millis(), "attempts": 0_i64,
                    "made_at_ms": now.millis(), "done": Vec::<String>::new(),
                    "back_at_ms": back_at.millis(), "last_error": Bson::Null,
                },
            )
            .await?;
        Ok(won.then_some(claim))
    }

    /// Record how the attempt at the message in flight of `c` (held by
    /// this replica) went; `false` when the lease was lost meanwhile.
    pub async fn record(
        &self,
        c: &Claim,
        progress: Progress,
        now: Timestamp,
    ) -> Result<bool, FleetError> {
        let set = match progress {
            Progress::Finished { am_next } => {
                let (state, by, at) = match c.state {
                    ClaimState::Resolving => {
                        (ClaimState::Resolved, "resolved_by", "resolved_at_ms")
                    }
                    _ => (ClaimState::Fired, "fired_by", "fired_at_ms"),
                };
                let mut set = doc! {
                    "state": state.as_str(),
                    "done": Vec::<String>::new(), "attempts": 0_i64, "last_error": Bson::Null,
                    "am_next_ms": am_next.map_or(Bson::Null, |t| Bson::Int64(t.millis())),
                };
                set.insert(by, &c.by);
                set.insert(at, now.millis());
                set
            }
            Progress::Retry {
                done,
                retry_at,
                error,
                am_next,
            } => {
                let mut set = doc! {
                    "done": done, "attempts": i64::from(c.attempts) + 1,
                    "lease_until_ms": retry_at.millis(), "last_error": error,
                };
                if let Some(t) = am_next {
                    set.insert("am_next_ms", t.millis());
                }
                set
            }
        };
        self.swap(in_flight(c), set).await
    }

    /// Claim this round of telling Alertmanager that `c` (fired, or
    /// firing with Alertmanager done) still fires; `true` when ours to
    /// send. The filter leaves out `by` and `lease_until_ms`, and the
    /// update touches neither, so a refresh never takes a message in
    /// flight from its holder.
    pub async fn refresh(&self, c: &Claim, next: Timestamp) -> Result<bool, FleetError> {
        let Some(due) = c.am_next else {
            return Ok(false);
        };
        self.swap(
            doc! { "_id": &c.id, "state": c.state.as_str(), "am_next_ms": due.millis() },
            doc! { "am_next_ms": next.millis() },
        )
        .await
    }

    /// Delete the claims resolved before `before`; how many. One
    /// `delete_many`, so replicas doing it at once only find less to
    /// delete.
    pub async fn sweep(&self, before: Timestamp) -> Result<u64, FleetError> {
        const OP: &str = "a delete from alert_claims";
        let coll = self.collection().await?;
        let r = self
            .limited(
                OP,
                coll.delete_many(doc! {
                    "state": ClaimState::Resolved.as_str(),
                    "resolved_at_ms": { "$lt": before.millis() },
                }),
            )
            .await?
            .map_err(|e| self.unavailable(OP, &e.kind.to_string()))?;
        Ok(r.deleted_count)
    }

    /// Create the index on `state` that every pass's read of the open
    /// claims uses (nothing when it is there already).
    pub async fn ensure_index(&self) -> Result<(), IndexError> {
        const OP: &str = "creating the index of alert_claims";
        let coll = self.collection().await.map_err(IndexError::Unavailable)?;
        let model = IndexModel::builder().keys(doc! { "state": 1 }).build();
        match self
            .limited(OP, coll.create_index(model))
            .await
            .map_err(IndexError::Unavailable)?
        {
            Ok(_) => Ok(()),
            // The server's answer (not allowed, or any other refusal).
            Err(e) if matches!(e.kind.as_ref(), ErrorKind::Command(_)) => {
                Err(IndexError::Refused(self.conn.scrub(&e.kind.to_string())))
            }
            Err(e) => Err(IndexError::Unavailable(
                self.unavailable(OP, &e.kind.to_string()),
            )),
        }
    }

    /// Close fired `c` without a message (its board's document is gone).
    pub async fn forget(&self, c: &Claim, me: &str, now: Timestamp) -> Result<bool, FleetError> {
        self.swap(
            doc! { "_id": &c.id, "state": ClaimState::Fired.as_str() },
            doc! {
                "state": ClaimState::Resolved.as_str(), "resolved_by": me,
                "resolved_at_ms": now.millis(), "last_error": "the board's document was removed",
            },
        )
        .await
    }
}

/// The filter that matches `c`'s message in flight exactly as read.
fn in_flight(c: &Claim) -> Document {
    doc! {
        "_id": &c.id, "state": c.state.as_str(), "by": &c.by,
        "lease_until_ms": c.lease_until.millis(),
    }
}

fn is_duplicate(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// A new claim's document.
fn to_doc(c: &Claim) -> Document {
    doc! {
        "_id": &c.id, "board": &c.board, "last_seen_ms": c.last_seen.millis(),
        "offline_at_ms": c.offline_at.millis(), "state": c.state.as_str(), "by": &c.by,
        "lease_until_ms": c.lease_until.millis(), "attempts": i64::from(c.attempts),
        "made_at_ms": c.made_at.millis(), "done": c.done.clone(), "last_error": Bson::Null,
        "back_at_ms": Bson::Null, "am_next_ms": Bson::Null,
    }
}

/// A number of milliseconds of any integer type (nx-27017 stores a 64-bit
/// integer that fits in 32 bits as a 32-bit one).
fn millis(d: &Document, key: &str) -> Option<Timestamp> {
    match d.get(key)? {
        Bson::Int64(v) => Some(Timestamp(*v)),
        Bson::Int32(v) => Some(Timestamp(i64::from(*v))),
        #[allow(clippy::cast_possible_truncation)]
        Bson::Double(v) if v.is_finite() && v.fract() == 0.0 => Some(Timestamp(*v as i64)),
        _ => None,
    }
}

/// A claim document; `None` when it is not one this version wrote.
pub fn from_doc(d: &Document) -> Option<Claim> {
    let text = |k: &str| d.get_str(k).ok().map(str::to_string);
    Some(Claim {
        id: text("_id")?,
        board: text("board")?,
        last_seen: millis(d, "last_seen_ms")?,
        offline_at: millis(d, "offline_at_ms")?,
        state: ClaimState::parse(d.get_str("state").ok()?)?,
        by: text("by").unwrap_or_default(),
        lease_until: millis(d, "lease_until_ms")?,
        attempts: millis(d, "attempts").map_or(0, |n| u32::try_from(n.0).unwrap_or(u32::MAX)),
        made_at: millis(d, "made_at_ms")?,
        done: match d.get("done") {
            Some(Bson::Array(a)) => a
                .iter()
                .filter_map(|b| b.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        },
        back_at: millis(d, "back_at_ms"),
        am_next: millis(d, "am_next_ms"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_reads_back_as_written_whatever_its_integer_width() {
        let c = Claim {
            id: "board-offline/closet-3/1795651111000".into(),
            board: "closet-3".into(),
            last_seen: Timestamp(1_795_651_111_000),
            offline_at: Timestamp(1_795_651_291_000),
            state: ClaimState::Firing,
            by: "host/42/1".into(),
            lease_until: Timestamp(1_795_651_351_000),
            attempts: 2,
            made_at: Timestamp(1_795_651_291_500),
            done: vec!["webhook 127.0.0.1:9000".into()],
            back_at: None,
            am_next: None,
        };
        let mut d = to_doc(&c);
        d.insert("attempts", 2_i32);
        assert_eq!(from_doc(&d), Some(c.clone()));
        let f = in_flight(&c);
        assert_eq!(f.get_str("state"), Ok("firing"));
        assert_eq!(f.get_i64("lease_until_ms"), Ok(1_795_651_351_000));
        d.insert("state", "bogus");
        assert_eq!(from_doc(&d), None);
    }
}
