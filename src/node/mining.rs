//! The mining task: builds a candidate on the current tip, searches nonces on the rayon pool,
//! publishes a found block to Kafka and waits until the applier reads it back. A tip change
//! stops the search and the candidate is rebuilt. In on-demand mode it mines one block per
//! request; in continuous mode it mines all the time and answers requests with its next block.

use super::events::{BlockEvent, ChainEvents};
use super::state::{ApplierHandle, ApplierState};
use super::stats::NodeStats;
use super::{NodeError, READ_BACK_TIMEOUT};
use crate::core::account::Address;
use crate::core::block::{fit_in_block, Block};
use crate::core::chain::{median_time_past, next_bits, ChainView};
use crate::core::ledger::{fill_block, Payout};
use crate::core::miner::Miner;
use crate::core::transaction::Transaction;
use crate::kafka::{Acked, Publisher};
use crate::store::{Positions, Store};
use crate::sync::lock;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long a new block waits for the applier to read the transactions this node published.
const OWN_TRANSACTIONS_WAIT: Duration = Duration::from_secs(2);

/// A block this node mined, once it was read back from the topic and stored.
#[derive(Clone, Debug)]
pub struct MinedBlock {
    /// The block.
    pub block: Block,
    /// Whether it became the tip (false when a competing block at the same height came first).
    pub tip_moved: bool,
}

/// A request for one block, answered when it is applied.
pub(super) type MineRequest = oneshot::Sender<Result<MinedBlock, NodeError>>;

/// For each transactions partition, the offset after the last transaction this node published:
/// a block mined on demand waits until the applier has read that far, so a client that submits
/// and then mines finds its transaction in the block.
#[derive(Debug, Default)]
pub(super) struct OwnTransactions {
    published_until: Mutex<Positions>,
}

impl OwnTransactions {
    /// Notes a transaction Kafka acknowledged.
    pub(super) fn published(&self, acked: Acked) {
        let mut published = lock(&self.published_until);
        let until = published.entry(acked.position).or_default();
        *until = (*until).max(acked.offset + 1);
    }

    /// Waits (up to `limit`) until `store` holds offsets past every transaction noted.
    async fn wait_read(&self, store: &Store, limit: Duration) -> Result<(), NodeError> {
        let wanted = lock(&self.published_until).clone();
        let deadline = tokio::time::Instant::now() + limit;
        for (position, until) in wanted {
            while store.offset(&position)?.unwrap_or(0) < until {
                if tokio::time::Instant::now() >= deadline {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(())
    }
}

/// Everything the mining task reads and writes: it changes the chain only by publishing, and
/// learns of the chain's changes from [`ChainEvents`].
pub(super) struct Mining {
    /// The chain the candidates are built on.
    pub store: Store,
    /// Where found blocks go.
    pub publisher: Publisher,
    /// The nonce search (shared with the node, which reports its progress).
    pub miner: Arc<Miner>,
    /// Where rewards go.
    pub address: Address,
    /// Counters.
    pub stats: Arc<NodeStats>,
    /// Whether the applier runs: a halted node reads nothing more, so it could never see its
    /// block applied.
    pub applier: ApplierHandle,
    /// The tip watch and the applied blocks.
    pub events: Arc<ChainEvents>,
    /// Transactions this node published, for blocks mined on demand.
    pub own_transactions: Arc<OwnTransactions>,
    /// Mine all the time, not only on request.
    pub continuous: bool,
    /// Raised at shutdown.
    pub shutdown: CancellationToken,
}

impl Mining {
    /// Runs the mining loop until shutdown.
    pub(super) async fn run(self, mut requests: mpsc::Receiver<MineRequest>) {
        let mut waiting: Vec<MineRequest> = Vec::new();
        loop {
            if waiting.is_empty() && !self.continuous {
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    request = requests.recv() => match request {
                        Some(request) => waiting.push(request),
                        None => return,
                    },
                }
            }
            while let Ok(request) = requests.try_recv() {
                waiting.push(request);
            }
            let result = match self.applier.state().writable() {
                Err(e) => Err(e),
                Ok(()) => tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    result = self.mine_one() => result,
                },
            };
            if let Err(e) = &result {
                tracing::warn!("mining failed: {e}");
            }
            for request in waiting.drain(..) {
                // The requester may have gone away (client disconnected): nothing to do then.
                let _ = request.send(result.clone());
            }
            if result.is_err() && self.continuous {
                // Tries again once the applier runs (a halted one reads nothing more, so it
                // could never see a block applied), after a pause.
                let mut state = self.applier.watch();
                let running_again = async {
                    let _ = state.wait_for(|state| *state == ApplierState::Running).await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                };
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    () = running_again => {}
                }
            }
        }
    }

    /// Mines until one block of ours is stored.
    async fn mine_one(&self) -> Result<MinedBlock, NodeError> {
        self.own_transactions.wait_read(&self.store, OWN_TRANSACTIONS_WAIT).await?;
        let stats = &self.stats;
        loop {
            let started = Instant::now();
            let block = self.candidate()?;
            stats.busy("mine_candidate", started.elapsed());
            let stop = Arc::new(AtomicBool::new(false));
            let stopper = {
                let stop = stop.clone();
                let mut tip = self.events.watch_tip();
                let shutdown = self.shutdown.clone();
                let parent = block.header.prev_hash;
                tokio::spawn(async move {
                    while tip.borrow_and_update().hash == parent {
                        tokio::select! {
                            changed = tip.changed() => if changed.is_err() { break },
                            _ = shutdown.cancelled() => break,
                        }
                    }
                    stop.store(true, Ordering::Relaxed);
                })
            };
            let miner = self.miner.clone();
            let header = block.header;
            let search_stop = stop.clone();
            let started = Instant::now();
            let outcome = tokio::task::spawn_blocking(move || miner.search(&header, 0..u64::MAX, &search_stop))
                .await
                .map_err(NodeError::task("mining thread"))?;
            stopper.abort();
            let outcome = outcome?;
            stats.busy("mine_search", started.elapsed());
            let Some(nonce) = outcome.nonce else {
                continue; // the tip moved (or shutdown): build on the new tip
            };
            let mut block = block;
            block.header.nonce = nonce;
            let hash = block.hash();
            let mut outcomes = self.events.subscribe_blocks();
            let started = Instant::now();
            self.publisher.publish_block(&block).await?;
            stats.busy("mine_publish", started.elapsed());
            let started = Instant::now();
            let read_back = tokio::time::timeout(READ_BACK_TIMEOUT, outcomes.of(hash))
                .await
                .map_err(|_| NodeError::NotReadBack { hash, waited: READ_BACK_TIMEOUT })?;
            stats.busy("mine_read_back", started.elapsed());
            match read_back {
                Some(BlockEvent::Stored { tip_moved, .. }) => {
                    self.stats.mined();
                    return Ok(MinedBlock { block, tip_moved });
                }
                Some(BlockEvent::Rejected { .. }) | None => {
                    tracing::info!(%hash, "our block was not accepted (the chain moved); mining again")
                }
            }
        }
    }

    /// A block on the current tip: the reward (subsidy plus fees), then the ready mempool
    /// transfers (those whose sender has no nonce gap) of highest fee rate, each covered by its
    /// sender's balance.
    fn candidate(&self) -> Result<Block, NodeError> {
        let store = &self.store;
        let params = store.params();
        let room = params.max_block_txs - 1;
        let miner = self.address;
        loop {
            let tip = store.tip()?;
            let pool = store.mempool_ready(room)?;
            let parties: Vec<Address> = pool
                .iter()
                .flat_map(|t| [t.sender, t.recipient])
                .chain([miner])
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let state = parties.iter().copied().zip(store.accounts(&parties)?).collect();
            let filled = fill_block(pool, state, room, Payout { miner, subsidy: params.reward });
            // The reward's amount is set once the block's transfers are final (it does not change
            // the encoded size by more than the few bytes the overhead bound allows for).
            let mut txs = vec![Transaction::reward(miner, filled.reward, tip.height + 1)];
            txs.extend(filled.transfers.into_iter().map(Transaction::Transfer));
            let mut txs = fit_in_block(txs, params.max_block_bytes);
            // What fit is a prefix of what was filled, so its fees cannot overflow where all did not.
            let fees = txs.iter().filter_map(Transaction::as_transfer).fold(0u64, |sum, t| sum.saturating_add(t.fee));
            if let Some(Transaction::Reward(reward)) = txs.first_mut() {
                reward.amount = params.reward.saturating_add(fees);
            }
            if store.tip()? != tip {
                continue; // the applier moved the tip while we read the mempool
            }
            let timestamp = crate::clock::now_ms().max(median_time_past(store, tip.hash)? + 1);
            let bits = next_bits(store, params, &tip.hash)?;
            return Ok(Block::candidate(params.chain_tag(), tip.hash, tip.height, bits, timestamp, txs));
        }
    }
}
