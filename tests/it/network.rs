//! Nodes that talk only through a real Kafka broker converge on one chain.

use crate::common::{transfer_ids, NodeProc, TestNet};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::time::Duration;

/// Rebuilds the 96-byte header from a block's JSON alone and hashes it.
fn hash_from_json(block: &Value) -> String {
    let hex32 = |key: &str| -> Vec<u8> { hex::decode(block[key].as_str().unwrap()).unwrap() };
    let mut header = Vec::with_capacity(96);
    header.extend((block["version"].as_u64().unwrap() as u32).to_le_bytes());
    header.extend(block["index"].as_u64().unwrap().to_le_bytes());
    header.extend(hex32("previous_hash"));
    header.extend(hex32("tx_root"));
    header.extend(block["timestamp"].as_u64().unwrap().to_le_bytes());
    header.extend((block["bits"].as_u64().unwrap() as u32).to_le_bytes());
    header.extend(block["proof"].as_u64().unwrap().to_le_bytes());
    hex::encode(Sha256::digest(&header))
}

fn wait_mempool(node: &NodeProc, count: u64) {
    crate::common::wait_for(&format!("{} mempool at {count}", node.id), Duration::from_secs(30), || {
        (node.status()["mempool"].as_u64() == Some(count)).then_some(())
    });
}

fn assert_each_once(chain: &[Value], submitted: &[String]) {
    let ids = transfer_ids(chain);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a transaction is in the chain twice");
    for id in submitted {
        assert!(unique.contains(id), "transaction {id} is missing from the chain");
    }
}

#[test]
fn three_nodes_converge_on_one_chain() {
    let net = TestNet::start("converge", 3);
    let mut submitted = Vec::new();
    for round in 0..3 {
        for (i, node) in net.nodes.iter().enumerate() {
            for k in 0..3 {
                submitted.push(node.submit(&format!("user{i}"), "shop", 10 * round + k + 1));
            }
        }
        for node in &net.nodes {
            wait_mempool(node, 9);
        }
        let miner = &net.nodes[round as usize];
        let mined = miner.mine();
        assert_eq!(mined["message"], "New Block Forged");
        assert_eq!(mined["index"], round + 1);
        assert_eq!(mined["transactions"].as_array().unwrap().len(), 10, "reward + 9 transfers");
        net.wait_converged(round + 1, Duration::from_secs(30));
    }
    let chains: Vec<Vec<Value>> = net.nodes.iter().map(NodeProc::chain).collect();
    assert_eq!(chains[0].len(), 4);
    assert!(chains.iter().all(|c| *c == chains[0]), "nodes disagree on /chain");
    assert_each_once(&chains[0], &submitted);
    for block in &chains[0] {
        assert_eq!(hash_from_json(block), block["hash"].as_str().unwrap(), "hash not reproducible from JSON");
    }
    let rewards: Vec<String> =
        chains[0][1..].iter().map(|b| b["transactions"][0]["recipient"].as_str().unwrap().to_owned()).collect();
    let miners: Vec<String> =
        ["n1", "n2", "n3"].iter().map(|id| kafkachain::tools::load::miner_address(id).to_hex()).collect();
    assert_eq!(rewards, miners);
    for node in &net.nodes {
        let status = node.status();
        assert_eq!(status["mempool"], 0);
        assert_eq!(status["applied_since_start"], 3);
        assert_eq!(status["blocks_next_offset"], 3);
    }
}

#[test]
fn competing_miners_end_on_one_tip_without_losing_transactions() {
    let net = TestNet::start("compete", 3);
    let mut submitted = Vec::new();
    for round in 0..5u64 {
        for k in 0..4 {
            submitted.push(net.nodes[(k % 3) as usize].submit(&format!("payer{k}"), "payee", round * 10 + k + 1));
        }
        for node in &net.nodes[..2] {
            wait_read_transactions(node, submitted.len() as u64);
        }
        let (a, b) = (&net.nodes[0], &net.nodes[1]);
        std::thread::scope(|s| {
            let first = s.spawn(|| a.mine());
            let second = s.spawn(|| b.mine());
            first.join().unwrap();
            second.join().unwrap();
        });
    }
    // Whatever forks happened, mining until no mempool holds anything confirms everything.
    for _ in 0..5 {
        if net.nodes.iter().all(|n| n.status()["mempool"] == 0) {
            break;
        }
        net.nodes[2].mine();
    }
    let (height, _) = net.wait_converged(5, Duration::from_secs(30));
    let chains: Vec<Vec<Value>> = net.nodes.iter().map(NodeProc::chain).collect();
    assert!(chains.iter().all(|c| *c == chains[0]), "nodes disagree on /chain");
    assert_eq!(chains[0].len() as u64, height + 1);
    assert_each_once(&chains[0], &submitted);
    for node in &net.nodes {
        assert_eq!(node.status()["mempool"], 0, "{} still holds transactions", node.id);
    }
}

/// Waits until `node` has read `count` transaction messages in all.
fn wait_read_transactions(node: &NodeProc, count: u64) {
    crate::common::wait_for(&format!("{} to read {count} transactions", node.id), Duration::from_secs(30), || {
        (crate::common::transactions_read(&node.status()) >= count).then_some(())
    });
}

#[test]
fn resolve_adopts_a_peer_chain_with_more_work() {
    // Two separate networks (different topics) of the same chain: n1 learns n2's blocks only
    // through /nodes/resolve.
    let lonely = TestNet::start("resolve-a", 1);
    let busy = TestNet::start("resolve-b", 1);
    let (a, b) = (&lonely.nodes[0], &busy.nodes[0]);
    for _ in 0..3 {
        b.mine();
    }
    let (code, answer) = a.post("/nodes/register", serde_json::json!({ "nodes": [b.url] }).to_string());
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["total_nodes"], serde_json::json!([b.url]));
    let (code, answer) = a.get("/nodes/resolve");
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["message"], "Our chain was replaced", "{answer}");
    assert_eq!(answer["published"], 3, "the blocks went into a's topic: {answer}");
    assert_eq!(a.status()["blocks_next_offset"], 3, "and a applied them from there");
    assert_eq!(a.status()["tip"], b.status()["tip"]);
    assert_eq!(a.chain(), b.chain());
    let (_, again) = a.get("/nodes/resolve");
    assert_eq!(again["message"], "Our chain is authoritative");
    let (_, reverse) = b.post("/nodes/register", serde_json::json!({ "nodes": [a.url] }).to_string());
    assert_eq!(reverse["total_nodes"].as_array().unwrap().len(), 1);
}
