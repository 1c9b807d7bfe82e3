//! A target's recent round-trip times, as its sparkline shows them: one
//! value per round, oldest first, the last [`ROUNDS`] rounds.
//!
//! Kept inline and copied whole: the state holds one per target and every
//! snapshot another, so at 10,000 targets a heap buffer of `Option<f32>`
//! each (256 bytes with the allocator's header, twice) was 5 MB of the
//! monitor's memory. This is 124 bytes and no allocation.

use serde::ser::{Serialize, SerializeSeq, Serializer};

/// How many recent rounds the sparkline shows.
pub const ROUNDS: usize = 30;

/// The average RTT of each of the last rounds in milliseconds, `None` for
/// a round without an answer.
#[derive(Clone, Copy, PartialEq)]
pub struct Sparkline {
    /// Oldest first; `NaN` marks a round without an answer (a measured
    /// time is never `NaN`).
    ms: [f32; ROUNDS],
    len: u8,
}

impl Sparkline {
    /// The next round's value; the oldest falls off once there are
    /// [`ROUNDS`].
    pub fn push(&mut self, rtt_ms: Option<f32>) {
        let v = rtt_ms.unwrap_or(f32::NAN);
        let len = usize::from(self.len);
        if len < ROUNDS {
            self.ms[len] = v;
            self.len += 1;
        } else {
            self.ms.copy_within(1.., 0);
            self.ms[ROUNDS - 1] = v;
        }
    }

    /// The rounds, oldest first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<f32>> + '_ {
        self.ms[..usize::from(self.len)]
            .iter()
            .map(|&v| (!v.is_nan()).then_some(v))
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Sparkline {
    fn default() -> Sparkline {
        Sparkline {
            ms: [f32::NAN; ROUNDS],
            len: 0,
        }
    }
}

/// The last [`ROUNDS`] of `rounds`, oldest first.
impl FromIterator<Option<f32>> for Sparkline {
    fn from_iter<I: IntoIterator<Item = Option<f32>>>(rounds: I) -> Sparkline {
        let mut s = Sparkline::default();
        for v in rounds {
            s.push(v);
        }
        s
    }
}

impl std::fmt::Debug for Sparkline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// An array of numbers and `null`s, oldest first.
impl Serialize for Sparkline {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for v in self.iter() {
            seq.serialize_element(&v)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_rounds_oldest_first_with_the_missed_ones() {
        let mut s = Sparkline::default();
        assert!(s.is_empty());
        s.push(Some(1.5));
        s.push(None);
        s.push(Some(0.0));
        assert_eq!(s.iter().collect::<Vec<_>>(), [Some(1.5), None, Some(0.0)]);
        let many: Sparkline = (0..ROUNDS + 5).map(|i| Some(i as f32)).collect();
        assert_eq!(many.len(), ROUNDS);
        let first = many.iter().next().unwrap();
        let last = many.iter().last().unwrap();
        assert_eq!((first, last), (Some(5.0), Some((ROUNDS + 4) as f32)));
    }

    #[test]
    fn serializes_as_numbers_and_nulls() {
        let s: Sparkline = [Some(2.5), None].into_iter().collect();
        assert_eq!(serde_json::to_string(&s).unwrap(), "[2.5,null]");
        assert_eq!(format!("{s:?}"), "[Some(2.5), None]");
    }

    #[test]
    fn is_small_and_has_no_heap_part() {
        assert!(std::mem::size_of::<Sparkline>() <= 4 * ROUNDS + 4);
    }
}
