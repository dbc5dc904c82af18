//! Nonce search: the SHA-256 state after the header's first 64 bytes (the midstate) is computed
//! once per candidate, then every nonce costs one compression of the second 64-byte block. The
//! nonce space is dealt out in chunks to the threads of a rayon pool; a shared stop flag (raised
//! when the tip changes, or by a timer) ends the search within one chunk.

use super::header::{BlockHeader, HEADER_LEN, MIDSTATE_PREFIX_LEN, NONCE_OFFSET};
use sha2::compress256;
use sha2::digest::generic_array::GenericArray;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// SHA-256 initial hash values (FIPS 180-4, section 5.3.3).
const SHA256_IV: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// Nonces a thread takes at a time; the stop flag is read between chunks.
const CHUNK: u64 = 1 << 15;

type Block64 = GenericArray<u8, sha2::digest::consts::U64>;

/// The per-candidate precomputation: midstate plus the padded second block with nonce slot.
#[derive(Clone)]
pub struct NonceSearch {
    midstate: [u32; 8],
    tail: Block64,
    bits: u32,
}

/// Offset of the nonce inside the second 64-byte block.
const TAIL_NONCE_OFFSET: usize = NONCE_OFFSET - MIDSTATE_PREFIX_LEN;

impl NonceSearch {
    /// Prepares a search for `header` (its nonce field is ignored).
    pub fn new(header: &BlockHeader) -> Self {
        let bytes = header.encode();
        let mut midstate = SHA256_IV;
        let first = Block64::clone_from_slice(&bytes[..MIDSTATE_PREFIX_LEN]);
        compress256(&mut midstate, std::slice::from_ref(&first));
        let mut tail = Block64::default();
        let rest = HEADER_LEN - MIDSTATE_PREFIX_LEN;
        tail[..rest].copy_from_slice(&bytes[MIDSTATE_PREFIX_LEN..]);
        tail[rest] = 0x80;
        tail[56..].copy_from_slice(&((HEADER_LEN as u64) * 8).to_be_bytes());
        Self { midstate, tail, bits: header.bits }
    }

    /// The block hash the header would have with `nonce`, as SHA-256 state words.
    #[inline(always)]
    fn state_for(&self, tail: &mut Block64, nonce: u64) -> [u32; 8] {
        tail[TAIL_NONCE_OFFSET..TAIL_NONCE_OFFSET + 8].copy_from_slice(&nonce.to_le_bytes());
        let mut state = self.midstate;
        compress256(&mut state, std::slice::from_ref(tail));
        state
    }

    /// The block hash bytes for `nonce` (big-endian words, as SHA-256 outputs them).
    pub fn hash_for(&self, nonce: u64) -> [u8; 32] {
        let mut tail = self.tail;
        let state = self.state_for(&mut tail, nonce);
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// Tries `nonces` in order; returns the first that meets the difficulty.
    pub fn scan(&self, nonces: std::ops::Range<u64>) -> Option<u64> {
        let mut tail = self.tail;
        let bits = self.bits;
        nonces.into_iter().find(|&nonce| state_meets_bits(&self.state_for(&mut tail, nonce), bits))
    }
}

/// Finds a nonce for `header` on the calling thread, for low difficulties (tests and tools);
/// returns false only if the whole nonce space fails.
pub fn solve_on_this_thread(header: &mut BlockHeader) -> bool {
    match NonceSearch::new(header).scan(0..u64::MAX) {
        Some(nonce) => {
            header.nonce = nonce;
            true
        }
        None => false,
    }
}

/// Whether SHA-256 state words, read as a big-endian number, have `bits` leading zero bits.
#[inline(always)]
fn state_meets_bits(state: &[u32; 8], bits: u32) -> bool {
    let mut needed = bits;
    for word in state {
        if needed <= 32 {
            return word.leading_zeros() >= needed;
        }
        if *word != 0 {
            return false;
        }
        needed -= 32;
    }
    false
}

/// How a search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchOutcome {
    /// A nonce meeting the difficulty, unless the search was stopped first.
    pub nonce: Option<u64>,
    /// Nonces tried, summed over all threads.
    pub trials: u64,
}

/// Why the miner's thread pool could not be built.
#[derive(Debug, thiserror::Error)]
#[error("building the mining thread pool: {0}")]
pub struct MinerPoolError(#[from] rayon::ThreadPoolBuildError);

/// A proof-of-work search engine with its own rayon pool.
pub struct Miner {
    pool: rayon::ThreadPool,
}

impl Miner {
    /// A miner on `threads` threads (0 means one per core).
    pub fn new(threads: usize) -> Result<Self, MinerPoolError> {
        let pool =
            rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("miner-{i}")).build()?;
        Ok(Self { pool })
    }

    /// Threads searching in parallel.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Searches `nonces` on every thread until one meets the header's bits, the range is
    /// exhausted, or `stop` is raised. Whichever thread finds first wins: the nonce may differ
    /// between runs and thread counts, but it always satisfies the plain header hash.
    pub fn search(&self, header: &BlockHeader, nonces: Range<u64>, stop: &AtomicBool) -> SearchOutcome {
        let search = NonceSearch::new(header);
        let next_chunk = AtomicU64::new(0);
        let found = AtomicBool::new(false);
        let winner = AtomicU64::new(0);
        let trials = AtomicU64::new(0);
        self.pool.broadcast(|_| {
            let mut tried = 0u64;
            while !stop.load(Ordering::Relaxed) && !found.load(Ordering::Relaxed) {
                let chunk = next_chunk.fetch_add(1, Ordering::Relaxed);
                let from = chunk.checked_mul(CHUNK).and_then(|o| nonces.start.checked_add(o));
                let Some(from) = from.filter(|from| *from < nonces.end) else {
                    break;
                };
                let to = from.saturating_add(CHUNK).min(nonces.end);
                match search.scan(from..to) {
                    Some(nonce) => {
                        tried += nonce - from + 1;
                        if !found.swap(true, Ordering::AcqRel) {
                            winner.store(nonce, Ordering::Release);
                        }
                    }
                    None => tried += to - from,
                }
            }
            trials.fetch_add(tried, Ordering::Relaxed);
        });
        SearchOutcome {
            nonce: found.load(Ordering::Acquire).then(|| winner.load(Ordering::Acquire)),
            trials: trials.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hash::{BlockHash, MerkleRoot};
    use crate::core::pow::meets_bits;
    use proptest::prelude::*;

    fn header(bits: u32) -> BlockHeader {
        BlockHeader {
            version: 1,
            height: 7,
            prev_hash: BlockHash([3; 32]),
            tx_root: MerkleRoot([9; 32]),
            timestamp_ms: 1_700_000_000_000,
            bits,
            nonce: 0,
        }
    }

    proptest! {
        #[test]
        fn midstate_hash_equals_plain_hash(nonce: u64, height: u64, root: [u8; 32]) {
            let mut h = header(0);
            h.height = height;
            h.tx_root = MerkleRoot(root);
            h.nonce = nonce;
            prop_assert_eq!(NonceSearch::new(&h).hash_for(nonce), h.hash().0);
        }
    }

    #[test]
    fn every_thread_count_finds_a_nonce_the_plain_hash_accepts() {
        for threads in [1, 2, 3] {
            let miner = Miner::new(threads).unwrap();
            let mut h = header(14);
            let outcome = miner.search(&h, 0..u64::MAX, &AtomicBool::new(false));
            h.nonce = outcome.nonce.expect("14 bits are found quickly");
            assert!(meets_bits(&h.hash(), 14), "threads={threads}");
            assert!(outcome.trials > 0);
        }
    }

    #[test]
    fn a_raised_stop_flag_ends_an_impossible_search() {
        let miner = Miner::new(2).unwrap();
        let outcome = miner.search(&header(200), 0..u64::MAX, &AtomicBool::new(true));
        assert_eq!(outcome, SearchOutcome { nonce: None, trials: 0 });
    }

    #[test]
    fn a_bounded_range_is_searched_exactly_once() {
        let miner = Miner::new(2).unwrap();
        let outcome = miner.search(&header(200), 5..100_005, &AtomicBool::new(false));
        assert_eq!(outcome, SearchOutcome { nonce: None, trials: 100_000 });
    }

    #[test]
    fn state_bits_check_matches_byte_check() {
        for bits in [0, 1, 31, 32, 33, 64, 65, 256] {
            let mut state = [0u32; 8];
            if bits < 256 {
                let word = (bits / 32) as usize;
                state[word] = 1 << (31 - bits % 32);
            }
            assert!(state_meets_bits(&state, bits), "bits={bits}");
            if bits > 0 {
                assert!(!state_meets_bits(&state, bits + 1), "bits={bits}+1");
            }
        }
    }
}
