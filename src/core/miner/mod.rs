//! Nonce search: the SHA-256 state after the header's first 64 bytes (the midstate) is computed
//! once per candidate, then every nonce costs one compression of the second 64-byte block, done
//! by the fastest [`kernel`] the CPU offers (SHA-NI lanes, AVX-512 or AVX2 vectors, or the
//! portable `sha2` loop), chosen once by a short calibration. The nonce space is dealt out in
//! chunks to the threads of a rayon pool; a shared stop flag (raised when the tip changes, or by
//! a timer) ends the search within one chunk.

pub mod kernel;
mod priority;

use super::block::Block;
use super::header::{BlockHeader, HEADER_LEN, MIDSTATE_PREFIX_LEN, NONCE_OFFSET};
use super::pow::{CompactError, Target};
use crate::sync::lock;
pub use kernel::Kernel;
use kernel::{TailHasher, TAIL_NONCE_OFFSET};
pub use priority::MinerPriority;
use sha2::compress256;
use sha2::digest::generic_array::GenericArray;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const _: () = assert!(TAIL_NONCE_OFFSET == NONCE_OFFSET - MIDSTATE_PREFIX_LEN, "the kernels expect the nonce there");

/// SHA-256 initial hash values (FIPS 180-4, section 5.3.3).
const SHA256_IV: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// Nonces a thread takes at a time; the stop flag is read between chunks.
const CHUNK: u64 = 1 << 12;

/// The per-candidate precomputation: the kernel's hasher for the header's second block.
#[derive(Clone)]
pub struct NonceSearch {
    hasher: TailHasher,
    /// The header's target as the kernels compare it.
    target: [u32; 8],
}

impl NonceSearch {
    /// Prepares a search for `header` (its nonce field is ignored) with `kernel`; fails when the
    /// header's bits are no compact target.
    pub fn new(header: &BlockHeader, kernel: Kernel) -> Result<Self, CompactError> {
        let target = Target::from_compact(header.bits)?.words();
        let bytes = header.encode();
        let mut midstate = SHA256_IV;
        let first = GenericArray::clone_from_slice(&bytes[..MIDSTATE_PREFIX_LEN]);
        compress256(&mut midstate, std::slice::from_ref(&first));
        let mut tail = [0u8; 64];
        let rest = HEADER_LEN - MIDSTATE_PREFIX_LEN;
        tail[..rest].copy_from_slice(&bytes[MIDSTATE_PREFIX_LEN..]);
        tail[rest] = 0x80;
        tail[56..].copy_from_slice(&((HEADER_LEN as u64) * 8).to_be_bytes());
        Ok(Self { hasher: TailHasher::new(kernel, midstate, tail), target })
    }

    /// The block hash bytes for `nonce` (big-endian words, as SHA-256 outputs them).
    pub fn hash_for(&self, nonce: u64) -> [u8; 32] {
        self.hasher.hash_for(nonce)
    }

    /// Tries `nonces` in order; returns the first whose hash meets the target.
    pub fn scan(&self, nonces: Range<u64>) -> Option<u64> {
        self.hasher.scan(nonces, &self.target)
    }
}

/// Finds a nonce for `header` on the calling thread, for low difficulties (tests and tools);
/// returns false if its bits are no target or the whole nonce space fails.
pub fn solve_on_this_thread(header: &mut BlockHeader) -> bool {
    let Ok(search) = NonceSearch::new(header, Kernel::Portable) else {
        return false;
    };
    match search.scan(0..u64::MAX) {
        Some(nonce) => {
            header.nonce = nonce;
            true
        }
        None => false,
    }
}

/// A block no nonce was found for on the calling thread: its bits are no compact target, or no
/// nonce of the whole space meets the target.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no nonce solves the block at height {height} for bits {bits:08x}")]
pub struct Unsolved {
    /// The block's height.
    pub height: u64,
    /// The block's compact target.
    pub bits: u32,
}

/// `candidate` (a [`Block::candidate`]) with its proof of work solved by
/// [`solve_on_this_thread`]. The one way tests, benchmarks and the tools mine a block without a
/// [`Miner`] or a store, at the low difficulties they use; the candidate's parent need not exist,
/// so tests can build orphans and blocks at wrong heights with it too.
pub fn solved(mut candidate: Block) -> Result<Block, Unsolved> {
    if solve_on_this_thread(&mut candidate.header) {
        Ok(candidate)
    } else {
        Err(Unsolved { height: candidate.header.height, bits: candidate.header.bits })
    }
}

/// The `mining.kernel` (and `bench-pow --kernel`) value that asks for timing the kernels.
pub const AUTO_KERNEL: &str = "auto";

/// What a configuration asks for: the fastest kernel found by timing them, or one by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelChoice {
    /// Time each kernel the CPU offers and take the fastest.
    Auto,
    /// This kernel.
    Named(Kernel),
}

/// A kernel name that is unknown, or names a kernel this CPU cannot run.
#[derive(Clone, Debug, thiserror::Error)]
#[error("kernel {name:?} is unknown or not supported by this CPU; use \"auto\" or one of: {offered}")]
pub struct UnknownKernel {
    /// The name given.
    pub name: String,
    /// The kernels this CPU offers, by name.
    pub offered: String,
}

impl KernelChoice {
    /// Reads [`AUTO_KERNEL`] or a kernel name ([`Kernel::from_name`]).
    pub fn parse(name: &str) -> Result<KernelChoice, UnknownKernel> {
        if name == AUTO_KERNEL {
            return Ok(KernelChoice::Auto);
        }
        Kernel::from_name(name).map(KernelChoice::Named).ok_or_else(|| UnknownKernel {
            name: name.to_owned(),
            offered: Kernel::available().iter().map(Kernel::name).collect::<Vec<_>>().join(", "),
        })
    }

    /// The kernel: the named one, or the fastest after timing each for `budget` in all.
    pub fn resolve(self, budget: std::time::Duration) -> Kernel {
        match self {
            KernelChoice::Auto => Kernel::calibrate(budget),
            KernelChoice::Named(kernel) => kernel,
        }
    }
}

/// How a search ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchOutcome {
    /// A nonce meeting the difficulty, unless the search was stopped first.
    pub nonce: Option<u64>,
    /// Nonces tried, summed over all threads.
    pub trials: u64,
    /// Nonces tried by each thread of the pool, in pool order (what a benchmark reports per
    /// thread, as cpuminer does).
    pub trials_by_thread: Vec<u64>,
}

/// Why the miner's thread pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MinerPoolError {
    /// rayon could not start the threads.
    #[error("building the mining thread pool: {0}")]
    Build(#[from] rayon::ThreadPoolBuildError),
    /// The kernel refused the threads their scheduling priority (`mining.priority`).
    #[error(
        "giving the mining threads the {0} priority (set mining.priority = \"normal\" to keep the default one): {1}"
    )]
    Priority(&'static str, std::io::Error),
}

/// A proof-of-work search engine with its own rayon pool and hashing kernel.
pub struct Miner {
    pool: rayon::ThreadPool,
    kernel: Kernel,
    priority: MinerPriority,
    /// Nonces tried since the miner was built, counted chunk by chunk (so a long search shows).
    tried: AtomicU64,
    /// Time spent in finished searches, in microseconds.
    finished_us: AtomicU64,
    /// When the search under way began.
    current: std::sync::Mutex<Option<std::time::Instant>>,
}

/// What a miner has done so far: enough for its hash rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinerProgress {
    /// Nonces tried since the miner was built.
    pub trials: u64,
    /// Seconds spent searching, the search under way included.
    pub searching_seconds: f64,
}

impl MinerProgress {
    /// Nonces per second of search time (0 before the first search).
    pub fn hash_rate(&self) -> f64 {
        if self.searching_seconds > 0.0 {
            self.trials as f64 / self.searching_seconds
        } else {
            0.0
        }
    }
}

impl Miner {
    /// A miner on `threads` threads (0 means one per core) hashing with `kernel`, scheduled at
    /// `priority`.
    pub fn new(threads: usize, kernel: Kernel, priority: MinerPriority) -> Result<Self, MinerPoolError> {
        let pool =
            rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("miner-{i}")).build()?;
        pool.broadcast(|_| priority.apply_to_this_thread())
            .into_iter()
            .collect::<std::io::Result<()>>()
            .map_err(|e| MinerPoolError::Priority(priority.name(), e))?;
        Ok(Self {
            pool,
            kernel,
            priority,
            tried: AtomicU64::new(0),
            finished_us: AtomicU64::new(0),
            current: Default::default(),
        })
    }

    /// Threads searching in parallel.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The hashing kernel the threads use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// How the threads are scheduled against the node's other work.
    pub fn priority(&self) -> MinerPriority {
        self.priority
    }

    /// Nonces tried and time spent searching so far.
    pub fn progress(&self) -> MinerProgress {
        let running = self.lock_current().map_or(0.0, |started| started.elapsed().as_secs_f64());
        MinerProgress {
            trials: self.tried.load(Ordering::Relaxed),
            searching_seconds: self.finished_us.load(Ordering::Relaxed) as f64 / 1e6 + running,
        }
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<std::time::Instant>> {
        lock(&self.current)
    }

    /// Searches `nonces` on every thread until one meets the header's target, the range is
    /// exhausted, or `stop` is raised. Whichever thread finds first wins: the nonce may differ
    /// between runs and thread counts, but it always satisfies the plain header hash. Fails
    /// when the header's bits are no compact target.
    pub fn search(
        &self,
        header: &BlockHeader,
        nonces: Range<u64>,
        stop: &AtomicBool,
    ) -> Result<SearchOutcome, CompactError> {
        let search = NonceSearch::new(header, self.kernel)?;
        let started = std::time::Instant::now();
        *self.lock_current() = Some(started);
        let next_chunk = AtomicU64::new(0);
        let found = AtomicBool::new(false);
        let winner = AtomicU64::new(0);
        let by_thread: Vec<AtomicU64> = (0..self.threads()).map(|_| AtomicU64::new(0)).collect();
        self.pool.broadcast(|context| {
            let mut tried = 0u64;
            while !stop.load(Ordering::Relaxed) && !found.load(Ordering::Relaxed) {
                let chunk = next_chunk.fetch_add(1, Ordering::Relaxed);
                let from = chunk.checked_mul(CHUNK).and_then(|o| nonces.start.checked_add(o));
                let Some(from) = from.filter(|from| *from < nonces.end) else {
                    break;
                };
                let to = from.saturating_add(CHUNK).min(nonces.end);
                let hit = search.scan(from..to);
                self.tried.fetch_add(hit.map_or(to - from, |nonce| nonce - from + 1), Ordering::Relaxed);
                match hit {
                    Some(nonce) => {
                        tried += nonce - from + 1;
                        if !found.swap(true, Ordering::AcqRel) {
                            winner.store(nonce, Ordering::Release);
                        }
                    }
                    None => tried += to - from,
                }
            }
            if let Some(slot) = by_thread.get(context.index()) {
                slot.store(tried, Ordering::Relaxed);
            }
        });
        *self.lock_current() = None;
        self.finished_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        let trials_by_thread: Vec<u64> = by_thread.into_iter().map(AtomicU64::into_inner).collect();
        Ok(SearchOutcome {
            nonce: found.load(Ordering::Acquire).then(|| winner.load(Ordering::Acquire)),
            trials: trials_by_thread.iter().sum(),
            trials_by_thread,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hash::{BlockHash, MerkleRoot};
    use crate::core::transaction::ChainTag;
    use proptest::prelude::*;

    /// A header whose target asks for about `zeros` leading zero bits.
    fn header(zeros: u32) -> BlockHeader {
        BlockHeader {
            version: 2,
            height: 7,
            prev_hash: BlockHash::new([3; 32]),
            tx_root: MerkleRoot::new([9; 32]),
            timestamp_ms: 1_700_000_000_000,
            bits: Target::from_leading_zero_bits(zeros).to_compact(),
            nonce: 0,
        }
    }

    proptest! {
        #[test]
        fn every_kernel_hashes_the_header_as_sha256_does(nonce: u64, height: u64, root: [u8; 32]) {
            let mut h = header(0);
            h.height = height;
            h.tx_root = MerkleRoot::new(root);
            h.nonce = nonce;
            for kernel in Kernel::available() {
                prop_assert_eq!(NonceSearch::new(&h, kernel).unwrap().hash_for(nonce), *h.hash().as_bytes(), "{}", kernel.name());
            }
        }

        #[test]
        fn every_kernel_finds_the_same_first_nonce(height: u64, start in 0u64..u64::MAX - 100_000) {
            let mut h = header(10);
            h.height = height;
            let first = NonceSearch::new(&h, Kernel::Portable).unwrap().scan(start..start + 100_000);
            for kernel in Kernel::available() {
                prop_assert_eq!(NonceSearch::new(&h, kernel).unwrap().scan(start..start + 100_000), first, "{}", kernel.name());
            }
        }
    }

    #[test]
    fn every_kernel_and_thread_count_finds_a_nonce_the_plain_hash_accepts() {
        for kernel in Kernel::available() {
            for threads in [1, 2, 3] {
                let miner = Miner::new(threads, kernel, MinerPriority::Normal).unwrap();
                let mut h = header(14);
                let outcome = miner.search(&h, 0..u64::MAX, &AtomicBool::new(false)).unwrap();
                h.nonce = outcome.nonce.expect("14 bits are found quickly");
                let target = Target::from_compact(h.bits).unwrap();
                assert!(target.is_met_by(&h.hash()), "{} threads={threads}", kernel.name());
                assert!(outcome.trials > 0);
            }
        }
    }

    #[test]
    fn a_solved_candidate_differs_only_by_a_nonce_meeting_its_target() {
        let (chain, parent) = (ChainTag::of("test"), BlockHash::new([5; 32]));
        let bits = Target::from_leading_zero_bits(8).to_compact();
        let candidate = Block::candidate(chain, parent, 4, bits, 1_000, Vec::new());
        let block = solved(candidate.clone()).unwrap();
        assert!(block.header.meets_own_target());
        assert_eq!(block.header, BlockHeader { nonce: block.header.nonce, ..candidate.header });
        let unsolved = solved(Block::candidate(chain, parent, 4, 0, 1_000, Vec::new())).unwrap_err();
        assert_eq!(unsolved, Unsolved { height: 5, bits: 0 }, "bits 0 are no target");
    }

    #[test]
    fn a_kernel_choice_is_auto_or_a_kernel_this_cpu_runs() {
        assert_eq!(KernelChoice::parse(AUTO_KERNEL).unwrap(), KernelChoice::Auto);
        assert_eq!(KernelChoice::parse("portable").unwrap(), KernelChoice::Named(Kernel::Portable));
        let unknown = KernelChoice::parse("sha-ni-x99").unwrap_err();
        assert!(unknown.to_string().contains("portable"), "the error lists what this CPU offers: {unknown}");
        assert_eq!(KernelChoice::Named(Kernel::Portable).resolve(std::time::Duration::ZERO), Kernel::Portable);
    }

    #[test]
    fn one_thread_finds_the_first_nonce_whatever_the_kernel() {
        let h = header(12);
        let first = NonceSearch::new(&h, Kernel::Portable).unwrap().scan(0..u64::MAX);
        for kernel in Kernel::available() {
            let outcome = Miner::new(1, kernel, MinerPriority::Normal)
                .unwrap()
                .search(&h, 0..u64::MAX, &AtomicBool::new(false))
                .unwrap();
            assert_eq!(outcome.nonce, first, "{}", kernel.name());
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_idle_miner_searches_on_threads_the_kernel_runs_only_when_nothing_else_wants_the_core() {
        let miner = Miner::new(2, Kernel::Portable, MinerPriority::Idle).unwrap();
        assert_eq!(miner.pool.broadcast(|_| priority::this_thread_policy()), vec![libc::SCHED_IDLE; 2]);
        let outcome = miner.search(&header(12), 0..u64::MAX, &AtomicBool::new(false)).unwrap();
        assert!(outcome.nonce.is_some(), "an idle machine still gives the search every core");
        // Normal leaves the threads as the process runs (the test may itself run at SCHED_IDLE).
        let normal = Miner::new(2, Kernel::Portable, MinerPriority::Normal).unwrap();
        let process_policy = priority::this_thread_policy();
        assert_eq!(normal.pool.broadcast(|_| priority::this_thread_policy()), vec![process_policy; 2]);
    }

    #[test]
    fn a_raised_stop_flag_ends_an_impossible_search() {
        let miner = Miner::new(2, Kernel::Portable, MinerPriority::Normal).unwrap();
        let outcome = miner.search(&header(200), 0..u64::MAX, &AtomicBool::new(true)).unwrap();
        assert_eq!((outcome.nonce, outcome.trials, outcome.trials_by_thread), (None, 0, vec![0, 0]));
    }

    #[test]
    fn a_bounded_range_is_searched_exactly_once() {
        let miner = Miner::new(2, Kernel::Portable, MinerPriority::Normal).unwrap();
        let outcome = miner.search(&header(200), 5..100_005, &AtomicBool::new(false)).unwrap();
        assert_eq!((outcome.nonce, outcome.trials), (None, 100_000));
        let progress = miner.progress();
        assert_eq!(progress.trials, 100_000, "the miner counts what its searches tried");
        assert!(progress.searching_seconds > 0.0 && progress.hash_rate() > 0.0);
        assert_eq!(outcome.trials_by_thread.iter().sum::<u64>(), 100_000);
    }
}
