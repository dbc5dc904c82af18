//! The one binary encoding of the project (consensus): bincode 2 with its standard configuration
//! (little-endian, variable-length integers). Transactions are hashed over it, Kafka message
//! bodies and stored values use it. Decoding is bounded and must consume every byte, so garbage
//! cannot allocate without limit or hide trailing data.

use serde::{de::DeserializeOwned, Serialize};

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

/// Decodes a whole byte slice as one `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())?;
    if used != bytes.len() {
        return Err(DecodeError::Trailing(bytes.len() - used));
    }
    Ok(value)
}
