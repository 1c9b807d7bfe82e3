//! The HTTP edge: accepting connections (capped), hyper http1 with a header
//! read timeout, routing, limits on body size and request time, security
//! headers, and graceful shutdown. Everything that decides what a page
//! says lives in the pure modules next door.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use maud::Markup;
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};

use super::admin::{self, AuthError};
use super::api::{self, ErrorDoc, TargetDetailDoc, TargetDoc, TargetHistory};
use super::query::{self, IndexQuery};
use super::{metrics, views, WebState};
use crate::clock::Timestamp;
use crate::monitor::{Command, Snapshot};

type Resp = Response<Full<Bytes>>;

/// The stylesheet, built into the binary.
const STYLE_CSS: &str = include_str!("style.css");

/// The policy the pages are written for: no script at all, styles only
/// from our own stylesheet, inline SVG and `data:` images only.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Read buffer per connection: request line and headers must fit in it.
/// hyper's default (~400 KiB) is a lot of RAM on a Pi times 256
/// connections; a browser's headers fit in a few KiB.
const MAX_BUF_BYTES: usize = 64 * 1024;

/// How many results, traces and events a target page shows.
const RESULTS_SHOWN: usize = 100;
const TRACES_SHOWN: usize = 10;
const EVENTS_SHOWN: usize = 50;

/// How to enable the admin endpoints, for the 403 they answer when off.
const ADMIN_OFF: &str = "admin endpoints are off: set admin_token in the config file, \
                         or pass --admin-token-file FILE, to enable them";

/// Accept and serve until `shutdown` resolves, then let in-flight requests
/// finish for up to `limits.shutdown_grace`. See [`super::serve`].
pub async fn serve(
    listener: TcpListener,
    state: Arc<WebState>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let limits = state.limits;
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
        let conn_state = state.clone();
        let service = service_fn(move |req| handle(conn_state.clone(), req));
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

/// One request: route it within the time limit, then add the headers
/// every response carries.
async fn handle(state: Arc<WebState>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let limit = state.limits.request_timeout;
    let mut resp = match tokio::time::timeout(limit, route(&state, req)).await {
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

/// What a path names.
enum Route<'a> {
    Index,
    Style,
    Health,
    Metrics,
    ApiStatus,
    /// The raw (still percent-encoded) key.
    ApiTarget(&'a str),
    TargetPage(&'a str),
    AdminTargets,
    AdminProbeNow,
    NotFound,
}

impl Route<'_> {
    fn parse(path: &str) -> Route<'_> {
        match path {
            "/" => Route::Index,
            "/static/style.css" => Route::Style,
            "/healthz" => Route::Health,
            "/metrics" => Route::Metrics,
            "/api/v1/status" => Route::ApiStatus,
            "/admin/targets" => Route::AdminTargets,
            "/admin/probe-now" => Route::AdminProbeNow,
            p => {
                if let Some(k) = p.strip_prefix("/api/v1/targets/") {
                    Route::ApiTarget(k)
                } else if let Some(k) = p.strip_prefix("/targets/") {
                    Route::TargetPage(k)
                } else {
                    Route::NotFound
                }
            }
        }
    }

    fn is_admin(&self) -> bool {
        matches!(self, Route::AdminTargets | Route::AdminProbeNow)
    }

    /// The methods it answers, for the `Allow` header.
    fn allow(&self) -> &'static str {
        if self.is_admin() {
            "POST"
        } else {
            "GET, HEAD"
        }
    }

    fn accepts(&self, method: &Method) -> bool {
        if self.is_admin() {
            method == Method::POST
        } else {
            // hyper leaves out the body of a HEAD response (keeping its
            // Content-Length), so HEAD is GET here.
            method == Method::GET || method == Method::HEAD
        }
    }
}

async fn route(state: &Arc<WebState>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let route = Route::parse(&path);
    let api = path.starts_with("/api/");

    if let Route::NotFound = route {
        return not_found(api, "There is nothing at this address.");
    }
    if !route.accepts(req.method()) {
        let mut resp = if api || route.is_admin() {
            json(
                StatusCode::METHOD_NOT_ALLOWED,
                &ErrorDoc {
                    error: &format!("use {} for {path}", route.allow()),
                },
            )
        } else {
            html(
                StatusCode::METHOD_NOT_ALLOWED,
                views::error_page("Method not allowed", &format!("Use {}.", route.allow())),
            )
        };
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(route.allow()));
        return resp;
    }

    // A cheap Arc clone: the borrow ends here, never held across an await.
    let snap: Arc<Snapshot> = state.snapshot.borrow().clone();
    let now = Timestamp::now();
    match route {
        Route::Index => {
            let q = IndexQuery::parse(query.as_deref());
            html(StatusCode::OK, views::index(&snap, &q, now))
        }
        Route::Style => {
            let mut resp = with_type(StatusCode::OK, "text/css; charset=utf-8", STYLE_CSS);
            // The stylesheet only changes with the binary.
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            resp
        }
        Route::Health => {
            let h = api::health(&snap, now);
            let status = if h.ok() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(status, &h)
        }
        Route::Metrics => with_type(
            StatusCode::OK,
            metrics::CONTENT_TYPE,
            metrics::render(&snap),
        ),
        Route::ApiStatus => json(StatusCode::OK, &api::status(&snap)),
        Route::ApiTarget(raw) => {
            let Some(t) = find_target(&snap, raw) else {
                return not_found(true, "no target with this key");
            };
            match fetch_history(state, t.key.clone(), now).await {
                Ok(h) => json(
                    StatusCode::OK,
                    &TargetDetailDoc {
                        target: TargetDoc::new(t),
                        history: &h,
                    },
                ),
                Err(e) => json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &ErrorDoc {
                        error: &format!("history unavailable: {e}"),
                    },
                ),
            }
        }
        Route::TargetPage(raw) => {
            let Some(t) = find_target(&snap, raw) else {
                return not_found(false, "No target with this address is monitored.");
            };
            let h = fetch_history(state, t.key.clone(), now).await;
            html(
                StatusCode::OK,
                views::target_page(&snap, t, h.as_ref().map_err(String::as_str), now),
            )
        }
        Route::AdminTargets => match admin_gate(state, req.headers()) {
            Err(resp) => resp,
            Ok(()) => upload_targets(state, req, query.as_deref()).await,
        },
        Route::AdminProbeNow => match admin_gate(state, req.headers()) {
            Err(resp) => resp,
            Ok(()) => match state.commands.send(Command::ProbeNow).await {
                Ok(()) => json(
                    StatusCode::ACCEPTED,
                    &json!({"status": "queued", "detail": "a round starts now, or right after the one in flight"}),
                ),
                Err(_) => monitor_gone(),
            },
        },
        Route::NotFound => not_found(api, "There is nothing at this address."),
    }
}

fn find_target<'a>(snap: &'a Snapshot, raw: &str) -> Option<&'a crate::monitor::TargetView> {
    let key = query::percent_decode(raw, false)?;
    snap.target(&key)
}

/// Read a target's history on the blocking pool: the store's calls block
/// on SQLite.
async fn fetch_history(
    state: &Arc<WebState>,
    key: String,
    now: Timestamp,
) -> Result<TargetHistory, String> {
    let history = state.history.clone();
    let task = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::store::StoreError>(TargetHistory {
            uptime: history.uptime(&key, now)?,
            results: history.results(&key, RESULTS_SHOWN)?,
            traces: history.traces(&key, TRACES_SHOWN)?,
            events: history.events(Some(&key), EVENTS_SHOWN)?,
        })
    });
    match task.await {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the history lookup failed: {e}")),
    }
}

/// Let an admin request through, or answer it: 403 when admin is off,
/// 401 without the right token.
#[allow(clippy::result_large_err)] // the Err is the response itself
fn admin_gate(state: &WebState, headers: &HeaderMap) -> Result<(), Resp> {
    // An empty token would let in `Authorization: Bearer ` : treat as off.
    let Some(token) = state.admin_token.as_deref().filter(|t| !t.is_empty()) else {
        return Err(json(StatusCode::FORBIDDEN, &ErrorDoc { error: ADMIN_OFF }));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match admin::check_bearer(presented, token) {
        Ok(()) => Ok(()),
        Err(why) => {
            let (message, challenge) = match why {
                AuthError::Missing => (
                    "send the admin token as `Authorization: Bearer TOKEN`",
                    "Bearer realm=\"edgeprobe\"",
                ),
                AuthError::Wrong => (
                    "wrong admin token",
                    "Bearer realm=\"edgeprobe\", error=\"invalid_token\"",
                ),
            };
            let mut resp = json(StatusCode::UNAUTHORIZED, &ErrorDoc { error: message });
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            Err(resp)
        }
    }
}

/// `POST /admin/targets?filename=...`: the raw file as the body.
async fn upload_targets(state: &WebState, req: Request<Incoming>, query: Option<&str>) -> Resp {
    let max = state.limits.body_max;
    let disposition = req
        .headers()
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok());
    let Some(file_name) =
        admin::upload_file_name(query::param(query, "filename").as_deref(), disposition)
    else {
        return json(
            StatusCode::BAD_REQUEST,
            &ErrorDoc {
                error: "name the file, e.g. POST /admin/targets?filename=targets.xlsx; \
                        its extension picks the format",
            },
        );
    };
    // Refuse an announced oversize body before reading any of it.
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return too_large(max);
    }
    let bytes = match Limited::new(req.into_body(), max).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(max),
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                &ErrorDoc {
                    error: &format!("could not read the upload: {e}"),
                },
            )
        }
    };
    if bytes.is_empty() {
        return json(
            StatusCode::BAD_REQUEST,
            &ErrorDoc {
                error: "the upload is empty: send the sheet file as the request body",
            },
        );
    }
    let (reply, answer) = oneshot::channel();
    let cmd = Command::ReplaceTargets {
        file_name,
        bytes: bytes.to_vec(),
        reply,
    };
    if state.commands.send(cmd).await.is_err() {
        return monitor_gone();
    }
    match answer.await {
        Ok(Ok(summary)) => json(StatusCode::OK, &json!({ "summary": summary })),
        Ok(Err(problems)) => json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({ "problems": problems }),
        ),
        Err(_) => monitor_gone(),
    }
}

fn too_large(max: usize) -> Resp {
    json(
        StatusCode::PAYLOAD_TOO_LARGE,
        &ErrorDoc {
            error: &format!("the upload is larger than the limit of {max} bytes"),
        },
    )
}

fn monitor_gone() -> Resp {
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        &ErrorDoc {
            error: "the monitor is not running; check the board's log",
        },
    )
}

fn not_found(api: bool, message: &str) -> Resp {
    if api {
        json(StatusCode::NOT_FOUND, &ErrorDoc { error: message })
    } else {
        html(
            StatusCode::NOT_FOUND,
            views::error_page("Not found", message),
        )
    }
}

fn with_type(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn html(status: StatusCode, page: Markup) -> Resp {
    with_type(status, "text/html; charset=utf-8", page.into_string())
}

fn text(status: StatusCode, body: String) -> Resp {
    with_type(status, "text/plain; charset=utf-8", body)
}

fn json<T: Serialize + ?Sized>(status: StatusCode, doc: &T) -> Resp {
    match serde_json::to_vec(doc) {
        Ok(body) => with_type(status, "application/json", body),
        // Only a map with non-string keys could fail; none is built here.
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode JSON: {e}\n"),
        ),
    }
}
