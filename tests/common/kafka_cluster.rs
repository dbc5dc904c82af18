//! A Kafka cluster of a test's own (through `scripts/kafka` with its own ports and directory),
//! for tests that kill brokers and so cannot share the suite's broker.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// `brokers` brokers on ports `base_port`, `base_port + 2`, ... (controllers on the odd ports
/// between), stopped and wiped on drop.
pub struct Cluster {
    dir: tempfile::TempDir,
    brokers: u16,
    base_port: u16,
}

impl Cluster {
    pub fn start(brokers: u16, base_port: u16) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let status =
            Self::script(dir.path(), base_port).args(["up", "--brokers", &brokers.to_string()]).status().unwrap();
        assert!(status.success(), "scripts/kafka up --brokers {brokers} failed");
        Cluster { dir, brokers, base_port }
    }

    fn script(dir: &Path, base_port: u16) -> Command {
        let mut command = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka"));
        command.env("KAFKACHAIN_KAFKA_DIR", dir).env("KAFKACHAIN_KAFKA_PORT", base_port.to_string());
        command
    }

    pub fn bootstrap(&self) -> String {
        (0..self.brokers).map(|i| format!("127.0.0.1:{}", self.base_port + 2 * i)).collect::<Vec<_>>().join(",")
    }

    fn pid_file(&self, broker: i32) -> PathBuf {
        self.dir.path().join(format!("broker-{broker}/pid"))
    }

    /// The broker id leading partition 0 of `topic`.
    pub fn leader_of(&self, topic: &str) -> i32 {
        let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", self.bootstrap()).create().unwrap();
        let metadata = client.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
        metadata.topics()[0].partitions()[0].leader()
    }

    /// Waits until every partition of `topics` has all `replicas` replicas in sync, as an
    /// operator checks before taking a broker away: a broker killed while a partition's only
    /// other in-sync replica is still catching up takes the partition below
    /// `min.insync.replicas` until it has.
    pub fn wait_in_sync(&self, topics: &[&str], replicas: usize, timeout: Duration) {
        let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", self.bootstrap()).create().unwrap();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let lagging: Vec<String> = topics
                .iter()
                .flat_map(|topic| match client.fetch_metadata(Some(topic), Duration::from_secs(10)) {
                    Ok(metadata) => metadata.topics()[0]
                        .partitions()
                        .iter()
                        .filter(|p| p.isr().len() < replicas)
                        .map(|p| format!("{topic}/{} (in sync: {:?})", p.id(), p.isr()))
                        .collect(),
                    Err(e) => vec![format!("{topic}: {e}")],
                })
                .collect();
            if lagging.is_empty() {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "replicas not in sync after {timeout:?}: {lagging:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILLs broker `broker` (1-based).
    pub fn kill(&self, broker: i32) {
        let pid = std::fs::read_to_string(self.pid_file(broker)).unwrap();
        let status = Command::new("kill").args(["-KILL", pid.trim()]).status().unwrap();
        assert!(status.success());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Self::script(self.dir.path(), self.base_port).args(["down", "--wipe"]).status();
    }
}
