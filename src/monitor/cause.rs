//! Words for what the probes found: a path as text, whether a path
//! changed, and why a target is Not Working. Pure.

use std::net::IpAddr;

use crate::probe::{Gateway, Hop};

/// A path as one line: `198.18.1.1 > * > 198.19.3.10`.
pub fn describe_path(hops: &[Hop]) -> String {
    if hops.is_empty() {
        return "no hops".to_string();
    }
    hops.iter()
        .map(|h| h.addr.map_or_else(|| "*".to_string(), |a| a.to_string()))
        .collect::<Vec<_>>()
        .join(" > ")
}

/// Whether a new trace shows different routers on the way to `target`.
/// A hop that stayed silent in one of the traces matches anything (routers
/// rate-limit their answers), a hop the new trace did not ask (inferred
/// from other paths) proves nothing, and whether the destination answered
/// is the status's business, not the path's; so only a different router
/// seen fresh at a TTL, or a different number of routers before a
/// destination that answered both times, count.
pub fn path_changed(
    target: Option<IpAddr>,
    old: &[Hop],
    old_reached: bool,
    new: &[Hop],
    new_reached: bool,
) -> bool {
    let routers = |hops: &[Hop]| -> usize {
        match hops.last() {
            Some(last) if last.addr.is_some() && last.addr == target => hops.len() - 1,
            _ => hops.len(),
        }
    };
    let (old, new) = (&old[..routers(old)], &new[..routers(new)]);
    if old_reached && new_reached && old.len() != new.len() {
        return true;
    }
    old.iter().zip(new).any(|(a, b)| match (a.addr, b.addr) {
        (Some(x), Some(y)) => !a.inferred && b.fresh() && x != y,
        _ => false,
    })
}

/// What is known about a Not Working target.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The route that reaches it; `None` when no route does.
    pub gateway: Option<Gateway>,
    /// Whether that gateway, when it is one of the board's own, answers
    /// ping: `Some(false)` down, `Some(true)` up, `None` unknown.
    pub board_gateway_up: Option<bool>,
    /// The latest trace, if there is one.
    pub hops: Option<&'a [Hop]>,
    /// A router's "unreachable" answer, already in words.
    pub unreachable: Option<&'a str>,
    /// The host name did not resolve.
    pub resolve_error: Option<&'a str>,
    /// Why the last trace could not run (e.g. no raw-socket privilege).
    pub trace_error: Option<&'a str>,
    /// A router's ICMP ration kept the latest trace from a hop; it is
    /// being asked again.
    pub unsettled: bool,
}

/// Where the path to a Not Working target stops, in one sentence.
pub fn not_working_cause(target: Option<IpAddr>, e: &Evidence<'_>) -> String {
    if let Some(err) = e.resolve_error {
        return format!("the name does not resolve: {err}");
    }
    if e.board_gateway_up == Some(false) {
        if let Some(Gateway::Via(gw)) = e.gateway {
            return format!("the board's own gateway {gw} is not answering");
        }
    }
    let Some(gateway) = e.gateway else {
        return "the board has no route to this address".to_string();
    };
    if let Some(reason) = e.unreachable {
        return reason.to_string();
    }
    let Some(hops) = e.hops else {
        return match e.trace_error {
            Some(why) => format!("no reply; where the path stops is unknown: {why}"),
            None => "no reply; not traced yet".to_string(),
        };
    };
    let last = hops
        .iter()
        .rev()
        .find(|h| h.addr.is_some() && h.addr != target);
    match (last, gateway) {
        (Some(hop), _) => format!(
            "the path stops after {} (hop {}{})",
            hop.addr.map(|a| a.to_string()).unwrap_or_default(),
            hop.ttl.0,
            match hop.last_seen {
                Some(seen) => format!(", last seen {}", seen.rfc3339()),
                None if hop.inferred => ", as on the paths it shares".to_string(),
                None => String::new(),
            }
        ),
        (None, Gateway::Via(_)) if e.unsettled => "no reply; the routers on the way ration their ICMP answers and have not answered this trace yet; asking again".to_string(),
        // Routers limit how many ICMP errors they send (Linux: about one a
        // second per source for "unreachable"), so silence on the way is
        // weak evidence when the gateway itself answers ping.
        (None, Gateway::Via(gw)) if e.board_gateway_up == Some(true) => format!(
            "no reply, and no router on the way answered the trace; the gateway {gw} answers ping (routers may be limiting their ICMP replies)"
        ),
        (None, Gateway::Via(gw)) => format!("no router answered, not even the gateway {gw}"),
        (None, Gateway::Direct) => "no reply on the local network".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::monitor::testkit::{hop, hops, ip};

    const NOTHING: Evidence<'static> = Evidence {
        gateway: None,
        board_gateway_up: None,
        hops: None,
        unreachable: None,
        resolve_error: None,
        trace_error: None,
        unsettled: false,
    };

    #[test]
    fn paths_read_as_one_line() {
        let p = hops(&[Some("198.18.1.1"), None, Some("198.19.3.10")]);
        assert_eq!(describe_path(&p), "198.18.1.1 > * > 198.19.3.10");
        assert_eq!(describe_path(&[]), "no hops");
    }

    #[test]
    fn a_different_router_is_a_change_and_silence_is_not() {
        let a = hops(&[Some("198.18.1.1"), Some("198.18.2.2"), Some("198.19.3.10")]);
        let silent = hops(&[Some("198.18.1.1"), None, Some("198.19.3.10")]);
        let other = hops(&[Some("198.18.1.1"), Some("198.18.9.9"), Some("198.19.3.10")]);
        let longer = hops(&[
            Some("198.18.1.1"),
            Some("198.18.9.9"),
            Some("198.18.2.2"),
            Some("198.19.3.10"),
        ]);
        let dst = Some(ip("198.19.3.10"));
        assert!(!path_changed(dst, &a, true, &a, true));
        assert!(!path_changed(dst, &a, true, &silent, true));
        assert!(path_changed(dst, &a, true, &other, true));
        assert!(path_changed(dst, &a, true, &longer, true));
        // The destination going silent is a status change, not a path one.
        assert!(!path_changed(dst, &a, true, &a[..2], false));
        assert!(!path_changed(dst, &a[..2], false, &a, true));
    }

    #[test]
    fn the_cause_names_where_the_path_stops() {
        let hops = hops(&[Some("198.18.1.1"), Some("198.18.2.2"), None]);
        let e = Evidence {
            gateway: Some(Gateway::Via(ip("198.18.1.1"))),
            hops: Some(&hops),
            ..NOTHING
        };
        assert_eq!(
            not_working_cause(Some(ip("198.19.3.20")), &e),
            "the path stops after 198.18.2.2 (hop 2)"
        );
        // Known from earlier rounds or from the paths it shares: still
        // where the path stops, and the cause says how it is known.
        let seen = Timestamp(1_795_608_000_000);
        let kept = [
            hop(1, Some("198.18.1.1")),
            Hop {
                last_seen: Some(seen),
                ..hop(2, Some("198.18.2.2"))
            },
        ];
        let e = Evidence {
            hops: Some(&kept),
            ..e
        };
        assert_eq!(
            not_working_cause(Some(ip("198.19.3.20")), &e),
            format!(
                "the path stops after 198.18.2.2 (hop 2, last seen {})",
                seen.rfc3339()
            )
        );
        let inferred = [
            hop(1, Some("198.18.1.1")),
            Hop {
                inferred: true,
                ..hop(2, Some("198.18.2.2"))
            },
        ];
        let e = Evidence {
            hops: Some(&inferred),
            ..e
        };
        assert!(not_working_cause(Some(ip("198.19.3.20")), &e)
            .ends_with("(hop 2, as on the paths it shares)"));
    }

    #[test]
    fn routers_that_ration_their_answers_are_not_blamed() {
        let silent = [hop(1, None), hop(2, None)];
        let e = Evidence {
            gateway: Some(Gateway::Via(ip("198.18.1.1"))),
            hops: Some(&silent),
            unsettled: true,
            ..NOTHING
        };
        let cause = not_working_cause(Some(ip("198.19.5.9")), &e);
        assert!(cause.contains("ration their ICMP answers"), "{cause}");
        assert!(!cause.contains("stops after"), "{cause}");
    }

    #[test]
    fn a_hop_not_asked_is_no_path_change() {
        let dst = Some(ip("198.19.3.10"));
        let old = hops(&[Some("198.18.1.1"), Some("198.18.2.2"), Some("198.19.3.10")]);
        let mut new = old.clone();
        new[0] = Hop {
            inferred: true,
            ..hop(1, Some("198.18.9.1"))
        };
        assert!(!path_changed(dst, &old, true, &new, true));
        new[0].inferred = false;
        assert!(path_changed(dst, &old, true, &new, true));
        // Nor is a fresh router where the old path only had an inference.
        let mut inferred_before = old;
        inferred_before[0].inferred = true;
        assert!(!path_changed(dst, &inferred_before, true, &new, true));
    }

    #[test]
    fn a_down_board_gateway_is_blamed_instead_of_the_path() {
        let hops = [hop(1, None)];
        let e = Evidence {
            gateway: Some(Gateway::Via(ip("198.18.1.1"))),
            board_gateway_up: Some(false),
            hops: Some(&hops),
            ..NOTHING
        };
        assert_eq!(
            not_working_cause(Some(ip("198.19.3.10")), &e),
            "the board's own gateway 198.18.1.1 is not answering"
        );
        let e = Evidence {
            board_gateway_up: Some(true),
            ..e
        };
        let cause = not_working_cause(Some(ip("198.19.3.10")), &e);
        assert!(
            cause.contains("the gateway 198.18.1.1 answers ping"),
            "{cause}"
        );
        let e = Evidence {
            board_gateway_up: None,
            ..e
        };
        assert_eq!(
            not_working_cause(Some(ip("198.19.3.10")), &e),
            "no router answered, not even the gateway 198.18.1.1"
        );
    }

    #[test]
    fn other_causes() {
        assert_eq!(
            not_working_cause(
                None,
                &Evidence {
                    resolve_error: Some("no such host"),
                    ..NOTHING
                }
            ),
            "the name does not resolve: no such host"
        );
        assert_eq!(
            not_working_cause(Some(ip("198.19.200.1")), &NOTHING),
            "the board has no route to this address"
        );
        let e = Evidence {
            gateway: Some(Gateway::Via(ip("198.18.1.1"))),
            unreachable: Some(
                "198.18.1.1 reports the destination unreachable (network unreachable)",
            ),
            ..NOTHING
        };
        assert!(not_working_cause(Some(ip("198.19.200.1")), &e).contains("network unreachable"));
        let silent = [hop(1, None), hop(2, None)];
        let e = Evidence {
            gateway: Some(Gateway::Direct),
            hops: Some(&silent),
            ..NOTHING
        };
        assert_eq!(not_working_cause(None, &e), "no reply on the local network");
        let e = Evidence {
            gateway: Some(Gateway::Direct),
            trace_error: Some("traceroute needs CAP_NET_RAW"),
            ..NOTHING
        };
        assert!(not_working_cause(None, &e).ends_with("traceroute needs CAP_NET_RAW"));
    }
}
