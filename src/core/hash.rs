//! Newtype digests: a block hash, a transaction id and a Merkle root are all 32 bytes of SHA-256,
//! but the type says which one a value is, so they cannot be mixed up. Hex is for display and JSON
//! only; binary encodings carry the raw bytes.

use sha2::{Digest, Sha256};

/// Why a hex string could not be read as a 32-byte digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected 64 hex characters for a 32-byte digest")]
pub struct ParseDigestError;

/// SHA-256 of `bytes`, as raw digest bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Defines a 32-byte newtype shown as hex in JSON and logs and carried raw in binary encodings.
macro_rules! digest_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name([u8; 32]);

        impl $name {
            /// The all-zero value.
            pub const ZERO: Self = Self([0; 32]);

            /// The value whose raw digest bytes are `bytes`.
            pub const fn new(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw digest bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lower-case hex, as shown in JSON and logs.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.to_hex()[..16])
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::core::hash::ParseDigestError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::core::hex_text::decode_exact(s).map(Self).ok_or($crate::core::hash::ParseDigestError)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    // Encoded on the stack: JSON of a block writes dozens of these.
                    let mut text = [0u8; 64];
                    hex::encode_to_slice(self.0, &mut text).map_err(::serde::ser::Error::custom)?;
                    s.serialize_str(::std::str::from_utf8(&text).map_err(::serde::ser::Error::custom)?)
                } else {
                    ::serde::Serialize::serialize(&self.0, s)
                }
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    d.deserialize_str($crate::core::hex_text::FromText::default())
                } else {
                    <[u8; 32] as ::serde::Deserialize>::deserialize(d).map(Self)
                }
            }
        }
    };
}

pub(crate) use digest_newtype;

digest_newtype!(
    /// SHA-256 of a block's 96-byte header: the block's identity.
    BlockHash
);
digest_newtype!(
    /// A transaction's identity: SHA-256 of a transfer's signing bytes and signature, or of a
    /// reward's canonical encoding.
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
