//! Fuzzed input. Thousands of generated and malformed HTTP requests (proptest over a real HTTP
//! client): never a 5xx, never a crash, the chain untouched. Random byte strings and mutated
//! valid blocks written straight into both topics: all rejected and counted, and the valid block
//! behind them still applies.

use crate::common::{produce, wait_for, TestNet};
use kafkachain::core::block::Block;
use kafkachain::core::testkit::paying_child;
use kafkachain::json::BlockJson;
use kafkachain::kafka::wire::encode_message;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use std::time::Duration;

const PATHS: &[&str] = &[
    "/transactions/new",
    "/transactions/batch",
    "/chain",
    "/nodes/register",
    "/status",
    "/metrics",
    "/metrics/blocks",
    "/blocks",
    "/blocks/zz",
    "/blocks/height/18446744073709551616",
    "/mempool",
    "/openapi.json",
    "/",
    "/explorer/explorer.js",
    "/explorer/explorer.css",
    "/explorer/",
    "/chain/../status",
    "/transactions",
    "/%ff%00",
];

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies close to what the endpoints expect, with fields of any type, and plain garbage.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        any_json().prop_map(|v| v.to_string().into_bytes()),
        (any_json(), any_json(), any_json())
            .prop_map(|(s, r, a)| json!({ "sender": s, "recipient": r, "amount": a }).to_string().into_bytes()),
        prop::collection::vec(any_json(), 0..4)
            .prop_map(|t| json!({ "transactions": t, "nodes": t }).to_string().into_bytes()),
        ".{0,60}".prop_map(|s| json!({ "nodes": [s] }).to_string().into_bytes()),
    ]
}

#[derive(Debug, Clone)]
struct Request {
    method: &'static str,
    path: String,
    body: Vec<u8>,
}

fn request() -> impl Strategy<Value = Request> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]);
    let path = (prop::sample::select(PATHS), prop::option::of("[a-z=&0-9%-]{0,20}")).prop_map(|(p, q)| match q {
        Some(q) => format!("{p}?{q}"),
        None => p.to_owned(),
    });
    (method, path, body()).prop_map(|(method, path, body)| Request { method, path, body })
}

#[test]
fn generated_http_requests_never_get_a_5xx_or_touch_the_chain() {
    let net = TestNet::start("fuzz-http", 1);
    let node = &net.nodes[0];
    let before = node.status();
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let mut runner = TestRunner::new(Config { cases: 3000, failure_persistence: None, ..Config::default() });
    let result = runner.run(&request(), |req| {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
        let response = http
            .request(method, format!("{}{}", node.url, req.path))
            .header("content-type", "application/json")
            .body(req.body.clone())
            .send();
        let response = response.map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
        let status = response.status().as_u16();
        prop_assert!(status < 500, "{} {} answered {status}", req.method, req.path);
        if status >= 400 {
            let body: Value = response.json().map_err(|e| TestCaseError::fail(format!("error body not JSON: {e}")))?;
            prop_assert!(body["error"].is_string(), "error without a message: {body}");
        }
        Ok(())
    });
    result.unwrap();
    let after = node.status();
    assert_eq!(after["height"], before["height"], "the chain changed");
    assert_eq!(after["tip"], before["tip"]);
    assert_eq!(after["rejected"], before["rejected"], "something reached the topics unvalidated");
}

#[test]
fn random_and_mutated_messages_are_rejected_and_counted() {
    // 20 bits: a mutated block passes proof of work with probability 2^-20.
    let net = TestNet::start_with("fuzz-topics", 1, |spec| spec.chain.bits = 20);
    let node = &net.nodes[0];
    node.mine();
    let tip: Block = serde_json::from_value::<BlockJson>(node.chain()[1].clone()).unwrap().try_into().unwrap();
    let chain = kafkachain::core::transaction::ChainTag::of(crate::common::CHAIN_ID);
    let transfer =
        kafkachain::tools::load::LoadAccounts::new(kafkachain::tools::cluster::LOAD_ACCOUNTS).transfer(chain, 0);
    let valid = paying_child(chain, &tip, kafkachain::tools::load::miner_address("fuzzer"), 50, [transfer]);
    let encoded = encode_message(&valid);

    let mut runner = TestRunner::new(Config { failure_persistence: None, ..Config::default() });
    let garbage = prop::collection::vec(any::<u8>(), 0..400);
    let mutation = (prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4), any::<bool>());
    let mut block_poison = Vec::new();
    let mut tx_poison = Vec::new();
    for _ in 0..300 {
        block_poison.push(garbage.new_tree(&mut runner).unwrap().current());
        tx_poison.push(garbage.new_tree(&mut runner).unwrap().current());
        let (flips, truncate) = mutation.new_tree(&mut runner).unwrap().current();
        let mut mutated = encoded.clone();
        for (at, xor) in flips {
            let i = at.index(mutated.len() - 1) + 1; // keep the version byte: test the body
            mutated[i] ^= xor;
        }
        if truncate {
            mutated.truncate(mutated.len() - 1);
        }
        block_poison.push(mutated);
    }
    produce(&format!("{}.blocks", net.prefix), &block_poison);
    produce(&format!("{}.transactions", net.prefix), &tx_poison);
    produce(&format!("{}.blocks", net.prefix), &[encoded]);

    // Every message stored past (the mined block, the poison, the valid block; the transaction
    // poison) and each poison message counted: a message counts as consumed before its batch is
    // stored, so the consumed count alone can run ahead of the rejections.
    let poison = (block_poison.len() + tx_poison.len()) as u64;
    let status =
        wait_for("the valid block behind the poison, every poison message counted", Duration::from_secs(60), || {
            let s = node.status();
            let applied = s["blocks_next_offset"] == block_poison.len() as u64 + 2
                && crate::common::transactions_read(&s) == tx_poison.len() as u64;
            let rejected: u64 = s["rejected"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
            let counted = rejected + s["mempool"].as_u64().unwrap() + s["orphans"].as_u64().unwrap() == poison;
            (s["height"] == 2 && applied && counted).then_some(s)
        });
    assert_eq!(status["tip"], valid.hash().to_hex());
    assert_eq!(status["applied_since_start"], 2, "only the two real blocks were stored: {status}");
    assert_eq!(node.mine()["index"], 3, "the node still mines after the poison");
}
