//! The probe loop and its recovery paths, without root: a fake network,
//! a store that fails on demand and tokio's paused clock. The same faults
//! on a real disk and file are `tests/board_faults.rs`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::testkit::{damaged, disk_full, routes, FakeNet, FakeStore};
use super::*;
use crate::probe::Status;

/// A monitor running one target that answers, on a fake store.
struct Running {
    snapshot: watch::Receiver<Arc<Snapshot>>,
    store: Arc<Mutex<FakeStore>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<bool>,
    _commands: mpsc::Sender<Command>,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn start(store: FakeStore) -> Running {
        let no_alerts = crate::alerts::BoardAlerts::new("fake", Default::default(), &[], &[]);
        let sheet = "ip\n198.19.3.10\n";
        Running::start_with(
            store,
            sheet,
            &["198.19.3.10"],
            no_alerts,
            Unstored::default(),
        )
        .await
    }

    /// `sheet` as the targets; only the `answering` addresses answer (the
    /// board's gateway is 198.18.1.1).
    async fn start_with(
        store: FakeStore,
        sheet_text: &str,
        answering: &[&str],
        alerts: BoardAlerts,
        unstored: Unstored,
    ) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let sheet = dir.path().join("t.csv");
        std::fs::write(&sheet, sheet_text).unwrap();
        let store = Arc::new(Mutex::new(store));
        let (snapshot_tx, snapshot) = watch::channel(Arc::new(Snapshot::default()));
        let (commands, commands_rx) = mpsc::channel(4);
        let (_upstream_tx, upstream) = watch::channel(UpstreamView::Off);
        let monitor = Monitor::start(MonitorParts {
            probe: Arc::new(FakeNet::new(answering)),
            settings: ProbeSettings::default(),
            sheet: SheetSource::new(Some(sheet), None, dir.path().to_path_buf()),
            store: Arc::clone(&store),
            routes: Box::new(routes),
            upstream,
            board: BoardInfo::default(),
            warnings: Vec::new(),
            snapshot: snapshot_tx,
            commands: commands_rx,
            alerts,
            unstored,
        })
        .await
        .unwrap();
        let (stop, stop_rx) = watch::channel(false);
        // `run` holds a watch guard across an await: not `Send`.
        let task = tokio::task::spawn_local(monitor.run(stop_rx));
        Running {
            snapshot,
            store,
            stop,
            task,
            _commands: commands,
            _dir: dir,
        }
    }

    /// The snapshot published after round `n`.
    async fn after_round(&mut self, n: u64) -> Arc<Snapshot> {
        let wait = self
            .snapshot
            .wait_for(|s| s.last_round.is_some_and(|r| r.round.0 >= n));
        let snap = tokio::time::timeout(Duration::from_secs(3600), wait)
            .await
            .unwrap_or_else(|_| panic!("no round {n} within an hour"))
            .unwrap();
        Arc::clone(&snap)
    }

    fn log(&self) -> Vec<String> {
        self.store.lock().unwrap().log.clone()
    }

    /// Ask for shutdown; whether the last round was saved.
    async fn stop(self) -> bool {
        self.stop.send(true).unwrap();
        self.task.await.unwrap()
    }
}

/// Run a test on a [`LocalSet`](tokio::task::LocalSet), where the
/// monitor's task can be spawned.
async fn local<F: std::future::Future>(test: F) -> F::Output {
    tokio::task::LocalSet::new().run_until(test).await
}

fn failing_writes(errors: Vec<StoreError>) -> FakeStore {
    FakeStore {
        write_failures: VecDeque::from(errors),
        ..FakeStore::default()
    }
}

#[tokio::test(start_paused = true)]
async fn each_stored_round_is_followed_by_retention() {
    local(async {
        let mut m = Running::start(FakeStore::default()).await;
        let snap = m.after_round(2).await;
        assert_eq!(
            m.log(),
            [
                "event targets",
                "write round 1",
                "retention",
                "write round 2",
                "retention"
            ]
        );
        assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
        assert_eq!(snap.store.errors, 0);
        assert_eq!(snap.targets[0].status, Some(Status::Working));
        assert!(m.stop().await, "the last round is saved");
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_damaged_store_is_recreated_and_the_round_written_again() {
    local(async {
        let mut m = Running::start(failing_writes(vec![damaged()])).await;
        let snap = m.after_round(1).await;
        assert_eq!(
            m.log(),
            [
                "event targets",
                "write round 1: failed",
                "recreate",
                "write round 1",
                "silences 0",
                "event store",
                "retention"
            ]
        );
        let (recreated, event) = {
            let store = m.store.lock().unwrap();
            (
                store.recreated.clone(),
                store.events.last().cloned().unwrap(),
            )
        };
        assert_eq!(recreated, [damaged().to_string()]);
        assert_eq!(event.kind, EventKind::Store);
        assert_eq!(event.target, None);
        assert_eq!(
            event.detail,
            "the history database was damaged; a new one started"
        );
        // Counted, but the round is stored whole, so nothing is shown.
        assert_eq!(snap.store.errors, 1);
        assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
        assert!(m.stop().await);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_store_that_cannot_be_recreated_leaves_the_round_unsaved() {
    local(async {
        let store = FakeStore {
            recreate_failures: VecDeque::from([disk_full()]),
            ..failing_writes(vec![damaged()])
        };
        let mut m = Running::start(store).await;
        let snap = m.after_round(1).await;
        assert_eq!(
            m.log(),
            ["event targets", "write round 1: failed", "recreate"]
        );
        assert_eq!(snap.store.errors, 2, "the damage and the failed recreate");
        let shown = snap.warnings.join("\n");
        assert!(shown.starts_with("round 1 was not saved: "), "{shown}");
        assert!(shown.contains("file system is full"), "{shown}");
        assert!(!m.stop().await, "the last round is not saved");
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_full_disk_is_counted_and_shown_until_a_round_is_stored_whole() {
    local(async {
        let mut m = Running::start(failing_writes(vec![disk_full(), disk_full()])).await;
        let snap = m.after_round(1).await;
        assert_eq!(snap.store.errors, 1);
        assert_eq!(
            snap.warnings,
            [format!(
                "round 1 was not saved: {}; the state directory's file system is full: free \
                 space there, or lower [store] max_size_mb below what it can hold",
                disk_full()
            )]
        );
        assert_eq!(
            snap.targets[0].status,
            Some(Status::Working),
            "probing goes on"
        );
        let snap = m.after_round(2).await;
        assert_eq!(snap.store.errors, 2);
        assert!(snap.warnings[0].starts_with("round 2 was not saved: "));
        let snap = m.after_round(3).await;
        assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
        assert_eq!(snap.store.errors, 2, "a counter never goes back");
        assert_eq!(
            m.log(),
            [
                "event targets",
                "write round 1: failed",
                "write round 2: failed",
                "write round 3",
                "retention"
            ],
            "no retention after an unsaved round"
        );
        assert!(m.stop().await);
    })
    .await
}

/// Alerting through one webhook (never reached: these tests look at what
/// is queued, not at delivery).
fn webhook_alerts() -> BoardAlerts {
    let settings = crate::alerts::settings::AlertSettings {
        channels: vec![crate::alerts::settings::Channel::Webhook {
            url: "http://127.0.0.1:9/hook".parse().unwrap(),
            format: crate::alerts::settings::WebhookFormat::Json,
            headers: vec![],
            ca_file: None,
        }],
        ..Default::default()
    };
    BoardAlerts::new("fake", settings, &[], &[])
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_still_says_so_through_the_alert_channels() {
    local(async {
        let unstored = Unstored::default();
        let store = failing_writes(vec![disk_full(), disk_full(), disk_full()]);
        let mut m = Running::start_with(
            store,
            "ip\n198.19.3.10\n",
            &["198.19.3.10", "198.18.1.1"],
            webhook_alerts(),
            unstored.clone(),
        )
        .await;
        m.after_round(3).await;
        let held = unstored.take();
        let bodies: Vec<String> = held
            .iter()
            .map(|n| String::from_utf8_lossy(&n.body).to_string())
            .collect();
        assert_eq!(held.len(), 1, "one message, once: {bodies:?}");
        assert!(
            bodies[0].contains("\"alert\":\"store\"") && bodies[0].contains("full"),
            "{bodies:?}"
        );
        // The disk has room again: the store's alert resolves, stored now.
        let snap = m.after_round(5).await;
        assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
        let written = m.store.lock().unwrap().alerts_written.clone();
        let resolved = written.iter().flat_map(|(n, _)| n).any(|n| {
            let body = String::from_utf8_lossy(&n.body);
            body.contains("\"kind\":\"resolved\"") && body.contains("\"alert\":\"store\"")
        });
        assert!(resolved, "{written:?}");
        assert!(m.stop().await);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_recreated_store_starts_with_what_is_firing_and_silenced() {
    local(async {
        let mut alerts = webhook_alerts();
        let now = Timestamp::now();
        alerts.silence(
            Silence {
                scope: crate::alerts::SilenceScope::Group("lab".into()),
                until: now.add(Duration::from_secs(86_400)),
                made_at: now,
                reason: None,
            },
            now,
        );
        let store = failing_writes(vec![]);
        let sheet = "ip\n198.19.3.10\n198.19.3.11\n";
        let answering = ["198.19.3.10", "198.18.1.1"];
        let mut m =
            Running::start_with(store, sheet, &answering, alerts, Unstored::default()).await;
        // 198.19.3.11 never answers: down after two rounds, firing.
        m.after_round(3).await;
        m.store.lock().unwrap().write_failures.push_back(damaged());
        let before = m.store.lock().unwrap().alerts_written.len();
        m.after_round(5).await;
        let (written, silences, log) = {
            let store = m.store.lock().unwrap();
            let written = store.alerts_written[before].1.clone();
            (written, store.silences.clone(), store.log.clone())
        };
        let keys: Vec<String> = written
            .expect("the whole firing set, though the round changed nothing")
            .into_iter()
            .map(|a| a.key)
            .collect();
        assert_eq!(keys, ["down/198.19.3.11"]);
        assert_eq!(silences.len(), 1, "{log:?}");
        assert_eq!(silences[0].scope, "group/lab");
        assert!(m.stop().await);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn failed_upkeep_is_shown_but_the_round_is_saved() {
    local(async {
        let store = FakeStore {
            retention_failures: VecDeque::from([disk_full()]),
            ..FakeStore::default()
        };
        let mut m = Running::start(store).await;
        let snap = m.after_round(1).await;
        assert_eq!(snap.store.errors, 1);
        assert_eq!(
            snap.warnings,
            [format!(
                "round 1 was saved, but the store's upkeep failed: {}",
                disk_full()
            )]
        );
        let snap = m.after_round(2).await;
        assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
        assert!(m.stop().await);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn what_opening_the_store_recovered_is_a_store_event() {
    local(async {
        let store = FakeStore {
            recovery: Some("the history database was damaged (...); moved aside".into()),
            ..FakeStore::default()
        };
        let m = Running::start(store).await;
        let store = m.store.lock().unwrap();
        assert_eq!(store.log, ["event store", "event targets"]);
        assert_eq!(store.events[0].kind, EventKind::Store);
        assert_eq!(
            store.events[0].detail,
            "the history database was damaged (...); moved aside"
        );
    })
    .await
}
