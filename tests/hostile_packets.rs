//! Hostile packets in the namespace lab (scripts/lab.sh): h1 answers every
//! probe also with forged and malformed ICMP (scripts/lib/hostile-icmp.py)
//! and floods replies carrying the board's identifier; h2 floods replies
//! with random identifiers. No result may change and the round must end.
//! h1 also forges errors that quote too little to hold the token, for
//! guessed sequence numbers; and h2's flood shows the kernel's BPF filter
//! keeping it off ping's socket. Needs root.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{hop_addrs, Lab};
use serde_json::Value;

const PROBE: &str = "198.18.1.2";
const R1: &str = "198.18.1.1";
const R2: &str = "198.18.2.2";
const H1: &str = "198.19.3.10";
const H2: &str = "198.19.3.11";
const SILENT: &str = "198.19.3.20";

/// A child process (a hostile host, a stopped probe), killed when dropped.
struct KilledOnDrop(Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hostile(lab: &Lab, role: &str, mode: &str) -> KilledOnDrop {
    hostile_quoting(lab, role, mode, &[])
}

/// `hostile-icmp.py` in `mode`, forging errors about requests to `quoted`.
fn hostile_quoting(lab: &Lab, role: &str, mode: &str, quoted: &[&str]) -> KilledOnDrop {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/hostile-icmp.py");
    let mut child = lab
        .command_in(role, "python3")
        .arg(script)
        .args([PROBE, SILENT, "60", mode])
        .args(quoted)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start hostile-icmp.py");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    // Owned before the wait, so a failed start still kills the process.
    let hostile = KilledOnDrop(child);
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert_eq!(line.trim(), "ready", "hostile-icmp.py did not start");
    hostile
}

/// Run `cmd` to the end, failing the test (not hanging it) if it has not
/// ended after `limit`: a stall detector, far above any normal run.
fn output_within(mut cmd: Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start edgeprobe");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("edgeprobe stalled under hostile packets: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// The probe namespace's ICMP input counters (`/proc/net/snmp`), to show
/// that the hostile packets did arrive.
fn icmp_in(lab: &Lab) -> std::collections::HashMap<String, u64> {
    let out = lab
        .command_in("probe", "cat")
        .arg("/proc/net/snmp")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("Icmp: ")).collect();
    let names = rows[0].split_whitespace().skip(1);
    let values = rows[1].split_whitespace().skip(1);
    names
        .zip(values)
        .map(|(n, v)| (n.to_string(), v.parse().unwrap_or(0)))
        .collect()
}

/// `edgeprobe probe --json` of the three targets, 5 requests of 1 s each
/// at `rate` packets a second, within `limit`; and how many ICMP messages
/// of each kind the board's namespace received meanwhile.
fn probe_the_three(
    lab: &Lab,
    rate: &str,
    limit: Duration,
) -> (std::process::Output, std::collections::HashMap<String, u64>) {
    let before = icmp_in(lab);
    let mut cmd = lab.edgeprobe();
    cmd.args(["probe", "--json", "--count", "5", "--timeout", "1000"])
        .args(["--rate", rate])
        .args([H1, SILENT, H2]);
    let out = output_within(cmd, limit);
    let after = icmp_in(lab);
    let arrived = after
        .iter()
        .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0)))
        .collect();
    (out, arrived)
}

#[test]
fn forged_malformed_and_flooding_icmp_change_no_result_and_stall_nothing() {
    let lab = Lab::up("hpk");
    let _answering = hostile(&lab, "h1", "answer");
    let _flooding = hostile(&lab, "h2", "flood");

    let (out, counts) = probe_the_three(&lab, "0", Duration::from_secs(60));
    let arrived = |k: &str| counts[k];
    // 10 honest echo replies, and hundreds of forged ones; the forged
    // errors (the honest run has none: h1 and h2 answer, silent is silent,
    // and the routers' Time Exceeded are a few).
    assert!(arrived("InEchoReps") > 1000, "{}", arrived("InEchoReps"));
    assert!(
        arrived("InDestUnreachs") > 100,
        "{}",
        arrived("InDestUnreachs")
    );
    assert!(arrived("InTimeExcds") > 10, "{}", arrived("InTimeExcds"));
    let results = common::json(&out);
    let results = results.as_array().expect("a JSON array");
    assert_eq!(results.len(), 3);
    let by_addr = |a: &str| -> &Value { results.iter().find(|r| r["addr"] == a).unwrap() };

    for live in [H1, H2] {
        let r = by_addr(live);
        assert_eq!(r["status"], "working", "{r:#}");
        assert_eq!(r["sent"], 5, "{r:#}");
        assert_eq!(r["received"], 5, "no forged reply counted: {r:#}");
        assert_eq!(hop_addrs(r), [R1, R2, live], "{r:#}");
        assert_eq!(r["reached"], true);
    }
    // Replies forged from the silent host's address, and errors quoting
    // requests to it, answer nothing.
    let s = by_addr(SILENT);
    assert_eq!(s["status"], "not_working", "{s:#}");
    assert_eq!(s["received"], 0, "{s:#}");
    assert_eq!(s["reached"], false, "{s:#}");
    assert_eq!(hop_addrs(s), [R1, R2], "{s:#}");
}

/// A blind forger on the LAN (h1) sees the board's requests to itself and
/// guesses the ids of the others from them: for every sequence number
/// near each one it sees (S-8 to S+8) it sends a destination unreachable
/// and a time exceeded quoting only 8 bytes of an echo request to each
/// target, too little to hold the token. Paced at 20 packets a second,
/// the board's requests wait for their slot long enough for the forgeries
/// to arrive first. No status, path or note may change.
#[test]
fn short_quoted_errors_with_guessed_sequences_change_no_result() {
    let lab = Lab::up("hpks");
    let _forging = hostile_quoting(&lab, "h1", "short", &[H1, H2, SILENT]);

    let (out, counts) = probe_the_three(&lab, "20", Duration::from_secs(90));
    let arrived = |k: &str| counts[k];
    // 17 sequences x 3 targets of each kind, for each of the (at least
    // five) requests h1 saw.
    assert!(
        arrived("InDestUnreachs") >= 5 * 17 * 3,
        "{}",
        arrived("InDestUnreachs")
    );
    assert!(
        arrived("InTimeExcds") >= 5 * 17 * 3,
        "{}",
        arrived("InTimeExcds")
    );
    let results = common::json(&out);
    let results = results.as_array().expect("a JSON array");
    assert_eq!(results.len(), 3);
    let by_addr = |a: &str| -> &Value { results.iter().find(|r| r["addr"] == a).unwrap() };

    for live in [H1, H2] {
        let r = by_addr(live);
        assert_eq!(r["status"], "working", "{r:#}");
        assert_eq!(r["received"], 5, "no forged error settled a request: {r:#}");
        assert_eq!(hop_addrs(r), [R1, R2, live], "no hop invented: {r:#}");
        assert_eq!(r["reached"], true, "{r:#}");
        assert!(r.get("notes").is_none(), "{r:#}");
    }
    let s = by_addr(SILENT);
    assert_eq!(s["status"], "not_working", "{s:#}");
    assert_eq!(hop_addrs(s), [R1, R2], "no hop invented: {s:#}");
    assert!(
        s.get("notes").is_none(),
        "no forged unreachable believed: {s:#}"
    );
}

/// Bytes waiting in the receive queue of each IPv4 raw socket of process
/// `pid` (`/proc/PID/net/raw` is its namespace's; its descriptors say
/// which sockets are its own).
fn raw_receive_queues(pid: u32) -> Vec<u64> {
    let own: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the probe's descriptors")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(
                link.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/raw")).expect("read net/raw");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let queues = fields.get(4)?;
            let inode = fields.get(9)?;
            own.contains(*inode).then(|| {
                let rx = queues.split(':').nth(1).unwrap_or("0");
                u64::from_str_radix(rx, 16).unwrap_or(0)
            })
        })
        .collect()
}

/// SECURITY.md says the kernel's BPF filter drops echo replies with other
/// identifiers before they reach ping's socket. The real `edgeprobe probe`
/// is stopped (SIGSTOP) while it waits on the silent host, so its sockets
/// keep what the kernel queues; h2 then floods echo replies with random
/// identifiers. Traceroute's receiving socket must hold them, ping's must
/// not: without the filter both hold the same.
#[test]
fn the_kernel_drops_other_identifiers_before_pings_socket_sees_them() {
    let lab = Lab::up("hbpf");
    let mut cmd = lab.edgeprobe();
    cmd.args(["probe", "--json", "--count", "1", "--timeout", "60000"])
        .arg(SILENT)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let probe = KilledOnDrop(cmd.spawn().expect("start edgeprobe"));
    let pid = probe.0.id();
    // Ping's receiving and sending sockets, traceroute's likewise.
    let sockets = common::eventually(Duration::from_secs(20), Duration::from_millis(50), || {
        let queues = raw_receive_queues(pid);
        (queues.len() >= 4).then_some(queues.len())
    })
    .expect("edgeprobe never opened its four IPv4 raw sockets");
    let stop = Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(stop.success(), "kill -STOP {pid}");

    let before = icmp_in(&lab);
    let _flooding = hostile(&lab, "h2", "flood");
    common::eventually(Duration::from_secs(30), Duration::from_millis(50), || {
        (icmp_in(&lab)["InEchoReps"] - before["InEchoReps"] >= 2000).then_some(())
    })
    .expect("the flood of echo replies never arrived");
    let mut queues = raw_receive_queues(pid);
    assert_eq!(queues.len(), sockets, "{queues:?}");
    queues.sort_unstable();
    let (fullest, others) = queues.split_last().unwrap();
    // A random identifier is ping's once in 65,536: a packet or so.
    assert!(
        *fullest > 100_000,
        "traceroute's socket holds the flood: {queues:?}"
    );
    assert!(
        others.iter().all(|q| q * 100 < *fullest),
        "ping's socket must hold (almost) none of it: {queues:?}"
    );
}
