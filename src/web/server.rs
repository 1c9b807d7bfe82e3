//! The board dashboard's routes: what each path of `edgeprobe run`'s
//! dashboard answers, from the snapshot, the history and the monitor's
//! command channel. The accept loop, limits and headers are in
//! [`crate::http`], shared with `edgeprobe central`.

use std::future::Future;
use std::io;
use std::sync::Arc;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::admin::{self, AuthError};
use super::api::{self, TargetDetailDoc, TargetDoc, TargetHistory};
use super::query::IndexQuery;
use super::{alerts, metrics, table, views, WebState};
use crate::clock::Timestamp;
use crate::http::conditional::{self, EntityTag};
use crate::http::query;
use crate::http::response::{self, html, json, not_found, with_type, ErrorDoc, Resp};
use crate::http::route::{self, Shared};
use crate::leds::{LedReport, LOCATE_FOR};
use crate::monitor::{Command, Snapshot};

/// How many results, traces and events a target page shows.
const RESULTS_SHOWN: usize = 100;
const TRACES_SHOWN: usize = 10;
const EVENTS_SHOWN: usize = 50;

/// How to enable the admin endpoints, for the 403 they answer when off.
const ADMIN_OFF: &str = "admin endpoints are off: set admin_token in the config file, \
                         or pass --admin-token-file FILE, to enable them";

/// Serve the board's dashboard until `shutdown` resolves. See
/// [`super::serve`].
pub async fn serve(
    listener: TcpListener,
    state: Arc<WebState>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let limits = state.limits;
    let hosts = Arc::clone(&state.allowed_hosts);
    let tls = state.tls.clone();
    let handler = move |req| {
        let state = state.clone();
        async move { route(&state, req).await }
    };
    crate::http::serve(listener, limits, hosts, tls, handler, shutdown).await
}

/// What a path names.
#[derive(Clone, Copy)]
enum Route<'a> {
    /// `/`, the stylesheet, `/healthz`.
    Shared(Shared),
    Metrics,
    ApiStatus,
    /// The raw (still percent-encoded) key.
    ApiTarget(&'a str),
    TargetPage(&'a str),
    AlertsPage,
    ApiAlerts,
    AdminTargets,
    AdminProbeNow,
    AdminLocate,
    AdminSilence,
    AdminTestAlert,
    NotFound,
}

impl<'p> Route<'p> {
    fn parse(path: &'p str) -> Route<'p> {
        let exact = [
            ("/metrics", Route::Metrics),
            ("/api/v1/status", Route::ApiStatus),
            ("/alerts", Route::AlertsPage),
            ("/api/v1/alerts", Route::ApiAlerts),
            ("/admin/targets", Route::AdminTargets),
            ("/admin/probe-now", Route::AdminProbeNow),
            ("/admin/locate", Route::AdminLocate),
            ("/admin/silence", Route::AdminSilence),
            ("/admin/test-alert", Route::AdminTestAlert),
        ];
        let keyed: [route::Keyed<'_, 'p, Route<'p>>; 2] = [
            ("/api/v1/targets/", Route::ApiTarget),
            ("/targets/", Route::TargetPage),
        ];
        // An empty key (`/targets/`) is a target page that finds nothing.
        route::lookup(path, Route::Shared, &exact, &keyed, true).unwrap_or(Route::NotFound)
    }

    fn is_admin(&self) -> bool {
        matches!(
            self,
            Route::AdminTargets
                | Route::AdminProbeNow
                | Route::AdminLocate
                | Route::AdminSilence
                | Route::AdminTestAlert
        )
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
            route::is_read(method)
        }
    }
}

async fn route(state: &Arc<WebState>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let route = Route::parse(&path);
    let api = route::is_api(&path);

    if let Route::NotFound = route {
        return not_found(api, "There is nothing at this address.");
    }
    if !route.accepts(req.method()) {
        return response::method_not_allowed(api || route.is_admin(), route.allow(), &path);
    }

    // A cheap Arc clone: the borrow ends here, never held across an await.
    let snap: Arc<Snapshot> = state.snapshot.borrow().clone();
    let now = Timestamp::now();
    match route {
        Route::Shared(Shared::Index) => {
            let q = IndexQuery::parse(query.as_deref());
            let leds = state.leds.report(&snap, now);
            let tag = round_tag(&snap, &leds, "page", &q.to_query_string());
            conditional::tagged(req.headers(), &tag, || {
                html(StatusCode::OK, views::index(&snap, &leds, &q, now))
            })
        }
        Route::Shared(Shared::Style) => response::stylesheet(),
        Route::Shared(Shared::Health) => {
            let h = crate::monitor::health(&snap, now, crate::clock::Mono::now());
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
            metrics::render(&snap, &state.alerts.activity()),
        ),
        Route::AlertsPage => {
            let list = fetch_notifications(state).await;
            html(
                StatusCode::OK,
                alerts::page(
                    &snap,
                    &state.alerts.activity(),
                    list.as_deref().map_err(String::as_str),
                    now,
                ),
            )
        }
        Route::ApiAlerts => {
            // What fires comes from the snapshot: shown even when the
            // history cannot list the notifications.
            let (list, error) = match fetch_notifications(state).await {
                Ok(list) => (list, None),
                Err(e) => (Vec::new(), Some(format!("history unavailable: {e}"))),
            };
            let activity = state.alerts.activity();
            let mut doc = alerts::document(&snap.alerts, &activity, &list);
            doc.notifications_error = error;
            json(StatusCode::OK, &doc)
        }
        Route::ApiStatus => {
            let q = match IndexQuery::parse_api(query.as_deref()) {
                Ok(q) => q,
                Err(e) => return json(StatusCode::BAD_REQUEST, &ErrorDoc { error: &e.0 }),
            };
            let leds = state.leds.report(&snap, now);
            let tag = round_tag(&snap, &leds, "api", query.as_deref().unwrap_or(""));
            conditional::tagged(req.headers(), &tag, || {
                let matching = table::rows(&snap, &q);
                match q.page.slice(&matching) {
                    Ok((rows, page)) => {
                        json(StatusCode::OK, &api::status(&snap, &leds, rows, page))
                    }
                    Err(e) => json(StatusCode::BAD_REQUEST, &ErrorDoc { error: &e.0 }),
                }
            })
        }
        Route::ApiTarget(raw) => {
            let Some(t) = find_target(&snap, raw) else {
                return not_found(true, "no target with this key");
            };
            match fetch_history(state, t.key.to_string(), now).await {
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
            let h = fetch_history(state, t.key.to_string(), now).await;
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
        Route::AdminLocate => match admin_gate(state, req.headers()) {
            Err(resp) => resp,
            Ok(()) => {
                let until = state.leds.locate(now);
                json(
                    StatusCode::OK,
                    &json!({
                        "status": "locating",
                        "until": until,
                        "detail": format!("all LEDs blink together for {} s", LOCATE_FOR.as_secs()),
                    }),
                )
            }
        },
        Route::AdminSilence => match admin_gate(state, req.headers()) {
            Err(resp) => resp,
            Ok(()) => silence(state, &snap, query.as_deref(), now).await,
        },
        Route::AdminTestAlert => match admin_gate(state, req.headers()) {
            Err(resp) => resp,
            Ok(()) => test_alert(state, &snap.board.id, now).await,
        },
        Route::NotFound => not_found(api, "There is nothing at this address."),
    }
}

/// The entity tag of what `/` or `/api/v1/status` shows for one query:
/// it changes when the monitor publishes (a round, a reload, an alert)
/// or the LEDs change (locate), never between.
fn round_tag(snap: &Snapshot, leds: &LedReport, view: &str, query: &str) -> EntityTag {
    EntityTag::of((snap.board.started_at, snap.published, leds, view, query))
}

/// `POST /admin/silence?target=|group=|board&for=2h&reason=`.
async fn silence(state: &WebState, snap: &Snapshot, query: Option<&str>, now: Timestamp) -> Resp {
    let silence = match alerts::parse_silence(query, snap, now) {
        Ok(s) => s,
        Err(e) => return json(StatusCode::BAD_REQUEST, &ErrorDoc { error: &e }),
    };
    let until = silence.until;
    let (reply, answer) = oneshot::channel();
    if state
        .commands
        .send(Command::Silence { silence, reply })
        .await
        .is_err()
    {
        return monitor_gone();
    }
    match answer.await {
        Ok(Ok(detail)) => json(
            StatusCode::OK,
            &json!({ "status": if until > now { "silenced" } else { "lifted" }, "until": until, "detail": detail }),
        ),
        Ok(Err(e)) => json(StatusCode::SERVICE_UNAVAILABLE, &ErrorDoc { error: &e }),
        Err(_) => monitor_gone(),
    }
}

/// `POST /admin/test-alert`: a test message through every channel now;
/// 200 when all took it, 502 naming the ones that did not.
async fn test_alert(state: &WebState, board: &str, now: Timestamp) -> Resp {
    if state.alerts.is_empty() {
        return json(
            StatusCode::CONFLICT,
            &ErrorDoc {
                error: "no alert channel is configured: add one to the [alerts] section of the \
                        config file (see board/edgeprobe.toml)",
            },
        );
    }
    let results = state.alerts.test_all(board, now).await;
    let all = results.iter().all(|r| r.delivered);
    let status = if all {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    json(status, &json!({ "delivered": all, "channels": results }))
}

/// The recent notifications, read on the blocking pool.
async fn fetch_notifications(
    state: &WebState,
) -> Result<Vec<crate::store::NotificationRecord>, String> {
    let history = state.history.clone();
    match tokio::task::spawn_blocking(move || history.notifications(alerts::NOTIFICATIONS_SHOWN))
        .await
    {
        Ok(Ok(list)) => Ok(list),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the notifications lookup failed: {e}")),
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
