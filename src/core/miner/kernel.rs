//! Proof-of-work nonce search kernels.
//!
//! A block header is 96 bytes and its proof-of-work hash is a single SHA-256 of those bytes. SHA-256 works on
//! 64-byte blocks, so the miner hashes the first 64 header bytes once (the *midstate*) and, per nonce, compresses
//! only the padded second block (the *tail*): header bytes 64..96, the `0x80` terminator, zeros, and the bit length
//! 768. The nonce is a little-endian `u64` at tail bytes 24..32, i.e. it lands in message words `W6` and `W7`.
//!
//! # Precomputation
//!
//! For the SHA-NI kernel [`TailHasher::new`] does all work that does not depend on the nonce once per candidate:
//!
//! * Rounds 0..=5 only read `W0..=W5`, so the state after round 5 is a constant. That saves 6 of the 64 rounds
//!   (3 of the 32 `sha256rnds2` instructions on the SHA-NI path).
//! * `W16..=W20` only depend on `W0..=W15` minus `W6`/`W7`, so they (and `W+K` for rounds 8..=19) are constants.
//! * Parts of the later schedule are constant too: `W24..=W27` need `msg1(W8..=W11, W12)` and `W28..=W31` need
//!   `msg1(W12..=W15, W16)`, both nonce-free; `W20..=W23` need the constant `W13..=W16` window.
//!
//! # Lanes (SHA-NI)
//!
//! `sha256rnds2` does two rounds and each one depends on the previous, so a single hash is latency bound (on the
//! machine this was tuned on: ~1 ns latency, but one can issue every ~0.75 ns). [`Kernel::ShaNi`] therefore hashes
//! `lanes` consecutive nonces in lockstep: every step of the compression is written as a loop over the lanes, so
//! the independent dependency chains sit next to each other in the instruction stream and the out-of-order core
//! overlaps them. The batch function is `#[inline(never)]`: when inlined into the scan loop the compiler was seen
//! to serialise the lanes. One generic function (`const N: usize`) covers every lane count. The best count
//! differs per CPU, hence [`Kernel::calibrate`]: on an AMD EPYC lanes were worth 3x, while on the Intel Xeon
//! (Sapphire Rapids class) this was written on the out-of-order core already overlaps consecutive one-lane batches
//! and 2..=8 lanes are within a few percent of each other, about 88-95% of the `sha256rnds2` throughput ceiling.
//! Lanes 3 and up spill to the stack (16 XMM registers); the spills ride on the otherwise idle load/store ports.
//! Lane results are checked in nonce order so every kernel returns the same first hit.
//!
//! # Lanes (AVX-512, AVX2)
//!
//! [`Kernel::Avx512`] runs the SHA-256 rounds in software on 512-bit vectors, one nonce per 32-bit lane, so one
//! step hashes 16 consecutive nonces: each rotate is one `vprord`, each of `Ch`, `Maj` and the three-way XORs of the
//! sigma functions one `vpternlogd`. [`Kernel::Avx2`] is the same generic code on 256-bit vectors (8 nonces; no
//! vector rotate, so shift/shift/OR) for CPUs with AVX2 but neither SHA-NI nor AVX-512. Per candidate,
//! [`TailHasher::new`] precomputes in scalar code: the state after round 5; round 6 down to two sums that `W6` is
//! added to; `W + K` for the nonce-free words `W8..=W20`; and for `W21..=W36` the sum of the terms that do not
//! depend on `W6`/`W7`. Each constant is broadcast where it is used. Per step only `A` of the final state is
//! needed: one unsigned compare of the first output word (`A` plus midstate word 0) against `target[0]` flags the
//! lanes at or below it (AVX-512: `vpcmpud` into a mask register; AVX2, which has no unsigned compare: `vpmaxud` +
//! `vpcmpeqd` + `vmovmskps`), and a second compare flags the lanes equal to it. Hit lanes are visited in nonce
//! order; a lane below `target[0]` is a hit as it stands, a lane equal to it is decided on its full state, recomputed
//! for that one nonce. On the Intel Xeon this was written on, AVX-512 is about 2x the best SHA-NI kernel (its two
//! vector ports do 16 lanes of plain ALU work per instruction, while `sha256rnds2` does two rounds of one hash).
//!
//! AVX-512 intrinsics are stable since Rust 1.89; `rust-version` is 1.90 for `ruint` (the 256-bit targets). The
//! vector code runs only in `#[target_feature]` functions reached after `is_x86_feature_detected!` (`"avx512f"`, respectively `"avx2"`).
//!
//! # Portable path
//!
//! [`Kernel::Portable`] is today's loop over `sha2::compress256`, kept as the reference. `sha2` 0.10 already
//! dispatches to SHA-NI (one stream, no precomputation) when the CPU has it, and otherwise runs its software rounds,
//! written SHA-NI-style on `[u32; 4]` so LLVM vectorises the schedule. A plain-Rust compression with the
//! precomputation above was measured at 5.0-5.2 M/s against 5.3-5.9 M/s for `sha2`'s software backend, so the
//! portable path does not use it.

#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::{__m256i, __m512i};
use std::ops::Range;
use std::time::{Duration, Instant};

/// Largest lane count offered for the SHA-NI kernel (more lanes only add register spills).
pub const MAX_SHANI_LANES: usize = 8;

/// Lane count that `from_name("sha-ni")` picks: a good compromise on the CPUs measured (Intel Xeon with SHA-NI,
/// AMD EPYC); use [`Kernel::calibrate`] to pick per machine.
pub const DEFAULT_SHANI_LANES: usize = 5;

/// Byte offset of the little-endian `u64` nonce inside the 64-byte tail block.
pub const TAIL_NONCE_OFFSET: usize = 24;

/// A way of computing tail compressions; choose with [`Kernel::calibrate`], [`Kernel::from_name`] or
/// [`Kernel::available`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Works on every CPU: today's loop, `sha2::compress256` per nonce (sha2 itself uses single-stream SHA-NI where
    /// the CPU has it). The reference all other kernels are tested against.
    Portable,
    /// Intel SHA extensions, hashing `lanes` consecutive nonces in lockstep to hide `sha256rnds2` latency. Only
    /// usable on x86_64 CPUs with SHA, SSSE3 and SSE4.1; `lanes` must be in `1..=MAX_SHANI_LANES`.
    ShaNi {
        /// Number of nonces hashed in lockstep.
        lanes: usize,
    },
    /// Software SHA-256 on AVX-512F, 16 nonces per step (one per 32-bit lane of a 512-bit vector), with the
    /// nonce-independent rounds and schedule words precomputed. Only usable on x86_64 CPUs with AVX-512F.
    Avx512,
    /// The same computation on AVX2, 8 nonces per step; for CPUs with AVX2 but neither SHA-NI nor AVX-512.
    Avx2,
}

impl Kernel {
    /// All kernels this CPU can run, [`Kernel::Portable`] first. SHA-NI kernels (one per lane count), AVX-512 and
    /// AVX2 are listed only when the CPU has them, so callers can offer or time exactly these. AVX2 is listed
    /// whenever the CPU has it, even if a faster kernel exists; [`Kernel::calibrate`] picks among them.
    pub fn available() -> Vec<Kernel> {
        let mut out = vec![Kernel::Portable];
        if shani_detected() {
            out.extend((1..=MAX_SHANI_LANES).map(|lanes| Kernel::ShaNi { lanes }));
        }
        if avx512_detected() {
            out.push(Kernel::Avx512);
        }
        if avx2_detected() {
            out.push(Kernel::Avx2);
        }
        out
    }

    /// Whether this kernel can run here (CPU support and a valid lane count). [`TailHasher::new`] falls back to
    /// [`Kernel::Portable`] for kernels that cannot.
    pub fn is_supported(&self) -> bool {
        match *self {
            Kernel::Portable => true,
            Kernel::ShaNi { lanes } => (1..=MAX_SHANI_LANES).contains(&lanes) && shani_detected(),
            Kernel::Avx512 => avx512_detected(),
            Kernel::Avx2 => avx2_detected(),
        }
    }

    /// Nonces hashed per step: a scan hashes whole steps, so chunk sizes that are a multiple of this waste nothing.
    pub fn lanes(&self) -> usize {
        match *self {
            Kernel::Portable => 1,
            Kernel::ShaNi { lanes } => lanes,
            Kernel::Avx512 => 16,
            Kernel::Avx2 => 8,
        }
    }

    /// Human-readable name for logs and benchmarks, e.g. `"portable (sha2::compress256)"`, `"sha-ni x4"`,
    /// `"avx-512 x16"` or `"avx2 x8"`.
    /// [`Kernel::from_name`] accepts it back.
    pub fn name(&self) -> String {
        match *self {
            Kernel::Portable => "portable (sha2::compress256)".to_string(),
            Kernel::ShaNi { lanes } => format!("sha-ni x{lanes}"),
            Kernel::Avx512 => "avx-512 x16".to_string(),
            Kernel::Avx2 => "avx2 x8".to_string(),
        }
    }

    /// Parses a config/CLI kernel name: `"portable"`, `"sha-ni"` (= [`DEFAULT_SHANI_LANES`] lanes), `"sha-ni-x4"`,
    /// `"sha-ni x4"` or `"sha-ni-4"`, `"avx512"` (also `"avx-512"`, `"avx-512 x16"`), `"avx2"` (also `"avx2 x8"`)
    /// (case-insensitive; anything [`Kernel::name`] prints). Returns `None` for unknown
    /// names and for kernels this CPU cannot run, so a bad flag fails loudly instead of crashing later.
    pub fn from_name(name: &str) -> Option<Kernel> {
        let n = name.trim().to_ascii_lowercase();
        let compact: String = n.chars().filter(|c| !matches!(c, ' ' | '-' | '_')).collect();
        let kernel = if n == "portable" || n.starts_with("portable ") {
            Kernel::Portable
        } else if compact == "avx512" || compact == "avx512x16" {
            Kernel::Avx512
        } else if compact == "avx2" || compact == "avx2x8" {
            Kernel::Avx2
        } else if n == "sha-ni" || n == "shani" {
            Kernel::ShaNi { lanes: DEFAULT_SHANI_LANES }
        } else {
            let rest = n.strip_prefix("sha-ni").or_else(|| n.strip_prefix("shani"))?;
            let rest = rest.trim_start_matches([' ', '-', '_']);
            let digits = rest.strip_prefix('x').unwrap_or(rest);
            Kernel::ShaNi { lanes: digits.parse().ok()? }
        };
        kernel.is_supported().then_some(kernel)
    }

    /// Times every available kernel on this thread for an equal share of `budget` and returns the fastest. Meant
    /// for node start (100-300 ms is plenty: rates settle within a few ms). The share is split in two passes so a
    /// frequency change or a noisy neighbour during one pass does not decide alone.
    pub fn calibrate(budget: Duration) -> Kernel {
        let kernels = Kernel::available();
        let slice = budget / (2 * kernels.len() as u32).max(1);
        let midstate = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
        let mut tail = [0u8; 64];
        tail[32] = 0x80;
        tail[56..].copy_from_slice(&768u64.to_be_bytes());
        let mut best = vec![0f64; kernels.len()];
        let mut next = 0u64;
        for _pass in 0..2 {
            for (kernel, best) in kernels.iter().zip(best.iter_mut()) {
                let hasher = TailHasher::new(*kernel, midstate, tail);
                let start = Instant::now();
                let mut done = 0u64;
                // 1680 = lcm(1..=8, 16), so every kernel runs full steps only.
                const CHUNK: u64 = 1680;
                loop {
                    // An all-zero target only matches an all-zero hash, i.e. never: this measures the full scan cost.
                    std::hint::black_box(hasher.scan(next..next + CHUNK, &[0; 8]));
                    next += CHUNK;
                    done += CHUNK;
                    if start.elapsed() >= slice {
                        break;
                    }
                }
                let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
                *best = best.max(rate);
            }
        }
        let mut winner = Kernel::Portable;
        let mut winner_rate = 0.0;
        for (kernel, rate) in kernels.iter().zip(best) {
            if rate > winner_rate {
                winner = *kernel;
                winner_rate = rate;
            }
        }
        winner
    }
}

/// Whether the CPU has everything the SHA-NI kernel uses. `is_x86_feature_detected!` caches its answer.
fn shani_detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("sha")
            && is_x86_feature_detected!("sse2")
            && is_x86_feature_detected!("ssse3")
            && is_x86_feature_detected!("sse4.1")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the CPU has AVX-512F, all the AVX-512 kernel uses.
fn avx512_detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the CPU has AVX2, all the AVX2 kernel uses.
fn avx2_detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether a final state, read as a big-endian 256-bit number (`state[0]` most significant), is at most `target`
/// read the same way. Arrays of `u32` compare lexicographically, which is exactly that order.
fn at_or_below(state: &[u32; 8], target: &[u32; 8]) -> bool {
    state <= target
}

/// Whether the final state whose first word is `h0` is at most `target`: the first word decides unless it equals
/// `target[0]`, and only then is `full` called for the whole state.
#[inline(always)]
fn hit(h0: u32, target: &[u32; 8], full: impl FnOnce() -> [u32; 8]) -> bool {
    h0 < target[0] || (h0 == target[0] && at_or_below(&full(), target))
}

/// One candidate (midstate + tail) prepared for fast nonce scanning with a chosen [`Kernel`].
///
/// Building it does every nonce-independent step once (see the module docs), so it should be built once per
/// candidate block and then shared (it is `Send + Sync`) by the threads scanning disjoint nonce ranges.
#[derive(Clone, Debug)]
pub struct TailHasher {
    kernel: Kernel,
    midstate: [u32; 8],
    tail: [u8; 64],
    /// Present only when the CPU was checked to have SHA-NI; its existence is what makes calling the
    /// `#[target_feature]` functions sound.
    #[cfg(target_arch = "x86_64")]
    ni: Option<ni::Consts>,
    /// Present only for [`Kernel::Avx512`] / [`Kernel::Avx2`] after the CPU was checked for that instruction set;
    /// together with `kernel` it is what makes calling the matching `#[target_feature]` functions sound.
    #[cfg(target_arch = "x86_64")]
    wide: Option<wide::Consts>,
}

impl TailHasher {
    /// Prepares `midstate` (SHA-256 state after header bytes 0..64) and the padded `tail` block for `kernel`. The
    /// nonce bytes of `tail` (24..32) are ignored. A kernel this CPU cannot run (see [`Kernel::is_supported`])
    /// silently becomes [`Kernel::Portable`]; [`TailHasher::kernel`] tells which one is used.
    pub fn new(kernel: Kernel, midstate: [u32; 8], tail: [u8; 64]) -> TailHasher {
        let kernel = if kernel.is_supported() { kernel } else { Kernel::Portable };
        #[cfg(target_arch = "x86_64")]
        let ni = match kernel {
            Kernel::ShaNi { .. } => Some(ni::Consts::new(&midstate, &tail)),
            _ => None,
        };
        #[cfg(target_arch = "x86_64")]
        let wide = match kernel {
            Kernel::Avx512 | Kernel::Avx2 => Some(wide::Consts::new(&midstate, &tail)),
            _ => None,
        };
        TailHasher {
            kernel,
            midstate,
            tail,
            #[cfg(target_arch = "x86_64")]
            ni,
            #[cfg(target_arch = "x86_64")]
            wide,
        }
    }

    /// The kernel actually in use (after the fallback described in [`TailHasher::new`]).
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Final SHA-256 state words (midstate + compression of the tail with `nonce`), via this hasher's kernel. Used
    /// by tests to prove kernels agree, and by [`TailHasher::hash_for`].
    pub fn state_for(&self, nonce: u64) -> [u32; 8] {
        #[cfg(target_arch = "x86_64")]
        if let Some(consts) = &self.ni {
            // SAFETY: `ni` is only `Some` when `Kernel::is_supported` confirmed SHA, SSE2, SSSE3 and SSE4.1 at run
            // time, which are all the target features `state_one` enables.
            return unsafe { ni::state_one(consts, nonce) };
        }
        #[cfg(target_arch = "x86_64")]
        match (self.kernel, &self.wide) {
            // SAFETY: `wide` is `Some` and `kernel` is `Avx512` only when `Kernel::is_supported` detected AVX-512F
            // at run time, the one target feature of the `__m512i` implementation.
            (Kernel::Avx512, Some(consts)) => return unsafe { wide::state_one::<__m512i>(consts, nonce) },
            // SAFETY: likewise, AVX2 was detected for `Kernel::Avx2`, the one feature of the `__m256i` version.
            (Kernel::Avx2, Some(consts)) => return unsafe { wide::state_one::<__m256i>(consts, nonce) },
            _ => {}
        }
        self.portable_state(nonce)
    }

    /// The 32-byte block hash for `nonce` (state words written big-endian), as `sha2::Sha256::digest` of the full
    /// header would give it.
    pub fn hash_for(&self, nonce: u64) -> [u8; 32] {
        let state = self.state_for(nonce);
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// Returns the first nonce in `nonces` (in increasing order) whose hash, read as a big-endian 256-bit number,
    /// is at most `target` read the same way (`target[0]` the most significant word, as the hash's first four
    /// bytes are [`TailHasher::state_for`]'s word 0), or `None`. Every kernel returns the same nonce for the same
    /// input. The all-ones target returns the range start (if the range is non-empty).
    pub fn scan(&self, nonces: Range<u64>, target: &[u32; 8]) -> Option<u64> {
        if nonces.is_empty() {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        if let (Some(consts), Kernel::ShaNi { lanes }) = (&self.ni, self.kernel) {
            // SAFETY: `ni` is only `Some` when the CPU was checked for SHA, SSE2, SSSE3 and SSE4.1, the features
            // the scan functions enable.
            return unsafe { ni::scan(consts, lanes, nonces, target) };
        }
        #[cfg(target_arch = "x86_64")]
        match (self.kernel, &self.wide) {
            // SAFETY: `wide` is `Some` and `kernel` is `Avx512` only when `Kernel::is_supported` detected AVX-512F
            // at run time, the one target feature of the `__m512i` implementation.
            (Kernel::Avx512, Some(consts)) => return unsafe { wide::scan::<__m512i>(consts, nonces, target) },
            // SAFETY: likewise, AVX2 was detected for `Kernel::Avx2`, the one feature of the `__m256i` version.
            (Kernel::Avx2, Some(consts)) => return unsafe { wide::scan::<__m256i>(consts, nonces, target) },
            _ => {}
        }
        let mut tail = self.tail;
        for nonce in nonces {
            tail[TAIL_NONCE_OFFSET..TAIL_NONCE_OFFSET + 8].copy_from_slice(&nonce.to_le_bytes());
            let mut state = self.midstate;
            sha2::compress256(&mut state, &[tail.into()]);
            if hit(state[0], target, || state) {
                return Some(nonce);
            }
        }
        None
    }

    /// Portable [`TailHasher::state_for`]: today's per-nonce `compress256`.
    fn portable_state(&self, nonce: u64) -> [u32; 8] {
        let mut tail = self.tail;
        tail[TAIL_NONCE_OFFSET..TAIL_NONCE_OFFSET + 8].copy_from_slice(&nonce.to_le_bytes());
        let mut state = self.midstate;
        sha2::compress256(&mut state, &[tail.into()]);
        state
    }
}

/// SHA-NI kernel: constants, the lockstep lane compression, and the scan loop.
///
/// The SIMD functions are `unsafe fn`s whose bodies call the intrinsics directly (edition 2021: an `unsafe fn` body
/// is an unsafe context). Written that way the code builds warning-free both on toolchains where the intrinsics are
/// `unsafe` (before Rust 1.87) and on those where they are safe inside matching `#[target_feature]`s.
#[cfg(target_arch = "x86_64")]
mod ni {
    use super::{hit, MAX_SHANI_LANES};
    use core::arch::x86_64::*;
    use std::ops::Range;

    /// SHA-256 round constants.
    pub(super) const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// Message words `W6` and `W7` for a nonce stored little-endian at tail bytes 24..32, packed as `W6 | W7 << 32`.
    /// `swap_bytes` of the `u64` puts `bswap(lo)` in the high half and `bswap(hi)` in the low half; the rotate swaps
    /// the halves back.
    #[inline(always)]
    fn nonce_words(nonce: u64) -> u64 {
        nonce.swap_bytes().rotate_left(32)
    }

    #[inline(always)]
    pub(super) fn big_sigma0(x: u32) -> u32 {
        x.rotate_right(2) ^ x.rotate_right(13) ^ x.rotate_right(22)
    }

    #[inline(always)]
    pub(super) fn big_sigma1(x: u32) -> u32 {
        x.rotate_right(6) ^ x.rotate_right(11) ^ x.rotate_right(25)
    }

    #[inline(always)]
    pub(super) fn small_sigma0(x: u32) -> u32 {
        x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
    }

    #[inline(always)]
    pub(super) fn small_sigma1(x: u32) -> u32 {
        x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
    }

    /// Nonce-independent data shared by all kernels.
    #[derive(Clone, Debug)]
    pub(super) struct Precomputed {
        /// Message schedule `W0..=W20` with `W6 = W7 = 0`; only `W0..=W5`, `W8..=W20` are meaningful.
        pub(super) w: [u32; 21],
        /// State (a..h) after rounds 0..=5.
        pub(super) state6: [u32; 8],
    }

    impl Precomputed {
        pub(super) fn new(midstate: &[u32; 8], tail: &[u8; 64]) -> Precomputed {
            let mut w = [0u32; 21];
            for (i, chunk) in tail.chunks_exact(4).enumerate() {
                w[i] = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
            w[6] = 0;
            w[7] = 0;
            // W16..=W20 read W0..=W5 and W9..=W18 only, never W6/W7.
            for t in 16..21 {
                w[t] = small_sigma1(w[t - 2])
                    .wrapping_add(w[t - 7])
                    .wrapping_add(small_sigma0(w[t - 15]))
                    .wrapping_add(w[t - 16]);
            }
            let mut s = *midstate;
            for t in 0..6 {
                let [a, b, c, d, e, f, g, h] = s;
                let t1 = h
                    .wrapping_add(big_sigma1(e))
                    .wrapping_add((e & f) ^ (!e & g))
                    .wrapping_add(K[t])
                    .wrapping_add(w[t]);
                let t2 = big_sigma0(a).wrapping_add((a & b) ^ (a & c) ^ (b & c));
                s = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
            }
            Precomputed { w, state6: s }
        }
    }

    /// Packs four words as a vector with `x[0]` in the lowest 32-bit element (SHA-NI's message order).
    fn v(x: [u32; 4]) -> __m128i {
        // SAFETY: `x` is 16 readable bytes; `loadu` has no alignment requirement; SSE2 is baseline on x86_64.
        unsafe { _mm_loadu_si128(x.as_ptr().cast()) }
    }

    /// Reads back the four 32-bit elements, lowest first.
    fn unv(x: __m128i) -> [u32; 4] {
        let mut out = [0u32; 4];
        // SAFETY: `out` is 16 writable bytes; `storeu` has no alignment requirement; SSE2 is baseline on x86_64.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), x) };
        out
    }

    /// Nonce-independent vectors for one candidate. SHA-NI keeps the state as two vectors `ABEF` (A in the top
    /// element) and `CDGH`; message vectors hold four consecutive schedule words, the earliest lowest.
    #[derive(Clone, Copy, Debug)]
    pub(super) struct Consts {
        /// State after round 5, as `ABEF` and `CDGH`.
        abef6: __m128i,
        cdgh6: __m128i,
        /// `K6, K7, 0, 0`, added to the nonce words for rounds 6-7.
        k67: __m128i,
        /// `W4, W5, 0, 0`: the nonce words `W6, W7` go into the top half per lane.
        m1: __m128i,
        /// `W8..=W11`.
        m2: __m128i,
        /// `W16..=W19`.
        m4: __m128i,
        /// `W+K` for rounds 8..=19 (three groups of four), and the same moved down two words for the second
        /// `sha256rnds2` of each group (saves a shuffle per group).
        wk_lo: [__m128i; 3],
        wk_hi: [__m128i; 3],
        /// `W13..=W16`, the `alignr` input of group 5 (W20..=W23).
        a5: __m128i,
        /// `msg1(W8..=W11, W12)` and `msg1(W12..=W15, W16)`: the nonce-free halves of groups 6 and 7.
        p6: __m128i,
        p7: __m128i,
        /// Round constants by group of four.
        k: [__m128i; 16],
        /// Midstate as `ABEF`/`CDGH` for the feed-forward.
        mid_abef: __m128i,
        mid_cdgh: __m128i,
    }

    impl Consts {
        /// Runs the scalar precomputation for `midstate`/`tail` and packs it into SHA-NI's layout.
        pub(super) fn new(midstate: &[u32; 8], tail: &[u8; 64]) -> Consts {
            let pre = Precomputed::new(midstate, tail);
            let abef = |s: &[u32; 8]| v([s[5], s[4], s[1], s[0]]);
            let cdgh = |s: &[u32; 8]| v([s[7], s[6], s[3], s[2]]);
            let w = &pre.w;
            let wk = |t: usize| w[t].wrapping_add(K[t]);
            let msg1 = |t: usize| {
                [
                    w[t].wrapping_add(small_sigma0(w[t + 1])),
                    w[t + 1].wrapping_add(small_sigma0(w[t + 2])),
                    w[t + 2].wrapping_add(small_sigma0(w[t + 3])),
                    w[t + 3].wrapping_add(small_sigma0(w[t + 4])),
                ]
            };
            let zero = v([0; 4]);
            let mut k = [zero; 16];
            for (g, kg) in k.iter_mut().enumerate() {
                *kg = v([K[4 * g], K[4 * g + 1], K[4 * g + 2], K[4 * g + 3]]);
            }
            let mut wk_lo = [zero; 3];
            let mut wk_hi = [zero; 3];
            for (g, (lo, hi)) in (2..5).zip(wk_lo.iter_mut().zip(wk_hi.iter_mut())) {
                *lo = v([wk(4 * g), wk(4 * g + 1), wk(4 * g + 2), wk(4 * g + 3)]);
                *hi = v([wk(4 * g + 2), wk(4 * g + 3), 0, 0]);
            }
            Consts {
                abef6: abef(&pre.state6),
                cdgh6: cdgh(&pre.state6),
                k67: v([K[6], K[7], 0, 0]),
                m1: v([w[4], w[5], 0, 0]),
                m2: v([w[8], w[9], w[10], w[11]]),
                m4: v([w[16], w[17], w[18], w[19]]),
                wk_lo,
                wk_hi,
                a5: v([w[13], w[14], w[15], w[16]]),
                p6: v(msg1(8)),
                p7: v(msg1(12)),
                k,
                mid_abef: abef(midstate),
                mid_cdgh: cdgh(midstate),
            }
        }
    }

    /// Four rounds on every lane: two `sha256rnds2` per lane, issued lane after lane so the chains interleave.
    ///
    /// # Safety
    /// Only for callers with the `sha` target feature enabled (it is inlined into them).
    #[inline(always)]
    unsafe fn quad<const N: usize>(
        abef: &mut [__m128i; N],
        cdgh: &mut [__m128i; N],
        lo: &[__m128i; N],
        hi: &[__m128i; N],
    ) {
        for l in 0..N {
            cdgh[l] = _mm_sha256rnds2_epu32(cdgh[l], abef[l], lo[l]);
        }
        for l in 0..N {
            abef[l] = _mm_sha256rnds2_epu32(abef[l], cdgh[l], hi[l]);
        }
    }

    /// Four rounds with per-lane message words `m`: adds the round constants and moves the upper two words down for
    /// the second `sha256rnds2`.
    ///
    /// # Safety
    /// Only for callers with the `sha` target feature enabled (it is inlined into them).
    #[inline(always)]
    unsafe fn quad_msg<const N: usize>(abef: &mut [__m128i; N], cdgh: &mut [__m128i; N], m: &[__m128i; N], k: __m128i) {
        let mut lo = *m;
        let mut hi = *m;
        for l in 0..N {
            lo[l] = _mm_add_epi32(m[l], k);
            hi[l] = _mm_shuffle_epi32::<0x0E>(lo[l]);
        }
        quad(abef, cdgh, &lo, &hi);
    }

    /// Next four schedule words from the previous sixteen (`w[0]` oldest), per lane.
    ///
    /// # Safety
    /// Only for callers with the `sha` and `ssse3` target features enabled (it is inlined into them).
    #[inline(always)]
    unsafe fn schedule<const N: usize>(w: &[[__m128i; N]; 4]) -> [__m128i; N] {
        let mut next = w[3];
        for l in 0..N {
            let x = _mm_add_epi32(_mm_sha256msg1_epu32(w[0][l], w[1][l]), _mm_alignr_epi8::<4>(w[3][l], w[2][l]));
            next[l] = _mm_sha256msg2_epu32(x, w[3][l]);
        }
        next
    }

    /// Compresses the tail for `N` nonces in lockstep from the precomputed round-5 state, returning the final `ABEF`
    /// and `CDGH` vectors (before the midstate feed-forward) per lane.
    ///
    /// # Safety
    /// Only for callers with the `sha`, `sse2`, `ssse3` and `sse4.1` target features enabled (it is inlined into
    /// them).
    #[inline(always)]
    unsafe fn lanes<const N: usize>(c: &Consts, nonces: [u64; N]) -> ([__m128i; N], [__m128i; N]) {
        // Rounds 6-7 consume the nonce words; the old ABEF becomes CDGH.
        let mut abef = [c.abef6; N];
        let mut cdgh = [c.abef6; N];
        let mut m1 = [c.m1; N];
        for l in 0..N {
            let w67 = _mm_cvtsi64_si128(nonce_words(nonces[l]) as i64);
            m1[l] = _mm_unpacklo_epi64(c.m1, w67);
            abef[l] = _mm_sha256rnds2_epu32(c.cdgh6, c.abef6, _mm_add_epi32(w67, c.k67));
        }
        // Rounds 8..=19: the message words are constants.
        for g in 0..3 {
            quad(&mut abef, &mut cdgh, &[c.wk_lo[g]; N], &[c.wk_hi[g]; N]);
        }
        // Rounds 20..=23: W20..=W23 = msg2(msg1(W4..=W7, W8) + W13..=W16, W16..=W19).
        let mut m5 = m1;
        for l in 0..N {
            m5[l] = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(m1[l], c.m2), c.a5), c.m4);
        }
        quad_msg(&mut abef, &mut cdgh, &m5, c.k[5]);
        // Rounds 24..=31: the msg1 halves are constants.
        let mut m6 = m5;
        for l in 0..N {
            m6[l] = _mm_sha256msg2_epu32(_mm_add_epi32(c.p6, _mm_alignr_epi8::<4>(m5[l], c.m4)), m5[l]);
        }
        quad_msg(&mut abef, &mut cdgh, &m6, c.k[6]);
        let mut m7 = m6;
        for l in 0..N {
            m7[l] = _mm_sha256msg2_epu32(_mm_add_epi32(c.p7, _mm_alignr_epi8::<4>(m6[l], m5[l])), m6[l]);
        }
        quad_msg(&mut abef, &mut cdgh, &m7, c.k[7]);
        // Rounds 32..=63: the general schedule over a sliding window of four message vectors.
        let mut win = [[c.m4; N], m5, m6, m7];
        for g in 8..16 {
            let next = schedule(&win);
            quad_msg(&mut abef, &mut cdgh, &next, c.k[g]);
            win = [win[1], win[2], win[3], next];
        }
        (abef, cdgh)
    }

    /// First output word (`A` + midstate) for nonces `base..base + N` (wrapping). Kept out of line on purpose:
    /// inlined into the scan loop, the lanes were seen to be scheduled one after another instead of interleaved.
    ///
    /// # Safety
    /// The CPU must support SHA, SSE2, SSSE3 and SSE4.1.
    #[inline(never)]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn batch_h0<const N: usize>(c: &Consts, base: u64) -> [u32; N] {
        let mut nonces = [0u64; N];
        for (l, n) in nonces.iter_mut().enumerate() {
            *n = base.wrapping_add(l as u64);
        }
        let (abef, _) = lanes::<N>(c, nonces);
        let mut out = [0u32; N];
        for l in 0..N {
            out[l] = _mm_extract_epi32::<3>(_mm_add_epi32(abef[l], c.mid_abef)) as u32;
        }
        out
    }

    /// Full final state (midstate fed forward) for one nonce.
    ///
    /// # Safety
    /// The CPU must support SHA, SSE2, SSSE3 and SSE4.1.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn state_one(c: &Consts, nonce: u64) -> [u32; 8] {
        let (abef, cdgh) = lanes::<1>(c, [nonce]);
        let [f, e, b, a] = unv(_mm_add_epi32(abef[0], c.mid_abef));
        let [h, g, d, cc] = unv(_mm_add_epi32(cdgh[0], c.mid_cdgh));
        [a, b, cc, d, e, f, g, h]
    }

    /// Scan with `N` lanes: full batches, then the remainder one nonce at a time. Lanes are checked in nonce order,
    /// so the first hit is the smallest matching nonce.
    ///
    /// # Safety
    /// The CPU must support SHA, SSE2, SSSE3 and SSE4.1.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn scan_n<const N: usize>(c: &Consts, nonces: Range<u64>, target: &[u32; 8]) -> Option<u64> {
        let Range { start: mut n, end } = nonces;
        // `end - n >= N` keeps `n + N <= end`, so nothing overflows even when `end == u64::MAX`.
        while end - n >= N as u64 {
            let h0 = batch_h0::<N>(c, n);
            for (l, &h) in h0.iter().enumerate() {
                let nonce = n + l as u64;
                if hit(h, target, || state_one(c, nonce)) {
                    return Some(nonce);
                }
            }
            n += N as u64;
        }
        while n < end {
            let h0 = batch_h0::<1>(c, n);
            if hit(h0[0], target, || state_one(c, n)) {
                return Some(n);
            }
            n += 1;
        }
        None
    }

    /// Dispatches to the lane count's monomorphised scan.
    ///
    /// # Safety
    /// The CPU must support SHA, SSE2, SSSE3 and SSE4.1.
    pub(super) unsafe fn scan(c: &Consts, lanes: usize, nonces: Range<u64>, target: &[u32; 8]) -> Option<u64> {
        const _: () = assert!(MAX_SHANI_LANES == 8, "extend the match below");
        match lanes {
            1 => scan_n::<1>(c, nonces, target),
            2 => scan_n::<2>(c, nonces, target),
            3 => scan_n::<3>(c, nonces, target),
            4 => scan_n::<4>(c, nonces, target),
            5 => scan_n::<5>(c, nonces, target),
            6 => scan_n::<6>(c, nonces, target),
            7 => scan_n::<7>(c, nonces, target),
            _ => scan_n::<8>(c, nonces, target),
        }
    }
}

/// Lane-parallel software SHA-256 on AVX-512 (16 nonces per `__m512i`) and AVX2 (8 per `__m256i`).
///
/// One generic compression, written against the small [`Vector`] trait, serves both instruction sets; each lane of
/// a vector is one nonce and every step of the compression is one vector instruction for all lanes. The
/// nonce-independent part is scalar work done once per candidate in [`Consts::new`] and broadcast on use.
///
/// The primitive trait methods are `#[inline(always)]` `unsafe fn`s without target features; they are only called
/// from the `#[target_feature]` entry points [`Vector::hits`] and [`Vector::state`], into which they inline.
#[cfg(target_arch = "x86_64")]
mod wide {
    use super::at_or_below;
    use super::ni::{big_sigma0, big_sigma1, small_sigma0, small_sigma1, Precomputed, K};
    use core::arch::x86_64::*;
    use std::ops::Range;

    /// Whether schedule word `W[i]` is nonce-free: `W0..=W20` except the nonce words `W6`, `W7`.
    const fn fixed(i: usize) -> bool {
        i <= 20 && i != 6 && i != 7
    }

    /// Nonce-independent scalars for one candidate, shared by both vector kernels (broadcast at use).
    #[derive(Clone, Debug)]
    pub(super) struct Consts {
        /// Feed-forward words (the midstate).
        ff: [u32; 8],
        /// State `a..h` after rounds 0..=5.
        s6: [u32; 8],
        /// Round 6 with `W6` left out: the new `a` is `W6 + r6a`, the new `e` is `W6 + r6e`.
        r6a: u32,
        r6e: u32,
        /// `W[t] + K[t]` for the nonce-free words `t <= 20` (other entries unused).
        wk: [u32; 21],
        /// For `21 <= t <= 36`: the sum of the nonce-free terms of `W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) +
        /// W[t-16]` (from `t = 37` on every term depends on the nonce). Other entries unused.
        part: [u32; 64],
    }

    impl Consts {
        /// Scalar precomputation for `midstate`/`tail`.
        pub(super) fn new(midstate: &[u32; 8], tail: &[u8; 64]) -> Consts {
            let pre = Precomputed::new(midstate, tail);
            let w = &pre.w;
            let [a, b, c, d, e, f, g, h] = pre.state6;
            let t1 = h.wrapping_add(big_sigma1(e)).wrapping_add((e & f) ^ (!e & g)).wrapping_add(K[6]);
            let t2 = big_sigma0(a).wrapping_add((a & b) ^ (a & c) ^ (b & c));
            let mut wk = [0u32; 21];
            for (t, x) in wk.iter_mut().enumerate() {
                *x = w[t].wrapping_add(K[t]);
            }
            let mut part = [0u32; 64];
            for (t, p) in part.iter_mut().enumerate().take(37).skip(21) {
                let mut sum = 0u32;
                if fixed(t - 2) {
                    sum = sum.wrapping_add(small_sigma1(w[t - 2]));
                }
                if fixed(t - 7) {
                    sum = sum.wrapping_add(w[t - 7]);
                }
                if fixed(t - 15) {
                    sum = sum.wrapping_add(small_sigma0(w[t - 15]));
                }
                if fixed(t - 16) {
                    sum = sum.wrapping_add(w[t - 16]);
                }
                *p = sum;
            }
            Consts { ff: *midstate, s6: pre.state6, r6a: t1.wrapping_add(t2), r6e: d.wrapping_add(t1), wk, part }
        }

        /// Test hook: replaces the feed-forward words, so a test can steer chosen nonces onto chosen final states.
        #[cfg(test)]
        pub(super) fn set_feed_forward(&mut self, ff: [u32; 8]) {
            self.ff = ff;
        }
    }

    /// The operations the compression needs, one vector instruction (or a few) each, over `LANES` 32-bit lanes.
    pub(super) trait Vector: Copy {
        /// Nonces per vector.
        const LANES: usize;
        /// Broadcast. Like every primitive below, `unsafe` because it needs the implementation's target features:
        /// they are called only from inside the entry points [`Vector::hits`] and [`Vector::state`].
        unsafe fn splat(x: u32) -> Self;
        /// Lane-wise wrapping add.
        unsafe fn add(a: Self, b: Self) -> Self;
        /// `Ch(e, f, g)`.
        unsafe fn ch(e: Self, f: Self, g: Self) -> Self;
        /// `Maj(a, b, c)`.
        unsafe fn maj(a: Self, b: Self, c: Self) -> Self;
        /// `Σ0`.
        unsafe fn big_sigma0(x: Self) -> Self;
        /// `Σ1`.
        unsafe fn big_sigma1(x: Self) -> Self;
        /// `σ0`.
        unsafe fn small_sigma0(x: Self) -> Self;
        /// `σ1`.
        unsafe fn small_sigma1(x: Self) -> Self;
        /// Message words `(W6, W7)` for the nonces `base + lane` (wrapping), i.e. the byte-swapped low and high
        /// halves.
        unsafe fn nonce_words(base: u64) -> (Self, Self);
        /// Bit `l` set iff lane `l` of `x` is at most lane `l` of `y` (unsigned).
        unsafe fn le_lanes(x: Self, y: Self) -> u32;
        /// Bit `l` set iff lane `l` of `x` equals lane `l` of `y`.
        unsafe fn eq_lanes(x: Self, y: Self) -> u32;
        /// Lane 0.
        unsafe fn lane0(x: Self) -> u32;
        /// Entry point: [`hits`] for `base..base + LANES`.
        ///
        /// # Safety
        /// The CPU must support the implementation's target features.
        unsafe fn hits(c: &Consts, base: u64, t0: u32) -> (u32, u32);
        /// Entry point: [`state`] for one nonce.
        ///
        /// # Safety
        /// The CPU must support the implementation's target features.
        unsafe fn state(c: &Consts, nonce: u64) -> [u32; 8];
    }

    /// One SHA-256 round with `wk = W[t] + K[t]`; state is `[a, b, c, d, e, f, g, h]`.
    ///
    /// # Safety
    /// The CPU must support `V`'s target features (callers are inlined into `V`'s entry points).
    #[inline(always)]
    unsafe fn round<V: Vector>(s: [V; 8], wk: V) -> [V; 8] {
        let [a, b, c, d, e, f, g, h] = s;
        // `h + wk` and `Ch` are ready before `Σ1(e)`, which is added last to keep the chain short.
        let t1 = V::add(V::add(V::add(h, wk), V::ch(e, f, g)), V::big_sigma1(e));
        let t2 = V::add(V::big_sigma0(a), V::maj(a, b, c));
        [V::add(t1, t2), a, b, c, V::add(d, t1), e, f, g]
    }

    /// Schedule word `W[T]` for `21 <= T <= 63`: the nonce-free terms come pre-summed from `c.part`, and
    /// `fixed` is a constant for each `T`, so only the nonce-dependent terms are computed.
    ///
    /// # Safety
    /// The CPU must support `V`'s target features (callers are inlined into `V`'s entry points).
    #[inline(always)]
    unsafe fn sched<V: Vector, const T: usize>(c: &Consts, w: &[V; 64]) -> V {
        const { assert!(T >= 21 && T < 64) };
        if T > 36 {
            return V::add(V::add(w[T - 16], V::small_sigma0(w[T - 15])), V::add(w[T - 7], V::small_sigma1(w[T - 2])));
        }
        let mut acc = V::splat(c.part[T]);
        if !fixed(T - 16) {
            acc = V::add(acc, w[T - 16]);
        }
        if !fixed(T - 15) {
            acc = V::add(acc, V::small_sigma0(w[T - 15]));
        }
        if !fixed(T - 7) {
            acc = V::add(acc, w[T - 7]);
        }
        if !fixed(T - 2) {
            acc = V::add(acc, V::small_sigma1(w[T - 2]));
        }
        acc
    }

    /// Rounds 21..=63: schedule word then round, each with its index as a constant.
    macro_rules! scheduled_rounds {
        ($v:ty, $c:ident, $s:ident, $w:ident; $($t:literal)*) => {$(
            $w[$t] = sched::<$v, $t>($c, &$w);
            $s = round::<$v>($s, <$v>::add($w[$t], <$v>::splat(K[$t])));
        )*};
    }

    /// Compresses the tail for nonces `base + lane` from the round-5 state; returns `a..h` before the feed-forward.
    ///
    /// # Safety
    /// The CPU must support `V`'s target features (callers are inlined into `V`'s entry points).
    #[inline(always)]
    unsafe fn compress<V: Vector>(c: &Consts, base: u64) -> [V; 8] {
        let (w6, w7) = V::nonce_words(base);
        let mut w = [V::splat(0); 64];
        w[6] = w6;
        w[7] = w7;
        // Round 6 only adds W6 to two precomputed sums; the other state words are the round-5 constants moved.
        let [a, b, cc, _, e, f, g, _] = c.s6;
        let mut s = [
            V::add(w6, V::splat(c.r6a)),
            V::splat(a),
            V::splat(b),
            V::splat(cc),
            V::add(w6, V::splat(c.r6e)),
            V::splat(e),
            V::splat(f),
            V::splat(g),
        ];
        s = round::<V>(s, V::add(w7, V::splat(K[7])));
        // Rounds 8..=20: `W + K` is a broadcast constant.
        for t in 8..=20 {
            s = round::<V>(s, V::splat(c.wk[t]));
        }
        scheduled_rounds!(V, c, s, w; 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42
            43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63);
        s
    }

    /// Bitmasks of the lanes (nonces `base + lane`) whose first output word is at most `t0`, and of those whose
    /// first output word equals `t0`.
    ///
    /// # Safety
    /// The CPU must support `V`'s target features (callers are inlined into `V`'s entry points).
    #[inline(always)]
    unsafe fn hits<V: Vector>(c: &Consts, base: u64, t0: u32) -> (u32, u32) {
        let s = compress::<V>(c, base);
        let h0 = V::add(s[0], V::splat(c.ff[0]));
        let t0 = V::splat(t0);
        (V::le_lanes(h0, t0), V::eq_lanes(h0, t0))
    }

    /// Final state (feed-forward added) for one nonce, computed in lane 0.
    ///
    /// # Safety
    /// The CPU must support `V`'s target features (callers are inlined into `V`'s entry points).
    #[inline(always)]
    unsafe fn state<V: Vector>(c: &Consts, nonce: u64) -> [u32; 8] {
        let s = compress::<V>(c, nonce);
        let mut out = [0u32; 8];
        for i in 0..8 {
            out[i] = V::lane0(V::add(s[i], V::splat(c.ff[i])));
        }
        out
    }

    /// First nonce in `nonces` whose final state is at most `target`: one vector step per `LANES` nonces, pre-tested
    /// on the first output word with one unsigned compare against `target[0]`. A lane below `target[0]` is a hit; a
    /// lane equal to it is decided on its full state. Hit lanes are visited lowest first, so the result is the
    /// smallest matching nonce. A short last step still hashes a full vector and ignores the lanes past the range end.
    ///
    /// # Safety
    /// The CPU must support `V`'s target features.
    pub(super) unsafe fn scan<V: Vector>(c: &Consts, nonces: Range<u64>, target: &[u32; 8]) -> Option<u64> {
        let lanes = V::LANES as u64;
        let Range { start: mut n, end } = nonces;
        while n < end {
            let left = end - n;
            let (mut hits, equal) = V::hits(c, n, target[0]);
            if left < lanes {
                hits &= (1u32 << left) - 1;
            }
            while hits != 0 {
                let lane = hits.trailing_zeros();
                // `lane < left`, so `n + lane < end` cannot overflow.
                let nonce = n + u64::from(lane);
                if equal & (1 << lane) == 0 || at_or_below(&V::state(c, nonce), target) {
                    return Some(nonce);
                }
                hits &= hits - 1;
            }
            if left <= lanes {
                break;
            }
            n += lanes;
        }
        None
    }

    /// Final state for one nonce with `V`'s kernel.
    ///
    /// # Safety
    /// The CPU must support `V`'s target features.
    pub(super) unsafe fn state_one<V: Vector>(c: &Consts, nonce: u64) -> [u32; 8] {
        V::state(c, nonce)
    }

    /// Rotate right via the AVX-512F `vprord`.
    #[inline(always)]
    unsafe fn ror512<const R: i32>(x: __m512i) -> __m512i {
        _mm512_ror_epi32::<R>(x)
    }

    /// AVX-512F: rotates are one `vprord`, each three-input boolean function one `vpternlogd`.
    impl Vector for __m512i {
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn splat(x: u32) -> Self {
            _mm512_set1_epi32(x as i32)
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            _mm512_add_epi32(a, b)
        }
        #[inline(always)]
        unsafe fn ch(e: Self, f: Self, g: Self) -> Self {
            _mm512_ternarylogic_epi32::<0xCA>(e, f, g)
        }
        #[inline(always)]
        unsafe fn maj(a: Self, b: Self, c: Self) -> Self {
            _mm512_ternarylogic_epi32::<0xE8>(a, b, c)
        }
        #[inline(always)]
        unsafe fn big_sigma0(x: Self) -> Self {
            _mm512_ternarylogic_epi32::<0x96>(ror512::<2>(x), ror512::<13>(x), ror512::<22>(x))
        }
        #[inline(always)]
        unsafe fn big_sigma1(x: Self) -> Self {
            _mm512_ternarylogic_epi32::<0x96>(ror512::<6>(x), ror512::<11>(x), ror512::<25>(x))
        }
        #[inline(always)]
        unsafe fn small_sigma0(x: Self) -> Self {
            _mm512_ternarylogic_epi32::<0x96>(ror512::<7>(x), ror512::<18>(x), _mm512_srli_epi32::<3>(x))
        }
        #[inline(always)]
        unsafe fn small_sigma1(x: Self) -> Self {
            _mm512_ternarylogic_epi32::<0x96>(ror512::<17>(x), ror512::<19>(x), _mm512_srli_epi32::<10>(x))
        }
        #[inline(always)]
        unsafe fn nonce_words(base: u64) -> (Self, Self) {
            let lo = Self::splat(base as u32);
            let hi = Self::splat((base >> 32) as u32);
            let low = _mm512_add_epi32(lo, _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
            // A lane whose low word wrapped around carries into the high word.
            let carry = _mm512_cmplt_epu32_mask(low, lo);
            let high = _mm512_mask_add_epi32(hi, carry, hi, Self::splat(1));
            // Byte swap without AVX512BW: bytes 3 and 1 from a rotate right by 8, bytes 2 and 0 from one by 24.
            let bswap =
                |x| _mm512_ternarylogic_epi32::<0xCA>(Self::splat(0xff00_ff00), ror512::<8>(x), ror512::<24>(x));
            (bswap(low), bswap(high))
        }
        #[inline(always)]
        unsafe fn le_lanes(x: Self, y: Self) -> u32 {
            u32::from(_mm512_cmple_epu32_mask(x, y))
        }
        #[inline(always)]
        unsafe fn eq_lanes(x: Self, y: Self) -> u32 {
            u32::from(_mm512_cmpeq_epi32_mask(x, y))
        }
        #[inline(always)]
        unsafe fn lane0(x: Self) -> u32 {
            _mm_cvtsi128_si32(_mm512_castsi512_si128(x)) as u32
        }
        #[inline(never)]
        #[target_feature(enable = "avx512f")]
        unsafe fn hits(c: &Consts, base: u64, t0: u32) -> (u32, u32) {
            hits::<Self>(c, base, t0)
        }
        #[target_feature(enable = "avx512f")]
        unsafe fn state(c: &Consts, nonce: u64) -> [u32; 8] {
            state::<Self>(c, nonce)
        }
    }

    /// Rotate right for AVX2, which has no vector rotate: two shifts and an OR (`L` must be `32 - R`).
    #[inline(always)]
    unsafe fn ror256<const R: i32, const L: i32>(x: __m256i) -> __m256i {
        const { assert!(R + L == 32) };
        _mm256_or_si256(_mm256_srli_epi32::<R>(x), _mm256_slli_epi32::<L>(x))
    }

    /// `a ^ b ^ c` for AVX2.
    #[inline(always)]
    unsafe fn xor3_256(a: __m256i, b: __m256i, c: __m256i) -> __m256i {
        _mm256_xor_si256(_mm256_xor_si256(a, b), c)
    }

    /// AVX2: rotates are shift/shift/OR, the boolean functions two or three logic instructions.
    impl Vector for __m256i {
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn splat(x: u32) -> Self {
            _mm256_set1_epi32(x as i32)
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            _mm256_add_epi32(a, b)
        }
        #[inline(always)]
        unsafe fn ch(e: Self, f: Self, g: Self) -> Self {
            // g ^ (e & (f ^ g)); `f ^ g` does not wait for the new `e`.
            _mm256_xor_si256(g, _mm256_and_si256(e, _mm256_xor_si256(f, g)))
        }
        #[inline(always)]
        unsafe fn maj(a: Self, b: Self, c: Self) -> Self {
            // b ^ ((a ^ b) & (b ^ c)); this round's `b ^ c` is the previous round's `a ^ b`, which LLVM reuses.
            _mm256_xor_si256(b, _mm256_and_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(b, c)))
        }
        #[inline(always)]
        unsafe fn big_sigma0(x: Self) -> Self {
            xor3_256(ror256::<2, 30>(x), ror256::<13, 19>(x), ror256::<22, 10>(x))
        }
        #[inline(always)]
        unsafe fn big_sigma1(x: Self) -> Self {
            xor3_256(ror256::<6, 26>(x), ror256::<11, 21>(x), ror256::<25, 7>(x))
        }
        #[inline(always)]
        unsafe fn small_sigma0(x: Self) -> Self {
            xor3_256(ror256::<7, 25>(x), ror256::<18, 14>(x), _mm256_srli_epi32::<3>(x))
        }
        #[inline(always)]
        unsafe fn small_sigma1(x: Self) -> Self {
            xor3_256(ror256::<17, 15>(x), ror256::<19, 13>(x), _mm256_srli_epi32::<10>(x))
        }
        #[inline(always)]
        unsafe fn nonce_words(base: u64) -> (Self, Self) {
            let lo = Self::splat(base as u32);
            let hi = Self::splat((base >> 32) as u32);
            let low = _mm256_add_epi32(lo, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            // Unsigned `low < lo` (the lane wrapped) as a signed compare with the sign bits flipped; the all-ones
            // result is -1, so subtracting it adds the carry.
            let sign = Self::splat(0x8000_0000);
            let carry = _mm256_cmpgt_epi32(_mm256_xor_si256(lo, sign), _mm256_xor_si256(low, sign));
            let high = _mm256_sub_epi32(hi, carry);
            #[rustfmt::skip]
            let swap = _mm256_setr_epi8(
                3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
                3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
            );
            (_mm256_shuffle_epi8(low, swap), _mm256_shuffle_epi8(high, swap))
        }
        #[inline(always)]
        unsafe fn le_lanes(x: Self, y: Self) -> u32 {
            // No unsigned compare in AVX2: `x <= y` iff the unsigned maximum of the two is `y`.
            Self::eq_lanes(_mm256_max_epu32(x, y), y)
        }
        #[inline(always)]
        unsafe fn eq_lanes(x: Self, y: Self) -> u32 {
            _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(x, y))) as u32
        }
        #[inline(always)]
        unsafe fn lane0(x: Self) -> u32 {
            _mm_cvtsi128_si32(_mm256_castsi256_si128(x)) as u32
        }
        #[inline(never)]
        #[target_feature(enable = "avx2")]
        unsafe fn hits(c: &Consts, base: u64, t0: u32) -> (u32, u32) {
            hits::<Self>(c, base, t0)
        }
        #[target_feature(enable = "avx2")]
        unsafe fn state(c: &Consts, nonce: u64) -> [u32; 8] {
            state::<Self>(c, nonce)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    const IV: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

    /// Midstate and padded tail of a 96-byte header, as the miner builds them.
    fn split(header: &[u8]) -> ([u32; 8], [u8; 64]) {
        assert_eq!(header.len(), 96);
        let mut mid = IV;
        let block: [u8; 64] = header[..64].try_into().expect("64-byte first block");
        sha2::compress256(&mut mid, &[block.into()]);
        let mut tail = [0u8; 64];
        tail[..32].copy_from_slice(&header[64..]);
        tail[32] = 0x80;
        tail[56..].copy_from_slice(&768u64.to_be_bytes());
        (mid, tail)
    }

    /// Today's per-nonce loop: the reference.
    fn reference_state(mid: &[u32; 8], tail: &[u8; 64], nonce: u64) -> [u32; 8] {
        let mut tail = *tail;
        tail[TAIL_NONCE_OFFSET..TAIL_NONCE_OFFSET + 8].copy_from_slice(&nonce.to_le_bytes());
        let mut state = *mid;
        sha2::compress256(&mut state, &[tail.into()]);
        state
    }

    /// The state words written big-endian, i.e. the hash bytes: byte arrays compare as big-endian numbers, so the
    /// reference does not lean on the kernels' word order.
    fn be_bytes(words: &[u32; 8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    fn reference_scan(mid: &[u32; 8], tail: &[u8; 64], nonces: Range<u64>, target: &[u32; 8]) -> Option<u64> {
        nonces.into_iter().find(|&n| be_bytes(&reference_state(mid, tail, n)) <= be_bytes(target))
    }

    /// An easy target: first word `u32::MAX >> k` (a hit every ~2^k nonces), every lower word all ones.
    fn easy(k: u32) -> [u32; 8] {
        let mut t = [u32::MAX; 8];
        t[0] >>= k;
        t
    }

    /// `words` plus one as a 256-bit number, or `None` if that changes word 0 (so the result still ties on it).
    fn above(words: [u32; 8]) -> Option<[u32; 8]> {
        let mut out = words;
        for w in out.iter_mut().rev() {
            let (sum, carry) = w.overflowing_add(1);
            *w = sum;
            if !carry {
                break;
            }
        }
        (out[0] == words[0]).then_some(out)
    }

    /// `words` minus one as a 256-bit number, or `None` if that changes word 0.
    fn below(words: [u32; 8]) -> Option<[u32; 8]> {
        let mut out = words;
        for w in out.iter_mut().rev() {
            let (diff, borrow) = w.overflowing_sub(1);
            *w = diff;
            if !borrow {
                break;
            }
        }
        (out[0] == words[0]).then_some(out)
    }

    /// Every kernel this CPU runs, plus lane counts out of range (which must fall back, not misbehave).
    fn kernels() -> Vec<Kernel> {
        let mut k = Kernel::available();
        k.push(Kernel::ShaNi { lanes: 0 });
        k.push(Kernel::ShaNi { lanes: MAX_SHANI_LANES + 1 });
        k
    }

    fn header() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 96)
    }

    /// A range of `len` nonces: `place` 0 starts at `start`, 1 ends at `u64::MAX`, 2 straddles the 2^32 boundary
    /// nearest `start` (the low nonce word wraps inside a vector step).
    fn placed(start: u64, len: u64, place: u8) -> Range<u64> {
        match place {
            0 => start..start.saturating_add(len),
            1 => u64::MAX - len..u64::MAX,
            _ => {
                let s = (start | 0xffff_ffff).saturating_sub(len / 2);
                s..s.saturating_add(len)
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn state_for_matches_compress256_and_digest(header in header(), nonce in any::<u64>()) {
            let (mid, tail) = split(&header);
            let expected = reference_state(&mid, &tail, nonce);
            let mut full = header.clone();
            full[64 + TAIL_NONCE_OFFSET..].copy_from_slice(&nonce.to_le_bytes());
            let digest = Sha256::digest(&full);
            for kernel in kernels() {
                let hasher = TailHasher::new(kernel, mid, tail);
                prop_assert_eq!(hasher.state_for(nonce), expected, "{:?}", kernel);
                prop_assert_eq!(&hasher.hash_for(nonce)[..], &digest[..], "{:?}", kernel);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn scan_finds_same_first_nonce(
            header in header(), start in any::<u64>(), len in 0u64..1500, k in 8u32..=12, place in 0u8..3,
        ) {
            let (mid, tail) = split(&header);
            let range = placed(start, len, place);
            let target = easy(k);
            let expected = reference_scan(&mid, &tail, range.clone(), &target);
            for kernel in kernels() {
                let hasher = TailHasher::new(kernel, mid, tail);
                prop_assert_eq!(hasher.scan(range.clone(), &target), expected, "{:?} {:?}", kernel, range);
            }
        }

        /// Short ranges around each lane count and around 16, with easy targets so hits land at every lane
        /// position; an arbitrary first target word exercises the unsigned compare on both sides of `2^31`.
        #[test]
        fn scan_edges_match(
            header in header(),
            start in any::<u64>(),
            t0 in prop_oneof![(0u32..=6).prop_map(|k| u32::MAX >> k), any::<u32>()],
            lower in any::<[u32; 7]>(),
            place in 0u8..3,
        ) {
            let (mid, tail) = split(&header);
            let mut target = [t0; 8];
            target[1..].copy_from_slice(&lower);
            for kernel in kernels() {
                let hasher = TailHasher::new(kernel, mid, tail);
                let lanes = hasher.kernel().lanes() as u64;
                for len in [0, 1, 15, 16, 17, 33, lanes - 1, lanes, lanes + 1, 2 * lanes + 1, 3 * lanes - 1] {
                    let range = placed(start, len, place);
                    let expected = reference_scan(&mid, &tail, range.clone(), &target);
                    prop_assert_eq!(hasher.scan(range.clone(), &target), expected, "{:?} {:?}", kernel, range);
                }
            }
        }

        /// The all-ones target matches every hash, so the range start comes back; the all-zero target matches only
        /// an all-zero hash, i.e. never.
        #[test]
        fn extreme_targets(header in header(), start in any::<u64>(), len in 1u64..100) {
            let (mid, tail) = split(&header);
            for kernel in kernels() {
                let hasher = TailHasher::new(kernel, mid, tail);
                let end = start.saturating_add(len);
                let first = start.min(end - 1);
                prop_assert_eq!(hasher.scan(first..end, &[u32::MAX; 8]), Some(first));
                prop_assert_eq!(hasher.scan(start..start, &[u32::MAX; 8]), None);
                prop_assert_eq!(hasher.scan(first..end, &[0; 8]), None);
            }
        }

        /// First word equal to the target's, through the public API of every kernel: `chosen` is the nonce with the
        /// smallest hash of the range (every other hash is larger), so a target tying with its first word hits
        /// exactly `chosen` when its lower words are at or just above `chosen`'s and misses when they are just
        /// below. The range placement puts `chosen` at any lane position, near `u64::MAX` and across `2^32`.
        #[test]
        fn first_word_tie_is_decided_on_the_full_state(
            header in header(), start in any::<u64>(), len in 1u64..200, place in 0u8..3,
        ) {
            let (mid, tail) = split(&header);
            let range = placed(start, len, place);
            let (chosen, s) = range
                .clone()
                .map(|n| (n, reference_state(&mid, &tail, n)))
                .min_by_key(|(_, s)| *s)
                .expect("non-empty range");
            let mut cases = vec![(s, true)];
            cases.extend(above(s).map(|t| (t, true)));
            cases.extend(below(s).map(|t| (t, false)));
            if let Some(w1) = s[1].checked_add(1) {
                cases.push(([s[0], w1, 0, 0, 0, 0, 0, 0], true));
            }
            if let Some(w1) = s[1].checked_sub(1) {
                cases.push(([s[0], w1, u32::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX], false));
            }
            if let Some(w0) = s[0].checked_sub(1) {
                cases.push(([w0, u32::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX], false));
            }
            for (target, hits) in cases {
                prop_assert_eq!(reference_scan(&mid, &tail, range.clone(), &target), hits.then_some(chosen));
                for kernel in kernels() {
                    let hasher = TailHasher::new(kernel, mid, tail);
                    let got = hasher.scan(range.clone(), &target);
                    prop_assert_eq!(got, hits.then_some(chosen), "{:?} {:?} {:x?}", kernel, range, target);
                }
            }
        }

        #[test]
        fn at_or_below_is_big_endian_order(a in any::<[u32; 8]>(), b in any::<[u32; 8]>(), shared in 0usize..=8) {
            let mut b = b;
            b[..shared].copy_from_slice(&a[..shared]);
            prop_assert_eq!(at_or_below(&a, &b), be_bytes(&a) <= be_bytes(&b));
            prop_assert_eq!(hit(a[0], &b, || a), be_bytes(&a) <= be_bytes(&b));
        }
    }

    #[test]
    fn range_ending_at_max_does_not_overflow() {
        let (mid, tail) = split(&[7u8; 96]);
        for kernel in kernels() {
            let hasher = TailHasher::new(kernel, mid, tail);
            for len in 0..20 {
                let range = u64::MAX - len..u64::MAX;
                let expected = reference_scan(&mid, &tail, range.clone(), &easy(1));
                assert_eq!(hasher.scan(range, &easy(1)), expected, "{kernel:?}");
            }
            assert_eq!(hasher.scan(u64::MAX - 1..u64::MAX, &[u32::MAX; 8]), Some(u64::MAX - 1));
        }
    }

    /// First word equal to `target[0]` in the vector kernels at every lane position: their feed-forward words are
    /// replaced to make a chosen nonce's final state `want`, so that only it ties with the targets' first word
    /// (0x100, reached by no other nonce of these ranges), and `wide::scan` must hit it for targets at or above
    /// `want` and miss it for targets below; the reference applies the same feed-forward to `compress256`'s raw
    /// output.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn wide_kernels_decide_first_word_ties_on_the_full_state() {
        let (mid, tail) = split(&[0x5a; 96]);
        let raw = |n: u64| {
            let s = reference_state(&mid, &tail, n);
            std::array::from_fn::<u32, 8, _>(|i| s[i].wrapping_sub(mid[i]))
        };
        let want: [u32; 8] = [0x100, 0x00ab_cdef, 1, 2, 3, 4, 5, 6];
        let m = u32::MAX;
        let targets = [
            (want, true),
            ([0x100, 0x00ab_cdef, 1, 2, 3, 4, 5, 7], true),
            ([0x100, 0x00ab_cdef, 1, 2, 3, 4, 5, 5], false),
            ([0x100, 0x00ab_cdf0, 0, 0, 0, 0, 0, 0], true),
            ([0x100, 0x00ab_cdee, m, m, m, m, m, m], false),
            ([0x101, 0, 0, 0, 0, 0, 0, 0], true),
            ([0xff, m, m, m, m, m, m, m], false),
            ([0; 8], false),
        ];
        let start = 0xffff_fff0u64;
        for offset in [0u64, 1, 7, 8, 15, 16, 17, 31, 40] {
            let chosen = start + offset;
            let r = raw(chosen);
            let ff: [u32; 8] = std::array::from_fn(|i| want[i].wrapping_sub(r[i]));
            let expected_state = |n: u64| {
                let r = raw(n);
                std::array::from_fn::<u32, 8, _>(|i| r[i].wrapping_add(ff[i]))
            };
            let mut consts = wide::Consts::new(&mid, &tail);
            consts.set_feed_forward(ff);
            /// Runs the checks with one vector kernel.
            ///
            /// # Safety
            /// The CPU must support `V`'s target features.
            unsafe fn check<V: wide::Vector>(
                consts: &wide::Consts,
                start: u64,
                chosen: u64,
                want: [u32; 8],
                targets: &[([u32; 8], bool)],
                expected_state: &dyn Fn(u64) -> [u32; 8],
            ) {
                assert_eq!(wide::state_one::<V>(consts, chosen), want);
                for (target, hits) in targets {
                    for range in [start..chosen + 1, start..chosen + 20, chosen..chosen + 1, start..chosen] {
                        let got = wide::scan::<V>(consts, range.clone(), target);
                        let reference = range.clone().find(|&n| be_bytes(&expected_state(n)) <= be_bytes(target));
                        assert_eq!(got, reference, "{} {target:x?} {range:x?}", V::LANES);
                        let found = *hits && range.contains(&chosen);
                        assert_eq!(got, found.then_some(chosen), "{} {target:x?} {range:x?}", V::LANES);
                    }
                }
            }
            if avx512_detected() {
                // SAFETY: AVX-512F was detected.
                unsafe { check::<__m512i>(&consts, start, chosen, want, &targets, &expected_state) };
            }
            if avx2_detected() {
                // SAFETY: AVX2 was detected.
                unsafe { check::<__m256i>(&consts, start, chosen, want, &targets, &expected_state) };
            }
        }
    }

    /// Hard targets through the public API: nothing matches in practice, and every kernel must agree with the
    /// reference on `scan` and on `state_for`.
    #[test]
    fn hard_targets_agree_with_reference() {
        let (mid, tail) = split(&[0x3c; 96]);
        let m = u32::MAX;
        for kernel in kernels() {
            let hasher = TailHasher::new(kernel, mid, tail);
            for target in [[0, m, m, m, m, m, m, m], [1, 0, 0, 0, 0, 0, 0, 0], [0xffff, m, m, m, m, m, m, m], [0; 8]] {
                let range = u64::MAX - 100..u64::MAX;
                let expected = reference_scan(&mid, &tail, range.clone(), &target);
                assert_eq!(hasher.scan(range, &target), expected, "{kernel:?}");
            }
            for n in 0..64 {
                assert_eq!(hasher.state_for(n), reference_state(&mid, &tail, n), "{kernel:?}");
            }
        }
    }

    #[test]
    fn at_or_below_compares_word_by_word() {
        let m = u32::MAX;
        assert!(at_or_below(&[0; 8], &[0; 8]));
        assert!(!at_or_below(&[0, 0, 0, 0, 0, 0, 0, 1], &[0; 8]));
        assert!(!at_or_below(&[0, 1, 0, 0, 0, 0, 0, 0], &[0, 0, m, m, m, m, m, m]));
        assert!(at_or_below(&[0, 0, m, m, m, m, m, m], &[0, 1, 0, 0, 0, 0, 0, 0]));
        assert!(at_or_below(&[0x8000_0000, 0, 0, 0, 0, 0, 0, 0], &[m; 8]));
        assert!(!at_or_below(&[0x8000_0000, 0, 0, 0, 0, 0, 0, 0], &[0x7fff_ffff, m, m, m, m, m, m, m]));
        // The first word decides alone unless it ties: then, and only then, the full state is asked for.
        let unused = || -> [u32; 8] { unreachable!("the first word decides") };
        assert!(hit(1, &[2, 0, 0, 0, 0, 0, 0, 0], unused));
        assert!(!hit(3, &[2, m, m, m, m, m, m, m], unused));
        assert!(!hit(0x8000_0000, &[0x7fff_ffff, m, m, m, m, m, m, m], unused));
        assert!(hit(2, &[2, 5, 0, 0, 0, 0, 0, 0], || [2, 5, 0, 0, 0, 0, 0, 0]));
        assert!(!hit(2, &[2, 5, 0, 0, 0, 0, 0, 0], || [2, 5, 0, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn names_round_trip_and_unsupported_are_refused() {
        for kernel in Kernel::available() {
            assert_eq!(Kernel::from_name(&kernel.name()), Some(kernel));
        }
        assert_eq!(Kernel::from_name(" Portable "), Some(Kernel::Portable));
        assert_eq!(Kernel::from_name("sha-ni-x0"), None);
        assert_eq!(Kernel::from_name("sha-ni-x9"), None);
        assert_eq!(Kernel::from_name("avx512"), avx512_detected().then_some(Kernel::Avx512));
        assert_eq!(Kernel::from_name("AVX-512 x16"), avx512_detected().then_some(Kernel::Avx512));
        assert_eq!(Kernel::from_name("avx2"), avx2_detected().then_some(Kernel::Avx2));
        assert_eq!(Kernel::from_name("avx2-x8"), avx2_detected().then_some(Kernel::Avx2));
        assert_eq!(Kernel::from_name("avx"), None);
        let ni = shani_detected();
        assert_eq!(Kernel::from_name("sha-ni-x4"), ni.then_some(Kernel::ShaNi { lanes: 4 }));
        assert_eq!(Kernel::from_name("sha-ni"), ni.then_some(Kernel::ShaNi { lanes: DEFAULT_SHANI_LANES }));
        assert_eq!(Kernel::from_name("SHA-NI x3"), ni.then_some(Kernel::ShaNi { lanes: 3 }));
        assert_eq!(TailHasher::new(Kernel::ShaNi { lanes: 0 }, IV, [0; 64]).kernel(), Kernel::Portable);
    }

    #[test]
    fn calibrate_returns_an_available_kernel() {
        let kernel = Kernel::calibrate(Duration::from_millis(30));
        assert!(Kernel::available().contains(&kernel));
    }
}
