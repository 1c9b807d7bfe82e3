//! The LEDs as the rest of the program sees them: what each one shows now
//! (for the dashboard and `/api/v1/status`, whatever the backend), the
//! "locate" request, and which LEDs could not be driven and why.
//!
//! A [`LedPanel`] is a cheap handle; the LED task, the web server and the
//! composition root each hold a clone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::pattern::{self, patterns, LedInputs, LedView};
use super::settings::LedSettings;
use crate::clock::Timestamp;
use crate::lock::lock;
use crate::monitor::Snapshot;

/// How long `POST /admin/locate` blinks the LEDs.
pub const LOCATE_FOR: Duration = Duration::from_secs(30);

/// The driver's side of the LEDs, for the dashboard and the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct LedDriverStatus {
    /// `virtual`, `rppal`, `cdev` or `sysfs`.
    pub backend: &'static str,
    /// The LEDs being driven, e.g. `green (pin 17, active high)`.
    pub driven: Vec<String>,
    /// Why configured LEDs are dark or stale: one message each, naming the
    /// LED and the fix.
    pub faults: Vec<String>,
}

/// The LEDs at one instant, for one page or API answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LedReport {
    pub patterns: LedView,
    pub driver: LedDriverStatus,
}

#[derive(Debug, Default)]
struct PanelState {
    status: LedDriverStatus,
    /// Failures to open, fixed from the start.
    open_failures: Vec<String>,
    /// The latest write failure, cleared when writes work again.
    write_fault: Option<String>,
    locate_until: Option<Timestamp>,
}

/// A shared handle on the LEDs' state.
#[derive(Debug, Clone, Default)]
pub struct LedPanel {
    state: Arc<Mutex<PanelState>>,
    /// Woken when what the LEDs show changes other than by the snapshot
    /// or the clock (locate), so the LED task need not poll for it.
    changed: Arc<tokio::sync::Notify>,
}

impl LedPanel {
    /// The panel for `settings`, where the LEDs in `open_failures` could
    /// not be opened (their messages start with the LED's description).
    pub fn new(settings: &LedSettings, open_failures: Vec<String>) -> LedPanel {
        let driven = settings
            .leds
            .iter()
            .map(ToString::to_string)
            .filter(|d| !open_failures.iter().any(|f| f.starts_with(d.as_str())))
            .collect();
        let state = PanelState {
            status: LedDriverStatus {
                backend: settings.backend.name(),
                driven,
                faults: open_failures.clone(),
            },
            open_failures,
            write_fault: None,
            locate_until: None,
        };
        LedPanel {
            state: Arc::new(Mutex::new(state)),
            changed: Arc::default(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut PanelState) -> T) -> T {
        // The state stays consistent whatever a panicking holder did.
        let mut state = lock(&self.state);
        f(&mut state)
    }

    /// Blink every LED together for [`LOCATE_FOR`] from `now`; returns
    /// when it ends. Asking again restarts the time.
    pub fn locate(&self, now: Timestamp) -> Timestamp {
        let until = now.add(LOCATE_FOR);
        self.with(|s| s.locate_until = Some(until));
        self.changed.notify_one();
        until
    }

    /// Wait until the panel changes what the LEDs show (a locate); a
    /// change since the last call is reported at once.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// What each LED shows at `now`, given the monitor's latest snapshot.
    pub fn view(&self, snap: &Snapshot, now: Timestamp) -> LedView {
        self.view_knowing(snap, pattern::any_not_working(snap), now)
    }

    /// As [`LedPanel::view`], with whether any target is Not Working
    /// already worked out for this snapshot.
    pub fn view_knowing(&self, snap: &Snapshot, any_not_working: bool, now: Timestamp) -> LedView {
        let locate_until = self.with(|s| s.locate_until);
        patterns(
            &LedInputs::with_not_working(snap, any_not_working, locate_until, now),
            now,
        )
    }

    /// The patterns at `now` and the driver's status, together.
    pub fn report(&self, snap: &Snapshot, now: Timestamp) -> LedReport {
        LedReport {
            patterns: self.view(snap, now),
            driver: self.status(),
        }
    }

    /// The backend, the LEDs driven and the faults.
    pub fn status(&self) -> LedDriverStatus {
        self.with(|s| s.status.clone())
    }

    /// Record the outcome of the latest write (`None`: it worked). Returns
    /// whether that changed anything, so the caller logs only changes.
    pub fn set_write_fault(&self, fault: Option<String>) -> bool {
        self.with(|s| {
            if s.write_fault == fault {
                return false;
            }
            s.write_fault = fault;
            s.status.faults = s
                .open_failures
                .iter()
                .cloned()
                .chain(s.write_fault.clone())
                .collect();
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leds::{ActiveLevel, LedColour, LedPattern};
    use crate::leds::{LedBackend, LedLine, LedWiring};
    use crate::monitor::RoundInfo;
    use crate::store::RoundId;

    fn settings() -> LedSettings {
        LedSettings {
            backend: LedBackend::Rppal,
            leds: [(LedColour::Green, 17), (LedColour::Red, 27)]
                .into_iter()
                .map(|(colour, pin)| LedWiring {
                    colour,
                    line: LedLine::Gpio(pin),
                    active: ActiveLevel::High,
                })
                .collect(),
        }
    }

    fn after_first_round(now: Timestamp) -> Snapshot {
        let mut snap = Snapshot {
            last_round: Some(RoundInfo {
                round: RoundId(1),
                started: now,
                finished: now,
                duration: Duration::ZERO,
                finished_mono: None,
            }),
            ..Snapshot::default()
        };
        snap.board.interval = Duration::from_secs(60);
        snap
    }

    #[test]
    fn status_lists_what_is_driven_and_what_failed() {
        let panel = LedPanel::new(
            &settings(),
            vec!["red (pin 27, active high): BCM 27: permission denied".into()],
        );
        let status = panel.status();
        assert_eq!(status.backend, "rppal");
        assert_eq!(status.driven, ["green (pin 17, active high)"]);
        assert_eq!(status.faults.len(), 1);
    }

    #[test]
    fn write_faults_are_reported_once_and_cleared() {
        let panel = LedPanel::new(&settings(), vec!["red: gone".into()]);
        assert!(panel.set_write_fault(Some("green LED: could not turn it on: EIO".into())));
        assert!(!panel.set_write_fault(Some("green LED: could not turn it on: EIO".into())));
        assert_eq!(panel.status().faults.len(), 2);
        assert!(panel.set_write_fault(None));
        assert!(!panel.set_write_fault(None));
        assert_eq!(panel.status().faults, ["red: gone"]);
    }

    #[test]
    fn locate_lasts_thirty_seconds() {
        let panel = LedPanel::new(&LedSettings::default(), vec![]);
        let t = Timestamp(5_000_000);
        let snap = after_first_round(t);
        assert_eq!(panel.view(&snap, t).green, LedPattern::Heartbeat);
        let until = panel.locate(t);
        assert_eq!(until, t.add(Duration::from_secs(30)));
        assert_eq!(panel.view(&snap, t), LedView::all(LedPattern::Locate));
        let nearly = t.add(Duration::from_millis(29_999));
        assert_eq!(panel.view(&snap, nearly), LedView::all(LedPattern::Locate));
        assert_eq!(panel.view(&snap, until).green, LedPattern::Heartbeat);
    }

    #[test]
    fn a_stalled_loop_stops_the_heartbeat() {
        let panel = LedPanel::new(&LedSettings::default(), vec![]);
        let t = Timestamp(5_000_000);
        let mut snap = after_first_round(t);
        snap.board.interval = Duration::from_secs(10);
        assert_eq!(
            panel.view(&snap, t.add(Duration::from_secs(29))).green,
            LedPattern::Heartbeat
        );
        assert_eq!(
            panel.view(&snap, t.add(Duration::from_secs(30))).green,
            LedPattern::Off
        );
    }
}
