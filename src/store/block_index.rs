//! The block index: one fixed-size entry per stored block (its hash, the work of its branch and
//! where its body is, with a CRC-32 of those), appended to `<data dir>/blocks/index` in the order the blocks are stored,
//! with a lookup by hash kept in memory.
//!
//! Why not sled: a record per block in sled, keyed by hash, lands in a random leaf, and sled's
//! log keeps every rewritten leaf until it cleans the segment. Measured on this project's
//! machines, such records took about 600 bytes of sled's file per block (more than the block
//! itself) and most of a cold sync's time in sled. Entries of a file that is only appended to
//! cost their 68 bytes. The file follows the block files' rule: entries are written and synced
//! before the sled batch that records the new length (`S` `block_index_len`), so every counted
//! entry is on disk whatever the moment of a crash, and what lies past the counted length is
//! cut off when the store opens.
//!
//! The lookup holds 12 bytes per block (about 12 MiB for a million): the last eight bytes of
//! each hash (proof of work constrains the leading ones, not these) with the entry's number,
//! sorted, plus a map of the entries added since the last merge into the sorted part. A lookup
//! yields the entries whose hash ends the same way; each is read from the file and its whole
//! hash compared.

use super::block_files::{BlockFileError, BodyAt};
use crate::core::hash::BlockHash;
use crate::core::pow::Work;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Bytes of one entry in the file: 64 of fields and a 4-byte CRC-32 of them.
pub(super) const ENTRY_BYTES: u64 = 68;

/// Bytes of an entry's fields, before its checksum.
const FIELD_BYTES: usize = 64;

/// Most entries the index may hold: entry numbers are 32-bit in the lookup.
const MAX_ENTRIES: u64 = u32::MAX as u64;

/// The name of the index file, in the block files' directory.
pub(super) const FILE_NAME: &str = "index";

/// Entries added since the last merge before they are merged into the sorted lookup, at the
/// least; past that, a sixteenth of the sorted part (so merging costs each entry about sixteen
/// moves over the chain's life, and the map stays small).
const MERGE_AT_LEAST: usize = 4096;

/// What the index holds for one stored block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct IndexEntry {
    /// The block's hash.
    pub hash: BlockHash,
    /// Work of the branch from genesis up to and including the block.
    pub work: Work,
    /// Where its body is in the block files.
    pub body: BodyAt,
}

impl IndexEntry {
    /// The entry's bytes in the file: hash, work, file number, body length, offset
    /// (little-endian integers), then the CRC-32 of those 64 bytes. The checksum stands where
    /// sled's checksummed log stood for the records it replaces: a flipped bit in the work would
    /// otherwise change fork choice silently.
    fn encode(&self) -> [u8; ENTRY_BYTES as usize] {
        let mut out = [0u8; ENTRY_BYTES as usize];
        out[0..32].copy_from_slice(self.hash.as_bytes());
        out[32..48].copy_from_slice(&self.work.0.to_le_bytes());
        out[48..52].copy_from_slice(&self.body.file.to_le_bytes());
        out[52..56].copy_from_slice(&self.body.len.to_le_bytes());
        out[56..64].copy_from_slice(&self.body.offset.to_le_bytes());
        let checksum = crc32fast::hash(&out[..FIELD_BYTES]);
        out[FIELD_BYTES..].copy_from_slice(&checksum.to_le_bytes());
        out
    }

    /// The entry whose bytes are `raw`, if its checksum matches.
    fn decode(raw: &[u8; ENTRY_BYTES as usize]) -> Option<Self> {
        let field = |from: usize, to: usize| &raw[from..to];
        let u32_at = |from: usize| u32::from_le_bytes(field(from, from + 4).try_into().unwrap_or_default());
        if crc32fast::hash(&raw[..FIELD_BYTES]) != u32_at(FIELD_BYTES) {
            return None;
        }
        Some(IndexEntry {
            hash: BlockHash::new(field(0, 32).try_into().unwrap_or_default()),
            work: Work(u128::from_le_bytes(field(32, 48).try_into().unwrap_or_default())),
            body: BodyAt {
                file: u32_at(48),
                len: u32_at(52),
                offset: u64::from_le_bytes(field(56, 64).try_into().unwrap_or_default()),
            },
        })
    }
}

/// The lookup key of `hash`: its last eight bytes.
fn tail(hash: &BlockHash) -> u64 {
    let bytes = hash.as_bytes();
    u64::from_le_bytes(bytes[24..32].try_into().unwrap_or_default())
}

/// Entry numbers by the tails of their hashes.
#[derive(Default)]
struct Lookup {
    /// Tails in ascending order (equal ones possible).
    tails: Vec<u64>,
    /// The entry number of each of `tails`.
    numbers: Vec<u32>,
    /// Entries added since the last merge, by tail.
    recent: HashMap<u64, u32>,
    /// Recent entries whose tail another recent entry already has (practically never).
    recent_twins: Vec<(u64, u32)>,
}

impl Lookup {
    /// The lookup over `pairs` of tail and entry number.
    fn from_pairs(mut pairs: Vec<(u64, u32)>) -> Self {
        pairs.sort_unstable();
        let mut lookup = Lookup {
            tails: Vec::with_capacity(pairs.len()),
            numbers: Vec::with_capacity(pairs.len()),
            ..Lookup::default()
        };
        for (tail, number) in pairs {
            lookup.tails.push(tail);
            lookup.numbers.push(number);
        }
        lookup
    }

    fn insert(&mut self, tail: u64, number: u32) {
        if let Some(twin) = self.recent.insert(tail, number) {
            self.recent_twins.push((tail, twin));
        }
    }

    /// Numbers of the entries whose hash has `tail`.
    fn candidates(&self, tail: u64) -> Vec<u32> {
        let first = self.tails.partition_point(|t| *t < tail);
        let sorted = self.tails[first..].iter().zip(&self.numbers[first..]).take_while(|(t, _)| **t == tail);
        let twins = self.recent_twins.iter().filter(|(t, _)| *t == tail);
        sorted.map(|(_, n)| *n).chain(self.recent.get(&tail).copied()).chain(twins.map(|(_, n)| *n)).collect()
    }

    /// Forgets the recent entries numbered `len` or more.
    fn cut(&mut self, len: u64) {
        self.recent.retain(|_, n| u64::from(*n) < len);
        self.recent_twins.retain(|(_, n)| u64::from(*n) < len);
    }

    /// Merges the recent entries into the sorted part once there are enough of them.
    fn merge_when_due(&mut self) {
        let recent = self.recent.len() + self.recent_twins.len();
        if recent < MERGE_AT_LEAST.max(self.tails.len() / 16) {
            return;
        }
        let mut added: Vec<(u64, u32)> = self.recent.drain().chain(self.recent_twins.drain(..)).collect();
        added.sort_unstable();
        let kept = self.tails.len();
        self.tails.reserve_exact(added.len());
        self.numbers.reserve_exact(added.len());
        self.tails.resize(kept + added.len(), 0);
        self.numbers.resize(kept + added.len(), 0);
        // Merged from the back, in place: the largest of what is left of each part goes last.
        let (mut old, mut new) = (kept, added.len());
        for slot in (0..self.tails.len()).rev() {
            if new == 0 {
                break;
            }
            if old > 0 && self.tails[old - 1] > added[new - 1].0 {
                old -= 1;
                self.tails[slot] = self.tails[old];
                self.numbers[slot] = self.numbers[old];
            } else {
                new -= 1;
                (self.tails[slot], self.numbers[slot]) = added[new];
            }
        }
    }
}

/// The lookup and the entries the stored records count.
struct IndexState {
    lookup: Lookup,
    /// Entries counted by the stored records; staged ones follow.
    committed: u64,
}

/// The index file of one data directory. Entries are staged by one writer at a time (the
/// store's write lock): stage, write the batch that counts them, then [`Self::advance`] (or
/// [`Self::discard`] if the batch failed). Staged entries are found by lookups already, so no
/// reader sees a block the stored records name before it can be read.
pub(super) struct BlockIndex {
    path: PathBuf,
    file: File,
    state: Mutex<IndexState>,
}

impl BlockIndex {
    /// Opens (creating it) the index file at `path`, keeping exactly its first `len` entries
    /// (what the stored records count) and cutting off the rest, and builds the lookup.
    pub(super) fn open(path: &Path, len: u64) -> Result<Self, BlockFileError> {
        let io_error = |source| BlockFileError::Io { path: path.to_owned(), source };
        if len > MAX_ENTRIES {
            return Err(BlockFileError::DamagedIndex {
                path: path.to_owned(),
                reason: format!("the store counts {len} entries, more than an index can hold"),
            });
        }
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path);
        let file = file.map_err(io_error)?;
        let found = file.metadata().map_err(io_error)?.len();
        let expected = len * ENTRY_BYTES;
        if found < expected {
            return Err(BlockFileError::Short { path: path.to_owned(), found, expected });
        }
        if found > expected {
            file.set_len(expected).map_err(io_error)?;
            file.sync_all().map_err(io_error)?;
        }
        if let Some(dir) = path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io_error)?;
        }
        let pairs = read_tails(path, &file, len)?;
        let state = IndexState { lookup: Lookup::from_pairs(pairs), committed: len };
        Ok(BlockIndex { path: path.to_owned(), file, state: Mutex::new(state) })
    }

    /// Writes `entries` after the counted ones and syncs them; lookups find them from now on.
    /// Returns the length that counts them, for the batch that stores the blocks.
    /// The lookup's lock is not held while the file is written and synced, so readers never
    /// wait on the disk; writers are one at a time (the store's write lock), so nothing else
    /// moves the counted length meanwhile.
    pub(super) fn stage(&self, entries: &[IndexEntry]) -> Result<u64, BlockFileError> {
        let first = crate::sync::lock(&self.state).committed;
        let len = first + entries.len() as u64;
        if len > MAX_ENTRIES {
            let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "the block index is full");
            return Err(BlockFileError::Io { path: self.path.clone(), source });
        }
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
        let io_error = |source| BlockFileError::Io { path: self.path.clone(), source };
        self.file.write_all_at(&bytes, first * ENTRY_BYTES).map_err(io_error)?;
        self.file.sync_data().map_err(io_error)?;
        let mut state = crate::sync::lock(&self.state);
        for (number, entry) in (first..len).zip(entries) {
            // Below `len`, which fits in a u32 (checked above).
            state.lookup.insert(tail(&entry.hash), number as u32);
        }
        Ok(len)
    }

    /// Counts the staged entries up to `len`, once the batch that records it is written.
    pub(super) fn advance(&self, len: u64) {
        let mut state = crate::sync::lock(&self.state);
        state.committed = len;
        state.lookup.merge_when_due();
    }

    /// Forgets the staged entries after a batch that failed; the next stage writes over them.
    pub(super) fn discard(&self) {
        let mut state = crate::sync::lock(&self.state);
        let committed = state.committed;
        state.lookup.cut(committed);
    }

    /// The entry of the block `hash`, if it is stored.
    pub(super) fn find(&self, hash: &BlockHash) -> Result<Option<IndexEntry>, BlockFileError> {
        let candidates = crate::sync::lock(&self.state).lookup.candidates(tail(hash));
        for number in candidates {
            let mut raw = [0u8; ENTRY_BYTES as usize];
            let read = self.file.read_exact_at(&mut raw, u64::from(number) * ENTRY_BYTES);
            read.map_err(|source| BlockFileError::Io { path: self.path.clone(), source })?;
            let entry = IndexEntry::decode(&raw).ok_or_else(|| self.damaged(u64::from(number)))?;
            if entry.hash == *hash {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// The error for the damaged entry `number`.
    fn damaged(&self, number: u64) -> BlockFileError {
        damaged_entry(&self.path, number)
    }

    /// Entries the stored records count.
    pub(super) fn len(&self) -> u64 {
        crate::sync::lock(&self.state).committed
    }

    /// Every counted entry, in the order stored (for tests that rebuild earlier layouts).
    #[cfg(test)]
    pub(super) fn entries(&self) -> Result<Vec<IndexEntry>, BlockFileError> {
        let mut raw = vec![0u8; (self.len() * ENTRY_BYTES) as usize];
        self.file
            .read_exact_at(&mut raw, 0)
            .map_err(|source| BlockFileError::Io { path: self.path.clone(), source })?;
        Ok(raw.chunks_exact(ENTRY_BYTES as usize).filter_map(|c| IndexEntry::decode(c.try_into().ok()?)).collect())
    }

    /// Bytes the file holds.
    pub(super) fn bytes(&self) -> Result<u64, BlockFileError> {
        let metadata = self.file.metadata();
        Ok(metadata.map_err(|source| BlockFileError::Io { path: self.path.clone(), source })?.len())
    }
}

/// The error for the damaged entry `number` of the index at `path`.
fn damaged_entry(path: &Path, number: u64) -> BlockFileError {
    BlockFileError::DamagedIndex { path: path.to_owned(), reason: format!("entry {number} fails its checksum") }
}

/// The tail of each of the first `len` (at most [`MAX_ENTRIES`]) entries' hashes in the index
/// `file` at `path`, with its number; every entry's checksum is checked on the way (a damaged
/// index is refused, not half-read).
fn read_tails(path: &Path, file: &File, len: u64) -> Result<Vec<(u64, u32)>, BlockFileError> {
    const CHUNK_ENTRIES: u64 = 16 * 1024;
    let mut pairs = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    let mut reader = std::io::BufReader::with_capacity((CHUNK_ENTRIES * ENTRY_BYTES) as usize, file);
    let mut raw = [0u8; ENTRY_BYTES as usize];
    for number in 0..len {
        let read = reader.read_exact(&mut raw);
        read.map_err(|source| BlockFileError::Io { path: path.to_owned(), source })?;
        let entry = IndexEntry::decode(&raw).ok_or_else(|| damaged_entry(path, number))?;
        // Below `len`, which is at most `MAX_ENTRIES`.
        pairs.push((tail(&entry.hash), number as u32));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> IndexEntry {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&n.to_be_bytes());
        hash[24..].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
        IndexEntry {
            hash: BlockHash::new(hash),
            work: Work(u128::from(n) << 70 | 3),
            body: BodyAt { file: n as u32 / 7, offset: n * 1000 + (1 << 33), len: n as u32 + 1 },
        }
    }

    /// An entry whose hash ends as `entry(n)`'s does, but differs before.
    fn twin(n: u64) -> IndexEntry {
        let mut e = entry(n);
        let mut hash = *e.hash.as_bytes();
        hash[0] = 0xff;
        e.hash = BlockHash::new(hash);
        e
    }

    #[test]
    fn an_entry_reads_back_as_written() {
        let e = entry(12345);
        assert_eq!(IndexEntry::decode(&e.encode()), Some(e));
    }

    #[test]
    fn a_damaged_entry_is_refused_on_open_and_reported_by_a_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let index = BlockIndex::open(&path, 0).unwrap();
        let len = index.stage(&[entry(1), entry(2)]).unwrap();
        index.advance(len);
        // One bit of entry 1's work flipped on disk.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[ENTRY_BYTES as usize + 40] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = index.find(&entry(2).hash).unwrap_err();
        assert!(matches!(&err, BlockFileError::DamagedIndex { reason, .. } if reason.contains("entry 1")), "{err}");
        assert_eq!(index.find(&entry(1).hash).unwrap(), Some(entry(1)), "the other entries still read");
        drop(index);
        let err = BlockIndex::open(&path, len).err().unwrap();
        assert!(matches!(err, BlockFileError::DamagedIndex { .. }), "{err}");
    }

    #[test]
    fn a_counted_length_beyond_what_an_index_holds_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let index = BlockIndex::open(&path, 0).unwrap();
        index.advance(index.stage(&[entry(1)]).unwrap());
        drop(index);
        let err = BlockIndex::open(&path, 1 << 58).err().unwrap();
        assert!(matches!(err, BlockFileError::DamagedIndex { .. }), "{err}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), ENTRY_BYTES, "the file is left as it was");
    }

    #[test]
    fn entries_are_found_across_merges_and_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let index = BlockIndex::open(&path, 0).unwrap();
        let total = 3 * MERGE_AT_LEAST as u64 + 17;
        for chunk in (0..total).collect::<Vec<_>>().chunks(500) {
            let entries: Vec<_> = chunk.iter().map(|&n| entry(n)).collect();
            let len = index.stage(&entries).unwrap();
            index.advance(len);
        }
        assert!(crate::sync::lock(&index.state).lookup.tails.len() >= 2 * MERGE_AT_LEAST, "merged twice");
        for n in (0..total).step_by(97).chain([total - 1]) {
            assert_eq!(index.find(&entry(n).hash).unwrap(), Some(entry(n)), "{n}");
        }
        assert_eq!(index.find(&entry(total).hash).unwrap(), None);
        assert_eq!(index.bytes().unwrap(), total * ENTRY_BYTES);
        drop(index);
        let index = BlockIndex::open(&path, total).unwrap();
        assert_eq!(index.len(), total);
        assert_eq!(index.find(&entry(total / 2).hash).unwrap(), Some(entry(total / 2)));
    }

    #[test]
    fn hashes_that_end_alike_are_told_apart_by_the_whole_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let index = BlockIndex::open(&path, 0).unwrap();
        let len = index.stage(&[entry(1), twin(1), entry(2)]).unwrap();
        index.advance(len);
        assert_eq!(index.find(&entry(1).hash).unwrap(), Some(entry(1)));
        assert_eq!(index.find(&twin(1).hash).unwrap(), Some(twin(1)));
        assert_eq!(index.find(&twin(2).hash).unwrap(), None);
        drop(index);
        let index = BlockIndex::open(&path, len).unwrap();
        let len = index.stage(&[twin(2)]).unwrap();
        index.advance(len);
        for e in [entry(1), twin(1), entry(2), twin(2)] {
            assert_eq!(index.find(&e.hash).unwrap(), Some(e));
        }
    }

    #[test]
    fn what_no_record_counts_is_discarded_cut_off_on_open_and_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let index = BlockIndex::open(&path, 0).unwrap();
        let kept = index.stage(&[entry(1), entry(2)]).unwrap();
        index.advance(kept);
        // A batch whose write failed: its entries are found while staged, then forgotten.
        index.stage(&[entry(3)]).unwrap();
        assert_eq!(index.find(&entry(3).hash).unwrap(), Some(entry(3)));
        index.discard();
        assert_eq!(index.find(&entry(3).hash).unwrap(), None);
        let next = index.stage(&[entry(4)]).unwrap();
        assert_eq!(next, 3, "written over the discarded entry");
        // The process dies before the batch counting entry 4 lands.
        drop(index);
        let index = BlockIndex::open(&path, kept).unwrap();
        assert_eq!(index.bytes().unwrap(), kept * ENTRY_BYTES, "the uncounted entry is cut off");
        assert_eq!(index.find(&entry(4).hash).unwrap(), None);
        assert_eq!(index.find(&entry(2).hash).unwrap(), Some(entry(2)));
    }

    #[test]
    fn a_file_shorter_than_the_records_count_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let index = BlockIndex::open(&path, 0).unwrap();
        let len = index.stage(&[entry(1)]).unwrap();
        drop(index);
        let err = BlockIndex::open(&path, len + 1).err().unwrap();
        assert!(matches!(err, BlockFileError::Short { found: 68, expected: 136, .. }), "{err}");
    }
}
