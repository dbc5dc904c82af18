//! A retention gap: the broker deleted blocks a stopped node had not read yet (Kafka's own
//! DeleteRecords tool). The node says so and halts instead of silently starting over, refuses
//! writes, rebuilds its chain from a registered peer on `GET /nodes/resolve`, and then reads the
//! topic again from the earliest offset the broker still holds.

mod common;

use common::{brokers, wait_for, TestNet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Deletes every record of partition 0 of `topic` below `offset`, with Kafka's own tool.
fn delete_records(topic: &str, offset: u64) {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("offsets.json");
    let json = serde_json::json!({ "version": 1, "partitions": [{ "topic": topic, "partition": 0, "offset": offset }] });
    std::fs::write(&spec, json.to_string()).unwrap();
    let output = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka"))
        .args(["tool", "org.apache.kafka.tools.DeleteRecordsCommand", "--bootstrap-server", &brokers(), "--offset-json-file"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(output.status.success(), "DeleteRecordsCommand failed: {}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn a_node_behind_a_retention_gap_halts_then_bootstraps_from_a_peer() {
    let mut net = TestNet::start("retention-gap", 2);
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
    let (lagging, peer) = (&net.nodes[0], &net.nodes[1]);

    let status = wait_for("the halt", Duration::from_secs(30), || {
        let s = lagging.status();
        s["halted"].is_string().then_some(s)
    });
    assert!(status["halted"].as_str().unwrap().contains("no longer has"), "{status}");
    assert_eq!(status["height"], 3, "nothing was skipped: {status}");
    let (code, body) = lagging.get("/health/ready");
    assert_eq!(code, 503, "{body}");
    let (code, body) = lagging.post("/transactions/new", r#"{"sender":"a","recipient":"b","amount":1}"#);
    assert_eq!(code, 503, "a halted node takes no writes: {body}");
    assert!(body["error"].as_str().unwrap().contains("halted"), "{body}");
    let (code, body) = lagging.get("/nodes/resolve");
    assert_eq!(code, 409, "no peer yet: {body}");

    let (code, body) = lagging.post("/nodes/register", serde_json::json!({ "nodes": [peer.url] }).to_string());
    assert_eq!(code, 201, "{body}");
    let (code, body) = lagging.get("/nodes/resolve");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["bootstrapped"], 5, "heights 4 to 8 from the peer: {body}");
    assert_eq!(body["published"], 0, "{body}");

    let status = lagging.status();
    assert!(status["halted"].is_null(), "{status}");
    assert_eq!(status["tip"], peer.status()["tip"]);
    // It reads on from the earliest offset the broker holds: the two blocks there are duplicates.
    let status = wait_for("the topic read again", Duration::from_secs(30), || {
        let s = lagging.status();
        (s["blocks_next_offset"] == 8).then_some(s)
    });
    assert_eq!(status["rejected"]["duplicate"], 2, "{status}");
    assert_eq!(status["reread_since_start"], 0, "{status}");
    assert_eq!(lagging.get("/health/ready").0, 200);
    // And it follows the network again.
    peer.mine();
    let (height, _) = net.wait_converged(9, Duration::from_secs(30));
    assert_eq!(height, 9);
    lagging.submit("carol", "dave", 4);
}
