//! Starting a node: the broker connection (retried while the brokers do not answer), the
//! topics, the store, and the applier, miner and lag threads.

use super::applier::{Applier, ApplierParts};
use super::error::StartError;
use super::events::ChainEvents;
use super::ledger::{LedgerProgress, LedgerPublisher};
use super::live::{self, FeedBounds, LiveFeed};
use super::mining::{Mining, OwnTransactions};
use super::stats::NodeStats;
use super::sync::PeerClient;
use super::{lag, verified, Inner, Node, Running, KERNEL_CALIBRATION};
use crate::config::{MiningMode, NodeConfig};
use crate::core::chain::ChainView;
use crate::core::miner::{KernelChoice, Miner};
use crate::kafka::{ensure_topics, BrokerHealth, Connection, LogReader, Publisher, TopicError, Topics, PROBE_BUDGET};
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Backoff between start attempts while the brokers do not answer: doubling up to this.
const START_RETRY_MAX: Duration = Duration::from_secs(5);

impl Node {
    /// Prepares the topics, waiting up to `kafka.start_timeout_ms` (with backoff, logged once)
    /// while the brokers do not answer: a first start beside a broker still starting is not
    /// a failure. Errors waiting cannot mend come back at once.
    async fn topics_when_brokers_answer(
        connection: &Connection,
        topics: &Topics,
        config: &NodeConfig,
        health: Arc<BrokerHealth>,
    ) -> Result<crate::kafka::TopicsReady, TopicError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(config.kafka.start_timeout_ms);
        let mut wait = Duration::from_millis(500);
        let mut logged = false;
        loop {
            let id = &config.node_id;
            match ensure_topics(connection, topics, id, config.chain.max_block_bytes, health.clone()).await {
                Err(e) if e.is_transient() && tokio::time::Instant::now() + wait < deadline => {
                    if !logged {
                        tracing::warn!(
                            "the brokers are not ready ({e}); retrying for up to {} s (kafka.start_timeout_ms)",
                            config.kafka.start_timeout_ms / 1000
                        );
                        logged = true;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(START_RETRY_MAX);
                }
                outcome => return outcome,
            }
        }
    }

    /// Opens the store, prepares the topics, and starts the applier and the miner.
    pub async fn start(config: NodeConfig) -> Result<(Node, Running), StartError> {
        let miner_address = config.mining.address.ok_or(StartError::NoMinerAddress)?;
        let connection = Connection::new(&config.kafka)?;
        let probing = connection.clone();
        let client_id = config.node_id.clone();
        tokio::task::spawn_blocking(move || crate::kafka::probe(&probing, &client_id, PROBE_BUDGET))
            .await
            .map_err(|e| StartError::Thread(std::io::Error::other(e)))??;
        let opening = std::time::Instant::now();
        let store = Store::open(&config.data_dir, &config.chain, config.storage.cache_bytes)?;
        tracing::info!(elapsed_ms = opening.elapsed().as_millis() as u64, "store opened");
        if store.tx_index_kept() != config.storage.tx_index {
            let changing = std::time::Instant::now();
            store.set_tx_index(config.storage.tx_index)?;
            tracing::info!(
                on = config.storage.tx_index,
                elapsed_ms = changing.elapsed().as_millis() as u64,
                "transaction index switched (storage.tx_index)"
            );
        }
        if config.ledger.enabled {
            store.keep_recent_blocks(crate::store::RECENT_BLOCKS_BYTES);
        }
        let topics = Topics::new(&config.kafka.topic_prefix);
        let health = Arc::new(BrokerHealth::default());
        let ready = Self::topics_when_brokers_answer(&connection, &topics, &config, health.clone()).await?;
        for warning in &ready.warnings {
            tracing::warn!(warning = warning.label(), "{warning}");
        }
        let tx_partitions = ready.tx_partitions;
        let start_offsets = store.offsets()?;
        let reader = LogReader::open(
            &connection,
            topics.clone(),
            tx_partitions,
            &config.node_id,
            &start_offsets,
            health.clone(),
        )?;
        let blocks_end_at_start = reader.blocks_high_watermark(Duration::from_secs(30))?;
        let blocks_partition = reader.blocks_partition();
        let end_offsets = reader.end_offsets();
        tracing::info!(
            node_id = config.node_id,
            height = store.tip()?.height,
            blocks_next_offset = start_offsets.get(&blocks_partition).copied().unwrap_or(0),
            blocks_end = blocks_end_at_start,
            "node starting"
        );
        let publisher = Publisher::new(&connection, topics.clone(), &config.node_id, health.clone())?;
        let broker_health = health;
        let kernel = KernelChoice::parse(&config.mining.kernel)?.resolve(KERNEL_CALIBRATION);
        tracing::info!(kernel = kernel.name(), chosen_by = %config.mining.kernel, "mining kernel");
        let miner = Arc::new(Miner::new(config.mining.threads, kernel, config.mining.priority)?);
        let stats = Arc::new(NodeStats::default());
        let events = Arc::new(ChainEvents::new(store.tip()?));
        let verified = Arc::new(verified::VerifiedIds::default());
        let (mine_tx, mine_rx) = mpsc::channel(64);
        let own_transactions = Arc::new(OwnTransactions::default());
        let shutdown = CancellationToken::new();

        let parts = ApplierParts {
            store: store.clone(),
            reader,
            stats: stats.clone(),
            events: events.clone(),
            start_offsets: start_offsets.clone(),
            blocks_end_at_start,
            blocks_partition: blocks_partition.clone(),
            mempool_limits: config.mempool_limits(),
            verified: verified.clone(),
            shutdown: shutdown.clone(),
        };
        let peer_client = PeerClient::new(config.peers.clone())?;
        let submit_verifier = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(config.http.verify_threads)
                .thread_name(|i| format!("submit-verify-{i}"))
                .build()?,
        );
        let (applier, applier_handle) = Applier::spawn(parts, tokio::runtime::Handle::current())?;
        let ledger = match config.ledger.enabled {
            true => {
                let progress = Arc::new(LedgerProgress::default());
                let publisher = LedgerPublisher {
                    store: store.clone(),
                    connection: Connection::new(&config.ledger_kafka())?,
                    topic: topics.ledger.clone(),
                    transactional_id: config.ledger_transactional_id(),
                    client_id: format!("{}-ledger", config.node_id),
                    config: config.ledger.clone(),
                    tips: events.watch_tip(),
                    progress: progress.clone(),
                    stats: stats.clone(),
                    shutdown: shutdown.clone(),
                    runtime: tokio::runtime::Handle::current(),
                };
                Some((progress, publisher.spawn()?))
            }
            false => None,
        };
        let (ledger, ledger_thread) = ledger.unzip();
        let start_tip = store.tip()?;
        let bounds = FeedBounds {
            events: config.http.events_history,
            bytes: config.http.events_history_bytes,
            subscribers: config.http.max_event_subscribers,
        };
        let live = Arc::new(LiveFeed::new(&start_tip, bounds));
        let following = tokio::spawn(live::follow(
            live.clone(),
            store.clone(),
            start_tip,
            events.watch_tip(),
            applier_handle.watch(),
            shutdown.clone(),
        ));
        let partition_ends = Arc::new(lag::PartitionEnds::default());
        let refresher = {
            let (ends, shutdown) = (partition_ends.clone(), shutdown.clone());
            std::thread::Builder::new()
                .name("partition-ends".into())
                .spawn(move || lag::keep_fresh(end_offsets, &ends, &shutdown))?
        };
        let node = Node {
            inner: Arc::new(Inner {
                verified,
                config,
                store,
                publisher,
                miner,
                stats,
                events,
                mine_requests: mine_tx,
                start_offsets,
                topic_warnings: ready.warnings,
                blocks_partition,
                peer_client,
                submit_verifier,
                health: broker_health,
                applier: applier_handle.clone(),
                ledger,
                live,
                partition_ends,
                resolving: tokio::sync::Mutex::new(()),
                publishing: Default::default(),
                own_transactions: own_transactions.clone(),
            }),
        };
        let mining = Mining {
            store: node.inner.store.clone(),
            publisher: node.inner.publisher.clone(),
            miner: node.inner.miner.clone(),
            address: miner_address,
            stats: node.inner.stats.clone(),
            applier: applier_handle,
            events: node.inner.events.clone(),
            own_transactions,
            continuous: node.inner.config.mining.mode == MiningMode::Continuous,
            shutdown: shutdown.clone(),
        };
        let miner = tokio::spawn(mining.run(mine_rx));
        Ok((
            node,
            Running { applier, miner, partition_ends: refresher, ledger: ledger_thread, live: following, shutdown },
        ))
    }
}
