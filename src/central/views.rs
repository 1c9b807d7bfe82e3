//! The fleet dashboard's pages, rendered with maud in the frame, stylesheet
//! and view parts both dashboards share ([`crate::http::layout`]). Pure:
//! what was read from MongoDB (or why it could not be) and `now` in,
//! markup out. maud escapes every text node and attribute, which keeps
//! board ids, names and causes inert. Every link is under the base path
//! central is published at ([`Context::href`]).

use maud::{html, Markup};

use super::api::TargetAcross;
use super::charts::{self, DayBar};
use super::model::{
    AvailabilityRow, Board, BoardTarget, ClockAhead, Event, FleetTarget, Search, Window,
};
use super::source::FleetError;
use crate::clock::Timestamp;
use crate::http::fmt;
use crate::http::layout::{
    badge, layout_under, name_cell, opt_time, refresh_secs, status_cell, status_class,
};
use crate::http::paging::PageInfo;
use crate::http::query::{encode_path_segment, encode_query_value};
use crate::probe::Status;

/// Seconds between refreshes of the fleet pages: a wall screen stays
/// current without hammering the database.
const REFRESH_SECS: u64 = 30;

/// Days in the availability charts.
pub const CHART_DAYS: usize = 30;

/// What every page says about where its data comes from, and where the
/// site is published.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The server, without credentials.
    pub server: &'a str,
    pub database: &'a str,
    pub now: Timestamp,
    /// The path prefix central is served under (`--base-path`), or empty.
    pub base: &'a str,
    /// Who is signed in with a session cookie: the footer names them and
    /// has a sign-out button. `None` with sign-in off, or for a token or
    /// a proxy's user (their sign-out is elsewhere).
    pub user: Option<&'a str>,
}

impl Context<'_> {
    /// `path` (which starts with `/`) under the base path.
    pub fn href(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `/boards/{id}`.
    pub fn board_href(&self, id: &str) -> String {
        self.href(&format!("/boards/{}", encode_path_segment(id)))
    }

    /// `/targets/{addr}`; colons stay readable for IPv6.
    pub fn target_href(&self, target: &str) -> String {
        self.href(&format!("/targets/{}", encode_path_segment(target)))
    }
}

/// A list page's rows and where they sit in the list.
#[derive(Debug)]
pub struct Paged<'a, T> {
    pub rows: &'a [T],
    pub info: PageInfo,
}

// By hand: a page is a borrowed slice, copyable whatever its rows are.
impl<T> Clone for Paged<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Paged<'_, T> {}

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

/// Boards whose rollups are stamped ahead of central's clock: stored and
/// counted, and said here, because the hours they fill are not real.
fn clock_warnings(ctx: &Context<'_>, ahead: &[ClockAhead]) -> Markup {
    html! {
        @for c in ahead {
            div.alert.warn role="alert" {
                "The clock of " a href=(ctx.board_href(&c.board)) { (c.board) }
                " runs ahead: it sent rollups for the hour of " (fmt::time(c.latest_hour))
                ", " (fmt::duration(std::time::Duration::from_secs(c.latest_hour.since(ctx.now).as_secs())))
                " from now. They are stored and counted; check the board's time source (NTP)."
            }
        }
    }
}

/// Previous / next links of a paginated list, keeping the rest of the
/// query (`keep`, already encoded, e.g. `window=7d&q=core&`).
fn pager(ctx: &Context<'_>, path: &str, keep: &str, key: &str, info: PageInfo) -> Markup {
    let link = |n: usize| {
        ctx.href(&format!(
            "{path}?{keep}{key}={n}&page_size={}",
            info.page_size
        ))
    };
    html! {
        @if info.pages > 1 {
            nav.pager aria-label="Pages" {
                @if info.page > 1 { a href=(link(info.page - 1)) rel="prev" { "← previous" } }
                span { "page " (info.page) " of " (info.pages) " (" (info.total) " rows)" }
                @if info.page < info.pages { a href=(link(info.page + 1)) rel="next" { "next →" } }
            }
        }
    }
}

/// The fleet search box (`?q=`): addresses, names, groups, board ids.
fn search_form(ctx: &Context<'_>, search: &Search) -> Markup {
    html! {
        form.search method="get" action=(ctx.href("/")) role="search" {
            label for="q" { "Search " }
            input #q type="search" name="q" value=(search.term())
                placeholder="IP, name, group or board";
            " " button type="submit" { "Search" }
            @if !search.is_blank() { " " a href=(ctx.href("/")) { "clear" } }
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
/// itself at `self_url` (under the base path) every `refresh` seconds.
fn page(ctx: &Context<'_>, title: &str, refresh: u64, self_url: &str, body: Markup) -> Markup {
    let url = ctx.href(self_url);
    layout_under(
        ctx.base,
        title,
        Some((refresh, &url)),
        html! { (body) (footer(ctx)) },
    )
}

fn footer(ctx: &Context<'_>) -> Markup {
    html! {
        footer {
            "edgeprobe central " (env!("CARGO_PKG_VERSION"))
            " · MongoDB " (ctx.server) ", database " (ctx.database) " · "
            a href=(ctx.href("/api/v1/boards")) { "JSON" } " · "
            a href=(ctx.href("/availability")) { "availability" } " · "
            a href=(ctx.href("/healthz")) { "health" }
            @if let Some(user) = ctx.user {
                " · signed in as " (user) " "
                form.signout method="post" action=(ctx.href("/logout")) {
                    button type="submit" { "Sign out" }
                }
            }
        }
    }
}

/// `/login`: the sign-in form, with `problem` above it (a wrong password,
/// too many at once), the name typed last time, and where to go next.
pub fn login_page(base: &str, problem: Option<&str>, name: &str, next: &str) -> Markup {
    layout_under(
        base,
        "Sign in · edgeprobe central",
        None,
        html! {
            header.top { h1 { "edgeprobe central" } }
            main {
                @if let Some(p) = problem {
                    div.alert.bad role="alert" { (p) }
                }
                form.signin method="post" action={ (base) "/login" } {
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

fn back_link(ctx: &Context<'_>) -> Markup {
    html! { p { a href=(ctx.href("/")) { "← the fleet" } } }
}

/// The boards table of `/`, worst first.
fn boards_table(ctx: &Context<'_>, boards: &[&Board], total: usize) -> Markup {
    let now = ctx.now;
    html! {
        div.tablewrap {
            table.boards {
                caption { (total) " boards, worst first" }
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
                                a href=(ctx.board_href(&b.id)) { (b.id) }
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
                        tr { td.empty colspan="10" { "No board here." } }
                    }
                }
            }
        }
    }
}

/// The cross-board targets table of `/`: per address, which boards see it
/// in which state ("Not Working on closet-3 · Working on closet-1").
fn targets_table(ctx: &Context<'_>, fleet: &[FleetTarget<'_>], total: usize) -> Markup {
    html! {
        div.tablewrap {
            table.targets {
                caption { (total) " targets, worst first; from each board's latest round" }
                thead { tr { th { "IP" } th { "Name" } th { "Status" } th { "Seen by" } } }
                tbody {
                    @for t in fleet {
                        @let worst = t.worst();
                        tr class=(status_class(worst)) {
                            td.ip { a href=(ctx.target_href(t.target)) { (t.target) } }
                            td.name { @if let Some(n) = t.name { (n) } }
                            td.status { (badge(worst)) }
                            td {
                                @for (i, (status, sightings)) in t.by_status().iter().enumerate() {
                                    @if i > 0 { br; }
                                    (badge(*status)) " on "
                                    @for (j, s) in sightings.iter().enumerate() {
                                        @if j > 0 { ", " }
                                        a href=(ctx.board_href(s.board)) { (s.board) }
                                        @if !s.online { " " span.sub { "(offline)" } }
                                    }
                                }
                            }
                        }
                    }
                    @if fleet.is_empty() {
                        tr { td.empty colspan="4" { "No targets here." } }
                    }
                }
            }
        }
    }
}

/// What `GET /` shows: a page of boards and a page of targets, after the
/// search, with the counts over the whole fleet.
#[derive(Debug, Clone, Copy)]
pub struct FleetPage<'a> {
    pub boards: Paged<'a, &'a Board>,
    pub targets: Paged<'a, FleetTarget<'a>>,
    /// Boards online and offline, over the whole fleet.
    pub online: usize,
    pub offline: usize,
    pub search: &'a Search,
    pub clock_ahead: &'a [ClockAhead],
}

/// `GET /`: the boards and the targets across them, worst first.
pub fn index(ctx: &Context<'_>, fleet: Result<FleetPage<'_>, &FleetError>) -> Markup {
    let body = html! {
        header.top {
            h1 { "edgeprobe " span.board { "fleet" } }
            p.sub { "MongoDB " (ctx.server) ", database " (ctx.database) }
            @if let Ok(f) = &fleet {
                nav.counts aria-label="Boards" {
                    a.count.st-working href="#boards" { span.n { (f.online) } " online" }
                    a.count.st-not-working href="#boards" { span.n { (f.offline) } " offline" }
                    a.count.st-all href=(ctx.href("/availability")) { "Availability" }
                }
            }
        }
        main {
            @match &fleet {
                Err(e) => { (unavailable(e)) p.none { "No board data could be read." } }
                Ok(f) => {
                    (clock_warnings(ctx, f.clock_ahead))
                    (search_form(ctx, f.search))
                    @let keep = if f.search.is_blank() { String::new() } else { format!("q={}&", encode_query_value(f.search.term())) };
                    section #boards {
                        h2 { "Boards" }
                        (boards_table(ctx, f.boards.rows, f.boards.info.total))
                        (pager(ctx, "/", &keep, "boards_page", f.boards.info))
                    }
                    section #targets {
                        h2 { "Targets" }
                        (targets_table(ctx, f.targets.rows, f.targets.info.total))
                        (pager(ctx, "/", &keep, "page", f.targets.info))
                    }
                }
            }
        }
    };
    page(ctx, "edgeprobe fleet", REFRESH_SECS, "/", body)
}

fn board_targets_table(ctx: &Context<'_>, targets: Paged<'_, BoardTarget>) -> Markup {
    let now = ctx.now;
    let first = (targets.info.page - 1) * targets.info.page_size;
    html! {
        div.tablewrap {
            table.targets {
                caption { (targets.info.total) " targets" }
                thead {
                    tr {
                        th.num { "S.No" } th { "IP" } th { "Name" } th { "Status" }
                        th.opt { "Default Gateway" } th { "Last Updated" }
                        th.num { "Loss" } th.num { "RTT (avg ms)" }
                    }
                }
                tbody {
                    @for (i, t) in targets.rows.iter().enumerate() {
                        tr class=(status_class(t.status)) {
                            td.num { (first + i + 1) }
                            td.ip { a href=(ctx.target_href(&t.target)) { (t.target) } }
                            (name_cell(t.name.as_deref(), t.group.as_deref()))
                            (status_cell(t.status, t.cause.as_deref()))
                            td.opt { (gateway_cell(t)) }
                            td.updated { (opt_time(t.last_updated, now)) }
                            td.num { (opt_percent(t.loss)) }
                            td.num { (opt_ms(t.rtt_avg)) }
                        }
                    }
                    @if targets.rows.is_empty() {
                        tr { td.empty colspan="8" { "This board reports no targets." } }
                    }
                }
            }
        }
    }
}

fn event_row(ctx: &Context<'_>, e: &Event) -> Markup {
    html! {
        tr {
            td { @if let Some(ts) = e.ts { (fmt::time(ts)) } @else { (dash()) } }
            td {
                @if let Some(t) = &e.target { a href=(ctx.target_href(t)) { (t) } }
                @else { (dash()) }
            }
            td { (e.kind) }
            td { (e.from.as_deref().unwrap_or("—")) " → " (e.to.as_deref().unwrap_or("—")) }
            td { (e.detail) }
        }
    }
}

/// A chart of the last [`CHART_DAYS`] days, or why there is none.
fn chart(bars: Result<&[DayBar], &FleetError>, label: &str) -> Markup {
    html! {
        @match bars {
            Ok(b) => { (charts::svg(b, label)) }
            Err(e) => { p.none { "No chart: " (e) } }
        }
    }
}

/// What `GET /boards/{id}` shows besides the board document.
#[derive(Debug, Clone, Copy)]
pub struct BoardExtras<'a> {
    pub targets: Paged<'a, BoardTarget>,
    pub events: Result<&'a [Event], &'a FleetError>,
    /// All its targets together, per day.
    pub chart: Result<&'a [DayBar], &'a FleetError>,
    pub clock_ahead: Option<&'a ClockAhead>,
}

/// `GET /boards/{id}`: one board's latest state, availability chart and
/// recent events.
pub fn board_page(ctx: &Context<'_>, b: &Board, extras: BoardExtras<'_>) -> Markup {
    let now = ctx.now;
    let online = b.online(now);
    let counts = [
        (Some(Status::Working), b.counts.working),
        (Some(Status::Degraded), b.counts.degraded),
        (Some(Status::NotWorking), b.counts.not_working),
        (None, b.counts.pending),
    ];
    let self_path = format!("/boards/{}", encode_path_segment(&b.id));
    let interval = b
        .interval_s
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok());
    let body = html! {
        header.top {
            (back_link(ctx))
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
            @if let Err(e) = extras.events { (unavailable(e)) }
            @if let Some(c) = extras.clock_ahead { (clock_warnings(ctx, std::slice::from_ref(c))) }
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
                h2 { "Availability, last " (CHART_DAYS) " days" }
                p.sub { "All its targets together, per UTC day, from the hourly rollups." }
                (chart(extras.chart, &format!("{}: availability per day, last {CHART_DAYS} days", b.id)))
            }
            section {
                h2 { "Targets" }
                (board_targets_table(ctx, extras.targets))
                (pager(ctx, &self_path, "", "page", extras.targets.info))
            }
            section {
                h2 { "Recent events" }
                @match extras.events {
                    Ok([]) => { p.none { "No events." } }
                    Ok(list) => {
                        div.tablewrap {
                            table.events {
                                thead { tr { th { "Time" } th { "Target" } th { "Kind" } th { "Change" } th { "Detail" } } }
                                tbody { @for e in list { (event_row(ctx, e)) } }
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
        &self_path,
        body,
    )
}

/// `GET /boards/{id}` when the board could not be read.
pub fn board_unavailable(ctx: &Context<'_>, id: &str, e: &FleetError) -> Markup {
    let self_path = format!("/boards/{}", encode_path_segment(id));
    let body = html! {
        header.top { (back_link(ctx)) h1 { (id) } }
        main { (unavailable(e)) }
    };
    page(
        ctx,
        &format!("edgeprobe {id}"),
        REFRESH_SECS,
        &self_path,
        body,
    )
}

/// `GET /targets/{addr}`: each board's latest status, availability and
/// daily chart (`charts`, by board id).
pub fn target_page(
    ctx: &Context<'_>,
    target: &str,
    across: Result<&[TargetAcross<'_>], &FleetError>,
    charts: &[(&str, Vec<DayBar>)],
) -> Markup {
    let now = ctx.now;
    let (rows, error) = match across {
        Ok(r) => (r, None),
        Err(e) => (&[][..], Some(e)),
    };
    let name = rows
        .iter()
        .find_map(|r| r.entry.and_then(|e| e.name.as_deref()));
    let self_path = format!("/targets/{}", encode_path_segment(target));
    let body = html! {
        header.top {
            (back_link(ctx))
            h1 {
                (target)
                @if let Some(n) = name { " " span.board { (n) } }
            }
            p.sub { "as each board last saw it; availability from the hourly rollups of the last 24 h, 7 d and 30 d" }
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
                            th { (CHART_DAYS) " days" }
                        }
                    }
                    tbody {
                        @for r in rows {
                            @let status = r.entry.and_then(|e| e.status);
                            tr class=(status_class(status)) {
                                td {
                                    a href=(ctx.board_href(r.board)) { (r.board) }
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
                                td {
                                    @if let Some((_, bars)) = charts.iter().find(|(b, _)| *b == r.board) {
                                        (charts::svg(bars, &format!("{target} from {}: availability per day", r.board)))
                                    }
                                }
                            }
                        }
                        @if rows.is_empty() && error.is_none() {
                            tr { td.empty colspan="10" { "No board monitors this target." } }
                        }
                    }
                }
            }
            p.sub { a href=(ctx.href(&format!("/api/v1{self_path}"))) { "This page as JSON" } }
        }
    };
    page(
        ctx,
        &format!("{target} across the fleet"),
        REFRESH_SECS,
        &self_path,
        body,
    )
}

/// One line of the availability list: a pair and its row, if the window
/// holds rounds for it.
pub type PairRow<'a> = (&'a str, &'a str, Option<&'a AvailabilityRow>);

/// `GET /availability?window=&page=`: a page of (board, target) pairs.
pub fn availability_page(
    ctx: &Context<'_>,
    window: Window,
    rows: Result<Paged<'_, PairRow<'_>>, &FleetError>,
) -> Markup {
    let self_url = format!("/availability?window={}", window.as_str());
    let body = html! {
        header.top {
            (back_link(ctx))
            h1 { "Availability " span.board { "last " (window.label()) } }
            nav.counts aria-label="Window" {
                @for w in Window::ALL {
                    a class={ "count st-all" @if w == window { " current" } }
                        href=(ctx.href(&format!("/availability?window={}", w.as_str()))) { (w.label()) }
                }
            }
            p.sub { "Share of rounds in which the target answered (Working or Degraded), computed by MongoDB from each board's hourly rollups: "
                (window.hours()) " whole UTC hours, the one under way included." }
        }
        main {
            @match rows {
                Err(e) => { (unavailable(e)) }
                Ok(page) => {
                    div.tablewrap {
                        table.availability {
                            caption { (page.info.total) " board and target pairs" }
                            thead {
                                tr {
                                    th { "Board" } th { "IP" } th.num { "Rounds" } th.num { "Working" }
                                    th.num { "Availability" } th.num { "RTT (avg ms)" }
                                }
                            }
                            tbody {
                                @for (board, target, row) in page.rows {
                                    tr {
                                        td { a href=(ctx.board_href(board)) { (board) } }
                                        td.ip { a href=(ctx.target_href(target)) { (target) } }
                                        @if let Some(r) = row {
                                            td.num { (r.rounds) }
                                            td.num { (r.working) }
                                            td.num { (fmt::percent(r.availability)) }
                                            td.num { (opt_ms(r.rtt_avg_ms)) }
                                        } @else {
                                            td.num colspan="4" { span.none { "no rounds in this window" } }
                                        }
                                    }
                                }
                                @if page.rows.is_empty() {
                                    tr { td.empty colspan="6" { "No board reports targets yet." } }
                                }
                            }
                        }
                    }
                    (pager(ctx, "/availability", &format!("window={}&", window.as_str()), "page", page.info))
                }
            }
            p.sub { a href=(ctx.href(&format!("/api/v1/availability?window={}", window.as_str()))) { "This table as JSON" } }
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
            base: "",
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

    fn info(total: usize) -> PageInfo {
        PageInfo {
            page: 1,
            page_size: 100,
            pages: 1,
            total,
        }
    }

    fn index_of(ctx: &Context<'_>, bs: &[Board], search: &Search) -> String {
        let boards: Vec<&Board> = bs.iter().collect();
        let targets = crate::central::model::fleet_targets(bs, NOW);
        let page = FleetPage {
            boards: Paged {
                rows: &boards,
                info: info(boards.len()),
            },
            targets: Paged {
                rows: &targets,
                info: info(targets.len()),
            },
            online: 1,
            offline: 1,
            search,
            clock_ahead: &[],
        };
        index(ctx, Ok(page)).into_string()
    }

    #[test]
    fn index_lists_boards_and_targets_escaped() {
        let bs = boards();
        let html = index_of(&ctx(), &bs, &Search::new(None));
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
        assert!(html.contains("type=\"search\""));
        assert!(!html.contains("No data"));
    }

    #[test]
    fn every_link_is_under_the_base_path() {
        let bs = boards();
        let ctx = Context {
            base: "/edgeprobe",
            ..ctx()
        };
        let html = index_of(&ctx, &bs, &Search::new(Some("core")));
        assert!(
            html.contains("href=\"/edgeprobe/static/style.css\""),
            "{html}"
        );
        assert!(html.contains("href=\"/edgeprobe/boards/closet-1\""));
        assert!(html.contains("content=\"30; url=/edgeprobe/\""));
        assert!(html.contains("action=\"/edgeprobe/\""));
        for link in html.split("href=\"").skip(1) {
            assert!(
                link.starts_with("/edgeprobe/") || link.starts_with('#'),
                "{link}"
            );
        }
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
        assert!(html.contains("No board data could be read"));
    }

    #[test]
    fn board_page_has_the_table_chart_and_events_escaped() {
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
        let bars = charts::daily(&[], CHART_DAYS, NOW);
        let ahead = ClockAhead {
            board: "closet-1".into(),
            latest_hour: NOW.add(Duration::from_secs(5 * 3600)),
        };
        let extras = BoardExtras {
            targets: Paged {
                rows: &bs[0].targets,
                info: info(bs[0].targets.len()),
            },
            events: Ok(&events),
            chart: Ok(&bars),
            clock_ahead: Some(&ahead),
        };
        let html = board_page(&ctx(), &bs[0], extras).into_string();
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
        assert_eq!(html.matches("<rect").count(), CHART_DAYS);
        assert!(html.contains("runs ahead"), "{html}");
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
            degraded: 0,
            availability: 0.7,
            rtt_avg_ms: Some(1.5),
            latest_hour: None,
        }];
        let windows = vec![(Window::Day, rows.clone())];
        let across = target_across("198.19.0.1", &bs, &windows, NOW);
        let html = target_page(&ctx(), "198.19.0.1", Ok(&across), &[]).into_string();
        assert_inert(&html);
        assert!(html.contains("70 %"));
        assert!(html.contains("7/10 rounds"));

        let lines: Vec<PairRow<'_>> = vec![
            (&rows[0].board, "198.19.0.1", Some(&rows[0])),
            (&rows[0].board, "198.19.0.2", None),
        ];
        let page = Paged {
            rows: &lines,
            info: info(2),
        };
        let html = availability_page(&ctx(), Window::Day, Ok(page)).into_string();
        assert_inert(&html);
        assert!(html.contains("70 %"));
        assert!(html.contains("no rounds in this window"));
        let hostile_target = target_page(&ctx(), HOSTILE, Ok(&[]), &[]).into_string();
        assert_inert(&hostile_target);
    }

    #[test]
    fn login_page_keeps_what_it_echoes_inert() {
        let html = login_page("", Some("wrong name or password"), HOSTILE, HOSTILE).into_string();
        assert_inert(&html);
        assert!(html.contains("wrong name or password"));
        assert!(html.contains(r#"action="/login""#) && html.contains(r#"type="password""#));
        assert!(login_page("/edgeprobe", None, "", "/")
            .into_string()
            .contains(r#"action="/edgeprobe/login""#));
        assert!(!login_page("", None, "", "/")
            .into_string()
            .contains("role=\"alert\""));
    }

    #[test]
    fn a_signed_in_user_gets_a_sign_out_button() {
        let signed_in = Context {
            user: Some("alice"),
            ..ctx()
        };
        let html = index_of(&signed_in, &[], &Search::new(None));
        assert!(html.contains("signed in as alice") && html.contains(r#"action="/logout""#));
        assert!(!index_of(&ctx(), &[], &Search::new(None)).contains("/logout"));
    }
}
