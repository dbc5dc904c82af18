//! Harness for the integration tests: real `kafkachain node` processes against the real Kafka
//! broker that `scripts/test` starts. Every test uses its own topic prefix and data directories,
//! so tests can share one broker and run in parallel.

use kafkachain::tools::cluster::{unique_prefix, LocalNode, NodeSpec};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

pub const KAFKACHAIN: &str = env!("CARGO_BIN_EXE_kafkachain");

/// Chain id of every test network (transfers are signed for it).
pub const CHAIN_ID: &str = "integration";

/// Bootstrap servers of the test broker.
pub fn brokers() -> String {
    std::env::var("KAFKACHAIN_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
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

/// A node process with asserting helpers.
pub struct NodeProc {
    pub node: LocalNode,
}

impl std::ops::Deref for NodeProc {
    type Target = LocalNode;
    fn deref(&self) -> &LocalNode {
        &self.node
    }
}

impl std::ops::DerefMut for NodeProc {
    fn deref_mut(&mut self) -> &mut LocalNode {
        &mut self.node
    }
}

/// A set of nodes on one topic prefix.
pub struct TestNet {
    pub prefix: String,
    /// Holds the nodes' data directories until the network is dropped.
    _dir: tempfile::TempDir,
    pub nodes: Vec<NodeProc>,
}

impl TestNet {
    /// Starts `count` on-demand nodes on a fresh topic prefix and waits until they answer.
    pub fn start(test: &str, count: usize) -> TestNet {
        Self::start_with(test, count, |_| {})
    }

    /// Like [`TestNet::start`], with each node's spec adjusted by `tweak` first.
    pub fn start_with(test: &str, count: usize, tweak: impl Fn(&mut NodeSpec)) -> TestNet {
        Self::start_on(unique_prefix(&format!("it-{test}")), count, tweak)
    }

    /// Like [`TestNet::start_with`], on the topic prefix `prefix` (whose topics may exist).
    pub fn start_on(prefix: String, count: usize, tweak: impl Fn(&mut NodeSpec)) -> TestNet {
        let dir = tempfile::tempdir().unwrap();
        let nodes = (1..=count)
            .map(|i| {
                let mut spec = NodeSpec::new(&format!("n{i}"), &prefix, &brokers());
                spec.chain.chain_id = CHAIN_ID.into();
                tweak(&mut spec);
                NodeProc { node: LocalNode::configure(Path::new(KAFKACHAIN), dir.path(), &spec).unwrap() }
            })
            .collect();
        let mut net = TestNet { prefix, _dir: dir, nodes };
        for node in &mut net.nodes {
            node.spawn().unwrap();
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

    /// Mines on the first node until no node's mempool holds a transaction, or panics after
    /// `timeout`: whatever happened before (kills, failovers, forks), every pending transfer is
    /// then confirmed, so the chains can be compared with what was acknowledged.
    pub fn drain_mempools(&self, timeout: Duration) {
        wait_for("every mempool to drain", timeout, || {
            if self.nodes.iter().all(|n| n.status()["mempool"] == 0) {
                return Some(());
            }
            self.nodes[0].mine();
            None
        });
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in &self.nodes {
                eprintln!("--- last lines of {} ---\n{}", node.id, node.log_tail(40));
                // What the node says of itself, for a failure that left its log quiet (a stalled
                // partition, a halt, a mempool that never drains).
                for path in ["/status", "/mempool"] {
                    match node.try_get(path) {
                        Some((code, body)) => eprintln!("--- {} {path}: {code} {body}", node.id),
                        None => eprintln!("--- {} {path}: no answer", node.id),
                    }
                }
            }
        }
    }
}

impl NodeProc {
    /// Waits until `/status` answers.
    pub fn wait_ready(&self) {
        assert!(self.node.wait_ready(Duration::from_secs(60)), "{} did not answer:\n{}", self.id, self.log_tail(20));
    }

    /// SIGTERM, and the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        self.node.terminate().unwrap()
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.try_get(path).unwrap_or_else(|| panic!("{} does not answer GET {path}", self.id))
    }

    pub fn post(&self, path: &str, body: impl Into<String>) -> (u16, Value) {
        self.try_post(path, body.into()).unwrap_or_else(|| panic!("{} does not answer POST {path}", self.id))
    }

    /// GET `path` for a body that is not JSON: status code, `Content-Type` and the text.
    pub fn get_text(&self, path: &str) -> (u16, String, String) {
        let response = reqwest::blocking::get(format!("{}{path}", self.url))
            .unwrap_or_else(|e| panic!("{} does not answer GET {path}: {e}", self.id));
        let code = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (code, content_type, response.text().unwrap())
    }

    pub fn status(&self) -> Value {
        let (code, body) = self.get("/status");
        assert_eq!(code, 200, "{body}");
        body
    }

    /// Submits a signed transfer between two named parties (see `named_transfer`) and returns
    /// its id.
    pub fn submit(&self, sender: &str, recipient: &str, amount: u64) -> String {
        let (code, answer) = self.post("/transactions/new", self.signed_body(sender, recipient, amount));
        assert_eq!(code, 201, "{answer}");
        answer["transaction_id"].as_str().unwrap().to_owned()
    }

    /// How many peers the node has registered (from a resolve's report, which lists each).
    pub fn peers_registered(&self) -> usize {
        let (code, answer) = self.get("/nodes/resolve");
        assert_eq!(code, 200, "{answer}");
        answer["peers"].as_array().unwrap().len()
    }

    /// Mines one block and returns the answer.
    pub fn mine(&self) -> Value {
        let (code, answer) = self.get("/mine");
        assert_eq!(code, 200, "{answer}");
        answer
    }

    /// The whole main chain, page by page.
    pub fn chain(&self) -> Vec<Value> {
        self.try_chain().unwrap_or_else(|| panic!("{} does not answer /chain", self.id))
    }
}

/// Transaction messages a node has read in all (its next offsets over the transactions
/// partitions), from its `/status`.
pub fn transactions_read(status: &Value) -> u64 {
    offsets_read(status, |partition| partition.contains(".transactions/"), false)
}

/// The sum of a node's next offsets (from its `/status`) over the partitions `keep` accepts, less
/// the offsets it started from when `since_start`.
pub fn offsets_read(status: &Value, keep: impl Fn(&str) -> bool, since_start: bool) -> u64 {
    let start = status["start_offsets"].as_object();
    status["next_offsets"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(partition, _)| keep(partition))
        .map(|(partition, next)| {
            let from = match since_start {
                true => start.and_then(|s| s.get(partition)).and_then(Value::as_u64).unwrap_or(0),
                false => 0,
            };
            next.as_u64().unwrap() - from
        })
        .sum()
}

/// The last block of `chain` (a `/chain` answer), decoded.
pub fn tip_block(chain: &[Value]) -> kafkachain::core::block::Block {
    let last = chain.last().expect("a chain has genesis").clone();
    serde_json::from_value::<kafkachain::json::BlockJson>(last).unwrap().try_into().unwrap()
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

pub mod browser;
pub mod fake_peer;

/// Resident memory of a process, in MiB, from `/proc`.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024.0
}
pub mod kafka_cluster;
pub mod secure;

/// The arguments of Kafka's `TopicCommand` that make `{prefix}.blocks` and
/// `{prefix}.transactions` as an operator would, with the safe settings, `extra` (`name=value`,
/// or empty) replacing or adding one on both. (Kafka's default `max.message.bytes`, 1 MiB + 12,
/// is below what a full block of the default chain takes.)
pub fn topic_creations(prefix: &str, extra: &str) -> Vec<Vec<String>> {
    [("blocks", "1", "message.timestamp.type=LogAppendTime"), ("transactions", "3", "retention.ms=-1")]
        .into_iter()
        .map(|(topic, partitions, stamp)| {
            let mut args: Vec<String> = [
                "--create",
                "--topic",
                &format!("{prefix}.{topic}"),
                "--partitions",
                partitions,
                "--replication-factor",
                "1",
            ]
            .map(str::to_owned)
            .into();
            let mut configs = std::collections::BTreeMap::new();
            let safe = ["retention.ms=-1", "unclean.leader.election.enable=false", "max.message.bytes=4194304", stamp];
            for config in safe.into_iter().chain((!extra.is_empty()).then_some(extra)) {
                let (name, value) = config.split_once('=').unwrap();
                configs.insert(name, value);
            }
            for (name, value) in configs {
                args.extend(["--config".to_owned(), format!("{name}={value}")]);
            }
            args
        })
        .collect()
}

/// Runs `TopicCommand` of Kafka's own tools against the suite's broker with `args`.
pub fn topic_command(args: &[String]) -> std::process::Output {
    secure::script()
        .args(["tool", "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", &brokers()])
        .args(args)
        .output()
        .unwrap()
}

/// Produces `payloads` into `topic` with a plain producer (no key), as an outsider could.
pub fn produce(topic: &str, payloads: &[Vec<u8>]) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for payload in payloads {
        producer.send(BaseRecord::<(), _>::to(topic).payload(payload)).unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// Whether a 409 answer says the transfer (or another with its nonce) is already pending or
/// confirmed: sending it again is pointless. Other refusals (too far ahead while no block is
/// mined) are worth sending again, or the sender's later transfers wait on a gap forever.
pub fn already_there(answer: &Value) -> bool {
    matches!(answer["rule"].as_str(), Some("duplicate" | "nonce_taken" | "nonce_used"))
}

/// Asserts that `answer` is the status `expected` with a JSON `error` that mentions `mentions`.
pub fn assert_json_error(answer: (u16, Value), expected: u16, mentions: &str) {
    let (code, body) = answer;
    assert_eq!(code, expected, "{body}");
    let message = body["error"].as_str().unwrap_or_else(|| panic!("no JSON error in {body}"));
    assert!(message.contains(mentions), "{message:?} should mention {mentions:?}");
}

/// Runs a node with `kafka` (on a fresh data directory) until it exits, or for 30 s at most: its
/// exit status (`None` when it had to be killed), what it wrote, and how long it ran. For start-up
/// refusals, which should come within seconds.
pub fn run_until_exit(kafka: kafkachain::config::KafkaConfig) -> (Option<i32>, String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = NodeSpec::new("refused", &kafka.topic_prefix, &kafka.brokers);
    spec.chain.chain_id = CHAIN_ID.into();
    spec.kafka = kafka;
    let node = LocalNode::configure(Path::new(KAFKACHAIN), dir.path(), &spec).unwrap();
    let started = Instant::now();
    let mut child = std::process::Command::new(KAFKACHAIN)
        .args(["node", "--config"])
        .arg(&node.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = started + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text, started.elapsed())
}
