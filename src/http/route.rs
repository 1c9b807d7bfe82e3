//! How both dashboards read a request line before their own routes run:
//! which route a path names (a table of exact paths and of prefixes
//! followed by a key), whether the path is under the JSON API (errors
//! there are JSON, elsewhere pages), and which methods read.

use hyper::Method;

/// Where both dashboards serve the stylesheet.
pub const STYLE_PATH: &str = "/static/style.css";

/// The pages every dashboard serves at the same paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    /// `/`: the dashboard itself.
    Index,
    /// [`STYLE_PATH`]: the stylesheet.
    Style,
    /// `/healthz`: whether the dashboard can do its job.
    Health,
}

impl Shared {
    /// Each shared page and its path.
    pub const PATHS: [(&'static str, Shared); 3] = [
        ("/", Shared::Index),
        (STYLE_PATH, Shared::Style),
        ("/healthz", Shared::Health),
    ];
}

/// A prefix of a route table and the route it names with the key after it.
pub type Keyed<'k, 'p, R> = (&'k str, fn(&'p str) -> R);

/// Whether `path` is under the JSON API, `/api/`.
pub fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// Whether `method` only reads: GET, or HEAD. hyper leaves out the body
/// of a HEAD response (keeping its Content-Length), so HEAD is GET here.
pub fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// What `path` names in a route table: a [`Shared`] page (as `shared`
/// wraps it), one of the `exact` paths, else the route of the first
/// `keyed` prefix with what follows it as the key (still
/// percent-encoded). With `empty_keys` false a prefix alone (`/boards/`)
/// names nothing.
pub fn lookup<'p, R: Copy>(
    path: &'p str,
    shared: fn(Shared) -> R,
    exact: &[(&str, R)],
    keyed: &[Keyed<'_, 'p, R>],
    empty_keys: bool,
) -> Option<R> {
    if let Some((_, page)) = Shared::PATHS.iter().find(|(p, _)| *p == path) {
        return Some(shared(*page));
    }
    if let Some((_, route)) = exact.iter().find(|(p, _)| *p == path) {
        return Some(*route);
    }
    keyed.iter().find_map(|(prefix, route)| {
        path.strip_prefix(prefix)
            .filter(|key| empty_keys || !key.is_empty())
            .map(route)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum R<'a> {
        Page(Shared),
        Home,
        Thing(&'a str),
    }

    #[test]
    fn exact_paths_then_the_first_prefix() {
        fn thing(key: &'static str) -> R<'static> {
            R::Thing(key)
        }
        let exact = [("/home", R::Home), ("/", R::Home)];
        let keyed: [Keyed<'_, 'static, R<'static>>; 2] = [("/api/things/", thing), ("/", thing)];
        for (path, empty_keys, want) in [
            ("/", false, Some(R::Page(Shared::Index))),
            (STYLE_PATH, false, Some(R::Page(Shared::Style))),
            ("/home", false, Some(R::Home)),
            ("/api/things/a%20b", false, Some(R::Thing("a%20b"))),
            ("/x", false, Some(R::Thing("x"))),
            ("/api/things/", false, Some(R::Thing("api/things/"))),
            ("/api/things/", true, Some(R::Thing(""))),
            ("nothing", true, None),
        ] {
            assert_eq!(
                lookup(path, R::Page, &exact, &keyed, empty_keys),
                want,
                "{path} {empty_keys}"
            );
        }
        assert!(is_api("/api/v1/status") && !is_api("/apix"));
        assert!(is_read(&Method::HEAD) && !is_read(&Method::POST));
    }
}
