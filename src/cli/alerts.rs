//! `edgeprobe alerts test`: send a test message through every alert
//! channel of a config file and say, channel by channel, which took it and
//! why the others did not: the check to run after editing `[alerts]`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::exit;
use crate::alerts::sender::{AlertSender, Unstored};
use crate::clock::Timestamp;
use crate::config::{resolve_alerts, Environment};

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    command: AlertsCommand,
}

#[derive(Debug, Subcommand)]
enum AlertsCommand {
    /// Send a test message through every channel of the config's [alerts]
    /// section, now (not queued). Exit 0 when every channel took it, 1
    /// when some did not, 2 when the config is unusable or has no channel.
    Test(TestArgs),
}

#[derive(Debug, Args)]
struct TestArgs {
    /// The config file with the [alerts] section (the one `edgeprobe run`
    /// uses).
    #[arg(long, env = "EDGEPROBE_CONFIG", value_name = "FILE")]
    config: PathBuf,
}

pub fn run(args: &AlertsArgs) -> u8 {
    match &args.command {
        AlertsCommand::Test(test) => run_test(test),
    }
}

fn run_test(args: &TestArgs) -> u8 {
    let file = match super::read_config(Some(&args.config)) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let board = file
        .board_id
        .clone()
        .or(Environment::current().hostname)
        .unwrap_or_else(|| "edgeprobe".to_string());
    let sender = match resolve_alerts(file.alerts)
        .map_err(|e| e.to_string())
        .and_then(|settings| AlertSender::new(&settings, Unstored::default()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("edgeprobe: {e}");
            return exit::UNUSABLE;
        }
    };
    if sender.is_empty() {
        eprintln!(
            "edgeprobe: {} has no alert channel; add [[alerts.webhook]], [[alerts.ntfy]], \
             [[alerts.email]] or [[alerts.alertmanager]] (see board/edgeprobe.toml)",
            args.config.display()
        );
        return exit::UNUSABLE;
    }
    let Some(runtime) = super::runtime() else {
        return exit::UNUSABLE;
    };
    let results = runtime.block_on(sender.test_all(&board, Timestamp::now()));
    let rows: Vec<[String; 3]> = results
        .iter()
        .map(|r| {
            [
                r.channel.clone(),
                if r.delivered { "delivered" } else { "FAILED" }.to_string(),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!("{}", super::table(&["CHANNEL", "RESULT", "WHY"], &rows));
    let failed = results.iter().filter(|r| !r.delivered).count();
    if failed == 0 {
        println!("every channel took the test message from {board}");
        exit::OK
    } else {
        println!(
            "{failed} of {} channels did not take the test message",
            results.len()
        );
        exit::PROBLEMS
    }
}
