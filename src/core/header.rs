//! The block header and its 96-byte consensus encoding (consensus). Written by hand, field by
//! field, little-endian, so no serializer's choices can change what is hashed.

use super::hash::{sha256, BlockHash, MerkleRoot};
use super::pow::Target;
use serde::{Deserialize, Serialize};

/// Length of the encoded header.
pub const HEADER_LEN: usize = 96;
/// Length of the nonce-independent prefix whose SHA-256 state a miner computes once.
pub const MIDSTATE_PREFIX_LEN: usize = 64;
/// Offset of the nonce in the encoded header.
pub const NONCE_OFFSET: usize = 88;
/// The only header version this code produces and accepts.
pub const HEADER_VERSION: u32 = 2;

/// What a block commits to; its SHA-256 is the block hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Header format version.
    pub version: u32,
    /// Distance from genesis (genesis is 0).
    pub height: u64,
    /// Hash of the parent block.
    pub prev_hash: BlockHash,
    /// Merkle root of the block's transaction ids.
    pub tx_root: MerkleRoot,
    /// Miner's clock when the block was built, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The target the block hash must not exceed, in compact form ([`super::pow::Target`]).
    pub bits: u32,
    /// The proof-of-work answer.
    pub nonce: u64,
}

impl BlockHeader {
    /// The 96 bytes that are hashed.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&self.version.to_le_bytes());
        out[4..12].copy_from_slice(&self.height.to_le_bytes());
        out[12..44].copy_from_slice(self.prev_hash.as_bytes());
        out[44..76].copy_from_slice(self.tx_root.as_bytes());
        out[76..84].copy_from_slice(&self.timestamp_ms.to_le_bytes());
        out[84..88].copy_from_slice(&self.bits.to_le_bytes());
        out[NONCE_OFFSET..96].copy_from_slice(&self.nonce.to_le_bytes());
        out
    }

    /// Reads a header back from its 96 bytes; the inverse of [`BlockHeader::encode`].
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let digest_at = |i: usize| -> [u8; 32] { bytes[i..i + 32].try_into().expect("32 bytes") };
        Self {
            version: u32_at(0),
            height: u64_at(4),
            prev_hash: BlockHash::new(digest_at(12)),
            tx_root: MerkleRoot::new(digest_at(44)),
            timestamp_ms: u64_at(76),
            bits: u32_at(84),
            nonce: u64_at(NONCE_OFFSET),
        }
    }

    /// The block hash: SHA-256 of the encoded header.
    pub fn hash(&self) -> BlockHash {
        BlockHash::new(sha256(&self.encode()))
    }

    /// Whether the hash meets the target the header's own bits encode (false when they encode
    /// none). Whether those are the right bits for the block's place is the chain's question.
    pub fn meets_own_target(&self) -> bool {
        Target::from_compact(self.bits).is_ok_and(|target| target.is_met_by(&self.hash()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> BlockHeader {
        BlockHeader {
            version: 2,
            height: 0x0102030405060708,
            prev_hash: BlockHash::new([0xaa; 32]),
            tx_root: MerkleRoot::new([0xbb; 32]),
            timestamp_ms: 0x1112131415161718,
            bits: 0x21222324,
            nonce: 0x3132333435363738,
        }
    }

    #[test]
    fn layout_is_little_endian_in_field_order() {
        let bytes = sample().encode();
        assert_eq!(&bytes[0..4], &[2, 0, 0, 0]);
        assert_eq!(&bytes[4..12], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&bytes[12..44], &[0xaa; 32]);
        assert_eq!(&bytes[44..76], &[0xbb; 32]);
        assert_eq!(&bytes[76..84], &[0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11]);
        assert_eq!(&bytes[84..88], &[0x24, 0x23, 0x22, 0x21]);
        assert_eq!(&bytes[88..96], &[0x38, 0x37, 0x36, 0x35, 0x34, 0x33, 0x32, 0x31]);
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(version: u32, height: u64, prev: [u8; 32], root: [u8; 32],
                                 ts: u64, bits: u32, nonce: u64) {
            let h = BlockHeader { version, height, prev_hash: BlockHash::new(prev),
                tx_root: MerkleRoot::new(root), timestamp_ms: ts, bits, nonce };
            prop_assert_eq!(BlockHeader::decode(&h.encode()), h);
        }
    }
}
