//! Which targets a view of the board's table shows, and in which order:
//! the status and group filters, the search and the sort of an
//! [`IndexQuery`] over a snapshot. `/` and `/api/v1/status` both take
//! their rows from here and page them with [`crate::http::paging`]. Pure.
//!
//! Sorting compares in place (no key is copied per comparison), so a
//! table of 100,000 targets sorts in milliseconds on a board.

use std::cmp::Ordering;

use super::query::{Dir, IndexQuery, SortKey};
use crate::monitor::{Snapshot, TargetView};
use crate::probe::{Gateway, Status};

/// Compare two optional keys: present values by `cmp` in direction `dir`,
/// missing ones (not probed, no reply) always last.
fn cmp_opt<T>(a: Option<T>, b: Option<T>, dir: Dir, cmp: impl Fn(&T, &T) -> Ordering) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => match dir {
            Dir::Asc => cmp(&x, &y),
            Dir::Desc => cmp(&y, &x),
        },
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Worst first when ascending: that is what one sorts by status for.
fn status_rank(s: Status) -> u8 {
    match s {
        Status::NotWorking => 0,
        Status::Degraded => 1,
        Status::Working => 2,
    }
}

/// The table's rows: filtered and searched by the query, then sorted
/// (ties in sheet order). Every matching row, for the caller to page.
pub fn rows<'a>(snap: &'a Snapshot, q: &IndexQuery) -> Vec<&'a TargetView> {
    let needle = q.search.as_deref().map(str::to_lowercase);
    let mut rows: Vec<&TargetView> = snap
        .targets
        .iter()
        .filter(|t| q.status.is_none_or(|f| f.matches(t.status)))
        .filter(|t| q.group.is_none() || t.group.as_deref() == q.group.as_deref())
        .filter(|t| needle.as_deref().is_none_or(|n| found_in(t, n)))
        .collect();
    let d = q.dir;
    let f64_cmp = |a: &f64, b: &f64| a.total_cmp(b);
    rows.sort_by(|a, b| {
        let o = match q.sort {
            SortKey::Sno => cmp_opt(Some(a.sno), Some(b.sno), d, Ord::cmp),
            SortKey::Ip => {
                // IP targets by address, then host names alphabetically.
                let key = |t: &TargetView| (t.ip.is_none(), t.ip);
                cmp_opt(Some(key(a)), Some(key(b)), d, Ord::cmp).then_with(|| {
                    cmp_opt(Some(&a.addr), Some(&b.addr), d, |x, y| cmp_caseless(x, y))
                })
            }
            SortKey::Name => cmp_opt(a.name.as_ref(), b.name.as_ref(), d, |x, y| {
                cmp_caseless(x, y)
            }),
            SortKey::Status => cmp_opt(
                a.status.map(status_rank),
                b.status.map(status_rank),
                d,
                Ord::cmp,
            ),
            SortKey::Gateway => {
                let key = |t: &TargetView| {
                    t.gateway.map(|g| match g {
                        Gateway::Direct => (0, None),
                        Gateway::Via(ip) => (1, Some(ip)),
                    })
                };
                cmp_opt(key(a), key(b), d, Ord::cmp)
            }
            SortKey::Routers => {
                let key = |t: &TargetView| (!t.hops.is_empty()).then(|| t.routers().len());
                cmp_opt(key(a), key(b), d, Ord::cmp)
            }
            SortKey::Updated => cmp_opt(a.last_updated, b.last_updated, d, Ord::cmp),
            SortKey::Loss => cmp_opt(a.loss, b.loss, d, f64_cmp),
            SortKey::Rtt => cmp_opt(a.rtt_ms.map(|r| r.avg), b.rtt_ms.map(|r| r.avg), d, f64_cmp),
            SortKey::Uptime => cmp_opt(a.uptime_24h, b.uptime_24h, d, f64_cmp),
        };
        o.then(a.sno.cmp(&b.sno))
    });
    rows
}

/// Text order with case ignored, without a copy of either side.
fn cmp_caseless(a: &str, b: &str) -> Ordering {
    a.chars()
        .flat_map(char::to_lowercase)
        .cmp(b.chars().flat_map(char::to_lowercase))
}

/// Whether the lowercase `needle` is in the target's address, IP, name or
/// group, case ignored.
fn found_in(t: &TargetView, needle: &str) -> bool {
    let has = |text: &str| text.to_lowercase().contains(needle);
    has(&t.addr)
        || t.ip.is_some_and(|ip| ip.to_string().contains(needle))
        || t.name.as_deref().is_some_and(has)
        || t.group.as_deref().is_some_and(has)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::testdata::{self, HOSTILE_GROUP};

    fn keys(q: &str) -> Vec<String> {
        let snap = testdata::snapshot();
        rows(&snap, &IndexQuery::parse(Some(q)))
            .iter()
            .map(|t| t.key.to_string())
            .collect()
    }

    #[test]
    fn filters_by_status_and_group() {
        assert_eq!(keys("status=not_working"), ["198.18.0.9"]);
        assert_eq!(keys("status=problems"), ["198.18.0.9", "2001:db8::1"]);
        assert_eq!(keys("status=pending"), ["printer.lan"]);
        assert_eq!(keys("group=Rack+1"), ["2001:db8::1"]);
        assert_eq!(
            keys(&format!(
                "group={}",
                crate::http::query::encode_query_value(HOSTILE_GROUP)
            )),
            ["198.18.0.1"]
        );
        assert!(keys("group=nope").is_empty());
    }

    #[test]
    fn sorts_with_missing_values_last() {
        for (q, want) in [
            (
                "sort=rtt",
                ["198.18.0.1", "2001:db8::1", "198.18.0.9", "printer.lan"],
            ),
            (
                "sort=rtt&dir=desc",
                ["2001:db8::1", "198.18.0.1", "198.18.0.9", "printer.lan"],
            ),
            (
                "sort=status",
                ["198.18.0.9", "2001:db8::1", "198.18.0.1", "printer.lan"],
            ),
            (
                "sort=sno&dir=desc",
                ["printer.lan", "2001:db8::1", "198.18.0.9", "198.18.0.1"],
            ),
            (
                "sort=ip",
                ["198.18.0.1", "198.18.0.9", "2001:db8::1", "printer.lan"],
            ),
        ] {
            assert_eq!(keys(q), want, "{q}");
        }
        assert_eq!(keys("sort=name")[..2], ["198.18.0.1", "2001:db8::1"]);
        for k in ["gateway", "routers", "updated", "loss", "uptime"] {
            assert_eq!(keys(&format!("sort={k}")).len(), 4, "{k}");
        }
    }

    #[test]
    fn the_default_order_puts_the_problems_first() {
        assert_eq!(
            keys(""),
            ["198.18.0.9", "2001:db8::1", "198.18.0.1", "printer.lan"]
        );
    }

    #[test]
    fn search_finds_address_ip_name_and_group_with_case_ignored() {
        let snap = testdata::snapshot();
        for t in &snap.targets {
            let mut probes = vec![t.addr.to_uppercase()];
            probes.extend(t.name.iter().map(|n| n.to_uppercase()));
            probes.extend(t.group.iter().map(|g| g.to_string()));
            for text in probes {
                let q = format!("q={}", crate::http::query::encode_query_value(&text));
                assert!(
                    keys(&q).contains(&t.key.to_string()),
                    "{text:?} should find {}",
                    t.key
                );
            }
        }
        assert!(keys("q=no-such-thing").is_empty());
        // Combined with a filter, both must hold.
        assert_eq!(keys("q=198.18.0&status=not_working"), ["198.18.0.9"]);
    }
}
