//! Alerting on the board's dashboard: the header's line (alerts firing,
//! silences), the `/alerts` page and its JSON (`/api/v1/alerts`), and the
//! reading of a `POST /admin/silence` request. Pure: the snapshot, the
//! sender's counts and the store's recent notifications in; markup, a
//! document or a [`Silence`] out.

use std::time::Duration;

use maud::{html, Markup};
use serde::Serialize;

use crate::alerts::sender::Activity;
use crate::alerts::{ActiveAlert, AlertsView, Silence, SilenceScope};
use crate::clock::Timestamp;
use crate::config::parse_duration;
use crate::http::fmt;
use crate::http::layout::{layout, refresh_secs};
use crate::http::query::{param, parse_pairs};
use crate::monitor::Snapshot;
use crate::store::{NotificationRecord, Outcome};

/// How many notifications the page and the API list.
pub const NOTIFICATIONS_SHOWN: usize = 50;

/// The longest silence: a forgotten one must not hide alerts for ever.
pub const LONGEST_SILENCE: Duration = Duration::from_secs(31 * 86_400);

/// The longest reason kept with a silence.
const MAX_REASON: usize = 200;

/// The header's line: what fires, what is silenced, a link to the page.
pub fn header_line(view: &AlertsView, now: Timestamp) -> Markup {
    html! {
        p.alerting {
            @if view.channels.is_empty() {
                "alerts: " span.sub { "no channel configured" }
            } @else if view.firing.is_empty() {
                "alerts: " span.ok { "none firing" }
            } @else {
                "alerts: " span.bad { (view.firing.len()) " firing" }
                " (" (first_words(&view.firing)) ")"
            }
            @for s in &view.silences {
                " · " span.warn { "silenced" } " " (scope_text(&s.scope))
                " for " (fmt::duration(s.until.since(now)))
            }
            " · " a href="/alerts" { "notifications" }
        }
    }
}

/// `down 198.19.3.10, gateway 198.18.1.1, …`: the first few firing.
fn first_words(firing: &[ActiveAlert]) -> String {
    const SHOWN: usize = 3;
    let mut words: Vec<String> = firing
        .iter()
        .take(SHOWN)
        .map(|a| a.kind.key().replacen('/', " ", 1))
        .collect();
    if firing.len() > SHOWN {
        words.push(format!("and {} more", firing.len() - SHOWN));
    }
    words.join(", ")
}

fn scope_text(scope: &SilenceScope) -> String {
    match scope {
        SilenceScope::Board => "the whole board".to_string(),
        SilenceScope::Target(t) => format!("target {t}"),
        SilenceScope::Group(g) => format!("group {g}"),
    }
}

fn outcome_text(outcome: Option<Outcome>) -> (&'static str, &'static str) {
    match outcome {
        None => ("waiting", "warn"),
        Some(Outcome::Delivered) => ("delivered", "ok"),
        Some(Outcome::Refused) => ("refused", "bad"),
        Some(Outcome::GivenUp) => ("given up", "bad"),
    }
}

/// `GET /alerts`: the alerts firing, the silences, what each channel
/// did since start, and the recent notifications (or why the store could
/// not list them).
pub fn page(
    snap: &Snapshot,
    activity: &Activity,
    notifications: Result<&[NotificationRecord], &str>,
    now: Timestamp,
) -> Markup {
    let view = &snap.alerts;
    let body = html! {
        header.top {
            h1 { "Alerts " span.board { (snap.board.id) } }
            p.sub { a href="/" { "← all targets" } }
            (header_line(view, now))
        }
        main {
            h2 { "Firing" }
            @if view.firing.is_empty() {
                p.none { "Nothing is firing." }
            } @else {
                div.tablewrap { table {
                    thead { tr { th { "Alert" } th { "Since" } th { "Last sent" } th { "Detail" } } }
                    tbody {
                        @for a in &view.firing {
                            tr {
                                td { (a.kind.key()) @if let Some(n) = &a.name { " (" (n) ")" } }
                                td { (fmt::time(a.since)) }
                                td {
                                    @match a.last_sent {
                                        Some(t) => (fmt::ago(now, t)),
                                        None => span.sub { "not sent (silenced)" },
                                    }
                                }
                                td { (a.detail) }
                            }
                        }
                    }
                } }
            }
            h2 { "Silences" }
            @if view.silences.is_empty() {
                p.none { "None. " code { "POST /admin/silence?target=ADDR&for=2h" } " sets one." }
            } @else {
                ul {
                    @for s in &view.silences {
                        li {
                            (scope_text(&s.scope)) " until " (fmt::time(s.until))
                            @if let Some(r) = &s.reason { ": " (r) }
                        }
                    }
                }
            }
            h2 { "Channels" }
            @if view.channels.is_empty() {
                p.none { "No channel is configured: add an [alerts] section to the config file." }
            } @else {
                (channel_table(view, activity, now))
            }
            h2 { "Recent notifications" }
            @match notifications {
                Err(e) => div.alert.bad role="alert" { "The history is unavailable: " (e) },
                Ok([]) => p.none { "None yet." },
                Ok(list) => (notification_table(list, now)),
            }
        }
    };
    layout(
        &format!("edgeprobe {} alerts", snap.board.id),
        Some((refresh_secs(snap.board.interval), "/alerts")),
        body,
    )
}

fn channel_table(view: &AlertsView, activity: &Activity, now: Timestamp) -> Markup {
    let count = |channel: &str, result: &'static str| activity.count(channel, result);
    html! {
        div.tablewrap { table {
            thead { tr {
                th { "Channel" } th.num { "Delivered" } th.num { "Failed attempts" }
                th.num { "Refused" } th.num { "Given up" }
            } }
            tbody {
                @for c in &view.channels {
                    tr {
                        td { (c) }
                        td.num { (count(c, "delivered")) }
                        td.num { (count(c, "failed")) }
                        td.num { (count(c, "refused")) }
                        td.num { (count(c, "given_up")) }
                    }
                }
            }
        } }
        p.sub {
            "since the board started · "
            @match activity.queued {
                None => "queue not read yet",
                Some(0) => "nothing waiting",
                Some(n) => {
                    (n) " waiting"
                    @if let Some(oldest) = activity.oldest_queued {
                        ", the oldest made " (fmt::ago(now, oldest))
                    }
                }
            }
        }
    }
}

fn notification_table(list: &[NotificationRecord], now: Timestamp) -> Markup {
    html! {
        div.tablewrap { table {
            thead { tr {
                th { "Made" } th { "Channel" } th { "Message" } th { "State" } th.num { "Attempts" }
                th { "Last error" }
            } }
            tbody {
                @for n in list {
                    @let (state, class) = outcome_text(n.outcome);
                    tr {
                        td { (fmt::time(n.made_at)) }
                        td { (n.channel) }
                        td { (n.subject) }
                        td {
                            span class=(class) { (state) } " "
                            @if n.outcome.is_none() {
                                span.sub { "next try " (fmt::ago(now, n.at)) }
                            } @else {
                                span.sub { (fmt::ago(now, n.at)) }
                            }
                        }
                        td.num { (n.attempts) }
                        td { (n.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        } }
    }
}

/// `GET /api/v1/alerts`.
#[derive(Debug, Serialize)]
pub struct AlertsDoc<'a> {
    pub channels: Vec<ChannelDoc<'a>>,
    pub firing: Vec<FiringDoc<'a>>,
    pub silences: &'a [Silence],
    /// Waiting notifications after the sender's last pass (`null` before
    /// its first), and when the oldest was made.
    pub queued: Option<u64>,
    pub oldest_queued: Option<Timestamp>,
    /// Newest first; waiting ones have no `outcome` and `at` is their
    /// next try, settled ones have `at` when they settled.
    pub notifications: Vec<NotificationDoc<'a>>,
    /// Why `notifications` is empty when the history could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ChannelDoc<'a> {
    pub channel: &'a str,
    pub delivered: u64,
    pub failed: u64,
    pub refused: u64,
    pub given_up: u64,
}

#[derive(Debug, Serialize)]
pub struct FiringDoc<'a> {
    pub alert: String,
    pub target: Option<&'a str>,
    pub name: Option<&'a str>,
    pub group: Option<&'a str>,
    pub since: Timestamp,
    pub last_sent: Option<Timestamp>,
    pub detail: &'a str,
}

#[derive(Debug, Serialize)]
pub struct NotificationDoc<'a> {
    pub id: i64,
    pub channel: &'a str,
    pub made_at: Timestamp,
    pub subject: &'a str,
    pub outcome: Option<&'static str>,
    pub attempts: u32,
    pub last_error: Option<&'a str>,
    pub at: Timestamp,
}

/// The document of `/api/v1/alerts`.
pub fn document<'a>(
    view: &'a AlertsView,
    activity: &'a Activity,
    notifications: &'a [NotificationRecord],
) -> AlertsDoc<'a> {
    let count = |channel: &str, result: &'static str| activity.count(channel, result);
    AlertsDoc {
        channels: view
            .channels
            .iter()
            .map(|c| ChannelDoc {
                channel: c,
                delivered: count(c, "delivered"),
                failed: count(c, "failed"),
                refused: count(c, "refused"),
                given_up: count(c, "given_up"),
            })
            .collect(),
        firing: view
            .firing
            .iter()
            .map(|a| FiringDoc {
                alert: a.kind.key(),
                target: a.kind.target(),
                name: a.name.as_deref(),
                group: a.group.as_deref(),
                since: a.since,
                last_sent: a.last_sent,
                detail: &a.detail,
            })
            .collect(),
        silences: &view.silences,
        queued: activity.queued,
        oldest_queued: activity.oldest_queued,
        notifications: notifications
            .iter()
            .map(|n| NotificationDoc {
                id: n.id,
                channel: &n.channel,
                made_at: n.made_at,
                subject: &n.subject,
                outcome: n.outcome.map(Outcome::as_str),
                attempts: n.attempts,
                last_error: n.last_error.as_deref(),
                at: n.at,
            })
            .collect(),
        notifications_error: None,
    }
}

/// The silence a `POST /admin/silence` query asks for: exactly one of
/// `target=KEY`, `group=NAME` or `board`, a duration `for=2h` (`for=0`
/// lifts the scope's silence), and an optional `reason=`. A target or
/// group must be on the sheet, so a typo does not silence nothing.
pub fn parse_silence(
    query: Option<&str>,
    snap: &Snapshot,
    now: Timestamp,
) -> Result<Silence, String> {
    let pairs = parse_pairs(query.unwrap_or(""));
    let known = ["target", "group", "board", "for", "reason"];
    if let Some((unknown, _)) = pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(format!(
            "unknown parameter {unknown:?}; use target=, group= or board, with for= and reason="
        ));
    }
    let target = param(query, "target");
    let group = param(query, "group");
    let board = match pairs.iter().find(|(k, _)| k == "board") {
        None => false,
        Some((_, v)) if ["", "1", "true", "yes"].contains(&v.as_str()) => true,
        Some((_, v)) => {
            return Err(format!(
                "board={v:?}: write just `board` (or board=1) to silence the whole board"
            ))
        }
    };
    let length = match param(query, "for").as_deref().map(str::trim) {
        None => None,
        Some("0") => Some(Duration::ZERO),
        Some(text) => Some(parse_duration(text).map_err(|e| format!("for: {e}"))?),
    };
    // A silence can always be lifted, even once its target or group has
    // left the sheet.
    let lifting = length == Some(Duration::ZERO);
    let scope = match (target, group, board) {
        (Some(t), None, false) => {
            if !lifting && snap.target(&t).is_none() {
                return Err(format!(
                    "no target {t:?} on the sheet; name it by its key as the dashboard shows it \
                     (its address or host name)"
                ));
            }
            SilenceScope::Target(t)
        }
        (None, Some(g), false) => {
            if !lifting
                && !snap
                    .targets
                    .iter()
                    .any(|t| t.group.as_deref() == Some(g.as_str()))
            {
                return Err(format!("no target on the sheet is in group {g:?}"));
            }
            SilenceScope::Group(g)
        }
        (None, None, true) => SilenceScope::Board,
        (None, None, false) => {
            return Err("say what to silence: target=ADDR, group=NAME or board".into())
        }
        _ => return Err("silence one thing at a time: target=, group= or board".into()),
    };
    let Some(length) = length else {
        return Err("say for how long, e.g. for=2h (for=0 lifts the silence)".into());
    };
    if length > LONGEST_SILENCE {
        return Err(format!(
            "for: at most {} (a forgotten silence must not hide alerts for ever)",
            fmt::duration(LONGEST_SILENCE)
        ));
    }
    let reason = param(query, "reason")
        .map(|r| {
            r.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(MAX_REASON)
                .collect::<String>()
                .trim()
                .to_string()
        })
        .filter(|r| !r.is_empty());
    Ok(Silence {
        scope,
        until: now.add(length),
        made_at: now,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{self, NOW};
    use super::*;

    #[test]
    fn a_silence_names_one_scope_on_the_sheet_for_a_bounded_time() {
        let snap = testdata::snapshot();
        let ok = parse_silence(
            Some("target=198.18.0.1&for=2h&reason=swap%0Aport"),
            &snap,
            NOW,
        )
        .unwrap();
        assert_eq!(ok.scope, SilenceScope::Target("198.18.0.1".into()));
        assert_eq!(ok.until, NOW.add(Duration::from_secs(7200)));
        assert_eq!(
            ok.reason.as_deref(),
            Some("swap port"),
            "control characters go"
        );
        let board = parse_silence(Some("board&for=30m"), &snap, NOW).unwrap();
        assert_eq!(board.scope, SilenceScope::Board);
        let longest = parse_silence(Some("board&for=31d"), &snap, NOW).unwrap();
        assert_eq!(longest.until, NOW.add(Duration::from_secs(31 * 86_400)));
        let lift = parse_silence(Some("board&for=0"), &snap, NOW).unwrap();
        assert_eq!(lift.until, NOW, "ends at once: lifts it");
        let gone = parse_silence(Some("target=198.18.9.9&for=0"), &snap, NOW).unwrap();
        assert_eq!(
            gone.scope,
            SilenceScope::Target("198.18.9.9".into()),
            "lifted off the sheet"
        );

        let refused = [
            ("", "say what to silence"),
            ("for=2h", "say what to silence"),
            ("target=198.18.0.1", "for how long"),
            ("board=false&for=1h", "write just `board`"),
            ("target=198.18.0.1&board&for=1h", "one thing at a time"),
            ("target=198.18.9.9&for=1h", "no target \"198.18.9.9\""),
            ("group=nope&for=1h", "in group \"nope\""),
            ("board&for=soon", "for:"),
            ("board&for=32d", "at most"),
            ("board&for=1h&until=x", "unknown parameter \"until\""),
        ];
        for (query, want) in refused {
            let err = parse_silence(Some(query), &snap, NOW).unwrap_err();
            assert!(err.contains(want), "{query}: {err}");
        }
    }

    #[test]
    fn the_page_shows_what_fires_what_is_silenced_and_each_notification() {
        let snap = testdata::snapshot();
        let mut activity = Activity {
            queued: Some(1),
            oldest_queued: Some(NOW.sub(Duration::from_secs(60))),
            ..Activity::default()
        };
        activity
            .attempts
            .insert(("webhook 127.0.0.1:9000".into(), "delivered"), 4);
        let list = testdata::notifications();
        let html = page(&snap, &activity, Ok(&list), NOW).into_string();
        for want in [
            "1 firing",
            "down/198.18.0.9",
            "&lt;b&gt;no reply&lt;/b&gt;",
            "group &lt;lab&gt;",
            "router &lt;swap&gt;",
            "1 waiting",
            "delivered",
            "&lt;connection refused&gt;",
            "closet-3: 1 resolved",
        ] {
            assert!(html.contains(want), "{want} missing from the page");
        }
        assert!(!html.contains("<b>"), "sheet and error text stay escaped");
        let broken = page(&snap, &activity, Err("disk on fire"), NOW).into_string();
        assert!(broken.contains("The history is unavailable: disk on fire"));
    }

    #[test]
    fn the_document_counts_each_channel_and_lists_the_notifications() {
        let snap = testdata::snapshot();
        let mut activity = Activity::default();
        activity
            .attempts
            .insert(("webhook 127.0.0.1:9000".into(), "failed"), 2);
        let list = testdata::notifications();
        let doc = serde_json::to_value(document(&snap.alerts, &activity, &list)).unwrap();
        assert_eq!(doc["channels"][0]["failed"], 2);
        assert_eq!(doc["channels"][0]["delivered"], 0);
        assert_eq!(doc["firing"][0]["alert"], "down/198.18.0.9");
        assert_eq!(doc["firing"][0]["target"], "198.18.0.9");
        assert_eq!(doc["silences"][0]["scope"], "group/<lab>");
        assert_eq!(doc["queued"], serde_json::Value::Null);
        assert_eq!(doc["notifications"][0]["outcome"], serde_json::Value::Null);
        assert_eq!(doc["notifications"][1]["outcome"], "delivered");
    }
}
