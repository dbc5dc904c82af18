//! Store tests on real sled files in a temporary directory.

use super::*;
use crate::core::chain::{ChainView, Outcome};
use crate::core::memory::MemoryChain;
use crate::core::testkit::{child, genesis_block, history, params, step, transfer};
use proptest::prelude::*;

fn offset(next: u64) -> OffsetUpdate {
    OffsetUpdate { key: "blocks/0".into(), next }
}

#[test]
fn a_new_store_holds_genesis_and_refuses_another_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(store.tip().unwrap().hash, genesis_block().hash());
    assert_eq!(store.offset("blocks/0").unwrap(), None);
    drop(store);
    let other = ChainParams { chain_id: "other".into(), ..params() };
    let err = Store::open(dir.path(), &other, DEFAULT_CACHE_BYTES).err().unwrap();
    assert!(matches!(err, StoreError::WrongChain { .. }), "{err}");
}

#[test]
fn a_store_of_another_layout_is_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    store.tree.insert(keys::key(keys::STATE, keys::LAYOUT), &3u64.to_be_bytes()).unwrap();
    store.flush().unwrap();
    drop(store);
    let err = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).err().unwrap();
    assert!(matches!(err, StoreError::Layout { found: 3, expected: LAYOUT_VERSION }), "{err}");
    assert!(err.to_string().contains("new data directory"), "{err}");
    let err = Store::open_existing(dir.path(), DEFAULT_CACHE_BYTES).err().unwrap();
    assert!(matches!(err, StoreError::Layout { .. }), "{err}");
}

#[test]
fn state_and_offsets_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let b1 = child(&p, &genesis_block(), "m", &[transfer(1)]);
    {
        let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
        let admitted = store
            .admit_transactions(
                &[transfer(1), transfer(2), transfer(2)],
                &[OffsetUpdate { key: "tx/3".into(), next: 9 }],
                10,
            )
            .unwrap();
        assert_eq!(admitted, vec![AdmitOutcome::Added, AdmitOutcome::Added, AdmitOutcome::AlreadyPooled]);
        let outcomes = store.apply_block(b1.clone(), b1.header.timestamp_ms, &[offset(1)]).unwrap();
        assert!(matches!(outcomes[0], Outcome::Stored { tip_moved: true, .. }));
        store.flush().unwrap();
    }
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(store.tip().unwrap().hash, b1.hash());
    assert_eq!(store.offset("blocks/0").unwrap(), Some(1));
    assert_eq!(store.offset("tx/3").unwrap(), Some(9));
    assert_eq!(store.mempool_head(10).unwrap(), vec![transfer(2)]);
    assert_eq!(store.main_blocks(0, 10, usize::MAX).unwrap(), vec![genesis_block(), b1]);
    let again = store.admit_transactions(&[transfer(1), transfer(2), transfer(3)], &[], 10).unwrap();
    assert_eq!(again, vec![AdmitOutcome::AlreadyConfirmed, AdmitOutcome::AlreadyPooled, AdmitOutcome::Added]);
    assert_eq!(store.mempool_len().unwrap(), 2);
    assert_eq!(store.mempool_head(10).unwrap(), vec![transfer(2), transfer(3)]);
    assert!(store.check_consistency().unwrap().problems.is_empty());
}

#[test]
fn an_adopted_orphan_sees_the_transactions_its_parent_just_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    let b1 = child(&p, &genesis_block(), "m", &[transfer(1)]);
    let repeats = child(&p, &b1, "m", &[transfer(2), transfer(1)]);
    let fresh = child(&p, &b1, "n", &[transfer(3)]);
    assert_eq!(
        store.apply_block(repeats.clone(), repeats.header.timestamp_ms, &[offset(1)]).unwrap(),
        vec![Outcome::Orphaned(repeats.hash())]
    );
    assert_eq!(
        store.apply_block(fresh.clone(), fresh.header.timestamp_ms, &[offset(2)]).unwrap(),
        vec![Outcome::Orphaned(fresh.hash())]
    );
    let outcomes = store.apply_block(b1.clone(), b1.header.timestamp_ms, &[offset(3)]).unwrap();
    assert_eq!(
        outcomes[1],
        Outcome::Invalid(repeats.hash(), crate::core::validate::BlockError::AlreadyInBranch(transfer(1).id()))
    );
    assert!(matches!(outcomes[2], Outcome::Stored { hash, tip_moved: true, .. } if hash == fresh.hash()));
    let mut memory = MemoryChain::new(p);
    memory.apply(repeats);
    memory.apply(fresh);
    assert_eq!(memory.apply(b1), outcomes, "sled and memory agree");
}

#[test]
fn the_mempool_bound_refuses_extra_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    let txs: Vec<_> = (0..3).map(transfer).collect();
    let outcomes = store.admit_transactions(&txs, &[], 2).unwrap();
    assert_eq!(outcomes[2], AdmitOutcome::MempoolFull);
    assert_eq!(store.mempool_len().unwrap(), 2);
    let bad = crate::core::transaction::Transaction { amount: 0, ..transfer(7) };
    assert!(matches!(store.admit_transactions(&[bad], &[], 9).unwrap()[0], AdmitOutcome::Invalid(_)));
}

#[test]
fn a_skipped_message_only_moves_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    store.skip_to(&[offset(5)]).unwrap();
    assert_eq!(store.offset("blocks/0").unwrap(), Some(5));
    assert_eq!(store.tip().unwrap().height, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The sled store and the in-memory chain apply the consensus rules identically.
    #[test]
    fn store_agrees_with_memory_chain(steps in prop::collection::vec(step(), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
        let mut memory = MemoryChain::new(params());
        for (i, block) in history(&steps).into_iter().enumerate() {
            let from_store = store.apply_block(block.clone(), block.header.timestamp_ms, &[offset(i as u64 + 1)]).unwrap();
            prop_assert_eq!(from_store, memory.apply(block));
        }
        prop_assert_eq!(store.tip().unwrap(), memory.tip_info());
        let stored = store.main_blocks(0, usize::MAX, usize::MAX).unwrap();
        prop_assert_eq!(stored.iter().collect::<Vec<_>>(), memory.main_chain());
        prop_assert_eq!(store.mempool_head(usize::MAX).unwrap(), memory.mempool().to_vec());
        let report = store.check_consistency().unwrap();
        prop_assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}

#[test]
fn a_side_branch_is_kept_for_its_next_block_until_the_tip_moves() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    let apply =
        |block: &crate::core::block::Block| store.apply_block(block.clone(), block.header.timestamp_ms, &[]).unwrap();
    let g = genesis_block();
    let main1 = child(&p, &g, "main", &[transfer(1)]);
    let main2 = child(&p, &main1, "main", &[]);
    let main3 = child(&p, &main2, "main", &[]);
    for block in [&main1, &main2, &main3] {
        apply(block);
    }
    // A side branch from main1 that never catches up: each block is checked against the branch
    // kept from the one before, and the branch holds every transfer on it.
    let side2 = child(&p, &main1, "side", &[transfer(2)]);
    let side3 = child(&p, &side2, "side", &[transfer(3)]);
    apply(&side2);
    apply(&side3);
    let tip = store.tip().unwrap().hash;
    assert_eq!(tip, main3.hash());
    let kept = store.take_side_branch(&side3.hash(), &tip).unwrap().expect("the branch ending at side3 is kept");
    assert_eq!((kept.side_len(), kept.fork_height()), (2, 1));
    assert!(store.take_side_branch(&side3.hash(), &tip).unwrap().is_none(), "taken once");
    // Without it, the rules walk the branch and reach the same verdict: transfer 2 is already on it.
    let repeat = child(&p, &side3, "side", &[transfer(2)]);
    assert!(matches!(apply(&repeat).as_slice(), [Outcome::Invalid(..)]));
    let side4 = child(&p, &side3, "side", &[transfer(4)]);
    assert!(matches!(apply(&side4).as_slice(), [Outcome::Stored { tip_moved: true, .. }]));
    assert!(store.take_side_branch(&side4.hash(), &side4.hash()).unwrap().is_none(), "a moved tip drops it");
}
