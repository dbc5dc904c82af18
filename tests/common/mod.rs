//! Harness for the integration tests: real `kafkachain node` processes against the real Kafka
//! broker that `scripts/test` starts. Every test uses its own topic prefix and data directories,
//! so tests can share one broker and run in parallel.

#![allow(dead_code)] // each test file uses a different part of the harness

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const KAFKACHAIN: &str = env!("CARGO_BIN_EXE_kafkachain");

/// Bootstrap servers of the test broker.
pub fn brokers() -> String {
    std::env::var("KAFKACHAIN_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A topic prefix no other test run uses.
pub fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("it-{test}-{}-{nanos}", std::process::id())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A node process and how to reach it.
pub struct NodeProc {
    pub id: String,
    pub url: String,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    http: reqwest::blocking::Client,
}

/// A set of nodes on one topic prefix.
pub struct TestNet {
    pub prefix: String,
    pub dir: tempfile::TempDir,
    pub nodes: Vec<NodeProc>,
}

impl TestNet {
    /// Starts `count` on-demand nodes on a fresh topic prefix and waits until they answer.
    pub fn start(test: &str, count: usize) -> TestNet {
        let prefix = unique_prefix(test);
        let dir = tempfile::tempdir().unwrap();
        let nodes = (1..=count).map(|i| NodeProc::configure(dir.path(), &prefix, &format!("n{i}"))).collect();
        let mut net = TestNet { prefix, dir, nodes };
        for node in &mut net.nodes {
            node.spawn();
        }
        for node in &net.nodes {
            node.wait_ready();
        }
        net
    }

    /// Waits until every node has the same tip at `height` or above; returns that tip.
    pub fn wait_converged(&self, min_height: u64, timeout: Duration) -> (u64, String) {
        wait_for("all nodes on one tip", timeout, || {
            let tips: Vec<(u64, String)> = self
                .nodes
                .iter()
                .map(|n| {
                    let s = n.status();
                    (s["height"].as_u64().unwrap(), s["tip"].as_str().unwrap().to_owned())
                })
                .collect();
            let first = tips[0].clone();
            (first.0 >= min_height && tips.iter().all(|t| *t == first)).then_some(first)
        })
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        if std::thread::panicking() {
            for node in &self.nodes {
                let log = std::fs::read_to_string(&node.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("--- last lines of {} ---", node.id);
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl NodeProc {
    /// Writes a config for node `id` (low difficulty, its own port and data directory).
    pub fn configure(dir: &Path, prefix: &str, id: &str) -> NodeProc {
        let port = free_port();
        let data_dir = dir.join(id);
        let config = dir.join(format!("{id}.toml"));
        let text = format!(
            "node_id = \"{id}\"\ndata_dir = \"{}\"\nhttp_listen = \"127.0.0.1:{port}\"\n\
             [chain]\nchain_id = \"integration\"\nbits = 12\nreward = 50\ngenesis_timestamp_ms = 0\n\
             max_block_txs = 1000\nmax_orphans = 64\n\
             [kafka]\nbrokers = \"{}\"\ntopic_prefix = \"{prefix}\"\ntransaction_partitions = 3\n\
             [mining]\nmode = \"on-demand\"\nthreads = 1\n",
            data_dir.display(),
            brokers()
        );
        std::fs::write(&config, text).unwrap();
        NodeProc {
            id: id.to_owned(),
            url: format!("http://127.0.0.1:{port}"),
            config,
            data_dir,
            log: dir.join(format!("{id}.log")),
            child: None,
            http: reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
        }
    }

    /// Starts the process (appending to its log).
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(KAFKACHAIN)
            .args(["node", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting kafkachain node");
        self.child = Some(child);
    }

    /// Waits until `/status` answers.
    pub fn wait_ready(&self) {
        wait_for(&format!("{} to answer /status", self.id), Duration::from_secs(60), || {
            self.http.get(format!("{}/status", self.url)).send().ok().filter(|r| r.status().is_success())
        });
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        child.wait().unwrap().code()
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(format!("{}{path}", self.url)).send().unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    pub fn post(&self, path: &str, body: impl Into<reqwest::blocking::Body>) -> (u16, Value) {
        let response = self.http.post(format!("{}{path}", self.url)).body(body).send().unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    pub fn status(&self) -> Value {
        let (code, body) = self.get("/status");
        assert_eq!(code, 200, "{body}");
        body
    }

    /// Submits a transfer and returns its id.
    pub fn submit(&self, sender: &str, recipient: &str, amount: u64) -> String {
        let body = serde_json::json!({ "sender": sender, "recipient": recipient, "amount": amount });
        let (code, answer) = self.post("/transactions/new", body.to_string());
        assert_eq!(code, 201, "{answer}");
        answer["transaction_id"].as_str().unwrap().to_owned()
    }

    /// Mines one block and returns the answer.
    pub fn mine(&self) -> Value {
        let (code, answer) = self.get("/mine");
        assert_eq!(code, 200, "{answer}");
        answer
    }

    /// The whole main chain, page by page.
    pub fn chain(&self) -> Vec<Value> {
        let mut blocks = Vec::new();
        loop {
            let (code, page) = self.get(&format!("/chain?from={}", blocks.len()));
            assert_eq!(code, 200);
            let chain = page["chain"].as_array().unwrap().clone();
            let length = page["length"].as_u64().unwrap() as usize;
            let empty = chain.is_empty();
            blocks.extend(chain);
            if blocks.len() >= length || empty {
                return blocks;
            }
        }
    }
}

/// Every transaction id on a chain, rewards excluded, in order.
pub fn transfer_ids(chain: &[Value]) -> Vec<String> {
    chain
        .iter()
        .flat_map(|b| b["transactions"].as_array().unwrap().clone())
        .filter(|t| t["sender"] != "0")
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}
