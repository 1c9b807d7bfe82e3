//! The HTTP plumbing both dashboards share (the board's `edgeprobe run` and
//! the fleet's `edgeprobe central`): accepting connections under a cap,
//! hyper http1 with a header read timeout and a bounded read buffer, a time
//! limit per request, the security headers (CSP and friends) on every
//! response, graceful shutdown, and the small response builders.
//!
//! What a path means is the caller's business: [`serve`] takes a handler
//! from request to response and knows nothing about routes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use maud::Markup;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::api::ErrorDoc;
use super::{views, Limits};

/// What every handler answers.
pub(crate) type Resp = Response<Full<Bytes>>;

/// The stylesheet, built into the binary; both dashboards serve it at
/// `/static/style.css`.
const STYLE_CSS: &str = include_str!("style.css");

/// The policy the pages are written for: no script at all, styles only
/// from our own stylesheet, inline SVG and `data:` images only.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Read buffer per connection: request line and headers must fit in it.
/// hyper's default (~400 KiB) is a lot of RAM on a Pi times 256
/// connections; a browser's headers fit in a few KiB.
const MAX_BUF_BYTES: usize = 64 * 1024;

/// Accept and serve until `shutdown` resolves, then let in-flight requests
/// finish for up to `limits.shutdown_grace`.
///
/// `handler` answers one request; it runs under `limits.request_timeout`
/// (a slower one is answered 503) and every response it gives gets the
/// security headers. Body size limits are the handler's to apply, with
/// `limits.body_max`, since only it knows which routes take a body.
pub(crate) async fn serve<H, F>(
    listener: TcpListener,
    limits: Limits,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
{
    let handler = Arc::new(handler);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF_BYTES);
    tokio::pin!(shutdown);

    loop {
        // Take a permit before accepting: at the cap, new connections wait
        // in the kernel's backlog instead of costing memory here.
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                // Never closed: we hold the semaphore.
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    accept_error(e).await?;
                    continue;
                }
            },
        };
        // Small responses: don't wait for Nagle.
        let _ = stream.set_nodelay(true);
        let conn_handler = handler.clone();
        let service = service_fn(move |req| {
            let response = conn_handler(req);
            handle(limits.request_timeout, response)
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A connection ends in an error when the client resets it or
            // is too slow with its headers: the client's business, and
            // nothing the operator can act on.
            let _ = conn.await;
            drop(permit);
        });
    }

    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            eprintln!(
                "edgeprobe: web: requests still running {:?} after shutdown; dropping them",
                limits.shutdown_grace
            );
        }
    }
    Ok(())
}

/// Decide whether an accept error ends the server. Errors about one
/// connection (reset before we took it) are skipped; running out of file
/// descriptors or memory is waited out, since connections closing will
/// free them; anything else means the listener itself is broken.
async fn accept_error(e: io::Error) -> io::Result<()> {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) {
        return Ok(());
    }
    if matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    ) {
        eprintln!("edgeprobe: web: cannot accept a connection ({e}); retrying");
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Ok(());
    }
    Err(e)
}

/// One request: the handler's answer within the time limit, then the
/// headers every response carries.
async fn handle(limit: Duration, response: impl Future<Output = Resp>) -> Result<Resp, Infallible> {
    let mut resp = match tokio::time::timeout(limit, response).await {
        Ok(resp) => resp,
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than {} s and was given up; try again\n",
                limit.as_secs()
            ),
        ),
    };
    security_headers(resp.headers_mut());
    Ok(resp)
}

fn security_headers(h: &mut HeaderMap) {
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
pub(crate) fn stylesheet() -> Resp {
    let mut resp = with_type(StatusCode::OK, "text/css; charset=utf-8", STYLE_CSS);
    // The stylesheet only changes with the binary.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    resp
}

/// 404: JSON for API clients, a page for browsers.
pub(crate) fn not_found(api: bool, message: &str) -> Resp {
    if api {
        json(StatusCode::NOT_FOUND, &ErrorDoc { error: message })
    } else {
        html(
            StatusCode::NOT_FOUND,
            views::error_page("Not found", message),
        )
    }
}

/// 405 with the `Allow` header: JSON for API clients, a page for browsers.
pub(crate) fn method_not_allowed(api: bool, allow: &'static str, path: &str) -> Resp {
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
            views::error_page("Method not allowed", &format!("Use {allow}.")),
        )
    };
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

/// A response with a body of the given type.
pub(crate) fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// An HTML page.
pub(crate) fn html(status: StatusCode, page: Markup) -> Resp {
    with_type(status, "text/html; charset=utf-8", page.into_string())
}

/// Plain text.
pub(crate) fn text(status: StatusCode, body: String) -> Resp {
    with_type(status, "text/plain; charset=utf-8", body)
}

/// A JSON document.
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, doc: &T) -> Resp {
    match serde_json::to_vec(doc) {
        Ok(body) => with_type(status, "application/json", body),
        // Only a map with non-string keys could fail; none is built here.
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode JSON: {e}\n"),
        ),
    }
}
