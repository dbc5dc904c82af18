//! What junk on the topics costs a node: 20,000 transfers validly signed by unfunded keys, then
//! 20 orphans of 500 such, measured as the node process's CPU time (less its idle rate) and its
//! applier's busy time per stage. Not part of the suite: `scripts/junk-cost/run [COMMIT]` copies
//! it into a checkout of COMMIT (default HEAD) and runs it there against the running broker.
mod common;

use common::{produce, wait_for, TestNet};
use kafkachain::core::account::Address;
use kafkachain::core::block::Block;
use kafkachain::core::hash::BlockHash;
use kafkachain::core::miner::solved;
use kafkachain::core::transaction::{ChainTag, Transaction, Transfer};
use kafkachain::json::BlockJson;
use kafkachain::kafka::wire::encode_message;
use kafkachain::tools::load::miner_address;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A transfer validly signed by a key the genesis does not fund: signing is free for whoever
/// sends junk, and only the account says it cannot pay.
fn junk(n: u64, tag: &str) -> Transfer {
    let key = kafkachain::tools::load::derived_key(&format!("{tag}-{n}"));
    Transfer::sign(&key, ChainTag::of(common::CHAIN_ID), Address::new([1; 32]), 5, 0, 0)
}

#[test]
fn junk_cost() {
    const TRANSFERS: u64 = 20_000;
    const ORPHANS: u64 = 20;
    const PER_ORPHAN: u64 = 500;
    let net = TestNet::start("junk-cost", 1);
    let node = &net.nodes[0];
    let pid = node.pid().unwrap();
    // CPU time the node process has used (user + system), in ms: every thread, whatever the stage.
    let cpu_ms = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        (fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()) * 10
    };
    // Let start-up settle, then measure from an idle node.
    std::thread::sleep(Duration::from_secs(3));
    let idle_start = cpu_ms();
    std::thread::sleep(Duration::from_secs(5));
    let idle_per_s = (cpu_ms() - idle_start) as f64 / 5.0;
    let cpu0 = cpu_ms();
    let t0 = std::time::Instant::now();
    let busy = |s: &serde_json::Value, stage: &str| s["busy_ms"][stage].as_u64().unwrap_or(0);
    let total = |s: &serde_json::Value| {
        ["verify_signatures", "apply_transactions", "apply_blocks"].iter().map(|st| busy(s, st)).sum::<u64>()
    };
    let payloads: Vec<Vec<u8>> = (0..TRANSFERS).map(|n| encode_message(&junk(n, "unfunded"))).collect();
    produce(&format!("{}.transactions", net.prefix), &payloads);
    let after_tx = wait_for("transfers read", Duration::from_secs(300), || {
        let s = node.status();
        (s["consumed_since_start"] == TRANSFERS).then_some(s)
    });
    let cpu_tx = cpu_ms() as f64 - cpu0 as f64 - idle_per_s * t0.elapsed().as_secs_f64();
    let chain = node.chain();
    let tip: Block = serde_json::from_value::<BlockJson>(chain.last().unwrap().clone()).unwrap().try_into().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let orphans: Vec<Vec<u8>> = (0..ORPHANS)
        .map(|i| {
            let height = 5 + i;
            let mut txs = vec![Transaction::reward(miner_address("junk"), 50, height)];
            txs.extend((0..PER_ORPHAN).map(|n| Transaction::Transfer(junk(n, &format!("orphan-{i}")))));
            let block = Block::candidate(
                ChainTag::of(common::CHAIN_ID),
                BlockHash::new([9; 32]),
                height - 1,
                tip.header.bits,
                now,
                txs,
            );
            encode_message(&solved(block).unwrap())
        })
        .collect();
    let cpu1 = cpu_ms();
    let t1 = std::time::Instant::now();
    produce(&format!("{}.blocks", net.prefix), &orphans);
    let after_blocks = wait_for("orphans read", Duration::from_secs(300), || {
        let s = node.status();
        (s["consumed_since_start"] == TRANSFERS + ORPHANS).then_some(s)
    });
    let cpu_blocks = cpu_ms() as f64 - cpu1 as f64 - idle_per_s * t1.elapsed().as_secs_f64();
    eprintln!(
        "JUNK-CPU idle {idle_per_s:.0} ms/s; transfers: {cpu_tx:.0} ms CPU ({:.1} us each); orphans: {cpu_blocks:.0} ms CPU ({:.1} ms each)",
        cpu_tx * 1000.0 / TRANSFERS as f64,
        cpu_blocks / ORPHANS as f64
    );
    let tx_ms = total(&after_tx);
    let block_ms = total(&after_blocks) - tx_ms;
    eprintln!(
        "JUNK-COST transfers: {TRANSFERS} in {tx_ms} ms busy ({:.1} us each; verify {} ms); orphans: {ORPHANS} x {PER_ORPHAN} transfers in {block_ms} ms busy ({:.2} ms each; verify {} ms)",
        tx_ms as f64 * 1000.0 / TRANSFERS as f64,
        busy(&after_tx, "verify_signatures"),
        block_ms as f64 / ORPHANS as f64,
        busy(&after_blocks, "verify_signatures") - busy(&after_tx, "verify_signatures"),
    );
    eprintln!("rejected: {}", after_blocks["rejected"]);
}
