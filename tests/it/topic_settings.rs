//! Topics an operator made with unsafe settings, on the real broker: a node refuses to run on
//! settings that lose or refuse blocks, saying which and the fix, and runs on settings that only
//! depend on luck while saying so in its log, `/status` and `/metrics`.

use crate::common::TestNet;
use kafkachain::config::KafkaConfig;
use kafkachain::tools::cluster::unique_prefix;
use std::time::Duration;

/// Makes the topics of `prefix` with Kafka's own tool, `extra` changing one safe setting.
fn create_topics(prefix: &str, extra: &str) {
    for args in crate::common::topic_creations(prefix, extra) {
        let out = crate::common::topic_command(&args);
        assert!(out.status.success(), "creating {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn settings_that_lose_or_refuse_blocks_stop_the_node_with_the_fix() {
    for (extra, says) in [
        ("unclean.leader.election.enable=true", "unclean.leader.election.enable=true"),
        ("max.message.bytes=100000", "max.message.bytes=100000, below the 1049600 bytes"),
        ("min.insync.replicas=2", "min.insync.replicas=2 above its replication factor 1"),
    ] {
        let prefix = unique_prefix("it-unsafe-topic");
        create_topics(&prefix, extra);
        let kafka = KafkaConfig { brokers: crate::common::brokers(), topic_prefix: prefix, ..KafkaConfig::default() };
        let (code, text, took) = crate::common::run_until_exit(kafka);
        assert!(code.is_some_and(|c| c != 0), "{extra}: exit {code:?}\n{text}");
        assert_eq!(text.matches(says).count(), 1, "{extra}: said once\n{text}");
        assert!(took < Duration::from_secs(20), "{extra}: took {took:?}");
    }
}

#[test]
fn settings_that_depend_on_luck_are_shown_in_the_log_status_and_metrics() {
    let prefix = unique_prefix("it-lucky-topic");
    create_topics(&prefix, "retention.bytes=100000000");
    let net = TestNet::start_on(prefix.clone(), 1, |_| {});
    let node = &net.nodes[0];
    let status = node.status();
    let warnings: Vec<(String, String)> = status["topic_warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["warning"].as_str().unwrap().to_owned(), w["topic"].as_str().unwrap().to_owned()))
        .collect();
    for topic in [format!("{prefix}.blocks"), format!("{prefix}.transactions")] {
        for warning in ["finite_retention", "replication_factor_1"] {
            assert!(warnings.contains(&(warning.to_owned(), topic.clone())), "{warning} on {topic}: {status}");
        }
    }
    assert_eq!(warnings.len(), 4, "{status}");
    let (_, _, metrics) = node.get_text("/metrics");
    let series =
        format!("kafkachain_topic_setting_warnings{{warning=\"finite_retention\",topic=\"{prefix}.blocks\"}} 1");
    assert!(metrics.contains(&series), "{series} in\n{metrics}");
    assert!(node.log_tail(200).contains("needs a bootstrap") || node.log_tail(200).contains("will need a bootstrap"));
}
