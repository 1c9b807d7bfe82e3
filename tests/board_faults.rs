//! Faults of the board itself, with the real monitor: a full state
//! directory (a real, small tmpfs) and a damaged history database. Probing
//! and the dashboard go on; the fault is shown, counted and logged.
//! Needs root (mount); CI is root. The deleted sheet is covered in
//! monitor_local, clock jumps in the pure schedule, state and store tests.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::monitor::{quick_args, RunningMonitor};
use serde_json::Value;

fn sheet(dir: &Path, targets: u32) -> PathBuf {
    let path = dir.join("t.csv");
    let mut text = String::from("ip\n");
    for i in 1..=targets {
        text.push_str(&format!("127.0.{}.{}\n", i / 250, i % 250 + 1));
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn round_number(v: &Value) -> u64 {
    v["last_round"]["round"].as_u64().unwrap_or(0)
}

fn store_errors(m: &RunningMonitor) -> f64 {
    m.get("/metrics")
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("edgeprobe_store_errors_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("edgeprobe_store_errors_total in /metrics")
}

/// A tmpfs of `size` mounted on a fresh directory; unmounted when dropped.
struct SmallDisk {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        std::fs::create_dir(&path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("run mount")
            .success();
        assert!(ok, "mount -t tmpfs failed (root needed)");
        SmallDisk { _dir: dir, path }
    }

    /// Fill what is left with one file, as runaway logs would.
    fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k"])
            .arg(format!("of={}", filler.display()))
            .output()
            .expect("run dd");
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
fn a_full_state_directory_is_counted_and_shown_while_probing_goes_on() {
    common::require_root();
    let work = tempfile::tempdir().unwrap();
    let sheet = sheet(work.path(), 200);
    let disk = SmallDisk::mount("3m");
    let m = RunningMonitor::start_local(&quick_args(
        sheet.to_str().unwrap(),
        disk.path.to_str().unwrap(),
        &["--rate", "0"],
    ));
    let v = m.wait_for("a stored round", Duration::from_secs(30), |v| {
        round_number(v) >= 2 && v["warnings"].as_array().is_some_and(|w| w.is_empty())
    });
    assert_eq!(store_errors(&m), 0.0, "{v:#}");

    let filler = disk.fill();
    let v = m.wait_for("the full disk shown", Duration::from_secs(60), |v| {
        v["warnings"].to_string().contains("not saved")
    });
    let shown = v["warnings"].to_string();
    assert!(
        shown.contains("full") || shown.contains("disk"),
        "the message says why: {shown}"
    );
    let faulted_at = round_number(&v);
    // Probing goes on, the dashboard too, and every failure is counted.
    let v = m.wait_for("rounds going on", Duration::from_secs(30), |v| {
        round_number(v) >= faulted_at + 3
    });
    assert_eq!(v["counts"]["working"], 200, "{:#}", v["counts"]);
    // The LEDs go on saying the targets are fine: the green heartbeat.
    assert_eq!(v["leds"]["green"], "heartbeat", "{:#}", v["leds"]);
    // Every unsaved round counts, on /metrics and in the API: at least
    // the three just waited for; and each is logged.
    assert!(store_errors(&m) >= 3.0, "{}", store_errors(&m));
    assert!(
        v["store"]["errors"].as_u64().is_some_and(|n| n >= 3),
        "{:#}",
        v["store"]
    );
    let log = m.log_once(|l| l.matches("was not saved").count() >= 3);
    assert!(
        log.matches("was not saved").count() >= 3,
        "each failure logged: {log}"
    );
    let page = m.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("not saved"),
        "the dashboard shows the fault"
    );

    // Space again: rounds are stored and the fault clears; the count stays.
    std::fs::remove_file(filler).unwrap();
    m.wait_for("the fault cleared", Duration::from_secs(30), |v| {
        !v["warnings"].to_string().contains("not saved")
    });
    assert!(store_errors(&m) >= 1.0, "a counter never goes back");
}

#[test]
fn a_damaged_database_is_moved_aside_and_recorded() {
    common::require_root();
    let work = tempfile::tempdir().unwrap();
    let sheet = sheet(work.path(), 3);
    let state = work.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let garbage: Vec<u8> = (0..65_536u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(state.join("edgeprobe.db"), &garbage).unwrap();

    let m = RunningMonitor::start_local(&quick_args(
        sheet.to_str().unwrap(),
        state.to_str().unwrap(),
        &["--rate", "0"],
    ));
    let v = m.wait_for(
        "rounds stored in a new file",
        Duration::from_secs(30),
        |v| round_number(v) >= 2 && v["counts"]["working"] == 3,
    );
    assert!(v["warnings"].as_array().unwrap().is_empty(), "{v:#}");
    let aside: Vec<PathBuf> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("edgeprobe.db.damaged-"))
        .collect();
    let kept = aside
        .iter()
        .find(|p| !p.to_string_lossy().ends_with("-wal") && !p.to_string_lossy().ends_with("-shm"))
        .unwrap_or_else(|| panic!("the damaged file is kept: {aside:?}"));
    assert_eq!(std::fs::read(kept).unwrap(), garbage);
    // The event is in the log and in the new history (and so upstream).
    assert!(
        m.log()
            .contains(" store board: the history database was damaged"),
        "{}",
        m.log()
    );
    let db = rusqlite::Connection::open_with_flags(
        state.join("edgeprobe.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let detail: String = db
        .query_row(
            "SELECT detail FROM events WHERE kind = 'store' AND target IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(detail.contains(&kept.display().to_string()), "{detail}");
}
