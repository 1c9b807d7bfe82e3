//! Traceroute's tests: ids, and matching answers to their probes. What one
//! trace heard is tested with it, in `answers`.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
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
    let reply = reply_to_id("198.18.2.2", ReplyKind::TimeExceeded, "198.19.3.10", None);
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
