//! The Linux LED class backend: `/sys/class/leds/<name>/`, e.g. the Pi's
//! own ACT (green) and PWR (red) LEDs, with no wiring.
//!
//! [`SysfsLed::open`] takes the LED over from its kernel trigger (such as
//! `mmc0` or `default-on`) by writing `none` to `trigger`; from then on the
//! pin writes `max_brightness` (high) or `0` (low) to `brightness`. When
//! the pin is dropped the trigger it found is put back, so the Pi's ACT LED
//! shows SD card activity again once edgeprobe stops.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use embedded_hal::digital::{ErrorKind, ErrorType, OutputPin};

/// Where the kernel lists LED class devices.
pub const DEFAULT_ROOT: &str = "/sys/class/leds";

/// A sysfs LED could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum SysfsError {
    /// No LED of that name under the root.
    #[error(
        "no LED named {name:?} under {root}; {}",
        if available.is_empty() {
            "there are none here: use the virtual backend or GPIO pins".to_string()
        } else {
            format!("available: {} (set one of these in the config)", available.join(", "))
        }
    )]
    NoSuchLed {
        /// The name asked for.
        name: String,
        /// The LED class directory searched.
        root: PathBuf,
        /// The LEDs that are there, sorted.
        available: Vec<String>,
    },
    /// The process may not write the LED's files.
    #[error(
        "LED {name}: permission denied to {op} {path}: run as root, or add a udev rule \
         giving the `gpio` (or a `leds`) group write access to /sys/class/leds/{name}/trigger \
         and brightness, and add the service user to that group"
    )]
    PermissionDenied {
        /// The LED.
        name: String,
        /// What was being done (`write`, `read`).
        op: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// Any other I/O failure.
    #[error("LED {name}: could not {op} {path}: {source}")]
    Io {
        /// The LED.
        name: String,
        /// What was being done (`write`, `read`).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// `max_brightness` is not a positive number.
    #[error(
        "LED {name}: {path} reads {text:?}, not a positive number; is this an LED class device?"
    )]
    BadMaxBrightness {
        /// The LED.
        name: String,
        /// The `max_brightness` file.
        path: PathBuf,
        /// What it contained.
        text: String,
    },
}

impl embedded_hal::digital::Error for SysfsError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

fn io_error(name: &str, op: &'static str, path: &Path, source: io::Error) -> SysfsError {
    if source.kind() == io::ErrorKind::PermissionDenied {
        SysfsError::PermissionDenied {
            name: name.to_string(),
            op,
            path: path.to_path_buf(),
        }
    } else {
        SysfsError::Io {
            name: name.to_string(),
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The LED class devices under `root` (normally [`DEFAULT_ROOT`]), sorted.
pub fn available(root: &Path) -> io::Result<Vec<String>> {
    let mut names = fs::read_dir(root)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    names.sort();
    Ok(names)
}

/// One LED class device, driven as an on/off pin.
#[derive(Debug)]
pub struct SysfsLed {
    name: String,
    brightness: PathBuf,
    max_brightness: u32,
    trigger: PathBuf,
    /// The trigger that was active before, to restore on drop.
    previous_trigger: Option<String>,
}

/// The active trigger in the kernel's `trigger` listing, which marks it
/// with brackets: `none [mmc0] timer` gives `mmc0`.
pub fn active_trigger(listing: &str) -> Option<&str> {
    listing
        .split_whitespace()
        .find_map(|t| t.strip_prefix('[').and_then(|t| t.strip_suffix(']')))
        .filter(|t| !t.is_empty())
}

impl SysfsLed {
    /// Open `<root>/<name>`: take it over from its trigger and read its
    /// maximum brightness. Nothing is written to `brightness` yet.
    pub fn open(root: &Path, name: &str) -> Result<SysfsLed, SysfsError> {
        let dir = root.join(name);
        // A name is one directory entry: no `..` or `/` escaping the root.
        let single = Path::new(name).components().count() == 1
            && Path::new(name).file_name().is_some_and(|f| f == name);
        if !single || !dir.is_dir() {
            return Err(SysfsError::NoSuchLed {
                name: name.to_string(),
                root: root.to_path_buf(),
                available: available(root).unwrap_or_default(),
            });
        }
        let trigger = dir.join("trigger");
        let listing =
            fs::read_to_string(&trigger).map_err(|e| io_error(name, "read", &trigger, e))?;
        let previous_trigger = active_trigger(&listing)
            .filter(|t| *t != "none")
            .map(str::to_string);
        fs::write(&trigger, "none").map_err(|e| io_error(name, "write", &trigger, e))?;
        let max_path = dir.join("max_brightness");
        let text =
            fs::read_to_string(&max_path).map_err(|e| io_error(name, "read", &max_path, e))?;
        let max_brightness = match text.trim().parse::<u32>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(SysfsError::BadMaxBrightness {
                    name: name.to_string(),
                    path: max_path,
                    text: text.trim().to_string(),
                })
            }
        };
        Ok(SysfsLed {
            name: name.to_string(),
            brightness: dir.join("brightness"),
            max_brightness,
            trigger,
            previous_trigger,
        })
    }

    /// The LED's name under the root.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The brightness written for "high".
    pub fn max_brightness(&self) -> u32 {
        self.max_brightness
    }

    fn write(&self, value: u32) -> Result<(), SysfsError> {
        fs::write(&self.brightness, value.to_string())
            .map_err(|e| io_error(&self.name, "write", &self.brightness, e))
    }
}

impl Drop for SysfsLed {
    /// Hand the LED back to the trigger it had.
    fn drop(&mut self) {
        if let Some(previous) = &self.previous_trigger {
            if let Err(e) = fs::write(&self.trigger, previous) {
                eprintln!(
                    "edgeprobe: LED {}: could not restore its trigger {previous:?}: {e}",
                    self.name
                );
            }
        }
    }
}

impl ErrorType for SysfsLed {
    type Error = SysfsError;
}

impl OutputPin for SysfsLed {
    fn set_low(&mut self) -> Result<(), SysfsError> {
        self.write(0)
    }

    fn set_high(&mut self) -> Result<(), SysfsError> {
        self.write(self.max_brightness)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leds::{ActiveLevel, Led};

    /// A fake LED class tree: each LED has a trigger, max_brightness and
    /// brightness file, as the kernel shows them.
    fn tree(leds: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (name, max) in leds {
            let dir = root.path().join(name);
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join("trigger"), "none [mmc0] timer heartbeat").unwrap();
            fs::write(dir.join("max_brightness"), format!("{max}\n")).unwrap();
            fs::write(dir.join("brightness"), "0\n").unwrap();
        }
        root
    }

    fn read(root: &Path, name: &str, file: &str) -> String {
        fs::read_to_string(root.join(name).join(file)).unwrap()
    }

    #[test]
    fn open_takes_over_from_the_trigger() {
        let root = tree(&[("ACT", "255")]);
        let led = SysfsLed::open(root.path(), "ACT").unwrap();
        assert_eq!(read(root.path(), "ACT", "trigger"), "none");
        assert_eq!(led.max_brightness(), 255);
        assert_eq!(led.name(), "ACT");
        // Opening writes nothing to brightness.
        assert_eq!(read(root.path(), "ACT", "brightness"), "0\n");
    }

    #[test]
    fn drop_restores_the_trigger_it_found() {
        let root = tree(&[("ACT", "255")]);
        let led = SysfsLed::open(root.path(), "ACT").unwrap();
        assert_eq!(read(root.path(), "ACT", "trigger"), "none");
        drop(led);
        assert_eq!(read(root.path(), "ACT", "trigger"), "mmc0");

        // An LED that had no trigger is left alone.
        fs::write(root.path().join("ACT/trigger"), "[none] mmc0 timer").unwrap();
        drop(SysfsLed::open(root.path(), "ACT").unwrap());
        assert_eq!(read(root.path(), "ACT", "trigger"), "none");
    }

    #[test]
    fn the_active_trigger_is_the_bracketed_one() {
        assert_eq!(active_trigger("none [mmc0] timer heartbeat"), Some("mmc0"));
        assert_eq!(active_trigger("[none] mmc0"), Some("none"));
        assert_eq!(active_trigger("none mmc0"), None);
        assert_eq!(active_trigger(""), None);
        assert_eq!(active_trigger("[] x"), None);
    }

    #[test]
    fn high_writes_max_brightness_and_low_writes_zero() {
        let root = tree(&[("PWR", "1")]);
        let mut pin = SysfsLed::open(root.path(), "PWR").unwrap();
        pin.set_high().unwrap();
        assert_eq!(read(root.path(), "PWR", "brightness"), "1");
        pin.set_low().unwrap();
        assert_eq!(read(root.path(), "PWR", "brightness"), "0");
    }

    #[test]
    fn drives_an_active_low_led_through_the_driver() {
        let root = tree(&[("led0", "127")]);
        let pin = SysfsLed::open(root.path(), "led0").unwrap();
        let mut led = Led::new("green", pin, ActiveLevel::Low);
        led.set(false).unwrap();
        assert_eq!(read(root.path(), "led0", "brightness"), "127");
        led.set(true).unwrap();
        assert_eq!(read(root.path(), "led0", "brightness"), "0");
    }

    #[test]
    fn a_missing_led_lists_the_available_ones() {
        let root = tree(&[("PWR", "1"), ("ACT", "255")]);
        let err = SysfsLed::open(root.path(), "led7").unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, SysfsError::NoSuchLed { ref available, .. } if available == &["ACT", "PWR"])
        );
        assert!(msg.contains("\"led7\""), "{msg}");
        assert!(msg.contains("available: ACT, PWR"), "{msg}");
    }

    #[test]
    fn no_leds_at_all_says_so() {
        let root = tree(&[]);
        let msg = SysfsLed::open(root.path(), "ACT").unwrap_err().to_string();
        assert!(msg.contains("there are none here"), "{msg}");
    }

    #[test]
    fn a_name_cannot_escape_the_root() {
        let root = tree(&[("ACT", "255")]);
        for name in ["../ACT", "ACT/..", "", ".", "/ACT"] {
            let err = SysfsLed::open(&root.path().join("ACT"), name).unwrap_err();
            assert!(matches!(err, SysfsError::NoSuchLed { .. }), "{name}: {err}");
        }
    }

    #[test]
    fn bad_max_brightness_is_reported() {
        let root = tree(&[("ACT", "0"), ("PWR", "bright")]);
        for name in ["ACT", "PWR"] {
            let err = SysfsLed::open(root.path(), name).unwrap_err();
            assert!(matches!(err, SysfsError::BadMaxBrightness { .. }), "{err}");
            assert!(err.to_string().contains("max_brightness"), "{err}");
        }
    }

    #[test]
    fn permission_denied_says_what_to_do() {
        // Built directly: tests may run as root, where file modes don't bite.
        let path = Path::new("/sys/class/leds/ACT/trigger");
        let err = io_error("ACT", "write", path, io::ErrorKind::PermissionDenied.into());
        let msg = err.to_string();
        assert!(msg.contains("LED ACT"), "{msg}");
        assert!(msg.contains("/sys/class/leds/ACT/trigger"), "{msg}");
        assert!(msg.contains("run as root"), "{msg}");
        assert!(msg.contains("udev rule"), "{msg}");
        assert!(msg.contains("`gpio`"), "{msg}");
        let other = io_error("ACT", "write", path, io::ErrorKind::NotFound.into());
        assert!(matches!(other, SysfsError::Io { .. }));
    }

    #[test]
    fn a_write_error_names_the_led_and_the_file() {
        let root = tree(&[("ACT", "255")]);
        let mut pin = SysfsLed::open(root.path(), "ACT").unwrap();
        fs::remove_dir_all(root.path().join("ACT")).unwrap();
        let msg = pin.set_high().unwrap_err().to_string();
        assert!(msg.starts_with("LED ACT: could not write"), "{msg}");
        assert!(msg.contains("brightness"), "{msg}");
    }
}
