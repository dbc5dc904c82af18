//! Newtype digests: a block hash, a transaction id and a Merkle root are all 32 bytes of SHA-256,
//! but the type says which one a value is, so they cannot be mixed up. Hex is for display and JSON
//! only; binary encodings carry the raw bytes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// Why a hex string could not be read as a 32-byte digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected 64 hex characters for a 32-byte digest")]
pub struct ParseDigestError;

/// SHA-256 of `bytes`, as raw digest bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

macro_rules! digest_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The all-zero value.
            pub const ZERO: Self = Self([0; 32]);

            /// The raw digest bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lower-case hex, as shown in JSON and logs.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.to_hex()[..16])
            }
        }

        impl FromStr for $name {
            type Err = ParseDigestError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out).map_err(|_| ParseDigestError)?;
                Ok(Self(out))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_hex())
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let text = String::deserialize(d)?;
                    text.parse().map_err(serde::de::Error::custom)
                } else {
                    <[u8; 32]>::deserialize(d).map(Self)
                }
            }
        }
    };
}

digest_newtype!(
    /// SHA-256 of a block's 96-byte header: the block's identity.
    BlockHash
);
digest_newtype!(
    /// SHA-256 of a transaction's canonical encoding: the transaction's identity.
    TxId
);
digest_newtype!(
    /// Merkle root over a block's transaction ids, committed to by the header.
    MerkleRoot
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_bad_text() {
        let h = BlockHash(sha256(b"abc"));
        assert_eq!(h.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(h.to_hex().parse::<BlockHash>(), Ok(h));
        assert_eq!("abc".parse::<BlockHash>(), Err(ParseDigestError));
        assert_eq!("zz".repeat(32).parse::<TxId>(), Err(ParseDigestError));
    }

    #[test]
    fn json_is_hex_and_bincode_is_raw() {
        let id = TxId([7; 32]);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{}\"", "07".repeat(32)));
        let raw = bincode::serde::encode_to_vec(id, bincode::config::standard()).unwrap();
        assert_eq!(raw, vec![7u8; 32]);
        let (back, _): (TxId, usize) = bincode::serde::decode_from_slice(&raw, bincode::config::standard()).unwrap();
        assert_eq!(back, id);
    }
}
