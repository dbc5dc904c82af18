//! Upgrading a data directory of layout 7, whose block records held the blocks' bodies, to
//! layout 8, where the bodies are in the block files: in place, in bounded batches, and
//! resumable, so a node of the same consensus format keeps its chain without a re-sync.

use super::keys::{self, key};
use super::{be_u64, corrupt, Store, StoreError, LAYOUT_VERSION};
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

/// Where a store's layout stands when it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LayoutState {
    /// The layout this version writes.
    Current,
    /// Layout 7, or an upgrade from it that was cut short.
    ToUpgrade,
}

/// The layout version the store in `tree` records (0 when none is recorded).
pub(super) fn stored_layout(tree: &sled::Tree) -> Result<u64, StoreError> {
    let k = key(keys::STATE, keys::LAYOUT);
    tree.get(&k)?.map_or(Ok(0), |raw| be_u64(&k, &raw))
}

/// What opening the store in `tree` must do about its layout; a layout this version neither
/// reads nor upgrades is refused rather than misread. Layouts before 7 hold chains of an older
/// consensus format (their genesis and blocks are not valid here), so they are not upgraded: a
/// node syncs a new data directory from its topics.
pub(super) fn layout_state(tree: &sled::Tree) -> Result<LayoutState, StoreError> {
    match stored_layout(tree)? {
        LAYOUT_VERSION if tree.get(key(keys::STATE, keys::UPGRADE_CURSOR))?.is_some() => Ok(LayoutState::ToUpgrade),
        LAYOUT_VERSION => Ok(LayoutState::Current),
        UPGRADABLE_LAYOUT => Ok(LayoutState::ToUpgrade),
        found => Err(StoreError::Layout { found, expected: LAYOUT_VERSION }),
    }
}

impl Store {
    /// Finishes what [`layout_state`] found: nothing, or the upgrade.
    pub(super) fn bring_to_layout(self, state: LayoutState) -> Result<Self, StoreError> {
        if state == LayoutState::ToUpgrade {
            self.upgrade_layout(UPGRADE_BATCH_BYTES)?;
        }
        Ok(self)
    }

    /// Moves every block body out of sled into the block files, about `batch_bytes` of records
    /// per batch. The first batch marks the store as layout 8 with a cursor (the last key
    /// converted), so a version that reads only layout 7 refuses a half-converted store, and
    /// an upgrade cut short resumes after the cursor; the last removes the cursor.
    fn upgrade_layout(&self, batch_bytes: usize) -> Result<(), StoreError> {
        tracing::info!(from = UPGRADABLE_LAYOUT, to = LAYOUT_VERSION, "upgrading the store's layout");
        self.begin_upgrade()?;
        let mut converted = 0;
        loop {
            let step = self.upgrade_step(batch_bytes)?;
            if step == 0 {
                break;
            }
            converted += step;
        }
        self.tree.remove(key(keys::STATE, keys::UPGRADE_CURSOR))?;
        self.db.flush()?;
        tracing::info!(blocks = converted, "the store's layout is upgraded");
        Ok(())
    }

    /// Marks a store of layout 7 as being upgraded (layout 8 with a cursor before every block
    /// record); a store already marked is left as it is.
    pub(super) fn begin_upgrade(&self) -> Result<(), StoreError> {
        if stored_layout(&self.tree)? != UPGRADABLE_LAYOUT {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        batch.insert(key(keys::STATE, keys::LAYOUT), &LAYOUT_VERSION.to_be_bytes()[..]);
        batch.insert(key(keys::STATE, keys::UPGRADE_CURSOR), &[keys::BLOCK][..]);
        Ok(self.tree.apply_batch(batch)?)
    }

    /// Converts the block records after the cursor, about `batch_bytes` of them, in one batch;
    /// returns how many (0 once none is left).
    pub(super) fn upgrade_step(&self, batch_bytes: usize) -> Result<usize, StoreError> {
        // The cursor starts as the bare prefix, which sorts before every block key.
        let cursor = self.tree.get(key(keys::STATE, keys::UPGRADE_CURSOR))?.map_or(vec![keys::BLOCK], |c| c.to_vec());
        let mut keys_read = Vec::new();
        let mut records = Vec::new();
        let mut bytes = 0;
        let range = (Bound::Excluded(cursor), Bound::Excluded(vec![keys::BLOCK + 1]));
        for entry in self.tree.range::<Vec<u8>, _>(range) {
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
        let blocks: Vec<_> = keys_read.iter().zip(&records).map(|(k, r)| (k.to_vec(), r.meta, &r.block)).collect();
        let mut batch = sled::Batch::default();
        let end = self.stage_blocks(&blocks, &mut batch)?;
        batch.insert(key(keys::STATE, keys::UPGRADE_CURSOR), last.clone());
        self.tree.apply_batch(batch)?;
        self.bodies.advance(end);
        Ok(records.len())
    }
}
