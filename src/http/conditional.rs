//! Entity tags and `304 Not Modified` (RFC 9110 §8.8.3, §13.1.2) for what
//! changes once a round: a dashboard that refreshes itself asks again with
//! `If-None-Match`, and between rounds the answer is an empty 304 instead
//! of the page. Pure apart from the response it builds.
//!
//! The tags are weak (`W/"…"`): two answers with one tag show the same
//! data, though a time written as "12 s ago" may have moved on since.

use std::hash::{DefaultHasher, Hash, Hasher};

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::StatusCode;

use super::response::{with_type, Resp};

/// A weak entity tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag(String);

impl EntityTag {
    /// The tag of whatever the response is made from. `DefaultHasher::new`
    /// has fixed keys, so the same parts give the same tag for as long as
    /// the binary runs; callers put the process's start in the parts, so a
    /// restarted board never reuses a tag for other data.
    pub fn of(parts: impl Hash) -> EntityTag {
        let mut h = DefaultHasher::new();
        parts.hash(&mut h);
        EntityTag(format!("W/\"{:016x}\"", h.finish()))
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `If-None-Match` names this tag, or is `*`. Weak comparison:
    /// `W/` is ignored on both sides. Several headers, and lists within
    /// one, are read alike; a value that is not text matches nothing.
    pub fn matched_by(&self, headers: &HeaderMap) -> bool {
        let ours = opaque(&self.0);
        headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|theirs| theirs == "*" || opaque(theirs) == ours)
    }
}

/// A tag without its weakness mark.
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// `build()`'s response tagged with `tag`, or `304 Not Modified` when the
/// request already holds it. Either way `Cache-Control: no-cache`: a
/// browser may keep the answer, and asks again before showing it.
pub fn tagged(request: &HeaderMap, tag: &EntityTag, build: impl FnOnce() -> Resp) -> Resp {
    let mut resp = if tag.matched_by(request) {
        with_type(StatusCode::NOT_MODIFIED, "text/plain; charset=utf-8", "")
    } else {
        build()
    };
    if resp.status() == StatusCode::NOT_MODIFIED {
        // A 304 has no body, so it describes none.
        resp.headers_mut().remove(header::CONTENT_TYPE);
    }
    if resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED {
        if let Ok(v) = HeaderValue::from_str(tag.as_str()) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asking(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn tags_differ_with_their_parts_and_are_weak() {
        let a = EntityTag::of((1u64, "page", "status=problems"));
        assert_eq!(a, EntityTag::of((1u64, "page", "status=problems")));
        assert_ne!(a, EntityTag::of((2u64, "page", "status=problems")));
        assert_ne!(a, EntityTag::of((1u64, "page", "")));
        assert!(a.as_str().starts_with("W/\"") && a.as_str().ends_with('"'));
    }

    #[test]
    fn if_none_match_is_compared_weakly_in_lists_and_headers() {
        let tag = EntityTag::of(7u8);
        let strong = opaque(tag.as_str()).to_string();
        assert!(tag.matched_by(&asking(&[tag.as_str()])));
        assert!(tag.matched_by(&asking(&[&strong])));
        assert!(tag.matched_by(&asking(&[&format!("\"x\", {}", tag.as_str())])));
        assert!(tag.matched_by(&asking(&["\"x\"", tag.as_str()])));
        assert!(tag.matched_by(&asking(&["*"])));
        assert!(!tag.matched_by(&asking(&["\"x\""])));
        assert!(!tag.matched_by(&HeaderMap::new()));
        let mut binary = HeaderMap::new();
        binary.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_bytes(b"\"\xff\"").unwrap(),
        );
        assert!(!tag.matched_by(&binary));
    }

    #[test]
    fn a_held_tag_gets_an_empty_304_and_a_new_one_the_body() {
        let tag = EntityTag::of("round 3");
        let page = || with_type(StatusCode::OK, "text/html; charset=utf-8", "<p>hi</p>");
        let fresh = tagged(&HeaderMap::new(), &tag, page);
        assert_eq!(fresh.status(), StatusCode::OK);
        assert_eq!(fresh.headers()[header::ETAG], tag.as_str());
        assert_eq!(fresh.headers()[header::CACHE_CONTROL], "no-cache");

        let mut built = false;
        let held = tagged(&asking(&[tag.as_str()]), &tag, || {
            built = true;
            page()
        });
        assert!(!built, "a 304 renders nothing");
        assert_eq!(held.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(held.headers()[header::ETAG], tag.as_str());
        assert!(held.headers().get(header::CONTENT_TYPE).is_none());

        let error = tagged(&HeaderMap::new(), &tag, || {
            with_type(StatusCode::BAD_REQUEST, "text/plain; charset=utf-8", "no")
        });
        assert!(
            error.headers().get(header::ETAG).is_none(),
            "errors are not tagged"
        );
    }
}
