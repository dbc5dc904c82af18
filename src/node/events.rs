//! The chain's notifications, with one owner for every writer: whatever changes the stored
//! chain (the applier, a bootstrap) announces the new tip and each block's fate here, and the
//! miner and the API's waiters listen here, so no writer can leave the miner searching on a
//! tip that is gone.

use crate::core::chain::Tip;
use crate::core::hash::BlockHash;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

/// Block outcomes kept for slow listeners before the oldest are dropped (they see `Lagged`).
const BLOCK_EVENTS_KEPT: usize = 1024;

/// What happened to a block read from the topic, for those waiting on it (the miner, a resolve).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum BlockEvent {
    /// The block is stored; `tip_moved` when it became the tip.
    Stored { hash: BlockHash, height: u64, tip_moved: bool },
    /// The block was rejected.
    Rejected { hash: BlockHash },
}

impl BlockEvent {
    /// The block it is about.
    pub(super) fn hash(&self) -> BlockHash {
        match self {
            BlockEvent::Stored { hash, .. } | BlockEvent::Rejected { hash } => *hash,
        }
    }
}

/// Block outcomes from the moment of subscribing: subscribe before publishing a block, then
/// wait for its outcome.
pub(super) struct BlockOutcomes(broadcast::Receiver<BlockEvent>);

impl BlockOutcomes {
    /// Waits for what became of block `hash`; `None` once no outcome can come any more (the
    /// node is shutting down). Outcomes a slow listener missed are skipped, not waited on.
    pub(super) async fn of(&mut self, hash: BlockHash) -> Option<BlockEvent> {
        loop {
            match self.0.recv().await {
                Ok(event) if event.hash() == hash => return Some(event),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// The current tip and the stream of block outcomes.
pub(super) struct ChainEvents {
    tip: watch::Sender<Tip>,
    blocks: broadcast::Sender<BlockEvent>,
}

impl ChainEvents {
    /// Notifications starting from the stored `tip`.
    pub(super) fn new(tip: Tip) -> Self {
        Self { tip: watch::Sender::new(tip), blocks: broadcast::Sender::new(BLOCK_EVENTS_KEPT) }
    }

    /// Announces the stored tip after a change; listeners wake only when it differs.
    pub(super) fn tip_is(&self, tip: Tip) {
        self.tip.send_if_modified(|current| std::mem::replace(current, tip) != tip);
    }

    /// Announces what became of one block (nobody listening is fine).
    pub(super) fn block(&self, event: BlockEvent) {
        let _ = self.blocks.send(event);
    }

    /// The tip, with a wake-up whenever it moves.
    pub(super) fn watch_tip(&self) -> watch::Receiver<Tip> {
        self.tip.subscribe()
    }

    /// Block outcomes from now on.
    pub(super) fn subscribe_blocks(&self) -> BlockOutcomes {
        BlockOutcomes(self.blocks.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::pow::Work;

    fn tip(height: u64) -> Tip {
        Tip {
            hash: BlockHash::new([height as u8; 32]),
            height,
            cumulative_work: Work(height as u128),
            peak_height: height,
        }
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
    }

    #[tokio::test]
    async fn a_waiter_gets_its_block_outcome_and_skips_the_others() {
        let events = ChainEvents::new(tip(1));
        let mut outcomes = events.subscribe_blocks();
        events.block(BlockEvent::Stored { hash: tip(2).hash, height: 2, tip_moved: true });
        events.block(BlockEvent::Rejected { hash: tip(3).hash });
        assert_eq!(outcomes.of(tip(3).hash).await, Some(BlockEvent::Rejected { hash: tip(3).hash }));
        drop(events);
        assert_eq!(outcomes.of(tip(4).hash).await, None, "no outcome can come once the events are gone");
    }
}
