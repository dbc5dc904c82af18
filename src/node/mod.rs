//! The node: wires the store, the Kafka transport and the miner together. One applier thread
//! consumes both topics into the store; a tokio task mines; the HTTP API calls the methods here.

pub mod applier;
pub mod mining;
pub mod stats;

use crate::config::{MiningMode, NodeConfig};
use crate::core::block::Block;
use crate::core::chain::{ChainView, Outcome, Tip};
use crate::core::hash::TxId;
use crate::core::memory::MemoryChain;
use crate::core::miner::{Miner, MinerPoolError};
use crate::core::transaction::{Transaction, TxError};
use crate::kafka::{ensure_topics, KafkaError, LogReader, PublishError, Publisher, TopicError, Topics};
use crate::store::{Store, StoreError};
use applier::{Applier, BlockEvent};
use mining::{MineRequest, MinedBlock};
use stats::{NodeStats, StatsSnapshot};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Failures of node operations, as the API reports them.
#[derive(Clone, Debug, thiserror::Error)]
pub enum NodeError {
    /// The store failed.
    #[error("storage: {0}")]
    Store(String),
    /// Kafka did not acknowledge a publish.
    #[error("{0}")]
    Publish(String),
    /// A submitted transaction breaks the transaction rules.
    #[error("invalid transaction: {0}")]
    InvalidTransaction(#[from] TxError),
    /// A peer's chain was not valid.
    #[error("{0}")]
    InvalidPeerChain(String),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// Something that should not happen.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> Self {
        NodeError::Store(e.to_string())
    }
}

impl From<PublishError> for NodeError {
    fn from(e: PublishError) -> Self {
        NodeError::Publish(e.to_string())
    }
}

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened.
    #[error("opening the store: {0}")]
    Store(#[from] StoreError),
    /// The topics are unusable.
    #[error("preparing the topics: {0}")]
    Topics(#[from] TopicError),
    /// A Kafka client could not be created.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// The mining pool could not be created.
    #[error(transparent)]
    Miner(#[from] MinerPoolError),
    /// The applier thread could not be spawned.
    #[error("starting the applier thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A transfer a client asks for; the node adds the nonce.
#[derive(Clone, Debug)]
pub struct NewTransfer {
    /// Paying address.
    pub sender: String,
    /// Receiving address.
    pub recipient: String,
    /// Amount in the smallest unit.
    pub amount: u64,
}

/// A handle to the running node; cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    config: NodeConfig,
    store: Store,
    publisher: Publisher,
    miner: Arc<Miner>,
    miner_address: String,
    stats: Arc<NodeStats>,
    events: broadcast::Sender<BlockEvent>,
    tip: watch::Receiver<Tip>,
    mine_requests: mpsc::Sender<MineRequest>,
    start_offsets: BTreeMap<String, u64>,
    blocks_offset_key: String,
    /// For each transactions partition, the offset after the last transaction this node
    /// published: a block mined on demand waits until the applier has read that far, so a
    /// client that submits and then mines finds its transaction in the block.
    published_until: std::sync::Mutex<BTreeMap<String, u64>>,
}

/// The node's background work, joined at shutdown.
pub struct Running {
    applier: std::thread::JoinHandle<()>,
    miner: tokio::task::JoinHandle<()>,
    shutdown: CancellationToken,
}

impl Running {
    /// The token that stops the node; the HTTP server shuts down on it too.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops mining, lets the applier finish the message in hand, and flushes the store.
    pub async fn stop(self) {
        self.shutdown.cancel();
        if let Err(e) = self.miner.await {
            tracing::error!("mining task ended badly: {e}");
        }
        let applier = self.applier;
        match tokio::task::spawn_blocking(move || applier.join()).await {
            Ok(Ok(())) => {}
            _ => tracing::error!("the applier thread panicked"),
        }
    }
}

/// What `GET /status` shows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Status {
    /// This node's id.
    pub node_id: String,
    /// Chain id.
    pub chain_id: String,
    /// Height of the tip.
    pub height: u64,
    /// Hash of the tip, hex.
    pub tip: String,
    /// Next offset to read on the blocks topic.
    pub blocks_next_offset: u64,
    /// Offsets stored when this process started.
    pub start_offsets: BTreeMap<String, u64>,
    /// Offsets stored now.
    pub next_offsets: BTreeMap<String, u64>,
    /// Transactions waiting in the mempool.
    pub mempool: u64,
    /// Blocks waiting for their parent.
    pub orphans: usize,
    /// Mining mode.
    pub mining: &'static str,
    /// Counters since start.
    #[serde(flatten)]
    pub stats: StatsSnapshot,
}

impl Node {
    /// Opens the store, prepares the topics, and starts the applier and the miner.
    pub async fn start(config: NodeConfig) -> Result<(Node, Running), StartError> {
        let opening = std::time::Instant::now();
        let store = Store::open(&config.data_dir, &config.chain, config.storage.cache_bytes)?;
        tracing::info!(elapsed_ms = opening.elapsed().as_millis() as u64, "store opened");
        let topics = Topics::new(&config.kafka.topic_prefix);
        let tx_partitions = ensure_topics(&config.kafka, &topics, &config.node_id).await?;
        let start_offsets: BTreeMap<String, u64> = store.offsets()?.into_iter().collect();
        let reader = LogReader::open(&config.kafka, topics.clone(), tx_partitions, &config.node_id, |key| {
            start_offsets.get(key).copied()
        })?;
        let blocks_end_at_start = reader.blocks_high_watermark(Duration::from_secs(30))?;
        let blocks_offset_key = reader.blocks_offset_key();
        tracing::info!(
            node_id = config.node_id,
            height = store.tip()?.height,
            blocks_next_offset = start_offsets.get(&blocks_offset_key).copied().unwrap_or(0),
            blocks_end = blocks_end_at_start,
            "node starting"
        );
        let publisher = Publisher::new(&config.kafka, topics, &config.node_id)?;
        let miner = Arc::new(Miner::new(config.mining.threads)?);
        let stats = Arc::new(NodeStats::default());
        let (events, _) = broadcast::channel(1024);
        let (tip_tx, tip_rx) = watch::channel(store.tip()?);
        let (mine_tx, mine_rx) = mpsc::channel(64);
        let shutdown = CancellationToken::new();

        let applier = Applier {
            store: store.clone(),
            reader,
            stats: stats.clone(),
            events: events.clone(),
            tip: tip_tx,
            start_offsets: start_offsets.clone(),
            blocks_end_at_start,
            blocks_offset_key: blocks_offset_key.clone(),
            max_mempool: config.storage.max_mempool,
            shutdown: shutdown.clone(),
        };
        let applier = std::thread::Builder::new().name("applier".into()).spawn(move || applier.run())?;
        let node = Node {
            inner: Arc::new(Inner {
                miner_address: config.miner_address().to_owned(),
                config,
                store,
                publisher,
                miner,
                stats,
                events,
                tip: tip_rx,
                mine_requests: mine_tx,
                start_offsets,
                blocks_offset_key,
                published_until: Default::default(),
            }),
        };
        let continuous = node.inner.config.mining.mode == MiningMode::Continuous;
        let miner = tokio::spawn(mining::run(node.clone(), mine_rx, continuous, shutdown.clone()));
        Ok((node, Running { applier, miner, shutdown }))
    }

    /// Publishes new transfers (each with a fresh random nonce) and returns once Kafka
    /// acknowledged all of them, with their ids and the height of the block they are expected
    /// in. Nothing is published unless every transfer is well formed.
    pub async fn submit_transactions(&self, transfers: Vec<NewTransfer>) -> Result<(Vec<TxId>, u64), NodeError> {
        let txs: Vec<Transaction> = transfers
            .into_iter()
            .map(|t| Transaction { sender: t.sender, recipient: t.recipient, amount: t.amount, nonce: rand::random() })
            .collect();
        for tx in &txs {
            tx.check_transfer()?;
        }
        let publisher = &self.inner.publisher;
        let acks = futures_util::future::join_all(txs.iter().map(|tx| publisher.publish_transaction(tx))).await;
        let mut published = self.inner.published_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut first_error = None;
        for ack in acks {
            match ack {
                Ok(acked) => {
                    let until = published.entry(acked.offset_key).or_default();
                    *until = (*until).max(acked.offset + 1);
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        drop(published);
        if let Some(e) = first_error {
            return Err(e.into());
        }
        Ok((txs.iter().map(Transaction::id).collect(), self.inner.store.tip()?.height + 1))
    }

    /// Waits (up to `limit`) until the applier has read every transaction this node published.
    pub(crate) async fn wait_own_transactions_read(&self, limit: Duration) -> Result<(), NodeError> {
        let wanted = self.inner.published_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let deadline = tokio::time::Instant::now() + limit;
        for (key, until) in wanted {
            while self.inner.store.offset(&key)?.unwrap_or(0) < until {
                if tokio::time::Instant::now() >= deadline {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(())
    }

    /// Mines one block and returns it once it has been read back from the topic and applied.
    pub async fn mine(&self) -> Result<MinedBlock, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.inner.mine_requests.send(reply).await.map_err(|_| NodeError::ShuttingDown)?;
        answer.await.map_err(|_| NodeError::ShuttingDown)?
    }

    /// Main-chain blocks from height `from`, at most `limit`, and the chain's length.
    pub fn chain(&self, from: u64, limit: usize) -> Result<(Vec<Block>, u64), NodeError> {
        let store = &self.inner.store;
        let length = store.tip()?.height + 1;
        Ok((store.main_blocks(from, limit)?, length))
    }

    /// Status for operators.
    pub fn status(&self) -> Result<Status, NodeError> {
        let store = &self.inner.store;
        let tip = store.tip()?;
        let next_offsets: BTreeMap<String, u64> = store.offsets()?.into_iter().collect();
        Ok(Status {
            node_id: self.inner.config.node_id.clone(),
            chain_id: store.params().chain_id.clone(),
            height: tip.height,
            tip: tip.hash.to_hex(),
            blocks_next_offset: next_offsets.get(&self.inner.blocks_offset_key).copied().unwrap_or(0),
            start_offsets: self.inner.start_offsets.clone(),
            next_offsets,
            mempool: store.mempool_len()?,
            orphans: store.orphan_count(),
            mining: match self.inner.config.mining.mode {
                MiningMode::OnDemand => "on-demand",
                MiningMode::Continuous => "continuous",
            },
            stats: self.inner.stats.snapshot(),
        })
    }

    /// Blocks applied since start at `from_height` or above (the most recent ones), with their
    /// produced and applied times.
    pub fn recent_blocks(&self, from_height: u64) -> Vec<stats::AppliedBlock> {
        self.inner.stats.recent_blocks(from_height)
    }

    /// Remembers peers for `/nodes/resolve`; returns them all.
    pub fn register_peers(&self, urls: &[String]) -> Result<Vec<String>, NodeError> {
        for url in urls {
            self.inner.store.add_peer(url)?;
        }
        Ok(self.inner.store.peers()?)
    }

    /// The registered peers.
    pub fn peers(&self) -> Result<Vec<String>, NodeError> {
        Ok(self.inner.store.peers()?)
    }

    /// Validates a peer's whole chain (genesis first) exactly as blocks from the topic are
    /// validated, and adopts it when it carries more work than ours. Returns whether it did.
    pub fn adopt_chain(&self, chain: Vec<Block>) -> Result<bool, NodeError> {
        let params = self.inner.store.params().clone();
        let mut check = MemoryChain::new(params);
        let mut blocks = chain.into_iter();
        match blocks.next() {
            Some(first) if first.hash() == check.tip_info().hash => {}
            _ => return Err(NodeError::InvalidPeerChain("the chain does not start at our genesis".into())),
        }
        let blocks: Vec<Block> = blocks.collect();
        for block in &blocks {
            match check.apply(block.clone()).as_slice() {
                [Outcome::Stored { tip_moved: true, .. }] => {}
                other => {
                    return Err(NodeError::InvalidPeerChain(format!(
                        "block at height {} was not accepted: {other:?}",
                        block.header.height
                    )))
                }
            }
        }
        if check.tip_info().cumulative_work <= self.inner.store.tip()?.cumulative_work {
            return Ok(false);
        }
        for block in blocks {
            let outcomes = self.inner.store.apply_block(block, &[])?;
            for outcome in &outcomes {
                if let Outcome::Stored { hash, height, tip_moved, .. } = outcome {
                    let _ = self.inner.events.send(BlockEvent::Stored { hash: *hash, height: *height, tip_moved: *tip_moved });
                }
            }
        }
        Ok(true)
    }
}
