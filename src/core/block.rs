//! A block: header plus transactions, and the genesis block every node derives from config.

use super::encoding;
use super::hash::{BlockHash, TxId};
use super::header::{BlockHeader, HEADER_VERSION};
use super::merkle::merkle_root;
use super::params::ChainParams;
use super::transaction::{ChainTag, Transaction, Transfer};
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

    /// Ids of the transactions on the chain tagged `chain`, in block order.
    pub fn txids(&self, chain: ChainTag) -> Vec<TxId> {
        self.transactions.iter().map(|tx| tx.id(chain)).collect()
    }

    /// The transfers (everything but the reward): what the transaction index and the mempool
    /// hold.
    pub fn transfers(&self) -> impl Iterator<Item = &Transfer> {
        self.transactions.iter().filter_map(Transaction::as_transfer)
    }

    /// Builds an unmined block (nonce 0) on `parent` holding `transactions` in that order, for
    /// the chain tagged `chain`.
    pub fn candidate(
        chain: ChainTag,
        parent_hash: BlockHash,
        parent_height: u64,
        bits: u32,
        timestamp_ms: u64,
        transactions: Vec<Transaction>,
    ) -> Self {
        let ids: Vec<TxId> = transactions.iter().map(|tx| tx.id(chain)).collect();
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

/// Most bytes a header and the transaction count take in a block's canonical encoding: seven
/// variable-length integers at their widest and two digests.
const BLOCK_OVERHEAD_BYTES: usize = 5 + 9 + 32 + 32 + 9 + 5 + 9 + 9;

/// The longest prefix of `txs` that fits in a block of at most `max_bytes` (canonical
/// encoding), so a miner never builds a block the size rule refuses, whatever the mempool holds.
pub fn fit_in_block(mut txs: Vec<Transaction>, max_bytes: usize) -> Vec<Transaction> {
    // The length prefix of the transaction list is counted in the overhead.
    let mut used = BLOCK_OVERHEAD_BYTES;
    let fitting = txs
        .iter()
        .take_while(|tx| {
            used += encoding::encoded_len(*tx);
            used <= max_bytes
        })
        .count();
    txs.truncate(fitting);
    txs
}

/// The genesis block of the chain described by `params`: no transactions, no proof of work, and
/// the digest of every chain parameter as its parent hash, so every node computes it alone, none
/// publishes it, and nodes configured differently never share a genesis.
pub fn genesis(params: &ChainParams) -> Block {
    Block {
        header: BlockHeader {
            version: HEADER_VERSION,
            height: 0,
            prev_hash: BlockHash::new(params.digest()),
            tx_root: merkle_root(&[]),
            timestamp_ms: params.genesis_timestamp_ms,
            bits: params.genesis_bits(),
            nonce: 0,
        },
        transactions: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fitted_block_never_exceeds_the_size_bound() {
        let txs: Vec<Transaction> = (0..200u64)
            .map(|n| {
                Transaction::Transfer(Transfer {
                    sender: crate::core::account::Address::new([n as u8; 32]),
                    recipient: crate::core::account::Address::new([1; 32]),
                    amount: u64::MAX - n * n * n * n * n,
                    fee: n,
                    nonce: u64::MAX - n,
                    signature: crate::core::signature::Signature([2; 64]),
                })
            })
            .collect();
        for max in [200, 500, 1_000, 5_000] {
            let fitted = fit_in_block(txs.clone(), max);
            let chain = ChainTag::of("test");
            let mut block =
                Block::candidate(chain, BlockHash::new([9; 32]), u64::MAX - 1, u32::MAX, u64::MAX, fitted.clone());
            block.header.nonce = u64::MAX;
            assert!(encoding::encoded_len(&block) <= max, "{max}");
            assert!(fitted.len() < txs.len());
            let one_more = fit_in_block(txs[..fitted.len() + 1].to_vec(), max + 300);
            assert_eq!(one_more.len(), fitted.len() + 1, "not needlessly short");
        }
    }

    #[test]
    fn the_default_genesis_matches_the_spec_vector() {
        // docs/consensus.md gives these two values: another implementation checks itself
        // against them.
        let params = ChainParams::default();
        assert_eq!(hex::encode(params.digest()), "c1e85439b2a1f4b43ef67d81337746eb0462eac38f915138427c127136d1f1fb");
        assert_eq!(
            genesis(&params).hash().to_hex(),
            "34ed63269bffe93c36ab1b03e93ef955ee1748fe00bb35b4a2ef5e3fd63edc74"
        );
    }

    #[test]
    fn genesis_is_derived_from_params() {
        let params = ChainParams::default();
        assert_eq!(genesis(&params), genesis(&params.clone()));
        let other = ChainParams { chain_id: "other".into(), ..params.clone() };
        assert_ne!(genesis(&params).hash(), genesis(&other).hash());
        let variants = [
            ChainParams { bits: params.bits + 1, ..params.clone() },
            ChainParams { retarget_interval: params.retarget_interval + 1, ..params.clone() },
            ChainParams { target_block_ms: params.target_block_ms + 1, ..params.clone() },
            ChainParams { reward: params.reward + 1, ..params.clone() },
            ChainParams { genesis_timestamp_ms: 1, ..params.clone() },
            ChainParams { max_block_txs: params.max_block_txs + 1, ..params.clone() },
            ChainParams { max_block_bytes: params.max_block_bytes + 1, ..params.clone() },
            ChainParams { max_orphans: params.max_orphans + 1, ..params.clone() },
            ChainParams { max_orphan_bytes: params.max_orphan_bytes + 1, ..params.clone() },
            ChainParams { finality_depth: params.finality_depth + 1, ..params.clone() },
            ChainParams { max_future_ms: params.max_future_ms + 1, ..params.clone() },
            ChainParams { allocations: [(crate::core::account::Address::new([1; 32]), 5)].into(), ..params.clone() },
        ];
        let mut seen = std::collections::HashSet::from([genesis(&params).hash()]);
        for changed in &variants {
            assert!(seen.insert(genesis(changed).hash()), "genesis ignores a change: {changed:?}");
        }
        assert_eq!(genesis(&params).header.height, 0);
    }
}
