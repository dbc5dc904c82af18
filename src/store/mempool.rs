//! Which transfers the mempool holds. The `P` records on disk are the mempool; this index of
//! them lives in memory and is rebuilt from those records when the store opens. Keeping it out
//! of sled saves writes and random-key reads per transfer, and the mempool's bound keeps it small.
//!
//! Besides the id → record index it keeps each sender's pending transfers by nonce: admission
//! checks a new transfer against them, and a block prunes the nonces it used.

use super::keys;
use super::{be_u64, decode, StoreError};
use crate::core::account::{Account, Address};
use crate::core::admission::Pending;
use crate::core::hash::TxId;
use crate::core::transaction::{ChainTag, Transfer};
use std::collections::{BTreeMap, HashMap};

/// One pooled transfer as the index knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    id: TxId,
    seq: u64,
    cost: u64,
}

/// One sender's pooled transfers.
#[derive(Clone, Debug, Default)]
struct SenderPool {
    /// By nonce.
    slots: BTreeMap<u64, Slot>,
    /// Sum of their costs (saturating), kept as they come and go: admission reads it per
    /// transfer, and a sender may have thousands pending.
    cost: u64,
}

impl SenderPool {
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
    /// Sequence the next pooled transfer gets: above every stored one.
    next_seq: u64,
}

impl MempoolIndex {
    /// Reads every `P` record of `tree`. A second transfer for a taken (sender, nonce), which no
    /// writer stores, is left out of the index; the store check reports it.
    pub(super) fn rebuild(tree: &sled::Tree, chain: ChainTag) -> Result<Self, StoreError> {
        let mut index = MempoolIndex::default();
        for entry in tree.scan_prefix([keys::MEMPOOL]) {
            let (k, raw) = entry?;
            let seq = be_u64(&k, &k[1..])?;
            let tx: Transfer = decode(&k, &raw)?;
            index.next_seq = seq + 1;
            if !index.slot_taken(&tx.sender, tx.nonce) {
                index.insert_at(tx.id(chain), &tx, seq);
            }
        }
        Ok(index)
    }

    /// Transfers pooled.
    pub(super) fn len(&self) -> u64 {
        self.by_id.len() as u64
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

    /// Pools `tx` at the back; returns its sequence. The caller checked it may be pooled.
    pub(super) fn insert(&mut self, id: TxId, tx: &Transfer) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.insert_at(id, tx, seq);
        seq
    }

    fn insert_at(&mut self, id: TxId, tx: &Transfer, seq: u64) {
        let cost = tx.cost().unwrap_or(u64::MAX);
        self.by_id.insert(id, (tx.sender, tx.nonce));
        let pool = self.by_sender.entry(tx.sender).or_default();
        pool.slots.insert(tx.nonce, Slot { id, seq, cost });
        pool.cost = pool.cost.saturating_add(cost);
    }

    /// Drops the sender's pooled transfers that `account` (its new state at the tip) makes
    /// invalid: nonces already used, then, in nonce order, every transfer from the first the
    /// balance no longer covers. Returns the sequences of the records to delete.
    pub(super) fn prune(&mut self, sender: &Address, account: Account) -> Vec<u64> {
        let Some(pool) = self.by_sender.get_mut(sender) else { return Vec::new() };
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
        if pool.slots.is_empty() {
            self.by_sender.remove(sender);
        }
        for slot in &dropped {
            self.by_id.remove(&slot.id);
        }
        dropped.into_iter().map(|slot| slot.seq).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::signature::Signature;

    fn tx(sender: u8, nonce: u64, cost: u64) -> Transfer {
        Transfer {
            sender: Address([sender; 32]),
            recipient: Address([99; 32]),
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
            index.insert(t.id(chain), &t);
        }
        let sender = Address([1; 32]);
        assert_eq!(index.pending(&sender, 1), Pending { nonce_taken: true, cost: 60 });
        assert_eq!(index.pending(&sender, 2), Pending { nonce_taken: false, cost: 60 });
        assert_eq!(index.pending_nonce(&sender, 0), 2, "the gap at 2 stops the count");
        // A block used nonce 0 and left 25: nonce 1 (20) fits, nonce 3 (20 + 30) does not.
        assert_eq!(index.prune(&sender, Account { balance: 25, nonce: 1 }), vec![0, 2]);
        assert_eq!(index.len(), 1);
        assert_eq!(index.seq(&tx(1, 1, 20).id(chain)), Some(1));
        assert_eq!(index.prune(&sender, Account { balance: 25, nonce: 2 }), vec![1]);
        assert_eq!((index.len(), index.by_sender.len()), (0, 0));
    }
}
