//! What the probe loop asks of the history: the [`RoundStore`] trait, its
//! implementation for the SQLite [`Store`]; the loop runs each call on
//! a blocking thread with [`crate::store::blocking`]. The loop holds any `RoundStore`,
//! so it and its recovery paths (a damaged file, a full disk) are tested
//! with a fake that fails on demand.

use std::collections::HashMap;

use crate::clock::Timestamp;
use crate::store::{
    Dropped, EventRecord, ResultRecord, RoundId, RoundRecord, SilenceRow, Store, StoreError,
    StoreStats, TraceRecord,
};

/// What the store remembers of the targets, to fill those without state
/// (see [`MonitorState::restore`](super::MonitorState::restore)).
#[derive(Debug, Default)]
pub struct Remembered {
    /// The newest result of every target.
    pub results: Vec<ResultRecord>,
    /// The newest trace of every target.
    pub traces: Vec<TraceRecord>,
    /// The average RTTs of every target's recent results, oldest first.
    pub recent_rtt: HashMap<String, Vec<Option<f64>>>,
}

/// The history as the probe loop uses it.
pub trait RoundStore: Send + 'static {
    /// Write a round whole, or nothing of it.
    fn write_round(&mut self, round: &RoundRecord) -> Result<(), StoreError>;
    /// Record an event outside a round.
    fn record_event(&mut self, event: &EventRecord) -> Result<(), StoreError>;
    /// Keep `silences` as the ones in force (across restarts).
    fn save_silences(&mut self, silences: &[SilenceRow]) -> Result<(), StoreError>;
    /// Drop what the retention policy no longer keeps.
    fn apply_retention(&mut self, now: Timestamp) -> Result<Dropped, StoreError>;
    /// Start a new, empty history after a write found this one damaged
    /// (`damage` says how); returns the sentence for the event log.
    fn recreate_after(&mut self, damage: String) -> Result<String, StoreError>;
    /// What opening the history had to do to a damaged file, once.
    fn take_recovery(&mut self) -> Option<String>;
    /// The highest round written, so numbering continues.
    fn last_round(&self) -> Result<Option<RoundId>, StoreError>;
    /// Backlog, size and drop totals.
    fn stats(&self) -> Result<StoreStats, StoreError>;
    /// Every target's uptime over the 24 h before `now`.
    fn uptimes_24h(&self, now: Timestamp) -> Result<HashMap<String, f64>, StoreError>;
    /// The latest result and trace of every target, and the average RTTs
    /// of its last `rtt_rounds` results.
    fn remembered(&self, rtt_rounds: usize) -> Result<Remembered, StoreError>;
}

impl RoundStore for Store {
    fn write_round(&mut self, round: &RoundRecord) -> Result<(), StoreError> {
        Store::write_round(self, round)
    }

    fn record_event(&mut self, event: &EventRecord) -> Result<(), StoreError> {
        Store::record_event(self, event)
    }

    fn save_silences(&mut self, silences: &[SilenceRow]) -> Result<(), StoreError> {
        Store::save_silences(self, silences)
    }

    fn apply_retention(&mut self, now: Timestamp) -> Result<Dropped, StoreError> {
        Store::apply_retention(self, now)
    }

    fn recreate_after(&mut self, damage: String) -> Result<String, StoreError> {
        let cause = StoreError::Unusable {
            path: self.path().display().to_string(),
            reason: damage,
        };
        Store::recreate(self, &cause)
    }

    fn take_recovery(&mut self) -> Option<String> {
        Store::take_recovery(self)
    }

    fn last_round(&self) -> Result<Option<RoundId>, StoreError> {
        Store::last_round(self)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        Store::stats(self)
    }

    fn uptimes_24h(&self, now: Timestamp) -> Result<HashMap<String, f64>, StoreError> {
        Store::uptimes_24h(self, now)
    }

    fn remembered(&self, rtt_rounds: usize) -> Result<Remembered, StoreError> {
        Ok(Remembered {
            results: self.latest_results()?,
            traces: self.latest_traces()?,
            recent_rtt: self.recent_rtts(rtt_rounds)?,
        })
    }
}
