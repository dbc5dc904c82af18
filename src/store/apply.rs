//! Writing the chain state: each consumed message's effects and its new offset, in one sled
//! transaction.

use super::{
    be_u64, flatten_tx_error, Store, StoreError, STATE_MEMPOOL_LEN, STATE_MEMPOOL_NEXT, STATE_TIP,
};
use crate::core::block::Block;
use crate::core::chain::{process_block, ChainUpdate, ChainView, MempoolOp, Outcome};
use crate::core::encoding;
use crate::core::transaction::{Transaction, TxError};
use sled::transaction::{
    ConflictableTransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;
use std::convert::Infallible;

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

/// Values encoded before the transaction starts, so the closure (which sled may retry) only
/// moves bytes.
struct Encoded {
    blocks: Vec<([u8; 32], Vec<u8>, Vec<u8>)>,
    main: Vec<([u8; 8], Option<[u8; 32]>)>,
    tx_index: Vec<([u8; 32], Option<[u8; 8]>)>,
    tip: Option<Vec<u8>>,
    mempool: Vec<EncodedMempoolOp>,
    orphans_added: Vec<([u8; 8], Vec<u8>)>,
    orphans_removed: Vec<[u8; 8]>,
    offsets: Vec<(Vec<u8>, [u8; 8])>,
}

enum EncodedMempoolOp {
    Add { id: [u8; 32], tx: Vec<u8> },
    Remove { id: [u8; 32] },
}

type TxResult<T> = Result<T, UnabortableTransactionError>;

impl Store {
    /// Applies a block with the log positions it moves (none for a block fetched from a peer),
    /// atomically.
    pub fn apply_block(&self, block: Block, offsets: &[OffsetUpdate]) -> Result<Vec<Outcome>, StoreError> {
        let _writer = self.lock_writes();
        let update = process_block(self, self.params(), block)?;
        let outcomes = update.outcomes.clone();
        self.commit(Encoded::from_update(update, offsets))?;
        Ok(outcomes)
    }

    fn lock_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers a peer node's base URL.
    pub fn add_peer(&self, url: &str) -> Result<(), StoreError> {
        self.peers.insert(url.as_bytes(), &[])?;
        Ok(())
    }

    /// Records that the messages before `offset` were consumed without changing the chain (they
    /// were rejected as malformed).
    pub fn skip_to(&self, offset: &OffsetUpdate) -> Result<(), StoreError> {
        let _writer = self.lock_writes();
        self.commit(Encoded::from_update(ChainUpdate::default(), std::slice::from_ref(offset)))
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
        let mut outcomes = Vec::with_capacity(txs.len());
        let mut update = ChainUpdate::default();
        let mut pending_ids = std::collections::HashSet::new();
        let mut room = max_mempool.saturating_sub(self.mempool_len()?);
        for tx in txs {
            let id = tx.id();
            let outcome = if let Err(e) = tx.check_transfer() {
                AdmitOutcome::Invalid(e)
            } else if self.main_tx_height(&id)?.is_some() {
                AdmitOutcome::AlreadyConfirmed
            } else if self.mempool_contains(&id)? || !pending_ids.insert(id) {
                AdmitOutcome::AlreadyPooled
            } else if room == 0 {
                AdmitOutcome::MempoolFull
            } else {
                room -= 1;
                update.mempool.push(MempoolOp::Add(tx.clone()));
                AdmitOutcome::Added
            };
            outcomes.push(outcome);
        }
        self.commit(Encoded::from_update(update, offsets))?;
        Ok(outcomes)
    }

    fn commit(&self, enc: Encoded) -> Result<(), StoreError> {
        (
            &self.blocks,
            &self.block_meta,
            &self.main,
            &self.tx_index,
            &self.state,
            &self.mempool,
            &self.mempool_ids,
            &self.orphans,
            &self.offsets,
        )
            .transaction(|(blocks, block_meta, main, tx_index, state, mempool, mempool_ids, orphans, offsets)| {
                for (hash, block, meta) in &enc.blocks {
                    blocks.insert(hash, block.as_slice())?;
                    block_meta.insert(hash, meta.as_slice())?;
                }
                for (height, entry) in &enc.main {
                    match entry {
                        Some(hash) => main.insert(height, hash)?,
                        None => main.remove(height)?,
                    };
                }
                for (id, entry) in &enc.tx_index {
                    match entry {
                        Some(height) => tx_index.insert(id, height)?,
                        None => tx_index.remove(id)?,
                    };
                }
                if let Some(tip) = &enc.tip {
                    state.insert(STATE_TIP, tip.as_slice())?;
                }
                apply_mempool(&enc.mempool, state, mempool, mempool_ids, tx_index)?;
                for seq in &enc.orphans_removed {
                    orphans.remove(seq)?;
                }
                for (seq, block) in &enc.orphans_added {
                    orphans.insert(seq, block.as_slice())?;
                }
                for (key, next) in &enc.offsets {
                    offsets.insert(key.as_slice(), next)?;
                }
                Ok::<_, ConflictableTransactionError<Infallible>>(())
            })
            .map_err(flatten_tx_error)
    }
}

/// Applies mempool changes in order, keeping the length counter and the arrival sequence. An
/// added transaction already pooled or confirmed is skipped.
fn apply_mempool(
    ops: &[EncodedMempoolOp],
    state: &TransactionalTree,
    mempool: &TransactionalTree,
    mempool_ids: &TransactionalTree,
    tx_index: &TransactionalTree,
) -> TxResult<()> {
    if ops.is_empty() {
        return Ok(());
    }
    let counter = |key: &[u8]| -> TxResult<u64> {
        Ok(state.get(key)?.map_or(0, |raw| be_u64("state", &raw).unwrap_or(0)))
    };
    let mut len = counter(STATE_MEMPOOL_LEN)?;
    let mut next = counter(STATE_MEMPOOL_NEXT)?;
    for op in ops {
        match op {
            EncodedMempoolOp::Add { id, tx } => {
                if mempool_ids.get(id)?.is_some() || tx_index.get(id)?.is_some() {
                    continue;
                }
                let seq = next.to_be_bytes();
                next += 1;
                mempool.insert(&seq, tx.as_slice())?;
                mempool_ids.insert(id, &seq)?;
                len += 1;
            }
            EncodedMempoolOp::Remove { id } => {
                if let Some(seq) = mempool_ids.remove(id)? {
                    mempool.remove(seq)?;
                    len = len.saturating_sub(1);
                }
            }
        }
    }
    state.insert(STATE_MEMPOOL_LEN, &len.to_be_bytes())?;
    state.insert(STATE_MEMPOOL_NEXT, &next.to_be_bytes())?;
    Ok(())
}

impl Encoded {
    fn from_update(update: ChainUpdate, offsets: &[OffsetUpdate]) -> Self {
        Encoded {
            blocks: update
                .blocks
                .iter()
                .map(|(hash, block, meta)| (hash.0, encoding::encode(block), encoding::encode(meta)))
                .collect(),
            main: update
                .main_index
                .iter()
                .map(|(height, hash)| (height.to_be_bytes(), hash.map(|h| h.0)))
                .collect(),
            tx_index: update
                .tx_index
                .iter()
                .map(|(id, height)| (id.0, height.map(u64::to_be_bytes)))
                .collect(),
            tip: update.tip.map(|tip| encoding::encode(&tip)),
            mempool: update
                .mempool
                .iter()
                .map(|op| match op {
                    MempoolOp::Add(tx) => EncodedMempoolOp::Add { id: tx.id().0, tx: encoding::encode(tx) },
                    MempoolOp::Remove(id) => EncodedMempoolOp::Remove { id: id.0 },
                })
                .collect(),
            orphans_added: update
                .orphans_added
                .iter()
                .map(|(seq, block)| (seq.to_be_bytes(), encoding::encode(block)))
                .collect(),
            orphans_removed: update.orphans_removed.iter().map(|seq| seq.to_be_bytes()).collect(),
            offsets: offsets
                .iter()
                .map(|o| (o.key.as_bytes().to_vec(), o.next.to_be_bytes()))
                .collect(),
        }
    }
}
