//! Block validation cost for a block of 1,000 signed transfers: the context-free checks (proof of
//! work, Merkle root, transaction rules), a full apply through the in-memory chain (signatures
//! included, since none was seen in a mempool), and Ed25519 verification one by one against
//! batches, and what a batch of each size costs a signature.

// A benchmark that cannot unwrap its setup has nothing to measure; criterion_group! makes
// undocumented functions.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kafkachain::core::block::genesis;
use kafkachain::core::memory::MemoryChain;
use kafkachain::core::params::ChainParams;
use kafkachain::core::signature::{first_invalid, SignedMessage};
use kafkachain::core::testkit::paying_child;
use kafkachain::core::transaction::Transfer;
use kafkachain::core::validate::check_block;
use kafkachain::tools::load::{miner_address, LoadAccounts};

const SENDERS: usize = 100;

fn validate(c: &mut Criterion) {
    let accounts = LoadAccounts::new(SENDERS);
    let params = ChainParams { bits: 12, allocations: accounts.allocations(), ..ChainParams::default() };
    let transfers: Vec<Transfer> =
        (0..params.max_block_txs as u64 - 1).map(|n| accounts.transfer(params.chain_tag(), n)).collect();
    let block = paying_child(
        params.chain_tag(),
        &genesis(&params),
        miner_address("bench"),
        params.reward,
        transfers.iter().cloned(),
    );
    let mut group = c.benchmark_group("validate_block");
    group.throughput(Throughput::Elements(block.transactions.len() as u64));
    group.bench_function("check_block_1000_txs", |b| b.iter(|| check_block(&block, &params, params.chain_tag())));
    let empty = MemoryChain::new(params.clone());
    group.bench_function("apply_block_1000_txs", |b| {
        b.iter_batched(|| empty.clone(), |mut chain| chain.apply(block.clone()), BatchSize::SmallInput)
    });
    group.finish();

    let signing: Vec<_> = transfers.iter().take(256).map(|t| t.signing_bytes(params.chain_tag())).collect();
    let items: Vec<SignedMessage<'_>> = transfers.iter().zip(&signing).map(|(t, b)| t.signed_message(b)).collect();
    let mut group = c.benchmark_group("ed25519_256_signatures");
    group.throughput(Throughput::Elements(items.len() as u64));
    group.bench_function("one_by_one", |b| b.iter(|| items.iter().all(SignedMessage::verify)));
    group.bench_function("batch", |b| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        b.iter(|| pool.install(|| first_invalid(&items)))
    });
    group.finish();

    // What a smaller batch costs a signature: why the applier verifies in batches of 256
    // rather than splitting a small burst of transfers over the cores.
    let mut group = c.benchmark_group("ed25519_batch_size");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    for size in [16, 32, 64, 128, 256] {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(size.to_string(), |b| b.iter(|| pool.install(|| first_invalid(&items[..size]))));
    }
    group.finish();
}

criterion_group!(benches, validate);
criterion_main!(benches);
