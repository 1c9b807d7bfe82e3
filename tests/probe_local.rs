//! `edgeprobe probe` on loopback: a large sweep in one round, and the
//! privilege paths (root, CAP_NET_RAW only, unprivileged ICMP sockets,
//! nothing). Needs root to create namespaces and drop privileges.

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::{edgeprobe, hop_addrs, require_root, Netns};
use serde_json::Value;

#[test]
fn loopback_sweep_of_1000_addresses_all_working_in_one_round() {
    require_root();
    let ns = Netns::new("epsweep");
    let mut sheet = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    writeln!(sheet, "ip,name").unwrap();
    for i in 0..1000u32 {
        writeln!(sheet, "127.1.{}.{},t{i}", i / 256, i % 256).unwrap();
    }
    sheet.flush().unwrap();
    let path = sheet.path().to_str().unwrap();
    let out = ns.edgeprobe(&[
        "probe",
        "--targets",
        path,
        "--json",
        "--count",
        "2",
        "--timeout",
        "2000",
        "--rate",
        "0",
    ]);
    let results = common::json(&out);
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 1000);
    let not_working: Vec<&Value> = results
        .iter()
        .filter(|r| r["status"] != "working")
        .collect();
    assert!(
        not_working.is_empty(),
        "not working: {:#?}",
        &not_working[..not_working.len().min(3)]
    );
    for r in results {
        assert_eq!(r["received"], 2);
        assert_eq!(r["gateway"], "direct");
        // Loopback is its own first hop, and traceroute stops there.
        assert_eq!(hop_addrs(r), [r["addr"].as_str().unwrap()]);
    }
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn ipv6_loopback_is_working() {
    require_root();
    let ns = Netns::new("epv6lo");
    let out = ns.edgeprobe(&["probe", "--json", "--rate", "0", "::1"]);
    let r = &common::json(&out)[0];
    assert_eq!(r["status"], "working", "{r:#}");
    assert_eq!(hop_addrs(r), ["::1"]);
}

fn run_as(ns: &Netns, caps: &str, args: &[&str]) -> std::process::Output {
    let mut argv = common::as_nobody_with(caps);
    argv.extend(args.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    ns.run(&argv)
}

#[test]
fn cap_net_raw_alone_is_enough_for_ping_and_traceroute() {
    require_root();
    let ns = Netns::new("epcap");
    ns.set_ping_group_range("1 0");
    let out = run_as(
        &ns,
        "net_raw",
        &["probe", "--json", "--rate", "0", "127.0.0.1"],
    );
    let r = &common::json(&out)[0];
    assert_eq!(r["status"], "working", "{r:#}");
    assert_eq!(hop_addrs(r), ["127.0.0.1"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).trim().is_empty(),
        "no warnings expected"
    );
}

#[test]
fn without_cap_net_raw_ping_falls_back_and_traceroute_says_how_to_fix() {
    require_root();
    let ns = Netns::new("epdgram");
    ns.set_ping_group_range("0 2147483647");
    let out = run_as(&ns, "", &["probe", "--json", "--rate", "0", "127.0.0.1"]);
    let r = &common::json(&out)[0];
    assert_eq!(
        r["status"], "working",
        "ping through an ICMP datagram socket: {r:#}"
    );
    assert_eq!(r["hops"], serde_json::json!([]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CAP_NET_RAW"), "{stderr}");
    assert!(stderr.contains("setcap cap_net_raw+ep"), "{stderr}");
    assert!(
        !stderr.to_lowercase().contains("permission denied"),
        "{stderr}"
    );

    // --no-trace does not warn about traceroute.
    let out = run_as(
        &ns,
        "",
        &["probe", "--no-trace", "--rate", "0", "127.0.0.1"],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).trim().is_empty());
}

#[test]
fn without_any_icmp_permission_the_message_gives_both_fixes() {
    require_root();
    let ns = Netns::new("epnone");
    ns.set_ping_group_range("1 0");
    let out = run_as(&ns, "", &["probe", "--no-trace", "--json", "127.0.0.1"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "nothing can be pinged: unusable"
    );
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("setcap cap_net_raw+ep"), "{stderr}");
    assert!(stderr.contains("net.ipv4.ping_group_range"), "{stderr}");
    assert!(
        !stderr.contains("net.ipv6.ping_group_range"),
        "no such sysctl: {stderr}"
    );
    assert!(
        !stderr.to_lowercase().contains("permission denied"),
        "{stderr}"
    );
}

#[test]
fn the_pacer_holds_ping_and_traceroute_to_the_set_rate() {
    require_root();
    let ns = Netns::new("eppace");
    let addrs: Vec<String> = (1..=10).map(|i| format!("127.3.0.{i}")).collect();
    let mut args = vec!["probe", "--json", "--count", "2", "--rate", "50"];
    args.extend(addrs.iter().map(String::as_str));
    let started = std::time::Instant::now();
    let out = ns.edgeprobe(&args);
    let elapsed = started.elapsed();
    let results = common::json(&out);
    assert!(results
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "working"));
    // 20 echo requests + 10 first-hop trace probes at 50/s: 29 gaps of
    // 20 ms at the least. Only a lower bound: pacing must never be faster
    // than the rate; how much slower a busy machine is says nothing.
    assert!(
        elapsed >= std::time::Duration::from_millis(29 * 20),
        "30 packets at 50/s took only {elapsed:?}"
    );
}

#[test]
fn nothing_to_probe_is_a_usage_error() {
    let out = edgeprobe().arg("probe").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--targets"));
    let out = edgeprobe().args(["probe", "127.0.0.300"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("127.0.0.300"));
}

#[test]
fn host_names_are_resolved_and_a_bad_name_is_a_result_not_a_crash() {
    require_root();
    // A namespace with only loopback: a name lookup can reach /etc/hosts
    // and nothing outside this machine.
    let ns = Netns::new("epname");
    let out = ns.edgeprobe(&[
        "probe",
        "--json",
        "--rate",
        "0",
        "--timeout",
        "500",
        "localhost",
        "no-such-host.invalid",
    ]);
    let v = common::json(&out);
    let local = &v[0];
    assert_eq!(local["addr"], "localhost");
    let resolved: std::net::IpAddr = local["resolved"].as_str().unwrap().parse().unwrap();
    assert!(resolved.is_loopback(), "{local:#}");
    assert_eq!(local["status"], "working");
    let bad = &v[1];
    assert_eq!(bad["status"], "not_working");
    assert!(
        bad["notes"][0].as_str().unwrap().contains("cannot resolve"),
        "{bad:#}"
    );
    assert_eq!(out.status.code(), Some(1));
}

/// The kernel sorts echo replies by identifier before they wake a socket:
/// ping's receiving socket keeps only ping's, traceroute's drops ping's.
#[tokio::test]
async fn echo_reply_filters_sort_replies_by_identifier_in_the_kernel() {
    use edgeprobe::probe::sys::{open_raw_sender, EchoReplies, Family, IcmpSocket};
    use edgeprobe::probe::wire::{self, ProbeId, ReplyKind};
    use std::time::Duration;

    require_root();
    const PING: u16 = 0x5eed;
    const TRACE: u16 = 0x7ace;
    let only = IcmpSocket::open_raw(Family::V4).unwrap();
    only.filter_echo_replies(EchoReplies::Only(PING));
    let except = IcmpSocket::open_raw(Family::V4).unwrap();
    except.filter_echo_replies(EchoReplies::Except(PING));
    let sender = open_raw_sender(Family::V4).unwrap();
    let to = socket2::SockAddr::from(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    for ident in [PING, TRACE, PING, TRACE] {
        let packet = wire::emit_echo_v4(ProbeId { ident, seq: 1 }, b"filter test");
        sender.send_to(&packet, &to).unwrap();
    }
    // The identifiers of the echo replies a socket got within half a
    // second (ours only: another program may be pinging meanwhile).
    async fn idents(socket: &IcmpSocket) -> Vec<u16> {
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 2048];
        while let Ok(Ok((len, _, _))) =
            tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buf)).await
        {
            if let Ok(Some(r)) = wire::parse_v4(&buf[..len]) {
                if r.kind == ReplyKind::EchoReply && [PING, TRACE].contains(&r.probe.ident) {
                    seen.push(r.probe.ident);
                }
            }
        }
        seen
    }
    assert_eq!(idents(&only).await, [PING, PING]);
    assert_eq!(idents(&except).await, [TRACE, TRACE]);
}

/// A reply is timed by its arrival, as the kernel stamped it, not by when
/// a busy thread got round to reading it: the RTTs of a large sweep on
/// one thread depend on this.
#[tokio::test]
async fn a_reply_read_late_is_timed_by_its_arrival() {
    use edgeprobe::probe::sys::{open_raw_sender, EchoReplies, Family, IcmpSocket};
    use edgeprobe::probe::wire::{self, ProbeId, ReplyKind};
    use std::time::Instant;

    require_root();
    const IDENT: u16 = 0x1a7e;
    let socket = IcmpSocket::open_raw(Family::V4).unwrap();
    socket.filter_echo_replies(EchoReplies::Only(IDENT));
    let sender = open_raw_sender(Family::V4).unwrap();
    let to = socket2::SockAddr::from(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let packet = wire::emit_echo_v4(
        ProbeId {
            ident: IDENT,
            seq: 9,
        },
        b"stamp test",
    );
    // The kernel turns receive stamps on for the machine in deferred work
    // after the first socket asks; until then a datagram is stamped when
    // it is read. Give it a moment, as a first round's start-up does.
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    sender.send_to(&packet, &to).unwrap();
    // On loopback the reply is queued before send_to returns; this thread
    // is "busy" for 300 ms before it reads.
    std::thread::sleep(Duration::from_millis(300));
    let mut buf = vec![0u8; 2048];
    loop {
        let (len, _, at) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
            .await
            .expect("the echo reply came back")
            .unwrap();
        let Ok(Some(r)) = wire::parse_v4(&buf[..len]) else {
            continue;
        };
        if r.kind != ReplyKind::EchoReply || r.probe.ident != IDENT {
            continue;
        }
        let rtt = at.saturating_duration_since(sent);
        assert!(
            rtt < Duration::from_millis(100),
            "timed at {rtt:?} after sending: the time of reading, not of arrival"
        );
        return;
    }
}

/// A sheet longer than the row limit is refused with the way out, and
/// `--sheet-max-rows` is that way for a one-shot probe.
#[test]
fn a_longer_sheet_is_probed_with_a_raised_row_limit() {
    require_root();
    let ns = Netns::new("eprows");
    let mut sheet = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    writeln!(sheet, "ip").unwrap();
    for i in 1..=5u32 {
        writeln!(sheet, "127.0.0.{i}").unwrap();
    }
    sheet.flush().unwrap();
    let path = sheet.path().to_str().unwrap();
    let probe = |rows: &str| {
        ns.edgeprobe(&[
            "probe",
            "--targets",
            path,
            "--sheet-max-rows",
            rows,
            "--json",
            "--count",
            "1",
            "--no-trace",
            "--rate",
            "0",
        ])
    };
    let refused = probe("5");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("more than the limit of 5 rows"), "{err}");
    let probed = probe("6");
    assert_eq!(common::json(&probed).as_array().unwrap().len(), 5);
    assert_eq!(probed.status.code(), Some(0));
}

/// A namespace whose resolver is `scripts/lib/slow-dns.py` on its own
/// loopback (`ip netns exec` mounts `/etc/netns/NAME/resolv.conf` over
/// `/etc/resolv.conf`), holding each query `hold` seconds.
struct SlowDns {
    server: std::process::Child,
    report: tempfile::NamedTempFile,
    ns: Netns,
}

impl SlowDns {
    fn start(name: &str, hold: &str) -> SlowDns {
        let ns = Netns::new(name);
        let conf = std::path::Path::new("/etc/netns").join(name);
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("resolv.conf"),
            "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n",
        )
        .unwrap();
        let report = tempfile::NamedTempFile::new().unwrap();
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/slow-dns.py");
        let mut server = std::process::Command::new("ip")
            .args(["netns", "exec", name, "python3"])
            .arg(script)
            .args(["127.0.0.1", hold])
            .arg(report.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start slow-dns.py");
        let mut line = String::new();
        let stdout = server.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        assert_eq!(line.trim(), "ready", "slow-dns.py did not start");
        SlowDns { server, report, ns }
    }

    /// What the server saw: the most names waiting at once, and the A
    /// queries of each name.
    fn report(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.report.path()).unwrap()).unwrap()
    }
}

impl Drop for SlowDns {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(std::path::Path::new("/etc/netns").join(&self.ns.name));
    }
}

/// Name lookups block a thread each (getaddrinfo) on the pool the store's
/// writes use too: at most four run at once, however many names the
/// targets have and however slow the resolver is.
#[test]
fn host_names_are_looked_up_four_at_a_time() {
    require_root();
    let dns = SlowDns::start("epdns", "0.3");
    let names: Vec<String> = (1..=12).map(|n| format!("t{n}.test")).collect();
    let mut args = vec![
        "probe",
        "--json",
        "--rate",
        "0",
        "--timeout",
        "500",
        "--no-trace",
    ];
    args.extend(names.iter().map(String::as_str));
    let out = dns.ns.edgeprobe(&args);
    let v = common::json(&out);
    for (n, r) in (1..=12).zip(v.as_array().unwrap()) {
        assert_eq!(r["resolved"], format!("127.0.0.{n}"), "{r:#}");
        assert_eq!(r["status"], "working", "{r:#}");
    }
    let seen = dns.report();
    let most = seen["most_waiting"].as_u64().unwrap();
    assert!(
        (1..=4).contains(&most),
        "{most} names looked up at once: {seen}"
    );
}

/// The monitor asks the resolver again only when an answer has expired:
/// an address is kept a minute, a failure (NXDOMAIN here) ten seconds,
/// so over rounds a second apart each name is asked far fewer times than
/// there are rounds.
#[test]
fn the_monitor_keeps_answers_and_asks_a_failed_name_again_sooner() {
    use common::monitor::{quick_args, RunningMonitor};
    require_root();
    let dns = SlowDns::start("epdnsc", "0");
    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("targets.csv");
    std::fs::write(
        &sheet,
        "ip,name,group\nt1.test,found,lab\nnothing.test,not found,lab\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let args = quick_args(sheet.to_str().unwrap(), state.to_str().unwrap(), &[]);
    let m = RunningMonitor::start_in_netns(&dns.ns.name, &args);
    let rounds = 5;
    let v = m.wait_for("five rounds", Duration::from_secs(60), |v| {
        v["last_round"]["round"].as_u64() >= Some(rounds)
    });
    let seen = dns.report();
    let asked = |name: &str| seen["queries"][name].as_u64().unwrap_or(0);
    assert_eq!(asked("t1.test"), 1, "kept a minute: {seen}\n{v:#}");
    let failed = asked("nothing.test");
    assert!(
        (1..rounds).contains(&failed),
        "a failure is kept too, for less time: asked {failed} times in {rounds} rounds: {seen}"
    );
}
