//! The `edgeprobe` binary: parse the command line, run the subcommand.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = edgeprobe::cli::Cli::parse();
    edgeprobe::cli::run(cli)
}
