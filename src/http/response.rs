//! The responses both dashboards build: the security headers (CSP and
//! friends) every response carries, the stylesheet, 404 and 405 as JSON
//! or as a page, and small builders for HTML, text and JSON bodies.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use maud::Markup;
use serde::Serialize;

use super::layout;

/// What every handler answers.
pub type Resp = Response<Full<Bytes>>;

/// The stylesheet, built into the binary; both dashboards serve it at
/// `/static/style.css`.
const STYLE_CSS: &str = include_str!("style.css");

/// The policy the pages are written for: no script at all, styles only
/// from our own stylesheet, inline SVG and `data:` images only.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An error as JSON: `{"error": "..."}`.
#[derive(Debug, Serialize)]
pub struct ErrorDoc<'a> {
    pub error: &'a str,
}

/// The headers every response carries; `Cache-Control: no-store` unless
/// the handler set its own.
pub fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// `GET /static/style.css`.
pub fn stylesheet() -> Resp {
    let mut resp = with_type(StatusCode::OK, "text/css; charset=utf-8", STYLE_CSS);
    // The stylesheet only changes with the binary.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    resp
}

/// 404: JSON for API clients, a page for browsers.
pub fn not_found(api: bool, message: &str) -> Resp {
    if api {
        json(StatusCode::NOT_FOUND, &ErrorDoc { error: message })
    } else {
        html(
            StatusCode::NOT_FOUND,
            layout::error_page("Not found", message),
        )
    }
}

/// 405 with the `Allow` header: JSON for API clients, a page for browsers.
pub fn method_not_allowed(api: bool, allow: &'static str, path: &str) -> Resp {
    let mut resp = if api {
        json(
            StatusCode::METHOD_NOT_ALLOWED,
            &ErrorDoc {
                error: &format!("use {allow} for {path}"),
            },
        )
    } else {
        html(
            StatusCode::METHOD_NOT_ALLOWED,
            layout::error_page("Method not allowed", &format!("Use {allow}.")),
        )
    };
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

/// 303 See Other to `location`, a path on this server (`/` when it
/// cannot be a header value).
pub fn see_other(location: &str) -> Resp {
    let mut resp = with_type(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    let value = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    resp.headers_mut().insert(header::LOCATION, value);
    resp
}

/// A response with a body of the given type.
pub fn with_type(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// An HTML page.
pub fn html(status: StatusCode, page: Markup) -> Resp {
    with_type(status, "text/html; charset=utf-8", page.into_string())
}

/// Plain text.
pub fn text(status: StatusCode, body: String) -> Resp {
    with_type(status, "text/plain; charset=utf-8", body)
}

/// A JSON document.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, doc: &T) -> Resp {
    match serde_json::to_vec(doc) {
        Ok(body) => with_type(status, "application/json", body),
        // Only a map with non-string keys could fail; none is built here.
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode JSON: {e}\n"),
        ),
    }
}
