//! Proof-of-work arithmetic (consensus): the target a block hash must not exceed, its 32-bit
//! compact form carried in headers, how a retarget moves it, and the work a target stands for,
//! so forks are compared by work, not by block count. `docs/consensus.md` states each rule.

use super::hash::BlockHash;
use ruint::aliases::U256;
use serde::{Deserialize, Serialize};
use std::ops::Add;

/// Wide enough for a target times a timespan, so a retarget never overflows.
type U320 = ruint::Uint<320, 5>;

/// Difficulty, in leading zero bits, of the hardest target a chain can reach: keeps the work of
/// a block near 2^96 and a branch's cumulative work far from overflowing 128 bits.
pub const HARDEST_BITS: u32 = 96;

/// Sign bit of the compact encoding's mantissa: never set in a valid compact target.
const COMPACT_SIGN: u32 = 0x0080_0000;
/// Mantissa bits of the compact encoding.
const COMPACT_MANTISSA: u32 = 0x007f_ffff;

/// Why 32 bits are not a compact target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// The mantissa's sign bit is set.
    #[error("compact target {0:#010x} is negative")]
    Negative(u32),
    /// The encoded number is zero: no hash could meet it.
    #[error("compact target {0:#010x} is zero")]
    Zero(u32),
    /// The encoded number does not fit 256 bits.
    #[error("compact target {0:#010x} exceeds 256 bits")]
    Overflow(u32),
}

/// A block hash, read as a big-endian 256-bit number, must be at or below its block's target:
/// the lower the target, the more hashes a miner needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target(U256);

/// Shown as its 64 hex digits.
impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl Target {
    /// The target met by hashes with at least `bits` leading zero bits: 2^(256 - bits) - 1.
    pub fn from_leading_zero_bits(bits: u32) -> Self {
        if bits >= 256 {
            return Target(U256::ZERO);
        }
        Target(U256::MAX >> bits as usize)
    }

    /// Reads the compact form: the top byte is the number's length in bytes, the low 23 bits
    /// its leading digits (base 256), bit 23 a sign that must be clear.
    pub fn from_compact(compact: u32) -> Result<Self, CompactError> {
        if compact & COMPACT_SIGN != 0 {
            return Err(CompactError::Negative(compact));
        }
        let size = (compact >> 24) as usize;
        let mantissa = U256::from(compact & COMPACT_MANTISSA);
        let value = if size <= 3 {
            mantissa >> (8 * (3 - size))
        } else {
            let shift = 8 * (size - 3);
            if mantissa.bit_len() + shift > 256 {
                return Err(CompactError::Overflow(compact));
            }
            mantissa << shift
        };
        if value.is_zero() {
            return Err(CompactError::Zero(compact));
        }
        Ok(Target(value))
    }

    /// The compact form: the number's top 23 bits, truncated below. Decoding it gives this
    /// target exactly when the target has no lower bits, as every target a rule produces.
    pub fn to_compact(self) -> u32 {
        let mut size = self.0.bit_len().div_ceil(8);
        let mut mantissa: u32 =
            if size <= 3 { (self.0 << (8 * (3 - size))).to::<u32>() } else { (self.0 >> (8 * (size - 3))).to::<u32>() };
        if mantissa & COMPACT_SIGN != 0 {
            mantissa >>= 8;
            size += 1;
        }
        ((size as u32) << 24) | mantissa
    }

    /// The target with only what its compact form keeps: the one a header carries.
    pub fn truncated(self) -> Self {
        Target::from_compact(self.to_compact()).unwrap_or(self)
    }

    /// Whether `hash` meets this target.
    pub fn is_met_by(&self, hash: &BlockHash) -> bool {
        U256::from_be_bytes(*hash.as_bytes()) <= self.0
    }

    /// The target as eight 32-bit words, most significant first: how a SHA-256 state compares
    /// against it.
    pub fn words(&self) -> [u32; 8] {
        let bytes: [u8; 32] = self.0.to_be_bytes();
        std::array::from_fn(|i| {
            u32::from_be_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]])
        })
    }

    /// The expected number of hashes to meet this target: 2^256 / (target + 1), rounded down.
    pub fn work(&self) -> Work {
        let Some(divisor) = self.0.checked_add(U256::from(1u8)) else {
            return Work(1);
        };
        // 2^256 / d = (2^256 - d) / d + 1, and 2^256 - d = !target, so nothing overflows.
        let work = (!self.0) / divisor + U256::from(1u8);
        Work(u128::try_from(work).unwrap_or(u128::MAX))
    }

    /// The difficulty in (fractional) leading zero bits, log2 of the work: for people reading
    /// `/status`, never for a rule.
    pub fn difficulty_bits(&self) -> f64 {
        (self.work().0 as f64).log2()
    }

    /// Lower-case hex of the full 256-bit target.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_be_bytes::<32>())
    }

    /// Serializes a compact target as the 8 hex digits people compare (`/status`'s `next_bits`).
    pub fn serialize_compact_hex<S: serde::Serializer>(compact: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{compact:08x}"))
    }

    /// The target after a retarget window that took `actual_ms` where `expected_ms` was wanted:
    /// scaled by their ratio, the ratio clamped to [1/4, 4], then bounded by `easiest` above and
    /// the [`HARDEST_BITS`] target below, and truncated to what the compact form keeps.
    pub fn retarget(self, actual_ms: u64, expected_ms: u64, easiest: Target) -> Self {
        let expected_ms = expected_ms.max(1);
        let actual_ms = actual_ms.clamp(expected_ms / 4, expected_ms.saturating_mul(4));
        let scaled = U320::saturating_from(self.0) * U320::from(actual_ms) / U320::from(expected_ms);
        let hardest = U320::saturating_from(Target::from_leading_zero_bits(HARDEST_BITS).0);
        let bounded = scaled.clamp(hardest, U320::saturating_from(easiest.0).max(hardest));
        Target(U256::saturating_from(bounded)).truncated()
    }
}

/// Expected number of hashes needed to find a block; sums into a branch's cumulative work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Work(pub u128);

impl Add for Work {
    type Output = Work;
    fn add(self, other: Work) -> Work {
        Work(self.0.saturating_add(other.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hash_with_leading_zero_bits(zeros: u32) -> BlockHash {
        let mut bytes = [0xff; 32];
        for bit in 0..zeros {
            bytes[(bit / 8) as usize] &= !(0x80 >> (bit % 8));
        }
        BlockHash::new(bytes)
    }

    #[test]
    fn a_leading_zero_target_is_met_by_exactly_the_hashes_with_those_zeros() {
        let target = Target::from_leading_zero_bits(16);
        assert!(target.is_met_by(&hash_with_leading_zero_bits(16)));
        assert!(target.is_met_by(&hash_with_leading_zero_bits(17)));
        assert!(!target.is_met_by(&hash_with_leading_zero_bits(15)));
        assert_eq!(target.words()[0], 0x0000_ffff);
        assert_eq!(target.words()[1], u32::MAX);
    }

    #[test]
    fn compact_form_matches_known_encodings() {
        // Bitcoin's genesis target, the usual example of the encoding.
        let target = Target::from_compact(0x1d00_ffff).expect("valid");
        assert_eq!(target.to_hex(), format!("00000000ffff{}", "0".repeat(52)));
        assert_eq!(target.to_compact(), 0x1d00_ffff);
        // A mantissa with its top bit set moves one byte right.
        assert_eq!(Target::from_leading_zero_bits(16).to_compact(), 0x1f00_ffff);
        assert_eq!(Target::from_leading_zero_bits(0).to_compact(), 0x2100_ffff);
        assert_eq!(Target::from_compact(0x0300_0001).expect("valid").to_hex(), format!("{}01", "0".repeat(62)));
        assert_eq!(Target::from_compact(0x0112_3456).expect("valid").to_compact(), 0x0112_0000);
    }

    #[test]
    fn invalid_compact_forms_are_refused() {
        assert_eq!(Target::from_compact(0x1d80_ffff), Err(CompactError::Negative(0x1d80_ffff)));
        assert_eq!(Target::from_compact(0x1d00_0000), Err(CompactError::Zero(0x1d00_0000)));
        assert_eq!(Target::from_compact(0x0100_00ff), Err(CompactError::Zero(0x0100_00ff)));
        assert_eq!(Target::from_compact(0x2200_ffff), Err(CompactError::Overflow(0x2200_ffff)));
        assert_eq!(Target::from_compact(0xff00_0001), Err(CompactError::Overflow(0xff00_0001)));
        assert!(Target::from_compact(0x2100_ffff).is_ok());
    }

    #[test]
    fn work_is_two_to_the_bits() {
        assert_eq!(Target::from_leading_zero_bits(16).work(), Work(1 << 16));
        assert_eq!(Target::from_leading_zero_bits(17).work(), Work(1 << 17));
        assert_eq!(Target::from_leading_zero_bits(HARDEST_BITS).work(), Work(1 << HARDEST_BITS));
        assert_eq!(Target::from_leading_zero_bits(0).work(), Work(1));
        assert_eq!((Work(u128::MAX) + Work(1)).0, u128::MAX);
        let half = Target::from_leading_zero_bits(16).retarget(1, 2, Target::from_leading_zero_bits(0));
        assert_eq!(half.work(), Work(1 << 17));
        assert!((half.difficulty_bits() - 17.0).abs() < 1e-9);
    }

    #[test]
    fn a_retarget_scales_by_the_time_ratio_within_the_clamp() {
        let easiest = Target::from_leading_zero_bits(8);
        let start = Target::from_compact(0x1e01_0000).expect("valid");
        let scaled = |actual: u64| start.retarget(actual, 1_000, easiest).to_compact();
        assert_eq!(scaled(1_000), 0x1e01_0000);
        assert_eq!(scaled(500), 0x1e00_8000, "a mantissa of 0x800000 moves a byte right");
        assert_eq!(scaled(250), 0x1d40_0000);
        assert_eq!(scaled(1), 0x1d40_0000, "no faster than the clamp");
        assert_eq!(scaled(0), 0x1d40_0000);
        assert_eq!(scaled(2_000), 0x1e02_0000);
        assert_eq!(scaled(4_000), 0x1e04_0000);
        assert_eq!(scaled(u64::MAX), 0x1e04_0000, "no slower than the clamp");
        assert_eq!(scaled(1_500), 0x1e01_8000);
    }

    #[test]
    fn a_retarget_stays_between_the_easiest_and_the_hardest_target() {
        let easiest = Target::from_leading_zero_bits(16).truncated();
        assert_eq!(easiest.retarget(4_000, 1_000, easiest), easiest);
        let hardest = Target::from_leading_zero_bits(HARDEST_BITS).truncated();
        assert_eq!(hardest.retarget(1, 1_000, easiest), hardest);
        assert!(hardest.work() < Work(1 << (HARDEST_BITS + 1)));
    }

    proptest! {
        #[test]
        fn compact_keeps_the_top_bits_and_round_trips(bytes: [u8; 32]) {
            let value = U256::from_be_bytes(bytes);
            prop_assume!(!value.is_zero());
            let target = Target(value);
            let truncated = target.truncated();
            prop_assert!(truncated <= target);
            // Only bits below the top 23 (or 16, after a sign shift) may be lost.
            let lost = value - truncated.0;
            prop_assert!(lost.bit_len() + 16 <= value.bit_len().max(16));
            prop_assert_eq!(truncated.to_compact(), target.to_compact());
            prop_assert_eq!(Target::from_compact(target.to_compact()), Ok(truncated));
        }
    }
}
