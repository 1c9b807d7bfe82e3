//! The `rppal` backend: Raspberry Pi GPIO by BCM number.
//!
//! rppal's `OutputPin` implements embedded-hal 1.0 itself; this module only
//! opens pins and turns rppal's errors into advice. When the pin is
//! dropped rppal puts it back in the mode it found it in.

use rppal::gpio::{Gpio, OutputPin};

use super::ActiveLevel;

/// Open BCM `bcm` as an output, starting with the LED off.
pub fn open(bcm: u32, active: ActiveLevel) -> Result<OutputPin, String> {
    let Ok(number) = u8::try_from(bcm) else {
        return Err(format!("BCM {bcm} does not exist; BCM numbers are 0 to 53"));
    };
    let pin = Gpio::new()
        .and_then(|gpio| gpio.get(number))
        .map_err(|e| describe(bcm, &e))?;
    Ok(match active {
        ActiveLevel::High => pin.into_output_low(),
        ActiveLevel::Low => pin.into_output_high(),
    })
}

/// What went wrong with BCM `bcm`, and what to do.
pub fn describe(bcm: u32, e: &rppal::gpio::Error) -> String {
    use rppal::gpio::Error;
    match e {
        Error::UnknownModel => format!(
            "BCM {bcm}: this is not a Raspberry Pi that rppal recognises (no Pi model in \
             /proc/device-tree/compatible or /proc/cpuinfo); on other boards use \
             backend = \"cdev\" or \"sysfs\""
        ),
        Error::PermissionDenied(path) => format!(
            "BCM {bcm}: permission denied on {path}; add the service user to the `gpio` group \
             (sudo usermod -aG gpio USER, then restart it) or run as root"
        ),
        Error::PinUsed(n) => {
            format!("BCM {n} is already in use by this program; give each LED its own pin")
        }
        Error::PinNotAvailable(n) => format!(
            "BCM {n} is not available on this Pi; the header's GPIOs are BCM 2 to 27 \
             (e.g. 17 is header pin 11)"
        ),
        Error::Io(io) => format!("BCM {bcm}: {io}"),
        Error::ThreadPanic => format!("BCM {bcm}: rppal's interrupt thread failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_names_the_pin_and_the_fix() {
        use rppal::gpio::Error;
        let denied = describe(17, &Error::PermissionDenied("/dev/gpiomem".into()));
        assert!(
            denied.starts_with("BCM 17: permission denied on /dev/gpiomem"),
            "{denied}"
        );
        assert!(denied.contains("`gpio` group"), "{denied}");
        let unknown = describe(27, &Error::UnknownModel);
        assert!(
            unknown.starts_with("BCM 27: this is not a Raspberry Pi"),
            "{unknown}"
        );
        assert!(unknown.contains("cdev"), "{unknown}");
        let missing = describe(60, &Error::PinNotAvailable(60));
        assert!(missing.starts_with("BCM 60 is not available"), "{missing}");
        let used = describe(22, &Error::PinUsed(22));
        assert!(used.starts_with("BCM 22 is already in use"), "{used}");
    }

    #[test]
    fn a_number_past_u8_is_refused_before_touching_hardware() {
        let err = open(300, ActiveLevel::High).unwrap_err();
        assert!(err.starts_with("BCM 300 does not exist"), "{err}");
    }

    #[test]
    fn off_a_pi_the_error_says_so() {
        // This test machine is not a Raspberry Pi: rppal finds no model.
        if std::fs::read_to_string("/proc/device-tree/compatible")
            .is_ok_and(|c| c.contains("raspberrypi"))
        {
            return;
        }
        let err = open(17, ActiveLevel::High).unwrap_err();
        assert!(err.starts_with("BCM 17: "), "{err}");
    }
}
