//! Block validity (consensus). Split in two: what a block must satisfy on its own, and what it
//! must satisfy against its parent. Neither reads the clock, so replaying a log always gives the
//! same verdicts. What its transfers do to the accounts of its branch is checked in `ledger`,
//! and their signatures in `chain`, which knows which ones the mempool already verified.

use super::block::Block;
use super::encoding;
use super::hash::TxId;
use super::header::HEADER_VERSION;
use super::ledger::LedgerError;
use super::merkle::merkle_root;
use super::params::ChainParams;
use super::pow::{Target, Work};
use super::transaction::{ChainTag, Transaction, TxError};
use std::collections::HashSet;

/// Why a block is invalid. [`BlockError::reason`] gives the short label rejections are counted by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Unknown header version.
    #[error("header version {0} is not {HEADER_VERSION}")]
    Version(u32),
    /// Height is not the parent's plus one.
    #[error("height {got} does not follow parent height {parent}")]
    Height {
        /// The parent's height.
        parent: u64,
        /// The block's height.
        got: u64,
    },
    /// The target differs from the one the retarget rule gives its height on its branch.
    #[error("bits {got:#010x} differ from {expected:#010x}, the target of this height on this branch")]
    Bits {
        /// The compact target the retarget rule gives.
        expected: u32,
        /// The block's compact target.
        got: u32,
    },
    /// The bits are no compact target, or one easier than the chain's easiest.
    #[error("bits {0:#010x} are not a compact target at or below the chain's easiest")]
    BadTarget(u32),
    /// The hash is above the target.
    #[error("no proof of work: the hash is above the target of bits {0:#010x}")]
    ProofOfWork(u32),
    /// The header's Merkle root does not match the transactions.
    #[error("tx_root does not match the transactions")]
    TxRoot,
    /// Not above the median time of the branch's last blocks.
    #[error("timestamp {got} is not above the median {median} of the branch's last blocks")]
    Timestamp {
        /// The median time of the branch's last blocks.
        median: u64,
        /// The block's timestamp.
        got: u64,
    },
    /// Further ahead of the broker's append time than the chain allows.
    #[error("timestamp {got} is beyond the message's append time plus the allowed margin ({limit})")]
    TimestampAhead {
        /// The latest timestamp allowed.
        limit: u64,
        /// The block's timestamp.
        got: u64,
    },
    /// Larger than the chain's block size bound.
    #[error("{0} bytes exceed the block size bound")]
    TooLarge(usize),
    /// Its branch leaves the main chain deeper than the finality depth below the highest height
    /// the main chain has reached.
    #[error(
        "its branch forks at height {fork_height} or below, beyond the finality depth under the peak height {peak_height}"
    )]
    BeyondFinality {
        /// Where its branch leaves the main chain.
        fork_height: u64,
        /// The highest height the main chain reached.
        peak_height: u64,
    },
    /// More transactions than a block may hold.
    #[error("{0} transactions exceed the block limit")]
    TooManyTransactions(usize),
    /// The first transaction is missing or is not a correct reward.
    #[error("bad reward transaction: {0}")]
    Reward(&'static str),
    /// A transaction breaks the transaction rules.
    #[error("transaction {index}: {source}")]
    Transaction {
        /// The transaction's place in the block.
        index: usize,
        /// The rule it breaks.
        source: TxError,
    },
    /// The same transaction twice in one block.
    #[error("transaction {0} appears twice in the block")]
    DuplicateInBlock(TxId),
    /// The transfer at this index has an invalid signature.
    #[error("transaction {0}: the signature does not verify")]
    Signature(usize),
    /// The transfers or the reward do not fit the accounts of the block's branch.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl BlockError {
    /// Short label used to count rejections.
    pub fn reason(&self) -> &'static str {
        match self {
            BlockError::Version(_) => "bad_version",
            BlockError::Height { .. } => "bad_height",
            BlockError::Bits { .. } | BlockError::BadTarget(_) => "bad_bits",
            BlockError::ProofOfWork(_) => "bad_pow",
            BlockError::TxRoot => "bad_tx_root",
            BlockError::Timestamp { .. } => "bad_timestamp",
            BlockError::TimestampAhead { .. } => "timestamp_ahead",
            BlockError::TooLarge(_) => "block_too_large",
            BlockError::BeyondFinality { .. } => "beyond_finality",
            BlockError::TooManyTransactions(_) => "too_many_transactions",
            BlockError::Reward(_) => "bad_reward",
            BlockError::Transaction { .. } => "bad_transaction",
            BlockError::DuplicateInBlock(_) => "duplicate_transaction",
            BlockError::Signature(_) => "bad_signature",
            BlockError::Ledger(LedgerError::Spend { source, .. }) => source.reason(),
            BlockError::Ledger(LedgerError::RewardAmount) => "bad_reward",
        }
    }
}

/// What validation needs to know of the parent's branch and of the block's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentFacts {
    /// Parent's height.
    pub height: u64,
    /// The compact target the retarget rule gives the block (see `chain::next_bits`).
    pub required_bits: u32,
    /// Median timestamp of the branch's last blocks, parent included.
    pub median_time_ms: u64,
    /// The broker's log-append time of the block's message.
    pub arrival_ms: u64,
}

/// What checking a block on its own learned, so the caller does not work it out again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The ids of its transactions, in block order.
    pub ids: Vec<TxId>,
    /// The work its target stands for.
    pub work: Work,
}

/// Checks everything that does not depend on other blocks (signatures aside).
pub fn check_block(block: &Block, params: &ChainParams, chain: ChainTag) -> Result<Checked, BlockError> {
    let header = &block.header;
    if header.version != HEADER_VERSION {
        return Err(BlockError::Version(header.version));
    }
    // Proof of work against the header's own target comes before anything that needs the
    // branch, so a block that cost nothing to make costs nothing to refuse, orphan or not.
    let target = Target::from_compact(header.bits).map_err(|_| BlockError::BadTarget(header.bits))?;
    if target > params.easiest_target() {
        return Err(BlockError::BadTarget(header.bits));
    }
    if !target.is_met_by(&block.hash()) {
        return Err(BlockError::ProofOfWork(header.bits));
    }
    if block.transactions.len() > params.max_block_txs {
        return Err(BlockError::TooManyTransactions(block.transactions.len()));
    }
    let bytes = encoding::encoded_len(block);
    if bytes > params.max_block_bytes {
        return Err(BlockError::TooLarge(bytes));
    }
    let Some((reward, transfers)) = block.transactions.split_first() else {
        return Err(BlockError::Reward("the block has no transactions"));
    };
    let Transaction::Reward(reward) = reward else {
        return Err(BlockError::Reward("the first transaction is not a reward"));
    };
    if reward.height != header.height {
        return Err(BlockError::Reward("the height is not the block's"));
    }
    for (i, tx) in transfers.iter().enumerate() {
        let Transaction::Transfer(transfer) = tx else {
            return Err(BlockError::Reward("a reward after the first transaction"));
        };
        transfer.check_fields().map_err(|source| BlockError::Transaction { index: i + 1, source })?;
    }
    let ids = block.txids(chain);
    let mut seen = HashSet::with_capacity(ids.len());
    if let Some(dup) = ids.iter().find(|id| !seen.insert(**id)) {
        return Err(BlockError::DuplicateInBlock(*dup));
    }
    if merkle_root(&ids) != header.tx_root {
        return Err(BlockError::TxRoot);
    }
    Ok(Checked { ids, work: target.work() })
}

/// Checks what a block must satisfy against its parent's branch and its message's append time.
/// Neither reads the local clock: the append time is the broker's, the same on every node.
pub fn check_against_parent(block: &Block, parent: ParentFacts, params: &ChainParams) -> Result<(), BlockError> {
    let header = &block.header;
    if parent.height.checked_add(1) != Some(header.height) {
        return Err(BlockError::Height { parent: parent.height, got: header.height });
    }
    if header.bits != parent.required_bits {
        return Err(BlockError::Bits { expected: parent.required_bits, got: header.bits });
    }
    if header.timestamp_ms <= parent.median_time_ms {
        return Err(BlockError::Timestamp { median: parent.median_time_ms, got: header.timestamp_ms });
    }
    let limit = parent.arrival_ms.saturating_add(params.max_future_ms);
    if header.timestamp_ms > limit {
        return Err(BlockError::TimestampAhead { limit, got: header.timestamp_ms });
    }
    Ok(())
}
