//! Key layout of the one sled tree that holds a node's state. Each kind of record has a one-byte
//! prefix; integers in keys are big-endian so ranges scan in numeric order. Keeping everything in
//! one tree lets a single `apply_batch` commit a message's whole effect atomically.

/// `B` ++ block hash → the block's metadata followed by its body (layout 7) or where its body is
/// in the block files (layouts 8 and 9): read only to upgrade them (the block index holds the
/// blocks now).
pub(super) const BLOCK: u8 = b'B';
/// `G` ++ group (height / 64) → the hashes of the main-chain blocks at that group's heights, as
/// far as the chain reaches (see `main_index`).
pub(super) const MAIN_GROUP: u8 = b'G';
/// `H` ++ height → hash of the main-chain block there: the main-chain index of layouts 7 and 8,
/// read only to upgrade it.
pub(super) const MAIN_BY_HEIGHT: u8 = b'H';
/// `T` ++ txid → height of the main-chain block holding it (transfers only: a reward is unique
/// by its height).
pub(super) const TX: u8 = b'T';
/// `A` ++ address → the account (balance, next nonce) at the main-chain tip.
pub(super) const ACCOUNT: u8 = b'A';
/// `U` ++ height → the undo record of the main-chain block there: the account entries it
/// changed, as they were before it. Only the last `finality_depth + 1` heights keep one; keyed by
/// height, they are written and dropped in key order.
pub(super) const UNDO: u8 = b'U';
/// `P` ++ arrival sequence → mempool transfer (or, until the sweep after a block, one the block
/// confirmed or made invalid, listed under [`UNSWEPT`]: see `mempool`).
pub(super) const MEMPOOL: u8 = b'P';
/// `O` ++ sequence → the orphan's index entry followed by the block.
pub(super) const ORPHAN: u8 = b'O';
/// `F` ++ topic partition (`topic/partition`, see `TopicPartition::encode`) → next offset to
/// read there.
pub(super) const OFFSET: u8 = b'F';
/// `N` ++ URL → nothing: a registered peer.
pub(super) const PEER: u8 = b'N';
/// `S` ++ name → a single state value.
pub(super) const STATE: u8 = b'S';

/// State value names.
pub(super) const TIP: &[u8] = b"tip";
/// The chain parameters the store was created for.
pub(super) const PARAMS: &[u8] = b"chain_params";
/// Whether the transaction index is kept (1) or not (absent or 0).
pub(super) const TX_INDEX: &[u8] = b"tx_index";
/// The end of the block files that the records reference.
pub(super) const FILES_END: &[u8] = b"block_files_end";
/// The number of block index entries the records count.
pub(super) const INDEX_LEN: &[u8] = b"block_index_len";
/// The last block record an unfinished layout upgrade converted.
pub(super) const UPGRADE_CURSOR: &[u8] = b"upgrade_cursor";
/// The sequences of the `P` records whose transfers left the mempool with the last block and
/// whose deletion (the sweep) is not written yet; absent when there are none.
pub(super) const UNSWEPT: &[u8] = b"mempool_unswept";
/// The version of this key layout the store was written with.
pub(super) const LAYOUT: &[u8] = b"layout";

/// A key of kind `prefix` for `id`.
pub(super) fn key(prefix: u8, id: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + id.len());
    out.push(prefix);
    out.extend_from_slice(id);
    out
}

/// A key of kind `prefix` for a number, ordered numerically.
pub(super) fn numbered(prefix: u8, n: u64) -> [u8; 9] {
    let mut out = [prefix; 9];
    out[1..].copy_from_slice(&n.to_be_bytes());
    out
}
