//! How numbers and times read on the pages of both dashboards: one place,
//! so the tables, the target pages and the charts agree.

use std::time::Duration;

use crate::clock::Timestamp;

/// `2026-11-25 23:58:31Z`: RFC 3339 to the second, readable on a phone.
pub fn time(ts: Timestamp) -> String {
    let s = ts.rfc3339();
    // "YYYY-MM-DDTHH:MM:SS.mmmZ" -> "YYYY-MM-DD HH:MM:SSZ"
    match (s.get(..10), s.get(11..19)) {
        (Some(date), Some(clock)) if s.len() == 24 => format!("{date} {clock}Z"),
        _ => s,
    }
}

/// `2026-11-25`: a UTC day, for the daily availability charts.
pub fn date(ts: Timestamp) -> String {
    ts.rfc3339().get(..10).unwrap_or("?").to_string()
}

/// `23:58`: for chart axes, where the date is in the page title.
pub fn clock(ts: Timestamp) -> String {
    ts.rfc3339().get(11..16).unwrap_or("?").to_string()
}

/// `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
pub fn ago(now: Timestamp, then: Timestamp) -> String {
    let whole = Duration::from_secs(now.since(then).as_secs());
    if whole.is_zero() {
        "just now".to_string()
    } else {
        format!("{} ago", duration(whole))
    }
}

/// `12 s`, `5 min`, `3 h`, `2 d`; short ones (round times) finer:
/// `0.25 s`, `4.5 s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        format!("{:.2} s", d.as_secs_f64())
    } else if s < 10 && d.subsec_millis() != 0 {
        format!("{:.1} s", d.as_secs_f64())
    } else if s < 120 {
        format!("{s} s")
    } else if s < 2 * 3600 {
        format!("{} min", s / 60)
    } else if s < 2 * 86400 {
        format!("{} h", s / 3600)
    } else {
        format!("{} d", s / 86400)
    }
}

/// A fraction as a percentage: `0 %`, `33 %`, `99.9 %`. Non-finite reads `?`.
pub fn percent(fraction: f64) -> String {
    if !fraction.is_finite() {
        return "?".to_string();
    }
    let p = fraction * 100.0;
    if p == p.round() {
        format!("{p:.0} %")
    } else {
        format!("{p:.1} %")
    }
}

/// Milliseconds: `0.42`, `12.3`, `250`. Non-finite reads `?`.
pub fn ms(v: f64) -> String {
    if !v.is_finite() {
        "?".to_string()
    } else if v < 1.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(time(Timestamp(1_795_651_111_123)), "2026-11-25 23:58:31Z");
        assert_eq!(clock(Timestamp(1_795_651_111_123)), "23:58");
        assert_eq!(ago(Timestamp(10_000), Timestamp(4_000)), "6 s ago");
        assert_eq!(ago(Timestamp(10_000), Timestamp(9_500)), "just now");
        assert_eq!(duration(Duration::from_millis(250)), "0.25 s");
        assert_eq!(duration(Duration::from_millis(4500)), "4.5 s");
        assert_eq!(duration(Duration::from_secs(60)), "60 s");
        assert_eq!(duration(Duration::from_secs(600)), "10 min");
        assert_eq!(duration(Duration::from_secs(3 * 86400)), "3 d");
    }

    #[test]
    fn numbers() {
        assert_eq!(percent(0.0), "0 %");
        assert_eq!(percent(1.0 / 3.0), "33.3 %");
        assert_eq!(percent(f64::NAN), "?");
        assert_eq!(ms(0.4242), "0.42");
        assert_eq!(ms(12.34), "12.3");
        assert_eq!(ms(f64::INFINITY), "?");
    }
}
