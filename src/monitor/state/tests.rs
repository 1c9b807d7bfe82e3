//! The monitor state's tests: rounds applied to it, and what readers see.

use std::time::Duration;

use super::*;
use crate::leds::{patterns, LedInputs, LedPattern, LedView};
use crate::monitor::testkit::{hop, hops, ip, list, routes};
use crate::probe::{RttSummary, Ttl};

/// What the LEDs show for a snapshot right after its round.
fn leds_of(snap: &Snapshot) -> LedView {
    let now = snap.last_round.map_or(Timestamp(0), |r| r.finished);
    patterns(&LedInputs::from_snapshot(snap, None, now), now)
}

/// A round of these observations, without gateway pings, on the lab's
/// routes, from `started` to `finished`.
fn round(s: &mut MonitorState, obs: Vec<Observation>, started: i64, finished: i64) -> RoundRecord {
    s.apply_round(obs, &[], &routes(), Timestamp(started), Timestamp(finished))
}

/// What readers see, without board, store or upstream figures.
fn view(s: &MonitorState) -> Snapshot {
    s.snapshot(
        BoardInfo::default(),
        StoreStats::default(),
        UpstreamView::Off,
        vec![],
    )
}

fn ping(received: u32) -> PingOutcome {
    PingOutcome {
        sent: 3,
        received,
        rtt: (received > 0).then_some(RttSummary {
            min: 1.0,
            avg: 2.0,
            max: 3.0,
            mdev: 0.5,
        }),
        status: Status::classify(3, received, 0.2),
        send_error: None,
    }
}

fn obs(key: &str, t: i64, received: u32, trace: Option<Vec<Hop>>) -> Observation {
    Observation {
        key: key.into(),
        ts: Timestamp(t),
        ip: Ok(ip(key)),
        ping: ping(received),
        trace: trace.map(|hops| {
            let reached = hops.last().and_then(|h| h.addr) == Some(ip(key));
            TraceOutcome::Path(Path {
                hops,
                reached,
                unreachable_code: None,
                limits: Vec::new(),
            })
        }),
    }
}

fn state() -> MonitorState {
    let mut s = MonitorState::new(
        Thresholds {
            down_after: 2,
            up_after: 1,
        },
        Duration::from_secs(600),
        None,
    );
    s.replace_targets(&list(&["198.19.3.10", "198.19.3.20"]), Timestamp(0));
    s
}

#[test]
fn a_round_becomes_results_and_the_first_status_is_no_event() {
    let mut s = state();
    let path = vec![hop(1, Some("198.18.1.1")), hop(2, Some("198.19.3.10"))];
    let r = round(&mut s, vec![obs("198.19.3.10", 10, 3, Some(path))], 0, 20);
    assert_eq!(r.round, RoundId(1));
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].gateway, Some(Gateway::Via(ip("198.18.1.1"))));
    assert_eq!(r.traces.len(), 1);
    assert!(r.events.is_empty(), "{:?}", r.events);
    let snap = view(&s);
    assert_eq!(snap.targets[0].status, Some(Status::Working));
    assert_eq!(snap.targets[0].routers().len(), 1);
    assert!(snap.targets[0].reached);
    assert_eq!(snap.targets[1].status, None, "not probed yet");
    assert_eq!(leds_of(&snap).red, LedPattern::Off);
}

#[test]
fn going_down_is_one_event_with_the_cause() {
    let mut s = state();
    let good = vec![hop(1, Some("198.18.1.1")), hop(2, Some("198.19.3.10"))];
    let broken = vec![hop(1, Some("198.18.1.1")), hop(2, None)];
    round(&mut s, vec![obs("198.19.3.10", 1, 3, Some(good))], 0, 1);
    let r = round(&mut s, vec![obs("198.19.3.10", 2, 0, Some(broken))], 2, 2);
    assert!(
        r.events.iter().all(|e| e.kind != EventKind::Status),
        "down_after is 2"
    );
    let r = round(&mut s, vec![obs("198.19.3.10", 3, 0, None)], 3, 3);
    let ev: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Status)
        .collect();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].from.as_deref(), Some("working"));
    assert_eq!(ev[0].to.as_deref(), Some("not_working"));
    assert!(
        ev[0].detail.contains("stops after 198.18.1.1"),
        "{}",
        ev[0].detail
    );
    assert_eq!(r.results[0].status, Status::NotWorking);
    assert_eq!(r.results[0].reported, Status::NotWorking);
    let snap = view(&s);
    assert_eq!(leds_of(&snap).red, LedPattern::On);
    assert_eq!(leds_of(&snap).green, LedPattern::Off);
    assert!(snap.targets[0].cause.is_some());
}

#[test]
fn a_new_router_on_the_way_is_a_path_event() {
    let mut s = state();
    let before = hops(&[Some("198.18.1.1"), Some("198.18.2.2"), Some("198.19.3.10")]);
    let after = hops(&[
        Some("198.18.1.1"),
        Some("198.18.5.2"),
        Some("198.18.2.2"),
        Some("198.19.3.10"),
    ]);
    round(
        &mut s,
        vec![obs("198.19.3.10", 1, 3, Some(before.clone()))],
        0,
        1,
    );
    let r = round(&mut s, vec![obs("198.19.3.10", 2, 3, Some(before))], 2, 2);
    assert!(r.events.is_empty());
    let r = round(&mut s, vec![obs("198.19.3.10", 3, 3, Some(after))], 3, 3);
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0].kind, EventKind::Path);
    assert!(r.events[0].to.as_deref().unwrap().contains("198.18.5.2"));
}

#[test]
fn a_router_silent_this_time_stays_marked_and_is_no_path_event() {
    let mut s = state();
    let full = hops(&[Some("198.18.1.1"), Some("198.18.2.2"), Some("198.19.3.10")]);
    let r2_spent = hops(&[Some("198.18.1.1"), None, Some("198.19.3.10")]);
    round(
        &mut s,
        vec![obs("198.19.3.10", 1_000, 3, Some(full))],
        0,
        1_000,
    );
    let limited = |hops: Vec<Hop>| {
        let mut o = obs("198.19.3.10", 61_000, 3, Some(hops));
        if let Some(TraceOutcome::Path(p)) = &mut o.trace {
            p.limits.push(crate::probe::HopLimit {
                ttl: Ttl(2),
                router: Some(ip("198.18.2.2")),
                waited: Duration::from_secs(1),
                answered: false,
            });
        }
        o
    };
    let r = round(&mut s, vec![limited(r2_spent)], 60_000, 61_000);
    assert!(r.events.is_empty(), "{:?}", r.events);
    let snap = view(&s);
    let kept = snap.targets[0].hops[1];
    assert_eq!(kept.addr, Some(ip("198.18.2.2")));
    assert_eq!(kept.last_seen, Some(Timestamp(1_000)));
    // Held back by a ration: asked again next round, after the target
    // never traced (a minute into a ten-minute cycle, it would wait).
    let jobs = s.jobs(&routes(), Timestamp(62_000), 2);
    assert!(jobs[0].trace_due, "the held-back trace");
    let jobs = s.jobs(&routes(), Timestamp(62_000), 1);
    assert_eq!((jobs[0].trace_due, jobs[1].trace_due), (false, true));
}

#[test]
fn a_trace_nobody_answered_behind_a_router_is_asked_again() {
    let mut s = state();
    round(
        &mut s,
        vec![obs("198.19.3.20", 1_000, 0, Some(vec![]))],
        0,
        1_000,
    );
    let jobs = s.jobs(&routes(), Timestamp(4_000), 16);
    assert!(jobs[1].trace_due, "asked again next round");
    let snap = view(&s);
    let cause = snap.targets[1].cause.clone().unwrap();
    assert!(cause.contains("ration their ICMP answers"), "{cause}");
}

#[test]
fn due_traces_are_spread_never_traced_first() {
    let mut s = state();
    s.replace_targets(
        &list(&["198.19.3.10", "198.19.3.11", "198.19.3.12"]),
        Timestamp(0),
    );
    let path = vec![hop(1, Some("198.18.1.1")), hop(2, Some("198.19.3.10"))];
    round(
        &mut s,
        vec![obs("198.19.3.10", 1_000, 3, Some(path))],
        0,
        1_000,
    );
    let due = |s: &MonitorState, at: i64, quota| {
        s.jobs(&routes(), Timestamp(at), quota)
            .iter()
            .map(|j| j.trace_due)
            .collect::<Vec<_>>()
    };
    assert_eq!(due(&s, 2_000, 1), [false, true, false]);
    assert_eq!(due(&s, 2_000, 5), [false, true, true]);
    // Its cycle over, the traced one is due again, after the others.
    assert_eq!(due(&s, 601_000, 2), [false, true, true]);
    assert_eq!(due(&s, 601_000, 3), [true, true, true]);
}

#[test]
fn a_down_board_gateway_is_said_once_and_blamed() {
    let mut s = state();
    s.set_board_gateways(&[ip("198.18.1.1")], &routes(), Timestamp(0));
    let mut gateway_events = 0;
    for round in 0..4 {
        let r = s.apply_round(
            vec![obs("198.19.3.10", round, 0, None)],
            &[(ip("198.18.1.1"), ping(0))],
            &routes(),
            Timestamp(round),
            Timestamp(round),
        );
        gateway_events += r
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Gateway)
            .count();
    }
    assert_eq!(gateway_events, 1);
    let snap = view(&s);
    assert_eq!(leds_of(&snap).red, LedPattern::FastBlink);
    assert_eq!(snap.board_gateways[0].up, Some(false));
    assert!(snap.targets[0]
        .cause
        .as_deref()
        .unwrap()
        .contains("own gateway 198.18.1.1"));
}

#[test]
fn only_gateways_that_targets_use_are_watched() {
    let s = state();
    assert_eq!(s.gateways_in_use(&routes()), vec![ip("198.18.1.1")]);
    let mut local = state();
    local.replace_targets(&list(&["127.0.0.1", "198.18.1.7"]), Timestamp(1));
    assert!(local.gateways_in_use(&routes()).is_empty());
}

#[test]
fn a_reload_keeps_the_state_of_targets_that_stay() {
    let mut s = state();
    round(&mut s, vec![obs("198.19.3.10", 1, 3, None)], 0, 1);
    let ev = s.replace_targets(&list(&["198.19.3.11", "198.19.3.10"]), Timestamp(5));
    assert!(ev.detail.contains("1 kept, 1 removed"), "{}", ev.detail);
    let snap = view(&s);
    assert_eq!(&*snap.targets[0].key, "198.19.3.11");
    assert_eq!(snap.targets[1].status, Some(Status::Working));
    assert_eq!(snap.targets[1].sno, 2);
    // Results for a removed target are dropped, not stored.
    let r = round(&mut s, vec![obs("198.19.3.20", 6, 3, None)], 6, 6);
    assert!(r.results.is_empty());
    assert_eq!(r.round, RoundId(2));
}

#[test]
fn a_rejected_sheet_is_shown_and_the_list_stays() {
    let mut s = state();
    let ev = s.reject_sheet(
        "t.csv",
        vec!["t.csv: row 2: bad".into()],
        None,
        Timestamp(9),
    );
    assert!(
        ev.detail
            .contains("still monitoring the previous list (2 targets)"),
        "{}",
        ev.detail
    );
    let snap = view(&s);
    assert_eq!(snap.targets.len(), 2);
    assert_eq!(snap.sheet.rejected.as_ref().unwrap().problems.len(), 1);
    s.replace_targets(&list(&["198.19.3.10"]), Timestamp(10));
    let snap = view(&s);
    assert!(snap.sheet.rejected.is_none());
}

#[test]
fn restoring_fills_only_targets_without_state() {
    let mut s = state();
    round(&mut s, vec![obs("198.19.3.10", 5, 3, None)], 0, 5);
    assert!(s.needs_restore(), "198.19.3.20 has no state yet");
    let stored = |target: &str, reported: Status| ResultRecord {
        target: target.into(),
        round: RoundId(1),
        ts: Timestamp(1),
        name: None,
        group: None,
        status: reported,
        reported,
        sent: 3,
        received: 0,
        loss: 1.0,
        rtt: None,
        gateway: None,
    };
    s.restore(
        vec![
            stored("198.19.3.10", Status::NotWorking),
            stored("198.19.3.20", Status::NotWorking),
        ],
        vec![],
        HashMap::from([("198.19.3.20".to_string(), vec![None, Some(1.5)])]),
    );
    assert!(!s.needs_restore());
    let snap = view(&s);
    assert_eq!(
        snap.targets[0].status,
        Some(Status::Working),
        "its own round wins"
    );
    assert_eq!(snap.targets[1].status, Some(Status::NotWorking));
    assert_eq!(
        snap.targets[1].recent_rtt.iter().collect::<Vec<_>>(),
        [None, Some(1.5)]
    );
}

#[test]
fn rounds_continue_numbering_after_a_restart() {
    let mut s = MonitorState::new(
        Thresholds {
            down_after: 2,
            up_after: 1,
        },
        Duration::from_secs(600),
        Some(RoundId(41)),
    );
    s.replace_targets(&list(&["198.19.3.10"]), Timestamp(0));
    let r = round(&mut s, vec![], 0, 1);
    assert_eq!(r.round, RoundId(42));
}
