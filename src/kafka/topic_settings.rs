//! The topic settings a node checks at start on a cluster it did not set up: those that would
//! break consensus or lose acknowledged blocks are refused, those that make a node depend on
//! luck are warned about (log, `/status`, `/metrics`). The checks Hyperledger Fabric's Kafka
//! orderer documented as required settings, made by the node instead of left to a checklist.

use std::collections::HashMap;

/// A topic as the brokers describe it.
#[derive(Clone, Debug, Default)]
pub(super) struct TopicSettings {
    /// Its name.
    pub name: String,
    /// Its partitions.
    pub partitions: usize,
    /// Replicas of its first partition.
    pub replication: usize,
    /// Its configuration entries, by name.
    pub configs: HashMap<String, String>,
}

impl TopicSettings {
    fn config(&self, name: &str) -> Option<&str> {
        self.configs.get(name).map(String::as_str)
    }

    fn number(&self, name: &str) -> Option<i64> {
        self.config(name).and_then(|value| value.parse().ok())
    }
}

/// A setting that makes a node unsafe to run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingRefused {
    /// A replica that missed writes could become leader and drop acknowledged blocks.
    #[error("topic {0} has unclean.leader.election.enable=true: a replica that missed acknowledged blocks could lead and drop them; set it to false (kafka-configs --alter --add-config unclean.leader.election.enable=false)")]
    UncleanElection(String),
    /// A block the chain allows would not fit.
    #[error("topic {topic} has max.message.bytes={found}, below the {needed} bytes the largest block the chain allows takes (chain.max_block_bytes plus framing); raise it to at least {needed}")]
    MessageTooSmall {
        /// The topic.
        topic: String,
        /// Its setting.
        found: i64,
        /// What a full block needs.
        needed: usize,
    },
    /// Every write would wait for more replicas than there are.
    #[error("topic {topic} has min.insync.replicas={min_insync} above its replication factor {replication}: every write would fail; lower it")]
    InsyncAboveReplicas {
        /// The topic.
        topic: String,
        /// Its setting.
        min_insync: i64,
        /// Its replicas.
        replication: usize,
    },
}

/// A setting a node runs with, but should not in production.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingWarning {
    /// Old messages are deleted: a node that falls further behind will need a bootstrap.
    FiniteRetention {
        /// The topic.
        topic: String,
    },
    /// One copy of every message: a lost disk loses the chain's log.
    SingleReplica {
        /// The topic.
        topic: String,
    },
    /// A write is acknowledged by one broker alone on a cluster of several.
    SingleInsync {
        /// The topic.
        topic: String,
    },
    /// As many in-sync replicas required as there are: any broker down stops every write.
    InsyncEqualsReplicas {
        /// The topic.
        topic: String,
    },
}

impl SettingWarning {
    /// Its label in `/status` and `/metrics`.
    pub fn label(&self) -> &'static str {
        match self {
            SettingWarning::FiniteRetention { .. } => "finite_retention",
            SettingWarning::SingleReplica { .. } => "replication_factor_1",
            SettingWarning::SingleInsync { .. } => "min_insync_replicas_1",
            SettingWarning::InsyncEqualsReplicas { .. } => "min_insync_replicas_equals_replication",
        }
    }

    /// The topic it concerns.
    pub fn topic(&self) -> &str {
        match self {
            SettingWarning::FiniteRetention { topic }
            | SettingWarning::SingleReplica { topic }
            | SettingWarning::SingleInsync { topic }
            | SettingWarning::InsyncEqualsReplicas { topic } => topic,
        }
    }
}

impl std::fmt::Display for SettingWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingWarning::FiniteRetention { topic } => write!(
                f,
                "topic {topic} deletes old messages (retention.ms or retention.bytes is not -1): a node that falls further behind will need a bootstrap from peers"
            ),
            SettingWarning::SingleReplica { topic } => {
                write!(f, "topic {topic} has one replica: losing that broker's disk loses the log")
            }
            SettingWarning::SingleInsync { topic } => write!(
                f,
                "topic {topic} has min.insync.replicas=1 on a cluster of several brokers: a write acknowledged by one broker is lost with it"
            ),
            SettingWarning::InsyncEqualsReplicas { topic } => write!(
                f,
                "topic {topic} has min.insync.replicas equal to its replication factor: any broker down stops every write"
            ),
        }
    }
}

/// Bytes a message takes in a record batch beyond the block itself: the envelope's version
/// byte, the batch and record headers, with room to spare.
pub(super) const FRAMING_BYTES: usize = 1024;

/// Checks `topics` (the blocks topic first) on a cluster of `brokers` brokers for a chain whose
/// largest block is `max_block_bytes`.
pub(super) fn check(
    topics: &[TopicSettings],
    brokers: usize,
    max_block_bytes: usize,
) -> Result<Vec<SettingWarning>, SettingRefused> {
    let needed = max_block_bytes + FRAMING_BYTES;
    let mut warnings = Vec::new();
    for topic in topics {
        let name = topic.name.clone();
        if topic.config("unclean.leader.election.enable") == Some("true") {
            return Err(SettingRefused::UncleanElection(name));
        }
        if let Some(found) = topic.number("max.message.bytes").filter(|found| *found < needed as i64) {
            return Err(SettingRefused::MessageTooSmall { topic: name, found, needed });
        }
        let min_insync = topic.number("min.insync.replicas").unwrap_or(1);
        if min_insync > topic.replication as i64 {
            return Err(SettingRefused::InsyncAboveReplicas {
                topic: name,
                min_insync,
                replication: topic.replication,
            });
        }
        let finite = |setting: &str| topic.number(setting).is_some_and(|value| value >= 0);
        if finite("retention.ms") || finite("retention.bytes") {
            warnings.push(SettingWarning::FiniteRetention { topic: name.clone() });
        }
        if topic.replication == 1 {
            warnings.push(SettingWarning::SingleReplica { topic: name.clone() });
        } else if min_insync == topic.replication as i64 {
            warnings.push(SettingWarning::InsyncEqualsReplicas { topic: name.clone() });
        }
        if min_insync == 1 && brokers > 1 {
            warnings.push(SettingWarning::SingleInsync { topic: name });
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(replication: usize, configs: &[(&str, &str)]) -> TopicSettings {
        TopicSettings {
            name: "net.blocks".into(),
            partitions: 1,
            replication,
            configs: configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    const SAFE: [(&str, &str); 5] = [
        ("unclean.leader.election.enable", "false"),
        ("max.message.bytes", "4194304"),
        ("min.insync.replicas", "2"),
        ("retention.ms", "-1"),
        ("retention.bytes", "-1"),
    ];

    fn with(change: (&'static str, &'static str)) -> Vec<(&'static str, &'static str)> {
        let mut configs: Vec<_> = SAFE.iter().copied().filter(|(k, _)| *k != change.0).collect();
        configs.push(change);
        configs
    }

    #[test]
    fn what_an_operator_of_three_brokers_should_set_passes_silently() {
        assert_eq!(check(&[topic(3, &SAFE)], 3, 1 << 20), Ok(vec![]));
    }

    #[test]
    fn settings_that_lose_or_refuse_blocks_are_refused_with_the_fix() {
        let unclean = check(&[topic(3, &with(("unclean.leader.election.enable", "true")))], 3, 1 << 20);
        assert!(matches!(unclean, Err(SettingRefused::UncleanElection(_))));
        let small = check(&[topic(3, &with(("max.message.bytes", "1048576")))], 3, 1 << 20).unwrap_err();
        assert_eq!(
            small,
            SettingRefused::MessageTooSmall { topic: "net.blocks".into(), found: 1 << 20, needed: (1 << 20) + 1024 }
        );
        assert!(small.to_string().contains("raise it to at least 1049600"), "{small}");
        let above = check(&[topic(2, &with(("min.insync.replicas", "3")))], 3, 1 << 20);
        assert!(matches!(above, Err(SettingRefused::InsyncAboveReplicas { min_insync: 3, replication: 2, .. })));
    }

    #[test]
    fn settings_that_depend_on_luck_are_warned_about() {
        let labels = |topics: &[TopicSettings], brokers| -> Vec<&'static str> {
            check(topics, brokers, 1 << 20).unwrap().iter().map(SettingWarning::label).collect()
        };
        assert_eq!(labels(&[topic(3, &with(("retention.ms", "604800000")))], 3), ["finite_retention"]);
        assert_eq!(labels(&[topic(3, &with(("retention.bytes", "1000000")))], 3), ["finite_retention"]);
        assert_eq!(labels(&[topic(1, &with(("min.insync.replicas", "1")))], 1), ["replication_factor_1"]);
        assert_eq!(
            labels(&[topic(1, &with(("min.insync.replicas", "1")))], 3),
            ["replication_factor_1", "min_insync_replicas_1"]
        );
        assert_eq!(
            labels(&[topic(3, &with(("min.insync.replicas", "3")))], 3),
            ["min_insync_replicas_equals_replication"]
        );
    }
}
