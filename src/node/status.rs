//! The node's state as `GET /status` shows it.

use super::error::NodeError;
use super::halt::HaltReason;
use super::ledger::LedgerStatus;
use super::stats::StatsSnapshot;
use super::Node;
use crate::config::MiningMode;
use crate::core::chain::{network_hash_rate, next_bits, ChainView};
use crate::core::hash::BlockHash;
use crate::core::pow::Target;
use crate::kafka::SettingWarning;
use crate::store::Positions;

/// Main-chain blocks the network hash rate of `/status` is estimated over.
pub const NETWORK_RATE_WINDOW: u64 = 32;

/// What `GET /status` shows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Status {
    /// This node's id.
    pub node_id: String,
    /// Chain id.
    pub chain_id: String,
    /// Hash of the genesis block, which commits to every chain parameter: nodes that can share
    /// blocks show the same one.
    pub genesis: BlockHash,
    /// Height of the tip.
    pub height: u64,
    /// Hash of the tip.
    pub tip: BlockHash,
    /// Next offset to read on the blocks topic.
    pub blocks_next_offset: u64,
    /// Offsets stored when this process started.
    pub start_offsets: Positions,
    /// Offsets stored now.
    pub next_offsets: Positions,
    /// Transactions waiting in the mempool.
    pub mempool: u64,
    /// Blocks waiting for their parent.
    pub orphans: usize,
    /// Mining mode.
    pub mining: MiningMode,
    /// The nonce-search kernel (`mining.kernel`, or the fastest one timed at start) and threads.
    pub mining_kernel: String,
    /// Threads the miner searches on.
    pub mining_threads: usize,
    /// How the search threads are scheduled (`mining.priority`): `idle` or `normal`.
    pub mining_priority: &'static str,
    /// Nonces this node's miner tried since start.
    pub hashes_since_start: u64,
    /// This node's hash rate while searching: nonces tried per second of search time (0 before
    /// its first search). `bench-pow` at the same thread count is the yardstick.
    pub hash_rate: f64,
    /// Compact target the next block on the tip must carry (shown as 8 hex digits).
    #[serde(serialize_with = "Target::serialize_compact_hex")]
    pub next_bits: u32,
    /// That target in full (shown as 64 hex digits).
    pub target: Target,
    /// Its difficulty in leading zero bits (log2 of the expected hashes per block; fractional).
    pub difficulty_bits: f64,
    /// The network's hash rate estimated from the work and timestamps of the last
    /// [`NETWORK_RATE_WINDOW`] main-chain blocks.
    pub network_hash_rate: f64,
    /// Whether the Kafka brokers answered since the last failure.
    pub kafka_reachable: bool,
    /// Topic settings found at start that a production network should not run with.
    pub topic_warnings: Vec<TopicWarningStatus>,
    /// What the applier is doing: `running`, `halted` or `bootstrapping`.
    pub applier: &'static str,
    /// Why the node stopped applying the topics, if it did: what an operator should do.
    pub halted: Option<String>,
    /// The same reason's short label (`offset_lost`, `resume_failed`, `store_failed`).
    pub halt_reason: Option<&'static str>,
    /// The ledger stream, when this node publishes it.
    pub ledger: Option<LedgerStatus>,
    /// Counters since start.
    #[serde(flatten)]
    pub stats: StatsSnapshot,
}

/// A topic setting warned about, as `/status` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TopicWarningStatus {
    /// Its label (also the `warning` label of `/metrics`).
    pub warning: &'static str,
    /// The topic.
    pub topic: String,
    /// What it risks, for people.
    pub message: String,
}

impl From<&SettingWarning> for TopicWarningStatus {
    fn from(warning: &SettingWarning) -> Self {
        Self { warning: warning.label(), topic: warning.topic().to_owned(), message: warning.to_string() }
    }
}

impl Node {
    /// Status for operators.
    pub fn status(&self) -> Result<Status, NodeError> {
        let store = &self.inner.store;
        let tip = store.tip()?;
        let next_bits = next_bits(store, store.params(), &tip.hash)?;
        let target = Target::from_compact(next_bits)?;
        let next_offsets = store.offsets()?;
        let progress = self.inner.miner.progress();
        let applier = self.inner.applier.state();
        let halted = applier.halt_reason();
        Ok(Status {
            node_id: self.inner.config.node_id.clone(),
            chain_id: store.params().chain_id.clone(),
            genesis: crate::core::block::genesis(store.params()).hash(),
            height: tip.height,
            tip: tip.hash,
            blocks_next_offset: next_offsets.get(&self.inner.blocks_partition).copied().unwrap_or(0),
            start_offsets: self.inner.start_offsets.clone(),
            next_offsets,
            mempool: store.mempool_len()?,
            orphans: store.orphan_count(),
            mining: self.inner.config.mining.mode,
            mining_kernel: self.inner.miner.kernel().name(),
            mining_threads: self.inner.miner.threads(),
            mining_priority: self.inner.miner.priority().name(),
            hashes_since_start: progress.trials,
            hash_rate: progress.hash_rate(),
            next_bits,
            target,
            difficulty_bits: target.difficulty_bits(),
            network_hash_rate: network_hash_rate(store, &tip, NETWORK_RATE_WINDOW)?,
            kafka_reachable: self.inner.health.is_reachable(),
            topic_warnings: self.inner.topic_warnings.iter().map(TopicWarningStatus::from).collect(),
            ledger: self.inner.ledger.as_ref().map(|progress| {
                let config = &self.inner.config;
                LedgerStatus::new(
                    progress,
                    &tip,
                    crate::kafka::Topics::new(&config.kafka.topic_prefix).ledger,
                    config.ledger_transactional_id(),
                    config.ledger.confirmations,
                )
            }),
            applier: applier.label(),
            halted: halted.map(ToString::to_string),
            halt_reason: halted.map(HaltReason::label),
            stats: self.inner.stats.snapshot(),
        })
    }
}
