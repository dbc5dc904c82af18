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
