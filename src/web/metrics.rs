//! `/metrics`: the snapshot in the Prometheus text exposition format
//! (version 0.0.4).
//!
//! Label values come from the sheet, so they are escaped as the format
//! asks (backslash, double quote, line feed); everything else in a label
//! value is allowed as UTF-8. Sample values use the format's spellings of
//! the non-finite numbers (`NaN`, `+Inf`, `-Inf`), which Rust's `Display`
//! does not.

use std::fmt::Write as _;

use crate::alerts::sender::Activity;
use crate::monitor::Snapshot;
use crate::probe::Status;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Render every metric from the snapshot and the alert sender's counts.
pub fn render(snap: &Snapshot, alerts: &Activity) -> String {
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
    target_metrics(o, snap);
    round_metrics(o, snap);
    outbox_metrics(o, snap);
    store_metrics(o, snap);
    alert_metrics(o, snap, alerts);
    out
}

/// Alerting: what fires, what is silenced, what each channel did, and the
/// queue.
fn alert_metrics(o: &mut String, snap: &Snapshot, alerts: &Activity) {
    single(
        o,
        "edgeprobe_alerts_firing",
        "gauge",
        "Alerts firing now (a dead board gateway is one alert).",
        snap.alerts.firing.len() as f64,
    );
    single(
        o,
        "edgeprobe_alert_silences",
        "gauge",
        "Silences in force.",
        snap.alerts.silences.len() as f64,
    );
    family(
        o,
        "edgeprobe_notifications_total",
        "counter",
        "Attempts to send an alert notification since the monitor started, by channel and result (delivered, failed and retried, refused, given_up).",
    );
    for ((channel, result), n) in &alerts.attempts {
        sample(
            o,
            "edgeprobe_notifications_total",
            &[("channel", channel), ("result", result)],
            *n as f64,
        );
    }
    family(
        o,
        "edgeprobe_notifications_queued",
        "gauge",
        "Alert notifications waiting to be sent, after the sender's last pass; absent before its first.",
    );
    if let Some(n) = alerts.queued {
        sample(o, "edgeprobe_notifications_queued", &[], n as f64);
    }
}

/// Each target's state in the last round, and the targets per status.
fn target_metrics(o: &mut String, snap: &Snapshot) {
    per_target(
        o,
        snap,
        "edgeprobe_target_up",
        "1 when the target is Working or Degraded, 0 when Not Working; absent until first probed.",
        |t| {
            t.status.map(|status| {
                if status == Status::NotWorking {
                    0.0
                } else {
                    1.0
                }
            })
        },
    );
    per_target(
        o,
        snap,
        "edgeprobe_target_rtt_seconds",
        "Average round-trip time of the last round; absent when nothing answered.",
        |t| t.rtt_ms.as_ref().map(|rtt| rtt.avg / 1000.0),
    );
    per_target(
        o,
        snap,
        "edgeprobe_target_loss_ratio",
        "Fraction of echo requests without a reply in the last round.",
        |t| t.loss,
    );

    let c = snap.counts();
    labelled(
        o,
        "edgeprobe_targets",
        "gauge",
        "Targets per reported status (pending: not probed yet).",
        "status",
        &[
            ("working", c.working as f64),
            ("degraded", c.degraded as f64),
            ("not_working", c.not_working as f64),
            ("pending", c.pending as f64),
        ],
    );
}

/// The last finished round: how long it took and when it ended.
fn round_metrics(o: &mut String, snap: &Snapshot) {
    if let Some(round) = &snap.last_round {
        single(
            o,
            "edgeprobe_round_duration_seconds",
            "gauge",
            "How long the last finished round took.",
            round.duration.as_secs_f64(),
        );
        single(
            o,
            "edgeprobe_last_round_timestamp_seconds",
            "gauge",
            "When the last round finished, in seconds since the Unix epoch.",
            round.finished.millis() as f64 / 1000.0,
        );
    }
}

/// What waits to go upstream, and the state of the sync.
fn outbox_metrics(o: &mut String, snap: &Snapshot) {
    single(
        o,
        "edgeprobe_store_backlog",
        "gauge",
        "Rows in the local outbox not yet sent upstream.",
        snap.store.backlog as f64,
    );

    single(
        o,
        "edgeprobe_upstream_refused_rows",
        "gauge",
        "Rows the central database refused, set aside in the outbox (not sent again).",
        snap.store.refused as f64,
    );
    single(
        o,
        "edgeprobe_upstream_refused_total",
        "counter",
        "Rows the central database refused since the store was created.",
        snap.store.refused_total as f64,
    );

    if let Some(oldest) = snap.store.oldest_unsynced {
        single(
            o,
            "edgeprobe_store_oldest_unsynced_timestamp_seconds",
            "gauge",
            "When the oldest row not yet sent upstream was written (age: time() minus this).",
            oldest.millis() as f64 / 1000.0,
        );
    }

    let current = snap.upstream.state_name();
    let states = ["off", "connecting", "synced", "draining", "unreachable"]
        .map(|state| (state, if state == current { 1.0 } else { 0.0 }));
    labelled(
        o,
        "edgeprobe_upstream_state",
        "gauge",
        "1 for the upstream sync's current state (off, connecting, synced, draining, unreachable).",
        "state",
        &states,
    );
}

/// The local store: its size, its failures and what retention dropped.
fn store_metrics(o: &mut String, snap: &Snapshot) {
    single(
        o,
        "edgeprobe_store_db_bytes",
        "gauge",
        "Size of the local database file and its WAL.",
        snap.store.db_bytes as f64,
    );

    single(
        o,
        "edgeprobe_store_errors_total",
        "counter",
        "Store operations that failed since the monitor started (disk full, damaged file); the dashboard shows the last one.",
        snap.store.errors as f64,
    );

    let d = &snap.store.dropped;
    labelled(
        o,
        "edgeprobe_store_dropped_total",
        "counter",
        "Rows dropped by retention since the store was created (unsynced: dropped before they went upstream).",
        "kind",
        &[
            ("results", d.results as f64),
            ("traces", d.traces as f64),
            ("events", d.events as f64),
            ("unsynced", d.unsynced as f64),
            ("rollups", d.rollups as f64),
        ],
    );
}

fn target_labels(t: &crate::monitor::TargetView) -> [(&'static str, &str); 3] {
    [
        ("target", &*t.key),
        ("name", t.name.as_deref().unwrap_or("")),
        ("group", t.group.as_deref().unwrap_or("")),
    ]
}

/// A gauge with a sample per target that has a value, labelled with
/// the target's key, name and group.
fn per_target(
    out: &mut String,
    snap: &Snapshot,
    name: &str,
    help: &str,
    value: impl Fn(&crate::monitor::TargetView) -> Option<f64>,
) {
    family(out, name, "gauge", help);
    for t in &snap.targets {
        if let Some(v) = value(t) {
            sample(out, name, &target_labels(t), v);
        }
    }
}

/// A family (name and type) with one sample per value of one label.
fn labelled(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    values: &[(&str, f64)],
) {
    family(out, name, kind, help);
    for &(v, n) in values {
        sample(out, name, &[(label, v)], n);
    }
}

/// A family (name and type) with its one unlabelled sample.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    family(out, name, kind, help);
    sample(out, name, &[], value);
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

    fn activity() -> Activity {
        let mut a = Activity {
            queued: Some(3),
            ..Activity::default()
        };
        a.attempts
            .insert(("webhook 127.0.0.1:9000".into(), "delivered"), 5);
        a.attempts.insert(("email \"noc\"".into(), "given_up"), 1);
        a
    }

    #[test]
    fn renders_every_family_with_help_and_type() {
        let text = render(&testdata::snapshot(), &activity());
        for name in [
            "edgeprobe_target_up",
            "edgeprobe_target_rtt_seconds",
            "edgeprobe_target_loss_ratio",
            "edgeprobe_round_duration_seconds",
            "edgeprobe_last_round_timestamp_seconds",
            "edgeprobe_targets",
            "edgeprobe_store_backlog",
            "edgeprobe_upstream_refused_rows",
            "edgeprobe_upstream_refused_total",
            "edgeprobe_store_dropped_total",
            "edgeprobe_upstream_state",
            "edgeprobe_alerts_firing",
            "edgeprobe_alert_silences",
            "edgeprobe_notifications_total",
            "edgeprobe_notifications_queued",
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
        for line in [
            "edgeprobe_alerts_firing 1\n",
            "edgeprobe_alert_silences 1\n",
            "edgeprobe_notifications_total{channel=\"webhook 127.0.0.1:9000\",result=\"delivered\"} 5\n",
            "edgeprobe_notifications_total{channel=\"email \\\"noc\\\"\",result=\"given_up\"} 1\n",
            "edgeprobe_notifications_queued 3\n",
        ] {
            assert!(text.contains(line), "{line}{text}");
        }
        let before_first_pass = render(&testdata::snapshot(), &Activity::default());
        assert!(!before_first_pass.contains("\nedgeprobe_notifications_queued "));
    }

    #[test]
    fn every_line_is_well_formed() {
        let text = render(&testdata::snapshot(), &activity());
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
