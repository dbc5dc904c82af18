//! Block validation cost: the context-free checks (proof of work, Merkle root, transaction
//! rules) and a full apply through the in-memory chain, for a block of 1,000 transactions.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kafkachain::core::block::{genesis, Block};
use kafkachain::core::memory::MemoryChain;
use kafkachain::core::miner::solve_on_this_thread;
use kafkachain::core::params::ChainParams;
use kafkachain::core::transaction::Transaction;
use kafkachain::core::validate::check_block;

fn full_block(params: &ChainParams) -> Block {
    let parent = genesis(params);
    let mut txs = vec![Transaction::reward("miner", params.reward, 1)];
    txs.extend((1..params.max_block_txs as u64).map(|n| Transaction {
        sender: format!("user{}", n % 100),
        recipient: format!("shop{}", n % 7),
        amount: n,
        nonce: n,
    }));
    let mut block = Block::candidate(parent.hash(), 0, params.bits, parent.header.timestamp_ms + 1, txs);
    assert!(solve_on_this_thread(&mut block.header));
    block
}

fn validate(c: &mut Criterion) {
    let params = ChainParams { bits: 12, ..ChainParams::default() };
    let block = full_block(&params);
    let mut group = c.benchmark_group("validate_block");
    group.throughput(Throughput::Elements(block.transactions.len() as u64));
    group.bench_function("check_block_1000_txs", |b| b.iter(|| check_block(&block, &params)));
    let empty = MemoryChain::new(params.clone());
    group.bench_function("apply_block_1000_txs", |b| {
        b.iter_batched(|| empty.clone(), |mut chain| chain.apply(block.clone()), BatchSize::SmallInput)
    });
    group.finish();
}

criterion_group!(benches, validate);
criterion_main!(benches);
