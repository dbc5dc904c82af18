//! A fee buys a transfer its way in, on a real broker: into a mempool that a flood of free
//! transfers filled (the answer says how much it takes), into the next block ahead of them, and
//! in place of the sender's own pending transfer with the same nonce.

use crate::common::{produce, wait_for, NodeProc, TestNet};
use kafkachain::core::account::Address;
use kafkachain::core::transaction::{ChainTag, Transfer};
use kafkachain::json::SignedTransferJson;
use kafkachain::kafka::wire::encode_message;
use kafkachain::tools::cluster::LOAD_ACCOUNTS;
use kafkachain::tools::load::LoadAccounts;
use serde_json::Value;
use std::time::Duration;

const POOL: u64 = 200;

fn post(node: &NodeProc, transfer: &Transfer) -> (u16, Value) {
    node.post("/transactions/new", serde_json::json!(SignedTransferJson::from(transfer)).to_string())
}

/// Waits until the node has read `count` transaction messages back from the topic.
fn wait_read(node: &NodeProc, count: u64) -> Value {
    wait_for(&format!("{count} transaction messages read"), Duration::from_secs(60), || {
        let status = node.status();
        (crate::common::transactions_read(&status) >= count).then_some(status)
    })
}

#[test]
fn a_fee_buys_room_in_a_full_mempool_a_place_in_the_next_block_and_a_replacement() {
    let net = TestNet::start_with("fees", 1, |spec| {
        spec.storage.max_mempool = POOL;
        spec.chain.max_block_txs = 11;
    });
    let node = &net.nodes[0];
    let funded = LoadAccounts::new(LOAD_ACCOUNTS);
    let chain = ChainTag::of(crate::common::CHAIN_ID);
    let to = Address::new([7; 32]);
    let pay = |account: usize, fee: u64, nonce: u64| Transfer::sign(funded.key(account), chain, to, 5, fee, nonce);

    // Anyone who can write to the topic fills every mempool with transfers paying 3.
    let flood: Vec<Transfer> = (0..POOL as usize).map(|account| pay(account, 3, 0)).collect();
    produce(&format!("{}.transactions", net.prefix), &flood.iter().map(encode_message).collect::<Vec<_>>());
    let status = wait_read(node, POOL);
    assert_eq!(status["mempool"], POOL, "{status}");

    // Paying no more than the flood is refused before it is published, with the price of entry.
    let (code, answer) = post(node, &pay(200, 3, 0));
    assert_eq!((code, answer["rule"].as_str()), (503, Some("mempool_full")), "{answer}");
    let min_fee = answer["min_fee"].as_u64().unwrap_or_else(|| panic!("no min_fee in {answer}"));
    assert!(min_fee > 3, "{answer}");
    let (code, answer) = post(node, &pay(200, min_fee - 1, 0));
    assert_eq!(code, 503, "one less than the quoted fee is not enough: {answer}");
    let (code, answer) = post(node, &pay(200, min_fee, 0));
    assert_eq!(code, 201, "the quoted fee is: {answer}");

    // Ten senders paying 50 each take the place of the flood's transfers too.
    let rich: Vec<Transfer> = (201..211).map(|account| pay(account, 50, 0)).collect();
    for transfer in &rich {
        let (code, answer) = post(node, transfer);
        assert_eq!(code, 201, "{answer}");
    }
    // One sender replaces its own pending transfer: a tenth more is needed, and then it is in.
    let first = pay(211, 60, 0);
    assert_eq!(post(node, &first).0, 201);
    let status = wait_read(node, POOL + 12);
    assert_eq!(status["mempool"], POOL, "each paying transfer evicted one of the flood: {status}");
    let (code, answer) = post(node, &pay(211, 61, 0));
    assert_eq!((code, answer["rule"].as_str(), answer["min_fee"].as_u64()), (409, Some("nonce_taken"), Some(66)));
    let replacement = pay(211, 66, 0);
    assert_eq!(post(node, &replacement).0, 201);
    wait_for("the replacement to take its predecessor's place", Duration::from_secs(60), || {
        let gone = node.get(&format!("/transactions/{}", first.id(chain).to_hex())).0 == 404;
        let pooled = node.get(&format!("/transactions/{}", replacement.id(chain).to_hex())).0 == 200;
        (gone && pooled).then_some(())
    });

    // The next block holds the highest fee first, then the fifties in the order they came.
    let block = node.mine();
    let mined: Vec<(String, u64)> = block["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|t| (t["id"].as_str().unwrap().to_owned(), t["fee"].as_u64().unwrap()))
        .collect();
    let mut expected = vec![(replacement.id(chain).to_hex(), 66)];
    expected.extend(rich.iter().take(9).map(|t| (t.id(chain).to_hex(), 50)));
    assert_eq!(mined, expected, "{block}");
}
