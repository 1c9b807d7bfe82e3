//! Traceroute's tests: ids, and matching answers to their probes. What one
//! trace heard is tested with it, in `answers`.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn ids_are_unique_never_pings_and_not_to_be_guessed() {
    // Both families fail to open without privileges or succeed as root;
    // either way the ids are the same.
    let ping_ident = 0x0001;
    let tracer = Tracer::new(ping_ident);
    let ids: Vec<ProbeId> = (0..300_000).map(|_| tracer.allocate_id()).collect();
    assert!(ids.iter().all(|id| id.ident != ping_ident));
    let unique: std::collections::HashSet<ProbeId> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len());
    // What a forger who saw one probe would try: the same identifier and
    // a sequence number within 8. A counter makes that all but certain.
    let near = ids
        .windows(2)
        .filter(|w| {
            w[1].ident == w[0].ident && w[1].seq.wrapping_sub(w[0].seq).wrapping_add(8) <= 16
        })
        .count();
    assert!(near <= 10, "{near} ids follow from the one before");
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
            heard_unverified: false,
            answers: tx,
        },
    );
    (map, rx)
}

const ID: ProbeId = ProbeId { ident: 7, seq: 9 };
const TOKEN: u64 = 0x5eed;

/// An answer from `from` to the probe [`ID`] sent to `probe_dst`.
fn reply_to_id(from: &str, kind: ReplyKind, probe_dst: &str, token: Option<u64>) -> Reply {
    Reply {
        from: ip(from),
        kind,
        probe: ID,
        probe_dst: ip(probe_dst),
        token,
    }
}

#[tokio::test]
async fn reply_is_matched_by_id_and_destination() {
    let (map, _rx) = pending_with("198.19.3.10", ID);
    let reply = reply_to_id(
        "198.18.2.2",
        ReplyKind::TimeExceeded,
        "198.19.3.10",
        Some(TOKEN),
    );
    let (_, answer) = match_reply(&map, &reply, Instant::now()).unwrap();
    assert_eq!(answer.ttl, Ttl(2));
    assert_eq!(answer.from, ip("198.18.2.2"));
    assert!(lock(&map).is_empty(), "a probe is answered once");
    assert!(match_reply(&map, &reply, Instant::now()).is_none());
}

#[tokio::test]
async fn reply_quoting_another_destination_is_ignored() {
    let (map, _rx) = pending_with("198.19.3.10", ID);
    let reply = reply_to_id(
        "198.18.2.2",
        ReplyKind::TimeExceeded,
        "198.19.3.11",
        Some(TOKEN),
    );
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
    let forged = reply_to_id(
        "198.19.3.10",
        ReplyKind::EchoReply,
        "198.19.3.10",
        Some(TOKEN + 1),
    );
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
    let (_, heard) = match_reply(&map, &quote_too_short, Instant::now())
        .expect("an error quoting only 8 bytes cannot be checked, so it is passed on");
    assert!(!heard.verified);
    assert!(
        match_reply(&map, &quote_too_short, Instant::now()).is_none(),
        "only the first unverified answer is passed on"
    );
    assert_eq!(lock(&map).len(), 1, "and a verified answer can still come");
    let genuine = Reply {
        token: Some(TOKEN),
        ..forged
    };
    let (_, heard) = match_reply(&map, &genuine, Instant::now()).unwrap();
    assert!(heard.verified);
    assert!(lock(&map).is_empty(), "which claims the probe");
}
