//! The one binary encoding of the project (consensus): bincode 2 with its standard configuration
//! (little-endian, variable-length integers). Transactions are hashed over it, Kafka message
//! bodies and stored values use it. Decoding is bounded and must consume every byte, so garbage
//! cannot allocate without limit or hide trailing data.

use serde::{de::DeserializeOwned, Serialize};

/// The consensus format this code writes and reads: the first byte of every Kafka message, and
/// the format a store's layout belongs to. 3: funds belong to Ed25519 keys; 4: the difficulty
/// retargets, with a compact target in the header (`docs/consensus.md`). Messages of any other
/// version are refused as `unknown_version`.
pub const FORMAT_VERSION: u8 = 5;

/// Largest value this encoding will decode: a block with the maximum number of transactions fits
/// comfortably; anything larger is rejected before it is allocated.
pub const MAX_DECODED_BYTES: usize = 16 * 1024 * 1024;

/// Why bytes could not be decoded into the expected value.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a valid encoding of the type.
    #[error("undecodable body: {0}")]
    Body(#[from] bincode::error::DecodeError),
    /// The value decoded but bytes were left over.
    #[error("{0} trailing bytes after the value")]
    Trailing(usize),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODED_BYTES>()
}

/// Encodes `value` canonically.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding plain data structs into a Vec cannot fail: no I/O, no unsupported serde features.
    bincode::serde::encode_to_vec(value, config()).expect("serializing plain data into a Vec")
}

/// Appends `value`'s canonical encoding to `out` (a buffer reused across values) and returns its
/// length.
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> usize {
    // As `encode`: writing plain data into a Vec cannot fail.
    bincode::serde::encode_into_std_write(value, out, config()).expect("serializing plain data into a Vec")
}

/// Length of `value`'s canonical encoding, computed without building it.
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    let mut size = bincode::enc::write::SizeWriter::default();
    // Sizing plain data cannot fail, as encoding it into a Vec cannot.
    bincode::serde::encode_into_writer(value, &mut size, config()).expect("sizing plain data");
    size.bytes_written
}

/// Decodes the `T` at the start of `bytes`, ignoring what follows: for reading the leading field
/// of a larger stored record without decoding the rest.
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    Ok(bincode::serde::decode_from_slice(bytes, config())?.0)
}

/// How many times its own size a value may claim while it decodes (a transaction in memory is
/// at most about 16 times its smallest encoding), before the claim is refused unallocated.
const CLAIM_FACTOR: usize = 16;

/// Decodes a whole byte slice as one `T`. What the bytes may make the decoder allocate is bounded
/// by a few times their own length (at least 64 KiB, at most [`MAX_DECODED_BYTES`]): a
/// 20-byte message that claims a 15 MiB string is refused before anything is allocated.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let claim = bytes.len().saturating_mul(CLAIM_FACTOR);
    let (value, used) = if claim <= 64 * 1024 {
        decode_within::<T, { 64 * 1024 }>(bytes)?
    } else if claim <= 1024 * 1024 {
        decode_within::<T, { 1024 * 1024 }>(bytes)?
    } else {
        decode_within::<T, MAX_DECODED_BYTES>(bytes)?
    };
    if used != bytes.len() {
        return Err(DecodeError::Trailing(bytes.len() - used));
    }
    Ok(value)
}

/// Decodes the `T` at the start of `bytes` with at most `LIMIT` bytes claimed.
fn decode_within<T: DeserializeOwned, const LIMIT: usize>(bytes: &[u8]) -> Result<(T, usize), DecodeError> {
    Ok(bincode::serde::decode_from_slice(bytes, bincode::config::standard().with_limit::<LIMIT>())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::transaction::Transaction;

    #[test]
    fn a_small_message_cannot_claim_a_large_allocation() {
        // A length that claims 15 MiB, in 9 bytes: refused before anything is allocated.
        let mut bytes = vec![253];
        bytes.extend((15u64 * 1024 * 1024).to_le_bytes());
        let err = decode::<String>(&bytes).unwrap_err();
        assert!(matches!(err, DecodeError::Body(bincode::error::DecodeError::LimitExceeded)), "{err:?}");
        // A transaction list claiming as many entries fails at the end of the input (serde
        // preallocates at most a cautious bound, whatever the claim).
        assert!(decode::<Vec<Transaction>>(&bytes).is_err());
        let honest =
            vec![crate::core::testkit::transfer(1, 2)].into_iter().map(Transaction::Transfer).collect::<Vec<_>>();
        assert_eq!(decode::<Vec<Transaction>>(&encode(&honest)).unwrap(), honest);
    }
}
