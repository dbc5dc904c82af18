//! A log file that can be opened again at the same path, so logrotate can move it away and
//! signal the node (SIGHUP) to write a new one, without losing or splitting a line.

use crate::sync::lock;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The node's log file, appended to.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl LogFile {
    /// Opens (or creates) the file at `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self { path: path.to_owned(), file: Mutex::new(append(path)?) })
    }

    /// Opens the path again: after a rotation it names a new file, and lines go there from now
    /// on. On failure the old file is kept.
    pub fn reopen(&self) -> std::io::Result<()> {
        let fresh = append(&self.path)?;
        *self.lock() = fresh;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, File> {
        lock(&self.file)
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Each write goes whole to the file open at that moment (the log layer writes an event's line
/// in one call), so a line never straddles a reopen.
impl Write for &LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.lock().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_rename_and_a_reopen_lines_go_to_a_new_file_at_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.log");
        let log = LogFile::open(&path).unwrap();
        writeln!(&log, "one").unwrap();
        std::fs::rename(&path, dir.path().join("node.log.1")).unwrap();
        writeln!(&log, "two").unwrap();
        log.reopen().unwrap();
        writeln!(&log, "three").unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("node.log.1")).unwrap(), "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
    }
}
