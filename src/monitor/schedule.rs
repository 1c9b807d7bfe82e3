//! When things happen within a round: each target's start offset, so sends
//! are spread over the round instead of bursting at its start, and whether
//! a trace is due. Pure: durations and times go in.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::config::{format_duration, ProbeSettings};

/// How long the starts of a round are spread over: the interval less the
/// time the last target needs to finish (a ping and a trace, each up to a
/// timeout), with a tenth kept free so a round ends before the next is due.
pub fn spread_window(settings: &ProbeSettings) -> Duration {
    let last_target_needs = settings.timeout * 2;
    settings.interval.saturating_sub(last_target_needs) * 9 / 10
}

/// Starts fall on this grid: the targets due in one step start together
/// (their packets still leave at the configured rate), so a round of
/// 10,000 targets wakes the board 5 times a second, not 200.
pub const START_GRID: Duration = Duration::from_millis(200);

/// When target `index` of `count` starts, from the round's start: evenly
/// spaced over `window`, rounded down to the [`START_GRID`].
pub fn start_offset(index: usize, count: usize, window: Duration) -> Duration {
    if count <= 1 {
        return Duration::ZERO;
    }
    let index = index.min(count - 1) as u128;
    let grid = START_GRID.as_nanos();
    let nanos = window.as_nanos() * index / count as u128 / grid * grid;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Packets a trace is reckoned to cost. The first trace into a place the
/// board does not know sends every TTL up to `max_hops`; the later ones
/// start where the destination was and send a few (see `probe::trace`).
pub const TRACE_PACKETS: u8 = 8;

/// How many traces fit in a round beside the pings, at the configured
/// rate, if each costs [`TRACE_PACKETS`] (or `max_hops`, when fewer). At
/// least one, so deferred traces always move on.
pub fn trace_budget(settings: &ProbeSettings, targets: usize) -> usize {
    if settings.rate == 0 {
        return usize::MAX;
    }
    let window = spread_window(settings).max(Duration::from_secs(1));
    let packets = (f64::from(settings.rate) * window.as_secs_f64()) as usize;
    let pings = targets.saturating_mul(settings.count as usize);
    let per_trace = usize::from(settings.max_hops.clamp(1, TRACE_PACKETS));
    (packets.saturating_sub(pings) / per_trace).max(1)
}

/// Traces a round always has room for, however long the cycle.
pub const MIN_TRACES_PER_ROUND: usize = 16;

/// How many due traces a round takes, so that a cycle's traces are spread
/// over `trace_every` instead of all falling in one round: room for every
/// target twice a cycle (once, and once again for the ones a router's
/// ICMP ration held back), at least [`MIN_TRACES_PER_ROUND`], and never
/// more than the packet rate leaves ([`trace_budget`]).
pub fn trace_quota(settings: &ProbeSettings, targets: usize) -> usize {
    let rounds_per_cycle =
        (settings.trace_every.as_secs_f64() / settings.interval.as_secs_f64().max(0.001)).max(1.0);
    let spread = (2.0 * targets as f64 / rounds_per_cycle).ceil() as usize;
    spread
        .max(MIN_TRACES_PER_ROUND)
        .min(trace_budget(settings, targets))
}

/// Whether a target last traced at `last` is due for a trace at `now`.
pub fn trace_due(last: Option<Timestamp>, now: Timestamp, every: Duration) -> bool {
    match last {
        None => true,
        // A clock that jumped back makes `since` zero: wait a full period
        // from the jump rather than tracing every round.
        Some(t) => now.since(t) >= every || t > now.add(every),
    }
}

/// How long to wait before the next round, given how long this one took.
/// A round that overran its interval is followed at once, never overlapped.
pub fn delay_before_next(interval: Duration, round_took: Duration) -> Duration {
    interval.saturating_sub(round_took)
}

/// A warning when `targets` cannot be probed within one interval at the
/// configured rate, saying what to change.
pub fn budget_warning(targets: usize, settings: &ProbeSettings) -> Option<String> {
    if settings.rate == 0 || targets == 0 {
        return None;
    }
    let packets = targets as f64 * f64::from(settings.count);
    let needed = Duration::from_secs_f64(packets / f64::from(settings.rate));
    let window = spread_window(settings).max(Duration::from_secs(1));
    (needed > window).then(|| {
        format!(
            "{targets} targets x {} echo requests at {} packets/s need {}, more than a round's {}: rounds will run late; raise `rate` or `interval`",
            settings.count,
            settings.rate,
            format_duration(Duration::from_secs(needed.as_secs())),
            format_duration(settings.interval)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(interval_s: u64) -> ProbeSettings {
        ProbeSettings {
            interval: Duration::from_secs(interval_s),
            ..ProbeSettings::default()
        }
    }

    #[test]
    fn starts_are_spread_evenly_over_the_window() {
        let w = Duration::from_secs(10);
        let offsets: Vec<_> = (0..5).map(|i| start_offset(i, 5, w)).collect();
        assert_eq!(offsets, [0, 2, 4, 6, 8].map(Duration::from_secs).to_vec());
        assert_eq!(start_offset(0, 1, w), Duration::ZERO);
        // 1,000 starts in 10 s fall on the 200 ms grid, 20 to a step.
        let many: Vec<_> = (0..1000).map(|i| start_offset(i, 1000, w)).collect();
        assert!(many.iter().all(|d| d.as_millis() % 200 == 0));
        assert_eq!(many.iter().filter(|d| **d == Duration::ZERO).count(), 20);
        assert_eq!(many[999], Duration::from_millis(9800));
        assert!(start_offset(9, 5, w) < w);
    }

    #[test]
    fn the_window_leaves_room_for_the_last_target() {
        // 60 s interval, 1 s timeout: 58 s, less a tenth.
        assert_eq!(spread_window(&settings(60)), Duration::from_millis(52_200));
        // An interval shorter than a ping and a trace spreads nothing.
        let tight = ProbeSettings {
            interval: Duration::from_secs(2),
            timeout: Duration::from_millis(1500),
            ..ProbeSettings::default()
        };
        assert_eq!(spread_window(&tight), Duration::ZERO);
    }

    #[test]
    fn the_trace_budget_is_what_the_rate_leaves_after_pings() {
        // 52.2 s at 100/s = 5220 packets; 1000 x 3 pings; 2220 / 8.
        assert_eq!(trace_budget(&settings(60), 1000), 277);
        assert_eq!(trace_budget(&settings(60), 5000), 1, "never zero");
        let unpaced = ProbeSettings {
            rate: 0,
            ..settings(60)
        };
        assert_eq!(trace_budget(&unpaced, 1000), usize::MAX);
    }

    #[test]
    fn a_cycles_traces_are_spread_over_its_rounds() {
        // 600 s cycle, 60 s rounds: 10 rounds; 1000 targets, twice: 200.
        assert_eq!(trace_quota(&settings(60), 1000), 200);
        // The packet rate caps it (see above).
        assert_eq!(trace_quota(&settings(60), 2000), 1);
        let fast = ProbeSettings {
            rate: 1000,
            ..settings(60)
        };
        assert_eq!(trace_quota(&fast, 1000), 200);
        assert_eq!(trace_quota(&fast, 10), MIN_TRACES_PER_ROUND);
        // A cycle shorter than a round: every target, twice.
        let short = ProbeSettings {
            trace_every: Duration::from_secs(30),
            ..fast
        };
        assert_eq!(trace_quota(&short, 100), 200);
    }

    #[test]
    fn traces_are_due_every_period_and_at_first() {
        let every = Duration::from_secs(600);
        let t0 = Timestamp(1_000_000);
        assert!(trace_due(None, t0, every));
        assert!(!trace_due(
            Some(t0),
            t0.add(Duration::from_secs(599)),
            every
        ));
        assert!(trace_due(Some(t0), t0.add(every), every));
    }

    #[test]
    fn a_clock_jump_does_not_stop_or_flood_traces() {
        let every = Duration::from_secs(600);
        let last = Timestamp(10_000_000);
        // Back by a minute: not due yet.
        assert!(!trace_due(
            Some(last),
            last.sub(Duration::from_secs(60)),
            every
        ));
        // Back by a day (an RTC-less boot before NTP): trace again.
        assert!(trace_due(
            Some(last),
            last.sub(Duration::from_secs(86_400)),
            every
        ));
    }

    #[test]
    fn rounds_never_overlap() {
        let i = Duration::from_secs(60);
        assert_eq!(
            delay_before_next(i, Duration::from_secs(10)),
            Duration::from_secs(50)
        );
        assert_eq!(
            delay_before_next(i, Duration::from_secs(75)),
            Duration::ZERO
        );
    }

    #[test]
    fn a_sheet_too_big_for_the_rate_is_warned_about() {
        assert_eq!(budget_warning(100, &settings(60)), None);
        let w = budget_warning(10_000, &settings(60)).unwrap();
        assert!(w.contains("10000 targets"), "{w}");
        assert!(w.contains("5m"), "{w}");
        let unpaced = ProbeSettings {
            rate: 0,
            ..settings(60)
        };
        assert_eq!(budget_warning(10_000, &unpaced), None);
    }
}
