//! A chain state held in memory. It validates a chain fetched from a peer before adoption, and
//! lets property tests drive the consensus rules without storage.

use super::account::{Account, AccountEntry, Address};
use super::block::{genesis, Block};
use super::chain::{
    process_block, BlockMeta, ChainUpdate, ChainView, Inconsistent, OrphanEntry, Outcome, Tip, UndoRecord,
};
use super::hash::{BlockHash, TxId};
use super::params::ChainParams;
use super::transaction::Transfer;
use std::collections::{BTreeMap, HashMap};

/// Chain state in memory: blocks, main chain, transaction index, accounts and undo records,
/// mempool, orphans.
#[derive(Clone, Debug)]
pub struct MemoryChain {
    params: ChainParams,
    blocks: HashMap<BlockHash, (Block, BlockMeta)>,
    main: BTreeMap<u64, BlockHash>,
    tx_index: HashMap<TxId, u64>,
    accounts: BTreeMap<Address, Account>,
    undo: BTreeMap<u64, UndoRecord>,
    tip: Tip,
    mempool: Vec<Transfer>,
    orphans: BTreeMap<u64, (OrphanEntry, Block)>,
}

impl MemoryChain {
    /// A chain holding only the genesis block of `params`.
    pub fn new(params: ChainParams) -> Self {
        let block = genesis(&params);
        let hash = block.hash();
        let meta = BlockMeta::genesis(&block);
        Self {
            accounts: genesis_accounts(&params),
            params,
            blocks: HashMap::from([(hash, (block, meta))]),
            main: BTreeMap::from([(0, hash)]),
            tx_index: HashMap::new(),
            undo: BTreeMap::new(),
            tip: Tip::genesis(hash),
            mempool: Vec::new(),
            orphans: BTreeMap::new(),
        }
    }

    /// Processes one block as if its message arrived at the block's own timestamp, and applies
    /// the result; returns what happened to each block.
    pub fn apply(&mut self, block: Block) -> Vec<Outcome> {
        let arrival_ms = block.header.timestamp_ms;
        self.apply_at(block, arrival_ms)
    }

    /// Processes one block whose message the broker appended at `arrival_ms`, and applies the
    /// result; returns what happened to each block.
    pub fn apply_at(&mut self, block: Block, arrival_ms: u64) -> Vec<Outcome> {
        // The model holds every record in memory and never drops one a rule reads, so an
        // inconsistency here is a bug in the rules, not a state to recover from.
        let update = process_block(self, &self.params, block, arrival_ms)
            .unwrap_or_else(|e| panic!("the in-memory chain contradicts itself: {e}"));
        self.commit(update)
    }

    /// Queues a transfer in the mempool (no admission checks: callers decide).
    pub fn push_mempool(&mut self, tx: Transfer) {
        if !self.mempool.contains(&tx) {
            self.mempool.push(tx);
        }
    }

    /// The sender's next nonce at the tip.
    fn next_nonce(&self, sender: &Address) -> u64 {
        self.accounts.get(sender).map_or(0, |account| account.nonce)
    }

    fn commit(&mut self, update: ChainUpdate) -> Vec<Outcome> {
        for (hash, block, meta) in update.blocks {
            self.blocks.insert(hash, (block, meta));
        }
        for (height, entry) in update.main_index {
            match entry {
                Some(hash) => self.main.insert(height, hash),
                None => self.main.remove(&height),
            };
        }
        for (id, entry) in update.tx_index {
            match entry {
                Some(height) => self.tx_index.insert(id, height),
                None => self.tx_index.remove(&id),
            };
        }
        for (address, entry) in update.accounts {
            match entry {
                Some(account) => self.accounts.insert(address, account),
                None => self.accounts.remove(&address),
            };
        }
        for (height, record) in update.undo {
            match record {
                Some(record) => self.undo.insert(height, record),
                None => self.undo.remove(&height),
            };
        }
        if let Some(tip) = update.tip {
            self.tip = tip;
        }
        // A transfer whose nonce the tip has used is confirmed or conflicts: it leaves the pool.
        let mut pool = std::mem::take(&mut self.mempool);
        pool.extend(update.returned);
        for tx in pool {
            if tx.nonce >= self.next_nonce(&tx.sender) {
                self.push_mempool(tx);
            }
        }
        for seq in update.orphans_removed {
            self.orphans.remove(&seq);
        }
        self.orphans.extend(update.orphans_added.into_iter().map(|(entry, block)| (entry.seq, (entry, block))));
        update.outcomes
    }

    /// The current tip.
    pub fn tip_info(&self) -> Tip {
        self.tip
    }

    /// The main chain, genesis first.
    pub fn main_chain(&self) -> Vec<&Block> {
        self.main.values().map(|hash| &self.blocks[hash].0).collect()
    }

    /// Transfers waiting for a block, in arrival order.
    pub fn mempool(&self) -> &[Transfer] {
        &self.mempool
    }

    /// Every account at the tip, by address.
    pub fn accounts_at_tip(&self) -> &BTreeMap<Address, Account> {
        &self.accounts
    }

    /// Height of the main-chain block holding the transfer `id`.
    pub fn tx_height(&self, id: &TxId) -> Option<u64> {
        self.tx_index.get(id).copied()
    }
}

impl ChainView for MemoryChain {
    type Error = Inconsistent;

    fn tip(&self) -> Result<Tip, Inconsistent> {
        Ok(self.tip)
    }

    fn meta(&self, hash: &BlockHash) -> Result<Option<BlockMeta>, Inconsistent> {
        Ok(self.blocks.get(hash).map(|(_, meta)| *meta))
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, Inconsistent> {
        Ok(self.blocks.get(hash).map(|(block, _)| block.clone()))
    }

    fn main_hash_at(&self, height: u64) -> Result<Option<BlockHash>, Inconsistent> {
        Ok(self.main.get(&height).copied())
    }

    fn account(&self, address: &Address) -> Result<AccountEntry, Inconsistent> {
        Ok(self.accounts.get(address).copied())
    }

    fn undo(&self, height: u64) -> Result<Option<UndoRecord>, Inconsistent> {
        Ok(self.undo.get(&height).cloned())
    }

    fn orphan_entries(&self) -> Result<Vec<OrphanEntry>, Inconsistent> {
        Ok(self.orphans.values().map(|(entry, _)| *entry).collect())
    }

    fn orphan_block(&self, seq: u64) -> Result<Option<Block>, Inconsistent> {
        Ok(self.orphans.get(&seq).map(|(_, block)| block.clone()))
    }
}

/// The accounts at genesis: one per allocation, nonce 0.
pub fn genesis_accounts(params: &ChainParams) -> BTreeMap<Address, Account> {
    params.allocations.iter().map(|(address, balance)| (*address, Account { balance: *balance, nonce: 0 })).collect()
}
