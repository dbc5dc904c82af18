//! The ledger topic, `{prefix}.ledger`: one partition (one order), written only through Kafka
//! transactions, so a consumer reading with `read_committed` sees each round of events whole or
//! not at all. A producer registers its `transactional.id` at start, which fences any earlier
//! producer with the same id and aborts what it left open; where it resumes is read from the
//! topic itself, after the last committed event.

use super::client::{base_config, NodeContext};
use super::connection::Connection;
use super::health::BrokerHealth;
use super::topics::node_topic;
use super::KafkaError;
use crate::stream::LedgerEvent;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a transactional call (registering, committing, aborting) may take.
const TRANSACTION_CALL: Duration = Duration::from_secs(30);
/// How long reading the topic's last committed event may take.
const READ_LAST: Duration = Duration::from_secs(30);
/// Records read back from the end of the topic in the first look for its last event; each
/// further look reads four times as many.
const FIRST_LOOK: i64 = 64;

/// Why the ledger topic could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Another producer registered the same `transactional.id`: it publishes now, this one must
    /// not.
    #[error("another publisher registered the transactional id {0}; this node stops publishing the ledger")]
    Fenced(String),
    /// A round failed and was aborted, or its outcome is unknown: the publisher starts over
    /// from what the topic holds.
    #[error("publishing to the ledger topic failed: {0}")]
    Failed(#[from] KafkaError),
    /// The producer stopped for good on an error librdkafka calls fatal (a principal without
    /// the right to its transactional id, say).
    #[error("the ledger producer stopped for good: {code:?}: {reason}")]
    Stopped {
        /// librdkafka's code.
        code: RDKafkaErrorCode,
        /// Its reason.
        reason: String,
    },
    /// The topic holds a record that is not a ledger event: someone else writes to it.
    #[error(
        "offset {offset} of the ledger topic is not a ledger event ({detail}): only the publisher may write there"
    )]
    NotAnEvent {
        /// Where it is.
        offset: i64,
        /// What the JSON parser said.
        detail: String,
    },
    /// An event could not be written as JSON.
    #[error("an event could not be written as JSON: {0}")]
    Encoding(#[from] serde_json::Error),
    /// The ledger topic is unusable: it has more than one partition, or cannot be created.
    #[error("the ledger topic {topic}: {problem}")]
    Topic {
        /// The topic.
        topic: String,
        /// What is wrong.
        problem: String,
    },
}

/// An event as the ledger topic holds it: keyed by its block's hash, as JSON.
#[derive(Clone, Debug)]
pub struct EncodedEvent {
    /// The block hash, hex.
    pub key: String,
    /// The event's JSON.
    pub json: Vec<u8>,
}

impl EncodedEvent {
    /// `event` as the topic holds it.
    pub fn new(event: &LedgerEvent) -> Result<Self, serde_json::Error> {
        Ok(Self { key: event.hash().to_string(), json: serde_json::to_vec(event)? })
    }
}

/// The transactional producer of the ledger topic.
pub struct LedgerProducer {
    producer: FutureProducer<NodeContext>,
    topic: String,
    transactional_id: String,
}

impl LedgerProducer {
    /// A producer for `topic` registered as `transactional_id`, which fences an earlier producer
    /// with it and aborts what that one left open. Blocks the calling thread while registering.
    pub fn register(
        connection: &Connection,
        topic: &str,
        transactional_id: &str,
        client_id: &str,
        health: Arc<BrokerHealth>,
    ) -> Result<Self, LedgerError> {
        let producer: FutureProducer<NodeContext> = base_config(connection, client_id)
            .set("transactional.id", transactional_id)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("transaction.timeout.ms", "60000")
            .set("message.timeout.ms", "55000")
            .set("message.max.bytes", super::topics::MAX_MESSAGE_BYTES.to_string())
            .create_with_context(NodeContext::new(health))
            .map_err(KafkaError::during("creating the ledger producer"))?;
        let this = Self { producer, topic: topic.to_owned(), transactional_id: transactional_id.to_owned() };
        this.producer
            .init_transactions(TRANSACTION_CALL)
            .map_err(|e| this.classify(e, "registering the transactional id"))?;
        Ok(this)
    }

    /// Publishes `events` as one Kafka transaction, keyed by block hash, in order; returns once
    /// it is committed. On an error the transaction is aborted when it can be, and the caller
    /// learns where the stream stands by reading the topic again. Blocks the calling thread.
    pub fn publish(&self, events: &[EncodedEvent]) -> Result<(), LedgerError> {
        self.producer.begin_transaction().map_err(|e| self.classify(e, "beginning a transaction"))?;
        let sent = events.iter().try_for_each(|event| self.send(event));
        let committed = sent.and_then(|()| {
            self.producer.commit_transaction(TRANSACTION_CALL).map_err(|e| self.classify(e, "committing"))
        });
        if let Err(LedgerError::Failed(_)) = &committed {
            // Aborting what may be open: whatever it answers, the topic says what was committed.
            let _ = self.producer.abort_transaction(TRANSACTION_CALL);
        }
        committed
    }

    fn send(&self, event: &EncodedEvent) -> Result<(), LedgerError> {
        let mut record = FutureRecord::to(&self.topic).key(&event.key).payload(&event.json);
        loop {
            match self.producer.send_result(record) {
                // The delivery is awaited by the commit, which fails if any message failed.
                Ok(_delivery) => return Ok(()),
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(self.classify(e, "queueing an event")),
            }
        }
    }

    /// Sorts a failure: fenced, fatal, or one the publisher starts over from.
    fn classify(&self, error: RdError, action: &'static str) -> LedgerError {
        let fenced = |code| {
            matches!(
                code,
                RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch
            )
        };
        let fatal = self.producer.client().fatal_error();
        if fatal.as_ref().is_some_and(|(code, _)| fenced(*code)) || error.rdkafka_error_code().is_some_and(fenced) {
            return LedgerError::Fenced(self.transactional_id.clone());
        }
        if let Some((code, reason)) = fatal {
            return LedgerError::Stopped { code, reason };
        }
        match error {
            RdError::Transaction(e) if e.is_fatal() => LedgerError::Stopped { code: e.code(), reason: e.to_string() },
            error => LedgerError::Failed(KafkaError { action, source: error }),
        }
    }
}

/// The last event committed to `topic`, read with `read_committed` (so an open or aborted
/// transaction is never taken for published), or `None` while the topic holds none.
pub fn last_committed_event(
    connection: &Connection,
    topic: &str,
    client_id: &str,
    health: Arc<BrokerHealth>,
) -> Result<Option<LedgerEvent>, LedgerError> {
    let consumer: BaseConsumer<NodeContext> = base_config(connection, client_id)
        // librdkafka assigns only with a group; the reader never commits to it.
        .set("group.id", format!("kafkachain-{client_id}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create_with_context(NodeContext::new(health))
        .map_err(KafkaError::during("creating the ledger reader"))?;
    let (low, high) = consumer
        .fetch_watermarks(topic, 0, READ_LAST)
        .map_err(KafkaError::during("reading the ledger topic's ends"))?;
    let deadline = Instant::now() + READ_LAST;
    let mut look = FIRST_LOOK;
    let mut from = high;
    while from > low {
        // Each look reads from further back to the end; the last event read is the one.
        from = high.saturating_sub(look).max(low);
        look = look.saturating_mul(4);
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Offset(from))
            .map_err(KafkaError::during("pointing the ledger reader"))?;
        consumer.assign(&assignment).map_err(KafkaError::during("pointing the ledger reader"))?;
        let mut last = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LedgerError::Failed(KafkaError {
                    action: "reading the ledger topic's last event",
                    source: RdError::MessageConsumption(RDKafkaErrorCode::OperationTimedOut),
                }));
            }
            match consumer.poll(left.min(Duration::from_millis(500))) {
                Some(Ok(message)) => {
                    let event = serde_json::from_slice::<LedgerEvent>(message.payload().unwrap_or_default())
                        .map_err(|e| LedgerError::NotAnEvent { offset: message.offset(), detail: e.to_string() })?;
                    last = Some(event);
                }
                // The end a `read_committed` reader may reach: past it nothing is committed.
                Some(Err(RdError::PartitionEOF(_))) => break,
                Some(Err(e)) => {
                    return Err(LedgerError::Failed(KafkaError { action: "reading the ledger topic", source: e }))
                }
                None => {}
            }
        }
        if last.is_some() {
            return Ok(last);
        }
    }
    Ok(None)
}

/// Creates the ledger topic when missing: one partition (the stream's one order), infinite
/// retention (a consumer may replay from the start), replication and `min.insync.replicas` from
/// config. A topic that exists with several partitions is refused.
pub async fn ensure_ledger_topic(
    connection: &Connection,
    topic: &str,
    client_id: &str,
    health: Arc<BrokerHealth>,
) -> Result<(), LedgerError> {
    let admin: AdminClient<NodeContext> = base_config(connection, client_id)
        .create_with_context(NodeContext::new(health))
        .map_err(KafkaError::during("creating the ledger's admin client"))?;
    let refused = |problem: String| LedgerError::Topic { topic: topic.to_owned(), problem };
    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), READ_LAST)
        .map_err(KafkaError::during("reading the ledger topic's metadata"))?;
    let partitions = metadata.topics().first().filter(|t| t.error().is_none()).map_or(0, |t| t.partitions().len());
    match partitions {
        1 => return Ok(()),
        0 => {}
        more => return Err(refused(format!("it has {more} partitions; the ledger needs exactly one, for one order"))),
    }
    let min_isr = connection.config().min_insync_replicas.to_string();
    let new = node_topic(topic, 1, connection.config(), &min_isr);
    let options = AdminOptions::new().operation_timeout(Some(READ_LAST));
    let results =
        admin.create_topics([&new], &options).await.map_err(KafkaError::during("creating the ledger topic"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(refused(format!(
                    "creating it failed ({code}); on a cluster with ACLs the operator creates it"
                )))
            }
        }
    }
    Ok(())
}
