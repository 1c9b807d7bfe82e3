//! The sync task: after each round, send what the outbox holds and
//! refresh the board's document; while the server is away, back off and
//! leave the rows where they are.
//!
//! A row leaves the outbox only after the server acknowledged its
//! document. A crash or a lost acknowledgement in between means the row
//! is sent again, which the deterministic `_id`s turn into a duplicate key
//! that [`Upstream::insert`] counts as success: nothing lost, nothing
//! doubled.
//!
//! A document the server refuses (a validator, a permission, a duplicate
//! on another unique index) is set aside in the outbox with the server's
//! reason ([`Store::set_aside_refused`]) and never sent again: the rows
//! behind it, and the board's heartbeat, go on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mongodb::bson::Document;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::clock::Timestamp;
use crate::lock::lock;
use crate::monitor::{Snapshot, UpstreamView};
use crate::store::{OutboxId, RefusedRow, RoundId, Store, StoreError, StoreStats};

use super::backoff::{Backoff, DEFAULT_FACTOR, DEFAULT_START};
use super::docs;
use super::{MongoUpstream, Refusal, Upstream, UpstreamError};
use crate::fleet::schema::{fnv1a, BoardStatus, Collection};
use crate::fleet::MongoSettings;

/// The longest wait between attempts while the server is away.
pub const DEFAULT_BACKOFF_MAX: Duration = super::backoff::DEFAULT_CAP;

/// While draining, `Draining` is republished at most this often: every
/// publish makes the monitor rebuild its snapshot.
const REPUBLISH_EVERY: Duration = Duration::from_secs(5);

/// The sync task and what it owns.
pub struct Syncer<U: Upstream = MongoUpstream> {
    upstream: U,
    board: String,
    store: Arc<Mutex<Store>>,
    batch: usize,
    backoff: Backoff,
}

impl Syncer<MongoUpstream> {
    /// A sync to the MongoDB of `settings` for board `board`, waiting at
    /// most `backoff_max` between attempts (see [`DEFAULT_BACKOFF_MAX`]).
    /// Checks the URI (no network yet) and turns on the store's outbox,
    /// so that every round from now on is queued.
    pub fn new(
        settings: &MongoSettings,
        backoff_max: Duration,
        board: impl Into<String>,
        store: Arc<Mutex<Store>>,
    ) -> Result<Syncer<MongoUpstream>, UpstreamError> {
        let upstream = MongoUpstream::new(&settings.uri, &settings.database)?;
        let board = board.into();
        // Seeded by the board id: boards of one fleet spread their retries
        // when the central server comes back.
        let backoff =
            Backoff::new(DEFAULT_START, DEFAULT_FACTOR, backoff_max).with_jitter(fnv1a(&board));
        Ok(Syncer::with_upstream(
            upstream,
            board,
            store,
            settings.batch,
            backoff,
        ))
    }
}

impl<U: Upstream> Syncer<U> {
    /// A sync through any [`Upstream`] (a fake one in tests). Turns on the
    /// store's outbox.
    pub fn with_upstream(
        upstream: U,
        board: impl Into<String>,
        store: Arc<Mutex<Store>>,
        batch: usize,
        backoff: Backoff,
    ) -> Syncer<U> {
        lock(&store).set_outbox(true);
        Syncer {
            upstream,
            board: board.into(),
            store,
            batch: batch.max(1),
            backoff,
        }
    }

    /// Where the data goes, without credentials.
    pub fn server(&self) -> &str {
        self.upstream.server()
    }

    /// Sync until `shutdown` turns true (or its sender is gone).
    ///
    /// Tries at once (a backlog from before a restart), then whenever a
    /// snapshot with a new round arrives, or, while the server is away,
    /// when the backoff expires (new rounds do not cut a backoff short).
    /// Publishes `Connecting` before the first success, `Draining` while
    /// more than a batch is waiting, `Synced` when caught up and
    /// `Unreachable` after a failure. On shutdown it stops at once: what
    /// was not acknowledged stays in the outbox for the next start.
    pub async fn run(
        mut self,
        mut snapshots: watch::Receiver<Arc<Snapshot>>,
        status: watch::Sender<UpstreamView>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let server = self.upstream.server().to_string();
        status.send_replace(UpstreamView::Connecting {
            server: server.clone(),
        });
        let mut p = Progress {
            server,
            indexes: false,
            index_warned: false,
            last_sync: None,
            down_since: None,
            seen_round: None,
            board_round: None,
            published: Instant::now(),
        };
        let mut retry: Option<Instant> = None;
        let mut due = true;
        loop {
            if due {
                due = false;
                let outcome = tokio::select! {
                    biased;
                    _ = shutdown.wait_for(|s| *s) => return,
                    r = self.cycle(&mut p, &mut snapshots, &status) => r,
                };
                retry = match outcome {
                    Ok(()) => {
                        self.backoff.reset();
                        p.down_since = None;
                        None
                    }
                    Err(e) => Some(self.failed(&mut p, &status, e)),
                };
            }
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|s| *s) => return,
                _ = sleep_until(retry), if retry.is_some() => due = true,
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        // The monitor is gone: the process is stopping.
                        return;
                    }
                    let round = last_round(&snapshots.borrow_and_update());
                    if round != p.seen_round && retry.is_none() {
                        due = true;
                    }
                }
            }
        }
    }

    /// One attempt: indexes (once), the outbox until it is empty, the
    /// board's document, the rollups. The board's document goes before
    /// the rollups: a rollup the server refuses fails the attempt (and is
    /// tried again after the backoff) without making the board look
    /// offline.
    async fn cycle(
        &mut self,
        p: &mut Progress,
        snapshots: &mut watch::Receiver<Arc<Snapshot>>,
        status: &watch::Sender<UpstreamView>,
    ) -> Result<(), UpstreamError> {
        let mut snap = Arc::clone(&snapshots.borrow_and_update());
        p.seen_round = last_round(&snap);
        // Without indexes central is slower, not wrong: a user that may
        // write but not create indexes still syncs (and hears why, once the
        // writes show that the server itself is fine).
        let mut index_error = None;
        if !p.indexes {
            match self.upstream.ensure_indexes().await {
                Ok(()) => p.indexes = true,
                Err(e) => index_error = Some(e),
            }
        }
        let mut backlog = self.store(|s| s.stats()).await?.backlog;
        let mut sent = 0u64;
        loop {
            let (board, max) = (self.board.clone(), self.batch);
            let batch = self.store(move |s| Batch::read(s, &board, max)).await?;
            let n = batch.ids.len();
            if n == 0 {
                break;
            }
            self.send(batch).await?;
            sent += n as u64;
            p.last_sync = Some(Timestamp::now());
            if n < self.batch {
                break;
            }
            // More is waiting: keep going without waiting for a round, but
            // let the other tasks (and shutdown) in between batches.
            if backlog.saturating_sub(sent) > self.batch as u64 {
                p.publish(status, self.view_draining(p));
            }
            let latest = Arc::clone(&snapshots.borrow_and_update());
            if last_round(&latest) != p.board_round {
                // A long drain must not make the board look offline.
                snap = latest;
                p.seen_round = last_round(&snap);
                let stats = self.store(|s| s.stats()).await?;
                self.upsert_board(p, &snap, &stats, "draining").await?;
                backlog = stats.backlog;
                sent = 0;
            }
            tokio::task::yield_now().await;
        }
        let now = Timestamp::now();
        p.last_sync = Some(now);
        let stats = self.store(|s| s.stats()).await?;
        self.upsert_board(p, &snap, &stats, "synced").await?;
        self.send_rollups().await?;
        if let Some(e) = index_error.filter(|_| !p.index_warned) {
            eprintln!("edgeprobe: upstream: {e}; syncing without the indexes");
            p.index_warned = true;
        }
        p.publish(
            status,
            UpstreamView::Synced {
                server: p.server.clone(),
                last_sync: now,
            },
        );
        Ok(())
    }

    /// Insert a batch collection by collection; forget in the outbox what
    /// the server acknowledged and set aside what it refused, also when a
    /// later insert fails.
    async fn send(&self, batch: Batch) -> Result<(), UpstreamError> {
        let mut acked: Vec<OutboxId> = Vec::with_capacity(batch.ids.len());
        let mut refused: Vec<RefusedRow> = Vec::new();
        let mut failure = None;
        let mut groups = batch.groups;
        for c in Collection::ALL {
            let Some((ids, docs)) = groups.remove(&c) else {
                continue;
            };
            match self.upstream.insert(c, docs).await {
                Ok(refusals) => {
                    let (a, r) = sort_out(c, ids, &refusals);
                    acked.extend(a);
                    refused.extend(r);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // A result block's results share one outbox row: one refused
        // result sets the block aside (the server kept the others).
        let refused_rows: HashSet<OutboxId> = refused.iter().map(|r| r.id).collect();
        acked.retain(|id| !refused_rows.contains(id));
        acked.dedup();
        if let Some(first) = refused.first() {
            eprintln!(
                "edgeprobe: upstream: the central database refused {} rows ({}); \
                 they are set aside on the board and not sent again: check the \
                 collection's validator and the sync user's roles",
                refused.len(),
                first.reason
            );
        }
        if !acked.is_empty() || !refused.is_empty() {
            let at = Timestamp::now();
            self.store(move |s| {
                s.mark_synced(&acked)?;
                s.set_aside_refused(&refused, at)
            })
            .await?;
        }
        failure.map_or(Ok(()), Err)
    }

    /// Upload the rollups that changed since they were last sent, a batch
    /// at a time, and take what the server acknowledged off their rows.
    async fn send_rollups(&self) -> Result<(), UpstreamError> {
        loop {
            let max = self.batch;
            let items = self.store(move |s| s.rollup_batch(max)).await?;
            let n = items.len();
            if n == 0 {
                return Ok(());
            }
            let now = Timestamp::now();
            let docs = items
                .iter()
                .map(|r| docs::rollup_doc(&self.board, r, now))
                .collect();
            self.upstream.replace_rollups(docs).await?;
            let marks: Vec<_> = items.into_iter().map(|r| r.mark).collect();
            self.store(move |s| s.mark_rollups_synced(&marks)).await?;
            if n < max {
                return Ok(());
            }
            tokio::task::yield_now().await;
        }
    }

    async fn upsert_board(
        &self,
        p: &mut Progress,
        snap: &Snapshot,
        stats: &StoreStats,
        state: &str,
    ) -> Result<(), UpstreamError> {
        // Before the monitor's first snapshot there is nothing to say.
        if snap.board.id.is_empty() {
            return Ok(());
        }
        let update = docs::board_update(
            &self.board,
            snap,
            &BoardStatus {
                backlog: stats.backlog,
                oldest_unsynced: stats.oldest_unsynced,
                upstream_state: state,
                now: Timestamp::now(),
            },
        );
        self.upstream.upsert_board(&self.board, update).await?;
        p.board_round = last_round(snap);
        Ok(())
    }

    /// Publish a failure and return when to try again.
    fn failed(
        &mut self,
        p: &mut Progress,
        status: &watch::Sender<UpstreamView>,
        e: UpstreamError,
    ) -> Instant {
        let wait = self.backoff.fail();
        let now = Timestamp::now();
        eprintln!(
            "edgeprobe: upstream sync: {e}; retrying in {}",
            crate::config::format_duration(wait)
        );
        // A broken local store is not the server's fault: the monitor
        // shows store faults itself, and the header keeps the server's
        // last known state.
        if !matches!(e, UpstreamError::Store(_)) {
            let since = *p.down_since.get_or_insert(now);
            p.publish(
                status,
                UpstreamView::Unreachable {
                    server: p.server.clone(),
                    since,
                    error: e.to_string(),
                    retry_at: now.add(wait),
                },
            );
        }
        Instant::now() + wait
    }

    fn view_draining(&self, p: &Progress) -> UpstreamView {
        UpstreamView::Draining {
            server: p.server.clone(),
            last_sync: p.last_sync.unwrap_or_else(Timestamp::now),
        }
    }

    /// Run `f` on the store on a blocking thread; the lock is never held
    /// across an await.
    async fn store<T, F>(&self, f: F) -> Result<T, UpstreamError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&mut lock(&store)))
            .await
            .map_err(|e| UpstreamError::Store(format!("the store task failed: {e}")))?
            .map_err(UpstreamError::from)
    }
}

/// What the loop remembers between attempts.
struct Progress {
    server: String,
    indexes: bool,
    /// The failure to create the indexes was reported.
    index_warned: bool,
    last_sync: Option<Timestamp>,
    /// Since when attempts fail.
    down_since: Option<Timestamp>,
    /// The round of the last snapshot an attempt started from.
    seen_round: Option<RoundId>,
    /// The round of the snapshot last written to the board's document.
    board_round: Option<RoundId>,
    /// When a view was last published.
    published: Instant,
}

impl Progress {
    /// Publish `view` when it says something new: another state, or the
    /// same one after [`REPUBLISH_EVERY`] (a new `last_sync` alone does not
    /// justify rebuilding the snapshot after every batch).
    fn publish(&mut self, status: &watch::Sender<UpstreamView>, view: UpstreamView) {
        let now = Instant::now();
        let stale = now.duration_since(self.published) >= REPUBLISH_EVERY;
        let sent = status.send_if_modified(|current| {
            let same_state = std::mem::discriminant(current) == std::mem::discriminant(&view);
            let refresh = match (&*current, &view) {
                (UpstreamView::Unreachable { .. }, _) => *current != view,
                (UpstreamView::Synced { .. }, _) | (UpstreamView::Draining { .. }, _) => stale,
                _ => false,
            };
            if same_state && !refresh {
                return false;
            }
            *current = view;
            true
        });
        if sent {
            self.published = now;
        }
    }
}

/// Split the outbox ids of one insert into `collection` into those the
/// server took and those it refused (`refusals` index `ids`), each
/// refused row with its reason in one line.
fn sort_out(
    collection: Collection,
    ids: Vec<OutboxId>,
    refusals: &[Refusal],
) -> (Vec<OutboxId>, Vec<RefusedRow>) {
    let mut reasons: HashMap<usize, String> = refusals
        .iter()
        .map(|r| {
            let reason = format!("{}: code {}: {}", collection.name(), r.code, r.message);
            (r.index, reason)
        })
        .collect();
    let mut acked = Vec::with_capacity(ids.len());
    let mut refused = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        match reasons.remove(&i) {
            Some(reason) => refused.push(RefusedRow { id, reason }),
            None => acked.push(id),
        }
    }
    (acked, refused)
}

/// One batch, read and converted on the blocking thread: outbox ids and
/// documents per collection, in outbox order.
struct Batch {
    ids: Vec<OutboxId>,
    groups: HashMap<Collection, (Vec<OutboxId>, Vec<Document>)>,
}

impl Batch {
    fn read(store: &Store, board: &str, max: usize) -> Result<Batch, StoreError> {
        let items = store.outbox_batch(max)?;
        let mut batch = Batch {
            ids: Vec::with_capacity(items.len()),
            groups: HashMap::new(),
        };
        for item in items {
            let (c, doc) = docs::record_doc(board, &item.record);
            batch.ids.push(item.id);
            let (ids, docs) = batch.groups.entry(c).or_default();
            ids.push(item.id);
            docs.push(doc);
        }
        Ok(batch)
    }
}

fn last_round(snap: &Snapshot) -> Option<RoundId> {
    snap.last_round.map(|r| r.round)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::monitor::{BoardInfo, RoundInfo};
    use crate::probe::Status;
    use crate::store::{EventKind, EventRecord, ResultRecord, RetentionPolicy, RoundRecord};

    /// A server in memory: documents by collection and `_id`, the way
    /// MongoDB keys them, and a switch to make it unreachable.
    #[derive(Default)]
    struct Server {
        up: bool,
        docs: BTreeMap<&'static str, BTreeMap<String, Document>>,
        inserts: usize,
        /// Fail the next insert after the server stored it (a lost
        /// acknowledgement).
        lose_next_ack: bool,
        /// A collection whose documents the server refuses, as a
        /// validator would.
        refuse: Option<&'static str>,
    }

    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<Server>>);

    impl Fake {
        fn with(&self) -> std::sync::MutexGuard<'_, Server> {
            lock(&self.0)
        }
        fn count(&self, c: &str) -> usize {
            self.with().docs.get(c).map_or(0, BTreeMap::len)
        }
        fn check(&self, op: &str) -> Result<(), UpstreamError> {
            if self.with().up {
                Ok(())
            } else {
                Err(UpstreamError::Server {
                    server: "fake".into(),
                    op: op.into(),
                    reason: "connection refused".into(),
                })
            }
        }
    }

    impl Upstream for Fake {
        fn server(&self) -> &str {
            "fake:1/edgeprobe"
        }
        async fn ensure_indexes(&self) -> Result<(), UpstreamError> {
            self.check("creating indexes")
        }
        async fn insert(
            &self,
            c: Collection,
            docs: Vec<Document>,
        ) -> Result<Vec<Refusal>, UpstreamError> {
            self.check("inserting")?;
            let mut s = self.with();
            s.inserts += 1;
            if s.refuse == Some(c.name()) {
                return Ok((0..docs.len())
                    .map(|index| Refusal {
                        index,
                        code: 121,
                        message: "Document failed validation".into(),
                    })
                    .collect());
            }
            let coll = s.docs.entry(c.name()).or_default();
            for d in docs {
                let id = d.get_str("_id").unwrap().to_string();
                // Like a unique _id index: the first one stays.
                coll.entry(id).or_insert(d);
            }
            if std::mem::take(&mut s.lose_next_ack) {
                drop(s);
                return self.check("never").and(Err(UpstreamError::Server {
                    server: "fake".into(),
                    op: "inserting".into(),
                    reason: "connection reset before the reply".into(),
                }));
            }
            Ok(Vec::new())
        }
        async fn replace_rollups(&self, docs: Vec<Document>) -> Result<(), UpstreamError> {
            self.check("writing rollups")?;
            let mut s = self.with();
            let coll = s.docs.entry("rollups").or_default();
            for d in docs {
                coll.insert(d.get_str("_id").unwrap().to_string(), d);
            }
            Ok(())
        }
        async fn upsert_board(&self, board: &str, update: Document) -> Result<(), UpstreamError> {
            self.check("updating the board")?;
            let set = update.get_document("$set").unwrap().clone();
            self.with()
                .docs
                .entry("boards")
                .or_default()
                .insert(board.to_string(), set);
            Ok(())
        }
    }

    const T0: i64 = 1_795_608_000_000;

    fn round(n: u64, targets: usize) -> RoundRecord {
        let ts = Timestamp(T0 + n as i64 * 60_000);
        RoundRecord {
            round: RoundId(n),
            started: ts,
            finished: ts,
            results: (0..targets)
                .map(|i| ResultRecord {
                    target: format!("198.18.{}.{}", i / 250, i % 250 + 1),
                    round: RoundId(n),
                    ts,
                    name: None,
                    group: None,
                    status: Status::Working,
                    reported: Status::Working,
                    sent: 3,
                    received: 3,
                    loss: 0.0,
                    rtt: None,
                    gateway: None,
                })
                .collect(),
            traces: vec![],
            events: vec![EventRecord {
                target: None,
                ts,
                kind: EventKind::Gateway,
                from: None,
                to: None,
                detail: format!("round {n}"),
            }],
            ..RoundRecord::default()
        }
    }

    fn snapshot(n: u64) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            board: BoardInfo {
                id: "b1".into(),
                version: "test".into(),
                started_at: Timestamp(T0),
                started_mono: None,
                interval: Duration::from_secs(60),
            },
            last_round: Some(RoundInfo {
                round: RoundId(n),
                started: Timestamp(T0),
                finished: Timestamp(T0),
                duration: Duration::ZERO,
                finished_mono: None,
            }),
            ..Snapshot::default()
        })
    }

    struct Rig {
        _dir: tempfile::TempDir,
        store: Arc<Mutex<Store>>,
        fake: Fake,
        snap: watch::Sender<Arc<Snapshot>>,
        status: watch::Receiver<UpstreamView>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    fn rig(up: bool, rounds: u64, targets: usize, batch: usize) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(dir.path(), RetentionPolicy::default()).unwrap(),
        ));
        lock(&store).set_outbox(true);
        for n in 1..=rounds {
            lock(&store).write_round(&round(n, targets)).unwrap();
        }
        let fake = Fake::default();
        fake.with().up = up;
        let syncer = Syncer::with_upstream(
            fake.clone(),
            "b1",
            Arc::clone(&store),
            batch,
            Backoff::default(),
        );
        let (snap, snap_rx) = watch::channel(snapshot(rounds));
        let (status_tx, status) = watch::channel(UpstreamView::Off);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(syncer.run(snap_rx, status_tx, stop_rx));
        Rig {
            _dir: dir,
            store,
            fake,
            snap,
            status,
            stop,
            task,
        }
    }

    impl Rig {
        fn backlog(&self) -> u64 {
            lock(&self.store).stats().unwrap().backlog
        }
        /// Wait (in paused time) until the published view satisfies `f`.
        async fn until(&mut self, what: &str, f: impl Fn(&UpstreamView) -> bool) -> UpstreamView {
            let wait = async {
                loop {
                    let v = self.status.borrow_and_update().clone();
                    if f(&v) {
                        return v;
                    }
                    self.status.changed().await.unwrap();
                }
            };
            tokio::time::timeout(Duration::from_secs(3600), wait)
                .await
                .unwrap_or_else(|_| panic!("never {what}: {:?}", self.status.borrow()))
        }
        /// What the monitor does after round `n`: write it, publish it.
        fn new_round(&self, n: u64, targets: usize) {
            lock(&self.store).write_round(&round(n, targets)).unwrap();
            self.snap.send_replace(snapshot(n));
        }
        /// Wait until synced, then check that the server has `results`
        /// and `events` and nothing is left queued.
        async fn until_all_sent(&mut self, results: usize, events: usize) {
            self.until("synced", synced).await;
            assert_eq!(self.fake.count("results"), results);
            assert_eq!(self.fake.count("events"), events);
            assert_eq!(self.backlog(), 0);
        }
        async fn stop(self) {
            self.stop.send_replace(true);
            tokio::time::timeout(Duration::from_secs(1), self.task)
                .await
                .expect("stops promptly")
                .unwrap();
        }
    }

    fn synced(v: &UpstreamView) -> bool {
        matches!(v, UpstreamView::Synced { .. })
    }

    #[tokio::test(start_paused = true)]
    async fn drains_a_backlog_in_batches_in_one_go() {
        // 20 rounds of 30 results and an event: 620 rows, batches of 50.
        let mut r = rig(true, 20, 30, 50);
        r.until_all_sent(600, 20).await;
        // 13 batches; events ride along in their own insert.
        assert!(r.fake.with().inserts >= 13, "{}", r.fake.with().inserts);
        let board = r.fake.with().docs["boards"]["b1"].clone();
        assert_eq!(board.get_i64("backlog").unwrap(), 0);
        assert_eq!(board.get_str("upstream_state").unwrap(), "synced");
        r.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn rollups_go_up_as_absolute_values_and_again_when_they_change() {
        let mut r = rig(true, 3, 10, 4);
        r.until_all_sent(30, 3).await;
        let rounds = |fake: &Fake| -> Vec<i64> {
            fake.with().docs["rollups"]
                .values()
                .map(|d| d.get_i64("rounds").unwrap())
                .collect()
        };
        // Ten targets, one hour: ten documents of three rounds each, sent
        // in batches of four.
        assert_eq!(rounds(&r.fake), vec![3; 10]);
        let one = r.fake.with().docs["rollups"]["b1/198.18.0.1/1795608000000"].clone();
        assert_eq!(one.get_i64("hour_ms").unwrap(), T0);
        assert_eq!(one.get_i64("working").unwrap(), 3);
        assert_eq!(lock(&r.store).rollup_backlog().unwrap(), 0);
        // A fourth round in the same hour replaces each with four.
        r.new_round(4, 10);
        eventually_rollups(&r, 4).await;
        assert_eq!(r.fake.count("rollups"), 10);
        r.stop().await;
    }

    /// Wait (in paused time) until `f` says something.
    async fn eventually<T>(f: impl Fn() -> Option<T>) -> T {
        for _ in 0..1000 {
            if let Some(v) = f() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("never happened");
    }

    /// Wait until every rollup document counts `n` rounds.
    async fn eventually_rollups(r: &Rig, n: i64) {
        for _ in 0..100 {
            let all = r.fake.with().docs["rollups"]
                .values()
                .all(|d| d.get_i64("rounds").unwrap() == n);
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the rollups never reached {n} rounds");
    }

    #[tokio::test(start_paused = true)]
    async fn server_down_keeps_rows_then_drains_once_it_is_back() {
        let mut r = rig(false, 3, 10, 500);
        let v = r
            .until("unreachable", |v| {
                matches!(v, UpstreamView::Unreachable { .. })
            })
            .await;
        let UpstreamView::Unreachable {
            since,
            retry_at,
            error,
            server,
        } = v
        else {
            unreachable!()
        };
        assert_eq!(server, "fake:1/edgeprobe");
        assert!(error.contains("connection refused"), "{error}");
        assert_eq!(retry_at.since(since), Duration::from_secs(1));
        assert_eq!(r.backlog(), 33, "nothing lost");

        // New rounds during the backoff do not cut it short, and rows
        // keep queueing.
        r.new_round(4, 10);
        r.fake.with().up = true;
        r.until_all_sent(40, 4).await;
        r.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_acknowledgement_is_resent_without_doubling() {
        let mut r = rig(true, 0, 0, 500);
        r.until("synced", synced).await;
        r.fake.with().lose_next_ack = true;
        r.new_round(1, 10);
        r.until("unreachable", |v| {
            matches!(v, UpstreamView::Unreachable { .. })
        })
        .await;
        // The server has the results, the board still queues them.
        assert_eq!(r.fake.count("results"), 10);
        assert_eq!(r.backlog(), 11);
        r.until_all_sent(10, 1).await;
        r.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn each_round_updates_the_board_and_republishing_does_not_loop() {
        let mut r = rig(true, 1, 2, 500);
        r.until("synced", synced).await;
        let inserts = r.fake.with().inserts;
        // The monitor republishes the snapshot when our view changes; the
        // same round must not start another attempt.
        for _ in 0..5 {
            r.snap.send_replace(snapshot(1));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(r.fake.with().inserts, inserts);
        r.new_round(2, 2);
        tokio::time::sleep(Duration::from_secs(1)).await;
        r.until("synced", synced).await;
        assert_eq!(r.fake.count("results"), 4);
        assert!(r.fake.with().inserts > inserts);
        r.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn refused_documents_are_set_aside_and_the_rest_goes_on() {
        let mut r = rig(true, 0, 0, 500);
        r.until("synced", synced).await;
        r.fake.with().refuse = Some("events");
        r.new_round(1, 10);
        r.new_round(2, 10);
        let store = Arc::clone(&r.store);
        let stats = eventually(|| {
            let stats = lock(&store).stats().unwrap();
            (stats.refused == 2).then_some(stats)
        })
        .await;
        assert_eq!(r.fake.count("results"), 20);
        assert_eq!(r.fake.count("events"), 0);
        assert_eq!(stats.backlog, 0);
        assert_eq!((stats.refused, stats.refused_total), (2, 2));
        let last = stats.last_refusal.expect("the last refusal");
        assert_eq!(last.reason, "events: code 121: Document failed validation");
        let board = r.fake.with().docs["boards"]["b1"].clone();
        assert_eq!(board.get_str("upstream_state").unwrap(), "synced");
        r.stop().await;
    }

    #[test]
    fn refusals_pick_out_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), RetentionPolicy::default()).unwrap();
        s.set_outbox(true);
        s.write_round(&round(1, 3)).unwrap();
        let ids: Vec<OutboxId> = s.outbox_batch(3).unwrap().iter().map(|i| i.id).collect();
        let refusal = Refusal {
            index: 1,
            code: 121,
            message: "Document failed validation".into(),
        };
        let (acked, refused) = sort_out(Collection::Results, ids.clone(), &[refusal]);
        assert_eq!(acked, [ids[0], ids[2]]);
        assert_eq!(
            refused,
            [RefusedRow {
                id: ids[1],
                reason: "results: code 121: Document failed validation".into()
            }]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stops_promptly_while_backing_off() {
        let mut r = rig(false, 1, 1, 500);
        r.until("unreachable", |v| {
            matches!(v, UpstreamView::Unreachable { .. })
        })
        .await;
        r.stop().await;
    }
}
