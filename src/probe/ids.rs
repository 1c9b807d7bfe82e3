//! Probe ids that cannot be guessed from the ones seen before.
//!
//! A host that sees one of the board's echo requests (any target does)
//! learns its identifier and sequence number; if the next ones followed
//! from it, the host could forge answers about the requests to every other
//! target. So ids are a counter passed through a keyed permutation: a
//! Feistel network whose round function is SipHash under a key random to
//! the process. Being a permutation, it gives every counter value its own
//! id, so ids stay unique among the (far fewer than 65,536) probes in
//! flight; being keyed, the id after a known one is any other, equally
//! likely. Pure apart from drawing the key.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// Feistel rounds: four make a keyed permutation indistinguishable from a
/// random one (Luby-Rackoff) when the round function is a keyed PRF.
const ROUNDS: u8 = 4;

/// A keyed permutation of 16- and 32-bit counters.
pub struct IdPermutation(RandomState);

impl IdPermutation {
    /// A permutation under a fresh random key.
    pub fn new() -> IdPermutation {
        IdPermutation(RandomState::new())
    }

    /// The id of counter value `n`, among 65,536.
    pub fn of_u16(&self, n: u16) -> u16 {
        let (left, right) = self.feistel(8, u32::from(n >> 8), u32::from(n & 0xff));
        ((left << 8) | right) as u16
    }

    /// The id of counter value `n`, among 2^32.
    pub fn of_u32(&self, n: u32) -> u32 {
        let (left, right) = self.feistel(16, n >> 16, n & 0xffff);
        (left << 16) | right
    }

    /// Feistel rounds over two halves of `bits` bits each.
    fn feistel(&self, bits: u32, mut left: u32, mut right: u32) -> (u32, u32) {
        let mask = (1u32 << bits) - 1;
        for round in 0..ROUNDS {
            let mixed = self.0.hash_one((bits, round, right)) as u32 & mask;
            (left, right) = (right, left ^ mixed);
        }
        (left, right)
    }
}

impl Default for IdPermutation {
    fn default() -> IdPermutation {
        IdPermutation::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_counter_value_has_its_own_id() {
        let ids = IdPermutation::new();
        let all: HashSet<u16> = (0..=u16::MAX).map(|n| ids.of_u16(n)).collect();
        assert_eq!(all.len(), 65_536);
        let some: HashSet<u32> = (0..200_000u32).map(|n| ids.of_u32(n)).collect();
        assert_eq!(some.len(), 200_000);
    }

    /// How many of the ids after the first fall within 8 of the one
    /// before: what a forger who saw one would try next.
    fn near_the_one_before(ids: &[u32], modulus: u64) -> usize {
        ids.windows(2)
            .filter(|w| {
                let gap = (u64::from(w[1]) + modulus - u64::from(w[0])) % modulus;
                gap <= 8 || modulus - gap <= 8
            })
            .count()
    }

    #[test]
    fn the_next_id_does_not_follow_from_the_last() {
        let ids = IdPermutation::new();
        let short: Vec<u32> = (0..1000u16).map(|n| u32::from(ids.of_u16(n))).collect();
        let long: Vec<u32> = (0..1000u32).map(|n| ids.of_u32(n)).collect();
        // A counter would put all 999 there; a random id about 0.26 of
        // them (17 in 65,536), so more than 10 has odds below 1e-15.
        assert!(near_the_one_before(&short, 1 << 16) <= 10);
        assert!(near_the_one_before(&long, 1 << 32) <= 10);
        let other = IdPermutation::new();
        let other: Vec<u32> = (0..1000u16).map(|n| u32::from(other.of_u16(n))).collect();
        assert_ne!(short, other, "each process has its own key");
    }
}
