//! The whole monitor as an unprivileged user (`nobody`), the way the
//! systemd unit runs it: with CAP_NET_RAW and nothing else everything
//! works; without it ping falls back to ICMP datagram sockets where the
//! system allows them, and otherwise the monitor stops with the documented
//! message. Needs root to create namespaces and drop privileges.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::monitor::{quick_args, RunningMonitor};
use common::{as_nobody_with, Netns};

const NOBODY: u32 = 65534;

/// A sheet (an office-made `.xlsx`, so that it goes through the workbook
/// reader process) and a state directory that `nobody` can read and write.
fn workspace() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sheet = dir.path().join("t.xlsx");
    std::fs::copy(common::fixture("sites.xlsx"), &sheet).unwrap();
    std::fs::set_permissions(&sheet, std::fs::Permissions::from_mode(0o644)).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    (dir, s(&sheet), s(&state))
}

/// Namespace `name` with `net.ipv4.ping_group_range` set to
/// `ping_group_range`, and a [`workspace`].
fn netns_and_workspace(
    name: &str,
    ping_group_range: &str,
) -> (Netns, tempfile::TempDir, String, String) {
    let ns = Netns::new(name);
    ns.set_ping_group_range(ping_group_range);
    let (dir, sheet, state) = workspace();
    (ns, dir, sheet, state)
}

/// The monitor on `sheet` and `state`, run in `ns` as `nobody` with exactly
/// the capabilities `caps`.
fn start_as_nobody(ns: &Netns, caps: &str, sheet: &str, state: &str) -> RunningMonitor {
    RunningMonitor::start_in_netns_via(
        &ns.name,
        &as_nobody_with(caps),
        &quick_args(sheet, state, &[]),
    )
}

#[test]
fn cap_net_raw_alone_runs_the_whole_monitor() {
    // No unprivileged ICMP sockets: ping must use the capability.
    let (ns, _dir, sheet, state) = netns_and_workspace("epmonraw", "1 0");
    let m = start_as_nobody(&ns, "net_raw", &sheet, &state);
    let v = m.wait_for("a round as nobody", Duration::from_secs(30), |v| {
        v["counts"]["working"] == 3 && v["targets"][0]["reached"] == true
    });
    assert!(v["warnings"].as_array().unwrap().is_empty(), "{v:#}");
    assert_eq!(
        v["targets"][0]["hops"][0]["addr"], "127.0.0.1",
        "traceroute works"
    );
    assert_eq!(v["targets"][2]["hops"][0]["addr"], "::1");
    // The history is written, by nobody.
    let db = Path::new(&state).join("edgeprobe.db");
    let meta = std::fs::metadata(&db).expect("the database exists");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), NOBODY);
    m.wait_for("the history counted", Duration::from_secs(10), |v| {
        v["store"]["db_bytes"].as_u64().unwrap_or(0) > 0
    });
    assert!(!m
        .get("/targets/127.0.0.1")
        .text()
        .contains("could not be read"));
    // A new workbook is read too, in the confined reader process.
    std::fs::copy(common::fixture("seed-layout.xlsx"), &sheet).unwrap();
    m.wait_for("the new sheet picked up", Duration::from_secs(20), |v| {
        v["targets"].as_array().is_some_and(|t| t.len() == 5)
    });
}

#[test]
fn without_cap_net_raw_ping_falls_back_and_traceroute_says_how_to_fix() {
    let (ns, _dir, sheet, state) = netns_and_workspace("epmondg", "0 2147483647");
    let m = start_as_nobody(&ns, "", &sheet, &state);
    let v = m.wait_for(
        "a round without the capability",
        Duration::from_secs(30),
        |v| v["counts"]["working"] == 3,
    );
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("CAP_NET_RAW"), "{warnings}");
    assert!(warnings.contains("setcap cap_net_raw+ep"), "{warnings}");
    assert!(
        m.get("/").text().contains("CAP_NET_RAW"),
        "the dashboard says it"
    );
}

#[test]
fn with_neither_the_monitor_stops_with_the_documented_message() {
    let (ns, _dir, sheet, state) = netns_and_workspace("epmonnone", "1 0");
    let mut argv = as_nobody_with("");
    argv.push("run".into());
    argv.extend(
        quick_args(&sheet, &state, &[])
            .iter()
            .map(|s| s.to_string()),
    );
    argv.extend(["--listen".to_string(), "127.0.0.1:0".to_string()]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = ns.run(&argv);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot ping at all"), "{stderr}");
    assert!(stderr.contains("CAP_NET_RAW"), "{stderr}");
    assert!(stderr.contains("setcap cap_net_raw+ep"), "{stderr}");
    assert!(stderr.contains("net.ipv4.ping_group_range"), "{stderr}");
    assert!(
        !stderr.to_lowercase().contains("permission denied"),
        "a bare permission denied: {stderr}"
    );
}

#[test]
fn a_sheet_unreadable_at_start_is_read_again_once_its_permissions_are_fixed() {
    let (ns, _dir, sheet, state) = netns_and_workspace("epmonperm", "1 0");
    // Owned by root and private: nobody cannot open it.
    std::fs::set_permissions(&sheet, std::fs::Permissions::from_mode(0o600)).unwrap();
    let m = start_as_nobody(&ns, "net_raw", &sheet, &state);
    let v = m.wait_for("the sheet refused", Duration::from_secs(30), |v| {
        !v["sheet"]["rejected"].is_null()
    });
    assert!(v["targets"].as_array().unwrap().is_empty(), "{v:#}");
    let shown = v["sheet"]["rejected"]["problems"].to_string();
    assert!(shown.contains("ermission denied"), "{shown}");
    assert!(
        v["sheet"]["rejected"]["retry_at"].is_string(),
        "a retry is due and shown: {v:#}"
    );
    assert!(m.get("/").text().contains("read again by itself"));
    // Fixing the permissions changes neither the file's time, nor its
    // size, nor its inode: only the retry can notice.
    std::fs::set_permissions(&sheet, std::fs::Permissions::from_mode(0o644)).unwrap();
    m.wait_for(
        "the sheet read again by itself",
        Duration::from_secs(30),
        |v| v["counts"]["working"] == 3 && v["sheet"]["rejected"].is_null(),
    );
}

/// A line of `/proc/PID/status`, after its `Name:`.
fn status_field(pid: u32, name: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(':')
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

#[test]
fn the_workbook_reader_is_confined_and_the_dashboard_answers_while_it_works() {
    // The dashboard socket is handed over as fd 3 (socket activation), the
    // descriptor the reader must not inherit; the monitor holds CAP_NET_RAW.
    let (ns, _dir, sheet, state) = netns_and_workspace("epmonjail", "1 0");
    let m = start_as_nobody(&ns, "net_raw", &sheet, &state);
    m.wait_for("the sheet", Duration::from_secs(30), |v| {
        v["counts"]["working"] == 3
    });
    let confined = |pid: u32| status_field(pid, "Seccomp") == "2";
    let reader = m.stop_next_workbook_reader(confined);
    for path in ["/healthz", "/", "/api/v1/status"] {
        assert_eq!(m.get(path).status, 200, "{path} while the reader works");
    }
    assert_eq!(status_field(reader, "NoNewPrivs"), "1");
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(status_field(reader, set), "0000000000000000", "{set}");
    }
    let environ = std::fs::read(format!("/proc/{reader}/environ")).unwrap();
    assert!(
        environ.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&environ)
    );
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{reader}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"], "nothing but its pipes");
    let oom = std::fs::read_to_string(format!("/proc/{reader}/oom_score_adj")).unwrap();
    assert_eq!(oom.trim(), "1000");
    let limits = std::fs::read_to_string(format!("/proc/{reader}/limits")).unwrap();
    let limit = |name: &str| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| {
                l[name.len()..]
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    assert_eq!(
        limit("Max address space"),
        "402653184 402653184",
        "{limits}"
    );
    assert_eq!(limit("Max cpu time"), "30 30", "{limits}");
    assert_eq!(limit("Max core file size"), "0 0", "{limits}");
    assert!(common::monitor::signal_pid(reader, "CONT"));
    m.wait_for("the sheet read on", Duration::from_secs(30), |v| {
        v["counts"]["working"] == 3 && v["sheet"]["rejected"].is_null()
    });
}
