//! Bad HTTP input gets a 4xx with a JSON error naming the problem; nothing reaches the chain and
//! the node keeps serving.

use crate::common::{assert_json_error, TestNet};
use kafkachain::core::account::Address;
use kafkachain::core::transaction::{ChainTag, Transfer};
use kafkachain::json::SignedTransferJson;
use kafkachain::tools::cluster::LOAD_ACCOUNTS;
use kafkachain::tools::load::{derived_key, LoadAccounts};
use serde_json::Value;

#[test]
fn malformed_requests_are_refused_with_json_errors() {
    let net = TestNet::start("http-input", 1);
    let node = &net.nodes[0];
    let post = |body: &str| node.post("/transactions/new", body.to_owned());

    assert_json_error(post("{not json"), 400, "invalid JSON");
    assert_json_error(post(""), 400, "invalid JSON");
    assert_json_error(post(r#"[1,2,3]"#), 400, "invalid transfer");
    assert_json_error(post(r#"{"sender":"a","recipient":"b","amount":1}"#), 400, "transfers must be signed");

    // A well-formed transfer from a key the genesis does not fund, and variations of it.
    let chain = ChainTag::of(crate::common::CHAIN_ID);
    let stranger = derived_key("http-input-stranger");
    let sign = |to: Address, amount: u64, chain: ChainTag| Transfer::sign(&stranger, chain, to, amount, 0, 0);
    let body = |t: &Transfer| serde_json::json!(SignedTransferJson::from(t));
    let template = body(&sign(Address::new([9; 32]), 5, chain));
    let with = |field: &str, value: Value| {
        let mut changed = template.clone();
        changed[field] = value;
        changed.to_string()
    };
    let without = |field: &str| {
        let mut changed = template.clone();
        changed.as_object_mut().unwrap().remove(field);
        changed.to_string()
    };
    assert_json_error(post(&without("amount")), 400, "missing field `amount`");
    assert_json_error(post(&without("nonce")), 400, "missing field `nonce`");
    assert_json_error(post(&with("sender", Value::from(5))), 400, "invalid type");
    assert_json_error(post(&with("sender", Value::from(""))), 400, "64 hex characters");
    assert_json_error(post(&with("amount", Value::from("5"))), 400, "invalid type");
    assert_json_error(post(&with("amount", Value::from(-5))), 400, "invalid value");
    assert_json_error(post(&with("amount", serde_json::json!(2.5))), 400, "invalid type");
    assert_json_error(post(&with("signature", Value::from("ab"))), 400, "128 hex characters");
    assert_json_error(post(&with("id", Value::from("00".repeat(32)))), 400, "not what the fields hash to");
    assert_json_error(post(&with("extra", Value::from(1))), 400, "unknown field");
    let refused = |body: String, code: u16, rule: &str| {
        let (status, answer) = post(&body);
        assert_eq!((status, answer["rule"].as_str()), (code, Some(rule)), "{answer}");
    };
    // Signatures are checked after the cheap rules, so these come from a funded account (load
    // account 250, which none of the names below maps to) with its next nonce.
    let funded = LoadAccounts::new(LOAD_ACCOUNTS);
    let mut forged = Transfer::sign(funded.key(250), chain, Address::new([9; 32]), 5, 0, 0);
    forged.amount = 6;
    refused(body(&forged).to_string(), 400, "bad_signature");
    let other_chain = Transfer::sign(funded.key(250), ChainTag::of("another-chain"), Address::new([9; 32]), 5, 0, 0);
    refused(body(&other_chain).to_string(), 400, "bad_signature");
    refused(body(&sign(Address::new([9; 32]), 0, chain)).to_string(), 400, "zero_amount");
    refused(body(&sign(Address::of_key(&stranger), 5, chain)).to_string(), 400, "self_transfer");
    refused(template.to_string(), 409, "insufficient_funds");
    // The all-zero address is a small-order key: R = identity and S = 0 verify for it under
    // ZIP-215, so anyone could spend what it holds; it may not send at all.
    let mut identity_r = [0u8; 64];
    identity_r[0] = 1;
    let burn = Address::new([0; 32]);
    let from_burn = Transfer {
        sender: burn,
        recipient: Address::new([9; 32]),
        amount: 5,
        fee: 0,
        nonce: 0,
        signature: kafkachain::core::signature::Signature(identity_r),
    };
    refused(body(&from_burn).to_string(), 400, "small_order_sender");
    let huge = with("extra", Value::from("y".repeat(200_000)));
    assert_json_error(post(&huge), 413, "length limit");

    assert_json_error(node.get("/chain?from=abc"), 400, "from");
    assert_json_error(node.get("/nowhere"), 404, "no such endpoint");
    assert_json_error(node.get("/transactions/new"), 405, "method not allowed");
    assert_json_error(node.post("/nodes/register", r#"{"nodes":[]}"#), 400, "at least one");
    assert_json_error(node.post("/nodes/register", r#"{"nodes":["ftp://x:1"]}"#), 400, "http://");
    assert_json_error(
        node.post("/nodes/register", r#"{"nodes":["http://me:secret@x:1"]}"#),
        400,
        "without credentials",
    );
    assert_json_error(node.post("/nodes/register", r#"{"nodes":["http://x:1/?redirect=y"]}"#), 400, "query");
    assert_json_error(node.post("/nodes/register", r#"{"nodes":["http://[::1"]}"#), 400, "invalid node address");
    assert_json_error(node.post("/nodes/register", r#"{"nodes":"x"}"#), 400, "invalid type");

    let batch = |entries: Vec<Value>| {
        node.post("/transactions/batch", serde_json::json!({ "transactions": entries }).to_string())
    };
    let bad = serde_json::from_str::<Value>(&with("amount", Value::from(-2))).unwrap();
    assert_json_error(batch(vec![template.clone(), bad]), 400, "transaction 1: invalid transfer");
    assert_json_error(batch(vec![]), 400, "1 to 1000");
    assert_json_error(batch(vec![template.clone(); 1001]), 400, "1 to 1000");

    // Nothing reached the topics or the chain, and the node still works.
    let status = node.status();
    assert_eq!(status["consumed_since_start"], 0, "{status}");
    assert_eq!(status["height"], 0);
    node.submit("alice", "bob", 1);
    let signed: Vec<Value> = ["carol", "dave", "erin"]
        .iter()
        .map(|name| serde_json::from_str(&node.signed_body(name, "shop", 2)).unwrap())
        .collect();
    let (code, answer) = batch(signed);
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["transaction_ids"].as_array().unwrap().len(), 3);
    assert_eq!(node.mine()["transactions"].as_array().unwrap().len(), 5, "reward, one single and three batched");
}

/// A client without the operator token cannot mine, register peers or resolve; a wrong token is
/// refused alike; reads stay open.
#[test]
fn operator_endpoints_need_the_token_and_bodies_must_be_json() {
    let net = TestNet::start("http-guards", 1);
    let node = &net.nodes[0];
    let http = reqwest::blocking::Client::new();
    let url = |path: &str| format!("{}{path}", node.url);
    let json_error = |response: reqwest::blocking::Response| -> (u16, String) {
        let code = response.status().as_u16();
        let body: Value = response.json().unwrap();
        (code, body["error"].as_str().unwrap().to_owned())
    };
    let register = r#"{"nodes":["http://127.0.0.1:1"]}"#;
    for token in [None, Some("wrong"), Some("")] {
        let with = |request: reqwest::blocking::RequestBuilder| match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        let (code, error) = json_error(with(http.get(url("/mine"))).send().unwrap());
        assert_eq!(code, 401, "{error}");
        assert!(error.contains("operator token"), "{error}");
        let (code, _) = json_error(with(http.get(url("/nodes/resolve"))).send().unwrap());
        assert_eq!(code, 401);
        let request = with(http.post(url("/nodes/register"))).header("content-type", "application/json").body(register);
        assert_eq!(json_error(request.send().unwrap()).0, 401);
    }
    assert_eq!(http.get(url("/status")).send().unwrap().status(), 200, "reads need no token");
    assert_eq!(node.status()["height"], 0, "nothing was mined");
    assert_eq!(node.peers_registered(), 0, "no peer was registered");

    // A body that is not declared JSON is refused before it is read, whatever it holds.
    let transfer = node.signed_body("a", "b", 1);
    for content_type in
        [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data")]
    {
        let mut request = http.post(url("/transactions/new")).body(transfer.clone());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let (code, error) = json_error(request.send().unwrap());
        assert_eq!(code, 415, "{content_type:?}: {error}");
        assert!(error.contains("application/json"), "{error}");
    }
    let accepted = http
        .post(url("/transactions/new"))
        .header("content-type", "application/json; charset=utf-8")
        .body(transfer)
        .send()
        .unwrap();
    assert_eq!(accepted.status(), 201);
    // With the token from the cookie, the operator endpoints work.
    assert_eq!(node.mine()["index"], 1);
}

/// A transfer this node's mempool cannot take is refused before it is published (503), instead
/// of being acknowledged and then dropped; once a block makes room, transfers are taken again.
#[test]
fn a_full_mempool_refuses_before_publishing() {
    let net = TestNet::start_with("mempool-full", 1, |spec| spec.storage.max_mempool = 3);
    let node = &net.nodes[0];
    for i in 0..3 {
        node.submit("alice", "bob", i + 1);
    }
    crate::common::wait_for("three pooled transfers", std::time::Duration::from_secs(30), || {
        (node.status()["mempool"] == 3).then_some(())
    });
    assert_json_error(node.post("/transactions/new", node.signed_body("alice", "bob", 9)), 503, "mempool is full");
    let batch = format!(r#"{{"transactions":[{}]}}"#, node.signed_body("carol", "dave", 1));
    assert_json_error(node.post("/transactions/batch", batch), 503, "mempool is full");
    let status = node.status();
    assert_eq!(crate::common::transactions_read(&status), 3, "the refused transfers never reached the topic: {status}");
    assert!(status["rejected"].get("tx_mempool_full").is_none(), "{status}");
    assert_eq!(node.mine()["transactions"].as_array().unwrap().len(), 4);
    node.submit("alice", "bob", 10);
}

#[test]
fn a_client_over_its_allowance_of_submitted_transfers_is_answered_429_with_retry_after() {
    let net = TestNet::start_with("submit-rate", 1, |spec| {
        spec.http.submit_per_sec = 1;
        spec.http.submit_burst = 1_000;
    });
    let node = &net.nodes[0];
    let chain = ChainTag::of(crate::common::CHAIN_ID);
    let stranger = derived_key("submit-rate-stranger");
    let body =
        |nonce: u64| SignedTransferJson::from(&Transfer::sign(&stranger, chain, Address::new([9; 32]), 5, 0, nonce));
    // A whole batch uses up the burst whatever becomes of it (these are refused: no funds).
    let batch = serde_json::json!({ "transactions": (0..1_000).map(body).collect::<Vec<_>>() }).to_string();
    let (code, answer) = node.post("/transactions/batch", batch);
    assert_eq!((code, answer["rule"].as_str()), (409, Some("insufficient_funds")), "{answer}");
    let answer = reqwest::blocking::Client::new()
        .post(format!("{}/transactions/new", node.url))
        .header("content-type", "application/json")
        .body(serde_json::json!(body(0)).to_string())
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 429);
    let retry_after: u64 = answer.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    let refusal: Value = answer.json().unwrap();
    assert_eq!(refusal["rule"], "rate_limited", "{refusal}");
    let (_, _, metrics) = node.get_text("/metrics");
    assert!(
        metrics.lines().any(|l| l.contains("kafkachain_http_requests_total") && l.contains("\"429\"")),
        "{metrics}"
    );
}
