//! The operator token: what a client must show (`Authorization: Bearer TOKEN`) to call the
//! endpoints that change state or make the node work (`/mine`, `/nodes/register`,
//! `/nodes/resolve`). Either the operator keeps it in a file of their own (`http.token_file`), or
//! the node writes a fresh random one to `{data_dir}/.cookie` at every start, readable by its
//! owner only, as Bitcoin Core does with its RPC cookie.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Shortest token accepted from an operator's file.
pub const MIN_TOKEN_LEN: usize = 16;
/// Name of the cookie file in the data directory.
pub const COOKIE_FILE: &str = ".cookie";

/// Why the token could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The operator's token file could not be read, or others may read it.
    #[error("http.token_file: {0}")]
    File(#[from] crate::secret_file::SecretFileError),
    /// The operator's token is too short to resist guessing.
    #[error("the token in {0} is shorter than {MIN_TOKEN_LEN} characters")]
    TooShort(PathBuf),
    /// The cookie could not be written.
    #[error("writing the cookie {path}: {source}")]
    Write {
        /// The cookie file.
        path: PathBuf,
        /// What the system reported.
        source: std::io::Error,
    },
}

/// The secret operator calls must carry. Its `Debug` does not show it.
#[derive(Clone)]
pub struct OperatorToken(String);

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorToken(..)")
    }
}

impl OperatorToken {
    /// Reads the operator's `token_file` when given; otherwise writes a new random token to
    /// `{data_dir}/.cookie` (replacing an old one) and returns it.
    pub fn set_up(token_file: Option<&Path>, data_dir: &Path) -> Result<Self, TokenError> {
        match token_file {
            Some(path) => {
                let text = crate::secret_file::read_private(path)?;
                let token = text.trim();
                if token.len() < MIN_TOKEN_LEN {
                    return Err(TokenError::TooShort(path.to_owned()));
                }
                Ok(Self(token.to_owned()))
            }
            None => {
                let token = Self(hex::encode(rand::random::<[u8; 32]>()));
                let path = data_dir.join(COOKIE_FILE);
                token.write_cookie(&path).map_err(|source| TokenError::Write { path, source })?;
                Ok(token)
            }
        }
    }

    fn write_cookie(&self, path: &Path) -> std::io::Result<()> {
        // Removed first, so a cookie left by an older run with looser permissions is not reused.
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        file.write_all(self.0.as_bytes())?;
        file.sync_all()
    }

    /// Whether `presented` is this token, compared in time independent of where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_cookie_is_fresh_private_and_checked_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let first = OperatorToken::set_up(None, dir.path()).unwrap();
        let path = dir.path().join(COOKIE_FILE);
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(first.matches(&written));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!first.matches(&written[..written.len() - 1]));
        assert!(!first.matches(""));
        let second = OperatorToken::set_up(None, dir.path()).unwrap();
        assert!(!second.matches(&written), "every start writes a new cookie");
        assert!(!format!("{second:?}").contains(&std::fs::read_to_string(&path).unwrap()));
    }

    #[test]
    fn an_operator_file_is_used_as_is_when_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "short\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(OperatorToken::set_up(Some(&file), dir.path()), Err(TokenError::TooShort(_))));
        std::fs::write(&file, "a-long-enough-operator-token\n").unwrap();
        let token = OperatorToken::set_up(Some(&file), dir.path()).unwrap();
        assert!(token.matches("a-long-enough-operator-token"));
        assert!(!dir.path().join(COOKIE_FILE).exists());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = OperatorToken::set_up(Some(&file), dir.path()).unwrap_err();
        assert!(matches!(err, TokenError::File(crate::secret_file::SecretFileError::TooOpen { .. })), "{err}");
        assert!(err.to_string().starts_with("http.token_file: "), "{err}");
    }
}
