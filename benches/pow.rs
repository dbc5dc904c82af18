//! Proof-of-work search throughput: a fixed range of nonces at an unreachable difficulty, on one
//! thread and on every core. Throughput is reported in nonces per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafkachain::core::miner::Miner;
use kafkachain::tools::bench_pow::unreachable_header;
use std::sync::atomic::AtomicBool;

const NONCES: u64 = 1 << 22;

fn search(c: &mut Criterion) {
    let header = unreachable_header();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut group = c.benchmark_group("pow_search");
    group.throughput(Throughput::Elements(NONCES));
    group.sample_size(20);
    for threads in [1, cores] {
        let miner = Miner::new(threads).expect("thread pool");
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter(|| miner.search(&header, 0..NONCES, &AtomicBool::new(false)))
        });
    }
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
