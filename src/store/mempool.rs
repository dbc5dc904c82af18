//! Which transactions the mempool holds. The `P` records on disk are the mempool; this index of
//! them (transaction id → arrival sequence) lives in memory and is rebuilt from those records
//! when the store opens. Keeping it out of sled saves two writes and two random-key reads per
//! transaction (one of each on arrival, one on confirmation), and the mempool's bound keeps it
//! small.

use super::keys;
use super::{be_u64, decode, StoreError};
use crate::core::hash::TxId;
use crate::core::transaction::Transaction;
use std::collections::{HashMap, HashSet};

/// The in-memory index of the stored mempool.
#[derive(Debug, Default)]
pub(super) struct MempoolIndex {
    /// Arrival sequence of every pooled transaction, by id.
    seq_by_id: HashMap<TxId, u64>,
    /// Sequence the next pooled transaction gets: above every stored one.
    next_seq: u64,
}

impl MempoolIndex {
    /// Reads every `P` record of `tree`. A transaction stored twice (which no writer does) is
    /// indexed once, at its first sequence; the store check reports it.
    pub(super) fn rebuild(tree: &sled::Tree) -> Result<Self, StoreError> {
        let mut index = MempoolIndex::default();
        for entry in tree.scan_prefix([keys::MEMPOOL]) {
            let (k, raw) = entry?;
            let seq = be_u64(&k, &k[1..])?;
            let tx: Transaction = decode(&k, &raw)?;
            index.seq_by_id.entry(tx.id()).or_insert(seq);
            index.next_seq = seq + 1;
        }
        Ok(index)
    }

    /// Transactions pooled.
    pub(super) fn len(&self) -> u64 {
        self.seq_by_id.len() as u64
    }

    /// Starts a set of changes that become visible only when [`MempoolIndex::commit`] is called,
    /// after the batch holding them was written.
    pub(super) fn changes(&self) -> PoolChanges<'_> {
        let delta = PoolDelta { added: HashMap::new(), removed: HashSet::new(), next_seq: self.next_seq };
        PoolChanges { base: self, delta, len: self.len() }
    }

    /// Applies changes whose records are now on disk.
    pub(super) fn commit(&mut self, delta: PoolDelta) {
        for id in &delta.removed {
            self.seq_by_id.remove(id);
        }
        self.seq_by_id.extend(delta.added);
        self.next_seq = delta.next_seq;
    }
}

/// The mempool as one message's changes leave it: the index with those changes on top.
pub(super) struct PoolChanges<'a> {
    base: &'a MempoolIndex,
    delta: PoolDelta,
    len: u64,
}

/// Changes to the index, detached from it so they can be committed after the write.
pub(super) struct PoolDelta {
    added: HashMap<TxId, u64>,
    removed: HashSet<TxId>,
    next_seq: u64,
}

impl PoolChanges<'_> {
    /// Arrival sequence of `id`, if pooled.
    pub(super) fn seq(&self, id: &TxId) -> Option<u64> {
        if let Some(seq) = self.delta.added.get(id) {
            return Some(*seq);
        }
        if self.delta.removed.contains(id) {
            return None;
        }
        self.base.seq_by_id.get(id).copied()
    }

    /// Transactions pooled.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Pools `id` at the back and returns its sequence. The caller checked it is not pooled.
    pub(super) fn add(&mut self, id: TxId) -> u64 {
        let seq = self.delta.next_seq;
        self.delta.next_seq += 1;
        self.len += 1;
        self.delta.added.insert(id, seq);
        seq
    }

    /// Unpools `id`; returns the sequence it had, if it was pooled.
    pub(super) fn remove(&mut self, id: &TxId) -> Option<u64> {
        let seq = self.seq(id)?;
        if self.delta.added.remove(id).is_none() {
            self.delta.removed.insert(*id);
        }
        self.len -= 1;
        Some(seq)
    }

    /// The changes, ready to commit.
    pub(super) fn into_delta(self) -> PoolDelta {
        self.delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::transfer;

    #[test]
    fn changes_show_through_before_commit_and_land_with_it() {
        let (a, b) = (transfer(1).id(), transfer(2).id());
        let mut index = MempoolIndex::default();
        let mut pool = index.changes();
        assert_eq!((pool.add(a), pool.add(b)), (0, 1));
        assert_eq!(pool.remove(&a), Some(0));
        assert_eq!((pool.seq(&a), pool.seq(&b), pool.len()), (None, Some(1), 1));
        let delta = pool.into_delta();
        assert_eq!(index.len(), 0, "nothing is visible before the commit");
        index.commit(delta);
        assert_eq!((index.len(), index.next_seq), (1, 2));

        // Removed and pooled again in one message: it ends up pooled at its new place.
        let mut pool = index.changes();
        assert_eq!(pool.remove(&b), Some(1));
        assert_eq!(pool.remove(&b), None);
        assert_eq!(pool.add(b), 2);
        assert_eq!(pool.len(), 1);
        index.commit(pool.into_delta());
        assert_eq!((index.len(), index.seq_by_id.get(&b)), (1, Some(&2)));
    }
}
