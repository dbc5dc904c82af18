//! The sled store: the only code that knows the key layout (see `keys`).
//!
//! Block bodies are kept in append-only files beside sled (see `block_files`), and so is the
//! index of the stored blocks by hash (see `block_index`). One sled tree holds the main-chain
//! height index, the transaction index, the accounts and the blocks' undo records, the tip, the
//! mempool, the orphan pool, registered peers, the consumer offsets and the length of each
//! append-only file. Every change a consumed message causes, its new offset and the files' new
//! lengths included, is written with one atomic `apply_batch`, so after a crash the stored
//! offsets always describe the stored state.

mod apply;
mod block_files;
mod block_index;
mod check;
mod keys;
mod main_index;
mod mempool;
mod position;
mod read;
mod recent;
mod upgrade;

pub use apply::{MempoolLimits, Offered, OffsetUpdate};
pub use block_files::BlockFileError;
pub use check::Consistency;
pub use position::TopicPartition;
pub use recent::RECENT_BLOCKS_BYTES;

/// The next offset to read in each topic partition the node has read.
pub type Positions = BTreeMap<TopicPartition, u64>;

use crate::core::block::{genesis, Block};
use crate::core::chain::{BlockMeta, OrphanEntry, SideBranch, Tip};
use crate::core::encoding;
use crate::core::hash::BlockHash;
use crate::core::memory::genesis_accounts;
use crate::core::params::ChainParams;
use crate::sync::lock;
use block_files::{BlockFiles, FilesEnd};
use block_index::{BlockIndex, IndexEntry};
use mempool::MempoolIndex;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled itself failed (I/O, corruption it detected).
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// The block files failed or are shorter than the records say.
    #[error(transparent)]
    BlockFile(#[from] BlockFileError),
    /// A stored value does not decode: the data directory is damaged or from another version.
    #[error("stored value under key {key} is damaged: {reason}")]
    Corrupt {
        /// The damaged record's key.
        key: String,
        /// Why it does not decode.
        reason: String,
    },
    /// The data directory belongs to a chain with other parameters.
    #[error("the data directory holds chain {stored:?}, but the configuration says {configured:?}")]
    WrongChain {
        /// The parameters the directory was made for.
        stored: Box<ChainParams>,
        /// The parameters of the configuration.
        configured: Box<ChainParams>,
    },
    /// A record the store must always hold is missing.
    #[error("the store is missing {0}")]
    Missing(MissingRecord),
    /// A stored block's body does not decode or is another block: the block files are damaged.
    #[error("the stored body of block {hash} is damaged: {reason}")]
    DamagedBlock {
        /// The block.
        hash: BlockHash,
        /// What is wrong with its body.
        reason: String,
    },
    /// The chain records contradict each other (see [`Inconsistent`]).
    #[error(transparent)]
    Inconsistent(#[from] crate::core::chain::Inconsistent),
    /// Another open store (of this process or another) still holds the data directory's lock
    /// after waiting for it.
    #[error("the data directory {} is locked by another open store (another node on the same directory, or one still closing); waited {} s for it", path.display(), waited.as_secs())]
    Locked {
        /// The data directory.
        path: std::path::PathBuf,
        /// How long the store waited for the lock.
        waited: Duration,
    },
    /// The data directory was written with another key layout (an older version of kafkachain).
    #[error("the data directory uses store layout {found}, this version reads layout {expected} (consensus format {}); start with a new data directory on topics of that format", crate::core::encoding::FORMAT_VERSION)]
    Layout {
        /// The layout the directory has.
        found: u64,
        /// The layout this version reads.
        expected: u64,
    },
}

/// Which record a store that must hold it lacks (a damaged or half-written data directory).
#[derive(Debug, thiserror::Error)]
pub enum MissingRecord {
    /// The tip record.
    #[error("the tip")]
    Tip,
    /// The chain parameters record.
    #[error("the chain parameters")]
    ChainParams,
    /// The chain parameters record of the data directory at this path.
    #[error("chain parameters in {}", .0.display())]
    ChainParamsIn(std::path::PathBuf),
    /// A block the chain records name.
    #[error("block {0}")]
    Block(BlockHash),
    /// The main chain's block at a height below the tip.
    #[error("main block {0}")]
    MainBlock(u64),
}

/// Version of the key layout in `keys`; raised whenever stored records change shape.
const LAYOUT_VERSION: u64 = 11;

/// What is stored per orphan: its index entry first, so opening the store rebuilds the pool's
/// index without decoding the blocks.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredOrphan<'a> {
    entry: OrphanEntry,
    block: Cow<'a, Block>,
}

/// The stored record of an orphan.
fn orphan_record(entry: &OrphanEntry, block: &Block) -> Vec<u8> {
    encoding::encode(&StoredOrphan { entry: *entry, block: Cow::Borrowed(block) })
}

/// The directory of the block files, inside the data directory.
pub const BLOCK_FILES_DIR: &str = "blocks";

/// Default bound of sled's page cache. sled counts pages at their on-disk size and holds them in
/// memory at about three times that, so 4 MiB keeps a node's resident memory small; the hot
/// records (tip, recent blocks, mempool head) fit in it.
pub const DEFAULT_CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// The node's persistent chain state.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    /// The blocks' bodies.
    bodies: Arc<BlockFiles>,
    /// The stored blocks by hash.
    index: Arc<BlockIndex>,
    params: ChainParams,
    /// Serializes writers: the consensus rules read the state, then the batch writes it.
    write_lock: Arc<Mutex<()>>,
    /// Index of the mempool records, changed only after the batch that changes them is written.
    mempool: Arc<Mutex<MempoolIndex>>,
    /// Index of the orphan records by sequence, changed likewise.
    orphans: Arc<Mutex<BTreeMap<u64, OrphanEntry>>>,
    /// The side branch last extended, with the tip it was computed under: a cache that spares
    /// walking the branch for the next block on it (see `ChainView::take_side_branch`).
    side_branch: Arc<Mutex<Option<KeptSideBranch>>>,
    /// Whether the transaction index (`T` records) is kept; see [`Store::set_tx_index`].
    tx_index: Arc<std::sync::atomic::AtomicBool>,
    /// The blocks stored lately, decoded, added after the batch that stores them is written.
    recent: Arc<Mutex<recent::RecentBlocks>>,
}

/// Blocks written to the block files and the index for a batch not yet written.
struct StagedBlocks {
    /// The block files' end after the bodies (none when only index entries were staged).
    files_end: Option<FilesEnd>,
    index_len: u64,
}

/// A side branch kept between messages.
struct KeptSideBranch {
    head: BlockHash,
    tip: BlockHash,
    branch: SideBranch,
}

impl Store {
    /// Opens (or creates, with the genesis of `params`) the store at `path`, with sled's cache
    /// bounded to `cache_bytes`. Refuses a directory that holds another chain.
    pub fn open(path: &Path, params: &ChainParams, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = open_db(path, cache_bytes)?;
        let tree = db.open_tree("chain")?;
        if tree.is_empty() {
            let store = Self::with_db(db, tree, path, params.clone())?;
            store.init_genesis()?;
            return Ok(store);
        }
        // Checked before the block files are opened (and cut to the stored end): a directory
        // that is refused is left as it was.
        let layout = upgrade::layout_state(&tree)?;
        match get_decoded_in::<ChainParams>(&tree, &keys::key(keys::STATE, keys::PARAMS))? {
            Some(stored) if &stored != params => {
                Err(StoreError::WrongChain { stored: Box::new(stored), configured: Box::new(params.clone()) })
            }
            Some(_) => Self::with_db(db, tree, path, params.clone())?.bring_to_layout(layout)?.load_indexes(),
            None => Err(StoreError::Missing(MissingRecord::ChainParams)),
        }
    }

    /// Opens an existing store with the chain parameters it was created with, for tools that
    /// inspect a data directory without its node's configuration. Like [`Store::open`], it cuts
    /// off unreferenced block file bytes and finishes a layout upgrade.
    pub fn open_existing(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = open_db(path, cache_bytes)?;
        let tree = db.open_tree("chain")?;
        let layout = upgrade::layout_state(&tree)?;
        let params = get_decoded_in(&tree, &keys::key(keys::STATE, keys::PARAMS))?
            .ok_or_else(|| StoreError::Missing(MissingRecord::ChainParamsIn(path.to_owned())))?;
        Self::with_db(db, tree, path, params)?.bring_to_layout(layout)?.load_indexes()
    }

    /// Indexes the stored mempool (deleting what it no longer holds) and orphan pool.
    fn load_indexes(mut self) -> Result<Self, StoreError> {
        let indexed = self.tree.get(keys::key(keys::STATE, keys::TX_INDEX))?.is_some_and(|v| v.as_ref() == [1]);
        self.tx_index.store(indexed, std::sync::atomic::Ordering::SeqCst);
        self.mempool = Arc::new(Mutex::new(MempoolIndex::rebuild(&self.tree, self.params.chain_tag())?));
        // Records a crash kept from their sweep go before anything else writes.
        self.sweep_mempool()?;
        let mut orphans = BTreeMap::new();
        for record in self.tree.scan_prefix([keys::ORPHAN]) {
            let (k, raw) = record?;
            let entry: OrphanEntry = encoding::decode_prefix(&raw).map_err(|e| corrupt(&k, e.to_string()))?;
            orphans.insert(entry.seq, entry);
        }
        self.orphans = Arc::new(Mutex::new(orphans));
        Ok(self)
    }

    /// The kept side branch.
    fn lock_side_branch(&self) -> MutexGuard<'_, Option<KeptSideBranch>> {
        lock(&self.side_branch)
    }

    /// The orphan pool's index.
    fn lock_orphans(&self) -> MutexGuard<'_, BTreeMap<u64, OrphanEntry>> {
        lock(&self.orphans)
    }

    /// The store over sled's `db` and its `tree`, with the block files in `path` cut to what
    /// the records reference.
    fn with_db(db: sled::Db, tree: sled::Tree, path: &Path, params: ChainParams) -> Result<Self, StoreError> {
        let end = get_decoded_in(&tree, &keys::key(keys::STATE, keys::FILES_END))?.unwrap_or_default();
        let index_key = keys::key(keys::STATE, keys::INDEX_LEN);
        let index_len = tree.get(&index_key)?.map_or(Ok(0), |raw| be_u64(&index_key, &raw))?;
        let dir = path.join(BLOCK_FILES_DIR);
        Ok(Store {
            bodies: Arc::new(BlockFiles::open(&dir, end, block_files::FILE_BYTES)?),
            index: Arc::new(BlockIndex::open(&dir.join(block_index::FILE_NAME), index_len)?),
            tree,
            db,
            params,
            write_lock: Arc::default(),
            mempool: Arc::default(),
            orphans: Arc::default(),
            side_branch: Arc::default(),
            tx_index: Arc::default(),
            recent: Arc::default(),
        })
    }

    /// Keeps the last `max_bytes` of blocks stored decoded in memory, for a reader that follows
    /// close behind the applier (the ledger stream); 0 keeps none (the default).
    pub fn keep_recent_blocks(&self, max_bytes: usize) {
        lock(&self.recent).set_bound(max_bytes);
    }

    /// The mempool index, for reading it or (holding the write lock) changing it.
    fn lock_mempool(&self) -> MutexGuard<'_, MempoolIndex> {
        lock(&self.mempool)
    }

    fn init_genesis(&self) -> Result<(), StoreError> {
        let block = genesis(&self.params);
        let hash = block.hash();
        let meta = BlockMeta::genesis(&block);
        let tip = Tip::genesis(hash);
        let mut batch = sled::Batch::default();
        // Everything that may fail is staged before the block, so nothing returns between
        // staging it and the write that counts it (or forgets it).
        self.stage_main_index(&BTreeMap::from([(0, Some(hash))]), &mut batch)?;
        batch.insert(keys::key(keys::STATE, keys::LAYOUT), &LAYOUT_VERSION.to_be_bytes()[..]);
        batch.insert(keys::key(keys::STATE, keys::TIP), encoding::encode(&tip));
        batch.insert(keys::key(keys::STATE, keys::PARAMS), encoding::encode(&self.params));
        for (address, account) in genesis_accounts(&self.params) {
            batch.insert(keys::key(keys::ACCOUNT, address.as_bytes()), encoding::encode(&account));
        }
        let staged = self.stage_blocks(&[(hash, meta, &block)], &mut batch)?;
        self.commit_blocks(batch, Some(staged))?;
        self.db.flush()?;
        Ok(())
    }

    /// The chain parameters of this store.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// Writes everything to disk now (sled also does so every 200 ms).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Writes the bodies of `blocks` (each with its hash and metadata) to the block files and
    /// their entries to the block index, both synced, and adds the files' new lengths to
    /// `batch`; the blocks are found by hash from now on. [`Store::commit_blocks`] writes the
    /// batch.
    fn stage_blocks(
        &self,
        blocks: &[(BlockHash, BlockMeta, &Block)],
        batch: &mut sled::Batch,
    ) -> Result<StagedBlocks, StoreError> {
        let appended = self.bodies.append(blocks.iter().map(|(_, _, block)| *block))?;
        let entries: Vec<IndexEntry> = blocks
            .iter()
            .zip(&appended.at)
            .map(|((hash, meta, _), body)| IndexEntry { hash: *hash, work: meta.cumulative_work, body: *body })
            .collect();
        let index_len = self.index.stage(&entries)?;
        batch.insert(keys::key(keys::STATE, keys::FILES_END), encoding::encode(&appended.end));
        batch.insert(keys::key(keys::STATE, keys::INDEX_LEN), &index_len.to_be_bytes()[..]);
        Ok(StagedBlocks { files_end: Some(appended.end), index_len })
    }

    /// Writes `batch`, which counts the blocks `staged` (if any), then moves the files' ends to
    /// it; if the write fails, the staged index entries are forgotten.
    fn commit_blocks(&self, batch: sled::Batch, staged: Option<StagedBlocks>) -> Result<(), StoreError> {
        self.finish_blocks(self.tree.apply_batch(batch).map_err(StoreError::from), staged)
    }

    /// Moves the files' ends to the blocks `staged` (if any) once the batch counting them is
    /// `written`, or forgets the staged index entries if it is not.
    fn finish_blocks(&self, written: Result<(), StoreError>, staged: Option<StagedBlocks>) -> Result<(), StoreError> {
        let Some(staged) = staged else { return written };
        match written {
            Ok(()) => {
                if let Some(end) = staged.files_end {
                    self.bodies.advance(end);
                }
                self.index.advance(staged.index_len);
                Ok(())
            }
            Err(e) => {
                self.index.discard();
                Err(e)
            }
        }
    }

    /// Reads and decodes the value under `key`.
    fn get_decoded<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        get_decoded_in(&self.tree, key)
    }
}

/// Opens the store at `path` and closes it again, once the node has let go of it. sled records
/// where its pages are (a snapshot of its page table) only while opening, after reading the whole
/// log written since the previous open; that read grows with the work done since, and a node that
/// ran for days would pay it on its next start. Paying it at shutdown, when no one waits, leaves
/// the next start only the snapshot to read.
pub fn checkpoint(path: &Path) -> Result<(), StoreError> {
    open_db(path, DEFAULT_CACHE_BYTES)?.flush()?;
    Ok(())
}

/// How long opening a store waits for its data directory's lock. sled releases the lock only
/// when the last of its background threads lets go of a closed database, a moment after the
/// `Store` is dropped; a process that reopens a directory it just closed (a tool, a test, the
/// shutdown checkpoint) waits for that instead of failing one time in twenty.
const LOCK_WAIT: Duration = Duration::from_secs(10);

fn open_db(path: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    open_db_waiting(path, cache_bytes, LOCK_WAIT)
}

/// Opens sled at `path`, retrying while another open database holds the directory's lock, for at
/// most `wait`.
fn open_db_waiting(path: &Path, cache_bytes: u64, wait: Duration) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + wait;
    loop {
        match sled::Config::new().path(path).cache_capacity(cache_bytes).flush_every_ms(Some(200)).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if is_lock_conflict(&e) => {
                if Instant::now() >= deadline {
                    return Err(StoreError::Locked { path: path.to_owned(), waited: wait });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether sled refused to open because another handle holds its lock file. sled 0.34 (pinned)
/// reports this only as an `Other` I/O error with this message, wrapping the lock's `WouldBlock`.
fn is_lock_conflict(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::Other && error.to_string().starts_with("could not acquire lock")
}

/// Reads and decodes the value under `key` in `tree`.
fn get_decoded_in<T: serde::de::DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>, StoreError> {
    tree.get(key)?.map(|raw| decode(key, &raw)).transpose()
}

/// Decodes a stored value, naming its key if it does not decode.
fn decode<T: serde::de::DeserializeOwned>(key: &[u8], raw: &[u8]) -> Result<T, StoreError> {
    encoding::decode(raw).map_err(|e| corrupt(key, e.to_string()))
}

fn corrupt(key: &[u8], reason: String) -> StoreError {
    StoreError::Corrupt { key: String::from_utf8_lossy(&key[..1]).into_owned() + &hex::encode(&key[1..]), reason }
}

/// Reads a big-endian u64 written by this module.
fn be_u64(key: &[u8], raw: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] =
        raw.try_into().map_err(|_| corrupt(key, format!("{} bytes where 8 were expected", raw.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests;
