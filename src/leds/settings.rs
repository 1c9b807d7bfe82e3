//! The LED settings the rest of edgeprobe uses: which backend drives the
//! pins and how each fitted LED is wired. The `[leds]` TOML section that
//! produces them is read in `config::leds`.

use std::path::PathBuf;

use super::{ActiveLevel, LedColour};

/// The LEDs: the backend and each fitted LED's wiring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedSettings {
    pub backend: LedBackend,
    /// The fitted LEDs, in the order green, red, amber.
    pub leds: Vec<LedWiring>,
}

impl Default for LedSettings {
    /// The virtual backend with all three LEDs, shown on the dashboard.
    fn default() -> LedSettings {
        LedSettings {
            backend: LedBackend::Virtual,
            leds: LedColour::ALL
                .into_iter()
                .map(|colour| LedWiring {
                    colour,
                    line: LedLine::Virtual,
                    active: ActiveLevel::High,
                })
                .collect(),
        }
    }
}

/// Where the LED pins are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedBackend {
    /// In memory; the dashboard shows the patterns.
    Virtual,
    /// Raspberry Pi GPIO through rppal, by BCM number.
    Rppal,
    /// A GPIO character device, by line offset.
    Cdev { chip: PathBuf },
    /// The Linux LED class, by device name.
    Sysfs { root: PathBuf },
}

impl LedBackend {
    /// The name used in `[leds] backend`.
    pub fn name(&self) -> &'static str {
        match self {
            LedBackend::Virtual => "virtual",
            LedBackend::Rppal => "rppal",
            LedBackend::Cdev { .. } => "cdev",
            LedBackend::Sysfs { .. } => "sysfs",
        }
    }
}

/// One fitted LED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedWiring {
    pub colour: LedColour,
    pub line: LedLine,
    pub active: ActiveLevel,
}

/// What drives one LED, per backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedLine {
    Virtual,
    /// A BCM number (rppal) or a line offset (cdev).
    Gpio(u32),
    /// An LED class device name.
    Sysfs(String),
}

impl std::fmt::Display for LedWiring {
    /// How the installer finds the LED: `green (BCM 17, active high)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.active {
            ActiveLevel::High => "active high",
            ActiveLevel::Low => "active low",
        };
        match &self.line {
            LedLine::Virtual => write!(f, "{} (virtual)", self.colour),
            LedLine::Gpio(n) => write!(f, "{} (pin {n}, {level})", self.colour),
            LedLine::Sysfs(name) => write!(f, "{} (LED class {name}, {level})", self.colour),
        }
    }
}
