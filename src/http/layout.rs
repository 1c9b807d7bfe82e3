//! What the pages of both dashboards are made of: the page frame (head,
//! viewport, stylesheet, refresh), the status badge and its colour class,
//! a time with "… ago" under it, the name and status cells of a targets
//! table, and the error page. Pure maud: values in, markup out.
//!
//! No JavaScript and no inline styles (the CSP forbids both): colours come
//! from classes in `/static/style.css`. maud escapes every text node and
//! attribute value, which keeps sheet values and board ids inert.

use std::time::Duration;

use maud::{html, Markup, DOCTYPE};

use super::fmt;
use super::route::STYLE_PATH;
use crate::clock::Timestamp;
use crate::probe::Status;

/// Seconds between automatic refreshes: the probe interval, kept between
/// 5 s (no point hammering a Pi) and 30 s (a wall screen stays current
/// even with a long interval).
pub fn refresh_secs(interval: Duration) -> u64 {
    interval.as_secs().clamp(5, 30)
}

/// The page frame: head with viewport, stylesheet and optional refresh.
pub fn layout(title: &str, refresh: Option<(u64, &str)>, body: Markup) -> Markup {
    layout_under("", title, refresh, body)
}

/// [`layout`] for a site served under `base` (a path prefix such as
/// `/edgeprobe`, or empty): the stylesheet is looked for there.
pub fn layout_under(base: &str, title: &str, refresh: Option<(u64, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some((secs, url)) = refresh {
                    meta http-equiv="refresh" content={ (secs) "; url=" (url) };
                }
                title { (title) }
                link rel="stylesheet" href={ (base) (STYLE_PATH) };
            }
            body { (body) }
        }
    }
}

pub fn status_class(status: Option<Status>) -> &'static str {
    match status {
        Some(Status::Working) => "st-working",
        Some(Status::Degraded) => "st-degraded",
        Some(Status::NotWorking) => "st-not-working",
        None => "st-pending",
    }
}

pub fn status_label(status: Option<Status>) -> &'static str {
    status.map_or("Pending", Status::label)
}

pub fn badge(status: Option<Status>) -> Markup {
    html! { span class={ "badge " (status_class(status)) } { (status_label(status)) } }
}

pub fn opt_time(ts: Option<Timestamp>, now: Timestamp) -> Markup {
    html! {
        @if let Some(ts) = ts {
            time datetime=(ts.rfc3339()) { (fmt::time(ts)) }
            br;
            span.sub { (fmt::ago(now, ts)) }
        } @else {
            span.none { "—" }
        }
    }
}

/// The name cell of a targets table: the name, its group under it.
pub fn name_cell(name: Option<&str>, group: Option<&str>) -> Markup {
    html! {
        td.name {
            @if let Some(n) = name { (n) }
            @if let Some(g) = group { br; span.sub.group { (g) } }
        }
    }
}

/// The status cell of a targets table: the badge, the cause under it.
pub fn status_cell(status: Option<Status>, cause: Option<&str>) -> Markup {
    html! {
        td.status {
            (badge(status))
            @if let Some(c) = cause { br; span.cause { (c) } }
        }
    }
}

/// A page for an error: not found, method not allowed, and the like.
pub fn error_page(title: &str, message: &str) -> Markup {
    layout(
        title,
        None,
        html! {
            header.top { h1 { (title) } }
            main {
                p { (message) }
                p { a href="/" { "← the dashboard" } }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_follows_the_interval_within_bounds() {
        assert_eq!(refresh_secs(Duration::from_secs(60)), 30);
        assert_eq!(refresh_secs(Duration::from_secs(10)), 10);
        assert_eq!(refresh_secs(Duration::ZERO), 5);
    }
}
