//! The chain's notifications, with one owner for every writer: whatever changes the stored
//! chain (the applier, a bootstrap) announces the new tip and each block's fate here, and the
//! miner and the API's waiters listen here, so no writer can leave the miner searching on a
//! tip that is gone.

use crate::core::chain::Tip;
use crate::core::hash::BlockHash;
use tokio::sync::{broadcast, watch};

/// Block outcomes kept for slow listeners before the oldest are dropped (they see `Lagged`).
const BLOCK_EVENTS_KEPT: usize = 1024;

/// What happened to a block read from the topic, for those waiting on it (the miner, a resolve).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockEvent {
    /// The block is stored; `tip_moved` when it became the tip.
    Stored { hash: BlockHash, height: u64, tip_moved: bool },
    /// The block was rejected.
    Rejected { hash: BlockHash },
}

/// The current tip and the stream of block outcomes.
pub struct ChainEvents {
    tip: watch::Sender<Tip>,
    blocks: broadcast::Sender<BlockEvent>,
}

impl ChainEvents {
    /// Notifications starting from the stored `tip`.
    pub fn new(tip: Tip) -> Self {
        Self { tip: watch::Sender::new(tip), blocks: broadcast::Sender::new(BLOCK_EVENTS_KEPT) }
    }

    /// Announces the stored tip after a change; listeners wake only when it differs.
    pub fn tip_is(&self, tip: Tip) {
        self.tip.send_if_modified(|current| std::mem::replace(current, tip) != tip);
    }

    /// Announces what became of one block (nobody listening is fine).
    pub fn block(&self, event: BlockEvent) {
        let _ = self.blocks.send(event);
    }

    /// The tip, with a wake-up whenever it moves.
    pub fn watch_tip(&self) -> watch::Receiver<Tip> {
        self.tip.subscribe()
    }

    /// Block outcomes from now on.
    pub fn subscribe_blocks(&self) -> broadcast::Receiver<BlockEvent> {
        self.blocks.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::pow::Work;

    fn tip(height: u64) -> Tip {
        Tip { hash: BlockHash::new([height as u8; 32]), height, cumulative_work: Work(height as u128) }
    }

    #[test]
    fn a_listener_wakes_when_the_tip_moves_not_when_it_is_announced_again() {
        let events = ChainEvents::new(tip(1));
        let mut watching = events.watch_tip();
        events.tip_is(tip(1));
        assert!(!watching.has_changed().unwrap(), "the same tip again wakes nobody");
        events.tip_is(tip(2));
        assert!(watching.has_changed().unwrap());
        assert_eq!(*watching.borrow_and_update(), tip(2));
        let mut blocks = events.subscribe_blocks();
        events.block(BlockEvent::Rejected { hash: tip(3).hash });
        assert_eq!(blocks.try_recv().unwrap(), BlockEvent::Rejected { hash: tip(3).hash });
    }
}
