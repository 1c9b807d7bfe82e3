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
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
// tokio's clock: the same as std's when running, and one tests can pause.
use tokio::time::Instant;

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
            if fresh || c.read_at > arrived {
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::future::BoxFuture;

    use super::*;
    use crate::central::model::{AvailabilityRow, Event, HourRow};
    use crate::central::pipeline::Scope;

    /// A source that counts the summary's reads, each taking a second
    /// (paused time), and fails while `failing` is set. Only what the
    /// summary reads is answered.
    #[derive(Default)]
    struct CountingSource {
        reads: AtomicUsize,
        failing: std::sync::atomic::AtomicBool,
    }

    impl CountingSource {
        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    impl FleetSource for CountingSource {
        fn server(&self) -> &str {
            "counting"
        }
        fn ping(&self) -> BoxFuture<'_, Result<(), FleetError>> {
            unreachable!("not part of the summary")
        }
        fn boards(&self) -> BoxFuture<'_, Result<Vec<Board>, FleetError>> {
            Box::pin(async move {
                self.reads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                if self.failing.load(Ordering::SeqCst) {
                    return Err(FleetError::Unavailable {
                        server: "counting".into(),
                        operation: "a read of boards",
                        detail: "down".into(),
                    });
                }
                Ok(vec![Board {
                    id: "closet-1".into(),
                    ..Board::default()
                }])
            })
        }
        fn heartbeats(&self) -> BoxFuture<'_, Result<Vec<Board>, FleetError>> {
            unreachable!("not part of the summary")
        }
        fn board<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Board>, FleetError>> {
            unreachable!("not part of the summary")
        }
        fn events<'a>(
            &'a self,
            _: &'a str,
            _: i64,
        ) -> BoxFuture<'a, Result<Vec<Event>, FleetError>> {
            unreachable!("not part of the summary")
        }
        fn availability<'a>(
            &'a self,
            _: Scope<'a>,
            _: Timestamp,
        ) -> BoxFuture<'a, Result<Vec<AvailabilityRow>, FleetError>> {
            unreachable!("not part of the summary")
        }
        fn hourly<'a>(
            &'a self,
            _: &'a str,
            _: Option<&'a str>,
            _: Timestamp,
        ) -> BoxFuture<'a, Result<Vec<HourRow>, FleetError>> {
            unreachable!("not part of the summary")
        }
        fn clock_ahead(&self, _: Timestamp) -> BoxFuture<'_, Result<Vec<ClockAhead>, FleetError>> {
            Box::pin(async { Ok(Vec::new()) })
        }
    }

    /// `n` requests asking for the summary at once.
    async fn burst(
        cache: &SummaryCache,
        source: &CountingSource,
        n: usize,
    ) -> Vec<Result<Arc<FleetSummary>, FleetError>> {
        let now = Timestamp(1_800_000_000_000);
        futures::future::join_all((0..n).map(|_| cache.get(source, now))).await
    }

    #[tokio::test(start_paused = true)]
    async fn the_summary_is_read_once_for_every_waiting_request_and_again_when_old() {
        let (cache, source) = (SummaryCache::default(), CountingSource::default());
        let answers = burst(&cache, &source, 100).await;
        assert!(answers
            .iter()
            .all(|a| a.as_ref().is_ok_and(|s| s.boards.len() == 1)));
        assert_eq!(source.reads(), 1, "one read for 100 requests");
        burst(&cache, &source, 10).await;
        assert_eq!(source.reads(), 1, "still fresh");
        tokio::time::sleep(SUMMARY_TTL).await;
        burst(&cache, &source, 10).await;
        assert_eq!(source.reads(), 2, "read again once older than the TTL");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_goes_to_its_waiters_and_the_next_request_tries_again() {
        let (cache, source) = (SummaryCache::default(), CountingSource::default());
        source.failing.store(true, Ordering::SeqCst);
        let answers = burst(&cache, &source, 50).await;
        assert!(answers.iter().all(Result::is_err));
        assert_eq!(source.reads(), 1, "the waiters share the failure");
        source.failing.store(false, Ordering::SeqCst);
        let answers = burst(&cache, &source, 5).await;
        assert!(
            answers.iter().all(Result::is_ok),
            "not cached past its waiters"
        );
        assert_eq!(source.reads(), 2);
    }

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
