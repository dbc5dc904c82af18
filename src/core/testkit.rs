//! Builders shared by the unit and property tests of the core and the store.

use super::block::{genesis, Block};
use super::miner::solve_on_this_thread;
use super::params::ChainParams;
use super::transaction::Transaction;
use proptest::prelude::*;

/// Parameters with a difficulty low enough to mine in microseconds.
pub fn params() -> ChainParams {
    ChainParams {
        chain_id: "test".into(),
        bits: 4,
        reward: 50,
        genesis_timestamp_ms: 1_000,
        max_block_txs: 8,
        max_orphans: 3,
        ..ChainParams::default()
    }
}

/// A distinct transfer for each `n`.
pub fn transfer(n: u64) -> Transaction {
    Transaction { sender: format!("user{}", n % 5), recipient: "shop".into(), amount: n + 1, nonce: n }
}

/// A mined child of `parent` paying `miner`, holding `transfers` after the reward.
pub fn child(params: &ChainParams, parent: &Block, miner: &str, transfers: &[Transaction]) -> Block {
    let height = parent.header.height + 1;
    let mut txs = vec![Transaction::reward(miner, params.reward, height)];
    txs.extend_from_slice(transfers);
    let mut block =
        Block::candidate(parent.hash(), parent.header.height, params.bits, parent.header.timestamp_ms + 10, txs);
    assert!(solve_on_this_thread(&mut block.header));
    block
}

/// The genesis of [`params`].
pub fn genesis_block() -> Block {
    genesis(&params())
}

/// One step of a random history: which earlier block to build on, which transfers to include,
/// and how to damage the block, if at all.
#[derive(Clone, Debug)]
pub struct Step {
    parent: prop::sample::Index,
    transfers: Vec<u64>,
    damage: u8,
    deliver_late: bool,
}

pub fn step() -> impl Strategy<Value = Step> {
    (any::<prop::sample::Index>(), prop::collection::vec(0u64..12, 0..4), 0u8..12, prop::bool::weighted(0.15))
        .prop_map(|(parent, transfers, damage, deliver_late)| Step { parent, transfers, damage, deliver_late })
}

/// Builds the blocks of a history, in delivery order (late ones swapped with their successor).
pub fn history(steps: &[Step]) -> Vec<Block> {
    let p = params();
    let mut made = vec![genesis_block()];
    let mut log = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let parent = s.parent.get(&made).clone();
        let txs: Vec<Transaction> = s.transfers.iter().map(|n| transfer(*n)).collect();
        let mut block = child(&p, &parent, &format!("miner{}", i % 3), &txs);
        match s.damage {
            0 => block.header.nonce = block.header.nonce.wrapping_add(1),
            1 => block.transactions.push(transfer(99)),
            2 => block.header.bits += 1,
            _ => {}
        }
        if s.damage > 2 {
            made.push(block.clone());
        }
        log.push(block);
    }
    for (i, step) in steps.iter().enumerate().take(steps.len().saturating_sub(1)) {
        if step.deliver_late {
            log.swap(i, i + 1);
        }
    }
    log
}
