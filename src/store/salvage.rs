//! Carrying the unsent rows of a damaged file into the new one.
//!
//! When the store moves a damaged file aside, the rows its outbox still
//! held had not reached the server; a new, empty file would drop them
//! unnoticed. What of them can still be read (most damage is a page or
//! two, elsewhere) is written into the new file and queued again, with
//! the file's last round number so the numbering (and with it the
//! documents' `_id`s upstream) goes on. What cannot be read is said in
//! the recovery note, and counted in `dropped_unsynced` when the number
//! is known.

use std::path::Path;

use rusqlite::Connection;

use super::outbox::{self, OutboxRecord};
use super::records::{RoundId, RoundRecord};
use super::schema;
use super::StoreError;

/// At most this many rows are carried over; a larger backlog keeps its
/// oldest rows and the rest is counted as dropped.
pub(super) const MAX_SALVAGED: usize = 200_000;

/// What could be read of the damaged file's unsent rows.
#[derive(Debug, Default)]
pub(super) struct Salvage {
    /// The rows, as one record to write (round: the file's last round).
    pub rows: RoundRecord,
    /// How many rows were read.
    pub carried: u64,
    /// How many unsent rows are known to be lost (more than
    /// [`MAX_SALVAGED`], or unreadable).
    pub lost: u64,
    /// Why nothing could be read, when so.
    pub unreadable: Option<String>,
}

impl Salvage {
    /// The sentence the recovery note ends with.
    pub fn sentence(&self) -> String {
        match (&self.unreadable, self.lost) {
            (Some(why), 0) => {
                format!("its unsent rows could not be read ({why}) and are not sent upstream")
            }
            (Some(why), lost) => format!(
                "its {lost} unsent rows could not be read ({why}) and are not sent upstream"
            ),
            (None, 0) => format!(
                "its {} unsent rows were carried into the new file and will be sent",
                self.carried
            ),
            (None, lost) => format!(
                "{} of its unsent rows were carried into the new file and will be sent, \
                 {lost} more could not be kept",
                self.carried
            ),
        }
    }
}

/// Read the unsent rows of the damaged file at `aside`; never fails (what
/// cannot be read is reported in the result).
pub(super) fn read(aside: &Path) -> Salvage {
    let conn = match schema::open_reader(aside) {
        Ok(c) => c,
        Err(e) => return unreadable(0, e),
    };
    let waiting = outbox::records_in(&conn, "refused IS NULL").unwrap_or(0);
    if waiting == 0 {
        return Salvage::default();
    }
    match read_rows(&conn) {
        Ok(rows) => {
            let carried = (rows.results.len() + rows.traces.len() + rows.events.len()) as u64;
            Salvage {
                rows,
                carried,
                lost: waiting.saturating_sub(carried),
                unreadable: None,
            }
        }
        Err(e) => unreadable(waiting, e),
    }
}

fn unreadable(lost: u64, e: StoreError) -> Salvage {
    Salvage {
        lost,
        unreadable: Some(e.to_string()),
        ..Salvage::default()
    }
}

fn read_rows(conn: &Connection) -> Result<RoundRecord, StoreError> {
    let last = super::history::last_round(conn)?.unwrap_or(RoundId(0));
    let mut rows = RoundRecord {
        round: last,
        ..RoundRecord::default()
    };
    // The file's generation does not matter: these ids are not used.
    for item in outbox::batch(conn, 0, MAX_SALVAGED)? {
        match item.record {
            OutboxRecord::Result(r) => rows.results.push(r),
            OutboxRecord::Trace(t) => rows.traces.push(t),
            OutboxRecord::Event(e) => rows.events.push(e),
        }
    }
    Ok(rows)
}
