//! Central's alert loop: every `--alerts-every`, read the boards and the
//! open claims, [`plan`] the pass, and carry out each step as a claim in
//! MongoDB ([`MongoClaims`]) followed, when the claim is ours, by the
//! delivery through the board side's couriers
//! ([`crate::alerts::sender::Courier`]) and its retry rule
//! ([`crate::alerts::sender::after_attempt`]). The claims a pass wins for
//! its changes (boards gone quiet, boards back) are sent together: one
//! message per channel listing them all ([`Alerter::pass`]).
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
use futures::stream::{self, StreamExt};
use serde::Deserialize;

use super::alerting::{lease_holds, plan, render_all, Claim, ClaimState, Step};
use super::claims::{IndexError, MongoClaims, Progress, KEEP_RESOLVED, OPERATION_TIMEOUT};
use super::source::{FleetError, FleetSource};
use crate::alerts::deliver::{Delivery, DELIVERY_TIMEOUT};
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

/// What a held message must have left of its lease to be sent: a
/// delivery (channels side by side, each at most [`DELIVERY_TIMEOUT`])
/// and the write that records it (at most [`OPERATION_TIMEOUT`]). A
/// claim with less is left to whoever takes it over when its lease ends.
pub const SEND_NEEDS: Duration =
    Duration::from_secs(DELIVERY_TIMEOUT.as_secs() + OPERATION_TIMEOUT.as_secs());

/// How many claims are taken over, or recorded, at once.
const AT_ONCE: usize = 4;

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
    /// Before the first pass that reaches the server, the index on
    /// `state` is made; a server that refuses it (a user without the
    /// privilege) is told once, and the passes go on without it.
    pub async fn run(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut indexed = false;
        loop {
            tick.tick().await;
            if !indexed {
                match self.claims.ensure_index().await {
                    Ok(()) => indexed = true,
                    Err(IndexError::Refused(why)) => {
                        eprintln!(
                            "edgeprobe: central: alerts: alert_claims has no index on state \
                             ({why}); every pass reads the collection without one"
                        );
                        indexed = true;
                    }
                    // The pass says what is wrong with the server.
                    Err(IndexError::Unavailable(_)) => {}
                }
            }
            match self.pass().await {
                Ok(report) => {
                    for line in report.lines {
                        eprintln!("edgeprobe: central: alerts: {line}");
                    }
                }
                Err(e) => eprintln!("edgeprobe: central: alerts: {e}; trying again next pass"),
            }
        }
    }

    /// The labels of the Alertmanager channels.
    fn alertmanagers(&self) -> Vec<String> {
        self.routes
            .iter()
            .filter(|r| matches!(r.channel, Channel::Alertmanager { .. }))
            .map(|r| r.label.clone())
            .collect()
    }

    /// One pass: read, [`plan`], then, in the plan's order,
    ///
    /// 1. take over the "back online" messages whose lease ended;
    /// 2. claim this pass's changes (boards back, boards gone quiet, one
    ///    claim each) and send the ones this replica won as one message
    ///    per channel;
    /// 3. take over the "offline" messages whose lease ended (each its own
    ///    message: their channels done differ);
    /// 4. refresh Alertmanager;
    /// 5. delete the claims resolved more than [`KEEP_RESOLVED`] ago.
    ///
    /// Every claim and every record takes the time anew, so a lease is
    /// counted from when it was taken, not from the start of the pass.
    pub async fn pass(&self) -> Result<PassReport, FleetError> {
        let boards = self.source.heartbeats().await?;
        let (open, unreadable) = self.claims.read_open().await?;
        let alertmanagers = self.alertmanagers();
        let mut report = PassReport::default();
        let (mut ending, mut changes, mut starting, mut refreshes) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for step in plan(&boards, &open, Timestamp::now(), &alertmanagers) {
            match step {
                Step::TakeOver(c) if c.state == ClaimState::Resolving => ending.push(c),
                Step::TakeOver(c) => starting.push(c),
                Step::Refresh(c) => refreshes.push(c),
                // Another version's claim: not a new outage.
                Step::Open(o) if unreadable.contains(&o.id) => {}
                other => changes.push(other),
            }
        }
        report.lines.extend(self.take_over_all(ending).await);
        let won = self.claim_changes(changes, &mut report).await;
        report.lines.extend(self.send(won).await);
        report.lines.extend(self.take_over_all(starting).await);
        report.lines.extend(self.refresh(refreshes).await);
        match self.claims.sweep(Timestamp::now().sub(KEEP_RESOLVED)).await {
            Ok(0) => {}
            Ok(n) => report.lines.push(format!(
                "deleted {n} claims resolved more than {} ago",
                crate::config::format_duration(KEEP_RESOLVED)
            )),
            Err(e) => report.lines.push(e.to_string()),
        }
        Ok(report)
    }

    /// Claim this pass's changes one after another, in the plan's order
    /// (back online first, then new outages, each by id); the claims won,
    /// to be sent together.
    ///
    /// A lost race (a duplicate key, an update that matched nothing) means
    /// another replica is claiming the same changes, from the same plan
    /// in the same order: this one stops there and leaves the rest to it,
    /// so a pass's changes go out as one message rather than split
    /// between replicas. What the other did not claim after all is
    /// claimed at the next pass. The protocol is still one claim per
    /// outage: which of them stops changes nothing about who sends what.
    async fn claim_changes(&self, steps: Vec<Step>, report: &mut PassReport) -> Vec<Claim> {
        let mut won = Vec::new();
        for step in steps {
            let now = Timestamp::now();
            let claimed = match step {
                Step::Open(o) => self.claims.open_outage(&o, &self.me, now, LEASE).await,
                Step::Resolve { claim, back_at } if self.send_resolved => {
                    self.claims
                        .resolve(&claim, back_at, &self.me, now, LEASE, true)
                        .await
                }
                Step::Resolve { claim, back_at } => {
                    // Closed without a message: nothing to race for.
                    if let Err(e) = self
                        .claims
                        .resolve(&claim, back_at, &self.me, now, LEASE, false)
                        .await
                    {
                        report.lines.push(e.to_string());
                    }
                    continue;
                }
                Step::Forget(c) => {
                    match self.claims.forget(&c, &self.me, now).await {
                        Ok(true) => report.lines.push(format!(
                            "{}: the board's document is gone; outage closed",
                            c.id
                        )),
                        Ok(false) => {}
                        Err(e) => report.lines.push(e.to_string()),
                    }
                    continue;
                }
                Step::TakeOver(_) | Step::Refresh(_) => continue,
            };
            match claimed {
                Ok(Some(c)) => won.push(c),
                Ok(None) => break,
                // One episode's trouble does not stop the others.
                Err(e) => report.lines.push(e.to_string()),
            }
        }
        won
    }

    /// Take over each of `claims` whose lease ended, and send it; a few
    /// at once.
    async fn take_over_all(&self, claims: Vec<Claim>) -> Vec<String> {
        // Collected first: a stream over a closure's futures trips the
        // compiler's lifetime inference under `tokio::spawn`.
        #[allow(clippy::needless_collect)]
        let each: Vec<_> = claims
            .into_iter()
            .map(|c| async move {
                match self
                    .claims
                    .take_over(&c, &self.me, Timestamp::now(), LEASE)
                    .await
                {
                    Ok(Some(mine)) => self.send(vec![mine]).await,
                    Ok(None) => Vec::new(),
                    Err(e) => vec![e.to_string()],
                }
            })
            .collect();
        stream::iter(each)
            .buffered(AT_ONCE)
            .collect::<Vec<_>>()
            .await
            .concat()
    }

    /// Send the messages in flight of `held`, which this replica holds,
    /// as one message per channel listing those not done on it yet, and
    /// record how it went for each; the lines for the log.
    async fn send(&self, held: Vec<Claim>) -> Vec<String> {
        let mut lines = Vec::new();
        let now = Timestamp::now();
        let (ready, late): (Vec<Claim>, Vec<Claim>) = held
            .into_iter()
            .partition(|c| lease_holds(c.lease_until, now, SEND_NEEDS));
        for c in &late {
            // Sent by whoever takes it over when the lease ends: sending
            // now could outlast the lease, and the next holder would send
            // it again.
            lines.push(format!(
                "{} {}: its lease ends at {}, too soon to send it; it is sent once the lease is over",
                c.board,
                what(c),
                c.lease_until.rfc3339()
            ));
        }
        if ready.is_empty() {
            return lines;
        }
        let deliveries = self.routes.iter().filter_map(|r| {
            let on: Vec<&Claim> = ready
                .iter()
                .filter(|c| !c.done.contains(&r.label))
                .collect();
            (!on.is_empty()).then_some(async move {
                let m = render_all(&r.channel, &on, now);
                let n = PendingNotification {
                    id: 0,
                    attempts: on.iter().map(|c| c.attempts).max().unwrap_or(0),
                    notification: QueuedNotification {
                        channel: r.label.clone(),
                        made_at: on.iter().map(|c| c.made_at).min().unwrap_or(now),
                        subject: m.subject,
                        content_type: m.content_type.to_string(),
                        body: m.body,
                    },
                };
                let delivery = r.courier.deliver(&n.notification).await;
                let next = after_attempt(delivery, &n, Timestamp::now(), self.give_up_after);
                let ids: Vec<String> = on.iter().map(|c| c.id.clone()).collect();
                (r, ids, next)
            })
        });
        let results = join_all(deliveries).await;
        for (r, ids, _) in &results {
            if ids.len() > 1 {
                lines.push(format!("{}: one message for {} boards", r.label, ids.len()));
            }
        }
        #[allow(clippy::needless_collect)]
        let records: Vec<_> = ready
            .iter()
            .map(|c| {
                let mut lines = Vec::new();
                let what = what(c);
                let mut done = c.done.clone();
                let mut retry: Option<(Timestamp, String)> = None;
                for (r, _, next) in results.iter().filter(|(_, ids, _)| ids.contains(&c.id)) {
                    match next {
                        Next::Delivered => {
                            lines.push(format!("{} {what}: sent to {}", c.board, r.label));
                            done.push(r.label.clone());
                        }
                        Next::Refused(why) | Next::GivenUp(why) => {
                            lines.push(format!(
                                "{} {what}: {} did not take it and it is not sent again: {why}",
                                c.board, r.label
                            ));
                            done.push(r.label.clone());
                        }
                        Next::RetryAt(at, why) => {
                            lines.push(format!(
                                "{} {what}: {} failed ({why}); trying again at {}",
                                c.board,
                                r.label,
                                at.rfc3339()
                            ));
                            let why = format!("{}: {why}", r.label);
                            retry = Some(match retry {
                                Some((t, w)) if t <= *at => (t, w),
                                _ => (*at, why),
                            });
                        }
                    }
                }
                async move {
                    let now = Timestamp::now();
                    let firing = c.state == ClaimState::Firing;
                    let progress = match retry {
                        None => Progress::Finished {
                            am_next: firing.then(|| now.add(ALERTMANAGER_REFRESH)),
                        },
                        Some((retry_at, error)) => {
                            // Alertmanager has it now while another channel is
                            // retried: it hears again while that goes on.
                            let am_done = done.iter().any(|d| {
                                self.routes.iter().any(|r| {
                                    &r.label == d
                                        && matches!(r.channel, Channel::Alertmanager { .. })
                                })
                            });
                            Progress::Retry {
                                done,
                                retry_at,
                                error,
                                am_next: (firing && am_done && c.am_next.is_none())
                                    .then(|| now.add(ALERTMANAGER_REFRESH)),
                            }
                        }
                    };
                    match self.claims.record(c, progress, now).await {
                        Ok(true) => {}
                        Ok(false) => lines.push(format!(
                            "{} {what}: this replica's lease ended while it sent the message and \
                         another replica took it over, so it may have gone out twice \
                         (delivery is at least once)",
                            c.board
                        )),
                        Err(e) => lines.push(e.to_string()),
                    }
                    lines
                }
            })
            .collect();
        let recorded = stream::iter(records)
            .buffered(AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        lines.extend(recorded.into_iter().flatten());
        lines
    }

    /// Tell Alertmanager again that each of `due` still fires: claim each
    /// refresh, then one request per Alertmanager with the alerts it has
    /// (every one when fired; when still firing, only if that
    /// Alertmanager is among the channels done). A failure waits for the
    /// next refresh.
    async fn refresh(&self, due: Vec<Claim>) -> Vec<String> {
        let mut lines = Vec::new();
        let mut mine = Vec::new();
        for c in due {
            let next = Timestamp::now().add(ALERTMANAGER_REFRESH);
            match self.claims.refresh(&c, next).await {
                Ok(true) => mine.push(c),
                Ok(false) => {}
                Err(e) => lines.push(e.to_string()),
            }
        }
        let now = Timestamp::now();
        for r in &self.routes {
            if !matches!(r.channel, Channel::Alertmanager { .. }) {
                continue;
            }
            let on: Vec<&Claim> = mine
                .iter()
                .filter(|c| c.state == ClaimState::Fired || c.done.contains(&r.label))
                .collect();
            if on.is_empty() {
                continue;
            }
            let m = render_all(&r.channel, &on, now);
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
                let boards: Vec<&str> = on.iter().map(|c| c.board.as_str()).collect();
                lines.push(format!(
                    "{} still offline: {} did not take the refresh: {why}",
                    boards.join(", "),
                    r.label
                ));
            }
        }
        lines
    }
}

/// What the message in flight of `c` says, for the log.
fn what(c: &Claim) -> &'static str {
    match c.state {
        ClaimState::Resolving | ClaimState::Resolved => "back online",
        ClaimState::Firing | ClaimState::Fired => "offline",
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
