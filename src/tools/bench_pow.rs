//! `bench-pow`: proof-of-work throughput at a difficulty no search will reach, for a fixed time.

use crate::core::hash::{BlockHash, MerkleRoot};
use crate::core::header::{BlockHeader, HEADER_VERSION};
use crate::core::miner::{Miner, MinerPoolError};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Result of one proof-of-work benchmark run.
#[derive(Clone, Debug, Serialize)]
pub struct PowBenchReport {
    /// Threads that searched.
    pub threads: usize,
    /// Seconds requested.
    pub seconds: f64,
    /// Nonces tried in all.
    pub trials: u64,
    /// Nonces tried per second of measured wall time.
    pub trials_per_sec: f64,
}

/// A header no nonce can satisfy (256 zero bits), so a search runs until it is stopped.
pub fn unreachable_header() -> BlockHeader {
    BlockHeader {
        version: HEADER_VERSION,
        height: 1,
        prev_hash: BlockHash([0x11; 32]),
        tx_root: MerkleRoot([0x22; 32]),
        timestamp_ms: 0,
        bits: 256,
        nonce: 0,
    }
}

/// Searches an unreachable difficulty on `threads` threads (0 = all cores) for `seconds`.
pub fn bench_pow(threads: usize, seconds: f64) -> Result<PowBenchReport, MinerPoolError> {
    let miner = Miner::new(threads)?;
    let header = unreachable_header();
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_secs_f64(seconds));
            stop.store(true, Ordering::Relaxed);
        });
        miner.search(&header, 0..u64::MAX, &stop)
    });
    let elapsed = started.elapsed().as_secs_f64();
    Ok(PowBenchReport {
        threads: miner.threads(),
        seconds,
        trials: outcome.trials,
        trials_per_sec: outcome.trials as f64 / elapsed,
    })
}
