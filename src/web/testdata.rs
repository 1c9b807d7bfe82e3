//! A snapshot and a history for the web tests, with hostile sheet values
//! (quotes, backslashes, newlines, markup) where a sheet can put them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::alerts::{ActiveAlert, AlertKind, AlertsView, Silence, SilenceScope};
use crate::clock::Timestamp;
use crate::leds::{LedDriverStatus, LedPattern, LedReport, LedView};
use crate::monitor::{BoardInfo, RejectedSheet, RoundInfo, SheetView, Snapshot, TargetView};
use crate::probe::{Gateway, Hop, RttSummary, Status, Ttl};
use crate::store::{
    Dropped, EventKind, EventRecord, History, NotificationRecord, Outcome, ResultRecord, RoundId,
    StoreError, StoreStats, TraceRecord, Uptime,
};

/// The fields every target of `/api/v1/status` has: the API's contract
/// with whoever scripts against the board.
pub const TARGET_FIELDS: [&str; 13] = [
    "sno",
    "addr",
    "name",
    "group",
    "status",
    "loss",
    "rtt_ms",
    "gateway",
    "hops",
    "reached",
    "last_updated",
    "uptime_24h",
    "cause",
];

/// "Now" in the tests: 2026-11-25 23:58:31 UTC.
pub const NOW: Timestamp = Timestamp(1_795_651_111_000);

/// The name of the first target: every character a label or attribute
/// must escape.
pub const HOSTILE_NAME: &str = "core \"sw\"\\1\nx";
/// The group of the first target.
pub const HOSTILE_GROUP: &str = "<script>alert(1)</script>";

fn hop(ttl: u8, addr: Option<&str>, rtt: Option<f64>) -> Hop {
    Hop::new(
        Ttl(ttl),
        addr.map(|a| a.parse().expect("test address")),
        rtt,
    )
}

fn target(sno: usize, addr: &str) -> TargetView {
    TargetView {
        sno,
        key: addr.into(),
        addr: addr.into(),
        ip: addr.parse().ok(),
        name: None,
        group: None,
        notes: None,
        status: None,
        status_since: None,
        sent: 0,
        received: 0,
        loss: None,
        rtt_ms: None,
        gateway: None,
        hops: Default::default(),
        reached: false,
        last_trace: None,
        last_updated: None,
        uptime_24h: None,
        recent_rtt: Default::default(),
        cause: None,
    }
}

/// Four targets, one per status (and one pending), with a rejected reload,
/// a warning and dropped rows.
pub fn snapshot() -> Snapshot {
    let updated = Some(NOW.sub(Duration::from_secs(20)));
    let mut a = target(1, "198.18.0.1");
    a.name = Some(HOSTILE_NAME.into());
    a.group = Some(HOSTILE_GROUP.into());
    a.notes = Some("<b>notes</b>".into());
    a.status = Some(Status::Working);
    a.sent = 3;
    a.received = 3;
    a.loss = Some(0.0);
    a.rtt_ms = Some(RttSummary {
        min: 1.0,
        avg: 2.5,
        max: 4.0,
        mdev: 0.5,
    });
    a.gateway = Some(Gateway::Via("198.18.0.254".parse().expect("ip")));
    a.hops = vec![
        hop(1, Some("198.18.1.1"), Some(0.5)),
        hop(2, None, None),
        hop(3, Some("198.18.0.1"), Some(2.0)),
    ]
    .into();
    a.reached = true;
    a.last_updated = updated;
    a.uptime_24h = Some(0.995);
    a.recent_rtt = [Some(2.0), None, Some(3.0), Some(2.5)]
        .into_iter()
        .collect();

    let mut b = target(2, "198.18.0.9");
    b.status = Some(Status::NotWorking);
    b.sent = 3;
    b.loss = Some(1.0);
    b.gateway = Some(Gateway::Direct);
    b.hops = vec![hop(1, Some("198.18.1.1"), Some(0.4))].into();
    b.last_updated = updated;
    b.cause = Some("path stops after 198.18.1.1".to_string());
    b.uptime_24h = Some(0.5);

    let mut c = target(3, "2001:db8::1");
    c.name = Some("v6 host".into());
    c.group = Some("Rack 1".into());
    c.status = Some(Status::Degraded);
    c.sent = 3;
    c.received = 2;
    c.loss = Some(1.0 / 3.0);
    c.rtt_ms = Some(RttSummary {
        min: 10.0,
        avg: 12.0,
        max: 14.0,
        mdev: 1.0,
    });
    c.reached = true;
    c.last_updated = updated;

    let mut d = target(4, "printer.lan");
    d.ip = None;

    Snapshot {
        board: BoardInfo {
            id: "closet-3".to_string(),
            version: "0.1.0".to_string(),
            started_at: NOW.sub(Duration::from_secs(3600)),
            started_mono: None,
            interval: Duration::from_secs(60),
        },
        last_round: Some(RoundInfo {
            round: RoundId(42),
            started: NOW.sub(Duration::from_secs(25)),
            finished: NOW.sub(Duration::from_secs(20)),
            duration: Duration::from_millis(4500),
            finished_mono: None,
        }),
        targets: vec![a, b, c, d],
        sheet: SheetView {
            source: Some("targets.xlsx".to_string()),
            loaded_at: Some(NOW.sub(Duration::from_secs(3600))),
            problems: vec![
                "targets.xlsx: Sheet1 row 7: \"192.168.300.1\" is not an IP address or host name"
                    .to_string(),
            ],
            rejected: Some(RejectedSheet {
                source: "new.xlsx".to_string(),
                at: NOW.sub(Duration::from_secs(60)),
                problems: vec!["new.xlsx: no column named ip".to_string()],
                retry_at: None,
            }),
        },
        board_gateways: Vec::new(),
        store: StoreStats {
            backlog: 12,
            refused: 3,
            refused_total: 5,
            last_refusal: Some(crate::store::LastRefusal {
                at: NOW.sub(Duration::from_secs(120)),
                reason: "events: code 121: Document failed validation".to_string(),
            }),
            oldest_unsynced: None,
            db_bytes: 4096,
            dropped: Dropped {
                results: 7,
                traces: 0,
                events: 0,
                unsynced: 0,
                rollups: 0,
            },
            errors: 2,
        },
        upstream: Default::default(),
        warnings: vec![
            "traceroute needs CAP_NET_RAW: run `setcap cap_net_raw+ep edgeprobe`".to_string(),
        ],
        alerts: alerts(),
        published: 1,
    }
}

/// One alert firing on the snapshot's down target, one silence.
pub fn alerts() -> AlertsView {
    AlertsView {
        channels: vec!["webhook 127.0.0.1:9000".to_string()],
        firing: vec![ActiveAlert {
            kind: AlertKind::Down {
                target: "198.18.0.9".to_string(),
            },
            since: NOW.sub(Duration::from_secs(600)),
            last_sent: Some(NOW.sub(Duration::from_secs(600))),
            detail: "<b>no reply</b> after 198.18.1.1".to_string(),
            name: Some("files".to_string()),
            group: None,
        }],
        silences: vec![Silence {
            scope: SilenceScope::Group("<lab>".to_string()),
            until: NOW.add(Duration::from_secs(7200)),
            made_at: NOW.sub(Duration::from_secs(60)),
            reason: Some("router <swap>".to_string()),
        }],
    }
}

/// An in-memory [`History`]; `fail` makes every call an error.
#[derive(Default)]
pub struct FakeHistory {
    pub results: HashMap<String, Vec<ResultRecord>>,
    pub traces: HashMap<String, Vec<TraceRecord>>,
    pub events: Vec<EventRecord>,
    pub notifications: Vec<NotificationRecord>,
    pub fail: bool,
    /// Calls seen, to check the server asked.
    pub calls: Mutex<Vec<String>>,
}

impl FakeHistory {
    /// Some history for the first target.
    pub fn with_data() -> FakeHistory {
        let key = "198.18.0.1".to_string();
        let results = (0..5u64)
            .rev()
            .map(|i| ResultRecord {
                target: key.clone(),
                round: RoundId(40 + i),
                ts: NOW.sub(Duration::from_secs(60 * (5 - i))),
                name: Some(HOSTILE_NAME.to_string()),
                group: Some(HOSTILE_GROUP.to_string()),
                status: if i == 2 {
                    Status::NotWorking
                } else {
                    Status::Working
                },
                reported: Status::Working,
                sent: 3,
                received: if i == 2 { 0 } else { 3 },
                loss: if i == 2 { 1.0 } else { 0.0 },
                rtt: (i != 2).then_some(RttSummary {
                    min: 1.0,
                    avg: 2.0 + i as f64,
                    max: 5.0,
                    mdev: 0.3,
                }),
                gateway: Some(Gateway::Direct),
            })
            .collect();
        let traces = vec![TraceRecord {
            target: key.clone(),
            round: RoundId(44),
            ts: NOW.sub(Duration::from_secs(60)),
            hops: vec![hop(1, Some("198.18.1.1"), Some(0.5))],
            reached: true,
        }];
        let events = vec![EventRecord {
            target: Some(key.clone()),
            ts: NOW.sub(Duration::from_secs(180)),
            kind: EventKind::Status,
            from: Some("working".to_string()),
            to: Some("not_working".to_string()),
            detail: "<img src=x> path stops after 198.18.1.1".to_string(),
        }];
        FakeHistory {
            results: HashMap::from([(key.clone(), results)]),
            traces: HashMap::from([(key, traces)]),
            events,
            ..FakeHistory::default()
        }
    }

    fn check(&self, call: String) -> Result<(), StoreError> {
        self.calls.lock().expect("not poisoned").push(call);
        if self.fail {
            return Err(StoreError::Io {
                path: "/var/lib/edgeprobe/edgeprobe.db".to_string(),
                source: std::io::Error::other("disk on fire"),
            });
        }
        Ok(())
    }
}

/// Two notifications: one waiting after a failure, one delivered.
pub fn notifications() -> Vec<NotificationRecord> {
    vec![
        NotificationRecord {
            id: 8,
            channel: "webhook 127.0.0.1:9000".to_string(),
            made_at: NOW.sub(Duration::from_secs(60)),
            subject: "closet-3: 1 resolved".to_string(),
            attempts: 2,
            last_error: Some("127.0.0.1:9000: <connection refused>".to_string()),
            outcome: None,
            at: NOW.add(Duration::from_secs(30)),
        },
        NotificationRecord {
            id: 7,
            channel: "webhook 127.0.0.1:9000".to_string(),
            made_at: NOW.sub(Duration::from_secs(600)),
            subject: "closet-3: 1 firing".to_string(),
            attempts: 1,
            last_error: None,
            outcome: Some(Outcome::Delivered),
            at: NOW.sub(Duration::from_secs(599)),
        },
    ]
}

impl History for FakeHistory {
    fn notifications(&self, limit: usize) -> Result<Vec<NotificationRecord>, StoreError> {
        self.check(format!("notifications {limit}"))?;
        Ok(self.notifications.iter().take(limit).cloned().collect())
    }

    fn results(&self, target: &str, limit: usize) -> Result<Vec<ResultRecord>, StoreError> {
        self.check(format!("results {target} {limit}"))?;
        let mut v = self.results.get(target).cloned().unwrap_or_default();
        v.truncate(limit);
        Ok(v)
    }

    fn traces(&self, target: &str, limit: usize) -> Result<Vec<TraceRecord>, StoreError> {
        self.check(format!("traces {target} {limit}"))?;
        let mut v = self.traces.get(target).cloned().unwrap_or_default();
        v.truncate(limit);
        Ok(v)
    }

    fn events(&self, target: Option<&str>, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.check(format!("events {target:?} {limit}"))?;
        Ok(self
            .events
            .iter()
            .filter(|e| target.is_none() || e.target.as_deref() == target)
            .take(limit)
            .cloned()
            .collect())
    }

    fn uptime(&self, target: &str, _now: Timestamp) -> Result<Uptime, StoreError> {
        self.check(format!("uptime {target}"))?;
        Ok(if self.results.contains_key(target) {
            Uptime {
                h24: Some(0.8),
                d7: Some(0.9),
                d30: None,
            }
        } else {
            Uptime::default()
        })
    }
}

/// The LEDs for [`snapshot`]: a target is down, so red is on; the amber
/// LED could not be opened.
pub fn leds() -> LedReport {
    LedReport {
        patterns: LedView {
            green: LedPattern::Off,
            red: LedPattern::On,
            amber: LedPattern::Off,
        },
        driver: LedDriverStatus {
            backend: "rppal",
            driven: vec!["green (pin 17, active high)".into(), "red (pin 27, active high)".into()],
            faults: vec!["amber (pin 22, active low): BCM 22: permission denied on /dev/gpiomem; add the service user to the `gpio` group".into()],
        },
    }
}
