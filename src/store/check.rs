//! A full consistency check of the store, for `kafkachain check-store` and the crash tests: it
//! proves that a crash left no half-applied message behind.

use super::keys;
use super::{Store, StoreError};
use crate::core::chain::ChainView;
use crate::core::hash::TxId;
use crate::core::ledger::{connect, touched};
use crate::core::memory::genesis_accounts;
use std::collections::{BTreeMap, HashSet};

/// What the check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consistency {
    /// Height of the stored tip.
    pub tip_height: u64,
    /// Entries in the main-chain index.
    pub main_len: u64,
    /// Blocks stored, on the main chain or off it (entries in the block index).
    pub stored_blocks: u64,
    /// Transactions waiting in the mempool.
    pub mempool_len: u64,
    /// Transfers (transactions other than rewards) in main-chain blocks.
    pub confirmed_transfers: u64,
    /// Every broken invariant, in words; empty when the store is consistent.
    pub problems: Vec<String>,
}

impl Store {
    /// Walks the whole main chain and the mempool and reports every broken invariant.
    pub fn check_consistency(&self) -> Result<Consistency, StoreError> {
        let mut problems = Vec::new();
        let tip = self.tip()?;
        if self.block(&tip.hash)?.is_none() {
            problems.push(format!("tip block {} is missing", tip.hash));
        }
        let main_len = self.main_index_len().unwrap_or_else(|e| {
            problems.push(format!("the main index does not read: {e}"));
            0
        });
        if main_len != tip.height + 1 {
            problems.push(format!("main index has {main_len} entries for tip height {}", tip.height));
        }
        let by_height = self.count(keys::MAIN_BY_HEIGHT);
        if by_height > 0 {
            problems.push(format!("{by_height} main-index records of an earlier layout are left"));
        }
        let block_records = self.count(keys::BLOCK);
        if block_records > 0 {
            problems.push(format!("{block_records} block records of an earlier layout are left in sled"));
        }
        let stored_blocks = self.index.len();
        if stored_blocks < main_len {
            problems
                .push(format!("the block index holds {stored_blocks} blocks, fewer than the main chain's {main_len}"));
        }
        let chain = self.params().chain_tag();
        let mut confirmed = 0u64;
        let mut parent = None;
        let mut replayed = genesis_accounts(self.params());
        for height in 0..=tip.height {
            let Some(hash) = self.main_hash_at(height)? else {
                problems.push(format!("main index has no block at height {height}"));
                continue;
            };
            let (Some(block), Some(meta)) = (self.block(&hash)?, self.meta(&hash)?) else {
                problems.push(format!("indexed block {hash} at height {height} is missing"));
                continue;
            };
            if meta.height != height || block.header.height != height {
                problems.push(format!("block {hash} is indexed at {height} but has height {}", meta.height));
            }
            if parent.is_some_and(|p| p != meta.parent) {
                problems.push(format!("block {hash} at height {height} does not link to its predecessor"));
            }
            if height > 0 {
                let before = touched(&block).into_iter().map(|a| (a, replayed.get(&a).copied())).collect();
                match connect(&block, self.params().reward, before) {
                    Ok(effect) => replayed.extend(effect.after),
                    Err(e) => problems.push(format!("block {hash} at height {height} does not replay: {e}")),
                }
            }
            let indexed = self.tx_index_kept();
            for id in block.transfers().map(|t| t.id(chain)) {
                confirmed += 1;
                if indexed && self.main_tx_height(&id)? != Some(height) {
                    problems.push(format!("transaction {id} of height {height} is not indexed there"));
                }
            }
            parent = Some(hash);
        }
        if parent != Some(tip.hash) {
            problems.push("the main index does not end at the tip".into());
        }
        let tx_entries = self.count(keys::TX);
        let expected = if self.tx_index_kept() { confirmed } else { 0 };
        if tx_entries != expected {
            problems.push(format!("tx index has {tx_entries} entries where {expected} were expected"));
        }
        let stored: BTreeMap<_, _> = self.stored_accounts()?.into_iter().collect();
        if stored != replayed {
            problems.push(format!(
                "the stored accounts ({}) differ from a replay of the main chain from genesis ({})",
                stored.len(),
                replayed.len()
            ));
        }
        let mempool_len = self.mempool_len()?;
        let mut pooled = HashSet::new();
        for tx in self.mempool_records()? {
            let id: TxId = tx.id(chain);
            if !pooled.insert((tx.sender, tx.nonce)) {
                problems.push(format!("mempool transfer {id} takes a sender's nonce twice"));
            }
            if tx.nonce < stored.get(&tx.sender).map_or(0, |a| a.nonce) {
                problems.push(format!("mempool transfer {id} uses a nonce the chain already used"));
            }
        }
        if pooled.len() as u64 != mempool_len {
            problems.push(format!("mempool index holds {mempool_len} transactions, the records {}", pooled.len()));
        }
        if let Err(e) = self.offsets() {
            problems.push(format!("the stored offsets do not read back: {e}"));
        }
        Ok(Consistency {
            tip_height: tip.height,
            main_len,
            stored_blocks,
            mempool_len,
            confirmed_transfers: confirmed,
            problems,
        })
    }
}
