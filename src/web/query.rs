//! The board dashboard's filter and sort parameters (`?status=&group=
//! &sort=&dir=`), parsed from the query string and written back into links.
//! The percent-decoding and -encoding under them is [`crate::http::query`].
//!
//! Everything here is tolerant: a query string is typed by whoever holds a
//! browser, so a garbled parameter is ignored (falls back to its default),
//! never an error page.

use crate::http::query::{encode_query_value, parse_pairs};
use crate::probe::Status;

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

    /// The filter that passes exactly this status (`None`: pending).
    pub fn exactly(status: Option<Status>) -> StatusFilter {
        match status {
            Some(Status::Working) => StatusFilter::Working,
            Some(Status::Degraded) => StatusFilter::Degraded,
            Some(Status::NotWorking) => StatusFilter::NotWorking,
            None => StatusFilter::Pending,
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
}
