//! JSON shapes of blocks and transactions in the API, kept as in the Flask original (`index`,
//! `proof`, `previous_hash`, `timestamp`) plus what anyone needs to recompute a block hash from
//! the JSON alone (`version`, `tx_root`, `bits`, and each transaction's fields). Peers read
//! blocks back from this shape, so the conversion goes both ways.

use crate::core::account::Address;
use crate::core::block::Block;
use crate::core::hash::{BlockHash, MerkleRoot, ParseDigestError, TxId};
use crate::core::header::BlockHeader;
use crate::core::signature::{ParseSignatureError, Signature};
use crate::core::transaction::{ChainTag, Reward, Transaction, Transfer, REWARD_SENDER};
use serde::{Deserialize, Serialize};

/// Why a block or transaction in JSON is not the one it claims to be.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// A submitted transfer's `id` is not what its fields hash to.
    #[error("id {given} is not what the fields hash to ({computed}); the id is SHA-256 of the signing bytes and the signature")]
    IdMismatch {
        /// The id given.
        given: TxId,
        /// The id of the fields.
        computed: TxId,
    },
    /// A reward (sender `"0"`) with a fee or a signature.
    #[error("a reward has fee 0 and no signature")]
    RewardNotPlain,
    /// A transfer's sender is not an address.
    #[error("sender: {0}")]
    Sender(#[source] ParseDigestError),
    /// A transfer's signature is not 64 bytes of hex.
    #[error("signature: {0}")]
    Signature(#[source] ParseSignatureError),
    /// A transaction of a block is malformed.
    #[error("block {height} transaction {index}: {source}")]
    Transaction {
        /// The block's height.
        height: u64,
        /// The transaction's place in the block.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: Box<JsonError>,
    },
    /// A block's fields do not hash to the `hash` it gives.
    #[error("block {height} does not hash to the hash it claims")]
    HashMismatch {
        /// The block's height.
        height: u64,
    },
}

/// A transaction as JSON: `{"id","sender","recipient","amount","fee","nonce","signature"}`. A
/// reward has sender `"0"`, fee 0, the block height as nonce and an empty signature. Unknown
/// fields are refused when reading, so a peer cannot pad a page.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxJson {
    /// Transaction id.
    pub id: TxId,
    /// Paying address, or `"0"` for the block reward.
    pub sender: String,
    /// Receiving address.
    pub recipient: Address,
    /// Amount in the smallest unit.
    pub amount: u64,
    /// Fee paid to the miner.
    pub fee: u64,
    /// The sender's nonce; the height for a reward.
    pub nonce: u64,
    /// Signature, 128 hex characters; empty for a reward.
    pub signature: String,
}

/// A signed transfer as a client submits it: the brief's shape, `id` optional (checked when
/// given). `fee` defaults to 0.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTransferJson {
    /// Transaction id, if the client computed it.
    #[serde(default)]
    pub id: Option<TxId>,
    /// Paying address (the key that signed).
    pub sender: Address,
    /// Receiving address.
    pub recipient: Address,
    /// Amount in the smallest unit.
    pub amount: u64,
    /// Fee paid to the miner.
    #[serde(default)]
    pub fee: u64,
    /// The sender's nonce.
    pub nonce: u64,
    /// Ed25519 signature over the signing bytes, 128 hex characters.
    pub signature: Signature,
}

impl SignedTransferJson {
    /// The transfer, once its id (if given) matches what the fields hash to on `chain`.
    pub fn into_transfer(self, chain: ChainTag) -> Result<Transfer, JsonError> {
        let transfer = Transfer {
            sender: self.sender,
            recipient: self.recipient,
            amount: self.amount,
            fee: self.fee,
            nonce: self.nonce,
            signature: self.signature,
        };
        match self.id {
            Some(given) if given != transfer.id(chain) => {
                Err(JsonError::IdMismatch { given, computed: transfer.id(chain) })
            }
            _ => Ok(transfer),
        }
    }
}

impl From<&Transfer> for SignedTransferJson {
    fn from(t: &Transfer) -> Self {
        SignedTransferJson {
            id: None,
            sender: t.sender,
            recipient: t.recipient,
            amount: t.amount,
            fee: t.fee,
            nonce: t.nonce,
            signature: t.signature,
        }
    }
}

/// A block as JSON. Unknown fields are refused when reading, so a peer cannot pad a page.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockJson {
    /// Height.
    pub index: u64,
    /// Header timestamp, milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Transactions, reward first.
    pub transactions: Vec<TxJson>,
    /// The proof-of-work nonce.
    pub proof: u64,
    /// Parent hash.
    pub previous_hash: BlockHash,
    /// This block's hash.
    pub hash: BlockHash,
    /// Header version.
    pub version: u32,
    /// Merkle root of the transaction ids.
    pub tx_root: MerkleRoot,
    /// The compact target the hash must not exceed.
    pub bits: u32,
}

impl TxJson {
    /// The JSON of `tx` on the chain tagged `chain`.
    pub fn new(tx: &Transaction, chain: ChainTag) -> Self {
        let id = tx.id(chain);
        match tx {
            Transaction::Reward(r) => TxJson {
                id,
                sender: REWARD_SENDER.to_owned(),
                recipient: r.recipient,
                amount: r.amount,
                fee: 0,
                nonce: r.height,
                signature: String::new(),
            },
            Transaction::Transfer(t) => TxJson {
                id,
                sender: t.sender.to_hex(),
                recipient: t.recipient,
                amount: t.amount,
                fee: t.fee,
                nonce: t.nonce,
                signature: t.signature.to_hex(),
            },
        }
    }

    fn into_transaction(self) -> Result<Transaction, JsonError> {
        if self.sender == REWARD_SENDER {
            if self.fee != 0 || !self.signature.is_empty() {
                return Err(JsonError::RewardNotPlain);
            }
            return Ok(Transaction::Reward(Reward {
                recipient: self.recipient,
                amount: self.amount,
                height: self.nonce,
            }));
        }
        Ok(Transaction::Transfer(Transfer {
            sender: self.sender.parse().map_err(JsonError::Sender)?,
            recipient: self.recipient,
            amount: self.amount,
            fee: self.fee,
            nonce: self.nonce,
            signature: self.signature.parse().map_err(JsonError::Signature)?,
        }))
    }
}

impl BlockJson {
    /// The JSON of `block` on the chain tagged `chain`.
    pub fn new(block: &Block, chain: ChainTag) -> Self {
        let h = &block.header;
        BlockJson {
            index: h.height,
            timestamp: h.timestamp_ms,
            transactions: block.transactions.iter().map(|tx| TxJson::new(tx, chain)).collect(),
            proof: h.nonce,
            previous_hash: h.prev_hash,
            hash: block.hash(),
            version: h.version,
            tx_root: h.tx_root,
            bits: h.bits,
        }
    }
}

impl TryFrom<BlockJson> for Block {
    type Error = JsonError;

    /// Rebuilds the block; the hash is recomputed and must match the one given.
    fn try_from(json: BlockJson) -> Result<Self, JsonError> {
        let transactions = json
            .transactions
            .into_iter()
            .enumerate()
            .map(|(index, tx)| {
                tx.into_transaction().map_err(|source| JsonError::Transaction {
                    height: json.index,
                    index,
                    source: Box::new(source),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let block = Block {
            header: BlockHeader {
                version: json.version,
                height: json.index,
                prev_hash: json.previous_hash,
                tx_root: json.tx_root,
                timestamp_ms: json.timestamp,
                bits: json.bits,
                nonce: json.proof,
            },
            transactions,
        };
        if block.hash() != json.hash {
            return Err(JsonError::HashMismatch { height: json.index });
        }
        Ok(block)
    }
}
