//! Writing the chain state: each consumed message's effects and its new offset, as one atomic
//! sled batch. A write lock makes the read-decide-write sequence of one message exclusive.

use super::keys::{self, key, numbered};
use super::mempool::MempoolIndex;
use super::MissingRecord;
use super::{KeptSideBranch, Positions, StagedBlocks, Store, StoreError, TopicPartition};
use crate::core::account::{Account, Address};
use crate::core::admission::{self, Refusal};
use crate::core::block::Block;
use crate::core::chain::{ChainUpdate, ChainView, Outcome, Overlay};
use crate::core::encoding;
use crate::core::hash::TxId;
use crate::core::transaction::Transfer;
use crate::sync::lock;
use sled::Batch;
use std::collections::{HashMap, HashSet};
use std::sync::MutexGuard;

/// The next offset to read in one topic partition, stored with the effects of the messages
/// before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetUpdate {
    /// The partition.
    pub position: TopicPartition,
    /// Offset of the next message to read there.
    pub next: u64,
}

impl OffsetUpdate {
    /// One update per entry of `positions`.
    pub fn all(positions: &Positions) -> Vec<Self> {
        positions.iter().map(|(position, next)| Self { position: position.clone(), next: *next }).collect()
    }
}

/// Bounds of the mempool, from the node's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    /// Most transfers pooled.
    pub max_transfers: u64,
}

/// A transfer offered to the mempool with the verdict on its signature (checked by the caller,
/// in parallel, before the store's write lock is taken).
#[derive(Clone, Debug)]
pub struct Offered {
    /// The transfer.
    pub transfer: Transfer,
    /// Whether its signature verified.
    pub signature_valid: bool,
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
        let mut outcomes = self.apply_blocks(vec![(block, arrival_ms)], offsets, HashSet::new())?;
        Ok(outcomes.pop().unwrap_or_default())
    }

    /// Applies a run of consecutive block messages (each with its broker append time) and the
    /// log positions after the last, as one atomic batch: what a node catching up reads comes
    /// in runs of hundreds of blocks, and one write per run instead of one per block keeps the
    /// stored offset exactly as atomic with the state. Transfers in `verified` (by id) were found
    /// validly signed by the caller. Returns each block's outcomes, in order.
    pub fn apply_blocks(
        &self,
        blocks: Vec<(Block, u64)>,
        offsets: &[OffsetUpdate],
        verified: HashSet<TxId>,
    ) -> Result<Vec<Vec<Outcome>>, StoreError> {
        let _writer = self.lock_writes();
        let mut overlay = Overlay::new(self).with_verified(verified);
        let mut per_block = Vec::with_capacity(blocks.len());
        for (block, arrival_ms) in blocks {
            per_block.push(overlay.apply(self.params(), block, arrival_ms)?);
        }
        let update = overlay.into_update();
        let mut batch = Batch::default();
        let staged = self.stage_update_blocks(&update, &mut batch)?;
        let written = self.write_update(&update, &mut batch).and_then(|()| {
            // Read before the mempool's lock is taken: readers never wait on a disk read.
            let accounts = self.accounts_after(&update)?;
            self.update_mempool(&update, &accounts, &mut self.lock_mempool(), &mut batch);
            write_offsets(offsets, &mut batch);
            self.commit_after_index(batch)
        });
        self.finish_blocks(written, staged)?;
        let mut orphans = self.lock_orphans();
        for seq in &update.orphans_removed {
            orphans.remove(seq);
        }
        orphans.extend(update.orphans_added.iter().map(|(entry, _)| (entry.seq, *entry)));
        drop(orphans);
        let mut recent = lock(&self.recent);
        for (hash, block, _) in update.blocks {
            recent.insert(hash, block);
        }
        drop(recent);
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
        Ok(per_block)
    }

    /// Deletes the records of transfers the last blocks took out of the mempool, and their
    /// list (see `mempool`): a write of its own after the block's, off the path that makes a
    /// block visible. Returns how many were deleted.
    pub fn sweep_mempool(&self) -> Result<usize, StoreError> {
        let _writer = self.lock_writes();
        let stale = self.lock_mempool().stale();
        if stale.is_empty() {
            return Ok(0);
        }
        let mut batch = Batch::default();
        remove_mempool_records(&stale, &mut batch);
        batch.remove(key(keys::STATE, keys::UNSWEPT));
        self.tree.apply_batch(batch)?;
        self.lock_mempool().forget_stale(&stale);
        Ok(stale.len())
    }

    /// Moves consumer positions without changing the chain (a message rejected as malformed, or
    /// the topics read again after a retention gap), in one batch.
    pub fn skip_to(&self, offsets: &[OffsetUpdate]) -> Result<(), StoreError> {
        let _writer = self.lock_writes();
        let mut batch = Batch::default();
        write_offsets(offsets, &mut batch);
        Ok(self.tree.apply_batch(batch)?)
    }

    /// Offers transfers read from the log to the mempool and stores the positions after them,
    /// atomically. Each gets `Ok(())` when pooled or the rule it broke.
    pub fn admit_transactions(
        &self,
        offered: &[Offered],
        offsets: &[OffsetUpdate],
        limits: MempoolLimits,
    ) -> Result<Vec<Result<(), Refusal>>, StoreError> {
        let _writer = self.lock_writes();
        let chain = self.params().chain_tag();
        let accounts = self.sender_accounts(offered.iter().map(|o| &o.transfer))?;
        // Taken after the reads above and let go before the write below, so readers (HTTP
        // admission, `/status`) never wait on the disk.
        let mut index = self.lock_mempool();
        let mut batch = Batch::default();
        let mut outcomes = Vec::with_capacity(offered.len());
        for offer in offered {
            let tx = &offer.transfer;
            let account = accounts.get(&tx.sender).copied().unwrap_or_default();
            let id = tx.id(chain);
            let outcome = if !offer.signature_valid {
                Err(Refusal::BadSignature)
            } else if index.contains(&id) {
                Err(Refusal::AlreadyPooled)
            } else {
                let pending = index.pending(&tx.sender, tx.nonce);
                admission::check(tx, account, pending, admission::ANY_NONCE_AHEAD).and_then(|_| {
                    let record = encoding::encode(tx);
                    let dropped = if pending.taken.is_some() {
                        index.replace(&tx.sender, tx.nonce)
                    } else if index.len() >= limits.max_transfers {
                        let victim = index.victim(tx, record.len(), account.nonce)?;
                        index.evict_last(&victim)
                    } else {
                        None
                    };
                    if let Some(seq) = dropped {
                        batch.remove(&numbered(keys::MEMPOOL, seq)[..]);
                    }
                    let seq = index.insert(id, tx, record.len(), account.nonce);
                    batch.insert(&numbered(keys::MEMPOOL, seq)[..], record);
                    Ok(())
                })
            };
            outcomes.push(outcome);
        }
        drop(index);
        write_offsets(offsets, &mut batch);
        self.commit_after_index(batch)?;
        Ok(outcomes)
    }

    /// Keeps the transaction index (`T` records: transfer id → height of its main-chain block,
    /// what `GET /transactions/{id}` needs for confirmed transfers) or drops it. Consensus does
    /// not need it (nonces prevent repeats), and it costs a random-key write per transfer, so it
    /// is optional, as Bitcoin Core's `-txindex` is. Turning it on for a store that has blocks
    /// indexes the whole main chain once; turning it off deletes the records.
    pub fn set_tx_index(&self, on: bool) -> Result<(), StoreError> {
        let _writer = self.lock_writes();
        if on == self.tx_index_kept() {
            return Ok(());
        }
        let chain = self.params().chain_tag();
        let mut batch = Batch::default();
        if on {
            let tip = self.tip()?;
            for height in 1..=tip.height {
                let hash =
                    self.main_hash_at(height)?.ok_or_else(|| StoreError::Missing(MissingRecord::MainBlock(height)))?;
                let block = self.block(&hash)?.ok_or_else(|| StoreError::Missing(MissingRecord::Block(hash)))?;
                for transfer in block.transfers() {
                    batch.insert(key(keys::TX, transfer.id(chain).as_bytes()), &height.to_be_bytes()[..]);
                }
            }
        } else {
            for k in self.tree.scan_prefix([keys::TX]).keys() {
                batch.remove(k?);
            }
        }
        batch.insert(key(keys::STATE, keys::TX_INDEX), &[u8::from(on)][..]);
        self.tree.apply_batch(batch)?;
        self.tx_index.store(on, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Whether the transaction index is kept.
    pub fn tx_index_kept(&self) -> bool {
        self.tx_index.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Remembers a peer node's base URL.
    pub fn add_peer(&self, url: &str) -> Result<(), StoreError> {
        self.tree.insert(key(keys::PEER, url.as_bytes()), &[])?;
        Ok(())
    }

    /// Runs `read` while no writer can change the store, so a reader that combines many records
    /// (a peer's branch validated against our chain) sees one state, not parts of two.
    pub fn while_writes_wait<T>(&self, read: impl FnOnce() -> T) -> T {
        let _writer = self.lock_writes();
        read()
    }

    fn lock_writes(&self) -> MutexGuard<'_, ()> {
        lock(&self.write_lock)
    }

    /// Writes `batch`, whose mempool records the index already reflects. The index's lock is
    /// not held meanwhile, so for the length of one write the index may run one batch ahead of
    /// the records (a reader that follows it to a record treats a missing one as gone); writers
    /// are serialized by the write lock. If the write fails, the index is rebuilt from the
    /// records on disk, so it never keeps describing a write that did not happen.
    fn commit_after_index(&self, batch: Batch) -> Result<(), StoreError> {
        if let Err(e) = self.tree.apply_batch(batch) {
            let rebuilt = MempoolIndex::rebuild(&self.tree, self.params().chain_tag())?;
            *self.lock_mempool() = rebuilt;
            return Err(e.into());
        }
        Ok(())
    }

    /// The account at the tip (a never-touched one as empty) of each sender of `transfers`, each
    /// read once however many of its transfers there are.
    pub fn sender_accounts<'a>(
        &self,
        transfers: impl Iterator<Item = &'a Transfer>,
    ) -> Result<HashMap<Address, Account>, StoreError> {
        let senders: Vec<Address> = transfers.map(|t| t.sender).collect::<HashSet<_>>().into_iter().collect();
        let accounts = self.accounts(&senders)?.into_iter().map(Option::unwrap_or_default);
        Ok(senders.iter().copied().zip(accounts).collect())
    }

    /// The account at the new tip of every sender whose pooled transfers `update` may change:
    /// those it touched and the senders of the transfers it hands back.
    fn accounts_after(&self, update: &ChainUpdate) -> Result<HashMap<Address, Account>, StoreError> {
        let mut accounts: HashMap<Address, Account> =
            update.accounts.iter().map(|(address, entry)| (*address, entry.unwrap_or_default())).collect();
        for tx in &update.returned {
            if let std::collections::hash_map::Entry::Vacant(entry) = accounts.entry(tx.sender) {
                entry.insert(self.account(&tx.sender)?.unwrap_or_default());
            }
        }
        Ok(accounts)
    }

    /// Stages the blocks `update` stores (see [`Store::stage_blocks`]); none when it stores no
    /// block.
    fn stage_update_blocks(&self, update: &ChainUpdate, batch: &mut Batch) -> Result<Option<StagedBlocks>, StoreError> {
        if update.blocks.is_empty() {
            return Ok(None);
        }
        let blocks: Vec<_> = update.blocks.iter().map(|(hash, block, meta)| (*hash, *meta, block)).collect();
        self.stage_blocks(&blocks, batch).map(Some)
    }

    /// Adds a consensus update, but for the blocks it stores, to `batch` (reading the main
    /// index's groups it changes).
    fn write_update(&self, update: &ChainUpdate, batch: &mut Batch) -> Result<(), StoreError> {
        self.stage_main_index(&update.main_index, batch)?;
        let indexed = self.tx_index_kept();
        for (id, entry) in update.tx_index.iter().filter(|_| indexed) {
            let k = key(keys::TX, id.as_bytes());
            match entry {
                Some(height) => batch.insert(k, &height.to_be_bytes()[..]),
                None => batch.remove(k),
            }
        }
        for (address, entry) in &update.accounts {
            let k = key(keys::ACCOUNT, address.as_bytes());
            match entry {
                Some(account) => batch.insert(k, encoding::encode(account)),
                None => batch.remove(k),
            }
        }
        for (height, record) in &update.undo {
            let k = &numbered(keys::UNDO, *height)[..];
            match record {
                Some(record) => batch.insert(k, encoding::encode(record)),
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

    /// Brings the mempool in line with the new tip: the transfers a reorganization handed back
    /// are pooled again where their nonce is still unused, then every sender whose account
    /// changed or who got a transfer back loses the ones its new state makes invalid (the
    /// confirmed ones among them, and those its balance no longer covers, in nonce order).
    /// Handing back before pruning lets a returned transfer take its place ahead of a pooled
    /// successor. Their signatures were verified in the blocks that held them.
    /// Changes the mempool's index for `update`, and its records but for the pruned ones, which
    /// are listed as stale for [`Store::sweep_mempool`]; `accounts` (from
    /// [`Store::accounts_after`]) are the senders' accounts at the new tip: reads nothing.
    fn update_mempool(
        &self,
        update: &ChainUpdate,
        accounts: &HashMap<Address, Account>,
        index: &mut MempoolIndex,
        batch: &mut Batch,
    ) {
        let account_at_tip = |address: &Address| accounts.get(address).copied().unwrap_or_default();
        let chain = self.params().chain_tag();
        // Records left from an earlier update go with this one, so a transfer handed back below
        // is never stored twice. (Should the write fail, the index is rebuilt from the records
        // and the list on disk.)
        let swept = index.stale();
        remove_mempool_records(&swept, batch);
        index.forget_stale(&swept);
        let mut touched: HashSet<Address> = update.accounts.keys().copied().collect();
        for tx in &update.returned {
            let id = tx.id(chain);
            let account = account_at_tip(&tx.sender);
            let unused = tx.check_fields().is_ok()
                && tx.nonce >= account.nonce
                && !index.contains(&id)
                && index.pending(&tx.sender, tx.nonce).taken.is_none();
            if unused {
                let record = encoding::encode(tx);
                let seq = index.insert(id, tx, record.len(), account.nonce);
                batch.insert(&numbered(keys::MEMPOOL, seq)[..], record);
                touched.insert(tx.sender);
            }
        }
        for address in touched {
            let dropped = index.prune(&address, account_at_tip(&address));
            index.mark_stale(dropped);
        }
        // The list goes with the block, so a restart before the sweep knows what is stale; it
        // is written only when it changes.
        let unswept = key(keys::STATE, keys::UNSWEPT);
        match index.stale() {
            stale if !stale.is_empty() => batch.insert(unswept, encoding::encode(&stale)),
            _ if !swept.is_empty() => batch.remove(unswept),
            _ => {}
        }
    }
}

/// Adds the deletion of the mempool records `seqs` to `batch`.
pub(super) fn remove_mempool_records(seqs: &[u64], batch: &mut Batch) {
    for seq in seqs {
        batch.remove(&numbered(keys::MEMPOOL, *seq)[..]);
    }
}

fn write_offsets(offsets: &[OffsetUpdate], batch: &mut Batch) {
    for offset in offsets {
        batch.insert(key(keys::OFFSET, &offset.position.encode()), &offset.next.to_be_bytes()[..]);
    }
}
