//! Transactions (consensus): a block's reward, then signed transfers between accounts. The layout
//! a transfer is signed over is fixed byte by byte (`docs/consensus.md`), so a wallet in any
//! language can sign for this chain.

use super::account::Address;
use super::encoding;
use super::hash::{sha256, TxId};
use super::signature::{Signature, SignedMessage};
use ed25519_consensus::SigningKey;
use serde::{Deserialize, Serialize};

/// Domain tag at the start of a transfer's signing bytes.
pub const TRANSFER_TAG: &[u8; 22] = b"kafkachain-transfer-v1";
/// The sender a reward shows in JSON (as in the Flask original).
pub const REWARD_SENDER: &str = "0";
/// Length of a transfer's signing bytes: tag, chain tag, two keys and three integers.
pub const SIGNING_BYTES_LEN: usize = 22 + 32 + 32 + 32 + 8 + 8 + 8;

/// SHA-256 of a chain id's UTF-8 bytes: binds a signature to one network, so a transfer signed
/// for another chain never verifies on this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainTag(pub [u8; 32]);

impl ChainTag {
    /// The tag of the chain named `chain_id`.
    pub fn of(chain_id: &str) -> Self {
        ChainTag(sha256(chain_id.as_bytes()))
    }
}

/// A transfer of `amount` plus a `fee` for the miner from `sender` to `recipient`, signed by the
/// sender's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transfer {
    /// Paying address (its public key signs).
    pub sender: Address,
    /// Receiving address.
    pub recipient: Address,
    /// Amount in the smallest unit; at least 1.
    pub amount: u64,
    /// Paid to the miner of the block that holds the transfer; may be 0.
    pub fee: u64,
    /// The sender's count of earlier transfers on the branch: the first is 0.
    pub nonce: u64,
    /// Ed25519 signature over the signing bytes.
    pub signature: Signature,
}

/// The first transaction of a mined block: the subsidy plus the block's fees, paid to the miner.
/// It has no signature; the height makes every reward distinct.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reward {
    /// The miner's address.
    pub recipient: Address,
    /// Subsidy plus the fees of the block's transfers.
    pub amount: u64,
    /// Height of the block it rewards.
    pub height: u64,
}

/// One entry of a block's transaction list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Transaction {
    /// The block reward: first in a mined block, nowhere else.
    Reward(Reward),
    /// A signed transfer.
    Transfer(Transfer),
}

/// Why a transfer is not well formed on its own (consensus).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// Amount is zero.
    #[error("amount must be at least 1")]
    ZeroAmount,
    /// Sender and recipient are the same address.
    #[error("sender and recipient must differ")]
    SelfTransfer,
    /// `amount + fee` does not fit in 64 bits.
    #[error("amount + fee overflows a 64-bit integer")]
    CostOverflow,
    /// The sender is a key of small order, for which anyone can forge a signature.
    #[error("the sender is a small-order key, which cannot send: anyone could sign for it")]
    SmallOrderSender,
}

impl TxError {
    /// Short label rejections are counted by.
    pub fn reason(&self) -> &'static str {
        match self {
            TxError::ZeroAmount => "zero_amount",
            TxError::SelfTransfer => "self_transfer",
            TxError::CostOverflow => "amount_overflow",
            TxError::SmallOrderSender => "small_order_sender",
        }
    }
}

impl Transfer {
    /// Signs a transfer of `amount` (plus `fee`) from `key`'s address to `recipient` with the
    /// sender's `nonce`, for the chain tagged `chain`.
    pub fn sign(key: &SigningKey, chain: ChainTag, recipient: Address, amount: u64, fee: u64, nonce: u64) -> Self {
        let sender = Address::of_key(key);
        let mut transfer = Transfer { sender, recipient, amount, fee, nonce, signature: Signature([0; 64]) };
        transfer.signature = Signature(key.sign(&transfer.signing_bytes(chain)).to_bytes());
        transfer
    }

    /// The bytes the sender signs (consensus): tag, chain tag, sender, recipient, then amount,
    /// fee and nonce little-endian.
    pub fn signing_bytes(&self, chain: ChainTag) -> [u8; SIGNING_BYTES_LEN] {
        let mut out = [0u8; SIGNING_BYTES_LEN];
        let parts: [&[u8]; 7] = [
            TRANSFER_TAG,
            &chain.0,
            self.sender.as_bytes(),
            self.recipient.as_bytes(),
            &self.amount.to_le_bytes(),
            &self.fee.to_le_bytes(),
            &self.nonce.to_le_bytes(),
        ];
        let mut at = 0;
        for part in parts {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        out
    }

    /// The transfer's id: SHA-256 of the signing bytes followed by the signature.
    pub fn id(&self, chain: ChainTag) -> TxId {
        id_of(&self.signing_bytes(chain), &self.signature)
    }

    /// What the sender pays: amount plus fee, if it fits in 64 bits.
    pub fn cost(&self) -> Option<u64> {
        self.amount.checked_add(self.fee)
    }

    /// Checks the rules a transfer must meet on its own, before any signature or balance.
    pub fn check_fields(&self) -> Result<(), TxError> {
        if self.amount == 0 {
            return Err(TxError::ZeroAmount);
        }
        if self.sender == self.recipient {
            return Err(TxError::SelfTransfer);
        }
        if self.cost().is_none() {
            return Err(TxError::CostOverflow);
        }
        if self.sender.is_small_order() {
            return Err(TxError::SmallOrderSender);
        }
        Ok(())
    }

    /// The signature check this transfer needs, over `signing_bytes` (which the caller keeps).
    pub fn signed_message<'a>(&self, signing_bytes: &'a [u8; SIGNING_BYTES_LEN]) -> SignedMessage<'a> {
        SignedMessage { public_key: *self.sender.as_bytes(), message: signing_bytes, signature: self.signature }
    }
}

/// The verdict on each transfer's signature on the chain tagged `chain`, checked in batches over
/// the cores (see [`super::signature::verdicts`]).
pub fn signature_verdicts(transfers: &[Transfer], chain: ChainTag) -> Vec<bool> {
    let signing: Vec<_> = transfers.iter().map(|t| t.signing_bytes(chain)).collect();
    let items: Vec<_> = transfers.iter().zip(&signing).map(|(t, bytes)| t.signed_message(bytes)).collect();
    super::signature::verdicts(&items)
}

/// The id of a transfer whose signing bytes are already built.
pub fn id_of(signing_bytes: &[u8; SIGNING_BYTES_LEN], signature: &Signature) -> TxId {
    let mut bytes = [0u8; SIGNING_BYTES_LEN + 64];
    bytes[..SIGNING_BYTES_LEN].copy_from_slice(signing_bytes);
    bytes[SIGNING_BYTES_LEN..].copy_from_slice(&signature.0);
    TxId::new(sha256(&bytes))
}

impl Transaction {
    /// The reward paid to `miner` by the block at `height`.
    pub fn reward(miner: Address, amount: u64, height: u64) -> Self {
        Transaction::Reward(Reward { recipient: miner, amount, height })
    }

    /// The transaction id: a transfer's as [`Transfer::id`], a reward's the SHA-256 of its
    /// canonical encoding (this enum's, variant tag included).
    pub fn id(&self, chain: ChainTag) -> TxId {
        match self {
            Transaction::Transfer(transfer) => transfer.id(chain),
            Transaction::Reward(_) => TxId::new(sha256(&encoding::encode(self))),
        }
    }

    /// The transfer, when this is one.
    pub fn as_transfer(&self) -> Option<&Transfer> {
        match self {
            Transaction::Transfer(transfer) => Some(transfer),
            Transaction::Reward(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from([seed; 32])
    }

    fn address(seed: u8) -> Address {
        Address::of_key(&key(seed))
    }

    #[test]
    fn signing_bytes_follow_the_spec_layout() {
        let chain = ChainTag::of("kafkachain-devnet");
        let t = Transfer::sign(&key(1), chain, address(2), 0x0102, 3, 4);
        let bytes = t.signing_bytes(chain);
        assert_eq!(&bytes[..22], b"kafkachain-transfer-v1");
        assert_eq!(&bytes[22..54], &sha256(b"kafkachain-devnet"));
        assert_eq!(&bytes[54..86], address(1).as_bytes());
        assert_eq!(&bytes[86..118], address(2).as_bytes());
        assert_eq!(&bytes[118..126], &[2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[126..134], &3u64.to_le_bytes());
        assert_eq!(&bytes[134..142], &4u64.to_le_bytes());
        assert!(t.signed_message(&bytes).verify());
    }

    #[test]
    fn the_spec_test_vector_holds() {
        // docs/consensus.md gives this transfer: a wallet in another language checks itself
        // against it (Ed25519 signatures are deterministic).
        let t = Transfer::sign(&key(1), ChainTag::of("kafkachain-devnet"), address(2), 1000, 5, 0);
        assert_eq!(t.sender.to_hex(), "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c");
        assert_eq!(
            t.signature.to_hex(),
            "141755a51d469e2aed21d02555cffccc0234c1b8ee74e05b53e339f2d0de2cbe595dd173ab92f3ba2d3f6c08c0dd0609c8b78e1dd599ce2214795e24730cdb06"
        );
        assert_eq!(
            t.id(ChainTag::of("kafkachain-devnet")).to_hex(),
            "219421e97750576f34fc1e9a06b7c4ad4d68f2a0ca6fd9a99acc7573d04417d5"
        );
    }

    #[test]
    fn a_signature_binds_the_chain_and_every_field() {
        let chain = ChainTag::of("a");
        let t = Transfer::sign(&key(1), chain, address(2), 10, 1, 0);
        let verifies = |t: &Transfer, chain| t.signed_message(&t.signing_bytes(chain)).verify();
        assert!(verifies(&t, chain));
        assert!(!verifies(&t, ChainTag::of("b")), "a signature for another chain id");
        let mut variants = vec![t.clone(); 5];
        variants[0].recipient = address(3);
        variants[1].amount += 1;
        variants[2].fee += 1;
        variants[3].nonce += 1;
        variants[4].sender = address(3);
        for v in &variants {
            assert!(!verifies(v, chain));
            assert_ne!(v.id(chain), t.id(chain));
        }
    }

    #[test]
    fn malformed_transfers_are_refused() {
        let chain = ChainTag::of("a");
        let ok = Transfer::sign(&key(1), chain, address(2), 10, 0, 0);
        assert_eq!(ok.check_fields(), Ok(()));
        assert_eq!(Transfer { amount: 0, ..ok.clone() }.check_fields(), Err(TxError::ZeroAmount));
        assert_eq!(Transfer { recipient: ok.sender, ..ok.clone() }.check_fields(), Err(TxError::SelfTransfer));
        let overflow = Transfer { amount: u64::MAX, fee: 1, ..ok };
        assert_eq!(overflow.check_fields(), Err(TxError::CostOverflow));
    }

    #[test]
    fn a_small_order_key_cannot_send_though_anyone_can_sign_for_it() {
        let chain = ChainTag::of("a");
        // The identity (y = 1), the point of order 2 (y = -1), a point of order 4 (y = 0: the
        // all-zero address) and the identity again with y written as p + 1 (non-canonical).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut minus_one = [0xff; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        let mut p_plus_one = [0xff; 32];
        p_plus_one[0] = 0xee;
        p_plus_one[31] = 0x7f;
        for key in [identity, minus_one, [0; 32], p_plus_one] {
            let sender = Address::new(key);
            assert!(sender.is_small_order(), "{sender}");
            // R = the identity and S = 0 satisfy ZIP-215's cofactored equation for any message.
            let mut forged = [0u8; 64];
            forged[0] = 1;
            let t =
                Transfer { sender, recipient: address(2), amount: 5, fee: 0, nonce: 0, signature: Signature(forged) };
            assert!(t.signed_message(&t.signing_bytes(chain)).verify(), "ZIP-215 accepts the forgery for {sender}");
            assert_eq!(t.check_fields(), Err(TxError::SmallOrderSender));
            assert_eq!(TxError::SmallOrderSender.reason(), "small_order_sender");
        }
        assert!(!address(1).is_small_order());
        // A small-order recipient is allowed: what it receives can never move (a burn).
        let burn = Transfer::sign(&key(1), chain, Address::new([0; 32]), 10, 0, 0);
        assert_eq!(burn.check_fields(), Ok(()));
    }

    #[test]
    fn reward_ids_differ_by_height_and_recipient() {
        let chain = ChainTag::of("a");
        let base = Transaction::reward(address(1), 50, 7).id(chain);
        assert_ne!(Transaction::reward(address(1), 50, 8).id(chain), base);
        assert_ne!(Transaction::reward(address(2), 50, 7).id(chain), base);
        assert_eq!(Transaction::reward(address(1), 50, 7).id(ChainTag::of("b")), base);
    }
}
