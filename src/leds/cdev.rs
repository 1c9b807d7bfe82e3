//! The `cdev` backend: one line of a GPIO character device
//! (`/dev/gpiochipN`), for Linux boards other than the Raspberry Pi.
//!
//! The line is requested as an output under the consumer name `edgeprobe`
//! (so `gpioinfo` shows who holds it) and released when the pin is
//! dropped. Errors name the chip and line and say what to do.

use std::path::{Path, PathBuf};

use embedded_hal::digital::{ErrorKind, ErrorType, OutputPin};
use gpiocdev::line::Value;
use gpiocdev::Request;

/// The consumer label the kernel shows for our lines.
const CONSUMER: &str = "edgeprobe";

/// A GPIO line could not be requested or driven.
#[derive(Debug, thiserror::Error)]
pub enum CdevError {
    #[error(
        "GPIO chip {chip}: no such device; {}",
        if available.is_empty() {
            "this machine has no GPIO chips (use the virtual or sysfs backend)".to_string()
        } else {
            format!("chips here: {} (set [leds] chip)", available.join(", "))
        }
    )]
    NoChip {
        chip: PathBuf,
        available: Vec<String>,
    },
    #[error("{chip} is not a GPIO character device; set [leds] chip to one of /dev/gpiochipN")]
    NotAChip { chip: PathBuf },
    #[error(
        "GPIO chip {chip} line {line}: permission denied; add the service user to the `gpio` \
         group (sudo usermod -aG gpio USER, then restart it) or run as root"
    )]
    PermissionDenied { chip: PathBuf, line: u32 },
    #[error(
        "GPIO chip {chip} line {line}: in use by another program or driver (`gpioinfo` shows \
         who holds it); free it or choose another line"
    )]
    Busy { chip: PathBuf, line: u32 },
    #[error("GPIO chip {chip} has no line {line}: it has lines 0 to {}", lines.saturating_sub(1))]
    NoLine {
        chip: PathBuf,
        line: u32,
        lines: u32,
    },
    #[error("GPIO chip {chip} line {line}: {message}")]
    Other {
        chip: PathBuf,
        line: u32,
        message: String,
    },
}

impl embedded_hal::digital::Error for CdevError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// The errno inside a gpiocdev error, if it carries one.
fn errno(e: &gpiocdev::Error) -> Option<i32> {
    match e {
        gpiocdev::Error::Os(n) => Some(n.0),
        gpiocdev::Error::Uapi(_, gpiocdev_uapi::Error::Os(n)) => Some(n.0),
        _ => None,
    }
}

/// Turn a request failure into what the admin should do.
fn describe(chip: &Path, line: u32, e: &gpiocdev::Error) -> CdevError {
    let chip = chip.to_path_buf();
    match (e, errno(e)) {
        (gpiocdev::Error::GpioChip(..), _) => CdevError::NotAChip { chip },
        (_, Some(libc::ENOENT | libc::ENODEV | libc::ENXIO)) => CdevError::NoChip {
            chip,
            available: available_chips(),
        },
        (_, Some(libc::EACCES | libc::EPERM)) => CdevError::PermissionDenied { chip, line },
        (_, Some(libc::EBUSY)) => CdevError::Busy { chip, line },
        _ => CdevError::Other {
            chip,
            line,
            message: e.to_string(),
        },
    }
}

/// The GPIO chips present, by path.
fn available_chips() -> Vec<String> {
    gpiocdev::chip::chips()
        .map(|paths| paths.iter().map(|p| p.display().to_string()).collect())
        .unwrap_or_default()
}

/// One requested output line.
#[derive(Debug)]
pub struct CdevLine {
    chip: PathBuf,
    line: u32,
    request: Request,
}

impl CdevLine {
    /// Request `line` of `chip` as an output, driven low until written.
    pub fn open(chip: &Path, line: u32) -> Result<CdevLine, CdevError> {
        let info = gpiocdev::Chip::from_path(chip)
            .and_then(|c| c.info())
            .map_err(|e| describe(chip, line, &e))?;
        if line >= info.num_lines {
            return Err(CdevError::NoLine {
                chip: chip.to_path_buf(),
                line,
                lines: info.num_lines,
            });
        }
        let request = Request::builder()
            .on_chip(chip)
            .with_consumer(CONSUMER)
            .with_line(line)
            .as_output(Value::Inactive)
            .request()
            .map_err(|e| describe(chip, line, &e))?;
        Ok(CdevLine {
            chip: chip.to_path_buf(),
            line,
            request,
        })
    }

    fn write(&mut self, value: Value) -> Result<(), CdevError> {
        self.request
            .set_value(self.line, value)
            .map_err(|e| describe(&self.chip, self.line, &e))
    }
}

impl ErrorType for CdevLine {
    type Error = CdevError;
}

impl OutputPin for CdevLine {
    fn set_low(&mut self) -> Result<(), CdevError> {
        self.write(Value::Inactive)
    }

    fn set_high(&mut self) -> Result<(), CdevError> {
        self.write(Value::Active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_chip_is_named_with_what_to_do() {
        let err = CdevLine::open(Path::new("/dev/gpiochip-nonexistent"), 17).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CdevError::NoChip { .. }), "{msg}");
        assert!(
            msg.starts_with("GPIO chip /dev/gpiochip-nonexistent: no such device"),
            "{msg}"
        );
        assert!(
            msg.contains("[leds] chip") || msg.contains("no GPIO chips"),
            "{msg}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_chip_says_so() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = CdevLine::open(file.path(), 3).unwrap_err();
        assert!(matches!(err, CdevError::NotAChip { .. }), "{err}");
        assert!(
            err.to_string().contains("not a GPIO character device"),
            "{err}"
        );
    }

    #[test]
    fn errno_maps_to_advice() {
        let chip = Path::new("/dev/gpiochip0");
        let os = |n| gpiocdev::Error::Os(gpiocdev_uapi::Errno(n));
        let denied = describe(chip, 17, &os(libc::EACCES)).to_string();
        assert!(denied.contains("line 17: permission denied"), "{denied}");
        assert!(denied.contains("`gpio`"), "{denied}");
        let busy = describe(chip, 4, &os(libc::EBUSY)).to_string();
        assert!(busy.contains("line 4: in use"), "{busy}");
        assert!(busy.contains("gpioinfo"), "{busy}");
        let other = describe(chip, 4, &os(libc::EIO)).to_string();
        assert!(
            other.starts_with("GPIO chip /dev/gpiochip0 line 4: "),
            "{other}"
        );
        let no_line = CdevError::NoLine {
            chip: chip.into(),
            line: 60,
            lines: 54,
        };
        assert_eq!(
            no_line.to_string(),
            "GPIO chip /dev/gpiochip0 has no line 60: it has lines 0 to 53"
        );
    }
}
