//! The board dashboard's filter, search, sort and page parameters
//! (`?status=&group=&q=&sort=&dir=&page=&page_size=`), parsed from the
//! query string and written back into links; `/api/v1/status` takes the
//! same ones.
//! The percent-decoding and -encoding under them is [`crate::http::query`].
//!
//! The page's reading is tolerant: a query string is typed by whoever
//! holds a browser, so a garbled parameter is ignored (falls back to its
//! default), never an error page. The API's is strict about pages only.

use crate::http::paging::{self, PageError, PageRequest};
use crate::http::query::{encode_query_value, param, parse_pairs};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Sheet order.
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

/// The dashboard's query: `?status=..&group=..&q=..&sort=..&dir=..
/// &page=..&page_size=..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexQuery {
    pub status: Option<StatusFilter>,
    /// Exact group name; `None` shows every group.
    pub group: Option<String>,
    /// Text to find in the address, the IP, the name or the group, case
    /// ignored (at most `SEARCH_MAX_CHARS` characters).
    pub search: Option<String>,
    pub sort: SortKey,
    pub dir: Dir,
    /// Which page of the table, from 1, and how many rows a page has.
    pub page: PageRequest,
}

/// The longest search text kept: longer matches nothing a sheet holds.
pub const SEARCH_MAX_CHARS: usize = 200;

/// The order the page opens in: the problems first, Not Working, then
/// Degraded, then the rest, each in sheet order.
pub const PAGE_SORT: SortKey = SortKey::Status;

impl Default for IndexQuery {
    fn default() -> IndexQuery {
        IndexQuery {
            status: None,
            group: None,
            search: None,
            sort: PAGE_SORT,
            dir: Dir::Asc,
            page: PageRequest {
                number: 1,
                size: paging::DEFAULT_SIZE,
            },
        }
    }
}

impl IndexQuery {
    /// Parse a raw (still encoded) query string. Unknown parameters and
    /// unknown values are ignored, a page size out of range is brought
    /// into it; an empty value means "any".
    pub fn parse(query: Option<&str>) -> IndexQuery {
        let mut q = IndexQuery::default();
        for (k, v) in parse_pairs(query.unwrap_or("")) {
            match k.as_str() {
                "status" => q.status = StatusFilter::parse(&v),
                "group" => q.group = Some(v).filter(|g| !g.is_empty()),
                "q" => {
                    let text: String = v.trim().chars().take(SEARCH_MAX_CHARS).collect();
                    q.search = Some(text).filter(|t| !t.is_empty());
                }
                "sort" => q.sort = SortKey::parse(&v).unwrap_or(PAGE_SORT),
                "dir" => q.dir = if v == "desc" { Dir::Desc } else { Dir::Asc },
                "page" => q.page.number = v.parse().unwrap_or(1).max(1),
                "page_size" => {
                    q.page.size = v.parse().map_or(paging::DEFAULT_SIZE, |n: usize| {
                        n.clamp(1, paging::MAX_SIZE)
                    })
                }
                _ => {}
            }
        }
        q
    }

    /// The API's reading of the same query: the page and its size are
    /// refused when out of range (a script walking pages must see where
    /// they end), and the default order is the sheet's, which stays put
    /// while statuses change under a walk through the pages.
    pub fn parse_api(query: Option<&str>) -> Result<IndexQuery, PageError> {
        let page = PageRequest::parse(query)?;
        let mut q = IndexQuery::parse(query);
        if param(query, "sort").is_none() {
            q.sort = SortKey::Sno;
        }
        q.page = page;
        Ok(q)
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
        if let Some(text) = &self.search {
            parts.push(format!("q={}", encode_query_value(text)));
        }
        if self.sort != PAGE_SORT {
            parts.push(format!("sort={}", self.sort.as_str()));
        }
        if self.dir != Dir::Asc {
            parts.push(format!("dir={}", self.dir.as_str()));
        }
        if self.page.number != 1 {
            parts.push(format!("page={}", self.page.number));
        }
        if self.page.size != paging::DEFAULT_SIZE {
            parts.push(format!("page_size={}", self.page.size));
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

    /// The first page of another view: a new filter or order starts
    /// again at the top.
    fn first_page(&self) -> IndexQuery {
        IndexQuery {
            page: PageRequest {
                number: 1,
                ..self.page
            },
            ..self.clone()
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
            ..self.first_page()
        }
    }

    /// The same view filtered by `status` instead.
    pub fn with_status(&self, status: Option<StatusFilter>) -> IndexQuery {
        IndexQuery {
            status,
            ..self.first_page()
        }
    }

    /// The same view without the group filter and the search.
    pub fn unfiltered(&self) -> IndexQuery {
        IndexQuery {
            group: None,
            search: None,
            status: None,
            ..self.first_page()
        }
    }

    /// The same view on page `number`.
    pub fn on_page(&self, number: usize) -> IndexQuery {
        IndexQuery {
            page: PageRequest {
                number,
                ..self.page
            },
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
            "page=0&page_size=x&q=+++",
            "page=-3",
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
    fn search_and_pages_round_trip_and_stay_in_range() {
        let q = IndexQuery::parse(Some("q=+Rack%201+&page=3&page_size=50&sort=sno"));
        assert_eq!(q.search.as_deref(), Some("Rack 1"), "trimmed, decoded");
        assert_eq!((q.page.number, q.page.size), (3, 50));
        assert_eq!(
            q.to_query_string(),
            "q=Rack%201&sort=sno&page=3&page_size=50"
        );
        assert_eq!(IndexQuery::parse(Some(&q.to_query_string())), q);

        assert_eq!(
            IndexQuery::parse(Some("page_size=100000")).page.size,
            paging::MAX_SIZE
        );
        assert_eq!(IndexQuery::parse(Some("page_size=0")).page.size, 1);
        let long = "x".repeat(SEARCH_MAX_CHARS * 3);
        let q = IndexQuery::parse(Some(&format!("q={long}")));
        assert_eq!(q.search.unwrap().chars().count(), SEARCH_MAX_CHARS);
    }

    #[test]
    fn a_new_order_or_filter_starts_at_the_first_page_and_keeps_its_size() {
        let q = IndexQuery::parse(Some("page=7&page_size=20&q=lan"));
        for next in [
            q.sorted_by(SortKey::Rtt),
            q.with_status(Some(StatusFilter::Problems)),
            q.unfiltered(),
        ] {
            assert_eq!((next.page.number, next.page.size), (1, 20), "{next:?}");
        }
        assert_eq!(q.unfiltered().search, None);
        assert_eq!(q.on_page(8).href(), "/?q=lan&page=8&page_size=20");
        assert_eq!(
            IndexQuery::default().sort,
            SortKey::Status,
            "problems first"
        );
    }

    #[test]
    fn the_api_reads_pages_strictly_and_keeps_sheet_order() {
        let q = IndexQuery::parse_api(Some("status=problems")).unwrap();
        assert_eq!(q.sort, SortKey::Sno);
        assert_eq!(q.status, Some(StatusFilter::Problems));
        assert_eq!(
            IndexQuery::parse_api(Some("sort=status")).unwrap().sort,
            SortKey::Status
        );
        assert!(IndexQuery::parse_api(Some("page=0")).is_err());
        assert!(IndexQuery::parse_api(Some("page_size=501")).is_err());
    }
}
