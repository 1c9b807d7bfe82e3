//! What each path of the fleet dashboard answers. Requests that read
//! MongoDB take one of the process's query slots first (429 when none
//! comes free, see [`super::summary`]); the board list comes from the
//! summary cache, everything else is read afresh. Every list is a page
//! ([`crate::http::paging`]). The HTTP edge (limits, headers, shutdown, route
//! tables) is [`crate::http`], shared with the board dashboard.
//!
//! Sign-in comes first: [`route`] asks [`signin::admit`] who the request
//! is, answers `/login`, `/logout`, the stylesheet and `/healthz` whoever
//! it is, and refuses every other path ([`signin::refuse`]) before it is
//! parsed further or anything is read.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};

use super::api::{self, AvailabilityPage, BoardsPage, ErrorDoc, HealthDoc, PairDoc};
use super::auth::Admit;
use super::charts;
use super::model::{
    board_target_pairs, fleet_targets, sort_boards_by_id, sort_boards_worst_first,
    targets_by_board, Board, Search, Window,
};
use super::pipeline::Scope;
use super::source::FleetError;
use super::summary::{Busy, FleetSummary, SLOT_WAIT};
use super::views::{self, BoardExtras, Context, FleetPage, Paged, PairRow};
use super::{signin, CentralState};
use crate::clock::Timestamp;
use crate::http::layout::error_page;
use crate::http::paging::{PageError, PageRequest};
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
    let Some(path) = state.base_path.strip(req.uri().path()) else {
        return not_found(
            route::is_api(req.uri().path()),
            &format!(
                "There is nothing at this address; the fleet is under {}/.",
                state.base_path.as_str()
            ),
        );
    };
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
                return signin::refuse(&state, &req, api, refusal);
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
        base: state.base_path.as_str(),
        user: match &admit {
            Admit::User(name) => Some(name),
            _ => None,
        },
    };
    match route {
        Route::Shared(Shared::Style) => return stylesheet(),
        // Outside the slots: a load balancer's probe must not read "busy"
        // as "down", and a ping costs the server nothing.
        Route::Shared(Shared::Health) => return health(&state, &admit).await,
        _ => {}
    }
    let _slot = match state.slots.acquire().await {
        Ok(slot) => slot,
        Err(busy) => return too_busy(api, busy),
    };
    match read_route(&state, &ctx, route, query, api).await {
        Ok(resp) => resp,
        Err(bad) => bad_request(api, &bad),
    }
}

/// A request whose query asks for what is not there: a window or page
/// out of range, with the values that work.
struct BadQuery {
    message: String,
    allowed: Option<Vec<&'static str>>,
}

impl From<PageError> for BadQuery {
    fn from(e: PageError) -> BadQuery {
        BadQuery {
            message: e.0,
            allowed: None,
        }
    }
}

/// `?window=`, default 24 h; anything but the three spellings is refused.
fn window(query: Option<&str>) -> Result<Window, BadQuery> {
    match param(query, "window") {
        None => Ok(Window::DEFAULT),
        Some(w) => Window::parse(&w).ok_or_else(|| BadQuery {
            message: format!(
                "unknown window {w:?}: use window={}",
                Window::ALL.map(Window::as_str).join(", window=")
            ),
            allowed: Some(Window::ALL.map(Window::as_str).to_vec()),
        }),
    }
}

/// Every route that reads MongoDB, under a query slot.
async fn read_route(
    state: &CentralState,
    ctx: &Context<'_>,
    route: Route<'_>,
    query: Option<&str>,
    api: bool,
) -> Result<Resp, BadQuery> {
    let source = state.source.as_ref();
    Ok(match route {
        Route::Shared(Shared::Health) | Route::Login | Route::Logout => {
            not_found(api, "There is nothing at this address.")
        }
        Route::Shared(Shared::Index) => {
            let search = Search::new(param(query, "q").as_deref());
            let boards_page = PageRequest::parse_key(query, "boards_page")?;
            let targets_page = PageRequest::parse(query)?;
            match state.summary.get(source, ctx.now).await {
                Err(e) => html(StatusCode::SERVICE_UNAVAILABLE, views::index(ctx, Err(&e))),
                Ok(summary) => fleet_page(ctx, &summary, &search, boards_page, targets_page)?,
            }
        }
        Route::Shared(Shared::Style) => stylesheet(),
        Route::Availability | Route::ApiAvailability => {
            let window = window(query)?;
            let page = PageRequest::parse(query)?;
            availability(state, ctx, window, page, api).await?
        }
        Route::ApiBoards => {
            let page = PageRequest::parse(query)?;
            match state.summary.get(source, ctx.now).await {
                Err(e) => unavailable_json(&e),
                Ok(summary) => {
                    let mut sorted: Vec<&Board> = summary.boards.iter().collect();
                    sort_boards_by_id(&mut sorted);
                    let (rows, info) = page.slice(&sorted)?;
                    json(
                        StatusCode::OK,
                        &BoardsPage {
                            page: info,
                            boards: api::boards(rows, ctx.now),
                        },
                    )
                }
            }
        }
        Route::Board(raw) => {
            let Some(id) = percent_decode(raw, false) else {
                return Ok(not_found(false, "No board has this id."));
            };
            let page = PageRequest::parse(query)?;
            board_response(state, ctx, &id, page).await?
        }
        Route::Target(raw) | Route::ApiTarget(raw) => {
            let Some(target) = percent_decode(raw, false) else {
                return Ok(not_found(api, "No target has this address."));
            };
            target_response(state, ctx, &target, api).await
        }
        Route::NotFound => not_found(api, "There is nothing at this address."),
    })
}

/// `/healthz`: 200 when MongoDB answers a ping, else 503. Only a caller
/// who is let in (or anyone, with sign-in off) learns the server, the
/// reason and the failed sign-ins.
async fn health(state: &CentralState, admit: &Admit) -> Resp {
    let ping = state.source.ping().await;
    let status = if ping.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut doc = HealthDoc::bare(ping.is_ok());
    if admit.is_admitted() {
        doc.server = Some(state.source.server());
        doc.error = ping.err().map(|e| e.to_string());
        doc.failed_logins = state
            .auth
            .signs_in()
            .then(|| state.failed_logins.load(Ordering::Relaxed));
    }
    json(status, &doc)
}

/// `/`: the boards worst first and the targets across them, both after
/// the search and each a page.
fn fleet_page(
    ctx: &Context<'_>,
    summary: &FleetSummary,
    search: &Search,
    boards_page: PageRequest,
    targets_page: PageRequest,
) -> Result<Resp, BadQuery> {
    let online = summary.boards.iter().filter(|b| b.online(ctx.now)).count();
    let mut boards: Vec<&Board> = summary.boards.iter().filter(|b| search.board(b)).collect();
    sort_boards_worst_first(&mut boards, ctx.now);
    let targets: Vec<_> = fleet_targets(&summary.boards, ctx.now)
        .into_iter()
        .filter(|t| search.target(t))
        .collect();
    let (board_rows, boards_info) = boards_page.slice(&boards)?;
    let (target_rows, targets_info) = targets_page.slice(&targets)?;
    let page = FleetPage {
        boards: Paged {
            rows: board_rows,
            info: boards_info,
        },
        targets: Paged {
            rows: target_rows,
            info: targets_info,
        },
        online,
        offline: summary.boards.len() - online,
        search,
        clock_ahead: &summary.clock_ahead,
    };
    Ok(html(StatusCode::OK, views::index(ctx, Ok(page))))
}

/// `/availability` and its JSON: a page of the fleet's (board, target)
/// pairs, and the server's sums over the window's hours for just those.
async fn availability(
    state: &CentralState,
    ctx: &Context<'_>,
    window: Window,
    page: PageRequest,
    api: bool,
) -> Result<Resp, BadQuery> {
    let first_hour = window.first_hour(ctx.now);
    let read = async {
        let summary = state.summary.get(state.source.as_ref(), ctx.now).await?;
        Ok::<_, FleetError>(board_target_pairs(&summary.boards))
    };
    let pairs = match read.await {
        Ok(p) => p,
        Err(e) => return Ok(availability_unavailable(ctx, window, api, &e)),
    };
    let (on_page, info) = page.slice(&pairs)?;
    // One aggregation per board on the page (a page spans few), at once.
    let by_board = targets_by_board(on_page);
    let reads = by_board.iter().map(|(b, targets)| {
        state
            .source
            .availability(Scope::BoardTargets(b, targets), first_hour)
    });
    let rows = match futures::future::try_join_all(reads).await {
        Ok(r) => r.into_iter().flatten().collect::<Vec<_>>(),
        Err(e) => return Ok(availability_unavailable(ctx, window, api, &e)),
    };
    let row_of = |b: &str, t: &str| rows.iter().find(|r| r.board == b && r.target == t);
    if api {
        let doc = AvailabilityPage {
            window: window.as_str(),
            first_hour,
            page: info,
            rows: on_page
                .iter()
                .map(|(b, t)| PairDoc::new(b, t, row_of(b, t)))
                .collect(),
        };
        return Ok(json(StatusCode::OK, &doc));
    }
    let lines: Vec<PairRow<'_>> = on_page
        .iter()
        .map(|(b, t)| (b.as_str(), t.as_str(), row_of(b, t)))
        .collect();
    Ok(html(
        StatusCode::OK,
        views::availability_page(ctx, window, Ok(Paged { rows: &lines, info })),
    ))
}

fn availability_unavailable(ctx: &Context<'_>, window: Window, api: bool, e: &FleetError) -> Resp {
    if api {
        unavailable_json(e)
    } else {
        html(
            StatusCode::SERVICE_UNAVAILABLE,
            views::availability_page(ctx, window, Err(e)),
        )
    }
}

/// `/boards/{id}`: the board document, a page of its targets, its events
/// and its 30-day chart (the latter two read at once).
async fn board_response(
    state: &CentralState,
    ctx: &Context<'_>,
    id: &str,
    page: PageRequest,
) -> Result<Resp, BadQuery> {
    let source = state.source.as_ref();
    let board = match source.board(id).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Ok(not_found(
                false,
                "No board with this id has synced to this database.",
            ))
        }
        Err(e) => {
            return Ok(html(
                StatusCode::SERVICE_UNAVAILABLE,
                views::board_unavailable(ctx, id, &e),
            ))
        }
    };
    let (targets, info) = page.slice(&board.targets)?;
    let first_hour = Window::Month.first_hour(ctx.now);
    let (events, hours, summary) = futures::join!(
        source.events(id, EVENTS_SHOWN),
        source.hourly(id, None, first_hour),
        state.summary.get(source, ctx.now),
    );
    let bars = hours.map(|h| charts::daily(&h, views::CHART_DAYS, ctx.now));
    let clock = summary
        .as_ref()
        .ok()
        .and_then(|s| s.clock_ahead.iter().find(|c| c.board == id).cloned());
    let status = if events.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let extras = BoardExtras {
        targets: Paged {
            rows: targets,
            info,
        },
        events: events.as_deref(),
        chart: bars.as_deref(),
        clock_ahead: clock.as_ref(),
    };
    Ok(html(status, views::board_page(ctx, &board, extras)))
}

/// `/targets/{addr}` and its JSON: the boards that list it (from the
/// summary: no query into the boards' target arrays), and its
/// availability over each window (three aggregations, run at once), and
/// for the page a daily chart per board.
async fn target_response(state: &CentralState, ctx: &Context<'_>, target: &str, api: bool) -> Resp {
    let source = state.source.as_ref();
    let [day, week, month] = Window::ALL;
    let scope = Scope::Target(target);
    let seeing = async {
        let summary = state.summary.get(source, ctx.now).await?;
        Ok::<Vec<Board>, FleetError>(
            summary
                .boards
                .iter()
                .filter(|b| b.target(target).is_some())
                .cloned()
                .collect(),
        )
    };
    let (boards, d, w, m) = futures::join!(
        seeing,
        source.availability(scope, day.first_hour(ctx.now)),
        source.availability(scope, week.first_hour(ctx.now)),
        source.availability(scope, month.first_hour(ctx.now)),
    );
    let (boards, windows) = match (boards, d, w, m) {
        (Ok(b), Ok(d), Ok(w), Ok(m)) => (b, vec![(day, d), (week, w), (month, m)]),
        (Err(e), _, _, _) | (_, Err(e), _, _) | (_, _, Err(e), _) | (_, _, _, Err(e)) if api => {
            return unavailable_json(&e)
        }
        (Err(e), _, _, _) | (_, Err(e), _, _) | (_, _, Err(e), _) | (_, _, _, Err(e)) => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                views::target_page(ctx, target, Err(&e), &[]),
            )
        }
    };
    let across = api::target_across(target, &boards, &windows, ctx.now);
    if across.is_empty() {
        return not_found(
            api,
            "No board monitors this target, and no rollups for it are in the last 30 days.",
        );
    }
    if api {
        return json(StatusCode::OK, &api::target_detail(target, &across));
    }
    // One small query per board (at most 720 rollups each); a board
    // whose chart cannot be read just has none.
    let first_hour = month.first_hour(ctx.now);
    let reads = across
        .iter()
        .map(|a| source.hourly(a.board, Some(target), first_hour));
    let hours = futures::future::join_all(reads).await;
    let charts: Vec<(&str, Vec<charts::DayBar>)> = across
        .iter()
        .zip(hours)
        .filter_map(|(a, h)| {
            h.ok()
                .map(|h| (a.board, charts::daily(&h, views::CHART_DAYS, ctx.now)))
        })
        .collect();
    html(
        StatusCode::OK,
        views::target_page(ctx, target, Ok(&across), &charts),
    )
}

fn unavailable_json(e: &FleetError) -> Resp {
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        &ErrorDoc::new(&e.to_string()),
    )
}

/// 400 with what to ask instead.
fn bad_request(api: bool, bad: &BadQuery) -> Resp {
    if api {
        json(
            StatusCode::BAD_REQUEST,
            &ErrorDoc {
                error: &bad.message,
                allowed: bad.allowed.clone(),
            },
        )
    } else {
        html(
            StatusCode::BAD_REQUEST,
            error_page("Bad request", &bad.message),
        )
    }
}

/// 429 with `Retry-After`: every query slot stayed taken for the wait.
fn too_busy(api: bool, busy: Busy) -> Resp {
    let message = format!(
        "central is busy: {} requests are reading the database and none finished within {} s; \
         try again in a few seconds",
        busy.slots,
        SLOT_WAIT.as_secs()
    );
    let mut resp = if api {
        json(StatusCode::TOO_MANY_REQUESTS, &ErrorDoc::new(&message))
    } else {
        html(StatusCode::TOO_MANY_REQUESTS, error_page("Busy", &message))
    };
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    resp
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
