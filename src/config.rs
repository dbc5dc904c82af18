//! Node configuration: a TOML file (see `config/default.toml` for every key, documented), with a
//! few command-line and environment overrides ([`Overrides`]) applied on top.

use crate::core::account::Address;
use crate::core::miner::MinerPriority;
use crate::core::params::ChainParams;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything a node needs to know to run.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Name of this node: shown in `/status`, Kafka client and group id.
    pub node_id: String,
    /// Directory of the sled store.
    pub data_dir: PathBuf,
    /// Address the HTTP API listens on.
    #[serde(default = "default_http")]
    pub http_listen: SocketAddr,
    /// Consensus parameters; identical on every node of a network.
    #[serde(default)]
    pub chain: ChainParams,
    /// Kafka connection and topics.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Block production.
    #[serde(default)]
    pub mining: MiningConfig,
    /// Local storage bounds.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Bounds on what fetching peers' chains may cost.
    #[serde(default)]
    pub peers: PeerConfig,
    /// The HTTP server's bounds and the operator token.
    #[serde(default)]
    pub http: HttpConfig,
    /// The ledger stream for downstream systems.
    #[serde(default)]
    pub ledger: LedgerConfig,
}

/// The ledger stream (`[ledger]`): the main chain's history, published to `{prefix}.ledger` as
/// JSON events through Kafka transactions. Off by default.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// Whether this node publishes the stream.
    pub enabled: bool,
    /// How deep a block must be before its `connect` goes out (1: the tip itself). A consumer
    /// sees a `disconnect` only for a reorganization deeper than this.
    pub confirmations: u64,
    /// The producer's `transactional.id` (default `kafkachain-ledger-{node_id}`): a second
    /// publisher with the same id takes over and this one stops.
    pub transactional_id: Option<String>,
    /// Most events in one Kafka transaction (a transaction's commit costs a few round trips to
    /// the brokers, so a catching-up stream needs large ones).
    pub max_events_per_transaction: usize,
    /// Most bytes of JSON in one Kafka transaction (one event at least, whatever its size).
    pub max_transaction_bytes: usize,
    /// The principal the publisher logs in as, over `[kafka.tls]` (`[ledger.sasl]`): required
    /// when `[kafka.sasl]` is set, and a different one, so that no principal both writes the
    /// consensus topics and opens transactions.
    pub sasl: Option<SaslConfig>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            confirmations: 6,
            transactional_id: None,
            max_events_per_transaction: 5_000,
            max_transaction_bytes: 8 * 1024 * 1024,
            sasl: None,
        }
    }
}

impl NodeConfig {
    /// The ledger publisher's `transactional.id`.
    pub fn ledger_transactional_id(&self) -> String {
        self.ledger.transactional_id.clone().unwrap_or_else(|| format!("kafkachain-ledger-{}", self.node_id))
    }

    /// The Kafka settings the ledger publisher connects with: the node's, logged in as
    /// `[ledger.sasl]` when it is set.
    pub fn ledger_kafka(&self) -> KafkaConfig {
        let mut kafka = self.kafka.clone();
        if let Some(sasl) = &self.ledger.sasl {
            kafka.sasl = Some(sasl.clone());
        }
        kafka
    }
}

/// Bounds on the HTTP server and where the operator token comes from. Everything a client can
/// make the node hold (connections, requests in flight, bytes, time) has a bound here.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A file holding the operator token (at least 16 characters; the operator keeps it). When
    /// unset, the node writes a fresh random token to `{data_dir}/.cookie` (mode 0600) at every
    /// start, as Bitcoin Core does with its cookie.
    pub token_file: Option<PathBuf>,
    /// Longest time a client may take to send a request's headers, in milliseconds; then the
    /// connection is closed (slowloris).
    pub header_timeout_ms: u64,
    /// Longest time a client may take to send a request's body, in milliseconds (the body is
    /// read in full before the request counts as in flight).
    pub body_timeout_ms: u64,
    /// Longest time one request may take from its headers to its answer, in milliseconds.
    pub request_timeout_ms: u64,
    /// Longest time a write to a client may stay stuck (the client not reading its answer), in
    /// milliseconds; then the connection is closed.
    pub write_timeout_ms: u64,
    /// Most open connections; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Most requests handled at once; more are answered 503 at once.
    pub max_in_flight: usize,
    /// Largest `GET /chain` page, in bytes of JSON (at least one block is always sent).
    pub max_chain_page_bytes: usize,
    /// Transfers per second each client address may submit (each costs a signature check).
    pub submit_per_sec: u32,
    /// Transfers a client address may submit at once beyond that rate (at least one batch).
    pub submit_burst: u32,
    /// Threads verifying the signatures of submitted transfers: a pool of their own, so HTTP
    /// work never takes the cores the applier verifies the topics' transfers on.
    pub verify_threads: usize,
    /// Most clients following `GET /events` at once (more are answered 503).
    pub max_event_subscribers: usize,
    /// Events `GET /events` keeps for clients that reconnect with `Last-Event-ID` (older ones
    /// get a `reset`); also how far behind a client may fall before it is dropped.
    pub events_history: usize,
    /// Bytes of JSON those events may hold at most (the latest is always kept): a busy chain's
    /// `connect` events carry every transfer, so the count alone would not bound the memory.
    pub events_history_bytes: usize,
    /// Interval of the comments `GET /events` sends on a quiet stream, so proxies keep it open
    /// (milliseconds).
    pub events_heartbeat_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            token_file: None,
            header_timeout_ms: 5_000,
            body_timeout_ms: 10_000,
            request_timeout_ms: 120_000,
            write_timeout_ms: 30_000,
            max_connections: 4_096,
            max_in_flight: 256,
            max_chain_page_bytes: 4 * 1024 * 1024,
            submit_per_sec: 10_000,
            submit_burst: 20_000,
            verify_threads: 1,
            max_event_subscribers: 64,
            events_history: 1_024,
            events_history_bytes: 32 * 1024 * 1024,
            events_heartbeat_ms: 15_000,
        }
    }
}

/// Most transfers one `POST /transactions/batch` may hold.
pub const MAX_BATCH_TRANSFERS: usize = 1_000;

/// Bounds on fetching a peer's chain (`GET /nodes/resolve`, bootstrap): a peer that lies, stalls
/// or floods costs at most these.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerConfig {
    /// Most peers a node registers.
    pub max_peers: usize,
    /// Blocks asked for in one `GET /chain` page; a page holding more is refused.
    pub page_blocks: usize,
    /// Largest response body read from a peer, in bytes.
    pub max_response_bytes: usize,
    /// Longest wait for one response, in milliseconds.
    pub request_timeout_ms: u64,
    /// Longest time one resolve spends asking its peers, all of them together, in milliseconds
    /// (well under `http.request_timeout_ms`, so the answer comes before the request's limit).
    pub sync_timeout_ms: u64,
    /// Most blocks new to this node taken from one peer in one resolve.
    pub max_new_blocks: usize,
    /// Most bytes (in the canonical encoding) of those blocks held in memory.
    pub max_new_bytes: usize,
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            max_peers: 16,
            page_blocks: 200,
            max_response_bytes: 8 * 1024 * 1024,
            request_timeout_ms: 10_000,
            sync_timeout_ms: 60_000,
            max_new_blocks: 10_000,
            max_new_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Kafka connection and topic settings. Its `Debug` shows the names of the librdkafka
/// properties but not their values, which may be credentials.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub brokers: String,
    /// Topics are `{prefix}.blocks` and `{prefix}.transactions`.
    pub topic_prefix: String,
    /// Partitions of the transactions topic when this node creates it.
    pub transaction_partitions: i32,
    /// Replication factor of topics this node creates.
    pub replication_factor: i32,
    /// `min.insync.replicas` of topics this node creates.
    pub min_insync_replicas: u32,
    /// How long a produce may wait for the broker's acknowledgement, in milliseconds.
    pub produce_timeout_ms: u64,
    /// How long a start waits for brokers that do not answer yet (a broker still starting,
    /// a cluster restarting), in milliseconds, retrying with backoff.
    pub start_timeout_ms: u64,
    /// Any librdkafka property, applied to producer, consumer and admin client alike. With
    /// `tls` or `sasl` set, the `security.protocol`, `ssl.*` and `sasl.*` properties are theirs.
    pub properties: BTreeMap<String, String>,
    /// TLS to the brokers (`[kafka.tls]`): what every hosted Kafka requires.
    pub tls: Option<TlsConfig>,
    /// SASL authentication over that TLS (`[kafka.sasl]`).
    pub sasl: Option<SaslConfig>,
}

/// TLS to the brokers.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of the certificate authorities that sign the brokers' certificates. Without it
    /// the system's trusted authorities are used, which is what hosted services need.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`; refused when anyone but its owner may read it.
    pub key_file: Option<PathBuf>,
    /// Whether a broker's certificate must name the host the node connected to. Turning it off
    /// lets anyone with a certificate from the same authority pose as the broker.
    pub verify_hostname: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self { ca_file: None, cert_file: None, key_file: None, verify_hostname: true }
    }
}

/// SASL authentication. The password is never written in the configuration: it is read from a
/// file only its owner may read, or from an environment variable (a systemd credential, a
/// secret store's injection).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SaslConfig {
    /// The mechanism; always explicit, since librdkafka's default (GSSAPI) is not built in.
    pub mechanism: SaslMechanism,
    /// The principal's user name.
    pub username: String,
    /// File holding the password (one line).
    pub password_file: Option<PathBuf>,
    /// Name of the environment variable holding the password.
    pub password_env: Option<String>,
}

/// The SASL mechanisms a node speaks (those librdkafka brings with OpenSSL, less OAUTHBEARER,
/// which needs a token provider and is reachable through `kafka.properties`).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum SaslMechanism {
    /// Salted challenge-response with SHA-512: the password never crosses the wire.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// The same with SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// The password itself, inside the TLS connection (Confluent Cloud's API keys, Event Hubs).
    #[serde(rename = "PLAIN")]
    Plain,
}

impl SaslMechanism {
    /// The name librdkafka and Kafka use.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::Plain => "PLAIN",
        }
    }
}

/// How the node mines.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MiningConfig {
    /// `on-demand` (only for `GET /mine`) or `continuous`.
    pub mode: MiningMode,
    /// Threads searching nonces; 0 means one per core.
    pub threads: usize,
    /// Address the block reward is paid to (64 hex characters: the miner's Ed25519 public key;
    /// `kafkachain wallet new NAME` makes one). Required.
    pub address: Option<Address>,
    /// The SHA-256 kernel of the nonce search: `auto` (time each one the CPU offers for about
    /// 200 ms at start and take the fastest), or one by name: `portable`, `sha-ni`,
    /// `sha-ni-x1` .. `sha-ni-x8`, `avx2`, `avx512`. A kernel the CPU lacks is refused at start.
    pub kernel: String,
    /// How the search threads share the cores: `idle` (the default: they hash only on cores
    /// nothing else wants, so applying blocks and admitting transfers never wait for them) or
    /// `normal` (they compete on equal terms).
    pub priority: MinerPriority,
}

/// When the node mines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MiningMode {
    /// Only when asked through `GET /mine`.
    OnDemand,
    /// All the time.
    Continuous,
}

/// Local bounds.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Bound of sled's page cache, in bytes.
    pub cache_bytes: u64,
    /// Most transactions waiting in the mempool; further ones are refused and counted.
    pub max_mempool: u64,
    /// How far past a sender's next nonce a transfer submitted over HTTP may be, waiting for the
    /// gap to fill; further ones are refused. Transfers read back from the topic are not held to
    /// it (another node published them against its own tip, which may be ahead of this one's).
    pub max_nonce_ahead: u64,
    /// Keep the transaction index (transfer id → block), which `GET /transactions/{id}` needs
    /// for confirmed transfers; it costs a write per transfer. Off by default, as Bitcoin
    /// Core's `-txindex`.
    pub tx_index: bool,
}

fn default_http() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8000))
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topic_prefix", &self.topic_prefix)
            .field("transaction_partitions", &self.transaction_partitions)
            .field("replication_factor", &self.replication_factor)
            .field("min_insync_replicas", &self.min_insync_replicas)
            .field("produce_timeout_ms", &self.produce_timeout_ms)
            .field("start_timeout_ms", &self.start_timeout_ms)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .field("tls", &self.tls)
            .field("sasl", &self.sasl)
            .finish()
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: "kafkachain".into(),
            transaction_partitions: 6,
            replication_factor: 1,
            min_insync_replicas: 1,
            produce_timeout_ms: 10_000,
            start_timeout_ms: 120_000,
            properties: BTreeMap::new(),
            tls: None,
            sasl: None,
        }
    }
}

impl Default for MiningConfig {
    fn default() -> Self {
        Self {
            mode: MiningMode::OnDemand,
            threads: 0,
            address: None,
            kernel: crate::core::miner::AUTO_KERNEL.into(),
            priority: MinerPriority::Idle,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            cache_bytes: crate::store::DEFAULT_CACHE_BYTES,
            max_mempool: 100_000,
            max_nonce_ahead: 64,
            tx_index: false,
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// What the system reported.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema. Says where and what is wrong, but never
    /// repeats the offending value: it may be a password.
    #[error("parsing {path}: {problem}")]
    Parse {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong, and where (never the value).
        problem: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Values the command line or its environment variables give in place of the file's (`kafkachain
/// node --data-dir`, `--http`, `--brokers`, `--mine`), so one file can serve several runs.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// In place of `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// In place of `http_listen`.
    pub http_listen: Option<SocketAddr>,
    /// In place of `kafka.brokers`.
    pub brokers: Option<String>,
    /// In place of `mining.mode`.
    pub mining_mode: Option<MiningMode>,
}

impl NodeConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse_from(&text, path)
    }

    /// Reads and checks a configuration file, then applies `overrides` and checks the result.
    pub fn load_with(path: &Path, overrides: Overrides) -> Result<Self, ConfigError> {
        let mut config = Self::load(path)?;
        if let Some(dir) = overrides.data_dir {
            config.data_dir = dir;
        }
        if let Some(http) = overrides.http_listen {
            config.http_listen = http;
        }
        if let Some(brokers) = overrides.brokers {
            config.kafka.brokers = brokers;
        }
        if let Some(mode) = overrides.mining_mode {
            config.mining.mode = mode;
        }
        config.check()?;
        Ok(config)
    }

    /// Parses and checks configuration text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_from(text, Path::new("<configuration text>"))
    }

    /// Parses and checks `text`, naming `path` in a parse error.
    fn parse_from(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: NodeConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: path.to_owned(), problem: describe_without_values(&e, text) })?;
        config.check()?;
        Ok(config)
    }

    /// Checks values that the types alone do not constrain.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.chain.check().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let invalid = |what: &str| Err(ConfigError::Invalid(what.to_owned()));
        if self.node_id.is_empty() || !self.node_id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return invalid("node_id must be non-empty letters, digits, '-', '_' or '.'");
        }
        if self.kafka.topic_prefix.is_empty() {
            return invalid("kafka.topic_prefix must not be empty");
        }
        if self.kafka.transaction_partitions < 1 || self.kafka.replication_factor < 1 {
            return invalid("kafka.transaction_partitions and kafka.replication_factor must be at least 1");
        }
        let p = &self.peers;
        if p.max_peers == 0 || p.page_blocks == 0 || p.max_new_blocks == 0 {
            return invalid("peers.max_peers, peers.page_blocks and peers.max_new_blocks must be at least 1");
        }
        let h = &self.http;
        let bounds = [h.header_timeout_ms, h.body_timeout_ms, h.request_timeout_ms, h.write_timeout_ms];
        if bounds.contains(&0) || h.max_connections == 0 || h.max_in_flight == 0 {
            return invalid("http timeouts, max_connections and max_in_flight must be at least 1");
        }
        if h.submit_per_sec == 0 || (h.submit_burst as usize) < MAX_BATCH_TRANSFERS || h.verify_threads == 0 {
            return invalid(&format!(
                "http.submit_per_sec and http.verify_threads must be at least 1, http.submit_burst at least \
                 {MAX_BATCH_TRANSFERS} (one batch)"
            ));
        }
        if h.max_event_subscribers == 0
            || h.events_history == 0
            || h.events_history_bytes == 0
            || h.events_heartbeat_ms == 0
        {
            return invalid(
                "http.max_event_subscribers, http.events_history, http.events_history_bytes and http.events_heartbeat_ms must be at least 1",
            );
        }
        if self.storage.max_mempool == 0 {
            return invalid("storage.max_mempool must be at least 1");
        }
        self.check_ledger()?;
        if let Err(e) = crate::core::miner::KernelChoice::parse(&self.mining.kernel) {
            return Err(ConfigError::Invalid(format!("mining.kernel: {e}")));
        }
        if self.mining.address.is_none() {
            return invalid(
                "mining.address must be set to the address block rewards are paid to (64 hex characters; \
                 `kafkachain wallet new NAME` makes a key and prints its address)",
            );
        }
        self.check_no_test_accounts()
    }

    /// The ledger stream's bounds, and its own principal wherever the node logs in.
    fn check_ledger(&self) -> Result<(), ConfigError> {
        let ledger = &self.ledger;
        let invalid = |what: &str| Err(ConfigError::Invalid(what.to_owned()));
        if ledger.confirmations == 0
            || !(1..=10_000).contains(&ledger.max_events_per_transaction)
            || ledger.max_transaction_bytes < 1024
        {
            return invalid(
                "ledger.confirmations must be at least 1, ledger.max_events_per_transaction 1 to 10000, \
                 ledger.max_transaction_bytes at least 1024",
            );
        }
        if ledger.transactional_id.as_ref().is_some_and(String::is_empty) {
            return invalid("ledger.transactional_id must not be empty");
        }
        let largest_event = crate::stream::max_event_bytes(self.chain.max_block_bytes);
        let message_bound = crate::core::encoding::MAX_DECODED_BYTES;
        if ledger.enabled && largest_event > message_bound {
            return Err(ConfigError::Invalid(format!(
                "the ledger stream needs chain.max_block_bytes of at most {}: a block of {} bytes may make a \
                 connect event of {largest_event} bytes, past the {message_bound} bytes a Kafka message may take",
                (message_bound - crate::stream::EVENT_OVERHEAD_BYTES) / crate::stream::JSON_BYTES_PER_BLOCK_BYTE,
                self.chain.max_block_bytes
            )));
        }
        match (&self.kafka.sasl, &ledger.sasl) {
            (Some(_), None) if ledger.enabled => invalid(
                "ledger.sasl must be set when kafka.sasl is: the ledger publisher logs in as a principal of its own \
                 (write on the ledger topic and its transactional id only)",
            ),
            (Some(node), Some(own)) if node.username == own.username => invalid(
                "ledger.sasl.username must differ from kafka.sasl.username: no principal should both write the \
                 consensus topics and open transactions",
            ),
            _ => Ok(()),
        }
    }

    /// Outside the devnet, refuses the devnet's test accounts, whose secret keys are published:
    /// anyone could spend what they are given or what they mine.
    fn check_no_test_accounts(&self) -> Result<(), ConfigError> {
        if self.chain.chain_id == DEVNET_CHAIN_ID {
            return Ok(());
        }
        let accounts = devnet_test_accounts();
        let refuse = |setting: &str, name: &str| {
            Err(ConfigError::Invalid(format!(
                "{setting} is the devnet test account {name}, whose secret key anyone can derive \
                 (config/devnet-accounts.toml): on chain {} anyone could spend its funds; use an address of your \
                 own (`kafkachain wallet new NAME`)",
                self.chain.chain_id
            )))
        };
        if let Some(name) = self.mining.address.as_ref().and_then(|address| accounts.get(address)) {
            return refuse("mining.address", name);
        }
        if let Some(name) = self.chain.allocations.keys().find_map(|address| accounts.get(address)) {
            return refuse("an address in chain.allocations", name);
        }
        Ok(())
    }
}

/// The chain id of the devnet, the one network allowed to use the published test accounts.
pub const DEVNET_CHAIN_ID: &str = "kafkachain-devnet";

/// The devnet's test accounts (`config/devnet-accounts.toml`, built into the binary), name by
/// address.
fn devnet_test_accounts() -> BTreeMap<Address, String> {
    #[derive(Deserialize)]
    struct Accounts {
        account: Vec<Account>,
    }
    #[derive(Deserialize)]
    struct Account {
        name: String,
        address: Address,
    }
    let listed: Result<Accounts, _> = toml::from_str(include_str!("../config/devnet-accounts.toml"));
    listed.map(|accounts| accounts.account.into_iter().map(|a| (a.address, a.name)).collect()).unwrap_or_default()
}

impl NodeConfig {
    /// The mempool's bounds.
    pub fn mempool_limits(&self) -> crate::store::MempoolLimits {
        crate::store::MempoolLimits { max_transfers: self.storage.max_mempool }
    }
}

/// A TOML error as "line L, column C: message", never quoting a value: toml's own rendering
/// shows the whole line, and serde's messages quote the value (in its normal form, so it cannot
/// be found in the text and masked), either of which can be a secret (`sasl.password = ...`).
/// An error at a key keeps its message (it names keys only); an error at a value keeps only
/// what was expected there.
fn describe_without_values(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().trim();
    let Some(span) = error.span() else { return "the file is not valid TOML".to_owned() };
    let is_key = text.get(span.end..).is_some_and(|rest| rest.trim_start_matches([' ', '\t']).starts_with('='));
    let problem = if is_key {
        message.to_owned()
    } else {
        match message.find("expected ") {
            Some(at) => format!("invalid value (not shown), {}", &message[at..]),
            None => "invalid value (not shown)".to_owned(),
        }
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("line {line}, column {column}: {problem}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configs_parse_and_the_template_needs_a_mining_address_of_ones_own() {
        for file in ["node1.toml", "node2.toml", "node3.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config").join(file);
            NodeConfig::load(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        let template = include_str!("../config/default.toml");
        let err = NodeConfig::parse(template).unwrap_err();
        assert!(err.to_string().contains("mining.address must be set"), "{err}");
        let own =
            template.replace("# address = \"<64 hex characters>\"", &format!("address = \"{}\"", "ab".repeat(32)));
        let config = NodeConfig::parse(&own).unwrap();
        assert!(config.chain.allocations.is_empty(), "no genesis funds for anyone's published keys");
        assert_ne!(config.chain.chain_id, DEVNET_CHAIN_ID);
    }

    #[test]
    fn the_devnets_public_test_accounts_are_refused_outside_the_devnet() {
        assert_eq!(devnet_test_accounts().len(), 7, "alice .. dave, miner1 .. miner3");
        let node1 = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/node1.toml")).unwrap();
        let elsewhere = node1.replace("chain_id = \"kafkachain-devnet\"", "chain_id = \"production\"");
        let err = NodeConfig::parse(&elsewhere).unwrap_err().to_string();
        assert!(err.contains("mining.address is the devnet test account miner1"), "{err}");
        let own_miner =
            elsewhere.replace("750de32c1c19b13bacb32c3364b3fe22d3d3f3672c43342caca4d4bb6ce72a75", &"ab".repeat(32));
        let err = NodeConfig::parse(&own_miner).unwrap_err().to_string();
        assert!(err.contains("chain.allocations is the devnet test account"), "{err}");
    }

    #[test]
    fn each_test_account_is_the_key_its_name_derives() {
        use sha2::{Digest, Sha256};
        for (address, name) in devnet_test_accounts() {
            let seed: [u8; 32] = Sha256::digest(format!("kafkachain-devnet-account/{name}")).into();
            let derived = ed25519_consensus::SigningKey::from(seed).verification_key().to_bytes();
            assert_eq!(address, Address::new(derived), "{name}");
        }
    }

    #[test]
    fn a_minimal_config_gets_defaults_and_bad_values_are_named() {
        let miner = format!("[mining]\naddress = \"{}\"\n", "ab".repeat(32));
        let config = NodeConfig::parse(&format!("node_id = \"a\"\ndata_dir = \"/tmp/a\"\n{miner}")).unwrap();
        assert_eq!(config.kafka.transaction_partitions, 6);
        assert_eq!(config.mining.address, Some(Address::new([0xab; 32])));
        let err = NodeConfig::parse("node_id = \"a\"\ndata_dir = \"/tmp/a\"\n").unwrap_err();
        assert!(err.to_string().contains("mining.address must be set"), "{err}");
        let err = NodeConfig::parse("node_id = \"a\"\ndata_dir = \"d\"\n[mining]\naddress = \"miner1\"\n").unwrap_err();
        assert!(err.to_string().contains("64 hex characters"), "{err}");
        let err = NodeConfig::parse("node_id = \"a\"\ndata_dir = \"d\"\n[chain]\nchain_id = \"x\"\nbits = 300\nreward = 1\ngenesis_timestamp_ms = 0\nmax_block_txs = 5\nmax_orphans = 1\n").unwrap_err();
        assert!(err.to_string().contains("bits"), "{err}");
        let err = NodeConfig::parse("node_id = \"a\"\ndata_dir = \"d\"\nunknown = 1\n").unwrap_err();
        assert!(err.to_string().contains("unknown"), "{err}");
        let small_burst = format!("node_id = \"a\"\ndata_dir = \"d\"\n{miner}[http]\nsubmit_burst = 999\n");
        let err = NodeConfig::parse(&small_burst).unwrap_err();
        assert!(err.to_string().contains("http.submit_burst at least 1000"), "{err}");
    }

    #[test]
    fn a_ledger_stream_on_a_cluster_with_logins_needs_a_principal_of_its_own() {
        let base = format!(
            "node_id = \"a\"\ndata_dir = \"d\"\n[mining]\naddress = \"{}\"\n[kafka.tls]\n[kafka.sasl]\n\
             mechanism = \"PLAIN\"\nusername = \"node1\"\npassword_env = \"P\"\n[ledger]\nenabled = true\n",
            "ab".repeat(32)
        );
        let err = NodeConfig::parse(&base).unwrap_err().to_string();
        assert!(err.contains("ledger.sasl must be set"), "{err}");
        let own = |user: &str| {
            format!("{base}[ledger.sasl]\nmechanism = \"PLAIN\"\nusername = \"{user}\"\npassword_env = \"L\"\n")
        };
        let err = NodeConfig::parse(&own("node1")).unwrap_err().to_string();
        assert!(err.contains("must differ"), "{err}");
        let config = NodeConfig::parse(&own("ledger1")).unwrap();
        assert_eq!(config.ledger_kafka().sasl.map(|s| s.username), Some("ledger1".to_owned()));
        assert_eq!(config.ledger_transactional_id(), "kafkachain-ledger-a");
        let none_deep = own("ledger1").replace("enabled = true\n", "enabled = true\nconfirmations = 0\n");
        let err = NodeConfig::parse(&none_deep).unwrap_err().to_string();
        assert!(err.contains("ledger.confirmations must be at least 1"), "{err}");
    }

    #[test]
    fn a_ledger_stream_refuses_blocks_whose_event_a_kafka_message_cannot_hold() {
        let config = |max_block_bytes: usize| {
            format!(
                "node_id = \"a\"\ndata_dir = \"d\"\n[chain]\nchain_id = \"x\"\nbits = 20\nreward = 1\n\
                 genesis_timestamp_ms = 0\nmax_block_txs = 5\nmax_orphans = 1\nmax_block_bytes = {max_block_bytes}\n\
                 [mining]\n\
                 address = \"{}\"\n[ledger]\nenabled = true\n",
                "ab".repeat(32)
            )
        };
        NodeConfig::parse(&config(4 * 1024 * 1024)).unwrap();
        let err = NodeConfig::parse(&config(8 * 1024 * 1024)).unwrap_err().to_string();
        assert!(err.contains("chain.max_block_bytes of at most 5591040"), "{err}");
        assert!(NodeConfig::parse(&config(8 * 1024 * 1024).replace("enabled = true", "enabled = false")).is_ok());
    }

    #[test]
    fn overrides_replace_the_files_values_and_are_checked() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/node1.toml");
        let file = NodeConfig::load(&path).unwrap();
        let unchanged = NodeConfig::load_with(&path, Overrides::default()).unwrap();
        assert_eq!((&unchanged.data_dir, &unchanged.kafka.brokers), (&file.data_dir, &file.kafka.brokers));
        let overrides = Overrides {
            data_dir: Some("/tmp/elsewhere".into()),
            http_listen: Some("127.0.0.1:9999".parse().unwrap()),
            brokers: Some("broker:9093".into()),
            mining_mode: Some(MiningMode::Continuous),
        };
        let config = NodeConfig::load_with(&path, overrides).unwrap();
        assert_eq!(config.data_dir, Path::new("/tmp/elsewhere"));
        assert_eq!(config.http_listen.port(), 9999);
        assert_eq!(config.kafka.brokers, "broker:9093");
        assert_eq!(config.mining.mode, MiningMode::Continuous);
    }

    #[test]
    fn a_parse_error_never_repeats_a_secret() {
        let base = "node_id = \"a\"\ndata_dir = \"d\"\n[kafka.properties]\n";
        for line in [
            "\"sasl.password\" = hunter2-secret",
            "\"sasl.password\" = 31337420",
            "\"sasl.password\" = \"hunter2-secret",
            "\"sasl.password\" = [\"hunter2-secret\"]",
            "\"sasl.password\" = { v = \"hunter2-secret\" }",
            "\"sasl.password\" = 31_337_420",
            "\"sasl.password\" = 0x1DE",
            "\"sasl.password\" = 7",
        ] {
            let err = NodeConfig::parse(&format!("{base}{line}\n")).unwrap_err().to_string();
            for secret in ["hunter2", "31337420", "31_337_420", "478", "1DE", "`7`"] {
                assert!(!err.contains(secret), "{line:?} gave: {err}");
            }
            assert!(err.contains("line 4"), "{err}");
        }
        let miner = format!("[mining]\naddress = \"{}\"\n", "ab".repeat(32));
        let config = NodeConfig::parse(&format!("{base}\"sasl.password\" = \"hunter2-secret\"\n{miner}")).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"), "Debug shows the property's name only");
    }
}
