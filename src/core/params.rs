//! Chain parameters (consensus): every node of one network must use the same values, since
//! genesis and block validity are derived from them.

use super::account::Address;
use super::pow::{Target, HARDEST_BITS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest retarget window, in blocks: finding a window's first block walks back that far.
pub const MAX_RETARGET_INTERVAL: u64 = 10_000;

/// The consensus settings of one network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainParams {
    /// Name of the network; part of the genesis block, so different ids never share blocks.
    pub chain_id: String,
    /// Starting difficulty, in leading zero bits: the first blocks' target is 2^(256 - bits) - 1
    /// as the compact form keeps it, and no retarget makes the target easier than that.
    pub bits: u32,
    /// Blocks between two retargets; 0 keeps the starting difficulty for ever.
    #[serde(default)]
    pub retarget_interval: u64,
    /// The block interval retargeting aims at, in milliseconds.
    #[serde(default = "default_target_block_ms")]
    pub target_block_ms: u64,
    /// Subsidy paid by each block's reward transaction (the block's fees come on top).
    pub reward: u64,
    /// Genesis timestamp, fixed so every node derives the same genesis.
    pub genesis_timestamp_ms: u64,
    /// Most transactions in one block, the reward included.
    pub max_block_txs: usize,
    /// Most blocks held while waiting for their parent; the oldest is dropped past it.
    pub max_orphans: usize,
    /// Most bytes (canonical encoding) of one block: larger block messages are refused before
    /// they are decoded.
    #[serde(default = "default_max_block_bytes")]
    pub max_block_bytes: usize,
    /// Most bytes (canonical encoding) the orphan pool holds; the oldest are dropped past it.
    #[serde(default = "default_max_orphan_bytes")]
    pub max_orphan_bytes: usize,
    /// Deepest reorganization accepted: a block whose branch leaves the main chain more than
    /// this many blocks below the tip is refused (blocks that deep are final).
    #[serde(default = "default_finality_depth")]
    pub finality_depth: u64,
    /// How far a block's timestamp may run ahead of the broker's log-append time of its message.
    #[serde(default = "default_max_future_ms")]
    pub max_future_ms: u64,
    /// Balances at genesis, by address: the only funds that exist before the first reward.
    #[serde(default)]
    pub allocations: BTreeMap<Address, u64>,
}

fn default_target_block_ms() -> u64 {
    10_000
}

fn default_max_block_bytes() -> usize {
    1024 * 1024
}

fn default_max_orphan_bytes() -> usize {
    16 * 1024 * 1024
}

fn default_finality_depth() -> u64 {
    100
}

fn default_max_future_ms() -> u64 {
    2 * 60 * 60 * 1000
}

/// Domain tag of the parameter digest.
const PARAMS_TAG: &[u8] = b"kafkachain-params-v5";

/// Why a set of chain parameters is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamsError {
    /// The chain id is empty.
    #[error("chain_id must not be empty")]
    EmptyChainId,
    /// Difficulty above [`HARDEST_BITS`].
    #[error("bits must be at most {HARDEST_BITS}, got {0}")]
    BitsTooHigh(u32),
    /// A retarget interval above [`MAX_RETARGET_INTERVAL`].
    #[error("retarget_interval must be at most {MAX_RETARGET_INTERVAL}, got {0}")]
    RetargetIntervalTooLong(u64),
    /// A retarget window whose expected duration does not fit the arithmetic (2^62 ms).
    #[error("retarget_interval times target_block_ms must be below 2^62 milliseconds")]
    RetargetTimespanTooLong,
    /// A block must hold at least its reward.
    #[error("max_block_txs must be at least 1")]
    NoRoomForReward,
    /// The reward is zero.
    #[error("reward must be at least 1")]
    ZeroReward,
    /// A bound that must let at least something through is zero.
    #[error("{0} must be at least 1")]
    ZeroBound(&'static str),
    /// A genesis allocation of nothing.
    #[error("the allocation to {0} must be at least 1")]
    ZeroAllocation(Address),
    /// The allocations sum past 64 bits.
    #[error("the allocations sum past the largest amount (2^64 - 1)")]
    AllocationsOverflow,
}

impl ChainParams {
    /// The tag transfers of this chain are signed with.
    pub fn chain_tag(&self) -> super::transaction::ChainTag {
        super::transaction::ChainTag::of(&self.chain_id)
    }

    /// The easiest target a block may have: the starting one.
    pub fn easiest_target(&self) -> Target {
        Target::from_leading_zero_bits(self.bits).truncated()
    }

    /// The compact target of genesis, which its children inherit until the first retarget.
    pub fn genesis_bits(&self) -> u32 {
        self.easiest_target().to_compact()
    }

    /// For a block at `height` that retargets, the height of the first block of the window
    /// measured (the window ends at its parent, `retarget_interval` blocks later). `None` when
    /// the block keeps its parent's target: retargeting is off, `height` is not a multiple of
    /// the interval, or the window would start at genesis, whose timestamp is configured, not
    /// mined.
    pub fn retarget_window_start(&self, height: u64) -> Option<u64> {
        if self.retarget_interval == 0 || !height.is_multiple_of(self.retarget_interval) {
            return None;
        }
        height.checked_sub(1 + self.retarget_interval).filter(|start| *start >= 1)
    }

    /// How long a retarget window should take.
    pub fn retarget_timespan_ms(&self) -> u64 {
        self.retarget_interval.saturating_mul(self.target_block_ms)
    }

    /// Checks that these parameters describe a workable chain.
    pub fn check(&self) -> Result<(), ParamsError> {
        if self.chain_id.is_empty() {
            return Err(ParamsError::EmptyChainId);
        }
        if self.bits > HARDEST_BITS {
            return Err(ParamsError::BitsTooHigh(self.bits));
        }
        if self.retarget_interval > MAX_RETARGET_INTERVAL {
            return Err(ParamsError::RetargetIntervalTooLong(self.retarget_interval));
        }
        if self.retarget_interval.checked_mul(self.target_block_ms).is_none_or(|span| span >= 1 << 62) {
            return Err(ParamsError::RetargetTimespanTooLong);
        }
        if self.max_block_txs == 0 {
            return Err(ParamsError::NoRoomForReward);
        }
        if self.reward == 0 {
            return Err(ParamsError::ZeroReward);
        }
        for (name, value) in [
            ("max_block_bytes", self.max_block_bytes as u64),
            ("max_orphans", self.max_orphans as u64),
            ("max_orphan_bytes", self.max_orphan_bytes as u64),
            ("finality_depth", self.finality_depth),
            ("target_block_ms", self.target_block_ms),
        ] {
            if value == 0 {
                return Err(ParamsError::ZeroBound(name));
            }
        }
        let mut total: u64 = 0;
        for (address, amount) in &self.allocations {
            if *amount == 0 {
                return Err(ParamsError::ZeroAllocation(*address));
            }
            total = total.checked_add(*amount).ok_or(ParamsError::AllocationsOverflow)?;
        }
        Ok(())
    }

    /// SHA-256 over every parameter in a fixed layout (see `docs/consensus.md`): the genesis
    /// block commits to it, so nodes configured differently have different genesis hashes and
    /// see each other's blocks as having an unknown parent instead of forking silently.
    pub fn digest(&self) -> [u8; 32] {
        let mut bytes = Vec::with_capacity(PARAMS_TAG.len() + 4 + self.chain_id.len() + 68);
        bytes.extend_from_slice(PARAMS_TAG);
        bytes.extend_from_slice(&(self.chain_id.len() as u32).to_le_bytes());
        bytes.extend_from_slice(self.chain_id.as_bytes());
        bytes.extend_from_slice(&self.bits.to_le_bytes());
        bytes.extend_from_slice(&self.reward.to_le_bytes());
        bytes.extend_from_slice(&self.genesis_timestamp_ms.to_le_bytes());
        for value in [
            self.max_block_txs as u64,
            self.max_block_bytes as u64,
            self.max_orphans as u64,
            self.max_orphan_bytes as u64,
            self.finality_depth,
            self.max_future_ms,
            self.retarget_interval,
            self.target_block_ms,
        ] {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        bytes.extend_from_slice(&(self.allocations.len() as u32).to_le_bytes());
        for (address, amount) in &self.allocations {
            bytes.extend_from_slice(address.as_bytes());
            bytes.extend_from_slice(&amount.to_le_bytes());
        }
        super::hash::sha256(&bytes)
    }
}

impl Default for ChainParams {
    fn default() -> Self {
        Self {
            chain_id: "kafkachain-devnet".to_owned(),
            bits: 16,
            retarget_interval: 0,
            target_block_ms: default_target_block_ms(),
            reward: 50,
            genesis_timestamp_ms: 1_764_028_800_000,
            max_block_txs: 1_000,
            max_orphans: 256,
            max_block_bytes: default_max_block_bytes(),
            max_orphan_bytes: default_max_orphan_bytes(),
            finality_depth: default_finality_depth(),
            max_future_ms: default_max_future_ms(),
            allocations: BTreeMap::new(),
        }
    }
}
