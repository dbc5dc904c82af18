//! Upgrading a data directory of an earlier layout of the same consensus format, in place, in
//! bounded batches, and resumable, so a node keeps its chain without a re-sync:
//! - layout 7 → 8: the block bodies move out of sled into the block files;
//! - layout 8 → 9: the main-chain index, one record per height, becomes groups of heights;
//! - layout 9 → 10: the block records leave sled for the block index;
//! - layout 10 → 11: layout 11 deletes a block's mempool records after the block (listing them
//!   until then), and marking it keeps a version that would read those records as pooled
//!   transfers from opening the store. The mark's batch deletes any record the accounts already
//!   spent, which one build of layout 10 could leave (see `MempoolIndex::unlisted_stale`).

use super::apply::remove_mempool_records;
use super::block_files::BodyAt;
use super::block_index::IndexEntry;
use super::keys::{self, key};
use super::main_index::{MainIndexChange, GROUP_HEIGHTS};
use super::mempool::MempoolIndex;
use super::read::digest;
use super::{be_u64, corrupt, StagedBlocks, Store, StoreError, LAYOUT_VERSION};
use crate::core::block::Block;
use crate::core::chain::{BlockMeta, ChainView};
use crate::core::encoding;
use crate::core::hash::BlockHash;
use std::ops::Bound;

/// The layout whose block records hold the blocks' bodies.
pub(super) const BODIES_INLINE_LAYOUT: u64 = 7;

/// The layout with the bodies in the block files and one main-index record per height.
pub(super) const INDEX_BY_HEIGHT_LAYOUT: u64 = 8;

/// The layout with the main-chain index in groups and a sled record per block.
pub(super) const GROUPED_INDEX_LAYOUT: u64 = 9;

/// The layout with the block index and no list of mempool records waiting for their sweep.
pub(super) const BLOCK_INDEX_LAYOUT: u64 = 10;

/// Block records moved to the block index per batch (1 MiB of entries).
const INDEX_BATCH_BLOCKS: usize = 16 * 1024;

/// Main-index groups regrouped per batch (64 heights each; 4 MiB of records).
const REGROUP_BATCH_GROUPS: usize = 1024;

/// Bytes of block records converted per batch (at least one record each): the memory the
/// upgrade takes, whatever the chain's length.
pub(super) const UPGRADE_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// A block record of layout 7: the metadata followed by the block.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct InlineBlock {
    pub meta: BlockMeta,
    pub block: Block,
}

/// A block record of layouts 8 and 9: the metadata followed by where the body is in the block
/// files.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct SledBlock {
    pub meta: BlockMeta,
    pub body: BodyAt,
}

/// Where a store's layout stands when it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LayoutState {
    /// The layout this version writes.
    Current,
    /// Layout 7, or a move of its bodies to the block files that was cut short.
    BodiesInline,
    /// Layout 8, or a regrouping of its main-chain index that was cut short.
    IndexByHeight,
    /// Layout 9, or a move of its block records to the block index that was cut short.
    BlocksInSled,
    /// Layout 10: its marker changes, and any mempool record its accounts already spent goes.
    BeforeSweepList,
}

/// The layout version the store in `tree` records (0 when none is recorded).
pub(super) fn stored_layout(tree: &sled::Tree) -> Result<u64, StoreError> {
    let k = key(keys::STATE, keys::LAYOUT);
    tree.get(&k)?.map_or(Ok(0), |raw| be_u64(&k, &raw))
}

/// What opening the store in `tree` must do about its layout; a layout this version neither
/// reads nor upgrades is refused rather than misread. Layouts before 7 hold chains of an older
/// consensus format (their genesis and blocks are not valid here), so they are not upgraded: a
/// node syncs a new data directory from its topics. Each upgrade marks the store with its target
/// layout in its first batch, so the version before refuses a half-converted store; what is left
/// to convert (a cursor, per-height records, block records) says the upgrade is unfinished.
pub(super) fn layout_state(tree: &sled::Tree) -> Result<LayoutState, StoreError> {
    let moving_bodies = tree.get(key(keys::STATE, keys::UPGRADE_CURSOR))?.is_some();
    let any = |prefix: u8| tree.scan_prefix([prefix]).next().transpose().map(|first| first.is_some());
    let (index_by_height, blocks_in_sled) = (any(keys::MAIN_BY_HEIGHT)?, any(keys::BLOCK)?);
    match stored_layout(tree)? {
        LAYOUT_VERSION if blocks_in_sled => Ok(LayoutState::BlocksInSled),
        LAYOUT_VERSION => Ok(LayoutState::Current),
        BLOCK_INDEX_LAYOUT if blocks_in_sled => Ok(LayoutState::BlocksInSled),
        BLOCK_INDEX_LAYOUT => Ok(LayoutState::BeforeSweepList),
        GROUPED_INDEX_LAYOUT if index_by_height => Ok(LayoutState::IndexByHeight),
        GROUPED_INDEX_LAYOUT => Ok(LayoutState::BlocksInSled),
        INDEX_BY_HEIGHT_LAYOUT if moving_bodies => Ok(LayoutState::BodiesInline),
        INDEX_BY_HEIGHT_LAYOUT => Ok(LayoutState::IndexByHeight),
        BODIES_INLINE_LAYOUT => Ok(LayoutState::BodiesInline),
        found => Err(StoreError::Layout { found, expected: LAYOUT_VERSION }),
    }
}

impl Store {
    /// Finishes what [`layout_state`] found: nothing, or the upgrades still to do, in order.
    pub(super) fn bring_to_layout(self, state: LayoutState) -> Result<Self, StoreError> {
        if state == LayoutState::BodiesInline {
            self.move_bodies(UPGRADE_BATCH_BYTES)?;
        }
        if matches!(state, LayoutState::BodiesInline | LayoutState::IndexByHeight) {
            self.regroup_main_index(REGROUP_BATCH_GROUPS)?;
        }
        if matches!(state, LayoutState::BodiesInline | LayoutState::IndexByHeight | LayoutState::BlocksInSled) {
            self.index_blocks(INDEX_BATCH_BLOCKS)?;
        }
        if state != LayoutState::Current {
            let spent = MempoolIndex::unlisted_stale(&self.tree, self.params.chain_tag())?;
            let mut batch = sled::Batch::default();
            remove_mempool_records(&spent, &mut batch);
            batch.insert(key(keys::STATE, keys::LAYOUT), &LAYOUT_VERSION.to_be_bytes()[..]);
            self.tree.apply_batch(batch)?;
            self.db.flush()?;
            tracing::info!(
                layout = LAYOUT_VERSION,
                spent_mempool_records = spent.len(),
                "the store is at the current layout"
            );
        }
        Ok(self)
    }

    /// Moves every block body out of sled into the block files, about `batch_bytes` of records
    /// per batch. The first batch marks the store as layout 8 with a cursor (the last key
    /// converted), so a version that reads only layout 7 refuses a half-converted store, and
    /// an upgrade cut short resumes after the cursor; the last removes the cursor.
    fn move_bodies(&self, batch_bytes: usize) -> Result<(), StoreError> {
        tracing::info!(from = BODIES_INLINE_LAYOUT, to = INDEX_BY_HEIGHT_LAYOUT, "upgrading the store's layout");
        self.begin_moving_bodies()?;
        let converted = until_done(|| self.move_bodies_step(batch_bytes))?;
        self.tree.remove(key(keys::STATE, keys::UPGRADE_CURSOR))?;
        self.db.flush()?;
        tracing::info!(blocks = converted, "the block bodies are in the block files");
        Ok(())
    }

    /// Marks a store of layout 7 as having its bodies moved (layout 8 with a cursor before every
    /// block record); a store already marked is left as it is.
    pub(super) fn begin_moving_bodies(&self) -> Result<(), StoreError> {
        if stored_layout(&self.tree)? != BODIES_INLINE_LAYOUT {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        batch.insert(key(keys::STATE, keys::LAYOUT), &INDEX_BY_HEIGHT_LAYOUT.to_be_bytes()[..]);
        batch.insert(key(keys::STATE, keys::UPGRADE_CURSOR), &[keys::BLOCK][..]);
        Ok(self.tree.apply_batch(batch)?)
    }

    /// Converts the block records after the cursor, about `batch_bytes` of them, in one batch;
    /// returns how many (0 once none is left).
    pub(super) fn move_bodies_step(&self, batch_bytes: usize) -> Result<usize, StoreError> {
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
        let appended = self.bodies.append(records.iter().map(|r| &r.block))?;
        let mut batch = sled::Batch::default();
        for ((k, record), body) in keys_read.iter().zip(&records).zip(appended.at) {
            batch.insert(k, encoding::encode(&SledBlock { meta: record.meta, body }));
        }
        let end = appended.end;
        batch.insert(key(keys::STATE, keys::FILES_END), encoding::encode(&end));
        batch.insert(key(keys::STATE, keys::UPGRADE_CURSOR), last.clone());
        self.tree.apply_batch(batch)?;
        self.bodies.advance(end);
        Ok(records.len())
    }

    /// Turns the per-height records of the main-chain index into group records, at most
    /// `batch_groups` groups per batch; each batch also marks the store layout 9, so the version
    /// before refuses it from the first on, and a regrouping cut short resumes with the
    /// per-height records left.
    fn regroup_main_index(&self, batch_groups: usize) -> Result<(), StoreError> {
        tracing::info!(from = INDEX_BY_HEIGHT_LAYOUT, to = GROUPED_INDEX_LAYOUT, "upgrading the store's layout");
        self.check_index_by_height()?;
        let heights = until_done(|| self.regroup_step(batch_groups))?;
        self.db.flush()?;
        tracing::info!(heights, "the main-chain index is grouped");
        Ok(())
    }

    /// Checks, before anything is converted, that the per-height records left continue the
    /// grouped index (whole groups from genesis, none before a regrouping begins) without a gap
    /// up to the tip: a damaged index is refused as it is rather than half-converted, and the
    /// batches then fall on group boundaries.
    fn check_index_by_height(&self) -> Result<(), StoreError> {
        let grouped = self.main_index_len()?;
        let layout_key = key(keys::STATE, keys::LAYOUT);
        if !grouped.is_multiple_of(GROUP_HEIGHTS) {
            return Err(corrupt(&layout_key, format!("a regrouping left {grouped} heights grouped, not whole groups")));
        }
        let mut next = grouped;
        for k in self.tree.scan_prefix([keys::MAIN_BY_HEIGHT]).keys() {
            let k = k?;
            let height = be_u64(&k, &k[1..])?;
            if height != next {
                return Err(corrupt(&k, format!("the main index by height has {height} where {next} was expected")));
            }
            next += 1;
        }
        let tip = self.tip()?.height;
        if next != tip + 1 {
            return Err(corrupt(&layout_key, format!("the main index ends at {next} heights, the tip is at {tip}")));
        }
        Ok(())
    }

    /// Regroups the first `groups` groups' worth of per-height records left, in one batch;
    /// returns how many heights (0 once none is left). The records left start at a group's
    /// first height, since each batch takes whole groups of a chain without gaps.
    pub(super) fn regroup_step(&self, groups: usize) -> Result<usize, StoreError> {
        let mut change = MainIndexChange::new();
        let mut batch = sled::Batch::default();
        for entry in self.tree.scan_prefix([keys::MAIN_BY_HEIGHT]).take(groups * GROUP_HEIGHTS as usize) {
            let (k, raw) = entry?;
            change.insert(be_u64(&k, &k[1..])?, Some(BlockHash::new(digest(&k, &raw)?)));
            batch.remove(k);
        }
        if change.is_empty() {
            return Ok(0);
        }
        self.stage_main_index(&change, &mut batch)?;
        batch.insert(key(keys::STATE, keys::LAYOUT), &GROUPED_INDEX_LAYOUT.to_be_bytes()[..]);
        self.tree.apply_batch(batch)?;
        Ok(change.len())
    }

    /// Moves every block record out of sled into the block index, at most `batch_blocks` per
    /// batch; each batch also marks the store with the current layout, so the versions before
    /// refuse it from the first on, and a move cut short resumes with the block records left.
    fn index_blocks(&self, batch_blocks: usize) -> Result<(), StoreError> {
        tracing::info!(from = GROUPED_INDEX_LAYOUT, to = LAYOUT_VERSION, "upgrading the store's layout");
        let blocks = until_done(|| self.index_blocks_step(batch_blocks))?;
        self.db.flush()?;
        tracing::info!(blocks, "the block records are in the block index");
        Ok(())
    }

    /// Moves the first `blocks` block records left to the block index, in one batch; returns
    /// how many (0 once none is left).
    pub(super) fn index_blocks_step(&self, blocks: usize) -> Result<usize, StoreError> {
        let mut entries = Vec::new();
        let mut batch = sled::Batch::default();
        for record in self.tree.scan_prefix([keys::BLOCK]).take(blocks) {
            let (k, raw) = record?;
            let hash = BlockHash::new(digest(&k, &k[1..])?);
            let SledBlock { meta, body } = encoding::decode(&raw).map_err(|e| corrupt(&k, e.to_string()))?;
            entries.push(IndexEntry { hash, work: meta.cumulative_work, body });
            batch.remove(k);
        }
        if entries.is_empty() {
            return Ok(0);
        }
        let index_len = self.index.stage(&entries)?;
        batch.insert(key(keys::STATE, keys::INDEX_LEN), &index_len.to_be_bytes()[..]);
        batch.insert(key(keys::STATE, keys::LAYOUT), &LAYOUT_VERSION.to_be_bytes()[..]);
        self.commit_blocks(batch, Some(StagedBlocks { files_end: None, index_len }))?;
        Ok(entries.len())
    }
}

/// Runs an upgrade's `step` (one batch, returning how many items it converted) until it
/// converts nothing; returns the total.
fn until_done(mut step: impl FnMut() -> Result<usize, StoreError>) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        match step()? {
            0 => return Ok(total),
            converted => total += converted,
        }
    }
}
