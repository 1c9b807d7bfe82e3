//! Traceroute's tests.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Heard `ttl` ms after the probe left at `T0`.
fn answer(ttl: u8, from: &str, kind: ReplyKind) -> Heard {
    Heard {
        ttl: Ttl(ttl),
        from: ip(from),
        at: *T0 + Duration::from_millis(u64::from(ttl)),
        kind,
    }
}

static T0: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

/// Answers with every probe sent at `T0`.
fn answers(max_hops: u8) -> Answers {
    let mut a = Answers::new(max_hops);
    for ttl in 1..=max_hops {
        a.sent(Ttl(ttl), *T0);
    }
    a
}

#[test]
fn path_stops_at_the_destination() {
    let mut a = answers(30);
    a.record(answer(4, "198.19.3.10", ReplyKind::EchoReply));
    a.record(answer(3, "198.19.3.10", ReplyKind::EchoReply));
    a.record(answer(1, "198.18.1.1", ReplyKind::TimeExceeded));
    assert!(!a.complete_from(Ttl(1)), "hop 2 still missing");
    a.record(answer(2, "198.18.2.2", ReplyKind::TimeExceeded));
    assert!(a.complete_from(Ttl(1)));
    let p = a.into_path(Vec::new());
    assert!(p.reached);
    let addrs: Vec<_> = p.hops.iter().map(|h| h.addr.unwrap()).collect();
    assert_eq!(
        addrs,
        [ip("198.18.1.1"), ip("198.18.2.2"), ip("198.19.3.10")]
    );
    assert_eq!(p.hops[2].rtt_ms, Some(3.0));
}

#[test]
fn silent_destination_ends_at_the_last_answer() {
    let mut a = answers(30);
    a.record(answer(1, "198.18.1.1", ReplyKind::TimeExceeded));
    a.record(answer(2, "198.18.2.2", ReplyKind::TimeExceeded));
    assert!(!a.complete_from(Ttl(1)));
    let p = a.into_path(Vec::new());
    assert!(!p.reached);
    assert_eq!(p.hops.len(), 2);
    assert_eq!(p.last_answering().unwrap().addr, Some(ip("198.18.2.2")));
}

#[test]
fn silent_hop_in_the_middle_is_kept_as_a_gap() {
    let mut a = answers(30);
    a.record(answer(1, "198.18.1.1", ReplyKind::TimeExceeded));
    a.record(answer(3, "198.19.3.10", ReplyKind::EchoReply));
    let p = a.into_path(Vec::new());
    assert!(p.reached);
    assert_eq!(p.hops.len(), 3);
    assert_eq!(p.hops[1].addr, None);
    assert_eq!(p.hops[1].rtt_ms, None);
}

#[test]
fn unreachable_ends_the_path_unreached() {
    let mut a = answers(30);
    a.record(answer(1, "198.18.1.1", ReplyKind::Unreachable { code: 0 }));
    a.record(answer(2, "198.18.1.1", ReplyKind::Unreachable { code: 0 }));
    assert!(a.complete_from(Ttl(1)));
    let p = a.into_path(Vec::new());
    assert!(!p.reached);
    assert_eq!(p.unreachable_code, Some(0));
    assert_eq!(p.hops.len(), 1);
}

#[test]
fn nothing_answered_is_an_empty_path() {
    let p = answers(30).into_path(Vec::new());
    assert!(p.hops.is_empty() && !p.reached);
    assert_eq!(p.last_answering(), None);
}

#[test]
fn out_of_range_ttl_is_ignored() {
    let mut a = answers(3);
    a.record(answer(0, "198.18.1.1", ReplyKind::EchoReply));
    a.record(answer(9, "198.18.1.1", ReplyKind::EchoReply));
    assert!(a.into_path(Vec::new()).hops.is_empty());
}

#[tokio::test]
async fn ids_skip_the_ping_identifier_block() {
    // Both families fail to open without privileges or succeed as root;
    // either way the id counter works the same.
    let tracer = Tracer::new(0x0001, 0x0000_fffe);
    let ids: Vec<ProbeId> = (0..4).map(|_| tracer.allocate_id()).collect();
    assert_eq!(
        ids[0],
        ProbeId {
            ident: 0,
            seq: 0xfffe
        }
    );
    assert_eq!(
        ids[1],
        ProbeId {
            ident: 0,
            seq: 0xffff
        }
    );
    assert_eq!(ids[2], ProbeId { ident: 2, seq: 0 }, "ident 1 is ping's");
    assert_eq!(ids[3], ProbeId { ident: 2, seq: 1 });
}

fn pending_with(dst: &str, id: ProbeId) -> (PendingMap, mpsc::UnboundedReceiver<Heard>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let map: PendingMap = Arc::default();
    lock(&map).insert(
        id,
        Pending {
            dst: ip(dst),
            ttl: Ttl(2),
            token: TOKEN,
            answers: tx,
        },
    );
    (map, rx)
}

const ID: ProbeId = ProbeId { ident: 7, seq: 9 };
const TOKEN: u64 = 0x5eed;

#[tokio::test]
async fn reply_is_matched_by_id_and_destination() {
    let (map, _rx) = pending_with("198.19.3.10", ID);
    let reply = Reply {
        from: ip("198.18.2.2"),
        kind: ReplyKind::TimeExceeded,
        probe: ID,
        probe_dst: ip("198.19.3.10"),
        token: None,
    };
    let (_, answer) = match_reply(&map, &reply, Instant::now()).unwrap();
    assert_eq!(answer.ttl, Ttl(2));
    assert_eq!(answer.from, ip("198.18.2.2"));
    assert!(lock(&map).is_empty(), "a probe is answered once");
    assert!(match_reply(&map, &reply, Instant::now()).is_none());
}

#[tokio::test]
async fn reply_quoting_another_destination_is_ignored() {
    let (map, _rx) = pending_with("198.19.3.10", ID);
    let reply = Reply {
        from: ip("198.18.2.2"),
        kind: ReplyKind::TimeExceeded,
        probe: ID,
        probe_dst: ip("198.19.3.11"),
        token: Some(TOKEN),
    };
    assert!(match_reply(&map, &reply, Instant::now()).is_none());
    assert_eq!(lock(&map).len(), 1, "the real answer can still come");
    let wrong_id = Reply {
        probe: ProbeId { ident: 7, seq: 10 },
        probe_dst: ip("198.19.3.10"),
        ..reply
    };
    assert!(match_reply(&map, &wrong_id, Instant::now()).is_none());
}

#[tokio::test]
async fn only_the_probes_own_token_answers_it() {
    let (map, _rx) = pending_with("198.19.3.10", ID);
    let forged = Reply {
        from: ip("198.19.3.10"),
        kind: ReplyKind::EchoReply,
        probe: ID,
        probe_dst: ip("198.19.3.10"),
        token: Some(TOKEN + 1),
    };
    assert!(match_reply(&map, &forged, Instant::now()).is_none());
    let tokenless = Reply {
        token: None,
        ..forged
    };
    assert!(
        match_reply(&map, &tokenless, Instant::now()).is_none(),
        "an echo reply must carry the token"
    );
    let quote_too_short = Reply {
        from: ip("198.18.2.2"),
        kind: ReplyKind::TimeExceeded,
        token: None,
        ..forged
    };
    let wrong_quote = Reply {
        token: Some(TOKEN + 1),
        ..quote_too_short
    };
    assert!(match_reply(&map, &wrong_quote, Instant::now()).is_none());
    assert!(
        match_reply(&map, &quote_too_short, Instant::now()).is_some(),
        "an error quoting only 8 bytes cannot be checked"
    );
    let (map, _rx) = pending_with("198.19.3.10", ID);
    let genuine = Reply {
        token: Some(TOKEN),
        ..forged
    };
    assert!(match_reply(&map, &genuine, Instant::now()).is_some());
}
