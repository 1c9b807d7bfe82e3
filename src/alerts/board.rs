//! A board's alerting between rounds: the book, the rules, the silences,
//! and turning a round's notices into one queued message per channel.
//! Pure: the round's snapshot in, rows for the round's transaction out,
//! so what a round decides to send is stored with the round itself.

use crate::clock::Timestamp;
use crate::monitor::{Snapshot, UpstreamView};
use crate::store::{AlertRow, QueuedNotification, SilenceRow};

use super::message::{alertmanager_alerts, body_for, Message};
use super::rules::{
    ActiveAlert, AlertBook, AlertKind, Notice, NoticeKind, Observed, Silence, SilenceScope,
    TargetObserved,
};
use super::settings::{AlertSettings, Channel};

/// What a round adds to its transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoundAlerts {
    pub notifications: Vec<QueuedNotification>,
    /// Alertmanager told again what fires, when nothing changed for it:
    /// each replaces its channel's refresh still waiting.
    pub refreshes: Vec<QueuedNotification>,
    /// The firing set, when the round changed it.
    pub alerts: Option<Vec<AlertRow>>,
}

/// Alerting as the dashboard shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertsView {
    /// The configured channels' labels.
    pub channels: Vec<String>,
    pub firing: Vec<ActiveAlert>,
    pub silences: Vec<Silence>,
}

/// The alerting of one board.
#[derive(Clone)]
pub struct BoardAlerts {
    board: String,
    settings: AlertSettings,
    book: AlertBook,
    silences: Vec<Silence>,
}

impl BoardAlerts {
    /// Alerting for `board`, resuming what the store says was firing and
    /// the silences it kept.
    pub fn new(
        board: &str,
        settings: AlertSettings,
        firing: &[AlertRow],
        silences: &[SilenceRow],
    ) -> BoardAlerts {
        BoardAlerts {
            board: board.to_string(),
            settings,
            book: AlertBook::resume(firing.iter().filter_map(from_row)),
            silences: silences.iter().filter_map(silence_from_row).collect(),
        }
    }

    /// Add `silence` (replacing one of the same scope; one that ends by
    /// `now` lifts it) and drop the ended ones; returns the silences now
    /// in force, to be stored.
    pub fn silence(&mut self, silence: Silence, now: Timestamp) -> Vec<SilenceRow> {
        self.silences
            .retain(|s| s.scope != silence.scope && s.until > now);
        if silence.until > now {
            self.silences.push(silence);
        }
        self.silences.sort_by_key(|s| s.until);
        self.silences.iter().map(silence_to_row).collect()
    }

    /// Everything a new store needs to carry on (after a damaged file was
    /// replaced): the firing set and the silences, whole.
    pub fn rows(&self) -> (Vec<AlertRow>, Vec<SilenceRow>) {
        (
            self.book.active().map(to_row).collect(),
            self.silences.iter().map(silence_to_row).collect(),
        )
    }

    /// What the dashboard shows at `now`: the alerts firing, the silences
    /// in force, and whether any channel is configured.
    pub fn view(&self, now: Timestamp) -> AlertsView {
        AlertsView {
            channels: self.settings.channels.iter().map(Channel::label).collect(),
            firing: self.book.active().cloned().collect(),
            silences: self
                .silences
                .iter()
                .filter(|s| s.until > now)
                .cloned()
                .collect(),
        }
    }

    /// Whether any channel is configured: without one a round sends
    /// nothing, and needs no snapshot built for it.
    pub fn has_channels(&self) -> bool {
        !self.settings.channels.is_empty()
    }

    /// What the round that left `snap` (with these path changes and store
    /// fault) sends, as rows for its transaction.
    pub fn after_round(
        &mut self,
        snap: &Snapshot,
        path_changes: Vec<(String, String)>,
        store_fault: Option<String>,
        now: Timestamp,
    ) -> RoundAlerts {
        if self.settings.channels.is_empty() {
            return RoundAlerts::default();
        }
        let seen = observed(snap, path_changes, store_fault);
        let before: Vec<ActiveAlert> = self.book.active().cloned().collect();
        let notices = self
            .book
            .observe(&seen, &self.settings.rules, &self.silences, now);
        let after: Vec<ActiveAlert> = self.book.active().cloned().collect();
        let alerts = (before != after).then(|| after.iter().map(to_row).collect());
        // What Alertmanager keeps open: what was sent (not what fired
        // under a silence and was never told).
        let told: Vec<ActiveAlert> = after
            .iter()
            .filter(|a| a.last_sent.is_some())
            .cloned()
            .collect();
        let spoken: Vec<Notice> = notices
            .iter()
            .filter(|n| self.settings.rules.send_resolved || n.kind != NoticeKind::Resolved)
            .cloned()
            .collect();
        let hold = alertmanager_hold(snap.board.interval);
        let changed = notices.iter().any(|n| n.kind != NoticeKind::Event);
        let mut out = RoundAlerts {
            alerts,
            ..RoundAlerts::default()
        };
        for channel in &self.settings.channels {
            match channel {
                Channel::Alertmanager { .. } => {
                    let n = render(&self.board, channel, &notices, &told, now, hold);
                    if changed {
                        out.notifications.extend(n);
                    } else {
                        out.refreshes.extend(n);
                    }
                }
                _ => {
                    out.notifications
                        .extend(render(&self.board, channel, &spoken, &[], now, hold))
                }
            }
        }
        out
    }
}

/// How long Alertmanager may keep a firing alert open without hearing of
/// it again (its `endsAt`): three rounds, at least five minutes (its own
/// `resolve_timeout`), so a slow round or two never closes it.
fn alertmanager_hold(interval: std::time::Duration) -> std::time::Duration {
    (interval * 3).max(std::time::Duration::from_secs(5 * 60))
}

/// A round's message for `channel` from `board`, if it has one; firing
/// alerts stay open in Alertmanager for `hold`.
fn render(
    board: &str,
    channel: &Channel,
    notices: &[Notice],
    firing: &[ActiveAlert],
    now: Timestamp,
    hold: std::time::Duration,
) -> Option<QueuedNotification> {
    let message = Message {
        board,
        made_at: now,
        notices,
    };
    let (content_type, body) = match channel {
        // Re-sent every round while anything fires, so Alertmanager
        // keeps it open; resolved (and test) ones once, with endsAt.
        Channel::Alertmanager { .. } => {
            let ends = notices
                .iter()
                .any(|n| matches!(n.kind, NoticeKind::Resolved | NoticeKind::Test));
            if firing.is_empty() && !ends {
                return None;
            }
            let alerts = alertmanager_alerts(board, firing, notices, now.add(hold));
            (
                "application/json",
                serde_json::to_vec(&alerts).unwrap_or_default(),
            )
        }
        _ if notices.is_empty() => return None,
        _ => body_for(channel, &message)?,
    };
    Some(QueuedNotification {
        channel: channel.label(),
        made_at: now,
        subject: message.subject(),
        content_type: content_type.to_string(),
        body,
    })
}

/// The test message for `channel`: one line saying it is a test, sent at
/// once rather than queued (`POST /admin/test-alert`, `edgeprobe alerts
/// test`); for Alertmanager, an `EdgeprobeTest` alert that ends by itself.
pub fn test_notification(board: &str, channel: &Channel, now: Timestamp) -> QueuedNotification {
    let notice = Notice {
        kind: NoticeKind::Test,
        key: "test".into(),
        target: None,
        name: None,
        group: None,
        at: now,
        detail: format!(
            "a test of the alert channel {} from edgeprobe on {board}; nothing is wrong",
            channel.label()
        ),
    };
    render(
        board,
        channel,
        &[notice],
        &[],
        now,
        std::time::Duration::ZERO,
    )
    .expect("a test notice renders on every channel")
}

/// What alerts are made of, read from the snapshot.
fn observed(
    snap: &Snapshot,
    path_changes: Vec<(String, String)>,
    store_fault: Option<String>,
) -> Observed {
    Observed {
        targets: snap
            .targets
            .iter()
            .map(|t| TargetObserved {
                key: t.key.to_string(),
                name: t.name.as_deref().map(str::to_owned),
                group: t.group.as_deref().map(str::to_owned),
                status: t.status,
                gateway: t.gateway,
                cause: t.cause.clone(),
                answered: t.received > 0,
            })
            .collect(),
        gateways_down: snap
            .board_gateways
            .iter()
            .filter(|g| g.up == Some(false))
            .map(|g| g.addr)
            .collect(),
        upstream_unreachable_since: match &snap.upstream {
            UpstreamView::Unreachable { since, .. } => Some(*since),
            _ => None,
        },
        store_fault,
        path_changes,
    }
}

fn silence_to_row(s: &Silence) -> SilenceRow {
    SilenceRow {
        scope: s.scope.key(),
        until: s.until,
        made_at: s.made_at,
        reason: s.reason.clone(),
    }
}

/// `None` for a scope this version does not know.
fn silence_from_row(row: &SilenceRow) -> Option<Silence> {
    Some(Silence {
        scope: SilenceScope::from_key(&row.scope)?,
        until: row.until,
        made_at: row.made_at,
        reason: row.reason.clone(),
    })
}

fn to_row(a: &ActiveAlert) -> AlertRow {
    AlertRow {
        key: a.kind.key(),
        since: a.since,
        last_sent: a.last_sent,
        detail: a.detail.clone(),
        name: a.name.clone(),
        group: a.group.clone(),
    }
}

/// A stored row back as an alert; `None` for a key this version does not
/// know (written by a newer one), which then simply is not resumed.
fn from_row(r: &AlertRow) -> Option<ActiveAlert> {
    Some(ActiveAlert {
        kind: AlertKind::from_key(&r.key)?,
        since: r.since,
        last_sent: r.last_sent,
        detail: r.detail.clone(),
        name: r.name.clone(),
        group: r.group.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::settings::WebhookFormat;
    use crate::monitor::{BoardGateway, TargetView};
    use crate::probe::{Gateway, Status};

    const T: Timestamp = Timestamp(1_795_608_000_000);

    fn settings() -> AlertSettings {
        AlertSettings {
            channels: vec![
                Channel::Webhook {
                    url: "http://127.0.0.1:9000/hook".parse().unwrap(),
                    format: WebhookFormat::Json,
                    headers: vec![],
                    ca_file: None,
                },
                Channel::Alertmanager {
                    url: "http://127.0.0.1:9093".parse().unwrap(),
                    ca_file: None,
                },
            ],
            ..AlertSettings::default()
        }
    }

    #[test]
    fn a_test_message_renders_on_every_channel_and_ends_itself_in_alertmanager() {
        let mut channels = settings().channels;
        channels.push(Channel::Ntfy {
            url: "http://127.0.0.1:9001/closet".parse().unwrap(),
            token: None,
            ca_file: None,
        });
        channels.push(Channel::Email {
            smtp: "127.0.0.1:2525".into(),
            tls: crate::alerts::settings::SmtpTls::None,
            user: None,
            password: None,
            from: "edgeprobe@closet-3".into(),
            to: vec!["noc@closet-3".into()],
            ca_file: None,
        });
        for channel in &channels {
            let n = test_notification("closet-3", channel, T);
            assert_eq!(n.subject, "closet-3: 1 test message", "{channel:?}");
            let body = String::from_utf8(n.body).unwrap();
            assert!(body.contains("nothing is wrong"), "{body}");
            if let Channel::Alertmanager { .. } = channel {
                let alerts: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(alerts[0]["labels"]["alertname"], "EdgeprobeTest");
                assert_eq!(
                    alerts[0]["endsAt"],
                    T.add(std::time::Duration::from_secs(300)).rfc3339()
                );
            }
        }
    }

    fn snap(statuses: &[(&str, Status)], gateway_up: bool) -> Snapshot {
        let gw = "198.18.1.1".parse().unwrap();
        Snapshot {
            targets: statuses
                .iter()
                .map(|(key, status)| TargetView {
                    key: (*key).into(),
                    addr: (*key).into(),
                    status: Some(*status),
                    gateway: Some(Gateway::Via(gw)),
                    ..TargetView::default()
                })
                .collect(),
            board_gateways: vec![BoardGateway {
                addr: gw,
                up: Some(gateway_up),
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_round_with_changes_queues_one_message_per_channel_and_the_firing_set() {
        let mut b = BoardAlerts::new("closet-3", settings(), &[], &[]);
        let s = snap(
            &[
                ("198.19.4.1", Status::NotWorking),
                ("198.19.4.2", Status::NotWorking),
            ],
            true,
        );
        let out = b.after_round(&s, vec![], None, T);
        assert_eq!(
            out.notifications.len(),
            2,
            "one per channel, not one per target"
        );
        let hook: serde_json::Value = serde_json::from_slice(&out.notifications[0].body).unwrap();
        assert_eq!(hook["notices"].as_array().unwrap().len(), 2);
        assert_eq!(out.notifications[0].channel, "webhook 127.0.0.1:9000");
        assert_eq!(out.alerts.as_ref().unwrap().len(), 2);

        // Nothing changed: no message, but Alertmanager hears the firing
        // alerts again, as a refresh; the firing set is not rewritten.
        let out = b.after_round(&s, vec![], None, T.add(std::time::Duration::from_secs(60)));
        assert!(out.notifications.is_empty(), "{out:?}");
        let channels: Vec<&str> = out.refreshes.iter().map(|n| n.channel.as_str()).collect();
        assert_eq!(channels, ["alertmanager 127.0.0.1:9093"]);
        assert_eq!(out.alerts, None);
    }

    #[test]
    fn without_resolved_messages_alertmanager_is_still_told_and_silences_reach_it_too() {
        let mut quiet = settings();
        quiet.rules.send_resolved = false;
        let mut b = BoardAlerts::new("closet-3", quiet, &[], &[]);
        let down = snap(&[("198.19.4.1", Status::NotWorking)], true);
        b.after_round(&down, vec![], None, T);
        let up = snap(&[("198.19.4.1", Status::Working)], true);
        let out = b.after_round(&up, vec![], None, T.add(std::time::Duration::from_secs(60)));
        let channels: Vec<&str> = out
            .notifications
            .iter()
            .map(|n| n.channel.as_str())
            .collect();
        assert_eq!(
            channels,
            ["alertmanager 127.0.0.1:9093"],
            "no webhook message"
        );
        let am: serde_json::Value = serde_json::from_slice(&out.notifications[0].body).unwrap();
        assert!(am[0]["endsAt"].is_string(), "{am}");

        // Silenced from the start: Alertmanager never hears of it.
        let mut b = BoardAlerts::new("closet-3", settings(), &[], &[]);
        b.silence(
            Silence {
                scope: SilenceScope::Board,
                until: T.add(std::time::Duration::from_secs(3600)),
                made_at: T,
                reason: None,
            },
            T,
        );
        let out = b.after_round(&down, vec![], None, T);
        assert!(
            out.notifications.is_empty() && out.refreshes.is_empty(),
            "{out:?}"
        );
    }

    #[test]
    fn a_dead_board_gateway_is_one_message_listing_its_targets() {
        let mut b = BoardAlerts::new("closet-3", settings(), &[], &[]);
        let s = snap(
            &[
                ("198.19.4.1", Status::NotWorking),
                ("198.19.4.2", Status::NotWorking),
            ],
            false,
        );
        let out = b.after_round(&s, vec![], None, T);
        let hook: serde_json::Value = serde_json::from_slice(&out.notifications[0].body).unwrap();
        let notices = hook["notices"].as_array().unwrap();
        assert_eq!(notices.len(), 1, "{hook:#}");
        assert_eq!(notices[0]["what"], "board gateway down");
        assert!(notices[0]["detail"]
            .as_str()
            .unwrap()
            .contains("198.19.4.1, 198.19.4.2"));
    }

    #[test]
    fn a_restart_resumes_what_was_firing() {
        let mut b = BoardAlerts::new("closet-3", settings(), &[], &[]);
        let s = snap(&[("198.19.4.1", Status::NotWorking)], true);
        let firing = b.after_round(&s, vec![], None, T).alerts.unwrap();
        let mut again = BoardAlerts::new("closet-3", settings(), &firing, &[]);
        let out = again.after_round(&s, vec![], None, T.add(std::time::Duration::from_secs(60)));
        assert!(
            out.notifications
                .iter()
                .all(|n| n.channel.starts_with("alertmanager")),
            "no second message after a restart"
        );
    }

    #[test]
    fn no_channel_means_nothing_is_kept_or_queued() {
        let mut b = BoardAlerts::new("closet-3", AlertSettings::default(), &[], &[]);
        let s = snap(&[("198.19.4.1", Status::NotWorking)], true);
        assert_eq!(b.after_round(&s, vec![], None, T), RoundAlerts::default());
    }
}
