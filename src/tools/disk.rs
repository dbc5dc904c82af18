//! Space files take on disk: the blocks the file system allocated, not their apparent length, so
//! that preallocated and sparse files (Kafka's index files, sled's segments) count for what they
//! hold.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes allocated on disk to the files under `path` (or to `path` itself when it is a file).
pub fn allocated_bytes(path: &Path) -> std::io::Result<u64> {
    let metadata = std::fs::symlink_metadata(path)?;
    if !metadata.is_dir() {
        return Ok(metadata.blocks() * 512);
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        total += allocated_bytes(&entry?.path())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparse_file_counts_what_it_holds_and_a_directory_sums_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let sparse = std::fs::File::create(dir.path().join("sparse")).unwrap();
        sparse.set_len(64 * 1024 * 1024).unwrap();
        std::fs::create_dir(dir.path().join("inner")).unwrap();
        std::fs::write(dir.path().join("inner/full"), vec![7u8; 100_000]).unwrap();
        let total = allocated_bytes(dir.path()).unwrap();
        assert!((100_000..1024 * 1024).contains(&total), "{total}");
        assert_eq!(
            allocated_bytes(&dir.path().join("inner/full")).unwrap(),
            allocated_bytes(&dir.path().join("inner")).unwrap()
        );
    }
}
