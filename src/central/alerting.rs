//! Board-offline alerts, the pure part: from the boards, the open claims
//! and `now`, what a central replica should do this pass; and what each
//! message looks like on each channel.
//!
//! A board is offline by the dashboard's own rule ([`is_online`](super::is_online):
//! no sync for three of its intervals, at least 5 s). One outage is one
//! *episode*, named by the board and the `last_seen` it went quiet after:
//! `board-offline/<board>/<last_seen ms>` ([`outage_id`]). Every replica
//! reading the same board document computes the same id, so the id is
//! what the replicas agree on: the first to insert the claim document
//! with that `_id` sends the "offline" message, the others get a
//! duplicate key (see [`super::claims`]).
//!
//! A claim goes through these states, each step a compare-and-swap on the
//! claim document ([`ClaimState`]):
//!
//! ```text
//! firing ──(every channel delivered, refused or given up)──▶ fired
//! fired ──(the board is back)──▶ resolving ──(sent)──▶ resolved
//! ```
//!
//! `firing` and `resolving` are held by one replica (`by`) until
//! `lease_until`: a replica that dies mid-send loses nothing, another takes
//! the message over when the lease ends ([`Step::TakeOver`]). A delivery
//! that failed moves `lease_until` to the retry time (the board side's
//! backoff, [`crate::alerts::sender::after_attempt`]), so whichever replica
//! passes after it tries again. Channels already served are listed in
//! `done` and not sent again.
//!
//! The board is back when its `last_seen` is newer than the episode's: it
//! synced at least once since, even if it went quiet again before a pass
//! saw it online (that is then a new episode with its own id); or when
//! its `last_seen` is *older* than the episode's (a board without a
//! real-time clock) and it is online by the rule.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use super::model::{offline_after, Board};
use crate::alerts::message::{body_for, Message};
use crate::alerts::rules::{Notice, NoticeKind};
use crate::alerts::settings::Channel;
use crate::clock::Timestamp;
use crate::config::format_duration;

/// The first part of an episode's id and its alert key in messages.
pub const OUTAGE_KIND: &str = "board-offline";

/// The notice key: `what()` in [`crate::alerts::message`] calls it
/// "board offline".
pub const NOTICE_KEY: &str = "offline";

/// `board-offline/<board>/<last_seen ms>`: the same for every replica
/// that sees the same board document. Board ids never hold `/`.
pub fn outage_id(board: &str, last_seen: Timestamp) -> String {
    format!("{OUTAGE_KIND}/{board}/{}", last_seen.millis())
}

/// A board that is offline now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub id: String,
    pub board: String,
    /// Its last sync.
    pub last_seen: Timestamp,
    /// When the online rule judged it offline: `last_seen` plus
    /// [`offline_after`] its interval.
    pub offline_at: Timestamp,
}

/// Every board that is offline at `now`. A board never seen (no
/// `last_seen`) has no outage to tell: it has not come online yet.
pub fn outages(boards: &[Board], now: Timestamp) -> Vec<Outage> {
    boards
        .iter()
        .filter(|b| !b.online(now))
        .filter_map(|b| {
            let seen = b.last_seen?;
            Some(Outage {
                id: outage_id(&b.id, seen),
                board: b.id.clone(),
                last_seen: seen,
                offline_at: seen.add(offline_after(b.interval_s)),
            })
        })
        .collect()
}

/// Where a claim is (the `state` field of its document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    /// The "offline" message is being sent by `by`, until `lease_until`.
    Firing,
    /// Sent; waiting for the board to come back.
    Fired,
    /// The "back online" message is being sent by `by`.
    Resolving,
    /// Done.
    Resolved,
}

impl ClaimState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimState::Firing => "firing",
            ClaimState::Fired => "fired",
            ClaimState::Resolving => "resolving",
            ClaimState::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<ClaimState> {
        [
            ClaimState::Firing,
            ClaimState::Fired,
            ClaimState::Resolving,
            ClaimState::Resolved,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }

    /// Every state but `resolved`.
    pub const OPEN: [ClaimState; 3] =
        [ClaimState::Firing, ClaimState::Fired, ClaimState::Resolving];
}

/// A claim document as read (see [`super::claims`] for its fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: String,
    pub board: String,
    pub last_seen: Timestamp,
    pub offline_at: Timestamp,
    pub state: ClaimState,
    /// The replica holding the message in flight (or that last did).
    pub by: String,
    /// Until when `by` holds it; also the compare-and-swap token.
    pub lease_until: Timestamp,
    /// Failed attempts at the message in flight.
    pub attempts: u32,
    /// When the message in flight was first claimed (for giving up).
    pub made_at: Timestamp,
    /// Labels of the channels done with the message in flight.
    pub done: Vec<String>,
    /// The sync that ended the outage, once seen.
    pub back_at: Option<Timestamp>,
    /// When Alertmanager next hears that the alert still fires.
    pub am_next: Option<Timestamp>,
}

/// What a replica does about one episode in this pass. Each is tried as
/// a compare-and-swap; losing it means another replica does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Insert the claim for a new outage and send "offline".
    Open(Outage),
    /// The lease of the message in flight ended (its holder died, or a
    /// failed delivery's retry time came): take it and send.
    TakeOver(Claim),
    /// The board synced again at `back_at`: claim "back online".
    Resolve { claim: Claim, back_at: Timestamp },
    /// Tell Alertmanager again that the alert still fires (it resolves an
    /// alert it has not heard of for its `resolve_timeout`, 5 min by default).
    Refresh(Claim),
    /// The board's document is gone: close without a message.
    Forget(Claim),
}

/// This pass's steps, in the order they are carried out: first what
/// ends an outage (a "back online" to claim or to take over, a claim
/// whose board is gone), then what starts one (new outages, "offline"
/// messages to take over), then the Alertmanager refreshes. A board that
/// came back and went quiet again before a pass saw it so hears "back
/// online" for the old outage before "offline" for the new one. Within a
/// kind, by claim id, so that replicas racing on the same pass meet on
/// the same first claim (see [`super::alerter`]).
///
/// `alertmanager`: the labels of the Alertmanager channels, which hear
/// again of every outage still firing ([`Step::Refresh`]).
pub fn plan(
    boards: &[Board],
    open: &[Claim],
    now: Timestamp,
    alertmanager: &[String],
) -> Vec<Step> {
    let known: HashSet<&str> = open.iter().map(|c| c.id.as_str()).collect();
    let mut opens: Vec<Outage> = outages(boards, now)
        .into_iter()
        .filter(|o| !known.contains(o.id.as_str()))
        .collect();
    opens.sort_by(|a, b| a.id.cmp(&b.id));
    let mut claims: Vec<&Claim> = open.iter().collect();
    claims.sort_by(|a, b| a.id.cmp(&b.id));

    let (mut ending, mut starting, mut refreshes) = (Vec::new(), Vec::new(), Vec::new());
    for c in claims {
        let board = boards.iter().find(|b| b.id == c.board);
        let lease_over = c.lease_until <= now;
        match c.state {
            ClaimState::Resolving if lease_over => ending.push(Step::TakeOver(c.clone())),
            ClaimState::Firing if lease_over => starting.push(Step::TakeOver(c.clone())),
            ClaimState::Fired => match board {
                None => ending.push(Step::Forget(c.clone())),
                Some(b) => match back(b, c, now) {
                    Some(back_at) => ending.push(Step::Resolve {
                        claim: c.clone(),
                        back_at,
                    }),
                    None if !alertmanager.is_empty() && refresh_due(c, now) => {
                        refreshes.push(Step::Refresh(c.clone()));
                    }
                    None => {}
                },
            },
            _ => {}
        }
        // An "offline" still being sent to another channel (a webhook
        // failing for hours) must not leave Alertmanager, which already
        // has it, to resolve it by itself after its `resolve_timeout`.
        if c.state == ClaimState::Firing
            && refresh_due(c, now)
            && c.done.iter().any(|d| alertmanager.contains(d))
        {
            refreshes.push(Step::Refresh(c.clone()));
        }
    }
    ending
        .into_iter()
        .chain(opens.into_iter().map(Step::Open))
        .chain(starting)
        .chain(refreshes)
        .collect()
}

fn refresh_due(c: &Claim, now: Timestamp) -> bool {
    c.am_next.is_some_and(|t| t <= now)
}

/// When fired `c`'s board came back, if it did: it synced after the
/// outage's `last_seen`, even if it went quiet again before a pass saw it
/// online (that is then a new outage with its own id); or its `last_seen`
/// moved *back* (a Pi without a real-time clock that synced before its
/// clock was set) and it is online by the rule. In that second case the
/// board's own time is older than the outage, so the message says when
/// central saw it back (`now`), which also keeps Alertmanager's `endsAt`
/// after its `startsAt`.
fn back(b: &Board, c: &Claim, now: Timestamp) -> Option<Timestamp> {
    let seen = b.last_seen?;
    if seen > c.last_seen {
        Some(seen)
    } else if seen != c.last_seen && b.online(now) {
        Some(now)
    } else {
        None
    }
}

/// Whether a message held until `lease_until` may still be sent at
/// `now`: at least `needed` (a delivery and the write that records it)
/// is left. A claim won late in a slow pass is left for the replica that
/// takes it over when the lease ends, rather than sent by a holder whose
/// lease may end mid-send (the other would send it again).
pub fn lease_holds(lease_until: Timestamp, now: Timestamp, needed: Duration) -> bool {
    lease_until > now && lease_until.since(now) >= needed
}

/// The one line of a claim's message: "offline" while firing, "back
/// online" while resolving. Worded from the claim's fields alone, so any
/// replica that takes the message over sends the same text.
pub fn notice(c: &Claim) -> Notice {
    let after = format_duration(c.offline_at.since(c.last_seen));
    let (kind, at, detail) = match (c.state, c.back_at) {
        (ClaimState::Resolving | ClaimState::Resolved, Some(back)) => (
            NoticeKind::Resolved,
            back,
            format!(
                "{} is back online: synced at {}, its first sync since {}",
                c.board,
                back.rfc3339(),
                c.last_seen.rfc3339()
            ),
        ),
        _ => (
            NoticeKind::Firing,
            c.offline_at,
            format!(
                "{} has not synced since {} (offline after {after} without a sync)",
                c.board,
                c.last_seen.rfc3339()
            ),
        ),
    };
    Notice {
        kind,
        key: NOTICE_KEY.to_string(),
        target: None,
        name: None,
        group: None,
        at,
        detail,
    }
}

/// A message as one channel takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// What a message about several boards names as its board (each notice
/// names its own board in its detail).
pub const FLEET_BOARD: &str = "central";

/// The message in flight of `c` for `channel`, made at `now`; the same
/// shapes a board sends (our JSON, Slack, Discord, ntfy JSON, e-mail
/// text, Alertmanager API v2), with the board as the message's board.
pub fn render(channel: &Channel, c: &Claim, now: Timestamp) -> Rendered {
    render_all(channel, &[c], now)
}

/// One message for `channel` listing the messages in flight of every
/// claim of `claims`, in that order. Its board is theirs when they are
/// all about one board, [`FLEET_BOARD`] otherwise.
pub fn render_all(channel: &Channel, claims: &[&Claim], now: Timestamp) -> Rendered {
    let notices: Vec<Notice> = claims.iter().map(|c| notice(c)).collect();
    let board = match claims.split_first() {
        Some((first, rest)) if rest.iter().all(|c| c.board == first.board) => first.board.as_str(),
        _ => FLEET_BOARD,
    };
    let message = Message {
        board,
        made_at: now,
        notices: &notices,
    };
    let (content_type, body) = body_for(channel, &message).unwrap_or_else(|| {
        let alerts: Vec<Value> = claims
            .iter()
            .flat_map(|c| match alertmanager(c) {
                Value::Array(a) => a,
                other => vec![other],
            })
            .collect();
        (
            "application/json",
            serde_json::to_vec(&alerts).unwrap_or_default(),
        )
    });
    Rendered {
        subject: message.subject(),
        content_type,
        body,
    }
}

/// Alertmanager API v2: the alert firing since `offline_at`, or ended at
/// `back_at`; labels `alertname=EdgeprobeBoardOffline`, `board`.
pub fn alertmanager(c: &Claim) -> Value {
    let n = notice(c);
    let mut alert = json!({
        "labels": { "alertname": "EdgeprobeBoardOffline", "board": c.board, "alert": NOTICE_KEY },
        "annotations": { "summary": format!("board offline {}", n.detail) },
        "startsAt": c.offline_at.rfc3339(),
    });
    if n.kind == NoticeKind::Resolved {
        alert["endsAt"] = json!(n.at.rfc3339());
    }
    json!([alert])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::settings::WebhookFormat;
    use std::time::Duration;

    const NOW: Timestamp = Timestamp(1_795_651_111_000);

    fn board(id: &str, secs_ago: Option<u64>) -> Board {
        Board {
            id: id.into(),
            last_seen: secs_ago.map(|s| NOW.sub(Duration::from_secs(s))),
            interval_s: Some(60.0),
            ..Board::default()
        }
    }

    fn am() -> Vec<String> {
        vec!["alertmanager 127.0.0.1:9093".to_string()]
    }

    fn claim(o: &Outage, state: ClaimState, lease_until: Timestamp) -> Claim {
        Claim {
            id: o.id.clone(),
            board: o.board.clone(),
            last_seen: o.last_seen,
            offline_at: o.offline_at,
            state,
            by: "central-a".into(),
            lease_until,
            attempts: 0,
            made_at: NOW,
            done: vec![],
            back_at: None,
            am_next: Some(NOW.add(Duration::from_secs(60))),
        }
    }

    #[test]
    fn offline_boards_are_outages_with_a_deterministic_id() {
        let boards = [
            board("closet-1", Some(10)),
            board("closet-3", Some(181)),
            board("never", None),
        ];
        let o = outages(&boards, NOW);
        assert_eq!(o.len(), 1, "{o:?}");
        let seen = NOW.sub(Duration::from_secs(181));
        assert_eq!(o[0].id, format!("board-offline/closet-3/{}", seen.millis()));
        assert_eq!(o[0].offline_at, seen.add(Duration::from_secs(180)));
        // Another replica, a moment later, names the same outage.
        let later = outages(&boards, NOW.add(Duration::from_secs(7)));
        assert_eq!(later, o);
    }

    #[test]
    fn a_new_outage_is_opened_once_and_a_known_one_waits() {
        let boards = [board("closet-3", Some(200))];
        let steps = plan(&boards, &[], NOW, &[]);
        let [Step::Open(o)] = steps.as_slice() else {
            panic!("{steps:?}")
        };
        // Being sent by a live replica: nothing to do.
        let held = claim(o, ClaimState::Firing, NOW.add(Duration::from_secs(30)));
        assert_eq!(plan(&boards, std::slice::from_ref(&held), NOW, &[]), []);
        // Sent, board still away: nothing either.
        let fired = claim(o, ClaimState::Fired, NOW);
        assert_eq!(plan(&boards, &[fired], NOW, &[]), []);
        // Its lease is over (holder died, or a retry is due): take it.
        let later = NOW.add(Duration::from_secs(30));
        assert_eq!(
            plan(&boards, std::slice::from_ref(&held), later, &[]),
            [Step::TakeOver(held)]
        );
    }

    #[test]
    fn a_sync_after_the_outage_resolves_it_even_if_it_went_quiet_again() {
        let away = [board("closet-3", Some(200))];
        let o = outages(&away, NOW).remove(0);
        let fired = claim(&o, ClaimState::Fired, NOW);
        let back = [board("closet-3", Some(1))];
        assert_eq!(
            plan(&back, std::slice::from_ref(&fired), NOW, &[]),
            [Step::Resolve {
                claim: fired.clone(),
                back_at: NOW.sub(Duration::from_secs(1)),
            }]
        );
        // Back and away again before a pass: the old one resolves, a new
        // one opens with its own id.
        let again = [board("closet-3", Some(190))];
        let steps = plan(&again, std::slice::from_ref(&fired), NOW, &[]);
        assert_eq!(steps.len(), 2, "{steps:?}");
        // "Back online" for the old outage comes before "offline" for
        // the new one.
        assert!(matches!(&steps[0], Step::Resolve { .. }), "{steps:?}");
        let Step::Open(new) = &steps[1] else {
            panic!("{steps:?}")
        };
        assert_ne!(new.id, fired.id);
        // A board whose document was removed: closed quietly.
        assert_eq!(
            plan(&[], std::slice::from_ref(&fired), NOW, &[]),
            [Step::Forget(fired)]
        );
    }

    #[test]
    fn alertmanager_hears_again_while_the_board_is_away() {
        let boards = [board("closet-3", Some(200))];
        let o = outages(&boards, NOW).remove(0);
        let fired = claim(&o, ClaimState::Fired, NOW);
        let due = NOW.add(Duration::from_secs(60));
        assert_eq!(plan(&boards, std::slice::from_ref(&fired), due, &[]), []);
        assert_eq!(
            plan(&boards, std::slice::from_ref(&fired), due, &am()),
            [Step::Refresh(fired.clone())]
        );
        assert_eq!(plan(&boards, &[fired], NOW, &am()), []);
    }

    #[test]
    fn alertmanager_hears_again_while_another_channel_is_retried() {
        let boards = [board("closet-3", Some(200))];
        let o = outages(&boards, NOW).remove(0);
        let due = NOW.add(Duration::from_secs(60));
        // Alertmanager took the "offline"; the webhook is retried later.
        let mut firing = claim(&o, ClaimState::Firing, due.add(Duration::from_secs(600)));
        firing.done = am();
        assert_eq!(
            plan(&boards, std::slice::from_ref(&firing), due, &am()),
            [Step::Refresh(firing.clone())]
        );
        // Not before it is due, nor when Alertmanager has not had it yet.
        assert_eq!(plan(&boards, std::slice::from_ref(&firing), NOW, &am()), []);
        firing.done = vec!["webhook 127.0.0.1:9000".into()];
        assert_eq!(plan(&boards, std::slice::from_ref(&firing), due, &am()), []);
        // Its retry is due too: taken over, and Alertmanager hears again.
        firing.done = am();
        firing.lease_until = due;
        assert_eq!(
            plan(&boards, std::slice::from_ref(&firing), due, &am()),
            [
                Step::TakeOver(firing.clone()),
                Step::Refresh(firing.clone())
            ]
        );
    }

    #[test]
    fn a_board_whose_clock_went_back_is_back_once_online() {
        let away = [board("closet-3", Some(200))];
        let o = outages(&away, NOW).remove(0);
        let fired = claim(&o, ClaimState::Fired, NOW);
        // A last_seen older than the outage's and offline by the rule is
        // not a board back.
        let behind = [board("closet-3", Some(3600))];
        assert!(!plan(&behind, std::slice::from_ref(&fired), NOW, &[])
            .iter()
            .any(|s| matches!(s, Step::Resolve { .. })));
        // The outage's last_seen was written by a clock running ahead; the
        // board syncs again with its clock set right: its last_seen went
        // back, and it is online by the rule.
        let mut ahead = fired.clone();
        ahead.last_seen = NOW.add(Duration::from_secs(600));
        let back = [board("closet-3", Some(1))];
        assert_eq!(
            plan(&back, std::slice::from_ref(&ahead), NOW, &[]),
            [Step::Resolve {
                claim: ahead.clone(),
                back_at: NOW,
            }],
            "resolved when central saw it back"
        );
        // The same last_seen as the outage's is the same outage.
        let same = [Board {
            last_seen: Some(fired.last_seen),
            ..board("closet-3", None)
        }];
        assert_eq!(plan(&same, std::slice::from_ref(&fired), NOW, &[]), []);
    }

    #[test]
    fn outages_of_one_pass_go_out_as_one_message_listing_them() {
        let boards = [
            board("closet-9", Some(200)),
            board("closet-1", Some(300)),
            board("closet-5", Some(250)),
        ];
        let steps = plan(&boards, &[], NOW, &[]);
        let ids: Vec<&str> = steps
            .iter()
            .map(|s| match s {
                Step::Open(o) => o.board.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, ["closet-1", "closet-5", "closet-9"], "by id");
        let claims: Vec<Claim> = outages(&boards, NOW)
            .iter()
            .map(|o| claim(o, ClaimState::Firing, NOW))
            .collect();
        let refs: Vec<&Claim> = claims.iter().collect();
        let hook = Channel::Webhook {
            url: "http://127.0.0.1:9000/hook".parse().unwrap(),
            format: WebhookFormat::Json,
            headers: vec![],
            ca_file: None,
        };
        let r = render_all(&hook, &refs, NOW);
        assert_eq!(r.subject, "central: 3 firing");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["board"], FLEET_BOARD);
        assert_eq!(v["notices"].as_array().unwrap().len(), 3);
        assert!(v["notices"][1]["detail"]
            .as_str()
            .unwrap()
            .starts_with("closet-1 has not synced"));
        let am = Channel::Alertmanager {
            url: "http://127.0.0.1:9093".parse().unwrap(),
            ca_file: None,
        };
        let v: Value = serde_json::from_slice(&render_all(&am, &refs, NOW).body).unwrap();
        let boards: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["labels"]["board"].as_str().unwrap())
            .collect();
        assert_eq!(boards, ["closet-9", "closet-1", "closet-5"]);
        // One board: named as the message's board.
        let r = render_all(&hook, &refs[..1], NOW);
        assert_eq!(r.subject, "closet-9: 1 firing");
    }

    #[test]
    fn a_lease_too_short_for_a_delivery_is_not_sent_on() {
        let needed = Duration::from_secs(30);
        let until = NOW.add(Duration::from_secs(60));
        assert!(lease_holds(until, NOW, needed));
        assert!(lease_holds(until, NOW.add(Duration::from_secs(30)), needed));
        assert!(!lease_holds(
            until,
            NOW.add(Duration::from_secs(31)),
            needed
        ));
        assert!(!lease_holds(
            until,
            NOW.add(Duration::from_secs(90)),
            needed
        ));
    }

    #[test]
    fn messages_say_offline_and_back_online_with_their_times() {
        let boards = [board("closet-3", Some(200))];
        let o = outages(&boards, NOW).remove(0);
        let mut c = claim(&o, ClaimState::Firing, NOW);
        let hook = Channel::Webhook {
            url: "http://127.0.0.1:9000/hook".parse().unwrap(),
            format: WebhookFormat::Json,
            headers: vec![],
            ca_file: None,
        };
        let r = render(&hook, &c, NOW);
        assert_eq!(r.subject, "closet-3: 1 firing");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["board"], "closet-3");
        assert_eq!(v["notices"][0]["kind"], "firing");
        assert_eq!(v["notices"][0]["what"], "board offline");
        assert_eq!(v["notices"][0]["alert"], "offline");
        assert_eq!(v["notices"][0]["at"], json!(o.offline_at.rfc3339()));
        let detail = v["notices"][0]["detail"].as_str().unwrap();
        assert!(
            detail.contains(&o.last_seen.rfc3339()) && detail.contains("offline after 3m"),
            "{detail}"
        );

        c.state = ClaimState::Resolving;
        c.back_at = Some(NOW);
        let mail = Channel::Email {
            smtp: "127.0.0.1:25".into(),
            tls: crate::alerts::settings::SmtpTls::None,
            user: None,
            password: None,
            from: "a@b".into(),
            to: vec!["c@d".into()],
            ca_file: None,
        };
        let r = render(&mail, &c, NOW);
        assert_eq!(r.subject, "closet-3: 1 resolved");
        let text = String::from_utf8(r.body).unwrap();
        assert!(
            text.contains("RESOLVED board offline: closet-3 is back online"),
            "{text}"
        );

        let am = Channel::Alertmanager {
            url: "http://127.0.0.1:9093".parse().unwrap(),
            ca_file: None,
        };
        let v: Value = serde_json::from_slice(&render(&am, &c, NOW).body).unwrap();
        assert_eq!(v[0]["labels"]["alertname"], "EdgeprobeBoardOffline");
        assert_eq!(v[0]["labels"]["board"], "closet-3");
        assert_eq!(v[0]["endsAt"], json!(NOW.rfc3339()));
        c.state = ClaimState::Fired;
        assert!(alertmanager(&c)[0].get("endsAt").is_none());
    }

    #[test]
    fn claim_states_round_trip() {
        for s in [
            ClaimState::Firing,
            ClaimState::Fired,
            ClaimState::Resolving,
            ClaimState::Resolved,
        ] {
            assert_eq!(ClaimState::parse(s.as_str()), Some(s));
        }
        assert_eq!(ClaimState::parse("open"), None);
    }
}
