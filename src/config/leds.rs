//! `[leds]`: the TOML section that says which LEDs are fitted, checked
//! against its backend into the [`LedSettings`] the LED module drives.

use std::path::PathBuf;

use serde::Deserialize;

use super::{invalid, ConfigError};
use crate::leds::{ActiveLevel, LedBackend, LedColour, LedLine, LedSettings, LedWiring};

/// `[leds]`: which LEDs are fitted and how they are driven.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LedsSection {
    /// `virtual` (default), `rppal`, `cdev` or `sysfs`.
    pub backend: Option<LedBackendName>,
    /// cdev: the GPIO chip (default `/dev/gpiochip0`).
    pub chip: Option<PathBuf>,
    /// sysfs: where the LED class lives (default `/sys/class/leds`).
    pub sysfs_root: Option<PathBuf>,
    pub green: Option<LedSection>,
    pub red: Option<LedSection>,
    pub amber: Option<LedSection>,
}

/// The LED backends, as named in `[leds] backend`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LedBackendName {
    #[default]
    Virtual,
    Rppal,
    Cdev,
    Sysfs,
}

/// `[leds.green]`, `[leds.red]`, `[leds.amber]`: one LED's wiring.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LedSection {
    /// rppal: the BCM GPIO number; cdev: the line offset on the chip.
    pub pin: Option<u32>,
    /// sysfs: the LED class device, e.g. `ACT` or `PWR`.
    pub name: Option<String>,
    /// `high` (default: the pin drives the LED) or `low` (the pin sinks it).
    pub active: Option<ActiveLevel>,
}

/// The LED chip of the cdev backend unless `[leds] chip` says otherwise.
pub const DEFAULT_GPIO_CHIP: &str = "/dev/gpiochip0";

/// Check the `[leds]` section against its backend.
pub fn resolve_leds(section: LedsSection) -> Result<LedSettings, ConfigError> {
    let backend_name = section.backend.unwrap_or_default();
    if section.chip.is_some() && backend_name != LedBackendName::Cdev {
        return Err(invalid(
            "leds.chip",
            "is only used with backend = \"cdev\"; remove it or set the backend",
        ));
    }
    if section.sysfs_root.is_some() && backend_name != LedBackendName::Sysfs {
        return Err(invalid(
            "leds.sysfs_root",
            "is only used with backend = \"sysfs\"; remove it or set the backend",
        ));
    }
    let backend = match backend_name {
        LedBackendName::Virtual => LedBackend::Virtual,
        LedBackendName::Rppal => LedBackend::Rppal,
        LedBackendName::Cdev => LedBackend::Cdev {
            chip: section
                .chip
                .unwrap_or_else(|| PathBuf::from(DEFAULT_GPIO_CHIP)),
        },
        LedBackendName::Sysfs => LedBackend::Sysfs {
            root: section
                .sysfs_root
                .unwrap_or_else(|| PathBuf::from(crate::leds::sysfs::DEFAULT_ROOT)),
        },
    };
    let sections = [
        (LedColour::Green, section.green),
        (LedColour::Red, section.red),
        (LedColour::Amber, section.amber),
    ];
    if backend == LedBackend::Virtual {
        for (colour, led) in &sections {
            let Some(led) = led else { continue };
            if led.pin.is_some() || led.name.is_some() {
                return Err(invalid(
                    colour.config_key(),
                    "the virtual backend has no pins; set [leds] backend = \"rppal\", \"cdev\" \
                     or \"sysfs\" to drive real LEDs",
                ));
            }
        }
        return Ok(LedSettings::default());
    }
    let mut leds: Vec<LedWiring> = Vec::new();
    for (colour, led) in sections {
        let Some(led) = led else { continue };
        let key = colour.config_key();
        let line =
            match (&backend, led.pin, led.name) {
                (LedBackend::Sysfs { .. }, None, Some(name)) => LedLine::Sysfs(name),
                (LedBackend::Sysfs { .. }, _, _) => return Err(invalid(
                    key,
                    "the sysfs backend needs name = \"LED\" (a directory under /sys/class/leds, \
                     e.g. ACT or PWR), and no pin",
                )),
                (_, Some(pin), None) => LedLine::Gpio(pin),
                (LedBackend::Rppal, _, _) => {
                    return Err(invalid(
                        key,
                        "the rppal backend needs pin = N (the BCM GPIO number, e.g. 17 for header \
                     pin 11), and no name",
                    ))
                }
                _ => {
                    return Err(invalid(
                        key,
                        "the cdev backend needs pin = N (the line offset on the chip, as gpioinfo \
                     lists it), and no name",
                    ))
                }
            };
        if let LedLine::Gpio(pin) = line {
            if matches!(backend, LedBackend::Rppal) && pin > u32::from(u8::MAX) {
                return Err(invalid(
                    key,
                    format!("BCM {pin} does not exist; BCM numbers are 0 to 53"),
                ));
            }
        }
        if let Some(other) = leds.iter().find(|l| l.line == line) {
            return Err(invalid(
                key,
                format!(
                    "the {} LED is on the same pin; give each LED its own",
                    other.colour
                ),
            ));
        }
        leds.push(LedWiring {
            colour,
            line,
            active: led.active.unwrap_or_default(),
        });
    }
    if leds.is_empty() {
        return Err(invalid(
            "leds",
            format!(
                "backend = \"{}\" but no LED is configured; add e.g. [leds.green] with {}",
                backend.name(),
                if matches!(backend, LedBackend::Sysfs { .. }) {
                    "name = \"ACT\""
                } else {
                    "pin = 17"
                }
            ),
        ));
    }
    Ok(LedSettings { backend, leds })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::env;
    use crate::config::{Config, FileConfig, Overrides};

    fn leds(text: &str) -> Result<LedSettings, ConfigError> {
        resolve_leds(FileConfig::parse("c.toml", text).unwrap().leds)
    }

    #[test]
    fn leds_default_to_three_virtual_ones() {
        let c = Config::resolve(FileConfig::default(), Overrides::default(), &env()).unwrap();
        assert_eq!(c.leds, LedSettings::default());
        assert_eq!(c.leds.backend, LedBackend::Virtual);
        assert_eq!(c.leds.leds.len(), 3);
        assert_eq!(
            leds("[leds]\nbackend = \"virtual\"\n").unwrap(),
            LedSettings::default()
        );
    }

    #[test]
    fn leds_on_gpio_pins_with_their_active_level() {
        let s = leds(
            "[leds]\nbackend = \"rppal\"\ngreen = { pin = 17 }\namber = { pin = 22, active = \"low\" }\n",
        )
        .unwrap();
        assert_eq!(s.backend, LedBackend::Rppal);
        assert_eq!(
            s.leds,
            [
                LedWiring {
                    colour: LedColour::Green,
                    line: LedLine::Gpio(17),
                    active: ActiveLevel::High,
                },
                LedWiring {
                    colour: LedColour::Amber,
                    line: LedLine::Gpio(22),
                    active: ActiveLevel::Low,
                },
            ]
        );
        assert_eq!(s.leds[1].to_string(), "amber (pin 22, active low)");

        let s = leds("[leds]\nbackend = \"cdev\"\n[leds.red]\npin = 4\n").unwrap();
        assert_eq!(
            s.backend,
            LedBackend::Cdev {
                chip: PathBuf::from("/dev/gpiochip0")
            }
        );
        let s = leds("[leds]\nbackend = \"cdev\"\nchip = \"/dev/gpiochip4\"\nred = { pin = 4 }\n")
            .unwrap();
        assert_eq!(
            s.backend,
            LedBackend::Cdev {
                chip: PathBuf::from("/dev/gpiochip4")
            }
        );
    }

    #[test]
    fn leds_on_the_led_class_by_name() {
        let s = leds("[leds]\nbackend = \"sysfs\"\ngreen = { name = \"ACT\" }\nred = { name = \"PWR\", active = \"low\" }\n")
            .unwrap();
        assert_eq!(
            s.backend,
            LedBackend::Sysfs {
                root: PathBuf::from("/sys/class/leds")
            }
        );
        assert_eq!(s.leds[0].line, LedLine::Sysfs("ACT".into()));
        assert_eq!(s.leds[1].to_string(), "red (LED class PWR, active low)");
    }

    #[test]
    fn bad_led_settings_say_what_to_write() {
        for (text, key, hint) in [
            ("[leds]\nbackend = \"gpio\"\n", "", "unknown variant `gpio`"),
            (
                "[leds]\nbackend = \"rppal\"\n",
                "leds:",
                "no LED is configured",
            ),
            (
                "[leds]\nbackend = \"rppal\"\ngreen = { name = \"ACT\" }\n",
                "leds.green:",
                "pin = N (the BCM",
            ),
            (
                "[leds]\nbackend = \"cdev\"\nred = { }\n",
                "leds.red:",
                "line offset",
            ),
            (
                "[leds]\nbackend = \"sysfs\"\namber = { pin = 3 }\n",
                "leds.amber:",
                "name = \"LED\"",
            ),
            (
                "[leds]\ngreen = { pin = 17 }\n",
                "leds.green:",
                "virtual backend has no pins",
            ),
            (
                "[leds]\nbackend = \"rppal\"\nchip = \"/dev/gpiochip0\"\ngreen = { pin = 1 }\n",
                "leds.chip:",
                "only used with backend = \"cdev\"",
            ),
            (
                "[leds]\nbackend = \"cdev\"\nsysfs_root = \"/x\"\ngreen = { pin = 1 }\n",
                "leds.sysfs_root:",
                "only used",
            ),
            (
                "[leds]\nbackend = \"rppal\"\ngreen = { pin = 17 }\nred = { pin = 17 }\n",
                "leds.red:",
                "the green LED is on the same pin",
            ),
            (
                "[leds]\nbackend = \"rppal\"\ngreen = { pin = 999 }\n",
                "leds.green:",
                "BCM 999 does not exist",
            ),
            (
                "[leds]\nbackend = \"rppal\"\ngreen = { pin = 17, active = \"hi\" }\n",
                "",
                "unknown variant `hi`",
            ),
            (
                "[leds]\nbackend = \"rppal\"\ngreen = { pin = 17, colour = \"blue\" }\n",
                "",
                "unknown field `colour`",
            ),
            (
                "[leds]\nbackend = \"rppal\"\ngreen = { pin = -1 }\n",
                "",
                "invalid value",
            ),
        ] {
            let msg = match FileConfig::parse("c.toml", text) {
                Err(e) => e.to_string(),
                Ok(f) => resolve_leds(f.leds).unwrap_err().to_string(),
            };
            assert!(msg.starts_with(key), "{text}: {msg}");
            assert!(msg.contains(hint), "{text}: {msg}");
        }
    }
}
