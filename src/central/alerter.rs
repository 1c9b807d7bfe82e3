//! Central's alert loop: every `--alerts-every`, read the boards and the
//! open claims, [`plan`] the pass, and carry out each step as a claim in
//! MongoDB ([`MongoClaims`]) followed, when the claim is ours, by the
//! delivery through the board side's couriers
//! ([`crate::alerts::sender::Courier`]) and its retry rule
//! ([`crate::alerts::sender::after_attempt`]).
//!
//! Nothing is remembered between passes: a replica that starts, stops or
//! dies changes nothing but who does the next step. Every replica must
//! read the same alerts file (a channel is known by its label in the
//! claims' `done` lists).
//!
//! The settings come from a TOML file whose `[alerts]` table is read by
//! the board's own parser ([`crate::config::resolve_alerts`]). Of its
//! keys, the channels, `send_resolved` and `give_up_after` apply here;
//! `repeat`, `degraded`, `path_change` and `upstream_after` are about a
//! board's targets and are ignored with a warning (so one file can serve
//! both).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use serde::Deserialize;

use super::alerting::{plan, render, Claim, ClaimState, Step};
use super::claims::{MongoClaims, Progress};
use super::source::{FleetError, FleetSource};
use crate::alerts::deliver::Delivery;
use crate::alerts::sender::{after_attempt, Courier, Next};
use crate::alerts::settings::{AlertSettings, Channel};
use crate::clock::Timestamp;
use crate::config::{resolve_alerts, AlertsSection, ConfigError};
use crate::store::{PendingNotification, QueuedNotification};

/// How long a replica holds a message it claimed. Longer than a delivery
/// can take (each channel is tried side by side, at most
/// [`crate::alerts::deliver::DELIVERY_TIMEOUT`]), short enough that an
/// alert whose sender died is sent by another within a minute.
pub const LEASE: Duration = Duration::from_secs(60);

/// How often Alertmanager hears again of a board still offline (well
/// inside its default `resolve_timeout` of 5 min).
pub const ALERTMANAGER_REFRESH: Duration = Duration::from_secs(60);

/// The default time between two passes.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(15);

/// The alerts file as written: an `[alerts]` table and nothing else.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsFile {
    #[serde(default)]
    alerts: AlertsSection,
}

/// The settings of `path`, and warnings about keys central ignores. Every
/// error names the file, and the key when it is about one.
pub fn read_settings(path: &Path) -> Result<(AlertSettings, Vec<String>), String> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let file: AlertsFile = toml::from_str(&text)
        .map_err(|e| format!("{shown}: {}", e.to_string().trim_end().replace('\n', " ")))?;
    let s = &file.alerts;
    let warnings = [
        ("repeat", s.repeat.is_some()),
        ("degraded", s.degraded.is_some()),
        ("path_change", s.path_change.is_some()),
        ("upstream_after", s.upstream_after.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(key, _)| format!("{shown}: alerts.{key} is about a board's targets; central ignores it"))
    .collect();
    let settings = resolve_alerts(file.alerts).map_err(|e| match e {
        ConfigError::Invalid { .. } => format!("{shown}: {e}"),
        other => other.to_string(),
    })?;
    Ok((settings, warnings))
}

/// A name for this process in the claims: host, pid and start time, so
/// a restarted replica is a new one.
pub fn replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "central".into());
    format!(
        "{host}/{}/{}",
        std::process::id(),
        Timestamp::now().millis()
    )
}

/// One configured channel and how it is reached.
struct Route {
    channel: Channel,
    label: String,
    courier: Courier,
}

/// The alert loop of one central replica.
pub struct Alerter {
    source: Arc<dyn FleetSource>,
    claims: MongoClaims,
    routes: Vec<Route>,
    give_up_after: Duration,
    send_resolved: bool,
    me: String,
}

/// What a pass did, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// `closet-3 offline: sent to webhook 127.0.0.1:9000`.
    pub lines: Vec<String>,
}

impl Alerter {
    /// The loop for these settings; an error names the channel whose
    /// courier cannot be made (an unreadable `ca_file`).
    pub fn new(
        source: Arc<dyn FleetSource>,
        claims: MongoClaims,
        settings: &AlertSettings,
        me: String,
    ) -> Result<Alerter, String> {
        let routes = settings
            .channels
            .iter()
            .map(|c| {
                let label = c.label();
                Courier::for_channel(c)
                    .map(|courier| Route {
                        channel: c.clone(),
                        label: label.clone(),
                        courier,
                    })
                    .map_err(|e| format!("{label}: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Alerter {
            source,
            claims,
            routes,
            give_up_after: settings.give_up_after,
            send_resolved: settings.rules.send_resolved,
            me,
        })
    }

    /// The channels, as the start-up line names them.
    pub fn channel_labels(&self) -> Vec<String> {
        self.routes.iter().map(|r| r.label.clone()).collect()
    }

    /// Passes every `every`, forever; each problem is one line on stderr.
    pub async fn run(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.pass(Timestamp::now()).await {
                Ok(report) => {
                    for line in report.lines {
                        eprintln!("edgeprobe: central: alerts: {line}");
                    }
                }
                Err(e) => eprintln!("edgeprobe: central: alerts: {e}; trying again next pass"),
            }
        }
    }

    /// One pass at `now`.
    pub async fn pass(&self, now: Timestamp) -> Result<PassReport, FleetError> {
        let boards = self.source.boards().await?;
        let open = self.claims.open().await?;
        let alertmanager = self
            .routes
            .iter()
            .any(|r| matches!(r.channel, Channel::Alertmanager { .. }));
        let mut report = PassReport::default();
        for step in plan(&boards, &open, now, alertmanager) {
            // One episode's trouble does not stop the others.
            if let Err(e) = self.step(step, now, &mut report).await {
                report.lines.push(e.to_string());
            }
        }
        Ok(report)
    }

    async fn step(
        &self,
        step: Step,
        now: Timestamp,
        report: &mut PassReport,
    ) -> Result<(), FleetError> {
        let mine = match step {
            Step::Open(o) => self.claims.open_outage(&o, &self.me, now, LEASE).await?,
            Step::TakeOver(c) => self.claims.take_over(&c, &self.me, now, LEASE).await?,
            Step::Resolve { claim, back_at } => {
                self.claims
                    .resolve(&claim, back_at, &self.me, now, LEASE, self.send_resolved)
                    .await?
            }
            Step::Refresh(c) => {
                if self
                    .claims
                    .refresh(&c, now.add(ALERTMANAGER_REFRESH))
                    .await?
                {
                    self.refresh_alertmanager(&c, now).await;
                }
                None
            }
            Step::Forget(c) => {
                if self.claims.forget(&c, &self.me, now).await? {
                    report.lines.push(format!(
                        "{}: the board's document is gone; outage closed",
                        c.id
                    ));
                }
                None
            }
        };
        if let Some(claim) = mine {
            self.send(&claim, now, report).await?;
        }
        Ok(())
    }

    /// Send the message in flight of `c`, which this replica holds, to
    /// every channel not done yet, and record how it went.
    async fn send(
        &self,
        c: &Claim,
        now: Timestamp,
        report: &mut PassReport,
    ) -> Result<(), FleetError> {
        let what = match c.state {
            ClaimState::Resolving => "back online",
            _ => "offline",
        };
        let todo: Vec<&Route> = self
            .routes
            .iter()
            .filter(|r| !c.done.contains(&r.label))
            .collect();
        let attempts = todo.iter().map(|r| async move {
            let m = render(&r.channel, c, now);
            let n = PendingNotification {
                id: 0,
                attempts: c.attempts,
                notification: QueuedNotification {
                    channel: r.label.clone(),
                    made_at: c.made_at,
                    subject: m.subject,
                    content_type: m.content_type.to_string(),
                    body: m.body,
                },
            };
            let delivery = r.courier.deliver(&n.notification).await;
            (r, after_attempt(delivery, &n, now, self.give_up_after))
        });
        let mut done = c.done.clone();
        let mut retry: Option<(Timestamp, String)> = None;
        for (r, next) in join_all(attempts).await {
            match next {
                Next::Delivered => {
                    report
                        .lines
                        .push(format!("{} {what}: sent to {}", c.board, r.label));
                    done.push(r.label.clone());
                }
                Next::Refused(why) | Next::GivenUp(why) => {
                    report.lines.push(format!(
                        "{} {what}: {} did not take it and it is not sent again: {why}",
                        c.board, r.label
                    ));
                    done.push(r.label.clone());
                }
                Next::RetryAt(at, why) => {
                    report.lines.push(format!(
                        "{} {what}: {} failed ({why}); trying again at {}",
                        c.board,
                        r.label,
                        at.rfc3339()
                    ));
                    let why = format!("{}: {why}", r.label);
                    retry = Some(match retry {
                        Some((t, w)) if t <= at => (t, w),
                        _ => (at, why),
                    });
                }
            }
        }
        let progress = match retry {
            None => Progress::Finished {
                am_next: (c.state == ClaimState::Firing).then(|| now.add(ALERTMANAGER_REFRESH)),
            },
            Some((retry_at, error)) => Progress::Retry {
                done,
                retry_at,
                error,
            },
        };
        if !self.claims.record(c, progress, now).await? {
            report.lines.push(format!(
                "{} {what}: another replica took the message over while this one sent it",
                c.board
            ));
        }
        Ok(())
    }

    /// Tell every Alertmanager again that `c` fires; a failure waits for
    /// the next refresh.
    async fn refresh_alertmanager(&self, c: &Claim, now: Timestamp) {
        for r in &self.routes {
            if !matches!(r.channel, Channel::Alertmanager { .. }) {
                continue;
            }
            let m = render(&r.channel, c, now);
            let n = QueuedNotification {
                channel: r.label.clone(),
                made_at: now,
                subject: m.subject,
                content_type: m.content_type.to_string(),
                body: m.body,
            };
            if let Delivery::Failed(why) | Delivery::Refused { answer: why, .. } =
                r.courier.deliver(&n).await
            {
                eprintln!(
                    "edgeprobe: central: alerts: {} still offline: {} did not take the refresh: {why}",
                    c.board, r.label
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("central-alerts.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn the_alerts_file_is_read_by_the_board_parser_and_errors_name_file_and_key() {
        let (_d, p) = write(
            "[alerts]\nsend_resolved = false\nrepeat = \"1h\"\n\
             [[alerts.webhook]]\nurl = \"http://127.0.0.1:9000/hook\"\n",
        );
        let (s, warnings) = read_settings(&p).unwrap();
        assert_eq!(s.channels.len(), 1);
        assert!(!s.rules.send_resolved);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("alerts.repeat"), "{warnings:?}");

        let (_d, p) = write("[[alerts.webhook]]\nurl = \"127.0.0.1:9000\"\n");
        let e = read_settings(&p).unwrap_err();
        assert!(
            e.starts_with(&p.display().to_string()) && e.contains("alerts.webhook.url"),
            "{e}"
        );
        let (_d, p) = write("board_id = \"closet-3\"\n[alerts]\n");
        let e = read_settings(&p).unwrap_err();
        assert!(
            e.starts_with(&p.display().to_string()) && e.contains("board_id"),
            "{e}"
        );
        let e = read_settings(Path::new("/nonexistent/alerts.toml")).unwrap_err();
        assert!(e.contains("/nonexistent/alerts.toml"), "{e}");
    }
}
