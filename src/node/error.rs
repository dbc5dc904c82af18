//! The node's errors: failed operations as the API reports them, a start that could not
//! happen, and why the node should not be sent traffic yet.

use super::halt::HaltReason;
use super::sync::PeerAddressError;
use crate::core::admission::Refusal;
use crate::core::miner::{MinerPoolError, UnknownKernel};
use crate::kafka::{KafkaError, ProbeError, PublishError, SecurityError, TopicError};
use crate::store::StoreError;
use std::sync::Arc;
use std::time::Duration;

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
    /// A bootstrap is pointing the applier at the broker's earliest offsets; writes are taken
    /// again in a moment.
    #[error("the node is bootstrapping from peers and takes writes again in a moment")]
    Bootstrapping,
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
    /// A bootstrap is pointing the applier at the broker's earliest offsets.
    #[error("bootstrapping from peers")]
    Bootstrapping,
}

impl NotReady {
    /// Its short label: the halt's, `brokers_unreachable`, `catching_up` or `bootstrapping`.
    pub fn label(&self) -> &'static str {
        match self {
            NotReady::Halted(why) => why.label(),
            NotReady::BrokersUnreachable => "brokers_unreachable",
            NotReady::CatchingUp => "catching_up",
            NotReady::Bootstrapping => "bootstrapping",
        }
    }
}
