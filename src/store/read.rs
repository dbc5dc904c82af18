//! Reading the chain state: the [`ChainView`] the consensus rules run against, and the queries
//! the node and its HTTP API make.

use super::{be_u64, decode, Store, StoreError, STATE_MEMPOOL_LEN, STATE_TIP};
use crate::core::block::Block;
use crate::core::chain::{BlockMeta, ChainView, Tip};
use crate::core::hash::{BlockHash, TxId};
use crate::core::transaction::Transaction;

impl ChainView for Store {
    type Error = StoreError;

    fn tip(&self) -> Result<Tip, StoreError> {
        let raw = self.state.get(STATE_TIP)?.ok_or_else(|| StoreError::Missing("the tip".into()))?;
        decode("state", STATE_TIP, &raw)
    }

    fn meta(&self, hash: &BlockHash) -> Result<Option<BlockMeta>, StoreError> {
        self.block_meta.get(hash.0)?.map(|raw| decode("block_meta", &hash.0, &raw)).transpose()
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        self.blocks.get(hash.0)?.map(|raw| decode("blocks", &hash.0, &raw)).transpose()
    }

    fn main_hash_at(&self, height: u64) -> Result<Option<BlockHash>, StoreError> {
        self.main.get(height.to_be_bytes())?.map(|raw| digest("main", &raw).map(BlockHash)).transpose()
    }

    fn main_tx_height(&self, txid: &TxId) -> Result<Option<u64>, StoreError> {
        self.tx_index.get(txid.0)?.map(|raw| be_u64("tx_index", &raw)).transpose()
    }

    fn orphans(&self) -> Result<Vec<(u64, Block)>, StoreError> {
        self.orphans
            .iter()
            .map(|entry| {
                let (key, raw) = entry?;
                Ok((be_u64("orphans", &key)?, decode("orphans", &key, &raw)?))
            })
            .collect()
    }
}

impl Store {
    /// Main-chain blocks from `from` (inclusive), at most `limit` of them.
    pub fn main_blocks(&self, from: u64, limit: usize) -> Result<Vec<Block>, StoreError> {
        self.main
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|entry| {
                let (_, raw) = entry?;
                let hash = BlockHash(digest("main", &raw)?);
                self.block(&hash)?.ok_or_else(|| StoreError::Missing(format!("block {hash}")))
            })
            .collect()
    }

    /// The first `limit` mempool transactions, oldest first.
    pub fn mempool_head(&self, limit: usize) -> Result<Vec<Transaction>, StoreError> {
        self.mempool
            .iter()
            .take(limit)
            .map(|entry| {
                let (key, raw) = entry?;
                decode("mempool", &key, &raw)
            })
            .collect()
    }

    /// Transactions waiting in the mempool.
    pub fn mempool_len(&self) -> Result<u64, StoreError> {
        self.state.get(STATE_MEMPOOL_LEN)?.map_or(Ok(0), |raw| be_u64("state", &raw))
    }

    /// Whether the mempool holds `txid`.
    pub fn mempool_contains(&self, txid: &TxId) -> Result<bool, StoreError> {
        Ok(self.mempool_ids.contains_key(txid.0)?)
    }

    /// The next offset to read for the consumer position `key`, if one was stored.
    pub fn offset(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.offsets.get(key.as_bytes())?.map(|raw| be_u64("offsets", &raw)).transpose()
    }

    /// Every stored consumer position, by name.
    pub fn offsets(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.offsets
            .iter()
            .map(|entry| {
                let (key, raw) = entry?;
                Ok((String::from_utf8_lossy(&key).into_owned(), be_u64("offsets", &raw)?))
            })
            .collect()
    }

    /// Base URLs of the registered peers.
    pub fn peers(&self) -> Result<Vec<String>, StoreError> {
        self.peers
            .iter()
            .keys()
            .map(|key| Ok(String::from_utf8_lossy(&key?).into_owned()))
            .collect()
    }

    /// Blocks waiting for their parent.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }
}

/// Reads a stored 32-byte digest.
fn digest(tree: &'static str, raw: &[u8]) -> Result<[u8; 32], StoreError> {
    raw.try_into().map_err(|_| StoreError::Corrupt {
        tree,
        key: hex::encode(raw),
        reason: format!("{} bytes where 32 were expected", raw.len()),
    })
}
