//! Counters the node keeps since it started, shown by `GET /status` and exported by
//! `GET /metrics`.

use crate::core::hash::BlockHash;
use crate::kafka::Payload;
use crate::sync::lock;
use prometheus_client::metrics::histogram::Histogram;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Blocks in a row with an unknown parent after which the node says its chain parameters
/// probably differ from the network's (a few orphans are normal when blocks race; a steady
/// stream of them is what a different genesis looks like).
pub(super) const UNKNOWN_PARENT_ALARM: u64 = 8;

/// What `/status` and the log say when blocks keep arriving with an unknown parent.
pub(super) const PARAMETER_MISMATCH: &str =
    "blocks keep arriving with an unknown parent: this node's chain parameters \
     ([chain] in its configuration) probably differ from the network's, so its genesis differs; \
     compare the genesis hash in /status with another node's";

/// How many applied blocks [`NodeStats`] remembers for `GET /metrics/blocks`.
pub(super) const RECENT_BLOCKS: usize = 10_000;

/// Upper bounds, in seconds, of the block propagation histogram's buckets: from a block's Kafka
/// timestamp to this node having applied it. At light load the devnet measures 8-30 ms (p50 to
/// p99), at full load 100-250 ms; a minute covers a node that fell behind.
pub(super) const PROPAGATION_BUCKETS: [f64; 15] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// When one block read from the topic was produced and when this node had applied it.
#[derive(Clone, Debug, Serialize)]
pub struct AppliedBlock {
    /// Height of the block.
    pub height: u64,
    /// Hash of the block.
    pub hash: BlockHash,
    /// Transactions in it, the reward included.
    pub txs: usize,
    /// Kafka's timestamp of the block message (set by the producing node).
    pub produced_ms: Option<i64>,
    /// This node's clock when the block was committed to the store.
    pub applied_ms: u64,
}

/// The block propagation histogram, with [`PROPAGATION_BUCKETS`].
#[derive(Debug)]
struct Propagation(Histogram);

impl Default for Propagation {
    fn default() -> Self {
        Self(Histogram::new(PROPAGATION_BUCKETS))
    }
}

/// Counters shared by the applier, the miner and the API.
#[derive(Debug, Default)]
pub(super) struct NodeStats {
    recent_blocks: Mutex<VecDeque<AppliedBlock>>,
    propagation: Propagation,
    consumed: AtomicU64,
    reread: AtomicU64,
    applied: AtomicU64,
    mined: AtomicU64,
    admitted: AtomicU64,
    caught_up: AtomicBool,
    unknown_parent_streak: AtomicU64,
    rejected: Mutex<BTreeMap<(Payload, &'static str), u64>>,
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
    /// Milliseconds spent per stage since start (applying transaction batches, applying blocks,
    /// building candidates, searching nonces, publishing, waiting to read our block back):
    /// where the time goes.
    pub busy_ms: BTreeMap<&'static str, u64>,
}

impl NodeStats {
    /// Counts one message read; `reread` when it was applied before this start.
    pub(super) fn consumed(&self, reread: bool) {
        self.consumed.fetch_add(1, Ordering::Relaxed);
        if reread {
            self.reread.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one stored block.
    pub(super) fn applied(&self) {
        self.applied.fetch_add(1, Ordering::Relaxed);
    }

    /// Remembers one applied block (the oldest is forgotten past [`RECENT_BLOCKS`]), and once the
    /// node has caught up, observes how long the block took from its producer to this node's
    /// store. Blocks read while catching up are left out of the histogram: their age says how
    /// long the node was away, not how fast blocks travel.
    pub(super) fn remember_block(&self, block: AppliedBlock) {
        if let Some(produced_ms) = block.produced_ms.filter(|_| self.is_caught_up()) {
            // Clocks of two machines: a block may seem applied before it was produced.
            let travelled_ms = (block.applied_ms as i64).saturating_sub(produced_ms).max(0);
            self.propagation.0.observe(travelled_ms as f64 / 1000.0);
        }
        let mut recent = lock(&self.recent_blocks);
        if recent.len() == RECENT_BLOCKS {
            recent.pop_front();
        }
        recent.push_back(block);
    }

    /// Remembered blocks applied at `from_height` or above, oldest first.
    pub(super) fn recent_blocks(&self, from_height: u64) -> Vec<AppliedBlock> {
        let recent = lock(&self.recent_blocks);
        recent.iter().filter(|b| b.height >= from_height).cloned().collect()
    }

    /// Counts one block this node mined.
    pub(super) fn mined(&self) {
        self.mined.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts transfers admitted to the mempool from the transactions topic.
    pub(super) fn admitted(&self, count: u64) {
        self.admitted.fetch_add(count, Ordering::Relaxed);
    }

    /// Counts one rejected block, or message of the `topic` (a transfer refused by the mempool
    /// counts on the transactions topic).
    pub(super) fn rejected(&self, topic: Payload, reason: &'static str) {
        let mut map = lock(&self.rejected);
        *map.entry((topic, reason)).or_default() += 1;
    }

    /// Adds time spent in `stage`.
    pub(super) fn busy(&self, stage: &'static str, spent: std::time::Duration) {
        let mut map = lock(&self.busy_us);
        *map.entry(stage).or_default() += spent.as_micros() as u64;
    }

    /// Counts a block whose parent is unknown; true when the streak just reached
    /// [`UNKNOWN_PARENT_ALARM`].
    pub(super) fn unknown_parent(&self) -> bool {
        self.unknown_parent_streak.fetch_add(1, Ordering::Relaxed) + 1 == UNKNOWN_PARENT_ALARM
    }

    /// A block was stored: the streak of unknown parents ends.
    pub(super) fn parent_known(&self) {
        self.unknown_parent_streak.store(0, Ordering::Relaxed);
    }

    /// Records that the node caught up with the blocks topic.
    pub(super) fn set_caught_up(&self) {
        self.caught_up.store(true, Ordering::Relaxed);
    }

    /// Whether the node has caught up with the blocks topic.
    pub(super) fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Relaxed)
    }

    /// Transfers admitted to the mempool from the transactions topic since start.
    pub(super) fn transactions_admitted(&self) -> u64 {
        self.admitted.load(Ordering::Relaxed)
    }

    /// Rejections since start by topic and reason (`/status` adds the topics together).
    pub(super) fn rejections(&self) -> BTreeMap<(Payload, &'static str), u64> {
        lock(&self.rejected).clone()
    }

    /// Seconds spent per stage since start, to the microsecond.
    pub(super) fn busy_seconds(&self) -> BTreeMap<&'static str, f64> {
        let busy = lock(&self.busy_us);
        busy.iter().map(|(stage, us)| (*stage, *us as f64 / 1e6)).collect()
    }

    /// The block propagation histogram (a handle on the same buckets), in seconds.
    pub(super) fn propagation(&self) -> Histogram {
        self.propagation.0.clone()
    }

    /// The counters now.
    pub(super) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            consumed_since_start: self.consumed.load(Ordering::Relaxed),
            reread_since_start: self.reread.load(Ordering::Relaxed),
            applied_since_start: self.applied.load(Ordering::Relaxed),
            mined_since_start: self.mined.load(Ordering::Relaxed),
            caught_up: self.caught_up.load(Ordering::Relaxed),
            unknown_parent_streak: self.unknown_parent_streak.load(Ordering::Relaxed),
            warning: (self.unknown_parent_streak.load(Ordering::Relaxed) >= UNKNOWN_PARENT_ALARM)
                .then(|| PARAMETER_MISMATCH.to_owned()),
            rejected: self.rejections().into_iter().fold(BTreeMap::new(), |mut by_reason, ((_, reason), count)| {
                *by_reason.entry(reason).or_default() += count;
                by_reason
            }),
            busy_ms: lock(&self.busy_us).iter().map(|(stage, us)| (*stage, us / 1000)).collect(),
        }
    }
}
