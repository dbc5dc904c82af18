//! Ed25519 signatures over transfers (consensus). Verdicts follow ZIP-215 through
//! `ed25519-consensus`, whose batch and single verification agree on every input: a node that
//! checks a transfer alone and one that checks it in a batch can never disagree, which would
//! fork them.

use super::hex_text::{decode_exact, FromText};
use rayon::prelude::*;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Length of a signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// Signatures verified together in one batch: the batch equation's cost per signature falls
/// with its size, and chunks of this size still spread a block's transfers over every core.
pub const BATCH_SIZE: usize = 256;

/// A 64-byte Ed25519 signature, hex in JSON and raw (64 bytes, no length) in binary encodings.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; SIGNATURE_LEN]);

/// Why a text could not be read as a signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected 128 hex characters for a 64-byte signature")]
pub struct ParseSignatureError;

impl Signature {
    /// Lower-case hex, as shown in JSON.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", &self.to_hex()[..16])
    }
}

impl FromStr for Signature {
    type Err = ParseSignatureError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_exact(s).map(Signature).ok_or(ParseSignatureError)
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.serialize_str(&self.to_hex());
        }
        use serde::ser::SerializeTuple;
        let mut tuple = s.serialize_tuple(SIGNATURE_LEN)?;
        for byte in &self.0 {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            return d.deserialize_str(FromText::default());
        }
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Signature, A::Error> {
                let mut out = [0u8; SIGNATURE_LEN];
                for (i, byte) in out.iter_mut().enumerate() {
                    *byte = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(out))
            }
        }
        d.deserialize_tuple(SIGNATURE_LEN, Bytes)
    }
}

/// One signature to check: the signer's public key, the message and the signature.
#[derive(Clone, Copy, Debug)]
pub struct SignedMessage<'a> {
    /// The signer's 32-byte public key.
    pub public_key: [u8; 32],
    /// The bytes signed.
    pub message: &'a [u8],
    /// The signature.
    pub signature: Signature,
}

impl SignedMessage<'_> {
    /// Whether this one signature is valid (ZIP-215).
    pub fn verify(&self) -> bool {
        let Ok(key) = ed25519_consensus::VerificationKey::try_from(self.public_key) else {
            return false;
        };
        key.verify(&ed25519_consensus::Signature::from(self.signature.0), self.message).is_ok()
    }
}

/// Checks every signature, in batches of [`BATCH_SIZE`] spread over the rayon pool, and returns
/// the index of the first invalid one. A failing batch is checked one by one to find it; under
/// ZIP-215 the verdicts are the same either way.
pub fn first_invalid(items: &[SignedMessage<'_>]) -> Option<usize> {
    items
        .par_chunks(BATCH_SIZE)
        .enumerate()
        .filter_map(|(chunk_index, chunk)| {
            if batch_valid(chunk) {
                return None;
            }
            chunk.iter().position(|item| !item.verify()).map(|i| chunk_index * BATCH_SIZE + i)
        })
        .min()
}

/// The verdict on each signature, checked as [`first_invalid`] does: a batch at a time, one by
/// one only inside a batch that fails.
pub fn verdicts(items: &[SignedMessage<'_>]) -> Vec<bool> {
    items.par_chunks(BATCH_SIZE).flat_map_iter(chunk_verdicts).collect()
}

/// The same verdicts as [`verdicts`], all computed on the calling thread: for work that runs
/// beside another busy thread (the applier's read-ahead), where spreading over every core would
/// only slow that thread down.
pub fn verdicts_on_this_thread(items: &[SignedMessage<'_>]) -> Vec<bool> {
    items.chunks(BATCH_SIZE).flat_map(chunk_verdicts).collect()
}

/// The verdicts on one batch: all true when the batch verifies, else one by one.
fn chunk_verdicts<'a>(chunk: &'a [SignedMessage<'a>]) -> impl Iterator<Item = bool> + 'a {
    let all_valid = batch_valid(chunk);
    chunk.iter().map(move |item| all_valid || item.verify())
}

fn batch_valid(chunk: &[SignedMessage<'_>]) -> bool {
    let mut batch = ed25519_consensus::batch::Verifier::new();
    for item in chunk {
        let key = ed25519_consensus::VerificationKeyBytes::from(item.public_key);
        batch.queue((key, ed25519_consensus::Signature::from(item.signature.0), item.message));
    }
    batch.verify(rand::thread_rng()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_consensus::SigningKey;

    fn signed(seed: u8, message: &[u8]) -> ([u8; 32], Signature) {
        let key = SigningKey::from([seed; 32]);
        (key.verification_key().to_bytes(), Signature(key.sign(message).to_bytes()))
    }

    #[test]
    fn the_first_bad_signature_is_found_in_any_batch() {
        let messages: Vec<Vec<u8>> = (0..600u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let mut items: Vec<SignedMessage<'_>> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (public_key, signature) = signed(i as u8, m);
                SignedMessage { public_key, message: m, signature }
            })
            .collect();
        assert_eq!(first_invalid(&items), None);
        items[300].signature.0[0] ^= 1;
        items[530].message = b"other";
        assert_eq!(first_invalid(&items), Some(300));
        assert!(!items[530].verify());
        let verdicts = verdicts(&items);
        let invalid: Vec<usize> = (0..items.len()).filter(|i| !verdicts[*i]).collect();
        assert_eq!(invalid, vec![300, 530]);
    }

    #[test]
    fn binary_form_is_64_raw_bytes_and_json_is_hex() {
        let sig = Signature([5; 64]);
        let raw = bincode::serde::encode_to_vec(sig, bincode::config::standard()).unwrap();
        assert_eq!(raw, vec![5u8; 64]);
        let (back, used): (Signature, usize) =
            bincode::serde::decode_from_slice(&raw, bincode::config::standard()).unwrap();
        assert_eq!((back, used), (sig, 64));
        assert_eq!(serde_json::to_string(&sig).unwrap(), format!("\"{}\"", "05".repeat(64)));
        assert!("05".repeat(63).parse::<Signature>().is_err());
    }
}
