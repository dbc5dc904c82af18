//! Broker failover: a cluster of three brokers, topics with replication factor 3 and
//! `min.insync.replicas=2`, unclean leader election off. The leader of the blocks partition is
//! SIGKILLed under load; mining and applying continue and no acknowledged transaction is lost.
//! Once on an open cluster, once on a secured one (brokers talking SASL_SSL to each other, nodes
//! logging in with SCRAM under ACLs), as production clusters run.

use crate::common::kafka_cluster::Cluster;
use crate::common::{transfer_ids, wait_for, TestNet};
use kafkachain::config::SaslMechanism;
use kafkachain::tools::cluster::{unique_prefix, NodeSpec};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[test]
fn killing_the_blocks_leader_loses_no_acknowledged_transaction() {
    let cluster = Cluster::start(3, 19092);
    let bootstrap = cluster.bootstrap();
    let net = TestNet::start_with("failover", 2, |spec| {
        spec.kafka.brokers = bootstrap.clone();
        replicated(spec);
    });
    kill_the_leader_under_load(&cluster, &net);
}

#[test]
fn killing_the_blocks_leader_of_a_secured_cluster_loses_no_acknowledged_transaction() {
    // The ACLs cover the topics of this prefix, which the cluster's admin creates.
    let prefix = unique_prefix("kafkachain-it-failover");
    let cluster = Cluster::start_secure(3, 19492, &prefix);
    let net = TestNet::start_on(prefix, 2, |spec| {
        let principal = if spec.id == "n1" { "node1" } else { "node2" };
        cluster.secure().sasl(&mut spec.kafka, principal, SaslMechanism::ScramSha512);
        replicated(spec);
    });
    kill_the_leader_under_load(&cluster, &net);
}

/// Topics with three replicas, two of which must acknowledge every write.
fn replicated(spec: &mut NodeSpec) {
    spec.kafka.replication_factor = 3;
    spec.kafka.min_insync_replicas = 2;
}

/// Kills the broker leading the blocks partition while one node mines and both take transfers,
/// then checks that the chain went on and holds every acknowledged transfer once.
fn kill_the_leader_under_load(cluster: &Cluster, net: &TestNet) {
    net.nodes[0].mine();
    let (blocks, transactions) = (format!("{}.blocks", net.prefix), format!("{}.transactions", net.prefix));
    cluster.wait_in_sync(&[&blocks, &transactions, "__consumer_offsets"], 3, Duration::from_secs(60));
    let leader = cluster.leader_of(&blocks);

    let acked = Mutex::new(Vec::new());
    let running = AtomicBool::new(true);
    let height_at_kill = std::thread::scope(|s| {
        let (acked, running) = (&acked, &running);
        s.spawn(move || {
            let mut n = 0u64;
            while running.load(Ordering::Relaxed) {
                n += 1;
                // The same signed transfer is sent again until a node decides on it, so a
                // transfer lost with a failing node never leaves a gap in the sender's nonces.
                let body = net.nodes[0].signed_body("load", "sink", n);
                loop {
                    match net.nodes[(n % 2) as usize].try_post("/transactions/new", body.clone()) {
                        Some((201, answer)) => {
                            acked.lock().unwrap().push(answer["transaction_id"].as_str().unwrap().to_owned());
                            break;
                        }
                        Some((409, answer)) if crate::common::already_there(&answer) => break,
                        _ if !running.load(Ordering::Relaxed) => break,
                        // No answer, 503, or too far ahead while no block is mined: again.
                        _ => {
                            n += 1;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            }
        });
        s.spawn(move || {
            while running.load(Ordering::Relaxed) {
                let _ = net.nodes[0].try_get("/mine");
            }
        });
        std::thread::sleep(Duration::from_secs(2));
        let height_at_kill = net.nodes[1].status()["height"].as_u64().unwrap();
        cluster.kill(leader);
        // Mining and applying go on through the new leader.
        wait_for("blocks after the leader died", Duration::from_secs(90), || {
            (net.nodes[1].status()["height"].as_u64().unwrap() > height_at_kill + 5).then_some(())
        });
        running.store(false, Ordering::Relaxed);
        height_at_kill
    });
    assert_ne!(cluster.leader_of(&blocks), leader, "leadership moved");

    net.drain_mempools(Duration::from_secs(120));
    let (height, _) = net.wait_converged(height_at_kill + 5, Duration::from_secs(60));
    let chain = net.nodes[0].chain();
    assert_eq!(chain, net.nodes[1].chain());
    let on_chain = transfer_ids(&chain);
    let unique: HashSet<&String> = on_chain.iter().collect();
    assert_eq!(unique.len(), on_chain.len(), "a transaction is in the chain twice");
    let acked = acked.into_inner().unwrap();
    let missing: Vec<&String> = acked.iter().filter(|id| !unique.contains(id)).collect();
    println!(
        "failover: leader {leader} killed at height {height_at_kill}; height {height}, {} acknowledged, {} missing",
        acked.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "acknowledged transactions lost: {missing:?}");
}
