//! `bench-pow`: proof-of-work throughput at a difficulty no search will reach, for a fixed time,
//! reported the way cpuminer's `--benchmark` does: the kernel, the CPU, each thread's rate and
//! the total; a sweep over thread counts adds speed-up and efficiency against linear scaling.

use super::pow_chart::{self, ChartError};
use crate::core::hash::{BlockHash, MerkleRoot};
use crate::core::header::{BlockHeader, HEADER_VERSION};
use crate::core::miner::{Kernel, KernelChoice, Miner, MinerPoolError, MinerPriority, SearchOutcome, UnknownKernel};
use crate::node::KERNEL_CALIBRATION;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The CPU flags that decide which kernels can run, as `/proc/cpuinfo` names them.
const KERNEL_FLAGS: [&str; 4] = ["sha_ni", "avx2", "avx512f", "ssse3"];

/// Searches stopped to measure how quickly a search ends when the tip moves.
const STOP_SAMPLES: usize = 200;

/// What `bench-pow` is asked to measure, as its command line says it.
#[derive(Clone, Debug)]
pub struct PowBenchCommand {
    /// Threads searching (0 = one per core); with `sweep`, the most.
    pub threads: usize,
    /// Seconds of search at each thread count.
    pub seconds: f64,
    /// The hashing kernel's name, or `auto` to time each and take the fastest.
    pub kernel: String,
    /// Run 1, 2, .. `threads` threads in turn, for speed-up and efficiency.
    pub sweep: bool,
    /// End with one JSON line per thread count.
    pub json: bool,
    /// Draw the rate against the thread count into this SVG file.
    pub svg: Option<PathBuf>,
}

/// Why `bench-pow` could not measure.
#[derive(Debug, thiserror::Error)]
pub enum PowBenchError {
    /// The search time is zero, negative or not a number.
    #[error("--seconds must be positive")]
    Seconds,
    /// The kernel is unknown, or this CPU cannot run it.
    #[error("--kernel: {0}")]
    Kernel(#[source] UnknownKernel),
    /// The search threads could not be started.
    #[error(transparent)]
    Pool(#[from] MinerPoolError),
    /// The chart could not be written.
    #[error(transparent)]
    Chart(#[from] ChartError),
    /// A report could not be written as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Runs `bench-pow`: prints the CPU and the kernel, measures each thread count and prints the
/// table of rates, then how quickly a search stops; draws the chart and ends with the JSON lines
/// if asked.
pub fn command(command: &PowBenchCommand) -> Result<(), PowBenchError> {
    let positive = command.seconds > 0.0;
    if !positive {
        return Err(PowBenchError::Seconds);
    }
    let kernel = KernelChoice::parse(&command.kernel).map_err(PowBenchError::Kernel)?.resolve(KERNEL_CALIBRATION);
    let cpu = CpuInfo::detect();
    let most = if command.threads == 0 { cpu.cores } else { command.threads };
    let counts: Vec<usize> = if command.sweep { (1..=most).collect() } else { vec![most] };
    println!("cpu: {cpu}");
    println!("kernel: {}", kernel.name());
    let reports = bench_pow(kernel, &counts, command.seconds)?;
    println!("{}", rate_table(&reports));
    let stop = stop_latency(kernel, most, STOP_SAMPLES)?;
    println!("stop latency on {most} thread(s), {stop}");
    if let Some(path) = &command.svg {
        pow_chart::write_svg(path, &cpu, &reports)?;
        println!("chart: {}", path.display());
    }
    if command.json {
        for r in &reports {
            super::print_json(&serde_json::json!({ "cpu": &cpu, "report": r, "stop_latency": &stop }))?;
        }
    }
    Ok(())
}

/// The rates of `reports` as a table, a heading and a row for each thread count.
fn rate_table(reports: &[PowBenchReport]) -> String {
    let mut table =
        format!("{:>7} {:>14} {:>9} {:>11}  per thread (M/s)", "threads", "M nonces/s", "speed-up", "efficiency");
    for r in reports {
        let each: Vec<String> = r.per_thread_per_sec.iter().map(|rate| format!("{:.2}", rate / 1e6)).collect();
        table.push_str(&format!(
            "\n{:>7} {:>14.2} {:>8.2}x {:>10.0}%  {}",
            r.threads,
            r.trials_per_sec / 1e6,
            r.speedup,
            r.efficiency * 100.0,
            each.join(" ")
        ));
    }
    table
}

/// The machine a benchmark ran on.
#[derive(Clone, Debug, Serialize)]
pub struct CpuInfo {
    /// The CPU's model name (`/proc/cpuinfo`), or "unknown".
    pub model: String,
    /// Which of the flags the kernels use the CPU has.
    pub flags: Vec<String>,
    /// Cores the process may use.
    pub cores: usize,
}

impl CpuInfo {
    /// Reads the model and flags from `/proc/cpuinfo` (Linux); elsewhere, what is known.
    pub fn detect() -> CpuInfo {
        let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find(|line| line.split(':').next().is_some_and(|key| key.trim() == name))
                .and_then(|line| line.split_once(':'))
                .map(|(_, value)| value.trim().to_owned())
        };
        let flags = field("flags").unwrap_or_default();
        let present: Vec<&str> = flags.split_whitespace().collect();
        CpuInfo {
            model: field("model name").unwrap_or_else(|| "unknown".to_owned()),
            flags: KERNEL_FLAGS.iter().filter(|flag| present.contains(flag)).map(|flag| (*flag).to_owned()).collect(),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// The model, the cores and the kernels' flags, as `bench-pow` prints them.
impl fmt::Display for CpuInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} cores; flags: {})", self.model, self.cores, self.flags.join(" "))
    }
}

/// One measured thread count.
#[derive(Clone, Debug, Serialize)]
pub struct PowBenchReport {
    /// The hashing kernel.
    pub kernel: String,
    /// Threads that searched.
    pub threads: usize,
    /// Seconds requested.
    pub seconds: f64,
    /// Nonces tried in all.
    pub trials: u64,
    /// Nonces tried per second of measured wall time, all threads together.
    pub trials_per_sec: f64,
    /// Each thread's nonces per second.
    pub per_thread_per_sec: Vec<f64>,
    /// Total rate over the one-thread rate of the same sweep (1 for a single run).
    pub speedup: f64,
    /// Speed-up over the thread count: 1 is linear scaling.
    pub efficiency: f64,
}

/// Compact form of the target 1: no hash meets it in practice.
const TARGET_ONE: u32 = 0x0300_0001;

/// A header no nonce can satisfy in practice (target 1), so a search runs until it is stopped.
pub fn unreachable_header() -> BlockHeader {
    BlockHeader {
        version: HEADER_VERSION,
        height: 1,
        prev_hash: BlockHash::new([0x11; 32]),
        tx_root: MerkleRoot::new([0x22; 32]),
        timestamp_ms: 0,
        bits: TARGET_ONE,
        nonce: 0,
    }
}

/// The benchmarks measure hashing itself: their threads compete for the cores like any other,
/// rather than giving way to whatever else runs on the machine.
const BENCH_PRIORITY: MinerPriority = MinerPriority::Normal;

/// Searches an unreachable difficulty with `kernel` on each of `thread_counts` threads in turn
/// (0 = all cores) for `seconds` each; speed-up and efficiency are against the first count.
pub fn bench_pow(kernel: Kernel, thread_counts: &[usize], seconds: f64) -> Result<Vec<PowBenchReport>, MinerPoolError> {
    let mut reports: Vec<PowBenchReport> = Vec::new();
    for &threads in thread_counts {
        let miner = Miner::new(threads, kernel, BENCH_PRIORITY)?;
        let started = Instant::now();
        let (outcome, _) = search_stopped_after(&miner, Duration::from_secs_f64(seconds));
        let elapsed = started.elapsed().as_secs_f64();
        let rate = outcome.trials as f64 / elapsed;
        let base = reports.first().map_or(rate, |first| first.trials_per_sec);
        let first_threads = reports.first().map_or(miner.threads(), |first| first.threads) as f64;
        let speedup = if base > 0.0 { rate / base } else { 0.0 };
        reports.push(PowBenchReport {
            kernel: kernel.name(),
            threads: miner.threads(),
            seconds,
            trials: outcome.trials,
            trials_per_sec: rate,
            per_thread_per_sec: outcome.trials_by_thread.iter().map(|t| *t as f64 / elapsed).collect(),
            speedup,
            efficiency: speedup * first_threads / miner.threads() as f64,
        });
    }
    Ok(reports)
}

/// How quickly a search stops once asked: what a miner loses when the tip moves.
#[derive(Clone, Debug, Serialize)]
pub struct StopLatency {
    /// Searches stopped.
    pub samples: usize,
    /// Median time from raising the stop flag to the search returning, in microseconds.
    pub p50_us: u64,
    /// 99th percentile, in microseconds.
    pub p99_us: u64,
    /// Slowest, in microseconds.
    pub max_us: u64,
}

/// The samples and the percentiles, as `bench-pow` prints them.
impl fmt::Display for StopLatency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} searches: p50 {} µs, p99 {} µs, max {} µs", self.samples, self.p50_us, self.p99_us, self.max_us)
    }
}

/// Starts `samples` searches with `kernel` on `threads` threads, raises the stop flag after a
/// few milliseconds each time, and measures how long each search takes to return.
pub fn stop_latency(kernel: Kernel, threads: usize, samples: usize) -> Result<StopLatency, MinerPoolError> {
    let miner = Miner::new(threads, kernel, BENCH_PRIORITY)?;
    let mut waits: Vec<u64> = Vec::with_capacity(samples);
    for sample in 0..samples {
        // 2-9 ms into the search, so the stop lands anywhere within a chunk.
        let (_, wait) = search_stopped_after(&miner, Duration::from_micros(2_000 + (sample as u64 * 737) % 7_000));
        waits.push(wait.as_micros() as u64);
    }
    waits.sort_unstable();
    let at = |p: f64| waits.get(((waits.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(0);
    Ok(StopLatency {
        samples: waits.len(),
        p50_us: at(0.5),
        p99_us: at(0.99),
        max_us: waits.last().copied().unwrap_or(0),
    })
}

/// Searches the unreachable header on `miner` until a timer raises the stop flag `after` the
/// start; returns the outcome and how long the search took to return once the flag was raised.
fn search_stopped_after(miner: &Miner, after: Duration) -> (SearchOutcome, Duration) {
    let header = unreachable_header();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let timer = scope.spawn(|| {
            std::thread::sleep(after);
            let raised = Instant::now();
            stop.store(true, Ordering::Relaxed);
            raised
        });
        let outcome = miner.search(&header, 0..u64::MAX, &stop).expect("TARGET_ONE is a compact target");
        let returned = Instant::now();
        let raised = timer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (outcome, returned.saturating_duration_since(raised))
    })
}

/// A one-second portable-kernel report of `threads` threads at `rate` nonces/s, evenly shared,
/// with `speedup` over one thread: for the tests of the printed and drawn reports.
#[cfg(test)]
pub(super) fn sample_report(threads: usize, rate: f64, speedup: f64) -> PowBenchReport {
    PowBenchReport {
        kernel: "portable".into(),
        threads,
        seconds: 1.0,
        trials: rate as u64,
        trials_per_sec: rate,
        per_thread_per_sec: vec![rate / threads as f64; threads],
        speedup,
        efficiency: speedup / threads as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_reports_every_thread_count_against_the_first() {
        let reports = bench_pow(Kernel::Portable, &[1, 2], 0.05).unwrap();
        assert_eq!(reports.iter().map(|r| r.threads).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(reports[0].speedup, 1.0);
        assert!(reports.iter().all(|r| r.trials > 0 && r.per_thread_per_sec.len() == r.threads));
        let second = &reports[1];
        assert!((second.speedup - second.trials_per_sec / reports[0].trials_per_sec).abs() < 1e-9);
        assert!((second.efficiency - second.speedup / 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_raised_stop_ends_every_sampled_search() {
        let latency = stop_latency(Kernel::Portable, 2, 5).unwrap();
        assert_eq!(latency.samples, 5);
        assert!(latency.p50_us <= latency.p99_us && latency.p99_us <= latency.max_us);
    }

    #[test]
    fn the_report_prints_as_the_table_and_lines_it_always_had() {
        assert_eq!(
            rate_table(&[sample_report(1, 20e6, 1.0), sample_report(2, 39e6, 1.95)]),
            "threads     M nonces/s  speed-up  efficiency  per thread (M/s)\n      \
             1          20.00     1.00x        100%  20.00\n      \
             2          39.00     1.95x         98%  19.50 19.50"
        );
        let cpu = CpuInfo { model: "test cpu".into(), flags: vec!["sha_ni".into(), "avx2".into()], cores: 2 };
        assert_eq!(cpu.to_string(), "test cpu (2 cores; flags: sha_ni avx2)");
        let stop = StopLatency { samples: 200, p50_us: 40, p99_us: 90, max_us: 120 };
        assert_eq!(stop.to_string(), "200 searches: p50 40 µs, p99 90 µs, max 120 µs");
    }

    #[test]
    fn the_cpu_is_described_with_the_flags_the_kernels_use() {
        let cpu = CpuInfo::detect();
        assert!(cpu.cores >= 1);
        assert!(cpu.flags.iter().all(|flag| KERNEL_FLAGS.contains(&flag.as_str())));
        if Kernel::available().contains(&Kernel::Avx2) {
            assert!(cpu.flags.contains(&"avx2".to_owned()), "{cpu:?}");
        }
    }
}
