//! Query strings and path segments, as both dashboards read them:
//! percent-decoding and -encoding, `name=value` pairs, one parameter.
//!
//! Tolerant: a garbled pair is skipped, a malformed escape decodes to
//! `None`, never an error page.

use std::fmt::Write as _;

/// Decode `%XX` escapes; with `plus_as_space` (form-encoded query strings)
/// `+` is a space too. `None` when an escape is malformed or the result is
/// not UTF-8, so that a mangled key never matches a target by accident.
pub fn percent_decode(s: &str, plus_as_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_value(*bytes.get(i + 1)?)?;
                let lo = hex_value(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Encode everything but RFC 3986 unreserved characters (and the bytes in
/// `keep`), for a query value or a path segment.
fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Encode a query-string value.
pub fn encode_query_value(s: &str) -> String {
    percent_encode(s, b"")
}

/// Encode a path segment. Colons stay as they are (a path segment may hold
/// them), so IPv6 links read naturally: `/targets/2001:db8::1`.
pub fn encode_path_segment(s: &str) -> String {
    percent_encode(s, b":")
}

/// Split a query string into decoded `(name, value)` pairs, skipping pairs
/// that do not decode.
pub fn parse_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// The first value of parameter `name` in `query`.
pub fn param(query: Option<&str>, name: &str) -> Option<String> {
    parse_pairs(query?)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(
            percent_decode("2001%3Adb8%3a%3A1", false).as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(percent_decode("a+b", true).as_deref(), Some("a b"));
        assert_eq!(percent_decode("caf%C3%A9", false).as_deref(), Some("café"));
        assert_eq!(percent_decode("", false).as_deref(), Some(""));
    }

    #[test]
    fn rejects_malformed_escapes_and_bad_utf8() {
        assert_eq!(percent_decode("%", false), None);
        assert_eq!(percent_decode("%4", false), None);
        assert_eq!(percent_decode("%zz", false), None);
        assert_eq!(percent_decode("%FF", false), None);
        // A multi-byte character split by the escape boundary is fine.
        assert_eq!(percent_decode("é%20", false).as_deref(), Some("é "));
    }

    #[test]
    fn encode_round_trips() {
        for s in ["a b&c=d", "<script>\"'", "2001:db8::1", "Büro 1/2", "%+"] {
            assert_eq!(
                percent_decode(&encode_query_value(s), true).as_deref(),
                Some(s)
            );
            assert_eq!(
                percent_decode(&encode_path_segment(s), false).as_deref(),
                Some(s)
            );
        }
        assert_eq!(encode_path_segment("2001:db8::1"), "2001:db8::1");
        assert_eq!(encode_query_value("a b"), "a%20b");
    }

    #[test]
    fn param_finds_first_value() {
        assert_eq!(
            param(Some("a=1&filename=t%20s.xlsx&filename=x"), "filename").as_deref(),
            Some("t s.xlsx")
        );
        assert_eq!(param(None, "filename"), None);
    }
}
