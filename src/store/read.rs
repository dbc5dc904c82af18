//! Reading the chain state: the [`ChainView`] the consensus rules run against, and the queries
//! the node and its HTTP API make.

use super::block_index::IndexEntry;
use super::keys::{self, key, numbered};
use super::{be_u64, corrupt, decode, MissingRecord, Positions, Store, StoreError, StoredOrphan, TopicPartition};
use crate::core::account::{Account, AccountEntry, Address};
use crate::core::admission::Refusal;
use crate::core::block::Block;
use crate::core::chain::{BlockMeta, ChainView, OrphanEntry, SideBranch, Tip, UndoRecord};
use crate::core::encoding;
use crate::core::hash::{BlockHash, TxId};
use crate::core::header::BlockHeader;
use crate::core::transaction::Transfer;
use crate::sync::lock;

impl ChainView for Store {
    type Error = StoreError;

    fn tip(&self) -> Result<Tip, StoreError> {
        self.get_decoded(&key(keys::STATE, keys::TIP))?.ok_or_else(|| StoreError::Missing(MissingRecord::Tip))
    }

    fn meta(&self, hash: &BlockHash) -> Result<Option<BlockMeta>, StoreError> {
        let Some(entry) = self.index.find(hash)? else { return Ok(None) };
        let header = self.header(&entry)?;
        Ok(Some(BlockMeta {
            height: header.height,
            parent: header.prev_hash,
            timestamp_ms: header.timestamp_ms,
            bits: header.bits,
            cumulative_work: entry.work,
        }))
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        // Taken out first, so the copy is made after the lock is let go.
        let recent = lock(&self.recent).get(hash);
        if let Some(recent) = recent {
            return Ok(Some(Block::clone(&recent)));
        }
        self.index.find(hash)?.map(|entry| self.body(&entry)).transpose()
    }

    fn main_hash_at(&self, height: u64) -> Result<Option<BlockHash>, StoreError> {
        self.main_index_at(height)
    }

    fn account(&self, address: &Address) -> Result<AccountEntry, StoreError> {
        self.get_decoded(&key(keys::ACCOUNT, address.as_bytes()))
    }

    /// Looks the addresses up in key order: the tree's leaves are then visited once each, in
    /// order, instead of once per address at random (most lookups miss sled's cache otherwise).
    fn accounts(&self, addresses: &[Address]) -> Result<Vec<AccountEntry>, StoreError> {
        let mut order: Vec<usize> = (0..addresses.len()).collect();
        order.sort_unstable_by_key(|&i| *addresses[i].as_bytes());
        let mut accounts = vec![None; addresses.len()];
        for i in order {
            accounts[i] = self.account(&addresses[i])?;
        }
        Ok(accounts)
    }

    fn undo(&self, height: u64) -> Result<Option<UndoRecord>, StoreError> {
        self.get_decoded(&numbered(keys::UNDO, height))
    }

    fn signature_checked(&self, id: &TxId) -> bool {
        self.is_pooled(id)
    }

    fn orphan_entries(&self) -> Result<Vec<OrphanEntry>, StoreError> {
        Ok(self.lock_orphans().values().copied().collect())
    }

    fn take_side_branch(&self, head: &BlockHash, tip: &BlockHash) -> Result<Option<SideBranch>, StoreError> {
        let mut kept = self.lock_side_branch();
        match kept.as_ref() {
            Some(k) if k.head == *head && k.tip == *tip => Ok(kept.take().map(|k| k.branch)),
            _ => Ok(None),
        }
    }

    fn orphan_pooled(&self, hash: &BlockHash) -> Result<bool, StoreError> {
        Ok(self.lock_orphans().values().any(|entry| entry.hash == *hash))
    }

    fn orphan_block(&self, seq: u64) -> Result<Option<Block>, StoreError> {
        let record: Option<StoredOrphan<'static>> = self.get_decoded(&numbered(keys::ORPHAN, seq))?;
        Ok(record.map(|r| r.block.into_owned()))
    }
}

impl Store {
    /// Main-chain blocks from `from` (inclusive): at most `limit` of them, and no more once their
    /// stored records pass `max_bytes` (the first block is always read), so a page of full
    /// blocks costs what it sends, not what `limit` full blocks would.
    pub fn main_blocks(&self, from: u64, limit: usize, max_bytes: usize) -> Result<Vec<Block>, StoreError> {
        let mut blocks = Vec::new();
        let mut bytes = 0;
        for hash in self.main_index_from(from, limit)? {
            let entry = self.index.find(&hash)?.ok_or(StoreError::Missing(MissingRecord::Block(hash)))?;
            bytes += entry.body.len as usize;
            if bytes > max_bytes && !blocks.is_empty() {
                break;
            }
            blocks.push(self.body(&entry)?);
        }
        Ok(blocks)
    }

    /// The body of the block `entry` indexes, read from the block files and checked to be that
    /// block (a damaged file is reported, not served).
    fn body(&self, entry: &IndexEntry) -> Result<Block, StoreError> {
        // Every stored block was checked to encode within the bound, so a longer claim is
        // damage, and is not allocated.
        if entry.body.len as usize > self.params.max_block_bytes {
            return Err(damaged(entry, format!("the index claims a body of {} bytes", entry.body.len)));
        }
        let raw = self.bodies.read(entry.body)?;
        let block: Block = encoding::decode(&raw).map_err(|e| damaged(entry, e.to_string()))?;
        is_indexed_block(entry, block.hash())?;
        Ok(block)
    }

    /// The header of the block `entry` indexes, read from the start of its body in the block
    /// files (what fork choice needs, without the transactions), and checked likewise.
    fn header(&self, entry: &IndexEntry) -> Result<BlockHeader, StoreError> {
        let raw = self.bodies.read_prefix(entry.body, HEADER_BYTES_AT_MOST)?;
        let header: BlockHeader = encoding::decode_prefix(&raw).map_err(|e| damaged(entry, e.to_string()))?;
        is_indexed_block(entry, header.hash())?;
        Ok(header)
    }

    /// Height of the main-chain block holding the transfer `id`, from the transaction index.
    pub fn main_tx_height(&self, id: &TxId) -> Result<Option<u64>, StoreError> {
        let k = key(keys::TX, id.as_bytes());
        self.tree.get(&k)?.map(|raw| be_u64(&k, &raw)).transpose()
    }

    /// Whether the transfer `id` waits in the mempool (the index only, no read of the record).
    pub fn is_pooled(&self, id: &TxId) -> bool {
        self.lock_mempool().contains(id)
    }

    /// The pooled transfer `id`, if it waits in the mempool.
    pub fn pooled(&self, id: &TxId) -> Result<Option<Transfer>, StoreError> {
        let Some(seq) = self.lock_mempool().seq(id) else { return Ok(None) };
        self.get_decoded(&numbered(keys::MEMPOOL, seq))
    }

    /// What `sender` has pending, for a transfer with `nonce`.
    pub fn pending(&self, sender: &Address, nonce: u64) -> crate::core::admission::Pending {
        self.lock_mempool().pending(sender, nonce)
    }

    /// Whether the mempool, holding `reserved` more transfers on their way to the topic, could
    /// take `tx` (its sender's account nonce at the tip being `next_nonce`, which the caller read
    /// already): there is room, `tx` replaces a pending transfer, or it may take another's place
    /// (`docs/consensus.md` section 8). The transactions topic decides in the end; this spares a
    /// client an acknowledgement for a transfer every node would drop.
    pub fn mempool_room_for(
        &self,
        tx: &Transfer,
        next_nonce: u64,
        max_transfers: u64,
        reserved: u64,
    ) -> Result<(), Refusal> {
        let index = self.lock_mempool();
        if index.len().saturating_add(reserved) < max_transfers || index.pending(&tx.sender, tx.nonce).taken.is_some() {
            return Ok(());
        }
        index.victim(tx, encoding::encoded_len(tx), next_nonce).map(drop)
    }

    /// The account of `address` at the tip (an untouched address has balance and nonce 0) and
    /// the nonce its next transfer takes once its pending ones are mined.
    pub fn account_with_pending(&self, address: &Address) -> Result<(Account, u64), StoreError> {
        let account = self.account(address)?.unwrap_or_default();
        Ok((account, self.lock_mempool().pending_nonce(address, account.nonce)))
    }

    /// The first `limit` mempool transfers, oldest first: records the index holds (a record
    /// whose transfer a block took, waiting for the sweep, is not one).
    pub fn mempool_head(&self, limit: usize) -> Result<Vec<Transfer>, StoreError> {
        let chain = self.params().chain_tag();
        let mut head = Vec::new();
        for entry in self.tree.scan_prefix([keys::MEMPOOL]) {
            if head.len() == limit {
                break;
            }
            let (k, raw) = entry?;
            let tx: Transfer = decode(&k, &raw)?;
            if self.lock_mempool().seq(&tx.id(chain)) == Some(be_u64(&k, &k[1..])?) {
                head.push(tx);
            }
        }
        Ok(head)
    }

    /// Every stored mempool record but the stale ones, whether the index holds it or not: what
    /// the store check inspects.
    pub(super) fn mempool_records(&self) -> Result<Vec<Transfer>, StoreError> {
        let stale = super::mempool::unswept(&self.tree)?;
        let mut records = Vec::new();
        for entry in self.tree.scan_prefix([keys::MEMPOOL]) {
            let (k, raw) = entry?;
            if !stale.contains(&be_u64(&k, &k[1..])?) {
                records.push(decode(&k, &raw)?);
            }
        }
        Ok(records)
    }

    /// At most `limit` ready mempool transfers (their sender's nonces run without a gap from its
    /// account), highest fee rate first by whole chunks and each after its sender's earlier ones
    /// (`docs/consensus.md` section 8): what a miner should take.
    pub fn mempool_ready(&self, limit: usize) -> Result<Vec<Transfer>, StoreError> {
        let seqs = self.lock_mempool().ready(limit);
        let mut ready = Vec::with_capacity(seqs.len());
        for seq in seqs {
            // A block applied since the index was read may have removed it.
            if let Some(tx) = self.get_decoded(&numbered(keys::MEMPOOL, seq))? {
                ready.push(tx);
            }
        }
        Ok(ready)
    }

    /// Encoded size of the transactions waiting in the mempool, in bytes.
    pub fn mempool_bytes(&self) -> u64 {
        self.lock_mempool().bytes()
    }

    /// Transactions waiting in the mempool.
    pub fn mempool_len(&self) -> Result<u64, StoreError> {
        Ok(self.lock_mempool().len())
    }

    /// The next offset to read in `position`, if one was stored.
    pub fn offset(&self, position: &TopicPartition) -> Result<Option<u64>, StoreError> {
        let k = key(keys::OFFSET, &position.encode());
        self.tree.get(&k)?.map(|raw| be_u64(&k, &raw)).transpose()
    }

    /// Every stored position with the next offset to read there.
    pub fn offsets(&self) -> Result<Positions, StoreError> {
        self.tree
            .scan_prefix([keys::OFFSET])
            .map(|entry| {
                let (k, raw) = entry?;
                let position = TopicPartition::decode(&k[1..])
                    .ok_or_else(|| corrupt(&k, "the key names no topic partition".into()))?;
                Ok((position, be_u64(&k, &raw)?))
            })
            .collect()
    }

    /// Base URLs of the registered peers.
    pub fn peers(&self) -> Result<Vec<String>, StoreError> {
        self.tree.scan_prefix([keys::PEER]).keys().map(|k| Ok(String::from_utf8_lossy(&k?[1..]).into_owned())).collect()
    }

    /// Bytes the store's files take on disk: sled's own account (its log file and any blobs),
    /// the block files and the block index (a few `stat`s and two directory listings).
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()? + self.bodies.bytes()? + self.index.bytes()?)
    }

    /// Blocks waiting for their parent.
    pub fn orphan_count(&self) -> usize {
        self.lock_orphans().len()
    }

    /// Number of records under `prefix` (a full scan: for checks, not hot paths).
    pub(super) fn count(&self, prefix: u8) -> u64 {
        self.tree.scan_prefix([prefix]).count() as u64
    }
}

/// The most bytes a block header takes at the start of its stored body (its encoding is at most
/// 107 bytes: fixed-size hashes and variable-length integers).
pub(super) const HEADER_BYTES_AT_MOST: u32 = 128;

/// The error for the damaged body of the block `entry` indexes.
fn damaged(entry: &IndexEntry, reason: String) -> StoreError {
    StoreError::DamagedBlock { hash: entry.hash, reason }
}

/// Checks that the body read for `entry` hashes to `found`, the indexed block's hash.
fn is_indexed_block(entry: &IndexEntry, found: BlockHash) -> Result<(), StoreError> {
    if found != entry.hash {
        return Err(damaged(entry, format!("the body at {:?} is another block's", entry.body)));
    }
    Ok(())
}

/// Reads a stored 32-byte digest.
pub(super) fn digest(k: &[u8], raw: &[u8]) -> Result<[u8; 32], StoreError> {
    raw.try_into().map_err(|_| corrupt(k, format!("{} bytes where 32 were expected", raw.len())))
}

impl Store {
    /// Every account at the tip, in address order (a full scan: for checks and tests).
    pub fn stored_accounts(&self) -> Result<Vec<(Address, Account)>, StoreError> {
        self.tree
            .scan_prefix([keys::ACCOUNT])
            .map(|entry| {
                let (k, raw) = entry?;
                let address = Address::new(digest(&k, &k[1..])?);
                Ok((address, decode(&k, &raw)?))
            })
            .collect()
    }
}
