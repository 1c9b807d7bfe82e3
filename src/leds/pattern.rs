//! LED logic, pure: which pattern each LED shows ([`patterns`]) and whether
//! a pattern is lit at a given instant ([`lit`]).
//!
//! Both take time as a parameter and never read a clock or sleep, so every
//! state, transition and blink phase is tested on the host. Blinking is a
//! function of the time: the LED task re-applies the view at each edge
//! and the driver writes only the changes.

use serde::Serialize;

use crate::clock::{Mono, Timestamp};
use crate::monitor::{self, Snapshot, UpstreamView};

/// A tick that hits every phase boundary below (all are multiples of it):
/// how often `leds test` and a retrying LED task look again.
pub const TICK_MS: u64 = 25;
/// Heartbeat: one short blink-off per period.
pub const HEARTBEAT_PERIOD_MS: u64 = 2000;
/// Heartbeat: how long the blink-off lasts, at the start of each period.
pub const HEARTBEAT_OFF_MS: u64 = 150;
/// Slow blink: on for this long, then off for as long.
pub const SLOW_BLINK_HALF_MS: u64 = 1000;
/// Fast blink at 4 Hz: on for this long, then off for as long.
pub const FAST_BLINK_HALF_MS: u64 = 125;
/// Chase: how long each LED stays lit before the next one takes over.
pub const CHASE_STEP_MS: u64 = 250;
/// Locate at 2 Hz, all LEDs together: on for this long, then off as long.
pub const LOCATE_HALF_MS: u64 = 250;

/// What an LED is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedPattern {
    #[default]
    Off,
    On,
    Heartbeat,
    SlowBlink,
    FastBlink,
    Chase,
    Locate,
}

impl LedPattern {
    /// The name used in the API and on the dashboard, e.g. `fast_blink`.
    pub fn name(self) -> &'static str {
        match self {
            LedPattern::Off => "off",
            LedPattern::On => "on",
            LedPattern::Heartbeat => "heartbeat",
            LedPattern::SlowBlink => "slow_blink",
            LedPattern::FastBlink => "fast_blink",
            LedPattern::Chase => "chase",
            LedPattern::Locate => "locate",
        }
    }
}

/// The pattern each LED shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct LedView {
    pub green: LedPattern,
    pub red: LedPattern,
    pub amber: LedPattern,
}

impl LedView {
    /// The same pattern on every LED.
    pub fn all(pattern: LedPattern) -> LedView {
        LedView {
            green: pattern,
            red: pattern,
            amber: pattern,
        }
    }

    /// This view with `colour` showing `pattern`.
    pub fn with(mut self, colour: LedColour, pattern: LedPattern) -> LedView {
        *match colour {
            LedColour::Green => &mut self.green,
            LedColour::Red => &mut self.red,
            LedColour::Amber => &mut self.amber,
        } = pattern;
        self
    }

    /// The pattern of one LED.
    pub fn get(&self, colour: LedColour) -> LedPattern {
        match colour {
            LedColour::Green => self.green,
            LedColour::Red => self.red,
            LedColour::Amber => self.amber,
        }
    }
}

/// The three LEDs, by what they mean (docs/DESIGN.md, "LEDs").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LedColour {
    /// Everything fine, with the probe loop's heartbeat.
    Green,
    /// Targets not working, or the board's gateway down.
    Red,
    /// The upstream link.
    Amber,
}

impl LedColour {
    /// In the order of the chase.
    pub const ALL: [LedColour; 3] = [LedColour::Green, LedColour::Red, LedColour::Amber];

    /// `green`, `red` or `amber`.
    pub fn name(self) -> &'static str {
        match self {
            LedColour::Green => "green",
            LedColour::Red => "red",
            LedColour::Amber => "amber",
        }
    }

    /// The LED's config section, for messages.
    pub fn config_key(self) -> &'static str {
        match self {
            LedColour::Green => "leds.green",
            LedColour::Red => "leds.red",
            LedColour::Amber => "leds.amber",
        }
    }
}

impl std::fmt::Display for LedColour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the amber LED reports about the upstream (central MongoDB) link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamLed {
    /// No upstream configured, or it is up to date.
    #[default]
    Off,
    /// Configured but unreachable: the backlog is growing.
    Unreachable,
    /// Reachable again and sending the backlog.
    Draining,
}

/// Everything the LEDs depend on, gathered by the caller from the snapshot,
/// the probe loop's liveness and the locate command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedInputs {
    /// The first round of probes has ended.
    pub first_round_done: bool,
    /// The probe loop ticked recently; a stalled loop stops the heartbeat.
    pub loop_alive: bool,
    /// At least one target is Not Working (Degraded does not count).
    pub any_not_working: bool,
    /// The board's own default gateway does not answer.
    pub board_gateway_down: bool,
    /// The upstream link, for the amber LED.
    pub upstream: UpstreamLed,
    /// "Locate" was asked for until this moment.
    pub locate_until: Option<Timestamp>,
}

impl LedInputs {
    /// The inputs as of `now`, from the monitor's latest snapshot and the
    /// locate deadline. The probe loop counts as alive by the same rule as
    /// `/healthz` ([`monitor::health`]), so a stalled loop stops the
    /// heartbeat when the health check starts failing.
    pub fn from_snapshot(
        snap: &Snapshot,
        locate_until: Option<Timestamp>,
        now: Timestamp,
    ) -> LedInputs {
        Self::with_not_working(snap, any_not_working(snap), locate_until, now)
    }

    /// As [`LedInputs::from_snapshot`], with [`any_not_working`] already
    /// known: the one input that costs a pass over every target, which a
    /// caller ticking many times per snapshot works out once.
    pub fn with_not_working(
        snap: &Snapshot,
        any_not_working: bool,
        locate_until: Option<Timestamp>,
        now: Timestamp,
    ) -> LedInputs {
        LedInputs {
            first_round_done: snap.last_round.is_some(),
            // The LEDs run beside the loop: its liveness on the monotonic
            // clock, like /healthz.
            loop_alive: monitor::health(snap, now, Mono::now()).ok(),
            any_not_working,
            board_gateway_down: snap.board_gateways.iter().any(|g| g.up == Some(false)),
            upstream: match snap.upstream {
                UpstreamView::Unreachable { .. } => UpstreamLed::Unreachable,
                UpstreamView::Draining { .. } => UpstreamLed::Draining,
                UpstreamView::Off
                | UpstreamView::Connecting { .. }
                | UpstreamView::Synced { .. } => UpstreamLed::Off,
            },
            locate_until,
        }
    }
}

/// Whether any target of the snapshot is Not Working (red's meaning).
pub fn any_not_working(snap: &Snapshot) -> bool {
    snap.targets
        .iter()
        .any(|t| t.status == Some(crate::probe::Status::NotWorking))
}

/// The pattern of each LED for `inputs` at `now` (docs/DESIGN.md, "LEDs").
///
/// Precedence: locate, then the start-up chase, then each LED's own meaning.
pub fn patterns(inputs: &LedInputs, now: Timestamp) -> LedView {
    if inputs.locate_until.is_some_and(|until| now < until) {
        return LedView::all(LedPattern::Locate);
    }
    if !inputs.first_round_done {
        return LedView::all(LedPattern::Chase);
    }
    LedView {
        green: if inputs.loop_alive && !inputs.any_not_working {
            LedPattern::Heartbeat
        } else {
            LedPattern::Off
        },
        red: if inputs.board_gateway_down {
            LedPattern::FastBlink
        } else if inputs.any_not_working {
            LedPattern::On
        } else {
            LedPattern::Off
        },
        amber: match inputs.upstream {
            UpstreamLed::Unreachable => LedPattern::On,
            UpstreamLed::Draining => LedPattern::SlowBlink,
            UpstreamLed::Off => LedPattern::Off,
        },
    }
}

/// Whether an LED showing `pattern` is lit at `now_ms` (milliseconds since
/// any fixed epoch). `led_index` is the LED's place among the `leds` LEDs
/// present; only [`LedPattern::Chase`] uses them.
pub fn lit(pattern: LedPattern, led_index: usize, leds: usize, now_ms: u64) -> bool {
    match pattern {
        LedPattern::Off => false,
        LedPattern::On => true,
        LedPattern::Heartbeat => now_ms % HEARTBEAT_PERIOD_MS >= HEARTBEAT_OFF_MS,
        LedPattern::SlowBlink => (now_ms / SLOW_BLINK_HALF_MS) % 2 == 0,
        LedPattern::FastBlink => (now_ms / FAST_BLINK_HALF_MS) % 2 == 0,
        LedPattern::Locate => (now_ms / LOCATE_HALF_MS) % 2 == 0,
        LedPattern::Chase => {
            if leds == 0 {
                return false;
            }
            // usize -> u64 is lossless on every target we build for.
            let step = now_ms / CHASE_STEP_MS % leds as u64;
            step == led_index as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LedPattern::*;

    fn view(green: LedPattern, red: LedPattern, amber: LedPattern) -> LedView {
        LedView { green, red, amber }
    }

    /// Running normally: first round done, loop alive, all Working.
    fn healthy() -> LedInputs {
        LedInputs {
            first_round_done: true,
            loop_alive: true,
            ..LedInputs::default()
        }
    }

    #[test]
    fn table_of_states() {
        let t = Timestamp(1_000_000);
        let cases: Vec<(&str, LedInputs, LedView)> = vec![
            (
                "before the first round: chase",
                LedInputs::default(),
                view(Chase, Chase, Chase),
            ),
            (
                "chase wins over faults before the first round",
                LedInputs {
                    any_not_working: true,
                    board_gateway_down: true,
                    upstream: UpstreamLed::Unreachable,
                    ..LedInputs::default()
                },
                view(Chase, Chase, Chase),
            ),
            (
                "healthy: heartbeat only",
                healthy(),
                view(Heartbeat, Off, Off),
            ),
            (
                "stalled loop stops the heartbeat",
                LedInputs {
                    loop_alive: false,
                    ..healthy()
                },
                view(Off, Off, Off),
            ),
            (
                "a target not working: red on, green off",
                LedInputs {
                    any_not_working: true,
                    ..healthy()
                },
                view(Off, On, Off),
            ),
            (
                "board gateway down: red fast blink",
                LedInputs {
                    board_gateway_down: true,
                    ..healthy()
                },
                view(Heartbeat, FastBlink, Off),
            ),
            (
                "gateway down wins over not working on red",
                LedInputs {
                    board_gateway_down: true,
                    any_not_working: true,
                    ..healthy()
                },
                view(Off, FastBlink, Off),
            ),
            (
                "upstream unreachable: amber on",
                LedInputs {
                    upstream: UpstreamLed::Unreachable,
                    ..healthy()
                },
                view(Heartbeat, Off, On),
            ),
            (
                "upstream draining: amber slow blink",
                LedInputs {
                    upstream: UpstreamLed::Draining,
                    ..healthy()
                },
                view(Heartbeat, Off, SlowBlink),
            ),
            (
                "locate in the future: all locate",
                LedInputs {
                    locate_until: Some(Timestamp(t.0 + 1)),
                    any_not_working: true,
                    ..healthy()
                },
                view(Locate, Locate, Locate),
            ),
            (
                "locate wins over the start-up chase",
                LedInputs {
                    locate_until: Some(Timestamp(t.0 + 5000)),
                    ..LedInputs::default()
                },
                view(Locate, Locate, Locate),
            ),
            (
                "locate ends at its deadline",
                LedInputs {
                    locate_until: Some(t),
                    ..healthy()
                },
                view(Heartbeat, Off, Off),
            ),
            (
                "locate in the past is ignored",
                LedInputs {
                    locate_until: Some(Timestamp(t.0 - 1)),
                    upstream: UpstreamLed::Draining,
                    ..healthy()
                },
                view(Heartbeat, Off, SlowBlink),
            ),
        ];
        for (what, inputs, want) in cases {
            assert_eq!(patterns(&inputs, t), want, "{what}");
        }
    }

    #[test]
    fn transitions_over_time() {
        let mut inputs = LedInputs::default();
        assert_eq!(patterns(&inputs, Timestamp(0)), view(Chase, Chase, Chase));
        // First round ends, everything fine.
        inputs.first_round_done = true;
        inputs.loop_alive = true;
        assert_eq!(patterns(&inputs, Timestamp(10)), view(Heartbeat, Off, Off));
        // Locate for 10 s from t=20.
        inputs.locate_until = Some(Timestamp(10_020));
        assert_eq!(
            patterns(&inputs, Timestamp(20)),
            view(Locate, Locate, Locate)
        );
        assert_eq!(
            patterns(&inputs, Timestamp(10_019)),
            view(Locate, Locate, Locate)
        );
        assert_eq!(
            patterns(&inputs, Timestamp(10_020)),
            view(Heartbeat, Off, Off)
        );
        // A target fails, then recovers.
        inputs.any_not_working = true;
        assert_eq!(patterns(&inputs, Timestamp(11_000)), view(Off, On, Off));
        inputs.any_not_working = false;
        assert_eq!(
            patterns(&inputs, Timestamp(12_000)),
            view(Heartbeat, Off, Off)
        );
        // Upstream goes away, comes back and drains, then is up to date.
        inputs.upstream = UpstreamLed::Unreachable;
        assert_eq!(patterns(&inputs, Timestamp(13_000)).amber, On);
        inputs.upstream = UpstreamLed::Draining;
        assert_eq!(patterns(&inputs, Timestamp(14_000)).amber, SlowBlink);
        inputs.upstream = UpstreamLed::Off;
        assert_eq!(patterns(&inputs, Timestamp(15_000)).amber, Off);
        // The loop stalls, then ticks again.
        inputs.loop_alive = false;
        assert_eq!(patterns(&inputs, Timestamp(16_000)).green, Off);
        inputs.loop_alive = true;
        assert_eq!(patterns(&inputs, Timestamp(17_000)).green, Heartbeat);
    }

    #[test]
    fn steady_patterns() {
        for ms in [0, 1, 149, 150, 999, 1000, 123_456_789] {
            assert!(!lit(Off, 0, 3, ms));
            assert!(lit(On, 0, 3, ms));
        }
    }

    /// `pattern` on LED `i` of three is lit at each time in `on` (ms) and
    /// dark at each time in `off`.
    fn assert_lit_at(pattern: LedPattern, i: usize, on: &[u64], off: &[u64]) {
        for &ms in on {
            assert!(
                lit(pattern, i, 3, ms),
                "{pattern:?} LED {i} dark at {ms} ms"
            );
        }
        for &ms in off {
            assert!(
                !lit(pattern, i, 3, ms),
                "{pattern:?} LED {i} lit at {ms} ms"
            );
        }
    }

    #[test]
    fn heartbeat_is_on_with_a_short_off_every_two_seconds() {
        let on = [150, 1000, 1999, 2150];
        let off = [0, 149, 2000, 2149, 40_000 + 75];
        assert_lit_at(Heartbeat, 0, &on, &off);
    }

    #[test]
    fn slow_blink_is_one_second_each() {
        assert_lit_at(SlowBlink, 0, &[0, 999, 2000], &[1000, 1999, 3500]);
    }

    #[test]
    fn fast_blink_is_four_hertz() {
        assert_lit_at(FastBlink, 0, &[0, 124, 250, 1000], &[125, 249, 875]);
    }

    #[test]
    fn locate_blinks_all_together_at_two_hertz() {
        for i in 0..3 {
            assert_lit_at(Locate, i, &[0, 249, 500], &[250, 499]);
        }
    }

    #[test]
    fn chase_lights_one_led_at_a_time_in_turn() {
        let lit_at = |ms| -> Vec<bool> { (0..3).map(|i| lit(Chase, i, 3, ms)).collect() };
        assert_eq!(lit_at(0), [true, false, false]);
        assert_eq!(lit_at(249), [true, false, false]);
        assert_eq!(lit_at(250), [false, true, false]);
        assert_eq!(lit_at(500), [false, false, true]);
        assert_eq!(lit_at(750), [true, false, false]);
        // With two LEDs present the chase alternates between them.
        assert!(lit(Chase, 1, 2, 250) && !lit(Chase, 0, 2, 250));
        assert!(lit(Chase, 0, 2, 500));
        // No LEDs, or an index out of range: never lit.
        assert!(!lit(Chase, 0, 0, 0));
        assert!(!lit(Chase, 5, 3, 0));
    }
}
