//! `bench-e2e`: end-to-end throughput and block propagation of a three-node network on a real
//! broker. Clients post batches of transfers over HTTP to all three nodes; one node mines
//! whenever its mempool holds something. A transfer counts as committed when all three nodes have
//! applied a main-chain block holding it; a block's propagation time runs from its Kafka
//! timestamp (set when the miner produced it) to the moment the last node applied it.

use super::cluster::LOAD_ACCOUNTS;
use super::cluster::{poll_until, unique_prefix, LocalNode, NodeSpec};
use super::kafka_baseline::{BaselineError, KafkaBaseline, KafkaTools};
use super::load::ClientLoad;
use crate::clock::now_ms;
use crate::config::{SaslConfig, SaslMechanism, TlsConfig};
use crate::core::transaction::ChainTag;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct E2eOptions {
    /// How long clients submit transfers.
    pub seconds: f64,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Concurrent HTTP clients.
    pub clients: usize,
    /// Transfers per HTTP request.
    pub batch: usize,
    /// Offered load in transfers per second over all clients; 0 submits as fast as the nodes
    /// accept.
    pub rate: f64,
    /// Difficulty of the benchmark chain.
    pub bits: u32,
    /// Block size bound of the benchmark chain.
    pub max_block_txs: usize,
    /// The directory of a secured cluster made by `scripts/kafka up --secure`: the nodes then
    /// connect over TLS and log in with SCRAM-SHA-512 as its `admin` (the one principal that may
    /// create the benchmark's fresh topics; the TLS and SASL work is the same as a node's).
    pub secure: Option<PathBuf>,
    /// Node 1 publishes the ledger stream (one confirmation), and the report gives its
    /// publishing lag (open cluster only).
    pub ledger: bool,
    /// How to run Kafka's own tools: with it, once the nodes stopped, the run measures Kafka's
    /// producer rate and end-to-end latency on the same broker and reports the ratios.
    pub kafka_tools: Option<Vec<String>>,
}

impl E2eOptions {
    /// Refuses a run without load time, a negative rate, and more clients than there are
    /// shares of the load accounts (each client signs from its own).
    fn check(&self) -> Result<(), E2eError> {
        if !(self.seconds > 0.0 && self.rate >= 0.0) {
            return Err(E2eError::Load);
        }
        if !(1..=LOAD_ACCOUNTS).contains(&self.clients) {
            return Err(E2eError::Clients);
        }
        if self.ledger && self.secure.is_some() {
            return Err(E2eError::LedgerSecured);
        }
        Ok(())
    }

    /// The offered rate, or `None` for as fast as the nodes accept.
    fn offered_rate(&self) -> Option<f64> {
        (self.rate > 0.0).then_some(self.rate)
    }
}

/// What was measured.
#[derive(Clone, Debug, Serialize)]
pub struct E2eReport {
    /// Seconds of load.
    pub seconds: f64,
    /// Transfers Kafka acknowledged (HTTP 201).
    pub accepted_txs: u64,
    /// Transfers in main-chain blocks applied by all three nodes.
    pub committed_txs: u64,
    /// Accepted transfers per second of load.
    pub accepted_tx_per_sec: f64,
    /// Committed transfers per second, from the first submission to the last commit.
    pub committed_tx_per_sec: f64,
    /// Main-chain blocks produced during the run.
    pub blocks: usize,
    /// Median block propagation (produced → applied on every node).
    pub propagation_p50_ms: u64,
    /// 99th percentile of block propagation.
    pub propagation_p99_ms: u64,
    /// Slowest block propagation.
    pub propagation_max_ms: u64,
    /// With the ledger stream: median time from a block applied on node 1 to its `connect`
    /// committed in the ledger topic.
    pub ledger_lag_p50_ms: Option<u64>,
    /// Its 99th percentile.
    pub ledger_lag_p99_ms: Option<u64>,
    /// Kafka's own producer rate and end-to-end latency, measured on the same broker right after.
    pub kafka: Option<KafkaBaseline>,
    /// Committed transfers per second against Kafka's producer records per second.
    pub throughput_ratio: Option<f64>,
    /// Block propagation p99 against Kafka's end-to-end p99.
    pub propagation_p99_ratio: Option<f64>,
    /// Where each node spent its time (from `/status`).
    pub busy_ms: BTreeMap<String, Value>,
    /// What each node refused, by reason (from `/status`): an accepted transfer that is not
    /// committed shows up here.
    pub rejected: BTreeMap<String, Value>,
}

/// The rates and propagation on one line, then where each node's time went and what each
/// refused, as JSON objects by node.
impl fmt::Display for E2eReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by_node = |map: &BTreeMap<String, Value>| map.clone().into_iter().collect::<Value>();
        writeln!(
            f,
            "{} committed tx/s ({} of {} accepted), {} blocks, propagation p50 {} ms, p99 {} ms, max {} ms",
            self.committed_tx_per_sec.round(),
            self.committed_txs,
            self.accepted_txs,
            self.blocks,
            self.propagation_p50_ms,
            self.propagation_p99_ms,
            self.propagation_max_ms
        )?;
        if let (Some(p50), Some(p99)) = (self.ledger_lag_p50_ms, self.ledger_lag_p99_ms) {
            writeln!(f, "ledger stream: publishing lag p50 {p50} ms, p99 {p99} ms")?;
        }
        if let (Some(kafka), Some(throughput), Some(latency)) =
            (&self.kafka, self.throughput_ratio, self.propagation_p99_ratio)
        {
            writeln!(
                f,
                "Kafka's own tools, same broker: ProducerPerformance {} records/s (200 B, acks=all, idempotent), \
                 EndToEndLatency p50 {} ms, p99 {} ms; committed tx/s {throughput:.3} of the producer's, \
                 propagation p99 {latency:.1}x Kafka's",
                kafka.producer_records_per_sec.round(),
                kafka.end_to_end_p50_ms,
                kafka.end_to_end_p99_ms,
            )?;
        }
        writeln!(f, "time spent (ms): {}", by_node(&self.busy_ms))?;
        write!(f, "rejected: {}", by_node(&self.rejected))
    }
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    /// Files or processes.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Kafka's own tools gave no figure to compare with.
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    /// A node or the network misbehaved; its log is kept in the run directory.
    #[error("{0} (logs in {1})")]
    Network(String, PathBuf),
    /// The load has no time, or a negative rate.
    #[error("--seconds must be positive and --rate not negative")]
    Load,
    /// The ledger stream asked for on the secured cluster, whose benchmark principal may not
    /// open transactions.
    #[error("--ledger runs on the open cluster only")]
    LedgerSecured,
    /// More clients than shares of the load accounts, or none.
    #[error("--clients must be 1 to {max} (each client signs from its own load accounts)", max = LOAD_ACCOUNTS)]
    Clients,
    /// The report could not be written as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Runs `bench-e2e` with this executable as the nodes, and prints the report, then as one JSON
/// line if `json`.
pub fn command(options: &E2eOptions, json: bool) -> Result<(), E2eError> {
    options.check()?;
    let report = run(&std::env::current_exe()?, options)?;
    Ok(super::print_report(&report, json)?)
}

/// Runs the benchmark with the `kafkachain` executable at `exe`, `options` already checked.
fn run(exe: &Path, options: &E2eOptions) -> Result<E2eReport, E2eError> {
    let prefix = unique_prefix("bench-e2e");
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir)?;
    let fail = |what: String| E2eError::Network(what, dir.clone());
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let mut spec = NodeSpec::new(&format!("n{i}"), &prefix, &options.brokers);
        spec.chain.bits = options.bits;
        spec.chain.max_block_txs = options.max_block_txs;
        spec.kafka.transaction_partitions = 6;
        // Each load account sends thousands of transfers a second: let them queue that deep.
        // And the default configuration otherwise: no transaction index.
        spec.storage.max_nonce_ahead = 1_000_000;
        spec.storage.tx_index = false;
        spec.ledger.enabled = options.ledger && i == 1;
        spec.ledger.confirmations = 1;
        if let Some(secure) = &options.secure {
            spec.kafka.tls = Some(TlsConfig { ca_file: Some(secure.join("ca.pem")), ..TlsConfig::default() });
            spec.kafka.sasl = Some(SaslConfig {
                mechanism: SaslMechanism::ScramSha512,
                username: "admin".into(),
                password_file: Some(secure.join("clients/admin.password")),
                password_env: None,
            });
        }
        let mut node = LocalNode::configure(exe, &dir, &spec)?;
        node.spawn()?;
        nodes.push(node);
    }
    for node in &nodes {
        if !node.wait_ready(Duration::from_secs(60)) {
            return Err(fail(format!("{} did not start", node.id)));
        }
    }

    // Signing is the clients' work, done before the clock starts: enough batches for the whole
    // run at the offered rate (or at 40,000 tx/s when unbounded).
    let per_client =
        options.offered_rate().unwrap_or(UNBOUNDED_SIGNING_RATE) * options.seconds / options.clients as f64;
    let batches_per_client = (per_client / options.batch as f64).ceil() as usize;
    let chain = ChainTag::of(&nodes[0].chain_id);
    let bodies: Vec<Vec<String>> = (0..options.clients)
        .into_par_iter()
        .map(|client| signed_batches(client, options.clients, chain, batches_per_client, options.batch))
        .collect();

    let load_start_ms = now_ms();
    let accepted = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let loading = AtomicBool::new(true);
    let deadline = Instant::now() + Duration::from_secs_f64(options.seconds);
    std::thread::scope(|s| {
        for (client, batches) in bodies.iter().enumerate() {
            let (node, accepted, failed) = (&nodes[client % nodes.len()], &accepted, &failed);
            let interval = options
                .offered_rate()
                .map(|rate| Duration::from_secs_f64(options.batch as f64 * options.clients as f64 / rate));
            let phase = interval.map_or(Duration::ZERO, |interval| client_phase(interval, client, options.clients));
            s.spawn(move || {
                let mut next_send = Instant::now() + phase;
                let mut next_batch = 0;
                while Instant::now() < deadline && next_batch < batches.len() {
                    if let Some(interval) = interval {
                        std::thread::sleep(next_send.saturating_duration_since(Instant::now()));
                        next_send += interval;
                    }
                    // A refused batch is sent again (its nonces must not be skipped).
                    match node.try_post("/transactions/batch", batches[next_batch].clone()) {
                        Some((201, _)) => {
                            next_batch += 1;
                            accepted.fetch_add(options.batch as u64, Ordering::Relaxed)
                        }
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
        let (miner, loading) = (&nodes[0], &loading);
        s.spawn(move || mine_while_pending(miner, loading, deadline));
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    });
    loading.store(false, Ordering::Relaxed);
    let accepted = accepted.into_inner();

    // Drain: keep mining until every mempool is empty and all nodes share one tip.
    let drained = poll_until(Duration::from_secs(180), || {
        let statuses: Vec<Value> = nodes.iter().filter_map(|n| n.try_get("/status").map(|(_, v)| v)).collect();
        if statuses.len() == nodes.len() && statuses.iter().any(|s| s["mempool"] != 0) {
            // Single-shot mining keeps going after the load stopped.
            let _ = nodes[0].try_get("/mine");
            return None;
        }
        let tips: Vec<&Value> = statuses.iter().map(|s| &s["tip"]).collect();
        (statuses.len() == nodes.len() && tips.iter().all(|t| *t == tips[0])).then_some(statuses)
    })
    .ok_or_else(|| fail("the nodes did not drain their mempools onto one tip within 180 s".into()))?;

    let chain = nodes[0].try_chain().ok_or_else(|| fail("could not read the chain".into()))?;
    let mut applied: HashMap<String, (Option<i64>, u64)> = HashMap::new();
    for node in &nodes {
        let (_, metrics) =
            node.try_get("/metrics/blocks?from=1").ok_or_else(|| fail(format!("{} metrics", node.id)))?;
        for block in metrics["blocks"].as_array().cloned().unwrap_or_default() {
            let hash = block["hash"].as_str().unwrap_or_default().to_owned();
            let entry = applied.entry(hash).or_insert((None, 0));
            entry.0 = entry.0.or(block["produced_ms"].as_i64());
            entry.1 = entry.1.max(block["applied_ms"].as_u64().unwrap_or(0));
        }
    }
    let mut committed = 0u64;
    let mut last_commit_ms = load_start_ms;
    let mut propagation: Vec<u64> = Vec::new();
    for block in chain.iter().skip(1) {
        let transfers = block["transactions"].as_array().map_or(0, |t| t.len().saturating_sub(1)) as u64;
        let Some((produced, applied_everywhere)) = block["hash"].as_str().and_then(|h| applied.get(h)) else {
            continue;
        };
        committed += transfers;
        if transfers > 0 {
            last_commit_ms = last_commit_ms.max(*applied_everywhere);
        }
        if let Some(produced) = produced {
            propagation.push(applied_everywhere.saturating_sub(*produced as u64));
        }
    }
    propagation.sort_unstable();
    let percentile = |p: f64| -> u64 {
        if propagation.is_empty() {
            return 0;
        }
        propagation[((propagation.len() as f64 - 1.0) * p).round() as usize]
    };
    // The stream publishes the last blocks a moment after they were applied.
    let ledger = match options.ledger {
        true => Some(
            poll_until(Duration::from_secs(60), || {
                let (_, status) = nodes[0].try_get("/status")?;
                (status["ledger"]["lag_blocks"] == 0).then(|| status["ledger"].clone())
            })
            .ok_or_else(|| fail("the ledger stream did not catch up within 60 s".into()))?,
        ),
        false => None,
    };
    let ledger_lag = |field: &str| ledger.as_ref().and_then(|ledger| ledger[field].as_u64());
    let busy_ms = nodes.iter().zip(&drained).map(|(n, s)| (n.id.clone(), s["busy_ms"].clone())).collect();
    let rejected = nodes.iter().zip(&drained).map(|(n, s)| (n.id.clone(), s["rejected"].clone())).collect();
    for node in &mut nodes {
        node.terminate()?;
    }
    std::fs::remove_dir_all(&dir)?;
    let commit_seconds = (last_commit_ms.saturating_sub(load_start_ms)) as f64 / 1000.0;
    let committed_tx_per_sec = if commit_seconds > 0.0 { committed as f64 / commit_seconds } else { 0.0 };
    let propagation_p99_ms = percentile(0.99);
    let kafka = match &options.kafka_tools {
        Some(command) => {
            let client_config = options.secure.as_ref().map(|secure| secure.join("clients/admin.java.properties"));
            let tools = KafkaTools { command: command.clone(), client_config };
            Some(tools.measure(&options.brokers, &prefix)?)
        }
        None => None,
    };
    let throughput_ratio = kafka.as_ref().map(|k| committed_tx_per_sec / k.producer_records_per_sec);
    let propagation_p99_ratio = kafka.as_ref().map(|k| propagation_p99_ms as f64 / k.end_to_end_p99_ms.max(1) as f64);
    Ok(E2eReport {
        seconds: options.seconds,
        accepted_txs: accepted,
        committed_txs: committed,
        accepted_tx_per_sec: accepted as f64 / options.seconds,
        committed_tx_per_sec,
        blocks: chain.len().saturating_sub(1),
        propagation_p50_ms: percentile(0.50),
        propagation_p99_ms,
        propagation_max_ms: propagation.last().copied().unwrap_or(0),
        ledger_lag_p50_ms: ledger_lag("publish_lag_p50_ms"),
        ledger_lag_p99_ms: ledger_lag("publish_lag_p99_ms"),
        kafka,
        throughput_ratio,
        propagation_p99_ratio,
        busy_ms,
        rejected,
    })
}

/// Mines on `miner` whenever its mempool is not empty, until the load ends.
fn mine_while_pending(miner: &LocalNode, loading: &AtomicBool, deadline: Instant) {
    while loading.load(Ordering::Relaxed) && Instant::now() < deadline {
        let pending = miner.try_get("/status").is_some_and(|(_, s)| s["mempool"].as_u64().unwrap_or(0) > 0);
        if pending {
            let _ = miner.try_get("/mine");
        } else {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// When, within each period of `interval`, client `client` of `clients` sends: the clients'
/// phases are spread evenly, so that together they offer an even rate. Clients in step sent
/// their batches at the same instant, and the network saw one burst of every client's batch
/// per period (600 transfers every 300 ms at 2,000 tx/s in batches of 100) instead.
fn client_phase(interval: Duration, client: usize, clients: usize) -> Duration {
    // Clients number at most LOAD_ACCOUNTS.
    interval * client as u32 / clients.max(1) as u32
}

/// Offered rate the signed load is sized for when `--rate 0` asks for as fast as possible.
const UNBOUNDED_SIGNING_RATE: f64 = 40_000.0;

/// The request bodies of client `client` (of `clients`): `count` batches of `batch` transfers.
fn signed_batches(client: usize, clients: usize, chain: ChainTag, count: usize, batch: usize) -> Vec<String> {
    let mut load = ClientLoad::new(client, clients, chain);
    (0..count).map(|_| load.next_body(batch)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_clients_send_at_evenly_spread_phases_of_their_period() {
        let period = Duration::from_millis(300);
        let phases: Vec<u128> = (0..6).map(|client| client_phase(period, client, 6).as_millis()).collect();
        assert_eq!(phases, [0, 50, 100, 150, 200, 250]);
        assert_eq!(client_phase(period, 0, 1), Duration::ZERO);
    }

    fn options(seconds: f64, rate: f64, clients: usize) -> E2eOptions {
        let brokers = "127.0.0.1:9092".to_owned();
        E2eOptions {
            seconds,
            brokers,
            clients,
            batch: 500,
            rate,
            bits: 8,
            max_block_txs: 5_000,
            secure: None,
            ledger: false,
            kafka_tools: None,
        }
    }

    #[test]
    fn options_without_load_time_with_a_negative_rate_or_too_many_clients_are_refused() {
        assert!(options(10.0, 0.0, 6).check().is_ok());
        assert_eq!(options(10.0, 0.0, 6).offered_rate(), None, "0 is as fast as the nodes accept");
        assert_eq!(options(10.0, 2e4, 6).offered_rate(), Some(2e4));
        for refused in [options(0.0, 1.0, 6), options(f64::NAN, 1.0, 6), options(1.0, -1.0, 6)] {
            assert!(matches!(refused.check(), Err(E2eError::Load)), "{refused:?}");
        }
        for clients in [0, LOAD_ACCOUNTS + 1] {
            let err = options(1.0, 1.0, clients).check().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("--clients must be 1 to {LOAD_ACCOUNTS} (each client signs from its own load accounts)")
            );
        }
    }

    #[test]
    fn the_report_prints_its_rates_then_each_nodes_time_and_refusals_as_json() {
        let by_node = |value: Value| BTreeMap::from([("n1".to_owned(), value.clone()), ("n2".to_owned(), value)]);
        let report = E2eReport {
            seconds: 10.0,
            accepted_txs: 200_000,
            committed_txs: 199_500,
            accepted_tx_per_sec: 20_000.0,
            committed_tx_per_sec: 18_136.4,
            blocks: 41,
            propagation_p50_ms: 35,
            propagation_p99_ms: 120,
            propagation_max_ms: 131,
            ledger_lag_p50_ms: None,
            ledger_lag_p99_ms: None,
            kafka: Some(KafkaBaseline {
                producer_records_per_sec: 90_700.4,
                end_to_end_p50_ms: 2,
                end_to_end_p99_ms: 8,
            }),
            throughput_ratio: Some(0.19996),
            propagation_p99_ratio: Some(15.0),
            busy_ms: by_node(json!({ "apply": 1200, "consume": 80 })),
            rejected: by_node(json!({})),
        };
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "18136 committed tx/s (199500 of 200000 accepted), 41 blocks, propagation p50 35 ms, p99 120 ms, \
                 max 131 ms",
                "Kafka's own tools, same broker: ProducerPerformance 90700 records/s (200 B, acks=all, idempotent), \
                 EndToEndLatency p50 2 ms, p99 8 ms; committed tx/s 0.200 of the producer's, propagation p99 15.0x \
                 Kafka's",
                "time spent (ms): {\"n1\":{\"apply\":1200,\"consume\":80},\"n2\":{\"apply\":1200,\"consume\":80}}",
                "rejected: {\"n1\":{},\"n2\":{}}",
            ]
        );
        assert!(text.ends_with("{}}"), "no line break after the last line: println adds it");
        assert_eq!(lines[2], format!("time spent (ms): {}", serde_json::to_string(&report.busy_ms).unwrap()));
    }
}
