//! The indexes central creates at start: every index of the fleet schema
//! ([`crate::fleet::schema::indexes`], which the boards create too), and
//! the TTL indexes that expire old documents, which only central creates
//! because their lifetimes are its settings ([`Retention`]).
//!
//! MongoDB refuses to create an index whose keys match an existing one
//! with other options (code 85, `IndexOptionsConflict`): a plain `{ts: 1}`
//! that an older board made, or a TTL index with another lifetime. Then
//! central changes the existing index with `collMod` (turning a plain
//! index into a TTL index needs MongoDB 5.1). A server that allows neither
//! (a user without the privilege, or nx-27017, the test server, which has
//! no `collMod`) gets one line saying what to do, and central runs
//! without expiry.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::error::ErrorKind;
use mongodb::{Database, IndexModel};

use crate::fleet::schema::{indexes, Collection, ROLLUPS};

/// How long central keeps what the boards send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw results and traces (TTL on `ts`).
    pub raw: Duration,
    /// Hourly rollups (TTL on `hour`).
    pub rollups: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            raw: Duration::from_secs(14 * 86_400),
            rollups: Duration::from_secs(400 * 86_400),
        }
    }
}

/// A TTL index: a collection, the date field it expires by, and after how
/// many seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlIndex {
    pub collection: &'static str,
    pub field: &'static str,
    pub expire_after_secs: i64,
}

impl TtlIndex {
    fn keys(&self) -> Document {
        doc! { self.field: 1 }
    }

    /// The `collMod` that gives the existing index on the same field this
    /// lifetime.
    pub fn coll_mod(&self) -> Document {
        doc! {
            "collMod": self.collection,
            "index": { "keyPattern": self.keys(), "expireAfterSeconds": self.expire_after_secs },
        }
    }
}

/// The TTL indexes for `retention`.
pub fn ttl_indexes(retention: Retention) -> Vec<TtlIndex> {
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    vec![
        TtlIndex {
            collection: Collection::Results.name(),
            field: "ts",
            expire_after_secs: secs(retention.raw),
        },
        TtlIndex {
            collection: Collection::Traces.name(),
            field: "ts",
            expire_after_secs: secs(retention.raw),
        },
        TtlIndex {
            collection: ROLLUPS,
            field: "hour",
            expire_after_secs: secs(retention.rollups),
        },
    ]
}

/// MongoDB's codes for an index that exists with other options or keys.
const INDEX_CONFLICTS: [i32; 2] = [85, 86];

/// Create every index; what could not be done comes back as lines to
/// print, each saying what to do. Central serves either way: without an
/// index it is slower, without a TTL index nothing expires.
pub async fn ensure(db: &Database, retention: Retention) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, keys) in indexes() {
        let models = keys
            .into_iter()
            .map(|k| IndexModel::builder().keys(k).build());
        if let Err(e) = db.collection::<Document>(name).create_indexes(models).await {
            problems.push(format!(
                "cannot create the indexes of {name} ({}); pages that read it are slower \
                 until a user with the createIndex privilege starts central",
                e.kind
            ));
        }
    }
    for ttl in ttl_indexes(retention) {
        if let Some(problem) = ensure_ttl(db, &ttl).await {
            problems.push(problem);
        }
    }
    problems
}

async fn ensure_ttl(db: &Database, ttl: &TtlIndex) -> Option<String> {
    let model = IndexModel::builder()
        .keys(ttl.keys())
        .options(
            mongodb::options::IndexOptions::builder()
                .expire_after(Duration::from_secs(
                    u64::try_from(ttl.expire_after_secs).unwrap_or(0),
                ))
                .build(),
        )
        .build();
    let created = db
        .collection::<Document>(ttl.collection)
        .create_index(model)
        .await;
    let e = match created {
        Ok(_) => return None,
        Err(e) => e,
    };
    let conflict = matches!(&*e.kind, ErrorKind::Command(c) if INDEX_CONFLICTS.contains(&c.code));
    if conflict {
        match db.run_command(ttl.coll_mod()).await {
            Ok(_) => return None,
            Err(m) => {
                return Some(format!(
                    "{}.{} has an index that is not a TTL index of {} s, and changing it \
                     failed ({}); old documents are not expired: on MongoDB 5.1 or later \
                     run db.runCommand({}) as a user allowed to, or drop that index",
                    ttl.collection,
                    ttl.field,
                    ttl.expire_after_secs,
                    m.kind,
                    ttl.coll_mod()
                ))
            }
        }
    }
    Some(format!(
        "cannot create the TTL index on {}.{} ({}); old documents are not expired \
         until a user with the createIndex privilege starts central",
        ttl.collection, ttl.field, e.kind
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_indexes_follow_the_retention() {
        let ttl = ttl_indexes(Retention::default());
        assert_eq!(
            ttl[0],
            TtlIndex {
                collection: "results",
                field: "ts",
                expire_after_secs: 14 * 86_400
            }
        );
        assert_eq!(ttl[2].collection, "rollups");
        assert_eq!(ttl[2].expire_after_secs, 400 * 86_400);
        assert_eq!(
            ttl[0].coll_mod(),
            doc! { "collMod": "results", "index": { "keyPattern": { "ts": 1 }, "expireAfterSeconds": 1_209_600_i64 } }
        );
    }
}
