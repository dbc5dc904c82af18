//! Peer sync goes through the topic: `/nodes/resolve` never writes a peer's blocks into the store;
//! it validates them and publishes the branch with more work into the blocks topic, where every
//! node applies it. Peers that lie, flood or stall are dropped within bounded memory and time,
//! and the honest peers are still used.

use crate::common::fake_peer::{chain_query, json_answer, start_unsized_json, FakePeer};
use crate::common::{rss_mib, wait_for, NodeProc, TestNet};
use kafkachain::core::block::Block;
use kafkachain::json::BlockJson;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

fn register(node: &NodeProc, peers: &[&str]) {
    let (code, answer) = node.post("/nodes/register", json!({ "nodes": peers }).to_string());
    assert_eq!(code, 201, "{answer}");
}

/// The split reported on the devnet: a node on another topic prefix mined a longer chain from
/// the same genesis; one register + resolve on node 1 used to write it into node 1's store
/// alone, so nodes 2 and 3 never saw it and orphaned everything node 1 mined afterwards.
#[test]
fn resolve_publishes_a_longer_peer_chain_and_every_node_follows() {
    let net = TestNet::start("split", 3);
    let outsider = TestNet::start("split-outsider", 1);
    let lone = &outsider.nodes[0];
    net.nodes[1].mine();
    net.wait_converged(1, Duration::from_secs(30));
    net.nodes[2].mine();
    net.wait_converged(2, Duration::from_secs(30));
    for _ in 0..5 {
        lone.mine();
    }
    let lone_tip = lone.status()["tip"].clone();

    register(&net.nodes[0], &[&lone.url]);
    let (code, answer) = net.nodes[0].get("/nodes/resolve");
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["message"], "Our chain was replaced", "{answer}");
    assert_eq!(answer["published"], 5, "{answer}");
    assert!(answer["peers"][0]["outcome"].as_str().unwrap().starts_with("more work"), "{answer}");

    let (height, tip) = net.wait_converged(5, Duration::from_secs(30));
    assert_eq!((height, json!(tip)), (5, lone_tip));
    for node in &net.nodes {
        let status = node.status();
        assert_eq!(status["orphans"], 0, "{}: {status}", node.id);
        assert_eq!(status["blocks_next_offset"], 7, "two mined here, five published: {status}");
    }
    // What node 1 mines next extends the shared chain everywhere.
    net.nodes[0].mine();
    let (height, _) = net.wait_converged(6, Duration::from_secs(30));
    assert_eq!(height, 6);
    let chains: Vec<Vec<Value>> = net.nodes.iter().map(NodeProc::chain).collect();
    assert!(chains.iter().all(|c| *c == chains[0]), "nodes disagree on /chain");

    let (_, again) = net.nodes[0].get("/nodes/resolve");
    assert_eq!(again["message"], "Our chain is authoritative", "{again}");
    assert_eq!(again["published"], 0, "{again}");
}

/// The honest peer's chain as blocks, for the liars to distort.
fn blocks_of(node: &NodeProc) -> Vec<Block> {
    node.chain().into_iter().map(|b| serde_json::from_value::<BlockJson>(b).unwrap().try_into().unwrap()).collect()
}

/// A `/chain` answer for `blocks` (already cut to the page), claiming a chain of `length`.
fn page_json(blocks: &[Block], length: usize) -> String {
    let chain: Vec<BlockJson> = blocks
        .iter()
        .map(|b| BlockJson::new(b, kafkachain::core::transaction::ChainTag::of(crate::common::CHAIN_ID)))
        .collect();
    json!({ "chain": chain, "length": length }).to_string()
}

/// Serves `blocks` honestly, page by page.
fn honest_page(blocks: &[Block], path: &str) -> String {
    let (from, limit) = chain_query(path);
    let from = (from as usize).min(blocks.len());
    let to = (from + limit as usize).min(blocks.len());
    page_json(&blocks[from..to], blocks.len())
}

#[test]
fn lying_flooding_and_stalling_peers_are_dropped_and_the_honest_one_is_used() {
    let net = TestNet::start_with("liars", 1, |spec| {
        spec.peers.request_timeout_ms = 2000;
        spec.peers.sync_timeout_ms = 8000;
        spec.peers.max_response_bytes = 4 * 1024 * 1024;
    });
    let honest_net = TestNet::start("liars-honest", 1);
    let (node, honest) = (&net.nodes[0], &honest_net.nodes[0]);
    node.mine();
    for _ in 0..6 {
        honest.mine();
    }
    let blocks = blocks_of(honest);

    // Copies of genesis without end, in one page: the 385 MB page of the report, unbounded.
    let genesis = serde_json::to_string(&BlockJson::new(
        &blocks[0],
        kafkachain::core::transaction::ChainTag::of(crate::common::CHAIN_ID),
    ))
    .unwrap();
    let flood = FakePeer::start(move |_, stream| {
        start_unsized_json(stream)?;
        stream.write_all(b"{\"length\":2,\"chain\":[")?;
        let copies = format!("{genesis},").repeat(1000);
        loop {
            stream.write_all(copies.as_bytes())?;
        }
    });
    // Answers every page from height 0, whatever was asked.
    let wrong_from = {
        let blocks = blocks.clone();
        FakePeer::start(move |path, stream| {
            let (_, limit) = chain_query(path);
            json_answer(stream, &page_json(&blocks[..(limit as usize).min(blocks.len())], blocks.len()))
        })
    };
    // The honest chain with block 3 re-nonced so it no longer meets its proof of work (its
    // claimed hash is recomputed, so only validation can catch it).
    let invalid = {
        let mut blocks = blocks.clone();
        let bad = &mut blocks[3];
        bad.header.nonce += 1;
        while bad.header.meets_own_target() {
            bad.header.nonce += 1;
        }
        FakePeer::start(move |path, stream| json_answer(stream, &honest_page(&blocks, path)))
    };
    // Genesis at once, then one byte every 900 ms.
    let slow = {
        let blocks = blocks.clone();
        FakePeer::start(move |path, stream| {
            if chain_query(path) == (0, 1) {
                return json_answer(stream, &honest_page(&blocks, path));
            }
            start_unsized_json(stream)?;
            for byte in page_json(&blocks, blocks.len()).bytes() {
                stream.write_all(&[byte])?;
                std::thread::sleep(Duration::from_millis(900));
            }
            Ok(())
        })
    };

    let pid = node.pid().unwrap();
    let rss_before = rss_mib(pid);
    register(node, &[&flood.url, &wrong_from.url, &invalid.url, &slow.url, &honest.url]);
    let (code, answer) = node.get("/nodes/resolve");
    assert_eq!(code, 200, "{answer}");
    let outcome = |url: &str| {
        answer["peers"].as_array().unwrap().iter().find(|p| p["node"] == url).unwrap()["outcome"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(outcome(&flood.url).contains("exceeded 4194304 bytes"), "{answer}");
    assert!(outcome(&wrong_from.url).contains("inconsistent page"), "{answer}");
    assert!(outcome(&invalid.url).contains("height 3 is invalid"), "{answer}");
    assert!(outcome(&invalid.url).contains("proof of work"), "{answer}");
    assert!(outcome(&slow.url).starts_with("dropped"), "{answer}");
    assert!(outcome(&honest.url).starts_with("more work"), "{answer}");
    assert_eq!(answer["message"], "Our chain was replaced", "{answer}");
    assert_eq!(node.status()["tip"], honest.status()["tip"]);
    let grown = rss_mib(pid) - rss_before;
    eprintln!("resolve against a flooding, a lying, an invalid, a stalling and an honest peer: resident {rss_before:.1} MiB before, grew {grown:.1} MiB");
    assert!(grown < 48.0, "resolving against a flood grew the node by {grown:.0} MiB");
    let status = wait_for("the node to stay up", Duration::from_secs(5), || Some(node.status()));
    assert_eq!(status["height"], 6);
}

#[test]
fn slow_peers_each_use_only_their_share_of_a_resolve_and_the_honest_one_is_still_asked() {
    let net = TestNet::start_with("slow-share", 1, |spec| {
        spec.peers.request_timeout_ms = 4000;
        spec.peers.sync_timeout_ms = 12_000;
    });
    let honest_net = TestNet::start("slow-share-honest", 1);
    let (node, honest) = (&net.nodes[0], &honest_net.nodes[0]);
    node.mine();
    for _ in 0..6 {
        honest.mine();
    }
    let blocks = blocks_of(honest);
    // Honest blocks, but one per page and 2.5 s per page: within every request timeout, and
    // slow enough that any one of them would use up the whole resolve (6 pages, 15 s; the
    // probes for the fork point are answered at once). Each gets a quarter of what is left.
    let slow: Vec<FakePeer> = (0..3)
        .map(|_| {
            let blocks = blocks.clone();
            FakePeer::start(move |path, stream| {
                let (from, limit) = chain_query(path);
                if limit > 1 {
                    std::thread::sleep(Duration::from_millis(2500));
                }
                let from = (from as usize).min(blocks.len());
                json_answer(stream, &page_json(&blocks[from..(from + 1).min(blocks.len())], blocks.len()))
            })
        })
        .collect();
    let mut peers: Vec<&str> = slow.iter().map(|p| p.url.as_str()).collect();
    peers.push(&honest.url);
    register(node, &peers);
    let (code, answer) = node.get("/nodes/resolve");
    assert_eq!(code, 200, "{answer}");
    // Whatever the order, the honest peer is asked (format 4 asked it only when it came first).
    let honest_outcome = answer["peers"].as_array().unwrap().iter().find(|p| p["node"] == honest.url).unwrap();
    assert!(honest_outcome["outcome"].as_str().unwrap().starts_with("more work"), "{answer}");
    assert_eq!(answer["message"], "Our chain was replaced", "{answer}");
    assert_eq!(node.status()["tip"], honest.status()["tip"]);
}
