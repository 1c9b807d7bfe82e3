//! What central may spend on MongoDB: the fleet summary, read once for a
//! few seconds however many requests want it, and a cap on the requests
//! that read the database at once.
//!
//! - [`SummaryCache`] holds every board document (the fleet page, the
//!   lists every page of pairs is cut from) and the boards whose clock
//!   runs ahead, for [`SUMMARY_TTL`]. One request refreshes it; the others
//!   wait for that read instead of sending their own. Per process: a
//!   replica's copy is at most seconds old, so replicas need not agree.
//! - [`QuerySlots`]: at most so many requests read MongoDB at once; one
//!   that cannot get a slot within [`SLOT_WAIT`] is answered 429 with
//!   `Retry-After`, so a burst of heavy pages cannot starve the boards'
//!   own writes to the same server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use super::model::{Board, ClockAhead};
use super::source::{FleetError, FleetSource};
use crate::clock::Timestamp;

/// How long a summary is served before it is read again.
pub const SUMMARY_TTL: Duration = Duration::from_secs(5);
/// Requests that may read MongoDB at once, per process, by default.
pub const DEFAULT_SLOTS: usize = 8;
/// How long a request waits for a slot before it is told to come back.
pub const SLOT_WAIT: Duration = Duration::from_secs(2);
/// A board is flagged when it uploads rollups for hours that start this
/// far after central's clock.
pub const CLOCK_TOLERANCE: Duration = Duration::from_secs(3600);

/// The board documents and the clock check, as read at `read_at`.
#[derive(Debug)]
pub struct FleetSummary {
    pub boards: Vec<Board>,
    /// Boards whose rollups are stamped ahead of central's clock.
    pub clock_ahead: Vec<ClockAhead>,
}

/// The last read: when it finished and what it gave.
struct Cached {
    read_at: Instant,
    result: Result<Arc<FleetSummary>, FleetError>,
}

/// The summary, shared by the requests of one process.
#[derive(Default)]
pub struct SummaryCache {
    slot: Mutex<Option<Cached>>,
}

impl SummaryCache {
    /// The summary, read from `source` when the cached one is older than
    /// [`SUMMARY_TTL`]. A failed read is given to the requests that were
    /// waiting for it and not cached beyond them: the next request tries
    /// again, but a stalled server does not make each waiter wait its
    /// own timeout in turn.
    pub async fn get(
        &self,
        source: &dyn FleetSource,
        now: Timestamp,
    ) -> Result<Arc<FleetSummary>, FleetError> {
        let arrived = Instant::now();
        let mut slot = self.slot.lock().await;
        if let Some(c) = slot.as_ref() {
            let fresh = c.result.is_ok() && c.read_at.elapsed() < SUMMARY_TTL;
            if fresh || c.read_at >= arrived {
                return c.result.clone();
            }
        }
        let (boards, clock_ahead) = futures::join!(
            source.boards(),
            source.clock_ahead(now.add(CLOCK_TOLERANCE))
        );
        let result = boards.and_then(|boards| {
            Ok(Arc::new(FleetSummary {
                boards,
                clock_ahead: clock_ahead?,
            }))
        });
        *slot = Some(Cached {
            read_at: Instant::now(),
            result: result.clone(),
        });
        result
    }
}

/// The cap on requests reading MongoDB at once.
pub struct QuerySlots {
    slots: Arc<Semaphore>,
    size: usize,
}

/// No slot came free in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    /// The cap that was reached.
    pub slots: usize,
}

impl QuerySlots {
    pub fn new(size: usize) -> QuerySlots {
        let size = size.max(1);
        QuerySlots {
            slots: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// A slot, held until the returned permit is dropped, or [`Busy`]
    /// after [`SLOT_WAIT`].
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, Busy> {
        let wait = Arc::clone(&self.slots).acquire_owned();
        match tokio::time::timeout(SLOT_WAIT, wait).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out, or closed (never: nothing closes it).
            _ => Err(Busy { slots: self.size }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_cap_answers_busy_after_the_wait() {
        let slots = QuerySlots::new(2);
        let a = slots.acquire().await.unwrap();
        let _b = slots.acquire().await.unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(slots.acquire().await.unwrap_err(), Busy { slots: 2 });
        assert_eq!(started.elapsed(), SLOT_WAIT);
        drop(a);
        assert!(slots.acquire().await.is_ok());
    }
}
