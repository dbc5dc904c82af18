//! Files and directories that hold secrets (the operator token, wallet keys, later Kafka
//! passwords): refused when anyone but their owner may read or change them, as ssh refuses a
//! private key others can read. A secret that others could already read is no longer a secret,
//! and saying so at start is better than leaking it quietly.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why a secret file or directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// It could not be read (missing, no permission, ...).
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// What the system reported.
        source: std::io::Error,
    },
    /// Its group or others have some access to it.
    #[error(
        "{} is open to other users (mode {mode:04o}): it holds a secret, so only its owner may have access; run `chmod {wanted:o} {}`",
        path.display(),
        path.display()
    )]
    TooOpen {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The mode it should have (0600 for a file, 0700 for a directory).
        wanted: u32,
    },
}

/// Reads the secret in the file at `path` after checking that only its owner may access it.
/// The text is returned whole; callers trim it as their format says.
pub fn read_private(path: &Path) -> Result<String, SecretFileError> {
    let read = |source| SecretFileError::Read { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(read)?;
    // Checked on the open file, so the check and the read concern the same file.
    check_owner_only(path, &file.metadata().map_err(read)?, 0o600)?;
    std::io::read_to_string(file).map_err(read)
}

/// Checks that only its owner may access the directory at `path`.
pub fn check_private_dir(path: &Path) -> Result<(), SecretFileError> {
    let metadata = std::fs::metadata(path).map_err(|source| SecretFileError::Read { path: path.to_owned(), source })?;
    check_owner_only(path, &metadata, 0o700)
}

fn check_owner_only(path: &Path, metadata: &std::fs::Metadata, wanted: u32) -> Result<(), SecretFileError> {
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::TooOpen { path: path.to_owned(), mode, wanted });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_secret_others_may_read_or_change_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").unwrap();
        for open in [0o644, 0o640, 0o604, 0o620, 0o602] {
            chmod(&file, open);
            let err = read_private(&file).unwrap_err();
            assert!(matches!(err, SecretFileError::TooOpen { mode, wanted: 0o600, .. } if mode == open), "{err}");
            assert!(err.to_string().contains("chmod 600"), "{err}");
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
        chmod(&file, 0o600);
        assert_eq!(read_private(&file).unwrap(), "s3cret\n");
        chmod(&file, 0o400);
        assert_eq!(read_private(&file).unwrap(), "s3cret\n");
        let missing = read_private(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(missing, SecretFileError::Read { .. }), "{missing}");
    }

    #[test]
    fn a_secret_directory_must_be_its_owners_alone() {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        let err = check_private_dir(dir.path()).unwrap_err();
        assert!(matches!(err, SecretFileError::TooOpen { mode: 0o755, wanted: 0o700, .. }), "{err}");
        chmod(dir.path(), 0o700);
        check_private_dir(dir.path()).unwrap();
    }
}
