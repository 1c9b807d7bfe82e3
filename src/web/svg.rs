//! Inline SVG: the table's RTT sparklines and the target page's RTT chart.
//!
//! The geometry (which points, split where a round had no reply) is plain
//! functions over the values, tested on their own; the markup only prints
//! numbers it computed and labels through maud, which escapes them, so
//! nothing from the sheet can break out of an attribute.

use std::fmt::Write as _;

use maud::{html, Markup};

use crate::clock::Timestamp;
use crate::http::fmt;

/// A point in SVG user units.
pub type Point = (f64, f64);

/// Where each value goes on a `width` x `height` canvas (inset by `pad`),
/// split into runs of consecutive values: a `None` or a non-finite value is
/// a gap (a round without a reply). `xs` are the x positions in any unit
/// (index or time), mapped linearly. The y range is `floor..=max`, or
/// `min..=max` of the values when `floor` is `None`; a flat series is drawn
/// across the middle.
pub fn segments(
    xs: &[f64],
    values: &[Option<f64>],
    floor: Option<f64>,
    width: f64,
    height: f64,
    pad: f64,
) -> Vec<Vec<Point>> {
    let finite = |v: &Option<f64>| v.filter(|v| v.is_finite());
    let ys: Vec<f64> = values.iter().filter_map(finite).collect();
    let xs_ok: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if ys.is_empty() || xs_ok.is_empty() {
        return Vec::new();
    }
    let max = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = floor.unwrap_or_else(|| ys.iter().copied().fold(f64::INFINITY, f64::min));
    let (x0, x1) = (
        xs_ok.iter().copied().fold(f64::INFINITY, f64::min),
        xs_ok.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let inner_w = (width - 2.0 * pad).max(0.0);
    let inner_h = (height - 2.0 * pad).max(0.0);
    let scale_x = |x: f64| match fraction(x, x0, x1) {
        Some(f) => pad + f * inner_w,
        None => width / 2.0,
    };
    // SVG y grows downwards: the maximum is at the top.
    let scale_y = |y: f64| match fraction(y, min, max) {
        Some(f) => pad + (1.0 - f) * inner_h,
        None => height / 2.0,
    };

    let mut runs = Vec::new();
    let mut run: Vec<Point> = Vec::new();
    for (x, v) in xs.iter().zip(values) {
        match finite(v).filter(|_| x.is_finite()) {
            Some(y) => run.push((scale_x(*x), scale_y(y))),
            None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// `x,y x,y ...` for a `points` attribute, to one decimal.
pub fn points_attr(run: &[Point]) -> String {
    let mut s = String::new();
    for (i, (x, y)) in run.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{x:.1},{y:.1}");
    }
    s
}

/// Draw one run: a polyline, or a dot when it is a single value (a
/// polyline of one point is invisible).
fn run_markup(run: &[Point]) -> Markup {
    match run {
        [(x, y)] => html! {
            circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="1.5" {}
        },
        _ => html! { polyline points=(points_attr(run)) {} },
    }
}

const SPARK_W: f64 = 100.0;
const SPARK_H: f64 = 24.0;

/// The table's sparkline of recent average RTTs (oldest first; `None` for a
/// round without replies, shown as a gap and a tick on the baseline).
pub fn sparkline(values: &[Option<f64>]) -> Markup {
    let xs: Vec<f64> = (0..values.len()).map(|i| i as f64).collect();
    let runs = segments(&xs, values, None, SPARK_W, SPARK_H, 2.0);
    let misses = miss_positions(&xs, values, SPARK_W, 2.0);
    let replied = values
        .iter()
        .filter(|v| v.is_some_and(f64::is_finite))
        .count();
    let label = if values.is_empty() {
        "no RTT history yet".to_string()
    } else {
        format!(
            "RTT of the last {} rounds, {} without reply",
            values.len(),
            values.len() - replied
        )
    };
    html! {
        svg.spark viewBox={"0 0 " (SPARK_W) " " (SPARK_H)} width=(SPARK_W) height=(SPARK_H)
            role="img" aria-label=(label) {
            title { (label) }
            @for run in &runs { (run_markup(run)) }
            @for x in &misses {
                line.miss x1=(format!("{x:.1}")) x2=(format!("{x:.1}"))
                    y1=(SPARK_H - 5.0) y2=(SPARK_H) {}
            }
        }
    }
}

/// The x positions of the values that are gaps.
fn miss_positions(xs: &[f64], values: &[Option<f64>], width: f64, pad: f64) -> Vec<f64> {
    let (x0, x1) = xs
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
    let inner = (width - 2.0 * pad).max(0.0);
    xs.iter()
        .zip(values)
        .filter(|(x, v)| x.is_finite() && !v.is_some_and(f64::is_finite))
        .map(|(x, _)| match fraction(*x, x0, x1) {
            Some(f) => pad + f * inner,
            None => width / 2.0,
        })
        .collect()
}

/// Where `v` lies between `lo` and `hi`, as 0..=1; `None` when the range
/// is (nearly) empty. Halving first keeps `hi - lo` finite for any finite
/// bounds (1e308 - -1e308 would overflow).
fn fraction(v: f64, lo: f64, hi: f64) -> Option<f64> {
    let range = hi / 2.0 - lo / 2.0;
    (range > f64::EPSILON * (hi / 2.0).abs().max(0.5)).then(|| (v / 2.0 - lo / 2.0) / range)
}

const CHART_W: f64 = 640.0;
const CHART_H: f64 = 220.0;
/// Room for the y labels on the left and the x labels below.
const CHART_LEFT: f64 = 56.0;
const CHART_BOTTOM: f64 = 24.0;
const CHART_PAD: f64 = 8.0;

/// The target page's chart: average RTT per result (oldest first) against
/// time, from 0 ms up, with gaps where nothing came back.
pub fn rtt_chart(points: &[(Timestamp, Option<f64>)]) -> Markup {
    let xs: Vec<f64> = points.iter().map(|(t, _)| t.millis() as f64).collect();
    let values: Vec<Option<f64>> = points.iter().map(|(_, v)| *v).collect();
    let plot_w = CHART_W - CHART_LEFT;
    let plot_h = CHART_H - CHART_BOTTOM;
    let runs: Vec<Vec<Point>> = segments(&xs, &values, Some(0.0), plot_w, plot_h, CHART_PAD)
        .into_iter()
        .map(|run| run.into_iter().map(|(x, y)| (x + CHART_LEFT, y)).collect())
        .collect();
    let misses: Vec<f64> = miss_positions(&xs, &values, plot_w, CHART_PAD)
        .into_iter()
        .map(|x| x + CHART_LEFT)
        .collect();
    let max = values
        .iter()
        .filter_map(|v| v.filter(|v| v.is_finite()))
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let label = format!(
        "Average RTT of the last {} results, {} without reply",
        points.len(),
        misses.len()
    );
    let (y_top, y_bottom) = (CHART_PAD, plot_h - CHART_PAD);
    html! {
        svg.chart viewBox={"0 0 " (CHART_W) " " (CHART_H)} role="img" aria-label=(label) {
            title { (label) }
            line.axis x1=(CHART_LEFT) y1=(y_top) x2=(CHART_LEFT) y2=(plot_h) {}
            line.axis x1=(CHART_LEFT) y1=(plot_h) x2=(CHART_W) y2=(plot_h) {}
            @if let Some(max) = max {
                text.label x=(CHART_LEFT - 4.0) y=(y_top + 4.0) text-anchor="end" {
                    (fmt::ms(max)) " ms"
                }
            }
            text.label x=(CHART_LEFT - 4.0) y=(y_bottom + 4.0) text-anchor="end" { "0 ms" }
            @if let (Some((first, _)), Some((last, _))) = (points.first(), points.last()) {
                text.label x=(CHART_LEFT) y=(CHART_H - 6.0) { (fmt::clock(*first)) }
                text.label x=(CHART_W - 2.0) y=(CHART_H - 6.0) text-anchor="end" {
                    (fmt::clock(*last)) " UTC"
                }
            }
            @if runs.is_empty() {
                text.label x=(CHART_LEFT + plot_w / 2.0) y=(plot_h / 2.0) text-anchor="middle" {
                    @if points.is_empty() { "no results yet" } @else { "no replies" }
                }
            }
            @for run in &runs { (run_markup(run)) }
            @for x in &misses {
                line.miss x1=(format!("{x:.1}")) x2=(format!("{x:.1}"))
                    y1=(plot_h - 8.0) y2=(plot_h) {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(n: usize) -> Vec<f64> {
        (0..n).map(|i| i as f64).collect()
    }

    #[test]
    fn empty_and_all_gaps_draw_nothing() {
        assert!(segments(&[], &[], None, 100.0, 20.0, 0.0).is_empty());
        assert!(segments(&idx(3), &[None, None, None], None, 100.0, 20.0, 0.0).is_empty());
        let nan = [Some(f64::NAN), Some(f64::INFINITY), Some(f64::NEG_INFINITY)];
        assert!(segments(&idx(3), &nan, None, 100.0, 20.0, 0.0).is_empty());
    }

    /// Rounded to 1e-6, so float noise does not fail exact comparisons.
    fn rounded(runs: Vec<Vec<Point>>) -> Vec<Vec<Point>> {
        let r = |v: f64| (v * 1e6).round() / 1e6;
        runs.into_iter()
            .map(|run| run.into_iter().map(|(x, y)| (r(x), r(y))).collect())
            .collect()
    }

    #[test]
    fn gaps_split_runs() {
        let v = [
            Some(1.0),
            Some(2.0),
            None,
            Some(3.0),
            Some(f64::NAN),
            Some(4.0),
        ];
        let runs = rounded(segments(&idx(6), &v, None, 50.0, 30.0, 0.0));
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0].len(), 2);
        assert_eq!(runs[1], vec![(30.0, 10.0)]);
        assert_eq!(runs[2], vec![(50.0, 0.0)]);
        // Min at the bottom, max at the top.
        assert_eq!(runs[0][0], (0.0, 30.0));
    }

    #[test]
    fn flat_series_is_drawn_across_the_middle() {
        let runs = rounded(segments(&idx(3), &[Some(5.0); 3], None, 100.0, 20.0, 2.0));
        assert_eq!(runs, vec![vec![(2.0, 10.0), (50.0, 10.0), (98.0, 10.0)]]);
    }

    #[test]
    fn single_point_is_centred() {
        let runs = segments(&[7.0], &[Some(5.0)], None, 100.0, 20.0, 2.0);
        assert_eq!(runs, vec![vec![(50.0, 10.0)]]);
    }

    #[test]
    fn floor_anchors_the_scale() {
        let runs = rounded(segments(
            &idx(2),
            &[Some(5.0), Some(10.0)],
            Some(0.0),
            10.0,
            100.0,
            0.0,
        ));
        assert_eq!(runs, vec![vec![(0.0, 50.0), (10.0, 0.0)]]);
    }

    #[test]
    fn all_coordinates_are_finite() {
        let v = [Some(1e308), Some(-1e308), Some(0.0), None];
        for run in segments(&idx(4), &v, None, 100.0, 20.0, 2.0) {
            for (x, y) in run {
                assert!(x.is_finite() && y.is_finite());
            }
        }
    }

    #[test]
    fn sparkline_markup() {
        let s = sparkline(&[Some(1.0), None, Some(2.0), Some(3.0)]).into_string();
        assert!(s.starts_with("<svg class=\"spark\""), "{s}");
        assert!(s.contains("<circle"), "lone point is a dot: {s}");
        assert!(s.contains("<polyline points=\""), "{s}");
        assert!(s.contains("class=\"miss\""), "{s}");
        assert!(!s.contains("NaN") && !s.contains("inf"), "{s}");
        let empty = sparkline(&[]).into_string();
        assert!(!empty.contains("polyline"), "{empty}");
    }

    #[test]
    fn chart_has_axes_labels_and_gaps() {
        let pts = [
            (Timestamp(0), Some(10.0)),
            (Timestamp(60_000), None),
            (Timestamp(120_000), Some(20.0)),
            (Timestamp(180_000), Some(f64::NAN)),
        ];
        let s = rtt_chart(&pts).into_string();
        assert!(s.contains("20.0 ms"), "{s}");
        assert!(s.contains("0 ms"), "{s}");
        assert!(s.contains("00:00") && s.contains("00:03 UTC"), "{s}");
        assert_eq!(s.matches("class=\"miss\"").count(), 2, "{s}");
        assert!(!s.contains("NaN"), "{s}");
        assert!(rtt_chart(&[]).into_string().contains("no results yet"));
        assert!(rtt_chart(&[(Timestamp(0), None)])
            .into_string()
            .contains("no replies"));
    }
}
