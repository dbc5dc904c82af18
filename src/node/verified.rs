//! Transfers whose signatures this node verified when it accepted them over HTTP, so that the
//! applier does not verify them again when it reads them back from the topic: each node checks
//! a signature once. Bounded: the oldest ids are forgotten first (a forgotten one is simply
//! verified again).

use crate::core::hash::TxId;
use crate::sync::lock;
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// Most ids remembered.
pub(super) const CAPACITY: usize = 1 << 16;

/// A bounded set of transfer ids known to carry valid signatures.
#[derive(Debug, Default)]
pub(super) struct VerifiedIds {
    inner: Mutex<Remembered>,
}

#[derive(Debug, Default)]
struct Remembered {
    ids: HashSet<TxId>,
    order: VecDeque<TxId>,
}

impl VerifiedIds {
    /// Remembers `ids` as verified.
    pub(super) fn insert_all(&self, ids: &[TxId]) {
        let mut inner = lock(&self.inner);
        for id in ids {
            if inner.ids.insert(*id) {
                inner.order.push_back(*id);
            }
        }
        while inner.order.len() > CAPACITY {
            if let Some(old) = inner.order.pop_front() {
                inner.ids.remove(&old);
            }
        }
    }

    /// Whether `id` was verified here; forgets it (a transfer is read back once).
    pub(super) fn take(&self, id: &TxId) -> bool {
        lock(&self.inner).ids.remove(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_taken_once_and_the_oldest_go_first() {
        let set = VerifiedIds::default();
        let ids: Vec<TxId> =
            (0..=CAPACITY as u32).map(|n| TxId::new(crate::core::hash::sha256(&n.to_le_bytes()))).collect();
        set.insert_all(&ids);
        assert!(!set.take(&ids[0]), "past the capacity, the oldest is forgotten");
        assert!(set.take(&ids[1]));
        assert!(!set.take(&ids[1]), "taken once");
    }
}
