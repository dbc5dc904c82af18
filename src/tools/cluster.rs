//! Local node processes for the benchmarks and the integration tests: writes a node's config,
//! starts `kafkachain node` as a child process, waits for its API, stops it with SIGTERM or
//! SIGKILL. Real processes, so restarts and crashes are real.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What differs between the nodes a tool starts.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// Node id (also the reward address).
    pub id: String,
    /// Topic prefix of the network.
    pub topic_prefix: String,
    /// Chain id (same on every node of a network).
    pub chain_id: String,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Difficulty.
    pub bits: u32,
    /// Block size bound.
    pub max_block_txs: usize,
    /// Block reward.
    pub reward: u64,
    /// Orphan pool bound.
    pub max_orphans: usize,
    /// Deepest reorganization accepted.
    pub finality_depth: u64,
    /// `on-demand` or `continuous`.
    pub mining_mode: &'static str,
    /// Mining threads.
    pub mining_threads: usize,
    /// Partitions of the transactions topic.
    pub transaction_partitions: i32,
    /// Replication factor and `min.insync.replicas` of created topics.
    pub replication: (i32, u32),
    /// Mempool bound.
    pub max_mempool: u64,
    /// Further TOML tables appended to the config as they are (for example `[peers]` bounds).
    pub extra_toml: String,
}

impl NodeSpec {
    /// A low-difficulty on-demand node of network `topic_prefix`.
    pub fn new(id: &str, topic_prefix: &str, brokers: &str) -> Self {
        Self {
            id: id.to_owned(),
            topic_prefix: topic_prefix.to_owned(),
            chain_id: "local".to_owned(),
            brokers: brokers.to_owned(),
            bits: 12,
            max_block_txs: 1_000,
            reward: 50,
            max_orphans: 64,
            finality_depth: 100,
            mining_mode: "on-demand",
            mining_threads: 1,
            transaction_partitions: 3,
            replication: (1, 1),
            max_mempool: 1_000_000,
            extra_toml: String::new(),
        }
    }
}

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
        let text = format!(
            "node_id = \"{id}\"\ndata_dir = \"{data}\"\nhttp_listen = \"127.0.0.1:{port}\"\n\
             [chain]\nchain_id = \"{chain}\"\nbits = {bits}\nreward = {reward}\ngenesis_timestamp_ms = 0\n\
             max_block_txs = {max_txs}\nmax_orphans = {max_orphans}\nfinality_depth = {finality}\n\
             [kafka]\nbrokers = \"{brokers}\"\ntopic_prefix = \"{prefix}\"\ntransaction_partitions = {parts}\n\
             replication_factor = {rf}\nmin_insync_replicas = {isr}\n\
             [mining]\nmode = \"{mode}\"\nthreads = {threads}\n\
             [storage]\nmax_mempool = {max_mempool}\n{extra}",
            id = spec.id,
            data = data_dir.display(),
            chain = spec.chain_id,
            bits = spec.bits,
            max_txs = spec.max_block_txs,
            reward = spec.reward,
            max_orphans = spec.max_orphans,
            finality = spec.finality_depth,
            brokers = spec.brokers,
            prefix = spec.topic_prefix,
            parts = spec.transaction_partitions,
            rf = spec.replication.0,
            isr = spec.replication.1,
            mode = spec.mining_mode,
            threads = spec.mining_threads,
            max_mempool = spec.max_mempool,
            extra = spec.extra_toml,
        );
        std::fs::write(&config, text)?;
        Ok(LocalNode {
            id: spec.id.clone(),
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
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.exe)
            .args(["node", "--config"])
            .arg(&self.config)
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
