//! Store write costs on real sled files: admitting a batch of signed transfers to the mempool
//! (signatures already checked, as the applier hands them over), and applying a block that
//! confirms them (the two writes every node does per transfer).

// A benchmark that cannot unwrap its setup has nothing to measure; criterion_group! makes
// undocumented functions.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kafkachain::core::block::genesis;
use kafkachain::core::params::ChainParams;
use kafkachain::core::testkit::paying_child;
use kafkachain::store::{Offered, OffsetUpdate, Store, TopicPartition, DEFAULT_CACHE_BYTES};
use kafkachain::tools::load::{miner_address, LoadAccounts};
use kafkachain::tools::store_writer::UNBOUNDED;

const TXS: usize = 5_000;
const SENDERS: usize = 100;

fn store_writes(c: &mut Criterion) {
    let accounts = LoadAccounts::new(SENDERS);
    let params =
        ChainParams { bits: 8, max_block_txs: TXS + 1, allocations: accounts.allocations(), ..ChainParams::default() };
    let txs: Vec<Offered> = (0..TXS as u64)
        .map(|n| Offered { transfer: accounts.transfer(params.chain_tag(), n), signature_valid: true })
        .collect();
    let transfers = txs.iter().map(|o| o.transfer.clone());
    let block = paying_child(params.chain_tag(), &genesis(&params), miner_address("bench"), params.reward, transfers);
    let offset = |next| OffsetUpdate { position: TopicPartition::new("t", 0), next };

    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10);
    group.bench_function("admit_5000_txs", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path(), &params, DEFAULT_CACHE_BYTES).unwrap();
                (dir, store)
            },
            |(dir, store)| {
                store.admit_transactions(&txs, &[offset(TXS as u64)], UNBOUNDED).unwrap();
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("apply_block_5000_txs", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path(), &params, DEFAULT_CACHE_BYTES).unwrap();
                store.admit_transactions(&txs, &[offset(TXS as u64)], UNBOUNDED).unwrap();
                (dir, store)
            },
            |(dir, store)| {
                // The block, then the sweep of its transfers' mempool records, as the applier
                // does: the figure stays the whole cost of confirming them.
                store.apply_block(block.clone(), block.header.timestamp_ms, &[offset(1)]).unwrap();
                store.sweep_mempool().unwrap();
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, store_writes);
criterion_main!(benches);
