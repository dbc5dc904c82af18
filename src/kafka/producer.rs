//! Publishing transactions and blocks with `acks=all` and idempotence: a publish returns only
//! once the broker has the message on every in-sync replica.

use super::client::{base_config, is_connection_failure, NodeContext};
use super::connection::Connection;
use super::health::BrokerHealth;
use super::topics::Topics;
use super::wire::encode_message;
use super::KafkaError;
use crate::core::block::Block;
use crate::core::transaction::Transfer;
use crate::store::TopicPartition;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use std::sync::Arc;
use std::time::Duration;

/// Why a publish was not acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("Kafka did not acknowledge the {what}: {source}{}", stopped.as_ref().map(|why| format!("; the producer has stopped for good: {why}")).unwrap_or_default())]
pub struct PublishError {
    /// What was being published.
    pub what: &'static str,
    /// librdkafka's error (broker unreachable, timeout, not enough in-sync replicas, ...).
    pub source: rdkafka::error::KafkaError,
    /// The fatal error that stopped the producer, when one did: a principal without the right
    /// to write (ClusterAuthorizationFailed for an idempotent producer), a fenced producer. Every
    /// publish fails after it, and the error the publish itself got (a purged queue) says
    /// nothing of why.
    pub stopped: Option<String>,
}

/// Where an acknowledged message landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acked {
    /// The partition it landed in.
    pub position: TopicPartition,
    /// Offset of the message.
    pub offset: u64,
}

/// The node's producer for both topics.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer<NodeContext>,
    topics: Topics,
    health: Arc<BrokerHealth>,
}

impl Publisher {
    /// A producer with `acks=all`, idempotence, and the configured delivery timeout.
    pub fn new(
        connection: &Connection,
        topics: Topics,
        client_id: &str,
        health: Arc<BrokerHealth>,
    ) -> Result<Self, KafkaError> {
        let producer = base_config(connection, client_id)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "2")
            .set("message.max.bytes", super::topics::MAX_MESSAGE_BYTES.to_string())
            .set("message.timeout.ms", connection.config().produce_timeout_ms.to_string())
            .create_with_context(NodeContext::new(health.clone()))
            .map_err(KafkaError::during("creating the producer"))?;
        Ok(Self { producer, topics, health })
    }

    /// Publishes a transfer on the transactions topic, keyed by its sender, so one sender's
    /// transfers stay in nonce order on one partition.
    pub async fn publish_transaction(&self, tx: &Transfer) -> Result<Acked, PublishError> {
        let payload = encode_message(tx);
        let record = FutureRecord::to(&self.topics.transactions).key(&tx.sender.as_bytes()[..]).payload(&payload);
        self.send(record, &self.topics.transactions, "transaction").await
    }

    /// Publishes a block on the blocks topic.
    pub async fn publish_block(&self, block: &Block) -> Result<Acked, PublishError> {
        let payload = encode_message(block);
        let record = FutureRecord::<(), _>::to(&self.topics.blocks).payload(&payload);
        self.send(record, &self.topics.blocks, "block").await
    }

    /// Queues a block without waiting for its acknowledgement, for bulk loading by the
    /// benchmarks; [`Publisher::flush`] waits until every queued message is acknowledged.
    pub fn enqueue_block(&self, block: &Block) -> Result<(), PublishError> {
        let payload = encode_message(block);
        let mut record = FutureRecord::<(), _>::to(&self.topics.blocks).payload(&payload);
        loop {
            match self.producer.send_result(record) {
                // Dropping the delivery future is fine: flush reports what was not delivered.
                Ok(_delivery) => return Ok(()),
                Err((rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((source, _)) => return Err(self.error("block", source)),
            }
        }
    }

    /// Waits until every queued message is acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        self.producer.flush(timeout).map_err(|source| self.error("queued messages", source))
    }

    async fn send<K: rdkafka::message::ToBytes + ?Sized>(
        &self,
        record: FutureRecord<'_, K, Vec<u8>>,
        topic: &str,
        what: &'static str,
    ) -> Result<Acked, PublishError> {
        match self.producer.send(record, Timeout::After(Duration::from_secs(1))).await {
            Ok(delivery) => {
                self.health.success();
                Ok(Acked {
                    position: TopicPartition::new(topic, delivery.partition),
                    offset: delivery.offset.max(0) as u64,
                })
            }
            Err((source, _)) => {
                if is_connection_failure(&source) {
                    self.health.failure(&source.to_string());
                }
                Err(self.error(what, source))
            }
        }
    }

    fn error(&self, what: &'static str, source: rdkafka::error::KafkaError) -> PublishError {
        let stopped = self.producer.client().fatal_error().map(|(code, reason)| format!("{code:?}: {reason}"));
        PublishError { what, source, stopped }
    }
}
