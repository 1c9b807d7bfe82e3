//! Paths behind routers that ration their ICMP answers, as real routers
//! do: the lab of `scripts/lab.sh` keeps the kernel's default limits on
//! every router (one error a second per destination after a burst of six)
//! and limits r2 to one a second in all with nftables. Many hosts three
//! hops away: 198.19.4.0/24 answers (on h1), 198.19.5.0/24 stays silent.
//! No timing assertions: the tests count what the routers were asked
//! (their own /proc/net/snmp) and what the paths show. Needs root.

mod common;

use std::path::Path;
use std::time::Duration;

use common::monitor::{run_args, RunningMonitor};
use common::{hop_addrs, Lab};
use serde_json::Value;

const R1: &str = "198.18.1.1";
const R2: &str = "198.18.2.2";

/// ICMP errors a router was asked for so far: the ones it sent and the
/// ones its kernel held back (the nftables limit drops after sending
/// counts them as sent).
fn errors_asked(lab: &Lab, router: &str) -> u64 {
    let out = lab
        .command_in(router, "cat")
        .arg("/proc/net/snmp")
        .output()
        .expect("read /proc/net/snmp");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut icmp = text.lines().filter(|l| l.starts_with("Icmp: "));
    let (names, values) = (icmp.next().unwrap(), icmp.next().unwrap());
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .filter(|(n, _)| {
            matches!(
                *n,
                "OutTimeExcds" | "OutDestUnreachs" | "OutRateLimitHost" | "OutRateLimitGlobal"
            )
        })
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum()
}

fn sheet(dir: &Path, live: usize, silent: usize) -> String {
    let mut text = String::from("ip\n");
    for i in 1..=live {
        text.push_str(&format!("198.19.4.{i}\n"));
    }
    for i in 1..=silent {
        text.push_str(&format!("198.19.5.{i}\n"));
    }
    let path = dir.join("targets.csv");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn full_path(addrs: &[String], host: &str) -> bool {
    addrs == [R1, R2, host]
}

#[test]
fn one_shot_probe_gets_full_paths_and_asks_the_first_router_once() {
    let lab = Lab::up("rl1");
    let dir = tempfile::tempdir().unwrap();
    let (live, silent) = (60, 10);
    let sheet = sheet(dir.path(), live, silent);
    let r1_before = errors_asked(&lab, "r1");
    let out = lab
        .edgeprobe()
        .args(["probe", "--json", "--count", "1", "--targets", &sheet])
        .output()
        .expect("run edgeprobe");
    let results = common::json(&out);
    let results = results.as_array().unwrap();
    let r1_asked = errors_asked(&lab, "r1") - r1_before;

    let complete = results[..live]
        .iter()
        .filter(|r| full_path(&hop_addrs(r), r["addr"].as_str().unwrap()))
        .count();
    assert!(complete * 100 >= live * 95, "{complete} of {live} complete");
    for r in &results[live..] {
        assert_eq!(hop_addrs(r)[..2], [R1, R2], "silent host: {r}");
    }
    // One trace per subnet asks r1; the others copy it (Doubletree's
    // stop set) and say so.
    assert!(
        r1_asked * 10 <= (live + silent) as u64,
        "r1 was asked {r1_asked} times for {} targets",
        live + silent
    );
    let inferred = results
        .iter()
        .flat_map(|r| r["hops"].as_array().unwrap())
        .filter(|h| h["inferred"] == true)
        .count();
    assert!(inferred >= live, "{inferred} hops inferred");
    // r2's ration (1/s) cannot serve 70 traces within the patience: the
    // run says so, and the JSON lists the hops it held back.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{R2} (hop 2) rations its ICMP answers")),
        "{stderr}"
    );
    let limited: Vec<&Value> = results
        .iter()
        .flat_map(|r| r["limits"].as_array().into_iter().flatten())
        .collect();
    assert!(!limited.is_empty());
    assert!(
        limited.iter().all(|l| l["ttl"] == 2 && l["router"] == R2),
        "{limited:?}"
    );
}

#[test]
fn one_shot_probe_traces_ipv6_behind_the_same_routers() {
    let lab = Lab::up("rl2");
    let hosts: Vec<String> = (1..=20).map(|i| format!("2001:db8:4::{i:x}")).collect();
    let mut args = vec!["probe", "--json", "--count", "1"];
    args.extend(hosts.iter().map(String::as_str));
    let out = lab.edgeprobe().args(&args).output().expect("run edgeprobe");
    let results = common::json(&out);
    for (r, host) in results.as_array().unwrap().iter().zip(&hosts) {
        assert_eq!(
            hop_addrs(r),
            ["2001:db8:1::1", "2001:db8:2::2", host.as_str()],
            "{r}"
        );
    }
}

/// `edgeprobe run` in the lab's probe namespace.
fn monitor(lab: &Lab, dir: &Path, sheet: &str, extra: &[&str]) -> RunningMonitor {
    let state = dir.join("state");
    let mut args = run_args(
        sheet,
        state.to_str().unwrap(),
        &["--count", "2", "--timeout", "500ms"],
    );
    args.extend_from_slice(extra);
    RunningMonitor::start_in_netns(&format!("{}-probe", lab.name), &args)
}

/// Every path-change event of every target in `v`.
fn path_events(m: &RunningMonitor, v: &Value) -> Vec<Value> {
    targets(v)
        .iter()
        .flat_map(|t| {
            let detail = m.get(&format!("/api/v1/targets/{}", t["addr"].as_str().unwrap()));
            detail.json()["events"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|e| e["kind"] == "path")
        .collect()
}

fn targets(v: &Value) -> &Vec<Value> {
    v["targets"].as_array().unwrap()
}

#[test]
fn the_monitor_shows_every_path_and_blames_the_last_router_that_answers() {
    let lab = Lab::up("rl3");
    let dir = tempfile::tempdir().unwrap();
    let (live, silent) = (80, 20);
    let sheet = sheet(dir.path(), live, silent);
    let r1_before = errors_asked(&lab, "r1");
    let m = monitor(
        &lab,
        dir.path(),
        &sheet,
        &["--interval", "3s", "--trace-every", "60s", "--rate", "300"],
    );
    let v = m.wait_for(
        "every live path full and every silent host blamed on r2",
        Duration::from_secs(120),
        |v| {
            let ts = targets(v);
            ts.len() == live + silent
                && ts[..live]
                    .iter()
                    .all(|t| full_path(&hop_addrs(t), t["addr"].as_str().unwrap()))
                && ts[live..].iter().all(|t| {
                    t["status"] == "not_working"
                        && t["cause"]
                            .as_str()
                            .is_some_and(|c| c.contains(&format!("stops after {R2} (hop 2")))
                })
        },
    );
    let first_round = v["last_round"]["round"].as_u64().unwrap();
    let r1_asked = errors_asked(&lab, "r1") - r1_before;
    // Today's trace asks r1 once per target and trace; the stop set asks
    // it once per subnet and cycle, plus the odd retry.
    assert!(
        r1_asked * 10 <= (live + silent) as u64,
        "r1 was asked {r1_asked} times"
    );

    // Steady: a full cycle more, traces asked again, and no path changes.
    m.wait_for("a trace cycle on", Duration::from_secs(120), |v| {
        v["last_round"]["round"]
            .as_u64()
            .is_some_and(|r| r >= first_round + 22)
    });
    let v = m.status();
    let changes = path_events(&m, &v);
    assert!(changes.is_empty(), "{changes:#?}");
    for t in &targets(&v)[..live] {
        assert!(full_path(&hop_addrs(t), t["addr"].as_str().unwrap()), "{t}");
    }
}

#[test]
fn a_router_gone_quiet_stays_on_the_page_with_when_it_was_last_seen() {
    let lab = Lab::up("rl4");
    let dir = tempfile::tempdir().unwrap();
    let sheet = sheet(dir.path(), 4, 2);
    let m = monitor(
        &lab,
        dir.path(),
        &sheet,
        &["--interval", "2s", "--trace-every", "20s"],
    );
    m.wait_for("full paths", Duration::from_secs(60), |v| {
        let ts = targets(v);
        ts.len() == 6
            && ts[..4]
                .iter()
                .all(|t| full_path(&hop_addrs(t), t["addr"].as_str().unwrap()))
    });
    // r2 stops sending any ICMP error (its ration spent by someone else).
    let quiet = "add table inet quiet; \
                 add chain inet quiet out { type filter hook output priority 0; policy accept; }; \
                 add rule inet quiet out icmp type { time-exceeded, destination-unreachable } drop";
    let out = lab.command_in("r2", "nft").arg(quiet).output().unwrap();
    common::assert_success(&out, "nft in r2");
    let v = m.wait_for(
        "r2 kept with when it was last seen",
        Duration::from_secs(90),
        |v| {
            targets(v).iter().all(|t| {
                t["hops"].as_array().is_some_and(|h| {
                    h.len() >= 2 && h[1]["addr"] == R2 && h[1]["last_seen"].is_string()
                })
            })
        },
    );
    for t in &targets(&v)[4..] {
        let cause = t["cause"].as_str().unwrap_or_default();
        assert!(
            cause.contains(&format!("stops after {R2} (hop 2, last seen ")),
            "{t}"
        );
    }
    let page = m.get("/targets/198.19.4.1").text();
    assert!(page.contains("last seen"), "{page}");
    let changes = path_events(&m, &v);
    assert!(changes.is_empty(), "{changes:#?}");
}
