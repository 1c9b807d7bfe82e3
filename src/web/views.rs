//! The board dashboard's pages (`/` and `/targets/{key}`), rendered with
//! maud from a snapshot, the history and `now`, in the frame and with the
//! parts of [`crate::http::layout`]. Pure functions: the server decides
//! what to fetch, these decide what it looks like.
//!
//! No JavaScript and no inline styles (the CSP forbids both): filters and
//! sorting are links and GET forms, the refresh is a `<meta>`, colours come
//! from classes in `/static/style.css`. maud escapes every text node and
//! attribute value, which is what keeps sheet values (names, groups, notes)
//! inert.

use std::collections::BTreeSet;

use maud::{html, Markup};

use super::api::TargetHistory;
use super::query::{Dir, IndexQuery, SortKey, StatusFilter, PAGE_SORT, SEARCH_MAX_CHARS};
use super::{svg, table};
use crate::clock::Timestamp;
use crate::http::fmt;
use crate::http::layout::{
    badge, layout, name_cell, opt_time, refresh_secs, status_cell, status_class, status_label,
};
use crate::http::paging::{self, PageInfo};
use crate::http::query::encode_path_segment;
use crate::leds::{LedPattern, LedReport};
use crate::monitor::{Snapshot, TargetView, UpstreamView};
use crate::probe::{Gateway, Hop, Status};
use crate::store::EventRecord;

fn pattern_name(p: LedPattern) -> &'static str {
    match p {
        LedPattern::Off => "off",
        LedPattern::On => "on",
        LedPattern::Heartbeat => "heartbeat",
        LedPattern::SlowBlink => "slow blink",
        LedPattern::FastBlink => "fast blink",
        LedPattern::Chase => "chase",
        LedPattern::Locate => "locate",
    }
}

fn pattern_class(p: LedPattern) -> &'static str {
    match p {
        LedPattern::Off => "pat-off",
        LedPattern::On => "pat-on",
        LedPattern::Heartbeat => "pat-heartbeat",
        LedPattern::SlowBlink => "pat-slow-blink",
        LedPattern::FastBlink => "pat-fast-blink",
        LedPattern::Chase => "pat-chase",
        LedPattern::Locate => "pat-locate",
    }
}

fn target_href(t: &TargetView) -> String {
    format!("/targets/{}", encode_path_segment(&t.key))
}

fn hop_addr(h: &Hop) -> String {
    h.addr.map_or_else(|| "*".to_string(), |a| a.to_string())
}

/// How a hop of the latest path is known, for the target page.
fn hop_seen(h: &Hop, now: Timestamp) -> String {
    match (h.addr, h.last_seen) {
        (None, _) => "no answer".to_string(),
        (Some(_), Some(at)) => format!(
            "last seen {} ({}); no answer to the latest trace",
            fmt::time(at),
            fmt::ago(now, at)
        ),
        (Some(_), None) if h.inferred => {
            "inferred: not asked, as on the paths that share this hop".to_string()
        }
        (Some(_), None) => "answered".to_string(),
    }
}

fn gateway_text(g: Option<Gateway>) -> String {
    g.map_or_else(|| "no route".to_string(), |g| g.to_string())
}

/// The header shared by the dashboard: counts, LEDs, upstream, alerts,
/// last round.
fn board_header(snap: &Snapshot, leds: &LedReport, q: &IndexQuery, now: Timestamp) -> Markup {
    let counts = snap.counts();
    let total = snap.targets.len();
    let by_status = [
        (Some(Status::Working), counts.working),
        (Some(Status::Degraded), counts.degraded),
        (Some(Status::NotWorking), counts.not_working),
        (None, counts.pending),
    ];
    let count_links = by_status
        .map(|(status, n)| {
            (
                Some(StatusFilter::exactly(status)),
                status_label(status),
                n,
                status_class(status),
            )
        })
        .into_iter()
        .chain([(None, "All", total, "st-all")]);
    let patterns = [
        ("green", leds.patterns.green),
        ("red", leds.patterns.red),
        ("amber", leds.patterns.amber),
    ];
    html! {
        header.top {
            h1 { "edgeprobe " span.board { (snap.board.id) } }
            p.sub { "version " (snap.board.version) " · up since " (fmt::time(snap.board.started_at)) }
            nav.counts aria-label="Targets by status" {
                @for (filter, label, n, class) in count_links {
                    a class={ "count " (class) @if q.status == filter { " current" } }
                        href=(q.with_status(filter).href()) {
                        span.n { (n) } " " (label)
                    }
                }
            }
            div.facts {
                p.leds {
                    "LEDs (" (leds.driver.backend) "): "
                    @for (colour, pattern) in patterns {
                        span class={ "led led-" (colour) " " (pattern_class(pattern)) }
                            title={ (colour) ": " (pattern_name(pattern)) } {}
                        span.ledname { (colour) " " (pattern_name(pattern)) }
                    }
                }

                p.upstream {
                    @match &snap.upstream {
                        UpstreamView::Off => { "upstream: off — results kept on this board" }
                        UpstreamView::Connecting { server } => {
                            "upstream " (server) ": connecting"
                        }
                        UpstreamView::Synced { server, last_sync } => {
                            "upstream " (server) ": " span.ok { "in sync" }
                            " (" (fmt::ago(now, *last_sync)) ")"
                        }
                        UpstreamView::Draining { server, last_sync } => {
                            "upstream " (server) ": " span.warn { "sending the backlog" }
                            " (last batch " (fmt::ago(now, *last_sync)) ")"
                        }
                        UpstreamView::Unreachable { server, since, error, retry_at } => {
                            "upstream " (server) ": " span.bad { "unreachable" }
                            " since " (fmt::time(*since)) " (" (error) "); next try in "
                            (fmt::duration(retry_at.since(now)))
                        }
                    }
                    " · backlog " (snap.store.backlog) " rows"
                    @if let Some(oldest) = snap.store.oldest_unsynced {
                        ", oldest from " (fmt::ago(now, oldest))
                    }
                    @if snap.store.refused > 0 {
                        " · " span.bad { (snap.store.refused) " rows refused by the server" }
                        " and set aside"
                        @if let Some(last) = &snap.store.last_refusal {
                            " (last " (fmt::ago(now, last.at)) ": " (last.reason) ")"
                        }
                    }
                }
                p.round {
                    @if let Some(r) = &snap.last_round {
                        "last round #" (r.round.0) ": " (fmt::time(r.finished))
                        " (" (fmt::ago(now, r.finished)) "), took " (fmt::duration(r.duration))
                        " · every " (fmt::duration(snap.board.interval))
                    } @else {
                        "first round in progress · every " (fmt::duration(snap.board.interval))
                    }
                }
                (super::alerts::header_line(&snap.alerts, now))
                @for gw in &snap.board_gateways {
                    p.gateway {
                        "board gateway " (gw.addr) ": "
                        @match gw.up {
                            Some(true) => span.ok { "answering" },
                            Some(false) => span.bad { "not answering" },
                            None => span.sub { "not checked yet" },
                        }
                    }
                }
            }
        }
    }
}

/// Warnings, a rejected reload, skipped rows and dropped history: things
/// the operator has to see, above the table.
fn alerts(snap: &Snapshot, leds: &LedReport) -> Markup {
    let d = &snap.store.dropped;
    let dropped_any = d.results + d.traces + d.events + d.unsynced > 0;
    html! {
        @if let Some(r) = &snap.sheet.rejected {
            div.alert.bad role="alert" {
                strong { "Rejected targets sheet " (r.source) }
                " at " (fmt::time(r.at)) ": the previous list keeps running until a good sheet replaces it."
                @if let Some(again) = r.retry_at {
                    " It could not be read just now; it is read again by itself at "
                    (fmt::time(again)) "."
                }
                (problem_list(&r.problems))
            }
        }
        @if !snap.warnings.is_empty() || !leds.driver.faults.is_empty() {
            div.alert.warn role="alert" {
                ul {
                    @for w in &snap.warnings { li { (w) } }
                    @for f in &leds.driver.faults {
                        li.ledfault { "LED not driven (probing goes on): " (f) }
                    }
                }
            }
        }
        @if !snap.sheet.problems.is_empty() {
            div.alert.note {
                details {
                    summary {
                        (snap.sheet.problems.len()) " row(s) skipped in "
                        (snap.sheet.source.as_deref().unwrap_or("the targets sheet"))
                    }
                    (problem_list(&snap.sheet.problems))
                }
            }
        }
        @if dropped_any {
            div.alert.note {
                "Retention dropped " (d.results) " results, " (d.traces) " traces and "
                (d.events) " events from the local history"
                @if d.unsynced > 0 { ", " strong { (d.unsynced) " of them before they went upstream" } }
                "; older history has gaps."
            }
        }
    }
}

/// At most this many groups are offered as a list; beyond, the group is
/// typed (the search finds groups too).
const GROUPS_LISTED: usize = 100;

/// At most this many of a sheet's problems are listed on `/`; `edgeprobe
/// check` lists them all.
const PROBLEMS_LISTED: usize = 50;

/// A sheet's problems, the first [`PROBLEMS_LISTED`] of them.
fn problem_list(problems: &[String]) -> Markup {
    html! {
        ul {
            @for p in problems.iter().take(PROBLEMS_LISTED) { li { (p) } }
            @if problems.len() > PROBLEMS_LISTED {
                li { "and " (problems.len() - PROBLEMS_LISTED) " more: "
                    code { "edgeprobe check SHEET" } " lists them all" }
            }
        }
    }
}

/// The filter form: plain GET, keeps the sort and the page size, starts
/// again at page 1.
fn filter_form(snap: &Snapshot, q: &IndexQuery) -> Markup {
    let groups: BTreeSet<&str> = snap
        .targets
        .iter()
        .filter_map(|t| t.group.as_deref())
        .collect();
    let filtered = q.status.is_some() || q.group.is_some() || q.search.is_some();
    html! {
        form.filters method="get" action="/" role="search" {
            label {
                "Search "
                input type="search" name="q" value=[q.search.as_deref()]
                    maxlength=(SEARCH_MAX_CHARS) placeholder="IP, name or group";
            }
            " "
            label {
                "Status "
                select name="status" {
                    option value="" selected[q.status.is_none()] { "any" }
                    @for f in StatusFilter::ALL {
                        option value=(f.as_str()) selected[q.status == Some(f)] { (f.label()) }
                    }
                }
            }
            @if groups.len() > GROUPS_LISTED {
                " "
                label { "Group " input type="text" name="group" value=[q.group.as_deref()]; }
            } @else if !groups.is_empty() {
                " "
                label {
                    "Group "
                    select name="group" {
                        option value="" selected[q.group.is_none()] { "any" }
                        @for g in &groups {
                            option value=(g) selected[q.group.as_deref() == Some(*g)] { (g) }
                        }
                    }
                }
            }
            @if q.sort != PAGE_SORT { input type="hidden" name="sort" value=(q.sort.as_str()); }
            @if q.dir != Dir::Asc { input type="hidden" name="dir" value=(q.dir.as_str()); }
            @if q.page.size != paging::DEFAULT_SIZE {
                input type="hidden" name="page_size" value=(q.page.size);
            }
            " "
            button type="submit" { "Filter" }
            @if filtered {
                " " a href=(q.unfiltered().href()) { "clear" }
            }
        }
    }
}

/// Links to the first, previous, next and last page, and where this one
/// is; nothing when everything fits on one page.
fn pager(q: &IndexQuery, info: &PageInfo) -> Markup {
    let first_row = (info.page - 1) * info.page_size + 1;
    let last_row = (first_row + info.page_size - 1).min(info.total);
    let link = |label: &str, rel: &str, to: usize, enabled: bool| {
        html! {
            @if enabled {
                a rel=(rel) href=(q.on_page(to).href()) { (label) }
            } @else {
                span.none { (label) }
            }
        }
    };
    html! {
        @if info.pages > 1 {
            nav.pager aria-label="Pages of the table" {
                (link("« first", "first", 1, info.page > 1)) " "
                (link("‹ previous", "prev", info.page - 1, info.page > 1)) " "
                span.where { "page " (info.page) " of " (info.pages)
                    " · rows " (first_row) "–" (last_row) " of " (info.total) }
                " " (link("next ›", "next", info.page + 1, info.page < info.pages))
                " " (link("last »", "last", info.pages, info.page < info.pages))
            }
        }
    }
}

/// A column header: a link that sorts by it (again: the other way).
fn sort_header(q: &IndexQuery, key: SortKey, label: &str, class: &str) -> Markup {
    let arrow = match (q.sort == key, q.dir) {
        (true, Dir::Asc) => " ▲",
        (true, Dir::Desc) => " ▼",
        (false, _) => "",
    };
    let aria = match (q.sort == key, q.dir) {
        (true, Dir::Asc) => "ascending",
        (true, Dir::Desc) => "descending",
        (false, _) => "none",
    };
    html! {
        th class=(class) aria-sort=(aria) {
            a href=(q.sorted_by(key).href()) { (label) (arrow) }
        }
    }
}

fn routers_cell(t: &TargetView) -> Markup {
    let routers = t.routers();
    html! {
        @if !routers.is_empty() {
            span.path {
                @for (i, h) in routers.iter().enumerate() {
                    @if i > 0 { " › " }
                    @if h.last_seen.is_some() {
                        span.hop.kept title="no answer to the latest trace; seen within the trace cycle" { (hop_addr(h)) }
                    } @else if h.inferred {
                        span.hop.inferred title="not asked: as on the paths that share this hop" { (hop_addr(h)) }
                    } @else {
                        span class=(if h.addr.is_some() { "hop" } else { "hop silent" }) { (hop_addr(h)) }
                    }
                }
            }
            br;
        }
        @if t.status.is_some() {
            @if t.reached {
                span.reach.ok { "Reachable" }
            } @else {
                span.reach.bad { "Unreachable" }
            }
        } @else {
            span.none { "—" }
        }
    }
}

fn row(t: &TargetView, now: Timestamp) -> Markup {
    let shown_ip = t.ip.map(|ip| ip.to_string()).filter(|ip| **ip != *t.addr);
    html! {
        tr class=(status_class(t.status)) {
            td.num { (t.sno) }
            td.ip {
                a href=(target_href(t)) { (t.addr) }
                @if let Some(ip) = shown_ip { br; span.sub { (ip) } }
            }
            (name_cell(t.name.as_deref(), t.group.as_deref()))
            (status_cell(t.status, t.cause.as_deref()))
            td.opt {
                @if t.gateway.is_none() && t.status.is_none() { span.none { "—" } }
                @else { (gateway_text(t.gateway)) }
            }
            td.routers { (routers_cell(t)) }
            td.updated { (opt_time(t.last_updated, now)) }
            td.num { @if let Some(l) = t.loss { (fmt::percent(l)) } @else { span.none { "—" } } }
            td.num { @if let Some(r) = &t.rtt_ms { (fmt::ms(r.avg)) } @else { span.none { "—" } } }
            td.num.opt { @if let Some(u) = t.uptime_24h { (fmt::percent(u)) } @else { span.none { "—" } } }
            td.sparkcell.opt { (svg::sparkline(&t.recent_rtt.iter().map(|v| v.map(f64::from)).collect::<Vec<_>>())) }
        }
    }
}

/// `GET /`: the header and one page of the table of targets.
pub fn index(snap: &Snapshot, leds: &LedReport, q: &IndexQuery, now: Timestamp) -> Markup {
    let matching = table::rows(snap, q);
    let (rows, info) = q.page.slice_nearest(&matching);
    // The refresh shows the page it is on, even if the list shrank.
    let refresh_url = q.on_page(info.page).href();
    let body = html! {
        (board_header(snap, leds, q, now))
        main {
            (alerts(snap, leds))
            (filter_form(snap, q))
            (pager(q, &info))
            div.tablewrap {
                table.targets {
                    caption {
                        (info.total) " of " (snap.targets.len()) " targets"
                        @if let Some(g) = &q.group { " in group “" (g) "”" }
                        @if let Some(text) = &q.search { " matching “" (text) "”" }
                        @if q.sort == PAGE_SORT && q.dir == Dir::Asc { ", problems first" }
                    }
                    thead {
                        tr {
                            (sort_header(q, SortKey::Sno, "S.No", "num"))
                            (sort_header(q, SortKey::Ip, "IP", ""))
                            (sort_header(q, SortKey::Name, "Name", ""))
                            (sort_header(q, SortKey::Status, "Status", ""))
                            (sort_header(q, SortKey::Gateway, "Default Gateway", "opt"))
                            (sort_header(q, SortKey::Routers, "Routers", ""))
                            (sort_header(q, SortKey::Updated, "Last Updated", ""))
                            (sort_header(q, SortKey::Loss, "Loss", "num"))
                            (sort_header(q, SortKey::Rtt, "RTT (avg ms)", "num"))
                            (sort_header(q, SortKey::Uptime, "24 h uptime", "num opt"))
                            th.opt { "Recent RTT" }
                        }
                    }
                    tbody {
                        @for t in rows { (row(t, now)) }
                        @if rows.is_empty() {
                            tr {
                                td.empty colspan="11" {
                                    @if snap.targets.is_empty() {
                                        "No targets loaded yet."
                                    } @else {
                                        "No target matches this filter."
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(q, &info))
        }
        (footer(snap))
    };
    layout(
        &format!("edgeprobe {}", snap.board.id),
        Some((refresh_secs(snap.board.interval), &refresh_url)),
        body,
    )
}

fn footer(snap: &Snapshot) -> Markup {
    html! {
        footer {
            "edgeprobe " (snap.board.version) " · "
            a href="/api/v1/status" { "JSON" } " · "
            a href="/alerts" { "alerts" } " · "
            a href="/metrics" { "metrics" } " · "
            a href="/healthz" { "health" }
            @if let Some(src) = &snap.sheet.source {
                " · targets from " (src)
                @if let Some(at) = snap.sheet.loaded_at { " (loaded " (fmt::time(at)) ")" }
            }
        }
    }
}

fn uptime_text(u: Option<f64>) -> String {
    u.map_or_else(|| "no data".to_string(), fmt::percent)
}

fn path_text(hops: &[Hop]) -> String {
    if hops.is_empty() {
        return "—".to_string();
    }
    hops.iter().map(hop_addr).collect::<Vec<_>>().join(" › ")
}

fn event_row(e: &EventRecord) -> Markup {
    html! {
        tr {
            td { (fmt::time(e.ts)) }
            td { (e.kind.as_str()) }
            td {
                (e.from.as_deref().unwrap_or("—")) " → " (e.to.as_deref().unwrap_or("—"))
            }
            td { (e.detail) }
        }
    }
}

/// `GET /targets/{key}`: one target's state and history. `history` is the
/// store's answer, or why the store could not answer (the page still shows
/// the live state).
pub fn target_page(
    snap: &Snapshot,
    t: &TargetView,
    history: Result<&TargetHistory, &str>,
    now: Timestamp,
) -> Markup {
    let empty = TargetHistory::default();
    let (h, history_error) = match history {
        Ok(h) => (h, None),
        Err(e) => (&empty, Some(e)),
    };
    // Oldest first for the chart.
    let points: Vec<(Timestamp, Option<f64>)> = h
        .results
        .iter()
        .rev()
        .map(|r| (r.ts, r.rtt.map(|s| s.avg)))
        .collect();
    let self_url = target_href(t);
    let title = match &t.name {
        Some(n) => format!("{} ({n})", t.addr),
        None => t.addr.to_string(),
    };
    let body = html! {
        header.top {
            p { a href="/" { "← all targets on " (snap.board.id) } }
            h1 {
                (t.addr)
                @if let Some(n) = &t.name { " " span.board { (n) } }
            }
            @if let Some(g) = &t.group { p.sub { "group " (g) } }
            @if let Some(n) = &t.notes { p.notes { (n) } }
        }
        main {
            @if let Some(e) = history_error {
                div.alert.bad role="alert" { "History unavailable: " (e) }
            }
            (target_facts(t, h, now))
            section {
                h2 { "Round-trip time" }
                div.chartwrap { (svg::rtt_chart(&points)) }
            }
            (latest_path(t, now))
            (recent_results(h))
            (path_history(h))
            (target_events(h))
        }
        (footer(snap))
    };
    layout(
        &title,
        Some((refresh_secs(snap.board.interval), &self_url)),
        body,
    )
}

/// The target page's facts: status and cause, reachability, gateway, the
/// last round and the uptimes.
fn target_facts(t: &TargetView, h: &TargetHistory, now: Timestamp) -> Markup {
    html! {
        dl.facts {
            dt { "Status" }
            dd {
                (badge(t.status))
                @if let Some(since) = t.status_since { " since " (fmt::time(since)) " (" (fmt::ago(now, since)) ")" }
                @if let Some(c) = &t.cause { br; span.cause { (c) } }
            }
            @if let Some(ip) = t.ip.filter(|ip| *ip.to_string() != *t.addr) {
                dt { "Resolved to" } dd { (ip) }
            }
            dt { "Reachable" }
            dd {
                @if t.status.is_none() { "—" }
                @else if t.reached { span.ok { "Reachable" } }
                @else { span.bad { "Unreachable" } }
            }
            dt { "Default gateway" } dd { (gateway_text(t.gateway)) }
            dt { "Last round" }
            dd {
                (t.received) " of " (t.sent) " replies"
                @if let Some(l) = t.loss { ", loss " (fmt::percent(l)) }
                @if let Some(r) = &t.rtt_ms {
                    ", RTT min/avg/max/mdev " (fmt::ms(r.min)) " / " (fmt::ms(r.avg)) " / "
                    (fmt::ms(r.max)) " / " (fmt::ms(r.mdev)) " ms"
                }
            }
            dt { "Last updated" } dd { (opt_time(t.last_updated, now)) }
            dt { "Uptime" }
            dd {
                "24 h " (uptime_text(h.uptime.h24.or(t.uptime_24h)))
                " · 7 d " (uptime_text(h.uptime.d7))
                " · 30 d " (uptime_text(h.uptime.d30))
            }
        }
    }
}

/// The path of the latest trace, hop by hop, with when each hop was seen.
fn latest_path(t: &TargetView, now: Timestamp) -> Markup {
    html! {
        section {
            h2 { "Latest path" }
            @if let Some(at) = t.last_trace { p.sub { "traced " (fmt::time(at)) " (" (fmt::ago(now, at)) ")" } }
            @if t.hops.is_empty() {
                p.none { "No trace yet." }
            } @else {
                div.tablewrap {
                    table {
                        thead { tr { th.num { "TTL" } th { "Address" } th.num { "RTT (ms)" } th { "Seen" } } }
                        tbody {
                            @for hop in t.hops.iter() {
                                tr {
                                    td.num { (hop.ttl.0) }
                                    td { (hop_addr(hop)) }
                                    td.num { @if let Some(r) = hop.rtt_ms { (fmt::ms(r)) } @else { "*" } }
                                    td { (hop_seen(hop, now)) }
                                }
                            }
                        }
                    }
                }
                p {
                    @if t.reached { span.ok { "Reachable" } " — the destination answered." }
                    @else { span.bad { "Unreachable" } " — the destination did not answer." }
                }
            }
        }
    }
}

/// The stored results, newest first.
fn recent_results(h: &TargetHistory) -> Markup {
    html! {
        section {
            h2 { "Recent results" }
            @if h.results.is_empty() {
                p.none { "No results stored yet." }
            } @else {
                div.tablewrap {
                    table {
                        thead {
                            tr {
                                th { "Time" } th.num { "Round" } th { "This round" } th { "Reported" }
                                th.num { "Replies" } th.num { "Loss" } th.num { "RTT min/avg/max (ms)" }
                                th.opt { "Gateway" }
                            }
                        }
                        tbody {
                            @for r in &h.results {
                                tr class=(status_class(Some(r.reported))) {
                                    td { (fmt::time(r.ts)) }
                                    td.num { (r.round.0) }
                                    td { (badge(Some(r.status))) }
                                    td { (badge(Some(r.reported))) }
                                    td.num { (r.received) "/" (r.sent) }
                                    td.num { (fmt::percent(r.loss)) }
                                    td.num {
                                        @if let Some(s) = &r.rtt {
                                            (fmt::ms(s.min)) " / " (fmt::ms(s.avg)) " / " (fmt::ms(s.max))
                                        } @else { span.none { "—" } }
                                    }
                                    td.opt { (gateway_text(r.gateway)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The stored traces, newest first; nothing when there are none.
fn path_history(h: &TargetHistory) -> Markup {
    html! {
        @if !h.traces.is_empty() {
            section {
                h2 { "Path history" }
                div.tablewrap {
                    table {
                        thead { tr { th { "Time" } th { "Hops" } th { "Destination" } } }
                        tbody {
                            @for tr_ in &h.traces {
                                tr {
                                    td { (fmt::time(tr_.ts)) }
                                    td { (path_text(&tr_.hops)) }
                                    td {
                                        @if tr_.reached { span.ok { "Reachable" } }
                                        @else { span.bad { "Unreachable" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The target's events, newest first.
fn target_events(h: &TargetHistory) -> Markup {
    html! {
        section {
            h2 { "Events" }
            @if h.events.is_empty() {
                p.none { "No events." }
            } @else {
                div.tablewrap {
                    table {
                        thead { tr { th { "Time" } th { "Kind" } th { "Change" } th { "Detail" } } }
                        tbody { @for e in &h.events { (event_row(e)) } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::History;
    use crate::web::testdata::{self, FakeHistory, NOW};

    fn index_html(q: &str) -> String {
        index(
            &testdata::snapshot(),
            &testdata::leds(),
            &IndexQuery::parse(Some(q)),
            NOW,
        )
        .into_string()
    }

    #[test]
    fn index_has_header_table_and_no_script_or_inline_style() {
        let html = index_html("");
        for needle in [
            "<meta http-equiv=\"refresh\" content=\"30; url=/\">",
            "name=\"viewport\"",
            "href=\"/static/style.css\"",
            "closet-3",
            "upstream: off — results kept on this board",
            "backlog 12 rows",
            "3 rows refused by the server</span> and set aside (last 2 min ago: \
             events: code 121: Document failed validation)",
            "last round #42",
            "took 4.5 s",
            "Rejected targets sheet new.xlsx",
            "CAP_NET_RAW",
            "1 row(s) skipped in targets.xlsx",
            "Retention dropped 7 results",
            "led led-red pat-on",
            "red on",
            "href=\"/targets/2001:db8::1\"",
            "path stops after 198.18.1.1",
            "198.18.1.1</span> › <span class=\"hop silent\">*</span>",
            "Reachable",
            "Unreachable",
            "<svg class=\"spark\"",
            "S.No",
            "Default Gateway",
            "Last Updated",
            "198.18.0.254",
            "direct",
        ] {
            assert!(html.contains(needle), "missing {needle:?} in\n{html}");
        }
        assert_eq!(html.matches("<tr class=\"st-").count(), 4, "{html}");
        assert!(!html.to_lowercase().contains("<script"), "{html}");
        assert!(!html.contains(" style="), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
    }

    #[test]
    fn hostile_values_stay_inside_attributes() {
        let mut snap = testdata::snapshot();
        snap.targets[0].key = "x\"><script>y".into();
        snap.targets[1].group = Some("\"><b onmouseover=1>".into());
        let html = index(&snap, &testdata::leds(), &IndexQuery::default(), NOW).into_string();
        assert!(!html.to_lowercase().contains("<script"), "{html}");
        assert!(!html.contains("<b onmouseover"), "{html}");
        // The group's option value and the key's link are escaped.
        assert!(
            html.contains("value=\"&quot;&gt;&lt;b onmouseover=1&gt;\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/targets/x%22%3E%3Cscript%3Ey\""),
            "{html}"
        );
    }

    #[test]
    fn query_is_kept_in_links_and_refresh() {
        let html = index_html("status=problems&sort=rtt&dir=desc");
        assert!(
            html.contains("content=\"30; url=/?status=problems&amp;sort=rtt&amp;dir=desc\""),
            "{html}"
        );
        // The RTT header flips the direction, keeping the filter.
        assert!(
            html.contains("href=\"/?status=problems&amp;sort=rtt\""),
            "{html}"
        );
        assert!(
            html.contains("<input type=\"hidden\" name=\"sort\" value=\"rtt\">"),
            "{html}"
        );
        assert!(
            html.contains("<option value=\"problems\" selected>"),
            "{html}"
        );
    }

    /// The test snapshot grown to `n` targets: copies of its rows under
    /// new addresses, every seventh one Not Working.
    fn snapshot_of(n: usize) -> Snapshot {
        let mut snap = testdata::snapshot();
        let template = snap.targets[0].clone();
        snap.targets = (0..n)
            .map(|i| {
                let mut t = template.clone();
                let addr = format!("198.18.{}.{}", i / 250, i % 250 + 1);
                t.sno = i + 1;
                t.ip = addr.parse().ok();
                t.key = addr.as_str().into();
                t.addr = addr.into();
                t.name = Some(format!("host {i}").into());
                t.group = Some(format!("rack {}", i % 20).into());
                if i % 7 == 3 {
                    t.status = Some(Status::NotWorking);
                }
                t
            })
            .collect();
        snap
    }

    #[test]
    fn a_page_holds_a_hundred_rows_problems_first_with_links_to_the_rest() {
        let snap = snapshot_of(250);
        let page = |q: &str| {
            index(&snap, &testdata::leds(), &IndexQuery::parse(Some(q)), NOW).into_string()
        };
        let first = page("");
        assert_eq!(first.matches("<tr class=\"st-").count(), 100);
        assert_eq!(
            first.matches("<tr class=\"st-not-working").count(),
            36,
            "all 36 Not Working rows come first"
        );
        assert!(first.contains("page 1 of 3 · rows 1–100 of 250"), "{first}");
        assert!(first.contains("rel=\"next\" href=\"/?page=2\""), "{first}");
        assert!(first.contains("rel=\"last\" href=\"/?page=3\""), "{first}");
        assert!(first.contains("name=\"q\""), "the search box");

        let last = page("page=3&page_size=100");
        assert_eq!(last.matches("<tr class=\"st-").count(), 50);
        assert!(last.contains("rows 201–250 of 250"), "{last}");
        assert!(
            last.contains("content=\"30; url=/?page=3\""),
            "the refresh stays on it"
        );

        let found = page("q=host+24");
        assert!(
            found.contains("11 of 250 targets matching “host 24”"),
            "{found}"
        );
        assert!(!found.contains("rel=\"next\""), "one page: no pager");
    }

    #[test]
    fn ten_thousand_targets_make_a_page_under_300_kb() {
        let snap = snapshot_of(10_000);
        let html = index(&snap, &testdata::leds(), &IndexQuery::default(), NOW).into_string();
        assert_eq!(html.matches("<tr class=\"st-").count(), 100);
        assert!(html.len() < 300_000, "{} bytes", html.len());
        assert!(html.contains("page 1 of 100"));
    }

    #[test]
    fn empty_snapshot_renders() {
        let snap = Snapshot::default();
        let html = index(&snap, &testdata::leds(), &IndexQuery::default(), NOW).into_string();
        assert!(html.contains("No targets loaded yet."), "{html}");
        assert!(html.contains("first round in progress"), "{html}");
        assert!(html.contains("content=\"5; url=/\""), "{html}");
    }

    #[test]
    fn target_page_shows_history() {
        let snap = testdata::snapshot();
        let fake = FakeHistory::with_data();
        let key = "198.18.0.1";
        let h = TargetHistory {
            uptime: fake.uptime(key, NOW).expect("uptime"),
            results: fake.results(key, 100).expect("results"),
            traces: fake.traces(key, 10).expect("traces"),
            events: fake.events(Some(key), 50).expect("events"),
        };
        let t = snap.target(key).expect("target");
        let html = target_page(&snap, t, Ok(&h), NOW).into_string();
        for needle in [
            "<svg class=\"chart\"",
            "Recent results",
            "Path history",
            "24 h 80 %",
            "7 d 90 %",
            "30 d no data",
            "&lt;img src=x&gt;",
            "working → not_working",
            "Latest path",
            "&lt;b&gt;notes&lt;/b&gt;",
            "content=\"30; url=/targets/198.18.0.1\"",
        ] {
            assert!(html.contains(needle), "missing {needle:?} in\n{html}");
        }
        assert!(!html.to_lowercase().contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains(" style="), "{html}");
    }

    #[test]
    fn target_page_survives_a_store_error() {
        let snap = testdata::snapshot();
        let t = snap.target("printer.lan").expect("target");
        let html = target_page(&snap, t, Err("local store: disk on fire"), NOW).into_string();
        assert!(
            html.contains("History unavailable: local store: disk on fire"),
            "{html}"
        );
        assert!(html.contains("No trace yet."), "{html}");
        assert!(html.contains("no results yet"), "{html}");
    }
}
