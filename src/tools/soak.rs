//! `soak`: three nodes on a real broker, every one mining continuously, under a steady signed
//! load, sampled at a fixed interval for what grows on a long-running node: resident memory,
//! open files, threads, the store on disk, the mempool and block propagation. Writes the samples
//! as CSV and draws them as SVG ([`super::soak_chart`]), and reports each figure's slope after a
//! warm-up: a node that stays flat keeps the slopes of memory, files and threads near zero and
//! its store growing no faster than the blocks topic it copies.

use super::cluster::{poll_until, unique_prefix, LocalNode, NodeSpec};
use super::load::ClientLoad;
use crate::config::MiningMode;
use crate::core::miner::MinerPriority;
use crate::core::transaction::ChainTag;
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Transfers per HTTP request of the load.
const BATCH: usize = 100;
/// Concurrent load clients, each signing from its own accounts.
const CLIENTS: usize = 4;

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// How long the load runs.
    pub minutes: f64,
    /// Offered transfers per second over all clients.
    pub rate: f64,
    /// Seconds between samples.
    pub sample_secs: u64,
    /// Minutes of warm-up the slopes leave out.
    pub warmup_minutes: f64,
    /// Where the CSV and the SVG go.
    pub out: PathBuf,
    /// The broker's log directory, to weigh the blocks topic against the stores.
    pub kafka_log_dir: Option<PathBuf>,
}

/// One node's figures at one moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the load started.
    pub elapsed_s: f64,
    /// The node.
    pub node: String,
    /// Resident memory, MiB.
    pub rss_mib: f64,
    /// Open file descriptors.
    pub open_files: u64,
    /// Threads.
    pub threads: u64,
    /// The data directory on disk, MiB.
    pub store_mib: f64,
    /// The blocks topic in Kafka's log directory, MiB (the same on every node's row).
    pub blocks_topic_mib: Option<f64>,
    /// Transfers waiting in the mempool.
    pub mempool: u64,
    /// Main-chain height.
    pub height: u64,
    /// 99th percentile of propagation (Kafka timestamp → applied here) of the blocks this node
    /// applied since the last sample.
    pub propagation_p99_ms: Option<u64>,
}

impl Sample {
    /// The CSV header.
    pub const CSV_HEADER: &'static str =
        "elapsed_s,node,rss_mib,open_files,threads,store_mib,blocks_topic_mib,mempool,height,propagation_p99_ms";

    /// This sample as a CSV line.
    pub fn csv_line(&self) -> String {
        let optional = |value: Option<String>| value.unwrap_or_default();
        format!(
            "{:.1},{},{:.2},{},{},{:.2},{},{},{},{}",
            self.elapsed_s,
            self.node,
            self.rss_mib,
            self.open_files,
            self.threads,
            self.store_mib,
            optional(self.blocks_topic_mib.map(|mib| format!("{mib:.2}"))),
            self.mempool,
            self.height,
            optional(self.propagation_p99_ms.map(|ms| ms.to_string())),
        )
    }
}

/// Reads one figure from a sample (`None` where the sample has none).
pub type ReadFigure = fn(&Sample) -> Option<f64>;

/// The figures whose slopes are reported, with how each is read from a sample.
pub const FIGURES: [(&str, ReadFigure); 6] = [
    ("rss_mib", |s| Some(s.rss_mib)),
    ("open_files", |s| Some(s.open_files as f64)),
    ("threads", |s| Some(s.threads as f64)),
    ("store_mib", |s| Some(s.store_mib)),
    ("mempool", |s| Some(s.mempool as f64)),
    ("propagation_p99_ms", |s| s.propagation_p99_ms.map(|ms| ms as f64)),
];

/// A figure's least-squares slope on one node, after the warm-up.
#[derive(Clone, Debug, Serialize)]
pub struct Slope {
    /// The node.
    pub node: String,
    /// The figure (a column of the CSV).
    pub figure: &'static str,
    /// Its change per hour.
    pub per_hour: f64,
    /// Its mean over the samples after the warm-up.
    pub mean: f64,
}

/// What the soak found.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    /// Minutes of load.
    pub minutes: f64,
    /// Transfers the nodes accepted (HTTP 201).
    pub accepted_txs: u64,
    /// Main-chain height at the end.
    pub height: u64,
    /// Samples taken per node.
    pub samples: usize,
    /// The CSV file.
    pub csv: PathBuf,
    /// The SVG file.
    pub svg: PathBuf,
    /// The blocks topic's growth per hour after the warm-up, MiB (the chain's own bytes).
    pub blocks_topic_per_hour: Option<f64>,
    /// Each figure's slope on each node after the warm-up.
    pub slopes: Vec<Slope>,
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:.0} minutes: {} transfers accepted, height {}, {} samples per node; {} and {}",
            self.minutes,
            self.accepted_txs,
            self.height,
            self.samples,
            self.csv.display(),
            self.svg.display()
        )?;
        if let Some(topic) = self.blocks_topic_per_hour {
            writeln!(f, "blocks topic: {topic:+.2} MiB per hour")?;
        }
        write!(f, "slopes after the warm-up, per hour (mean):")?;
        for slope in &self.slopes {
            write!(f, "\n  {} {}: {:+.3} ({:.2})", slope.node, slope.figure, slope.per_hour, slope.mean)?;
        }
        Ok(())
    }
}

/// Why the soak failed.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    /// Files or processes.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A node misbehaved; its log is kept in the run directory.
    #[error("{0} (logs in {1})")]
    Network(String, PathBuf),
    /// Nothing to run.
    #[error("--minutes, --rate and --sample-secs must be positive")]
    Options,
    /// The chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] super::pow_chart::ChartError),
    /// The report could not be written as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Runs the soak with this executable as the nodes and prints the report (then as one JSON line
/// if `json`).
pub fn command(options: &SoakOptions, json: bool) -> Result<(), SoakError> {
    if !(options.minutes > 0.0 && options.rate > 0.0 && options.sample_secs > 0) {
        return Err(SoakError::Options);
    }
    let report = run(&std::env::current_exe()?, options)?;
    Ok(super::print_report(&report, json)?)
}

fn run(exe: &Path, options: &SoakOptions) -> Result<SoakReport, SoakError> {
    let prefix = unique_prefix("soak");
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir)?;
    std::fs::create_dir_all(&options.out)?;
    let fail = |what: String| SoakError::Network(what, dir.clone());
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let mut spec = NodeSpec::new(&format!("n{i}"), &prefix, &options.brokers);
        // The devnet's pace: a block every 2 s once the first retargets have settled.
        spec.chain.bits = 20;
        spec.chain.retarget_interval = 30;
        spec.chain.target_block_ms = 2_000;
        // Room for the offered rate with blocks 2 s apart, and for a backlog to drain.
        spec.chain.max_block_txs = 10_000;
        spec.mining.mode = MiningMode::Continuous;
        // What a long-running node mines with by default.
        spec.mining.priority = MinerPriority::Idle;
        spec.storage.max_nonce_ahead = 1_000_000;
        spec.storage.tx_index = false;
        let mut node = LocalNode::configure(exe, &dir, &spec)?;
        node.spawn()?;
        nodes.push(node);
    }
    for node in &nodes {
        if !node.wait_ready(Duration::from_secs(60)) {
            return Err(fail(format!("{} did not start", node.id)));
        }
    }
    let chain = ChainTag::of(&nodes[0].chain_id);
    let topic_dir = options.kafka_log_dir.as_ref().map(|dir| dir.join(format!("{prefix}.blocks-0")));
    let csv_path = options.out.join("soak.csv");
    let svg_path = options.out.join("soak.svg");
    let accepted = AtomicU64::new(0);
    let loading = AtomicBool::new(true);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(options.minutes * 60.0);
    let mut samples: Vec<Sample> = Vec::new();
    std::thread::scope(|scope| -> Result<(), SoakError> {
        let interval = Duration::from_secs_f64(BATCH as f64 * CLIENTS as f64 / options.rate);
        for client in 0..CLIENTS {
            let (node, accepted, loading) = (&nodes[client % nodes.len()], &accepted, &loading);
            scope.spawn(move || offer_load(node, ClientLoad::new(client, CLIENTS, chain), interval, accepted, loading));
        }
        let mut next_heights = vec![1u64; nodes.len()];
        let mut csv = std::fs::File::create(&csv_path)?;
        use std::io::Write;
        writeln!(csv, "{}", Sample::CSV_HEADER)?;
        let mut next_sample = started;
        while Instant::now() < deadline {
            next_sample += Duration::from_secs(options.sample_secs);
            std::thread::sleep(next_sample.saturating_duration_since(Instant::now()));
            let topic_mib = topic_dir.as_deref().and_then(|dir| super::disk::allocated_bytes(dir).ok()).map(mib);
            for (node, next_height) in nodes.iter().zip(&mut next_heights) {
                let sample = sample(node, started, topic_mib, next_height).ok_or_else(|| {
                    loading.store(false, Ordering::Relaxed);
                    fail(format!("{} stopped answering", node.id))
                })?;
                writeln!(csv, "{}", sample.csv_line())?;
                samples.push(sample);
            }
            csv.flush()?;
        }
        loading.store(false, Ordering::Relaxed);
        Ok(())
    })?;
    let height = nodes[0].try_get("/status").and_then(|(_, s)| s["height"].as_u64()).unwrap_or(0);
    for node in &mut nodes {
        node.terminate()?;
    }
    std::fs::remove_dir_all(&dir)?;
    super::soak_chart::write_svg(&svg_path, &samples)?;
    let warmup_s = options.warmup_minutes * 60.0;
    let settled: Vec<&Sample> = samples.iter().filter(|s| s.elapsed_s >= warmup_s).collect();
    let node_ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    let slopes = node_ids
        .iter()
        .flat_map(|id| {
            let of_node: Vec<&Sample> = settled.iter().copied().filter(|s| &s.node == id).collect();
            FIGURES.iter().filter_map(move |(figure, read)| {
                let points: Vec<(f64, f64)> =
                    of_node.iter().filter_map(|s| read(s).map(|value| (s.elapsed_s, value))).collect();
                let (per_second, mean) = least_squares(&points)?;
                Some(Slope { node: id.clone(), figure, per_hour: per_second * 3600.0, mean })
            })
        })
        .collect();
    let topic_points: Vec<(f64, f64)> = settled
        .iter()
        .filter(|s| s.node == node_ids[0])
        .filter_map(|s| s.blocks_topic_mib.map(|mib| (s.elapsed_s, mib)))
        .collect();
    Ok(SoakReport {
        minutes: options.minutes,
        accepted_txs: accepted.into_inner(),
        height,
        samples: samples.len() / nodes.len().max(1),
        csv: csv_path,
        svg: svg_path,
        blocks_topic_per_hour: least_squares(&topic_points).map(|(per_second, _)| per_second * 3600.0),
        slopes,
    })
}

/// Posts `load`'s batches to `node` every `interval` while `loading`; a refused batch is sent
/// again (its nonces must not be skipped).
fn offer_load(node: &LocalNode, mut load: ClientLoad, interval: Duration, accepted: &AtomicU64, loading: &AtomicBool) {
    let mut next_send = Instant::now();
    let mut body = load.next_body(BATCH);
    while loading.load(Ordering::Relaxed) {
        std::thread::sleep(next_send.saturating_duration_since(Instant::now()));
        next_send += interval;
        if let Some((201, _)) = node.try_post("/transactions/batch", body.clone()) {
            accepted.fetch_add(BATCH as u64, Ordering::Relaxed);
            body = load.next_body(BATCH);
        }
    }
}

/// Bytes as MiB.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `node`'s figures now; `next_height` is the first height whose propagation it has not yet
/// counted, moved past what this sample counts. `None` when the node does not answer.
fn sample(node: &LocalNode, started: Instant, blocks_topic_mib: Option<f64>, next_height: &mut u64) -> Option<Sample> {
    let pid = node.pid()?;
    let proc_status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        proc_status.lines().find_map(|line| line.strip_prefix(name)?.split_whitespace().next()?.parse::<u64>().ok())
    };
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    let (_, status) = node.try_get("/status")?;
    let (_, recent) =
        poll_until(Duration::from_secs(5), || node.try_get(&format!("/metrics/blocks?from={next_height}")))?;
    let mut lags: Vec<u64> = Vec::new();
    for block in recent["blocks"].as_array().into_iter().flatten() {
        *next_height = (*next_height).max(block["height"].as_u64().unwrap_or(0) + 1);
        if let (Some(produced), Some(applied)) = (block["produced_ms"].as_u64(), block["applied_ms"].as_u64()) {
            lags.push(applied.saturating_sub(produced));
        }
    }
    lags.sort_unstable();
    let p99 = (!lags.is_empty()).then(|| lags[((lags.len() - 1) as f64 * 0.99).round() as usize]);
    Some(Sample {
        elapsed_s: started.elapsed().as_secs_f64(),
        node: node.id.clone(),
        rss_mib: field("VmRSS:")? as f64 / 1024.0,
        open_files,
        threads: field("Threads:")?,
        store_mib: mib(super::disk::allocated_bytes(&node.data_dir).ok()?),
        blocks_topic_mib,
        mempool: status["mempool"].as_u64()?,
        height: status["height"].as_u64()?,
        propagation_p99_ms: p99,
    })
}

/// The least-squares slope of `points` (per unit of x) and the mean of their y; `None` for fewer
/// than two points or no spread in x.
pub fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n;
    let spread: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    if spread == 0.0 {
        return None;
    }
    let covariance: f64 = points.iter().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    Some((covariance / spread, mean_y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_its_slope_and_a_flat_series_none() {
        let line: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 3.0 + 2.0 * x as f64)).collect();
        let (slope, mean) = least_squares(&line).unwrap();
        assert!((slope - 2.0).abs() < 1e-9 && (mean - 12.0).abs() < 1e-9, "{slope} {mean}");
        let flat: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 7.0)).collect();
        assert_eq!(least_squares(&flat), Some((0.0, 7.0)));
        assert_eq!(least_squares(&[(1.0, 2.0)]), None);
        assert_eq!(least_squares(&[(1.0, 2.0), (1.0, 3.0)]), None);
    }

    #[test]
    fn a_sample_is_one_csv_line_under_the_header() {
        let sample = Sample {
            elapsed_s: 10.04,
            node: "n1".into(),
            rss_mib: 81.234,
            open_files: 57,
            threads: 31,
            store_mib: 12.5,
            blocks_topic_mib: None,
            mempool: 420,
            height: 33,
            propagation_p99_ms: Some(48),
        };
        assert_eq!(sample.csv_line(), "10.0,n1,81.23,57,31,12.50,,420,33,48");
        assert_eq!(Sample::CSV_HEADER.split(',').count(), sample.csv_line().split(',').count());
    }
}
