//! The node: wires the store, the Kafka transport and the miner together. One applier thread
//! consumes both topics into the store; a tokio task mines; the HTTP API calls the methods here.

mod applier;
mod events;
mod gap;
mod halt;
pub mod lag;
mod mining;
pub mod readings;
mod stats;
mod sync;
mod verified;

use crate::config::{MiningMode, NodeConfig};
use crate::core::account::{Account, Address};
use crate::core::admission::{self, Pending, Refusal};
use crate::core::block::Block;
use crate::core::chain::{network_hash_rate, next_bits, ChainView};
use crate::core::hash::BlockHash;
use crate::core::hash::TxId;
use crate::core::miner::{KernelChoice, Miner, MinerPoolError, UnknownKernel};
use crate::core::pow::Target;
use crate::core::transaction::{signature_verdicts, ChainTag, Transaction, Transfer};
use crate::kafka::{
    ensure_topics, BrokerHealth, Connection, KafkaError, LogReader, ProbeError, PublishError, Publisher, SecurityError,
    SettingWarning, TopicError, Topics, PROBE_BUDGET,
};
use crate::store::{Positions, Store, StoreError, TopicPartition};
use applier::Applier;
use events::ChainEvents;
use gap::RetentionGap;
pub use halt::HaltReason;
use mining::{MineRequest, MinedBlock, Mining, OwnTransactions};
use stats::{NodeStats, StatsSnapshot};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use sync::{PeerAddressError, PeerBranch, PeerClient, PeerVerdict};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Failures of node operations, as the API reports them.
#[derive(Clone, Debug, thiserror::Error)]
pub enum NodeError {
    /// The store failed (shared, so the error stays `Clone` with its source).
    #[error("storage: {0}")]
    Store(#[source] Arc<StoreError>),
    /// Kafka did not acknowledge a publish.
    #[error(transparent)]
    Publish(Arc<PublishError>),
    /// A submitted transfer (at `index` in the request) was refused by the admission rules;
    /// nothing was published.
    #[error("transaction {index}: {refusal}")]
    Refused {
        /// The transfer's place in the request.
        index: usize,
        /// Why it was refused.
        refusal: Refusal,
    },
    /// A peer address was refused.
    #[error(transparent)]
    InvalidPeer(#[from] PeerAddressError),
    /// Registering would exceed `peers.max_peers`.
    #[error("at most {0} peers can be registered (peers.max_peers)")]
    TooManyPeers(usize),
    /// A bootstrap could not be done.
    #[error("bootstrap: {0}")]
    Bootstrap(&'static str),
    /// An operation that runs one at a time is already running.
    #[error("{0} is already running; try again when it is done")]
    Busy(&'static str),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The node stopped applying the topics; it takes no writes and mines nothing until an
    /// operator acts.
    #[error("the node has halted and accepts no writes: {0}")]
    Halted(HaltReason),
    /// A task the operation ran on failed (panicked or was cancelled).
    #[error("{what}: {source}")]
    TaskFailed {
        /// What the task was doing.
        what: &'static str,
        /// Why it ended.
        #[source]
        source: Arc<tokio::task::JoinError>,
    },
    /// The candidate built on the tip carries bits that are no target (the stored tip's
    /// target is damaged).
    #[error("the candidate's bits are no target: {0}")]
    Candidate(#[from] crate::core::pow::CompactError),
    /// Our mined block was published but did not come back from the topic in time.
    #[error("block {hash} was published but not read back within {waited:?}")]
    NotReadBack {
        /// The block.
        hash: crate::core::hash::BlockHash,
        /// How long the miner waited.
        waited: Duration,
    },
}

impl NodeError {
    /// The error for a task of `what` that failed.
    pub(crate) fn task(what: &'static str) -> impl FnOnce(tokio::task::JoinError) -> NodeError {
        move |source| NodeError::TaskFailed { what, source: Arc::new(source) }
    }
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> Self {
        NodeError::Store(Arc::new(e))
    }
}

impl From<PublishError> for NodeError {
    fn from(e: PublishError) -> Self {
        NodeError::Publish(Arc::new(e))
    }
}

/// A stored block and where it stands.
#[derive(Clone, Debug)]
pub struct StoredBlock {
    /// Its hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u64,
    /// Whether it is on the main chain (else on a side branch).
    pub main_chain: bool,
    /// The block.
    pub block: Block,
}

/// What the mempool holds.
#[derive(Clone, Debug)]
pub struct MempoolView {
    /// Transfers waiting.
    pub size: u64,
    /// Their encoded size, in bytes.
    pub bytes: u64,
    /// The oldest of them, oldest first.
    pub oldest: Vec<Transfer>,
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
    /// The TLS or SASL settings cannot be used.
    #[error(transparent)]
    KafkaSecurity(#[from] SecurityError),
    /// The brokers refuse this configuration (a login, a certificate, a protocol).
    #[error(transparent)]
    KafkaRefused(#[from] ProbeError),
    /// The mining pool could not be created.
    #[error(transparent)]
    Miner(#[from] MinerPoolError),
    /// The applier thread could not be spawned.
    #[error("starting the applier thread: {0}")]
    Thread(#[from] std::io::Error),
    /// `mining.address` is not set.
    #[error("mining.address is not set")]
    NoMinerAddress,
    /// `mining.kernel` names no kernel this CPU runs.
    #[error("mining.kernel: {0}")]
    Kernel(#[from] UnknownKernel),
    /// The HTTP client for peers could not be built.
    #[error("building the peer client: {0}")]
    PeerClient(#[from] reqwest::Error),
    /// The pool verifying submitted transfers could not be built.
    #[error("building the pool of http.verify_threads threads: {0}")]
    VerifyPool(#[from] rayon::ThreadPoolBuildError),
}

/// Why the node should not be sent traffic yet (`GET /health/ready`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The applier stopped; an operator must act.
    #[error("halted: {0}")]
    Halted(HaltReason),
    /// The Kafka brokers did not answer the last request.
    #[error("the Kafka brokers are unreachable")]
    BrokersUnreachable,
    /// The store is still behind the end the blocks topic had at start.
    #[error("still catching up with the blocks topic")]
    CatchingUp,
}

impl NotReady {
    /// Its short label: the halt's, `brokers_unreachable` or `catching_up`.
    pub fn label(&self) -> &'static str {
        match self {
            NotReady::Halted(why) => why.label(),
            NotReady::BrokersUnreachable => "brokers_unreachable",
            NotReady::CatchingUp => "catching_up",
        }
    }
}

/// Where a transaction stands.
#[derive(Clone, Debug)]
pub enum TxStatus {
    /// Waiting in the mempool.
    Pending(Transfer),
    /// In the main-chain block at `height`.
    Confirmed {
        /// The block's height.
        height: u64,
        /// The block's hash.
        block_hash: BlockHash,
        /// The transaction as the block holds it.
        transaction: Transaction,
    },
    /// Neither pending nor in the main chain.
    Unknown,
    /// Not pending; whether it is confirmed is unknown, since this node keeps no transaction
    /// index (`storage.tx_index`).
    NotIndexed,
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
    verified: Arc<verified::VerifiedIds>,
    stats: Arc<NodeStats>,
    events: Arc<ChainEvents>,
    mine_requests: mpsc::Sender<MineRequest>,
    start_offsets: Positions,
    blocks_partition: TopicPartition,
    peer_client: PeerClient,
    /// Verifies the signatures of transfers submitted over HTTP (`http.verify_threads`).
    submit_verifier: Arc<rayon::ThreadPool>,
    health: Arc<BrokerHealth>,
    /// Topic settings found at start that a production network should not run with.
    topic_warnings: Vec<SettingWarning>,
    gap: Arc<RetentionGap>,
    /// The ends of the partitions the node reads, kept fresh for consumer lag.
    partition_ends: Arc<lag::PartitionEnds>,
    /// Transfers accepted over HTTP and not yet acknowledged by Kafka.
    publishing: std::sync::atomic::AtomicU64,
    /// Held while a resolve runs: one at a time, so a burst of calls costs one fetch per peer.
    resolving: tokio::sync::Mutex<()>,
    /// Transactions this node published, which a block mined on demand waits to have read.
    own_transactions: Arc<OwnTransactions>,
}

/// The node's background work, joined at shutdown.
pub struct Running {
    applier: std::thread::JoinHandle<()>,
    miner: tokio::task::JoinHandle<()>,
    partition_ends: std::thread::JoinHandle<()>,
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
        for (name, thread) in [("applier", self.applier), ("partition ends", self.partition_ends)] {
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(())) => {}
                _ => tracing::error!("the {name} thread panicked"),
            }
        }
    }
}

/// Main-chain blocks the network hash rate of `/status` is estimated over.
pub const NETWORK_RATE_WINDOW: u64 = 32;

/// What `GET /status` shows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Status {
    /// This node's id.
    pub node_id: String,
    /// Chain id.
    pub chain_id: String,
    /// Hash of the genesis block, which commits to every chain parameter: nodes that can share
    /// blocks show the same one.
    pub genesis: BlockHash,
    /// Height of the tip.
    pub height: u64,
    /// Hash of the tip.
    pub tip: BlockHash,
    /// Next offset to read on the blocks topic.
    pub blocks_next_offset: u64,
    /// Offsets stored when this process started.
    pub start_offsets: Positions,
    /// Offsets stored now.
    pub next_offsets: Positions,
    /// Transactions waiting in the mempool.
    pub mempool: u64,
    /// Blocks waiting for their parent.
    pub orphans: usize,
    /// Mining mode.
    pub mining: MiningMode,
    /// The nonce-search kernel (`mining.kernel`, or the fastest one timed at start) and threads.
    pub mining_kernel: String,
    /// Threads the miner searches on.
    pub mining_threads: usize,
    /// Nonces this node's miner tried since start.
    pub hashes_since_start: u64,
    /// This node's hash rate while searching: nonces tried per second of search time (0 before
    /// its first search). `bench-pow` at the same thread count is the yardstick.
    pub hash_rate: f64,
    /// Compact target the next block on the tip must carry (shown as 8 hex digits).
    #[serde(serialize_with = "Target::serialize_compact_hex")]
    pub next_bits: u32,
    /// That target in full (shown as 64 hex digits).
    pub target: Target,
    /// Its difficulty in leading zero bits (log2 of the expected hashes per block; fractional).
    pub difficulty_bits: f64,
    /// The network's hash rate estimated from the work and timestamps of the last
    /// [`NETWORK_RATE_WINDOW`] main-chain blocks.
    pub network_hash_rate: f64,
    /// Whether the Kafka brokers answered since the last failure.
    pub kafka_reachable: bool,
    /// Topic settings found at start that a production network should not run with.
    pub topic_warnings: Vec<TopicWarningStatus>,
    /// Counters since start.
    #[serde(flatten)]
    pub stats: StatsSnapshot,
}

/// Backoff between start attempts while the brokers do not answer: doubling up to this.
const START_RETRY_MAX: Duration = Duration::from_secs(5);

/// A topic setting warned about, as `/status` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TopicWarningStatus {
    /// Its label (also the `warning` label of `/metrics`).
    pub warning: &'static str,
    /// The topic.
    pub topic: String,
    /// What it risks, for people.
    pub message: String,
}

impl From<&SettingWarning> for TopicWarningStatus {
    fn from(warning: &SettingWarning) -> Self {
        Self { warning: warning.label(), topic: warning.topic().to_owned(), message: warning.to_string() }
    }
}

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
        let publisher = Publisher::new(&connection, topics, &config.node_id, health.clone())?;
        let broker_health = health;
        let kernel = KernelChoice::parse(&config.mining.kernel)?.resolve(KERNEL_CALIBRATION);
        tracing::info!(kernel = kernel.name(), chosen_by = %config.mining.kernel, "mining kernel");
        let miner = Arc::new(Miner::new(config.mining.threads, kernel)?);
        let stats = Arc::new(NodeStats::default());
        let events = Arc::new(ChainEvents::new(store.tip()?));
        let gap = Arc::new(RetentionGap::default());
        let verified = Arc::new(verified::VerifiedIds::default());
        let (mine_tx, mine_rx) = mpsc::channel(64);
        let own_transactions = Arc::new(OwnTransactions::default());
        let shutdown = CancellationToken::new();

        let applier = Applier {
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
            last_committed: Default::default(),
            read_error: Default::default(),
            gap: gap.clone(),
        };
        let peer_client = PeerClient::new(config.peers.clone())?;
        let submit_verifier = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(config.http.verify_threads)
                .thread_name(|i| format!("submit-verify-{i}"))
                .build()?,
        );
        let applier = std::thread::Builder::new().name("applier".into()).spawn(move || applier.run())?;
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
                gap,
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
            events: node.inner.events.clone(),
            own_transactions,
            continuous: node.inner.config.mining.mode == MiningMode::Continuous,
            shutdown: shutdown.clone(),
        };
        let miner = tokio::spawn(mining.run(mine_rx));
        Ok((node, Running { applier, miner, partition_ends: refresher, shutdown }))
    }

    /// Publishes signed transfers and returns once Kafka acknowledged all of them, with their
    /// ids and the height of the block they are expected in. Nothing is published unless every
    /// transfer passes admission: a valid signature (verified in batches over the cores), and a
    /// nonce and balance that fit the tip plus what the sender has pending, this request's
    /// earlier transfers included.
    pub async fn submit_transactions(&self, txs: Vec<Transfer>) -> Result<(Vec<TxId>, u64), NodeError> {
        self.refuse_if_halted()?;
        // The cheap rules first: a request that breaks them costs no signature checks.
        let accounts = self.check_admission(&txs)?;
        let chain = self.inner.store.params().chain_tag();
        let pool = self.inner.submit_verifier.clone();
        let txs = tokio::task::spawn_blocking(move || {
            // On the submissions' own threads: the applier's verification keeps the cores of
            // rayon's global pool, whatever clients send.
            match pool.install(|| signature_verdicts(&txs, chain)).iter().position(|valid| !valid) {
                Some(index) => Err(NodeError::Refused { index, refusal: Refusal::BadSignature }),
                None => Ok(txs),
            }
        })
        .await
        .map_err(NodeError::task("signature check"))??;
        // Transfers being published count against the bound too, so concurrent requests cannot
        // all pass the same check.
        let _reserved = Reservation::take(&self.inner.publishing, txs.len() as u64);
        let max = self.inner.config.storage.max_mempool;
        // This request's own transfers are among those reserved: room for one more is asked.
        let others = self.inner.publishing.load(std::sync::atomic::Ordering::SeqCst).saturating_sub(1);
        for (index, tx) in txs.iter().enumerate() {
            let next_nonce = accounts.get(&tx.sender).map_or(0, |account| account.nonce);
            self.inner
                .store
                .mempool_room_for(tx, next_nonce, max, others)
                .map_err(|refusal| NodeError::Refused { index, refusal })?;
        }
        let publisher = &self.inner.publisher;
        let acks = futures_util::future::join_all(txs.iter().map(|tx| publisher.publish_transaction(tx))).await;
        let mut first_error = None;
        for ack in acks {
            match ack {
                Ok(acked) => self.inner.own_transactions.published(acked),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        if let Some(e) = first_error {
            return Err(e.into());
        }
        let ids: Vec<TxId> = txs.iter().map(|t| t.id(chain)).collect();
        self.inner.verified.insert_all(&ids);
        Ok((ids, self.inner.store.tip()?.height + 1))
    }

    /// Checks each transfer against the tip and what its sender has pending (the earlier ones of
    /// `txs` included), so a client learns which rule a transfer breaks instead of seeing it
    /// dropped when the node reads it back. Returns each sender's account, as read.
    fn check_admission(&self, txs: &[Transfer]) -> Result<HashMap<Address, Account>, NodeError> {
        let store = &self.inner.store;
        let chain = store.params().chain_tag();
        let max_ahead = self.inner.config.storage.max_nonce_ahead;
        let mut in_request: HashMap<Address, (HashSet<u64>, u64)> = HashMap::new();
        let mut accounts: HashMap<Address, Account> = HashMap::new();
        for (index, tx) in txs.iter().enumerate() {
            if store.is_pooled(&tx.id(chain)) {
                return Err(NodeError::Refused { index, refusal: Refusal::AlreadyPooled });
            }
            let account = match accounts.get(&tx.sender) {
                Some(account) => *account,
                None => *accounts.entry(tx.sender).or_insert(store.account(&tx.sender)?.unwrap_or_default()),
            };
            let pooled = store.pending(&tx.sender, tx.nonce);
            let (nonces, cost) = in_request.entry(tx.sender).or_default();
            if nonces.contains(&tx.nonce) {
                // Two transfers of one request with one nonce: the second replaces nothing.
                let refusal = Refusal::NonceTaken { nonce: tx.nonce, min_fee: None };
                return Err(NodeError::Refused { index, refusal });
            }
            let pending = Pending { taken: pooled.taken, cost: pooled.cost.saturating_add(*cost) };
            let added = admission::check(tx, account, pending, max_ahead)
                .map_err(|refusal| NodeError::Refused { index, refusal })?;
            nonces.insert(tx.nonce);
            *cost = cost.saturating_add(added);
        }
        Ok(accounts)
    }

    /// Mines one block and returns it once it has been read back from the topic and applied.
    pub async fn mine(&self) -> Result<MinedBlock, NodeError> {
        self.refuse_if_halted()?;
        let (reply, answer) = oneshot::channel();
        self.inner.mine_requests.send(reply).await.map_err(|_| NodeError::ShuttingDown)?;
        answer.await.map_err(|_| NodeError::ShuttingDown)?
    }

    /// Fails when the applier has halted: nothing this node would publish could be applied here.
    pub(crate) fn refuse_if_halted(&self) -> Result<(), NodeError> {
        match self.inner.stats.halted() {
            Some(why) => Err(NodeError::Halted(why)),
            None => Ok(()),
        }
    }

    /// Whether the node can serve traffic: caught up with the blocks topic, not halted, brokers
    /// reachable. `Err` says which is not the case.
    pub fn readiness(&self) -> Result<(), NotReady> {
        if let Some(why) = self.inner.stats.halted() {
            return Err(NotReady::Halted(why));
        }
        if !self.inner.health.is_reachable() {
            return Err(NotReady::BrokersUnreachable);
        }
        if !self.inner.stats.is_caught_up() {
            return Err(NotReady::CatchingUp);
        }
        Ok(())
    }

    /// Main-chain blocks from height `from`, at most `limit` and about `max_bytes` of stored
    /// records (at least one block), and the chain's length. Reads the store on a blocking
    /// thread: a page of full blocks takes a while to decode.
    pub async fn chain(&self, from: u64, limit: usize, max_bytes: usize) -> Result<(Vec<Block>, u64), NodeError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || {
            let length = store.tip()?.height + 1;
            Ok((store.main_blocks(from, limit, max_bytes)?, length))
        })
        .await
        .map_err(NodeError::task("reading the chain"))?
    }

    /// The height of the tip.
    pub fn height(&self) -> Result<u64, NodeError> {
        Ok(self.inner.store.tip()?.height)
    }

    /// The stored block `hash` (on any branch), with its height and whether it is on the main
    /// chain; `None` when this node does not hold it.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<StoredBlock>, NodeError> {
        let store = &self.inner.store;
        let Some(block) = store.block(hash)? else { return Ok(None) };
        let height = block.header.height;
        let main_chain = store.main_hash_at(height)? == Some(*hash);
        Ok(Some(StoredBlock { hash: *hash, height, main_chain, block }))
    }

    /// The main-chain block at `height`; `None` above the tip.
    pub fn main_block(&self, height: u64) -> Result<Option<StoredBlock>, NodeError> {
        match self.inner.store.main_hash_at(height)? {
            Some(hash) => self.block(&hash),
            None => Ok(None),
        }
    }

    /// The size of the mempool (transfers and encoded bytes) and its `oldest` first transfers.
    pub fn mempool(&self, oldest: usize) -> Result<MempoolView, NodeError> {
        let store = &self.inner.store;
        Ok(MempoolView {
            size: store.mempool_len()?,
            bytes: store.mempool_bytes(),
            oldest: store.mempool_head(oldest)?,
        })
    }

    /// The tag transfers on this node's chain are signed with.
    pub fn chain_tag(&self) -> ChainTag {
        self.inner.store.params().chain_tag()
    }

    /// The account of `address` at the tip, and the nonce its next transfer takes once its
    /// pending ones are mined.
    pub fn account(&self, address: &Address) -> Result<(Account, u64), NodeError> {
        Ok(self.inner.store.account_with_pending(address)?)
    }

    /// Where the transfer `id` stands: pending, confirmed on the main chain, or unknown.
    pub fn transaction(&self, id: &TxId) -> Result<TxStatus, NodeError> {
        let store = &self.inner.store;
        if let Some(transfer) = store.pooled(id)? {
            return Ok(TxStatus::Pending(transfer));
        }
        if !store.tx_index_kept() {
            return Ok(TxStatus::NotIndexed);
        }
        let Some(height) = store.main_tx_height(id)? else { return Ok(TxStatus::Unknown) };
        let chain = self.chain_tag();
        let found = match store.main_hash_at(height)? {
            Some(hash) => store.block(&hash)?.and_then(|block| {
                let transaction = block.transactions.into_iter().find(|tx| tx.id(chain) == *id)?;
                Some(TxStatus::Confirmed { height, block_hash: hash, transaction })
            }),
            None => None,
        };
        // The index and the chain are written in one batch; a miss means the tip moved between
        // the two reads, and the caller may ask again.
        Ok(found.unwrap_or(TxStatus::Unknown))
    }

    /// Status for operators.
    pub fn status(&self) -> Result<Status, NodeError> {
        let store = &self.inner.store;
        let tip = store.tip()?;
        let next_bits = next_bits(store, store.params(), &tip.hash)?;
        let target = Target::from_compact(next_bits)?;
        let next_offsets = store.offsets()?;
        let progress = self.inner.miner.progress();
        Ok(Status {
            node_id: self.inner.config.node_id.clone(),
            chain_id: store.params().chain_id.clone(),
            genesis: crate::core::block::genesis(store.params()).hash(),
            height: tip.height,
            tip: tip.hash,
            blocks_next_offset: next_offsets.get(&self.inner.blocks_partition).copied().unwrap_or(0),
            start_offsets: self.inner.start_offsets.clone(),
            next_offsets,
            mempool: store.mempool_len()?,
            orphans: store.orphan_count(),
            mining: self.inner.config.mining.mode,
            mining_kernel: self.inner.miner.kernel().name(),
            mining_threads: self.inner.miner.threads(),
            hashes_since_start: progress.trials,
            hash_rate: progress.hash_rate(),
            next_bits,
            target,
            difficulty_bits: target.difficulty_bits(),
            network_hash_rate: network_hash_rate(store, &tip, NETWORK_RATE_WINDOW)?,
            kafka_reachable: self.inner.health.is_reachable(),
            topic_warnings: self.inner.topic_warnings.iter().map(TopicWarningStatus::from).collect(),
            stats: self.inner.stats.snapshot(),
        })
    }

    /// Blocks applied since start at `from_height` or above (the most recent ones), with their
    /// produced and applied times.
    pub fn recent_blocks(&self, from_height: u64) -> Vec<stats::AppliedBlock> {
        self.inner.stats.recent_blocks(from_height)
    }

    /// Remembers peers (each normalized to a plain `http(s)://host:port` URL, at most
    /// `peers.max_peers` in all) for `/nodes/resolve`; returns them all.
    pub fn register_peers(&self, addresses: &[String]) -> Result<Vec<String>, NodeError> {
        let urls = addresses.iter().map(|a| sync::normalize_peer(a)).collect::<Result<Vec<_>, _>>()?;
        let mut known = self.inner.store.peers()?;
        let max = self.inner.config.peers.max_peers;
        let added = urls.iter().filter(|u| !known.contains(u)).count();
        if known.len() + added > max {
            return Err(NodeError::TooManyPeers(max));
        }
        for url in urls {
            if !known.contains(&url) {
                self.inner.store.add_peer(&url)?;
                known.push(url);
            }
        }
        Ok(self.inner.store.peers()?)
    }

    /// The registered peers.
    pub fn peers(&self) -> Result<Vec<String>, NodeError> {
        Ok(self.inner.store.peers()?)
    }

    /// Asks every registered peer for the part of its chain this node lacks, validates it as the
    /// topic is validated, and publishes the best branch into the blocks topic when it carries
    /// more work than our tip. Nothing is written to the store here: the blocks reach it (and
    /// every other node) when the applier reads them back. Answers once they are applied, or
    /// after [`READ_BACK_TIMEOUT`].
    ///
    /// On a node halted on a retention gap (the broker deleted what it had to read next) the
    /// branch is published the same way, and the node then reads the topics again from the
    /// earliest offsets the broker holds, which brings it the branch after what was retained.
    pub async fn resolve(&self) -> Result<Resolution, NodeError> {
        let _one_at_a_time = self.inner.resolving.try_lock().map_err(|_| NodeError::Busy("a resolve"))?;
        if self.inner.gap.is_open() {
            return self.bootstrap().await;
        }
        self.refuse_if_halted()?;
        let (best, peers) = self.best_peer_branch().await?;
        let Some(branch) = best else {
            return Ok(Resolution { published: 0, bootstrapped: false, replaced: false, peers });
        };
        let published = branch.blocks.len();
        self.publish_branch(branch.blocks, || ()).await?;
        let replaced = self.inner.store.tip()?.hash == branch.tip.hash;
        tracing::info!(
            published,
            replaced,
            height = branch.tip.height,
            "published a peer's branch with more work into the blocks topic"
        );
        Ok(Resolution { published, bootstrapped: false, replaced, peers })
    }

    /// Every peer's verdict, and the branch with the most work beyond our tip, if any. All peers
    /// together get `peers.sync_timeout_ms`, asked in random order, each with an equal share of
    /// the time left (what a fast peer leaves goes to those after it), so a slow peer can use up
    /// its own share but never keep the others from being asked.
    async fn best_peer_branch(&self) -> Result<(Option<PeerBranch>, Vec<(String, PeerVerdict)>), NodeError> {
        let store = &self.inner.store;
        let mut best: Option<PeerBranch> = None;
        let mut peers = Vec::new();
        let mut urls = store.peers()?;
        rand::seq::SliceRandom::shuffle(urls.as_mut_slice(), &mut rand::thread_rng());
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.inner.config.peers.sync_timeout_ms);
        let count = urls.len();
        for (asked, url) in urls.into_iter().enumerate() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let budget = left / (count - asked) as u32;
            if budget.is_zero() {
                peers.push((url, PeerVerdict::NotAsked));
                continue;
            }
            let verdict = match self.inner.peer_client.fetch_branch(store, &url, budget).await {
                Ok(Some(branch)) => {
                    let to_beat = best.as_ref().map_or(store.tip()?.cumulative_work, |b| b.tip.cumulative_work);
                    if branch.tip.cumulative_work > to_beat {
                        let verdict = PeerVerdict::MoreWork {
                            new_blocks: branch.blocks.len(),
                            height: branch.tip.height,
                            complete: branch.complete,
                        };
                        best = Some(branch);
                        verdict
                    } else {
                        PeerVerdict::NotMoreWork { height: branch.tip.height }
                    }
                }
                Ok(None) => PeerVerdict::NotMoreWork { height: store.tip()?.height },
                Err(e) => {
                    tracing::warn!(peer = url, "peer dropped from this resolve: {e}");
                    PeerVerdict::Dropped(e)
                }
            };
            peers.push((url, verdict));
        }
        Ok((best, peers))
    }

    /// Repairs a retention gap from the best peer: publishes its branch into the blocks topic,
    /// then lets the applier read the topics again from the earliest offsets the broker holds,
    /// where it meets the branch again after what was retained. The blocks reach the store the
    /// one way every block does, dated by the broker and checked by the topic's rules; nothing
    /// here reads this node's clock or writes the chain. Needs at least one peer that answered.
    async fn bootstrap(&self) -> Result<Resolution, NodeError> {
        if self.inner.store.peers()?.is_empty() {
            return Err(NodeError::Bootstrap("no peers are registered: POST /nodes/register first"));
        }
        let (best, peers) = self.best_peer_branch().await?;
        if peers.iter().all(|(_, verdict)| matches!(verdict, PeerVerdict::Dropped(_))) {
            return Ok(Resolution { published: 0, bootstrapped: false, replaced: false, peers });
        }
        let published = best.as_ref().map_or(0, |b| b.blocks.len());
        let tip = best.as_ref().map(|b| b.tip.hash);
        self.publish_branch(best.map(|b| b.blocks).unwrap_or_default(), || self.inner.gap.mark_repaired()).await?;
        // The applier resumes within its 100 ms poll; with nothing published the answer still
        // waits for it, so a client can write again as soon as it has the answer.
        let resumed = tokio::time::timeout(Duration::from_secs(10), async {
            while self.inner.stats.halted().is_some() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        if resumed.await.is_err() {
            tracing::warn!("the applier did not resume within 10 s of the bootstrap");
        }
        let now = self.inner.store.tip()?;
        tracing::info!(published, height = now.height, "bootstrapped from peers after a retention gap");
        Ok(Resolution { published, bootstrapped: true, replaced: tip == Some(now.hash), peers })
    }

    /// Publishes `blocks` into the blocks topic in order, calls `then` once Kafka acknowledged
    /// them all, and waits until the applier has read the last one back (or
    /// [`READ_BACK_TIMEOUT`] passed).
    async fn publish_branch(&self, blocks: Vec<Block>, then: impl FnOnce()) -> Result<(), NodeError> {
        let mut outcomes = self.inner.events.subscribe_blocks();
        let publisher = &self.inner.publisher;
        // Each chunk is queued in order before any acknowledgement is awaited; with idempotence
        // on one partition, Kafka keeps that order.
        for chunk in blocks.chunks(256) {
            let acks = futures_util::future::join_all(chunk.iter().map(|b| publisher.publish_block(b))).await;
            for ack in acks {
                ack?;
            }
        }
        then();
        let Some(last) = blocks.last().map(Block::hash) else { return Ok(()) };
        if tokio::time::timeout(READ_BACK_TIMEOUT, outcomes.of(last)).await.is_err() {
            tracing::warn!(%last, "published a peer's branch but did not read its last block back within {READ_BACK_TIMEOUT:?}");
        }
        Ok(())
    }
}

/// A count taken from a shared counter for as long as it lives.
struct Reservation<'a> {
    counter: &'a std::sync::atomic::AtomicU64,
    amount: u64,
}

impl<'a> Reservation<'a> {
    fn take(counter: &'a std::sync::atomic::AtomicU64, amount: u64) -> Self {
        counter.fetch_add(amount, std::sync::atomic::Ordering::SeqCst);
        Self { counter, amount }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.amount, std::sync::atomic::Ordering::SeqCst);
    }
}

/// How long the miner waits to read its own block back, and a resolve the branch it published.
pub const READ_BACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a node with `mining.kernel = "auto"` times the hashing kernels at start.
pub const KERNEL_CALIBRATION: Duration = Duration::from_millis(200);

/// What `GET /nodes/resolve` did.
#[derive(Debug)]
pub struct Resolution {
    /// Blocks published into the blocks topic (0 when no peer had more work).
    pub published: usize,
    /// Whether this resolve repaired a retention gap (a bootstrap): the node reads the topics
    /// again from the earliest offsets the broker holds.
    pub bootstrapped: bool,
    /// Whether our tip is now the published branch's tip.
    pub replaced: bool,
    /// Each peer asked, with what it gave.
    pub peers: Vec<(String, PeerVerdict)>,
}
