//! The command line: argument definitions and the dispatch to each
//! subcommand. Each subcommand's module renders its own output.

mod alerts;
mod central;
mod check;
mod leds;
mod mongo_args;
mod probe;
mod run;

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// An IP monitoring probe: ping, traceroute and default gateway for every
/// address in a spreadsheet.
#[derive(Debug, Parser)]
#[command(name = "edgeprobe", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a targets sheet: what would be monitored, and every problem
    /// with its row. Exit 0 clean, 1 problems but some targets, 2 unusable.
    Check(check::CheckArgs),
    /// Ping and trace addresses once and print the results. Exit 0 when
    /// every target is Working, 1 when some are not, 2 on bad input or when
    /// nothing can be pinged.
    Probe(probe::ProbeArgs),
    /// Run the monitor: probe every target each interval, keep the history,
    /// serve the dashboard. Stops cleanly on SIGTERM or Ctrl-C; SIGHUP
    /// reloads the targets sheet.
    Run(Box<run::RunArgs>),
    /// Serve the fleet dashboard and JSON API over the central MongoDB the
    /// boards sync to. Stateless: run as many as you like behind a load
    /// balancer. Stops on SIGTERM or Ctrl-C. `central hash-password` and
    /// `central new-token` make the entries of its `[auth]` config.
    #[command(args_conflicts_with_subcommands = true)]
    Central(central::CentralArgs),
    /// The status LEDs: `edgeprobe leds test` lights each configured LED
    /// in turn, for checking the wiring.
    Leds(leds::LedsArgs),
    /// Alert channels: `edgeprobe alerts test` sends a test message through
    /// every channel of the config and says which ones failed and why.
    Alerts(alerts::AlertsArgs),
    /// Internal: parse a workbook from stdin in a confined process (the
    /// commands above start it; see `targets::isolate`).
    #[command(name = "read-workbook", hide = true)]
    ReadWorkbook,
}

/// Exit codes shared by the subcommands.
pub(crate) mod exit {
    /// Everything fine.
    pub const OK: u8 = 0;
    /// It ran, but found problems (bad rows, targets down).
    pub const PROBLEMS: u8 = 1;
    /// It could not run: unusable input or environment.
    pub const UNUSABLE: u8 = 2;
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    crate::heap::use_one_arena();
    let code = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Probe(args) => probe::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Central(args) => central::run(&args),
        Command::Leds(args) => leds::run(&args),
        Command::Alerts(args) => alerts::run(&args),
        Command::ReadWorkbook => crate::targets::isolate::serve_reader(),
    };
    ExitCode::from(code)
}

/// The async runtime of the network commands: two workers are plenty for
/// sockets and timers, and fit a small board. `None` (after saying why)
/// when it cannot start.
pub(crate) fn runtime() -> Option<tokio::runtime::Runtime> {
    build_runtime(tokio::runtime::Builder::new_multi_thread().worker_threads(2))
}

/// A runtime on the calling thread alone, for the one-shot `probe`: its
/// futures, the receive tasks and the reactor share the thread, so that
/// no reply and no sent packet has to wake another thread (the wake-ups
/// were the largest part of a large sweep's CPU time). Only the packet
/// sending thread stays apart. A reply that waits for the busy thread is
/// still timed by its arrival: the kernel stamps it (`probe::sys`).
pub(crate) fn one_thread_runtime() -> Option<tokio::runtime::Runtime> {
    build_runtime(&mut tokio::runtime::Builder::new_current_thread())
}

fn build_runtime(builder: &mut tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    match builder.enable_all().build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("edgeprobe: cannot start the async runtime: {e}");
            None
        }
    }
}

/// Run a long-lived command (`run`, `central`) on [`runtime`]: `OK` when
/// it stops cleanly, `UNUSABLE` (after saying why, behind `label`) when it
/// fails or the runtime cannot start.
pub(crate) fn serve_until_done(
    label: &str,
    service: impl std::future::Future<Output = Result<(), String>>,
) -> u8 {
    let Some(runtime) = runtime() else {
        return exit::UNUSABLE;
    };
    match runtime.block_on(service) {
        Ok(()) => exit::OK,
        Err(why) => {
            eprintln!("edgeprobe: {label}{why}");
            exit::UNUSABLE
        }
    }
}

/// The `--config` file, or the defaults without one; `Err` (after saying
/// why) when it cannot be read or parsed.
pub(crate) fn read_config(path: Option<&std::path::Path>) -> Result<crate::config::FileConfig, u8> {
    match path {
        None => Ok(crate::config::FileConfig::default()),
        Some(path) => crate::config::FileConfig::read(path).map_err(|e| {
            eprintln!("edgeprobe: {e}");
            exit::UNUSABLE
        }),
    }
}

/// Left-aligned columns separated by two spaces.
pub(crate) fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}
