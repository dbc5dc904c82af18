//! Which transfers the mempool holds. The `P` records on disk are the mempool; this index of
//! them lives in memory and is rebuilt from those records when the store opens. Keeping it out
//! of sled saves writes and random-key reads per transfer, and the mempool's bound keeps it small.
//!
//! The transfers a block confirms or makes invalid leave the index with the block, but their
//! records are deleted by a later, separate write (the sweep): one deletion per transfer was
//! most of a block's records, and the block is visible sooner without them. The block's batch
//! stores instead the list of those records (one record, under `keys::UNSWEPT`); the index
//! holds it as its stale set, readers skip records the index does not hold, and rebuilding after
//! a crash before the sweep reads the list back, so it knows exactly which records are stale.
//!
//! Besides the id → record index it keeps each sender's pending transfers by nonce: admission
//! checks a new transfer against them (a higher fee replaces the one holding its nonce), and a
//! block prunes the nonces it used. It also knows which transfers are ready (their sender's
//! nonces run without a gap from its account's next nonce): the miner takes only those, by fee
//! rate in chunks that keep each sender's nonce order. A full mempool makes room for a ready
//! transfer by dropping one that waits behind a gap, or else the last pending transfer of lowest
//! fee rate (a last one leaves no successor stranded), if the newcomer pays more per byte.

use super::keys::{self, key};
use super::{be_u64, decode, StoreError};
use crate::core::account::{Account, Address};
use crate::core::admission::{Pending, Refusal, Taken};
use crate::core::fee_rate::{chunks, FeeRate};
use crate::core::hash::TxId;
use crate::core::transaction::{ChainTag, Transfer};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One pooled transfer as the index knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    id: TxId,
    seq: u64,
    cost: u64,
    fee: u64,
    /// Its encoded size.
    bytes: u32,
}

impl Slot {
    fn rate(&self) -> FeeRate {
        FeeRate::new(self.fee, self.bytes as usize)
    }
}

/// Where a sender's last pending transfer stands in the eviction order: lowest rate first, and
/// of equal rates the one that came last.
type TailKey = (FeeRate, Reverse<u64>);

/// One sender's pooled transfers.
#[derive(Clone, Debug, Default)]
struct SenderPool {
    /// By nonce.
    slots: BTreeMap<u64, Slot>,
    /// Sum of their costs (saturating), kept as they come and go: admission reads it per
    /// transfer, and a sender may have thousands pending.
    cost: u64,
    /// The sender account's next nonce at the tip, as last seen (every block touching the
    /// sender prunes its pool with the new account).
    next_nonce: u64,
    /// Its last slot's key in [`MempoolIndex::tails`], as filed.
    tail: Option<TailKey>,
}

impl SenderPool {
    /// Whether every slot is ready: the nonces run without a gap from `next_nonce`.
    fn all_ready(&self) -> bool {
        match (self.slots.first_key_value(), self.slots.last_key_value()) {
            (Some((first, _)), Some((last, _))) => {
                *first == self.next_nonce && last - first + 1 == self.slots.len() as u64
            }
            _ => true,
        }
    }

    /// The ready slots, in nonce order.
    fn ready(&self) -> impl Iterator<Item = &Slot> {
        (self.next_nonce..).map_while(|nonce| self.slots.get(&nonce))
    }

    fn remove_all(&mut self, dropped: BTreeMap<u64, Slot>, out: &mut Vec<Slot>) {
        for slot in dropped.into_values() {
            self.cost = self.cost.saturating_sub(slot.cost);
            out.push(slot);
        }
    }
}

/// The in-memory index of the stored mempool.
#[derive(Debug, Default)]
pub(super) struct MempoolIndex {
    /// Sender and nonce of every pooled transfer, by id.
    by_id: HashMap<TxId, (Address, u64)>,
    /// Each sender's pooled transfers.
    by_sender: HashMap<Address, SenderPool>,
    /// Senders with at least one transfer waiting behind a nonce gap (ordered, so finding one
    /// costs the same however many came and went).
    waiting: BTreeSet<Address>,
    /// Every sender's last pending transfer, in eviction order.
    tails: BTreeMap<TailKey, Address>,
    /// Sequence the next pooled transfer gets: above every stored one.
    next_seq: u64,
    /// Encoded size of every pooled transfer together.
    bytes: u64,
    /// Sequences of records whose transfers left the index but which are still stored: deleted
    /// by the next sweep.
    stale: BTreeSet<u64>,
}

/// The account of `address` stored in `tree` (a never-touched one as empty).
fn stored_account(tree: &sled::Tree, address: &Address) -> Result<Account, StoreError> {
    let k = key(keys::ACCOUNT, address.as_bytes());
    Ok(tree.get(&k)?.map(|raw| decode(&k, &raw)).transpose()?.unwrap_or_default())
}

/// The stale records' sequences stored in `tree` (none when there is no list).
pub(super) fn unswept(tree: &sled::Tree) -> Result<BTreeSet<u64>, StoreError> {
    let k = key(keys::STATE, keys::UNSWEPT);
    Ok(tree.get(&k)?.map(|raw| decode::<Vec<u64>>(&k, &raw)).transpose()?.unwrap_or_default().into_iter().collect())
}

impl MempoolIndex {
    /// Reads every `P` record of `tree` but the stale ones (listed in the `UNSWEPT` record), and
    /// each sender's account. A second transfer for a taken (sender, nonce), which no writer
    /// stores, is left out of the index; the store check reports it.
    pub(super) fn rebuild(tree: &sled::Tree, chain: ChainTag) -> Result<Self, StoreError> {
        let mut index = MempoolIndex { stale: unswept(tree)?, ..MempoolIndex::default() };
        for entry in tree.scan_prefix([keys::MEMPOOL]) {
            let (k, raw) = entry?;
            let seq = be_u64(&k, &k[1..])?;
            index.next_seq = seq + 1;
            if index.stale.contains(&seq) {
                continue;
            }
            let tx: Transfer = decode(&k, &raw)?;
            if !index.slot_taken(&tx.sender, tx.nonce) {
                index.insert_at(tx.id(chain), &tx, raw.len(), seq);
            }
        }
        for sender in index.senders() {
            let account = stored_account(tree, &sender)?;
            if let Some(pool) = index.by_sender.get_mut(&sender) {
                pool.next_nonce = account.nonce;
            }
            index.refresh(&sender);
        }
        Ok(index)
    }

    /// The records of a store written before the stale list (layout 10) that its accounts make
    /// invalid: nonces spent, or no longer covered. A consistent store of that layout has none,
    /// but the build that introduced the sweep (a93fc0d) was also layout 10 and left them to a
    /// sweep a crash could cut off.
    pub(super) fn unlisted_stale(tree: &sled::Tree, chain: ChainTag) -> Result<Vec<u64>, StoreError> {
        let mut index = Self::rebuild(tree, chain)?;
        let mut stale = Vec::new();
        for sender in index.senders() {
            stale.extend(index.prune(&sender, stored_account(tree, &sender)?));
        }
        Ok(stale)
    }

    fn senders(&self) -> Vec<Address> {
        self.by_sender.keys().copied().collect()
    }

    /// The stale records: stored, but their transfers left the index. A write that deletes
    /// them [`Self::forget_stale`]s them once it is written.
    pub(super) fn stale(&self) -> Vec<u64> {
        self.stale.iter().copied().collect()
    }

    /// Lists records as stale: their transfers left the index, their deletion is not written.
    pub(super) fn mark_stale(&mut self, seqs: impl IntoIterator<Item = u64>) {
        self.stale.extend(seqs);
    }

    /// Forgets stale records whose deletion is written.
    pub(super) fn forget_stale(&mut self, seqs: &[u64]) {
        for seq in seqs {
            self.stale.remove(seq);
        }
    }

    /// Transfers pooled.
    pub(super) fn len(&self) -> u64 {
        self.by_id.len() as u64
    }

    /// Encoded size of every pooled transfer together.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the transfer `id` is pooled.
    pub(super) fn contains(&self, id: &TxId) -> bool {
        self.by_id.contains_key(id)
    }

    /// Arrival sequence of the pooled transfer `id`.
    pub(super) fn seq(&self, id: &TxId) -> Option<u64> {
        let (sender, nonce) = self.by_id.get(id)?;
        self.by_sender.get(sender)?.slots.get(nonce).map(|slot| slot.seq)
    }

    fn slot_taken(&self, sender: &Address, nonce: u64) -> bool {
        self.by_sender.get(sender).is_some_and(|pool| pool.slots.contains_key(&nonce))
    }

    /// What `sender` has pending, for a transfer with `nonce`.
    pub(super) fn pending(&self, sender: &Address, nonce: u64) -> Pending {
        let Some(pool) = self.by_sender.get(sender) else { return Pending::default() };
        let taken = pool.slots.get(&nonce).map(|slot| Taken { fee: slot.fee, cost: slot.cost });
        Pending { taken, cost: pool.cost }
    }

    /// The nonce the sender's next transfer would take once everything pending from `next` on
    /// without a gap is mined.
    pub(super) fn pending_nonce(&self, sender: &Address, next: u64) -> u64 {
        let Some(pool) = self.by_sender.get(sender) else { return next };
        let mut nonce = next;
        while pool.slots.contains_key(&nonce) {
            nonce += 1;
        }
        nonce
    }

    /// Pools `tx`, whose stored record is `bytes` long, at the back; returns its sequence. The
    /// caller checked it may be pooled, against `next_nonce`, its sender's account nonce at the
    /// tip; a pending transfer with its sender and nonce must have been [`Self::replace`]d.
    pub(super) fn insert(&mut self, id: TxId, tx: &Transfer, bytes: usize, next_nonce: u64) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.insert_at(id, tx, bytes, seq);
        if let Some(pool) = self.by_sender.get_mut(&tx.sender) {
            pool.next_nonce = next_nonce;
        }
        self.refresh(&tx.sender);
        seq
    }

    /// Whether a transfer from `sender` with `nonce` would be ready once pooled: it takes the
    /// account's next nonce (`next_nonce`) or the one after the sender's ready run.
    pub(super) fn would_be_ready(&self, sender: &Address, nonce: u64, next_nonce: u64) -> bool {
        nonce == self.pending_nonce(sender, next_nonce)
    }

    /// Drops the pending transfer of `sender` with `nonce` (a replacement takes its place);
    /// returns its sequence.
    pub(super) fn replace(&mut self, sender: &Address, nonce: u64) -> Option<u64> {
        let pool = self.by_sender.get_mut(sender)?;
        let slot = pool.slots.remove(&nonce)?;
        pool.cost = pool.cost.saturating_sub(slot.cost);
        self.forget(&slot);
        self.refresh(sender);
        Some(slot.seq)
    }

    /// The sender whose last transfer a full pool drops to take in `tx` (of `bytes`, its
    /// sender's next nonce at the tip `next_nonce`), or why `tx` is refused: it would wait behind a
    /// gap itself, or pays no more per byte than the lowest-rate last transfer of another sender.
    /// A waiting transfer (the highest nonce of some other sender with a gap) goes first, for
    /// any fee: it cannot be mined as it stands. The newcomer's own sender is spared, since the
    /// newcomer may be filling its gap or extending its run.
    pub(super) fn victim(&self, tx: &Transfer, bytes: usize, next_nonce: u64) -> Result<Address, Refusal> {
        if !self.would_be_ready(&tx.sender, tx.nonce, next_nonce) {
            return Err(Refusal::MempoolFull { min_fee: None });
        }
        if let Some(waiting) = self.waiting.iter().find(|sender| **sender != tx.sender) {
            return Ok(*waiting);
        }
        let Some(((lowest, _), sender)) = self.tails.iter().find(|(_, sender)| **sender != tx.sender) else {
            return Err(Refusal::MempoolFull { min_fee: None });
        };
        if FeeRate::new(tx.fee, bytes) <= *lowest {
            return Err(Refusal::MempoolFull { min_fee: Some(lowest.fee_above(bytes)) });
        }
        Ok(*sender)
    }

    /// Drops the last pending transfer of `sender` (a [`Self::victim`]); returns its sequence.
    pub(super) fn evict_last(&mut self, sender: &Address) -> Option<u64> {
        let nonce = *self.by_sender.get(sender)?.slots.last_key_value()?.0;
        self.replace(sender, nonce)
    }

    /// The sequences of at most `limit` ready transfers in the order a miner should take them:
    /// each sender's ready run is split into [`chunks`], and chunks go by fee rate (of equal
    /// rates, the one whose transfers all arrived earlier first), each whole or not at all, so
    /// every chosen transfer's ready predecessors are chosen before it. A chunk that does not fit
    /// in what is left is passed over, with the rest of its sender's run.
    pub(super) fn ready(&self, limit: usize) -> Vec<u64> {
        // (rate, age: youngest sequence up to the chunk's end, sender, where in its run it
        // starts, where it ends). Within a sender's run, rates never rise and ages never fall.
        let mut ranked: Vec<(Reverse<FeeRate>, u64, Address, usize, usize)> = Vec::new();
        let mut runs: HashMap<Address, Vec<&Slot>> = HashMap::new();
        for (sender, pool) in &self.by_sender {
            let run: Vec<&Slot> = pool.ready().collect();
            let mut start = 0;
            let mut youngest = 0;
            for chunk in chunks(run.iter().map(|slot| slot.rate())) {
                youngest = run[start..start + chunk.len].iter().fold(youngest, |age, slot| age.max(slot.seq));
                ranked.push((Reverse(chunk.rate), youngest, *sender, start, start + chunk.len));
                start += chunk.len;
            }
            runs.insert(*sender, run);
        }
        ranked.sort_unstable();
        let mut chosen = Vec::new();
        let mut passed_over: BTreeSet<Address> = BTreeSet::new();
        for (_, _, sender, start, end) in &ranked {
            if chosen.len() >= limit {
                break;
            }
            if passed_over.contains(sender) {
                continue;
            }
            let chunk = &runs[sender][*start..*end];
            if chosen.len() + chunk.len() > limit {
                passed_over.insert(*sender);
                continue;
            }
            chosen.extend(chunk.iter().map(|slot| slot.seq));
        }
        chosen
    }

    /// Files `sender` as waiting or not after its pool changed, and forgets an empty pool.
    /// Files its last transfer in the eviction order too.
    fn refresh(&mut self, sender: &Address) {
        let Some(pool) = self.by_sender.get_mut(sender) else {
            self.waiting.remove(sender);
            return;
        };
        let tail = pool.slots.last_key_value().map(|(_, slot)| (slot.rate(), Reverse(slot.seq)));
        if pool.tail != tail {
            if let Some(old) = pool.tail.take() {
                self.tails.remove(&old);
            }
            if let Some(new) = tail {
                self.tails.insert(new, *sender);
            }
            pool.tail = tail;
        }
        if pool.slots.is_empty() {
            self.by_sender.remove(sender);
            self.waiting.remove(sender);
        } else if pool.all_ready() {
            self.waiting.remove(sender);
        } else {
            self.waiting.insert(*sender);
        }
    }

    /// Forgets a slot already taken out of its sender's pool.
    fn forget(&mut self, slot: &Slot) {
        self.bytes -= u64::from(slot.bytes);
        self.by_id.remove(&slot.id);
    }

    fn insert_at(&mut self, id: TxId, tx: &Transfer, bytes: usize, seq: u64) {
        let cost = tx.cost().unwrap_or(u64::MAX);
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        self.bytes += u64::from(bytes);
        self.by_id.insert(id, (tx.sender, tx.nonce));
        let pool = self.by_sender.entry(tx.sender).or_default();
        pool.slots.insert(tx.nonce, Slot { id, seq, cost, fee: tx.fee, bytes });
        pool.cost = pool.cost.saturating_add(cost);
    }

    /// Drops the sender's pooled transfers that `account` (its new state at the tip) makes
    /// invalid: nonces already used, then, in nonce order, every transfer from the first the
    /// balance no longer covers. Returns the sequences of the records to delete.
    pub(super) fn prune(&mut self, sender: &Address, account: Account) -> Vec<u64> {
        let Some(pool) = self.by_sender.get_mut(sender) else { return Vec::new() };
        pool.next_nonce = account.nonce;
        let mut dropped: Vec<Slot> = Vec::new();
        let kept = pool.slots.split_off(&account.nonce);
        let used = std::mem::replace(&mut pool.slots, kept);
        pool.remove_all(used, &mut dropped);
        // Walking the slots is needed only when the balance no longer covers them all.
        if pool.cost > account.balance {
            let mut spent: u64 = 0;
            let cut = pool.slots.iter().find_map(|(nonce, slot)| {
                spent = spent.saturating_add(slot.cost);
                (spent > account.balance).then_some(*nonce)
            });
            if let Some(nonce) = cut {
                let uncovered = pool.slots.split_off(&nonce);
                pool.remove_all(uncovered, &mut dropped);
            }
        }
        self.refresh(sender);
        for slot in &dropped {
            self.forget(slot);
        }
        dropped.into_iter().map(|slot| slot.seq).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::encoding::encoded_len;
    use crate::core::signature::Signature;

    fn tx(sender: u8, nonce: u64, cost: u64) -> Transfer {
        paying(sender, nonce, cost, 0)
    }

    fn paying(sender: u8, nonce: u64, amount: u64, fee: u64) -> Transfer {
        Transfer {
            sender: Address::new([sender; 32]),
            recipient: Address::new([99; 32]),
            amount,
            fee,
            nonce,
            signature: Signature([0; 64]),
        }
    }

    #[test]
    fn pending_nonces_costs_and_pruning_follow_the_sender() {
        let chain = ChainTag::of("t");
        let mut index = MempoolIndex::default();
        for (n, cost) in [(0, 10), (1, 20), (3, 30)] {
            let t = tx(1, n, cost);
            index.insert(t.id(chain), &t, encoded_len(&t), 0);
        }
        let sender = Address::new([1; 32]);
        assert_eq!(index.pending(&sender, 1), Pending { taken: Some(Taken { fee: 0, cost: 20 }), cost: 60 });
        assert_eq!(index.pending(&sender, 2), Pending { taken: None, cost: 60 });
        assert_eq!(index.pending_nonce(&sender, 0), 2, "the gap at 2 stops the count");
        // A block used nonce 0 and left 25: nonce 1 (20) fits, nonce 3 (20 + 30) does not.
        assert_eq!(index.prune(&sender, Account { balance: 25, nonce: 1 }), vec![0, 2]);
        assert_eq!(index.len(), 1);
        assert_eq!(index.seq(&tx(1, 1, 20).id(chain)), Some(1));
        assert_eq!(index.prune(&sender, Account { balance: 25, nonce: 2 }), vec![1]);
        assert_eq!((index.len(), index.by_sender.len(), index.bytes()), (0, 0, 0));
        assert!(index.tails.is_empty());
    }

    /// Pools each (sender, nonce, fee) in turn, every sender's next nonce 0.
    fn pooled(entries: &[(u8, u64, u64)]) -> MempoolIndex {
        let chain = ChainTag::of("t");
        let mut index = MempoolIndex::default();
        for &(sender, nonce, fee) in entries {
            let t = paying(sender, nonce, 1, fee);
            index.insert(t.id(chain), &t, encoded_len(&t), 0);
        }
        index
    }

    #[test]
    fn only_gapless_runs_are_ready_and_a_late_predecessor_keeps_its_place() {
        // Arrival order (= sequence): 1/1, 2/0, 1/0, 3/2, 2/1, all without fee. Sender 3 has a
        // gap (0 and 1 missing).
        let index = pooled(&[(1, 1, 0), (2, 0, 0), (1, 0, 0), (3, 2, 0), (2, 1, 0)]);
        // 1/0 arrived third, so 1/1 cannot go before it: both count as old as sequence 2.
        assert_eq!(index.ready(10), vec![1, 2, 0, 4]);
        assert_eq!(index.ready(3), vec![1, 2, 0], "a cut keeps each sender's predecessors");
        assert_eq!(index.ready(1), vec![1]);
        assert!(index.waiting.contains(&Address::new([3; 32])));
        assert!(!index.waiting.contains(&Address::new([1; 32])));
    }

    #[test]
    fn the_miner_takes_chunks_by_fee_rate_and_passes_over_one_that_does_not_fit() {
        // Sender 1 pays nothing at nonce 0 and 100 at nonce 1: one chunk of 50 a transfer.
        // Sender 2 pays 60, sender 3 pays 10, sender 4 pays 30 and then 40.
        let index = pooled(&[(1, 0, 0), (1, 1, 100), (2, 0, 60), (3, 0, 10), (4, 0, 30), (4, 1, 40)]);
        assert_eq!(index.ready(10), vec![2, 0, 1, 4, 5, 3]);
        // Room for 2: sender 2's 60; then neither sender 1's chunk of two nor sender 4's (35 a
        // transfer) fits, and sender 3's 10 does.
        assert_eq!(index.ready(2), vec![2, 3]);
        assert_eq!(index.ready(1), vec![2]);
    }

    #[test]
    fn a_full_pool_drops_a_waiting_transfer_first_then_the_last_one_paying_least() {
        // Sender 1 is ready with fees 5, 5; sender 2 waits behind a gap with fees 100; sender 3
        // is ready with fee 2.
        let mut index = pooled(&[(1, 0, 5), (1, 1, 5), (2, 5, 100), (2, 7, 100), (3, 0, 2)]);
        let (sender1, sender2, sender3) = (Address::new([1; 32]), Address::new([2; 32]), Address::new([3; 32]));
        let victim = |index: &MempoolIndex, t: Transfer| index.victim(&t, encoded_len(&t), 0);
        assert!(index.would_be_ready(&sender1, 2, 0));
        assert!(!index.would_be_ready(&sender1, 3, 0));
        assert_eq!(victim(&index, paying(4, 0, 1, 0)), Ok(sender2), "a waiting transfer goes for any fee");
        assert_eq!(index.evict_last(&sender2), Some(3), "the highest nonce of the sender with a gap");
        assert_eq!(victim(&index, paying(2, 0, 1, 99)), Ok(sender3), "the newcomer's own sender is spared");
        assert_eq!(index.evict_last(&sender2), Some(2));
        assert!(index.waiting.is_empty());

        assert_eq!(victim(&index, paying(4, 1, 1, 99)), Err(Refusal::MempoolFull { min_fee: None }), "it would wait");
        let Err(Refusal::MempoolFull { min_fee: Some(min_fee) }) = victim(&index, paying(4, 0, 1, 2)) else {
            panic!("a fee of 2 does not beat sender 3's last transfer");
        };
        assert_eq!(victim(&index, paying(4, 0, 1, min_fee)), Ok(sender3), "the fee quoted is enough");
        assert!(victim(&index, paying(4, 0, 1, min_fee - 1)).is_err(), "and the least that is");
        assert_eq!(victim(&index, paying(3, 1, 1, 6)), Ok(sender1), "sender 3 spared, sender 1's 5 is next");
        assert_eq!(index.evict_last(&sender1), Some(1));
        assert_eq!(index.len(), 2);
        assert_eq!(index.bytes(), (encoded_len(&paying(1, 0, 1, 5)) + encoded_len(&paying(3, 0, 1, 2))) as u64);
        assert_eq!(index.ready(10), vec![0, 4]);
    }

    #[test]
    fn a_replacement_takes_its_predecessors_place_in_the_run() {
        let chain = ChainTag::of("t");
        let mut index = pooled(&[(1, 0, 1), (1, 1, 1), (2, 0, 50)]);
        let sender = Address::new([1; 32]);
        assert_eq!(index.ready(10), vec![2, 0, 1]);
        assert_eq!(index.replace(&sender, 0), Some(0));
        assert_eq!(index.pending(&sender, 0), Pending { taken: None, cost: 2 });
        assert!(index.waiting.contains(&sender), "nonce 1 waits for its replaced predecessor");
        let richer = paying(1, 0, 1, 200);
        assert_eq!(index.insert(richer.id(chain), &richer, encoded_len(&richer), 0), 3);
        assert_eq!(index.ready(10), vec![3, 2, 1], "the richer replacement goes first, its successor still last");
        assert_eq!(index.replace(&sender, 9), None);
    }

    #[test]
    fn a_block_that_fills_the_gap_makes_the_rest_ready() {
        let mut index = pooled(&[(1, 1, 0), (1, 2, 0)]);
        assert!(index.ready(10).is_empty());
        assert_eq!(index.prune(&Address::new([1; 32]), Account { balance: 100, nonce: 1 }), Vec::<u64>::new());
        assert_eq!(index.ready(10), vec![0, 1]);
        assert!(index.waiting.is_empty());
    }
}
