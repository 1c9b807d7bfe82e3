//! Which alerts are firing, and what one round changes about them. Pure:
//! what the round observed, the rules and `now` in; the notices to send
//! out.
//!
//! The book is level-based, as Alertmanager is: each round works out the
//! set of alerts that should be firing and compares it with the set that
//! was. A new one fires, one that is gone resolves, and one still firing
//! after `repeat` is sent again as a reminder. So a restart that reloads
//! the book loses nothing, and a round that is skipped is caught up by
//! the next.
//!
//! The board's own gateway is one alert for the board: while it does not
//! answer, the targets behind it that go Not Working are held (they are
//! not alerted on their own), and those still down when it answers again
//! fire then. A target that was already alerted before its gateway died
//! stays alerted; it does not resolve because it is held.
//!
//! Silences keep an alert from being sent, not from being tracked: a
//! firing alert that was silenced is sent once the silence ends, and an
//! alert that was never sent resolves without a message.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::probe::{Gateway, Status};

/// Rounds with its gateway back in which a held target does not answer
/// before it is alerted on its own.
pub const HELD_ROUNDS: u8 = 2;

/// What raises an alert, beyond a target going Not Working (always on).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    /// A target going Degraded.
    pub degraded: bool,
    /// A router on a target's path changing (a one-shot notice).
    pub path_change: bool,
    /// The upstream unreachable for this long; `None`: never.
    pub upstream_after: Option<Duration>,
    /// Send again while still firing, this often; `None`: never.
    pub repeat: Option<Duration>,
    /// Send a message when an alert resolves (to every channel but
    /// Alertmanager, which is always told, so that it closes the alert).
    pub send_resolved: bool,
}

impl Default for AlertRules {
    fn default() -> AlertRules {
        AlertRules {
            degraded: false,
            path_change: false,
            upstream_after: Some(Duration::from_secs(15 * 60)),
            repeat: Some(Duration::from_secs(4 * 3600)),
            send_resolved: true,
        }
    }
}

/// One target as the round left it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetObserved {
    pub key: String,
    pub name: Option<String>,
    pub group: Option<String>,
    /// The reported (smoothed) status; `None` until first probed.
    pub status: Option<Status>,
    pub gateway: Option<Gateway>,
    /// Why it is not working, as the dashboard says it.
    pub cause: Option<String>,
    /// Whether it answered in the last round itself (before smoothing).
    pub answered: bool,
}

/// What a round observed that alerts are made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub targets: Vec<TargetObserved>,
    /// The board's own default gateways that do not answer.
    pub gateways_down: Vec<IpAddr>,
    /// Since when the upstream cannot be reached, if it cannot.
    pub upstream_unreachable_since: Option<Timestamp>,
    /// The store's failure, while it fails (disk full, damaged file).
    pub store_fault: Option<String>,
    /// Path changes of this round: target key and what changed.
    pub path_changes: Vec<(String, String)>,
}

/// What an alert is about. Its [`AlertKind::key`] names it in the book.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertKind {
    /// A target is Not Working.
    Down { target: String },
    /// A target is Degraded.
    Degraded { target: String },
    /// One of the board's own gateways does not answer.
    Gateway { addr: IpAddr },
    /// The central MongoDB has been unreachable for too long.
    Upstream,
    /// The board's store fails.
    Store,
}

impl AlertKind {
    /// A stable name: `down/198.18.0.7`, `gateway/198.18.1.1`, `upstream`.
    pub fn key(&self) -> String {
        match self {
            AlertKind::Down { target } => format!("down/{target}"),
            AlertKind::Degraded { target } => format!("degraded/{target}"),
            AlertKind::Gateway { addr } => format!("gateway/{addr}"),
            AlertKind::Upstream => "upstream".to_string(),
            AlertKind::Store => "store".to_string(),
        }
    }

    /// The kind a [`AlertKind::key`] names; `None` for a key this version
    /// does not know.
    pub fn from_key(key: &str) -> Option<AlertKind> {
        match key.split_once('/') {
            Some(("down", target)) => Some(AlertKind::Down {
                target: target.to_string(),
            }),
            Some(("degraded", target)) => Some(AlertKind::Degraded {
                target: target.to_string(),
            }),
            Some(("gateway", addr)) => Some(AlertKind::Gateway {
                addr: addr.parse().ok()?,
            }),
            None if key == "upstream" => Some(AlertKind::Upstream),
            None if key == "store" => Some(AlertKind::Store),
            _ => None,
        }
    }

    /// The target it is about, if it is about one.
    pub fn target(&self) -> Option<&str> {
        match self {
            AlertKind::Down { target } | AlertKind::Degraded { target } => Some(target),
            _ => None,
        }
    }
}

/// A firing alert as the book keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    pub kind: AlertKind,
    /// When it started firing (not when it was first sent).
    pub since: Timestamp,
    /// When a message about it last went out; `None`: never (silenced).
    pub last_sent: Option<Timestamp>,
    /// What the message says: the cause, or the targets behind a gateway.
    pub detail: String,
    /// The target's name and group, as the sheet gives them (the group
    /// also for silences by group).
    pub name: Option<String>,
    pub group: Option<String>,
}

/// What one notice says about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Firing,
    /// Still firing, `repeat` after the last message.
    Reminder,
    Resolved,
    /// A one-shot event (a path change); it neither fires nor resolves.
    Event,
    /// A test message, asked for by an admin, through every channel.
    Test,
}

/// One line of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: NoticeKind,
    /// The alert's key, or `path/<target>` for a path change.
    pub key: String,
    /// The target it is about, if any.
    pub target: Option<String>,
    /// The target's name and group, if it is about a target.
    pub name: Option<String>,
    pub group: Option<String>,
    /// When it happened: the alert's start, or its end when resolved.
    pub at: Timestamp,
    pub detail: String,
}

/// Who a silence keeps quiet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SilenceScope {
    /// One target, by key.
    Target(String),
    /// Every target of a group.
    Group(String),
    /// Everything the board sends.
    Board,
}

impl SilenceScope {
    /// A stable name: `board`, `target/198.19.3.10`, `group/lan`.
    pub fn key(&self) -> String {
        match self {
            SilenceScope::Board => "board".to_string(),
            SilenceScope::Target(key) => format!("target/{key}"),
            SilenceScope::Group(group) => format!("group/{group}"),
        }
    }

    /// The scope a [`SilenceScope::key`] names.
    pub fn from_key(key: &str) -> Option<SilenceScope> {
        match key.split_once('/') {
            Some(("target", t)) => Some(SilenceScope::Target(t.to_string())),
            Some(("group", g)) => Some(SilenceScope::Group(g.to_string())),
            None if key == "board" => Some(SilenceScope::Board),
            _ => None,
        }
    }
}

/// A silence, until a time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Silence {
    #[serde(serialize_with = "scope_key")]
    pub scope: SilenceScope,
    pub until: Timestamp,
    /// When it was asked for, and why (as the admin said).
    pub made_at: Timestamp,
    pub reason: Option<String>,
}

fn scope_key<S: serde::Serializer>(scope: &SilenceScope, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&scope.key())
}

impl Silence {
    /// Whether this silence keeps the alert on `target` (of `group`) quiet
    /// at `now`; board-level alerts only by a board silence.
    pub fn covers(&self, target: Option<&str>, group: Option<&str>, now: Timestamp) -> bool {
        if now >= self.until {
            return false;
        }
        match &self.scope {
            SilenceScope::Board => true,
            SilenceScope::Target(key) => target == Some(key.as_str()),
            SilenceScope::Group(g) => target.is_some() && group == Some(g.as_str()),
        }
    }
}

/// The alerts that are firing, by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertBook {
    active: BTreeMap<String, ActiveAlert>,
    /// Targets that went Not Working behind a dead board gateway and were
    /// not alerted; see [`AlertBook::update_held`].
    /// With each, the rounds since its gateway answered again in which it
    /// did not answer itself.
    held: BTreeMap<String, u8>,
}

impl AlertBook {
    /// A book that starts from what was firing before a restart.
    pub fn resume(active: impl IntoIterator<Item = ActiveAlert>) -> AlertBook {
        AlertBook {
            active: active.into_iter().map(|a| (a.kind.key(), a)).collect(),
            held: Default::default(),
        }
    }

    /// What is firing now, in key order.
    pub fn active(&self) -> impl Iterator<Item = &ActiveAlert> {
        self.active.values()
    }

    /// Take in a round: fire, remind and resolve, and return what to send
    /// in the order the message lists it (board-level first, then targets
    /// by key; firing before reminders before resolved; events last).
    pub fn observe(
        &mut self,
        seen: &Observed,
        rules: &AlertRules,
        silences: &[Silence],
        now: Timestamp,
    ) -> Vec<Notice> {
        self.update_held(seen);
        let wanted = self.wanted(seen, rules, now);
        let mut notices = Vec::new();
        let gone: Vec<String> = self
            .active
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            let alert = self.active.remove(&key).expect("listed above");
            // Always noticed when it was sent: Alertmanager must hear that
            // it ended; `send_resolved` is applied per channel.
            if alert.last_sent.is_some() {
                let mut n = notice(NoticeKind::Resolved, &alert, now);
                // Not back: no longer watched. Say so, not the old cause.
                if let Some(t) = alert.kind.target() {
                    if !seen.targets.iter().any(|o| o.key == t) {
                        n.detail =
                            format!("{t}: removed from the targets sheet; no longer watched");
                    }
                }
                notices.push(n);
            }
        }
        for (key, fresh) in wanted {
            let alert = self.active.entry(key).or_insert(fresh.clone());
            // The latest words: the cause or the list behind a gateway.
            alert.detail = fresh.detail;
            alert.name = fresh.name;
            alert.group = fresh.group;
            let target = alert.kind.target();
            if silences
                .iter()
                .any(|s| s.covers(target, alert.group.as_deref(), now))
            {
                continue;
            }
            let kind = match alert.last_sent {
                None => NoticeKind::Firing,
                Some(sent) => match rules.repeat {
                    Some(every) if now.since(sent) >= every => NoticeKind::Reminder,
                    _ => continue,
                },
            };
            alert.last_sent = Some(now);
            notices.push(notice(kind, alert, alert.since));
        }
        if rules.path_change {
            for (target, what) in &seen.path_changes {
                let group = seen
                    .targets
                    .iter()
                    .find(|t| &t.key == target)
                    .and_then(|t| t.group.as_deref());
                if silences.iter().any(|s| s.covers(Some(target), group, now)) {
                    continue;
                }
                let t = seen.targets.iter().find(|t| &t.key == target);
                notices.push(Notice {
                    kind: NoticeKind::Event,
                    key: format!("path/{target}"),
                    target: Some(target.clone()),
                    name: t.and_then(|t| t.name.clone()),
                    group: group.map(str::to_string),
                    at: now,
                    detail: what.clone(),
                });
            }
        }
        notices.sort_by_key(|n| (order(n.kind), n.target.is_some(), n.key.clone()));
        notices
    }

    /// Who stays held. A target is held while it is Not Working behind a
    /// board gateway that does not answer. Once the gateway answers, the
    /// target needs a round or two to show it (the round that saw the
    /// gateway back may have pinged the target before, and its reported
    /// status lags by the smoothing rounds). So a held target is let go,
    /// to be alerted on its own, only after [`HELD_ROUNDS`] rounds with its
    /// gateway up in which it did not answer itself; one that answers is
    /// on its way back and stays held until its status says so.
    fn update_held(&mut self, seen: &Observed) {
        for t in &seen.targets {
            let behind_dead =
                matches!(t.gateway, Some(Gateway::Via(g)) if seen.gateways_down.contains(&g));
            let down = t.status == Some(Status::NotWorking);
            let alerted = self.active.contains_key(&format!("down/{}", t.key));
            if !down || alerted {
                self.held.remove(&t.key);
            } else if behind_dead {
                self.held.insert(t.key.clone(), 0);
            } else if let Some(silent) = self.held.get_mut(&t.key) {
                *silent = if t.answered { 0 } else { *silent + 1 };
                if *silent >= HELD_ROUNDS {
                    self.held.remove(&t.key);
                }
            }
        }
        let known: std::collections::BTreeSet<&str> =
            seen.targets.iter().map(|t| t.key.as_str()).collect();
        self.held.retain(|k, _| known.contains(k.as_str()));
    }

    /// The alerts that should be firing after this round, keyed, each as
    /// it would start now.
    fn wanted(
        &self,
        seen: &Observed,
        rules: &AlertRules,
        now: Timestamp,
    ) -> BTreeMap<String, ActiveAlert> {
        let mut wanted = BTreeMap::new();
        let mut add = |kind: AlertKind, detail: String, t: Option<&TargetObserved>| {
            let alert = ActiveAlert {
                kind,
                since: now,
                last_sent: None,
                detail,
                name: t.and_then(|t| t.name.clone()),
                group: t.and_then(|t| t.group.clone()),
            };
            wanted.insert(alert.kind.key(), alert);
        };
        for &addr in &seen.gateways_down {
            let behind: Vec<&str> = seen
                .targets
                .iter()
                .filter(|t| t.gateway == Some(Gateway::Via(addr)))
                .map(|t| t.key.as_str())
                .collect();
            let detail = if behind.is_empty() {
                format!("the board's gateway {addr} does not answer")
            } else {
                format!(
                    "the board's gateway {addr} does not answer; behind it: {}",
                    behind.join(", ")
                )
            };
            add(AlertKind::Gateway { addr }, detail, None);
        }
        for t in &seen.targets {
            let held = self.held.contains_key(&t.key);
            let kind = match t.status {
                Some(Status::NotWorking) => AlertKind::Down {
                    target: t.key.clone(),
                },
                Some(Status::Degraded) if rules.degraded => AlertKind::Degraded {
                    target: t.key.clone(),
                },
                _ => continue,
            };
            // Held: only what was already firing stays; nothing new starts
            // until the target is let go.
            if held && !self.active.contains_key(&kind.key()) {
                continue;
            }
            let detail = match (&t.name, &t.cause) {
                (Some(n), Some(c)) => format!("{} ({n}): {c}", t.key),
                (Some(n), None) => format!("{} ({n})", t.key),
                (None, Some(c)) => format!("{}: {c}", t.key),
                (None, None) => t.key.clone(),
            };
            add(kind, detail, Some(t));
        }
        if let (Some(since), Some(after)) = (seen.upstream_unreachable_since, rules.upstream_after)
        {
            if now.since(since) >= after {
                add(
                    AlertKind::Upstream,
                    "the central MongoDB cannot be reached; results wait on the board".to_string(),
                    None,
                );
            }
        }
        if let Some(fault) = &seen.store_fault {
            add(AlertKind::Store, fault.clone(), None);
        }
        // The upstream's started when it went away, not when the wait ran
        // out.
        if let (Some(a), Some(since)) = (
            wanted.get_mut(&AlertKind::Upstream.key()),
            seen.upstream_unreachable_since,
        ) {
            a.since = since;
        }
        // An alert already firing keeps its start.
        for (key, alert) in wanted.iter_mut() {
            if let Some(old) = self.active.get(key) {
                alert.since = old.since;
                alert.last_sent = old.last_sent;
            }
        }
        wanted
    }
}

fn notice(kind: NoticeKind, alert: &ActiveAlert, at: Timestamp) -> Notice {
    Notice {
        kind,
        key: alert.kind.key(),
        target: alert.kind.target().map(str::to_string),
        name: alert.name.clone(),
        group: alert.group.clone(),
        at,
        detail: alert.detail.clone(),
    }
}

fn order(kind: NoticeKind) -> u8 {
    match kind {
        NoticeKind::Firing => 0,
        NoticeKind::Reminder => 1,
        NoticeKind::Resolved => 2,
        NoticeKind::Event => 3,
        NoticeKind::Test => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const GW: &str = "198.18.1.1";

    fn gw() -> IpAddr {
        GW.parse().unwrap()
    }

    fn target(key: &str, status: Status) -> TargetObserved {
        TargetObserved {
            key: key.into(),
            name: None,
            group: Some("lan".into()),
            status: Some(status),
            gateway: Some(Gateway::Via(gw())),
            cause: None,
            answered: status != NotWorking,
        }
    }

    fn seen(targets: Vec<TargetObserved>) -> Observed {
        Observed {
            targets,
            ..Observed::default()
        }
    }

    fn at(min: i64) -> Timestamp {
        Timestamp(1_800_000_000_000 + min * MIN)
    }

    fn kinds(notices: &[Notice]) -> Vec<(NoticeKind, &str)> {
        notices.iter().map(|n| (n.kind, n.key.as_str())).collect()
    }

    use NoticeKind::*;
    use Status::*;

    #[test]
    fn a_target_down_fires_once_and_resolves_when_back() {
        let mut book = AlertBook::default();
        let rules = AlertRules::default();
        let down = seen(vec![target("198.19.3.10", NotWorking)]);
        let n = book.observe(&down, &rules, &[], at(0));
        assert_eq!(kinds(&n), [(Firing, "down/198.19.3.10")]);
        assert!(book.observe(&down, &rules, &[], at(1)).is_empty());
        let up = seen(vec![target("198.19.3.10", Working)]);
        let n = book.observe(&up, &rules, &[], at(2));
        assert_eq!(kinds(&n), [(Resolved, "down/198.19.3.10")]);
        assert_eq!(n[0].at, at(2), "resolved says when it ended");
        assert_eq!(book.active().count(), 0);
    }

    #[test]
    fn many_targets_down_at_once_are_each_noticed_in_one_round() {
        let mut book = AlertBook::default();
        let all: Vec<_> = (1..=200)
            .map(|i| {
                let mut t = target(&format!("198.19.4.{i}"), NotWorking);
                t.gateway = Some(Gateway::Direct);
                t
            })
            .collect();
        let n = book.observe(&seen(all.clone()), &AlertRules::default(), &[], at(0));
        assert_eq!(
            n.len(),
            200,
            "one notice each: one message lists them (board.rs)"
        );
        assert!(n.iter().all(|n| n.kind == Firing));
        assert!(book
            .observe(&seen(all), &AlertRules::default(), &[], at(1))
            .is_empty());
    }

    #[test]
    fn a_dead_gateway_is_one_alert_and_holds_the_targets_behind_it() {
        let mut book = AlertBook::default();
        let rules = AlertRules::default();
        let mut dead = seen(vec![
            target("198.19.3.10", NotWorking),
            target("198.19.3.11", NotWorking),
        ]);
        dead.gateways_down = vec![gw()];
        let n = book.observe(&dead, &rules, &[], at(0));
        assert_eq!(kinds(&n), [(Firing, "gateway/198.18.1.1")]);
        assert!(
            n[0].detail.contains("behind it: 198.19.3.10, 198.19.3.11"),
            "{}",
            n[0].detail
        );
        assert!(book.observe(&dead, &rules, &[], at(1)).is_empty());

        // The gateway answers again; one target is back, one still down.
        let back = seen(vec![
            target("198.19.3.10", Working),
            target("198.19.3.11", NotWorking),
        ]);
        let n = book.observe(&back, &rules, &[], at(2));
        assert_eq!(kinds(&n), [(Resolved, "gateway/198.18.1.1")]);
        // Still silent in the next round with its gateway up: its own alert.
        let n = book.observe(&back, &rules, &[], at(3));
        assert_eq!(kinds(&n), [(Firing, "down/198.19.3.11")]);
    }

    #[test]
    fn a_held_target_on_its_way_back_is_not_alerted_when_the_gateway_returns() {
        let mut book = AlertBook::default();
        let rules = AlertRules::default();
        let mut dead = seen(vec![target("198.19.3.10", NotWorking)]);
        dead.gateways_down = vec![gw()];
        book.observe(&dead, &rules, &[], at(0));
        // The gateway answers; the target answered this round, but its
        // reported status is still Not Working for a smoothing round.
        let mut lagging = target("198.19.3.10", NotWorking);
        lagging.answered = true;
        let n = book.observe(&seen(vec![lagging]), &rules, &[], at(1));
        assert_eq!(kinds(&n), [(Resolved, "gateway/198.18.1.1")]);
        let n = book.observe(
            &seen(vec![target("198.19.3.10", Working)]),
            &rules,
            &[],
            at(2),
        );
        assert!(n.is_empty(), "{n:?}");
    }

    #[test]
    fn a_target_alerted_before_its_gateway_died_stays_alerted() {
        let mut book = AlertBook::default();
        let rules = AlertRules::default();
        book.observe(
            &seen(vec![target("198.19.3.10", NotWorking)]),
            &rules,
            &[],
            at(0),
        );
        let mut dead = seen(vec![target("198.19.3.10", NotWorking)]);
        dead.gateways_down = vec![gw()];
        let n = book.observe(&dead, &rules, &[], at(1));
        assert_eq!(
            kinds(&n),
            [(Firing, "gateway/198.18.1.1")],
            "no resolve for the held target"
        );
        assert!(book.active().any(|a| a.kind.key() == "down/198.19.3.10"));
    }

    #[test]
    fn reminders_follow_repeat_and_zero_means_never() {
        let mut book = AlertBook::default();
        let down = seen(vec![target("198.19.3.10", NotWorking)]);
        let rules = AlertRules {
            repeat: Some(Duration::from_secs(3600)),
            ..AlertRules::default()
        };
        book.observe(&down, &rules, &[], at(0));
        assert!(book.observe(&down, &rules, &[], at(59)).is_empty());
        let n = book.observe(&down, &rules, &[], at(60));
        assert_eq!(kinds(&n), [(Reminder, "down/198.19.3.10")]);
        assert_eq!(n[0].at, at(0), "a reminder says since when");
        assert!(book.observe(&down, &rules, &[], at(119)).is_empty());
        assert_eq!(
            kinds(&book.observe(&down, &rules, &[], at(120))),
            [(Reminder, "down/198.19.3.10")]
        );

        let never = AlertRules {
            repeat: None,
            ..AlertRules::default()
        };
        let mut book = AlertBook::default();
        book.observe(&down, &never, &[], at(0));
        assert!(book.observe(&down, &never, &[], at(10_000)).is_empty());
    }

    #[test]
    fn degraded_and_path_changes_are_off_unless_asked_for() {
        let mut seen = seen(vec![target("198.19.3.10", Degraded)]);
        seen.path_changes = vec![("198.19.3.10".into(), "198.18.2.2 > 198.18.5.2".into())];
        let mut book = AlertBook::default();
        assert!(book
            .observe(&seen, &AlertRules::default(), &[], at(0))
            .is_empty());
        let on = AlertRules {
            degraded: true,
            path_change: true,
            ..AlertRules::default()
        };
        let mut book = AlertBook::default();
        let n = book.observe(&seen, &on, &[], at(0));
        assert_eq!(
            kinds(&n),
            [
                (Firing, "degraded/198.19.3.10"),
                (Event, "path/198.19.3.10")
            ]
        );
        // A path change is said once; it does not resolve.
        seen.path_changes.clear();
        assert!(book.observe(&seen, &on, &[], at(1)).is_empty());
    }

    #[test]
    fn the_upstream_fires_after_its_time_and_the_store_while_it_fails() {
        let mut book = AlertBook::default();
        let rules = AlertRules {
            upstream_after: Some(Duration::from_secs(600)),
            ..AlertRules::default()
        };
        let mut s = Observed {
            upstream_unreachable_since: Some(at(0)),
            ..Observed::default()
        };
        assert!(book.observe(&s, &rules, &[], at(9)).is_empty());
        let fired = book.observe(&s, &rules, &[], at(10));
        assert_eq!(kinds(&fired), [(Firing, "upstream")]);
        assert_eq!(fired[0].at, at(0), "since it went away");
        s.upstream_unreachable_since = None;
        s.store_fault = Some("the file system is full".into());
        assert_eq!(
            kinds(&book.observe(&s, &rules, &[], at(11))),
            [(Firing, "store"), (Resolved, "upstream")]
        );
    }

    #[test]
    fn a_silenced_alert_is_sent_when_the_silence_ends_and_never_resolves_unsent() {
        let rules = AlertRules::default();
        let down = seen(vec![target("198.19.3.10", NotWorking)]);
        let by_group = [Silence {
            scope: SilenceScope::Group("lan".into()),
            until: at(30),
            made_at: at(0),
            reason: None,
        }];
        let mut book = AlertBook::default();
        assert!(book.observe(&down, &rules, &by_group, at(0)).is_empty());
        let n = book.observe(&down, &rules, &by_group, at(30));
        assert_eq!(kinds(&n), [(Firing, "down/198.19.3.10")]);
        assert_eq!(n[0].at, at(0), "it says when it really started");

        // Down and back within a silence: nothing at all.
        let mut book = AlertBook::default();
        let by_target = [Silence {
            scope: SilenceScope::Target("198.19.3.10".into()),
            until: at(30),
            made_at: at(0),
            reason: None,
        }];
        book.observe(&down, &rules, &by_target, at(0));
        let up = seen(vec![target("198.19.3.10", Working)]);
        assert!(book.observe(&up, &rules, &by_target, at(1)).is_empty());

        // A group silence does not cover the board's own alerts; a board
        // silence covers everything.
        let dead = Observed {
            gateways_down: vec![gw()],
            ..Observed::default()
        };
        let mut book = AlertBook::default();
        assert_eq!(book.observe(&dead, &rules, &by_group, at(0)).len(), 1);
        let board = [Silence {
            scope: SilenceScope::Board,
            until: at(30),
            made_at: at(0),
            reason: None,
        }];
        let mut book = AlertBook::default();
        assert!(book.observe(&dead, &rules, &board, at(0)).is_empty());
    }

    #[test]
    fn a_target_taken_off_the_sheet_resolves_saying_so() {
        let rules = AlertRules::default();
        let mut book = AlertBook::default();
        book.observe(
            &seen(vec![target("198.19.3.10", NotWorking)]),
            &rules,
            &[],
            at(0),
        );
        let n = book.observe(&seen(vec![]), &rules, &[], at(1));
        assert_eq!(kinds(&n), [(Resolved, "down/198.19.3.10")]);
        assert!(
            n[0].detail.contains("removed from the targets sheet"),
            "{}",
            n[0].detail
        );
    }

    #[test]
    fn a_resumed_book_does_not_fire_again() {
        let rules = AlertRules::default();
        let down = seen(vec![target("198.19.3.10", NotWorking)]);
        let mut book = AlertBook::default();
        book.observe(&down, &rules, &[], at(0));
        let mut again = AlertBook::resume(book.active().cloned().collect::<Vec<_>>());
        assert!(again.observe(&down, &rules, &[], at(5)).is_empty());
        let up = seen(vec![target("198.19.3.10", Working)]);
        assert_eq!(
            kinds(&again.observe(&up, &rules, &[], at(6))),
            [(Resolved, "down/198.19.3.10")]
        );
    }

    #[test]
    fn keys_read_back_as_their_kind() {
        for kind in [
            AlertKind::Down {
                target: "198.19.3.10".into(),
            },
            AlertKind::Degraded {
                target: "printer.lan".into(),
            },
            AlertKind::Gateway {
                addr: "2001:db8:1::1".parse().unwrap(),
            },
            AlertKind::Upstream,
            AlertKind::Store,
        ] {
            assert_eq!(AlertKind::from_key(&kind.key()), Some(kind));
        }
        assert_eq!(AlertKind::from_key("something/new"), None);
        assert_eq!(AlertKind::from_key("gateway/not-an-address"), None);
    }
}
