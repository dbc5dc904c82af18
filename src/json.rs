//! JSON shapes of blocks and transactions in the API, kept as in the Flask original (`index`, `proof`, `previous_hash`,
//! `timestamp`) plus what anyone needs to recompute a block hash from the JSON alone (`version`,
//! `tx_root`, `bits`, and each transaction's fields and `nonce`). Peers read blocks back from
//! this shape, so the conversion goes both ways.

use crate::core::block::Block;
use crate::core::hash::{BlockHash, MerkleRoot};
use crate::core::header::BlockHeader;
use crate::core::transaction::Transaction;
use serde::{Deserialize, Serialize};

/// A transaction as JSON. Unknown fields are refused when reading, so a peer cannot pad a page.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxJson {
    /// Transaction id, hex.
    pub id: String,
    /// Paying address (`"0"` for the block reward).
    pub sender: String,
    /// Receiving address.
    pub recipient: String,
    /// Amount in the smallest unit.
    pub amount: u64,
    /// Distinguishes otherwise equal transfers; the height for a reward.
    pub nonce: u64,
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
    /// Parent hash, hex.
    pub previous_hash: String,
    /// This block's hash, hex.
    pub hash: String,
    /// Header version.
    pub version: u32,
    /// Merkle root of the transaction ids, hex.
    pub tx_root: String,
    /// Leading zero bits the hash must have.
    pub bits: u32,
}

impl From<&Transaction> for TxJson {
    fn from(tx: &Transaction) -> Self {
        TxJson {
            id: tx.id().to_hex(),
            sender: tx.sender.clone(),
            recipient: tx.recipient.clone(),
            amount: tx.amount,
            nonce: tx.nonce,
        }
    }
}

impl From<&Block> for BlockJson {
    fn from(block: &Block) -> Self {
        let h = &block.header;
        BlockJson {
            index: h.height,
            timestamp: h.timestamp_ms,
            transactions: block.transactions.iter().map(TxJson::from).collect(),
            proof: h.nonce,
            previous_hash: h.prev_hash.to_hex(),
            hash: block.hash().to_hex(),
            version: h.version,
            tx_root: h.tx_root.to_hex(),
            bits: h.bits,
        }
    }
}

impl TryFrom<BlockJson> for Block {
    type Error = String;

    /// Rebuilds the block; the hash is recomputed and must match the one given.
    fn try_from(json: BlockJson) -> Result<Self, String> {
        let prev_hash: BlockHash = json.previous_hash.parse().map_err(|e| format!("previous_hash: {e}"))?;
        let tx_root: MerkleRoot = json.tx_root.parse().map_err(|e| format!("tx_root: {e}"))?;
        let block = Block {
            header: BlockHeader {
                version: json.version,
                height: json.index,
                prev_hash,
                tx_root,
                timestamp_ms: json.timestamp,
                bits: json.bits,
                nonce: json.proof,
            },
            transactions: json
                .transactions
                .into_iter()
                .map(|t| Transaction { sender: t.sender, recipient: t.recipient, amount: t.amount, nonce: t.nonce })
                .collect(),
        };
        if block.hash().to_hex() != json.hash {
            return Err(format!("block {} does not hash to the hash it claims", json.index));
        }
        Ok(block)
    }
}
