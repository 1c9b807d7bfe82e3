//! Ping statistics and the Working / Degraded / Not Working verdict.
//!
//! Pure: a list of round-trip times in, numbers and a status out.

use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

/// Loss at or above which a target that still answers is Degraded.
pub const DEFAULT_DEGRADED_LOSS: f64 = 0.2;

/// The status of one target after one round of echo requests.
///
/// Its one spelling for machines is [`Status::as_str`] (`working`,
/// `degraded`, `not_working`): the JSON API, the store's events and the
/// central documents all use it, and [`str::parse`] reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Replies came back and loss is under the degraded threshold.
    Working,
    /// Some replies came back, but loss is at or over the threshold.
    Degraded,
    /// Nothing came back.
    NotWorking,
}

impl Status {
    /// Classify a round: `degraded_loss` is a fraction in 0..=1.
    pub fn classify(sent: u32, received: u32, degraded_loss: f64) -> Status {
        if received == 0 {
            return Status::NotWorking;
        }
        // Some loss is needed to be Degraded, even with a threshold of 0.
        if received < sent && loss(sent, received) >= degraded_loss {
            Status::Degraded
        } else {
            Status::Working
        }
    }

    /// The name machines read: `working`, `degraded`, `not_working`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Working => "working",
            Status::Degraded => "degraded",
            Status::NotWorking => "not_working",
        }
    }

    /// The label the dashboard and tables show.
    pub fn label(self) -> &'static str {
        match self {
            Status::Working => "Working",
            Status::Degraded => "Degraded",
            Status::NotWorking => "Not Working",
        }
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A name that is not one of [`Status::as_str`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}: expected working, degraded or not_working")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Status, UnknownStatus> {
        [Status::Working, Status::Degraded, Status::NotWorking]
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// Fraction of requests without a reply (0 when nothing was sent).
pub fn loss(sent: u32, received: u32) -> f64 {
    if sent == 0 {
        return 0.0;
    }
    f64::from(sent.saturating_sub(received)) / f64::from(sent)
}

/// Round-trip time summary in milliseconds, as `ping` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RttSummary {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    /// Mean deviation as ping(8) computes it: sqrt(mean(x²) - mean(x)²).
    pub mdev: f64,
}

impl RttSummary {
    /// `None` when no reply came back.
    pub fn from_rtts(rtts: &[Duration]) -> Option<RttSummary> {
        if rtts.is_empty() {
            return None;
        }
        let ms: Vec<f64> = rtts.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        let n = ms.len() as f64;
        let avg = ms.iter().sum::<f64>() / n;
        let mean_sq = ms.iter().map(|x| x * x).sum::<f64>() / n;
        Some(RttSummary {
            min: ms.iter().copied().fold(f64::INFINITY, f64::min),
            avg,
            max: ms.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            // Rounding can make the difference a hair below zero.
            mdev: (mean_sq - avg * avg).max(0.0).sqrt(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_read_back() {
        for status in [Status::Working, Status::Degraded, Status::NotWorking] {
            assert_eq!(status.as_str().parse(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert_eq!(
            "Working".parse::<Status>(),
            Err(UnknownStatus("Working".into()))
        );
    }

    #[test]
    fn classify_thresholds() {
        assert_eq!(Status::classify(3, 3, 0.2), Status::Working);
        assert_eq!(Status::classify(3, 2, 0.2), Status::Degraded);
        assert_eq!(Status::classify(3, 0, 0.2), Status::NotWorking);
        assert_eq!(Status::classify(10, 9, 0.2), Status::Working);
        assert_eq!(
            Status::classify(10, 8, 0.2),
            Status::Degraded,
            "at the threshold"
        );
        assert_eq!(Status::classify(0, 0, 0.2), Status::NotWorking);
        assert_eq!(
            Status::classify(3, 3, 0.0),
            Status::Working,
            "no loss is never Degraded"
        );
        assert_eq!(Status::classify(3, 2, 0.0), Status::Degraded);
    }

    #[test]
    fn loss_fraction() {
        assert_eq!(loss(4, 3), 0.25);
        assert_eq!(loss(0, 0), 0.0);
        assert_eq!(loss(2, 5), 0.0, "duplicates never make loss negative");
    }

    #[test]
    fn rtt_summary_matches_ping() {
        let rtts = [1, 2, 3].map(Duration::from_millis);
        let s = RttSummary::from_rtts(&rtts).unwrap();
        assert_eq!((s.min, s.avg, s.max), (1.0, 2.0, 3.0));
        assert!((s.mdev - (2.0f64 / 3.0).sqrt()).abs() < 1e-9);
        assert_eq!(RttSummary::from_rtts(&[]), None);
    }

    #[test]
    fn single_rtt_has_zero_mdev() {
        let s = RttSummary::from_rtts(&[Duration::from_micros(1500)]).unwrap();
        assert_eq!((s.min, s.avg, s.max, s.mdev), (1.5, 1.5, 1.5, 0.0));
    }
}
