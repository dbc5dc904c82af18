//! Store layout upgrades, run when a node opens a data directory an earlier version wrote.
//!
//! Layout 7 kept each block under its hash (`B` ++ hash → metadata, then the block), so every
//! new block landed at a random place in the tree: once the chain outgrew sled's cache, most
//! inserts read a leaf back from disk and rewrote it. Layout 8 keeps the metadata under the hash
//! (`M`, small records) and the block under its height and hash (`C`), so applying the main chain
//! appends. The upgrade moves [`RECORDS_PER_BATCH`] block records at a time, each move one
//! atomic sled batch that writes the new records and removes the old ones: a node killed midway
//! finds some blocks moved and the rest not, and the next start goes on from there. The layout
//! number changes last, once no old record is left.

use super::keys::{self, key};
use super::{corrupt, encoding, Store, StoreError};
use crate::core::chain::BlockMeta;
use crate::core::hash::BlockHash;

/// Block records moved per atomic batch.
const RECORDS_PER_BATCH: usize = 1024;

/// The layout the upgrade starts from.
pub(super) const FROM_LAYOUT: u64 = 7;

impl Store {
    /// Moves every layout-7 block record to layout 8's two records, then records layout 8.
    /// Returns how many blocks were moved.
    pub(super) fn upgrade_from_layout_7(&self) -> Result<u64, StoreError> {
        let mut moved = 0u64;
        loop {
            let in_batch = self.move_layout_7_blocks(RECORDS_PER_BATCH)?;
            if in_batch == 0 {
                break;
            }
            moved += in_batch as u64;
        }
        self.tree.insert(key(keys::STATE, keys::LAYOUT), &super::LAYOUT_VERSION.to_be_bytes()[..])?;
        self.db.flush()?;
        Ok(moved)
    }

    /// Moves up to `limit` layout-7 block records in one atomic batch; returns how many.
    pub(super) fn move_layout_7_blocks(&self, limit: usize) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for record in self.tree.scan_prefix([keys::LAYOUT_7_BLOCK]).take(limit) {
            let (old_key, raw) = record?;
            let hash = old_key
                .get(1..)
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .map(BlockHash::new)
                .ok_or_else(|| corrupt(&old_key, "a block key of layout 7 is 33 bytes".into()))?;
            // The record is the metadata's encoding followed by the block's: split, not decoded.
            let meta: BlockMeta = encoding::decode_prefix(&raw).map_err(|e| corrupt(&old_key, e.to_string()))?;
            let block = raw.get(encoding::encoded_len(&meta)..).unwrap_or_default();
            batch.insert(key(keys::META, hash.as_bytes()), encoding::encode(&meta));
            batch.insert(&keys::block(meta.height, &hash)[..], block);
            batch.remove(old_key);
            in_batch += 1;
        }
        if in_batch > 0 {
            self.tree.apply_batch(batch)?;
        }
        Ok(in_batch)
    }
}
