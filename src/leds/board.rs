//! Opening the configured LEDs: one [`BoardPin`] type over every backend,
//! so the LED task and `edgeprobe leds test` drive any of them the same
//! way through embedded-hal's [`OutputPin`].
//!
//! An LED that cannot be opened is left out with a message naming it and
//! the fix; the others are driven, and probing goes on either way.

use std::error::Error as StdError;
use std::fmt;

use embedded_hal::digital::{ErrorKind, ErrorType, OutputPin, PinState};

use super::cdev::CdevLine;
use super::settings::{LedBackend, LedLine, LedSettings, LedWiring};
use super::sysfs::SysfsLed;
use super::virtual_pin::VirtualPin;
use super::{Led, LedBank};

/// A pin of any backend.
#[derive(Debug)]
pub enum BoardPin {
    Virtual(VirtualPin),
    Sysfs(SysfsLed),
    Cdev(CdevLine),
    #[cfg(feature = "rppal")]
    Rppal(rppal::gpio::OutputPin),
}

/// A backend's write error, as its own message.
#[derive(Debug)]
pub struct BoardPinError(Box<dyn StdError + Send + Sync>);

impl fmt::Display for BoardPinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for BoardPinError {}

impl embedded_hal::digital::Error for BoardPinError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl ErrorType for BoardPin {
    type Error = BoardPinError;
}

fn boxed<E: StdError + Send + Sync + 'static>(e: E) -> BoardPinError {
    BoardPinError(Box::new(e))
}

impl OutputPin for BoardPin {
    fn set_low(&mut self) -> Result<(), BoardPinError> {
        self.set_state(PinState::Low)
    }

    fn set_high(&mut self) -> Result<(), BoardPinError> {
        self.set_state(PinState::High)
    }

    /// Hands the level to whichever backend the pin is, each through its
    /// own `set_low` or `set_high`.
    fn set_state(&mut self, state: PinState) -> Result<(), BoardPinError> {
        match self {
            BoardPin::Virtual(p) => p.set_state(state).map_err(boxed),
            BoardPin::Sysfs(p) => p.set_state(state).map_err(boxed),
            BoardPin::Cdev(p) => p.set_state(state).map_err(boxed),
            #[cfg(feature = "rppal")]
            BoardPin::Rppal(p) => OutputPin::set_state(p, state).map_err(boxed),
        }
    }
}

/// Open the pin of one LED.
pub fn open_pin(backend: &LedBackend, wiring: &LedWiring) -> Result<BoardPin, String> {
    match (backend, &wiring.line) {
        (LedBackend::Sysfs { root }, LedLine::Sysfs(name)) => SysfsLed::open(root, name)
            .map(BoardPin::Sysfs)
            .map_err(|e| e.to_string()),
        (LedBackend::Cdev { chip }, LedLine::Gpio(line)) => CdevLine::open(chip, *line)
            .map(BoardPin::Cdev)
            .map_err(|e| e.to_string()),
        #[cfg(feature = "rppal")]
        (LedBackend::Rppal, LedLine::Gpio(bcm)) => {
            super::rpi::open(*bcm, wiring.active).map(BoardPin::Rppal)
        }
        #[cfg(not(feature = "rppal"))]
        (LedBackend::Rppal, LedLine::Gpio(_)) => Err(
            "this build has no Raspberry Pi GPIO support; rebuild with `--features rppal`, \
             or use backend = \"cdev\""
                .to_string(),
        ),
        (LedBackend::Virtual, _) | (_, LedLine::Virtual) => {
            Ok(BoardPin::Virtual(VirtualPin::new()))
        }
        (backend, line) => Err(format!(
            "the {} backend cannot drive {line:?}; check the [leds] section",
            backend.name()
        )),
    }
}

/// The configured LEDs, opened; and for each one that failed, why.
pub struct OpenedLeds {
    pub bank: LedBank<BoardPin>,
    /// One message per LED left out, naming it (`red (pin 27, active
    /// high): ...`).
    pub failures: Vec<String>,
}

/// Open every configured LED; failures leave that LED out.
pub fn open_leds(settings: &LedSettings) -> OpenedLeds {
    let mut bank = LedBank::new(None, None, None);
    let mut failures = Vec::new();
    for wiring in &settings.leds {
        match open_pin(&settings.backend, wiring) {
            Ok(pin) => {
                let led = Led::new(wiring.colour.name(), pin, wiring.active);
                *bank.slot(wiring.colour) = Some(led);
            }
            Err(why) => failures.push(format!("{wiring}: {why}")),
        }
    }
    OpenedLeds { bank, failures }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;
    use crate::leds::{ActiveLevel, LedColour};

    fn sysfs_settings(root: PathBuf, leds: &[(LedColour, &str, ActiveLevel)]) -> LedSettings {
        LedSettings {
            backend: LedBackend::Sysfs { root },
            leds: leds
                .iter()
                .map(|(colour, name, active)| LedWiring {
                    colour: *colour,
                    line: LedLine::Sysfs(name.to_string()),
                    active: *active,
                })
                .collect(),
        }
    }

    #[test]
    fn virtual_opens_all_three() {
        let opened = open_leds(&LedSettings::default());
        assert!(opened.failures.is_empty());
        for colour in LedColour::ALL {
            assert!(opened.bank.get(colour).is_some(), "{colour}");
        }
    }

    #[test]
    fn a_missing_led_is_left_out_and_named_while_the_others_work() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("ACT");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("trigger"), "none [mmc0]").unwrap();
        fs::write(dir.join("max_brightness"), "255").unwrap();
        fs::write(dir.join("brightness"), "0").unwrap();
        let settings = sysfs_settings(
            root.path().to_path_buf(),
            &[
                (LedColour::Green, "ACT", ActiveLevel::High),
                (LedColour::Red, "PWR", ActiveLevel::High),
            ],
        );
        let mut opened = open_leds(&settings);
        assert!(opened.bank.get(LedColour::Green).is_some());
        assert!(opened.bank.get(LedColour::Red).is_none());
        assert_eq!(opened.failures.len(), 1);
        let failure = &opened.failures[0];
        assert!(
            failure.starts_with("red (LED class PWR, active high): no LED named \"PWR\""),
            "{failure}"
        );
        assert!(failure.contains("available: ACT"), "{failure}");
        opened
            .bank
            .apply(&crate::leds::LedView::all(crate::leds::LedPattern::On), 0)
            .unwrap();
        assert_eq!(fs::read_to_string(dir.join("brightness")).unwrap(), "255");
    }

    #[test]
    fn a_missing_gpio_chip_is_left_out_and_named() {
        let settings = LedSettings {
            backend: LedBackend::Cdev {
                chip: PathBuf::from("/dev/gpiochip-nonexistent"),
            },
            leds: vec![LedWiring {
                colour: LedColour::Amber,
                line: LedLine::Gpio(22),
                active: ActiveLevel::Low,
            }],
        };
        let opened = open_leds(&settings);
        assert!(opened.bank.get(LedColour::Amber).is_none());
        let failure = &opened.failures[0];
        assert!(
            failure.starts_with("amber (pin 22, active low): GPIO chip /dev/gpiochip-nonexistent"),
            "{failure}"
        );
    }
}
