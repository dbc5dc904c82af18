//! The main-chain index (height → block hash), stored as groups of consecutive heights: one
//! record holds the hashes of up to [`GROUP_HEIGHTS`] main-chain blocks. sled's memory and its
//! size on disk grow with its number of records (a leaf splits past 16 entries, whatever their
//! size), and one record per height made this index half of them; grouped, it is a 64th.
//!
//! The main chain runs without a gap from genesis to the tip, so a group's record is the hashes
//! of its first heights in order, as many as the chain has reached: a new block extends the last
//! group, a reorganization cuts groups short and extends them again.

use super::keys::{self, numbered};
use super::{corrupt, Store, StoreError};
use crate::core::hash::BlockHash;
use sled::Batch;
use std::collections::{BTreeMap, BTreeSet};

/// Heights per group record.
pub(super) const GROUP_HEIGHTS: u64 = 64;

/// Bytes of one height's entry: the block's hash.
const ENTRY_BYTES: usize = 32;

/// The key of the group holding `height`.
fn group_key(height: u64) -> [u8; 9] {
    numbered(keys::MAIN_GROUP, height / GROUP_HEIGHTS)
}

/// Where `height`'s hash starts in its group's record.
fn offset(height: u64) -> usize {
    (height % GROUP_HEIGHTS) as usize * ENTRY_BYTES
}

/// Checks that a stored group record is whole entries.
fn check_group(k: &[u8], raw: &[u8]) -> Result<(), StoreError> {
    match raw.len().is_multiple_of(ENTRY_BYTES) && raw.len() <= GROUP_HEIGHTS as usize * ENTRY_BYTES {
        true => Ok(()),
        false => Err(corrupt(k, format!("a main-index group of {} bytes", raw.len()))),
    }
}

/// Reads the hash at byte `at` of a checked group record.
fn hash_at(raw: &[u8], at: usize) -> BlockHash {
    let mut hash = [0u8; ENTRY_BYTES];
    hash.copy_from_slice(&raw[at..at + ENTRY_BYTES]);
    BlockHash::new(hash)
}

/// A change to the main-chain index: per height, the new hash or `None` where the chain no
/// longer reaches.
pub(super) type MainIndexChange = BTreeMap<u64, Option<BlockHash>>;

impl Store {
    /// The hash of the main-chain block at `height`, if the chain reaches it.
    pub(super) fn main_index_at(&self, height: u64) -> Result<Option<BlockHash>, StoreError> {
        let k = group_key(height);
        let Some(raw) = self.tree.get(k)? else { return Ok(None) };
        check_group(&k, &raw)?;
        let at = offset(height);
        Ok((at < raw.len()).then(|| hash_at(&raw, at)))
    }

    /// The hashes of the main-chain blocks from `from` on, in height order, at most `limit`.
    pub(super) fn main_index_from(&self, from: u64, limit: usize) -> Result<Vec<BlockHash>, StoreError> {
        let mut hashes = Vec::new();
        let mut at = offset(from);
        let groups = self.tree.range(group_key(from)..numbered(keys::MAIN_GROUP, u64::MAX));
        for (group, entry) in (from / GROUP_HEIGHTS..).zip(groups) {
            let (k, raw) = entry?;
            // A missing group would shift every later hash to a height below its own.
            let expected = numbered(keys::MAIN_GROUP, group);
            if k != expected[..] {
                return Err(corrupt(&expected, "the main-index group is missing".into()));
            }
            check_group(&k, &raw)?;
            while at < raw.len() && hashes.len() < limit {
                hashes.push(hash_at(&raw, at));
                at += ENTRY_BYTES;
            }
            if hashes.len() == limit || raw.len() < GROUP_HEIGHTS as usize * ENTRY_BYTES {
                break;
            }
            at = 0;
        }
        Ok(hashes)
    }

    /// Heights the main-chain index holds (a full scan: for checks).
    pub(super) fn main_index_len(&self) -> Result<u64, StoreError> {
        let mut len = 0;
        for entry in self.tree.scan_prefix([keys::MAIN_GROUP]) {
            let (k, raw) = entry?;
            check_group(&k, &raw)?;
            len += (raw.len() / ENTRY_BYTES) as u64;
        }
        Ok(len)
    }

    /// Adds `change` to `batch`: each group it touches is read, changed and written whole. The
    /// heights it sets must continue the chain below them, and those it clears must lie above
    /// every height it sets (a chain has no gaps); the write lock keeps the groups read here from
    /// changing before the batch lands.
    pub(super) fn stage_main_index(&self, change: &MainIndexChange, batch: &mut Batch) -> Result<(), StoreError> {
        let groups: BTreeSet<u64> = change.keys().map(|height| height / GROUP_HEIGHTS).collect();
        for group in groups {
            let first = group * GROUP_HEIGHTS;
            let entries = || change.range(first..first + GROUP_HEIGHTS);
            let k = numbered(keys::MAIN_GROUP, group);
            let mut record = match self.tree.get(k)? {
                Some(raw) => {
                    check_group(&k, &raw)?;
                    raw.to_vec()
                }
                None => Vec::new(),
            };
            let cut = entries().filter(|(_, entry)| entry.is_none()).map(|(height, _)| offset(*height)).min();
            for (height, hash) in entries().filter_map(|(height, entry)| entry.map(|hash| (*height, hash))) {
                let at = offset(height);
                if at > record.len() || cut.is_some_and(|cut| at >= cut) {
                    return Err(corrupt(&k, format!("height {height} would leave a gap in the main index")));
                }
                match at == record.len() {
                    true => record.extend_from_slice(hash.as_bytes()),
                    false => record[at..at + ENTRY_BYTES].copy_from_slice(hash.as_bytes()),
                }
            }
            if let Some(cut) = cut {
                record.truncate(cut);
            }
            match record.is_empty() {
                true => batch.remove(&k[..]),
                false => batch.insert(&k[..], record),
            }
        }
        Ok(())
    }
}
