//! Transactions: who pays whom how much, in integer units. Signatures and balances come later;
//! the struct is plain data so fields can be added behind a new message format version.

use super::encoding;
use super::hash::{sha256, TxId};
use serde::{Deserialize, Serialize};

/// The sender that marks a block reward (as in the Flask original).
pub const REWARD_SENDER: &str = "0";
/// Longest sender or recipient address, in bytes (consensus).
pub const MAX_ADDRESS_LEN: usize = 128;

/// A transfer of `amount` smallest units from `sender` to `recipient`.
///
/// `nonce` makes otherwise identical transfers distinct transactions (the node that accepts a
/// transaction picks it at random); in a reward it is the block height.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transaction {
    /// Paying address; `"0"` only in a block reward.
    pub sender: String,
    /// Receiving address.
    pub recipient: String,
    /// Amount in the smallest unit; never zero.
    pub amount: u64,
    /// Distinguishes repeated transfers with the same parties and amount.
    pub nonce: u64,
}

/// Why a transaction is not well formed (consensus).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// Sender or recipient is empty.
    #[error("{0} is empty")]
    EmptyAddress(&'static str),
    /// Sender or recipient exceeds [`MAX_ADDRESS_LEN`].
    #[error("{0} is longer than {MAX_ADDRESS_LEN} bytes")]
    AddressTooLong(&'static str),
    /// Amount is zero.
    #[error("amount must be at least 1")]
    ZeroAmount,
    /// A non-reward transaction uses the reserved reward sender.
    #[error("sender \"0\" is reserved for block rewards")]
    ReservedSender,
}

impl Transaction {
    /// The reward paid to `miner` by the block at `height`.
    pub fn reward(miner: &str, amount: u64, height: u64) -> Self {
        Self { sender: REWARD_SENDER.to_owned(), recipient: miner.to_owned(), amount, nonce: height }
    }

    /// Whether this is a block reward.
    pub fn is_reward(&self) -> bool {
        self.sender == REWARD_SENDER
    }

    /// The bytes the id is computed over (consensus).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// The transaction id: SHA-256 of the canonical encoding.
    pub fn id(&self) -> TxId {
        TxId(sha256(&self.canonical_bytes()))
    }

    /// Checks the rules every ordinary (non-reward) transaction must meet.
    pub fn check_transfer(&self) -> Result<(), TxError> {
        self.check_fields()?;
        if self.is_reward() {
            return Err(TxError::ReservedSender);
        }
        Ok(())
    }

    /// Checks the field rules shared by transfers and rewards.
    pub fn check_fields(&self) -> Result<(), TxError> {
        for (name, value) in [("sender", &self.sender), ("recipient", &self.recipient)] {
            if value.is_empty() {
                return Err(TxError::EmptyAddress(name));
            }
            if value.len() > MAX_ADDRESS_LEN {
                return Err(TxError::AddressTooLong(name));
            }
        }
        if self.amount == 0 {
            return Err(TxError::ZeroAmount);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer() -> Transaction {
        Transaction { sender: "alice".into(), recipient: "bob".into(), amount: 5, nonce: 1 }
    }

    #[test]
    fn id_depends_on_every_field() {
        let base = transfer();
        let mut variants = vec![base.clone(); 4];
        variants[0].sender.push('x');
        variants[1].recipient.push('x');
        variants[2].amount += 1;
        variants[3].nonce += 1;
        for v in variants {
            assert_ne!(v.id(), base.id());
        }
        assert_eq!(transfer().id(), base.id());
    }

    #[test]
    fn canonical_encoding_is_stable() {
        // Pinned bytes: a change here is a consensus change.
        assert_eq!(hex::encode(transfer().canonical_bytes()), "05616c69636503626f620501");
    }

    #[test]
    fn malformed_transfers_are_refused() {
        let mut t = transfer();
        t.amount = 0;
        assert_eq!(t.check_transfer(), Err(TxError::ZeroAmount));
        let mut t = transfer();
        t.sender.clear();
        assert_eq!(t.check_transfer(), Err(TxError::EmptyAddress("sender")));
        let mut t = transfer();
        t.recipient = "r".repeat(MAX_ADDRESS_LEN + 1);
        assert_eq!(t.check_transfer(), Err(TxError::AddressTooLong("recipient")));
        let reward = Transaction::reward("miner", 50, 3);
        assert_eq!(reward.check_transfer(), Err(TxError::ReservedSender));
        assert_eq!(reward.check_fields(), Ok(()));
    }
}
