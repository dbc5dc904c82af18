//! `bench-store`: the store's share of a node's work per transaction, without Kafka or HTTP.
//! Transactions are admitted to the mempool in batches the size the applier uses, and confirmed
//! in blocks built from the mempool head, with a backlog of pooled transactions kept waiting as
//! under load. One thread, real sled files, so the figure is what one core can apply.

use super::load::{miner_address, LoadAccounts};
use super::store_writer::{apply_as_tip, next_block, transactions_partition, WriterError, UNBOUNDED};
use crate::core::params::ChainParams;
use crate::core::transaction::{signature_verdicts, Transfer};
use crate::store::{Offered, OffsetUpdate, Store, StoreError};
use rayon::prelude::*;
use serde::Serialize;
use std::fmt;
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
    /// Whether the store keeps the transaction index.
    pub tx_index: bool,
}

/// What was measured.
#[derive(Clone, Debug, Serialize)]
pub struct StoreBenchReport {
    /// Transactions admitted and confirmed.
    pub txs: u64,
    /// Transactions confirmed per second, everything included.
    pub tx_per_sec: f64,
    /// Mean cost of admitting one transaction, in microseconds, its signature check included.
    pub admit_us_per_tx: f64,
    /// The part of that spent verifying the signature (in batches, as the applier does).
    pub verify_us_per_tx: f64,
    /// Mean cost of confirming one transaction in a block, in microseconds.
    pub confirm_us_per_tx: f64,
    /// Blocks applied.
    pub blocks: u64,
}

/// The rate and the cost of each step per transaction, on one line.
impl fmt::Display for StoreBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} transactions in {} blocks: {:.0} tx/s; admit {:.1} µs/tx (of which verifying the signature {:.1}), \
             confirm {:.1} µs/tx",
            self.txs, self.blocks, self.tx_per_sec, self.admit_us_per_tx, self.verify_us_per_tx, self.confirm_us_per_tx
        )
    }
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
    /// The mempool refused transfers the benchmark signed as valid.
    #[error("the mempool refused {0} of the benchmark's transfers")]
    Refused(usize),
    /// The one-thread pool for the timed part could not be built.
    #[error("building the benchmark's thread pool: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
    /// The scratch directory could not be made.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The report could not be written as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Runs `bench-store` in a new scratch directory under `dir` (or the system's temporary
/// directory), removed afterwards, and prints the report, then as one JSON line if `json`.
pub fn command(options: &StoreBenchOptions, dir: Option<&Path>, json: bool) -> Result<(), StoreBenchError> {
    let under = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let scratch = tempfile::Builder::new().prefix("bench-store").tempdir_in(under)?;
    let report = run(scratch.path(), options)?;
    Ok(super::print_report(&report, json)?)
}

/// Runs the benchmark in a new store under `dir`.
pub fn run(dir: &Path, options: &StoreBenchOptions) -> Result<StoreBenchReport, StoreBenchError> {
    let signed = sign_load(options.txs);
    // Signature checks run on rayon; one thread keeps the figure what one core can apply.
    rayon::ThreadPoolBuilder::new().num_threads(1).build()?.install(|| apply_load(dir, options, &signed))
}

/// The benchmark's transfers, signed on every core before the clock starts (signing is the
/// clients' work).
fn sign_load(txs: u64) -> Vec<Transfer> {
    let accounts = LoadAccounts::new(BENCH_ACCOUNTS);
    let chain = bench_params(0).chain_tag();
    (0..txs).into_par_iter().map(|n| accounts.transfer(chain, n)).collect()
}

/// The benchmark's chain.
fn bench_params(max_block_txs: usize) -> ChainParams {
    ChainParams {
        chain_id: "bench-store".into(),
        bits: 4,
        max_block_txs,
        allocations: LoadAccounts::new(BENCH_ACCOUNTS).allocations(),
        ..ChainParams::default()
    }
}

fn apply_load(
    dir: &Path,
    options: &StoreBenchOptions,
    signed: &[Transfer],
) -> Result<StoreBenchReport, StoreBenchError> {
    if options.max_block_txs < 2 {
        return Err(StoreBenchError::BlockTooSmall);
    }
    let params = bench_params(options.max_block_txs);
    let chain = params.chain_tag();
    let store = Store::open(dir, &params, options.cache_bytes)?;
    store.set_tx_index(options.tx_index)?;
    let started = Instant::now();
    let (mut admitted, mut confirmed, mut blocks) = (0u64, 0u64, 0u64);
    let (mut admitting, mut confirming, mut verifying) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    while confirmed < options.txs {
        while admitted < options.txs && admitted < confirmed + options.backlog + options.max_block_txs as u64 {
            let txs = &signed[admitted as usize..(admitted + ADMIT_BATCH).min(options.txs) as usize];
            let next = admitted + txs.len() as u64;
            let offset = OffsetUpdate { position: transactions_partition(), next };
            let t = Instant::now();
            // As the node's applier does: the signatures in parallel batches, then the store.
            let valid = signature_verdicts(txs, chain);
            verifying += t.elapsed();
            let offered: Vec<Offered> = txs
                .iter()
                .zip(valid)
                .map(|(transfer, signature_valid)| Offered { transfer: transfer.clone(), signature_valid })
                .collect();
            let refused =
                store.admit_transactions(&offered, &[offset], UNBOUNDED)?.iter().filter(|o| o.is_err()).count();
            if refused > 0 {
                return Err(StoreBenchError::Refused(refused));
            }
            admitting += t.elapsed();
            admitted = next;
        }
        let block = next_block(&store, miner_address("bench"))?;
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
        verify_us_per_tx: per_tx_us(verifying),
        confirm_us_per_tx: per_tx_us(confirming),
        blocks,
    })
}

/// Senders of the benchmark's transfers.
const BENCH_ACCOUNTS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirms_every_transfer_it_admits_through_full_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let options =
            StoreBenchOptions { txs: 2_500, backlog: 700, max_block_txs: 1_001, cache_bytes: 1 << 22, tx_index: true };
        let report = run(dir.path(), &options).unwrap();
        assert_eq!((report.txs, report.blocks), (2_500, 3), "1000 + 1000 + 500 transfers");
        let store = Store::open_existing(dir.path(), 1 << 22).unwrap();
        let check = store.check_consistency().unwrap();
        assert_eq!((check.confirmed_transfers, check.mempool_len, check.tip_height), (2_500, 0, 3));
        assert!(check.problems.is_empty(), "{:?}", check.problems);
    }

    #[test]
    fn the_report_prints_on_one_line() {
        let report = StoreBenchReport {
            txs: 300_000,
            tx_per_sec: 51_234.6,
            admit_us_per_tx: 12.34,
            verify_us_per_tx: 9.87,
            confirm_us_per_tx: 6.55,
            blocks: 43,
        };
        assert_eq!(
            report.to_string(),
            "300000 transactions in 43 blocks: 51235 tx/s; admit 12.3 µs/tx (of which verifying the signature 9.9), \
             confirm 6.5 µs/tx"
        );
    }

    #[test]
    fn a_block_without_room_for_a_transfer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let options =
            StoreBenchOptions { txs: 10, backlog: 0, max_block_txs: 1, cache_bytes: 1 << 22, tx_index: false };
        assert!(matches!(run(dir.path(), &options), Err(StoreBenchError::BlockTooSmall)));
    }
}
