//! Counters the node keeps since it started, shown by `GET /status`.

use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Blocks in a row with an unknown parent after which the node says its chain parameters
/// probably differ from the network's (a few orphans are normal when blocks race; a steady
/// stream of them is what a different genesis looks like).
pub const UNKNOWN_PARENT_ALARM: u64 = 8;

/// What `/status` and the log say when blocks keep arriving with an unknown parent.
pub const PARAMETER_MISMATCH: &str = "blocks keep arriving with an unknown parent: this node's chain parameters \
     ([chain] in its configuration) probably differ from the network's, so its genesis differs; \
     compare the genesis hash in /status with another node's";

/// How many applied blocks [`NodeStats`] remembers for `GET /metrics/blocks`.
pub const RECENT_BLOCKS: usize = 10_000;

/// When one block read from the topic was produced and when this node had applied it.
#[derive(Clone, Debug, Serialize)]
pub struct AppliedBlock {
    /// Height of the block.
    pub height: u64,
    /// Hash of the block, hex.
    pub hash: String,
    /// Transactions in it, the reward included.
    pub txs: usize,
    /// Kafka's timestamp of the block message (set by the producing node).
    pub produced_ms: Option<i64>,
    /// This node's clock when the block was committed to the store.
    pub applied_ms: u64,
}

/// Counters shared by the applier, the miner and the API.
#[derive(Debug, Default)]
pub struct NodeStats {
    recent_blocks: Mutex<VecDeque<AppliedBlock>>,
    consumed: AtomicU64,
    reread: AtomicU64,
    applied: AtomicU64,
    mined: AtomicU64,
    caught_up: AtomicBool,
    unknown_parent_streak: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    halted: Mutex<Option<String>>,
    busy_us: Mutex<BTreeMap<&'static str, u64>>,
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StatsSnapshot {
    /// Messages of either topic read since start.
    pub consumed_since_start: u64,
    /// Messages read again although already applied before the start (should stay 0).
    pub reread_since_start: u64,
    /// Blocks stored since start.
    pub applied_since_start: u64,
    /// Blocks this node mined and saw applied since start.
    pub mined_since_start: u64,
    /// Whether the node has read the blocks topic up to where it stood at start.
    pub caught_up: bool,
    /// Blocks in a row that arrived with an unknown parent.
    pub unknown_parent_streak: u64,
    /// What the operator should look at, if anything (a likely chain parameter mismatch).
    pub warning: Option<String>,
    /// Rejected messages by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Why the node stopped consuming, if it did.
    pub halted: Option<String>,
    /// Milliseconds spent per stage since start (applying transaction batches, applying blocks,
    /// building candidates, searching nonces, publishing, waiting to read our block back):
    /// where the time goes.
    pub busy_ms: BTreeMap<&'static str, u64>,
}

impl NodeStats {
    /// Counts one message read; `reread` when it was applied before this start.
    pub fn consumed(&self, reread: bool) {
        self.consumed.fetch_add(1, Ordering::Relaxed);
        if reread {
            self.reread.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one stored block.
    pub fn applied(&self) {
        self.applied.fetch_add(1, Ordering::Relaxed);
    }

    /// Remembers one applied block (the oldest is forgotten past [`RECENT_BLOCKS`]).
    pub fn remember_block(&self, block: AppliedBlock) {
        let mut recent = self.recent_blocks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() == RECENT_BLOCKS {
            recent.pop_front();
        }
        recent.push_back(block);
    }

    /// Remembered blocks applied at `from_height` or above, oldest first.
    pub fn recent_blocks(&self, from_height: u64) -> Vec<AppliedBlock> {
        let recent = self.recent_blocks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        recent.iter().filter(|b| b.height >= from_height).cloned().collect()
    }

    /// Counts one block this node mined.
    pub fn mined(&self) {
        self.mined.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one rejected message or block.
    pub fn rejected(&self, reason: &'static str) {
        let mut map = self.rejected.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(reason).or_default() += 1;
    }

    /// Adds time spent in `stage`.
    pub fn busy(&self, stage: &'static str, spent: std::time::Duration) {
        let mut map = self.busy_us.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(stage).or_default() += spent.as_micros() as u64;
    }

    /// Counts a block whose parent is unknown; true when the streak just reached
    /// [`UNKNOWN_PARENT_ALARM`].
    pub fn unknown_parent(&self) -> bool {
        self.unknown_parent_streak.fetch_add(1, Ordering::Relaxed) + 1 == UNKNOWN_PARENT_ALARM
    }

    /// A block was stored: the streak of unknown parents ends.
    pub fn parent_known(&self) {
        self.unknown_parent_streak.store(0, Ordering::Relaxed);
    }

    /// Records that the node caught up with the blocks topic.
    pub fn set_caught_up(&self) {
        self.caught_up.store(true, Ordering::Relaxed);
    }

    /// Whether the node has caught up with the blocks topic.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Relaxed)
    }

    /// Why consuming stopped, if it did.
    pub fn halted(&self) -> Option<String> {
        self.halted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Consuming goes on again (after a retention gap was repaired).
    pub fn resume(&self) {
        *self.halted.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Records why consuming stopped.
    pub fn halt(&self, why: String) {
        *self.halted.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            consumed_since_start: self.consumed.load(Ordering::Relaxed),
            reread_since_start: self.reread.load(Ordering::Relaxed),
            applied_since_start: self.applied.load(Ordering::Relaxed),
            mined_since_start: self.mined.load(Ordering::Relaxed),
            caught_up: self.caught_up.load(Ordering::Relaxed),
            unknown_parent_streak: self.unknown_parent_streak.load(Ordering::Relaxed),
            warning: (self.unknown_parent_streak.load(Ordering::Relaxed) >= UNKNOWN_PARENT_ALARM)
                .then(|| PARAMETER_MISMATCH.to_owned()),
            rejected: self.rejected.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            halted: self.halted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            busy_ms: self
                .busy_us
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|(stage, us)| (*stage, us / 1000))
                .collect(),
        }
    }
}
