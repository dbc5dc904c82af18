//! `bench-store`: the store's share of a node's work per transaction, without Kafka or HTTP.
//! Transactions are admitted to the mempool in batches the size the applier uses, and confirmed
//! in blocks built from the mempool head, with a backlog of pooled transactions kept waiting as
//! under load. One thread, real sled files, so the figure is what one core can apply.

use super::store_writer::{apply_as_tip, next_block, WriterError, TXS_OFFSET_KEY};
use crate::core::params::ChainParams;
use crate::core::transaction::Transaction;
use crate::store::{OffsetUpdate, Store, StoreError};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// Transaction messages per admitted batch, as the applier takes them from the consumer.
const ADMIT_BATCH: u64 = 500;

/// What to run.
#[derive(Clone, Debug)]
pub struct StoreBenchOptions {
    /// Transactions to admit and confirm.
    pub txs: u64,
    /// Transactions kept waiting in the mempool beyond the next block.
    pub backlog: u64,
    /// Most transactions per block, the reward included.
    pub max_block_txs: usize,
    /// sled's cache bound.
    pub cache_bytes: u64,
}

/// What was measured.
#[derive(Clone, Debug, Serialize)]
pub struct StoreBenchReport {
    /// Transactions admitted and confirmed.
    pub txs: u64,
    /// Transactions confirmed per second, everything included.
    pub tx_per_sec: f64,
    /// Mean cost of admitting one transaction, in microseconds.
    pub admit_us_per_tx: f64,
    /// Mean cost of confirming one transaction in a block, in microseconds.
    pub confirm_us_per_tx: f64,
    /// Blocks applied.
    pub blocks: u64,
}

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum StoreBenchError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A block the benchmark built was not stored as the tip.
    #[error(transparent)]
    Block(#[from] WriterError),
    /// The options cannot make progress.
    #[error("--max-block-txs must be at least 2 (the reward and one transfer)")]
    BlockTooSmall,
}

/// Runs the benchmark in a new store under `dir`.
pub fn run(dir: &Path, options: &StoreBenchOptions) -> Result<StoreBenchReport, StoreBenchError> {
    if options.max_block_txs < 2 {
        return Err(StoreBenchError::BlockTooSmall);
    }
    let params = ChainParams {
        chain_id: "bench-store".into(),
        bits: 4,
        max_block_txs: options.max_block_txs,
        ..ChainParams::default()
    };
    let store = Store::open(dir, &params, options.cache_bytes)?;
    let started = Instant::now();
    let (mut admitted, mut confirmed, mut blocks) = (0u64, 0u64, 0u64);
    let (mut admitting, mut confirming) = (Duration::ZERO, Duration::ZERO);
    while confirmed < options.txs {
        while admitted < options.txs && admitted < confirmed + options.backlog + options.max_block_txs as u64 {
            let txs: Vec<Transaction> = (admitted..(admitted + ADMIT_BATCH).min(options.txs)).map(transfer).collect();
            let next = admitted + txs.len() as u64;
            let offset = OffsetUpdate { key: TXS_OFFSET_KEY.into(), next };
            let t = Instant::now();
            store.admit_transactions(&txs, &[offset], u64::MAX)?;
            admitting += t.elapsed();
            admitted = next;
        }
        let block = next_block(&store, "bench")?;
        let transfers = block.transfers().count() as u64;
        let t = Instant::now();
        apply_as_tip(&store, block)?;
        confirming += t.elapsed();
        confirmed += transfers;
        blocks += 1;
    }
    let per_tx_us = |d: Duration| d.as_secs_f64() * 1e6 / options.txs.max(1) as f64;
    Ok(StoreBenchReport {
        txs: options.txs,
        tx_per_sec: options.txs as f64 / started.elapsed().as_secs_f64(),
        admit_us_per_tx: per_tx_us(admitting),
        confirm_us_per_tx: per_tx_us(confirming),
        blocks,
    })
}

/// The `n`th benchmark transfer: 64 senders, every one distinct.
fn transfer(n: u64) -> Transaction {
    Transaction { sender: format!("client-{}", n % 64), recipient: "shop".into(), amount: n + 1, nonce: n }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirms_every_transfer_it_admits_through_full_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreBenchOptions { txs: 2_500, backlog: 700, max_block_txs: 1_001, cache_bytes: 1 << 22 };
        let report = run(dir.path(), &options).unwrap();
        assert_eq!((report.txs, report.blocks), (2_500, 3), "1000 + 1000 + 500 transfers");
        let store = Store::open_existing(dir.path(), 1 << 22).unwrap();
        let check = store.check_consistency().unwrap();
        assert_eq!((check.confirmed_transfers, check.mempool_len, check.tip_height), (2_500, 0, 3));
        assert!(check.problems.is_empty(), "{:?}", check.problems);
    }

    #[test]
    fn a_block_without_room_for_a_transfer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreBenchOptions { txs: 10, backlog: 0, max_block_txs: 1, cache_bytes: 1 << 22 };
        assert!(matches!(run(dir.path(), &options), Err(StoreBenchError::BlockTooSmall)));
    }
}
