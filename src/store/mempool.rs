//! Which transfers the mempool holds. The `P` records on disk are the mempool; this index of
//! them lives in memory and is rebuilt from those records when the store opens. Keeping it out
//! of sled saves writes and random-key reads per transfer, and the mempool's bound keeps it small.
//!
//! Besides the id → record index it keeps each sender's pending transfers by nonce: admission
//! checks a new transfer against them, and a block prunes the nonces it used. It also knows which
//! transfers are ready (their sender's nonces run without a gap from its account's next nonce):
//! the miner takes only those, and a full mempool makes room for a ready transfer by dropping
//! one that waits behind a gap, so transfers that can never be mined cannot crowd out the rest.

use super::keys::{self, key};
use super::{be_u64, decode, StoreError};
use crate::core::account::{Account, Address};
use crate::core::admission::Pending;
use crate::core::hash::TxId;
use crate::core::transaction::{ChainTag, Transfer};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One pooled transfer as the index knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    id: TxId,
    seq: u64,
    cost: u64,
    /// Its encoded size.
    bytes: u32,
}

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
    /// Sequence the next pooled transfer gets: above every stored one.
    next_seq: u64,
    /// Encoded size of every pooled transfer together.
    bytes: u64,
}

impl MempoolIndex {
    /// Reads every `P` record of `tree`, and each sender's account. A second transfer for a
    /// taken (sender, nonce), which no writer stores, is left out of the index; the store check
    /// reports it.
    pub(super) fn rebuild(tree: &sled::Tree, chain: ChainTag) -> Result<Self, StoreError> {
        let mut index = MempoolIndex::default();
        for entry in tree.scan_prefix([keys::MEMPOOL]) {
            let (k, raw) = entry?;
            let seq = be_u64(&k, &k[1..])?;
            let tx: Transfer = decode(&k, &raw)?;
            index.next_seq = seq + 1;
            if !index.slot_taken(&tx.sender, tx.nonce) {
                index.insert_at(tx.id(chain), &tx, raw.len(), seq);
            }
        }
        let senders: Vec<Address> = index.by_sender.keys().copied().collect();
        for sender in senders {
            let k = key(keys::ACCOUNT, sender.as_bytes());
            let account: Account = tree.get(&k)?.map(|raw| decode(&k, &raw)).transpose()?.unwrap_or_default();
            if let Some(pool) = index.by_sender.get_mut(&sender) {
                pool.next_nonce = account.nonce;
            }
            index.refresh(&sender);
        }
        Ok(index)
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
        Pending { nonce_taken: pool.slots.contains_key(&nonce), cost: pool.cost }
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
    /// caller checked it may be pooled, against `next_nonce`, its sender's account nonce at the tip.
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

    /// Drops one transfer that waits behind a nonce gap (the highest nonce of some sender that
    /// has a gap, other than `spare`: the newcomer's own sender, whose gap it may be filling), to
    /// make room for a ready one; returns its sequence, or `None` when no such transfer waits.
    pub(super) fn evict_waiting(&mut self, spare: &Address) -> Option<u64> {
        let sender = *self.waiting.iter().find(|sender| *sender != spare)?;
        let pool = self.by_sender.get_mut(&sender)?;
        let (_, slot) = pool.slots.pop_last()?;
        pool.cost = pool.cost.saturating_sub(slot.cost);
        self.bytes -= u64::from(slot.bytes);
        self.by_id.remove(&slot.id);
        self.refresh(&sender);
        Some(slot.seq)
    }

    /// The sequences of at most `limit` ready transfers, oldest first, where a transfer counts
    /// as old as the youngest of its sender's nonces up to it (it cannot be mined before them),
    /// so a chosen transfer's ready predecessors are always chosen too.
    pub(super) fn ready(&self, limit: usize) -> Vec<u64> {
        // (age, place in nonce order, sequence): ties in age keep each sender's nonce order.
        let mut ready: Vec<(u64, usize, u64)> = Vec::new();
        for pool in self.by_sender.values() {
            let mut youngest = 0;
            for slot in pool.ready() {
                youngest = youngest.max(slot.seq);
                ready.push((youngest, ready.len(), slot.seq));
            }
        }
        if ready.len() > limit {
            ready.select_nth_unstable(limit);
            ready.truncate(limit);
        }
        ready.sort_unstable();
        ready.into_iter().map(|(_, _, seq)| seq).collect()
    }

    /// Files `sender` as waiting or not after its pool changed, and forgets an empty pool.
    fn refresh(&mut self, sender: &Address) {
        match self.by_sender.get(sender) {
            Some(pool) if pool.slots.is_empty() => {
                self.by_sender.remove(sender);
                self.waiting.remove(sender);
            }
            Some(pool) if !pool.all_ready() => {
                self.waiting.insert(*sender);
            }
            _ => {
                self.waiting.remove(sender);
            }
        }
    }

    fn insert_at(&mut self, id: TxId, tx: &Transfer, bytes: usize, seq: u64) {
        let cost = tx.cost().unwrap_or(u64::MAX);
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        self.bytes += u64::from(bytes);
        self.by_id.insert(id, (tx.sender, tx.nonce));
        let pool = self.by_sender.entry(tx.sender).or_default();
        pool.slots.insert(tx.nonce, Slot { id, seq, cost, bytes });
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
            self.bytes -= u64::from(slot.bytes);
            self.by_id.remove(&slot.id);
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
        Transfer {
            sender: Address::new([sender; 32]),
            recipient: Address::new([99; 32]),
            amount: cost,
            fee: 0,
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
        assert_eq!(index.pending(&sender, 1), Pending { nonce_taken: true, cost: 60 });
        assert_eq!(index.pending(&sender, 2), Pending { nonce_taken: false, cost: 60 });
        assert_eq!(index.pending_nonce(&sender, 0), 2, "the gap at 2 stops the count");
        // A block used nonce 0 and left 25: nonce 1 (20) fits, nonce 3 (20 + 30) does not.
        assert_eq!(index.prune(&sender, Account { balance: 25, nonce: 1 }), vec![0, 2]);
        assert_eq!(index.len(), 1);
        assert_eq!(index.seq(&tx(1, 1, 20).id(chain)), Some(1));
        assert_eq!(index.prune(&sender, Account { balance: 25, nonce: 2 }), vec![1]);
        assert_eq!((index.len(), index.by_sender.len(), index.bytes()), (0, 0, 0));
    }

    fn pooled(entries: &[(u8, u64)], next_nonce: u64) -> (MempoolIndex, Vec<TxId>) {
        let chain = ChainTag::of("t");
        let mut index = MempoolIndex::default();
        let ids = entries
            .iter()
            .map(|&(sender, nonce)| {
                let t = tx(sender, nonce, 1);
                index.insert(t.id(chain), &t, encoded_len(&t), next_nonce);
                t.id(chain)
            })
            .collect();
        (index, ids)
    }

    #[test]
    fn only_gapless_runs_are_ready_and_a_late_predecessor_keeps_its_place() {
        // Arrival order (= sequence): 1/1, 2/0, 1/0, 3/2, 2/1. Sender 3 has a gap (0 and 1 missing).
        let (index, _) = pooled(&[(1, 1), (2, 0), (1, 0), (3, 2), (2, 1)], 0);
        // 1/0 arrived third, so 1/1 cannot go before it: both count as old as sequence 2.
        assert_eq!(index.ready(10), vec![1, 2, 0, 4]);
        assert_eq!(index.ready(3), vec![1, 2, 0], "a cut keeps each sender's predecessors");
        assert_eq!(index.ready(1), vec![1]);
        assert!(index.waiting.contains(&Address::new([3; 32])));
        assert!(!index.waiting.contains(&Address::new([1; 32])));
    }

    #[test]
    fn eviction_takes_a_waiting_transfer_and_never_a_ready_one() {
        let (mut index, _) = pooled(&[(1, 0), (1, 1), (2, 5), (2, 7)], 0);
        let sender2 = Address::new([2; 32]);
        assert!(index.would_be_ready(&Address::new([1; 32]), 2, 0));
        assert!(!index.would_be_ready(&Address::new([1; 32]), 3, 0));
        assert!(index.would_be_ready(&sender2, 0, 0));
        assert_eq!(index.evict_waiting(&sender2), None, "the newcomer's own sender is spared");
        let other = Address::new([7; 32]);
        assert_eq!(index.evict_waiting(&other), Some(3), "the highest nonce of the sender with a gap");
        assert_eq!(index.evict_waiting(&other), Some(2));
        assert_eq!(index.evict_waiting(&other), None, "what is left is ready");
        assert_eq!(index.len(), 2);
        assert_eq!(index.bytes(), 2 * encoded_len(&tx(1, 0, 1)) as u64);
        assert!(!index.by_sender.contains_key(&sender2));
        assert_eq!(index.ready(10), vec![0, 1]);
    }

    #[test]
    fn a_block_that_fills_the_gap_makes_the_rest_ready() {
        let (mut index, _) = pooled(&[(1, 1), (1, 2)], 0);
        assert!(index.ready(10).is_empty());
        assert_eq!(index.prune(&Address::new([1; 32]), Account { balance: 100, nonce: 1 }), Vec::<u64>::new());
        assert_eq!(index.ready(10), vec![0, 1]);
        assert!(index.waiting.is_empty());
    }
}
