//! What each path of the fleet dashboard answers. Every request reads
//! MongoDB through the [`FleetSource`] afresh; nothing is kept between
//! requests. The HTTP edge (limits, headers, shutdown, route tables) is
//! [`crate::http`], shared with the board dashboard.
//!
//! Sign-in comes first: [`route`] asks [`signin::admit`] who the request
//! is, answers `/login`, `/logout`, the stylesheet and `/healthz` whoever
//! it is, and refuses every other path ([`signin::refuse`]) before it is
//! parsed further or anything is read.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::api::{self, ErrorDoc, HealthDoc};
use super::auth::Admit;
use super::model::{sort_availability, sort_boards, Window};
use super::source::FleetError;
use super::views::{self, Context};
use super::{signin, CentralState};
use crate::clock::Timestamp;
use crate::http::query::{param, percent_decode};
use crate::http::response::{html, json, method_not_allowed, not_found, stylesheet, Resp};
use crate::http::route::{self, Shared};

/// How many events the board page shows.
const EVENTS_SHOWN: i64 = 50;

/// What a path names. Keys are still percent-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    /// `/`, the stylesheet, `/healthz`.
    Shared(Shared),
    Login,
    Logout,
    Availability,
    Board(&'a str),
    Target(&'a str),
    ApiBoards,
    ApiAvailability,
    ApiTarget(&'a str),
    NotFound,
}

impl<'p> Route<'p> {
    fn parse(path: &'p str) -> Route<'p> {
        let exact = [
            ("/login", Route::Login),
            ("/logout", Route::Logout),
            ("/availability", Route::Availability),
            ("/api/v1/boards", Route::ApiBoards),
            ("/api/v1/availability", Route::ApiAvailability),
        ];
        let keyed: [route::Keyed<'_, 'p, Route<'p>>; 3] = [
            ("/api/v1/targets/", Route::ApiTarget),
            ("/boards/", Route::Board),
            ("/targets/", Route::Target),
        ];
        route::lookup(path, Route::Shared, &exact, &keyed, false).unwrap_or(Route::NotFound)
    }
}

/// Answer one request.
pub async fn route(state: Arc<CentralState>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path();
    let query = req.uri().query();
    let api = route::is_api(path);
    let route = Route::parse(path);
    let admit = signin::admit(&req, &state.auth);
    match route {
        Route::Login => return signin::login(&state, req).await,
        Route::Logout => return signin::logout(&state, &req),
        Route::Shared(Shared::Style | Shared::Health) => {}
        _ => {
            if let Admit::Deny(refusal) = admit {
                return signin::refuse(&req, api, refusal);
            }
        }
    }
    if route == Route::NotFound {
        return not_found(api, "There is nothing at this address.");
    }
    if !route::is_read(req.method()) {
        return method_not_allowed(api, "GET, HEAD", path);
    }
    let ctx = Context {
        server: state.source.server(),
        database: &state.database,
        now: Timestamp::now(),
        user: match &admit {
            Admit::User(name) => Some(name),
            _ => None,
        },
    };
    let source = state.source.as_ref();
    match route {
        Route::Shared(Shared::Index) => {
            let boards = source.boards().await.map(|mut b| {
                sort_boards(&mut b);
                b
            });
            let status = ok_or_unavailable(&boards);
            html(status, views::index(&ctx, boards.as_deref()))
        }
        Route::Shared(Shared::Style) => stylesheet(),
        Route::Shared(Shared::Health) => health(&state, &admit, ctx.server).await,
        Route::Availability => {
            let asked = param(query, "window");
            let window = asked.as_deref().and_then(Window::parse);
            let rejected = asked.as_deref().filter(|_| window.is_none());
            let window = window.unwrap_or(Window::DEFAULT);
            let rows = availability(&ctx, &state, window).await;
            html(
                ok_or_unavailable(&rows),
                views::availability_page(&ctx, window, rejected, rows.as_deref()),
            )
        }
        Route::ApiAvailability => {
            let window = match param(query, "window") {
                None => Window::DEFAULT,
                Some(w) => match Window::parse(&w) {
                    Some(w) => w,
                    None => {
                        let message = format!(
                            "unknown window {w:?}: use window={}",
                            Window::ALL.map(Window::as_str).join(", window=")
                        );
                        return json(
                            StatusCode::BAD_REQUEST,
                            &ErrorDoc {
                                error: &message,
                                allowed: Some(Window::ALL.map(Window::as_str).to_vec()),
                            },
                        );
                    }
                },
            };
            match availability(&ctx, &state, window).await {
                Ok(rows) => json(StatusCode::OK, &rows),
                Err(e) => unavailable_json(&e),
            }
        }
        Route::ApiBoards => match source.boards().await {
            Ok(mut boards) => {
                sort_boards(&mut boards);
                json(StatusCode::OK, &api::boards(&boards, ctx.now))
            }
            Err(e) => unavailable_json(&e),
        },
        Route::Board(raw) => {
            let Some(id) = percent_decode(raw, false) else {
                return not_found(false, "No board has this id.");
            };
            match source.board(&id).await {
                Ok(None) => not_found(false, "No board with this id has synced to this database."),
                Ok(Some(board)) => {
                    let events = source.events(&id, EVENTS_SHOWN).await;
                    html(
                        ok_or_unavailable(&events),
                        views::board_page(&ctx, &board, events.as_deref()),
                    )
                }
                Err(e) => html(
                    StatusCode::SERVICE_UNAVAILABLE,
                    views::board_unavailable(&ctx, &id, &e),
                ),
            }
        }
        Route::Target(raw) | Route::ApiTarget(raw) => {
            let Some(target) = percent_decode(raw, false) else {
                return not_found(api, "No target has this address.");
            };
            target_response(&ctx, source, &target, api).await
        }
        Route::Login | Route::Logout | Route::NotFound => {
            not_found(api, "There is nothing at this address.")
        }
    }
}

/// `/healthz`: 200 when MongoDB answers a ping, else 503. Only a caller
/// who is let in (or anyone, with sign-in off) learns the server, the
/// reason and the failed sign-ins.
async fn health(state: &CentralState, admit: &Admit, server: &str) -> Resp {
    let ping = state.source.ping().await;
    let status = if ping.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut doc = HealthDoc::bare(ping.is_ok());
    if admit.is_admitted() {
        doc.server = Some(server);
        doc.error = ping.err().map(|e| e.to_string());
        doc.failed_logins = state
            .auth
            .signs_in()
            .then(|| state.failed_logins.load(Ordering::Relaxed));
    }
    json(status, &doc)
}

/// The window's availability rows, sorted for display.
async fn availability(
    ctx: &Context<'_>,
    state: &CentralState,
    window: Window,
) -> Result<Vec<super::model::AvailabilityRow>, FleetError> {
    let mut rows = state
        .source
        .availability(window.since(ctx.now), None)
        .await?;
    sort_availability(&mut rows);
    Ok(rows)
}

/// `/targets/{addr}` and its JSON: the boards that list it, and its
/// availability over each window (three aggregations, run at once).
async fn target_response(
    ctx: &Context<'_>,
    source: &dyn super::FleetSource,
    target: &str,
    api: bool,
) -> Resp {
    let [day, week, month] = Window::ALL;
    let (boards, d, w, m) = futures::join!(
        source.boards_seeing(target),
        source.availability(day.since(ctx.now), Some(target)),
        source.availability(week.since(ctx.now), Some(target)),
        source.availability(month.since(ctx.now), Some(target)),
    );
    let (boards, windows) = match (boards, d, w, m) {
        (Ok(b), Ok(d), Ok(w), Ok(m)) => (b, vec![(day, d), (week, w), (month, m)]),
        (Err(e), _, _, _) | (_, Err(e), _, _) | (_, _, Err(e), _) | (_, _, _, Err(e)) if api => {
            return unavailable_json(&e)
        }
        (Err(e), _, _, _) | (_, Err(e), _, _) | (_, _, Err(e), _) | (_, _, _, Err(e)) => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                views::target_page(ctx, target, Err(&e)),
            )
        }
    };
    let across = api::target_across(target, &boards, &windows, ctx.now);
    if across.is_empty() {
        return not_found(
            api,
            "No board monitors this target, and no results for it are in the last 30 days.",
        );
    }
    if api {
        json(StatusCode::OK, &api::target_detail(target, &across))
    } else {
        html(StatusCode::OK, views::target_page(ctx, target, Ok(&across)))
    }
}

/// 200, or 503 when the data could not be read (the page still renders,
/// with a banner, but load balancers and probes see the failure).
fn ok_or_unavailable<T>(r: &Result<T, FleetError>) -> StatusCode {
    if r.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn unavailable_json(e: &FleetError) -> Resp {
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        &ErrorDoc::new(&e.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse() {
        assert_eq!(Route::parse("/"), Route::Shared(Shared::Index));
        assert_eq!(Route::parse("/boards/closet-1"), Route::Board("closet-1"));
        assert_eq!(Route::parse("/boards/"), Route::NotFound);
        assert_eq!(
            Route::parse("/targets/2001:db8::1"),
            Route::Target("2001:db8::1")
        );
        assert_eq!(
            Route::parse("/api/v1/targets/198.19.0.1"),
            Route::ApiTarget("198.19.0.1")
        );
        assert_eq!(Route::parse("/api/v1/status"), Route::NotFound);
        assert_eq!(Route::parse("/login"), Route::Login);
        assert_eq!(Route::parse("/logout"), Route::Logout);
    }
}
