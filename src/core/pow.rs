//! Proof-of-work arithmetic (consensus): whether a hash meets a difficulty, and how much work a
//! block of that difficulty represents, so forks are compared by work, not by block count.

use super::hash::BlockHash;
use serde::{Deserialize, Serialize};
use std::ops::Add;

/// Leading zero bits of `digest` read as a big-endian 256-bit number.
pub fn leading_zero_bits(digest: &[u8; 32]) -> u32 {
    let mut zeros = 0;
    for byte in digest {
        if *byte == 0 {
            zeros += 8;
        } else {
            return zeros + byte.leading_zeros();
        }
    }
    zeros
}

/// Whether `hash` has at least `bits` leading zero bits.
pub fn meets_bits(hash: &BlockHash, bits: u32) -> bool {
    leading_zero_bits(hash.as_bytes()) >= bits
}

/// Expected number of hashes needed to find a block; sums into a branch's cumulative work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Work(pub u128);

impl Work {
    /// The work of one block mined at `bits`: 2^bits (saturating far above any usable difficulty).
    pub fn for_bits(bits: u32) -> Self {
        Work(1u128.checked_shl(bits).unwrap_or(u128::MAX))
    }
}

impl Add for Work {
    type Output = Work;
    fn add(self, other: Work) -> Work {
        Work(self.0.saturating_add(other.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_leading_zero_bits_big_endian() {
        let mut d = [0xffu8; 32];
        assert_eq!(leading_zero_bits(&d), 0);
        d[0] = 0;
        d[1] = 0x0f;
        assert_eq!(leading_zero_bits(&d), 12);
        assert_eq!(leading_zero_bits(&[0; 32]), 256);
        let mut h = BlockHash([0; 32]);
        h.0[2] = 0x80;
        assert!(meets_bits(&h, 16));
        assert!(!meets_bits(&h, 17));
    }

    #[test]
    fn work_doubles_per_bit() {
        assert_eq!(Work::for_bits(16).0, 65536);
        assert_eq!(Work::for_bits(17).0, 2 * Work::for_bits(16).0);
        assert_eq!(Work::for_bits(200).0, u128::MAX);
        assert_eq!((Work(u128::MAX) + Work(1)).0, u128::MAX);
    }
}
