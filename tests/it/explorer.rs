//! The explorer endpoints on a real node and broker: blocks by hash, by height and as a page
//! of headers, and the mempool, agree with `/status` and `/chain`; unknown or malformed keys get
//! a 404 or a 400 with a JSON error.

use crate::common::{assert_json_error, wait_for, TestNet};
use std::time::Duration;

#[test]
fn blocks_and_the_mempool_can_be_looked_up() {
    let net = TestNet::start("explorer", 1);
    let node = &net.nodes[0];

    let pending = node.submit("alice", "bob", 7);
    // Pooled once the node has read it back from the transactions topic.
    let pool = wait_for("the transfer in the mempool", Duration::from_secs(10), || {
        let (code, pool) = node.get("/mempool");
        assert_eq!(code, 200, "{pool}");
        (pool["size"] == 1).then_some(pool)
    });
    assert!(pool["bytes"].as_u64().unwrap() > 100, "a signed transfer is over 100 bytes: {pool}");
    assert_eq!(pool["oldest"][0]["id"].as_str(), Some(pending.as_str()), "{pool}");

    node.mine();
    node.mine();
    let status = node.status();
    let tip = status["tip"].as_str().unwrap().to_owned();
    assert_eq!(status["height"], 2);

    let (code, by_height) = node.get("/blocks/height/2");
    assert_eq!(code, 200, "{by_height}");
    assert_eq!(by_height["header"]["hash"].as_str(), Some(tip.as_str()), "the tip /status shows");
    assert_eq!(by_height["header"]["main_chain"], true);
    let (code, by_hash) = node.get(&format!("/blocks/{tip}"));
    assert_eq!(code, 200, "{by_hash}");
    assert_eq!(by_hash, by_height);
    assert_eq!(by_hash["block"], node.chain()[2], "the block in the /chain shape");

    let (_, first) = node.get("/blocks/height/1");
    let holds: Vec<&str> =
        first["block"]["transactions"].as_array().unwrap().iter().filter_map(|tx| tx["id"].as_str()).collect();
    assert!(holds.contains(&pending.as_str()), "the mined transfer is in block 1: {first}");
    assert_eq!(node.get("/mempool").1["size"], 0);

    let (code, page) = node.get("/blocks?limit=2");
    assert_eq!(code, 200, "{page}");
    let heights: Vec<u64> = page["headers"].as_array().unwrap().iter().map(|h| h["height"].as_u64().unwrap()).collect();
    assert_eq!(heights, vec![1, 2], "the last two, oldest first");
    assert_eq!(page["tip_height"], 2);
    assert_eq!(page["headers"][1], by_height["header"]);
    assert_eq!(page["headers"][0]["transactions"], 2, "the reward and the transfer");
    let (_, from_zero) = node.get("/blocks?from=0&limit=500");
    assert_eq!(from_zero["headers"].as_array().unwrap().len(), 3, "genesis and two blocks");

    assert_json_error(node.get(&format!("/blocks/{}", "00".repeat(32))), 404, "no block");
    assert_json_error(node.get("/blocks/height/3"), 404, "no block at height 3");
    assert_json_error(node.get("/blocks/xyz"), 400, "64 hex characters");
    assert_json_error(node.get("/blocks/height/-1"), 400, "whole number");
    assert_json_error(node.get("/blocks?limit=0"), 400, "limit must be 1 to 500");
    assert_json_error(node.get("/blocks?limit=501"), 400, "limit must be 1 to 500");
    assert_json_error(node.get("/blocks?from=x"), 400, "");
    assert_json_error(node.get("/mempool?limit=101"), 400, "at most 100");
    assert_eq!(node.status()["height"], 2, "the node kept serving");
}
