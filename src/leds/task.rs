//! The LED task: it works out what each LED shows from the monitor's
//! latest snapshot and writes the pins that change, then sleeps until the
//! next edge of a blink, a new snapshot or a locate, and at most
//! [`MAX_SLEEP_MS`]. Blinking comes from the time passed to the pattern
//! engine, never from counting sleeps, so a late wake only shifts an edge;
//! the time-based inputs (a stalled probe loop darkens green, a locate
//! ends) are looked at again within the longest sleep. A heartbeat costs
//! two wake-ups every two seconds, not forty a second.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use embedded_hal::digital::OutputPin;
use tokio::sync::watch;

use super::pattern;
use super::{LedBank, LedPanel};
use crate::clock::Timestamp;
use crate::monitor::Snapshot;

/// The longest the task sleeps: how late a stalled loop or the end of a
/// locate can show.
pub const MAX_SLEEP_MS: u64 = 1000;

/// Drive `bank` until `stop` turns true (or its sender goes away), then
/// turn every LED off and give the pins back (dropping them restores what
/// their backend found, e.g. a sysfs trigger).
///
/// `clock` gives the wall time the snapshot's times are in; tests pass
/// one built on tokio's paused clock.
pub async fn drive<P>(
    mut bank: LedBank<P>,
    panel: LedPanel,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    clock: impl Fn() -> Timestamp,
    mut stop: watch::Receiver<bool>,
) where
    P: OutputPin,
    P::Error: StdError + Send + Sync + 'static,
{
    // Red's input needs a pass over every target: once per snapshot, not
    // at every wake-up (`None`: count at the next pass). The monitor may
    // rewrite a snapshot in place, so a new one is known by the channel's
    // change marks, not by its address; and none is held while this
    // sleeps, which would make the monitor copy it.
    let mut not_working: Option<bool> = None;
    let mut snapshots_open = true;
    loop {
        let now = clock();
        let view = {
            let snap = snapshots.borrow_and_update();
            if snap.has_changed() {
                not_working = None;
            }
            let answer = *not_working.get_or_insert_with(|| pattern::any_not_working(&snap));
            panel.view_knowing(&snap, answer, now)
        };
        let now_ms = u64::try_from(now.millis()).unwrap_or(0);
        let written = bank.apply(&view, now_ms);
        let write_failed = written.is_err();
        let fault = written.err().map(|e| e.to_string());
        if panel.set_write_fault(fault.clone()) {
            match fault {
                Some(why) => eprintln!("edgeprobe: LEDs: {why}"),
                None => eprintln!("edgeprobe: LEDs: writing works again"),
            }
        }
        // A failed write is retried at the next wake-up, within a tick.
        let limit = if write_failed {
            pattern::TICK_MS
        } else {
            MAX_SLEEP_MS
        };
        let sleep = Duration::from_millis(bank.ms_until_change(&view, now_ms, limit));
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            changed = snapshots.changed(), if snapshots_open => {
                snapshots_open = changed.is_ok();
                not_working = None;
            }
            _ = panel.changed() => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
    if let Err(e) = bank.off() {
        eprintln!("edgeprobe: LEDs: at stop: {e}");
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::{sleep, Instant};

    use super::*;
    use crate::leds::driver::PinBroken;
    use crate::leds::LedSettings;
    use crate::leds::{ActiveLevel, Led, VirtualPin};
    use crate::monitor::{BoardGateway, RoundInfo, TargetView};
    use crate::probe::Status;
    use crate::store::RoundId;

    /// Three virtual LEDs and readers for them.
    fn bank() -> (LedBank<VirtualPin>, [VirtualPin; 3]) {
        let pins = [VirtualPin::new(), VirtualPin::new(), VirtualPin::new()];
        let led = |name, pin: &VirtualPin| Some(Led::new(name, pin.clone(), ActiveLevel::High));
        (
            LedBank::new(
                led("green", &pins[0]),
                led("red", &pins[1]),
                led("amber", &pins[2]),
            ),
            pins,
        )
    }

    fn lit(pins: &[VirtualPin; 3]) -> [bool; 3] {
        [pins[0].is_high(), pins[1].is_high(), pins[2].is_high()]
    }

    const START: Timestamp = Timestamp(1_800_000_000_000);

    /// Wall time that follows tokio's (paused) clock from START.
    fn paused_clock() -> impl Fn() -> Timestamp {
        let origin = Instant::now();
        move || START.add(origin.elapsed())
    }

    fn round_at(finished: Timestamp) -> Option<RoundInfo> {
        Some(RoundInfo {
            round: RoundId(1),
            started: finished,
            finished,
            duration: Duration::ZERO,
            finished_mono: None,
        })
    }

    fn target(status: Status) -> TargetView {
        TargetView {
            status: Some(status),
            ..TargetView::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_leds_follow_the_snapshot_and_blink_by_the_clock() {
        let (bank, pins) = bank();
        let panel = LedPanel::new(&LedSettings::default(), vec![]);
        let mut snap = Snapshot::default();
        snap.board.started_at = START;
        snap.board.interval = Duration::from_secs(10);
        let (snap_tx, snap_rx) = watch::channel(Arc::new(snap.clone()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(drive(bank, panel.clone(), snap_rx, paused_clock(), stop_rx));

        // START is a multiple of every period, so phases line up with it.
        // Before the first round: the chase, one LED at a time.
        sleep(Duration::from_millis(10)).await;
        assert_eq!(lit(&pins), [true, false, false]);
        sleep(Duration::from_millis(250)).await;
        assert_eq!(lit(&pins), [false, true, false]);
        sleep(Duration::from_millis(250)).await;
        assert_eq!(lit(&pins), [false, false, true]);

        // The first round ends at t = 1 s, all Working: the heartbeat, off
        // for the first 150 ms of each 2 s, on otherwise.
        sleep(Duration::from_millis(490)).await; // t = 1.0 s
        snap.last_round = round_at(START.add(Duration::from_secs(1)));
        snap.targets = vec![target(Status::Working)];
        snap_tx.send_replace(Arc::new(snap.clone()));
        sleep(Duration::from_millis(1010)).await; // t = 2.01 s
        assert_eq!(lit(&pins), [false, false, false], "heartbeat blink-off");
        sleep(Duration::from_millis(200)).await; // t = 2.21 s
        assert_eq!(lit(&pins), [true, false, false]);

        // A target goes Not Working: red on, green off.
        snap.targets = vec![target(Status::NotWorking)];
        snap_tx.send_replace(Arc::new(snap.clone()));
        sleep(Duration::from_millis(100)).await;
        assert_eq!(lit(&pins), [false, true, false]);

        // The board's gateway goes down too: red blinks at 4 Hz.
        snap.board_gateways = vec![BoardGateway {
            addr: "198.18.0.1".parse().unwrap(),
            up: Some(false),
        }];
        snap_tx.send_replace(Arc::new(snap.clone()));
        sleep(Duration::from_millis(1690)).await; // t = 4.0 s exactly: a tick
        sleep(Duration::from_millis(10)).await;
        assert!(pins[1].is_high(), "fast blink on at 4.01 s");
        sleep(Duration::from_millis(125)).await;
        assert!(!pins[1].is_high(), "fast blink off at 4.135 s");

        // Locate: all together at 2 Hz, for 30 s.
        snap.board_gateways.clear();
        snap.targets = vec![target(Status::Working)];
        snap_tx.send_replace(Arc::new(snap.clone()));
        sleep(Duration::from_millis(865)).await; // t = 5.0 s
        panel.locate(START.add(Duration::from_secs(5)));
        sleep(Duration::from_millis(10)).await;
        assert_eq!(lit(&pins), [true, true, true]);
        sleep(Duration::from_millis(250)).await;
        assert_eq!(lit(&pins), [false, false, false]);
        // A round at t = 30 s keeps the loop alive; after the 30 s of
        // locate the heartbeat is back.
        sleep(Duration::from_millis(24_740)).await; // t = 30.0 s
        snap.last_round = round_at(START.add(Duration::from_secs(30)));
        snap_tx.send_replace(Arc::new(snap.clone()));
        sleep(Duration::from_millis(5_260)).await; // t = 35.26 s
        assert_eq!(lit(&pins), [true, false, false]);

        // The loop stalls: no round for three intervals (30 s) stops the
        // heartbeat; the green LED stays dark.
        sleep(Duration::from_secs(30)).await; // t = 65.26 s
        for _ in 0..10 {
            sleep(Duration::from_millis(200)).await;
            assert_eq!(lit(&pins), [false, false, false]);
        }

        // Stop: every LED off, and the task ends.
        stop_tx.send_replace(true);
        task.await.unwrap();
        assert_eq!(lit(&pins), [false, false, false]);
    }

    /// A pin that fails while its flag is set.
    #[derive(Debug, Clone, Default)]
    struct Flaky(Arc<std::sync::atomic::AtomicBool>);

    impl embedded_hal::digital::ErrorType for Flaky {
        type Error = PinBroken;
    }

    impl OutputPin for Flaky {
        fn set_low(&mut self) -> Result<(), PinBroken> {
            self.check()
        }
        fn set_high(&mut self) -> Result<(), PinBroken> {
            self.check()
        }
    }

    impl Flaky {
        fn check(&self) -> Result<(), PinBroken> {
            if self.0.load(std::sync::atomic::Ordering::Relaxed) {
                Err(PinBroken)
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn write_failures_show_as_a_fault_until_writes_work() {
        let pin = Flaky::default();
        pin.0.store(true, std::sync::atomic::Ordering::Relaxed);
        let bank = LedBank::new(
            Some(Led::new("green", pin.clone(), ActiveLevel::High)),
            None,
            None,
        );
        let panel = LedPanel::new(&LedSettings::default(), vec![]);
        let (_snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::default()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(drive(bank, panel.clone(), snap_rx, paused_clock(), stop_rx));
        sleep(Duration::from_millis(100)).await;
        assert_eq!(panel.status().faults.len(), 1);
        assert!(panel.status().faults[0].starts_with("green LED: could not turn it"));
        pin.0.store(false, std::sync::atomic::Ordering::Relaxed);
        sleep(Duration::from_millis(100)).await;
        assert!(panel.status().faults.is_empty());
        stop_tx.send_replace(true);
        task.await.unwrap();
    }
}
