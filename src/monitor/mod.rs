//! The monitor: rounds of probes on a schedule, status smoothing, events,
//! target reloads, and the snapshot the dashboard reads.
//!
//! [`Monitor::run`] is the probe loop, one task. A round's probes run
//! concurrently ([`round`]); between and during rounds the loop also takes
//! admin commands, SIGHUP reloads and sheet changes. Everything it decides
//! is in the pure [`state`], [`status`], [`schedule`], [`paths`] and
//! [`cause`] modules. What it asks of the world comes in from outside: the
//! network as a [`Probe`], the history as a [`RoundStore`] (written once
//! per round, on a blocking thread; a damaged file is recreated, a full
//! disk counted and shown), the routing table from a [`RouteSource`]; so
//! the loop and its recovery paths are tested with fakes (`tests.rs`).

pub mod cause;
pub mod paths;
pub mod round;
mod round_store;
pub mod schedule;
pub mod sheet;
mod snapshot;
pub mod sparkline;
pub mod state;
pub mod status;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

pub use round_store::{Remembered, RoundStore};
pub use sheet::SheetSource;
pub use snapshot::{
    health, BoardGateway, BoardInfo, Health, RejectedSheet, RoundInfo, SheetView, Snapshot,
    StatusCounts, TargetView, UpstreamView, HEALTH_MISSED_ROUNDS,
};
pub use state::MonitorState;
pub use status::Thresholds;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::alerts::sender::Unstored;
use crate::alerts::{BoardAlerts, Silence};
use crate::clock::{Mono, Timestamp};
use crate::config::ProbeSettings;
use crate::lock::lock;
use crate::probe::Probe;
use crate::probe::RouteTable;
use crate::store::blocking;
use crate::store::{EventKind, EventRecord, RoundRecord, StoreError, StoreStats};
use crate::targets::TargetList;

/// What the dashboard's admin endpoints and the signal handler ask of the
/// monitor.
#[derive(Debug)]
pub enum Command {
    /// Start a round now (or right after the one in flight).
    ProbeNow,
    /// Read the targets sheet again (SIGHUP).
    ReloadTargets,
    /// Replace the targets with an uploaded sheet, if it is valid. The
    /// reply is a one-line summary, or every problem that stopped it.
    ReplaceTargets {
        /// The uploaded file's name; its extension picks the format.
        file_name: String,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<String, Vec<String>>>,
    },
    /// Keep alerts in `silence`'s scope from being sent until its end (an
    /// end already past lifts the scope's silence). The reply says what
    /// is silenced now.
    Silence {
        silence: Silence,
        reply: oneshot::Sender<Result<String, String>>,
    },
}

/// How often the sheet's file is checked for changes.
const SHEET_POLL: Duration = Duration::from_secs(2);

/// Where the probe loop reads the routing table, once per round: the
/// kernel's ([`RouteTable::read_kernel`]) on a board, a fixed table in
/// tests.
pub type RouteSource = Box<dyn Fn() -> RouteTable + Send + Sync>;

/// The probe loop and what it owns.
pub struct Monitor<P: Probe, S: RoundStore> {
    probe: Arc<P>,
    settings: ProbeSettings,
    state: MonitorState,
    sheet: Arc<Mutex<SheetSource>>,
    store: Arc<Mutex<S>>,
    routes: RouteSource,
    board: BoardInfo,
    /// Warnings that hold for the whole run (privileges).
    standing_warnings: Vec<String>,
    /// The last store failure, shown until a write succeeds.
    store_fault: Option<String>,
    /// Store operations that failed since start.
    store_errors: u64,
    store_stats: StoreStats,
    snapshot: watch::Sender<Arc<Snapshot>>,
    commands: mpsc::Receiver<Command>,
    upstream: watch::Receiver<UpstreamView>,
    probe_now: bool,
    /// Whether the last round reached the store.
    last_saved: bool,
    /// What the rounds' alerts are and where they go.
    alerts: BoardAlerts,
    unstored: Unstored,
}

/// Everything a [`Monitor`] is built from.
pub struct MonitorParts<P: Probe, S: RoundStore> {
    pub probe: Arc<P>,
    pub settings: ProbeSettings,
    pub sheet: SheetSource,
    /// Shared with the upstream sync, which drains its outbox.
    pub store: Arc<Mutex<S>>,
    pub routes: RouteSource,
    /// The upstream sync's state, shown in the snapshot.
    pub upstream: watch::Receiver<UpstreamView>,
    pub board: BoardInfo,
    pub warnings: Vec<String>,
    pub snapshot: watch::Sender<Arc<Snapshot>>,
    pub commands: mpsc::Receiver<Command>,
    /// Alerting, resumed from what the store says was firing.
    pub alerts: BoardAlerts,
    /// Where a round's alert messages go when the round cannot be stored.
    pub unstored: Unstored,
}

impl<P: Probe, S: RoundStore> Monitor<P, S> {
    /// Load the targets, restore what the store remembers, and publish the
    /// first snapshot. Blocking work runs on blocking threads.
    pub async fn start(parts: MonitorParts<P, S>) -> Result<Monitor<P, S>, StoreError> {
        let store = parts.store;
        let last_round = blocking(&store, |s| s.last_round()).await?;
        let thresholds = Thresholds {
            down_after: parts.settings.down_after,
            up_after: parts.settings.up_after,
        };
        let mut monitor = Monitor {
            probe: parts.probe,
            settings: parts.settings,
            state: MonitorState::new(thresholds, parts.settings.trace_every, last_round),
            sheet: Arc::new(Mutex::new(parts.sheet)),
            store,
            routes: parts.routes,
            board: parts.board,
            standing_warnings: parts.warnings,
            store_fault: None,
            store_errors: 0,
            store_stats: StoreStats::default(),
            snapshot: parts.snapshot,
            alerts: parts.alerts,
            unstored: parts.unstored,
            commands: parts.commands,
            upstream: parts.upstream,
            probe_now: false,
            last_saved: true,
        };
        if let Some(note) = blocking(&monitor.store, |s| Ok(s.take_recovery())).await? {
            monitor.record(store_event(note)).await;
        }
        // Loading the list restores what the store remembers of it.
        monitor.reload().await;
        let stats = blocking(&monitor.store, |s| s.stats()).await?;
        monitor.store_stats = stats;
        let uptimes = blocking(&monitor.store, |s| s.uptimes_24h(Timestamp::now())).await?;
        monitor.state.set_uptimes(&uptimes);
        monitor.publish();
        Ok(monitor)
    }

    /// Run rounds until `shutdown` turns true; the round in flight then
    /// finishes (targets not yet started are skipped) and is stored.
    /// Returns whether the last round was saved.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> bool {
        let mut poll = tokio::time::interval(SHEET_POLL);
        poll.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut next_round = Instant::now();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|s| *s) => return self.last_saved,
                _ = tokio::time::sleep_until(next_round) => {}
                Some(cmd) = self.commands.recv() => {
                    self.handle(cmd).await;
                    if std::mem::take(&mut self.probe_now) {
                        next_round = Instant::now();
                    }
                    continue;
                }
                _ = poll.tick() => {
                    self.poll_sheet().await;
                    continue;
                }
                Ok(()) = self.upstream.changed() => {
                    self.upstream_moved().await;
                    continue;
                }
            }
            let round_started = Instant::now();
            let stopping = self.round(&mut shutdown, &mut poll).await;
            if stopping {
                return self.last_saved;
            }
            crate::heap::give_back_freed();
            // A round that overran its interval is followed at once, never
            // overlapped.
            next_round = if std::mem::take(&mut self.probe_now) {
                Instant::now()
            } else {
                Instant::now()
                    + schedule::delay_before_next(self.settings.interval, round_started.elapsed())
            };
        }
    }

    /// One round, start to stored. Returns whether shutdown was asked for.
    async fn round(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
        poll: &mut tokio::time::Interval,
    ) -> bool {
        let started = Timestamp::now();
        let started_mono = Mono::now();
        let routes = (self.routes)();
        let in_use = self.state.gateways_in_use(&routes);
        self.state.set_board_gateways(&in_use, &routes, started);
        let gateways = self.state.board_gateways();
        let quota = schedule::trace_quota(&self.settings, self.state.target_count());
        let jobs = self.state.jobs(&routes, started, quota);
        let plan = round::RoundPlan {
            window: schedule::spread_window(&self.settings),
            thresholds: self.state.thresholds(),
            trace_budget: schedule::trace_budget(&self.settings, jobs.len()),
        };
        let probe = Arc::clone(&self.probe);
        let (stop_tx, stop_rx) = watch::channel(false);
        // Its own task, so handling a command (parsing an uploaded sheet)
        // never holds up the sends and timeouts of the round.
        let mut work = tokio::spawn(async move {
            tokio::join!(
                round::run_round(&probe, jobs, plan, stop_rx),
                round::ping_gateways(&*probe, &gateways)
            )
        });
        let mut stopping = false;
        let (observations, gateway_pings) = loop {
            tokio::select! {
                biased;
                done = &mut work => break done.unwrap_or_else(|e| {
                    eprintln!("edgeprobe: round failed: {e}");
                    (Vec::new(), Vec::new())
                }),
                _ = shutdown.wait_for(|s| *s), if !stopping => {
                    stopping = true;
                    let _ = stop_tx.send(true);
                }
                Some(cmd) = self.commands.recv() => self.handle(cmd).await,
                _ = poll.tick() => self.poll_sheet().await,
                Ok(()) = self.upstream.changed() => self.upstream_moved().await,
            }
        };
        let finished = Timestamp::now();
        let record =
            self.state
                .apply_round(observations, &gateway_pings, &routes, started, finished);
        let finished_mono = Mono::now();
        self.state
            .time_round(finished_mono.since(started_mono), finished_mono);
        log_events(&record.events);
        let record = self.with_alerts(record);
        let messages: Vec<_> = record
            .notifications
            .iter()
            .chain(&record.refreshes)
            .cloned()
            .collect();
        self.last_saved = self.persist(record).await;
        if !self.last_saved {
            // The store fails (its own alert may be among these): the
            // messages go from memory rather than not at all.
            self.unstored.hold(messages);
        }
        self.publish();
        stopping
    }

    /// Write a round, apply retention, refresh the figures.
    /// Whether it was saved.
    ///
    /// A full disk or any other failure leaves the round unsaved, counted
    /// and shown, and the next round tries again. A damaged database is
    /// moved aside and the round written to a new one.
    async fn persist(&mut self, record: RoundRecord) -> bool {
        let now = record.finished;
        let round = record.round;
        let record = Arc::new(record);
        let mut attempt = {
            let record = Arc::clone(&record);
            blocking(&self.store, move |s| s.write_round(&record)).await
        };
        if let Err(e) = &attempt {
            if e.is_damage() {
                self.fail_store(format!("round {} was not saved: {e}", round.0));
                let cause = e.to_string();
                // The new file starts with what is firing and silenced, so
                // a restart neither repeats nor forgets it.
                let (firing, silences) = self.alerts.rows();
                let recreated = blocking(&self.store, move |s| {
                    let note = s.recreate_after(cause)?;
                    let mut whole = (*record).clone();
                    whole.alerts = Some(firing);
                    s.write_round(&whole)?;
                    s.save_silences(&silences)?;
                    Ok(note)
                })
                .await;
                attempt = match recreated {
                    Ok(note) => {
                        self.record(store_event(note)).await;
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
            }
        }
        if let Err(e) = attempt {
            let hint = if e.is_full() {
                "; the state directory's file system is full: free space there, or lower \
                 [store] max_size_mb below what it can hold"
            } else {
                ""
            };
            self.fail_store(format!("round {} was not saved: {e}{hint}", round.0));
            return false;
        }
        // The round is safe; what follows only tidies and counts.
        let upkeep = blocking(&self.store, move |s| {
            s.apply_retention(now)?;
            Ok((s.stats()?, s.uptimes_24h(now)?))
        })
        .await;
        match upkeep {
            Ok((stats, uptimes)) => {
                self.store_stats = stats;
                self.state.set_uptimes(&uptimes);
                self.store_fault = None;
            }
            Err(e) => self.fail_store(format!(
                "round {} was saved, but the store's upkeep failed: {e}",
                round.0
            )),
        }
        true
    }

    /// Count and show a store failure; it stays shown until a round is
    /// stored whole.
    fn fail_store(&mut self, msg: String) {
        eprintln!("edgeprobe: {msg}");
        self.store_errors += 1;
        self.store_fault = Some(msg);
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::ProbeNow => self.probe_now = true,
            Command::ReloadTargets => self.reload().await,
            Command::ReplaceTargets {
                file_name,
                bytes,
                reply,
            } => {
                let sheet = Arc::clone(&self.sheet);
                let name = file_name.clone();
                let outcome =
                    tokio::task::spawn_blocking(move || lock(&sheet).accept_upload(&name, &bytes))
                        .await
                        .unwrap_or_else(|e| {
                            Err(vec![format!("the upload could not be checked: {e}")])
                        });
                let answer = match outcome {
                    Ok(list) => {
                        let summary = self.take_list(&list).await;
                        Ok(summary)
                    }
                    Err(problems) => {
                        self.reject(&file_name, problems.clone(), None).await;
                        Err(problems)
                    }
                };
                let _ = reply.send(answer);
            }
            Command::Silence { silence, reply } => {
                let _ = reply.send(self.silence(silence).await);
            }
        }
    }

    /// Set (or lift) a silence, keep the silences in the store at once so a
    /// restart keeps them, and log it as an event.
    async fn silence(&mut self, silence: Silence) -> Result<String, String> {
        let now = Timestamp::now();
        let said = describe_silence(&silence, now);
        let before = self.alerts.clone();
        let rows = self.alerts.silence(silence, now);
        if let Err(e) = blocking(&self.store, move |s| s.save_silences(&rows)).await {
            self.alerts = before;
            let msg = format!("the silence was not saved: {e}");
            self.fail_store(msg.clone());
            return Err(msg);
        }
        self.record(EventRecord {
            target: None,
            ts: now,
            kind: EventKind::Alerts,
            from: None,
            to: None,
            detail: said.clone(),
        })
        .await;
        self.publish();
        Ok(said)
    }

    async fn poll_sheet(&mut self) {
        let changed = lock(&self.sheet).poll_changed();
        if changed {
            self.reload().await;
        }
    }

    /// Read the sheet again; a bad one leaves the running list alone.
    async fn reload(&mut self) {
        let sheet = Arc::clone(&self.sheet);
        let outcome = tokio::task::spawn_blocking(move || {
            let mut s = lock(&sheet);
            let source = s.path().map(|p| p.display().to_string());
            let loaded = s.load();
            (source, loaded, s.retry_in())
        })
        .await;
        match outcome {
            Ok((_, Ok(list), _)) => {
                self.take_list(&list).await;
            }
            Ok((source, Err(problems), retry_in)) => {
                let source = source.unwrap_or_else(|| "targets".to_string());
                let retry_at = retry_in.map(|wait| Timestamp::now().add(wait));
                self.reject(&source, problems, retry_at).await;
            }
            Err(e) => {
                let problems = vec![format!("the sheet could not be read: {e}")];
                self.reject("targets", problems, None).await
            }
        }
    }

    async fn take_list(&mut self, list: &TargetList) -> String {
        let event = self.state.replace_targets(list, Timestamp::now());
        let summary = event.detail.clone();
        self.record(event).await;
        if self.state.needs_restore() {
            self.restore().await;
        }
        self.publish();
        summary
    }

    /// The sync sent rows (or failed to): the backlog shown must follow,
    /// also between rounds and with a long interval.
    async fn upstream_moved(&mut self) {
        if let Ok(stats) = blocking(&self.store, |s| s.stats()).await {
            self.store_stats = stats;
        }
        self.publish();
    }

    /// Fill targets without state from the store's history.
    async fn restore(&mut self) {
        let remembered = blocking(&self.store, |s| s.remembered(sparkline::ROUNDS)).await;
        match remembered {
            Ok(r) => self.state.restore(r.results, r.traces, r.recent_rtt),
            Err(e) => self.fail_store(format!("the history could not be read: {e}")),
        }
    }

    async fn reject(&mut self, source: &str, problems: Vec<String>, retry_at: Option<Timestamp>) {
        let event = self
            .state
            .reject_sheet(source, problems, retry_at, Timestamp::now());
        self.record(event).await;
        self.publish();
    }

    async fn record(&mut self, event: EventRecord) {
        log_events(std::slice::from_ref(&event));
        if let Err(e) = blocking(&self.store, move |s| s.record_event(&event)).await {
            self.fail_store(format!("an event was not saved: {e}"));
        }
    }

    /// The round's alert messages and firing set, in its record, so they
    /// are stored with it. A round that is not stored hands its messages
    /// to the sender's memory ([`Unstored`]).
    fn with_alerts(&mut self, mut record: RoundRecord) -> RoundRecord {
        if !self.alerts.has_channels() {
            // A whole snapshot (a copy of every target) for nothing.
            return record;
        }
        let snap = self.snapshot_now();
        let path_changes = record
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Path)
            .filter_map(|e| Some((e.target.clone()?, e.detail.clone())))
            .collect();
        let out = self.alerts.after_round(
            &snap,
            path_changes,
            self.store_fault.clone(),
            record.finished,
        );
        record.notifications = out.notifications;
        record.refreshes = out.refreshes;
        record.alerts = out.alerts;
        record
    }

    /// Hand the dashboard, the LEDs and the alerts a new snapshot. When no
    /// reader still holds the last one (the usual case between page
    /// loads), it is rewritten in place rather than copied beside.
    fn publish(&self) {
        self.snapshot.send_modify(|current| {
            let published = current.published + 1;
            match Arc::get_mut(current) {
                Some(snap) => {
                    let (board, store, upstream, warnings) = self.snapshot_parts();
                    self.state
                        .refresh_snapshot(snap, board, store, upstream, warnings);
                    snap.alerts = self.alerts.view(Timestamp::now());
                    snap.published = published;
                }
                None => {
                    let mut snap = self.snapshot_now();
                    snap.published = published;
                    *current = Arc::new(snap);
                }
            }
        });
    }

    /// What the dashboard, the LEDs and the alerts see now.
    fn snapshot_now(&self) -> Snapshot {
        let (board, store, upstream, warnings) = self.snapshot_parts();
        let mut snap = self.state.snapshot(board, store, upstream, warnings);
        snap.alerts = self.alerts.view(Timestamp::now());
        snap
    }

    /// A snapshot's parts from outside the state: the board, the store's
    /// figures, the upstream and the warnings.
    fn snapshot_parts(&self) -> (BoardInfo, StoreStats, UpstreamView, Vec<String>) {
        let mut warnings = self.standing_warnings.clone();
        warnings.extend(schedule::budget_warning(
            self.state.target_count(),
            &self.settings,
        ));
        warnings.extend(self.store_fault.clone());
        let upstream = self.upstream.borrow().clone();
        let stats = StoreStats {
            errors: self.store_errors,
            ..self.store_stats.clone()
        };
        (self.board.clone(), stats, upstream, warnings)
    }
}

/// `alerts for group lan silenced until 2026-12-01T20:00:00Z (router swap)`,
/// or `... no longer silenced`.
fn describe_silence(s: &Silence, now: Timestamp) -> String {
    let who = match &s.scope {
        crate::alerts::SilenceScope::Board => "all alerts of the board".to_string(),
        crate::alerts::SilenceScope::Target(t) => format!("alerts for target {t}"),
        crate::alerts::SilenceScope::Group(g) => format!("alerts for group {g}"),
    };
    let why = s
        .reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    if s.until > now {
        format!("{who} silenced until {}{why}", s.until.rfc3339())
    } else {
        format!("{who} no longer silenced{why}")
    }
}

/// An event about the store itself, for the board.
fn store_event(detail: String) -> EventRecord {
    EventRecord {
        target: None,
        ts: Timestamp::now(),
        kind: EventKind::Store,
        from: None,
        to: None,
        detail,
    }
}

fn log_events(events: &[EventRecord]) {
    for e in events {
        let who = e.target.as_deref().unwrap_or("board");
        eprintln!(
            "{} {} {}: {}",
            e.ts,
            e.kind.as_str(),
            crate::targets::Escaped(who),
            crate::targets::Escaped(&e.detail)
        );
    }
}
