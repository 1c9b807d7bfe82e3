//! The LED driver: turns patterns into pin writes over embedded-hal's
//! [`OutputPin`], whatever the backend (virtual, sysfs, GPIO).
//!
//! The active level is configuration (how the LED is wired), so it is a
//! value here rather than a type parameter as in switch-hal. A pin is
//! written only when its LED changes, so re-applying the same view every
//! tick costs nothing on the bus or in sysfs.

use std::error::Error as StdError;

use embedded_hal::digital::OutputPin;

use super::pattern::lit;
use super::pattern::{LedColour, LedPattern, LedView};

/// Which pin level lights the LED (`active = "high"` or `"low"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActiveLevel {
    /// High lights it (LED from the pin to ground).
    #[default]
    High,
    /// Low lights it (LED from the supply to the pin, or an inverting driver).
    Low,
}

/// An LED could not be switched.
#[derive(Debug, thiserror::Error)]
pub enum LedError {
    /// Writing the pin failed; the source says why and what to do.
    #[error("{led} LED: could not turn it {}: {source}", if *on { "on" } else { "off" })]
    Pin {
        /// The LED's name (`green`, `red`, `amber`, or the configured one).
        led: String,
        /// Whether it was being turned on.
        on: bool,
        /// The backend's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// One LED on a pin, with its active level and what was last written.
#[derive(Debug)]
pub struct Led<P: OutputPin> {
    name: String,
    pin: P,
    level: ActiveLevel,
    /// What the pin shows now; `None` before the first write or after a
    /// failed one, so the next [`Led::set`] writes whatever it is asked.
    lit: Option<bool>,
}

impl<P: OutputPin> Led<P> {
    /// An LED named `name` on `pin`, lit at `level`. Nothing is written yet.
    pub fn new(name: impl Into<String>, pin: P, level: ActiveLevel) -> Self {
        Led {
            name: name.into(),
            pin,
            level,
            lit: None,
        }
    }

    /// The LED's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the LED is lit, as last written (`None`: unknown).
    pub fn is_lit(&self) -> Option<bool> {
        self.lit
    }

    /// The pin, e.g. to read a virtual pin's state.
    pub fn pin(&self) -> &P {
        &self.pin
    }

    /// Give the pin back.
    pub fn into_pin(self) -> P {
        self.pin
    }
}

impl<P> Led<P>
where
    P: OutputPin,
    P::Error: StdError + Send + Sync + 'static,
{
    /// Light the LED or not; writes the pin only if that changes it.
    pub fn set(&mut self, on: bool) -> Result<(), LedError> {
        if self.lit == Some(on) {
            return Ok(());
        }
        let high = match self.level {
            ActiveLevel::High => on,
            ActiveLevel::Low => !on,
        };
        let written = if high {
            self.pin.set_high()
        } else {
            self.pin.set_low()
        };
        match written {
            Ok(()) => {
                self.lit = Some(on);
                Ok(())
            }
            Err(e) => {
                self.lit = None;
                Err(LedError::Pin {
                    led: self.name.clone(),
                    on,
                    source: Box::new(e),
                })
            }
        }
    }
}

/// The board's LEDs; any subset may be fitted.
#[derive(Debug)]
pub struct LedBank<P: OutputPin> {
    /// Everything fine, with the probe loop's heartbeat.
    pub green: Option<Led<P>>,
    /// Targets not working, or the board's gateway down.
    pub red: Option<Led<P>>,
    /// Upstream unreachable or draining.
    pub amber: Option<Led<P>>,
}

impl<P> LedBank<P>
where
    P: OutputPin,
    P::Error: StdError + Send + Sync + 'static,
{
    /// A bank of the LEDs present.
    pub fn new(green: Option<Led<P>>, red: Option<Led<P>>, amber: Option<Led<P>>) -> Self {
        LedBank { green, red, amber }
    }

    /// The LED of `colour`, if fitted.
    pub fn get(&self, colour: LedColour) -> Option<&Led<P>> {
        match colour {
            LedColour::Green => self.green.as_ref(),
            LedColour::Red => self.red.as_ref(),
            LedColour::Amber => self.amber.as_ref(),
        }
    }

    /// Where the LED of `colour` goes.
    pub fn slot(&mut self, colour: LedColour) -> &mut Option<Led<P>> {
        match colour {
            LedColour::Green => &mut self.green,
            LedColour::Red => &mut self.red,
            LedColour::Amber => &mut self.amber,
        }
    }

    /// Show `view` as it looks at `now_ms`: call it every tick.
    ///
    /// The chase runs over the LEDs present, in the order green, red, amber.
    /// Every LED is tried even if one fails; the first failure is returned.
    pub fn apply(&mut self, view: &LedView, now_ms: u64) -> Result<(), LedError> {
        let states = self.states(view, now_ms);
        let mut first_error = None;
        for (led, state) in [&mut self.green, &mut self.red, &mut self.amber]
            .into_iter()
            .zip(states)
        {
            if let (Some(led), Some(on)) = (led, state) {
                if let Err(e) = led.set(on) {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Whether each LED (green, red, amber; `None` when not fitted) is lit
    /// for `view` at `now_ms`. The chase runs over the LEDs present.
    fn states(&self, view: &LedView, now_ms: u64) -> [Option<bool>; 3] {
        let leds = self.present();
        let mut index = 0;
        let fitted = [
            self.green.is_some(),
            self.red.is_some(),
            self.amber.is_some(),
        ];
        let patterns = [view.green, view.red, view.amber];
        std::array::from_fn(|i| {
            fitted[i].then(|| {
                let on = lit(patterns[i], index, leds, now_ms);
                index += 1;
                on
            })
        })
    }

    /// Milliseconds from `now_ms` until some LED showing `view` changes,
    /// at most `limit`: how long the LED task may sleep.
    pub fn ms_until_change(&self, view: &LedView, now_ms: u64, limit: u64) -> u64 {
        let current = self.states(view, now_ms);
        (1..=limit)
            .find(|ms| self.states(view, now_ms + ms) != current)
            .unwrap_or(limit)
    }

    /// Turn every LED off (at shutdown).
    pub fn off(&mut self) -> Result<(), LedError> {
        self.apply(&LedView::all(LedPattern::Off), 0)
    }

    fn present(&self) -> usize {
        [
            self.green.is_some(),
            self.red.is_some(),
            self.amber.is_some(),
        ]
        .into_iter()
        .filter(|p| *p)
        .count()
    }
}

/// What the tests' failing pins fail with.
#[cfg(test)]
#[derive(Debug, thiserror::Error)]
#[error("pin broken")]
pub(crate) struct PinBroken;

#[cfg(test)]
impl embedded_hal::digital::Error for PinBroken {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

#[cfg(test)]
mod tests {
    use embedded_hal::digital::ErrorType;

    use super::*;
    use crate::leds::pattern::CHASE_STEP_MS;
    use LedPattern::*;

    /// Records every write: `true` for set_high, `false` for set_low.
    #[derive(Debug, Default)]
    struct Recording {
        writes: Vec<bool>,
        fail: bool,
    }

    impl ErrorType for Recording {
        type Error = PinBroken;
    }

    impl OutputPin for Recording {
        fn set_low(&mut self) -> Result<(), PinBroken> {
            self.write(false)
        }
        fn set_high(&mut self) -> Result<(), PinBroken> {
            self.write(true)
        }
    }

    impl Recording {
        fn write(&mut self, high: bool) -> Result<(), PinBroken> {
            if self.fail {
                return Err(PinBroken);
            }
            self.writes.push(high);
            Ok(())
        }
    }

    fn led(name: &str, level: ActiveLevel) -> Led<Recording> {
        Led::new(name, Recording::default(), level)
    }

    /// A bank of recording pins: each colour fitted with its active level
    /// (`H` high, `L` low), or not (`None`).
    fn bank(levels: [Option<ActiveLevel>; 3]) -> LedBank<Recording> {
        let [g, r, a] = levels;
        LedBank::new(
            g.map(|l| led("green", l)),
            r.map(|l| led("red", l)),
            a.map(|l| led("amber", l)),
        )
    }

    const H: Option<ActiveLevel> = Some(ActiveLevel::High);
    const L: Option<ActiveLevel> = Some(ActiveLevel::Low);

    /// `view` applied every 25 ms from 0 until `until_ms`.
    fn apply_for(bank: &mut LedBank<Recording>, view: &LedView, until_ms: u64) {
        for ms in (0..until_ms).step_by(25) {
            bank.apply(view, ms).unwrap();
        }
    }

    fn writes(led: &Option<Led<Recording>>) -> &[bool] {
        &led.as_ref().unwrap().pin().writes
    }

    #[test]
    fn active_high_writes_the_level_as_is() {
        let mut l = led("green", ActiveLevel::High);
        l.set(true).unwrap();
        l.set(false).unwrap();
        assert_eq!(l.pin().writes, [true, false]);
        assert_eq!(l.is_lit(), Some(false));
    }

    #[test]
    fn active_low_inverts() {
        let mut l = led("red", ActiveLevel::Low);
        l.set(true).unwrap();
        l.set(false).unwrap();
        assert_eq!(l.pin().writes, [false, true]);
    }

    #[test]
    fn first_set_always_writes_then_only_changes() {
        let mut l = led("amber", ActiveLevel::High);
        assert_eq!(l.is_lit(), None);
        l.set(false).unwrap();
        l.set(false).unwrap();
        l.set(true).unwrap();
        l.set(true).unwrap();
        l.set(true).unwrap();
        l.set(false).unwrap();
        assert_eq!(l.pin().writes, [false, true, false]);
    }

    #[test]
    fn a_failed_write_names_the_led_and_is_retried() {
        let mut l = led("red", ActiveLevel::High);
        l.pin.fail = true;
        let err = l.set(true).unwrap_err();
        assert_eq!(err.to_string(), "red LED: could not turn it on: pin broken");
        assert_eq!(l.is_lit(), None);
        l.pin.fail = false;
        l.set(true).unwrap();
        assert_eq!(l.pin().writes, [true]);
    }

    #[test]
    fn bank_applies_steady_patterns_without_redundant_writes() {
        let mut bank = bank([H, L, H]);
        apply_for(&mut bank, &LedView::all(Off).with(LedColour::Red, On), 5000);
        assert_eq!(writes(&bank.green), [false]);
        assert_eq!(writes(&bank.red), [false]); // active low: lit is low
        assert_eq!(writes(&bank.amber), [false]);
    }

    #[test]
    fn bank_heartbeat_writes_only_at_the_edges() {
        let mut bank = bank([H, None, None]);
        let view = LedView::all(Off).with(LedColour::Green, Heartbeat);
        apply_for(&mut bank, &view, 4000);
        // off at 0, on at 150, off at 2000, on at 2150
        assert_eq!(writes(&bank.green), [false, true, false, true]);
    }

    #[test]
    fn the_next_change_is_the_next_edge_of_any_led() {
        let bank = bank([H, H, None]);
        let heartbeat = LedView::all(Off).with(LedColour::Green, Heartbeat);
        // Off until 150 ms, then on until 2000 ms.
        assert_eq!(bank.ms_until_change(&heartbeat, 0, 1000), 150);
        assert_eq!(bank.ms_until_change(&heartbeat, 149, 1000), 1);
        assert_eq!(bank.ms_until_change(&heartbeat, 150, 5000), 1850);
        assert_eq!(bank.ms_until_change(&heartbeat, 150, 1000), 1000, "capped");
        let steady = LedView::all(On);
        assert_eq!(bank.ms_until_change(&steady, 7, 1000), 1000);
        // An LED that is not fitted never wakes anyone: amber blinks here.
        let amber_only = LedView::all(Off)
            .with(LedColour::Green, On)
            .with(LedColour::Amber, FastBlink);
        assert_eq!(bank.ms_until_change(&amber_only, 0, 1000), 1000);
    }

    #[test]
    fn chase_rotates_over_the_leds_present() {
        let mut bank = bank([H, H, H]);
        let mut seen = Vec::new();
        for step in 0..6 {
            bank.apply(&LedView::all(Chase), step * CHASE_STEP_MS)
                .unwrap();
            seen.push([&bank.green, &bank.red, &bank.amber].map(|l| l.as_ref().unwrap().is_lit()));
        }
        let g = [Some(true), Some(false), Some(false)];
        let r = [Some(false), Some(true), Some(false)];
        let a = [Some(false), Some(false), Some(true)];
        assert_eq!(seen, [g, r, a, g, r, a]);
    }

    #[test]
    fn chase_with_two_leds_alternates_between_them() {
        let mut bank = bank([H, None, L]);
        for step in 0..4 {
            bank.apply(&LedView::all(Chase), step * CHASE_STEP_MS)
                .unwrap();
        }
        assert_eq!(writes(&bank.green), [true, false, true, false]);
        // amber is active low: off = high, on = low
        assert_eq!(writes(&bank.amber), [true, false, true, false]);
    }

    #[test]
    fn locate_blinks_together_and_off_turns_all_off() {
        let mut bank = bank([H, H, H]);
        bank.apply(&LedView::all(Locate), 0).unwrap();
        bank.apply(&LedView::all(Locate), 250).unwrap();
        bank.apply(&LedView::all(Locate), 500).unwrap();
        for l in [&bank.green, &bank.red, &bank.amber] {
            assert_eq!(writes(l), [true, false, true]);
        }
        bank.off().unwrap();
        for l in [&bank.green, &bank.red, &bank.amber] {
            assert_eq!(writes(l), [true, false, true, false]);
        }
    }

    #[test]
    fn one_broken_led_does_not_stop_the_others() {
        let mut bank = bank([H, H, H]);
        bank.red.as_mut().unwrap().pin.fail = true;
        let err = bank.apply(&LedView::all(On), 0).unwrap_err();
        assert!(err.to_string().starts_with("red LED"), "{err}");
        assert_eq!(writes(&bank.green), [true]);
        assert_eq!(writes(&bank.amber), [true]);
    }
}
