//! The `virtual` backend: an in-memory pin, the default off the board.
//!
//! A clone shares the same state, so the LED task drives one copy and the
//! dashboard reads another without a lock.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use embedded_hal::digital::{ErrorType, OutputPin, StatefulOutputPin};

/// A pin that only remembers its level. Starts low.
#[derive(Debug, Clone, Default)]
pub struct VirtualPin {
    high: Arc<AtomicBool>,
}

impl VirtualPin {
    /// A new pin, low.
    pub fn new() -> Self {
        VirtualPin::default()
    }

    /// Whether the pin is high now (for an active-high LED: lit).
    pub fn is_high(&self) -> bool {
        self.high.load(Ordering::Relaxed)
    }
}

impl ErrorType for VirtualPin {
    type Error = Infallible;
}

impl OutputPin for VirtualPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.high.store(false, Ordering::Relaxed);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.high.store(true, Ordering::Relaxed);
        Ok(())
    }
}

impl StatefulOutputPin for VirtualPin {
    fn is_set_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.is_high())
    }

    fn is_set_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.is_high())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leds::{ActiveLevel, Led};

    #[test]
    fn a_clone_reads_what_the_driver_writes() {
        let pin = VirtualPin::new();
        let reader = pin.clone();
        assert!(!reader.is_high());
        let mut led = Led::new("green", pin, ActiveLevel::High);
        led.set(true).unwrap();
        assert!(reader.is_high());
        led.set(false).unwrap();
        assert!(!reader.is_high());
    }

    #[test]
    fn stateful_reads_back() {
        let mut pin = VirtualPin::new();
        pin.set_high().unwrap();
        assert!(pin.is_set_high().unwrap());
        pin.toggle().unwrap();
        assert!(pin.is_set_low().unwrap());
    }
}
