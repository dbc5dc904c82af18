//! Poison in the topics: garbage, an unknown format version, invalid blocks and a duplicate,
//! produced straight into Kafka, are rejected and counted, and the node keeps applying the valid
//! blocks behind them.

use crate::common::{produce, wait_for, TestNet};
use kafkachain::core::block::Block;
use kafkachain::core::hash::BlockHash;
use kafkachain::core::miner::solved;
use kafkachain::core::transaction::Transaction;
use kafkachain::core::transaction::{ChainTag, Transfer};
use kafkachain::json::BlockJson;
use kafkachain::kafka::wire::{encode_message, FORMAT_VERSION};
use kafkachain::tools::cluster::LOAD_ACCOUNTS;
use kafkachain::tools::load::{miner_address, LoadAccounts};
use std::time::Duration;

fn child_of(parent: &Block, prev_hash: BlockHash, height: u64, extra: Vec<Transaction>) -> Block {
    let mut txs = vec![Transaction::reward(miner_address("intruder"), 50, height)];
    txs.extend(extra);
    let chain = ChainTag::of(crate::common::CHAIN_ID);
    solved(Block::candidate(chain, prev_hash, height - 1, parent.header.bits, parent.header.timestamp_ms + 1, txs))
        .unwrap()
}

#[test]
fn poison_is_counted_and_valid_blocks_behind_it_apply() {
    let net = TestNet::start("poison", 1);
    let node = &net.nodes[0];
    node.mine();
    let chain = node.chain();
    let tip: Block = serde_json::from_value::<BlockJson>(chain[1].clone()).unwrap().try_into().unwrap();
    let genesis: Block = serde_json::from_value::<BlockJson>(chain[0].clone()).unwrap().try_into().unwrap();

    let mut unknown_version = encode_message(&tip);
    unknown_version[0] = 0x7f;
    let mut bad_pow = child_of(&tip, tip.hash(), 2, vec![]);
    while bad_pow.header.meets_own_target() {
        bad_pow.header.nonce += 1;
    }
    let wrong_prev = child_of(&tip, genesis.hash(), 2, vec![]); // known parent, wrong height
    let unknown_parent = child_of(&tip, BlockHash::new([7; 32]), 2, vec![]);
    // Load account 200 (funded at genesis, unused by the named transfers of this test).
    let transfer = LoadAccounts::new(LOAD_ACCOUNTS).transfer(ChainTag::of(crate::common::CHAIN_ID), 200);
    let valid = child_of(&tip, tip.hash(), 2, vec![Transaction::Transfer(transfer.clone())]);

    let blocks_topic = format!("{}.blocks", net.prefix);
    produce(
        &blocks_topic,
        &[
            [&[FORMAT_VERSION][..], b"\xff\xff\xffnot a block at all"].concat(),
            Vec::new(),
            unknown_version,
            encode_message(&bad_pow),
            encode_message(&wrong_prev),
            encode_message(&unknown_parent),
            encode_message(&tip), // duplicate
            encode_message(&valid),
        ],
    );
    let tx_topic = format!("{}.transactions", net.prefix);
    produce(
        &tx_topic,
        &[
            vec![FORMAT_VERSION, 2, 3],
            [&[FORMAT_VERSION][..], b"garbage"].concat(),
            encode_message(&Transfer { amount: 0, ..transfer.clone() }),
        ],
    );

    let status =
        wait_for("the valid block behind the poison, and the transaction poison", Duration::from_secs(30), || {
            let s = node.status();
            // The zero-amount transfer (its signature no longer matches either) is refused by
            // the cheap field rules before any signature check.
            (s["height"] == 2 && s["rejected"]["tx_malformed"] == 1).then_some(s)
        });
    assert_eq!(status["tip"], valid.hash().to_hex());
    let rejected = &status["rejected"];
    assert_eq!(rejected["malformed"], 4, "two block and two transaction messages: {status}");
    assert_eq!(rejected["unknown_version"], 1, "{status}");
    assert_eq!(rejected["bad_pow"], 1, "{status}");
    assert_eq!(rejected["bad_height"], 1, "{status}");
    assert_eq!(rejected["duplicate"], 1, "{status}");
    assert_eq!(status["orphans"], 1, "the block with an unknown parent waits: {status}");
    assert_eq!(status["mempool"], 0, "no poison reached the mempool: {status}");

    // The node still works end to end after the poison.
    node.submit("grace", "heidi", 9);
    let mined = node.mine();
    assert_eq!(mined["index"], 3);
    let chain = node.chain();
    assert_eq!(chain.len(), 4);
    assert_eq!(chain[2]["hash"], valid.hash().to_hex());
}
