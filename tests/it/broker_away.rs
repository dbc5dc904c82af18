//! A broker that goes away: the node keeps answering, logs the loss once instead of every
//! reconnect attempt, and a SIGTERM still stops it promptly with its store checkpointed.

use crate::common::kafka_cluster::Cluster;
use crate::common::TestNet;
use std::time::{Duration, Instant};

#[test]
fn with_the_broker_down_the_log_stays_quiet_and_sigterm_exits_promptly() {
    let cluster = Cluster::start(1, 19192);
    let bootstrap = cluster.bootstrap();
    let mut net = TestNet::start_with("broker-away", 1, |spec| spec.kafka.brokers = bootstrap.clone());
    let node = &mut net.nodes[0];
    node.submit("alice", "bob", 3);
    node.mine();
    // Past one report period, so the node has copied offsets to its Kafka group: with the broker
    // gone, those commits are what used to hold the shutdown for 40 s.
    std::thread::sleep(Duration::from_secs(6));
    let log_before = std::fs::read_to_string(&node.log).unwrap().len();
    cluster.kill(1);
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(node.status()["height"], 1, "the node answers while the broker is away");

    let log = std::fs::read_to_string(&node.log).unwrap();
    let outage: Vec<&str> = log[log_before..].lines().filter(|l| l.contains("ERROR") || l.contains("WARN")).collect();
    assert!(!outage.is_empty() && outage[0].contains("Kafka brokers unreachable"), "{outage:#?}");
    // Was about 8 ERROR lines a second (about 100 in this time).
    assert!(outage.len() <= 4, "{} warning and error lines in 12 s of outage:\n{}", outage.len(), outage.join("\n"));

    let stopping = Instant::now();
    let code = node.terminate();
    let took = stopping.elapsed();
    eprintln!("SIGTERM with the broker down: exited in {} ms", took.as_millis());
    assert_eq!(code, Some(0));
    // Was 40-45 s; the consumer's close now waits at most its 3 s session timeout.
    assert!(took < Duration::from_secs(15), "took {took:?} to exit");
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(log.contains("store checkpointed"), "{}", node.log_tail(20));
}

/// A node started before its broker (a first `scripts/devnet up`, a host booting) waits for it,
/// says so once, and runs when it comes, instead of exiting with `OperationTimedOut`.
#[test]
fn a_node_started_before_its_broker_waits_for_it_and_then_runs() {
    let port = 19392;
    let dir = tempfile::tempdir().unwrap();
    let prefix = kafkachain::tools::cluster::unique_prefix("it-early");
    let mut spec = kafkachain::tools::cluster::NodeSpec::new("early", &prefix, &format!("127.0.0.1:{port}"));
    spec.chain.chain_id = crate::common::CHAIN_ID.into();
    let mut node = kafkachain::tools::cluster::LocalNode::configure(
        std::path::Path::new(crate::common::KAFKACHAIN),
        dir.path(),
        &spec,
    )
    .unwrap();
    node.spawn().unwrap();
    assert!(!node.wait_ready(Duration::from_secs(3)), "no broker yet: the node cannot be ready");
    let _cluster = Cluster::start(1, port);
    assert!(node.wait_ready(Duration::from_secs(110)), "the node did not come up:\n{}", node.log_tail(30));
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert_eq!(log.matches("the brokers are not ready").count(), 1, "logged once:\n{}", node.log_tail(30));
    node.terminate().unwrap();
}
