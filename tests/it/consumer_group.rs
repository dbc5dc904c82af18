//! A node copies its consumed offsets (kept in sled, the source of truth) to a Kafka consumer
//! group named after it, so Kafka's own `kafka-consumer-groups --describe` shows how far it has
//! read and its lag. Checked with that very tool, from the kafka-tools jar.

use crate::common::{brokers, wait_for, TestNet};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// One row of `--describe`: where the group stands on one partition.
#[derive(Debug, PartialEq, Eq)]
struct GroupRow {
    topic: String,
    partition: u32,
    current_offset: u64,
    log_end_offset: u64,
    lag: u64,
}

/// Runs Kafka's `ConsumerGroupCommand --describe` for `group` and returns its rows on topics
/// starting with `prefix` (other tests' nets may share node ids, hence group names).
fn describe_group(group: &str, prefix: &str) -> Vec<GroupRow> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka");
    let output = Command::new(script)
        .args(["tool", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"])
        .args(["--bootstrap-server", &brokers(), "--describe", "--group", group])
        .output()
        .expect("scripts/kafka tool runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}\n{}", String::from_utf8_lossy(&output.stderr));
    // Columns: GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.len() >= 6 && cols[0] == group && cols[1].starts_with(prefix))
        .map(|cols| GroupRow {
            topic: cols[1].to_owned(),
            partition: cols[2].parse().unwrap(),
            current_offset: cols[3].parse().unwrap(),
            log_end_offset: cols[4].parse().unwrap(),
            lag: cols[5].parse().unwrap(),
        })
        .collect()
}

#[test]
fn kafkas_consumer_group_tool_shows_where_each_node_has_read() {
    let net = TestNet::start("consumer-group", 1);
    let node = &net.nodes[0];
    for amount in 1..=3 {
        node.submit("grace", "heidi", amount);
        node.mine();
    }
    let status = node.status();
    let stored: &serde_json::Map<String, Value> = status["next_offsets"].as_object().unwrap();
    let group = format!("kafkachain-{}", node.id);
    // The node copies its offsets every few seconds.
    let rows = wait_for("the node's offsets in its consumer group", Duration::from_secs(60), || {
        let rows = describe_group(&group, &net.prefix);
        let copied = rows.len() == stored.len()
            && rows.iter().all(|row| {
                let key = format!("{}/{}", row.topic, row.partition);
                stored.get(&key).and_then(Value::as_u64) == Some(row.current_offset)
            });
        copied.then_some(rows)
    });
    let blocks = rows.iter().find(|row| row.topic == format!("{}.blocks", net.prefix)).expect("the blocks topic");
    assert_eq!(blocks.current_offset, 3, "three blocks read: {rows:?}");
    assert_eq!((blocks.log_end_offset, blocks.lag), (3, 0), "{rows:?}");
    let transactions_read: u64 =
        rows.iter().filter(|row| row.topic.ends_with(".transactions")).map(|row| row.current_offset).sum();
    assert_eq!(transactions_read, 3, "three transfers read: {rows:?}");
    assert!(rows.iter().all(|row| row.lag == 0), "caught up everywhere: {rows:?}");
}
