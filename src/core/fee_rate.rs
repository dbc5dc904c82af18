//! Fee rates: what a transfer pays per byte of block space it takes, and how one sender's run of
//! transfers splits into chunks a miner takes whole. Not consensus (a block is valid whatever
//! order its transfers come in, as long as each sender's nonces follow one another): the mempool
//! orders, evicts and replaces by these rules, and `docs/consensus.md` section 8 states them.

use super::encoding::encoded_len;
use super::transaction::Transfer;
use std::cmp::Ordering;

/// A fee per encoded byte, kept as the exact fraction: two rates compare by cross-multiplying,
/// so every node orders them alike, with no rounding.
#[derive(Clone, Copy, Debug)]
pub struct FeeRate {
    /// Fees summed (a chunk of up to a block's transfers sums many 64-bit fees).
    fee: u128,
    /// Encoded bytes summed; never 0.
    bytes: u64,
}

impl FeeRate {
    /// `fee` over `bytes` (counted as at least 1).
    pub fn new(fee: u64, bytes: usize) -> Self {
        Self { fee: u128::from(fee), bytes: (bytes as u64).max(1) }
    }

    /// The rate of `transfer`: its fee over its canonical encoded length.
    pub fn of(transfer: &Transfer) -> Self {
        Self::new(transfer.fee, encoded_len(transfer))
    }

    /// The rate of two runs taken together.
    pub fn combined(self, other: FeeRate) -> Self {
        Self { fee: self.fee + other.fee, bytes: self.bytes + other.bytes }
    }

    /// The smallest fee a transfer of `bytes` must pay for a rate strictly above this one.
    pub fn fee_above(self, bytes: usize) -> u64 {
        let bytes = u128::from((bytes as u64).max(1));
        let at_most_equal = self.fee * bytes / u128::from(self.bytes);
        u64::try_from(at_most_equal + 1).unwrap_or(u64::MAX)
    }
}

impl Ord for FeeRate {
    fn cmp(&self, other: &Self) -> Ordering {
        // A run the size of any mempool (fees summed below 2^88, bytes below 2^40) stays within
        // 128 bits.
        (self.fee * u128::from(other.bytes)).cmp(&(other.fee * u128::from(self.bytes)))
    }
}

impl PartialOrd for FeeRate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for FeeRate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for FeeRate {}

/// One chunk of a sender's run: how many transfers, and their rate together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Transfers in the chunk.
    pub len: usize,
    /// Their fees over their bytes.
    pub rate: FeeRate,
}

/// Splits a run of transfers that must be taken in order (one sender's, by nonce) into chunks:
/// each the shortest prefix of what remains with the highest rate. Their rates never rise along
/// the run, so a miner that takes chunks by rate takes every transfer after its predecessors,
/// and a cheap transfer ahead of a rich one is taken when the two together pay enough.
pub fn chunks(rates: impl IntoIterator<Item = FeeRate>) -> Vec<Chunk> {
    let mut chunks: Vec<Chunk> = Vec::new();
    for rate in rates {
        let mut chunk = Chunk { len: 1, rate };
        // A chunk that pays more than the one before it is taken with it.
        while let Some(before) = chunks.last().copied().filter(|before| chunk.rate > before.rate) {
            chunks.pop();
            chunk = Chunk { len: before.len + chunk.len, rate: before.rate.combined(chunk.rate) };
        }
        chunks.push(chunk);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rates(fees: &[u64]) -> Vec<FeeRate> {
        fees.iter().map(|fee| FeeRate::new(*fee, 100)).collect()
    }

    fn lens(fees: &[u64]) -> Vec<usize> {
        chunks(rates(fees)).iter().map(|c| c.len).collect()
    }

    #[test]
    fn a_cheap_transfer_ahead_of_a_rich_one_is_carried_by_it() {
        assert_eq!(lens(&[1, 100, 5]), vec![2, 1]);
        assert_eq!(lens(&[10, 1, 100]), vec![3]);
        assert_eq!(lens(&[9, 8, 7]), vec![1, 1, 1]);
        assert_eq!(lens(&[5, 5]), vec![1, 1], "equal rates stay apart: the shortest prefix wins");
        assert!(lens(&[]).is_empty());
    }

    #[test]
    fn rates_compare_exactly_and_the_fee_above_is_the_least_that_beats() {
        assert_eq!(FeeRate::new(3, 150), FeeRate::new(2, 100));
        assert!(FeeRate::new(1, 150) < FeeRate::new(1, 149));
        assert!(FeeRate::new(0, 0) < FeeRate::new(1, 1_000_000));
        assert_eq!(FeeRate::new(0, 140).fee_above(140), 1);
        assert_eq!(FeeRate::new(10, 140).fee_above(140), 11);
        assert_eq!(FeeRate::new(10, 100).fee_above(150), 16, "15 at 150 bytes only equals 10 at 100");
        assert_eq!(FeeRate::new(u64::MAX, 100).fee_above(100), u64::MAX);
    }

    /// The definition itself: the shortest prefix with the highest rate, again and again.
    fn chunks_by_definition(rates: &[FeeRate]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < rates.len() {
            let mut best = (rates[start], 1);
            let mut sum = rates[start];
            for (i, rate) in rates.iter().enumerate().skip(start + 1) {
                sum = sum.combined(*rate);
                if sum > best.0 {
                    best = (sum, i - start + 1);
                }
            }
            out.push(best.1);
            start += best.1;
        }
        out
    }

    proptest! {
        #[test]
        fn chunks_are_the_shortest_best_prefixes_and_their_rates_never_rise(
            run in proptest::collection::vec((0u64..50, 130usize..160), 0..40)
        ) {
            let rates: Vec<FeeRate> = run.iter().map(|(fee, bytes)| FeeRate::new(*fee, *bytes)).collect();
            let found = chunks(rates.iter().copied());
            prop_assert_eq!(found.iter().map(|c| c.len).collect::<Vec<_>>(), chunks_by_definition(&rates));
            prop_assert!(found.windows(2).all(|w| w[0].rate >= w[1].rate));
        }
    }
}
