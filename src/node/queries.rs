//! Reads of the chain, the mempool and the node's readiness, for the API.

use super::error::{NodeError, NotReady};
use super::live::{Subscription, TooManySubscribers};
use super::state::ApplierState;
use super::{stats, Node};
use crate::core::account::{Account, Address};
use crate::core::block::Block;
use crate::core::chain::ChainView;
use crate::core::hash::{BlockHash, TxId};
use crate::core::transaction::{ChainTag, Transaction, Transfer};

/// A stored block and where it stands.
#[derive(Clone, Debug)]
pub struct StoredBlock {
    /// Its hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u64,
    /// Whether it is on the main chain (else on a side branch).
    pub main_chain: bool,
    /// The block.
    pub block: Block,
}

/// What the mempool holds.
#[derive(Clone, Debug)]
pub struct MempoolView {
    /// Transfers waiting.
    pub size: u64,
    /// Their encoded size, in bytes.
    pub bytes: u64,
    /// The oldest of them, oldest first.
    pub oldest: Vec<Transfer>,
}

/// Where a transaction stands.
#[derive(Clone, Debug)]
pub enum TxStatus {
    /// Waiting in the mempool.
    Pending(Transfer),
    /// In the main-chain block at `height`.
    Confirmed {
        /// The block's height.
        height: u64,
        /// The block's hash.
        block_hash: BlockHash,
        /// The transaction as the block holds it.
        transaction: Transaction,
    },
    /// Neither pending nor in the main chain.
    Unknown,
    /// Not pending; whether it is confirmed is unknown, since this node keeps no transaction
    /// index (`storage.tx_index`).
    NotIndexed,
}

impl Node {
    /// Subscribes a client of `GET /events` that last saw `last_event_id` (none for a new one).
    pub fn subscribe_events(&self, last_event_id: Option<&str>) -> Result<Subscription, TooManySubscribers> {
        self.inner.live.subscribe(last_event_id)
    }

    /// Whether the node can serve traffic: caught up with the blocks topic, not halted, brokers
    /// reachable. `Err` says which is not the case.
    pub fn readiness(&self) -> Result<(), NotReady> {
        match self.inner.applier.state() {
            ApplierState::Running => {}
            ApplierState::Halted(why) => return Err(NotReady::Halted(why)),
            ApplierState::Bootstrapping => return Err(NotReady::Bootstrapping),
        }
        if !self.inner.health.is_reachable() {
            return Err(NotReady::BrokersUnreachable);
        }
        if !self.inner.stats.is_caught_up() {
            return Err(NotReady::CatchingUp);
        }
        Ok(())
    }

    /// Main-chain blocks from height `from`, at most `limit` and about `max_bytes` of stored
    /// records (at least one block), and the chain's length. Reads the store on a blocking
    /// thread: a page of full blocks takes a while to decode.
    pub async fn chain(&self, from: u64, limit: usize, max_bytes: usize) -> Result<(Vec<Block>, u64), NodeError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || {
            let length = store.tip()?.height + 1;
            Ok((store.main_blocks(from, limit, max_bytes)?, length))
        })
        .await
        .map_err(NodeError::task("reading the chain"))?
    }

    /// The height of the tip.
    pub fn height(&self) -> Result<u64, NodeError> {
        Ok(self.inner.store.tip()?.height)
    }

    /// The stored block `hash` (on any branch), with its height and whether it is on the main
    /// chain; `None` when this node does not hold it.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<StoredBlock>, NodeError> {
        let store = &self.inner.store;
        let Some(block) = store.block(hash)? else { return Ok(None) };
        let height = block.header.height;
        let main_chain = store.main_hash_at(height)? == Some(*hash);
        Ok(Some(StoredBlock { hash: *hash, height, main_chain, block }))
    }

    /// The main-chain block at `height`; `None` above the tip.
    pub fn main_block(&self, height: u64) -> Result<Option<StoredBlock>, NodeError> {
        match self.inner.store.main_hash_at(height)? {
            Some(hash) => self.block(&hash),
            None => Ok(None),
        }
    }

    /// The size of the mempool (transfers and encoded bytes) and its `oldest` first transfers.
    pub fn mempool(&self, oldest: usize) -> Result<MempoolView, NodeError> {
        let store = &self.inner.store;
        Ok(MempoolView {
            size: store.mempool_len()?,
            bytes: store.mempool_bytes(),
            oldest: store.mempool_head(oldest)?,
        })
    }

    /// The tag transfers on this node's chain are signed with.
    pub fn chain_tag(&self) -> ChainTag {
        self.inner.store.params().chain_tag()
    }

    /// The account of `address` at the tip, and the nonce its next transfer takes once its
    /// pending ones are mined.
    pub fn account(&self, address: &Address) -> Result<(Account, u64), NodeError> {
        Ok(self.inner.store.account_with_pending(address)?)
    }

    /// Where the transfer `id` stands: pending, confirmed on the main chain, or unknown.
    pub fn transaction(&self, id: &TxId) -> Result<TxStatus, NodeError> {
        let store = &self.inner.store;
        if let Some(transfer) = store.pooled(id)? {
            return Ok(TxStatus::Pending(transfer));
        }
        if !store.tx_index_kept() {
            return Ok(TxStatus::NotIndexed);
        }
        let Some(height) = store.main_tx_height(id)? else { return Ok(TxStatus::Unknown) };
        let chain = self.chain_tag();
        let found = match store.main_hash_at(height)? {
            Some(hash) => store.block(&hash)?.and_then(|block| {
                let transaction = block.transactions.into_iter().find(|tx| tx.id(chain) == *id)?;
                Some(TxStatus::Confirmed { height, block_hash: hash, transaction })
            }),
            None => None,
        };
        // The index and the chain are written in one batch; a miss means the tip moved between
        // the two reads, and the caller may ask again.
        Ok(found.unwrap_or(TxStatus::Unknown))
    }

    /// Blocks applied since start at `from_height` or above (the most recent ones), with their
    /// produced and applied times.
    pub fn recent_blocks(&self, from_height: u64) -> Vec<stats::AppliedBlock> {
        self.inner.stats.recent_blocks(from_height)
    }
}
