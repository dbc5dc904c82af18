//! Blocks stored lately, kept decoded. The readers that follow the tip (the ledger stream, the
//! live feed) ask for a block just after the applier stored it; with sled's small page cache
//! that read pulled the block's leaf back from disk and decoded every record in it, which cost
//! the ledger stream a quarter of a cold sync's speed on two cores.

use crate::core::block::Block;
use crate::core::hash::BlockHash;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Bytes of blocks a node publishing the ledger stream keeps (about 20,000 blocks of one
/// transfer, or a dozen full 1 MiB blocks: the stream's confirmations and its distance behind a
/// cold sync both fit). Other nodes keep none: nothing reads behind their applier that closely.
pub const RECENT_BLOCKS_BYTES: usize = 8 * 1024 * 1024;

/// The memory `block` takes, as the bound counts it.
fn footprint(block: &Block) -> usize {
    size_of::<Block>() + block.transactions.len() * size_of::<crate::core::transaction::Transaction>()
}

/// The last blocks stored, up to a bound in bytes, oldest dropped first; none by default.
#[derive(Default)]
pub(super) struct RecentBlocks {
    blocks: HashMap<BlockHash, Arc<Block>>,
    /// In the order stored, with each one's size.
    order: VecDeque<(BlockHash, usize)>,
    bytes: usize,
    max_bytes: usize,
}

impl RecentBlocks {
    /// The block `hash`, if it is among the recent ones.
    pub(super) fn get(&self, hash: &BlockHash) -> Option<Arc<Block>> {
        self.blocks.get(hash).cloned()
    }

    /// Keeps up to `max_bytes` from now on, dropping the oldest past it.
    pub(super) fn set_bound(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
        self.drop_oldest(0);
    }

    /// Drops the oldest until `incoming` more bytes fit.
    fn drop_oldest(&mut self, incoming: usize) {
        while self.bytes + incoming > self.max_bytes {
            let Some((oldest, oldest_size)) = self.order.pop_front() else { break };
            self.blocks.remove(&oldest);
            self.bytes -= oldest_size;
        }
    }

    /// Keeps `block`, just stored under `hash`, dropping the oldest past the bound. A block
    /// larger than the whole bound is not kept.
    pub(super) fn insert(&mut self, hash: BlockHash, block: Block) {
        let size = footprint(&block);
        if size > self.max_bytes || self.blocks.contains_key(&hash) {
            return;
        }
        self.drop_oldest(size);
        self.blocks.insert(hash, Arc::new(block));
        self.order.push_back((hash, size));
        self.bytes += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::{child, genesis_block, params};

    fn bounded(max_bytes: usize) -> RecentBlocks {
        let mut recent = RecentBlocks::default();
        recent.set_bound(max_bytes);
        recent
    }

    #[test]
    fn the_newest_blocks_are_kept_within_the_bound_and_the_oldest_dropped() {
        let mut parent = genesis_block();
        let mut blocks = Vec::new();
        for _ in 0..5 {
            let block = child(&params(), &parent, "a", &[]);
            parent = block.clone();
            blocks.push(block);
        }
        let one = footprint(&blocks[0]);
        let mut recent = bounded(one * 3);
        for block in &blocks {
            recent.insert(block.hash(), block.clone());
        }
        let kept: Vec<bool> = blocks.iter().map(|b| recent.get(&b.hash()).is_some()).collect();
        assert_eq!(kept, [false, false, true, true, true]);
        assert_eq!(recent.get(&blocks[4].hash()).as_deref(), Some(&blocks[4]));
        let mut tiny = bounded(one - 1);
        tiny.insert(blocks[0].hash(), blocks[0].clone());
        assert!(tiny.get(&blocks[0].hash()).is_none(), "a block larger than the bound is not kept");
        recent.set_bound(one);
        let kept: Vec<bool> = blocks.iter().map(|b| recent.get(&b.hash()).is_some()).collect();
        assert_eq!(kept, [false, false, false, false, true], "a lower bound drops the oldest");
        let mut default = RecentBlocks::default();
        default.insert(blocks[0].hash(), blocks[0].clone());
        assert!(default.get(&blocks[0].hash()).is_none(), "none kept by default");
    }
}
