//! Tests of difficulty retargeting on the in-memory chain: the target follows the branch's own
//! block times within the clamp, a block carrying another target is refused, and fork choice
//! weighs branches by the work of their targets, not by their length.

use super::block::Block;
use super::chain::{next_bits, Outcome};
use super::memory::MemoryChain;
use super::miner::solve_on_this_thread;
use super::params::ChainParams;
use super::pow::Target;
use super::testkit::{child, params};

/// Blocks between retargets in these tests.
const INTERVAL: u64 = 4;
/// The block interval the tests' chain aims at.
const BLOCK_MS: u64 = 1_000;

fn retargeting() -> ChainParams {
    ChainParams { retarget_interval: INTERVAL, target_block_ms: BLOCK_MS, ..params() }
}

/// A mined child of `parent` at `timestamp_ms` carrying `bits`.
fn child_with(p: &ChainParams, parent: &Block, timestamp_ms: u64, bits: u32) -> Block {
    let mut block = child(p, parent, "m", &[]);
    block.header.timestamp_ms = timestamp_ms;
    block.header.bits = bits;
    assert!(solve_on_this_thread(&mut block.header));
    block
}

/// Extends the branch ending at `parent` by `count` blocks `gap_ms` apart, each with the target
/// the chain asks of it, and returns the new blocks.
fn extend(chain: &mut MemoryChain, p: &ChainParams, parent: &Block, count: usize, gap_ms: u64) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::with_capacity(count);
    for _ in 0..count {
        let last = blocks.last().unwrap_or(parent);
        let bits = next_bits(&*chain, p, &last.hash()).unwrap();
        let block = child_with(p, last, last.header.timestamp_ms + gap_ms, bits);
        let outcomes = chain.apply(block.clone());
        assert!(matches!(outcomes.last(), Some(Outcome::Stored { .. })), "{outcomes:?}");
        blocks.push(block);
    }
    blocks
}

fn target_of(block: &Block) -> Target {
    Target::from_compact(block.header.bits).unwrap()
}

/// Work of `block` in units of the starting target's work.
fn relative_work(p: &ChainParams, block: &Block) -> f64 {
    target_of(block).work().0 as f64 / p.easiest_target().work().0 as f64
}

#[test]
fn the_first_window_to_retarget_starts_after_genesis() {
    let p = retargeting();
    let starts: Vec<Option<u64>> = (1..=13).map(|h| p.retarget_window_start(h)).collect();
    let mut expected = vec![None; 13];
    expected[8 - 1] = Some(3);
    expected[12 - 1] = Some(7);
    assert_eq!(starts, expected);
    let every_block = ChainParams { retarget_interval: 1, ..p.clone() };
    assert_eq!(
        (1..=4).map(|h| every_block.retarget_window_start(h)).collect::<Vec<_>>(),
        [None, None, Some(1), Some(2)]
    );
    let fixed = ChainParams { retarget_interval: 0, ..p };
    assert!((1..100).all(|h| fixed.retarget_window_start(h).is_none()));
}

#[test]
fn blocks_four_times_too_fast_or_faster_raise_the_difficulty_by_the_clamp() {
    let p = retargeting();
    let mut chain = MemoryChain::new(p.clone());
    let genesis = chain.main_chain()[0].clone();
    // Heights 1-7 at 10 ms apart: the window of blocks 3-7 took 40 ms where 4 s were wanted.
    let blocks = extend(&mut chain, &p, &genesis, 8, 10);
    assert!(blocks[..7].iter().all(|b| target_of(b) == p.easiest_target()), "no retarget before height 8");
    let retargeted = &blocks[7];
    assert_eq!(retargeted.header.height, 8);
    let ratio = relative_work(&p, retargeted);
    assert!((ratio - 4.0).abs() < 0.001, "the clamp allows 4x per step, got {ratio}");
    // The next window, just as fast, raises it by another 4.
    let more = extend(&mut chain, &p, retargeted, 4, 10);
    let ratio = relative_work(&p, &more[3]);
    assert!((ratio - 16.0).abs() < 0.01, "got {ratio}");
}

#[test]
fn slow_blocks_lower_the_difficulty_but_never_below_the_start() {
    let p = retargeting();
    let mut chain = MemoryChain::new(p.clone());
    let genesis = chain.main_chain()[0].clone();
    // A window's blocks are the gaps of heights h-4..h-1: blocks 1-7 fast make height 8 4x harder.
    let fast = extend(&mut chain, &p, &genesis, 7, 10);
    let slow = extend(&mut chain, &p, &fast[6], 4, 2 * BLOCK_MS);
    assert!((relative_work(&p, &slow[0]) - 4.0).abs() < 0.001);
    // Blocks 8-11 took 2 s each, twice the target interval: height 12 is half as hard.
    let slower = extend(&mut chain, &p, &slow[3], 4, 100 * BLOCK_MS);
    let ratio = relative_work(&p, &slower[0]);
    assert!((ratio - 2.0).abs() < 0.001, "half the difficulty, got {ratio}");
    // Blocks 12-15 took 100 s each: the clamp allows 4x easier, the starting target stops it at 1.
    let last = extend(&mut chain, &p, &slower[3], 1, BLOCK_MS);
    assert_eq!(target_of(&last[0]), p.easiest_target());
}

#[test]
fn on_time_blocks_keep_the_target() {
    let p = retargeting();
    let mut chain = MemoryChain::new(p.clone());
    let genesis = chain.main_chain()[0].clone();
    let fast = extend(&mut chain, &p, &genesis, 7, 10);
    let on_time = extend(&mut chain, &p, &fast[6], 5, BLOCK_MS);
    assert_eq!((on_time[0].header.height, on_time[4].header.height), (8, 12));
    assert_ne!(on_time[0].header.bits, fast[6].header.bits);
    assert_eq!(on_time[4].header.bits, on_time[0].header.bits);
}

#[test]
fn a_block_with_another_target_than_its_height_asks_is_bad_bits() {
    let p = retargeting();
    let mut chain = MemoryChain::new(p.clone());
    let genesis = chain.main_chain()[0].clone();
    let blocks = extend(&mut chain, &p, &genesis, 7, 10);
    let parent = &blocks[6];
    let required = next_bits(&chain, &p, &parent.hash()).unwrap();
    assert_ne!(required, parent.header.bits, "height 8 retargets");
    let easier = Target::from_compact(required).unwrap().retarget(2 * BLOCK_MS, BLOCK_MS, p.easiest_target());
    let harder = Target::from_compact(required).unwrap().retarget(0, BLOCK_MS, p.easiest_target());
    for bits in [parent.header.bits, easier.to_compact(), harder.to_compact(), required + 1] {
        let wrong = child_with(&p, parent, parent.header.timestamp_ms + 10, bits);
        match chain.apply(wrong).as_slice() {
            [Outcome::Invalid(_, e)] => assert_eq!(e.reason(), "bad_bits", "bits {bits:#x}: {e}"),
            other => panic!("bits {bits:#x}: expected bad_bits, got {other:?}"),
        }
    }
    // Between retargets a block must keep its parent's target too.
    let wrong = child_with(&p, &blocks[3], blocks[3].header.timestamp_ms + 10, harder.to_compact());
    assert!(matches!(chain.apply(wrong).as_slice(), [Outcome::Invalid(_, e)] if e.reason() == "bad_bits"));
    let right = child_with(&p, parent, parent.header.timestamp_ms + 10, required);
    assert!(matches!(chain.apply(right).as_slice(), [Outcome::Stored { tip_moved: true, .. }]));
}

#[test]
fn a_target_easier_than_the_start_or_no_target_at_all_is_bad_bits_even_for_an_orphan() {
    let p = retargeting();
    let mut chain = MemoryChain::new(p.clone());
    let genesis = chain.main_chain()[0].clone();
    let easier = Target::from_leading_zero_bits(p.bits - 1).to_compact();
    let mut orphan = child_with(&p, &genesis, genesis.header.timestamp_ms + 10, easier);
    orphan.header.prev_hash = super::hash::BlockHash::new([7; 32]);
    assert!(solve_on_this_thread(&mut orphan.header));
    for block in [orphan, child_with(&p, &genesis, genesis.header.timestamp_ms + 10, easier)] {
        assert!(matches!(chain.apply(block).as_slice(), [Outcome::Invalid(_, e)] if e.reason() == "bad_bits"));
    }
    let mut negative = child(&p, &genesis, "m", &[]);
    negative.header.bits = 0x2080_0001;
    assert!(matches!(chain.apply(negative).as_slice(), [Outcome::Invalid(_, e)] if e.reason() == "bad_bits"));
}

#[test]
fn fork_choice_weighs_the_targets_not_the_block_count() {
    let p = retargeting();
    let mut chain = MemoryChain::new(p.clone());
    let genesis = chain.main_chain()[0].clone();
    let trunk = extend(&mut chain, &p, &genesis, 3, BLOCK_MS);
    let fork = &trunk[2];
    // Branch A: blocks 4-8, 4-7 fast, so block 8 carries 4x the work: 8 units in 5 blocks.
    let a = extend(&mut chain, &p, fork, 5, 10);
    assert!((relative_work(&p, &a[4]) - 4.0).abs() < 0.001);
    assert_eq!(chain.tip_info().hash, a[4].hash());
    // Branch B: on time, so its target stays: 7 blocks are 7 units.
    let b = extend(&mut chain, &p, fork, 7, BLOCK_MS);
    assert_eq!(chain.tip_info().hash, a[4].hash(), "a longer branch with less work does not win");
    // An eighth falls a hair short: A's block 8 target, truncated, is a little under a quarter.
    let b8 = extend(&mut chain, &p, &b[6], 1, BLOCK_MS);
    assert_eq!(chain.tip_info().hash, a[4].hash());
    // The ninth outweighs A.
    let b9 = extend(&mut chain, &p, &b8[0], 1, BLOCK_MS);
    assert_eq!(chain.tip_info().hash, b9[0].hash());
    assert_eq!(chain.tip_info().height, 12);
}
