//! librdkafka client settings shared by the producer, the consumer and the admin client, and the
//! context through which librdkafka reports to the node's log.

use super::connection::Connection;
use super::health::BrokerHealth;
use crate::logging::LogThrottle;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError as RdError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use std::sync::Arc;
use std::time::Duration;

/// librdkafka's warnings and errors other than lost brokers (which `BrokerHealth` reports once
/// per outage): 20 lines per 10 s at most.
static LIBRDKAFKA_LINES: LogThrottle = LogThrottle::new(20, Duration::from_secs(10));

/// Base settings: brokers, client id and the connection's shared properties (the user's, then
/// TLS and SASL). Each client pins what consensus needs after these.
pub(super) fn base_config(connection: &Connection, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &connection.config().brokers).set("client.id", client_id);
    config.set_log_level(RDKafkaLogLevel::Info);
    for (key, value) in connection.properties() {
        config.set(key, value);
    }
    config
}

/// What every Kafka client of the node reports through. A broker that goes away makes each
/// client log every failed connection attempt (several a second, twice for the producer); those
/// go to [`BrokerHealth`] instead, which logs the loss once, a reminder now and then, and the
/// recovery. Everything else librdkafka says reaches the log at its own level.
#[derive(Clone)]
pub struct NodeContext {
    health: Arc<BrokerHealth>,
}

impl NodeContext {
    /// A context reporting connection trouble to `health`.
    pub fn new(health: Arc<BrokerHealth>) -> Self {
        Self { health }
    }
}

impl ClientContext for NodeContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if is_connection_failure_log(facility, message) {
            self.health.failure(message);
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                if let Some(held_back) = LIBRDKAFKA_LINES.admit() {
                    tracing::error!(target: "librdkafka", held_back, "{facility}: {message}")
                }
            }
            RDKafkaLogLevel::Warning => {
                if let Some(held_back) = LIBRDKAFKA_LINES.admit() {
                    tracing::warn!(target: "librdkafka", held_back, "{facility}: {message}")
                }
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{facility}: {message}"),
        }
    }

    fn error(&self, error: RdError, reason: &str) {
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::PartitionEOF)) {
            // The end of a partition, which a reader that asked to be told of it (the ledger's)
            // also gets as a message: no error.
            return;
        }
        if is_connection_failure(&error) {
            self.health.failure(reason);
        } else if let Some(held_back) = LIBRDKAFKA_LINES.admit() {
            tracing::error!(target: "librdkafka", held_back, "{error}: {reason}");
        }
    }
}

impl ConsumerContext for NodeContext {}

/// Whether `error` only says that brokers cannot be reached (which passes when they are back).
pub(super) fn is_connection_failure(error: &RdError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerNotAvailable
                | RDKafkaErrorCode::Resolve
        )
    )
}

/// Whether a librdkafka log line reports a failed or lost broker connection.
fn is_connection_failure_log(facility: &str, message: &str) -> bool {
    facility == "FAIL" || message.contains("Connection refused") || message.contains("brokers are down")
}
