//! A Kafka cluster of a test's own (through `scripts/kafka` with its own ports and directory),
//! for tests that kill brokers and so cannot share the suite's broker; open, or secured as
//! `scripts/kafka up --secure` secures it.

use super::secure::{script, Secure};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// `brokers` brokers from port `base_port` up (each with its controller, and in the secured
/// kind its mutual-TLS listener, on the ports between), stopped and wiped on drop.
pub struct Cluster {
    dir: tempfile::TempDir,
    brokers: u16,
    base_port: u16,
    /// The secured cluster's files, when it is secured.
    secure: Option<Secure>,
}

impl Cluster {
    /// An open cluster: PLAINTEXT listeners, no authorizer.
    pub fn start(brokers: u16, base_port: u16) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let status =
            Self::script(&dir, base_port, "").args(["up", "--brokers", &brokers.to_string()]).status().unwrap();
        assert!(status.success(), "scripts/kafka up --brokers {brokers} failed");
        Cluster { dir, brokers, base_port, secure: None }
    }

    /// A secured cluster: SASL_SSL and mutual-TLS listeners only, ACLs on, the topics of
    /// `prefix` made by its admin with replication factor `brokers`.
    pub fn start_secure(brokers: u16, base_port: u16, prefix: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let up = Self::script(&dir, base_port, prefix)
            .args(["up", "--secure", "--brokers", &brokers.to_string()])
            .output()
            .unwrap();
        assert!(up.status.success(), "scripts/kafka up --secure: {}", String::from_utf8_lossy(&up.stderr));
        let secure = Secure::at(dir.path().join("secure"), &String::from_utf8(up.stdout).unwrap());
        Cluster { dir, brokers, base_port, secure: Some(secure) }
    }

    fn script(dir: &tempfile::TempDir, base_port: u16, prefix: &str) -> Command {
        let mut command = script();
        command
            .env("KAFKACHAIN_KAFKA_DIR", dir.path())
            .env("KAFKACHAIN_KAFKA_PORT", base_port.to_string())
            .env("KAFKACHAIN_KAFKA_SECURE_PORT", base_port.to_string())
            .env("KAFKACHAIN_SECURE_PREFIX", prefix);
        command
    }

    /// The secured cluster's files (panics on an open cluster).
    pub fn secure(&self) -> &Secure {
        self.secure.as_ref().expect("a secured cluster")
    }

    pub fn bootstrap(&self) -> String {
        match &self.secure {
            Some(secure) => secure.bootstrap.clone(),
            None => {
                (0..self.brokers).map(|i| format!("127.0.0.1:{}", self.base_port + 2 * i)).collect::<Vec<_>>().join(",")
            }
        }
    }

    fn pid_file(&self, broker: i32) -> PathBuf {
        let state = if self.secure.is_some() { self.dir.path().join("secure") } else { self.dir.path().to_owned() };
        state.join(format!("broker-{broker}/pid"))
    }

    /// A client of the cluster (its admin, when secured).
    fn client(&self) -> BaseConsumer {
        let mut config = match &self.secure {
            Some(secure) => secure.client_config("admin"),
            None => ClientConfig::new(),
        };
        config.set("bootstrap.servers", self.bootstrap()).create().unwrap()
    }

    /// The broker id leading partition 0 of `topic`.
    pub fn leader_of(&self, topic: &str) -> i32 {
        let client = self.client();
        let metadata = client.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
        metadata.topics()[0].partitions()[0].leader()
    }

    /// Waits until every partition of `topics` has all `replicas` replicas in sync, as an
    /// operator checks before taking a broker away: a broker killed while a partition's only
    /// other in-sync replica is still catching up takes the partition below
    /// `min.insync.replicas` until it has.
    pub fn wait_in_sync(&self, topics: &[&str], replicas: usize, timeout: Duration) {
        let client = self.client();
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
        let mut down = Self::script(&self.dir, self.base_port, "");
        down.args(["down", "--wipe"]);
        if self.secure.is_some() {
            down.arg("--secure");
        }
        let _ = down.status();
    }
}
