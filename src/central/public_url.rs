//! Where central is published: the path prefix it is served under
//! (`--base-path /edgeprobe`, behind a reverse proxy that passes the
//! prefix on), and what a trusted proxy says about the client's side of
//! the connection (`X-Forwarded-Proto`, `X-Forwarded-Host`). Pure.
//!
//! The forwarded headers are believed only from the proxies the `[auth]`
//! table lists (`trusted_proxies`): from anyone else they are a client's
//! claim and ignored, or any client could get a `Secure`-less cookie or a
//! redirect to a host of its choosing.

/// A path prefix: empty, or `/` followed by segments, without a trailing
/// `/` (`/edgeprobe`, `/ops/fleet`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasePath(String);

impl BasePath {
    /// Check a `--base-path`. `/` and the empty string mean none; a
    /// trailing `/` is dropped.
    pub fn parse(text: &str) -> Result<BasePath, String> {
        let t = text.trim().trim_end_matches('/');
        if t.is_empty() {
            return Ok(BasePath::default());
        }
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "-._~/".contains(c);
        if !t.starts_with('/') || t.contains("//") || !t.chars().all(ok_char) {
            return Err(format!(
                "--base-path {text:?} is not a path prefix; write it like /edgeprobe \
                 (a leading /, then letters, digits, '-', '.', '_' or '~' between slashes)"
            ));
        }
        if t.split('/').any(|seg| seg == "." || seg == "..") {
            return Err(format!(
                "--base-path {text:?} holds a . or .. segment; write the prefix as the proxy passes it"
            ));
        }
        Ok(BasePath(t.to_string()))
    }

    /// The prefix, `""` when there is none.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where `path` points inside the site: the rest after the prefix
    /// (`/edgeprobe/boards/x` → `/boards/x`, `/edgeprobe` → `/`), or
    /// `None` when it is outside the prefix. Without a prefix, itself.
    pub fn strip<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.0.is_empty() {
            return Some(path);
        }
        let rest = path.strip_prefix(self.0.as_str())?;
        match rest {
            "" => Some("/"),
            r if r.starts_with('/') => Some(r),
            _ => None,
        }
    }
}

/// What the client's side of the connection looks like.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The client spoke HTTPS to the proxy.
    pub https: bool,
    /// The host name the client asked for, when a trusted proxy said it.
    pub host: Option<String>,
}

impl Origin {
    /// From the forwarded headers, when `trusted` (the peer is a listed
    /// proxy); otherwise a plain HTTP connection. The first value of a
    /// comma-separated list is the one the outermost proxy saw; a host
    /// that is not a plain `name[:port]` is ignored.
    pub fn from_headers(trusted: bool, proto: Option<&str>, host: Option<&str>) -> Origin {
        if !trusted {
            return Origin::default();
        }
        let first = |v: Option<&str>| {
            v.and_then(|v| v.split(',').next())
                .map(|v| v.trim().to_string())
        };
        let https = first(proto).is_some_and(|p| p.eq_ignore_ascii_case("https"));
        let host = first(host).filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        });
        Origin { https, host }
    }

    /// An absolute URL for `path` (already under the base path) when the
    /// proxy named the host, else `path` itself, which browsers resolve
    /// against the address they used.
    pub fn url(&self, path: &str) -> String {
        match &self.host {
            Some(h) => format!("{}://{h}{path}", if self.https { "https" } else { "http" }),
            None => path.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_parse_and_strip() {
        let b = BasePath::parse("/edgeprobe/").unwrap();
        assert_eq!(b.as_str(), "/edgeprobe");
        assert_eq!(b.strip("/edgeprobe/boards/x"), Some("/boards/x"));
        assert_eq!(b.strip("/edgeprobe"), Some("/"));
        assert_eq!(b.strip("/edgeprobe/"), Some("/"));
        assert_eq!(b.strip("/edgeprobex/"), None);
        assert_eq!(b.strip("/boards/x"), None);
        assert_eq!(BasePath::parse("/").unwrap(), BasePath::default());
        assert_eq!(BasePath::default().strip("/a"), Some("/a"));
        for bad in [
            "edgeprobe",
            "/a//b",
            "/a b",
            "/a/../b",
            "/<x>",
            "https://x/",
        ] {
            assert!(BasePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let o = Origin::from_headers(true, Some("https"), Some("fleet.example.org"));
        assert!(o.https);
        assert_eq!(
            o.url("/edgeprobe/login"),
            "https://fleet.example.org/edgeprobe/login"
        );
        let untrusted = Origin::from_headers(false, Some("https"), Some("evil.example"));
        assert_eq!(untrusted, Origin::default());
        assert_eq!(untrusted.url("/login"), "/login");
        let chained = Origin::from_headers(true, Some("https, http"), Some("a.example, b"));
        assert!(chained.https);
        assert_eq!(chained.host.as_deref(), Some("a.example"));
        let odd = Origin::from_headers(true, Some("http"), Some("x/y\r\nSet-Cookie: a"));
        assert_eq!(odd.host, None);
        assert!(!odd.https);
    }
}
