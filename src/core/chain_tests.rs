//! Tests of validation and fork choice through [`MemoryChain`], including property tests over
//! random sequences of valid and invalid blocks.

use super::block::Block;
use super::chain::Outcome;
use super::header::BlockHeader;
use super::memory::MemoryChain;
use super::miner::Miner;
use super::pow::Target;
use super::testkit::{
    address, child, genesis_block, history, miner, params, replay, retargeting_params, step, transfer,
    ShorterHeavierReorg, ACCOUNTS,
};
use super::transaction::{Transaction, Transfer};
use super::validate::{check_block, BlockError};
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

fn stored(outcomes: &[Outcome]) -> bool {
    matches!(outcomes.last(), Some(Outcome::Stored { .. }))
}

fn invalid_reason(outcomes: &[Outcome]) -> &'static str {
    match outcomes.last() {
        Some(Outcome::Invalid(_, e)) => e.reason(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn extends_the_tip_and_confirms_mempool_transactions() {
    let p = params();
    let mut chain = MemoryChain::new(p.clone());
    chain.push_mempool(transfer(1, 0));
    let b1 = child(&p, &genesis_block(), "m", &[transfer(1, 0)]);
    assert!(stored(&chain.apply(b1.clone())));
    assert_eq!(chain.tip_info().hash, b1.hash());
    assert!(chain.mempool().is_empty());
    let accounts = chain.accounts_at_tip();
    assert_eq!(accounts[&address(1)].balance, 1_000_000 - 11);
    assert_eq!(accounts[&address(1)].nonce, 1);
    assert_eq!(accounts[&address(2)].balance, 1_000_000 + 10);
    assert_eq!(accounts[&miner("m")].balance, 51, "the subsidy and the fee");
    assert_eq!(chain.apply(b1.clone()), vec![Outcome::Duplicate(b1.hash())]);
}

#[test]
fn a_tie_keeps_the_first_block_and_more_work_reorganizes() {
    let p = params();
    let g = genesis_block();
    let mut chain = MemoryChain::new(p.clone());
    let a1 = child(&p, &g, "a", &[transfer(1, 0), transfer(2, 0)]);
    let b1 = child(&p, &g, "b", &[transfer(2, 0), transfer(3, 0)]);
    chain.apply(a1.clone());
    let outcome = chain.apply(b1.clone());
    assert!(matches!(outcome[0], Outcome::Stored { tip_moved: false, .. }));
    assert_eq!(chain.tip_info().hash, a1.hash(), "on a tie the first block stays the tip");

    let b2 = child(&p, &b1, "b", &[transfer(4, 0)]);
    let outcome = chain.apply(b2.clone());
    assert!(matches!(outcome[0], Outcome::Stored { tip_moved: true, reorg_depth: 1, .. }));
    assert_eq!(chain.tip_info().hash, b2.hash());
    // Account 1's transfer was only in the abandoned block: it goes back to the mempool; account
    // 2's is in the new branch too, so it does not.
    assert_eq!(chain.mempool(), &[transfer(1, 0)]);
    // Leaving a1 restored every account it touched: its miner never got paid.
    assert!(!chain.accounts_at_tip().contains_key(&miner("a")));
    assert_eq!(chain.accounts_at_tip(), &replay(&p, &chain.main_chain()));
}

#[test]
fn orphans_wait_for_their_parent_and_the_pool_is_bounded() {
    let p = params();
    let g = genesis_block();
    let mut chain = MemoryChain::new(p.clone());
    let b1 = child(&p, &g, "m", &[]);
    let b2 = child(&p, &b1, "m", &[]);
    let b3 = child(&p, &b2, "m", &[]);
    assert_eq!(chain.apply(b3.clone()), vec![Outcome::Orphaned(b3.hash())]);
    assert_eq!(chain.apply(b2.clone()), vec![Outcome::Orphaned(b2.hash())]);
    assert_eq!(chain.apply(b3.clone()), vec![Outcome::Duplicate(b3.hash())]);
    let outcomes = chain.apply(b1.clone());
    assert_eq!(outcomes.len(), 3, "b1 adopts b2, which adopts b3: {outcomes:?}");
    assert_eq!(chain.tip_info().hash, b3.hash());

    let strangers: Vec<Block> = (0..4).map(|i| child(&p, &child(&p, &g, &format!("x{i}"), &[]), "y", &[])).collect();
    let mut dropped = Vec::new();
    for s in &strangers {
        for o in chain.apply(s.clone()) {
            if let Outcome::OrphanDropped(h) = o {
                dropped.push(h);
            }
        }
    }
    assert_eq!(dropped, vec![strangers[0].hash()], "the oldest orphan goes first");
}

#[test]
fn each_broken_rule_is_rejected_with_its_reason() {
    let p = params();
    let g = genesis_block();
    let good = child(&p, &g, "m", &[transfer(1, 0)]);
    let t = |sender: usize, nonce: u64| Transaction::Transfer(transfer(sender, nonce));
    let reward = |amount: u64, height: u64| Transaction::reward(miner("m"), amount, height);
    let with = |txs: Vec<Transaction>| Block { transactions: txs, ..good.clone() };
    let mut forged = transfer(1, 0);
    forged.amount += 1;
    let other_chain = Transfer::sign(
        &super::testkit::key(1),
        super::transaction::ChainTag::of("another-chain"),
        address(2),
        10,
        1,
        0,
    );
    let poor = Transfer::sign(&super::testkit::key(1), p.chain_tag(), address(2), 1_000_000, 1, 0);
    let overflow = Transfer { fee: u64::MAX, ..transfer(1, 0) };
    let remine = |mut b: Block, fix_root: bool| {
        if fix_root {
            b.header.tx_root = super::merkle::merkle_root(&b.txids(p.chain_tag()));
        }
        assert!(super::miner::solve_on_this_thread(&mut b.header));
        b
    };
    let cases: Vec<(&str, Block)> = vec![
        (
            "bad_height",
            remine(Block { header: BlockHeader { height: 5, ..good.header }, transactions: vec![reward(50, 5)] }, true),
        ),
        // A slightly harder target: a valid one, but not the one this height asks for.
        (
            "bad_bits",
            remine(Block { header: BlockHeader { bits: good.header.bits - 1, ..good.header }, ..good.clone() }, false),
        ),
        // No target at all (it decodes to zero): refused before any proof of work is looked at.
        ("bad_bits", Block { header: BlockHeader { bits: 5, ..good.header }, ..good.clone() }),
        ("bad_version", remine(Block { header: BlockHeader { version: 1, ..good.header }, ..good.clone() }, false)),
        (
            "bad_timestamp",
            remine(Block { header: BlockHeader { timestamp_ms: 1, ..good.header }, ..good.clone() }, false),
        ),
        ("bad_tx_root", remine(Block { transactions: vec![good.transactions[0].clone()], ..good.clone() }, false)),
        ("bad_reward", remine(with(vec![t(1, 0)]), true)),
        ("bad_reward", remine(with(vec![reward(52, 1), t(1, 0)]), true)),
        ("bad_reward", remine(with(vec![reward(51, 9), t(1, 0)]), true)),
        ("bad_signature", remine(with(vec![reward(51, 1), Transaction::Transfer(forged)]), true)),
        ("bad_signature", remine(with(vec![reward(51, 1), Transaction::Transfer(other_chain)]), true)),
        ("bad_nonce", remine(with(vec![reward(51, 1), t(1, 1)]), true)),
        ("bad_nonce", remine(with(vec![reward(52, 1), t(1, 0), t(2, 1)]), true)),
        ("insufficient_funds", remine(with(vec![reward(51, 1), Transaction::Transfer(poor)]), true)),
        ("bad_transaction", remine(with(vec![reward(51, 1), Transaction::Transfer(overflow)]), true)),
        (
            "bad_transaction",
            remine(
                with(vec![
                    good.transactions[0].clone(),
                    Transaction::Transfer(Transfer { amount: 0, ..transfer(1, 0) }),
                ]),
                true,
            ),
        ),
        ("bad_reward", remine(with(vec![good.transactions[0].clone(), reward(50, 1)]), true)),
        ("duplicate_transaction", remine(with(vec![reward(52, 1), t(1, 0), t(1, 0)]), true)),
        (
            "too_many_transactions",
            remine(
                Block {
                    transactions: std::iter::once(good.transactions[0].clone())
                        .chain((0..8).map(|n| t(0, n)))
                        .collect(),
                    ..good.clone()
                },
                true,
            ),
        ),
    ];
    for (reason, block) in cases {
        let mut chain = MemoryChain::new(p.clone());
        assert_eq!(invalid_reason(&chain.apply(block)), reason);
        assert_eq!(chain.tip_info().height, 0);
    }
    let mut unmined = good.clone();
    while unmined.header.meets_own_target() {
        unmined.header.nonce += 1;
    }
    assert_eq!(invalid_reason(&MemoryChain::new(p.clone()).apply(unmined)), "bad_pow");

    let mut chain = MemoryChain::new(p.clone());
    chain.apply(good.clone());
    let again = child(&p, &good, "m", &[transfer(1, 0)]);
    assert_eq!(invalid_reason(&chain.apply(again)), "bad_nonce", "a confirmed transfer sent again");
}

/// A child of `parent` at `timestamp_ms`, mined.
fn child_at(parent: &Block, timestamp_ms: u64) -> Block {
    let mut block = child(&params(), parent, "m", &[]);
    block.header.timestamp_ms = timestamp_ms;
    assert!(super::miner::solve_on_this_thread(&mut block.header));
    block
}

#[test]
fn timestamps_rise_above_the_branch_median_and_stay_near_the_append_time() {
    let p = params();
    let mut chain = MemoryChain::new(p.clone());
    // Genesis at 1000, then blocks at 2000..=7000: the median of the last 11 (all 7) is 4000.
    let mut tip = genesis_block();
    for t in (2..=7).map(|k| k * 1000) {
        tip = child_at(&tip, t);
        assert!(stored(&chain.apply(tip.clone())));
    }
    assert_eq!(invalid_reason(&chain.apply(child_at(&tip, 4000))), "bad_timestamp", "equal to the median");
    assert!(stored(&chain.apply(child_at(&tip, 4001))), "above the median, though below the parent");
    let far_ms = 10 * p.max_future_ms;
    let far = child_at(&tip, far_ms);
    let arrived = far_ms - p.max_future_ms - 1;
    assert_eq!(invalid_reason(&chain.apply_at(far.clone(), arrived)), "timestamp_ahead");
    assert!(stored(&chain.apply_at(far, arrived + 1)), "exactly the margin ahead is allowed");
}

#[test]
fn blocks_over_the_size_bound_are_refused() {
    // A bound just above a one-transfer block, measured on another chain: a block's size does
    // not depend on which genesis it extends.
    let probe_params = params();
    let probe = child(&probe_params, &super::block::genesis(&probe_params), "m", &[transfer(1, 0)]);
    let p = super::params::ChainParams { max_block_bytes: super::encoding::encoded_len(&probe) + 8, ..params() };
    let mut chain = MemoryChain::new(p.clone());
    let small = child(&p, &super::block::genesis(&p), "m", &[transfer(1, 0)]);
    assert!(stored(&chain.apply(small.clone())));
    let big = child(&p, &small, "m", &(0..6).map(|n| transfer(0, n)).collect::<Vec<_>>());
    assert_eq!(super::encoding::encoded_len(&big), super::encoding::encode(&big).len());
    assert_eq!(invalid_reason(&chain.apply(big)), "block_too_large");
}

#[test]
fn undo_records_are_kept_for_the_finality_depth_only_even_when_a_branch_overtakes() {
    use super::chain::ChainView;
    let p = super::params::ChainParams { finality_depth: 2, ..params() };
    let g = super::block::genesis(&p);
    let mut chain = MemoryChain::new(p.clone());
    let mut main = vec![g.clone()];
    for _ in 0..4 {
        let next = child(&p, main.last().unwrap(), "main", &[]);
        chain.apply(next.clone());
        main.push(next);
    }
    // A branch from height 2 that overtakes at height 5: three heights connected at once.
    let mut side = main[2].clone();
    for _ in 0..3 {
        side = child(&p, &side, "side", &[]);
        chain.apply(side.clone());
    }
    assert_eq!(chain.tip_info().hash, side.hash());
    let kept: Vec<u64> = (1..=5).filter(|h| chain.undo(*h).unwrap().is_some()).collect();
    assert_eq!(kept, [3, 4, 5], "finality depth 2: the last three heights");
}

#[test]
fn a_fork_deeper_than_the_finality_depth_is_refused() {
    let p = super::params::ChainParams { finality_depth: 2, ..params() };
    let g = super::block::genesis(&p);
    let mut chain = MemoryChain::new(p.clone());
    let main: Vec<Block> = (0..4)
        .scan(g.clone(), |parent, _| {
            *parent = child(&p, parent, "main", &[]);
            Some(parent.clone())
        })
        .collect();
    for block in &main {
        chain.apply(block.clone());
    }
    // Tip at 4. Forking from height 2 abandons 2 blocks: allowed (and a tie, so no reorg).
    let shallow = child(&p, &main[1], "side", &[]);
    assert!(stored(&chain.apply(shallow.clone())));
    let deeper = child(&p, &shallow, "side", &[]);
    assert!(stored(&chain.apply(deeper)));
    // Forking from height 1 would abandon 3 blocks: beyond finality, whether it would win or not.
    let deep = child(&p, &main[0], "side", &[]);
    assert_eq!(invalid_reason(&chain.apply(deep)), "beyond_finality");
    let from_genesis = child(&p, &g, "side", &[]);
    assert_eq!(invalid_reason(&chain.apply(from_genesis)), "beyond_finality");
    assert_eq!(chain.tip_info().hash, main[3].hash());
}

#[test]
fn after_a_reorg_to_a_shorter_heavier_branch_finality_is_measured_from_the_peak() {
    use super::chain::ChainView;
    let reorg = ShorterHeavierReorg::build();
    let mut chain = MemoryChain::new(reorg.params.clone());
    for block in &reorg.log {
        chain.apply(block.clone());
    }
    let tip = chain.tip_info();
    assert_eq!((tip.hash, tip.height, tip.peak_height), (reorg.tip().hash(), 9, 12));
    let kept: Vec<u64> = (1..=12).filter(|h| chain.undo(*h).unwrap().is_some()).collect();
    assert_eq!(kept, (3..=9).collect::<Vec<_>>(), "from the peak less the finality depth up to the tip");
    // Forks at 0-2 lie within the finality depth of the tip, but more than it below the peak.
    for height in 0..=2 {
        assert_eq!(invalid_reason(&chain.apply(reorg.fork_from(height))), "beyond_finality", "fork at {height}");
    }
    assert!(stored(&chain.apply(reorg.fork_from(3))), "a fork at the finality depth below the peak");
    assert_eq!(chain.tip_info(), tip);
}

#[test]
fn the_orphan_pool_is_bounded_in_bytes_too() {
    let g = genesis_block();
    let probe = child(&params(), &child(&params(), &g, "x", &[]), "y", &[transfer(1, 0)]);
    // Orphans never link to genesis, so the strangers below need not share the chain's.
    let size = super::encoding::encoded_len(&probe);
    // Room for two such orphans by bytes, ten by count.
    let p = super::params::ChainParams { max_orphans: 10, max_orphan_bytes: 2 * size + size / 2, ..params() };
    let mut chain = MemoryChain::new(p.clone());
    let strangers: Vec<Block> =
        (0..3usize).map(|i| child(&p, &child(&p, &g, &format!("x{i}"), &[]), "y", &[transfer(i, 0)])).collect();
    let outcomes: Vec<Outcome> = strangers.iter().flat_map(|s| chain.apply(s.clone())).collect();
    assert!(outcomes.contains(&Outcome::OrphanDropped(strangers[0].hash())), "{outcomes:?}");
    assert_eq!(super::chain::ChainView::orphan_entries(&chain).unwrap().len(), 2);
    // A block larger than the whole pool's bound is dropped at once and pushes nothing out
    // (format 4 emptied the pool to make room it could never have).
    let tight = super::params::ChainParams { max_orphan_bytes: size + size / 2, ..p.clone() };
    let mut chain = MemoryChain::new(tight);
    let small = child(&p, &child(&p, &g, "s", &[]), "y", &[]);
    assert_eq!(chain.apply(small.clone()), vec![Outcome::Orphaned(small.hash())]);
    let big = child(&p, &child(&p, &g, "b", &[]), "y", &(0..4).map(|n| transfer(0, n)).collect::<Vec<_>>());
    assert!(super::encoding::encoded_len(&big) > size + size / 2);
    assert_eq!(chain.apply(big.clone()), vec![Outcome::OrphanDropped(big.hash())]);
    let pooled: Vec<_> = super::chain::ChainView::orphan_entries(&chain).unwrap().iter().map(|e| e.hash).collect();
    assert_eq!(pooled, [small.hash()]);
}

/// A valid block at 20 bits on the test genesis, mined once. A change of one header byte keeps 20
/// bits of proof of work with probability 2^-20, so among the 96 × 255 single-byte changes one
/// may (it happened once); the search goes on to a nonce where none does, so the property below
/// holds for every input, not just for most.
fn hard_block() -> &'static Block {
    static BLOCK: OnceLock<Block> = OnceLock::new();
    BLOCK.get_or_init(|| {
        let p = super::params::ChainParams { bits: 20, ..params() };
        let g = super::block::genesis(&p);
        let txs = vec![Transaction::reward(miner("m"), p.reward + 1, 1), Transaction::Transfer(transfer(1, 0))];
        let mut block = Block::candidate(p.chain_tag(), g.hash(), 0, p.genesis_bits(), 2_000, txs);
        let miner = Miner::new(0, super::miner::Kernel::Portable, super::miner::MinerPriority::Normal).unwrap();
        let mut from = 0;
        loop {
            let found = miner.search(&block.header, from..u64::MAX, &AtomicBool::new(false)).unwrap();
            block.header.nonce = found.nonce.expect("20 bits are reachable");
            if !any_single_byte_change_meets(&block.header.encode(), p.easiest_target()) {
                return block;
            }
            from = block.header.nonce + 1;
        }
    })
}

/// Whether changing one byte of `header` can give a hash that meets the changed header's target,
/// that target being no easier than `easiest`.
fn any_single_byte_change_meets(header: &[u8; 96], easiest: Target) -> bool {
    (0..96).any(|index| {
        (1..=255u8).any(|flip| {
            let mut bytes = *header;
            bytes[index] ^= flip;
            let changed = BlockHeader::decode(&bytes);
            Target::from_compact(changed.bits).is_ok_and(|t| t <= easiest && t.is_met_by(&changed.hash()))
        })
    })
}

/// The finality depth of the random histories: small, so that their forks reach below it.
/// `MemoryChain` panics on any inconsistency, so every history below also shows that no block
/// makes the rules contradict themselves.
const HISTORY_FINALITY: u64 = 3;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// After any reorganization to a shorter, heavier branch, a fork from any main-chain height
    /// is refused as beyond finality exactly when it lies more than the finality depth below the
    /// peak height, and stored otherwise; the rules never contradict themselves (`MemoryChain`
    /// panics if they do).
    #[test]
    fn forks_after_a_reorg_to_a_shorter_heavier_branch_follow_the_peak(
        trunk in 0usize..7,
        b in 3usize..10,
        a_over_b in 2usize..6,
        finality_over_a in 0u64..5,
    ) {
        let a = b + a_over_b;
        let reorg = ShorterHeavierReorg::with(trunk, a, b, a as u64 + finality_over_a);
        prop_assume!(reorg.is_some());
        let reorg = reorg.unwrap();
        let mut chain = MemoryChain::new(reorg.params.clone());
        for block in &reorg.log {
            chain.apply(block.clone());
        }
        let tip = chain.tip_info();
        prop_assert_eq!(tip.peak_height, reorg.peak_height);
        for height in 0..reorg.main.len() {
            let outcomes = chain.clone().apply(reorg.fork_from(height));
            if reorg.beyond_finality(height) {
                prop_assert_eq!(invalid_reason(&outcomes), "beyond_finality", "fork at {}", height);
            } else {
                prop_assert!(stored(&outcomes), "fork at {}: {:?}", height, outcomes);
            }
        }
    }

    #[test]
    fn same_log_same_tip(steps in prop::collection::vec(step(), 1..30)) {
        let p = retargeting_params(HISTORY_FINALITY);
        let log = history(&p, &steps);
        let mut a = MemoryChain::new(p.clone());
        let mut b = MemoryChain::new(p);
        for block in &log {
            a.apply(block.clone());
        }
        for block in &log {
            b.apply(block.clone());
        }
        prop_assert_eq!(a.tip_info(), b.tip_info());
        prop_assert_eq!(a.main_chain(), b.main_chain());
        prop_assert_eq!(a.mempool(), b.mempool());
        prop_assert_eq!(a.accounts_at_tip(), b.accounts_at_tip());
    }

    #[test]
    fn the_accounts_are_a_replay_of_the_main_chain(steps in prop::collection::vec(step(), 1..30)) {
        let p = retargeting_params(HISTORY_FINALITY);
        let mut chain = MemoryChain::new(p.clone());
        for block in history(&p, &steps) {
            chain.apply(block);
        }
        prop_assert_eq!(chain.accounts_at_tip(), &replay(&p, &chain.main_chain()));
    }

    #[test]
    fn reorgs_never_lose_or_duplicate_a_transaction(steps in prop::collection::vec(step(), 1..30)) {
        // Every transfer the history uses first arrives in the mempool, as from the topic.
        let submitted: Vec<Transfer> = (0..ACCOUNTS).flat_map(|s| (0..8).map(move |n| transfer(s, n))).collect();
        let p = retargeting_params(HISTORY_FINALITY);
        let chain_tag = p.chain_tag();
        let mut chain = MemoryChain::new(p.clone());
        for tx in &submitted {
            chain.push_mempool(tx.clone());
        }
        for block in history(&p, &steps) {
            chain.apply(block);
        }
        let mut on_main = HashSet::new();
        for block in chain.main_chain() {
            for tx in &block.transactions {
                prop_assert!(on_main.insert(tx.id(chain_tag)), "a transaction appears twice on the main chain");
            }
        }
        let pooled: Vec<_> = chain.mempool().iter().map(|t| t.id(chain_tag)).collect();
        for tx in &submitted {
            let id = tx.id(chain_tag);
            let copies = usize::from(on_main.contains(&id)) + pooled.iter().filter(|pooled| **pooled == id).count();
            prop_assert_eq!(copies, 1, "{:?} is held {} times", tx, copies);
        }
    }

    #[test]
    fn any_single_header_byte_change_fails_validation(index in 0usize..96, flip in 1u8..=255) {
        let block = hard_block();
        let p = super::params::ChainParams { bits: 20, ..params() };
        prop_assert!(check_block(block, &p, p.chain_tag()).is_ok());
        let mut bytes = block.header.encode();
        bytes[index] ^= flip;
        let damaged = Block { header: BlockHeader::decode(&bytes), ..block.clone() };
        prop_assert!(check_block(&damaged, &p, p.chain_tag()).is_err());
        let outcomes = MemoryChain::new(p).apply(damaged);
        prop_assert!(matches!(outcomes[..], [Outcome::Invalid(_, ref e)] if !matches!(e, BlockError::Ledger(_))));
    }
}
