//! Builders shared by the unit and property tests of the core and the store, and (through the
//! `test-support` feature) by the integration tests and benchmarks: a test chain whose genesis
//! funds [`ACCOUNTS`] keys, signed transfers between them, mined children of a block, and random
//! histories of valid and invalid blocks.

use super::account::Address;
use super::block::{genesis, Block};
use super::hash::sha256;
use super::miner::solved;
use super::params::ChainParams;
use super::transaction::{ChainTag, Transaction, Transfer};
use ed25519_consensus::SigningKey;
use proptest::prelude::*;
use std::collections::HashMap;

/// Funded test accounts.
pub const ACCOUNTS: usize = 5;

/// The key of test account `i`.
pub fn key(i: usize) -> SigningKey {
    SigningKey::from(sha256(format!("kafkachain-test-account/{i}").as_bytes()))
}

/// The address of test account `i`.
pub fn address(i: usize) -> Address {
    Address::of_key(&key(i))
}

/// An address for the miner called `name`.
pub fn miner(name: &str) -> Address {
    Address::new(sha256(name.as_bytes()))
}

/// Parameters with a difficulty low enough to mine in microseconds, funding every test account.
pub fn params() -> ChainParams {
    ChainParams {
        chain_id: "test".into(),
        bits: 4,
        reward: 50,
        genesis_timestamp_ms: 1_000,
        max_block_txs: 8,
        max_orphans: 3,
        allocations: (0..ACCOUNTS).map(|i| (address(i), 1_000_000)).collect(),
        ..ChainParams::default()
    }
}

/// Account `sender`'s transfer with `nonce` to the next account: 10 units and a fee of 1.
/// Signatures are deterministic, so the same arguments always give the same transfer.
pub fn transfer(sender: usize, nonce: u64) -> Transfer {
    Transfer::sign(&key(sender), params().chain_tag(), address((sender + 1) % ACCOUNTS), 10, 1, nonce)
}

/// A mined child of `parent` paying `miner` the subsidy and the fees, holding `transfers` after
/// the reward.
pub fn child(params: &ChainParams, parent: &Block, miner_name: &str, transfers: &[Transfer]) -> Block {
    let fees: u64 = transfers.iter().map(|t| t.fee).sum();
    rewarded_child(params.chain_tag(), parent, 10, miner(miner_name), params.reward + fees, transfers.iter().cloned())
}

/// A mined child of `parent` on the chain tagged `chain`, one millisecond after it and at its
/// target: a reward of `reward` to `miner`, then `transfers`. What tests and benchmarks that
/// write blocks themselves build on a block they hold.
pub fn paying_child(
    chain: ChainTag,
    parent: &Block,
    miner: Address,
    reward: u64,
    transfers: impl IntoIterator<Item = Transfer>,
) -> Block {
    rewarded_child(chain, parent, 1, miner, reward, transfers)
}

/// A mined child of `parent`, `after_ms` after it and at its target, holding a reward of `reward`
/// to `miner` and then `transfers`.
fn rewarded_child(
    chain: ChainTag,
    parent: &Block,
    after_ms: u64,
    miner: Address,
    reward: u64,
    transfers: impl IntoIterator<Item = Transfer>,
) -> Block {
    let mut txs = vec![Transaction::reward(miner, reward, parent.header.height + 1)];
    txs.extend(transfers.into_iter().map(Transaction::Transfer));
    let (hash, header) = (parent.hash(), &parent.header);
    solved(Block::candidate(chain, hash, header.height, header.bits, header.timestamp_ms + after_ms, txs))
        .expect("a test block's target is met on one thread")
}

/// The genesis of [`params`].
pub fn genesis_block() -> Block {
    genesis(&params())
}

/// One step of a random history: which earlier block to build on, which accounts send (a value
/// of 10 or more skips a nonce, which makes the block invalid), and how to damage the block, if
/// at all.
#[derive(Clone, Debug)]
pub struct Step {
    parent: prop::sample::Index,
    senders: Vec<u64>,
    damage: u8,
    deliver_late: bool,
}

/// Random [`Step`]s for [`history`].
pub fn step() -> impl Strategy<Value = Step> {
    (any::<prop::sample::Index>(), prop::collection::vec(0u64..12, 0..4), 0u8..12, prop::bool::weighted(0.15))
        .prop_map(|(parent, senders, damage, deliver_late)| Step { parent, senders, damage, deliver_late })
}

/// Builds the blocks of a history, in delivery order (late ones swapped with their successor).
/// Each valid block's transfers use the next nonces of their senders on the block's own branch.
pub fn history(steps: &[Step]) -> Vec<Block> {
    let p = params();
    let mut made: Vec<(Block, [u64; ACCOUNTS])> = vec![(genesis_block(), [0; ACCOUNTS])];
    let mut log = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let (parent, parent_nonces) = s.parent.get(&made).clone();
        let mut nonces = parent_nonces;
        let mut gap = false;
        let mut txs = Vec::new();
        for v in &s.senders {
            let sender = (*v % ACCOUNTS as u64) as usize;
            let skip = u64::from(*v >= 10);
            gap |= skip == 1;
            txs.push(transfer(sender, nonces[sender] + skip));
            nonces[sender] += 1 + skip;
        }
        let mut block = child(&p, &parent, &format!("miner{}", i % 3), &txs);
        match s.damage {
            0 => block.header.nonce = block.header.nonce.wrapping_add(1),
            1 => block.transactions.push(Transaction::Transfer(transfer(0, 99))),
            2 => block.header.bits += 1,
            _ => {}
        }
        if s.damage > 2 && !gap {
            made.push((block.clone(), nonces));
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

/// The accounts a replay of `main_chain` (genesis first) from the genesis allocations gives.
pub fn replay(
    params: &ChainParams,
    main_chain: &[&Block],
) -> std::collections::BTreeMap<Address, super::account::Account> {
    let mut state: HashMap<Address, super::account::AccountEntry> =
        super::memory::genesis_accounts(params).into_iter().map(|(a, acc)| (a, Some(acc))).collect();
    for block in main_chain.iter().skip(1) {
        let before = super::ledger::touched(block).into_iter().map(|a| (a, state.get(&a).copied().flatten())).collect();
        let effect = super::ledger::connect(block, params.reward, before).expect("main-chain blocks replay");
        state.extend(effect.after.into_iter().map(|(a, acc)| (a, Some(acc))));
    }
    state.into_iter().filter_map(|(a, acc)| Some((a, acc?))).collect()
}
