//! Where the fleet's MongoDB is: the one settings type both sides take,
//! [`MongoSettings`]. `edgeprobe run` resolves it from `[mongo]` and its
//! flags (`crate::config`) and syncs to it (`crate::upstream`);
//! `edgeprobe central` builds it from its flags and reads from it
//! (`crate::central`).

/// The database used when none is configured.
pub const DEFAULT_DATABASE: &str = "edgeprobe";
/// Outbox rows per insert: large enough to amortise a round trip, small
/// enough that a batch's documents stay far below MongoDB's 48 MB message
/// and a failed batch costs little to resend.
pub const DEFAULT_BATCH: usize = 500;

/// The fleet's MongoDB and how boards write to it.
#[derive(Clone, PartialEq, Eq)]
pub struct MongoSettings {
    /// `mongodb://` or `mongodb+srv://`, with the TLS options added; may
    /// hold credentials, so it is never printed (see `Debug`).
    pub uri: String,
    pub database: String,
    /// Outbox rows per insert (at least 1); only the board's sync writes.
    pub batch: usize,
}

impl MongoSettings {
    /// `uri` with the default database and batch.
    pub fn new(uri: impl Into<String>) -> MongoSettings {
        MongoSettings {
            uri: uri.into(),
            database: DEFAULT_DATABASE.to_string(),
            batch: DEFAULT_BATCH,
        }
    }
}

impl std::fmt::Debug for MongoSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoSettings")
            .field("uri", &"(hidden)")
            .field("database", &self.database)
            .field("batch", &self.batch)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_a_hidden_uri() {
        let m = MongoSettings::new("mongodb://u:secret@db.example.net/");
        assert_eq!((m.database.as_str(), m.batch), ("edgeprobe", 500));
        let shown = format!("{m:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("example"),
            "{shown}"
        );
    }
}
