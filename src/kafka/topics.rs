//! Topic names and their creation with the settings the design requires.

use super::client::{base_config, NodeContext};
use super::connection::Connection;
use super::health::BrokerHealth;
use super::topic_settings::{self, SettingRefused, SettingWarning, TopicSettings};
use super::KafkaError;
use crate::config::KafkaConfig;
use crate::store::TopicPartition;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Largest message the topics accept: a full block must fit (the decoder's bound is the same).
pub(super) const MAX_MESSAGE_BYTES: usize = crate::core::encoding::MAX_DECODED_BYTES;
const MAX_MESSAGE_BYTES_TEXT: &str = "16777216";

/// The topics of a network: the two the nodes agree through, and the ledger stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// `{prefix}.blocks`, one partition.
    pub blocks: String,
    /// `{prefix}.transactions`, keyed by sender.
    pub transactions: String,
    /// `{prefix}.ledger`, one partition: the main chain's history for downstream systems,
    /// written only by a node that publishes the stream, never read by nodes.
    pub ledger: String,
}

impl Topics {
    /// Topic names for `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            blocks: format!("{prefix}.blocks"),
            transactions: format!("{prefix}.transactions"),
            ledger: format!("{prefix}.ledger"),
        }
    }

    /// The one partition of the blocks topic.
    pub fn blocks_partition(&self) -> TopicPartition {
        TopicPartition::new(self.blocks.clone(), 0)
    }

    /// Every partition a node reads: the blocks partition first, then `tx_partitions`
    /// partitions of the transactions topic.
    pub fn partitions(&self, tx_partitions: i32) -> Vec<TopicPartition> {
        std::iter::once(self.blocks_partition())
            .chain((0..tx_partitions).map(|p| TopicPartition::new(self.transactions.clone(), p)))
            .collect()
    }
}

/// Why the topics are unusable.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The client failed.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// The broker refused to create a topic.
    #[error("creating topic {topic}: {code}")]
    Create {
        /// The topic.
        topic: String,
        /// The broker's answer.
        code: RDKafkaErrorCode,
    },
    /// The blocks topic exists with several partitions, which would break the total order.
    #[error("topic {topic} has {partitions} partitions; the blocks topic must have exactly one")]
    BlocksPartitioned {
        /// The blocks topic.
        topic: String,
        /// How many partitions it has.
        partitions: usize,
    },
    /// A topic is missing from the broker's metadata after creation.
    #[error("topic {0} is not in the broker's metadata")]
    Missing(String),
    /// A partition of the topic has no leader yet (just created, or its brokers are down).
    #[error("a partition of topic {0} has no leader")]
    Leaderless(String),
    /// The blocks topic stamps messages with the producer's time: block timestamps are bounded
    /// by the broker's append time, which every node must read alike.
    #[error("topic {topic} has message.timestamp.type={found}; the blocks topic needs LogAppendTime (kafka-configs --alter --add-config message.timestamp.type=LogAppendTime)")]
    TimestampType {
        /// The blocks topic.
        topic: String,
        /// The timestamp type it has.
        found: String,
    },
    /// A setting that would lose or refuse blocks.
    #[error(transparent)]
    Setting(#[from] SettingRefused),
}

impl TopicError {
    /// Whether waiting may mend it: brokers that do not answer yet, or a cluster still electing
    /// its controller or leaders. Settings, authorization and layout errors stay as they are.
    pub fn is_transient(&self) -> bool {
        match self {
            TopicError::Kafka(_) | TopicError::Missing(_) | TopicError::Leaderless(_) => true,
            TopicError::Create { code, .. } => matches!(
                code,
                RDKafkaErrorCode::OperationTimedOut
                    | RDKafkaErrorCode::RequestTimedOut
                    | RDKafkaErrorCode::NotController
                    | RDKafkaErrorCode::LeaderNotAvailable
                    | RDKafkaErrorCode::BrokerNotAvailable
                    | RDKafkaErrorCode::NotEnoughReplicas
                    | RDKafkaErrorCode::InvalidReplicationFactor
            ),
            _ => false,
        }
    }
}

/// What the start learned of the topics.
#[derive(Clone, Debug)]
pub struct TopicsReady {
    /// Partitions of the transactions topic.
    pub tx_partitions: i32,
    /// Settings the node runs with but should not in production.
    pub warnings: Vec<SettingWarning>,
}

/// Creates the topics when missing (infinite retention, replication and `min.insync.replicas`
/// from config), checks the settings of what is there for a chain whose largest block is
/// `max_block_bytes` ([`topic_settings::check`]), and says how many partitions the transactions
/// topic has.
pub async fn ensure_topics(
    connection: &Connection,
    topics: &Topics,
    client_id: &str,
    max_block_bytes: usize,
    health: Arc<BrokerHealth>,
) -> Result<TopicsReady, TopicError> {
    let admin: AdminClient<NodeContext> = base_config(connection, client_id)
        .create_with_context(NodeContext::new(health))
        .map_err(KafkaError::during("creating the admin client"))?;
    let kafka = connection.config();
    let min_isr = kafka.min_insync_replicas.to_string();
    let new_topics = [
        node_topic(&topics.blocks, 1, kafka, &min_isr).set(TIMESTAMP_TYPE, LOG_APPEND_TIME),
        node_topic(&topics.transactions, kafka.transaction_partitions, kafka, &min_isr),
    ];
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    // Only missing topics are created: on a cluster with ACLs the admin creates them, and a
    // node that may not create topics is refused even for one that exists.
    let first = cluster_metadata(&admin)?;
    let missing: Vec<&NewTopic> =
        new_topics.iter().filter(|t| !first.topics().iter().any(|topic| topic.name() == t.name)).collect();
    // Metadata read before a topic was created does not show it: read again then.
    let mut known = missing.is_empty().then_some(first);
    let results = match missing.is_empty() {
        true => Vec::new(),
        false => admin.create_topics(missing, &options).await.map_err(KafkaError::during("creating topics"))?,
    };
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(TopicError::Create { topic, code }),
        }
    }
    // A topic just created can take a moment to appear in the metadata of every broker, and
    // its partitions a moment more to elect leaders; reading offsets before that fails.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let metadata = match known.take() {
            Some(metadata) => metadata,
            None => cluster_metadata(&admin)?,
        };
        match layout(&metadata, topics) {
            Ok(mut found) if found.topics[0].partitions == 1 && found.topics[1].partitions > 0 => {
                let blocks = topic_configs(&admin, &topics.blocks, &options).await?;
                let transactions = topic_configs(&admin, &topics.transactions, &options).await?;
                match blocks.get(TIMESTAMP_TYPE).cloned() {
                    Some(stamp) if stamp == LOG_APPEND_TIME => {
                        found.topics[0].configs = blocks;
                        found.topics[1].configs = transactions;
                        let warnings = topic_settings::check(&found.topics, found.brokers, max_block_bytes)?;
                        let tx_partitions = found.topics[1].partitions as i32;
                        return Ok(TopicsReady { tx_partitions, warnings });
                    }
                    Some(stamp) => {
                        return Err(TopicError::TimestampType { topic: topics.blocks.clone(), found: stamp })
                    }
                    // The broker answering may not know the new topic's configuration yet.
                    None if attempts < 120 => tokio::time::sleep(Duration::from_millis(250)).await,
                    None => {
                        return Err(TopicError::TimestampType { topic: topics.blocks.clone(), found: "unknown".into() })
                    }
                }
            }
            Ok(found) if found.topics[0].partitions > 1 => {
                let partitions = found.topics[0].partitions;
                return Err(TopicError::BlocksPartitioned { topic: topics.blocks.clone(), partitions });
            }
            Ok(_) | Err(TopicError::Missing(_) | TopicError::Leaderless(_)) if attempts < 120 => {
                tokio::time::sleep(Duration::from_millis(250)).await
            }
            Ok(_) => return Err(TopicError::Missing(topics.blocks.clone())),
            Err(e) => return Err(e),
        }
    }
}

/// A topic as a node creates it when missing: `partitions` partitions, replication and
/// `min.insync.replicas` (`min_isr`) from `kafka`, infinite retention, unclean election off, and
/// messages up to a full block.
pub(super) fn node_topic<'a>(name: &'a str, partitions: i32, kafka: &KafkaConfig, min_isr: &'a str) -> NewTopic<'a> {
    NewTopic::new(name, partitions, TopicReplication::Fixed(kafka.replication_factor))
        .set("retention.ms", "-1")
        .set("min.insync.replicas", min_isr)
        .set("unclean.leader.election.enable", "false")
        .set("max.message.bytes", MAX_MESSAGE_BYTES_TEXT)
}

/// The topic setting that says whose clock stamps messages, and the value the blocks topic needs.
const TIMESTAMP_TYPE: &str = "message.timestamp.type";
const LOG_APPEND_TIME: &str = "LogAppendTime";

/// `topic`'s configuration as the brokers describe it (empty while they do not describe it yet).
async fn topic_configs(
    admin: &AdminClient<NodeContext>,
    topic: &str,
    options: &AdminOptions,
) -> Result<HashMap<String, String>, TopicError> {
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], options)
        .await
        .map_err(KafkaError::during("reading the topics' configuration"))?;
    Ok(results
        .into_iter()
        .flatten()
        .flat_map(|resource| resource.entries)
        .filter_map(|entry| entry.value.map(|value| (entry.name, value)))
        .collect())
}

/// What the brokers' metadata shows this client: every topic it may describe, and the brokers.
fn cluster_metadata(admin: &AdminClient<NodeContext>) -> Result<Metadata, TopicError> {
    Ok(admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(30))
        .map_err(KafkaError::during("reading topic metadata"))?)
}

/// The blocks and transactions topics in the brokers' metadata (partitions and replicas, no
/// configuration yet), once each of their partitions has a leader, and how many brokers there are.
struct Layout {
    topics: [TopicSettings; 2],
    brokers: usize,
}

fn layout(metadata: &Metadata, topics: &Topics) -> Result<Layout, TopicError> {
    let settings = |name: &str| {
        let topic =
            metadata.topics().iter().find(|t| t.name() == name).ok_or_else(|| TopicError::Missing(name.to_owned()))?;
        if topic.partitions().iter().any(|p| p.leader() < 0) {
            return Err(TopicError::Leaderless(name.to_owned()));
        }
        Ok(TopicSettings {
            name: name.to_owned(),
            partitions: topic.partitions().len(),
            replication: topic.partitions().first().map_or(0, |p| p.replicas().len()),
            configs: HashMap::new(),
        })
    };
    Ok(Layout {
        topics: [settings(&topics.blocks)?, settings(&topics.transactions)?],
        brokers: metadata.brokers().len(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_topic_limit_text_matches_the_decoder_bound() {
        assert_eq!(super::MAX_MESSAGE_BYTES_TEXT.parse::<usize>().unwrap(), super::MAX_MESSAGE_BYTES);
    }
}
