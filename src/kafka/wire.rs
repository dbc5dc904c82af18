//! The message envelope (consensus): `[format version: u8] ++ body`, the body in the project's
//! canonical encoding. An unknown version or an undecodable body is a counted rejection.

pub use crate::core::encoding::FORMAT_VERSION;
use crate::core::encoding::{self, DecodeError};
use serde::{de::DeserializeOwned, Serialize};

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The message has no bytes (or no value at all).
    #[error("empty message")]
    Empty,
    /// The first byte names an envelope version this node does not know.
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    /// The body does not decode.
    #[error(transparent)]
    Body(#[from] DecodeError),
}

impl WireError {
    /// Label under which the rejection is counted.
    pub fn reason(&self) -> &'static str {
        match self {
            WireError::UnknownVersion(_) => "unknown_version",
            WireError::Empty | WireError::Body(_) => "malformed",
        }
    }
}

/// Wraps `body` in the envelope.
pub fn encode_message<T: Serialize>(body: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    out.extend(encoding::encode(body));
    out
}

/// Opens the envelope and decodes the body.
pub fn decode_message<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    match bytes.split_first() {
        None => Err(WireError::Empty),
        Some((&FORMAT_VERSION, body)) => Ok(encoding::decode(body)?),
        Some((&other, _)) => Err(WireError::UnknownVersion(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::block::genesis;
    use crate::core::params::ChainParams;
    use crate::core::transaction::Transaction;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_names_what_is_wrong() {
        let block = genesis(&ChainParams::default());
        let bytes = encode_message(&block);
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode_message::<crate::core::block::Block>(&bytes).unwrap(), block);
        assert!(matches!(decode_message::<Transaction>(&[]), Err(WireError::Empty)));
        let mut future = bytes.clone();
        future[0] = FORMAT_VERSION + 1;
        assert_eq!(decode_message::<Transaction>(&future).unwrap_err().reason(), "unknown_version");
        let mut long = bytes;
        long.push(0);
        assert_eq!(decode_message::<crate::core::block::Block>(&long).unwrap_err().reason(), "malformed");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_message::<crate::core::block::Block>(&bytes);
            let _ = decode_message::<Transaction>(&bytes);
        }
    }
}
