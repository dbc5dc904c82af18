//! Chain parameters (consensus): every node of one network must use the same values, since
//! genesis and block validity are derived from them.

use serde::{Deserialize, Serialize};

/// Highest difficulty a chain may be configured with; keeps cumulative work far from overflow.
pub const MAX_CHAIN_BITS: u32 = 96;

/// The consensus settings of one network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainParams {
    /// Name of the network; part of the genesis block, so different ids never share blocks.
    pub chain_id: String,
    /// Leading zero bits every block hash must have.
    pub bits: u32,
    /// Amount paid by each block's reward transaction.
    pub reward: u64,
    /// Genesis timestamp, fixed so every node derives the same genesis.
    pub genesis_timestamp_ms: u64,
    /// Most transactions in one block, the reward included.
    pub max_block_txs: usize,
    /// Most blocks held while waiting for their parent; the oldest is dropped past it.
    pub max_orphans: usize,
}

/// Why a set of chain parameters is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamsError {
    /// The chain id is empty.
    #[error("chain_id must not be empty")]
    EmptyChainId,
    /// Difficulty above [`MAX_CHAIN_BITS`].
    #[error("bits must be at most {MAX_CHAIN_BITS}, got {0}")]
    BitsTooHigh(u32),
    /// A block must hold at least its reward.
    #[error("max_block_txs must be at least 1")]
    NoRoomForReward,
    /// The reward is zero.
    #[error("reward must be at least 1")]
    ZeroReward,
}

impl ChainParams {
    /// Checks that these parameters describe a workable chain.
    pub fn check(&self) -> Result<(), ParamsError> {
        if self.chain_id.is_empty() {
            return Err(ParamsError::EmptyChainId);
        }
        if self.bits > MAX_CHAIN_BITS {
            return Err(ParamsError::BitsTooHigh(self.bits));
        }
        if self.max_block_txs == 0 {
            return Err(ParamsError::NoRoomForReward);
        }
        if self.reward == 0 {
            return Err(ParamsError::ZeroReward);
        }
        Ok(())
    }
}

impl Default for ChainParams {
    fn default() -> Self {
        Self {
            chain_id: "kafkachain-devnet".to_owned(),
            bits: 16,
            reward: 50,
            genesis_timestamp_ms: 1_764_028_800_000,
            max_block_txs: 1_000,
            max_orphans: 256,
        }
    }
}
