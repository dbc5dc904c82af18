//! Funds belong to keys, against the real broker: signed transfers move balances and nonces,
//! every broken rule is refused with its reason (over HTTP) or rejected and counted (from the
//! topics), the node keeps going, and a reorganization keeps exactly the winning branch's
//! spending.

use crate::common::{produce, wait_for, NodeProc, TestNet, CHAIN_ID};
use kafkachain::core::account::Address;
use kafkachain::core::block::Block;
use kafkachain::core::miner::solved;
use kafkachain::core::signature::Signature;
use kafkachain::core::transaction::{ChainTag, Transaction, Transfer};
use kafkachain::json::SignedTransferJson;
use kafkachain::kafka::wire::encode_message;
use kafkachain::tools::cluster::LOAD_ACCOUNTS;
use kafkachain::tools::load::{derived_key, miner_address, LoadAccounts};
use serde_json::Value;
use std::time::Duration;

fn chain() -> ChainTag {
    ChainTag::of(CHAIN_ID)
}

/// Posts one transfer: the status code and the answer.
fn send(node: &NodeProc, transfer: &Transfer) -> (u16, Value) {
    node.post("/transactions/new", serde_json::json!(SignedTransferJson::from(transfer)).to_string())
}

/// Posts a transfer that must be refused with `rule`.
fn refused(node: &NodeProc, transfer: &Transfer, code: u16, rule: &str) {
    let (status, answer) = send(node, transfer);
    assert_eq!((status, answer["rule"].as_str()), (code, Some(rule)), "{answer}");
}

fn account(node: &NodeProc, address: Address) -> Value {
    let (code, answer) = node.get(&format!("/accounts/{address}"));
    assert_eq!(code, 200, "{answer}");
    answer
}

/// A mined block on `parent` holding `transfers` (no fees), its reward to `miner`.
fn block_on(parent: &Block, miner: &str, transfers: &[Transfer]) -> Block {
    let mut txs = vec![Transaction::reward(miner_address(miner), 50, parent.header.height + 1)];
    txs.extend(transfers.iter().cloned().map(Transaction::Transfer));
    let timestamp = kafkachain::clock::now_ms().max(parent.header.timestamp_ms + 1);
    solved(Block::candidate(chain(), parent.hash(), parent.header.height, parent.header.bits, timestamp, txs)).unwrap()
}

#[test]
fn signed_transfers_move_funds_and_every_broken_rule_is_refused() {
    let net = TestNet::start("ownership", 1);
    let node = &net.nodes[0];
    let accounts = LoadAccounts::new(LOAD_ACCOUNTS);
    let (alice, bob) = (accounts.key(10), Address::new([0xb0; 32]));
    let alice_address = accounts.address(10);
    let pay = |amount: u64, fee: u64, nonce: u64| Transfer::sign(alice, chain(), bob, amount, fee, nonce);

    let first = pay(1_000, 7, 0);
    let (code, answer) = send(node, &first);
    assert_eq!(code, 201, "{answer}");
    let id = answer["transaction_id"].as_str().unwrap().to_owned();
    wait_for("the transfer read back into the mempool", Duration::from_secs(30), || {
        (node.get(&format!("/transactions/{id}")).1["status"] == "pending").then_some(())
    });
    let mined = node.mine();
    assert_eq!(mined["transactions"][0]["amount"], 50 + 7, "the reward is the subsidy plus the fee");
    assert_eq!(account(node, bob)["balance"], 1_000);
    let sender = account(node, alice_address);
    assert_eq!((sender["balance"].as_u64(), sender["nonce"].as_u64()), (Some(1_000_000_000_000 - 1_007), Some(1)));
    let (code, found) = node.get(&format!("/transactions/{id}"));
    assert_eq!(
        (code, &found["status"], &found["height"]),
        (200, &Value::from("confirmed"), &Value::from(1)),
        "{found}"
    );

    // Replays and broken rules, each refused with its reason before anything is published.
    refused(node, &first, 409, "nonce_used");
    let mut forged = pay(5, 0, 1);
    forged.amount = 6;
    refused(node, &forged, 400, "bad_signature");
    refused(node, &Transfer::sign(alice, ChainTag::of("another-chain"), bob, 5, 0, 1), 400, "bad_signature");
    refused(node, &pay(5, 0, 1 + 65), 409, "nonce_too_far");
    refused(node, &pay(1_000_000_000_000, 0, 1), 409, "insufficient_funds");
    refused(node, &pay(u64::MAX, 1, 1), 400, "amount_overflow");
    let stranger = derived_key("ownership-stranger");
    refused(node, &Transfer::sign(&stranger, chain(), bob, 1, 0, 0), 409, "insufficient_funds");

    // A nonce gap: nonce 3 waits in the mempool until 1 and 2 arrive, then all three are mined.
    assert_eq!(send(node, &pay(3, 0, 3)).0, 201);
    assert_eq!(account(node, alice_address)["pending_nonce"], 1, "the gap at 1 holds it back");
    assert_eq!(node.mine()["transactions"].as_array().unwrap().len(), 1, "only the reward");
    assert_eq!(send(node, &pay(1, 0, 1)).0, 201);
    assert_eq!(send(node, &pay(2, 0, 2)).0, 201);
    let nonces: Vec<u64> =
        node.mine()["transactions"].as_array().unwrap()[1..].iter().map(|t| t["nonce"].as_u64().unwrap()).collect();
    assert_eq!(nonces, [1, 2, 3]);
    assert_eq!(account(node, bob)["balance"], 1_006);

    // From the topics, where anyone can write: a transfer with a bad signature, and a mined
    // block holding one. Each is rejected and counted; the node goes on.
    let mut bad = pay(9, 0, 4);
    bad.signature = Signature([7; 64]);
    produce(&format!("{}.transactions", net.prefix), &[encode_message(&bad)]);
    let tip = crate::common::tip_block(&node.chain());
    let smuggler = block_on(&tip, "smuggler", &[bad]);
    produce(&format!("{}.blocks", net.prefix), &[encode_message(&smuggler)]);
    let status = wait_for("both rejections counted", Duration::from_secs(30), || {
        let s = node.status();
        (s["rejected"]["tx_bad_signature"] == 1 && s["rejected"]["bad_signature"] == 1).then_some(s)
    });
    assert_eq!(status["tip"], tip.hash().to_hex(), "{status}");
    assert_eq!(status["mempool"], 0, "{status}");
    assert_eq!(send(node, &pay(4, 0, 4)).0, 201);
    assert_eq!(node.mine()["transactions"].as_array().unwrap().len(), 2, "the node keeps going");
}

#[test]
fn competing_blocks_spending_the_same_funds_keep_only_the_winning_branch() {
    let net = TestNet::start("double-spend", 1);
    let node = &net.nodes[0];
    let accounts = LoadAccounts::new(LOAD_ACCOUNTS);
    let (shop_a, shop_b, other) = (Address::new([0xa1; 32]), Address::new([0xb2; 32]), Address::new([0xc3; 32]));
    let spender = accounts.key(20);
    let to_a = Transfer::sign(spender, chain(), shop_a, 700_000_000_000, 0, 0);
    let to_b = Transfer::sign(spender, chain(), shop_b, 700_000_000_000, 0, 0);
    let bystander = Transfer::sign(accounts.key(21), chain(), other, 5, 0, 0);

    let genesis = crate::common::tip_block(&node.chain());
    let first = block_on(&genesis, "a", &[to_a.clone(), bystander.clone()]);
    let rival = block_on(&genesis, "b", std::slice::from_ref(&to_b));
    let rival_child = block_on(&rival, "b", &[]);
    let blocks = format!("{}.blocks", net.prefix);
    produce(&blocks, &[encode_message(&first), encode_message(&rival)]);
    wait_for("both branches stored", Duration::from_secs(30), || {
        (node.status()["blocks_next_offset"] == 2).then_some(())
    });
    assert_eq!(node.status()["tip"], first.hash().to_hex(), "on a tie the first block stays");
    assert_eq!(account(node, shop_a)["balance"], 700_000_000_000u64);

    produce(&blocks, &[encode_message(&rival_child)]);
    wait_for("the rival branch to win", Duration::from_secs(30), || {
        (node.status()["tip"] == rival_child.hash().to_hex()).then_some(())
    });
    assert_eq!(account(node, shop_a)["balance"], 0, "the losing branch's spending is undone");
    assert_eq!(account(node, shop_b)["balance"], 700_000_000_000u64);
    assert_eq!(account(node, accounts.address(20))["nonce"], 1);
    let (code, _) = node.get(&format!("/transactions/{}", to_a.id(chain())));
    assert_eq!(code, 404, "the conflicting transfer is dropped: its nonce is used on the winning branch");
    let (code, back) = node.get(&format!("/transactions/{}", bystander.id(chain())));
    assert_eq!((code, &back["status"]), (200, &Value::from("pending")), "the bystander returns to the mempool");
    let mined = node.mine();
    assert_eq!(mined["transactions"][1]["id"], bystander.id(chain()).to_hex());
    assert_eq!(account(node, other)["balance"], 5);
}
