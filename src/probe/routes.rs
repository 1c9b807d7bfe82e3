//! The default gateway of each target, from the kernel routing table.
//!
//! The parsers are pure functions over the text of `/proc/net/route` and
//! `/proc/net/ipv6_route`; only [`RouteTable::read_kernel`] touches the
//! file system. A lookup is a longest-prefix match, ties broken by the
//! lowest metric, as the kernel does within one table.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Serialize, Serializer};

/// How a target is reached from this board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gateway {
    /// On a directly connected network (or this machine itself).
    Direct,
    /// Through this router.
    Via(IpAddr),
}

impl fmt::Display for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gateway::Direct => f.write_str("direct"),
            Gateway::Via(addr) => write!(f, "{addr}"),
        }
    }
}

impl Serialize for Gateway {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

const RTF_UP: u32 = 0x0001;
const RTF_GATEWAY: u32 = 0x0002;
const RTF_REJECT: u32 = 0x0200;

/// One kernel route.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    net: IpAddr,
    prefix_len: u8,
    gateway: Option<IpAddr>,
    metric: u32,
    /// unreachable / prohibit / blackhole: the destination has no way out.
    reject: bool,
}

impl Route {
    fn contains(&self, addr: IpAddr) -> bool {
        match (self.net, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => prefix_matches(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(a)) << 96,
                self.prefix_len,
            ),
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                prefix_matches(u128::from(net), u128::from(a), self.prefix_len)
            }
            _ => false,
        }
    }
}

/// Whether the top `len` bits of two left-aligned addresses agree.
fn prefix_matches(net: u128, addr: u128, len: u8) -> bool {
    if len == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(len.min(128)));
    net & mask == addr & mask
}

/// A snapshot of the kernel's IPv4 and IPv6 routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Parse the text of `/proc/net/route` and `/proc/net/ipv6_route`.
    /// Lines that do not parse (the header, anything garbled) are skipped.
    pub fn parse(ipv4_text: &str, ipv6_text: &str) -> RouteTable {
        let mut routes: Vec<Route> = ipv4_text.lines().filter_map(parse_ipv4_line).collect();
        routes.extend(ipv6_text.lines().filter_map(parse_ipv6_line));
        RouteTable { routes }
    }

    /// Read the running kernel's tables. A missing file (no IPv6, not
    /// Linux) is an empty table for that family.
    pub fn read_kernel() -> RouteTable {
        let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
        RouteTable::parse(&v4, &v6)
    }

    /// The routers of the default routes (IPv4 and IPv6): the board's own
    /// gateways, in table order, each once.
    pub fn default_gateways(&self) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for r in &self.routes {
            if r.prefix_len == 0 && !r.reject {
                if let Some(gw) = r.gateway {
                    if !out.contains(&gw) {
                        out.push(gw);
                    }
                }
            }
        }
        out
    }

    /// The gateway that reaches `addr`, or `None` when no route does.
    pub fn gateway_for(&self, addr: IpAddr) -> Option<Gateway> {
        // Loopback lives in the kernel's local table, which
        // /proc/net/route does not show.
        if addr.is_loopback() {
            return Some(Gateway::Direct);
        }
        let best = self
            .routes
            .iter()
            .filter(|r| r.contains(addr))
            .max_by(|a, b| {
                a.prefix_len
                    .cmp(&b.prefix_len)
                    .then(b.metric.cmp(&a.metric))
            })?;
        if best.reject {
            return None;
        }
        Some(best.gateway.map_or(Gateway::Direct, Gateway::Via))
    }
}

/// `Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT`,
/// addresses as the hex of a native-endian u32 holding network-order bytes.
fn parse_ipv4_line(line: &str) -> Option<Route> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 8 {
        return None;
    }
    let hex_addr = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
    };
    let dest = hex_addr(f[1])?;
    let gateway = hex_addr(f[2])?;
    let flags = u32::from_str_radix(f[3], 16).ok()?;
    let metric: u32 = f[6].parse().ok()?;
    let mask = hex_addr(f[7])?;
    if flags & RTF_UP == 0 {
        return None;
    }
    // A netmask is contiguous ones; count them.
    let prefix_len = u32::from(mask).leading_ones() as u8;
    Some(Route {
        net: IpAddr::V4(dest),
        prefix_len,
        gateway: (flags & RTF_GATEWAY != 0).then_some(IpAddr::V4(gateway)),
        metric,
        reject: flags & RTF_REJECT != 0,
    })
}

/// `dest plen src plen next_hop metric refcnt use flags iface`, addresses as
/// 32 hex digits in network order.
fn parse_ipv6_line(line: &str) -> Option<Route> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 {
        return None;
    }
    let hex_addr = |s: &str| {
        (s.len() == 32)
            .then(|| u128::from_str_radix(s, 16).ok())
            .flatten()
            .map(Ipv6Addr::from)
    };
    let dest = hex_addr(f[0])?;
    let prefix_len = u8::from_str_radix(f[1], 16).ok().filter(|p| *p <= 128)?;
    let next_hop = hex_addr(f[4])?;
    let metric = u32::from_str_radix(f[5], 16).ok()?;
    let flags = u32::from_str_radix(f[8], 16).ok()?;
    if flags & RTF_UP == 0 {
        return None;
    }
    Some(Route {
        net: IpAddr::V6(dest),
        prefix_len,
        gateway: (!next_hop.is_unspecified()).then_some(IpAddr::V6(next_hop)),
        metric,
        reject: flags & RTF_REJECT != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured in the probe namespace of scripts/lab.sh (kernel 6.18):
    // default via r1, the lab link on-link, the kernel's own /128 and
    // link-local entries, and the reject default it keeps on lo.
    const LAB_V4: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010112C6\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000112C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";

    const LAB_V6: &str = "\
20010db8000100000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000100000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000003 00000000 80200001       lo
20010db8000100000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000004 00000000 80200001     eth0
fe80000000000000000000fffe000102 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001     eth0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000004 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn lab() -> RouteTable {
        RouteTable::parse(LAB_V4, LAB_V6)
    }

    #[test]
    fn default_route_gives_the_router() {
        assert_eq!(
            lab().gateway_for(ip("198.19.3.10")),
            Some(Gateway::Via(ip("198.18.1.1")))
        );
        assert_eq!(
            lab().gateway_for(ip("2001:db8:3::10")),
            Some(Gateway::Via(ip("2001:db8:1::1")))
        );
    }

    #[test]
    fn the_board_gateways_are_the_default_routes_routers() {
        assert_eq!(
            lab().default_gateways(),
            vec![ip("198.18.1.1"), ip("2001:db8:1::1")]
        );
    }

    #[test]
    fn link_local_is_direct_and_the_lab_default_is_used() {
        assert_eq!(lab().gateway_for(ip("fe80::1")), Some(Gateway::Direct));
        assert_eq!(
            lab().gateway_for(ip("2001:db8:77::1")),
            Some(Gateway::Via(ip("2001:db8:1::1")))
        );
    }

    /// Each of `addrs` is reached directly on the lab's routes.
    fn assert_direct(addrs: &[&str]) {
        for a in addrs {
            assert_eq!(lab().gateway_for(ip(a)), Some(Gateway::Direct), "{a}");
        }
    }

    #[test]
    fn on_link_is_direct() {
        assert_direct(&["198.18.1.1", "2001:db8:1::1"]);
    }

    #[test]
    fn loopback_and_own_address_are_direct() {
        assert_direct(&["127.0.0.9", "::1", "2001:db8:1::2"]);
    }

    #[test]
    fn longest_prefix_wins_then_lowest_metric() {
        let v4 = "\
Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT
eth0\t00000000\t010112C6\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth1\t000013C6\t010212C6\t0003\t0\t0\t100\t0000FFFF\t0\t0\t0
eth2\t000313C6\t010312C6\t0003\t0\t0\t100\t00FFFFFF\t0\t0\t0
eth3\t000313C6\t010412C6\t0003\t0\t0\t50\t00FFFFFF\t0\t0\t0
";
        let t = RouteTable::parse(v4, "");
        assert_eq!(
            t.gateway_for(ip("198.19.3.7")),
            Some(Gateway::Via(ip("198.18.4.1")))
        );
        assert_eq!(
            t.gateway_for(ip("198.19.9.7")),
            Some(Gateway::Via(ip("198.18.2.1")))
        );
        assert_eq!(
            t.gateway_for(ip("198.18.9.7")),
            Some(Gateway::Via(ip("198.18.1.1")))
        );
    }

    #[test]
    fn no_route_and_reject_routes_give_none() {
        let v4 = "\
Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT
eth0\t000112C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
*\t000313C6\t00000000\t0201\t0\t0\t0\t00FFFFFF\t0\t0\t0
";
        // The v6 table of a host without IPv6 connectivity: a reject
        // default route on lo.
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
        let t = RouteTable::parse(v4, v6);
        assert_eq!(t.gateway_for(ip("198.19.3.1")), None, "reject route");
        assert_eq!(t.gateway_for(ip("198.19.200.1")), None, "no route at all");
        assert_eq!(
            t.gateway_for(ip("2001:db8:3::10")),
            None,
            "v6 reject default"
        );
    }

    #[test]
    fn routes_that_are_down_are_ignored() {
        let v4 = "eth0\t00000000\t010112C6\t0002\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(
            RouteTable::parse(v4, "").gateway_for(ip("198.19.3.1")),
            None
        );
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let v4 = "eth0 zz 00 0003 0 0 0 00000000\nshort line\n\n";
        let v6 = "not hex at all 00 11 22 33 44 55 66\n20010db8 40 x\n";
        assert_eq!(RouteTable::parse(v4, v6), RouteTable::default());
        let v6_bad_plen = "20010db8000100000000000000000000 ff 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n";
        assert_eq!(RouteTable::parse("", v6_bad_plen), RouteTable::default());
    }

    #[test]
    fn gateway_renders_as_address_or_direct() {
        assert_eq!(Gateway::Direct.to_string(), "direct");
        assert_eq!(
            serde_json::to_string(&Gateway::Via(ip("198.18.1.1"))).unwrap(),
            "\"198.18.1.1\""
        );
    }
}
