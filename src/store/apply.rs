//! Writing the chain state: each consumed message's effects and its new offset, as one atomic
//! sled batch. A write lock makes the read-decide-write sequence of one message exclusive.

use super::keys::{self, key, numbered};
use super::{Store, StoreError};
use crate::core::block::Block;
use crate::core::chain::{process_block, ChainUpdate, ChainView, MempoolOp, Outcome};
use crate::core::encoding;
use crate::core::hash::TxId;
use crate::core::transaction::{Transaction, TxError};
use sled::Batch;
use std::collections::{HashMap, HashSet};
use std::sync::MutexGuard;

/// The next offset to read for one consumer position (a topic partition, named by the transport).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetUpdate {
    /// Name of the position.
    pub key: String,
    /// Offset of the next message to read there.
    pub next: u64,
}

/// What became of a transaction offered to the mempool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdmitOutcome {
    /// Queued for a block.
    Added,
    /// Already waiting in the mempool.
    AlreadyPooled,
    /// Already in a main-chain block.
    AlreadyConfirmed,
    /// Not well formed.
    Invalid(TxError),
    /// The mempool is at its bound.
    MempoolFull,
}

/// Mempool counters carried through one batch.
struct MempoolCounters {
    len: u64,
    next_seq: u64,
}

impl Store {
    /// Applies a block with the log positions it moves (none for a block fetched from a peer),
    /// atomically.
    pub fn apply_block(&self, block: Block, offsets: &[OffsetUpdate]) -> Result<Vec<Outcome>, StoreError> {
        let _writer = self.lock_writes();
        let update = process_block(self, self.params(), block)?;
        let mut batch = Batch::default();
        self.write_update(&update, &mut batch)?;
        write_offsets(offsets, &mut batch);
        self.tree.apply_batch(batch)?;
        Ok(update.outcomes)
    }

    /// Records that the message before `offset` was consumed without changing the chain (it
    /// was rejected as malformed).
    pub fn skip_to(&self, offset: &OffsetUpdate) -> Result<(), StoreError> {
        let _writer = self.lock_writes();
        let mut batch = Batch::default();
        write_offsets(std::slice::from_ref(offset), &mut batch);
        Ok(self.tree.apply_batch(batch)?)
    }

    /// Offers transactions read from the log to the mempool (holding at most `max_mempool`) and
    /// stores the positions after them, atomically.
    pub fn admit_transactions(
        &self,
        txs: &[Transaction],
        offsets: &[OffsetUpdate],
        max_mempool: u64,
    ) -> Result<Vec<AdmitOutcome>, StoreError> {
        let _writer = self.lock_writes();
        let mut batch = Batch::default();
        let mut counters = self.mempool_counters()?;
        let mut added = HashSet::new();
        let mut outcomes = Vec::with_capacity(txs.len());
        for tx in txs {
            let id = tx.id();
            let outcome = if let Err(e) = tx.check_transfer() {
                AdmitOutcome::Invalid(e)
            } else if added.contains(&id) || self.mempool_contains(&id)? {
                AdmitOutcome::AlreadyPooled
            } else if self.main_tx_height(&id)?.is_some() {
                AdmitOutcome::AlreadyConfirmed
            } else if counters.len >= max_mempool {
                AdmitOutcome::MempoolFull
            } else {
                pool(&mut batch, &mut counters, id, tx);
                added.insert(id);
                AdmitOutcome::Added
            };
            outcomes.push(outcome);
        }
        write_counters(&counters, &mut batch);
        write_offsets(offsets, &mut batch);
        self.tree.apply_batch(batch)?;
        Ok(outcomes)
    }

    /// Remembers a peer node's base URL.
    pub fn add_peer(&self, url: &str) -> Result<(), StoreError> {
        self.tree.insert(key(keys::PEER, url.as_bytes()), &[])?;
        Ok(())
    }

    fn lock_writes(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn mempool_counters(&self) -> Result<MempoolCounters, StoreError> {
        Ok(MempoolCounters {
            len: self.state_counter(keys::MEMPOOL_LEN)?,
            next_seq: self.state_counter(keys::MEMPOOL_NEXT)?,
        })
    }

    /// Adds a consensus update to `batch`.
    fn write_update(&self, update: &ChainUpdate, batch: &mut Batch) -> Result<(), StoreError> {
        for (hash, block, meta) in &update.blocks {
            batch.insert(key(keys::BLOCK, &hash.0), super::block_record(block, *meta));
        }
        for (height, entry) in &update.main_index {
            let k = &numbered(keys::MAIN, *height)[..];
            match entry {
                Some(hash) => batch.insert(k, &hash.0[..]),
                None => batch.remove(k),
            }
        }
        for (id, entry) in &update.tx_index {
            let k = key(keys::TX, &id.0);
            match entry {
                Some(height) => batch.insert(k, &height.to_be_bytes()[..]),
                None => batch.remove(k),
            }
        }
        if let Some(tip) = &update.tip {
            batch.insert(key(keys::STATE, keys::TIP), encoding::encode(tip));
        }
        self.write_mempool_ops(update, batch)?;
        for seq in &update.orphans_removed {
            batch.remove(&numbered(keys::ORPHAN, *seq)[..]);
        }
        for (seq, block) in &update.orphans_added {
            batch.insert(&numbered(keys::ORPHAN, *seq)[..], encoding::encode(block));
        }
        Ok(())
    }

    /// Applies mempool operations in order, reading the stored mempool through an overlay of the
    /// batch's own changes. An added transaction already pooled or confirmed is skipped.
    fn write_mempool_ops(&self, update: &ChainUpdate, batch: &mut Batch) -> Result<(), StoreError> {
        if update.mempool.is_empty() {
            return Ok(());
        }
        let mut counters = self.mempool_counters()?;
        let mut pooled: HashMap<TxId, Option<u64>> = HashMap::new();
        for op in &update.mempool {
            match op {
                MempoolOp::Add(tx) => {
                    let id = tx.id();
                    let in_pool = match pooled.get(&id) {
                        Some(seq) => seq.is_some(),
                        None => self.mempool_contains(&id)?,
                    };
                    let confirmed = match update.tx_index.get(&id) {
                        Some(height) => height.is_some(),
                        None => self.main_tx_height(&id)?.is_some(),
                    };
                    if !in_pool && !confirmed {
                        pooled.insert(id, Some(counters.next_seq));
                        pool(batch, &mut counters, id, tx);
                    }
                }
                MempoolOp::Remove(id) => {
                    let seq = match pooled.get(id) {
                        Some(seq) => *seq,
                        None => self.mempool_seq(id)?,
                    };
                    if let Some(seq) = seq {
                        batch.remove(&numbered(keys::MEMPOOL, seq)[..]);
                        batch.remove(key(keys::MEMPOOL_ID, &id.0));
                        counters.len = counters.len.saturating_sub(1);
                        pooled.insert(*id, None);
                    }
                }
            }
        }
        write_counters(&counters, batch);
        Ok(())
    }
}

/// Queues `tx` at the back of the mempool.
fn pool(batch: &mut Batch, counters: &mut MempoolCounters, id: TxId, tx: &Transaction) {
    let seq = counters.next_seq;
    batch.insert(&numbered(keys::MEMPOOL, seq)[..], encoding::encode(tx));
    batch.insert(key(keys::MEMPOOL_ID, &id.0), &seq.to_be_bytes()[..]);
    counters.next_seq += 1;
    counters.len += 1;
}

fn write_counters(counters: &MempoolCounters, batch: &mut Batch) {
    batch.insert(key(keys::STATE, keys::MEMPOOL_LEN), &counters.len.to_be_bytes()[..]);
    batch.insert(key(keys::STATE, keys::MEMPOOL_NEXT), &counters.next_seq.to_be_bytes()[..]);
}

fn write_offsets(offsets: &[OffsetUpdate], batch: &mut Batch) {
    for offset in offsets {
        batch.insert(key(keys::OFFSET, offset.key.as_bytes()), &offset.next.to_be_bytes()[..]);
    }
}
