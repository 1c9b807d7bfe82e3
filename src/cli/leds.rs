//! `edgeprobe leds test`: light each configured LED in turn, naming it on
//! the terminal, then blink them all together, for checking the wiring at
//! installation. Ctrl-C stops it with the LEDs off and handed back.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::exit;
use crate::clock::Timestamp;
use crate::config;
use crate::leds::pattern::TICK_MS;
use crate::leds::{self, BoardPin, LedBank, LedPattern, LedView};
use crate::leds::{LedBackend, LedSettings};

#[derive(Debug, Args)]
pub struct LedsArgs {
    #[command(subcommand)]
    command: LedsCommand,
}

#[derive(Debug, Subcommand)]
enum LedsCommand {
    /// Light each LED of the config's [leds] section in turn, then all
    /// together. Exit 0 when every LED could be driven, 1 when some could
    /// not, 2 when none could.
    Test(TestArgs),
}

#[derive(Debug, Args)]
struct TestArgs {
    /// The config file with the [leds] section (the one `edgeprobe run`
    /// uses).
    #[arg(long, env = "EDGEPROBE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// How long each LED stays lit, e.g. 2s [default: 2s].
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    each: String,
}

/// The longest `--each` accepted: a test is for watching, not for leaving on.
const MAX_EACH: Duration = Duration::from_secs(60);

pub fn run(args: &LedsArgs) -> u8 {
    match &args.command {
        LedsCommand::Test(test) => run_test(test),
    }
}

fn run_test(args: &TestArgs) -> u8 {
    let each = match config::parse_duration(&args.each) {
        Ok(d) if d > Duration::ZERO && d <= MAX_EACH => d,
        Ok(_) => {
            eprintln!("edgeprobe: --each: give a time between 25ms and 60s");
            return exit::UNUSABLE;
        }
        Err(e) => {
            eprintln!("edgeprobe: --each: {e}");
            return exit::UNUSABLE;
        }
    };
    let file = match super::read_config(args.config.as_deref()) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let settings = match config::resolve_leds(file.leds) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("edgeprobe: {e}");
            return exit::UNUSABLE;
        }
    };
    if settings.backend == LedBackend::Virtual {
        eprintln!(
            "edgeprobe: the virtual backend has no LEDs to light (the dashboard shows them); \
             set [leds] backend = \"rppal\", \"cdev\" or \"sysfs\" with the LEDs' pins in the \
             config file and pass it with --config"
        );
        return exit::UNUSABLE;
    }
    let Some(runtime) = super::runtime() else {
        return exit::UNUSABLE;
    };
    let opened = leds::open_leds(&settings);
    println!(
        "Testing {} LED(s) on the {} backend, {} each:",
        settings.leds.len(),
        settings.backend.name(),
        config::format_duration(each)
    );
    for failure in &opened.failures {
        println!("  NOT DRIVEN  {failure}");
    }
    let driven = settings.leds.len() - opened.failures.len();
    if driven == 0 {
        eprintln!("edgeprobe: no LED could be driven; fix the problems above and try again");
        return exit::UNUSABLE;
    }
    let mut bank = opened.bank;
    let interrupted = runtime.block_on(async {
        tokio::select! {
            () = light_in_turn(&mut bank, &settings, each) => false,
            _ = tokio::signal::ctrl_c() => true,
        }
    });
    let off = bank.off();
    // Dropping the bank hands the pins back (sysfs triggers restored).
    drop(bank);
    if interrupted {
        println!("Interrupted; all LEDs off.");
        return exit::PROBLEMS;
    }
    if let Err(e) = off {
        println!("Could not turn every LED off: {e}");
        return exit::PROBLEMS;
    }
    println!(
        "All off. An LED that stayed dark: check its polarity (long leg to the resistor and \
         the pin for active high), its resistor and pin, and `active` in the config."
    );
    if opened.failures.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS
    }
}

/// Each fitted LED alone for `each`, then all of them blinking together.
async fn light_in_turn(bank: &mut LedBank<BoardPin>, settings: &LedSettings, each: Duration) {
    for wiring in &settings.leds {
        if bank.get(wiring.colour).is_none() {
            continue;
        }
        let view = LedView::all(LedPattern::Off).with(wiring.colour, LedPattern::On);
        let shown = match bank.apply(&view, 0) {
            Ok(()) => "on".to_string(),
            Err(e) => format!("FAILED: {e}"),
        };
        println!("  {wiring}: {shown}");
        let _ = std::io::stdout().flush();
        tokio::time::sleep(each).await;
    }
    println!("  all together: blinking");
    let _ = std::io::stdout().flush();
    let end = tokio::time::Instant::now() + each;
    let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
    while tokio::time::Instant::now() < end {
        tick.tick().await;
        let now_ms = u64::try_from(Timestamp::now().millis()).unwrap_or(0);
        if let Err(e) = bank.apply(&LedView::all(LedPattern::Locate), now_ms) {
            println!("  FAILED: {e}");
            return;
        }
    }
}
