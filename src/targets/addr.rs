//! Deciding what the text of an ip cell is: an IP address, a host name, or a
//! mistake, and if a mistake, which one, so the message can say how to fix it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What to monitor: an IP address, or a DNS host name to resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetAddr {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A host name as written in the sheet (syntax checked, not resolved).
    Host(String),
}

impl TargetAddr {
    /// `"ipv4"`, `"ipv6"` or `"host"`, as used in JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetAddr::Ip(IpAddr::V4(_)) => "ipv4",
            TargetAddr::Ip(IpAddr::V6(_)) => "ipv6",
            TargetAddr::Host(_) => "host",
        }
    }

    /// The key that identifies this target in the store and the URLs: an
    /// IP in its canonical text form, or the host name in lower case
    /// without a trailing dot.
    pub fn key(&self) -> String {
        self.dedup_key().to_string()
    }

    /// The identity used to find duplicates: host names compare without
    /// case and without a trailing dot, as DNS does.
    pub(crate) fn dedup_key(&self) -> TargetAddr {
        match self {
            TargetAddr::Ip(ip) => TargetAddr::Ip(*ip),
            TargetAddr::Host(h) => {
                TargetAddr::Host(h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase())
            }
        }
    }
}

impl fmt::Display for TargetAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetAddr::Ip(ip) => write!(f, "{ip}"),
            TargetAddr::Host(h) => f.write_str(h),
        }
    }
}

impl Serialize for TargetAddr {
    /// `{"addr": "127.0.0.1", "kind": "ipv4"}`; [`Target`](super::Target)
    /// flattens these two fields into itself.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("TargetAddr", 2)?;
        s.serialize_field("addr", &self.to_string())?;
        s.serialize_field("kind", self.kind())?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for TargetAddr {
    /// The form [`Serialize`] writes. The address is checked again as a
    /// cell would be, so what comes from another process (the workbook
    /// reader) is held to the sheet's own rules.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Written {
            addr: String,
            kind: String,
        }
        let w = Written::deserialize(deserializer)?;
        let addr = classify(&w.addr).map_err(|e| serde::de::Error::custom(e.describe(&w.addr)))?;
        if addr.kind() != w.kind || addr.to_string() != w.addr {
            return Err(serde::de::Error::custom(format!(
                "{:?} is not written as a {} target is",
                w.addr, w.kind
            )));
        }
        Ok(addr)
    }
}

/// Why a cell's text is not a usable address. The hint, if any, is appended
/// to the message after a semicolon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AddrError {
    /// Not an IP address nor a host name (this includes intended IPv4
    /// literals that are invalid).
    NotAddress(Option<String>),
    /// Has the shape of an IPv6 address (colons, brackets) but is not one.
    Ipv6(Option<String>),
}

impl AddrError {
    /// The message for `value`: what is wrong, then the hint if any.
    pub(crate) fn describe(&self, value: &str) -> String {
        let (what, hint) = match self {
            AddrError::NotAddress(hint) => ("is not an IP address or host name", hint),
            AddrError::Ipv6(hint) => ("is not a valid IPv6 address", hint),
        };
        match hint {
            Some(hint) => format!("{value:?} {what}; {hint}"),
            None => format!("{value:?} {what}"),
        }
    }
}

/// An address typed by a person (e.g. on the command line): the same rules
/// as an ip cell, surrounding spaces ignored. The error says what to fix.
pub fn parse_address(text: &str) -> Result<TargetAddr, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("an empty address; give an IP address or host name".into());
    }
    classify(trimmed).map_err(|e| e.describe(trimmed))
}

/// Classifies already-trimmed, non-empty cell text.
pub(crate) fn classify(s: &str) -> Result<TargetAddr, AddrError> {
    if let Some(inner) = s.strip_prefix('[') {
        return match inner.strip_suffix(']') {
            Some(inner) => inner
                .parse::<Ipv6Addr>()
                .map(|a| TargetAddr::Ip(IpAddr::V6(a)))
                .map_err(|_| AddrError::Ipv6(ipv6_hint(inner))),
            None => Err(AddrError::Ipv6(Some(
                "write the address without brackets or a port, e.g. ::1".into(),
            ))),
        };
    }
    if s.contains("://") {
        return Err(AddrError::NotAddress(Some(
            "write only the host name or address, without a scheme such as http:// or a path"
                .into(),
        )));
    }
    match s.matches(':').count() {
        0 => {}
        // Every IPv6 address has at least two colons, so one colon is a
        // host or IPv4 address followed by a port.
        1 => {
            let port = &s[s.find(':').unwrap_or(0)..];
            return Err(AddrError::NotAddress(Some(format!(
                "leave out the port ({port}); only the address is monitored"
            ))));
        }
        _ => {
            return s
                .parse::<Ipv6Addr>()
                .map(|a| TargetAddr::Ip(IpAddr::V6(a)))
                .map_err(|_| AddrError::Ipv6(ipv6_hint(s)));
        }
    }
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Ok(TargetAddr::Ip(IpAddr::V4(a)));
    }
    if looks_like_ipv4(s) {
        return Err(AddrError::NotAddress(ipv4_hint(s)));
    }
    if is_host_name(s) {
        return Ok(TargetAddr::Host(s.to_owned()));
    }
    Err(AddrError::NotAddress(host_hint(s)))
}

/// Digits and dots only, or a numeric last label: someone meant an IPv4
/// address, and calling it an invalid host name would mislead.
fn looks_like_ipv4(s: &str) -> bool {
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return true;
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    let last = name.rsplit('.').next().unwrap_or(name);
    !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit())
}

fn ipv4_hint(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split('.').collect();
    let numeric = parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Some("an IPv4 address is four numbers separated by single dots".into());
        }
        return None;
    }
    if parts.len() != 4 {
        return Some("an IPv4 address is four numbers separated by dots, e.g. 192.0.2.1".into());
    }
    let values: Vec<u32> = parts
        .iter()
        .map(|p| p.parse::<u32>().unwrap_or(u32::MAX))
        .collect();
    let leading_zero = parts.iter().any(|p| p.len() > 1 && p.starts_with('0'));
    if leading_zero && values.iter().all(|&v| v <= 255) {
        let plain: Vec<String> = values.iter().map(u32::to_string).collect();
        return Some(format!(
            "leading zeros are not accepted because they are ambiguous (some tools read them as octal); write {}",
            plain.join(".")
        ));
    }
    None
}

fn ipv6_hint(s: &str) -> Option<String> {
    if s.contains('%') {
        return Some("zone indexes such as %eth0 are not supported".into());
    }
    None
}

/// RFC 1123 host name: dot-separated labels of 1 to 63 letters, digits and
/// hyphens, no label starting or ending with a hyphen, at most 253
/// characters, optionally with a trailing dot.
pub(crate) fn is_host_name(s: &str) -> bool {
    let name = s.strip_suffix('.').unwrap_or(s);
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_label)
}

fn is_label(label: &str) -> bool {
    let b = label.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn host_hint(s: &str) -> Option<String> {
    let name = s.strip_suffix('.').unwrap_or(s);
    let hint = if s.chars().any(char::is_whitespace) {
        "a host name cannot contain spaces; put one address per cell"
    } else if s.contains('/') {
        "write only the host name or address, without a path or a network prefix"
    } else if s.contains('_') {
        "host names cannot contain underscores"
    } else if !s.is_ascii() {
        "write international host names in their ASCII form (xn--...)"
    } else if name.split('.').any(str::is_empty) {
        "a host name cannot have two dots in a row or start with a dot"
    } else if name
        .split('.')
        .any(|l| l.starts_with('-') || l.ends_with('-'))
    {
        "no part of a host name may start or end with a hyphen"
    } else if name.len() > 253 || name.split('.').any(|l| l.len() > 63) {
        "a host name has at most 253 characters and 63 between dots"
    } else {
        return None;
    };
    Some(hint.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_from_another_process_is_checked_as_a_cell_is() {
        for addr in ["127.0.0.1", "2001:db8::1", "host.example"] {
            let a = classify(addr).unwrap();
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<TargetAddr>(&json).unwrap(), a);
        }
        for forged in [
            r#"{"addr": "300.1.1.1", "kind": "ipv4"}"#,
            r#"{"addr": "127.0.0.1", "kind": "host"}"#,
            r#"{"addr": "a b", "kind": "host"}"#,
            r#"{"addr": "::0001", "kind": "ipv6"}"#,
        ] {
            assert!(
                serde_json::from_str::<TargetAddr>(forged).is_err(),
                "{forged}"
            );
        }
    }

    fn ok(s: &str) -> TargetAddr {
        classify(s).unwrap_or_else(|e| panic!("{s:?} rejected: {e:?}"))
    }

    #[test]
    fn ip_literals() {
        assert_eq!(
            ok("127.0.0.1"),
            TargetAddr::Ip("127.0.0.1".parse().unwrap())
        );
        assert_eq!(ok("::1"), TargetAddr::Ip("::1".parse().unwrap()));
        assert_eq!(ok("[::1]"), TargetAddr::Ip("::1".parse().unwrap()));
        assert_eq!(ok("2001:db8::1").kind(), "ipv6");
        assert_eq!(ok("::ffff:127.0.0.1").kind(), "ipv6");
        assert_eq!(ok("127.0.0.1").kind(), "ipv4");
    }

    #[test]
    fn invalid_ipv4_is_not_taken_for_a_host_name() {
        for s in [
            "127.0.0.300",
            "10.1.1",
            "1.2.3.4.5",
            "10..1.1",
            "300",
            "host.123",
        ] {
            assert!(
                matches!(classify(s), Err(AddrError::NotAddress(_))),
                "{s:?}"
            );
        }
        assert_eq!(classify("127.0.0.300"), Err(AddrError::NotAddress(None)));
        let Err(AddrError::NotAddress(Some(hint))) = classify("10.1.1") else {
            panic!("no hint for 10.1.1")
        };
        assert!(hint.contains("four numbers"), "{hint}");
    }

    #[test]
    fn leading_zero_octets_are_rejected_with_a_hint() {
        let Err(AddrError::NotAddress(Some(hint))) = classify("010.000.0.01") else {
            panic!("leading zeros accepted")
        };
        assert!(hint.contains("octal"), "{hint}");
        assert!(hint.ends_with("write 10.0.0.1"), "{hint}");
    }

    #[test]
    fn invalid_ipv6() {
        for s in [
            "fe80::1::2",
            "2001:db8::g",
            "1:2:3:4:5:6:7:8:9",
            "[127.0.0.1]",
            "[::1",
        ] {
            assert!(matches!(classify(s), Err(AddrError::Ipv6(_))), "{s:?}");
        }
        let Err(AddrError::Ipv6(Some(hint))) = classify("fe80::1%eth0") else {
            panic!("zone accepted")
        };
        assert!(hint.contains("zone"));
    }

    #[test]
    fn ports_and_urls_get_their_own_hint() {
        let Err(AddrError::NotAddress(Some(hint))) = classify("127.0.0.1:8080") else {
            panic!()
        };
        assert!(hint.contains("(:8080)"), "{hint}");
        let Err(AddrError::NotAddress(Some(hint))) = classify("http://example.com/") else {
            panic!()
        };
        assert!(hint.contains("scheme"), "{hint}");
    }

    #[test]
    fn valid_host_names() {
        let label63 = "a".repeat(63);
        let long = [label63.as_str(); 3].join(".") + "." + &"b".repeat(61); // 253
        assert_eq!(long.len(), 253);
        for s in [
            "localhost",
            "LocalHost.",
            "a-b.example.com",
            "1.example.com",
            "xn--bcher-kva.example",
            "x",
            label63.as_str(),
            long.as_str(),
        ] {
            assert_eq!(ok(s), TargetAddr::Host(s.to_owned()), "{s:?}");
        }
    }

    #[test]
    fn invalid_host_names() {
        let label64 = "a".repeat(64);
        let too_long = ["a".repeat(63).as_str(); 3].join(".") + "." + &"b".repeat(62);
        let cases = [
            ("-a.example", "hyphen"),
            ("a-.example", "hyphen"),
            ("a..example", "two dots"),
            (".example", "two dots"),
            ("under_score.example", "underscores"),
            ("bücher.example", "xn--"),
            ("two hosts", "spaces"),
            ("10.0.0.0/8", "network prefix"),
            (label64.as_str(), "63"),
            (too_long.as_str(), "253"),
        ];
        for (s, hint_part) in cases {
            match classify(s) {
                Err(AddrError::NotAddress(Some(hint))) => {
                    assert!(hint.contains(hint_part), "{s:?}: {hint}")
                }
                other => panic!("{s:?}: {other:?}"),
            }
        }
        assert_eq!(classify("a!b"), Err(AddrError::NotAddress(None)));
    }

    #[test]
    fn dedup_key_ignores_case_and_trailing_dot() {
        assert_eq!(
            ok("Example.COM.").dedup_key(),
            ok("example.com").dedup_key()
        );
        assert_eq!(ok("[::1]").dedup_key(), ok("0:0:0:0:0:0:0:1").dedup_key());
    }

    #[test]
    fn serializes_as_addr_and_kind() {
        let json = serde_json::to_value(ok("[::1]")).unwrap();
        assert_eq!(json, serde_json::json!({"addr": "::1", "kind": "ipv6"}));
        let json = serde_json::to_value(ok("localhost")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"addr": "localhost", "kind": "host"})
        );
    }
}
