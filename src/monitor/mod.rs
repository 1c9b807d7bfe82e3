//! The monitor: rounds of probes on a schedule, status smoothing, events,
//! target reloads, and the snapshot the dashboard reads.

mod snapshot;

pub use snapshot::{
    BoardGateway, BoardInfo, LedPattern, LedView, RejectedSheet, RoundInfo, SheetView, Snapshot,
    StatusCounts, TargetView, UpstreamView,
};

use tokio::sync::oneshot;

/// What the dashboard's admin endpoints ask of the monitor.
#[derive(Debug)]
pub enum Command {
    /// Start a round now (or right after the one in flight).
    ProbeNow,
    /// Replace the targets with an uploaded sheet, if it is valid. The
    /// reply is a one-line summary, or every problem that stopped it.
    ReplaceTargets {
        /// The uploaded file's name; its extension picks the format.
        file_name: String,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<String, Vec<String>>>,
    },
}
