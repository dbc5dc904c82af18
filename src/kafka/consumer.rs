//! Reading both topics from exactly the offsets the store holds. The consumer is assigned its
//! partitions (no group rebalancing) and `auto.offset.reset=error`: if the broker no longer has
//! an offset the node needs, it says so instead of silently starting over.

use super::client::{base_config, is_connection_failure, NodeContext};
use super::connection::Connection;
use super::health::BrokerHealth;
use super::topics::Topics;
use super::KafkaError;
use crate::store::{Positions, TopicPartition};
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::BorrowedMessage;
use rdkafka::message::{Message, Timestamp};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which topic a message came from, and so what its payload should hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Payload {
    /// A block message.
    Block,
    /// A transaction message.
    Transaction,
}

/// One message read from the log, owned.
#[derive(Clone, Debug)]
pub struct LogMessage {
    /// Its topic.
    pub kind: Payload,
    /// Its offset in its partition.
    pub offset: u64,
    /// Its value (empty when the message had none).
    pub value: Vec<u8>,
    /// The partition it was read from.
    pub position: TopicPartition,
    /// When the producer created it (Kafka's message timestamp), ms since the Unix epoch.
    pub created_ms: Option<i64>,
    /// When the broker appended it, if the topic stamps messages with the broker's clock
    /// (`LogAppendTime`): the only time a block's timestamp may be checked against.
    pub append_ms: Option<u64>,
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The broker no longer holds an offset the node must read from (retention removed it).
    #[error("the broker no longer has the stored offset (no offset to reset to)")]
    OffsetLost,
    /// The brokers cannot be reached (already reported to [`BrokerHealth`]); reading goes on.
    #[error("the Kafka brokers are unreachable")]
    Unreachable,
    /// Another transient client error; reading goes on.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

/// Where one partition the node reads ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionEnd {
    /// The partition.
    pub position: TopicPartition,
    /// The offset after its last message (the high watermark).
    pub end: u64,
}

/// Asks the brokers where each partition the consumer reads ends. It shares the consumer's
/// client (and its connections), and may be used on another thread than the one reading.
pub struct EndOffsetQuery {
    consumer: Arc<BaseConsumer<NodeContext>>,
    topics: Topics,
    tx_partitions: Arc<AtomicI32>,
    health: Arc<BrokerHealth>,
}

impl EndOffsetQuery {
    /// The end of every partition, all asked within `budget` (one request per partition). Asks
    /// first how many partitions the transactions topic has now: partitions added while the
    /// node runs are counted here, and the reader assigns them ([`LogReader::assign_added_partitions`]).
    pub fn fetch(&self, budget: Duration) -> Result<Vec<PartitionEnd>, KafkaError> {
        let deadline = Instant::now() + budget;
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topics.transactions), budget)
            .map_err(KafkaError::during("reading the transactions topic's partitions"))?;
        let now = metadata.topics().first().map_or(0, |topic| topic.partitions().len() as i32);
        self.tx_partitions.fetch_max(now, Ordering::SeqCst);
        self.topics
            .partitions(self.tx_partitions.load(Ordering::SeqCst))
            .iter()
            .map(|position| {
                let left = deadline.saturating_duration_since(Instant::now());
                let (_, high) = self
                    .consumer
                    .fetch_watermarks(position.topic(), position.partition(), left)
                    .map_err(KafkaError::during("reading the partitions' ends"))?;
                Ok(PartitionEnd { position: position.clone(), end: high.max(0) as u64 })
            })
            .collect()
    }

    /// Whether the brokers answered since the last failure: while they do not, asking only
    /// waits out the budget.
    pub fn brokers_reachable(&self) -> bool {
        self.health.is_reachable()
    }
}

/// A consumer assigned to every partition of both topics. The blocks partition has a queue of
/// its own, so blocks can be read ahead of a backlog of transactions.
pub struct LogReader {
    consumer: Arc<BaseConsumer<NodeContext>>,
    blocks: PartitionQueue<NodeContext>,
    topics: Topics,
    /// Transactions partitions assigned.
    tx_partitions: AtomicI32,
    /// Transactions partitions known to exist (raised by [`EndOffsetQuery::fetch`]).
    tx_partitions_seen: Arc<AtomicI32>,
    health: Arc<BrokerHealth>,
}

impl LogReader {
    /// Assigns the consumer at the `stored` next offset of each partition, or at the beginning
    /// of a partition never read.
    pub fn open(
        connection: &Connection,
        topics: Topics,
        tx_partitions: i32,
        node_id: &str,
        stored: &Positions,
        health: Arc<BrokerHealth>,
    ) -> Result<Self, KafkaError> {
        let consumer: BaseConsumer<NodeContext> = base_config(connection, node_id)
            .set("group.id", format!("kafkachain-{node_id}"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "error")
            // Consensus: every node must read exactly the same messages. `read_committed`
            // (librdkafka's default) holds a reader at the first message of any transaction left
            // open, for up to `transaction.max.timeout.ms` (15 min): one client with write access
            // could stall every node, and a node set otherwise would read blocks the others skip.
            // Every message in the log counts, whether its transaction commits, aborts or never
            // ends; pinned after the user's properties.
            .set("isolation.level", "read_uncommitted")
            .set("fetch.wait.max.ms", "10")
            // Bounds the prefetch buffer of each partition, so catching up on a long topic does
            // not grow memory: 1 MiB took the memory after syncing 100 k blocks from 62-79 MiB
            // to 55-57 MiB (8 MiB before); 4 MiB since b76f377 (about 40,000 transactions), so the
            // applier's batches of a cold sync stay full.
            .set("queued.max.messages.kbytes", "4096")
            // How long librdkafka waits to fetch again once that buffer was full (1 s by
            // default): a node catching up drains 4 MiB in well under a second and then sat idle
            // for the rest of it, so a cold sync ran at half a core.
            .set("fetch.queue.backoff.ms", "10")
            .set("enable.partition.eof", "false")
            // The node never joins the group (it assigns its partitions), so this only bounds how
            // long an offset commit waits for an unreachable coordinator, and with it how long
            // closing the consumer takes when the broker is away (45 s by default: measured as
            // the whole of a 40-45 s shutdown with the broker down).
            .set("session.timeout.ms", "3000")
            .create_with_context(NodeContext::new(health.clone()))
            .map_err(KafkaError::during("creating the consumer"))?;
        let mut assignment = TopicPartitionList::new();
        for position in topics.partitions(tx_partitions) {
            let offset = match stored.get(&position) {
                Some(next) => Offset::Offset(*next as i64),
                None => Offset::Beginning,
            };
            assignment
                .add_partition_offset(position.topic(), position.partition(), offset)
                .map_err(KafkaError::during("building the assignment"))?;
        }
        consumer.assign(&assignment).map_err(KafkaError::during("assigning partitions"))?;
        let consumer = Arc::new(consumer);
        let blocks = split_blocks_queue(&consumer, &topics)?;
        Ok(Self {
            consumer,
            blocks,
            topics,
            tx_partitions: AtomicI32::new(tx_partitions),
            tx_partitions_seen: Arc::new(AtomicI32::new(tx_partitions)),
            health,
        })
    }

    /// The next block message, waiting at most `timeout`.
    pub fn poll_blocks(&self, timeout: Duration) -> Option<Result<LogMessage, ReadError>> {
        Some(self.convert(self.blocks.poll(timeout)?))
    }

    /// The next other message (transactions; a block fetched before the queues were split),
    /// waiting at most `timeout`. Also serves the client's callbacks, so it must be called often.
    pub fn poll(&self, timeout: Duration) -> Option<Result<LogMessage, ReadError>> {
        Some(self.convert(self.consumer.poll(timeout)?))
    }

    fn convert(&self, result: Result<BorrowedMessage<'_>, RdError>) -> Result<LogMessage, ReadError> {
        match result {
            Ok(message) => {
                self.health.success();
                let kind = if message.topic() == self.topics.blocks { Payload::Block } else { Payload::Transaction };
                Ok(LogMessage {
                    kind,
                    // A message read from a partition has its place in it, never a negative one.
                    offset: u64::try_from(message.offset()).unwrap_or_default(),
                    value: message.payload().unwrap_or_default().to_vec(),
                    position: TopicPartition::new(message.topic(), message.partition()),
                    created_ms: message.timestamp().to_millis(),
                    append_ms: match message.timestamp() {
                        Timestamp::LogAppendTime(ms) => Some(ms.max(0) as u64),
                        Timestamp::CreateTime(_) | Timestamp::NotAvailable => None,
                    },
                })
            }
            Err(RdError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset)) => Err(ReadError::OffsetLost),
            Err(e) if is_connection_failure(&e) => {
                self.health.failure(&e.to_string());
                Err(ReadError::Unreachable)
            }
            Err(e) => Err(ReadError::Kafka(KafkaError { action: "reading messages", source: e })),
        }
    }

    /// A handle that asks where the partitions this reader reads end, for consumer lag.
    pub fn end_offsets(&self) -> EndOffsetQuery {
        EndOffsetQuery {
            consumer: self.consumer.clone(),
            topics: self.topics.clone(),
            tx_partitions: self.tx_partitions_seen.clone(),
            health: self.health.clone(),
        }
    }

    /// Starts reading, from their beginning, the transactions partitions added since they were
    /// last assigned (someone raised the topic's partition count while the node runs); returns
    /// them. Without this they would be read only after a restart, and transfers keyed to them
    /// would wait unseen.
    pub fn assign_added_partitions(&self) -> Result<Vec<TopicPartition>, KafkaError> {
        let (assigned, seen) =
            (self.tx_partitions.load(Ordering::SeqCst), self.tx_partitions_seen.load(Ordering::SeqCst));
        if seen <= assigned {
            return Ok(Vec::new());
        }
        let added: Vec<TopicPartition> =
            (assigned..seen).map(|p| TopicPartition::new(self.topics.transactions.clone(), p)).collect();
        let mut assignment = TopicPartitionList::new();
        for position in &added {
            // The beginning is asked of the partition's leader first, and the partition assigned
            // at that offset: a partition just added may not answer yet, and an assignment from
            // the logical beginning made a few seconds after the partitions appeared was once
            // seen never to start fetching (a fresh-clone CI run). Until every added partition
            // answers, none is assigned; the next round asks again.
            let (low, _) = self
                .consumer
                .fetch_watermarks(position.topic(), position.partition(), Duration::from_secs(2))
                .map_err(KafkaError::during("asking where an added partition begins"))?;
            assignment
                .add_partition_offset(position.topic(), position.partition(), Offset::Offset(low.max(0)))
                .map_err(KafkaError::during("building the assignment of added partitions"))?;
        }
        self.consumer.incremental_assign(&assignment).map_err(KafkaError::during("assigning added partitions"))?;
        self.tx_partitions.store(seen, Ordering::SeqCst);
        Ok(added)
    }

    /// The one partition of the blocks topic.
    pub fn blocks_partition(&self) -> TopicPartition {
        self.topics.blocks_partition()
    }

    /// The offset after the last message now in the blocks topic. A client that has not yet
    /// learned the partition's leader (a topic just created, a leader moving) asks again until
    /// `timeout` has passed.
    pub fn blocks_high_watermark(&self, timeout: Duration) -> Result<u64, KafkaError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.consumer.fetch_watermarks(&self.topics.blocks, 0, left) {
                Ok((_, high)) => return Ok(high.max(0) as u64),
                Err(e) if is_leader_unknown(&e) && !left.is_zero() => {
                    std::thread::sleep(Duration::from_millis(200).min(left))
                }
                Err(e) => return Err(KafkaError { action: "reading the blocks topic's watermarks", source: e }),
            }
        }
    }

    /// Re-reads the topics after a retention gap: the blocks partition from its earliest offset
    /// still held (blocks the node already has are duplicates), every transactions partition
    /// from its stored offset or the earliest held, whichever is later. Returns the positions it
    /// now reads from, for the store.
    pub fn restart_after_gap(&mut self, stored: &Positions) -> Result<Positions, KafkaError> {
        let timeout = Duration::from_secs(10);
        let mut assignment = TopicPartitionList::new();
        let mut positions = Positions::new();
        for position in self.topics.partitions(self.tx_partitions.load(Ordering::SeqCst)) {
            let (low, _) = self
                .consumer
                .fetch_watermarks(position.topic(), position.partition(), timeout)
                .map_err(KafkaError::during("reading the earliest offsets after a retention gap"))?;
            let low = low.max(0) as u64;
            let next = if position.topic() == self.topics.blocks {
                low
            } else {
                stored.get(&position).copied().unwrap_or(0).max(low)
            };
            assignment
                .add_partition_offset(position.topic(), position.partition(), Offset::Offset(next as i64))
                .map_err(KafkaError::during("building the assignment"))?;
            positions.insert(position, next);
        }
        self.consumer.assign(&assignment).map_err(KafkaError::during("assigning partitions"))?;
        self.blocks = split_blocks_queue(&self.consumer, &self.topics)?;
        Ok(positions)
    }

    /// Whether the brokers answered since the last failure.
    pub fn brokers_reachable(&self) -> bool {
        self.health.is_reachable()
    }

    /// Copies the stored positions to Kafka's group offsets, so standard Kafka tools show this
    /// node's lag. The store stays the source of truth.
    pub fn commit(&self, positions: &Positions) -> Result<(), KafkaError> {
        let mut list = TopicPartitionList::new();
        for (position, next) in positions {
            list.add_partition_offset(position.topic(), position.partition(), Offset::Offset(*next as i64))
                .map_err(KafkaError::during("building the commit"))?;
        }
        self.consumer.commit(&list, CommitMode::Async).map_err(KafkaError::during("committing offsets"))
    }
}

/// Gives the blocks partition a queue of its own, so blocks can be read ahead of transactions.
fn split_blocks_queue(
    consumer: &Arc<BaseConsumer<NodeContext>>,
    topics: &Topics,
) -> Result<PartitionQueue<NodeContext>, KafkaError> {
    consumer.split_partition_queue(&topics.blocks, 0).ok_or_else(|| KafkaError {
        action: "splitting off the blocks partition's queue",
        source: RdError::Subscription(topics.blocks.clone()),
    })
}

/// Whether an offset query failed only because the client does not know the partition's leader
/// yet, which passes on its own.
fn is_leader_unknown(error: &RdError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
        )
    )
}
