//! Applying blocks and fork choice (consensus). Given a read-only view of the chain state, a new
//! block yields a [`ChainUpdate`]: the complete write set (block, main-chain index, transaction
//! index, accounts and their undo records, tip, mempool and orphan-pool changes) that storage
//! commits in one transaction.
//!
//! Rules, in order: a known block is a duplicate; a block failing its own checks is invalid; a
//! block whose parent is unknown waits in a bounded orphan pool; a block failing the checks
//! against its parent or branch is invalid; otherwise it is stored, and becomes the tip only when
//! its branch has strictly more cumulative work, so on a tie the block seen first in the log wins.
//! Storing a block retries the orphans waiting for it, within the same update.

use super::account::{AccountEntry, Address};
use super::block::Block;
use super::encoding;
use super::hash::{BlockHash, TxId};
use super::ledger::{connect, touched, BlockEffect};
use super::params::ChainParams;
use super::pow::{Target, Work};
use super::signature::first_invalid;
use super::transaction::{ChainTag, Transaction, Transfer};
use super::validate::{check_against_parent, check_block, BlockError, ParentFacts};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// What is kept for every stored block besides its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Height of the block.
    pub height: u64,
    /// Hash of its parent.
    pub parent: BlockHash,
    /// Its header timestamp, checked against children.
    pub timestamp_ms: u64,
    /// Its compact target, which its children inherit unless they retarget.
    pub bits: u32,
    /// Work of the branch from genesis up to and including this block.
    pub cumulative_work: Work,
}

impl BlockMeta {
    /// The metadata of a genesis block: no work of its own.
    pub fn genesis(block: &Block) -> Self {
        BlockMeta {
            height: 0,
            parent: block.header.prev_hash,
            timestamp_ms: block.header.timestamp_ms,
            bits: block.header.bits,
            cumulative_work: Work::default(),
        }
    }
}

/// The head of the main chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tip {
    /// Hash of the tip block.
    pub hash: BlockHash,
    /// Its height.
    pub height: u64,
    /// Cumulative work of the main chain.
    pub cumulative_work: Work,
    /// The highest height the main chain has ever reached (consensus). Finality is measured from
    /// it, not from `height`: a reorganization to a shorter, heavier branch lowers the tip, and
    /// the undo records of the heights it skipped are gone, so a fork there can no longer be
    /// checked and is refused as beyond finality.
    pub peak_height: u64,
}

impl Tip {
    /// The tip of a chain that holds only its genesis block `hash`.
    pub fn genesis(hash: BlockHash) -> Self {
        Tip { hash, height: 0, cumulative_work: Work::default(), peak_height: 0 }
    }

    /// How far below the peak height a fork at `fork_height` lies.
    pub fn depth_of(&self, fork_height: u64) -> u64 {
        self.peak_height.saturating_sub(fork_height)
    }
}

/// The account entries a main-chain block changed, as they were before it: restoring them
/// disconnects the block.
pub type UndoRecord = Vec<(Address, AccountEntry)>;

/// What became of one block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stored; `tip_moved` tells whether it is now the tip, `reorg_depth` how many main-chain
    /// blocks were abandoned to make it so.
    Stored {
        /// The block's hash.
        hash: BlockHash,
        /// The block's height.
        height: u64,
        /// Whether the block is now the tip.
        tip_moved: bool,
        /// How many main-chain blocks were abandoned for it.
        reorg_depth: u64,
    },
    /// Already stored or already waiting in the orphan pool.
    Duplicate(BlockHash),
    /// Parent unknown; kept in the orphan pool.
    Orphaned(BlockHash),
    /// Pushed out of the full orphan pool.
    OrphanDropped(BlockHash),
    /// Failed validation.
    Invalid(BlockHash, BlockError),
}

/// The chain state lacks data its own records promise (a stored block's parent, an undo record
/// within the finality depth): the state is damaged, or it changed under a reader that does not
/// hold the store's write lock.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the chain state is inconsistent: {0}")]
pub struct Inconsistent(pub String);

/// Read access to the chain state, implemented by the sled store and by [`super::memory::MemoryChain`].
pub trait ChainView {
    /// Failure to read the underlying state.
    type Error: std::error::Error + From<Inconsistent> + Send + Sync + 'static;
    /// The current tip.
    fn tip(&self) -> Result<Tip, Self::Error>;
    /// Metadata of a stored block.
    fn meta(&self, hash: &BlockHash) -> Result<Option<BlockMeta>, Self::Error>;
    /// Body of a stored block.
    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, Self::Error>;
    /// Hash of the main-chain block at `height`.
    fn main_hash_at(&self, height: u64) -> Result<Option<BlockHash>, Self::Error>;
    /// The account of `address` at the main-chain tip (`None`: never touched).
    fn account(&self, address: &Address) -> Result<AccountEntry, Self::Error>;
    /// [`ChainView::account`] of each of `addresses`, in their order. A store answers a whole
    /// block's addresses faster at once (it can visit them in key order).
    fn accounts(&self, addresses: &[Address]) -> Result<Vec<AccountEntry>, Self::Error> {
        addresses.iter().map(|address| self.account(address)).collect()
    }
    /// The undo record of the main-chain block at `height`: what disconnecting it restores.
    /// Only those from height `peak_height - finality_depth` up to the tip are kept: no
    /// reorganization goes deeper.
    fn undo(&self, height: u64) -> Result<Option<UndoRecord>, Self::Error>;
    /// Whether the transfer `id` is known to carry a valid signature (it waits in the mempool,
    /// which admits only verified transfers), so a block holding it need not verify it again.
    /// An id commits to the signing bytes and the signature, so the answer is exact.
    fn signature_checked(&self, id: &TxId) -> bool {
        let _ = id;
        false
    }
    /// The orphan pool's index, oldest first: small records, so a message never decodes the
    /// pooled blocks to learn what the pool holds.
    fn orphan_entries(&self) -> Result<Vec<OrphanEntry>, Self::Error>;
    /// The pooled block with sequence number `seq`.
    fn orphan_block(&self, seq: u64) -> Result<Option<Block>, Self::Error>;
    /// The side branch ending at `head`, if this view kept it while the tip was `tip` (and gives
    /// it away: the caller extends it). `None` makes the rules walk the branch instead, with the
    /// same result.
    fn take_side_branch(&self, head: &BlockHash, tip: &BlockHash) -> Result<Option<SideBranch>, Self::Error> {
        let _ = (head, tip);
        Ok(None)
    }
    /// Whether the block `hash` waits in the orphan pool. Asked for every block read, so a store
    /// answers it without copying the pool's index.
    fn orphan_pooled(&self, hash: &BlockHash) -> Result<bool, Self::Error> {
        Ok(self.orphan_entries()?.iter().any(|entry| entry.hash == *hash))
    }
}

/// What the orphan pool knows of one pooled block without decoding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanEntry {
    /// Arrival order in the pool (the oldest is dropped first).
    pub seq: u64,
    /// The block's hash.
    pub hash: BlockHash,
    /// The parent it waits for.
    pub parent: BlockHash,
    /// Its size in the canonical encoding, counted against `max_orphan_bytes`.
    pub bytes: u64,
}

/// Everything one processed message changes, to be committed atomically.
#[derive(Clone, Debug, Default)]
pub struct ChainUpdate {
    /// Newly stored blocks with their metadata, in the order they were stored.
    pub blocks: Vec<(BlockHash, Block, BlockMeta)>,
    /// Main-chain index changes: `None` removes the height.
    pub main_index: BTreeMap<u64, Option<BlockHash>>,
    /// Transaction index changes (transfers only): `None` removes the id.
    pub tx_index: HashMap<TxId, Option<u64>>,
    /// Main-chain account changes: `None` removes the account.
    pub accounts: HashMap<Address, AccountEntry>,
    /// Undo records of main-chain heights: `Some` for a block connected there, `None` to drop
    /// one (past the finality depth, or above a new, lower tip).
    pub undo: BTreeMap<u64, Option<UndoRecord>>,
    /// The new tip, when it moved.
    pub tip: Option<Tip>,
    /// Transfers of abandoned blocks that the new main chain does not hold, in chain order: the
    /// mempool takes back those still valid on the new tip.
    pub returned: Vec<Transfer>,
    /// Orphans added, with their index entries.
    pub orphans_added: Vec<(OrphanEntry, Block)>,
    /// Sequence numbers of orphans removed (adopted or dropped).
    pub orphans_removed: Vec<u64>,
    /// What happened to each block, in order.
    pub outcomes: Vec<Outcome>,
    /// The side branch ending at the last block stored without moving the tip, for the view to
    /// keep (see [`ChainView::take_side_branch`]); `None` when the update moved the tip.
    pub side_branch: Option<(BlockHash, SideBranch)>,
}

/// Processes `block` against `view` and returns the write set (nothing is written).
///
/// `arrival_ms` is the broker's log-append time of the block's message: the block's timestamp may
/// not run more than `max_future_ms` ahead of it. Orphans adopted by this block are checked
/// against the same time (they arrived earlier, so this is the laxer bound, and every node
/// applies it alike).
pub fn process_block<V: ChainView>(
    view: &V,
    params: &ChainParams,
    block: Block,
    arrival_ms: u64,
) -> Result<ChainUpdate, V::Error> {
    let mut overlay = Overlay::new(view);
    overlay.apply(params, block, arrival_ms)?;
    Ok(overlay.into_update())
}

/// A chain state made of a base view and the blocks applied on top of it in memory, without
/// writing anything. One consumed message uses one to adopt a cascade of orphans; peer sync uses
/// one to validate a peer's branch against the store exactly as the topic would, before
/// anything is published. It holds only what was applied on top, so its memory grows with those
/// blocks, not with the chain.
pub struct Overlay<V> {
    base: V,
    update: ChainUpdate,
    stored: HashMap<BlockHash, usize>,
    /// Whether the base's orphan pool takes part (it does when applying a message; it does not
    /// when checking a peer's branch, which must link on its own).
    base_orphans: bool,
    /// Transfers whose signatures the caller verified already (in parallel, ahead of applying).
    verified: HashSet<TxId>,
    /// The base's tip height, read once when first needed (the base does not change while an
    /// overlay is built on it): the base holds no undo record above it.
    base_height: Option<u64>,
}

impl<V: ChainView> Overlay<V> {
    /// An overlay with nothing on top of `base` yet.
    pub fn new(base: V) -> Self {
        Overlay {
            base,
            update: ChainUpdate::default(),
            stored: HashMap::new(),
            base_orphans: true,
            verified: HashSet::new(),
            base_height: None,
        }
    }

    /// This overlay, taking the transfers `ids` as verified: their signatures were checked
    /// before (an id commits to the signed bytes and the signature, so the verdict carries over).
    pub fn with_verified(self, ids: HashSet<TxId>) -> Self {
        Overlay { verified: ids, ..self }
    }

    /// An overlay that ignores the base's orphan pool: for checking a branch that must link
    /// block by block on its own.
    pub fn without_base_orphans(base: V) -> Self {
        Overlay { base_orphans: false, ..Self::new(base) }
    }

    /// Drops the undo record at `height`. One this overlay wrote above the base's tip was never
    /// stored, so it is only forgotten: a run of blocks applied together (catch-up) then writes
    /// neither the records it connects and prunes within the run nor their deletions.
    fn drop_undo(&mut self, height: u64) -> Result<(), V::Error> {
        let base_height = match self.base_height {
            Some(height) => height,
            None => *self.base_height.insert(self.base.tip()?.height),
        };
        if height > base_height {
            self.update.undo.remove(&height);
        } else {
            self.update.undo.insert(height, None);
        }
        Ok(())
    }

    /// Processes `block`, whose message the broker appended at `arrival_ms` (and the orphans it
    /// adopts) on top of what is already applied; returns what happened to each block, in order.
    pub fn apply(&mut self, params: &ChainParams, block: Block, arrival_ms: u64) -> Result<Vec<Outcome>, V::Error> {
        let first_outcome = self.update.outcomes.len();
        let mut queue = VecDeque::from([block]);
        while let Some(next) = queue.pop_front() {
            if let Some(stored) = self.accept(params, next, arrival_ms)? {
                for entry in self.orphan_entries()? {
                    if entry.parent == stored {
                        let orphan = self.orphan_block(entry.seq)?;
                        self.update.orphans_removed.push(entry.seq);
                        queue.extend(orphan);
                    }
                }
            }
        }
        Ok(self.update.outcomes[first_outcome..].to_vec())
    }

    /// The blocks stored on top of the base, in the order they were stored.
    pub fn stored_blocks(&self) -> impl Iterator<Item = &Block> {
        self.update.blocks.iter().map(|(_, block, _)| block)
    }

    /// Everything applied so far, as one write set.
    pub fn into_update(mut self) -> ChainUpdate {
        // An orphan pooled and then adopted or dropped within this update never reaches the
        // view: listed both ways, a store that removes and then adds would keep it for good.
        let update = &mut self.update;
        let removed: HashSet<u64> = update.orphans_removed.iter().copied().collect();
        let transient: HashSet<u64> =
            update.orphans_added.iter().map(|(entry, _)| entry.seq).filter(|seq| removed.contains(seq)).collect();
        update.orphans_added.retain(|(entry, _)| !transient.contains(&entry.seq));
        update.orphans_removed.retain(|seq| !transient.contains(seq));
        self.update
    }
}

/// A shared reference reads like the view it points to, so an overlay can borrow its base.
impl<V: ChainView> ChainView for &V {
    type Error = V::Error;

    fn tip(&self) -> Result<Tip, V::Error> {
        (**self).tip()
    }

    fn meta(&self, hash: &BlockHash) -> Result<Option<BlockMeta>, V::Error> {
        (**self).meta(hash)
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, V::Error> {
        (**self).block(hash)
    }

    fn main_hash_at(&self, height: u64) -> Result<Option<BlockHash>, V::Error> {
        (**self).main_hash_at(height)
    }

    fn account(&self, address: &Address) -> Result<AccountEntry, V::Error> {
        (**self).account(address)
    }

    fn accounts(&self, addresses: &[Address]) -> Result<Vec<AccountEntry>, V::Error> {
        (**self).accounts(addresses)
    }

    fn undo(&self, height: u64) -> Result<Option<UndoRecord>, V::Error> {
        (**self).undo(height)
    }

    fn signature_checked(&self, id: &TxId) -> bool {
        (**self).signature_checked(id)
    }

    fn orphan_entries(&self) -> Result<Vec<OrphanEntry>, V::Error> {
        (**self).orphan_entries()
    }

    fn orphan_block(&self, seq: u64) -> Result<Option<Block>, V::Error> {
        (**self).orphan_block(seq)
    }

    fn orphan_pooled(&self, hash: &BlockHash) -> Result<bool, V::Error> {
        (**self).orphan_pooled(hash)
    }

    fn take_side_branch(&self, head: &BlockHash, tip: &BlockHash) -> Result<Option<SideBranch>, V::Error> {
        (**self).take_side_branch(head, tip)
    }
}

impl<V: ChainView> ChainView for Overlay<V> {
    type Error = V::Error;

    fn tip(&self) -> Result<Tip, V::Error> {
        match self.update.tip {
            Some(tip) => Ok(tip),
            None => self.base.tip(),
        }
    }

    fn meta(&self, hash: &BlockHash) -> Result<Option<BlockMeta>, V::Error> {
        match self.stored.get(hash) {
            Some(&i) => Ok(Some(self.update.blocks[i].2)),
            None => self.base.meta(hash),
        }
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, V::Error> {
        match self.stored.get(hash) {
            Some(&i) => Ok(Some(self.update.blocks[i].1.clone())),
            None => self.base.block(hash),
        }
    }

    fn main_hash_at(&self, height: u64) -> Result<Option<BlockHash>, V::Error> {
        match self.update.main_index.get(&height) {
            Some(entry) => Ok(*entry),
            None => self.base.main_hash_at(height),
        }
    }

    fn account(&self, address: &Address) -> Result<AccountEntry, V::Error> {
        match self.update.accounts.get(address) {
            Some(entry) => Ok(*entry),
            None => self.base.account(address),
        }
    }

    fn accounts(&self, addresses: &[Address]) -> Result<Vec<AccountEntry>, V::Error> {
        let unknown: Vec<Address> =
            addresses.iter().filter(|a| !self.update.accounts.contains_key(a)).copied().collect();
        let mut from_base = self.base.accounts(&unknown)?.into_iter();
        Ok(addresses
            .iter()
            .map(|a| match self.update.accounts.get(a) {
                Some(entry) => *entry,
                None => from_base.next().flatten(),
            })
            .collect())
    }

    fn undo(&self, height: u64) -> Result<Option<UndoRecord>, V::Error> {
        match self.update.undo.get(&height) {
            Some(record) => Ok(record.clone()),
            None => self.base.undo(height),
        }
    }

    fn signature_checked(&self, id: &TxId) -> bool {
        self.verified.contains(id) || self.base.signature_checked(id)
    }

    fn orphan_entries(&self) -> Result<Vec<OrphanEntry>, V::Error> {
        let removed: HashSet<u64> = self.update.orphans_removed.iter().copied().collect();
        let mut all = if self.base_orphans { self.base.orphan_entries()? } else { Vec::new() };
        all.extend(self.update.orphans_added.iter().map(|(entry, _)| *entry));
        all.retain(|entry| !removed.contains(&entry.seq));
        Ok(all)
    }

    fn take_side_branch(&self, head: &BlockHash, tip: &BlockHash) -> Result<Option<SideBranch>, V::Error> {
        // Only the base's own state can vouch for what it kept.
        if self.stored.is_empty() {
            return self.base.take_side_branch(head, tip);
        }
        Ok(None)
    }

    fn orphan_pooled(&self, hash: &BlockHash) -> Result<bool, V::Error> {
        if self
            .update
            .orphans_added
            .iter()
            .any(|(entry, _)| entry.hash == *hash && !self.update.orphans_removed.contains(&entry.seq))
        {
            return Ok(true);
        }
        if !self.base_orphans {
            return Ok(false);
        }
        if self.update.orphans_removed.is_empty() {
            return self.base.orphan_pooled(hash);
        }
        Ok(self.base.orphan_entries()?.iter().any(|e| e.hash == *hash && !self.update.orphans_removed.contains(&e.seq)))
    }

    fn orphan_block(&self, seq: u64) -> Result<Option<Block>, V::Error> {
        if self.update.orphans_removed.contains(&seq) {
            return Ok(None);
        }
        match self.update.orphans_added.iter().find(|(entry, _)| entry.seq == seq) {
            Some((_, block)) => Ok(Some(block.clone())),
            None if self.base_orphans => self.base.orphan_block(seq),
            None => Ok(None),
        }
    }
}

impl SideBranch {
    /// Number of side blocks.
    pub fn side_len(&self) -> usize {
        self.side.len()
    }

    /// Height of the main-chain block the branch forks from.
    pub fn fork_height(&self) -> u64 {
        self.fork_height
    }
}

/// How many blocks of a branch the median-time rule looks back over (consensus).
pub const MEDIAN_SPAN: usize = 11;

/// The median timestamp of the last [`MEDIAN_SPAN`] blocks of the branch ending at `parent`
/// (fewer near genesis; the upper median of an even count): a child's timestamp must be above
/// it, so no miner can drag a branch's time backwards, whatever its clock says.
pub fn median_time_past<V: ChainView>(view: &V, parent: BlockHash) -> Result<u64, V::Error> {
    let mut times = Vec::with_capacity(MEDIAN_SPAN);
    let mut hash = parent;
    while times.len() < MEDIAN_SPAN {
        let Some(meta) = view.meta(&hash)? else { break };
        times.push(meta.timestamp_ms);
        if meta.height == 0 {
            break;
        }
        hash = meta.parent;
    }
    times.sort_unstable();
    Ok(times.get(times.len() / 2).copied().unwrap_or(0))
}

/// The compact target of a child of `parent`: the parent's, unless the child's height
/// retargets; then the parent's target scaled by how long the window of the last
/// `retarget_interval` blocks of the branch took against how long it should have taken (see
/// [`Target::retarget`]). Only the branch's own headers count, so every node agrees.
pub fn next_bits<V: ChainView>(view: &V, params: &ChainParams, parent: &BlockHash) -> Result<u32, V::Error> {
    let meta = view.meta(parent)?.ok_or_else(|| Inconsistent(format!("block {parent} has no metadata")))?;
    let Some(start) = params.retarget_window_start(meta.height + 1) else {
        return Ok(meta.bits);
    };
    let target = Target::from_compact(meta.bits)
        .map_err(|e| Inconsistent(format!("stored block {parent} carries bits that are no target: {e}")))?;
    let started_ms = ancestor(view, *parent, meta, start)?.timestamp_ms;
    let took_ms = meta.timestamp_ms.saturating_sub(started_ms);
    Ok(target.retarget(took_ms, params.retarget_timespan_ms(), params.easiest_target()).to_compact())
}

/// The metadata of the main-chain block at `height`, which must exist.
fn main_meta<V: ChainView>(view: &V, height: u64) -> Result<BlockMeta, V::Error> {
    let hash = view
        .main_hash_at(height)?
        .ok_or_else(|| Inconsistent(format!("the main chain has no block at height {height}")))?;
    Ok(view.meta(&hash)?.ok_or_else(|| Inconsistent(format!("main-chain block {hash} has no metadata")))?)
}

/// The hashes per second the network spent on the main chain's last `window` blocks: their
/// work over the time their timestamps span. Genesis's timestamp is configured, not mined, so
/// the span starts at block 1 at the earliest; 0 when fewer than two mined blocks exist or the
/// span is empty.
pub fn network_hash_rate<V: ChainView>(view: &V, tip: &Tip, window: u64) -> Result<f64, V::Error> {
    let first_height = tip.height.saturating_sub(window).max(1);
    if tip.height <= first_height {
        return Ok(0.0);
    }
    let (first, last) = (main_meta(view, first_height)?, main_meta(view, tip.height)?);
    let seconds = last.timestamp_ms.saturating_sub(first.timestamp_ms) as f64 / 1_000.0;
    let work = last.cumulative_work.0.saturating_sub(first.cumulative_work.0) as f64;
    Ok(if seconds > 0.0 { work / seconds } else { 0.0 })
}

/// The metadata of the block at `height` on the branch ending at `hash` (whose metadata is
/// `meta`): walks back until the branch meets the main chain, then reads the main-chain index.
fn ancestor<V: ChainView>(
    view: &V,
    mut hash: BlockHash,
    mut meta: BlockMeta,
    height: u64,
) -> Result<BlockMeta, V::Error> {
    while meta.height > height {
        if view.main_hash_at(meta.height)? == Some(hash) {
            return main_meta(view, height);
        }
        hash = meta.parent;
        meta = view.meta(&hash)?.ok_or_else(|| Inconsistent(format!("stored block {hash} has no metadata")))?;
    }
    Ok(meta)
}

/// The part of a block's branch that is not on the main chain: what checking a block against
/// its branch needs. A store may keep the one of the side branch last extended
/// ([`ChainView::take_side_branch`]), so a block extending it costs its own transactions, not
/// the whole branch again: a side branch then costs time linear in its length.
#[derive(Clone, Debug, Default)]
pub struct SideBranch {
    /// Side blocks from the one just above the fork point to the newest.
    side: Vec<BlockHash>,
    /// Accounts whose entry at the branch's head differs from the main tip's (or may: every
    /// account the branch or the main blocks above the fork touched).
    accounts: HashMap<Address, AccountEntry>,
    /// Height of the main-chain block the branch forks from.
    fork_height: u64,
}

impl<V: ChainView> Overlay<V> {
    /// Handles one block; returns its hash when it was stored.
    fn accept(&mut self, params: &ChainParams, block: Block, arrival_ms: u64) -> Result<Option<BlockHash>, V::Error> {
        let hash = block.hash();
        if self.meta(&hash)?.is_some() || self.orphan_pooled(&hash)? {
            self.update.outcomes.push(Outcome::Duplicate(hash));
            return Ok(None);
        }
        let chain = ChainTag::of(&params.chain_id);
        let (ids, work) = match check_block(&block, params, chain) {
            Ok(checked) => (checked.ids, checked.work),
            Err(e) => return self.reject(hash, e),
        };
        let Some(parent) = self.meta(&block.header.prev_hash)? else {
            self.orphan(params, hash, block)?;
            return Ok(None);
        };
        let facts = ParentFacts {
            height: parent.height,
            required_bits: next_bits(self, params, &block.header.prev_hash)?,
            median_time_ms: median_time_past(self, block.header.prev_hash)?,
            arrival_ms,
        };
        if let Err(e) = check_against_parent(&block, facts, params) {
            return self.reject(hash, e);
        }
        let tip = self.tip()?;
        let kept = match self.take_side_branch(&block.header.prev_hash, &tip.hash)? {
            Some(branch) if tip.depth_of(branch.fork_height) > params.finality_depth => Err(branch.fork_height),
            Some(branch) => Ok(branch),
            None => self.branch_of(params, block.header.prev_hash, parent.height, &tip)?,
        };
        let branch = match kept {
            Ok(branch) => branch,
            Err(fork_height) => {
                return self.reject(hash, BlockError::BeyondFinality { fork_height, peak_height: tip.peak_height })
            }
        };
        // The ledger first: it is cheap, and a block failing it costs no signature checks.
        let before = self.branch_accounts(&branch, &touched(&block))?;
        let effect = match connect(&block, params.reward, before) {
            Ok(effect) => effect,
            Err(e) => return self.reject(hash, BlockError::Ledger(e)),
        };
        if let Some(index) = self.first_bad_signature(&block, &ids, chain) {
            return self.reject(hash, BlockError::Signature(index));
        }
        let meta = BlockMeta {
            height: block.header.height,
            parent: block.header.prev_hash,
            timestamp_ms: block.header.timestamp_ms,
            bits: block.header.bits,
            cumulative_work: parent.cumulative_work + work,
        };
        self.stored.insert(hash, self.update.blocks.len());
        self.update.blocks.push((hash, block, meta));
        let (tip_moved, reorg_depth) = if meta.cumulative_work > tip.cumulative_work {
            let depth = self.switch_tip(params, tip, (hash, meta), branch, &ids, effect)?;
            self.update.side_branch = None;
            (true, depth)
        } else {
            let mut branch = branch;
            branch.side.push(hash);
            branch.accounts.extend(effect.after.into_iter().map(|(address, account)| (address, Some(account))));
            self.update.side_branch = Some((hash, branch));
            (false, 0)
        };
        self.update.outcomes.push(Outcome::Stored { hash, height: meta.height, tip_moved, reorg_depth });
        Ok(Some(hash))
    }

    fn reject(&mut self, hash: BlockHash, error: BlockError) -> Result<Option<BlockHash>, V::Error> {
        self.update.outcomes.push(Outcome::Invalid(hash, error));
        Ok(None)
    }

    /// The entries of `addresses` at the head of `branch`.
    fn branch_accounts(
        &self,
        branch: &SideBranch,
        addresses: &[Address],
    ) -> Result<Vec<(Address, AccountEntry)>, V::Error> {
        let unknown: Vec<Address> = addresses.iter().filter(|a| !branch.accounts.contains_key(a)).copied().collect();
        let mut from_main = self.accounts(&unknown)?.into_iter();
        Ok(addresses
            .iter()
            .map(|a| match branch.accounts.get(a) {
                Some(entry) => (*a, *entry),
                None => (*a, from_main.next().flatten()),
            })
            .collect())
    }

    /// Index (in the block's list) of the first transfer whose signature fails. Transfers the
    /// view already vouches for are not checked again; the rest are checked in batches spread
    /// over the cores.
    fn first_bad_signature(&self, block: &Block, ids: &[TxId], chain: ChainTag) -> Option<usize> {
        let unchecked: Vec<(usize, &Transfer)> = block
            .transactions
            .iter()
            .zip(ids)
            .enumerate()
            .filter_map(|(index, (tx, id))| match tx {
                Transaction::Transfer(t) if !self.signature_checked(id) => Some((index, t)),
                _ => None,
            })
            .collect();
        let signing: Vec<_> = unchecked.iter().map(|(_, t)| t.signing_bytes(chain)).collect();
        let items: Vec<_> = unchecked.iter().zip(&signing).map(|((_, t), bytes)| t.signed_message(bytes)).collect();
        first_invalid(&items).map(|i| unchecked[i].0)
    }

    /// Pools `block` until its parent arrives, then drops the oldest orphans until the pool is
    /// within `max_orphans` blocks and `max_orphan_bytes` bytes. A block larger than
    /// `max_orphan_bytes` alone is dropped at once and pushes nothing out: one message can never
    /// empty the pool.
    fn orphan(&mut self, params: &ChainParams, hash: BlockHash, block: Block) -> Result<(), V::Error> {
        let bytes = encoding::encoded_len(&block) as u64;
        if bytes > params.max_orphan_bytes as u64 {
            self.update.outcomes.push(Outcome::OrphanDropped(hash));
            return Ok(());
        }
        let mut pool = self.orphan_entries()?;
        let seq = pool.iter().map(|entry| entry.seq + 1).max().unwrap_or(0);
        let entry = OrphanEntry { seq, hash, parent: block.header.prev_hash, bytes };
        self.update.orphans_added.push((entry, block));
        self.update.outcomes.push(Outcome::Orphaned(hash));
        pool.push(entry);
        let mut total: u64 = pool.iter().map(|e| e.bytes).sum();
        let mut count = pool.len();
        for old in pool {
            if count <= params.max_orphans && total <= params.max_orphan_bytes as u64 {
                break;
            }
            self.update.orphans_removed.push(old.seq);
            self.update.outcomes.push(Outcome::OrphanDropped(old.hash));
            count -= 1;
            total -= old.bytes;
        }
        Ok(())
    }

    /// Walks back from `parent` until the main chain, through the blocks' metadata only, and
    /// stops as soon as the fork point is known to lie more than `finality_depth` blocks below
    /// the tip's peak height (`Err` with the height reached): a fork that deep is refused, so the
    /// walk, and the blocks and undo records read for the branch afterwards, never exceed
    /// `finality_depth` blocks, and every undo record it reads is one the chain keeps.
    fn branch_of(
        &self,
        params: &ChainParams,
        parent: BlockHash,
        parent_height: u64,
        tip: &Tip,
    ) -> Result<Result<SideBranch, u64>, V::Error> {
        let finality_depth = params.finality_depth;
        let mut side = Vec::new();
        let (mut hash, mut height) = (parent, parent_height);
        while self.main_hash_at(height)? != Some(hash) {
            if tip.depth_of(height) >= finality_depth {
                return Ok(Err(height));
            }
            let meta = self.meta(&hash)?.ok_or_else(|| missing(format!("ancestor {hash} of a stored block")))?;
            side.push(hash);
            hash = meta.parent;
            height -= 1;
        }
        if tip.depth_of(height) > finality_depth {
            return Ok(Err(height));
        }
        side.reverse();
        let mut branch =
            SideBranch { side: Vec::new(), accounts: self.accounts_at_fork(height, tip.height)?, fork_height: height };
        for side_hash in side {
            let block = self.block(&side_hash)?.ok_or_else(|| missing(format!("side block {side_hash}")))?;
            let before = self.branch_accounts(&branch, &touched(&block))?;
            let effect = connect(&block, params.reward, before).map_err(|e| unfit(&side_hash, e))?;
            branch.accounts.extend(effect.after.into_iter().map(|(address, account)| (address, Some(account))));
            branch.side.push(side_hash);
        }
        Ok(Ok(branch))
    }

    /// The entries the main-chain blocks above `fork_height` changed, as they were at the fork
    /// point: their undo records, applied from the tip down.
    fn accounts_at_fork(&self, fork_height: u64, tip_height: u64) -> Result<HashMap<Address, AccountEntry>, V::Error> {
        let mut accounts = HashMap::new();
        for height in (fork_height + 1..=tip_height).rev() {
            accounts.extend(
                self.undo(height)?.ok_or_else(|| missing(format!("undo record of main-chain height {height}")))?,
            );
        }
        Ok(accounts)
    }

    /// Makes `new` the tip: disconnects the main chain above the fork point, connects the new
    /// branch (writing its accounts and undo records), and hands abandoned transfers back to the
    /// mempool. `effect` is the new block's effect on the branch. Returns the blocks abandoned.
    fn switch_tip(
        &mut self,
        params: &ChainParams,
        old: Tip,
        (hash, meta): (BlockHash, BlockMeta),
        branch: SideBranch,
        new_ids: &[TxId],
        effect: BlockEffect,
    ) -> Result<u64, V::Error> {
        let chain = ChainTag::of(&params.chain_id);
        // Read before the main chain above the fork is disconnected below.
        let at_fork = self.accounts_at_fork(branch.fork_height, old.height)?;
        let mut abandoned: Vec<Vec<Transfer>> = Vec::new();
        for height in (branch.fork_height + 1..=old.height).rev() {
            let old_hash =
                self.main_hash_at(height)?.ok_or_else(|| missing(format!("main-chain block at height {height}")))?;
            let old_block = self.block(&old_hash)?.ok_or_else(|| missing(format!("main-chain block {old_hash}")))?;
            for tx in old_block.transfers() {
                self.update.tx_index.insert(tx.id(chain), None);
            }
            abandoned.push(old_block.transfers().cloned().collect());
            self.update.main_index.insert(height, None);
        }
        // Replay the side blocks from the fork point to record their undo records; the new
        // block's effect was computed on the same state.
        let mut state = SideBranch { side: Vec::new(), accounts: at_fork, fork_height: branch.fork_height };
        let mut connected_ids = HashSet::new();
        for (height, side_hash) in (branch.fork_height + 1..).zip(&branch.side) {
            let block = self.block(side_hash)?.ok_or_else(|| missing(format!("branch block {side_hash}")))?;
            let before = self.branch_accounts(&state, &touched(&block))?;
            let side_effect = connect(&block, params.reward, before).map_err(|e| unfit(side_hash, e))?;
            state.accounts.extend(side_effect.after.into_iter().map(|(a, account)| (a, Some(account))));
            self.update.undo.insert(height, Some(side_effect.before));
            self.index_connected(height, *side_hash, &block.txids(chain), &mut connected_ids);
        }
        state.accounts.extend(effect.after.into_iter().map(|(a, account)| (a, Some(account))));
        self.update.undo.insert(meta.height, Some(effect.before));
        self.index_connected(meta.height, hash, new_ids, &mut connected_ids);
        for height in meta.height + 1..=old.height {
            self.drop_undo(height)?;
        }
        // Undo records deeper than the finality depth below the peak height are never read again:
        // one goes for each height connected (below the old peak, it went when the peak passed).
        for connected in branch.fork_height + 1..=meta.height {
            if let Some(stale) = connected.checked_sub(params.finality_depth + 1).filter(|h| *h > 0) {
                self.drop_undo(stale)?;
            }
        }
        self.update.accounts.extend(state.accounts);
        for tx in abandoned.into_iter().rev().flatten() {
            if !connected_ids.contains(&tx.id(chain)) {
                self.update.returned.push(tx);
            }
        }
        self.update.tip = Some(Tip {
            hash,
            height: meta.height,
            cumulative_work: meta.cumulative_work,
            peak_height: old.peak_height.max(meta.height),
        });
        Ok(old.height - branch.fork_height)
    }

    /// Records `hash` as the main-chain block at `height` and indexes its transfers.
    fn index_connected(&mut self, height: u64, hash: BlockHash, ids: &[TxId], connected: &mut HashSet<TxId>) {
        // A valid block's first transaction is its reward, unique by its height, so only the
        // transfers after it are indexed.
        for id in ids.iter().skip(1) {
            self.update.tx_index.insert(*id, Some(height));
            connected.insert(*id);
        }
        self.update.main_index.insert(height, Some(hash));
    }
}

/// The error for data the chain's own records promise but the view lacks.
fn missing<E: From<Inconsistent>>(what: String) -> E {
    E::from(Inconsistent(format!("missing {what}")))
}

/// The error for a stored branch block that no longer fits the accounts its branch gives it.
fn unfit<E: From<Inconsistent>>(hash: &BlockHash, error: super::ledger::LedgerError) -> E {
    E::from(Inconsistent(format!("stored block {hash} does not fit its branch: {error}")))
}
