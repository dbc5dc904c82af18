//! Store tests on real sled files in a temporary directory.

use super::*;
use crate::core::account::Address;
use crate::core::admission::Refusal;
use crate::core::chain::{ChainView, Outcome};
use crate::core::memory::MemoryChain;
use crate::core::testkit::{
    address, child, genesis_block, history, key, params, retargeting_params, step, transfer, ShorterHeavierReorg,
};
use crate::core::transaction::Transfer;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

fn blocks_position() -> TopicPartition {
    TopicPartition::new("blocks", 0)
}

fn offset(next: u64) -> OffsetUpdate {
    OffsetUpdate { position: blocks_position(), next }
}

#[test]
fn a_new_store_holds_genesis_and_refuses_another_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(store.tip().unwrap().hash, genesis_block().hash());
    assert_eq!(store.offset(&blocks_position()).unwrap(), None);
    drop(store);
    let other = ChainParams { chain_id: "other".into(), ..params() };
    let err = Store::open(dir.path(), &other, DEFAULT_CACHE_BYTES).err().unwrap();
    assert!(matches!(err, StoreError::WrongChain { .. }), "{err}");
}

#[test]
fn a_store_reopened_the_moment_it_is_dropped_opens() {
    let dir = tempfile::tempdir().unwrap();
    for next in 1..=50 {
        let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
        assert_eq!(store.offset(&blocks_position()).unwrap(), (next > 1).then_some(next - 1));
        store.skip_to(&[offset(next)]).unwrap();
        store.flush().unwrap();
    }
}

#[test]
fn a_directory_another_open_store_holds_is_refused_after_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let _held = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    let err = open_db_waiting(dir.path(), DEFAULT_CACHE_BYTES, Duration::from_millis(200)).err().unwrap();
    assert!(matches!(&err, StoreError::Locked { waited, .. } if *waited == Duration::from_millis(200)), "{err}");
}

#[test]
fn a_store_of_another_layout_is_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    store.tree.insert(keys::key(keys::STATE, keys::LAYOUT), &3u64.to_be_bytes()).unwrap();
    // Bytes past the stored end, which opening a store of this layout would cut off.
    store.bodies.append(&[vec![7u8; 100]]).unwrap();
    let files = store.bodies.bytes().unwrap();
    store.flush().unwrap();
    drop(store);
    let err = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).err().unwrap();
    assert!(matches!(err, StoreError::Layout { found: 3, expected: LAYOUT_VERSION }), "{err}");
    assert!(err.to_string().contains("new data directory"), "{err}");
    let err = Store::open_existing(dir.path(), DEFAULT_CACHE_BYTES).err().unwrap();
    assert!(matches!(err, StoreError::Layout { .. }), "{err}");
    let left = std::fs::metadata(dir.path().join(BLOCK_FILES_DIR).join("00000000.blk")).unwrap().len();
    assert_eq!(left, files, "a refused directory is left as it was");
}

#[test]
fn an_offset_key_naming_no_partition_is_reported_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    store.skip_to(&[offset(4)]).unwrap();
    store.tree.insert(keys::key(keys::OFFSET, b"blocks"), &7u64.to_be_bytes()).unwrap();
    let err = store.offsets().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    let problems = store.check_consistency().unwrap().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("offsets"), "{problems:?}");
    assert_eq!(store.offset(&blocks_position()).unwrap(), Some(4));
}

fn offered(txs: &[Transfer]) -> Vec<Offered> {
    txs.iter().map(|t| Offered { transfer: t.clone(), signature_valid: true }).collect()
}

fn limits(max_transfers: u64) -> MempoolLimits {
    MempoolLimits { max_transfers }
}

#[test]
fn state_and_offsets_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let b1 = child(&p, &genesis_block(), "m", &[transfer(1, 0)]);
    {
        let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
        let admitted = store
            .admit_transactions(
                &offered(&[transfer(1, 0), transfer(2, 0), transfer(2, 0)]),
                &[OffsetUpdate { position: TopicPartition::new("tx", 3), next: 9 }],
                limits(10),
            )
            .unwrap();
        assert_eq!(admitted, vec![Ok(()), Ok(()), Err(Refusal::AlreadyPooled)]);
        let outcomes = store.apply_block(b1.clone(), b1.header.timestamp_ms, &[offset(1)]).unwrap();
        assert!(matches!(outcomes[0], Outcome::Stored { tip_moved: true, .. }));
        store.flush().unwrap();
    }
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(store.tip().unwrap().hash, b1.hash());
    assert_eq!(store.offset(&blocks_position()).unwrap(), Some(1));
    assert_eq!(store.offset(&TopicPartition::new("tx", 3)).unwrap(), Some(9));
    assert_eq!(
        store.offsets().unwrap().into_iter().collect::<Vec<_>>(),
        vec![(blocks_position(), 1), (TopicPartition::new("tx", 3), 9)]
    );
    assert_eq!(store.mempool_head(10).unwrap(), vec![transfer(2, 0)]);
    assert_eq!(store.main_blocks(0, 10, usize::MAX).unwrap(), vec![genesis_block(), b1]);
    let again =
        store.admit_transactions(&offered(&[transfer(1, 0), transfer(2, 0), transfer(3, 0)]), &[], limits(10)).unwrap();
    assert_eq!(again, vec![Err(Refusal::NonceUsed { next: 1, got: 0 }), Err(Refusal::AlreadyPooled), Ok(())]);
    assert_eq!(store.mempool_len().unwrap(), 2);
    assert_eq!(store.mempool_head(10).unwrap(), vec![transfer(2, 0), transfer(3, 0)]);
    let (account, pending_nonce) = store.account_with_pending(&address(2)).unwrap();
    assert_eq!((account.balance, account.nonce, pending_nonce), (1_000_010, 0, 1));
    assert!(store.check_consistency().unwrap().problems.is_empty());
}

#[test]
fn admission_checks_signature_nonce_and_balance_against_what_is_pending() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    let rich = |nonce, amount| Transfer::sign(&key(0), p.chain_tag(), address(1), amount, 0, nonce);
    let mut forged = transfer(0, 0);
    forged.amount = 999;
    let outcomes = store
        .admit_transactions(
            &[
                Offered { transfer: forged, signature_valid: false },
                Offered { transfer: rich(1, 600_000), signature_valid: true }, // waits for nonce 0
                Offered { transfer: rich(0, 300_000), signature_valid: true },
                Offered { transfer: rich(2, 200_000), signature_valid: true }, // 1.1 M pending: too much
                Offered { transfer: rich(1, 1), signature_valid: true },       // nonce 1 is taken
                Offered { transfer: rich(9, 1), signature_valid: true },       // far ahead: waits
                Offered { transfer: Transfer { fee: u64::MAX, ..rich(2, 1) }, signature_valid: true },
            ],
            &[],
            limits(10),
        )
        .unwrap();
    let reasons: Vec<&str> = outcomes.iter().map(|o| o.as_ref().map_or_else(|e| e.reason(), |_| "ok")).collect();
    assert_eq!(reasons, ["bad_signature", "ok", "ok", "insufficient_funds", "nonce_taken", "ok", "amount_overflow"]);
    assert_eq!(store.account_with_pending(&address(0)).unwrap().1, 2);
}

#[test]
fn an_adopted_orphan_is_checked_against_the_accounts_its_parent_left() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    let b1 = child(&p, &genesis_block(), "m", &[transfer(1, 0)]);
    let repeats = child(&p, &b1, "m", &[transfer(2, 0), transfer(1, 0)]);
    let fresh = child(&p, &b1, "n", &[transfer(1, 1)]);
    assert_eq!(
        store.apply_block(repeats.clone(), repeats.header.timestamp_ms, &[offset(1)]).unwrap(),
        vec![Outcome::Orphaned(repeats.hash())]
    );
    assert_eq!(
        store.apply_block(fresh.clone(), fresh.header.timestamp_ms, &[offset(2)]).unwrap(),
        vec![Outcome::Orphaned(fresh.hash())]
    );
    let outcomes = store.apply_block(b1.clone(), b1.header.timestamp_ms, &[offset(3)]).unwrap();
    assert!(matches!(&outcomes[1], Outcome::Invalid(hash, e) if *hash == repeats.hash() && e.reason() == "bad_nonce"));
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
    let txs: Vec<_> = (0..3).map(|s| transfer(s, 0)).collect();
    let outcomes = store.admit_transactions(&offered(&txs), &[], limits(2)).unwrap();
    assert_eq!(outcomes[2], Err(Refusal::MempoolFull { min_fee: Some(2) }), "fee 2 beats the others' 1");
    assert_eq!(store.mempool_len().unwrap(), 2);
    let bad = Transfer { amount: 0, ..transfer(3, 0) };
    assert!(matches!(
        store.admit_transactions(&offered(&[bad]), &[], limits(9)).unwrap()[0],
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn a_full_mempool_makes_room_for_a_ready_transfer_by_dropping_one_behind_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    // Sender 1's nonces 2 and 3 wait for 0 and 1, which never come: they cannot be mined.
    let gapped = [transfer(1, 2), transfer(1, 3)];
    assert_eq!(store.admit_transactions(&offered(&gapped), &[], limits(2)).unwrap(), vec![Ok(()), Ok(())]);
    assert!(store.mempool_ready(10).unwrap().is_empty(), "nothing is ready for a miner");
    let outcomes = store.admit_transactions(&offered(&[transfer(2, 0), transfer(2, 2)]), &[], limits(2)).unwrap();
    assert_eq!(outcomes[0], Ok(()), "a ready transfer displaces a waiting one");
    assert_eq!(outcomes[1], Err(Refusal::MempoolFull { min_fee: None }), "a waiting one does not");
    assert_eq!(store.mempool_head(10).unwrap(), vec![transfer(1, 2), transfer(2, 0)], "the highest nonce went");
    assert_eq!(store.mempool_ready(10).unwrap(), vec![transfer(2, 0)]);
    assert!(store.check_consistency().unwrap().problems.is_empty());
    drop(store);
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(store.mempool_ready(10).unwrap(), vec![transfer(2, 0)], "readiness survives a restart");
}

#[test]
fn a_miner_takes_ready_transfers_in_arrival_order_whatever_waits_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    let mut arrivals: Vec<Transfer> = (1..=4).map(|n| transfer(1, n)).collect(); // all behind a gap
    arrivals.extend([transfer(2, 1), transfer(3, 0), transfer(2, 0)]);
    let outcomes = store.admit_transactions(&offered(&arrivals), &[], limits(100)).unwrap();
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(store.mempool_ready(10).unwrap(), vec![transfer(3, 0), transfer(2, 0), transfer(2, 1)]);
    assert_eq!(store.mempool_ready(1).unwrap(), vec![transfer(3, 0)]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever arrives in whatever order, what the miner gets is a valid block's worth: each
    /// sender's transfers from its next nonce on, cut only between chunks, and no chunk left out
    /// that would have fit in the room the chunks paying at least as much per byte left.
    #[test]
    fn the_miner_gets_whole_chunks_by_fee_rate_and_a_valid_block(
        arrivals in proptest::collection::vec((0usize..5, 0u64..5, 0u64..40), 1..30),
        limit in 1usize..8,
    ) {
        use crate::core::fee_rate::{chunks, FeeRate};
        let dir = tempfile::tempdir().unwrap();
        let p = params();
        let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
        let txs: Vec<Transfer> = arrivals
            .iter()
            .map(|&(sender, nonce, fee)| Transfer::sign(&key(sender), p.chain_tag(), address(9), 10, fee, nonce))
            .collect();
        store.admit_transactions(&offered(&txs), &[], limits(100)).unwrap();
        let pooled = store.mempool_head(100).unwrap();
        let chosen = store.mempool_ready(limit).unwrap();
        prop_assert!(chosen.len() <= limit);

        let mut taken: HashMap<Address, usize> = HashMap::new();
        for tx in &chosen {
            let count = taken.entry(tx.sender).or_default();
            prop_assert_eq!(tx.nonce, *count as u64, "each sender's nonces in order from 0");
            *count += 1;
        }
        // Each sender's ready run and its chunks; the rates of the chunks taken.
        let mut runs: HashMap<Address, Vec<FeeRate>> = HashMap::new();
        for sender in (0..5).map(address) {
            let mut run = Vec::new();
            while let Some(tx) = pooled.iter().find(|t| t.sender == sender && t.nonce == run.len() as u64) {
                run.push(FeeRate::of(tx));
            }
            runs.insert(sender, run);
        }
        let mut chosen_chunks: Vec<(FeeRate, usize)> = Vec::new();
        let mut first_left: Vec<(FeeRate, usize)> = Vec::new();
        for (sender, run) in &runs {
            let wanted = taken.get(sender).copied().unwrap_or(0);
            let mut start = 0;
            for chunk in chunks(run.iter().copied()) {
                if start == wanted {
                    first_left.push((chunk.rate, chunk.len));
                    break;
                }
                chosen_chunks.push((chunk.rate, chunk.len));
                start += chunk.len;
            }
            prop_assert_eq!(start, wanted, "the cut falls between chunks");
        }
        for (rate, len) in first_left {
            let before: usize = chosen_chunks.iter().filter(|(r, _)| *r >= rate).map(|(_, l)| l).sum();
            prop_assert!(len + before > limit, "a chunk of {} at {:?} would have fit", len, rate);
        }
        let block = child(&p, &genesis_block(), "m", &chosen);
        let outcomes = store.apply_block(block.clone(), block.header.timestamp_ms, &[]).unwrap();
        let stored = matches!(outcomes[0], Outcome::Stored { tip_moved: true, .. });
        prop_assert!(stored, "{:?}", outcomes);
    }
}

#[test]
fn a_transfer_handed_back_by_a_reorg_goes_ahead_of_its_pooled_successor() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    let apply = |block: &crate::core::block::Block| store.apply_block(block.clone(), block.header.timestamp_ms, &[]);
    // Account 4 spends all but 5 (cost 999,995) and gets 10 from account 3, then pools nonce 1
    // (cost 11).
    let big = Transfer::sign(&key(4), p.chain_tag(), address(5), 999_994, 1, 0);
    let a1 = child(&p, &genesis_block(), "a", &[big.clone(), transfer(3, 0)]);
    apply(&a1).unwrap();
    assert_eq!(store.admit_transactions(&offered(&[transfer(4, 1)]), &[], limits(10)).unwrap(), vec![Ok(())]);
    // A longer branch without them hands both back. Counted after its pooled successor, `big`
    // would not be covered and the successor would wait forever behind nonce 0; in nonce order
    // `big` comes first and the successor is the one the balance no longer covers.
    let b1 = child(&p, &genesis_block(), "b", &[]);
    let b2 = child(&p, &b1, "b", &[]);
    apply(&b1).unwrap();
    apply(&b2).unwrap();
    assert_eq!(store.tip().unwrap().hash, b2.hash());
    // Both pay 1; `big`'s larger amount takes more bytes, so it pays less per byte and goes last.
    assert_eq!(store.mempool_ready(10).unwrap(), vec![transfer(3, 0), big]);
    assert_eq!(store.mempool_len().unwrap(), 2);
    assert!(store.check_consistency().unwrap().problems.is_empty());
}

/// The `P` records on disk, by sequence.
fn mempool_records(store: &Store) -> Vec<u64> {
    let key = |k: sled::IVec| be_u64(&k, &k[1..]).unwrap();
    store.tree.scan_prefix([keys::MEMPOOL]).keys().map(|k| key(k.unwrap())).collect()
}

#[test]
fn a_confirmed_transfer_leaves_the_mempool_with_its_block_and_its_record_with_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    let pooled = [transfer(1, 0), transfer(2, 0), transfer(3, 0)];
    store.admit_transactions(&offered(&pooled), &[], limits(10)).unwrap();
    let b1 = child(&p, &genesis_block(), "m", &pooled[..2]);
    store.apply_block(b1.clone(), b1.header.timestamp_ms, &[offset(1)]).unwrap();
    // The block is applied; the records of its transfers wait for the sweep, and no reader
    // sees them.
    assert_eq!(mempool_records(&store), vec![0, 1, 2]);
    assert_eq!(store.mempool_head(10).unwrap(), vec![transfer(3, 0)]);
    assert_eq!(store.mempool_head(1).unwrap(), vec![transfer(3, 0)], "a stale record does not take a place");
    assert_eq!(store.mempool_len().unwrap(), 1);
    assert!(store.check_consistency().unwrap().problems.is_empty());
    assert_eq!(store.sweep_mempool().unwrap(), 2);
    assert_eq!(mempool_records(&store), vec![2]);
    assert_eq!(store.sweep_mempool().unwrap(), 0, "nothing is left to sweep");
}

#[test]
fn records_a_crash_kept_from_their_sweep_are_deleted_when_the_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let b1 = child(&p, &genesis_block(), "m", &[transfer(1, 0)]);
    {
        let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
        store.admit_transactions(&offered(&[transfer(1, 0), transfer(1, 1)]), &[], limits(10)).unwrap();
        store.apply_block(b1.clone(), b1.header.timestamp_ms, &[offset(1)]).unwrap();
        // The process dies here: the block's write is on disk, its sweep never ran.
        store.flush().unwrap();
        assert_eq!(mempool_records(&store), vec![0, 1]);
    }
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(mempool_records(&store), vec![1], "the confirmed transfer's record is gone");
    assert_eq!(store.mempool_ready(10).unwrap(), vec![transfer(1, 1)]);
    assert_eq!(store.tip().unwrap().hash, b1.hash());
    assert!(store.check_consistency().unwrap().problems.is_empty());
}

#[test]
fn a_transfer_admitted_before_the_sweep_survives_a_crash_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    // Account 4 pools nonces 0 and 1; a block spends nearly all its balance with another
    // transfer at nonce 0, which confirms neither and leaves nonce 1 uncovered.
    let big = Transfer::sign(&key(4), p.chain_tag(), address(5), 999_990, 1, 0);
    let b1 = child(&p, &genesis_block(), "m", std::slice::from_ref(&big));
    let cheap = Transfer::sign(&key(4), p.chain_tag(), address(5), 1, 1, 1);
    {
        let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
        store.admit_transactions(&offered(&[transfer(4, 0), transfer(4, 1)]), &[], limits(10)).unwrap();
        store.apply_block(b1.clone(), b1.header.timestamp_ms, &[offset(1)]).unwrap();
        // Before the sweep, a transfer the new balance covers takes nonce 1.
        assert_eq!(
            store.admit_transactions(&offered(std::slice::from_ref(&cheap)), &[], limits(10)).unwrap(),
            vec![Ok(())]
        );
        store.flush().unwrap();
        assert_eq!(mempool_records(&store), vec![0, 1, 2]);
    }
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(store.mempool_ready(10).unwrap(), vec![cheap], "the stale record of nonce 1 does not shadow it");
    assert_eq!(mempool_records(&store), vec![2]);
    assert!(store.check_consistency().unwrap().problems.is_empty());
}

#[test]
fn a_spent_record_no_block_listed_is_reported_not_swept() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let b1 = child(&p, &genesis_block(), "m", &[transfer(1, 0)]);
    {
        let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
        store.apply_block(b1.clone(), b1.header.timestamp_ms, &[offset(1)]).unwrap();
        // A writer that forgot a confirmed transfer's record, and listed it nowhere.
        store.tree.insert(keys::numbered(keys::MEMPOOL, 7), encoding::encode(&transfer(1, 0))).unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    let problems = store.check_consistency().unwrap().problems;
    assert!(problems.iter().any(|p| p.contains("uses a nonce the chain already used")), "{problems:?}");
}

#[test]
fn a_store_of_layout_10_is_marked_11_keeping_its_mempool_but_what_its_accounts_spent() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let b1 = child(&p, &genesis_block(), "m", &[transfer(1, 0)]);
    {
        let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
        store.admit_transactions(&offered(&[transfer(1, 0), transfer(2, 0)]), &[], limits(10)).unwrap();
        store.apply_block(b1.clone(), b1.header.timestamp_ms, &[offset(1)]).unwrap();
        // What the build that first swept after the block (a93fc0d, layout 10, no list) left
        // when it stopped between the block and its sweep.
        store.tree.remove(keys::key(keys::STATE, keys::UNSWEPT)).unwrap();
        store.tree.insert(keys::key(keys::STATE, keys::LAYOUT), &10u64.to_be_bytes()).unwrap();
        store.flush().unwrap();
        assert_eq!(mempool_records(&store), vec![0, 1]);
    }
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(upgrade::stored_layout(&store.tree).unwrap(), LAYOUT_VERSION);
    assert_eq!(LAYOUT_VERSION, 11);
    assert_eq!(mempool_records(&store), vec![1], "the confirmed transfer's record is gone");
    assert_eq!(store.mempool_head(10).unwrap(), vec![transfer(2, 0)]);
    assert!(store.check_consistency().unwrap().problems.is_empty());
}

#[test]
fn a_transfer_handed_back_before_its_record_was_swept_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let a1 = child(&p, &genesis_block(), "a", &[transfer(1, 0)]);
    let b1 = child(&p, &genesis_block(), "b", &[]);
    let b2 = child(&p, &b1, "b", &[]);
    {
        let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
        store.admit_transactions(&offered(&[transfer(1, 0)]), &[], limits(10)).unwrap();
        for block in [&a1, &b1, &b2] {
            store.apply_block(block.clone(), block.header.timestamp_ms, &[]).unwrap();
        }
        // B's branch handed the transfer back while its first record waited for the sweep: the
        // write that pooled it again deleted that record.
        assert_eq!(store.tip().unwrap().hash, b2.hash());
        assert_eq!(mempool_records(&store), vec![1]);
        assert_eq!(store.mempool_head(10).unwrap(), vec![transfer(1, 0)]);
        store.flush().unwrap();
    }
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(store.mempool_ready(10).unwrap(), vec![transfer(1, 0)]);
    assert!(store.check_consistency().unwrap().problems.is_empty());
}

#[test]
fn an_orphan_adopted_within_the_run_that_pooled_it_leaves_no_record() {
    // What a node reads right after a retention gap: a retained block whose parent comes later
    // in the same run of messages.
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let b1 = child(&p, &genesis_block(), "m", &[]);
    let b2 = child(&p, &b1, "m", &[]);
    {
        let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
        let run = vec![(b2.clone(), b2.header.timestamp_ms), (b1.clone(), b1.header.timestamp_ms)];
        let outcomes = store.apply_blocks(run, &[offset(2)], HashSet::new()).unwrap();
        assert_eq!(outcomes[0], vec![Outcome::Orphaned(b2.hash())]);
        assert_eq!(store.tip().unwrap().hash, b2.hash(), "adopted");
        assert_eq!(store.orphan_count(), 0);
        assert!(store.check_consistency().unwrap().problems.is_empty());
    }
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(store.orphan_count(), 0, "no orphan record was left on disk");
}

#[test]
fn a_skipped_message_only_moves_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    store.skip_to(&[offset(5)]).unwrap();
    assert_eq!(store.offset(&blocks_position()).unwrap(), Some(5));
    assert_eq!(store.tip().unwrap().height, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The sled store and the in-memory chain apply the consensus rules identically.
    #[test]
    fn store_agrees_with_memory_chain(steps in prop::collection::vec(step(), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        let p = retargeting_params(3);
        let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
        let mut memory = MemoryChain::new(p.clone());
        for (i, block) in history(&p, &steps).into_iter().enumerate() {
            let from_store = store.apply_block(block.clone(), block.header.timestamp_ms, &[offset(i as u64 + 1)]);
            prop_assert!(from_store.is_ok(), "block {} of the history: {:?}", i, from_store.err());
            prop_assert_eq!(from_store.unwrap(), memory.apply(block));
        }
        prop_assert_eq!(store.tip().unwrap(), memory.tip_info());
        let stored = store.main_blocks(0, usize::MAX, usize::MAX).unwrap();
        prop_assert_eq!(stored.iter().collect::<Vec<_>>(), memory.main_chain());
        prop_assert_eq!(store.mempool_head(usize::MAX).unwrap(), memory.mempool().to_vec());
        let accounts: std::collections::BTreeMap<_, _> = store.stored_accounts().unwrap().into_iter().collect();
        prop_assert_eq!(&accounts, memory.accounts_at_tip());
        let report = store.check_consistency().unwrap();
        prop_assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}

#[test]
fn a_fork_below_the_peak_after_a_reorg_to_a_shorter_heavier_branch_is_refused_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let reorg = ShorterHeavierReorg::build();
    let store = Store::open(dir.path(), &reorg.params, DEFAULT_CACHE_BYTES).unwrap();
    let apply = |block: Block| store.apply_block(block.clone(), block.header.timestamp_ms, &[]).unwrap();
    for block in &reorg.log {
        apply(block.clone());
    }
    let tip = store.tip().unwrap();
    assert_eq!((tip.hash, tip.height, tip.peak_height), (reorg.tip().hash(), 9, 12));
    for height in 0..=2 {
        let outcomes = apply(reorg.fork_from(height));
        assert!(
            matches!(outcomes.as_slice(), [Outcome::Invalid(_, e)] if e.reason() == "beyond_finality"),
            "fork at {height}: {outcomes:?}"
        );
    }
    assert!(matches!(apply(reorg.fork_from(3)).as_slice(), [Outcome::Stored { tip_moved: false, .. }]));
    assert!(store.check_consistency().unwrap().problems.is_empty());
}

#[test]
fn a_side_branch_is_kept_for_its_next_block_until_the_tip_moves() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let store = Store::open(dir.path(), &p, DEFAULT_CACHE_BYTES).unwrap();
    let apply =
        |block: &crate::core::block::Block| store.apply_block(block.clone(), block.header.timestamp_ms, &[]).unwrap();
    let g = genesis_block();
    let main1 = child(&p, &g, "main", &[transfer(1, 0)]);
    let main2 = child(&p, &main1, "main", &[]);
    let main3 = child(&p, &main2, "main", &[]);
    for block in [&main1, &main2, &main3] {
        apply(block);
    }
    // A side branch from main1 that never catches up: each block is checked against the branch
    // kept from the one before, whose accounts hold every transfer on it.
    let side2 = child(&p, &main1, "side", &[transfer(2, 0)]);
    let side3 = child(&p, &side2, "side", &[transfer(3, 0)]);
    apply(&side2);
    apply(&side3);
    let tip = store.tip().unwrap().hash;
    assert_eq!(tip, main3.hash());
    let kept = store.take_side_branch(&side3.hash(), &tip).unwrap().expect("the branch ending at side3 is kept");
    assert_eq!((kept.side_len(), kept.fork_height()), (2, 1));
    assert!(store.take_side_branch(&side3.hash(), &tip).unwrap().is_none(), "taken once");
    // Without it, the rules walk the branch and reach the same verdict: account 2 used nonce 0
    // on it.
    let repeat = child(&p, &side3, "side", &[transfer(2, 0)]);
    assert!(matches!(apply(&repeat).as_slice(), [Outcome::Invalid(_, e)] if e.reason() == "bad_nonce"));
    let side4 = child(&p, &side3, "side", &[transfer(2, 1)]);
    assert!(matches!(apply(&side4).as_slice(), [Outcome::Stored { tip_moved: true, .. }]));
    assert!(store.check_consistency().unwrap().problems.is_empty(), "the reorg restored and replayed the accounts");
    assert!(store.take_side_branch(&side4.hash(), &side4.hash()).unwrap().is_none(), "a moved tip drops it");
}

/// Stores `count` blocks on genesis, one message each, and returns them.
fn stored_chain(store: &Store, count: u64) -> Vec<Block> {
    let mut parent = genesis_block();
    let mut blocks = Vec::new();
    for next in 1..=count {
        let block = child(&params(), &parent, "a", &[]);
        store.apply_block(block.clone(), 0, &[offset(next)]).unwrap();
        parent = block.clone();
        blocks.push(block);
    }
    blocks
}

#[test]
fn bodies_written_for_a_batch_that_never_landed_are_cut_off_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    let blocks = stored_chain(&store, 3);
    let referenced = store.bodies.bytes().unwrap();
    // The process died after the bodies of its next batch reached the files, before the batch.
    store.bodies.append(&[vec![0xAB; 5000]]).unwrap();
    store.flush().unwrap();
    drop(store);

    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(store.bodies.bytes().unwrap(), referenced, "the unreferenced body is gone");
    assert_eq!(store.check_consistency().unwrap().problems, Vec::<String>::new());
    let more = child(&params(), &blocks[2], "a", &[]);
    store.apply_block(more.clone(), 0, &[offset(4)]).unwrap();
    for block in blocks.iter().chain([&more]) {
        assert_eq!(store.block(&block.hash()).unwrap().as_ref(), Some(block));
    }
    assert_eq!(store.main_blocks(1, 10, usize::MAX).unwrap(), [blocks, vec![more]].concat());
}

#[test]
fn a_damaged_body_is_reported_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    let blocks = stored_chain(&store, 2);
    let record = store.index.find(&blocks[1].hash()).unwrap().unwrap();
    let file = dir.path().join(BLOCK_FILES_DIR).join(format!("{:08}.blk", record.body.file));
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[record.body.offset as usize + 40] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let err = store.block(&blocks[1].hash()).unwrap_err();
    assert!(matches!(&err, StoreError::DamagedBlock { hash, .. } if *hash == blocks[1].hash()), "{err}");
    // Fork choice reads the header alone, and finds it damaged too.
    assert!(matches!(store.meta(&blocks[1].hash()), Err(StoreError::DamagedBlock { .. })));
    assert!(store.check_consistency().is_err());
    assert_eq!(store.block(&blocks[0].hash()).unwrap().as_ref(), Some(&blocks[0]), "the other blocks still read");
}

#[test]
fn a_store_whose_block_files_lost_their_end_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    stored_chain(&store, 2);
    store.flush().unwrap();
    drop(store);
    let file = dir.path().join(BLOCK_FILES_DIR).join("00000000.blk");
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::File::options().write(true).open(&file).unwrap().set_len(len - 1).unwrap();
    let err = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).err().unwrap();
    assert!(matches!(err, StoreError::BlockFile(BlockFileError::Short { .. })), "{err}");
}

/// Rewrites the main-chain index of `store` as one record per height, as layouts 7 and 8 kept it.
fn index_by_height(store: &Store) {
    let tip = store.tip().unwrap().height;
    for (height, hash) in store.main_index_from(0, usize::MAX).unwrap().into_iter().enumerate() {
        store.tree.insert(keys::numbered(keys::MAIN_BY_HEIGHT, height as u64), &hash.as_bytes()[..]).unwrap();
    }
    for group in 0..=tip / main_index::GROUP_HEIGHTS {
        store.tree.remove(keys::numbered(keys::MAIN_GROUP, group)).unwrap();
    }
}

/// Turns the store in `dir` back into layout 9: a sled record per block (its metadata and where
/// its body is) and no block index.
fn write_layout_9(dir: &Path) {
    let store = Store::open(dir, &params(), DEFAULT_CACHE_BYTES).unwrap();
    sled_blocks(&store);
    store.tree.insert(keys::key(keys::STATE, keys::LAYOUT), &9u64.to_be_bytes()).unwrap();
    store.flush().unwrap();
    drop(store);
    std::fs::remove_file(dir.join(BLOCK_FILES_DIR).join(block_index::FILE_NAME)).unwrap();
}

/// Writes a layout-9 block record for every block in the index of `store`, and forgets the
/// index's length.
fn sled_blocks(store: &Store) {
    for entry in store.index.entries().unwrap() {
        let meta = store.meta(&entry.hash).unwrap().unwrap();
        let record = upgrade::SledBlock { meta, body: entry.body };
        store.tree.insert(keys::key(keys::BLOCK, entry.hash.as_bytes()), encoding::encode(&record)).unwrap();
    }
    store.tree.remove(keys::key(keys::STATE, keys::INDEX_LEN)).unwrap();
}

/// Turns the store in `dir` back into layout 8: block records in sled and one main-index record
/// per height.
fn write_layout_8(dir: &Path) {
    write_layout_9(dir);
    let db = open_db(dir, DEFAULT_CACHE_BYTES).unwrap();
    let tree = db.open_tree("chain").unwrap();
    let store = Store::with_db(db, tree, dir, params()).unwrap();
    index_by_height(&store);
    store.tree.insert(keys::key(keys::STATE, keys::LAYOUT), &8u64.to_be_bytes()).unwrap();
    store.flush().unwrap();
}

/// Turns the store in `dir` back into layout 7: block records with their
/// bodies inline, one main-index record per height, and no block files.
fn write_layout_7(dir: &Path) {
    let store = Store::open(dir, &params(), DEFAULT_CACHE_BYTES).unwrap();
    index_by_height(&store);
    for entry in store.index.entries().unwrap() {
        let meta = store.meta(&entry.hash).unwrap().unwrap();
        let block = store.block(&entry.hash).unwrap().unwrap();
        let inline = upgrade::InlineBlock { meta, block };
        store.tree.insert(keys::key(keys::BLOCK, entry.hash.as_bytes()), encoding::encode(&inline)).unwrap();
    }
    store.tree.remove(keys::key(keys::STATE, keys::INDEX_LEN)).unwrap();
    store.tree.remove(keys::key(keys::STATE, keys::FILES_END)).unwrap();
    store.tree.insert(keys::key(keys::STATE, keys::LAYOUT), &7u64.to_be_bytes()).unwrap();
    store.flush().unwrap();
    drop(store);
    std::fs::remove_dir_all(dir.join(BLOCK_FILES_DIR)).unwrap();
}

#[test]
fn a_store_of_layout_7_is_upgraded_in_place_even_when_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    let blocks = stored_chain(&store, 12);
    let before = store.check_consistency().unwrap();
    drop(store);
    write_layout_7(dir.path());

    // An upgrade cut short after two batches of about three blocks: the store already says
    // layout 8, so the version before (which reads only 7) refuses it instead of misreading.
    let db = open_db(dir.path(), DEFAULT_CACHE_BYTES).unwrap();
    let tree = db.open_tree("chain").unwrap();
    assert_eq!(upgrade::layout_state(&tree).unwrap(), upgrade::LayoutState::BodiesInline);
    let partial = Store::with_db(db, tree, dir.path(), params()).unwrap();
    partial.begin_moving_bodies().unwrap();
    let record_bytes = encoding::encoded_len(&blocks[0]) * 3;
    assert!(partial.move_bodies_step(record_bytes).unwrap() >= 3);
    assert!(partial.move_bodies_step(record_bytes).unwrap() >= 3);
    partial.flush().unwrap();
    assert_eq!(upgrade::stored_layout(&partial.tree).unwrap(), upgrade::INDEX_BY_HEIGHT_LAYOUT);
    assert_eq!(upgrade::layout_state(&partial.tree).unwrap(), upgrade::LayoutState::BodiesInline);
    drop(partial);

    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(upgrade::layout_state(&store.tree).unwrap(), upgrade::LayoutState::Current);
    assert_eq!(store.check_consistency().unwrap(), before);
    let genesis = genesis_block();
    for block in blocks.iter().chain([&genesis]) {
        assert_eq!(store.block(&block.hash()).unwrap().as_ref(), Some(block));
    }
    assert!(store.tree.get(keys::key(keys::STATE, keys::UPGRADE_CURSOR)).unwrap().is_none());
    let next = child(&params(), &blocks[11], "a", &[]);
    store.apply_block(next.clone(), 0, &[offset(13)]).unwrap();
    assert_eq!(store.tip().unwrap().hash, next.hash());
}

#[test]
fn a_store_of_layout_8_has_its_main_index_regrouped_even_when_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    let blocks = stored_chain(&store, 140);
    let before = store.check_consistency().unwrap();
    drop(store);
    write_layout_8(dir.path());

    // Cut short after one group: the store already says layout 9, so the version before
    // refuses it, and the per-height records left say the regrouping is unfinished.
    let db = open_db(dir.path(), DEFAULT_CACHE_BYTES).unwrap();
    let tree = db.open_tree("chain").unwrap();
    assert_eq!(upgrade::layout_state(&tree).unwrap(), upgrade::LayoutState::IndexByHeight);
    let partial = Store::with_db(db, tree, dir.path(), params()).unwrap();
    assert_eq!(partial.regroup_step(1).unwrap(), 64);
    partial.flush().unwrap();
    assert_eq!(upgrade::stored_layout(&partial.tree).unwrap(), upgrade::GROUPED_INDEX_LAYOUT);
    assert_eq!(upgrade::layout_state(&partial.tree).unwrap(), upgrade::LayoutState::IndexByHeight);
    drop(partial);

    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(upgrade::layout_state(&store.tree).unwrap(), upgrade::LayoutState::Current);
    assert_eq!(store.count(keys::MAIN_BY_HEIGHT), 0);
    assert_eq!(store.count(keys::MAIN_GROUP), 3, "141 heights in groups of 64");
    assert_eq!(store.check_consistency().unwrap(), before);
    let page: Vec<_> = store.main_blocks(60, 10, usize::MAX).unwrap().iter().map(Block::hash).collect();
    let expected: Vec<_> = blocks[59..69].iter().map(Block::hash).collect();
    assert_eq!(page, expected, "a page across a group's end");
    let next = child(&params(), &blocks[139], "a", &[]);
    store.apply_block(next.clone(), 0, &[offset(141)]).unwrap();
    assert_eq!(store.main_hash_at(141).unwrap(), Some(next.hash()));
}

#[test]
fn a_reorganization_across_a_group_boundary_rewrites_the_main_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    let blocks = stored_chain(&store, 66);
    // A branch from height 62 that overtakes the main chain at height 67 replaces heights
    // 63..=66 (both sides of the group boundary at 64) and adds 67.
    let mut parent = blocks[61].clone();
    let mut branch = Vec::new();
    for height in 63..=67u64 {
        let block = child(&params(), &parent, "branch", &[]);
        store.apply_block(block.clone(), 0, &[offset(height + 1)]).unwrap();
        branch.push(block.clone());
        parent = block;
    }
    assert_eq!(store.tip().unwrap().hash, parent.hash());
    for (block, height) in branch.iter().zip(63u64..) {
        assert_eq!(store.main_hash_at(height).unwrap(), Some(block.hash()), "height {height}");
    }
    assert_eq!(store.main_hash_at(62).unwrap(), Some(blocks[61].hash()));
    assert_eq!(store.main_hash_at(68).unwrap(), None);
    assert!(store.check_consistency().unwrap().problems.is_empty());
}

#[test]
fn a_main_index_change_that_leaves_a_gap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    let hash = genesis_block().hash();
    let mut batch = sled::Batch::default();
    let gap = main_index::MainIndexChange::from([(2, Some(hash))]);
    assert!(matches!(store.stage_main_index(&gap, &mut batch), Err(StoreError::Corrupt { .. })));
    let set_above_cut = main_index::MainIndexChange::from([(0, None), (1, Some(hash))]);
    assert!(matches!(store.stage_main_index(&set_above_cut, &mut batch), Err(StoreError::Corrupt { .. })));
}

#[test]
fn a_layout_8_index_with_a_gap_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    stored_chain(&store, 140);
    drop(store);
    write_layout_8(dir.path());
    let db = open_db(dir.path(), DEFAULT_CACHE_BYTES).unwrap();
    db.open_tree("chain").unwrap().remove(keys::numbered(keys::MAIN_BY_HEIGHT, 70)).unwrap();
    db.flush().unwrap();
    drop(db);

    let err = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).err().unwrap();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    let db = open_db(dir.path(), DEFAULT_CACHE_BYTES).unwrap();
    let tree = db.open_tree("chain").unwrap();
    assert_eq!(
        upgrade::stored_layout(&tree).unwrap(),
        upgrade::INDEX_BY_HEIGHT_LAYOUT,
        "the version before still reads it"
    );
    assert_eq!(tree.scan_prefix([keys::MAIN_BY_HEIGHT]).count(), 140);
    assert_eq!(tree.scan_prefix([keys::MAIN_GROUP]).count(), 0);
}

#[test]
fn a_main_index_cut_below_a_group_drops_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    stored_chain(&store, 66);
    let replacement = genesis_block().hash();
    let change = main_index::MainIndexChange::from([(63, Some(replacement)), (64, None), (65, None), (66, None)]);
    let mut batch = sled::Batch::default();
    store.stage_main_index(&change, &mut batch).unwrap();
    store.tree.apply_batch(batch).unwrap();
    assert_eq!(store.main_hash_at(63).unwrap(), Some(replacement));
    assert_eq!(store.main_hash_at(64).unwrap(), None);
    assert_eq!(store.main_index_len().unwrap(), 64);
    assert_eq!(store.count(keys::MAIN_GROUP), 1);
}

#[test]
fn one_batch_of_blocks_across_groups_is_indexed_and_paged_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    let mut parent = genesis_block();
    let mut blocks = Vec::new();
    for _ in 0..150 {
        let block = child(&params(), &parent, "a", &[]);
        parent = block.clone();
        blocks.push(block);
    }
    let batch: Vec<_> = blocks.iter().map(|b| (b.clone(), 0)).collect();
    store.apply_blocks(batch, &[offset(150)], HashSet::new()).unwrap();
    assert_eq!(store.check_consistency().unwrap().problems, Vec::<String>::new());
    assert_eq!(store.count(keys::MAIN_GROUP), 3);
    assert_eq!(store.main_blocks(1, 200, usize::MAX).unwrap(), blocks);
    assert_eq!(store.main_blocks(128, 0, usize::MAX).unwrap(), Vec::<Block>::new());
    assert_eq!(store.main_blocks(151, 10, usize::MAX).unwrap(), Vec::<Block>::new());
}

#[test]
fn a_missing_main_index_group_is_reported_not_paged_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    stored_chain(&store, 140);
    store.tree.remove(keys::numbered(keys::MAIN_GROUP, 1)).unwrap();
    assert!(matches!(store.main_blocks(60, 10, usize::MAX), Err(StoreError::Corrupt { .. })));
    assert!(matches!(store.main_blocks(64, 10, usize::MAX), Err(StoreError::Corrupt { .. })));
    assert!(!store.check_consistency().unwrap().problems.is_empty());
}

#[test]
fn a_store_of_layout_9_has_its_block_records_moved_to_the_block_index_even_when_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    let blocks = stored_chain(&store, 40);
    // A side block, which the index must keep as well.
    let side = child(&params(), &blocks[37], "side", &[]);
    store.apply_block(side.clone(), 0, &[offset(41)]).unwrap();
    let before = store.check_consistency().unwrap();
    assert_eq!(before.stored_blocks, 42);
    drop(store);
    write_layout_9(dir.path());

    // Cut short after one batch of 16: the store already says layout 10, so the version
    // before refuses it, and the block records left say the move is unfinished.
    let db = open_db(dir.path(), DEFAULT_CACHE_BYTES).unwrap();
    let tree = db.open_tree("chain").unwrap();
    assert_eq!(upgrade::layout_state(&tree).unwrap(), upgrade::LayoutState::BlocksInSled);
    let partial = Store::with_db(db, tree, dir.path(), params()).unwrap();
    assert_eq!(partial.index_blocks_step(16).unwrap(), 16);
    partial.flush().unwrap();
    assert_eq!(upgrade::stored_layout(&partial.tree).unwrap(), LAYOUT_VERSION);
    assert_eq!(upgrade::layout_state(&partial.tree).unwrap(), upgrade::LayoutState::BlocksInSled);
    assert_eq!(partial.count(keys::BLOCK), 26);
    drop(partial);

    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    assert_eq!(upgrade::layout_state(&store.tree).unwrap(), upgrade::LayoutState::Current);
    assert_eq!(store.count(keys::BLOCK), 0);
    assert_eq!(store.check_consistency().unwrap(), before);
    for block in blocks.iter().chain([&side, &genesis_block()]) {
        assert_eq!(store.block(&block.hash()).unwrap().as_ref(), Some(block));
    }
    assert_eq!(store.meta(&side.hash()).unwrap().map(|m| (m.height, m.parent)), Some((39, blocks[37].hash())));
    let next = child(&params(), &blocks[39], "a", &[]);
    store.apply_block(next.clone(), 0, &[offset(42)]).unwrap();
    assert_eq!(store.tip().unwrap().hash, next.hash());
}

#[test]
fn block_records_left_in_sled_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    stored_chain(&store, 3);
    let record = upgrade::SledBlock {
        meta: store.meta(&genesis_block().hash()).unwrap().unwrap(),
        body: store.index.find(&genesis_block().hash()).unwrap().unwrap().body,
    };
    store.tree.insert(keys::key(keys::BLOCK, genesis_block().hash().as_bytes()), encoding::encode(&record)).unwrap();
    let problems = store.check_consistency().unwrap().problems;
    assert!(problems.iter().any(|p| p.contains("1 block records of an earlier layout")), "{problems:?}");
}

#[test]
fn a_header_fits_the_bytes_read_for_it() {
    let mut header = genesis_block().header;
    (header.version, header.height, header.timestamp_ms, header.bits, header.nonce) =
        (u32::MAX, u64::MAX, u64::MAX, u32::MAX, u64::MAX);
    assert!(
        encoding::encoded_len(&header) <= read::HEADER_BYTES_AT_MOST as usize,
        "{}",
        encoding::encoded_len(&header)
    );
}

#[test]
fn blocks_stored_in_a_batch_whose_write_failed_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    let blocks = stored_chain(&store, 2);
    let next = child(&params(), &blocks[1], "a", &[]);
    let meta = store.meta(&blocks[1].hash()).unwrap().unwrap();
    let mut batch = sled::Batch::default();
    let staged = store.stage_blocks(&[(next.hash(), meta, &next)], &mut batch).unwrap();
    assert!(store.meta(&next.hash()).unwrap().is_some(), "found while staged");
    let failed = Err(StoreError::Missing(MissingRecord::Tip));
    assert!(store.finish_blocks(failed, Some(staged)).is_err());
    assert_eq!(store.meta(&next.hash()).unwrap(), None);
    assert_eq!(store.block(&next.hash()).unwrap(), None);
    store.apply_block(next.clone(), 0, &[offset(3)]).unwrap();
    assert_eq!(store.block(&next.hash()).unwrap(), Some(next));
    assert_eq!(store.check_consistency().unwrap().problems, Vec::<String>::new());
}

#[test]
fn an_index_entry_claiming_a_body_larger_than_a_block_is_reported_not_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &params(), DEFAULT_CACHE_BYTES).unwrap();
    let blocks = stored_chain(&store, 1);
    let mut entry = store.index.find(&blocks[0].hash()).unwrap().unwrap();
    entry.body.len = u32::try_from(params().max_block_bytes + 1).unwrap();
    entry.hash = BlockHash::new([9; 32]);
    store.index.stage(&[entry]).unwrap();
    let err = store.block(&entry.hash).unwrap_err();
    assert!(matches!(&err, StoreError::DamagedBlock { reason, .. } if reason.contains("claims")), "{err}");
}
