//! The fleet dashboard's pages, rendered with maud in the frame, stylesheet
//! and view parts both dashboards share ([`crate::http::layout`]). Pure:
//! what was read from MongoDB (or why it could not be) and `now` in,
//! markup out. maud escapes every text node and attribute, which keeps
//! board ids, names and causes inert.

use maud::{html, Markup};

use super::api::TargetAcross;
use super::model::{fleet_targets, AvailabilityRow, Board, BoardTarget, Event, Window};
use super::source::FleetError;
use crate::clock::Timestamp;
use crate::http::fmt;
use crate::http::layout::{
    badge, layout, name_cell, opt_time, refresh_secs, status_cell, status_class,
};
use crate::http::query::encode_path_segment;
use crate::probe::Status;

/// Seconds between refreshes of the fleet pages: a wall screen stays
/// current without hammering the database.
const REFRESH_SECS: u64 = 30;

/// What every page says about where its data comes from.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The server, without credentials.
    pub server: &'a str,
    pub database: &'a str,
    pub now: Timestamp,
    /// Who is signed in with a session cookie: the footer names them and
    /// has a sign-out button. `None` with sign-in off, or for a token or
    /// a proxy's user (their sign-out is elsewhere).
    pub user: Option<&'a str>,
}

/// `/boards/{id}`.
pub fn board_href(id: &str) -> String {
    format!("/boards/{}", encode_path_segment(id))
}

/// `/targets/{addr}`; colons stay readable for IPv6.
pub fn target_href(target: &str) -> String {
    format!("/targets/{}", encode_path_segment(target))
}

fn online_badge(online: bool) -> Markup {
    html! {
        @if online { span.badge.st-working { "Online" } }
        @else { span.badge.st-not-working { "Offline" } }
    }
}

fn unavailable(e: &FleetError) -> Markup {
    html! {
        div.alert.bad role="alert" {
            strong { "No data: " } (e)
            ". This page shows what it can and refreshes by itself; check that the server is up and reachable from here."
        }
    }
}

fn dash() -> Markup {
    html! { span.none { "—" } }
}

fn opt_percent(v: Option<f64>) -> Markup {
    html! { @if let Some(v) = v { (fmt::percent(v)) } @else { (dash()) } }
}

fn opt_ms(v: Option<f64>) -> Markup {
    html! { @if let Some(v) = v { (fmt::ms(v)) } @else { (dash()) } }
}

fn gateway_cell(t: &BoardTarget) -> Markup {
    html! {
        @match (&t.gateway, t.status) {
            (Some(g), _) => { (g) }
            // Probed, and no gateway: the board had no route to it.
            (None, Some(_)) => { "no route" }
            (None, None) => { (dash()) }
        }
    }
}

fn availability_cell(row: Option<&AvailabilityRow>) -> Markup {
    html! {
        @if let Some(r) = row {
            (fmt::percent(r.availability))
            br;
            span.sub { (r.working) "/" (r.rounds) " rounds" }
        } @else {
            span.none { "no results" }
        }
    }
}

/// A fleet page: `body` and the footer in the shared frame, refreshing
/// itself at `self_url` every `refresh` seconds.
fn page(ctx: &Context<'_>, title: &str, refresh: u64, self_url: &str, body: Markup) -> Markup {
    layout(
        title,
        Some((refresh, self_url)),
        html! { (body) (footer(ctx)) },
    )
}

fn footer(ctx: &Context<'_>) -> Markup {
    html! {
        footer {
            "edgeprobe central " (env!("CARGO_PKG_VERSION"))
            " · MongoDB " (ctx.server) ", database " (ctx.database) " · "
            a href="/api/v1/boards" { "JSON" } " · "
            a href="/availability" { "availability" } " · "
            a href="/healthz" { "health" }
            @if let Some(user) = ctx.user {
                " · signed in as " (user) " "
                form.signout method="post" action="/logout" {
                    button type="submit" { "Sign out" }
                }
            }
        }
    }
}

/// `/login`: the sign-in form, with `problem` above it (a wrong password,
/// too many at once), the name typed last time, and where to go next.
pub fn login_page(problem: Option<&str>, name: &str, next: &str) -> Markup {
    layout(
        "Sign in · edgeprobe central",
        None,
        html! {
            header.top { h1 { "edgeprobe central" } }
            main {
                @if let Some(p) = problem {
                    div.alert.bad role="alert" { (p) }
                }
                form.signin method="post" action="/login" {
                    label {
                        "Name"
                        input type="text" name="name" value=(name) autocomplete="username"
                            required autofocus;
                    }
                    label {
                        "Password"
                        input type="password" name="password" autocomplete="current-password"
                            required;
                    }
                    input type="hidden" name="next" value=(next);
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

fn back_link() -> Markup {
    html! { p { a href="/" { "← the fleet" } } }
}

/// The boards table of `/`.
fn boards_table(boards: &[Board], now: Timestamp) -> Markup {
    html! {
        div.tablewrap {
            table.boards {
                caption { (boards.len()) " boards" }
                thead {
                    tr {
                        th { "Board" } th { "State" } th { "Last seen" } th.opt { "Version" }
                        th.num { "Working" } th.num { "Degraded" } th.num { "Not Working" }
                        th.num.opt { "Pending" } th.num { "Backlog" } th.opt { "Upstream" }
                    }
                }
                tbody {
                    @for b in boards {
                        @let online = b.online(now);
                        tr class=(if online { "" } else { "st-not-working" }) {
                            td {
                                a href=(board_href(&b.id)) { (b.id) }
                                @if let Some(n) = &b.name { @if *n != b.id { br; span.sub { (n) } } }
                                @if let Some(s) = &b.site { br; span.sub.group { (s) } }
                            }
                            td { (online_badge(online)) }
                            td { (opt_time(b.last_seen, now)) }
                            td.opt { (b.version.as_deref().unwrap_or("?")) }
                            td.num { (b.counts.working) }
                            td.num { (b.counts.degraded) }
                            td.num { (b.counts.not_working) }
                            td.num.opt { (b.counts.pending) }
                            td.num {
                                @if let Some(n) = b.backlog { (n) } @else { (dash()) }
                                @if let Some(oldest) = b.oldest_unsynced {
                                    br; span.sub { "oldest " (fmt::ago(now, oldest)) }
                                }
                            }
                            td.opt { (b.upstream_state.as_deref().unwrap_or("?")) }
                        }
                    }
                    @if boards.is_empty() {
                        tr { td.empty colspan="10" { "No board has synced to this database yet." } }
                    }
                }
            }
        }
    }
}

/// The cross-board targets table of `/`: per address, which boards see it
/// in which state ("Not Working on closet-3 · Working on closet-1").
fn targets_table(boards: &[Board], now: Timestamp) -> Markup {
    let fleet = fleet_targets(boards, now);
    html! {
        div.tablewrap {
            table.targets {
                caption { (fleet.len()) " targets, worst first; from each board's latest round" }
                thead { tr { th { "IP" } th { "Name" } th { "Status" } th { "Seen by" } } }
                tbody {
                    @for t in &fleet {
                        @let worst = t.worst();
                        tr class=(status_class(worst)) {
                            td.ip { a href=(target_href(t.target)) { (t.target) } }
                            td.name { @if let Some(n) = t.name { (n) } }
                            td.status { (badge(worst)) }
                            td {
                                @for (i, (status, sightings)) in t.by_status().iter().enumerate() {
                                    @if i > 0 { br; }
                                    (badge(*status)) " on "
                                    @for (j, s) in sightings.iter().enumerate() {
                                        @if j > 0 { ", " }
                                        a href=(board_href(s.board)) { (s.board) }
                                        @if !s.online { " " span.sub { "(offline)" } }
                                    }
                                }
                            }
                        }
                    }
                    @if fleet.is_empty() {
                        tr { td.empty colspan="4" { "No targets reported yet." } }
                    }
                }
            }
        }
    }
}

/// `GET /`: every board, and every target across boards.
pub fn index(ctx: &Context<'_>, boards: Result<&[Board], &FleetError>) -> Markup {
    let (list, error) = match boards {
        Ok(b) => (b, None),
        Err(e) => (&[][..], Some(e)),
    };
    let online = list.iter().filter(|b| b.online(ctx.now)).count();
    let body = html! {
        header.top {
            h1 { "edgeprobe " span.board { "fleet" } }
            p.sub { "MongoDB " (ctx.server) ", database " (ctx.database) }
            nav.counts aria-label="Boards" {
                a.count.st-working href="#boards" { span.n { (online) } " online" }
                a.count.st-not-working href="#boards" { span.n { (list.len() - online) } " offline" }
                a.count.st-all href="/availability" { "Availability" }
            }
        }
        main {
            @if let Some(e) = error { (unavailable(e)) }
            section #boards {
                h2 { "Boards" }
                (boards_table(list, ctx.now))
            }
            section #targets {
                h2 { "Targets" }
                (targets_table(list, ctx.now))
            }
        }
    };
    page(ctx, "edgeprobe fleet", REFRESH_SECS, "/", body)
}

fn board_targets_table(b: &Board, now: Timestamp) -> Markup {
    html! {
        div.tablewrap {
            table.targets {
                caption { (b.targets.len()) " targets" }
                thead {
                    tr {
                        th.num { "S.No" } th { "IP" } th { "Name" } th { "Status" }
                        th.opt { "Default Gateway" } th { "Last Updated" }
                        th.num { "Loss" } th.num { "RTT (avg ms)" }
                    }
                }
                tbody {
                    @for (i, t) in b.targets.iter().enumerate() {
                        tr class=(status_class(t.status)) {
                            td.num { (i + 1) }
                            td.ip { a href=(target_href(&t.target)) { (t.target) } }
                            (name_cell(t.name.as_deref(), t.group.as_deref()))
                            (status_cell(t.status, t.cause.as_deref()))
                            td.opt { (gateway_cell(t)) }
                            td.updated { (opt_time(t.last_updated, now)) }
                            td.num { (opt_percent(t.loss)) }
                            td.num { (opt_ms(t.rtt_avg)) }
                        }
                    }
                    @if b.targets.is_empty() {
                        tr { td.empty colspan="8" { "This board reports no targets." } }
                    }
                }
            }
        }
    }
}

fn event_row(e: &Event) -> Markup {
    html! {
        tr {
            td { @if let Some(ts) = e.ts { (fmt::time(ts)) } @else { (dash()) } }
            td {
                @if let Some(t) = &e.target { a href=(target_href(t)) { (t) } }
                @else { (dash()) }
            }
            td { (e.kind) }
            td { (e.from.as_deref().unwrap_or("—")) " → " (e.to.as_deref().unwrap_or("—")) }
            td { (e.detail) }
        }
    }
}

/// `GET /boards/{id}`: one board's latest state and recent events.
pub fn board_page(ctx: &Context<'_>, b: &Board, events: Result<&[Event], &FleetError>) -> Markup {
    let now = ctx.now;
    let online = b.online(now);
    let counts = [
        (Some(Status::Working), b.counts.working),
        (Some(Status::Degraded), b.counts.degraded),
        (Some(Status::NotWorking), b.counts.not_working),
        (None, b.counts.pending),
    ];
    let self_url = board_href(&b.id);
    let interval = b
        .interval_s
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok());
    let body = html! {
        header.top {
            (back_link())
            h1 {
                (b.id)
                @if let Some(n) = &b.name { @if *n != b.id { " " span.board { (n) } } }
            }
            p.sub {
                "version " (b.version.as_deref().unwrap_or("?"))
                @if let Some(s) = &b.site { " · site " (s) }
                @if let Some(at) = b.started_at { " · up since " (fmt::time(at)) }
            }
        }
        main {
            @if let Err(e) = events { (unavailable(e)) }
            dl.facts {
                dt { "State" }
                dd {
                    (online_badge(online))
                    @if let Some(seen) = b.last_seen {
                        " last seen " (fmt::time(seen)) " (" (fmt::ago(now, seen)) ")"
                    } @else { " never synced" }
                }
                dt { "Interval" }
                dd { @if let Some(i) = interval { (fmt::duration(i)) } @else { (dash()) } }
                dt { "Targets" }
                dd {
                    @for (i, (status, n)) in counts.iter().enumerate() {
                        @if i > 0 { " " }
                        span class={ "badge " (status_class(*status)) } {
                            (n) " " (status.map_or("Pending", Status::label))
                        }
                    }
                }
                dt { "Backlog" }
                dd {
                    @if let Some(n) = b.backlog { (n) " rows not yet synced" } @else { (dash()) }
                    @if let Some(oldest) = b.oldest_unsynced { ", oldest from " (fmt::time(oldest)) }
                }
                dt { "Upstream" } dd { (b.upstream_state.as_deref().unwrap_or("?")) }
                @if let Some(first) = b.first_seen {
                    dt { "First seen" } dd { (fmt::time(first)) }
                }
            }
            section {
                h2 { "Targets" }
                (board_targets_table(b, now))
            }
            section {
                h2 { "Recent events" }
                @match events {
                    Ok([]) => { p.none { "No events." } }
                    Ok(list) => {
                        div.tablewrap {
                            table.events {
                                thead { tr { th { "Time" } th { "Target" } th { "Kind" } th { "Change" } th { "Detail" } } }
                                tbody { @for e in list { (event_row(e)) } }
                            }
                        }
                    }
                    Err(_) => { p.none { "Events unavailable." } }
                }
            }
        }
    };
    let refresh = interval.map_or(REFRESH_SECS, refresh_secs);
    page(
        ctx,
        &format!("edgeprobe {}", b.id),
        refresh,
        &self_url,
        body,
    )
}

/// `GET /boards/{id}` when the board could not be read.
pub fn board_unavailable(ctx: &Context<'_>, id: &str, e: &FleetError) -> Markup {
    let self_url = board_href(id);
    let body = html! {
        header.top { (back_link()) h1 { (id) } }
        main { (unavailable(e)) }
    };
    page(
        ctx,
        &format!("edgeprobe {id}"),
        REFRESH_SECS,
        &self_url,
        body,
    )
}

/// `GET /targets/{addr}`: each board's latest status and availability.
pub fn target_page(
    ctx: &Context<'_>,
    target: &str,
    across: Result<&[TargetAcross<'_>], &FleetError>,
) -> Markup {
    let now = ctx.now;
    let (rows, error) = match across {
        Ok(r) => (r, None),
        Err(e) => (&[][..], Some(e)),
    };
    let name = rows
        .iter()
        .find_map(|r| r.entry.and_then(|e| e.name.as_deref()));
    let self_url = target_href(target);
    let body = html! {
        header.top {
            (back_link())
            h1 {
                (target)
                @if let Some(n) = name { " " span.board { (n) } }
            }
            p.sub { "as each board last saw it; availability from the results of the last 24 h, 7 d and 30 d" }
        }
        main {
            @if let Some(e) = error { (unavailable(e)) }
            div.tablewrap {
                table.targets {
                    thead {
                        tr {
                            th { "Board" } th { "Status" } th.opt { "Default Gateway" }
                            th { "Last Updated" } th.num { "Loss" } th.num { "RTT (avg ms)" }
                            @for w in Window::ALL { th.num { (w.label()) } }
                        }
                    }
                    tbody {
                        @for r in rows {
                            @let status = r.entry.and_then(|e| e.status);
                            tr class=(status_class(status)) {
                                td {
                                    a href=(board_href(r.board)) { (r.board) }
                                    br; (online_badge(r.online))
                                }
                                td.status {
                                    @if let Some(e) = r.entry {
                                        (badge(e.status))
                                        @if let Some(since) = e.since { br; span.sub { "since " (fmt::time(since)) } }
                                        @if let Some(c) = &e.cause { br; span.cause { (c) } }
                                    } @else {
                                        span.none { "no longer monitored" }
                                    }
                                }
                                td.opt { @if let Some(e) = r.entry { (gateway_cell(e)) } @else { (dash()) } }
                                td.updated { (opt_time(r.entry.and_then(|e| e.last_updated), now)) }
                                td.num { (opt_percent(r.entry.and_then(|e| e.loss))) }
                                td.num { (opt_ms(r.entry.and_then(|e| e.rtt_avg))) }
                                @for (_, row) in &r.windows { td.num { (availability_cell(*row)) } }
                            }
                        }
                        @if rows.is_empty() && error.is_none() {
                            tr { td.empty colspan="9" { "No board monitors this target." } }
                        }
                    }
                }
            }
            p.sub { a href={ "/api/v1" (self_url) } { "This page as JSON" } }
        }
    };
    page(
        ctx,
        &format!("{target} across the fleet"),
        REFRESH_SECS,
        &self_url,
        body,
    )
}

/// `GET /availability?window=`: a row per board and target. `rejected` is
/// a `window` value that was not understood (the page then shows the
/// default window and says so).
pub fn availability_page(
    ctx: &Context<'_>,
    window: Window,
    rejected: Option<&str>,
    rows: Result<&[AvailabilityRow], &FleetError>,
) -> Markup {
    let (list, error) = match rows {
        Ok(r) => (r, None),
        Err(e) => (&[][..], Some(e)),
    };
    let self_url = format!("/availability?window={}", window.as_str());
    let body = html! {
        header.top {
            (back_link())
            h1 { "Availability " span.board { "last " (window.label()) } }
            nav.counts aria-label="Window" {
                @for w in Window::ALL {
                    a class={ "count st-all" @if w == window { " current" } }
                        href={ "/availability?window=" (w.as_str()) } { (w.label()) }
                }
            }
            p.sub { "Share of rounds in which the target answered (Working or Degraded), computed by MongoDB over each board's results." }
        }
        main {
            @if let Some(e) = error { (unavailable(e)) }
            @if let Some(bad) = rejected {
                div.alert.warn role="alert" {
                    "Unknown window “" (bad) "”; showing " (window.label())
                    ". Use one of " (Window::allowed()) "."
                }
            }
            div.tablewrap {
                table.availability {
                    caption { (list.len()) " board and target pairs with results" }
                    thead {
                        tr {
                            th { "Board" } th { "IP" } th.num { "Rounds" } th.num { "Working" }
                            th.num { "Availability" }
                        }
                    }
                    tbody {
                        @for r in list {
                            tr {
                                td { a href=(board_href(&r.board)) { (r.board) } }
                                td.ip { a href=(target_href(&r.target)) { (r.target) } }
                                td.num { (r.rounds) }
                                td.num { (r.working) }
                                td.num { (fmt::percent(r.availability)) }
                            }
                        }
                        @if list.is_empty() && error.is_none() {
                            tr { td.empty colspan="5" { "No results in this window." } }
                        }
                    }
                }
            }
            p.sub { a href={ "/api/v1/availability?window=" (window.as_str()) } { "This table as JSON" } }
        }
    };
    page(
        ctx,
        &format!("edgeprobe availability {}", window.label()),
        REFRESH_SECS * 2,
        &self_url,
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::central::api::target_across;
    use crate::central::model::Counts;
    use std::time::Duration;

    const NOW: Timestamp = Timestamp(1_795_651_111_000);
    const HOSTILE: &str = "<script>alert(1)</script>\"'&";

    fn ctx() -> Context<'static> {
        Context {
            server: "mongodb://db.example:27017",
            database: "edgeprobe",
            now: NOW,
            user: None,
        }
    }

    fn boards() -> Vec<Board> {
        let target = |t: &str, s| BoardTarget {
            target: t.into(),
            name: Some(HOSTILE.into()),
            group: Some(HOSTILE.into()),
            status: s,
            cause: Some(HOSTILE.into()),
            gateway: Some(HOSTILE.into()),
            last_updated: Some(NOW),
            ..BoardTarget::default()
        };
        vec![
            Board {
                id: "closet-1".into(),
                name: Some(HOSTILE.into()),
                site: Some(HOSTILE.into()),
                version: Some(HOSTILE.into()),
                last_seen: Some(NOW.sub(Duration::from_secs(2))),
                interval_s: Some(1.0),
                counts: Counts {
                    working: 1,
                    ..Counts::default()
                },
                upstream_state: Some(HOSTILE.into()),
                targets: vec![
                    target("198.19.0.1", Some(Status::Working)),
                    target("2001:db8::1", Some(Status::Working)),
                ],
                ..Board::default()
            },
            Board {
                id: format!("closet-3{HOSTILE}"),
                last_seen: Some(NOW.sub(Duration::from_secs(3600))),
                interval_s: Some(60.0),
                targets: vec![target("198.19.0.1", Some(Status::NotWorking))],
                ..Board::default()
            },
        ]
    }

    fn assert_inert(html: &str) {
        assert!(!html.contains("<script>"), "unescaped markup:\n{html}");
        assert!(html.contains("&lt;script&gt;"), "hostile text missing");
    }

    #[test]
    fn index_lists_boards_and_targets_escaped() {
        let bs = boards();
        let html = index(&ctx(), Ok(&bs)).into_string();
        assert_inert(&html);
        assert!(html.contains("href=\"/boards/closet-1\""));
        // The id is percent-encoded in the link, escaped in the text.
        assert!(html.contains("href=\"/boards/closet-3%3Cscript%3E"));
        assert!(html.contains("href=\"/targets/2001:db8::1\""));
        assert!(html.contains("Online") && html.contains("Offline"));
        assert!(html.contains("(offline)"));
        assert!(html.contains("Not Working</span> on"));
        assert!(html.contains("http-equiv=\"refresh\""));
        assert!(html.contains("/static/style.css"));
        assert!(!html.contains("No data"));
    }

    #[test]
    fn unavailable_database_is_a_banner() {
        let e = FleetError::Unavailable {
            server: "mongodb://db.example:27017".into(),
            operation: "a read of boards",
            detail: "connection refused".into(),
        };
        let html = index(&ctx(), Err(&e)).into_string();
        assert!(html.contains("role=\"alert\""));
        assert!(html.contains("MongoDB at mongodb://db.example:27017 did not answer"));
        assert!(html.contains("No board has synced"));
    }

    #[test]
    fn board_page_has_the_table_and_events_escaped() {
        let bs = boards();
        let events = [Event {
            board: "closet-1".into(),
            target: Some("198.19.0.1".into()),
            ts: Some(NOW),
            kind: "status".into(),
            from: Some("working".into()),
            to: Some(HOSTILE.into()),
            detail: HOSTILE.into(),
        }];
        let html = board_page(&ctx(), &bs[0], Ok(&events)).into_string();
        assert_inert(&html);
        for col in [
            "S.No",
            "IP",
            "Name",
            "Status",
            "Default Gateway",
            "Last Updated",
            "Loss",
            "RTT",
        ] {
            assert!(html.contains(col), "column {col}");
        }
        assert!(html.contains("working → &lt;script&gt;"));
        // Interval 1 s: refresh at the 5 s floor.
        assert!(html.contains("content=\"5; url=/boards/closet-1\""));
    }

    #[test]
    fn target_page_and_availability_escape() {
        let bs = boards();
        let rows = vec![AvailabilityRow {
            board: bs[1].id.clone(),
            target: "198.19.0.1".into(),
            rounds: 10,
            working: 7,
            availability: 0.7,
        }];
        let windows = vec![(Window::Day, rows.clone())];
        let across = target_across("198.19.0.1", &bs, &windows, NOW);
        let html = target_page(&ctx(), "198.19.0.1", Ok(&across)).into_string();
        assert_inert(&html);
        assert!(html.contains("70 %"));
        assert!(html.contains("7/10 rounds"));

        let html = availability_page(&ctx(), Window::Day, Some(HOSTILE), Ok(&rows)).into_string();
        assert_inert(&html);
        assert!(html.contains("Unknown window"));
        assert!(html.contains("70 %"));
        let hostile_target = target_page(&ctx(), HOSTILE, Ok(&[])).into_string();
        assert_inert(&hostile_target);
    }

    #[test]
    fn login_page_keeps_what_it_echoes_inert() {
        let html = login_page(Some("wrong name or password"), HOSTILE, HOSTILE).into_string();
        assert_inert(&html);
        assert!(html.contains("wrong name or password"));
        assert!(html.contains(r#"action="/login""#) && html.contains(r#"type="password""#));
        assert!(!login_page(None, "", "/")
            .into_string()
            .contains("role=\"alert\""));
    }

    #[test]
    fn a_signed_in_user_gets_a_sign_out_button() {
        let signed_in = Context {
            user: Some("alice"),
            ..ctx()
        };
        let html = index(&signed_in, Ok(&[])).into_string();
        assert!(html.contains("signed in as alice") && html.contains(r#"action="/logout""#));
        assert!(!index(&ctx(), Ok(&[])).into_string().contains("/logout"));
    }
}
