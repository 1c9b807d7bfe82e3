//! The board's status LEDs (docs/DESIGN.md, "LEDs").
//!
//! - [`pattern`] is the pure logic: inputs to patterns, patterns to lit/unlit
//!   at a given time;
//! - [`driver`] writes those to any embedded-hal [`OutputPin`], minding the
//!   active level and writing only changes;
//! - backends, each an [`OutputPin`]: [`virtual_pin`] (in memory, the
//!   default off the board), [`sysfs`] (the Linux LED class), [`cdev`] (a
//!   GPIO character device) and `rpi` (Raspberry Pi GPIO through rppal);
//!   [`board`] opens the configured ones behind one pin type;
//! - [`settings`] says which backend and pins are configured;
//! - [`panel`] is the shared view (patterns now, locate, faults) and
//!   [`task`] the loop that drives the pins from the monitor's snapshots.
//!
//! [`OutputPin`]: embedded_hal::digital::OutputPin

pub mod board;
pub mod cdev;
pub mod driver;
pub mod panel;
pub mod pattern;
#[cfg(feature = "rppal")]
pub mod rpi;
pub mod settings;
pub mod sysfs;
pub mod task;
pub mod virtual_pin;

pub use board::{open_leds, BoardPin, OpenedLeds};
pub use driver::{ActiveLevel, Led, LedBank, LedError};
pub use panel::{LedDriverStatus, LedPanel, LedReport, LOCATE_FOR};
pub use pattern::{lit, patterns, LedColour, LedInputs, LedPattern, LedView, UpstreamLed};
pub use settings::{LedBackend, LedLine, LedSettings, LedWiring};
pub use sysfs::{SysfsError, SysfsLed};
pub use virtual_pin::VirtualPin;
