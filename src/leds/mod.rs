//! The board's status LEDs (DESIGN.md, "LEDs").
//!
//! - [`pattern`] is the pure logic: inputs to patterns, patterns to lit/unlit
//!   at a given time;
//! - [`driver`] writes those to any embedded-hal [`OutputPin`], minding the
//!   active level and writing only changes;
//! - backends, each an [`OutputPin`]: [`virtual_pin`] (in memory, the
//!   default off the board) and [`sysfs`] (the Linux LED class).
//!
//! [`OutputPin`]: embedded_hal::digital::OutputPin

pub mod driver;
pub mod pattern;
pub mod sysfs;
pub mod virtual_pin;

pub use driver::{ActiveLevel, Led, LedBank, LedError};
pub use pattern::{lit, patterns, LedInputs, UpstreamLed};
pub use sysfs::{SysfsError, SysfsLed};
pub use virtual_pin::VirtualPin;
