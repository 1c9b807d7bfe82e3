//! `/metrics`: the snapshot in the Prometheus text exposition format
//! (version 0.0.4).
//!
//! Label values come from the sheet, so they are escaped as the format
//! asks (backslash, double quote, line feed); everything else in a label
//! value is allowed as UTF-8. Sample values use the format's spellings of
//! the non-finite numbers (`NaN`, `+Inf`, `-Inf`), which Rust's `Display`
//! does not.

use std::fmt::Write as _;

use crate::fleet::schema::state_name;
use crate::monitor::Snapshot;
use crate::probe::Status;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Render every metric from the snapshot.
pub fn render(snap: &Snapshot) -> String {
    let mut out = String::new();
    let o = &mut out;

    family(
        o,
        "edgeprobe_build_info",
        "gauge",
        "Always 1; the labels say which board and version.",
    );
    sample(
        o,
        "edgeprobe_build_info",
        &[("board", &snap.board.id), ("version", &snap.board.version)],
        1.0,
    );

    family(
        o,
        "edgeprobe_target_up",
        "gauge",
        "1 when the target is Working or Degraded, 0 when Not Working; absent until first probed.",
    );
    for t in &snap.targets {
        if let Some(status) = t.status {
            let up = if status == Status::NotWorking {
                0.0
            } else {
                1.0
            };
            sample(o, "edgeprobe_target_up", &target_labels(t), up);
        }
    }

    family(
        o,
        "edgeprobe_target_rtt_seconds",
        "gauge",
        "Average round-trip time of the last round; absent when nothing answered.",
    );
    for t in &snap.targets {
        if let Some(rtt) = &t.rtt_ms {
            sample(
                o,
                "edgeprobe_target_rtt_seconds",
                &target_labels(t),
                rtt.avg / 1000.0,
            );
        }
    }

    family(
        o,
        "edgeprobe_target_loss_ratio",
        "gauge",
        "Fraction of echo requests without a reply in the last round.",
    );
    for t in &snap.targets {
        if let Some(loss) = t.loss {
            sample(o, "edgeprobe_target_loss_ratio", &target_labels(t), loss);
        }
    }

    family(
        o,
        "edgeprobe_targets",
        "gauge",
        "Targets per reported status (pending: not probed yet).",
    );
    let c = snap.counts();
    for (status, n) in [
        ("working", c.working),
        ("degraded", c.degraded),
        ("not_working", c.not_working),
        ("pending", c.pending),
    ] {
        sample(o, "edgeprobe_targets", &[("status", status)], n as f64);
    }

    if let Some(round) = &snap.last_round {
        family(
            o,
            "edgeprobe_round_duration_seconds",
            "gauge",
            "How long the last finished round took.",
        );
        sample(
            o,
            "edgeprobe_round_duration_seconds",
            &[],
            round.duration.as_secs_f64(),
        );
        family(
            o,
            "edgeprobe_last_round_timestamp_seconds",
            "gauge",
            "When the last round finished, in seconds since the Unix epoch.",
        );
        sample(
            o,
            "edgeprobe_last_round_timestamp_seconds",
            &[],
            round.finished.millis() as f64 / 1000.0,
        );
    }

    family(
        o,
        "edgeprobe_store_backlog",
        "gauge",
        "Rows in the local outbox not yet sent upstream.",
    );
    sample(o, "edgeprobe_store_backlog", &[], snap.store.backlog as f64);

    if let Some(oldest) = snap.store.oldest_unsynced {
        family(
            o,
            "edgeprobe_store_oldest_unsynced_timestamp_seconds",
            "gauge",
            "When the oldest row not yet sent upstream was written (age: time() minus this).",
        );
        sample(
            o,
            "edgeprobe_store_oldest_unsynced_timestamp_seconds",
            &[],
            oldest.millis() as f64 / 1000.0,
        );
    }

    family(
        o,
        "edgeprobe_upstream_state",
        "gauge",
        "1 for the upstream sync's current state (off, connecting, synced, draining, unreachable).",
    );
    let current = state_name(&snap.upstream);
    for state in ["off", "connecting", "synced", "draining", "unreachable"] {
        sample(
            o,
            "edgeprobe_upstream_state",
            &[("state", state)],
            if state == current { 1.0 } else { 0.0 },
        );
    }

    family(
        o,
        "edgeprobe_store_db_bytes",
        "gauge",
        "Size of the local database file and its WAL.",
    );
    sample(
        o,
        "edgeprobe_store_db_bytes",
        &[],
        snap.store.db_bytes as f64,
    );

    family(
        o,
        "edgeprobe_store_errors_total",
        "counter",
        "Store operations that failed since the monitor started (disk full, damaged file); the dashboard shows the last one.",
    );
    sample(
        o,
        "edgeprobe_store_errors_total",
        &[],
        snap.store.errors as f64,
    );

    family(
        o,
        "edgeprobe_store_dropped_total",
        "counter",
        "Rows dropped by retention since the store was created (unsynced: dropped before they went upstream).",
    );
    let d = &snap.store.dropped;
    for (kind, n) in [
        ("results", d.results),
        ("traces", d.traces),
        ("events", d.events),
        ("unsynced", d.unsynced),
        ("rollups", d.rollups),
    ] {
        sample(
            o,
            "edgeprobe_store_dropped_total",
            &[("kind", kind)],
            n as f64,
        );
    }

    out
}

fn target_labels(t: &crate::monitor::TargetView) -> [(&'static str, &str); 3] {
    [
        ("target", t.key.as_str()),
        ("name", t.name.as_deref().unwrap_or("")),
        ("group", t.group.as_deref().unwrap_or("")),
    ]
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // HELP text escapes backslash and line feed (not quotes).
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", number(value));
}

/// Escape a label value: `\` `"` and line feed, as the format requires.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A sample value as the format spells it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        // `Display` for f64 is the shortest exact form, no exponent.
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::testdata;

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_label("<script>"), "<script>");
    }

    #[test]
    fn numbers_use_prometheus_spellings() {
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(0.0125), "0.0125");
        assert_eq!(number(3.0), "3");
    }

    #[test]
    fn renders_every_family_with_help_and_type() {
        let text = render(&testdata::snapshot());
        for name in [
            "edgeprobe_target_up",
            "edgeprobe_target_rtt_seconds",
            "edgeprobe_target_loss_ratio",
            "edgeprobe_round_duration_seconds",
            "edgeprobe_last_round_timestamp_seconds",
            "edgeprobe_targets",
            "edgeprobe_store_backlog",
            "edgeprobe_store_dropped_total",
            "edgeprobe_upstream_state",
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}\n{text}");
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}\n{text}");
        }
        assert!(
            text.contains("edgeprobe_targets{status=\"pending\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("edgeprobe_upstream_state{state=\"off\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("edgeprobe_upstream_state{state=\"unreachable\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("edgeprobe_store_dropped_total{kind=\"results\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "edgeprobe_target_up{target=\"198.18.0.1\",name=\"core \\\"sw\\\"\\\\1\\nx\",group=\"<script>alert(1)</script>\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("edgeprobe_target_up{target=\"198.18.0.9\",name=\"\",group=\"\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("edgeprobe_target_rtt_seconds{target=\"198.18.0.1\""),
            "{text}"
        );
    }

    #[test]
    fn every_line_is_well_formed() {
        let text = render(&testdata::snapshot());
        for line in text.lines() {
            assert!(
                line.starts_with("# HELP edgeprobe_")
                    || line.starts_with("# TYPE edgeprobe_")
                    || line.starts_with("edgeprobe_"),
                "{line:?}"
            );
            if !line.starts_with('#') {
                let value = line.rsplit(' ').next().unwrap_or("");
                assert!(
                    value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
                    "{line:?}"
                );
            }
        }
    }
}
