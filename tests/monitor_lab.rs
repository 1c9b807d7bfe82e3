//! `edgeprobe run` end to end in the namespace lab of `scripts/lab.sh`:
//! the monitor runs in the lab's probe namespace, its dashboard is served
//! on the host's loopback (as in the demo), and the tests change the lab
//! under it: a host goes down and comes back, a router detour changes the
//! path. Needs root (CI is root).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::monitor::{run_args, status_of, RunningMonitor};
use common::Lab;
use serde_json::Value;

/// `edgeprobe run` in the lab's probe namespace on a sheet of `rows`
/// (`ip,name,group`), keeping its sheet and history in `dir`, with the
/// dashboard on the host's loopback. `settings` is flags and values
/// separated by spaces.
fn monitor_on(lab: &Lab, dir: &Path, rows: &[&str], settings: &str) -> RunningMonitor {
    let sheet = dir.join("targets.csv");
    let mut text = String::from("ip,name,group\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    std::fs::write(&sheet, text).unwrap();
    let state = dir.join("state");
    let settings: Vec<&str> = settings.split_whitespace().collect();
    let args = run_args(sheet.to_str().unwrap(), state.to_str().unwrap(), &settings);
    RunningMonitor::start_in_netns(&format!("{}-probe", lab.name), &args)
}

/// Lab `name` up, and [`monitor_on`] it with a new directory, in the order
/// they are to be dropped in reverse.
fn lab_monitor(
    name: &str,
    rows: &[&str],
    settings: &str,
) -> (Lab, tempfile::TempDir, RunningMonitor) {
    let lab = Lab::up(name);
    let dir = tempfile::tempdir().unwrap();
    let m = monitor_on(&lab, dir.path(), rows, settings);
    (lab, dir, m)
}

fn hops(t: &Value) -> Vec<String> {
    common::hop_addrs(t)
}

fn in_lab(lab: &Lab, role: &str, argv: &[&str]) {
    let out = lab
        .command_in(role, argv[0])
        .args(&argv[1..])
        .output()
        .expect("run a command in the lab");
    common::assert_success(&out, &format!("{argv:?} in {role}"));
}

#[test]
fn the_api_reports_status_gateway_and_hops_of_every_host() {
    let (_lab, _dir, m) = lab_monitor(
        "mon1",
        &[
            "198.19.3.10,file server,lan",
            "198.19.3.20,badge reader,lan",
            "198.18.1.1,gateway,core",
            "2001:db8:3::11,printer v6,lan",
            "198.19.200.1,branch,wan",
        ],
        "--interval 3s --timeout 500ms --count 2 --board-id lab-closet",
    );
    let v = m.wait_for("every target's first round", Duration::from_secs(30), |v| {
        v["targets"]
            .as_array()
            .is_some_and(|ts| ts.len() == 5 && ts.iter().all(|t| !t["status"].is_null()))
    });
    assert_eq!(v["board"]["id"], "lab-closet");
    let target = |addr: &str| {
        v["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["addr"] == addr)
            .cloned()
            .unwrap()
    };

    let live = target("198.19.3.10");
    assert_eq!(live["status"], "working", "{live}");
    assert_eq!(live["name"], "file server");
    assert_eq!(live["group"], "lan");
    assert_eq!(live["gateway"], "198.18.1.1");
    assert_eq!(hops(&live), ["198.18.1.1", "198.18.2.2", "198.19.3.10"]);
    assert_eq!(live["reached"], true);
    assert_eq!(live["loss"], 0.0);
    assert!(live["rtt_ms"]["avg"].as_f64().unwrap() >= 0.0);
    assert!(
        live["last_updated"].as_str().unwrap().ends_with('Z'),
        "{live}"
    );

    let silent = target("198.19.3.20");
    assert_eq!(silent["status"], "not_working", "{silent}");
    assert_eq!(silent["reached"], false);
    assert_eq!(silent["gateway"], "198.18.1.1");
    let cause = silent["cause"].as_str().unwrap_or_default();
    assert!(cause.contains("stops after 198.18.2.2"), "{silent}");

    let gateway = target("198.18.1.1");
    assert_eq!(gateway["status"], "working");
    assert_eq!(gateway["gateway"], "direct");

    let v6 = target("2001:db8:3::11");
    assert_eq!(v6["status"], "working", "{v6}");
    assert_eq!(v6["gateway"], "2001:db8:1::1");
    assert_eq!(
        hops(&v6),
        ["2001:db8:1::1", "2001:db8:2::2", "2001:db8:3::11"]
    );

    let unrouted = target("198.19.200.1");
    assert_eq!(unrouted["status"], "not_working", "{unrouted}");
    assert_eq!(unrouted["reached"], false);

    // The same data on the other surfaces.
    let page = m.get("/");
    assert_eq!(page.status, 200);
    let html = page.text();
    for needle in [
        "lab-closet",
        "198.19.3.10",
        "file server",
        "198.18.2.2",
        "Not Working",
    ] {
        assert!(html.contains(needle), "/ lacks {needle}");
    }
    let detail = m.get("/targets/198.19.3.10");
    assert_eq!(detail.status, 200);
    assert!(detail.text().contains("198.18.2.2"));
    let api = m.get("/api/v1/targets/2001%3Adb8%3A3%3A%3A11");
    assert_eq!(api.status, 200, "{}", api.text());
    let metrics = m.get("/metrics").text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("edgeprobe_target_up{")
                && l.contains("198.19.3.20")
                && l.ends_with(" 0")),
        "{metrics}"
    );
    assert_eq!(m.get("/healthz").status, 200);
}

#[test]
fn a_host_that_goes_down_turns_not_working_after_down_after_rounds_and_back() {
    let (lab, _dir, m) = lab_monitor(
        "mon2",
        &["198.19.3.11,printer,lan", "198.19.3.10,files,lan"],
        "--interval 1s --timeout 300ms --count 2 --down-after 3 --up-after 1",
    );
    m.wait_for("the printer working", Duration::from_secs(20), |v| {
        status_of(v, "198.19.3.11").as_deref() == Some("working")
    });
    // All well: the virtual LEDs show the heartbeat, red dark.
    let v = m.wait_for("the heartbeat", Duration::from_secs(10), |v| {
        v["leds"]["green"] == "heartbeat"
    });
    assert_eq!(v["leds"]["red"], "off", "{v:#}");
    assert_eq!(v["led_driver"]["backend"], "virtual");
    let page = m.get("/").text();
    assert!(page.contains("led led-green pat-heartbeat"), "{page}");
    assert!(page.contains("led led-red pat-off"), "{page}");

    // Unplug the printer at the switch: r2's bridge port to it goes down
    // (the host keeps its own routes, so plugging back in is enough).
    in_lab(&lab, "r2", &["ip", "link", "set", "to-h2", "down"]);
    let unplugged_after = m.status()["last_round"]["round"].as_u64().expect("a round");
    let v = m.wait_for("the printer not working", Duration::from_secs(30), |v| {
        status_of(v, "198.19.3.11").as_deref() == Some("not_working")
    });
    // Red with the status, within down_after (3) rounds of the unplug; one
    // more when the round in flight had probed the printer before it.
    assert_eq!(v["leds"]["red"], "on", "{v:#}");
    assert_eq!(v["leds"]["green"], "off", "{v:#}");
    let red_at = v["last_round"]["round"].as_u64().expect("a round");
    assert!(
        red_at - unplugged_after <= 3 + 1,
        "red at round {red_at}, unplugged after round {unplugged_after}"
    );
    let page = m.get("/").text();
    assert!(page.contains("led led-red pat-on"), "{page}");
    assert!(page.contains("led led-green pat-off"), "{page}");
    // The history shows the smoothing: down_after - 1 rounds that failed
    // while the reported status was still Working.
    let detail = m.get("/api/v1/targets/198.19.3.11").json();
    let results = detail["results"].as_array().expect("results");
    let failed_but_working = results
        .iter()
        .filter(|r| r["status"] == "not_working" && r["reported"] == "working")
        .count();
    assert_eq!(failed_but_working, 2, "{detail:#}");
    let events = detail["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "status" && e["from"] == "working" && e["to"] == "not_working"),
        "{detail:#}"
    );
    // The other host was never blamed.
    assert_eq!(m.target("198.19.3.10")["status"], "working");

    in_lab(&lab, "r2", &["ip", "link", "set", "to-h2", "up"]);
    let v = m.wait_for("the printer back", Duration::from_secs(30), |v| {
        status_of(v, "198.19.3.11").as_deref() == Some("working")
    });
    // Back to green.
    assert_eq!(v["leds"]["red"], "off", "{v:#}");
    assert_eq!(v["leds"]["green"], "heartbeat", "{v:#}");
    let page = m.get("/").text();
    assert!(page.contains("led led-green pat-heartbeat"), "{page}");
    let events = m.get("/api/v1/targets/198.19.3.11").json()["events"].clone();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "status" && e["to"] == "working"),
        "{events:#}"
    );
}

#[test]
fn a_path_change_is_recorded_as_an_event() {
    let (lab, _dir, m) = lab_monitor(
        "mon3",
        &["198.19.3.10,files,lan"],
        "--interval 1s --timeout 300ms --trace-every 1s",
    );
    m.wait_for("the first trace", Duration::from_secs(20), |v| {
        v["targets"][0]["hops"]
            .as_array()
            .is_some_and(|h| h.len() == 3)
    });
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab.sh"))
        .args(["detour", &lab.name, "on"])
        .output()
        .unwrap();
    common::assert_success(&out, "lab.sh detour on");
    let v = m.wait_for("the detour in the path", Duration::from_secs(20), |v| {
        hops(&v["targets"][0]).contains(&"198.18.5.2".to_string())
    });
    assert_eq!(
        hops(&v["targets"][0]),
        ["198.18.1.1", "198.18.5.2", "198.18.2.2", "198.19.3.10"]
    );
    let detail = m.get("/api/v1/targets/198.19.3.10").json();
    let path_events: Vec<&Value> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "path")
        .collect();
    assert_eq!(path_events.len(), 1, "{detail:#}");
    assert!(path_events[0]["to"]
        .as_str()
        .unwrap()
        .contains("198.18.5.2"));
    assert!(path_events[0]["from"]
        .as_str()
        .unwrap()
        .contains("198.18.1.1 > 198.18.2.2"));
    assert_eq!(
        v["targets"][0]["status"], "working",
        "a path change is not an outage"
    );
}

#[test]
fn a_dead_board_gateway_is_reported_once_and_blamed_without_a_trace_storm() {
    let (lab, _dir, m) = lab_monitor(
        "mon4",
        &["198.19.3.10,files,lan", "198.19.3.11,printer,lan"],
        "--interval 1s --timeout 300ms --count 2 --down-after 1",
    );
    m.wait_for("both working", Duration::from_secs(20), |v| {
        status_of(v, "198.19.3.10").as_deref() == Some("working")
            && status_of(v, "198.19.3.11").as_deref() == Some("working")
    });

    // r1 (the board's gateway) stops answering and forwarding anything.
    let nft = "add table inet dead; \
               add chain inet dead input { type filter hook input priority 0; policy drop; }; \
               add chain inet dead forward { type filter hook forward priority 0; policy drop; }";
    in_lab(&lab, "r1", &["nft", nft]);
    let v = m.wait_for("the gateway down", Duration::from_secs(30), |v| {
        v["board_gateways"][0]["up"] == false
            && status_of(v, "198.19.3.10").as_deref() == Some("not_working")
            && status_of(v, "198.19.3.11").as_deref() == Some("not_working")
    });
    assert_eq!(v["board_gateways"][0]["addr"], "198.18.1.1");
    assert_eq!(v["leds"]["red"], "fast_blink", "{v:#}");
    for t in v["targets"].as_array().unwrap() {
        let cause = t["cause"].as_str().unwrap_or_default();
        assert!(cause.contains("own gateway 198.18.1.1"), "{t}");
    }
    let traces = |addr: &str| {
        m.get(&format!("/api/v1/targets/{addr}")).json()["traces"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = traces("198.19.3.10");
    let round = v["last_round"]["round"].as_u64().unwrap();
    m.wait_for("three more rounds", Duration::from_secs(20), |v| {
        v["last_round"]["round"]
            .as_u64()
            .is_some_and(|r| r >= round + 3)
    });
    assert_eq!(
        traces("198.19.3.10"),
        before,
        "no traces behind a dead gateway"
    );

    in_lab(&lab, "r1", &["nft", "delete table inet dead"]);
    m.wait_for("everything back", Duration::from_secs(30), |v| {
        v["board_gateways"][0]["up"] == true
            && status_of(v, "198.19.3.10").as_deref() == Some("working")
            && status_of(v, "198.19.3.11").as_deref() == Some("working")
    });
    let log = m.log_once(|l| l.contains("198.18.1.1 answers again"));
    assert_eq!(
        log.matches("198.18.1.1 stopped answering").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("198.18.1.1 answers again").count(), 1, "{log}");
}
