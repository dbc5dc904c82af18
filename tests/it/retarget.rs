//! Difficulty retargeting on real nodes and a real broker: blocks mined faster than the chain
//! aims at raise the difficulty at the retarget height on every node, `/status` shows the new
//! target and the network's hash rate, and a block carrying the old target there is refused as
//! `bad_bits` by every node.

use crate::common::{produce, wait_for, TestNet};
use kafkachain::core::testkit::paying_child;
use kafkachain::core::transaction::ChainTag;
use kafkachain::kafka::wire::encode_message;
use kafkachain::tools::load::miner_address;
use serde_json::Value;
use std::time::Duration;

/// Blocks between retargets on the test chain.
const INTERVAL: u64 = 4;

fn difficulty(status: &Value) -> f64 {
    status["difficulty_bits"].as_f64().expect("difficulty_bits is a number")
}

#[test]
fn fast_blocks_raise_the_difficulty_on_every_node_and_the_old_target_is_bad_bits() {
    // Blocks are mined on demand, milliseconds apart, against a one-minute target: every window
    // is far too fast, so the first retarget (height 8) makes the target 4 times harder.
    let net = TestNet::start_with("retarget", 2, |spec| {
        spec.chain.bits = 12;
        spec.chain.retarget_interval = INTERVAL;
        spec.chain.target_block_ms = 60_000;
    });
    let (miner, other) = (&net.nodes[0], &net.nodes[1]);
    let start = difficulty(&miner.status());
    assert!((start - 12.0).abs() < 0.01, "the starting difficulty is the chain's 12 bits: {start}");
    for _ in 0..2 * INTERVAL - 1 {
        miner.mine();
    }
    net.wait_converged(2 * INTERVAL - 1, Duration::from_secs(30));
    for node in &net.nodes {
        let status = node.status();
        let next = difficulty(&status);
        assert!((next - 14.0).abs() < 0.01, "height 8 must be 4x harder (14 bits): {status}");
        assert!(status["network_hash_rate"].as_f64().unwrap() > 0.0, "{status}");
    }

    // A block at height 8 that keeps its parent's target, with valid proof of work for it.
    let parent = crate::common::tip_block(&miner.chain());
    assert_ne!(miner.status()["next_bits"], format!("{:08x}", parent.header.bits));
    let stale = paying_child(ChainTag::of(crate::common::CHAIN_ID), &parent, miner_address("intruder"), 50, []);
    produce(&format!("{}.blocks", net.prefix), &[encode_message(&stale)]);
    for node in &net.nodes {
        let status = wait_for("the stale-target block to be refused", Duration::from_secs(30), || {
            let s = node.status();
            (s["rejected"]["bad_bits"] == 1).then_some(s)
        });
        assert_eq!(status["height"], 2 * INTERVAL - 1, "{status}");
    }

    // The miner's own block at height 8 carries the new target, and every node takes it.
    let mined = other.mine();
    assert_eq!(mined["index"], 2 * INTERVAL);
    let (_, tip) = net.wait_converged(2 * INTERVAL, Duration::from_secs(30));
    let block = crate::common::tip_block(&miner.chain());
    assert_eq!(block.hash().to_hex(), tip);
    assert_ne!(block.header.bits, parent.header.bits, "the retargeted block carries a new target");
    assert_eq!(format!("{:08x}", block.header.bits), miner.status()["next_bits"], "no retarget at height 9");
}
