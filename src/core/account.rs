//! Accounts (consensus): funds belong to Ed25519 keys. An address is the 32-byte public key; an
//! account holds a balance and the count of transfers it has sent (its next nonce).

use super::hash::digest_newtype;
use serde::{Deserialize, Serialize};

digest_newtype!(
    /// An account's address: its 32-byte Ed25519 public key, shown as 64 lowercase hex
    /// characters.
    Address
);

impl Address {
    /// The address of `key`: its Ed25519 public key, where funds sent to it go.
    pub fn of_key(key: &ed25519_consensus::SigningKey) -> Address {
        Address::new(key.verification_key().to_bytes())
    }

    /// Whether the address decodes (as ZIP-215 decodes keys, non-canonical encodings included)
    /// to a point of small order: one of the eight points whose multiple by the cofactor is the
    /// identity. ZIP-215's cofactored check accepts signatures under such a key that anyone can
    /// make without a secret, so the consensus rules never let one send (consensus). A lookup in
    /// the few encodings there are: decoding the point instead cost 4.7 µs a transfer, which
    /// made checking a block of 1,000 transfers 18 times slower.
    pub fn is_small_order(&self) -> bool {
        SMALL_ORDER_ENCODINGS.contains(self.as_bytes())
    }
}

/// Every 32 bytes that decode to a point of small order. A point's encoding is its y coordinate
/// (255 bits, little-endian) and the sign of x in the top bit; a decoder that accepts
/// non-canonical encodings takes y as written, so y may also be the canonical value plus p when
/// that still fits in 255 bits (only for y < 19), and either sign bit decodes when x = 0. The
/// candidates are all those variants of the eight torsion points' canonical encodings, kept
/// when they decode to a small-order point, which makes the list exact.
static SMALL_ORDER_ENCODINGS: std::sync::LazyLock<Vec<[u8; 32]>> = std::sync::LazyLock::new(|| {
    use curve25519_dalek_ng::constants::EIGHT_TORSION;
    use curve25519_dalek_ng::edwards::CompressedEdwardsY;
    // p = 2^255 - 19, little-endian.
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut found: Vec<[u8; 32]> = Vec::new();
    for point in EIGHT_TORSION.iter() {
        let mut y = point.compress().to_bytes();
        y[31] &= 0x7f;
        let mut ys = vec![y];
        if y[1..].iter().all(|b| *b == 0) && y[0] < 19 {
            let mut y_plus_p = p;
            y_plus_p[0] += y[0];
            ys.push(y_plus_p);
        }
        for y in ys {
            for sign in [0u8, 0x80] {
                let mut encoding = y;
                encoding[31] |= sign;
                let decodes_small =
                    CompressedEdwardsY(encoding).decompress().is_some_and(|decoded| decoded.is_small_order());
                if decodes_small && !found.contains(&encoding) {
                    found.push(encoding);
                }
            }
        }
    }
    found
});

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek_ng::edwards::CompressedEdwardsY;

    /// Decodes the point and asks whether it has small order: the definition the table stands
    /// for.
    fn decodes_to_small_order(bytes: [u8; 32]) -> bool {
        CompressedEdwardsY(bytes).decompress().is_some_and(|point| point.is_small_order())
    }

    #[test]
    fn the_small_order_table_holds_the_eight_points_and_their_non_canonical_encodings() {
        // 8 canonical, the identity and the point of order 2 with the sign bit set (x = 0), and
        // y = p (order 4, both signs) and y = p + 1 (the identity, both signs).
        assert_eq!(SMALL_ORDER_ENCODINGS.len(), 14);
        assert!(SMALL_ORDER_ENCODINGS.iter().all(|e| decodes_to_small_order(*e)));
        assert!(Address::new([0; 32]).is_small_order());
    }

    proptest::proptest! {
        #[test]
        fn the_table_agrees_with_decoding(bytes in proptest::prelude::any::<[u8; 32]>(), low in 0u8..20, sign: bool) {
            // Random keys, and keys close to the few small y values (0, 1, p, p + 1 ...).
            let mut near = [0u8; 32];
            near[0] = low;
            near[31] = if sign { 0x80 } else { 0 };
            let mut near_p = [0xff; 32];
            near_p[0] = 0xed_u8.wrapping_add(low);
            near_p[31] = if sign { 0xff } else { 0x7f };
            for key in [bytes, near, near_p] {
                proptest::prop_assert_eq!(Address::new(key).is_small_order(), decodes_to_small_order(key), "{}", hex::encode(key));
            }
        }
    }
}

/// What the chain knows of one address at some block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Account {
    /// Spendable amount, in the smallest unit.
    pub balance: u64,
    /// Transfers this address has sent on the branch: the nonce its next transfer must carry.
    pub nonce: u64,
}

/// The state of one address as a block changes it: `None` for an address the chain has never
/// touched, so undoing a block can make an account disappear again, exactly as a replay from
/// genesis would leave it.
pub type AccountEntry = Option<Account>;
