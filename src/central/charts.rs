//! Availability charts: one bar per UTC day from the hourly rollups, drawn
//! as inline SVG (no JavaScript, no inline styles: colours come from
//! classes in the shared stylesheet). Pure: rows and `now` in, markup out.

use maud::{html, Markup};

use super::model::HourRow;
use crate::clock::Timestamp;
use crate::http::fmt;
use crate::store::rollup::{fraction, HOUR_MS};

const DAY_MS: i64 = 24 * HOUR_MS;
/// Drawing units per bar, and the gap after it.
const BAR: u32 = 8;
const GAP: u32 = 2;
const HEIGHT: u32 = 40;

/// One day of a chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayBar {
    /// Midnight UTC that starts it.
    pub day: Timestamp,
    /// Available rounds / rounds; `None` without rounds.
    pub availability: Option<f64>,
    pub rounds: u64,
}

/// The last `days` UTC days up to the one containing `now`, oldest first,
/// each adding up the hours that fall in it.
pub fn daily(rows: &[HourRow], days: usize, now: Timestamp) -> Vec<DayBar> {
    let today = now.millis().div_euclid(DAY_MS) * DAY_MS;
    let first = today - (days as i64 - 1) * DAY_MS;
    let mut sums = vec![(0u64, 0u64); days];
    for r in rows {
        let offset = (r.hour.millis() - first).div_euclid(DAY_MS);
        if let Some(slot) = usize::try_from(offset).ok().and_then(|i| sums.get_mut(i)) {
            slot.0 += r.rounds;
            slot.1 += r.not_working;
        }
    }
    sums.into_iter()
        .enumerate()
        .map(|(i, (rounds, down))| DayBar {
            day: Timestamp(first + i as i64 * DAY_MS),
            availability: fraction(rounds, down),
            rounds,
        })
        .collect()
}

/// The colour class of a day: the thresholds admins read uptime by.
fn bar_class(availability: Option<f64>) -> &'static str {
    match availability {
        None => "bar-none",
        Some(a) if a >= 0.999 => "bar-good",
        Some(a) if a >= 0.99 => "bar-fair",
        Some(_) => "bar-bad",
    }
}

/// The bars as an SVG, with a title per bar (a tooltip, and what a screen
/// reader says) and a label for the whole chart.
pub fn svg(bars: &[DayBar], label: &str) -> Markup {
    let width = bars.len() as u32 * (BAR + GAP);
    html! {
        svg.chart role="img" aria-label=(label) width=(width) height=(HEIGHT)
            viewBox={ "0 0 " (width) " " (HEIGHT) } xmlns="http://www.w3.org/2000/svg" {
            title { (label) }
            @for (i, b) in bars.iter().enumerate() {
                @let h = b.availability.map_or(2, |a| ((a * f64::from(HEIGHT)).round() as u32).max(2));
                rect class=(bar_class(b.availability))
                    x=(i as u32 * (BAR + GAP)) y=(HEIGHT - h) width=(BAR) height=(h) {
                    title {
                        (fmt::date(b.day)) ": "
                        @match b.availability {
                            Some(a) => { (fmt::percent(a)) " of " (b.rounds) " rounds" }
                            None => { "no rounds" }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-25T12:00:00Z.
    const NOW: Timestamp = Timestamp(1_795_608_000_000);

    fn hour(offset_hours: i64, rounds: u64, not_working: u64) -> HourRow {
        HourRow {
            hour: Timestamp(NOW.millis() + offset_hours * HOUR_MS),
            rounds,
            not_working,
        }
    }

    #[test]
    fn hours_add_up_by_day_and_old_ones_fall_off() {
        let rows = [
            hour(0, 60, 0),
            hour(-1, 60, 30),
            // Yesterday.
            hour(-13, 60, 60),
            // Before the window.
            hour(-24 * 40, 60, 60),
        ];
        let bars = daily(&rows, 30, NOW);
        assert_eq!(bars.len(), 30);
        let today = bars[29];
        assert_eq!(today.day, Timestamp(1_795_564_800_000));
        assert_eq!(today.rounds, 120);
        assert_eq!(today.availability, Some(0.75));
        assert_eq!(bars[28].availability, Some(0.0));
        assert!(bars[..28].iter().all(|b| b.availability.is_none()));
    }

    #[test]
    fn the_svg_has_a_bar_per_day_with_its_class_and_title() {
        let bars = daily(&[hour(0, 100, 0), hour(-24, 100, 5)], 3, NOW);
        let s = svg(&bars, "closet-1, 3 days").into_string();
        assert_eq!(s.matches("<rect").count(), 3);
        assert!(s.contains("class=\"bar-good\""), "{s}");
        assert!(s.contains("class=\"bar-bad\""), "{s}");
        assert!(s.contains("class=\"bar-none\""), "{s}");
        assert!(s.contains("aria-label=\"closet-1, 3 days\""));
        assert!(!s.contains("style="));
    }
}
