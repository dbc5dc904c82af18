//! Local node processes for the benchmarks and the integration tests: writes a node's config,
//! starts `kafkachain node` as a child process, waits for its API, stops it with SIGTERM or
//! SIGKILL. Real processes, so restarts and crashes are real.

use super::load::{miner_address, LoadAccounts};
use crate::config::{
    HttpConfig, KafkaConfig, LedgerConfig, MiningConfig, MiningMode, NodeConfig, PeerConfig, StorageConfig,
};
use crate::core::miner::MinerPriority;
use crate::core::params::ChainParams;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What differs between the nodes a tool starts: everything of a node's configuration but where
/// it keeps its data and which port it listens on, which [`LocalNode::configure`] chooses.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// Node id (its reward address is derived from it: [`super::load::miner_address`]).
    pub id: String,
    /// Consensus parameters (the same on every node of a network).
    pub chain: ChainParams,
    /// Brokers, topic prefix, partitions and replication of created topics.
    pub kafka: KafkaConfig,
    /// Mining mode and threads.
    pub mining: MiningConfig,
    /// Cache and mempool bounds.
    pub storage: StorageConfig,
    /// Bounds on fetching peers' chains.
    pub peers: PeerConfig,
    /// HTTP bounds and token.
    pub http: HttpConfig,
    /// The ledger stream (off unless a test turns it on).
    pub ledger: LedgerConfig,
}

impl NodeSpec {
    /// A low-difficulty, single-threaded on-demand node of network `topic_prefix`, whose genesis
    /// funds the first [`LOAD_ACCOUNTS`] load accounts.
    pub fn new(id: &str, topic_prefix: &str, brokers: &str) -> Self {
        Self {
            id: id.to_owned(),
            chain: ChainParams {
                chain_id: "local".to_owned(),
                bits: 12,
                genesis_timestamp_ms: 0,
                max_orphans: 64,
                allocations: LoadAccounts::new(LOAD_ACCOUNTS).allocations(),
                ..ChainParams::default()
            },
            kafka: KafkaConfig {
                brokers: brokers.to_owned(),
                topic_prefix: topic_prefix.to_owned(),
                transaction_partitions: 3,
                ..KafkaConfig::default()
            },
            mining: MiningConfig {
                mode: MiningMode::OnDemand,
                threads: 1,
                address: Some(miner_address(id)),
                // Tests and benchmarks ask for each block (`GET /mine`), often while other
                // networks load both cores: a search asked for must not wait for an idle core.
                priority: MinerPriority::Normal,
                ..MiningConfig::default()
            },
            storage: StorageConfig { max_mempool: 1_000_000, tx_index: true, ..StorageConfig::default() },
            peers: PeerConfig::default(),
            http: HttpConfig::default(),
            ledger: LedgerConfig::default(),
        }
    }
}

/// Load accounts funded at genesis by [`NodeSpec::new`].
pub const LOAD_ACCOUNTS: usize = 256;

/// A topic prefix no other run uses.
pub fn unique_prefix(label: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{label}-{}-{nanos}", std::process::id())
}

/// Polls `check` every 50 ms until it returns `Some`, or gives up after `timeout`.
pub fn poll_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One node process.
pub struct LocalNode {
    /// Its id.
    pub id: String,
    /// Its network's topic prefix.
    pub network: String,
    /// Its chain id (what transfers for it are signed with).
    pub chain_id: String,
    /// Base URL of its API.
    pub url: String,
    /// Its config file.
    pub config: PathBuf,
    /// Its sled directory.
    pub data_dir: PathBuf,
    /// Its log file (stderr).
    pub log: PathBuf,
    exe: PathBuf,
    child: Option<Child>,
    http: reqwest::blocking::Client,
}

impl LocalNode {
    /// Writes the config for `spec` under `dir` (with a free port); does not start anything.
    pub fn configure(exe: &Path, dir: &Path, spec: &NodeSpec) -> std::io::Result<LocalNode> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let data_dir = dir.join(&spec.id);
        let config = dir.join(format!("{}.toml", spec.id));
        let node_config = NodeConfig {
            node_id: spec.id.clone(),
            data_dir: data_dir.clone(),
            http_listen: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            chain: spec.chain.clone(),
            kafka: spec.kafka.clone(),
            mining: spec.mining.clone(),
            storage: spec.storage.clone(),
            peers: spec.peers.clone(),
            http: spec.http.clone(),
            ledger: spec.ledger.clone(),
        };
        let text = toml::to_string(&node_config).map_err(std::io::Error::other)?;
        std::fs::write(&config, text)?;
        Ok(LocalNode {
            id: spec.id.clone(),
            network: spec.kafka.topic_prefix.clone(),
            chain_id: spec.chain.chain_id.clone(),
            url: format!("http://127.0.0.1:{port}"),
            config,
            data_dir,
            log: dir.join(format!("{}.log", spec.id)),
            exe: exe.to_owned(),
            child: None,
            // No pooled connections: a server that answers early (413) and closes the connection
            // would otherwise leave a dead one in the pool for the next request to fail on.
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(0)
                .build()
                .map_err(std::io::Error::other)?,
        })
    }

    /// Starts the process, appending its stderr to its log.
    pub fn spawn(&mut self) -> std::io::Result<()> {
        self.spawn_with(&[], &[])
    }

    /// Starts the process with `args` after its own and `vars` added to its environment (a
    /// `--log-file`, a `NOTIFY_SOCKET`, say).
    pub fn spawn_with(&mut self, args: &[&std::ffi::OsStr], vars: &[(&str, &std::ffi::OsStr)]) -> std::io::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.exe)
            .args(["node", "--config"])
            .arg(&self.config)
            .args(args)
            .envs(vars.iter().copied())
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// Process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits until `/status` answers; false if it did not within `timeout`.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        poll_until(timeout, || self.try_get("/status").filter(|(code, _)| *code == 200)).is_some()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already exited is fine: there is nothing left to kill.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(&mut self) -> std::io::Result<Option<i32>> {
        let Some(mut child) = self.child.take() else { return Ok(None) };
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
        Ok(child.wait()?.code())
    }

    /// The operator token the running node wrote to its cookie file, if it did.
    pub fn token(&self) -> Option<String> {
        std::fs::read_to_string(self.data_dir.join(crate::api::token::COOKIE_FILE)).ok()
    }

    /// The JSON body of a signed transfer of `amount` between two named parties on this node's
    /// network (see [`super::load::named_transfer`]).
    pub fn signed_body(&self, sender: &str, recipient: &str, amount: u64) -> String {
        let chain = crate::core::transaction::ChainTag::of(&self.chain_id);
        let transfer = super::load::named_transfer(&self.network, chain, LOAD_ACCOUNTS, sender, recipient, amount);
        serde_json::json!(crate::json::SignedTransferJson::from(&transfer)).to_string()
    }

    /// GET `path` with the operator token: status code and JSON body (Null if not JSON); None
    /// if unreachable.
    pub fn try_get(&self, path: &str) -> Option<(u16, Value)> {
        answer(self.authorized(self.http.get(format!("{}{path}", self.url))).send().ok()?)
    }

    /// POST the JSON `body` to `path` with the operator token: status code and JSON body; None
    /// if unreachable.
    pub fn try_post(&self, path: &str, body: String) -> Option<(u16, Value)> {
        let request =
            self.http.post(format!("{}{path}", self.url)).header("content-type", "application/json").body(body);
        answer(self.authorized(request).send().ok()?)
    }

    fn authorized(&self, request: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
        match self.token() {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// The node's whole main chain as JSON blocks, page by page; None if it stops answering.
    pub fn try_chain(&self) -> Option<Vec<Value>> {
        let mut blocks = Vec::new();
        loop {
            let (_, page) = self.try_get(&format!("/chain?from={}", blocks.len()))?;
            let chain = page["chain"].as_array()?.clone();
            let length = page["length"].as_u64()? as usize;
            let empty = chain.is_empty();
            blocks.extend(chain);
            if blocks.len() >= length || empty {
                return Some(blocks);
            }
        }
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// Status code and JSON body (Null if the body is not JSON).
fn answer(response: reqwest::blocking::Response) -> Option<(u16, Value)> {
    let code = response.status().as_u16();
    Some((code, response.json().unwrap_or(Value::Null)))
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_config_reads_back_as_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = NodeSpec::new("n1", "prefix", "127.0.0.1:1");
        spec.chain.reward = 7;
        spec.peers.max_new_blocks = 3;
        spec.http.max_in_flight = 5;
        spec.kafka.properties.insert("socket.timeout.ms".into(), "1000".into());
        let node = LocalNode::configure(Path::new("/bin/true"), dir.path(), &spec).unwrap();
        let read = NodeConfig::load(&node.config).unwrap();
        assert_eq!(read.chain, spec.chain);
        assert_eq!(read.kafka.properties, spec.kafka.properties);
        assert_eq!((read.peers.max_new_blocks, read.http.max_in_flight, read.http.token_file), (3, 5, None));
        assert_eq!(read.data_dir, dir.path().join("n1"));
    }
}
