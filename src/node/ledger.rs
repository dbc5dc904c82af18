//! The ledger publisher: a thread beside the applier that publishes the main chain's history to
//! the ledger topic as it changes. It only reads the store, so the stream's position is never
//! why the node falls behind the chain; it wakes when the tip moves. Where it stands comes from
//! the topic (after the last committed event) at every start, and after every failed round,
//! so a crash at any moment neither loses nor repeats an event.

use super::stats::{NodeStats, PROPAGATION_BUCKETS};
use crate::config::LedgerConfig;
use crate::core::chain::Tip;
use crate::core::hash::BlockHash;
use crate::kafka::{
    ensure_ledger_topic, last_committed_event, BrokerHealth, Connection, EncodedEvent, LedgerError, LedgerProducer,
};
use crate::store::{Store, StoreError};
use crate::stream::{next_events, LedgerEvent, PlanError, StreamPosition};
use crate::sync::lock;
use prometheus_client::metrics::histogram::Histogram;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// First wait after a failed round; doubled after each failure in a row, up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What the publisher is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerState {
    /// Registering its transactional id and reading where the topic stands.
    Starting,
    /// Publishing (or waiting for the next block deep enough).
    Publishing,
    /// A round failed (the brokers went away, say); it starts over after a pause.
    Retrying,
    /// Another publisher registered the same transactional id; this one stopped for good.
    Fenced,
    /// It met what it cannot go on from (a fatal producer error, a topic written by someone
    /// else, a stream of another chain) and stopped; the error says which.
    Failed,
}

/// Where the publisher stands, as `/status` and `/metrics` show it.
#[derive(Clone, Debug)]
pub(super) struct LedgerReport {
    /// What it is doing.
    pub(super) state: LedgerState,
    /// Where the committed stream stands.
    pub(super) position: StreamPosition,
    /// Events committed since this process started.
    pub(super) published_since_start: u64,
    /// The last error, while retrying or after stopping.
    pub(super) error: Option<String>,
}

/// The publisher's report, shared with the node, and how long blocks took from applied to
/// published.
#[derive(Debug)]
pub(super) struct LedgerProgress {
    report: Mutex<LedgerReport>,
    /// The last [`LAGS_KEPT`] publishing lags, in milliseconds, for `/status`'s percentiles.
    lags: Mutex<VecDeque<u64>>,
    /// The same, as a histogram for `/metrics` (seconds).
    lag_histogram: Histogram,
}

/// Publishing lags kept for `/status`.
const LAGS_KEPT: usize = 10_000;

impl Default for LedgerProgress {
    fn default() -> Self {
        Self {
            report: Mutex::new(LedgerReport {
                state: LedgerState::Starting,
                position: StreamPosition::default(),
                published_since_start: 0,
                error: None,
            }),
            lags: Mutex::new(VecDeque::with_capacity(LAGS_KEPT)),
            lag_histogram: Histogram::new(PROPAGATION_BUCKETS),
        }
    }
}

impl LedgerProgress {
    /// The report now.
    pub(super) fn report(&self) -> LedgerReport {
        lock(&self.report).clone()
    }

    /// The publishing lag histogram (a handle on the same buckets), in seconds.
    pub(super) fn lag_histogram(&self) -> Histogram {
        self.lag_histogram.clone()
    }

    /// The median and the 99th percentile of the recent publishing lags, in milliseconds.
    pub(super) fn lag_p50_p99_ms(&self) -> Option<(u64, u64)> {
        let mut lags: Vec<u64> = lock(&self.lags).iter().copied().collect();
        lags.sort_unstable();
        let last = lags.len().checked_sub(1)?;
        let at = |quantile: f64| lags[((last as f64) * quantile).round() as usize];
        Some((at(0.5), at(0.99)))
    }

    fn set(&self, state: LedgerState, error: Option<String>) {
        let mut report = lock(&self.report);
        report.state = state;
        report.error = error;
    }

    fn stands_at(&self, position: StreamPosition, published: u64) {
        let mut report = lock(&self.report);
        report.position = position;
        report.published_since_start += published;
    }

    fn observe_lag(&self, lag_ms: u64) {
        self.lag_histogram.observe(lag_ms as f64 / 1000.0);
        let mut lags = lock(&self.lags);
        if lags.len() == LAGS_KEPT {
            lags.pop_front();
        }
        lags.push_back(lag_ms);
    }
}

/// Blocks applied on the main chain but not yet published: how far the stream's tip is below
/// the highest block deep enough to go out.
pub(super) fn lag_blocks(tip: &Tip, confirmations: u64, stream: &StreamPosition) -> u64 {
    // Heights 0 to `tip - confirmations + 1` are deep enough.
    let publishable = (tip.height + 2).saturating_sub(confirmations.max(1));
    let published = stream.height().map_or(0, |height| height + 1);
    publishable.saturating_sub(published)
}

/// The first of `events` as the topic holds them, up to `max_bytes` of JSON in all (the first
/// always, whatever its size): one Kafka transaction's worth.
fn encode_within(events: &[LedgerEvent], max_bytes: usize) -> Result<Vec<EncodedEvent>, LedgerError> {
    let mut encoded: Vec<EncodedEvent> = Vec::new();
    let mut bytes = 0;
    for event in events {
        let one = EncodedEvent::new(event).map_err(LedgerError::Encoding)?;
        bytes += one.json.len();
        if bytes > max_bytes && !encoded.is_empty() {
            break;
        }
        encoded.push(one);
    }
    Ok(encoded)
}

/// Why a session of the publisher ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Plan(#[from] PlanError<StoreError>),
}

impl SessionError {
    /// Whether starting over cannot mend it.
    fn is_final(&self) -> bool {
        matches!(
            self,
            SessionError::Ledger(LedgerError::Fenced(_) | LedgerError::Stopped { .. } | LedgerError::NotAnEvent { .. })
                | SessionError::Plan(PlanError::UnknownBlock(_))
        )
    }
}

/// The publisher's inputs.
pub(super) struct LedgerPublisher {
    /// The chain it publishes (read only).
    pub(super) store: Store,
    /// The ledger's own connection (its principal, the node's TLS).
    pub(super) connection: Connection,
    /// `{prefix}.ledger`.
    pub(super) topic: String,
    /// Its `transactional.id`.
    pub(super) transactional_id: String,
    /// Its Kafka client id.
    pub(super) client_id: String,
    /// Confirmations and the bound of a round.
    pub(super) config: LedgerConfig,
    /// The node's tip, which wakes it.
    pub(super) tips: watch::Receiver<Tip>,
    /// Where it reports.
    pub(super) progress: Arc<LedgerProgress>,
    /// When this node applied each recent block (for the publishing lag) and whether it has
    /// caught up (lags of a catch-up measure how long the node was away, not the stream).
    pub(super) stats: Arc<NodeStats>,
    /// Raised at shutdown.
    pub(super) shutdown: CancellationToken,
    /// The runtime it waits on.
    pub(super) runtime: tokio::runtime::Handle,
}

impl LedgerPublisher {
    /// Starts it on a thread of its own.
    pub(super) fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name("ledger".into()).spawn(move || self.run())
    }

    fn run(mut self) {
        let mut pause = RETRY_FIRST;
        while !self.shutdown.is_cancelled() {
            let published_before = self.progress.report().published_since_start;
            let outcome = self.session();
            if self.progress.report().published_since_start > published_before {
                // A session that got events out starts the backoff again from its first step.
                pause = RETRY_FIRST;
            }
            let error = match outcome {
                Ok(()) => return,
                Err(e) => e,
            };
            if error.is_final() {
                let state = match error {
                    SessionError::Ledger(LedgerError::Fenced(_)) => LedgerState::Fenced,
                    _ => LedgerState::Failed,
                };
                tracing::error!(topic = self.topic, "ledger stream stopped: {error}");
                self.progress.set(state, Some(error.to_string()));
                return;
            }
            tracing::warn!(topic = self.topic, "ledger stream: {error}; starting over in {pause:?}");
            self.progress.set(LedgerState::Retrying, Some(error.to_string()));
            let shutdown = self.shutdown.clone();
            self.runtime.block_on(async {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            });
            pause = (pause * 2).min(RETRY_MAX);
        }
    }

    /// Registers, reads where the topic stands, then publishes round after round until shutdown
    /// (`Ok`) or a failure.
    fn session(&mut self) -> Result<(), SessionError> {
        self.progress.set(LedgerState::Starting, None);
        let health = Arc::new(BrokerHealth::default());
        let (connection, topic, client_id) = (&self.connection, &self.topic, &self.client_id);
        self.runtime.block_on(ensure_ledger_topic(connection, topic, client_id, health.clone()))?;
        let producer = LedgerProducer::register(connection, topic, &self.transactional_id, client_id, health.clone())?;
        let last = last_committed_event(&self.connection, &self.topic, &self.client_id, health)?;
        let mut position = last.map(|event| event.position_after()).unwrap_or_default();
        self.progress.stands_at(position, 0);
        self.progress.set(LedgerState::Publishing, None);
        tracing::info!(topic = self.topic, next_seq = position.next_seq, height = ?position.height(), "ledger stream resumes");
        let chain_tag = self.store.params().chain_tag();
        loop {
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            // Seen before planning: a tip that moves meanwhile wakes the wait below.
            self.tips.borrow_and_update();
            let (mut events, _) = next_events(
                &self.store,
                chain_tag,
                position,
                self.config.confirmations,
                self.config.max_events_per_transaction,
            )?;
            let encoded = encode_within(&events, self.config.max_transaction_bytes)?;
            events.truncate(encoded.len());
            let Some(last) = events.last() else {
                if !self.wait_for_tip() {
                    return Ok(());
                }
                continue;
            };
            let after = last.position_after();
            producer.publish(&encoded)?;
            position = after;
            self.progress.stands_at(position, events.len() as u64);
            self.observe_lags(&events);
        }
    }

    /// Observes, for each block `events` connected, how long it took from applied here to
    /// committed in the ledger topic; only once the node has caught up.
    fn observe_lags(&self, events: &[LedgerEvent]) {
        if !self.stats.is_caught_up() {
            return;
        }
        let committed_ms = crate::clock::now_ms();
        let connected: Vec<(u64, BlockHash)> = events
            .iter()
            .filter_map(|event| match event {
                LedgerEvent::Connect(block) => Some((block.height, block.hash)),
                LedgerEvent::Disconnect(_) => None,
            })
            .collect();
        let Some(lowest) = connected.iter().map(|(height, _)| *height).min() else { return };
        let applied: HashMap<BlockHash, u64> =
            self.stats.recent_blocks(lowest).into_iter().map(|block| (block.hash, block.applied_ms)).collect();
        for (_, hash) in connected {
            if let Some(applied_ms) = applied.get(&hash) {
                self.progress.observe_lag(committed_ms.saturating_sub(*applied_ms));
            }
        }
    }

    /// Waits until the tip moves (true) or the node shuts down (false).
    fn wait_for_tip(&mut self) -> bool {
        let (tips, shutdown) = (&mut self.tips, &self.shutdown);
        self.runtime.block_on(async {
            tokio::select! {
                _ = shutdown.cancelled() => false,
                changed = tips.changed() => changed.is_ok(),
            }
        })
    }
}

/// The ledger stream as `/status` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LedgerStatus {
    /// The topic.
    pub topic: String,
    /// The publisher's `transactional.id`.
    pub transactional_id: String,
    /// How deep a block is before it goes out.
    pub confirmations: u64,
    /// What the publisher is doing.
    pub state: LedgerState,
    /// The next event's `seq`: events committed in all.
    pub next_seq: u64,
    /// Height of the stream's tip (none before the genesis block's event).
    pub height: Option<u64>,
    /// Hash of the stream's tip.
    pub hash: Option<BlockHash>,
    /// Blocks deep enough to publish that are not yet published.
    pub lag_blocks: u64,
    /// Events committed since this process started.
    pub published_since_start: u64,
    /// Median of the recent publishing lags (a block applied here → its `connect` committed),
    /// in milliseconds, counted once the node caught up; none before the first.
    pub publish_lag_p50_ms: Option<u64>,
    /// The same lags' 99th percentile.
    pub publish_lag_p99_ms: Option<u64>,
    /// The last error, while retrying or once stopped.
    pub error: Option<String>,
}

impl LedgerStatus {
    /// The status of the publisher reporting to `progress`, on a node at `tip`.
    pub(super) fn new(
        progress: &LedgerProgress,
        tip: &Tip,
        topic: String,
        transactional_id: String,
        confirmations: u64,
    ) -> Self {
        let report = progress.report();
        let lags = progress.lag_p50_p99_ms();
        Self {
            topic,
            transactional_id,
            confirmations,
            state: report.state,
            next_seq: report.position.next_seq,
            height: report.position.height(),
            hash: report.position.tip.map(|(_, hash)| hash),
            lag_blocks: lag_blocks(tip, confirmations, &report.position),
            published_since_start: report.published_since_start,
            publish_lag_p50_ms: lags.map(|(p50, _)| p50),
            publish_lag_p99_ms: lags.map(|(_, p99)| p99),
            error: report.error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::pow::Work;

    #[test]
    fn a_transaction_takes_events_up_to_its_byte_bound_and_always_the_first() {
        let params = crate::core::params::ChainParams::default();
        let genesis = crate::core::block::genesis(&params);
        let events: Vec<LedgerEvent> =
            (0..4).map(|seq| LedgerEvent::connect(seq, &genesis, params.chain_tag())).collect();
        let one = EncodedEvent::new(&events[0]).unwrap().json.len();
        assert_eq!(encode_within(&events, one * 2).unwrap().len(), 2);
        assert_eq!(encode_within(&events, one * 10).unwrap().len(), 4);
        assert_eq!(encode_within(&events, 1).unwrap().len(), 1, "an event larger than the bound goes alone");
    }

    #[test]
    fn the_lag_counts_blocks_deep_enough_and_not_yet_out() {
        let tip = Tip { hash: BlockHash::new([1; 32]), height: 10, cumulative_work: Work(1), peak_height: 10 };
        let nothing = StreamPosition::default();
        assert_eq!(lag_blocks(&tip, 1, &nothing), 11, "genesis to 10");
        assert_eq!(lag_blocks(&tip, 6, &nothing), 6, "genesis to 5");
        let at_five = StreamPosition { next_seq: 6, tip: Some((5, BlockHash::new([5; 32]))) };
        assert_eq!(lag_blocks(&tip, 6, &at_five), 0);
        assert_eq!(lag_blocks(&tip, 1, &at_five), 5);
        assert_eq!(lag_blocks(&tip, 20, &at_five), 0, "never below zero");
    }
}
