//! A block: header plus transactions, and the genesis block every node derives from config.

use super::hash::{sha256, BlockHash, TxId};
use super::header::{BlockHeader, HEADER_VERSION};
use super::merkle::merkle_root;
use super::params::ChainParams;
use super::transaction::Transaction;
use serde::{Deserialize, Serialize};

/// A block as it travels on the blocks topic and sits in the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The hashed part.
    pub header: BlockHeader,
    /// Reward first, then transfers; genesis has none.
    pub transactions: Vec<Transaction>,
}

impl Block {
    /// The block's identity.
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// Ids of the transactions, in block order.
    pub fn txids(&self) -> Vec<TxId> {
        self.transactions.iter().map(Transaction::id).collect()
    }

    /// The transactions other than the reward: the ones the transaction index and the mempool
    /// hold (a reward is unique by its height and never pooled).
    pub fn transfers(&self) -> impl Iterator<Item = &Transaction> {
        self.transactions.iter().filter(|tx| !tx.is_reward())
    }

    /// Builds an unmined block (nonce 0) on `parent` holding `transactions` in that order.
    pub fn candidate(
        parent_hash: BlockHash,
        parent_height: u64,
        bits: u32,
        timestamp_ms: u64,
        transactions: Vec<Transaction>,
    ) -> Self {
        let ids: Vec<TxId> = transactions.iter().map(Transaction::id).collect();
        Block {
            header: BlockHeader {
                version: HEADER_VERSION,
                height: parent_height + 1,
                prev_hash: parent_hash,
                tx_root: merkle_root(&ids),
                timestamp_ms,
                bits,
                nonce: 0,
            },
            transactions,
        }
    }
}

/// The genesis block of the chain described by `params`: no transactions, no proof of work, and a
/// parent hash derived from the chain id, so every node computes it alone and none publishes it.
pub fn genesis(params: &ChainParams) -> Block {
    let seed = format!("kafkachain genesis/{}", params.chain_id);
    Block {
        header: BlockHeader {
            version: HEADER_VERSION,
            height: 0,
            prev_hash: BlockHash(sha256(seed.as_bytes())),
            tx_root: merkle_root(&[]),
            timestamp_ms: params.genesis_timestamp_ms,
            bits: params.bits,
            nonce: 0,
        },
        transactions: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_derived_from_params() {
        let params = ChainParams::default();
        assert_eq!(genesis(&params), genesis(&params.clone()));
        let other = ChainParams { chain_id: "other".into(), ..params.clone() };
        assert_ne!(genesis(&params).hash(), genesis(&other).hash());
        let harder = ChainParams { bits: params.bits + 1, ..params.clone() };
        assert_ne!(genesis(&params).hash(), genesis(&harder).hash());
        assert_eq!(genesis(&params).header.height, 0);
    }
}
