//! `bench-sync`: the cost of starting a node. Loads a chain of N blocks straight into a fresh
//! blocks topic, then measures a new node's cold sync (blocks/s, resident memory after it) and
//! the time from process start to "caught up" for a restart with nothing new in the topic (it
//! must read zero messages, whatever N is). With the ledger stream on, it also measures how fast
//! the stream publishes the synced chain.

use super::cluster::LOAD_ACCOUNTS;
use super::cluster::{poll_until, unique_prefix, LocalNode, NodeSpec};
use super::load::{miner_address, LoadAccounts};
use crate::config::KafkaConfig;
use crate::core::block::{genesis, Block};
use crate::core::miner::{solved, Unsolved};
use crate::core::params::ChainParams;
use crate::core::transaction::Transaction;
use crate::kafka::{ensure_topics, Connection, KafkaError, PublishError, Publisher, SecurityError, TopicError, Topics};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What was measured.
#[derive(Clone, Debug, Serialize)]
pub struct SyncReport {
    /// Blocks in the topic.
    pub blocks: u64,
    /// Seconds to mine and produce them.
    pub load_secs: f64,
    /// Seconds from a new node's start until it had applied every block.
    pub cold_sync_secs: f64,
    /// Blocks applied per second during the cold sync.
    pub cold_sync_blocks_per_sec: f64,
    /// Resident memory of the node after the cold sync, MiB.
    pub rss_mib_after_sync: f64,
    /// Milliseconds from a restarted process's start until it reported caught up.
    pub restart_to_caught_up_ms: u64,
    /// SIGTERM → exit after the sync, the store's shutdown checkpoint included.
    pub stop_after_sync_ms: u64,
    /// Of the restart time, how long opening the store took (from the node's log).
    pub restart_store_open_ms: Option<u64>,
    /// Messages the restarted node read (must be 0).
    pub restart_consumed: u64,
    /// Where the syncing node's time went: its `/status` `busy_ms` at the end of the sync.
    pub sync_busy_ms: serde_json::Value,
    /// With the ledger stream: seconds from the node's start until every block's `connect` was
    /// committed to the ledger topic.
    pub ledger_secs: Option<f64>,
    /// With the ledger stream: events committed per second over that time.
    pub ledger_events_per_sec: Option<f64>,
    /// Bytes the node's data directory takes on disk once it stopped after the sync.
    pub store_bytes: u64,
    /// Of those, the block files' (the bodies); the rest is sled's.
    pub block_files_bytes: u64,
    /// Bytes the blocks topic takes in Kafka's log directory (when it was given), for the same
    /// blocks: the log the store copies.
    pub topic_bytes: Option<u64>,
}

impl SyncReport {
    /// The store's size against the blocks topic's: sled's space amplification over the log.
    pub fn space_amplification(&self) -> Option<f64> {
        self.topic_bytes.filter(|bytes| *bytes > 0).map(|topic| self.store_bytes as f64 / topic as f64)
    }
}

/// Every figure on one line; an unknown store-opening time shows as `?`.
impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} blocks: loaded in {:.1} s; cold sync {:.1} s ({:.0} blocks/s), {:.1} MiB resident after; \
             stopped in {} ms; restart caught up in {} ms (opening the store: {} ms) reading {} messages; \
             time of the sync by stage (ms): {}",
            self.blocks,
            self.load_secs,
            self.cold_sync_secs,
            self.cold_sync_blocks_per_sec,
            self.rss_mib_after_sync,
            self.stop_after_sync_ms,
            self.restart_to_caught_up_ms,
            self.restart_store_open_ms.map_or("?".to_owned(), |ms| ms.to_string()),
            self.restart_consumed,
            self.sync_busy_ms
        )?;
        if let (Some(secs), Some(rate)) = (self.ledger_secs, self.ledger_events_per_sec) {
            write!(f, "; ledger stream published in {secs:.1} s ({rate:.0} events/s)")?;
        }
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        write!(
            f,
            "; store {:.1} MiB on disk (block files {:.1} MiB, sled {:.1} MiB)",
            mib(self.store_bytes),
            mib(self.block_files_bytes),
            mib(self.store_bytes.saturating_sub(self.block_files_bytes))
        )?;
        if let (Some(topic), Some(ratio)) = (self.topic_bytes, self.space_amplification()) {
            write!(f, ", blocks topic {:.1} MiB in Kafka's log directory ({ratio:.2}x)", mib(topic))?;
        }
        Ok(())
    }
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Files or processes.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The benchmark's topics could not be created or checked.
    #[error("preparing the topics: {0}")]
    Topics(#[from] TopicError),
    /// The loader's producer could not be built.
    #[error("loading the chain: {0}")]
    Producer(#[from] KafkaError),
    /// The loader's connection settings cannot be used.
    #[error("loading the chain: {0}")]
    Connection(#[from] SecurityError),
    /// Kafka did not take a block of the chain.
    #[error("loading the chain: {0}")]
    Publish(#[from] PublishError),
    /// No nonce met the target of a block of the chain.
    #[error("mining the chain: {0}")]
    Unsolved(#[from] Unsolved),
    /// The node misbehaved; its log is kept.
    #[error("{0} (log in {1})")]
    Node(String, PathBuf),
    /// The report could not be written as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// What to run.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Blocks in the chain.
    pub blocks: u64,
    /// Whether the node publishes the ledger stream (one confirmation) during the sync.
    pub ledger: bool,
    /// The broker's log directory (`log.dirs`), to weigh the blocks topic against the store.
    pub kafka_log_dir: Option<PathBuf>,
}

/// Runs `bench-sync` with this executable as the node, and prints the report, then as one JSON
/// line if `json`.
pub fn command(options: &SyncOptions, json: bool) -> Result<(), SyncError> {
    let report = run(&std::env::current_exe()?, options)?;
    Ok(super::print_report(&report, json)?)
}

/// Runs the benchmark with the executable at `exe`.
pub fn run(exe: &Path, options: &SyncOptions) -> Result<SyncReport, SyncError> {
    let SyncOptions { brokers, blocks, ledger, .. } = options;
    let (brokers, blocks, ledger) = (brokers.as_str(), *blocks, *ledger);
    let prefix = unique_prefix("bench-sync");
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir)?;
    let mut spec = NodeSpec::new("syncer", &prefix, brokers);
    // One bit and no retargeting: every block inherits genesis's target, so the loader can
    // build the chain without a store.
    spec.chain.bits = 1;
    spec.chain.retarget_interval = 0;
    // The default configuration: no transaction index.
    spec.storage.tx_index = false;
    spec.ledger.enabled = ledger;
    spec.ledger.confirmations = 1;
    let params = spec.chain.clone();
    let load_secs = load_chain(&params, &prefix, brokers, blocks)?;

    let mut node = LocalNode::configure(exe, &dir, &spec)?;
    let fail = |what: &str| SyncError::Node(what.to_owned(), dir.clone());
    let started = Instant::now();
    node.spawn()?;
    let synced = poll_until(Duration::from_secs(3600), || {
        let (_, status) = node.try_get("/status")?;
        (status["blocks_next_offset"].as_u64()? >= blocks).then_some(status)
    });
    let sync_busy_ms = synced.ok_or_else(|| fail("the node did not sync"))?["busy_ms"].clone();
    let cold_sync_secs = started.elapsed().as_secs_f64();
    let rss_mib_after_sync = node.pid().map_or(0.0, resident_mib);
    // Genesis and every block loaded.
    let events = blocks + 1;
    let ledger_secs = match ledger {
        true => {
            poll_until(Duration::from_secs(3600), || {
                let (_, status) = node.try_get("/status")?;
                (status["ledger"]["next_seq"].as_u64()? >= events).then_some(())
            })
            .ok_or_else(|| fail("the ledger stream did not catch up"))?;
            Some(started.elapsed().as_secs_f64())
        }
        false => None,
    };
    let stopping = Instant::now();
    node.terminate()?;
    let stop_after_sync_ms = stopping.elapsed().as_millis() as u64;
    let store_bytes = super::disk::allocated_bytes(&node.data_dir)?;
    let block_files_bytes = super::disk::allocated_bytes(&node.data_dir.join(crate::store::BLOCK_FILES_DIR))?;
    let topic_bytes = match &options.kafka_log_dir {
        Some(log_dir) => Some(super::disk::allocated_bytes(&log_dir.join(format!("{prefix}.blocks-0")))?),
        None => None,
    };

    let started = Instant::now();
    node.spawn()?;
    let status = poll_until(Duration::from_secs(120), || {
        let (_, status) = node.try_get("/status")?;
        (status["caught_up"] == true).then_some(status)
    })
    .ok_or_else(|| fail("the restarted node did not catch up"))?;
    let restart_to_caught_up_ms = started.elapsed().as_millis() as u64;
    node.terminate()?;
    let restart_store_open_ms = last_store_open_ms(&node.log);
    std::fs::remove_dir_all(&dir)?;
    Ok(SyncReport {
        blocks,
        load_secs,
        cold_sync_secs,
        cold_sync_blocks_per_sec: blocks as f64 / cold_sync_secs,
        rss_mib_after_sync,
        restart_to_caught_up_ms,
        stop_after_sync_ms,
        restart_store_open_ms,
        sync_busy_ms,
        restart_consumed: status["consumed_since_start"].as_u64().unwrap_or(u64::MAX),
        ledger_secs,
        ledger_events_per_sec: ledger_secs.map(|secs| events as f64 / secs),
        store_bytes,
        block_files_bytes,
        topic_bytes,
    })
}

/// Mines `blocks` blocks (one transfer each) on the genesis of `params` and produces them.
fn load_chain(params: &ChainParams, prefix: &str, brokers: &str, blocks: u64) -> Result<f64, SyncError> {
    let started = Instant::now();
    let kafka = KafkaConfig { brokers: brokers.to_owned(), topic_prefix: prefix.to_owned(), ..KafkaConfig::default() };
    let kafka = Connection::new(&kafka)?;
    let topics = Topics::new(prefix);
    let runtime = tokio::runtime::Runtime::new()?;
    let health = std::sync::Arc::new(crate::kafka::BrokerHealth::default());
    runtime.block_on(ensure_topics(&kafka, &topics, "bench-sync", params.max_block_bytes, health.clone()))?;
    let publisher = Publisher::new(&kafka, topics, "bench-sync", health)?;
    let mut parent = genesis(params);
    let (chain, accounts, miner) = (params.chain_tag(), LoadAccounts::new(LOAD_ACCOUNTS), miner_address("loader"));
    for height in 1..=blocks {
        let txs = vec![
            Transaction::reward(miner, params.reward, height),
            Transaction::Transfer(accounts.transfer(chain, height - 1)),
        ];
        let (hash, header) = (parent.hash(), &parent.header);
        let block = solved(Block::candidate(chain, hash, header.height, header.bits, header.timestamp_ms + 1, txs))?;
        publisher.enqueue_block(&block)?;
        parent = block;
    }
    publisher.flush(Duration::from_secs(300))?;
    Ok(started.elapsed().as_secs_f64())
}

/// The `elapsed_ms` of the last "store opened" line in a node's log.
fn last_store_open_ms(log: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().rev().find(|line| line.contains("store opened"))?;
    let value = line.split("elapsed_ms=").nth(1)?;
    value.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Resident memory of process `pid` in MiB, from /proc (0 where unavailable).
fn resident_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_prints_on_one_line_with_an_unknown_store_opening_as_a_question_mark() {
        let mut report = SyncReport {
            blocks: 1_000,
            load_secs: 2.04,
            cold_sync_secs: 3.26,
            cold_sync_blocks_per_sec: 306.7,
            rss_mib_after_sync: 40.25,
            restart_to_caught_up_ms: 812,
            stop_after_sync_ms: 95,
            restart_store_open_ms: Some(31),
            restart_consumed: 0,
            sync_busy_ms: serde_json::json!({ "apply": 900 }),
            ledger_secs: None,
            ledger_events_per_sec: None,
            store_bytes: 3 * 1024 * 1024,
            block_files_bytes: 2 * 1024 * 1024,
            topic_bytes: None,
        };
        assert_eq!(
            report.to_string(),
            "1000 blocks: loaded in 2.0 s; cold sync 3.3 s (307 blocks/s), 40.2 MiB resident after; stopped in 95 ms; \
             restart caught up in 812 ms (opening the store: 31 ms) reading 0 messages; time of the sync by stage \
             (ms): {\"apply\":900}; store 3.0 MiB on disk (block files 2.0 MiB, sled 1.0 MiB)"
        );
        report.restart_store_open_ms = None;
        assert!(report.to_string().contains("(opening the store: ? ms)"), "{report}");
        (report.ledger_secs, report.ledger_events_per_sec) = (Some(3.5), Some(286.0));
        assert!(report.to_string().contains("; ledger stream published in 3.5 s (286 events/s);"), "{report}");
        report.topic_bytes = Some(2 * 1024 * 1024);
        assert_eq!(report.space_amplification(), Some(1.5));
        assert!(
            report
                .to_string()
                .ends_with("; store 3.0 MiB on disk (block files 2.0 MiB, sled 1.0 MiB), blocks topic 2.0 MiB in Kafka's log directory (1.50x)"),
            "{report}"
        );
    }
}
