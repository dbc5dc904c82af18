//! The sled store: the only code that knows tree names and key layout.
//!
//! Trees: `blocks` (hash → block), `block_meta` (hash → [`BlockMeta`]), `main` (height, big-endian
//! → hash), `tx_index` (txid → main-chain height), `state` (tip, counters, chain parameters),
//! `mempool` (arrival sequence → transaction), `mempool_ids` (txid → sequence), `orphans`
//! (sequence → block), `peers` (URL → nothing) and `offsets` (a consumer position name chosen by the transport → next
//! offset). Every change a consumed message causes, its new offset included, is written in one
//! sled transaction, so the stored offsets always describe the stored state.

mod apply;
mod check;
mod read;

pub use apply::{AdmitOutcome, OffsetUpdate};
pub use check::Consistency;

use crate::core::block::genesis;
use crate::core::chain::{BlockMeta, Tip};
use crate::core::encoding;
use crate::core::params::ChainParams;
use crate::core::pow::Work;
use sled::Transactional;
use std::convert::Infallible;
use std::path::Path;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled itself failed (I/O, corruption it detected).
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value does not decode: the data directory is damaged or from another version.
    #[error("stored value under {tree}/{key} is damaged: {reason}")]
    Corrupt { tree: &'static str, key: String, reason: String },
    /// The data directory belongs to a chain with other parameters.
    #[error("the data directory holds chain {stored:?}, but the configuration says {configured:?}")]
    WrongChain { stored: Box<ChainParams>, configured: Box<ChainParams> },
    /// A value the store must always hold is missing.
    #[error("the store is missing {0}")]
    Missing(String),
}

/// Default bound of sled's page cache: small, so memory does not grow with the chain.
pub const DEFAULT_CACHE_BYTES: u64 = 16 * 1024 * 1024;

const STATE_TIP: &[u8] = b"tip";
const STATE_PARAMS: &[u8] = b"chain_params";
const STATE_MEMPOOL_NEXT: &[u8] = b"mempool_next_seq";
const STATE_MEMPOOL_LEN: &[u8] = b"mempool_len";

/// The node's persistent chain state.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    params: ChainParams,
    blocks: sled::Tree,
    block_meta: sled::Tree,
    main: sled::Tree,
    tx_index: sled::Tree,
    state: sled::Tree,
    mempool: sled::Tree,
    mempool_ids: sled::Tree,
    orphans: sled::Tree,
    offsets: sled::Tree,
    peers: sled::Tree,
    /// Serializes writers: the consensus rules read the state, then the commit writes it.
    write_lock: std::sync::Arc<std::sync::Mutex<()>>,
}

impl Store {
    /// Opens (or creates, with the genesis of `params`) the store at `path`, with sled's cache
    /// bounded to `cache_bytes`. Refuses a directory that holds another chain.
    pub fn open(path: &Path, params: &ChainParams, cache_bytes: u64) -> Result<Self, StoreError> {
        let store = Self::with_trees(open_db(path, cache_bytes)?, params.clone())?;
        match store.stored_params()? {
            Some(stored) if &stored != params => Err(StoreError::WrongChain {
                stored: Box::new(stored),
                configured: Box::new(params.clone()),
            }),
            Some(_) => Ok(store),
            None => {
                store.init_genesis()?;
                Ok(store)
            }
        }
    }

    /// Opens an existing store with the chain parameters it was created with, for tools that
    /// inspect a data directory without its node's configuration.
    pub fn open_existing(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = open_db(path, cache_bytes)?;
        let state = db.open_tree("state")?;
        let raw = state
            .get(STATE_PARAMS)?
            .ok_or_else(|| StoreError::Missing(format!("chain parameters in {}", path.display())))?;
        let params = decode("state", STATE_PARAMS, &raw)?;
        Self::with_trees(db, params)
    }

    fn with_trees(db: sled::Db, params: ChainParams) -> Result<Self, StoreError> {
        let tree = |name: &str| db.open_tree(name);
        Ok(Store {
            params,
            blocks: tree("blocks")?,
            block_meta: tree("block_meta")?,
            main: tree("main")?,
            tx_index: tree("tx_index")?,
            state: tree("state")?,
            mempool: tree("mempool")?,
            mempool_ids: tree("mempool_ids")?,
            orphans: tree("orphans")?,
            offsets: tree("offsets")?,
            peers: tree("peers")?,
            write_lock: Default::default(),
            db,
        })
    }

    fn stored_params(&self) -> Result<Option<ChainParams>, StoreError> {
        self.state.get(STATE_PARAMS)?.map(|raw| decode("state", STATE_PARAMS, &raw)).transpose()
    }

    fn init_genesis(&self) -> Result<(), StoreError> {
        let block = genesis(&self.params);
        let hash = block.hash();
        let meta = BlockMeta {
            height: 0,
            parent: block.header.prev_hash,
            timestamp_ms: block.header.timestamp_ms,
            cumulative_work: Work::default(),
        };
        let tip = Tip { hash, height: 0, cumulative_work: Work::default() };
        (&self.blocks, &self.block_meta, &self.main, &self.state).transaction(
            |(blocks, block_meta, main, state)| {
                blocks.insert(&hash.0, encoding::encode(&block))?;
                block_meta.insert(&hash.0, encoding::encode(&meta))?;
                main.insert(&0u64.to_be_bytes(), &hash.0)?;
                state.insert(STATE_TIP, encoding::encode(&tip))?;
                state.insert(STATE_PARAMS, encoding::encode(&self.params))?;
                Ok::<_, sled::transaction::ConflictableTransactionError<Infallible>>(())
            },
        ).map_err(flatten_tx_error)?;
        self.db.flush()?;
        Ok(())
    }

    /// The chain parameters this store was opened with.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// Writes everything to disk now (sled also does so every 200 ms).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Bytes sled uses on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}

fn open_db(path: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    Ok(sled::Config::new().path(path).cache_capacity(cache_bytes).flush_every_ms(Some(200)).open()?)
}

/// Decodes a stored value, naming where it came from if it does not decode.
fn decode<T: serde::de::DeserializeOwned>(
    tree: &'static str,
    key: &[u8],
    raw: &[u8],
) -> Result<T, StoreError> {
    encoding::decode(raw).map_err(|e| StoreError::Corrupt {
        tree,
        key: hex::encode(key),
        reason: e.to_string(),
    })
}

/// Reads a big-endian u64 key or value written by this module.
fn be_u64(tree: &'static str, raw: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = raw.try_into().map_err(|_| StoreError::Corrupt {
        tree,
        key: hex::encode(raw),
        reason: format!("{} bytes where 8 were expected", raw.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// sled's transaction error as a plain sled error: this store never aborts a transaction.
fn flatten_tx_error(e: sled::transaction::TransactionError<Infallible>) -> StoreError {
    match e {
        sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
        sled::transaction::TransactionError::Abort(never) => match never {},
    }
}

#[cfg(test)]
mod tests;
