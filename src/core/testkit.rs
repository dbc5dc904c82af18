//! Builders shared by the unit and property tests of the core and the store, and (through the
//! `test-support` feature) by the integration tests and benchmarks: a test chain whose genesis
//! funds [`ACCOUNTS`] keys, signed transfers between them, mined children of a block, and random
//! histories of valid and invalid blocks.

use super::account::Address;
use super::block::{genesis, Block};
use super::chain::{next_bits, Outcome};
use super::hash::sha256;
use super::memory::MemoryChain;
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

/// [`params`] with a difficulty that retargets every 4 blocks towards one block a second, and a
/// finality depth of `finality_depth`: chains on which a shorter branch of harder blocks can
/// outweigh a longer one, and forks can reach below finality.
pub fn retargeting_params(finality_depth: u64) -> ChainParams {
    ChainParams { retarget_interval: 4, target_block_ms: 1_000, finality_depth, ..params() }
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

/// A mined child of `parent` at `timestamp_ms` with the compact target `bits`, paying `miner_name`
/// the subsidy and the fees of `transfers`.
pub fn child_at(
    params: &ChainParams,
    parent: &Block,
    miner_name: &str,
    transfers: &[Transfer],
    timestamp_ms: u64,
    bits: u32,
) -> Block {
    let fees: u64 = transfers.iter().map(|t| t.fee).sum();
    let height = parent.header.height + 1;
    let mut txs = vec![Transaction::reward(miner(miner_name), params.reward + fees, height)];
    txs.extend(transfers.iter().cloned().map(Transaction::Transfer));
    solved(Block::candidate(params.chain_tag(), parent.hash(), parent.header.height, bits, timestamp_ms, txs))
        .expect("a test block's target is met on one thread")
}

/// The genesis of [`params`].
pub fn genesis_block() -> Block {
    genesis(&params())
}

/// One step of a random history: which earlier block to build on, which accounts send (a value
/// of 10 or more skips a nonce, which makes the block invalid), whether the block comes fast
/// (which makes its branch's next retarget harder) or slow, and how to damage the block, if at
/// all.
#[derive(Clone, Debug)]
pub struct Step {
    parent: prop::sample::Index,
    senders: Vec<u64>,
    fast: bool,
    damage: u8,
    deliver_late: bool,
}

/// Random [`Step`]s for [`history`].
pub fn step() -> impl Strategy<Value = Step> {
    (
        any::<prop::sample::Index>(),
        prop::collection::vec(0u64..12, 0..4),
        prop::bool::weighted(0.4),
        0u8..12,
        prop::bool::weighted(0.15),
    )
        .prop_map(|(parent, senders, fast, damage, deliver_late)| Step {
            parent,
            senders,
            fast,
            damage,
            deliver_late,
        })
}

/// Builds the blocks of a history on the chain of `params`, in delivery order (late ones swapped
/// with their successor). Each valid block carries the target its branch requires (a fast block
/// comes 10 ms after its parent, a slow one 3 s), so on a retargeting chain branches differ in
/// work per block and a shorter one can outweigh a longer one. Each valid block's transfers use
/// the next nonces of their senders on the block's own branch.
pub fn history(params: &ChainParams, steps: &[Step]) -> Vec<Block> {
    // The blocks made so far, applied in the order made: the targets their children require are
    // read from it. A block it refuses (a fork gone beyond finality) is no parent for later steps.
    let mut made_chain = MemoryChain::new(params.clone());
    let mut made: Vec<(Block, [u64; ACCOUNTS])> = vec![(genesis(params), [0; ACCOUNTS])];
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
        let bits = next_bits(&made_chain, params, &parent.hash()).expect("the parent was made");
        let after_ms = if s.fast { 10 } else { 3_000 };
        let mut block =
            child_at(params, &parent, &format!("miner{}", i % 3), &txs, parent.header.timestamp_ms + after_ms, bits);
        match s.damage {
            0 => block.header.nonce = block.header.nonce.wrapping_add(1),
            1 => block.transactions.push(Transaction::Transfer(transfer(0, 99))),
            2 => block.header.bits += 1,
            _ => {}
        }
        if s.damage > 2 && !gap && matches!(made_chain.apply(block.clone()).first(), Some(Outcome::Stored { .. })) {
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

/// A log in which a shorter branch of harder blocks takes the tip from a longer one, on
/// [`retargeting_params`]: a trunk of blocks on time, then branch A on time from the trunk's end
/// (its last block is the peak), then branch B from the same block, fast, so that its blocks
/// past the next retarget carry four times the work and B outweighs A with fewer blocks,
/// lowering the tip by two or more.
pub struct ShorterHeavierReorg {
    /// The chain's parameters.
    pub params: ChainParams,
    /// Every block after genesis in delivery order: the trunk, branch A, then branch B.
    pub log: Vec<Block>,
    /// The main chain after the log, genesis first (the trunk, then B).
    pub main: Vec<Block>,
    /// The highest height the main chain reaches in the log (A's last block).
    pub peak_height: u64,
    /// The chain after the log, which gives the targets of blocks on it.
    model: MemoryChain,
}

impl ShorterHeavierReorg {
    /// The example the unit and integration tests use: finality depth 9, a trunk of 3 blocks, A
    /// of 9 (peak at 12), B of 6 (tip at 9).
    pub fn build() -> Self {
        Self::with(3, 9, 6, 9).expect("B outweighs A")
    }

    /// The log with a trunk of `trunk` blocks, A of `a` and B of `b`, on a chain with
    /// `finality_depth`; `None` when B does not take the tip or lowers it by less than two (B is
    /// cut short where a block of it is refused).
    pub fn with(trunk: usize, a: usize, b: usize, finality_depth: u64) -> Option<Self> {
        let params = retargeting_params(finality_depth);
        let mut model = MemoryChain::new(params.clone());
        let genesis = genesis(&params);
        let mut extend = |from: &Block, count: usize, gap_ms: u64| -> Vec<Block> {
            let mut blocks: Vec<Block> = Vec::new();
            for _ in 0..count {
                let last = blocks.last().unwrap_or(from);
                let bits = next_bits(&model, &params, &last.hash()).expect("the parent is stored");
                let block = child_at(&params, last, "m", &[], last.header.timestamp_ms + gap_ms, bits);
                let stored = matches!(model.apply(block.clone()).first(), Some(Outcome::Stored { .. }));
                blocks.push(block);
                if !stored {
                    break;
                }
            }
            blocks
        };
        let trunk_blocks = extend(&genesis, trunk, 1_000);
        let fork = trunk_blocks.last().unwrap_or(&genesis).clone();
        let branch_a = extend(&fork, a, 1_000);
        let branch_b = extend(&fork, b, 10);
        let tip = model.tip_info();
        if branch_b.last().map(Block::hash) != Some(tip.hash) || tip.height + 2 > tip.peak_height {
            return None;
        }
        let log = trunk_blocks.iter().chain(&branch_a).chain(&branch_b).cloned().collect();
        let main = model.main_chain().into_iter().cloned().collect();
        Some(ShorterHeavierReorg { params, log, main, peak_height: tip.peak_height, model })
    }

    /// The tip after the log (B's last block).
    pub fn tip(&self) -> &Block {
        self.main.last().expect("the main chain holds genesis at least")
    }

    /// A valid child of the main-chain block at `height` (after the log): a fork there, or the
    /// tip's next block.
    pub fn fork_from(&self, height: usize) -> Block {
        let parent = &self.main[height];
        let bits = next_bits(&self.model, &self.params, &parent.hash()).expect("the parent is stored");
        child_at(&self.params, parent, "fork", &[], parent.header.timestamp_ms + 500, bits)
    }

    /// Whether the finality rule refuses a fork from the main-chain block at `height`: it lies
    /// more than the finality depth below the peak height.
    pub fn beyond_finality(&self, height: usize) -> bool {
        self.peak_height - height as u64 > self.params.finality_depth
    }
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
