//! The Kafka transport: the only code that knows topic names, the message envelope and offsets.
//! Blocks travel on `{prefix}.blocks` (one partition: its total order is what makes every node
//! choose forks alike) and transactions on `{prefix}.transactions` (keyed by sender).

mod client;
mod connection;
mod consumer;
mod health;
mod ledger;
mod probe;
mod producer;
mod topic_settings;
mod topics;
pub mod wire;

pub use client::NodeContext;
pub use connection::{Connection, SecurityError};
pub use consumer::{EndOffsetQuery, LogMessage, LogReader, PartitionEnd, Payload, ReadError};
pub use health::BrokerHealth;
pub use ledger::{ensure_ledger_topic, last_committed_event, EncodedEvent, LedgerError, LedgerProducer};
pub use probe::{probe, ProbeError, PROBE_BUDGET};
pub use producer::{Acked, PublishError, Publisher};
pub use topic_settings::{SettingRefused, SettingWarning};
pub use topics::{ensure_topics, TopicError, Topics, TopicsReady};

/// Errors of the Kafka client library, with the context of what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {source}")]
pub struct KafkaError {
    /// What the node was trying to do.
    pub action: &'static str,
    /// librdkafka's error.
    pub source: rdkafka::error::KafkaError,
}

impl KafkaError {
    fn during(action: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> KafkaError {
        move |source| KafkaError { action, source }
    }
}
