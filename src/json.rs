//! JSON shapes of blocks and transactions in the API, kept as in the Flask original (`index`,
//! `proof`, `previous_hash`, `timestamp`) plus what anyone needs to recompute a block hash from
//! the JSON alone (`version`, `tx_root`, `bits`, and each transaction's fields). Peers read
//! blocks back from this shape, so the conversion goes both ways.

use crate::core::account::Address;
use crate::core::block::Block;
use crate::core::hash::{BlockHash, MerkleRoot, TxId};
use crate::core::header::BlockHeader;
use crate::core::signature::Signature;
use crate::core::transaction::{ChainTag, Reward, Transaction, Transfer, REWARD_SENDER};
use serde::{Deserialize, Serialize};

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
    pub fn into_transfer(self, chain: ChainTag) -> Result<Transfer, String> {
        let transfer = Transfer {
            sender: self.sender,
            recipient: self.recipient,
            amount: self.amount,
            fee: self.fee,
            nonce: self.nonce,
            signature: self.signature,
        };
        match self.id {
            Some(id) if id != transfer.id(chain) => Err(format!(
                "id {id} is not what the fields hash to ({}); the id is SHA-256 of the signing bytes and the signature",
                transfer.id(chain)
            )),
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

    fn into_transaction(self) -> Result<Transaction, String> {
        if self.sender == REWARD_SENDER {
            if self.fee != 0 || !self.signature.is_empty() {
                return Err("a reward has fee 0 and no signature".into());
            }
            return Ok(Transaction::Reward(Reward {
                recipient: self.recipient,
                amount: self.amount,
                height: self.nonce,
            }));
        }
        Ok(Transaction::Transfer(Transfer {
            sender: self.sender.parse().map_err(|e| format!("sender: {e}"))?,
            recipient: self.recipient,
            amount: self.amount,
            fee: self.fee,
            nonce: self.nonce,
            signature: self.signature.parse().map_err(|e| format!("signature: {e}"))?,
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
    type Error = String;

    /// Rebuilds the block; the hash is recomputed and must match the one given.
    fn try_from(json: BlockJson) -> Result<Self, String> {
        let transactions = json
            .transactions
            .into_iter()
            .enumerate()
            .map(|(i, tx)| tx.into_transaction().map_err(|e| format!("block {} transaction {i}: {e}", json.index)))
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
            return Err(format!("block {} does not hash to the hash it claims", json.index));
        }
        Ok(block)
    }
}
