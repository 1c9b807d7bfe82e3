//! What a round's notices look like on each channel. Pure: the notices,
//! the board and the time in; text and JSON out. One round's notices are
//! one message, however many targets they list.
//!
//! Every line says when its change happened, so a message that waited in
//! the queue while the uplink was down still tells the truth.

use serde_json::{json, Value};

use super::rules::{ActiveAlert, Notice, NoticeKind};
use super::settings::{Channel, WebhookFormat};
use crate::clock::Timestamp;

/// Discord refuses a `content` longer than this many characters.
const DISCORD_MAX: usize = 2000;

/// ntfy's default limit on a message, in bytes; a longer one becomes an
/// attachment, which a server without attachments refuses.
const NTFY_MAX: usize = 4096;

/// One message: a round's notices, from one board.
#[derive(Debug, Clone, PartialEq)]
pub struct Message<'a> {
    pub board: &'a str,
    /// When the message was made (the round's end).
    pub made_at: Timestamp,
    pub notices: &'a [Notice],
}

impl Message<'_> {
    /// A subject line: `closet-3: 2 not working, 1 resolved`.
    pub fn subject(&self) -> String {
        let count = |f: &dyn Fn(&Notice) -> bool| self.notices.iter().filter(|n| f(n)).count();
        let parts = [
            (count(&|n| n.kind == NoticeKind::Firing), "firing"),
            (count(&|n| n.kind == NoticeKind::Reminder), "still firing"),
            (count(&|n| n.kind == NoticeKind::Resolved), "resolved"),
            (count(&|n| n.kind == NoticeKind::Event), "path changes"),
            (count(&|n| n.kind == NoticeKind::Test), "test message"),
        ];
        let said: Vec<String> = parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        if said.is_empty() {
            format!("{}: nothing to report", self.board)
        } else {
            format!("{}: {}", self.board, said.join(", "))
        }
    }

    /// The subject, then one line a notice.
    pub fn text(&self) -> String {
        let mut out = self.subject();
        out.push('\n');
        for n in self.notices {
            out.push('\n');
            out.push_str(&line(n));
        }
        out.push('\n');
        out
    }

    /// edgeprobe's own JSON document (`format = "json"`).
    pub fn json(&self) -> Value {
        let notices: Vec<Value> = self
            .notices
            .iter()
            .map(|n| {
                json!({
                    "kind": kind_name(n.kind),
                    "alert": n.key,
                    "what": what(&n.key),
                    "target": n.target,
                    "name": n.name,
                    "group": n.group,
                    "at": n.at.rfc3339(),
                    "detail": n.detail,
                })
            })
            .collect();
        json!({
            "board": self.board,
            "made_at": self.made_at.rfc3339(),
            "summary": self.subject(),
            "notices": notices,
        })
    }

    /// A Slack incoming webhook's body. `&`, `<` and `>` are escaped as
    /// Slack asks, so a name from the sheet cannot write `<!channel>` and
    /// page everyone, or a link.
    pub fn slack(&self) -> Value {
        let text = self
            .text()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        json!({ "text": text })
    }

    /// A Discord webhook's body, cut to Discord's limit with a note of how
    /// many lines did not fit.
    /// `allowed_mentions` is empty: an `@everyone` in a name from the
    /// sheet is shown, not obeyed.
    pub fn discord(&self) -> Value {
        json!({
            "content": fit(&self.text(), DISCORD_MAX, chars),
            "allowed_mentions": { "parse": [] },
        })
    }
}

/// `message` as `channel` takes it: the content type and the body; `None`
/// for Alertmanager, which takes a set of alerts rather than a message
/// ([`alertmanager_alerts`]).
pub fn body_for(channel: &Channel, message: &Message) -> Option<(&'static str, Vec<u8>)> {
    let json = |v: Value| serde_json::to_vec(&v).unwrap_or_default();
    Some(match channel {
        Channel::Alertmanager { .. } => return None,
        Channel::Webhook { format, .. } => (
            "application/json",
            json(match format {
                WebhookFormat::Json => message.json(),
                WebhookFormat::Slack => message.slack(),
                WebhookFormat::Discord => message.discord(),
            }),
        ),
        // ntfy's JSON publishing: posted to the server's root, the topic
        // inside.
        Channel::Ntfy { url, .. } => (
            "application/json",
            json(json!({
                "topic": url.path().trim_matches('/'),
                "title": message.subject(),
                "message": fit(&message.text(), NTFY_MAX, str::len),
            })),
        ),
        Channel::Email { .. } => ("text/plain; charset=utf-8", message.text().into_bytes()),
    })
}

/// How long a test alert stays open in Alertmanager.
const TEST_ALERT_OPEN: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// The alerts for Alertmanager's `POST /api/v2/alerts`: every alert still
/// firing, open until `open_until` (sent again each round, so Alertmanager
/// keeps it open while it lasts and closes it if the board goes quiet), and
/// the ones that resolved this round, with `endsAt` now; a test notice is
/// an alert that ends by itself after `TEST_ALERT_OPEN`.
pub fn alertmanager_alerts(
    board: &str,
    firing: &[ActiveAlert],
    resolved: &[Notice],
    open_until: Timestamp,
) -> Value {
    let labels = |key: &str, target: Option<&str>, name: Option<&str>, group: Option<&str>| {
        let mut l = json!({ "alertname": alertname(key), "board": board, "alert": key });
        for (k, v) in [("target", target), ("name", name), ("group", group)] {
            if let Some(v) = v {
                l[k] = json!(v);
            }
        }
        l
    };
    let mut alerts: Vec<Value> = firing
        .iter()
        .map(|a| {
            let key = a.kind.key();
            json!({
                "labels": labels(&key, a.kind.target(), a.name.as_deref(), a.group.as_deref()),
                "annotations": { "summary": format!("{} {}", what(&key), a.detail) },
                "startsAt": a.since.rfc3339(),
                "endsAt": open_until.rfc3339(),
            })
        })
        .collect();
    alerts.extend(
        resolved
            .iter()
            .filter(|n| n.kind == NoticeKind::Resolved)
            .map(|n| {
                json!({
                    "labels": labels(&n.key, n.target.as_deref(), n.name.as_deref(), n.group.as_deref()),
                    "annotations": { "summary": format!("{} {}", what(&n.key), n.detail) },
                    "endsAt": n.at.rfc3339(),
                })
            }),
    );
    alerts.extend(
        resolved
            .iter()
            .filter(|n| n.kind == NoticeKind::Test)
            .map(|n| {
                json!({
                    "labels": labels(&n.key, None, None, None),
                    "annotations": { "summary": n.detail },
                    "startsAt": n.at.rfc3339(),
                    "endsAt": n.at.add(TEST_ALERT_OPEN).rfc3339(),
                })
            }),
    );
    Value::Array(alerts)
}

/// `FIRING not working: 198.19.3.10 (files): no reply (since …)`.
fn line(n: &Notice) -> String {
    let when = match n.kind {
        NoticeKind::Firing | NoticeKind::Reminder => "since",
        NoticeKind::Resolved | NoticeKind::Event | NoticeKind::Test => "at",
    };
    format!(
        "{} {}: {} ({when} {})",
        kind_name(n.kind).to_uppercase(),
        what(&n.key),
        n.detail,
        n.at.rfc3339()
    )
}

fn kind_name(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Firing => "firing",
        NoticeKind::Reminder => "reminder",
        NoticeKind::Resolved => "resolved",
        NoticeKind::Event => "event",
        NoticeKind::Test => "test",
    }
}

/// What an alert is about, from its key's first part.
fn what(key: &str) -> &'static str {
    match key.split('/').next().unwrap_or("") {
        "down" => "not working",
        "degraded" => "degraded",
        "gateway" => "board gateway down",
        "upstream" => "upstream unreachable",
        "store" => "store failing",
        "path" => "path changed",
        "test" => "test",
        // Raised by central, not the board (`central::alerting`).
        "offline" => "board offline",
        _ => "alert",
    }
}

/// Alertmanager's `alertname` label.
fn alertname(key: &str) -> &'static str {
    match key.split('/').next().unwrap_or("") {
        "down" => "EdgeprobeTargetDown",
        "degraded" => "EdgeprobeTargetDegraded",
        "gateway" => "EdgeprobeBoardGatewayDown",
        "upstream" => "EdgeprobeUpstreamUnreachable",
        "store" => "EdgeprobeStoreFailing",
        "test" => "EdgeprobeTest",
        "offline" => "EdgeprobeBoardOffline",
        _ => "EdgeprobeAlert",
    }
}

/// `text` cut at a line end to at most `max` (as `size` counts), with a
/// last line saying how many lines were left out.
fn fit(text: &str, max: usize, size: fn(&str) -> usize) -> String {
    if size(text) <= max {
        return text.to_string();
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = String::new();
    for (i, l) in lines.iter().enumerate() {
        let note = format!("… and {} more lines", lines.len() - i);
        if size(&kept) + size(l) + 1 + size(&note) > max {
            kept.push_str(&note);
            return kept;
        }
        kept.push_str(l);
        kept.push('\n');
    }
    kept
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::AlertKind;

    const T: Timestamp = Timestamp(1_795_608_000_123);

    fn down(i: u32) -> Notice {
        Notice {
            kind: NoticeKind::Firing,
            key: format!("down/198.19.4.{i}"),
            target: Some(format!("198.19.4.{i}")),
            name: Some(format!("host {i}")),
            group: Some("lan".into()),
            at: T,
            detail: format!("198.19.4.{i} (host {i}): no reply to 4 requests"),
        }
    }

    #[test]
    fn one_message_lists_every_change_with_its_time() {
        let mut notices = vec![down(1), down(2)];
        notices.push(Notice {
            kind: NoticeKind::Resolved,
            ..down(3)
        });
        let m = Message {
            board: "closet-3",
            made_at: T,
            notices: &notices,
        };
        assert_eq!(m.subject(), "closet-3: 2 firing, 1 resolved");
        let text = m.text();
        assert!(
            text.contains("FIRING not working: 198.19.4.1 (host 1): no reply to 4 requests (since 2026-11-25T12:00:00.123Z)"),
            "{text}"
        );
        assert!(text.contains("RESOLVED not working: 198.19.4.3"), "{text}");
        assert_eq!(text.lines().count(), 5, "{text}");
        let j = m.json();
        assert_eq!(j["board"], "closet-3");
        assert_eq!(j["notices"][2]["kind"], "resolved");
        assert_eq!(j["notices"][0]["target"], "198.19.4.1");
        assert_eq!(j["notices"][0]["what"], "not working");
        assert_eq!(m.slack()["text"], json!(text));
    }

    #[test]
    fn names_from_the_sheet_cannot_page_everyone_on_slack_or_discord() {
        let mut n = down(1);
        n.detail = "<!channel> @everyone <https://x.invalid|click> & co".into();
        let notices = [n];
        let m = Message {
            board: "closet-3",
            made_at: T,
            notices: &notices,
        };
        let slack = m.slack()["text"].as_str().unwrap().to_string();
        assert!(!slack.contains('<') && !slack.contains('>'), "{slack}");
        assert!(
            slack.contains("&lt;!channel&gt;") && slack.contains("&amp; co"),
            "{slack}"
        );
        let discord = m.discord();
        assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
        assert!(discord["content"].as_str().unwrap().contains("@everyone"));
    }

    #[test]
    fn discord_gets_what_fits_and_how_many_lines_did_not() {
        let notices: Vec<Notice> = (1..=200).map(down).collect();
        let m = Message {
            board: "closet-3",
            made_at: T,
            notices: &notices,
        };
        let content = m.discord()["content"].as_str().unwrap().to_string();
        assert!(content.chars().count() <= DISCORD_MAX, "{}", content.len());
        assert!(content.starts_with("closet-3: 200 firing"), "{content}");
        assert!(content.trim_end().ends_with("more lines"), "{content}");
        let short = Message {
            notices: &notices[..2],
            ..m
        };
        assert_eq!(short.discord()["content"], json!(short.text()));
    }

    #[test]
    fn ntfy_gets_what_fits_in_its_bytes() {
        let notices: Vec<Notice> = (1..=200)
            .map(|i| Notice {
                name: Some(format!("Büro {i}")),
                ..down(i)
            })
            .collect();
        let m = Message {
            board: "closet-3",
            made_at: T,
            notices: &notices,
        };
        let ntfy = Channel::Ntfy {
            url: "http://127.0.0.1:9001/closet".parse().unwrap(),
            token: None,
            ca_file: None,
        };
        let (_, body) = body_for(&ntfy, &m).unwrap();
        let doc: Value = serde_json::from_slice(&body).unwrap();
        let text = doc["message"].as_str().unwrap();
        assert!(text.len() <= NTFY_MAX, "{}", text.len());
        assert!(text.trim_end().ends_with("more lines"), "{text}");
        assert_eq!(doc["topic"], "closet");
    }

    #[test]
    fn alertmanager_gets_the_firing_alerts_and_the_resolved_with_ends_at() {
        let firing = [ActiveAlert {
            kind: AlertKind::Down {
                target: "198.19.4.1".into(),
            },
            since: T,
            last_sent: Some(T),
            detail: "198.19.4.1 (host 1): no reply".into(),
            name: Some("host 1".into()),
            group: Some("lan".into()),
        }];
        let resolved = [
            Notice {
                kind: NoticeKind::Resolved,
                ..down(2)
            },
            down(3),
        ];
        let open = T.add(std::time::Duration::from_secs(300));
        let v = alertmanager_alerts("closet-3", &firing, &resolved, open);
        let alerts = v.as_array().unwrap();
        assert_eq!(
            alerts.len(),
            2,
            "only resolved notices join the firing alerts"
        );
        assert_eq!(alerts[0]["labels"]["alertname"], "EdgeprobeTargetDown");
        assert_eq!(alerts[0]["labels"]["board"], "closet-3");
        assert_eq!(alerts[0]["labels"]["target"], "198.19.4.1");
        assert_eq!(alerts[0]["labels"]["name"], "host 1");
        assert_eq!(alerts[0]["labels"]["group"], "lan");
        assert_eq!(alerts[0]["endsAt"], open.rfc3339(), "open until told again");
        assert_eq!(alerts[0]["startsAt"], T.rfc3339());
        assert_eq!(alerts[1]["labels"]["target"], "198.19.4.2");
        assert_eq!(alerts[1]["endsAt"], T.rfc3339());
    }

    #[test]
    fn board_alerts_carry_no_target_labels() {
        let firing = [ActiveAlert {
            kind: AlertKind::Gateway {
                addr: "198.18.1.1".parse().unwrap(),
            },
            since: T,
            last_sent: Some(T),
            detail: "the board's gateway 198.18.1.1 does not answer".into(),
            name: None,
            group: None,
        }];
        let v = alertmanager_alerts("closet-3", &firing, &[], T);
        assert_eq!(v[0]["labels"]["alertname"], "EdgeprobeBoardGatewayDown");
        assert!(v[0]["labels"].get("target").is_none(), "{v}");
    }
}
