//! Where in the log the node has read to: one partition of one topic, and the stored key that
//! holds the next offset to read there.

use std::fmt;

/// One partition of one Kafka topic: the unit at which the node records how far it has read.
/// Ordered by topic, then partition, so a map of positions lists the blocks topic's before the
/// transactions topic's of the same network.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    topic: String,
    partition: i32,
}

impl TopicPartition {
    /// Partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self { topic: topic.into(), partition }
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition's number within its topic.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The id under the store's offset prefix: the topic's name, `/`, and the partition in
    /// decimal. Kafka topic names never hold `/`, so the last one separates the two.
    pub(super) fn encode(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Reads back an id written by [`TopicPartition::encode`]; `None` for anything else.
    pub(super) fn decode(id: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(id).ok()?;
        let (topic, partition) = text.rsplit_once('/')?;
        let partition: i32 = partition.parse().ok()?;
        (!topic.is_empty() && partition >= 0).then(|| Self::new(topic, partition))
    }
}

/// `topic/partition`, as logs and Kafka's own tools name a partition.
impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// Written as its `topic/partition` name, so a map of positions is a JSON object.
impl serde::Serialize for TopicPartition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::TopicPartition;
    use proptest::prelude::*;

    #[test]
    fn decodes_what_it_encodes() {
        let position = TopicPartition::new("devnet.transactions", 7);
        assert_eq!(position.encode(), b"devnet.transactions/7");
        assert_eq!(TopicPartition::decode(&position.encode()), Some(position));
    }

    #[test]
    fn refuses_ids_that_name_no_partition() {
        for id in [&b"blocks"[..], b"blocks/", b"/0", b"blocks/-1", b"blocks/x", b"blocks/99999999999", b"\xff/0"] {
            assert_eq!(TopicPartition::decode(id), None, "{:?}", String::from_utf8_lossy(id));
        }
    }

    proptest! {
        #[test]
        fn round_trips_any_kafka_topic_name(topic in "[a-zA-Z0-9._-]{1,249}", partition in 0..i32::MAX) {
            let position = TopicPartition::new(topic, partition);
            prop_assert_eq!(TopicPartition::decode(&position.encode()), Some(position));
        }
    }
}
