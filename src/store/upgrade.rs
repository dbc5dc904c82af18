//! Upgrading a data directory of layout 7, whose block records held the blocks' bodies, to
//! layout 8, where the bodies are in the block files: in place, in bounded batches, and
//! resumable, so a node of the same consensus format keeps its chain without a re-sync.

use super::keys::{self, key};
use super::{block_record, corrupt, Store, StoreError, LAYOUT_VERSION};
use crate::core::block::Block;
use crate::core::chain::BlockMeta;
use crate::core::encoding;
use std::ops::Bound;

/// The layout this version upgrades from.
pub(super) const UPGRADABLE_LAYOUT: u64 = 7;

/// Bytes of block records converted per batch (at least one record each): the memory the
/// upgrade takes, whatever the chain's length.
pub(super) const UPGRADE_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// A block record of layout 7: the metadata followed by the block.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct InlineBlock {
    pub meta: BlockMeta,
    pub block: Block,
}

impl Store {
    /// Moves every block body out of sled into the block files, about `batch_bytes` of records
    /// per batch, then marks the store as layout 8. Each batch also stores the last key it
    /// converted (and the files' new end), so an upgrade cut short resumes after it.
    pub(super) fn upgrade_layout(&self, batch_bytes: usize) -> Result<(), StoreError> {
        tracing::info!(from = UPGRADABLE_LAYOUT, to = LAYOUT_VERSION, "upgrading the store's layout");
        let mut converted = 0;
        loop {
            let step = self.upgrade_step(batch_bytes)?;
            if step == 0 {
                break;
            }
            converted += step;
        }
        let mut batch = sled::Batch::default();
        batch.remove(key(keys::STATE, keys::UPGRADE_CURSOR));
        batch.insert(key(keys::STATE, keys::LAYOUT), &LAYOUT_VERSION.to_be_bytes()[..]);
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        tracing::info!(blocks = converted, "the store's layout is upgraded");
        Ok(())
    }

    /// Converts the block records after the cursor, about `batch_bytes` of them, in one batch;
    /// returns how many (0 once none is left).
    pub(super) fn upgrade_step(&self, batch_bytes: usize) -> Result<usize, StoreError> {
        let cursor = self.tree.get(key(keys::STATE, keys::UPGRADE_CURSOR))?;
        let start = match &cursor {
            Some(last) => Bound::Excluded(last.to_vec()),
            None => Bound::Included(vec![keys::BLOCK]),
        };
        let mut keys_read = Vec::new();
        let mut records = Vec::new();
        let mut bytes = 0;
        for entry in self.tree.range::<Vec<u8>, _>((start, Bound::Excluded(vec![keys::BLOCK + 1]))) {
            let (k, raw) = entry?;
            bytes += raw.len();
            let inline: InlineBlock = encoding::decode(&raw).map_err(|e| corrupt(&k, e.to_string()))?;
            keys_read.push(k);
            records.push(inline);
            if bytes >= batch_bytes {
                break;
            }
        }
        let Some(last) = keys_read.last() else { return Ok(0) };
        let appended = self.bodies.append(records.iter().map(|r| &r.block))?;
        let mut batch = sled::Batch::default();
        for ((k, record), body) in keys_read.iter().zip(&records).zip(&appended.at) {
            batch.insert(k, block_record(record.meta, *body));
        }
        batch.insert(key(keys::STATE, keys::FILES_END), encoding::encode(&appended.end));
        batch.insert(key(keys::STATE, keys::UPGRADE_CURSOR), last.clone());
        self.tree.apply_batch(batch)?;
        self.bodies.advance(appended.end);
        Ok(records.len())
    }
}
