//! Proof-of-work search throughput: a fixed range of nonces at an unreachable difficulty, for
//! every kernel the CPU offers on one thread, and for the fastest on every core. Throughput is
//! reported in nonces per second.

// A benchmark that cannot unwrap its setup has nothing to measure; criterion_group! makes
// undocumented functions.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafkachain::core::miner::{Kernel, Miner, MinerPriority};
use kafkachain::tools::bench_pow::unreachable_header;
use std::sync::atomic::AtomicBool;

const NONCES: u64 = 1 << 22;

fn search(c: &mut Criterion) {
    let header = unreachable_header();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut group = c.benchmark_group("pow_search");
    group.throughput(Throughput::Elements(NONCES));
    group.sample_size(20);
    for kernel in Kernel::available() {
        let miner = Miner::new(1, kernel, MinerPriority::Normal).expect("thread pool");
        group.bench_function(format!("1_thread/{}", kernel.name()), |b| {
            b.iter(|| miner.search(&header, 0..NONCES, &AtomicBool::new(false)))
        });
    }
    let best = Kernel::calibrate(std::time::Duration::from_millis(200));
    let miner = Miner::new(cores, best, MinerPriority::Normal).expect("thread pool");
    group.bench_function(format!("{cores}_threads/{}", best.name()), |b| {
        b.iter(|| miner.search(&header, 0..NONCES, &AtomicBool::new(false)))
    });
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
