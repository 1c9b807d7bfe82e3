//! Pagination of every list the board and central serve: `?page=` (from 1)
//! and `?page_size=` (default [`DEFAULT_SIZE`], at most [`MAX_SIZE`]).
//! Pure. For the APIs, a page size out of range, or a page beyond the
//! end, is refused with the values that would work, never silently
//! clamped: a script that walks pages must see where they end. A page a
//! person reached by a link or a typed address is clamped instead
//! ([`PageRequest::slice_nearest`]): the list shrank since the link was
//! made, and the last page is what they want to see.

use serde::Serialize;

use crate::http::query::param;

/// Rows on a page unless `page_size` says otherwise.
pub const DEFAULT_SIZE: usize = 100;
/// The largest `page_size`: what one request may make central read.
pub const MAX_SIZE: usize = 500;

/// Which rows a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based.
    pub number: usize,
    pub size: usize,
}

/// Where a page sits in its list, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PageInfo {
    pub page: usize,
    pub page_size: usize,
    /// Pages in the list (at least 1, an empty list has one empty page).
    pub pages: usize,
    /// Rows in the list.
    pub total: usize,
}

/// A request that names no valid page, with what to ask instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PageError(pub String);

impl PageRequest {
    /// `page` and `page_size` from a query string.
    pub fn parse(query: Option<&str>) -> Result<PageRequest, PageError> {
        PageRequest::parse_key(query, "page")
    }

    /// [`PageRequest::parse`] with the page number under `key`, for a
    /// page with two lists (`boards_page` on the fleet page).
    pub fn parse_key(query: Option<&str>, key: &str) -> Result<PageRequest, PageError> {
        let number = match param(query, key) {
            None => 1,
            Some(p) => match p.parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(PageError(format!(
                        "{key}={p:?} is not a page number; pages count from {key}=1"
                    )))
                }
            },
        };
        let size = match param(query, "page_size") {
            None => DEFAULT_SIZE,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_SIZE).contains(&n) => n,
                _ => {
                    return Err(PageError(format!(
                        "page_size={s:?} is out of range; use page_size=1 to page_size={MAX_SIZE}"
                    )))
                }
            },
        };
        Ok(PageRequest { number, size })
    }

    /// This page of `rows`, or why there is none.
    pub fn slice<'a, T>(&self, rows: &'a [T]) -> Result<(&'a [T], PageInfo), PageError> {
        let total = rows.len();
        let pages = total.div_ceil(self.size).max(1);
        if self.number > pages {
            return Err(PageError(format!(
                "page={} is beyond the end: there {} {pages} page{} of {} rows; use page=1 to page={pages}",
                self.number,
                if pages == 1 { "is" } else { "are" },
                if pages == 1 { "" } else { "s" },
                self.size
            )));
        }
        Ok(self.slice_nearest(rows))
    }

    /// This page of `rows`, or the last one when the list ends before it.
    pub fn slice_nearest<'a, T>(&self, rows: &'a [T]) -> (&'a [T], PageInfo) {
        let total = rows.len();
        let size = self.size.max(1);
        let pages = total.div_ceil(size).max(1);
        let page = self.number.clamp(1, pages);
        let start = (page - 1) * size;
        let end = (start + size).min(total);
        let info = PageInfo {
            page,
            page_size: size,
            pages,
            total,
        };
        (&rows[start..end], info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            PageRequest::parse(None).unwrap(),
            PageRequest {
                number: 1,
                size: DEFAULT_SIZE
            }
        );
        assert_eq!(
            PageRequest::parse(Some("page=3&page_size=20")).unwrap(),
            PageRequest {
                number: 3,
                size: 20
            }
        );
        for bad in [
            "page=0",
            "page=-1",
            "page=x",
            "page_size=0",
            "page_size=501",
            "page_size=1e3",
        ] {
            assert!(PageRequest::parse(Some(bad)).is_err(), "{bad}");
        }
        let e = PageRequest::parse(Some("page_size=9999")).unwrap_err();
        assert!(e.0.contains("page_size=1 to page_size=500"), "{e}");
    }

    #[test]
    fn slices_and_refuses_beyond_the_end() {
        let rows: Vec<u32> = (0..250).collect();
        let p = |number| PageRequest { number, size: 100 };
        let (first, info) = p(1).slice(&rows).unwrap();
        assert_eq!(first.len(), 100);
        assert_eq!((info.pages, info.total), (3, 250));
        let (last, _) = p(3).slice(&rows).unwrap();
        assert_eq!(last, &rows[200..]);
        let e = p(4).slice(&rows).unwrap_err();
        assert_eq!(
            e.0,
            "page=4 is beyond the end: there are 3 pages of 100 rows; use page=1 to page=3"
        );
        // An empty list has one empty page.
        let (none, info) = p(1).slice::<u32>(&[]).unwrap();
        assert!(none.is_empty());
        assert_eq!(info.pages, 1);
        assert!(p(2).slice::<u32>(&[]).is_err());
    }

    #[test]
    fn a_page_beyond_the_end_is_the_last_one_for_a_person() {
        let rows: Vec<u32> = (0..250).collect();
        let (last, info) = PageRequest {
            number: 9,
            size: 100,
        }
        .slice_nearest(&rows);
        assert_eq!(last, &rows[200..]);
        assert_eq!((info.page, info.pages, info.total), (3, 3, 250));
        let (none, info) = PageRequest {
            number: 2,
            size: 100,
        }
        .slice_nearest::<u32>(&[]);
        assert!(none.is_empty());
        assert_eq!((info.page, info.pages), (1, 1));
    }
}
