//! `edgeprobe probe`: a one-shot ping + traceroute of addresses given on the
//! command line and/or a whole targets sheet, printed as the dashboard's
//! table or as JSON.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures::stream::{self, StreamExt};

use crate::probe::{
    self, stats::DEFAULT_DEGRADED_LOSS, LiveProbe, PingOptions, ProbeResult, Prober, ResolveError,
    Resolver, RouteTable, Status, TraceOptions, TraceWhen,
};
use crate::targets::{self, TargetAddr};

use super::{exit, table};

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Addresses or host names to probe.
    #[arg(value_name = "ADDR")]
    addrs: Vec<String>,
    /// Also probe every target of this sheet (.xlsx, .xls, .ods, .csv).
    #[arg(long, value_name = "FILE")]
    targets: Option<PathBuf>,
    /// Sheet of --targets to read (default: the first visible sheet).
    #[arg(long, value_name = "NAME", requires = "targets")]
    sheet: Option<String>,
    /// Most rows --targets may span, the header included: the monitor's
    /// `limits.sheet_max_rows`, for a one-shot probe of a longer list.
    #[arg(long, value_name = "ROWS", requires = "targets",
          default_value_t = targets::SheetLimits::default().max_rows,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    sheet_max_rows: u32,
    /// Echo requests per target.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    count: u32,
    /// How long to wait for each reply, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    timeout: u64,
    /// Highest TTL traceroute probes.
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u8).range(1..=64))]
    max_hops: u8,
    /// Global send rate in packets per second, for ping and traceroute
    /// together (0 = unpaced; mind the IDS).
    #[arg(long, value_name = "PPS", default_value_t = 100)]
    rate: u32,
    /// Loss fraction (0..1) at or over which an answering target is Degraded.
    #[arg(long, value_name = "FRACTION", default_value_t = DEFAULT_DEGRADED_LOSS, value_parser = parse_fraction)]
    degraded_loss: f64,
    /// How long a trace may wait for a router that rations its ICMP
    /// answers (about one a second); hops it cannot ask in time are
    /// filled from the paths of their neighbours, marked inferred.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_patience)]
    patience: Duration,
    /// Ping only; skip traceroute.
    #[arg(long)]
    no_trace: bool,
    /// Print one JSON array of results instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_patience(s: &str) -> Result<Duration, String> {
    let d = crate::config::parse_duration(s)?;
    if d > Duration::from_secs(3600) {
        return Err(format!(
            "{s:?} is more than an hour; a one-shot probe waits less (e.g. 30s)"
        ));
    }
    Ok(d)
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!(
            "{s:?} is not a fraction between 0 and 1 (e.g. 0.2)"
        )),
    }
}

pub fn run(args: &ProbeArgs) -> u8 {
    let mut wanted: Vec<(String, TargetAddr)> = Vec::new();
    for a in &args.addrs {
        match targets::parse_address(a) {
            Ok(addr) => wanted.push((a.clone(), addr)),
            Err(why) => {
                eprintln!("edgeprobe: {why}");
                return exit::UNUSABLE;
            }
        }
    }
    if let Some(path) = &args.targets {
        let limits = targets::SheetLimits {
            max_rows: args.sheet_max_rows,
            ..targets::SheetLimits::default()
        };
        match targets::Loader::isolated(limits).load(path, args.sheet.as_deref()) {
            Ok(list) => {
                for p in &list.problems {
                    eprintln!("warning: {p}");
                }
                wanted.extend(
                    list.targets
                        .into_iter()
                        .map(|t| (t.addr.to_string(), t.addr)),
                );
            }
            Err(e) => {
                eprintln!("edgeprobe: {e}");
                return exit::UNUSABLE;
            }
        }
    }
    if wanted.is_empty() {
        eprintln!("edgeprobe: nothing to probe; give addresses (e.g. `edgeprobe probe 127.0.0.1`) or --targets FILE");
        return exit::UNUSABLE;
    }
    let Some(runtime) = super::one_thread_runtime() else {
        return exit::UNUSABLE;
    };
    let results = match runtime.block_on(probe_targets(wanted, args)) {
        Ok(results) => results,
        Err(why) => {
            eprintln!("edgeprobe: cannot ping anything:\n{why}");
            return exit::UNUSABLE;
        }
    };
    if args.json {
        // Written as it is encoded: 100,000 results are 30 MB of text.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let written = serde_json::to_writer_pretty(&mut out, &results)
            .map_err(std::io::Error::from)
            .and_then(|()| {
                use std::io::Write as _;
                writeln!(out)?;
                out.flush()
            });
        match written {
            Ok(()) => {}
            Err(e) => {
                eprintln!("edgeprobe: cannot encode results: {e}");
                return exit::UNUSABLE;
            }
        }
    } else {
        print!("{}", render_table(&results));
    }
    for note in limit_notes(&results, args.patience) {
        eprintln!("note: {note}");
    }
    if results.iter().all(|r| r.status == Status::Working) {
        exit::OK
    } else {
        exit::PROBLEMS
    }
}

/// One line per router whose ICMP ration held traces back: which hop,
/// how many traces waited for it and how long at most, and how many of
/// its hops were filled from neighbouring paths instead of asked.
pub fn limit_notes(results: &[ProbeResult], patience: Duration) -> Vec<String> {
    #[derive(Default)]
    struct Held {
        ttls: std::collections::BTreeSet<u8>,
        waited: usize,
        longest: Duration,
        not_answered: usize,
    }
    let mut by_router: std::collections::BTreeMap<String, Held> = Default::default();
    for limit in results.iter().flat_map(|r| &r.limits) {
        let router = limit.router.map_or_else(
            || format!("the router at hop {}", limit.ttl.0),
            |a| a.to_string(),
        );
        let held = by_router.entry(router).or_default();
        held.ttls.insert(limit.ttl.0);
        held.longest = held.longest.max(limit.waited);
        if limit.answered {
            held.waited += 1;
        } else {
            held.not_answered += 1;
        }
    }
    by_router
        .into_iter()
        .map(|(router, held)| {
            let hops = held
                .ttls
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let mut line = format!(
                "{router} (hop {hops}) rations its ICMP answers: {} traces waited for it, up to {:.1} s",
                held.waited,
                held.longest.min(patience).as_secs_f64()
            );
            if held.not_answered > 0 {
                let _ = write!(
                    line,
                    "; {} hops not answered within --patience {} were filled from the paths they share (marked ~, \"inferred\" in --json)",
                    held.not_answered,
                    crate::config::format_duration(patience)
                );
            }
            line
        })
        .collect()
}

/// How many host names wait for the resolver at once (which looks up
/// [`LOOKUPS_AT_ONCE`](probe::resolver::LOOKUPS_AT_ONCE) of them at a time).
const PARALLEL_LOOKUPS: usize = 64;

async fn probe_targets(
    wanted: Vec<(String, TargetAddr)>,
    args: &ProbeArgs,
) -> Result<Vec<ProbeResult>, String> {
    let prober = Prober::new(args.rate)
        .map_err(|e| format!("cannot start the packet sending thread: {e}"))?;
    let warnings = prober.warnings(!args.no_trace);
    if !prober.can_ping() {
        return Err(warnings.join("\n"));
    }
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let live = LiveProbe {
        prober,
        ping: PingOptions {
            count: args.count,
            timeout: Duration::from_millis(args.timeout),
            degraded_loss: args.degraded_loss,
        },
        trace: TraceOptions {
            max_hops: args.max_hops,
            timeout: Duration::from_millis(args.timeout),
            patience: args.patience,
            // One run: what the first traces learn holds for the rest.
            remember: Duration::MAX,
        },
        resolver: Resolver::new(),
    };
    let when = if args.no_trace {
        TraceWhen::Never
    } else {
        TraceWhen::WithPing
    };
    if let Some(secs) = minimum_seconds(wanted.len(), args.count, args.rate) {
        eprintln!(
            "note: {} targets x {} echo requests at {} packets/s take at least {secs:.0} s (traceroute adds more); raise --rate to go faster",
            wanted.len(),
            args.count,
            args.rate
        );
    }
    let routes = RouteTable::read_kernel();

    // Host names are resolved first, concurrently and in input order; a
    // name that does not resolve is a result of its own, Not Working with
    // why. Addresses skip the resolver.
    let resolver = &live.resolver;
    let names = wanted.iter().filter_map(|(_, addr)| match addr {
        TargetAddr::Host(name) => Some(name.as_str()),
        TargetAddr::Ip(_) => None,
    });
    let lookups: Vec<Result<IpAddr, String>> = stream::iter(names)
        .map(|name| resolve(resolver, name))
        .buffered(PARALLEL_LOOKUPS)
        .collect()
        .await;
    let mut lookups = lookups.into_iter();
    let mut to_probe: Vec<(String, IpAddr)> = Vec::with_capacity(wanted.len());
    // Per target in input order: probed (and whether by name), or why not.
    let mut outcomes: Vec<Result<Option<IpAddr>, (String, String)>> =
        Vec::with_capacity(wanted.len());
    for (label, addr) in wanted {
        let found = match addr {
            TargetAddr::Ip(ip) => Ok((ip, None)),
            TargetAddr::Host(_) => lookups
                .next()
                .expect("one lookup per name")
                .map(|ip| (ip, Some(ip))),
        };
        match found {
            Ok((ip, by_name)) => {
                to_probe.push((label, ip));
                outcomes.push(Ok(by_name));
            }
            Err(why) => outcomes.push(Err((label, why))),
        }
    }
    // Outside tokio's cooperative budget, which on one thread would end
    // each pass over the targets after 128 answers and wake every target
    // again for the next 128: a sweep of 100,000 took 19 s of CPU, not 1.5.
    // The sweep still yields whenever no target is ready, which lets the
    // receive tasks run.
    let sweep = probe::probe_all(&live, to_probe, &routes, when);
    let mut probed = tokio::task::unconstrained(sweep).await.into_iter();
    Ok(outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(resolved) => {
                let mut r = probed.next().expect("one result per probed target");
                r.resolved = resolved;
                r
            }
            Err((label, why)) => unresolved(label, why),
        })
        .collect())
}

/// The least time a round takes at this rate, when worth mentioning.
fn minimum_seconds(targets: usize, count: u32, rate: u32) -> Option<f64> {
    if rate == 0 {
        return None;
    }
    let secs = targets as f64 * f64::from(count) / f64::from(rate);
    (secs >= 10.0).then_some(secs)
}

/// A host name's address, or why it has none, in a note's words.
async fn resolve(resolver: &Resolver, name: &str) -> Result<IpAddr, String> {
    resolver.resolve(name).await.map_err(|e| match e {
        ResolveError::NoAddresses => format!("{name} has no addresses"),
        e => format!("cannot resolve {name}: {e}"),
    })
}

fn unresolved(label: String, why: String) -> ProbeResult {
    ProbeResult {
        addr: label,
        resolved: None,
        status: Status::NotWorking,
        sent: 0,
        received: 0,
        loss: 1.0,
        rtt_ms: None,
        gateway: None,
        hops: Vec::new(),
        limits: Vec::new(),
        reached: false,
        ip: None,
        notes: vec![why],
    }
}

/// The seed system's table (IP, Status, Default Gateway, Routers,
/// Reachable) plus loss and RTT, then any notes.
pub fn render_table(results: &[ProbeResult]) -> String {
    let header = [
        "S.No",
        "IP",
        "Status",
        "Default Gateway",
        "Routers",
        "Reachable",
        "Loss",
        "RTT avg",
    ];
    let rows: Vec<[String; 8]> = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            [
                (i + 1).to_string(),
                match r.resolved {
                    Some(ip) => format!("{} ({ip})", r.addr),
                    None => r.addr.clone(),
                },
                r.status.label().to_string(),
                r.gateway
                    .map_or_else(|| "no route".into(), |g| g.to_string()),
                routers_column(r),
                if r.reached {
                    "Reachable"
                } else {
                    "Unreachable"
                }
                .to_string(),
                format!("{:.0}%", r.loss * 100.0),
                r.rtt_ms
                    .map_or_else(|| "-".into(), |s| format!("{:.2} ms", s.avg)),
            ]
        })
        .collect();
    let mut out = table(&header, &rows);
    if results.iter().flat_map(|r| &r.hops).any(|h| h.inferred) {
        out.push_str("~ inferred: not asked in this trace; the router seen there on a path that shares the hop\n");
    }
    for r in results {
        for note in &r.notes {
            let _ = writeln!(out, "{}: {note}", r.addr);
        }
    }
    out
}

/// Intermediate hops, `*` for one that did not answer (a run of three or
/// more as `* xN`, as rate-limited routers can leave dozens); `-` when
/// there was no trace.
fn routers_column(r: &ProbeResult) -> String {
    if r.hops.is_empty() {
        return "-".into();
    }
    let routers = r.routers();
    if routers.is_empty() {
        return "none".into();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut silent_run = 0;
    let flush = |parts: &mut Vec<String>, run: &mut usize| {
        match *run {
            0 => {}
            1 | 2 => parts.extend(std::iter::repeat_n("*".to_string(), *run)),
            n => parts.push(format!("* x{n}")),
        }
        *run = 0;
    };
    for hop in routers {
        match hop.addr {
            Some(addr) if hop.inferred => {
                flush(&mut parts, &mut silent_run);
                parts.push(format!("{addr}~"));
            }
            Some(addr) => {
                flush(&mut parts, &mut silent_run);
                parts.push(addr.to_string());
            }
            None => silent_run += 1,
        }
    }
    flush(&mut parts, &mut silent_run);
    parts.join(" > ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Gateway, Hop, RttSummary, Ttl};

    fn hop(ttl: u8, addr: Option<&str>) -> Hop {
        Hop::new(
            Ttl(ttl),
            addr.map(|a| a.parse().unwrap()),
            addr.map(|_| 0.5),
        )
    }

    fn result(addr: &str, hops: Vec<Hop>, reached: bool) -> ProbeResult {
        ProbeResult {
            addr: addr.into(),
            resolved: None,
            status: if reached {
                Status::Working
            } else {
                Status::NotWorking
            },
            sent: 3,
            received: if reached { 3 } else { 0 },
            loss: if reached { 0.0 } else { 1.0 },
            rtt_ms: reached.then_some(RttSummary {
                min: 0.1,
                avg: 0.25,
                max: 0.4,
                mdev: 0.1,
            }),
            gateway: Some(Gateway::Via("198.18.1.1".parse().unwrap())),
            hops,
            limits: Vec::new(),
            reached,
            ip: Some(addr.parse().unwrap()),
            notes: vec![],
        }
    }

    #[test]
    fn table_has_the_seed_columns_and_routers_exclude_the_destination() {
        let live = result(
            "198.19.3.10",
            vec![
                hop(1, Some("198.18.1.1")),
                hop(2, Some("198.18.2.2")),
                hop(3, Some("198.19.3.10")),
            ],
            true,
        );
        let silent = result(
            "198.19.3.20",
            vec![hop(1, Some("198.18.1.1")), hop(2, None)],
            false,
        );
        let table = render_table(&[live, silent]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("S.No  IP"));
        for col in [
            "Status",
            "Default Gateway",
            "Routers",
            "Reachable",
            "Loss",
            "RTT avg",
        ] {
            assert!(lines[0].contains(col), "missing column {col}");
        }
        assert!(lines[1].contains("198.18.1.1 > 198.18.2.2  "));
        assert!(lines[1].contains("Working") && lines[1].contains("Reachable"));
        assert!(lines[1].contains("0.25 ms"));
        assert!(lines[2].contains("198.18.1.1 > *"));
        assert!(lines[2].contains("Not Working") && lines[2].contains("Unreachable"));
        assert!(lines[2].contains("100%"));
    }

    #[test]
    fn direct_destination_has_no_routers() {
        let r = result("127.0.0.1", vec![hop(1, Some("127.0.0.1"))], true);
        assert_eq!(routers_column(&r), "none");
        let untraced = result("127.0.0.1", vec![], true);
        assert_eq!(routers_column(&untraced), "-");
    }

    #[test]
    fn long_runs_of_silent_hops_are_counted_not_listed() {
        let mut hops: Vec<Hop> = (1..=26).map(|t| hop(t, None)).collect();
        hops.push(hop(27, Some("198.18.1.1")));
        let r = result("198.19.200.1", hops, false);
        assert_eq!(routers_column(&r), "* x26 > 198.18.1.1");
        let r = result(
            "198.19.3.10",
            vec![hop(1, None), hop(2, None), hop(3, Some("198.19.3.10"))],
            true,
        );
        assert_eq!(routers_column(&r), "* > *");
    }

    #[test]
    fn destination_answering_with_an_error_is_not_a_router() {
        // A host firewall answering "administratively prohibited".
        let r = result(
            "198.19.3.20",
            vec![hop(1, Some("198.18.1.1")), hop(2, Some("198.19.3.20"))],
            false,
        );
        assert_eq!(routers_column(&r), "198.18.1.1");
    }

    #[test]
    fn slow_rounds_are_announced() {
        assert_eq!(minimum_seconds(10_000, 3, 100), Some(300.0));
        assert_eq!(minimum_seconds(10, 3, 100), None);
        assert_eq!(minimum_seconds(10_000, 3, 0), None, "unpaced");
    }

    #[test]
    fn fraction_parser_rejects_out_of_range() {
        assert_eq!(parse_fraction("0.5"), Ok(0.5));
        assert!(parse_fraction("1.5").is_err());
        assert!(parse_fraction("abc").is_err());
    }

    #[test]
    fn a_rationing_router_is_one_line_with_its_waits() {
        use crate::probe::HopLimit;
        let limit = |waited_ms, answered| HopLimit {
            ttl: Ttl(2),
            router: Some("198.18.2.2".parse().unwrap()),
            waited: Duration::from_millis(waited_ms),
            answered,
        };
        let mut a = result("198.19.4.1", vec![], true);
        a.limits = vec![limit(1500, true)];
        let mut b = result("198.19.4.2", vec![], true);
        b.limits = vec![limit(10_000, false)];
        let notes = limit_notes(
            &[a, b, result("198.19.4.3", vec![], true)],
            Duration::from_secs(10),
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("198.18.2.2 (hop 2) rations its ICMP answers: 1 traces waited for it, up to 10.0 s; 1 hops"), "{}", notes[0]);
        assert!(limit_notes(
            &[result("198.19.4.3", vec![], true)],
            Duration::from_secs(10)
        )
        .is_empty());
    }

    #[test]
    fn inferred_hops_are_marked_in_the_table() {
        let hops = vec![
            Hop {
                inferred: true,
                ..hop(1, Some("198.18.1.1"))
            },
            hop(2, Some("198.18.2.2")),
            hop(3, Some("198.19.4.1")),
        ];
        let table = render_table(&[result("198.19.4.1", hops, true)]);
        assert!(table.contains("198.18.1.1~ > 198.18.2.2"), "{table}");
        assert!(table.contains("~ inferred"), "{table}");
    }
}
