//! The node: wires the store, the Kafka transport and the miner together. One applier thread
//! consumes both topics into the store; a tokio task mines; the HTTP API calls the methods here.
//!
//! The [`Node`] handle's methods live by job: `start.rs` (wiring at start), `submit.rs` (the
//! write path), `queries.rs` (reads), `status.rs` (`/status`), `resolve.rs` (peers, forks and
//! the bootstrap), with their errors in `error.rs`. The threads and tasks behind it:
//! `applier.rs` (the only consumer of the topics), `mining.rs`, `lag.rs`, `ledger.rs` (the
//! ledger stream's publisher); their shared state:
//! `stats.rs`, `events.rs`, `state.rs` (the applier's state and requests), `halt.rs`,
//! `verified.rs`; `sync.rs` talks to peers.

mod applier;
mod error;
mod events;
mod halt;
pub mod lag;
mod ledger;
mod live;
mod mining;
mod queries;
pub mod readings;
mod resolve;
mod start;
mod state;
mod stats;
mod status;
mod submit;
mod sync;
mod verified;

use crate::config::NodeConfig;
use crate::core::miner::Miner;
use crate::kafka::{BrokerHealth, Publisher, SettingWarning};
use crate::store::{Positions, Store, TopicPartition};
pub use error::{NodeError, NotReady, StartError};
use events::ChainEvents;
pub use halt::HaltReason;
pub use ledger::{LedgerState, LedgerStatus};
pub use live::{LiveEvent, Numbered, Subscription, TooManySubscribers};
use mining::{MineRequest, OwnTransactions};
pub use queries::{MempoolView, StoredBlock, TxStatus};
pub use resolve::Resolution;
use state::ApplierHandle;
pub use state::ApplierState;
use stats::NodeStats;
pub use status::{Status, TopicWarningStatus, NETWORK_RATE_WINDOW};
use std::sync::Arc;
use std::time::Duration;
use sync::PeerClient;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
    /// The applier's state, and the way to ask it to read on after a bootstrap.
    applier: ApplierHandle,
    /// The live feed of `GET /events`.
    live: Arc<live::LiveFeed>,
    /// The ledger publisher's report, when the stream is enabled.
    ledger: Option<Arc<ledger::LedgerProgress>>,
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
    ledger: Option<std::thread::JoinHandle<()>>,
    live: tokio::task::JoinHandle<()>,
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
        for (name, task) in [("mining", self.miner), ("live feed", self.live)] {
            if let Err(e) = task.await {
                tracing::error!("the {name} task ended badly: {e}");
            }
        }
        let threads =
            [("applier", Some(self.applier)), ("partition ends", Some(self.partition_ends)), ("ledger", self.ledger)];
        for (name, thread) in threads.into_iter().filter_map(|(name, thread)| Some((name, thread?))) {
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(())) => {}
                _ => tracing::error!("the {name} thread panicked"),
            }
        }
    }
}

/// How long the miner waits to read its own block back, and a resolve the branch it published.
pub const READ_BACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a node with `mining.kernel = "auto"` times the hashing kernels at start.
pub const KERNEL_CALIBRATION: Duration = Duration::from_millis(200);
