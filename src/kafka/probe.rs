//! The node's first exchange with the brokers at start. A login the brokers refuse or a TLS
//! handshake that fails is a fault of the configuration that no retry mends: said at once, in
//! one line naming the setting to look at, instead of a metadata request that times out after
//! 30 s with "broker transport failure". Brokers that do not answer at all are left to the rest of
//! the start, which waits for them.

use super::client::base_config;
use super::connection::Connection;
use crate::sync::lock;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError as RdError;
use rdkafka::types::RDKafkaErrorCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the probe waits for the brokers to answer or to refuse.
pub const PROBE_BUDGET: Duration = Duration::from_secs(8);

/// Why the brokers cannot be used with this configuration. Each names the setting to look at and
/// quotes librdkafka's own words, which never hold the password.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The brokers refused the SASL login.
    #[error("kafka.sasl: the brokers refused the login (a wrong password, or an unknown kafka.sasl.username, or a mechanism the broker does not offer for it); librdkafka: {0}")]
    LoginRefused(String),
    /// The broker's certificate chain is not signed by an authority the node trusts.
    #[error(
        "kafka.tls.ca_file: the broker's certificate is not signed by an authority this node trusts; librdkafka: {0}"
    )]
    Untrusted(String),
    /// The broker's certificate names another host (it verifies once that check is off).
    #[error("kafka.tls.verify_hostname: the broker's certificate is signed by a trusted authority but does not name the host in kafka.brokers (use a name it holds; turning verify_hostname off would let any holder of a certificate from that authority pose as the broker); librdkafka: {0}")]
    HostnameMismatch(String),
    /// The node spoke TLS to a listener that does not.
    #[error("kafka.brokers: the listener does not speak TLS (a plaintext port given to a node with kafka.tls?); librdkafka: {0}")]
    NotTls(String),
    /// The node spoke plaintext to a listener that expects TLS or SASL.
    #[error("kafka.brokers: the listener expects TLS or SASL (set kafka.tls and kafka.sasl, or use the plaintext port); librdkafka: {0}")]
    SecurityExpected(String),
    /// Another TLS failure.
    #[error("kafka.tls: the TLS handshake with the broker failed; librdkafka: {0}")]
    Handshake(String),
}

/// Records the first thing librdkafka reports (as an error event or a connection log line)
/// that retrying cannot mend; shared with the probe, which reads it.
#[derive(Clone, Default)]
struct ProbeContext {
    seen: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    refusal: Option<ProbeError>,
    /// Connections closed by the broker while asking its API versions: what a listener expecting
    /// TLS or SASL does to a plaintext client (once could be a broker restarting).
    closed_at_hello: u32,
}

impl ProbeContext {
    fn observe(&self, code: Option<RDKafkaErrorCode>, text: &str) {
        let mut seen = lock(&self.seen);
        if seen.refusal.is_some() {
            return;
        }
        if text.contains("Disconnected") && text.contains("state APIVERSION_QUERY") {
            seen.closed_at_hello += 1;
            if seen.closed_at_hello >= 2 {
                seen.refusal = Some(ProbeError::SecurityExpected(text.to_owned()));
            }
            return;
        }
        seen.refusal = classify(code, text);
    }

    fn refusal(&self) -> Option<ProbeError> {
        lock(&self.seen).refusal.take()
    }
}

impl ClientContext for ProbeContext {
    /// Connection failures arrive as log lines; the probe reports what they mean, once, instead
    /// of logging them.
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        if facility == "FAIL" {
            self.observe(None, message);
        }
    }

    fn error(&self, error: RdError, reason: &str) {
        self.observe(error.rdkafka_error_code(), reason);
    }
}

impl ConsumerContext for ProbeContext {}

/// What an error event says about the configuration, if anything.
fn classify(code: Option<RDKafkaErrorCode>, reason: &str) -> Option<ProbeError> {
    let text = reason.to_owned();
    let lower = reason.to_ascii_lowercase();
    match code {
        Some(RDKafkaErrorCode::Authentication) => Some(ProbeError::LoginRefused(text)),
        _ if lower.contains("sasl authentication") => Some(ProbeError::LoginRefused(text)),
        _ if lower.contains("hostname mismatch") || lower.contains("does not match") => {
            Some(ProbeError::HostnameMismatch(text))
        }
        _ if lower.contains("certificate verify failed") || lower.contains("unable to get local issuer") => {
            Some(ProbeError::Untrusted(text))
        }
        _ if lower.contains("plaintext broker listener")
            || lower.contains("wrong version number")
            || lower.contains("packet length too long")
            || lower.contains("record layer failure") =>
        {
            Some(ProbeError::NotTls(text))
        }
        _ if lower.contains("incorrect security.protocol") => Some(ProbeError::SecurityExpected(text)),
        Some(RDKafkaErrorCode::SSL) => Some(ProbeError::Handshake(text)),
        _ if lower.contains("ssl handshake failed") => Some(ProbeError::Handshake(text)),
        _ => None,
    }
}

/// Asks the brokers for metadata until they answer, refuse the configuration, or `budget`
/// passes (then the rest of the start deals with brokers that are away). librdkafka words a
/// certificate naming another host like one signed by an unknown authority; when hostname
/// verification is on, a second attempt without it tells the two apart.
pub fn probe(connection: &Connection, client_id: &str, budget: Duration) -> Result<(), ProbeError> {
    let deadline = Instant::now() + budget;
    match attempt(base_config(connection, client_id), deadline) {
        Err(ProbeError::Untrusted(detail)) if connection.config().tls.as_ref().is_some_and(|t| t.verify_hostname) => {
            let mut unverified = base_config(connection, client_id);
            unverified.set("ssl.endpoint.identification.algorithm", "none");
            match attempt(unverified, Instant::now() + Duration::from_secs(2)) {
                Err(ProbeError::Untrusted(_)) => Err(ProbeError::Untrusted(detail)),
                _ => Err(ProbeError::HostnameMismatch(detail)),
            }
        }
        outcome => outcome,
    }
}

/// One client's attempt, until `deadline`.
fn attempt(config: rdkafka::ClientConfig, deadline: Instant) -> Result<(), ProbeError> {
    let context = ProbeContext::default();
    let consumer: BaseConsumer<ProbeContext> = match config.create_with_context(context.clone()) {
        Ok(consumer) => consumer,
        // The clients built next report it with their own context.
        Err(_) => return Ok(()),
    };
    while Instant::now() < deadline {
        // Serves the error events the probe listens for.
        consumer.poll(Duration::ZERO);
        if let Some(refusal) = context.refusal() {
            return Err(refusal);
        }
        if consumer.fetch_metadata(None, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_librdkafka_reports_is_told_apart() {
        let refused = "SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";
        assert!(matches!(classify(Some(RDKafkaErrorCode::Authentication), refused), Some(ProbeError::LoginRefused(_))));
        let untrusted = "ssl://127.0.0.1:9192/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified";
        assert!(matches!(classify(Some(RDKafkaErrorCode::SSL), untrusted), Some(ProbeError::Untrusted(_))));
        let plaintext =
            "ssl://127.0.0.1:9092/bootstrap: SSL handshake failed: error:0A00010B:SSL routines::wrong version number";
        assert!(matches!(classify(Some(RDKafkaErrorCode::SSL), plaintext), Some(ProbeError::NotTls(_))));
        let expected = "127.0.0.1:9192/bootstrap: Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration (connecting to a SSL listener?) or broker version is < 0.10";
        assert!(matches!(
            classify(Some(RDKafkaErrorCode::BrokerTransportFailure), expected),
            Some(ProbeError::SecurityExpected(_))
        ));
        assert!(classify(Some(RDKafkaErrorCode::BrokerTransportFailure), "Connection refused").is_none());
        assert!(classify(Some(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down").is_none());
    }
}
