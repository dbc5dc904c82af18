//! How the node connects to Kafka: the brokers and every librdkafka property its clients share,
//! the user's `kafka.properties` first and then what `[kafka.tls]` and `[kafka.sasl]` decide.
//! Resolved once at start, so a missing file, a key others may read or an unset password variable
//! is one clear error before any client exists, and the password is read once.

use crate::config::{KafkaConfig, SaslConfig, TlsConfig};
use crate::secret_file::{self, SecretFileError};
use std::path::{Path, PathBuf};

/// Why the TLS or SASL settings cannot be used. Each names the setting to look at, and none
/// repeats a secret.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// SASL was asked for without TLS: the password (or, with SCRAM, the exchange) would cross
    /// the network in the clear, and the broker could not be told from an impostor.
    #[error("kafka.sasl needs kafka.tls: a node never authenticates over an unencrypted connection")]
    SaslWithoutTls,
    /// Not exactly one password source.
    #[error("kafka.sasl: set exactly one of password_file and password_env (the password is never written inline)")]
    PasswordSource,
    /// The password variable is missing or empty.
    #[error("kafka.sasl.password_env: the environment variable {0} is not set, or empty")]
    PasswordEnvUnset(String),
    /// The password file cannot be used.
    #[error("kafka.sasl.password_file: {0}")]
    PasswordFile(SecretFileError),
    /// The password file holds nothing.
    #[error("kafka.sasl.password_file: {} is empty", .0.display())]
    PasswordEmpty(PathBuf),
    /// The user name is empty.
    #[error("kafka.sasl.username is empty")]
    NoUsername,
    /// The private key for mutual TLS cannot be used.
    #[error("kafka.tls.key_file: {0}")]
    KeyFile(SecretFileError),
    /// A certificate file cannot be read.
    #[error("kafka.tls.{setting}: reading {}: {source}", path.display())]
    Unreadable {
        /// `ca_file` or `cert_file`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system reported.
        source: std::io::Error,
    },
    /// Only one of the client certificate and its key.
    #[error("kafka.tls: cert_file and key_file go together (mutual TLS needs both)")]
    HalfAPair,
    /// A raw property the sections decide.
    #[error("kafka.properties sets \"{0}\", which kafka.tls and kafka.sasl decide: remove it from kafka.properties")]
    Conflict(String),
}

/// The brokers and the shared client properties, with the configuration they came from. Its
/// `Debug` shows property names only: a value may be a password.
#[derive(Clone)]
pub struct Connection {
    kafka: KafkaConfig,
    properties: Vec<(String, String)>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.properties.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Connection").field("brokers", &self.kafka.brokers).field("properties", &names).finish()
    }
}

impl Connection {
    /// Resolves `kafka`'s properties: reads the password and checks every file named.
    pub fn new(kafka: &KafkaConfig) -> Result<Self, SecurityError> {
        let mut properties: Vec<(String, String)> =
            kafka.properties.iter().map(|(name, value)| (name.clone(), value.clone())).collect();
        if kafka.tls.is_some() || kafka.sasl.is_some() {
            if let Some((name, _)) = properties.iter().find(|(name, _)| decided_by_sections(name)) {
                return Err(SecurityError::Conflict(name.clone()));
            }
            let settings = section_settings(kafka.tls.as_ref(), kafka.sasl.as_ref())?;
            properties.extend(settings.into_iter().map(|(name, value)| (name.to_owned(), value)));
        }
        Ok(Self { kafka: kafka.clone(), properties })
    }

    /// The configuration it was resolved from.
    pub fn config(&self) -> &KafkaConfig {
        &self.kafka
    }

    /// Every shared property, in the order they apply.
    pub fn properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

/// Whether `kafka.properties` may not set `name` once a section is used.
fn decided_by_sections(name: &str) -> bool {
    name == "security.protocol" || name.starts_with("ssl.") || name.starts_with("sasl.")
}

/// The librdkafka settings of the sections.
fn section_settings(
    tls: Option<&TlsConfig>,
    sasl: Option<&SaslConfig>,
) -> Result<Vec<(&'static str, String)>, SecurityError> {
    let Some(tls) = tls else { return Err(SecurityError::SaslWithoutTls) };
    let protocol = if sasl.is_some() { "SASL_SSL" } else { "SSL" };
    let mut settings = vec![("security.protocol", protocol.to_owned())];
    match &tls.ca_file {
        Some(path) => {
            readable("ca_file", path)?;
            settings.push(("ssl.ca.location", path_text(path)));
        }
        // librdkafka then looks in the usual places of the system's trusted authorities.
        None => settings.push(("ssl.ca.location", "probe".to_owned())),
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            readable("cert_file", cert)?;
            secret_file::read_private(key).map_err(SecurityError::KeyFile)?;
            settings.push(("ssl.certificate.location", path_text(cert)));
            settings.push(("ssl.key.location", path_text(key)));
        }
        (None, None) => {}
        _ => return Err(SecurityError::HalfAPair),
    }
    let identification = if tls.verify_hostname { "https" } else { "none" };
    settings.push(("ssl.endpoint.identification.algorithm", identification.to_owned()));
    if let Some(sasl) = sasl {
        if sasl.username.is_empty() {
            return Err(SecurityError::NoUsername);
        }
        settings.push(("sasl.mechanisms", sasl.mechanism.name().to_owned()));
        settings.push(("sasl.username", sasl.username.clone()));
        settings.push(("sasl.password", password(sasl)?));
    }
    Ok(settings)
}

/// The SASL password from its one source, without the line end a file usually has.
fn password(sasl: &SaslConfig) -> Result<String, SecurityError> {
    let text = match (&sasl.password_file, &sasl.password_env) {
        (Some(path), None) => {
            let text = secret_file::read_private(path).map_err(SecurityError::PasswordFile)?;
            let line = text.trim_end_matches(['\n', '\r']).to_owned();
            if line.is_empty() {
                return Err(SecurityError::PasswordEmpty(path.clone()));
            }
            line
        }
        (None, Some(name)) => match std::env::var(name) {
            Ok(value) if !value.is_empty() => value,
            _ => return Err(SecurityError::PasswordEnvUnset(name.clone())),
        },
        _ => return Err(SecurityError::PasswordSource),
    };
    Ok(text)
}

fn readable(setting: &'static str, path: &Path) -> Result<(), SecurityError> {
    std::fs::File::open(path).map(drop).map_err(|source| SecurityError::Unreadable {
        setting,
        path: path.to_owned(),
        source,
    })
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SaslMechanism;
    use std::os::unix::fs::PermissionsExt;

    fn private_file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    fn scram(password_file: Option<PathBuf>, password_env: Option<String>) -> SaslConfig {
        SaslConfig { mechanism: SaslMechanism::ScramSha512, username: "node1".into(), password_file, password_env }
    }

    fn resolve(tls: Option<TlsConfig>, sasl: Option<SaslConfig>) -> Result<Vec<(String, String)>, SecurityError> {
        let kafka = KafkaConfig { tls, sasl, ..KafkaConfig::default() };
        Connection::new(&kafka).map(|c| c.properties().map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
    }

    fn value<'a>(properties: &'a [(String, String)], name: &str) -> Option<&'a str> {
        properties.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn scram_over_tls_sets_the_protocol_the_mechanism_and_the_password_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca = private_file(dir.path(), "ca.pem", "CA");
        let secret = private_file(dir.path(), "password", "s3cret\n");
        let tls = TlsConfig { ca_file: Some(ca.clone()), ..TlsConfig::default() };
        let properties = resolve(Some(tls), Some(scram(Some(secret), None))).unwrap();
        assert_eq!(value(&properties, "security.protocol"), Some("SASL_SSL"));
        assert_eq!(value(&properties, "sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(value(&properties, "sasl.username"), Some("node1"));
        assert_eq!(value(&properties, "sasl.password"), Some("s3cret"), "the line end is not part of it");
        assert_eq!(value(&properties, "ssl.ca.location"), ca.to_str());
        assert_eq!(value(&properties, "ssl.endpoint.identification.algorithm"), Some("https"));
        let kafka = KafkaConfig { tls: Some(TlsConfig::default()), ..KafkaConfig::default() };
        let shown = format!("{:?}", Connection::new(&kafka).unwrap());
        assert!(!shown.contains("probe") && shown.contains("ssl.ca.location"), "names only: {shown}");
    }

    #[test]
    fn mutual_tls_needs_both_halves_and_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let cert = private_file(dir.path(), "node.pem", "CERT");
        let key = private_file(dir.path(), "node.key", "KEY");
        let tls = |cert_file: Option<PathBuf>, key_file: Option<PathBuf>| TlsConfig {
            cert_file,
            key_file,
            verify_hostname: false,
            ..TlsConfig::default()
        };
        let properties = resolve(Some(tls(Some(cert.clone()), Some(key.clone()))), None).unwrap();
        assert_eq!(value(&properties, "security.protocol"), Some("SSL"));
        assert_eq!(value(&properties, "ssl.key.location"), key.to_str());
        assert_eq!(value(&properties, "ssl.ca.location"), Some("probe"), "the system's authorities");
        assert_eq!(value(&properties, "ssl.endpoint.identification.algorithm"), Some("none"));
        assert!(matches!(resolve(Some(tls(Some(cert.clone()), None)), None), Err(SecurityError::HalfAPair)));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = resolve(Some(tls(Some(cert), Some(key))), None).unwrap_err();
        assert!(err.to_string().starts_with("kafka.tls.key_file:") && err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn each_bad_setting_is_named_and_no_secret_is_repeated() {
        let dir = tempfile::tempdir().unwrap();
        let secret = private_file(dir.path(), "password", "s3cret");
        let tls = || Some(TlsConfig::default());
        let refusals = [
            resolve(None, Some(scram(Some(secret.clone()), None))).unwrap_err(),
            resolve(tls(), Some(scram(None, None))).unwrap_err(),
            resolve(tls(), Some(scram(Some(secret.clone()), Some("X".into())))).unwrap_err(),
            resolve(tls(), Some(scram(None, Some("KAFKACHAIN_TEST_UNSET_PASSWORD".into())))).unwrap_err(),
            resolve(tls(), Some(scram(Some(dir.path().join("missing")), None))).unwrap_err(),
            resolve(tls(), Some(scram(Some(private_file(dir.path(), "empty", "\n")), None))).unwrap_err(),
            resolve(Some(TlsConfig { ca_file: Some(dir.path().join("nope.pem")), ..TlsConfig::default() }), None)
                .unwrap_err(),
        ];
        let expected = [
            "kafka.sasl needs kafka.tls",
            "kafka.sasl: set exactly one",
            "kafka.sasl: set exactly one",
            "kafka.sasl.password_env: the environment variable KAFKACHAIN_TEST_UNSET_PASSWORD",
            "kafka.sasl.password_file: reading",
            "kafka.sasl.password_file:",
            "kafka.tls.ca_file: reading",
        ];
        for (err, start) in refusals.iter().zip(expected) {
            assert!(err.to_string().starts_with(start), "{err} should start with {start}");
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = resolve(tls(), Some(scram(Some(secret), None))).unwrap_err();
        assert!(matches!(err, SecurityError::PasswordFile(SecretFileError::TooOpen { .. })), "{err}");
    }

    #[test]
    fn raw_properties_the_sections_decide_are_refused_and_others_pass() {
        let mut kafka = KafkaConfig { tls: Some(TlsConfig::default()), ..KafkaConfig::default() };
        kafka.properties.insert("compression.type".into(), "zstd".into());
        assert!(Connection::new(&kafka).is_ok());
        for name in ["security.protocol", "ssl.ca.location", "sasl.mechanisms"] {
            let mut conflicting = kafka.clone();
            conflicting.properties.insert(name.into(), "x".into());
            assert!(matches!(Connection::new(&conflicting), Err(SecurityError::Conflict(n)) if n == name));
        }
        // Without the sections, raw properties are the escape hatch (OAUTHBEARER, ...).
        let mut raw = KafkaConfig::default();
        raw.properties.insert("security.protocol".into(), "SASL_SSL".into());
        let connection = Connection::new(&raw).unwrap();
        assert_eq!(connection.properties().collect::<Vec<_>>(), vec![("security.protocol", "SASL_SSL")]);
    }
}
