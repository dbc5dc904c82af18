//! `store-writer`: applies an endless chain of freshly mined blocks to a store, each with its
//! offset, as the node does when it consumes the blocks topic. The crash tests SIGKILL it at
//! random moments and then check the store; operators can use it to exercise a disk.

use super::load::{miner_address, LoadAccounts};
use crate::core::account::Address;
use crate::core::block::Block;
use crate::core::chain::{next_bits, ChainView, Outcome};
use crate::core::miner::{solved, Unsolved};
use crate::core::params::ChainParams;
use crate::core::transaction::Transaction;
use crate::store::{
    MempoolLimits, MissingRecord, Offered, OffsetUpdate, Store, StoreError, TopicPartition, DEFAULT_CACHE_BYTES,
};
use std::path::{Path, PathBuf};

/// The simulated blocks partition whose offset the writer stores.
pub fn blocks_partition() -> TopicPartition {
    TopicPartition::new("blocks", 0)
}

/// The simulated transactions partition whose offset the writer stores.
pub fn transactions_partition() -> TopicPartition {
    TopicPartition::new("transactions", 0)
}

/// The chain the writer builds: low difficulty so blocks come fast.
pub fn writer_params() -> ChainParams {
    ChainParams {
        chain_id: "store-writer".into(),
        bits: 6,
        allocations: LoadAccounts::new(WRITER_ACCOUNTS).allocations(),
        ..ChainParams::default()
    }
}

/// Accounts the writer's transfers go round.
const WRITER_ACCOUNTS: usize = 7;

/// Mempool bounds that never refuse: the writer and the benchmarks pool everything they make.
pub const UNBOUNDED: MempoolLimits = MempoolLimits { max_transfers: u64::MAX };

/// Why the writer stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A block the writer built was not accepted, which means the store disagrees with the rules.
    #[error("block at height {0} was not stored: {1:?}")]
    Rejected(u64, Vec<Outcome>),
    /// No nonce met the target of the block the writer built.
    #[error("mining the next block: {0}")]
    Unsolved(#[from] Unsolved),
}

/// Why `store-writer` stopped: the store it wrote into, and the writer's reason.
#[derive(Debug, thiserror::Error)]
#[error("writing blocks into {}: {source}", dir.display())]
pub struct CommandError {
    /// The store's directory.
    pub dir: PathBuf,
    /// Why the writer stopped.
    pub source: WriterError,
}

/// Runs `store-writer` on the store at `dir` (see [`run`]) and prints how many blocks it applied.
pub fn command(dir: &Path, blocks: Option<u64>) -> Result<(), CommandError> {
    let applied =
        run(dir, blocks, DEFAULT_CACHE_BYTES).map_err(|source| CommandError { dir: dir.to_owned(), source })?;
    println!("applied {applied} blocks");
    Ok(())
}

/// Applies `blocks` blocks (or forever, if `None`) on top of whatever the store at `dir` holds.
/// Before each block, two transfers go through the mempool, so blocks, index, mempool and
/// offsets all change in every transaction.
pub fn run(dir: &Path, blocks: Option<u64>, cache_bytes: u64) -> Result<u64, WriterError> {
    let params = writer_params();
    let accounts = LoadAccounts::new(WRITER_ACCOUNTS);
    let store = Store::open(dir, &params, cache_bytes)?;
    let mut applied = 0;
    while blocks.is_none_or(|n| applied < n) {
        let next_tx_offset = store.offset(&transactions_partition())?.unwrap_or(0);
        let transfers: Vec<Offered> = (next_tx_offset..next_tx_offset + 2)
            .map(|n| Offered { transfer: accounts.transfer(params.chain_tag(), n), signature_valid: true })
            .collect();
        let tx_offset = OffsetUpdate { position: transactions_partition(), next: next_tx_offset + 2 };
        store.admit_transactions(&transfers, &[tx_offset], UNBOUNDED)?;
        apply_as_tip(&store, next_block(&store, miner_address("writer"))?)?;
        applied += 1;
    }
    store.flush()?;
    Ok(applied)
}

/// A solved block on the store's tip: the reward to `miner`, then as much of the mempool as fits,
/// oldest first (what a node's miner would build, at the chain's low difficulty; the tools pool
/// only transfers that are valid in arrival order and pay no fees).
pub fn next_block(store: &Store, miner: Address) -> Result<Block, WriterError> {
    let params = store.params();
    let tip = store.tip()?;
    let parent = store.block(&tip.hash)?.ok_or_else(|| StoreError::Missing(MissingRecord::Block(tip.hash)))?;
    let mut txs = vec![Transaction::reward(miner, params.reward, tip.height + 1)];
    txs.extend(store.mempool_head(params.max_block_txs - 1)?.into_iter().map(Transaction::Transfer));
    let bits = next_bits(store, params, &tip.hash)?;
    Ok(solved(Block::candidate(params.chain_tag(), tip.hash, tip.height, bits, parent.header.timestamp_ms + 1, txs))?)
}

/// Applies `block` (built by [`next_block`]) with the blocks offset after it, checks that it
/// became the tip, and sweeps the mempool as the applier does.
pub fn apply_as_tip(store: &Store, block: Block) -> Result<(), WriterError> {
    let height = block.header.height;
    let offset = OffsetUpdate { position: blocks_partition(), next: height };
    let arrival_ms = block.header.timestamp_ms;
    let outcomes = store.apply_block(block, arrival_ms, &[offset])?;
    if !matches!(outcomes.as_slice(), [Outcome::Stored { tip_moved: true, .. }]) {
        return Err(WriterError::Rejected(height, outcomes));
    }
    store.sweep_mempool()?;
    Ok(())
}
