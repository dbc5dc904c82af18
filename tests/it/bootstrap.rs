//! A retention gap: the broker deleted blocks a stopped node had not read yet (Kafka's own
//! DeleteRecords tool). The node says so and halts instead of silently starting over, refuses
//! writes, rebuilds its chain from a registered peer on `GET /nodes/resolve`, and then reads the
//! topic again from the earliest offset the broker still holds.

use crate::common::{brokers, wait_for, TestNet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Deletes every record of partition 0 of `topic` below `offset`, with Kafka's own tool.
fn delete_records(topic: &str, offset: u64) {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("offsets.json");
    let json =
        serde_json::json!({ "version": 1, "partitions": [{ "topic": topic, "partition": 0, "offset": offset }] });
    std::fs::write(&spec, json.to_string()).unwrap();
    let output = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka"))
        .args([
            "tool",
            "org.apache.kafka.tools.DeleteRecordsCommand",
            "--bootstrap-server",
            &brokers(),
            "--offset-json-file",
        ])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(output.status.success(), "DeleteRecordsCommand failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Two nodes; the first stops after height 3 while the second mines to 8, and the blocks topic
/// loses its first six messages (heights 1 to 6) before the first comes back.
fn gap_behind(net: &mut TestNet) {
    for _ in 0..3 {
        net.nodes[1].mine();
    }
    net.wait_converged(3, Duration::from_secs(30));
    assert_eq!(net.nodes[0].terminate(), Some(0));
    for _ in 0..3 {
        net.nodes[1].mine();
    }
    // The first six blocks are gone from the topic; the node stopped after reading three.
    delete_records(&format!("{}.blocks", net.prefix), 6);
    for _ in 0..2 {
        net.nodes[1].mine();
    }
    net.nodes[0].spawn().unwrap();
    net.nodes[0].wait_ready();
}

fn halted(node: &crate::common::NodeProc) -> serde_json::Value {
    wait_for("the halt", Duration::from_secs(30), || {
        let s = node.status();
        s["halted"].is_string().then_some(s)
    })
}

#[test]
fn a_node_behind_a_retention_gap_halts_then_bootstraps_from_a_peer() {
    let mut net = TestNet::start("retention-gap", 2);
    gap_behind(&mut net);
    let (lagging, peer) = (&net.nodes[0], &net.nodes[1]);

    let status = halted(lagging);
    assert_eq!((&status["applier"], &status["halt_reason"]), (&"halted".into(), &"offset_lost".into()), "{status}");
    assert!(
        status["halted"].as_str().unwrap().contains("GET /nodes/resolve"),
        "tells the operator what to do: {status}"
    );
    assert_eq!(status["height"], 3, "nothing was skipped: {status}");
    let (code, body) = lagging.get("/health/ready");
    assert_eq!((code, &body["rule"]), (503, &serde_json::json!("offset_lost")), "{body}");
    let (code, body) = lagging.post("/transactions/new", lagging.signed_body("a", "b", 1));
    assert_eq!(code, 503, "a halted node takes no writes: {body}");
    assert_eq!(body["rule"], "offset_lost", "{body}");
    let (code, body) = lagging.get("/nodes/resolve");
    assert_eq!(code, 409, "no peer yet: {body}");

    let (code, body) = lagging.post("/nodes/register", serde_json::json!({ "nodes": [peer.url] }).to_string());
    assert_eq!(code, 201, "{body}");
    let (code, body) = lagging.get("/nodes/resolve");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["bootstrapped"], true, "{body}");
    assert_eq!(body["published"], 5, "heights 4 to 8 from the peer, into the topic again: {body}");
    let status = lagging.status();
    assert!(status["halted"].is_null() && status["halt_reason"].is_null(), "{status}");
    assert_eq!(status["applier"], "running", "the answer came once the applier read on: {status}");
    assert_eq!(status["tip"], peer.status()["tip"]);
    // It read on from the earliest offset the broker holds: heights 7 and 8 waited as orphans
    // until the branch published after them connected them, and its own copies of 7 and 8 are
    // then duplicates, as all five are for the peer.
    let status = wait_for("the topic read again", Duration::from_secs(30), || {
        let s = lagging.status();
        (s["blocks_next_offset"] == 13).then_some(s)
    });
    assert_eq!(status["rejected"]["duplicate"], 2, "{status}");
    assert_eq!(status["orphans"], 0, "{status}");
    let peer_status = wait_for("the peer to read the branch", Duration::from_secs(30), || {
        let s = peer.status();
        (s["blocks_next_offset"] == 13).then_some(s)
    });
    assert_eq!(peer_status["rejected"]["duplicate"], 5, "{peer_status}");
    assert_eq!(status["reread_since_start"], 0, "{status}");
    assert_eq!(lagging.get("/health/ready").0, 200);
    // It mines on the chain it took (its miner learned the new tip from the bootstrap, not
    // from a block read later).
    let mined = lagging.mine();
    assert_eq!(mined["index"], 9, "{mined}");
    net.wait_converged(9, Duration::from_secs(30));
    // And it follows the network again.
    peer.mine();
    let (height, _) = net.wait_converged(10, Duration::from_secs(30));
    assert_eq!(height, 10);
    lagging.submit("carol", "dave", 4);
}

/// A bootstrap that takes fewer blocks than the gap holds (peers.max_new_blocks) says so in its
/// answer; the blocks it did not reach wait as orphans, and the next resolve (an ordinary one:
/// the gap is repaired) publishes the rest, which connects them.
#[test]
fn a_bootstrap_that_falls_short_is_completed_by_the_next_resolve() {
    let mut net = TestNet::start_with("retention-gap-rounds", 2, |spec| {
        spec.peers.max_new_blocks = 2;
    });
    gap_behind(&mut net);
    let (lagging, peer) = (&net.nodes[0], &net.nodes[1]);
    halted(lagging);
    let (code, body) = lagging.post("/nodes/register", serde_json::json!({ "nodes": [peer.url] }).to_string());
    assert_eq!(code, 201, "{body}");
    let (code, body) = lagging.get("/nodes/resolve");
    assert_eq!(code, 200, "{body}");
    assert_eq!((body["bootstrapped"].as_bool(), body["published"].as_u64()), (Some(true), Some(2)), "4 and 5: {body}");
    assert!(body["peers"][0]["outcome"].as_str().unwrap().contains("resolve again"), "{body}");
    let status = wait_for("heights 4 and 5 applied", Duration::from_secs(30), || {
        let s = lagging.status();
        (s["height"] == 5).then_some(s)
    });
    assert!(status["halted"].is_null() && status["halt_reason"].is_null(), "{status}");
    assert_eq!(status["orphans"], 2, "heights 7 and 8 wait for 6: {status}");
    let (code, body) = lagging.get("/nodes/resolve");
    assert_eq!(code, 200, "{body}");
    assert_eq!((body["bootstrapped"].as_bool(), body["published"].as_u64()), (Some(false), Some(2)), "6 and 7: {body}");
    let status = wait_for("the chain complete", Duration::from_secs(30), || {
        let s = lagging.status();
        (s["height"] == 8).then_some(s)
    });
    assert_eq!(status["tip"], peer.status()["tip"], "{status}");
    assert_eq!(status["orphans"], 0, "{status}");
}
