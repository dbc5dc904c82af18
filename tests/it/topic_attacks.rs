//! Whoever can write to the topics cannot stall a node or make it work without bound: a full
//! orphan pool and thousands of junk blocks cost little per message, a fork deeper than the
//! finality depth is refused, and a node configured with other chain parameters says so.

use crate::common::{produce, wait_for, TestNet};
use kafkachain::core::account::Address;
use kafkachain::core::block::Block;
use kafkachain::core::hash::sha256;
use kafkachain::core::hash::BlockHash;
use kafkachain::core::miner::solved;
use kafkachain::core::signature::Signature;
use kafkachain::core::testkit::ShorterHeavierReorg;
use kafkachain::core::transaction::Transaction;
use kafkachain::core::transaction::{ChainTag, Transfer};
use kafkachain::kafka::wire::encode_message;
use kafkachain::tools::load::miner_address;
use std::time::{Duration, Instant};

/// A mined child of `parent` (or of the unknown `prev_hash`) holding `transfers` transfers.
fn block_on(prev_hash: BlockHash, height: u64, bits: u32, transfers: u64, tag: &str) -> Block {
    // Filler: these blocks never get past the orphan pool or the ledger, so the transfers need not
    // be signed or funded, only take room.
    let mut txs = vec![Transaction::reward(miner_address(tag), 50, height)];
    txs.extend((0..transfers).map(|n| {
        Transaction::Transfer(Transfer {
            sender: Address::new(sha256(format!("{tag}-{height}-{n}").as_bytes())),
            recipient: Address::new([1; 32]),
            amount: n + 1,
            fee: 0,
            nonce: n,
            signature: Signature([0; 64]),
        })
    }));
    solved(Block::candidate(
        ChainTag::of(crate::common::CHAIN_ID),
        prev_hash,
        height - 1,
        bits,
        kafkachain::clock::now_ms() + height,
        txs,
    ))
    .unwrap()
}

/// `count` blocks extending `parent`, each mined.
fn valid_chain(parent: &Block, count: u64, tag: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for _ in 0..count {
        let prev = blocks.last().unwrap_or(parent);
        blocks.push(block_on(prev.hash(), prev.header.height + 1, prev.header.bits, 0, tag));
    }
    blocks
}

/// Distinct blocks that fail their proof of work.
fn junk(template: &Block, count: usize) -> Vec<Vec<u8>> {
    let mut block = template.clone();
    (0..count)
        .map(|_| {
            block.header.nonce += 1;
            while block.header.meets_own_target() {
                block.header.nonce += 1;
            }
            encode_message(&block)
        })
        .collect()
}

/// Produces junk followed by 20 valid blocks into `net`'s blocks topic; the time until the node
/// has applied them all.
fn time_through_junk(net: &TestNet, junk_count: usize) -> Duration {
    let node = &net.nodes[0];
    let base = crate::common::tip_block(&node.chain());
    let valid = valid_chain(&base, 20, "honest");
    let mut messages = junk(&valid[0], junk_count);
    messages.extend(valid.iter().map(encode_message));
    let started = Instant::now();
    produce(&format!("{}.blocks", net.prefix), &messages);
    let target = base.header.height + 20;
    wait_for("the valid blocks behind the junk", Duration::from_secs(120), || {
        (node.status()["height"] == target).then_some(())
    });
    started.elapsed()
}

#[test]
fn a_full_orphan_pool_and_ten_thousand_junk_blocks_do_not_stall_valid_blocks() {
    let spec = |spec: &mut kafkachain::tools::cluster::NodeSpec| spec.chain.max_orphans = 256;
    let flooded = TestNet::start_with("orphan-flood", 1, spec);
    let clean = TestNet::start_with("orphan-clean", 1, spec);
    let bits = crate::common::tip_block(&flooded.nodes[0].chain()).header.bits;
    // 256 large blocks (400 transfers, about 57 KiB each: 14 MiB in all, under the pool's 16 MiB)
    // whose parents nobody has.
    let orphans: Vec<Vec<u8>> = (0..256u64)
        .map(|i| {
            encode_message(&block_on(BlockHash::new([(i % 251) as u8 + 1; 32]), 5 + i, bits, 400, &format!("o{i}")))
        })
        .collect();
    let orphan_bytes: usize = orphans.iter().map(Vec::len).sum();
    produce(&format!("{}.blocks", flooded.prefix), &orphans);
    let node = &flooded.nodes[0];
    wait_for("256 orphans pooled", Duration::from_secs(60), || (node.status()["orphans"] == 256).then_some(()));

    let without = time_through_junk(&clean, 10_000);
    let with_orphans = time_through_junk(&flooded, 10_000);
    eprintln!(
        "10,000 junk blocks then 20 valid ones: {} ms behind a full orphan pool ({} orphans, {} MiB), {} ms with none: ratio {:.2}",
        with_orphans.as_millis(),
        256,
        orphan_bytes / (1024 * 1024),
        without.as_millis(),
        with_orphans.as_secs_f64() / without.as_secs_f64()
    );
    let status = node.status();
    assert_eq!(status["rejected"]["bad_pow"], 10_000, "{status}");
    assert_eq!(status["orphans"], 256, "the junk pushed no orphan out: {status}");
    assert_eq!(status["height"], 20);
}

#[test]
fn a_fork_deeper_than_the_finality_depth_is_refused_and_counted() {
    let net = TestNet::start_with("deep-fork", 1, |spec| spec.chain.finality_depth = 3);
    let node = &net.nodes[0];
    let chain: Vec<Block> = (0..6)
        .map(|_| {
            node.mine();
            crate::common::tip_block(&node.chain())
        })
        .collect();
    // A longer branch from height 1: it would carry more work, but it abandons 5 blocks.
    let fork = valid_chain(&chain[0], 7, "deep");
    produce(&format!("{}.blocks", net.prefix), &fork.iter().map(encode_message).collect::<Vec<_>>());
    let status = wait_for("the fork to be read", Duration::from_secs(30), || {
        let s = node.status();
        (s["blocks_next_offset"] == 13).then_some(s)
    });
    assert_eq!(status["rejected"]["beyond_finality"], 1, "{status}");
    assert_eq!(status["tip"], chain[5].hash().to_hex(), "{status}");
    // A shallow fork is still a fork: from height 4, two blocks more than ours win.
    let shallow = valid_chain(&chain[3], 3, "shallow");
    produce(&format!("{}.blocks", net.prefix), &shallow.iter().map(encode_message).collect::<Vec<_>>());
    wait_for("the shallow fork to win", Duration::from_secs(30), || {
        (node.status()["tip"] == shallow[2].hash().to_hex()).then_some(())
    });
}

#[test]
fn a_node_with_other_chain_parameters_says_so() {
    let net = TestNet::start("params-mismatch", 1);
    let odd = TestNet::start_with("params-mismatch-odd", 1, |spec| {
        spec.kafka.topic_prefix = net.prefix.clone();
        spec.chain.reward = 51;
    });
    let (node, stranger) = (&net.nodes[0], &odd.nodes[0]);
    assert_ne!(node.status()["genesis"], stranger.status()["genesis"], "the reward is part of the genesis");
    for _ in 0..10 {
        node.mine();
    }
    let status = wait_for("the mismatch to be reported", Duration::from_secs(30), || {
        let s = stranger.status();
        s["warning"].is_string().then_some(s)
    });
    assert!(status["warning"].as_str().unwrap().contains("chain parameters"), "{status}");
    assert_eq!(status["height"], 0, "{status}");
    assert!(std::fs::read_to_string(&stranger.log).unwrap().contains("chain parameters"));
}

#[test]
fn a_fork_below_the_peak_after_a_reorg_to_a_shorter_heavier_branch_is_refused_and_every_node_keeps_applying() {
    let reorg = ShorterHeavierReorg::build();
    let net = TestNet::start_with("shorter-heavier", 2, |spec| spec.chain = reorg.params.clone());
    let topic = format!("{}.blocks", net.prefix);
    produce(&topic, &reorg.log.iter().map(encode_message).collect::<Vec<_>>());
    // Then forks from heights 0-2: within the finality depth of the lowered tip at 9, but more
    // than it below the peak at 12 (format 4 halted every node on the fork from height 1).
    produce(&topic, &(0..=2).map(|height| encode_message(&reorg.fork_from(height))).collect::<Vec<_>>());
    let end = reorg.log.len() as u64 + 3;
    for node in &net.nodes {
        let status = wait_for("the log and the forks to be read", Duration::from_secs(30), || {
            let s = node.status();
            (s["blocks_next_offset"] == end).then_some(s)
        });
        assert_eq!(status["rejected"]["beyond_finality"], 3, "{status}");
        assert_eq!(status["tip"], reorg.tip().hash().to_hex(), "{status}");
        assert!(status["halted"].is_null(), "{status}");
    }
    // Both nodes go on applying: a block mined on one reaches the other.
    let mined = net.nodes[0].mine();
    assert_eq!(mined["index"], 10, "{mined}");
    net.wait_converged(10, Duration::from_secs(30));
}

/// A transactional producer, as any client with write access could run one.
fn transactional_producer(id: &str) -> rdkafka::producer::BaseProducer {
    use rdkafka::producer::Producer;
    let producer: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", crate::common::brokers())
        .set("transactional.id", id)
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    producer
}

/// Writes `block` to `topic` inside a transaction begun on `producer`, which stays open.
fn send_in_transaction(producer: &rdkafka::producer::BaseProducer, topic: &str, block: &Block) {
    use rdkafka::producer::{BaseRecord, Producer};
    producer.begin_transaction().unwrap();
    producer.send(BaseRecord::<(), _>::to(topic).payload(&encode_message(block))).map_err(|(e, _)| e).unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
}

#[test]
fn an_aborted_or_never_ending_kafka_transaction_on_the_blocks_topic_is_read_alike_and_stalls_no_node() {
    let net = TestNet::start("open-transaction", 3);
    net.nodes[0].mine();
    net.wait_converged(1, Duration::from_secs(30));
    let topic = format!("{}.blocks", net.prefix);
    let base = crate::common::tip_block(&net.nodes[0].chain());

    // A valid block inside a transaction that is aborted, then one inside a transaction left open
    // (the producer stays alive below and never commits).
    let aborted = valid_chain(&base, 1, "aborted").remove(0);
    let producer = transactional_producer(&format!("{}-abort", net.prefix));
    send_in_transaction(&producer, &topic, &aborted);
    rdkafka::producer::Producer::abort_transaction(&producer, Duration::from_secs(30)).unwrap();
    let open = valid_chain(&aborted, 1, "open").remove(0);
    send_in_transaction(&producer, &topic, &open);

    // Every node reads both blocks as blocks like any other (with `read_committed`, every node
    // stayed at height 1 behind the open transaction), and mining goes on on each.
    let (_, on_open) = net.wait_converged(3, Duration::from_secs(30));
    assert_eq!(on_open, open.hash().to_hex());
    for (i, node) in net.nodes.iter().enumerate() {
        let mined = node.mine();
        assert_eq!(mined["index"], 4 + i as u64, "node {i} mines on the open transaction's block: {mined}");
        net.wait_converged(4 + i as u64, Duration::from_secs(30));
    }
    let (_, tip) = net.wait_converged(6, Duration::from_secs(30));
    for node in &net.nodes {
        let chain = node.chain();
        let hashes: Vec<&str> = chain.iter().map(|b| b["hash"].as_str().unwrap()).collect();
        assert_eq!(hashes[2], aborted.hash().to_hex(), "the aborted transaction's block is at height 2");
        assert_eq!(hashes[3], open.hash().to_hex(), "the open transaction's block is at height 3");
        assert_eq!(hashes[6], tip);
    }
    drop(producer);
}

#[test]
fn junk_transfers_from_keys_without_funds_and_orphans_cost_no_signature_verification() {
    const TRANSFERS: u64 = 20_000;
    const ORPHANS: u64 = 20;
    let net = TestNet::start("free-verification", 1);
    let node = &net.nodes[0];
    // Transfers from keys the genesis does not fund, each with a signature that does not verify.
    let junk: Vec<Vec<u8>> = (0..TRANSFERS)
        .map(|n| {
            encode_message(&Transfer {
                sender: Address::new(sha256(format!("unfunded-{n}").as_bytes())),
                recipient: Address::new([1; 32]),
                amount: 5,
                fee: 0,
                nonce: 0,
                signature: Signature([7; 64]),
            })
        })
        .collect();
    produce(&format!("{}.transactions", net.prefix), &junk);
    // Orphans full of such transfers: their signatures are worth nothing until the parent comes.
    let bits = crate::common::tip_block(&node.chain()).header.bits;
    let orphans: Vec<Vec<u8>> =
        (0..ORPHANS).map(|i| encode_message(&block_on(BlockHash::new([9; 32]), 5 + i, bits, 500, "junk"))).collect();
    produce(&format!("{}.blocks", net.prefix), &orphans);
    // Read is not yet applied (a message counts as consumed before its batch is stored): wait
    // for the stored offsets to pass every junk message, and for each to be counted.
    let status = wait_for("every junk message applied and counted", Duration::from_secs(120), || {
        let s = node.status();
        let applied = crate::common::transactions_read(&s) == TRANSFERS && s["blocks_next_offset"] == ORPHANS;
        let counted = s["rejected"]["tx_insufficient_funds"] == TRANSFERS && s["orphans"] == ORPHANS;
        (applied && counted).then_some(s)
    });
    // What the junk cost the applier (its own busy time per stage, not the wall clock).
    let busy = |stage: &str| status["busy_ms"][stage].as_u64().unwrap_or(0);
    eprintln!(
        "junk: {TRANSFERS} unfunded, badly signed transfers and {ORPHANS} orphans of 500 such: applier busy {} ms \
         verifying signatures, {} ms applying transaction batches ({:.1} us per junk transfer in all), {} ms \
         applying blocks",
        busy("verify_signatures"),
        busy("apply_transactions"),
        (busy("verify_signatures") + busy("apply_transactions")) as f64 * 1000.0 / TRANSFERS as f64,
        busy("apply_blocks"),
    );
    // Format 4 verified all 30,000 signatures first and counted the transfers as tx_bad_signature.
    assert!(status["rejected"]["tx_bad_signature"].is_null(), "{status}");
    assert!(status["busy_ms"]["verify_signatures"].is_null(), "no signature was verified: {status}");
}

#[test]
fn a_partition_added_to_the_transactions_topic_is_read_without_a_restart() {
    let net = TestNet::start("added-partition", 1);
    let node = &net.nodes[0];
    let topic = format!("{}.transactions", net.prefix);
    // As an operator would, with Kafka's own tool.
    let out = crate::common::topic_command(&["--alter", "--topic", &topic, "--partitions", "8"].map(str::to_owned));
    assert!(out.status.success(), "kafka-topics --alter failed: {}", String::from_utf8_lossy(&out.stderr));
    let funded = kafkachain::tools::load::LoadAccounts::new(kafkachain::tools::cluster::LOAD_ACCOUNTS);
    let transfer = Transfer::sign(funded.key(7), ChainTag::of(crate::common::CHAIN_ID), Address::new([9; 32]), 5, 0, 0);
    {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let producer: BaseProducer =
            rdkafka::ClientConfig::new().set("bootstrap.servers", crate::common::brokers()).create().unwrap();
        let payload = encode_message(&transfer);
        wait_for("the producer to know partition 7", Duration::from_secs(30), || {
            let record = BaseRecord::<(), _>::to(&topic).partition(7).payload(&payload);
            producer.send(record).ok().and_then(|()| producer.flush(Duration::from_secs(10)).ok())
        });
    }
    let id = transfer.id(ChainTag::of(crate::common::CHAIN_ID)).to_hex();
    let status = wait_for("the transfer on the new partition to be read", Duration::from_secs(60), || {
        let s = node.status();
        (s["mempool"] == 1).then_some(s)
    });
    assert_eq!(status["next_offsets"][format!("{topic}/7")], 1, "{status}");
    assert_eq!(node.get(&format!("/transactions/{id}")).0, 200);
    assert!(std::fs::read_to_string(&node.log).unwrap().contains("new partitions"));
}

#[test]
fn transfers_read_back_far_past_a_senders_nonce_are_pooled_whatever_the_nonce_window() {
    // Another node published these against its own tip; this node's tip may lag the blocks topic
    // (the failover test caught a node dropping nonces 99-101 so, then never mining 102 on).
    let net = TestNet::start_with("nonce-window", 1, |spec| spec.storage.max_nonce_ahead = 2);
    let node = &net.nodes[0];
    let funded = kafkachain::tools::load::LoadAccounts::new(kafkachain::tools::cluster::LOAD_ACCOUNTS);
    let chain = ChainTag::of(crate::common::CHAIN_ID);
    let transfers: Vec<Transfer> =
        (0..6).map(|nonce| Transfer::sign(funded.key(3), chain, Address::new([9; 32]), 5, 0, nonce)).collect();
    produce(&format!("{}.transactions", net.prefix), &transfers.iter().map(encode_message).collect::<Vec<_>>());
    let status = wait_for("the transfers to be read", Duration::from_secs(60), || {
        let s = node.status();
        (crate::common::transactions_read(&s) == 6).then_some(s)
    });
    assert_eq!(status["mempool"], 6, "nonces 3-5 are past the window of 2 and still pooled: {status}");
    assert!(status["rejected"]["tx_nonce_too_far"].is_null(), "{status}");
    node.mine();
    let on_chain = crate::common::transfer_ids(&node.chain());
    let ids: Vec<String> = transfers.iter().map(|t| t.id(chain).to_hex()).collect();
    assert_eq!(on_chain, ids, "all six mined, in nonce order");
    // Over HTTP the window still holds.
    let far = Transfer::sign(funded.key(3), chain, Address::new([9; 32]), 5, 0, 9);
    let (code, body) =
        node.post("/transactions/new", serde_json::json!(kafkachain::json::SignedTransferJson::from(&far)).to_string());
    assert_eq!((code, body["rule"].as_str()), (409, Some("nonce_too_far")), "{body}");
}
