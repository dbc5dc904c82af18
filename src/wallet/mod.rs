//! A command-line wallet: Ed25519 keys kept as files in one directory, a small blocking HTTP
//! client that asks a node for an account's state and submits signed transfers to it, and the
//! `kafkachain wallet` subcommands on top of both ([`Commands`]), `watch` among them (its own
//! module: it follows the node's `GET /events`).
//!
//! A key named `alice` is the file `{dir}/alice.key`: its 32-byte seed as 64 lowercase hex
//! characters and a newline. Only the owner can read it (directory 0700, file 0600), and a key is
//! never overwritten, since losing one loses its funds.
//!
//! The wallet also remembers which chain it signs for (the file `{dir}/chain_id`, written on the
//! first send): a transfer is signed for the chain id a node reports, so a node that lied about
//! it could get a transfer signed for another network, where it would be valid. Once a chain id
//! is remembered, a node reporting another one is refused, unless `--chain-id` names it.

mod watch;

use crate::core::account::Address;
use crate::core::hash::TxId;
use crate::core::transaction::{ChainTag, Transfer};
use crate::json::SignedTransferJson;
use ed25519_consensus::SigningKey;
use serde::Deserialize;
use std::fmt;
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest key name, in characters (a name becomes a file name).
pub const MAX_NAME_LEN: usize = 64;
/// Extension of a key file.
pub const KEY_EXTENSION: &str = "key";
/// How long one request to a node may take before the wallet gives up.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Most characters of a refusing node's answer kept in [`WalletError::Refused`], so a huge or
/// hostile body cannot flood the terminal.
pub const MAX_BODY_CHARS: usize = 2000;

/// Why a wallet operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The name is not 1 to 64 ASCII letters, digits, `-` or `_` (it must be a safe file name).
    #[error("bad key name {0:?}: use 1 to 64 ASCII letters, digits, '-' or '_'")]
    BadName(String),
    /// A key of that name exists already; keys are never overwritten.
    #[error("a key named {0:?} exists already")]
    Exists(String),
    /// The wallet holds no key of that name.
    #[error("no key named {0:?} in the wallet")]
    NotFound(String),
    /// A secret key to import is not 64 hex characters (the text itself is not shown: it is secret).
    #[error("a secret key is 64 hex characters (a 32-byte Ed25519 seed)")]
    BadSecret,
    /// A key file does not hold 64 hex characters.
    #[error("{} does not hold a key (64 hex characters)", .0.display())]
    BadKeyFile(PathBuf),
    /// Reading or writing a wallet file or directory failed (the system's reason is the source).
    #[error("{}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system reported.
        #[source]
        source: std::io::Error,
    },
    /// The wallet directory or a key file is open to other users, or cannot be read.
    #[error(transparent)]
    Secret(#[from] crate::secret_file::SecretFileError),
    /// The request could not be made, or the answer was not the JSON expected.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// The node answered with an error status.
    #[error("the node answered {status}: {body}")]
    Refused {
        /// HTTP status code.
        status: u16,
        /// The answer's body, cut to [`MAX_BODY_CHARS`] characters.
        body: String,
    },
    /// The node's `GET /status` has no string field `chain_id`, which transfers are signed for.
    #[error("the node's /status shows no chain_id")]
    NoChainId,
    /// The node runs another chain than the one the wallet signs for.
    #[error(
        "the node runs chain {node:?}, but this wallet signs for {expected:?} ({source_of_expected}); \
         pass --chain-id {node:?} if that chain is the one you mean"
    )]
    OtherChain {
        /// The chain id the wallet expected.
        expected: String,
        /// Where the expected id came from: the command line or the wallet's `chain_id` file.
        source_of_expected: &'static str,
        /// The chain id the node reported.
        node: String,
    },
}

/// Name of the file in the wallet directory that holds the chain id the wallet signs for.
pub const CHAIN_ID_FILE: &str = "chain_id";

/// A directory of key files.
#[derive(Debug, Clone)]
pub struct Wallet {
    dir: PathBuf,
}

impl Wallet {
    /// The wallet in `dir`, created (mode 0700) if missing so the keys stay private. An existing
    /// directory that other users may enter or list is refused, as ssh refuses such a `~/.ssh`.
    pub fn open(dir: &Path) -> Result<Wallet, WalletError> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| io_error(dir, e))?;
        crate::secret_file::check_private_dir(dir)?;
        Ok(Wallet { dir: dir.to_path_buf() })
    }

    /// The wallet's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Generates a new random key named `name` and returns its address.
    pub fn create(&self, name: &str) -> Result<Address, WalletError> {
        let key = SigningKey::new(rand::thread_rng());
        self.store(name, &key)
    }

    /// Stores the key whose seed is `secret_hex` (64 hex characters) as `name` and returns its
    /// address: how a key made elsewhere joins the wallet.
    pub fn import(&self, name: &str, secret_hex: &str) -> Result<Address, WalletError> {
        let seed = parse_seed(secret_hex).ok_or(WalletError::BadSecret)?;
        self.store(name, &SigningKey::from(seed))
    }

    /// The key named `name`; refused when its file is open to other users.
    pub fn key(&self, name: &str) -> Result<SigningKey, WalletError> {
        use crate::secret_file::{read_private, SecretFileError};
        let path = self.path_of(name)?;
        let text = match read_private(&path) {
            Ok(text) => text,
            Err(SecretFileError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(WalletError::NotFound(name.to_owned()))
            }
            Err(e) => return Err(e.into()),
        };
        let seed = parse_seed(&text).ok_or(WalletError::BadKeyFile(path))?;
        Ok(SigningKey::from(seed))
    }

    /// Every key's name and address, sorted by name. Files not named `{valid name}.key` are
    /// skipped, since no other command could reach them by name.
    pub fn list(&self) -> Result<Vec<(String, Address)>, WalletError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        let mut keys = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| io_error(&self.dir, e))?.path();
            if path.extension().and_then(|ext| ext.to_str()) != Some(KEY_EXTENSION) {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|stem| stem.to_str()) else { continue };
            if check_name(name).is_err() {
                continue;
            }
            let name = name.to_owned();
            let address = Address::of_key(&self.key(&name)?);
            keys.push((name, address));
        }
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(keys)
    }

    /// The chain id this wallet signs for, if one was remembered.
    pub fn remembered_chain_id(&self) -> Result<Option<String>, WalletError> {
        let path = self.dir.join(CHAIN_ID_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text.strip_suffix('\n').unwrap_or(&text).to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// The chain id to sign for, given the one the node reports (`node_chain`) and the one the
    /// command line names (`named`, which wins over the remembered one). The first chain a
    /// wallet signs for is remembered; afterwards a node on another chain is refused.
    pub fn chain_to_sign_for(&self, named: Option<&str>, node_chain: &str) -> Result<String, WalletError> {
        let remembered = self.remembered_chain_id()?;
        let expected = match (named, &remembered) {
            (Some(named), _) => Some((named.to_owned(), "named by --chain-id")),
            (None, Some(remembered)) => Some((remembered.clone(), "remembered in the wallet's chain_id file")),
            (None, None) => None,
        };
        if let Some((expected, source_of_expected)) = expected {
            if expected != node_chain {
                return Err(WalletError::OtherChain { expected, source_of_expected, node: node_chain.to_owned() });
            }
        }
        if remembered.is_none() && !self.remember_chain_id(node_chain)? {
            // Another send remembered a chain first: that one is expected now.
            return self.chain_to_sign_for(named, node_chain);
        }
        Ok(node_chain.to_owned())
    }

    /// Writes the chain id file unless it exists (false then): two first sends at once cannot
    /// both remember theirs. A half-written file is removed, so it never refuses every send.
    fn remember_chain_id(&self, chain_id: &str) -> Result<bool, WalletError> {
        let path = self.dir.join(CHAIN_ID_FILE);
        let mut file = match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(io_error(&path, e)),
        };
        let written = file.write_all(format!("{chain_id}\n").as_bytes()).and_then(|()| file.sync_all());
        drop(file);
        if let Err(e) = written {
            let _ = std::fs::remove_file(&path);
            return Err(io_error(&path, e));
        }
        Ok(true)
    }

    /// Writes `key` as `name`, refusing to replace an existing file, and returns its address.
    fn store(&self, name: &str, key: &SigningKey) -> Result<Address, WalletError> {
        let path = self.path_of(name)?;
        let mut file = match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(WalletError::Exists(name.to_owned()))
            }
            Err(e) => return Err(io_error(&path, e)),
        };
        let text = format!("{}\n", hex::encode(key.to_bytes()));
        let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
        drop(file);
        if let Err(e) = written {
            // A half-written key would take the name and hold nothing usable.
            let _ = std::fs::remove_file(&path);
            return Err(io_error(&path, e));
        }
        Ok(Address::of_key(key))
    }

    /// The file of the key `name`, once the name is checked.
    fn path_of(&self, name: &str) -> Result<PathBuf, WalletError> {
        check_name(name)?;
        Ok(self.dir.join(format!("{name}.{KEY_EXTENSION}")))
    }
}

/// Accepts 1 to [`MAX_NAME_LEN`] ASCII letters, digits, `-` or `_`: no path separators, dots or
/// spaces can reach the file name.
fn check_name(name: &str) -> Result<(), WalletError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(allowed) {
        return Err(WalletError::BadName(name.to_owned()));
    }
    Ok(())
}

/// A 32-byte seed from 64 hex characters, surrounding whitespace ignored.
fn parse_seed(text: &str) -> Option<[u8; 32]> {
    crate::core::hex_text::decode_exact(text.trim())
}

/// An I/O failure on `path`.
fn io_error(path: &Path, source: std::io::Error) -> WalletError {
    WalletError::Io { path: path.to_path_buf(), source }
}

/// What `GET /accounts/{address}` tells of an account (its `address` field is not needed).
#[derive(Deserialize, Debug, Clone, Copy)]
pub struct AccountInfo {
    /// Spendable amount at the tip, in the smallest unit.
    pub balance: u64,
    /// Transfers the account has sent in blocks so far.
    pub nonce: u64,
    /// The nonce the account's next transfer takes, counting those still pending.
    pub pending_nonce: u64,
}

/// The balance and both nonces, as `kafkachain wallet balance` prints them.
impl fmt::Display for AccountInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "balance {} nonce {} pending_nonce {}", self.balance, self.nonce, self.pending_nonce)
    }
}

/// The state of `address` on the node at `node` (a base URL such as `http://127.0.0.1:5000`).
pub fn balance(node: &str, address: &Address) -> Result<AccountInfo, WalletError> {
    account(&client()?, base(node), address)
}

/// The chain id the node at `node` runs, from its `GET /status`: transfers are signed for it, so
/// one signed for another network never verifies.
pub fn chain_id(node: &str) -> Result<String, WalletError> {
    let status: serde_json::Value = answer(client()?.get(format!("{}/status", base(node))).send()?)?.json()?;
    let id = status.get("chain_id").and_then(|id| id.as_str()).ok_or(WalletError::NoChainId)?;
    Ok(id.to_owned())
}

/// Signs a transfer of `amount` plus `fee` from `key` to `to` for the chain `chain_id` (see
/// [`chain_id`]) and submits it to `node`, returning its id. The nonce is the account's
/// `pending_nonce`, read from the node first, so transfers can follow each other without waiting
/// for a block.
pub fn send(
    node: &str,
    key: &SigningKey,
    chain_id: &str,
    to: Address,
    amount: u64,
    fee: u64,
) -> Result<TxId, WalletError> {
    let http = client()?;
    let node = base(node);
    let chain = ChainTag::of(chain_id);
    let nonce = account(&http, node, &Address::of_key(key))?.pending_nonce;
    let transfer = Transfer::sign(key, chain, to, amount, fee, nonce);
    let response = http
        .post(format!("{node}/transactions/new"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .json(&SignedTransferJson::from(&transfer))
        .send()?;
    if response.status() != reqwest::StatusCode::CREATED {
        return Err(refused(response));
    }
    Ok(transfer.id(chain))
}

/// `GET {node}/accounts/{address}` on an existing client.
fn account(http: &reqwest::blocking::Client, node: &str, address: &Address) -> Result<AccountInfo, WalletError> {
    Ok(answer(http.get(format!("{node}/accounts/{address}")).send()?)?.json()?)
}

/// A client whose requests give up after [`HTTP_TIMEOUT`].
fn client() -> Result<reqwest::blocking::Client, WalletError> {
    Ok(reqwest::blocking::Client::builder().timeout(HTTP_TIMEOUT).build()?)
}

/// The node URL without trailing slashes, so paths can be appended.
fn base(node: &str) -> &str {
    node.trim_end_matches('/')
}

/// The response when its status is a success, else the node's refusal.
fn answer(response: reqwest::blocking::Response) -> Result<reqwest::blocking::Response, WalletError> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(refused(response))
    }
}

/// A refusal carrying the status and the start of the body (empty if the body cannot be read).
fn refused(response: reqwest::blocking::Response) -> WalletError {
    let status = response.status().as_u16();
    let body = response.text().unwrap_or_default().chars().take(MAX_BODY_CHARS).collect();
    WalletError::Refused { status, body }
}

/// What a `kafkachain wallet` subcommand was doing when it failed, and why.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The wallet directory could not be opened or made. The reason is left to the source chain,
    /// not repeated here: a failure on the directory itself reads as its path, which this
    /// message already ends with, so printing the chain says it once.
    #[error("opening the wallet in {}", dir.display())]
    Open {
        /// The wallet directory.
        dir: PathBuf,
        /// Why.
        source: WalletError,
    },
    /// A new key could not be made.
    #[error("creating key {name}: {source}")]
    Create {
        /// The key's name.
        name: String,
        /// Why.
        source: WalletError,
    },
    /// The secret key to import could not be read from standard input.
    #[error("reading the secret key from standard input: {0}")]
    Stdin(#[source] std::io::Error),
    /// The file of the secret key to import is open to others, or cannot be read.
    #[error(transparent)]
    SecretFile(#[from] crate::secret_file::SecretFileError),
    /// The key could not be imported.
    #[error("importing key {name}: {source}")]
    Import {
        /// The key's name.
        name: String,
        /// Why.
        source: WalletError,
    },
    /// The keys could not be listed.
    #[error("listing the keys: {0}")]
    List(#[source] WalletError),
    /// A key could not be read.
    #[error("reading key {name}: {source}")]
    Key {
        /// The key's name.
        name: String,
        /// Why.
        source: WalletError,
    },
    /// The node did not tell the account's state.
    #[error("asking {node} for the account of {name}: {source}")]
    Account {
        /// The node's URL.
        node: String,
        /// The key's name.
        name: String,
        /// Why.
        source: WalletError,
    },
    /// The node did not tell its chain id.
    #[error("asking {node} for its chain id: {source}")]
    ChainId {
        /// The node's URL.
        node: String,
        /// Why.
        source: WalletError,
    },
    /// The node's events could not be followed.
    #[error("watching {name} on {node}: {source}")]
    Watch {
        /// The key's name.
        name: String,
        /// The node's URL.
        node: String,
        /// Why.
        source: WalletError,
    },
    /// The node runs another chain than the wallet signs for, or the chain id file failed.
    #[error(transparent)]
    Chain(#[from] WalletError),
    /// The transfer was not accepted.
    #[error("sending {amount} (fee {fee}) from {name} to {to} via {node}: {source}")]
    Send {
        /// The amount.
        amount: u64,
        /// The fee.
        fee: u64,
        /// The paying key's name.
        name: String,
        /// The recipient.
        to: Address,
        /// The node's URL.
        node: String,
        /// Why (boxed: the variant is large enough with the transfer's fields).
        source: Box<WalletError>,
    },
}

/// `kafkachain wallet`'s subcommands on the wallet in one directory: each prints its answer on
/// standard output, and a failure says what it was doing.
#[derive(Debug)]
pub struct Commands {
    keys: Wallet,
}

impl Commands {
    /// The wallet in `dir` (see [`Wallet::open`]).
    pub fn open(dir: &Path) -> Result<Self, CommandError> {
        let keys = Wallet::open(dir).map_err(|source| CommandError::Open { dir: dir.to_owned(), source })?;
        Ok(Commands { keys })
    }

    /// `new`: generates a key named `name` and prints its address.
    pub fn create(&self, name: &str) -> Result<(), CommandError> {
        let address =
            self.keys.create(name).map_err(|source| CommandError::Create { name: name.to_owned(), source })?;
        println!("{address}");
        Ok(())
    }

    /// `import`: stores the secret key read from `secret_key_file` (mode 0600 or stricter), or
    /// else from standard input, as `name` and prints its address.
    pub fn import(&self, name: &str, secret_key_file: Option<&Path>) -> Result<(), CommandError> {
        let secret_key = match secret_key_file {
            Some(path) => crate::secret_file::read_private(path)?,
            None => std::io::read_to_string(std::io::stdin()).map_err(CommandError::Stdin)?,
        };
        let address = self
            .keys
            .import(name, secret_key.trim())
            .map_err(|source| CommandError::Import { name: name.to_owned(), source })?;
        println!("{address}");
        Ok(())
    }

    /// `list`: prints every key as "name address", sorted by name.
    pub fn list(&self) -> Result<(), CommandError> {
        for (name, address) in self.keys.list().map_err(CommandError::List)? {
            println!("{name} {address}");
        }
        Ok(())
    }

    /// `address`: prints the address of the key `name`.
    pub fn address(&self, name: &str) -> Result<(), CommandError> {
        println!("{}", Address::of_key(&self.key(name)?));
        Ok(())
    }

    /// `balance`: prints the balance and nonces of the key `name` as the node at `node` sees them.
    pub fn balance(&self, name: &str, node: &str) -> Result<(), CommandError> {
        let address = Address::of_key(&self.key(name)?);
        let info = balance(node, &address).map_err(|source| CommandError::Account {
            node: node.to_owned(),
            name: name.to_owned(),
            source,
        })?;
        println!("{info}");
        Ok(())
    }

    /// `send`: signs a transfer of `amount` plus `fee` from the key `name` to `to` for the chain
    /// the node at `node` runs (which must be `named_chain`, if given, or else the remembered
    /// one; see [`Wallet::chain_to_sign_for`]), submits it there and prints its id.
    pub fn send(
        &self,
        name: &str,
        to: Address,
        amount: u64,
        fee: u64,
        node: &str,
        named_chain: Option<&str>,
    ) -> Result<(), CommandError> {
        let key = self.key(name)?;
        let node_chain = chain_id(node).map_err(|source| CommandError::ChainId { node: node.to_owned(), source })?;
        let chain = self.keys.chain_to_sign_for(named_chain, &node_chain)?;
        let id = send(node, &key, &chain, to, amount, fee).map_err(|source| CommandError::Send {
            amount,
            fee,
            name: name.to_owned(),
            to,
            node: node.to_owned(),
            source: Box::new(source),
        })?;
        println!("{id}");
        Ok(())
    }

    /// `watch`: prints the transfers in and out of the key `name` a line each as the node at
    /// `node` confirms them (and undoes them, in a reorganization), until interrupted.
    pub fn watch(&self, name: &str, node: &str) -> Result<(), CommandError> {
        let address = Address::of_key(&self.key(name)?);
        watch::watch(node, address, &mut std::io::stdout().lock()).map_err(|source| CommandError::Watch {
            name: name.to_owned(),
            node: node.to_owned(),
            source,
        })
    }

    /// The key `name`, or why it could not be read.
    fn key(&self, name: &str) -> Result<SigningKey, CommandError> {
        self.keys.key(name).map_err(|source| CommandError::Key { name: name.to_owned(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_created_key_lists_and_loads_with_the_same_address() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::open(&dir.path().join("keys")).unwrap();
        let address = wallet.create("alice").unwrap();
        assert_eq!(wallet.list().unwrap(), vec![("alice".to_owned(), address)]);
        assert_eq!(Address::of_key(&wallet.key("alice").unwrap()), address);
    }

    #[test]
    fn key_files_and_the_directory_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let wallet = Wallet::open(&keys).unwrap();
        wallet.create("bob").unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&keys.join("bob.key")), 0o600);
        assert_eq!(mode(&keys), 0o700);
        // Opened up later, by hand: the key and the wallet are refused until closed again.
        std::fs::set_permissions(keys.join("bob.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(wallet.key("bob"), Err(WalletError::Secret(_))));
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = Wallet::open(&keys).unwrap_err();
        assert!(err.to_string().contains("chmod 700"), "{err}");
    }

    #[test]
    fn a_name_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::open(&dir.path().join("keys")).unwrap();
        let first = wallet.create("carol").unwrap();
        assert!(matches!(wallet.create("carol"), Err(WalletError::Exists(name)) if name == "carol"));
        assert!(matches!(wallet.import("carol", &"01".repeat(32)), Err(WalletError::Exists(_))));
        assert_eq!(Address::of_key(&wallet.key("carol").unwrap()), first);
    }

    #[test]
    fn a_failed_command_says_what_it_was_doing_and_an_account_prints_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let commands = Commands::open(&dir.path().join("keys")).unwrap();
        let err = commands.address("nobody").unwrap_err();
        assert_eq!(err.to_string(), "reading key nobody: no key named \"nobody\" in the wallet");
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let err = Commands::open(&file).unwrap_err();
        assert_eq!(err.to_string(), format!("opening the wallet in {}", file.display()));
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source, Some(file.display().to_string()), "an I/O failure on the directory reads as its path");
        let info = AccountInfo { balance: 5, nonce: 1, pending_nonce: 2 };
        assert_eq!(info.to_string(), "balance 5 nonce 1 pending_nonce 2");
    }

    #[test]
    fn bad_names_and_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::open(&dir.path().join("keys")).unwrap();
        let too_long = "x".repeat(MAX_NAME_LEN + 1);
        for name in ["", "../escape", "a.b", "with space", "é", too_long.as_str()] {
            assert!(matches!(wallet.create(name), Err(WalletError::BadName(_))), "{name:?}");
        }
        assert!(wallet.create(&"x".repeat(MAX_NAME_LEN)).is_ok());
        let (not_hex, too_long) = ("0g".repeat(32), "01".repeat(33));
        for secret in ["", "01", not_hex.as_str(), too_long.as_str()] {
            assert!(matches!(wallet.import("dave", secret), Err(WalletError::BadSecret)), "{secret:?}");
        }
        assert!(matches!(wallet.key("nobody"), Err(WalletError::NotFound(_))));
    }

    #[test]
    fn the_first_chain_is_remembered_and_a_node_on_another_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::open(&dir.path().join("keys")).unwrap();
        assert_eq!(wallet.remembered_chain_id().unwrap(), None);
        assert_eq!(wallet.chain_to_sign_for(None, "devnet").unwrap(), "devnet");
        assert_eq!(wallet.remembered_chain_id().unwrap().as_deref(), Some("devnet"));
        let lie = wallet.chain_to_sign_for(None, "mainnet").unwrap_err();
        assert!(
            matches!(&lie, WalletError::OtherChain { expected, node, .. } if expected == "devnet" && node == "mainnet")
        );
        assert!(lie.to_string().contains("--chain-id"), "{lie}");
        assert_eq!(wallet.chain_to_sign_for(Some("mainnet"), "mainnet").unwrap(), "mainnet", "named on purpose");
        assert!(matches!(wallet.chain_to_sign_for(Some("other"), "devnet"), Err(WalletError::OtherChain { .. })));
        assert_eq!(wallet.remembered_chain_id().unwrap().as_deref(), Some("devnet"), "a named chain is not remembered");
    }

    #[test]
    fn an_imported_seed_gives_its_known_address() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::open(&dir.path().join("keys")).unwrap();
        let address = wallet.import("erin", &"01".repeat(32)).unwrap();
        assert_eq!(address, Address::new(SigningKey::from([1u8; 32]).verification_key().to_bytes()));
        let text = std::fs::read_to_string(dir.path().join("keys/erin.key")).unwrap();
        assert_eq!(text, format!("{}\n", "01".repeat(32)));
    }
}
