//! Query strings and path segments: percent-decoding and -encoding, and the
//! dashboard's filter and sort parameters.
//!
//! Everything here is tolerant: a query string is typed by whoever holds a
//! browser, so a garbled parameter is ignored (falls back to its default),
//! never an error page.

use std::fmt::Write as _;

use crate::probe::Status;

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

/// Which targets the table shows, by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Working,
    Degraded,
    NotWorking,
    /// Not probed yet.
    Pending,
    /// Degraded or Not Working: what needs a look.
    Problems,
}

impl StatusFilter {
    /// Every filter, in the order the form lists them.
    pub const ALL: [StatusFilter; 5] = [
        StatusFilter::Problems,
        StatusFilter::NotWorking,
        StatusFilter::Degraded,
        StatusFilter::Working,
        StatusFilter::Pending,
    ];

    /// The query-string value.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Working => "working",
            StatusFilter::Degraded => "degraded",
            StatusFilter::NotWorking => "not_working",
            StatusFilter::Pending => "pending",
            StatusFilter::Problems => "problems",
        }
    }

    /// What the form shows.
    pub fn label(self) -> &'static str {
        match self {
            StatusFilter::Working => "Working",
            StatusFilter::Degraded => "Degraded",
            StatusFilter::NotWorking => "Not Working",
            StatusFilter::Pending => "Pending",
            StatusFilter::Problems => "Degraded or Not Working",
        }
    }

    fn parse(s: &str) -> Option<StatusFilter> {
        StatusFilter::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Whether a target with this status passes.
    pub fn matches(self, status: Option<Status>) -> bool {
        match self {
            StatusFilter::Working => status == Some(Status::Working),
            StatusFilter::Degraded => status == Some(Status::Degraded),
            StatusFilter::NotWorking => status == Some(Status::NotWorking),
            StatusFilter::Pending => status.is_none(),
            StatusFilter::Problems => {
                matches!(status, Some(Status::Degraded | Status::NotWorking))
            }
        }
    }
}

/// The column the table is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Sheet order.
    #[default]
    Sno,
    Ip,
    Name,
    Status,
    Gateway,
    Routers,
    Updated,
    Loss,
    Rtt,
    Uptime,
}

impl SortKey {
    const ALL: [SortKey; 10] = [
        SortKey::Sno,
        SortKey::Ip,
        SortKey::Name,
        SortKey::Status,
        SortKey::Gateway,
        SortKey::Routers,
        SortKey::Updated,
        SortKey::Loss,
        SortKey::Rtt,
        SortKey::Uptime,
    ];

    /// The query-string value.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Sno => "sno",
            SortKey::Ip => "ip",
            SortKey::Name => "name",
            SortKey::Status => "status",
            SortKey::Gateway => "gateway",
            SortKey::Routers => "routers",
            SortKey::Updated => "updated",
            SortKey::Loss => "loss",
            SortKey::Rtt => "rtt",
            SortKey::Uptime => "uptime",
        }
    }

    fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dir {
    #[default]
    Asc,
    Desc,
}

impl Dir {
    /// The query-string value.
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Asc => "asc",
            Dir::Desc => "desc",
        }
    }

    /// The other direction.
    pub fn flip(self) -> Dir {
        match self {
            Dir::Asc => Dir::Desc,
            Dir::Desc => Dir::Asc,
        }
    }
}

/// The dashboard's query: `?status=..&group=..&sort=..&dir=..`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexQuery {
    pub status: Option<StatusFilter>,
    /// Exact group name; `None` shows every group.
    pub group: Option<String>,
    pub sort: SortKey,
    pub dir: Dir,
}

impl IndexQuery {
    /// Parse a raw (still encoded) query string. Unknown parameters and
    /// unknown values are ignored; an empty value means "any".
    pub fn parse(query: Option<&str>) -> IndexQuery {
        let mut q = IndexQuery::default();
        for (k, v) in parse_pairs(query.unwrap_or("")) {
            match k.as_str() {
                "status" => q.status = StatusFilter::parse(&v),
                "group" => q.group = Some(v).filter(|g| !g.is_empty()),
                "sort" => q.sort = SortKey::parse(&v).unwrap_or_default(),
                "dir" => q.dir = if v == "desc" { Dir::Desc } else { Dir::Asc },
                _ => {}
            }
        }
        q
    }

    /// The query string for this state, without the `?`; default values
    /// are left out so links stay short.
    pub fn to_query_string(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.status {
            parts.push(format!("status={}", s.as_str()));
        }
        if let Some(g) = &self.group {
            parts.push(format!("group={}", encode_query_value(g)));
        }
        if self.sort != SortKey::Sno {
            parts.push(format!("sort={}", self.sort.as_str()));
        }
        if self.dir != Dir::Asc {
            parts.push(format!("dir={}", self.dir.as_str()));
        }
        parts.join("&")
    }

    /// `/` with this query.
    pub fn href(&self) -> String {
        let q = self.to_query_string();
        if q.is_empty() {
            "/".to_string()
        } else {
            format!("/?{q}")
        }
    }

    /// The link a column header points to: sort by `key`, flipping the
    /// direction when the table is already sorted by it.
    pub fn sorted_by(&self, key: SortKey) -> IndexQuery {
        let dir = if self.sort == key {
            self.dir.flip()
        } else {
            Dir::Asc
        };
        IndexQuery {
            sort: key,
            dir,
            ..self.clone()
        }
    }

    /// The same view filtered by `status` instead.
    pub fn with_status(&self, status: Option<StatusFilter>) -> IndexQuery {
        IndexQuery {
            status,
            ..self.clone()
        }
    }
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
    fn parses_the_dashboard_query() {
        let q = IndexQuery::parse(Some("status=not_working&group=Rack+1&sort=rtt&dir=desc"));
        assert_eq!(q.status, Some(StatusFilter::NotWorking));
        assert_eq!(q.group.as_deref(), Some("Rack 1"));
        assert_eq!(q.sort, SortKey::Rtt);
        assert_eq!(q.dir, Dir::Desc);
        assert_eq!(
            IndexQuery::parse(Some(&q.to_query_string())),
            q,
            "to_query_string round-trips"
        );
    }

    #[test]
    fn tolerates_garbage() {
        for raw in [
            "",
            "&&&",
            "status=bogus&sort=%zz&dir=sideways&group=",
            "=x&status",
            "%FF=1",
        ] {
            assert_eq!(IndexQuery::parse(Some(raw)), IndexQuery::default(), "{raw}");
        }
        assert_eq!(IndexQuery::parse(None), IndexQuery::default());
        assert_eq!(IndexQuery::default().href(), "/");
    }

    #[test]
    fn header_links_flip_direction() {
        let q = IndexQuery::default();
        let by_rtt = q.sorted_by(SortKey::Rtt);
        assert_eq!((by_rtt.sort, by_rtt.dir), (SortKey::Rtt, Dir::Asc));
        let again = by_rtt.sorted_by(SortKey::Rtt);
        assert_eq!(again.dir, Dir::Desc);
        assert_eq!(again.href(), "/?sort=rtt&dir=desc");
    }

    #[test]
    fn status_filters_match() {
        assert!(StatusFilter::Problems.matches(Some(Status::NotWorking)));
        assert!(StatusFilter::Problems.matches(Some(Status::Degraded)));
        assert!(!StatusFilter::Problems.matches(Some(Status::Working)));
        assert!(StatusFilter::Pending.matches(None));
        assert!(!StatusFilter::Working.matches(None));
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
