//! Block bodies in append-only files beside sled (`<data dir>/blocks/NNNNNNNN.blk`).
//!
//! A block is written once and never changed, so it needs none of sled's page management. Kept
//! in sled, the bodies made up most of its bytes, and sled's size on disk (three to seven times
//! the records it holds) and its log's bookkeeping in memory grew with them. sled keeps each block's metadata and where its body is ([`BodyAt`]), and the
//! end of the written files ([`FilesEnd`]), all in the batch that stores the block. The bodies
//! reach the disk (fsynced) before that batch is written, so every stored location holds its
//! body whatever the moment of a crash; what lies past the stored end was written for a batch
//! that never landed, and is cut off when the store opens.

use crate::core::encoding;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Length after which appends go to a new file: files of a size that copying, backing up and
/// deleting handle well, and few of them (eight per GiB of blocks).
pub(super) const FILE_BYTES: u64 = 128 * 1024 * 1024;

/// Files kept open for reading at once; readers ask mostly for recent blocks, in the last file.
const OPEN_READERS: usize = 4;

/// Where a block's body is in the block files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BodyAt {
    /// Number of the file.
    pub file: u32,
    /// Offset of the body's first byte in it.
    pub offset: u64,
    /// The body's length in bytes.
    pub len: u32,
}

/// The end of what the stored records reference: the file appended to last and its length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FilesEnd {
    /// Number of the file.
    pub file: u32,
    /// Bytes of it the records reference.
    pub len: u64,
}

/// Bodies written and synced for one batch, not yet referenced by a stored record.
pub(super) struct Appended {
    /// Where each body is, in the order given.
    pub at: Vec<BodyAt>,
    /// The end once the batch is written.
    pub end: FilesEnd,
}

/// Block file failures.
#[derive(Debug, thiserror::Error)]
pub enum BlockFileError {
    /// Reading, writing or syncing a file failed.
    #[error("block file {}: {source}", path.display())]
    Io {
        /// The file (or the directory of files).
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file before the last is gone, and with it the blocks it held.
    #[error("block file {} is missing", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The block index holds an entry that fails its checksum, or the store counts more
    /// entries than an index can hold.
    #[error("block index {}: {reason}", path.display())]
    DamagedIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file holds less than the store's records reference: it was cut or replaced outside
    /// the node, and the blocks past its end are gone.
    #[error("block file {} holds {found} bytes, but the store's records reach byte {expected}", path.display())]
    Short {
        /// The file.
        path: PathBuf,
        /// Its length.
        found: u64,
        /// The end the records reference.
        expected: u64,
    },
}

/// Capacity of the append buffer kept between batches: what a batch of the largest blocks needs,
/// without holding on to what a rare larger one took.
const KEPT_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// The file being appended to, and the end of what the stored records reference in it.
struct Appender {
    end: FilesEnd,
    file: File,
    /// The bodies of the batch being written; kept between batches so that a cold sync does not
    /// allocate and free a buffer of hundreds of kilobytes for every batch (which raises glibc's
    /// mmap threshold and leaves the heap fragmented).
    buffer: Vec<u8>,
}

/// The block files of one data directory. Appends are made by one writer at a time (the
/// store's write lock): append, write the batch that references them, then [`Self::advance`].
pub(super) struct BlockFiles {
    dir: PathBuf,
    file_bytes: u64,
    appender: Mutex<Appender>,
    readers: Mutex<BTreeMap<u32, Arc<File>>>,
}

impl BlockFiles {
    /// Opens the files under `dir` (creating it), keeping exactly what the stored records
    /// reference (up to `end`) and cutting off the rest. Appends start a new file once one
    /// passes `file_bytes`.
    pub(super) fn open(dir: &Path, end: FilesEnd, file_bytes: u64) -> Result<Self, BlockFileError> {
        let io_error = |path: &Path| {
            let path = path.to_owned();
            move |source| BlockFileError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
            let path = entry.map_err(io_error(dir))?.path();
            if file_number(&path).is_some_and(|n| n > end.file) {
                std::fs::remove_file(&path).map_err(io_error(&path))?;
            }
        }
        if let Some(path) = (0..end.file).map(|n| file_path(dir, n)).find(|path| !path.exists()) {
            return Err(BlockFileError::Missing { path });
        }
        let path = file_path(dir, end.file);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
        let file = file.map_err(io_error(&path))?;
        let found = file.metadata().map_err(io_error(&path))?.len();
        if found < end.len {
            return Err(BlockFileError::Short { path, found, expected: end.len });
        }
        if found > end.len {
            file.set_len(end.len).map_err(io_error(&path))?;
            file.sync_all().map_err(io_error(&path))?;
        }
        // The directory and the file may be new: their entries must outlast a power loss as the
        // bodies do.
        sync_dir(dir).map_err(io_error(dir))?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent).map_err(io_error(parent))?;
        }
        Ok(BlockFiles {
            dir: dir.to_owned(),
            file_bytes,
            appender: Mutex::new(Appender { end, file, buffer: Vec::new() }),
            readers: Mutex::default(),
        })
    }

    /// Writes the encodings of `bodies` after the referenced end and syncs them to disk. They
    /// stay unreferenced (the next append writes over them) until [`Self::advance`] to the
    /// returned end.
    pub(super) fn append<'a, T: Serialize + 'a>(
        &self,
        bodies: impl IntoIterator<Item = &'a T>,
    ) -> Result<Appended, BlockFileError> {
        let mut appender = crate::sync::lock(&self.appender);
        if appender.end.len >= self.file_bytes {
            let next = appender.end.file + 1;
            let path = file_path(&self.dir, next);
            let file = File::options().read(true).write(true).create(true).truncate(true).open(&path);
            appender.file = file.map_err(|source| BlockFileError::Io { path, source })?;
            sync_dir(&self.dir).map_err(|source| BlockFileError::Io { path: self.dir.clone(), source })?;
            appender.end = FilesEnd { file: next, len: 0 };
        }
        let start = appender.end;
        let Appender { file, buffer, .. } = &mut *appender;
        let written = write_synced(file, buffer, start, bodies);
        buffer.clear();
        buffer.shrink_to(KEPT_BUFFER_BYTES);
        let at = written.map_err(|source| BlockFileError::Io { path: file_path(&self.dir, start.file), source })?;
        let len = at.last().map_or(start.len, |last| last.offset + u64::from(last.len));
        Ok(Appended { at, end: FilesEnd { file: start.file, len } })
    }

    /// Moves the referenced end to `end`, once the batch that references the bodies up to it
    /// is written.
    pub(super) fn advance(&self, end: FilesEnd) {
        crate::sync::lock(&self.appender).end = end;
    }

    /// The body at `at`.
    pub(super) fn read(&self, at: BodyAt) -> Result<Vec<u8>, BlockFileError> {
        let path = file_path(&self.dir, at.file);
        let file = self.reader(at.file).map_err(|source| BlockFileError::Io { path: path.clone(), source })?;
        let mut body = vec![0; at.len as usize];
        file.read_exact_at(&mut body, at.offset).map_err(|source| BlockFileError::Io { path, source })?;
        Ok(body)
    }

    /// At most the first `max` bytes of the body at `at`.
    pub(super) fn read_prefix(&self, at: BodyAt, max: u32) -> Result<Vec<u8>, BlockFileError> {
        self.read(BodyAt { len: at.len.min(max), ..at })
    }

    /// File `number`, open for reading; the lowest-numbered open one is closed past the bound.
    fn reader(&self, number: u32) -> std::io::Result<Arc<File>> {
        let mut readers = crate::sync::lock(&self.readers);
        if let Some(file) = readers.get(&number) {
            return Ok(file.clone());
        }
        let file = Arc::new(File::open(file_path(&self.dir, number))?);
        if readers.len() >= OPEN_READERS {
            readers.pop_first();
        }
        readers.insert(number, file.clone());
        Ok(file)
    }

    /// Bytes the files hold.
    pub(super) fn bytes(&self) -> Result<u64, BlockFileError> {
        let io_error = |source| BlockFileError::Io { path: self.dir.clone(), source };
        let mut total = 0;
        for entry in std::fs::read_dir(&self.dir).map_err(io_error)? {
            let entry = entry.map_err(io_error)?;
            if file_number(&entry.path()).is_some() {
                total += entry.metadata().map_err(io_error)?.len();
            }
        }
        Ok(total)
    }
}

/// Encodes `bodies` into `buffer`, writes them to `file` at `start` and syncs them; returns
/// where each is.
fn write_synced<'a, T: Serialize + 'a>(
    file: &File,
    buffer: &mut Vec<u8>,
    start: FilesEnd,
    bodies: impl IntoIterator<Item = &'a T>,
) -> std::io::Result<Vec<BodyAt>> {
    buffer.clear();
    let mut at = Vec::new();
    for body in bodies {
        let offset = start.len + buffer.len() as u64;
        let len = u32::try_from(encoding::encode_into(body, buffer))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a body of 4 GiB or more"))?;
        at.push(BodyAt { file: start.file, offset, len });
    }
    file.write_all_at(buffer, start.len)?;
    file.sync_data()?;
    Ok(at)
}

/// Makes the entries of directory `dir` (a file created or removed in it) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The path of file `number`.
fn file_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("{number:08}.blk"))
}

/// The number of the block file at `path`, if it is one.
fn file_number(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?.strip_suffix(".blk")?;
    (name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit())).then(|| name.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(first: u8, count: u8) -> Vec<Vec<u8>> {
        (first..first + count).map(|n| vec![n; 10 + n as usize]).collect()
    }

    fn read_all(files: &BlockFiles, at: &[BodyAt]) -> Vec<Vec<u8>> {
        at.iter().map(|&at| encoding::decode(&files.read(at).unwrap()).unwrap()).collect()
    }

    #[test]
    fn bodies_read_back_from_where_they_were_written_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = BlockFiles::open(dir.path(), FilesEnd::default(), 40).unwrap();
        let mut written = Vec::new();
        let mut at = Vec::new();
        for round in 0..4 {
            let batch = bodies(round * 2, 2);
            let appended = files.append(&batch).unwrap();
            files.advance(appended.end);
            written.extend(batch);
            at.extend(appended.at);
        }
        assert_eq!(read_all(&files, &at), written);
        let used: std::collections::BTreeSet<u32> = at.iter().map(|a| a.file).collect();
        assert_eq!(used.len(), 2, "a file past its bound is followed by a new one: {at:?}");
        let total: u64 = written.iter().map(|b| encoding::encoded_len(b) as u64).sum();
        assert_eq!(files.bytes().unwrap(), total);
    }

    #[test]
    fn what_no_record_references_is_cut_off_on_open_and_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let files = BlockFiles::open(dir.path(), FilesEnd::default(), 40).unwrap();
        let kept = files.append(&bodies(1, 2)).unwrap();
        files.advance(kept.end);
        // A batch written to the files whose records never landed (the process died), the
        // second one in a file of its own.
        let lost = files.append(&bodies(5, 2)).unwrap();
        files.advance(lost.end);
        let lost_more = files.append(&bodies(7, 3)).unwrap();
        assert_ne!(lost_more.end.file, kept.end.file);
        drop(files);

        let files = BlockFiles::open(dir.path(), kept.end, 40).unwrap();
        assert_eq!(files.bytes().unwrap(), kept.end.len, "the unreferenced bytes and file are gone");
        assert!(!file_path(dir.path(), lost_more.end.file).exists());
        assert_eq!(read_all(&files, &kept.at), bodies(1, 2));
        let next = files.append(&bodies(3, 1)).unwrap();
        assert_eq!(next.at[0], BodyAt { file: kept.end.file, offset: kept.end.len, len: 14 });
        files.advance(next.end);
        assert_eq!(read_all(&files, &next.at), bodies(3, 1));
    }

    #[test]
    fn an_append_whose_batch_failed_is_written_over_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let files = BlockFiles::open(dir.path(), FilesEnd::default(), 1 << 20).unwrap();
        let failed = files.append(&bodies(1, 1)).unwrap();
        let next = files.append(&bodies(2, 1)).unwrap();
        assert_eq!(next.at[0].offset, failed.at[0].offset);
        files.advance(next.end);
        assert_eq!(read_all(&files, &next.at), bodies(2, 1));
    }

    #[test]
    fn a_missing_earlier_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = BlockFiles::open(dir.path(), FilesEnd::default(), 10).unwrap();
        for round in 0..3 {
            let appended = files.append(&bodies(round, 1)).unwrap();
            files.advance(appended.end);
        }
        let end = crate::sync::lock(&files.appender).end;
        assert_eq!(end.file, 2);
        drop(files);
        std::fs::remove_file(file_path(dir.path(), 1)).unwrap();
        let err = BlockFiles::open(dir.path(), end, 10).err().unwrap();
        assert!(matches!(&err, BlockFileError::Missing { path } if path.ends_with("00000001.blk")), "{err}");
    }

    #[test]
    fn a_file_shorter_than_the_records_reach_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = BlockFiles::open(dir.path(), FilesEnd::default(), 1 << 20).unwrap();
        let appended = files.append(&bodies(1, 2)).unwrap();
        drop(files);
        let beyond = FilesEnd { len: appended.end.len + 1, ..appended.end };
        let err = BlockFiles::open(dir.path(), beyond, 1 << 20).err().unwrap();
        assert!(matches!(err, BlockFileError::Short { found, .. } if found == appended.end.len), "{err}");
    }

    #[test]
    fn only_numbered_block_files_are_counted_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("99999999.txt"), b"keep").unwrap();
        std::fs::write(dir.path().join("notes"), b"keep").unwrap();
        let files = BlockFiles::open(dir.path(), FilesEnd::default(), 1 << 20).unwrap();
        assert_eq!(files.bytes().unwrap(), 0);
        assert!(dir.path().join("99999999.txt").exists() && dir.path().join("notes").exists());
        assert_eq!(file_number(&dir.path().join("00000012.blk")), Some(12));
        assert_eq!(file_number(&dir.path().join("12.blk")), None);
    }
}
