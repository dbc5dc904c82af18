//! A secured Kafka cluster as `scripts/kafka up --secure` leaves it on disk: its bootstrap
//! addresses, the CA, each principal's password, certificate and client files; and node
//! configurations that log in as one of those principals.

use kafkachain::config::{KafkaConfig, SaslConfig, SaslMechanism, TlsConfig};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The files of one secured cluster (the `secure` directory under its `KAFKACHAIN_KAFKA_DIR`).
pub struct Secure {
    pub dir: PathBuf,
    pub bootstrap: String,
    pub mtls_bootstrap: String,
}

/// `scripts/kafka`, to which callers add the environment of their cluster.
pub fn script() -> Command {
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka"))
}

impl Secure {
    /// The cluster whose files are in `dir`, reached through `bootstrap` (what `up` printed).
    pub fn at(dir: PathBuf, bootstrap: &str) -> Secure {
        let mtls_bootstrap = std::fs::read_to_string(dir.join("mtls-bootstrap")).unwrap().trim().to_owned();
        Secure { dir, bootstrap: bootstrap.trim().to_owned(), mtls_bootstrap }
    }

    pub fn client_file(&self, name: &str) -> PathBuf {
        self.dir.join("clients").join(name)
    }

    /// `principal`'s librdkafka client properties (the `kcat -F` file), for an rdkafka client.
    pub fn client_config(&self, principal: &str) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        let text = std::fs::read_to_string(self.client_file(&format!("{principal}.properties"))).unwrap();
        for (key, value) in text.lines().filter_map(|line| line.split_once('=')) {
            config.set(key, value);
        }
        config
    }

    /// One of Kafka's own tools, run as `principal` with its Java client file.
    pub fn tool(&self, principal: &str, class: &str, args: &[&str]) -> Output {
        let config = self.client_file(&format!("{principal}.java.properties"));
        script()
            .args([
                "tool",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                class,
                "--bootstrap-server",
                &self.bootstrap,
            ])
            .arg(if class.ends_with("ProducerPerformance") { "--producer.config" } else { "--command-config" })
            .arg(config)
            .args(args)
            .output()
            .unwrap()
    }

    fn tls(&self) -> TlsConfig {
        TlsConfig { ca_file: Some(self.dir.join("ca.pem")), ..TlsConfig::default() }
    }

    /// `principal` logging in with `mechanism` over TLS.
    pub fn sasl(&self, kafka: &mut KafkaConfig, principal: &str, mechanism: SaslMechanism) {
        kafka.brokers = self.bootstrap.clone();
        kafka.tls = Some(self.tls());
        kafka.sasl = Some(SaslConfig {
            mechanism,
            username: principal.to_owned(),
            password_file: Some(self.client_file(&format!("{principal}.password"))),
            password_env: None,
        });
    }

    /// `principal` known by its certificate.
    pub fn mutual_tls(&self, kafka: &mut KafkaConfig, principal: &str) {
        kafka.brokers = self.mtls_bootstrap.clone();
        kafka.tls = Some(TlsConfig {
            cert_file: Some(self.client_file(&format!("{principal}.pem"))),
            key_file: Some(self.client_file(&format!("{principal}.key"))),
            ..self.tls()
        });
        kafka.sasl = None;
    }
}
