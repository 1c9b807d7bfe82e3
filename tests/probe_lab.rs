//! `edgeprobe probe` against real hosts in network namespaces built by
//! `scripts/lab.sh`: a chain probe -> r1 -> r2 -> {h1, h2, silent}, and a
//! net that r1 has no route for. Needs root (CI is root).

mod common;

use common::{hop_addrs, parse_traceroute, Lab};
use serde_json::Value;

fn probe_json(lab: &Lab, args: &[&str]) -> Vec<Value> {
    probe_json_count(lab, 3, args)
}

fn probe_json_count(lab: &Lab, count: u32, args: &[&str]) -> Vec<Value> {
    let out = lab
        .edgeprobe()
        .args(["probe", "--json", "--timeout", "1000", "--rate", "0"])
        .args(["--count", &count.to_string()])
        .args(args)
        .output()
        .expect("run edgeprobe");
    let v = common::json(&out);
    v.as_array().expect("a JSON array").clone()
}

/// The classic tool's path. The lab's routers ration their ICMP answers
/// (about one a second after a burst), and the probes just before have
/// spent some: a router hop that comes back `*` is asked again after the
/// ration has refilled, as an admin would run traceroute again.
fn traceroute(lab: &Lab, six: bool, dst: &str) -> Vec<String> {
    let mut hops = Vec::new();
    for attempt in 0..4 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_secs(3));
        }
        let mut cmd = lab.command_in("probe", "traceroute");
        if six {
            cmd.arg("-6");
        }
        let out = cmd
            .args(["-I", "-n", "-q", "1", "-w", "1", "-m", "6", dst])
            .output()
            .expect("run traceroute (apt-get install traceroute)");
        hops = parse_traceroute(&String::from_utf8_lossy(&out.stdout));
        if hops.iter().take(2).all(|h| h != "*") {
            break;
        }
    }
    hops
}

/// The checks shared by both families. `a` is the address plan of one
/// family: r1 facing the probe, r2 facing r1, live host, silent host,
/// unrouted address.
fn assert_lab_paths(lab: &Lab, six: bool, a: [&str; 5]) {
    let [r1, r2, live, silent, unrouted] = a;
    // Probed first and on its own: Linux routers share one token bucket
    // per sender between Time Exceeded and Net Unreachable, so r1's answers
    // to the other traces would starve its !N replies for a second.
    let unrouted_r = &probe_json_count(lab, 1, &[unrouted])[0];
    assert_eq!(unrouted_r["status"], "not_working", "{unrouted_r:#}");
    assert_eq!(unrouted_r["reached"], false);
    assert_eq!(hop_addrs(unrouted_r), [r1], "r1 says unreachable");
    assert_eq!(unrouted_r["gateway"], r1, "the probe host routes it to r1");
    let notes = unrouted_r["notes"].to_string();
    assert!(
        notes.contains("unreachable") || notes.contains("no route"),
        "{notes}"
    );

    let results = probe_json(lab, &[live, silent]);
    assert_eq!(results.len(), 2);

    let live_r = &results[0];
    assert_eq!(live_r["addr"], live);
    assert_eq!(live_r["status"], "working", "{live_r:#}");
    assert_eq!(live_r["sent"], 3);
    assert_eq!(live_r["received"], 3);
    assert_eq!(live_r["loss"], 0.0);
    assert!(live_r["rtt_ms"]["avg"].as_f64().unwrap() > 0.0);
    assert_eq!(live_r["gateway"], r1);
    assert_eq!(hop_addrs(live_r), [r1, r2, live]);
    assert_eq!(live_r["hops"][2]["ttl"], 3);
    assert!(live_r["hops"][0]["rtt_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(live_r["reached"], true);
    // The same path the classic tool prints in the same namespace.
    assert_eq!(hop_addrs(live_r), traceroute(lab, six, live));

    let silent_r = &results[1];
    assert_eq!(silent_r["status"], "not_working", "{silent_r:#}");
    assert_eq!(silent_r["received"], 0);
    assert_eq!(silent_r["rtt_ms"], Value::Null);
    assert_eq!(silent_r["reached"], false);
    assert_eq!(hop_addrs(silent_r), [r1, r2], "the path stops after r2");
    let classic = traceroute(lab, six, silent);
    assert_eq!(classic[..2], [r1, r2]);
    assert!(classic[2..].iter().all(|h| h == "*"));
}

#[test]
fn ipv4_paths_gateway_and_status_in_the_lab() {
    let lab = Lab::up("pv4");
    assert_lab_paths(
        &lab,
        false,
        [
            "198.18.1.1",
            "198.18.2.2",
            "198.19.3.10",
            "198.19.3.20",
            "198.19.200.1",
        ],
    );
}

#[test]
fn ipv6_paths_gateway_and_status_in_the_lab() {
    let lab = Lab::up("pv6");
    assert_lab_paths(
        &lab,
        true,
        [
            "2001:db8:1::1",
            "2001:db8:2::2",
            "2001:db8:3::10",
            "2001:db8:3::20",
            "2001:db8:c8::1",
        ],
    );
}

#[test]
fn on_link_router_is_direct_one_hop() {
    let lab = Lab::up("pdir");
    let results = probe_json(&lab, &["198.18.1.1", "2001:db8:1::1"]);
    for r in &results {
        assert_eq!(r["status"], "working", "{r:#}");
        assert_eq!(r["gateway"], "direct");
        assert_eq!(hop_addrs(r), [r["addr"].as_str().unwrap()]);
    }
}

#[test]
fn many_traces_share_the_sockets_without_mixing_answers() {
    let lab = Lab::up("pmix");
    // The same hosts many times over, interleaved: every answer must land
    // in its own trace.
    let mut args = Vec::new();
    for _ in 0..20 {
        args.extend([
            "198.19.3.10",
            "198.19.3.11",
            "2001:db8:3::10",
            "198.19.3.20",
        ]);
    }
    let results = probe_json(&lab, &args);
    assert_eq!(results.len(), 80);
    for r in &results {
        let addr = r["addr"].as_str().unwrap();
        if addr == "198.19.3.20" {
            assert_eq!(hop_addrs(r), ["198.18.1.1", "198.18.2.2"], "{r:#}");
            assert_eq!(r["status"], "not_working");
        } else if addr.contains(':') {
            assert_eq!(
                hop_addrs(r),
                ["2001:db8:1::1", "2001:db8:2::2", addr],
                "{r:#}"
            );
        } else {
            assert_eq!(hop_addrs(r), ["198.18.1.1", "198.18.2.2", addr], "{r:#}");
            assert_eq!(r["status"], "working");
        }
    }
}

#[test]
fn table_output_shows_the_seed_columns() {
    let lab = Lab::up("ptab");
    let out = lab
        .edgeprobe()
        .args([
            "probe",
            "--count",
            "1",
            "--rate",
            "0",
            "198.19.3.10",
            "198.19.3.20",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "one target is down:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    for col in ["IP", "Status", "Default Gateway", "Routers", "Reachable"] {
        assert!(lines[0].contains(col), "{text}");
    }
    assert!(lines[1].contains("198.19.3.10") && lines[1].contains("Working"));
    assert!(lines[1].contains("198.18.1.1 > 198.18.2.2"));
    assert!(lines[2].contains("Not Working") && lines[2].contains("Unreachable"));
}

#[test]
fn options_max_hops_no_trace_and_targets_with_addresses() {
    let lab = Lab::up("popt");
    // --max-hops 1: only r1 is seen, and the host 3 hops away is not
    // reached by the trace (ping still reaches it).
    let r = &probe_json(&lab, &["--max-hops", "1", "198.19.3.10"])[0];
    assert_eq!(hop_addrs(r), ["198.18.1.1"]);
    assert_eq!(r["status"], "working");

    // --no-trace: no hops, and Reachable comes from ping.
    let v = probe_json(&lab, &["--no-trace", "198.19.3.10", "198.19.3.20"]);
    assert_eq!(v[0]["hops"], serde_json::json!([]));
    assert_eq!(v[0]["reached"], true);
    assert_eq!(v[1]["reached"], false);
    assert_eq!(v[0]["gateway"], "198.18.1.1");

    // A sheet and addresses together: the addresses first, then the sheet.
    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("closet.csv");
    std::fs::write(&sheet, "name,ip\nh2,198.19.3.11\nr2,198.18.2.2\n").unwrap();
    let v = probe_json(
        &lab,
        &[
            "--no-trace",
            "--targets",
            sheet.to_str().unwrap(),
            "198.19.3.10",
        ],
    );
    let addrs: Vec<&str> = v.iter().map(|r| r["addr"].as_str().unwrap()).collect();
    assert_eq!(addrs, ["198.19.3.10", "198.19.3.11", "198.18.2.2"]);
    assert!(v.iter().all(|r| r["status"] == "working"));
}
