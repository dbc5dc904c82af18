//! Writing the chain state: each consumed message's effects and its new offset, as one atomic
//! sled batch. A write lock makes the read-decide-write sequence of one message exclusive.

use super::keys::{self, key, numbered};
use super::mempool::{MempoolIndex, PoolChanges, PoolDelta};
use super::{KeptSideBranch, Store, StoreError};
use crate::core::block::Block;
use crate::core::chain::{process_block, ChainUpdate, ChainView, MempoolOp, Outcome};
use crate::core::encoding;
use crate::core::hash::TxId;
use crate::core::transaction::{Transaction, TxError};
use sled::Batch;
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

impl Store {
    /// Applies a block whose message the broker appended at `arrival_ms`, with the log positions
    /// it moves, atomically.
    pub fn apply_block(
        &self,
        block: Block,
        arrival_ms: u64,
        offsets: &[OffsetUpdate],
    ) -> Result<Vec<Outcome>, StoreError> {
        let _writer = self.lock_writes();
        let update = process_block(self, self.params(), block, arrival_ms)?;
        let mut batch = Batch::default();
        self.write_update(&update, &mut batch)?;
        let mut index = self.lock_mempool();
        let delta = self.write_mempool_ops(&update, &index, &mut batch)?;
        write_offsets(offsets, &mut batch);
        self.tree.apply_batch(batch)?;
        index.commit(delta);
        let mut orphans = self.lock_orphans();
        for seq in &update.orphans_removed {
            orphans.remove(seq);
        }
        orphans.extend(update.orphans_added.iter().map(|(entry, _)| (entry.seq, *entry)));
        drop(orphans);
        // A moved tip invalidates the kept branch; a message that neither moved the tip nor
        // extended a side branch leaves it as it was (still valid under the same tip).
        match update.side_branch {
            Some((head, branch)) => {
                let tip = self.tip()?.hash;
                *self.lock_side_branch() = Some(KeptSideBranch { head, tip, branch });
            }
            None if update.tip.is_some() => *self.lock_side_branch() = None,
            None => {}
        }
        Ok(update.outcomes)
    }

    /// Moves consumer positions without changing the chain (a message rejected as malformed, or
    /// the topics read again after a retention gap), in one batch.
    pub fn skip_to(&self, offsets: &[OffsetUpdate]) -> Result<(), StoreError> {
        let _writer = self.lock_writes();
        let mut batch = Batch::default();
        write_offsets(offsets, &mut batch);
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
        let ids: Vec<TxId> = txs.iter().map(Transaction::id).collect();
        let heights = self.main_tx_heights(&ids)?;
        // Taken after the reads above, so `/status` does not wait on them.
        let mut index = self.lock_mempool();
        let mut pool = index.changes();
        let mut batch = Batch::default();
        let mut outcomes = Vec::with_capacity(txs.len());
        for ((tx, id), height) in txs.iter().zip(ids).zip(heights) {
            let outcome = if let Err(e) = tx.check_transfer() {
                AdmitOutcome::Invalid(e)
            } else if pool.seq(&id).is_some() {
                AdmitOutcome::AlreadyPooled
            } else if height.is_some() {
                AdmitOutcome::AlreadyConfirmed
            } else if pool.len() >= max_mempool {
                AdmitOutcome::MempoolFull
            } else {
                queue(&mut batch, &mut pool, id, tx);
                AdmitOutcome::Added
            };
            outcomes.push(outcome);
        }
        write_offsets(offsets, &mut batch);
        let delta = pool.into_delta();
        self.tree.apply_batch(batch)?;
        index.commit(delta);
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
        for seq in &update.orphans_removed {
            batch.remove(&numbered(keys::ORPHAN, *seq)[..]);
        }
        for (entry, block) in &update.orphans_added {
            batch.insert(&numbered(keys::ORPHAN, entry.seq)[..], super::orphan_record(entry, block));
        }
        Ok(())
    }

    /// Adds the mempool operations to `batch` in order, on top of `index` and the update's own
    /// transaction index changes. An added transaction already pooled or confirmed is skipped.
    fn write_mempool_ops(
        &self,
        update: &ChainUpdate,
        index: &MempoolIndex,
        batch: &mut Batch,
    ) -> Result<PoolDelta, StoreError> {
        let mut pool = index.changes();
        for op in &update.mempool {
            match op {
                MempoolOp::Add(tx) => {
                    let id = tx.id();
                    let confirmed = match update.tx_index.get(&id) {
                        Some(height) => height.is_some(),
                        None => self.main_tx_height(&id)?.is_some(),
                    };
                    if pool.seq(&id).is_none() && !confirmed {
                        queue(batch, &mut pool, id, tx);
                    }
                }
                MempoolOp::Remove(id) => {
                    if let Some(seq) = pool.remove(id) {
                        batch.remove(&numbered(keys::MEMPOOL, seq)[..]);
                    }
                }
            }
        }
        Ok(pool.into_delta())
    }
}

/// Pools `tx` at the back of the mempool: its record in `batch`, its id in `pool`.
fn queue(batch: &mut Batch, pool: &mut PoolChanges<'_>, id: TxId, tx: &Transaction) {
    batch.insert(&numbered(keys::MEMPOOL, pool.add(id))[..], encoding::encode(tx));
}

fn write_offsets(offsets: &[OffsetUpdate], batch: &mut Batch) {
    for offset in offsets {
        batch.insert(key(keys::OFFSET, offset.key.as_bytes()), &offset.next.to_be_bytes()[..]);
    }
}
