//! The applier: one thread that reads both topics in offset order and applies each message to the
//! store together with its new offset. Consecutive transaction messages are applied as one batch
//! (one sled transaction); each block message is applied on its own.

use super::events::{BlockEvent, ChainEvents};
use super::halt::HaltReason;
use super::state::{applier_channels, ApplierControl, ApplierHandle, ApplierState};
use super::stats::{AppliedBlock, NodeStats, PARAMETER_MISMATCH, UNKNOWN_PARENT_ALARM};
use crate::clock::now_ms;
use crate::core::admission::{self, Pending, Refusal};
use crate::core::block::Block;
use crate::core::chain::{next_bits, ChainView, Outcome};
use crate::core::hash::BlockHash;
use crate::core::hash::TxId;
use crate::core::signature::{verdicts, verdicts_on_this_thread};
use crate::core::transaction::{id_of, Transfer, SIGNING_BYTES_LEN};
use crate::core::validate::{check_block, BlockError};
use crate::kafka::wire::decode_message;
use crate::kafka::{LogMessage, LogReader, Payload, ReadError};
use crate::logging::LogThrottle;
use crate::store::{MempoolLimits, Offered, OffsetUpdate, Positions, Store, StoreError, TopicPartition};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Most messages taken from the consumer before they are applied: bounds how long a block that
/// arrives meanwhile waits.
const MAX_BATCH: usize = 500;
/// How long the applier waits for a block when nothing is ready.
const IDLE_WAIT: Duration = Duration::from_millis(5);
/// How often catch-up progress is logged and positions are copied to Kafka's group offsets.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// Log lines about rejected messages: 20 per 10 s at most (a topic of junk is counted in full
/// in `/status`, not written line by line).
static REJECTION_LINES: LogThrottle = LogThrottle::new(20, Duration::from_secs(10));

/// What an applier is given: the store it writes, the consumer it reads, and where it reports.
pub(super) struct ApplierParts {
    /// The chain state written to.
    pub(super) store: Store,
    /// The assigned consumer.
    pub(super) reader: LogReader,
    /// Counters.
    pub(super) stats: Arc<NodeStats>,
    /// Where the new tip and each block's outcome are announced.
    pub(super) events: Arc<ChainEvents>,
    /// Offsets stored when the node started: anything read below them is a re-read.
    pub(super) start_offsets: Positions,
    /// Where the blocks topic ended when the node started.
    pub(super) blocks_end_at_start: u64,
    /// The blocks topic's one partition.
    pub(super) blocks_partition: TopicPartition,
    /// Bound of the mempool.
    pub(super) mempool_limits: MempoolLimits,
    /// Transfers this node verified when it accepted them over HTTP.
    pub(super) verified: Arc<super::verified::VerifiedIds>,
    /// Raised at shutdown; the applier finishes the batch in hand and stops.
    pub(super) shutdown: CancellationToken,
}

/// The applier: the only writer of the chain and the only owner of its [`ApplierState`].
pub(super) struct Applier {
    parts: ApplierParts,
    /// Its state, set here only, and the requests others send it.
    control: ApplierControl,
    /// The runtime a halted applier waits for a request on.
    runtime: tokio::runtime::Handle,
    /// The positions last copied to Kafka's group offsets, so unchanged ones are not sent again.
    last_committed: std::cell::RefCell<Option<Positions>>,
    /// A read error met after some messages of a round were read: reported by the next read.
    read_error: std::cell::Cell<Option<ReadError>>,
}

/// A block message read, decoded (or not), with its transfers whose signatures were verified.
struct BlockMessage {
    message: LogMessage,
    decoded: Result<Block, Rejected>,
    verified: HashSet<TxId>,
}

/// Why a block message holds no block to apply: the label it is counted by and the detail logged.
struct Rejected {
    reason: &'static str,
    detail: String,
}

/// Transaction messages waiting to be applied as one batch.
#[derive(Default)]
struct TxBatch {
    txs: Vec<Transfer>,
    positions: Positions,
}

impl Applier {
    /// Starts the applier on a thread of its own; the handle reads its state and asks it to read
    /// on after a bootstrap. A halted applier waits for that request on `runtime`.
    pub(super) fn spawn(
        parts: ApplierParts,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<(std::thread::JoinHandle<()>, ApplierHandle)> {
        let (control, handle) = applier_channels();
        let applier =
            Applier { parts, control, runtime, last_committed: Default::default(), read_error: Default::default() };
        let thread = std::thread::Builder::new().name("applier".into()).spawn(move || applier.run())?;
        Ok((thread, handle))
    }

    /// Runs until shutdown or a store failure (which halts consuming: the state on disk stays
    /// as the last committed message left it).
    fn run(mut self) {
        if let Err(e) = self.consume() {
            let why = HaltReason::Store { detail: e.to_string() };
            tracing::error!("applier stopped: {why}");
            self.control.set(ApplierState::Halted(why));
        }
        if let Err(e) = self.parts.store.flush() {
            tracing::error!("flushing the store at shutdown: {e}");
        }
    }

    fn consume(&mut self) -> Result<(), StoreError> {
        let mut last_report = Instant::now();
        self.check_caught_up()?;
        // A batch read and prepared while the one before it was applied (catch-up only).
        let mut ahead: Option<Result<Prepared, ReadError>> = None;
        while !self.parts.shutdown.is_cancelled() {
            let read = ahead.take().unwrap_or_else(|| {
                self.next_batch(IDLE_WAIT).map(|batch| self.preparer().prepare(batch, HashMap::new()))
            });
            let batch = match read {
                Ok(batch) => batch,
                Err(ReadError::OffsetLost) => {
                    if !self.halt_until_bootstrapped(HaltReason::OffsetLost)? {
                        return Ok(());
                    }
                    continue;
                }
                Err(ReadError::Unreachable) => {
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
                Err(ReadError::Kafka(e)) => {
                    tracing::warn!("{e}; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
            };
            ahead = self.apply_reading_ahead(batch)?;
            if last_report.elapsed() >= REPORT_EVERY {
                last_report = Instant::now();
                self.report()?;
            }
        }
        Ok(())
    }

    /// Halts on a retention gap, saying `why`, until a bootstrap asks to read on and the
    /// consumer could be pointed at the broker's earliest offsets (true), or the node shuts down
    /// (false). Until the consumer points there, reading on would skip what was read and dropped
    /// before the halt, so a failed re-seek halts again and waits for the next bootstrap.
    fn halt_until_bootstrapped(&mut self, why: HaltReason) -> Result<bool, StoreError> {
        tracing::error!("{why}");
        self.control.set(ApplierState::Halted(why));
        loop {
            let shutdown = self.parts.shutdown.clone();
            let Some(request) = self.runtime.clone().block_on(self.control.next_request(&shutdown)) else {
                return Ok(false);
            };
            self.control.set(ApplierState::Bootstrapping);
            let outcome = self.read_after_gap();
            let state = match &outcome {
                Ok(state) => state.clone(),
                Err(e) => ApplierState::Halted(HaltReason::Store { detail: e.to_string() }),
            };
            self.control.set(state.clone());
            // The bootstrap's caller may have gone away; the state says the same.
            let _ = request.answer.send(state);
            if outcome? == ApplierState::Running {
                return Ok(true);
            }
        }
    }

    /// Points the consumer at what the broker still holds and stores those positions; reading
    /// from there is deliberate, so it does not count as re-reading. Answers the state the
    /// applier is then in: running, or halted again when the consumer could not be pointed there.
    fn read_after_gap(&mut self) -> Result<ApplierState, StoreError> {
        let stored = self.parts.store.offsets()?;
        let positions = match self.parts.reader.restart_after_gap(&stored) {
            Ok(positions) => positions,
            Err(e) => {
                let why = HaltReason::ResumeFailed { detail: e.to_string() };
                tracing::error!("{why}");
                return Ok(ApplierState::Halted(why));
            }
        };
        self.parts.store.skip_to(&OffsetUpdate::all(&positions))?;
        self.parts.start_offsets.extend(positions);
        tracing::info!("bootstrapped from peers; reading the topics again from the earliest offsets the broker holds");
        Ok(ApplierState::Running)
    }

    /// Blocks first (waiting up to `wait` for one), then whatever transactions are ready, up to
    /// [`MAX_BATCH`] messages: a block never waits behind a backlog of transactions.
    /// A read error that follows messages already read is kept for the next call, so those
    /// messages are applied first: dropping them would store later offsets past them.
    fn next_batch(&self, wait: Duration) -> Result<Vec<LogMessage>, ReadError> {
        if let Some(error) = self.read_error.take() {
            return Err(error);
        }
        let mut batch = Vec::new();
        let mut wait = wait;
        while batch.len() < MAX_BATCH {
            match self.parts.reader.poll_blocks(wait) {
                Some(Ok(message)) => batch.push(message),
                Some(Err(e)) => return self.partial(batch, e),
                None => break,
            }
            wait = Duration::ZERO;
        }
        while batch.len() < MAX_BATCH {
            match self.parts.reader.poll(Duration::ZERO) {
                Some(Ok(message)) => batch.push(message),
                Some(Err(e)) => return self.partial(batch, e),
                None => break,
            }
        }
        Ok(batch)
    }

    /// The messages read before `error`, keeping the error for the next read; or the error
    /// when nothing was read.
    fn partial(&self, batch: Vec<LogMessage>, error: ReadError) -> Result<Vec<LogMessage>, ReadError> {
        if batch.is_empty() {
            return Err(error);
        }
        self.read_error.set(Some(error));
        Ok(batch)
    }

    /// Applies `batch`. A full batch means the topics hold more (catch-up): the next batch is
    /// then read at once and prepared (decoded, its blocks' signatures verified) on another
    /// thread while this one is applied, and returned. Otherwise nothing is read ahead, so a
    /// block arriving later is not held back.
    fn apply_reading_ahead(&self, batch: Prepared) -> Result<Option<Result<Prepared, ReadError>>, StoreError> {
        if batch.messages.len() < MAX_BATCH {
            self.apply(batch)?;
            return Ok(None);
        }
        let next = self.next_batch(Duration::ZERO);
        // One thread for the read-ahead: the applier keeps a core of its own.
        let preparer = Preparer { spread: false, ..self.preparer() };
        // The next batch's first block is most likely a child of this batch's last, which is
        // not stored until this batch is applied: its blocks count as known parents ahead.
        let parents = batch.blocks.iter().flatten().flatten().map(|block| (block.hash(), block.header.bits)).collect();
        let mut prepared = None;
        let applied = rayon::in_place_scope(|scope| {
            scope.spawn(|_| prepared = Some(next.map(|batch| preparer.prepare(batch, parents))));
            self.apply(batch)
        });
        applied.map(|()| prepared)
    }

    /// What prepares a batch: the parts of the applier another thread may use.
    fn preparer(&self) -> Preparer<'_> {
        Preparer { store: &self.parts.store, stats: &self.parts.stats, spread: true }
    }

    fn apply(&self, batch: Prepared) -> Result<(), StoreError> {
        let Prepared { messages: batch, mut blocks, mut verified } = batch;
        let mut txs = TxBatch::default();
        let mut run: Vec<BlockMessage> = Vec::new();
        let mut blocks_seen = false;
        for ((message, block), verified) in batch.into_iter().zip(blocks.iter_mut()).zip(verified.iter_mut()) {
            let reread = self.parts.start_offsets.get(&message.position).is_some_and(|start| message.offset < *start);
            self.parts.stats.consumed(reread);
            let next = message.offset + 1;
            match message.kind {
                Payload::Transaction => {
                    self.apply_block_run(std::mem::take(&mut run))?;
                    match decode_message::<Transfer>(&message.value) {
                        Ok(tx) => txs.txs.push(tx),
                        Err(e) => self.reject_message(&message, e.reason(), &e),
                    }
                    txs.positions.insert(message.position, next);
                }
                Payload::Block => {
                    self.apply_transactions(std::mem::take(&mut txs))?;
                    let decoded = block.take().unwrap_or_else(|| self.preparer().decode_block(&message));
                    run.push(BlockMessage { message, decoded, verified: std::mem::take(verified) });
                    blocks_seen = true;
                }
            }
        }
        self.apply_block_run(run)?;
        self.apply_transactions(txs)?;
        if blocks_seen {
            self.check_caught_up()?;
        }
        Ok(())
    }

    fn apply_transactions(&self, batch: TxBatch) -> Result<(), StoreError> {
        if batch.positions.is_empty() {
            return Ok(());
        }
        let offsets = OffsetUpdate::all(&batch.positions);
        let chain = self.parts.store.params().chain_tag();
        let signing: Vec<_> = batch.txs.iter().map(|t| t.signing_bytes(chain)).collect();
        // Those this node verified when it accepted them are not verified again.
        let known: Vec<bool> = batch
            .txs
            .iter()
            .zip(&signing)
            .map(|(t, bytes)| self.parts.verified.take(&id_of(bytes, &t.signature)))
            .collect();
        // The cheap rules first: a transfer its sender's account refuses on its own (malformed, a
        // nonce used or too far ahead, a cost above the balance) is refused without verifying
        // its signature, so junk from keys without funds costs a lookup, not a verification.
        // Pending transfers only add refusals, so admission would refuse these too.
        let refused_early = self.refused_by_account(&batch.txs, &known)?;
        let started = Instant::now();
        let items: Vec<_> = batch
            .txs
            .iter()
            .zip(&signing)
            .zip(known.iter().zip(&refused_early))
            .filter(|(_, (known, refused))| !**known && refused.is_none())
            .map(|((t, bytes), _)| t.signed_message(bytes))
            .collect();
        let mut checked = verdicts(&items).into_iter();
        let valid: Vec<bool> = known
            .iter()
            .zip(&refused_early)
            .map(|(known, refused)| *known || (refused.is_none() && checked.next().unwrap_or(false)))
            .collect();
        if !items.is_empty() {
            self.parts.stats.busy("verify_signatures", started.elapsed());
        }
        self.admit(batch.txs, valid, refused_early, &offsets)
    }

    /// For each of `txs` not `known` (verified already), the refusal its sender's account at
    /// the tip gives it on its own, before any signature is looked at.
    fn refused_by_account(&self, txs: &[Transfer], known: &[bool]) -> Result<Vec<Option<Refusal>>, StoreError> {
        let unknown = txs.iter().zip(known).filter(|(_, known)| !**known).map(|(t, _)| t);
        let accounts = self.parts.store.sender_accounts(unknown)?;
        Ok(txs
            .iter()
            .zip(known)
            .map(|(t, known)| match known {
                true => None,
                false => {
                    let account = accounts.get(&t.sender).copied().unwrap_or_default();
                    admission::check(t, account, Pending::default(), admission::ANY_NONCE_AHEAD).err()
                }
            })
            .collect())
    }

    /// Offers `txs` to the mempool with their signature verdicts (`valid`), except those
    /// `refused_early`, which are only counted; stores the batch's positions with it.
    fn admit(
        &self,
        txs: Vec<Transfer>,
        valid: Vec<bool>,
        refused_early: Vec<Option<Refusal>>,
        offsets: &[OffsetUpdate],
    ) -> Result<(), StoreError> {
        let mut offered = Vec::with_capacity(txs.len());
        for ((transfer, signature_valid), refused) in txs.into_iter().zip(valid).zip(refused_early) {
            match refused {
                Some(refusal) => self.parts.stats.rejected(Payload::Transaction, refusal.topic_reason()),
                None => offered.push(Offered { transfer, signature_valid }),
            }
        }
        let started = Instant::now();
        let outcomes = self.parts.store.admit_transactions(&offered, offsets, self.parts.mempool_limits)?;
        self.parts.stats.busy("apply_transactions", started.elapsed());
        let mut admitted = 0;
        for outcome in outcomes {
            match outcome {
                Ok(()) => admitted += 1,
                // A transfer whose nonce a block already used was read after that block: it is
                // confirmed (or conflicts), not an attack, but it is counted all the same.
                Err(refusal) => self.parts.stats.rejected(Payload::Transaction, refusal.topic_reason()),
            }
        }
        self.parts.stats.admitted(admitted);
        Ok(())
    }

    /// Applies a run of consecutive block messages in one store batch with the position after
    /// the last (messages that hold no block are counted and only move the position), then
    /// reports each block's outcomes in order.
    fn apply_block_run(&self, run: Vec<BlockMessage>) -> Result<(), StoreError> {
        let Some(last) = run.last() else { return Ok(()) };
        let offset = OffsetUpdate { position: last.message.position.clone(), next: last.message.offset + 1 };
        let mut verified = HashSet::new();
        let mut blocks = Vec::new();
        let mut applied = Vec::new();
        for BlockMessage { message, decoded, verified: ids } in run {
            match decoded {
                Ok(block) => {
                    verified.extend(ids);
                    // The blocks topic stamps messages with the broker's append time
                    // (LogAppendTime), the same on every node; a message without one (a topic
                    // switched to CreateTime since the start check) cannot vouch for its block's
                    // timestamp, so every such block is too new.
                    let arrival_ms = message.append_ms.unwrap_or(0);
                    applied.push((message, block.hash(), block.transactions.len(), block.header.prev_hash));
                    blocks.push((block, arrival_ms));
                }
                Err(rejected) => self.reject_message(&message, rejected.reason, &rejected.detail),
            }
        }
        let started = Instant::now();
        let outcomes = if blocks.is_empty() {
            self.parts.store.skip_to(std::slice::from_ref(&offset))?;
            Vec::new()
        } else {
            self.parts.store.apply_blocks(blocks, &[offset], verified)?
        };
        self.parts.stats.busy("apply_blocks", started.elapsed());
        let applied_ms = now_ms();
        for ((message, hash, txs, parent), outcomes) in applied.into_iter().zip(outcomes) {
            for outcome in &outcomes {
                if let Outcome::Stored { hash: stored, height, .. } = outcome {
                    let from_message = *stored == hash;
                    self.parts.stats.remember_block(AppliedBlock {
                        height: *height,
                        hash: *stored,
                        txs: if from_message { txs } else { 0 },
                        produced_ms: if from_message { message.created_ms } else { None },
                        applied_ms,
                    });
                }
                self.record(outcome, message.offset);
            }
            self.track_unknown_parents(&outcomes, &parent)?;
        }
        self.parts.events.tip_is(self.parts.store.tip()?);
        // Once the blocks are visible: the confirmed transfers' records are housekeeping.
        let started = Instant::now();
        if self.parts.store.sweep_mempool()? > 0 {
            self.parts.stats.busy("sweep_mempool", started.elapsed());
        }
        Ok(())
    }

    /// Keeps the count of blocks in a row whose parent this node does not hold, whether they were
    /// pooled as orphans or refused (a block built on another genesis usually also breaks a
    /// parameter rule: another reward, other bits), and says once when it looks like a chain
    /// parameter mismatch.
    fn track_unknown_parents(&self, outcomes: &[Outcome], parent: &BlockHash) -> Result<(), StoreError> {
        // `None`: the outcome says nothing about the parent (a duplicate we hold, nothing stored).
        let unknown = match outcomes.first() {
            Some(Outcome::Stored { .. }) => Some(false),
            Some(Outcome::Orphaned(_)) => Some(true),
            Some(Outcome::Invalid(..)) => Some(self.parts.store.meta(parent)?.is_none()),
            Some(Outcome::Duplicate(_) | Outcome::OrphanDropped(_)) | None => None,
        };
        match unknown {
            Some(false) => self.parts.stats.parent_known(),
            Some(true) if self.parts.stats.unknown_parent() => {
                tracing::warn!(streak = UNKNOWN_PARENT_ALARM, "{PARAMETER_MISMATCH}")
            }
            Some(true) | None => {}
        }
        Ok(())
    }

    fn record(&self, outcome: &Outcome, offset: u64) {
        let event = match outcome {
            Outcome::Stored { hash, height, tip_moved, reorg_depth } => {
                self.parts.stats.applied();
                if *reorg_depth > 0 {
                    tracing::info!(%hash, height, reorg_depth, "reorganization");
                }
                BlockEvent::Stored { hash: *hash, height: *height, tip_moved: *tip_moved }
            }
            Outcome::Orphaned(hash) => {
                tracing::info!(%hash, offset, "block waits for its parent");
                return;
            }
            Outcome::Duplicate(hash) => {
                self.parts.stats.rejected(Payload::Block, "duplicate");
                BlockEvent::Rejected { hash: *hash }
            }
            Outcome::OrphanDropped(hash) => {
                self.parts.stats.rejected(Payload::Block, "orphan_dropped");
                BlockEvent::Rejected { hash: *hash }
            }
            Outcome::Invalid(hash, error) => {
                self.parts.stats.rejected(Payload::Block, error.reason());
                if let Some(held_back) = REJECTION_LINES.admit() {
                    tracing::warn!(%hash, offset, held_back, "rejected block: {error}");
                }
                BlockEvent::Rejected { hash: *hash }
            }
        };
        self.parts.events.block(event);
    }

    fn reject_message(&self, message: &LogMessage, reason: &'static str, error: &dyn std::fmt::Display) {
        self.parts.stats.rejected(message.kind, reason);
        if let Some(held_back) = REJECTION_LINES.admit() {
            tracing::warn!(partition = %message.position, offset = message.offset, held_back, "rejected message: {error}");
        }
    }

    fn check_caught_up(&self) -> Result<(), StoreError> {
        if self.parts.stats.is_caught_up() {
            return Ok(());
        }
        let next = self.parts.store.offset(&self.parts.blocks_partition)?.unwrap_or(0);
        if next >= self.parts.blocks_end_at_start {
            self.parts.stats.set_caught_up();
            tracing::info!(
                next_offset = next,
                height = self.parts.store.tip()?.height,
                "caught up with the blocks topic"
            );
        }
        Ok(())
    }

    fn report(&self) -> Result<(), StoreError> {
        match self.parts.reader.assign_added_partitions() {
            Ok(added) if !added.is_empty() => {
                let added: Vec<String> = added.iter().map(ToString::to_string).collect();
                tracing::info!(?added, "the transactions topic has new partitions; reading them from their beginning");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("{e}; trying again in {} s", REPORT_EVERY.as_secs()),
        }
        let positions = self.parts.store.offsets()?;
        if !self.parts.stats.is_caught_up() {
            let next = positions.get(&self.parts.blocks_partition).copied().unwrap_or(0);
            tracing::info!(
                next_offset = next,
                target = self.parts.blocks_end_at_start,
                "catching up with the blocks topic"
            );
        }
        // A commit waits for the group coordinator: while the brokers are away it would only
        // queue up (and hold the consumer's close until it times out).
        if self.parts.reader.brokers_reachable() && self.last_committed.borrow().as_ref() != Some(&positions) {
            match self.parts.reader.commit(&positions) {
                Ok(()) => *self.last_committed.borrow_mut() = Some(positions),
                Err(e) => tracing::debug!("copying offsets to Kafka: {e}"),
            }
        }
        Ok(())
    }
}

/// A batch of messages read, with the blocks among them decoded and the signatures of their
/// transfers verified: the work that does not touch the store's state, which can run on another
/// thread while the batch before is applied.
struct Prepared {
    /// The messages, in offset order.
    messages: Vec<LogMessage>,
    /// For each message, its decoded block (`None` for a transaction message).
    blocks: Vec<Option<Result<Block, Rejected>>>,
    /// For each message, the ids of its block's transfers whose signatures verified.
    verified: Vec<HashSet<TxId>>,
}

/// Decodes and verifies batches; shared by reference with the thread that prepares ahead.
#[derive(Clone, Copy)]
struct Preparer<'a> {
    store: &'a Store,
    stats: &'a NodeStats,
    /// Whether signatures are verified on every core of the rayon pool, or on one thread.
    spread: bool,
}

impl Preparer<'_> {
    /// Decodes the blocks of `messages` and verifies their transfers' signatures. `parents`
    /// names blocks not stored yet that the batch's blocks may extend (those of the batch being
    /// applied meanwhile), with the bits each carries.
    fn prepare(&self, messages: Vec<LogMessage>, parents: HashMap<BlockHash, u32>) -> Prepared {
        let blocks: Vec<Option<Result<Block, Rejected>>> = messages
            .iter()
            .map(|message| (message.kind == Payload::Block).then(|| self.decode_block(message)))
            .collect();
        let verified = self.verify_block_signatures(&blocks, parents);
        Prepared { messages, blocks, verified }
    }

    /// The block a message holds, or why it holds none. The size bound is consensus (a block's
    /// canonical encoding is its message body, byte for byte): checking it on the message spares
    /// decoding what would be refused anyway.
    fn decode_block(&self, message: &LogMessage) -> Result<Block, Rejected> {
        let max = self.store.params().max_block_bytes;
        if message.value.len().saturating_sub(1) > max {
            let error = BlockError::TooLarge(message.value.len() - 1);
            return Err(Rejected { reason: error.reason(), detail: error.to_string() });
        }
        decode_message(&message.value).map_err(|e| Rejected { reason: e.reason(), detail: e.to_string() })
    }

    /// Verifies, in parallel batches, the signatures of the transfers in the decoded `blocks`
    /// that the mempool has not verified already; returns, for each message, the ids of its
    /// block's transfers found valid. A batch read during catch-up is mostly blocks, and one
    /// verification pass over all of them spreads the work over every core instead of
    /// verifying block by block. Only blocks that pass the cheap checks of their own (proof of
    /// work, size, transaction count, Merkle root) and whose parent is known, with the target
    /// their height requires, are worth it: anything else (junk, an orphan, a block at the
    /// starting difficulty where more is required) costs one hash and a lookup, whatever it
    /// holds. A block left out is not trusted for it: applying it verifies what it needs, after
    /// the cheaper ledger checks. `linked` starts with the unstored parents [`Preparer::prepare`]
    /// was given: their bits are what they claim, which only decides what is worth verifying.
    fn verify_block_signatures(
        &self,
        blocks: &[Option<Result<Block, Rejected>>],
        mut linked: HashMap<BlockHash, u32>,
    ) -> Vec<HashSet<TxId>> {
        let mut verified = vec![HashSet::new(); blocks.len()];
        let started = Instant::now();
        let chain = self.store.params().chain_tag();
        let mut unchecked: Vec<(usize, TxId, [u8; SIGNING_BYTES_LEN], &Transfer)> = Vec::new();
        let params = self.store.params();
        // Blocks found worth verifying, with their bits: children may link to them.
        for (index, block) in blocks.iter().enumerate() {
            let Some(Ok(block)) = block else { continue };
            if check_block(block, params, chain).is_err()
                || self.required_bits(block, &linked) != Some(block.header.bits)
            {
                continue;
            }
            linked.insert(block.hash(), block.header.bits);
            for transfer in block.transfers() {
                let bytes = transfer.signing_bytes(chain);
                let id = id_of(&bytes, &transfer.signature);
                if !self.store.signature_checked(&id) {
                    unchecked.push((index, id, bytes, transfer));
                }
            }
        }
        if unchecked.is_empty() {
            return verified;
        }
        let items: Vec<_> = unchecked.iter().map(|(_, _, bytes, t)| t.signed_message(bytes)).collect();
        let valid = if self.spread { verdicts(&items) } else { verdicts_on_this_thread(&items) };
        for ((index, id, _, _), valid) in unchecked.iter().zip(valid) {
            if valid {
                verified[*index].insert(*id);
            }
        }
        self.stats.busy("verify_signatures", started.elapsed());
        verified
    }

    /// The bits `block` must carry when its parent is known: stored, or an earlier block of the
    /// batch in `linked` (then only between retargets, where a child keeps its parent's bits).
    /// `None` when the parent is unknown. The store may change meanwhile (this runs beside the
    /// applier while catching up): the answer only decides what is verified ahead, never a verdict.
    fn required_bits(&self, block: &Block, linked: &HashMap<BlockHash, u32>) -> Option<u32> {
        let parent = block.header.prev_hash;
        if let Some(bits) = linked.get(&parent) {
            return self.store.params().retarget_window_start(block.header.height).is_none().then_some(*bits);
        }
        // An unknown parent is an error of next_bits, hence `None`.
        next_bits(self.store, self.store.params(), &parent).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::{child, genesis_block, params, transfer};
    use crate::kafka::wire::encode_message;
    use crate::store::DEFAULT_CACHE_BYTES;

    fn message(offset: u64, block: &Block) -> LogMessage {
        LogMessage {
            kind: Payload::Block,
            offset,
            value: encode_message(block),
            position: TopicPartition::new("blocks", 0),
            created_ms: None,
            append_ms: None,
        }
    }

    #[test]
    fn a_batch_read_ahead_verifies_blocks_whose_parent_is_still_being_applied() {
        let dir = tempfile::tempdir().unwrap();
        let p = params();
        let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
        let stats = NodeStats::default();
        let preparer = Preparer { store: &store, stats: &stats, spread: false };
        // b1 closes the batch being applied: not stored yet while b2 and b3 are read ahead.
        let b1 = child(&p, &genesis_block(), "m", &[transfer(1, 0)]);
        let b2 = child(&p, &b1, "m", &[transfer(1, 1)]);
        let b3 = child(&p, &b2, "m", &[transfer(2, 0)]);
        let ahead = || vec![message(1, &b2), message(2, &b3)];
        let verified_per_block = |prepared: Prepared| prepared.verified.iter().map(HashSet::len).collect::<Vec<_>>();
        let unlinked = preparer.prepare(ahead(), HashMap::new());
        assert_eq!(verified_per_block(unlinked), [0, 0], "an unknown parent: nothing is worth verifying ahead");
        let parents = HashMap::from([(b1.hash(), b1.header.bits)]);
        assert_eq!(verified_per_block(preparer.prepare(ahead(), parents)), [1, 1]);
    }
}
