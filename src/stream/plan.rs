//! Which events come next: from where the stream stands to the node's main chain, less the
//! blocks not yet `confirmations` deep.

use super::event::{LedgerEvent, StreamPosition};
use crate::core::chain::ChainView;
use crate::core::hash::BlockHash;
use crate::core::transaction::ChainTag;

/// Why the next events cannot be told.
#[derive(Debug, thiserror::Error)]
pub enum PlanError<E: std::error::Error + 'static> {
    /// Reading the chain failed.
    #[error(transparent)]
    Chain(E),
    /// The stream names a block this node does not hold: the topic was written by a node of
    /// another chain, or from another store.
    #[error("the ledger stream's tip is block {0}, which this node's store does not hold: the topic was written from another chain or store")]
    UnknownBlock(BlockHash),
}

/// Up to `max` events that take a stream standing at `from` to the main chain of `chain` (whose
/// transaction ids are tagged `chain_tag`), and where the stream then stands. A block is
/// connected once it is `confirmations` deep (1: the tip itself); a stream tip that left the
/// main chain is disconnected, block by block, down to where the branches meet, whatever its
/// depth. Reads that straddle a reorganization stop the plan early, never make it wrong: each
/// `connect` extends the tip the events before it left.
pub fn next_events<V: ChainView>(
    chain: &V,
    chain_tag: ChainTag,
    from: StreamPosition,
    confirmations: u64,
    max: usize,
) -> Result<(Vec<LedgerEvent>, StreamPosition), PlanError<V::Error>>
where
    V::Error: std::error::Error + 'static,
{
    let tip_height = chain.tip().map_err(PlanError::Chain)?.height;
    let mut events = Vec::new();
    let mut at = from;
    // Whether `at.tip` was connected by this plan: then it is known to be on the main chain (the
    // next block's parent check below catches a reorganization), and is not looked up again.
    let mut tip_connected_here = false;
    while events.len() < max {
        if let Some((height, hash)) = at.tip.filter(|_| !tip_connected_here) {
            if chain.main_hash_at(height).map_err(PlanError::Chain)? != Some(hash) {
                let block = chain.block(&hash).map_err(PlanError::Chain)?.ok_or(PlanError::UnknownBlock(hash))?;
                let event = LedgerEvent::disconnect(at.next_seq, &block);
                at = event.position_after();
                events.push(event);
                continue;
            }
        }
        let next = at.height().map_or(0, |height| height + 1);
        // Deep enough when the tip is `confirmations - 1` blocks above it.
        if next + confirmations.max(1) > tip_height + 1 {
            break;
        }
        let Some(hash) = chain.main_hash_at(next).map_err(PlanError::Chain)? else { break };
        let block = chain.block(&hash).map_err(PlanError::Chain)?.ok_or(PlanError::UnknownBlock(hash))?;
        if at.tip.is_some_and(|(_, tip)| tip != block.header.prev_hash) {
            // The main chain changed between two reads: the next plan starts from a fresh look.
            break;
        }
        let event = LedgerEvent::connect(at.next_seq, &block, chain_tag);
        at = event.position_after();
        tip_connected_here = true;
        events.push(event);
    }
    Ok((events, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::block::Block;
    use crate::core::memory::MemoryChain;
    use crate::core::testkit::{child, genesis_block, params, transfer};

    /// The main chain a consumer holds after applying `events` in order, checking each one
    /// fits: a `connect` extends the tip, a `disconnect` takes the tip away.
    fn replay(held: &mut Vec<BlockHash>, events: &[LedgerEvent]) {
        for event in events {
            match event {
                LedgerEvent::Connect(c) => {
                    assert_eq!(c.height as usize, held.len(), "{event:?}");
                    if let Some(tip) = held.last() {
                        assert_eq!(*tip, c.prev_hash);
                    }
                    held.push(c.hash);
                }
                LedgerEvent::Disconnect(d) => assert_eq!(held.pop(), Some(d.hash), "{event:?}"),
            }
        }
    }

    fn main_chain(chain: &MemoryChain) -> Vec<BlockHash> {
        chain.main_chain().iter().map(|b| b.hash()).collect()
    }

    /// A chain of `length` blocks after genesis mined by `miner` on `base`.
    fn extend(chain: &mut MemoryChain, base: &Block, miner: &str, length: usize) -> Vec<Block> {
        let mut blocks: Vec<Block> = Vec::new();
        for _ in 0..length {
            let parent = blocks.last().unwrap_or(base);
            let block = child(&params(), parent, miner, &[]);
            chain.apply(block.clone());
            blocks.push(block);
        }
        blocks
    }

    #[test]
    fn the_stream_connects_blocks_once_they_are_deep_enough() {
        let mut chain = MemoryChain::new(params());
        let genesis = genesis_block();
        let paid = child(&params(), &genesis, "a", &[transfer(0, 0)]);
        chain.apply(paid.clone());
        extend(&mut chain, &paid, "a", 3);
        let tag = params().chain_tag();
        let (events, at) = next_events(&chain, tag, StreamPosition::default(), 2, 100).unwrap();
        assert_eq!(events.len(), 4, "genesis and heights 1 to 3; 4 is the tip, one block deep");
        assert_eq!(events.iter().map(LedgerEvent::seq).collect::<Vec<_>>(), [0, 1, 2, 3]);
        let LedgerEvent::Connect(first_paid) = &events[1] else { panic!("{:?}", events[1]) };
        assert_eq!(first_paid.transactions.len(), 1);
        assert_eq!(first_paid.transactions[0].id, transfer(0, 0).id(tag));
        assert!(first_paid.reward.is_some());
        assert_eq!(at, StreamPosition { next_seq: 4, tip: Some((3, main_chain(&chain)[3])) });
        let (more, _) = next_events(&chain, tag, at, 1, 100).unwrap();
        assert_eq!(more.len(), 1, "with one confirmation the tip follows");
        let (bounded, at) = next_events(&chain, tag, StreamPosition::default(), 1, 2).unwrap();
        assert_eq!((bounded.len(), at.next_seq), (2, 2), "at most max events a round");
    }

    #[test]
    fn a_reorganization_disconnects_down_to_the_fork_then_connects_the_winner() {
        let mut chain = MemoryChain::new(params());
        let genesis = genesis_block();
        let a = extend(&mut chain, &genesis, "a", 3);
        let tag = params().chain_tag();
        let mut held = Vec::new();
        let (events, at) = next_events(&chain, tag, StreamPosition::default(), 1, 100).unwrap();
        replay(&mut held, &events);
        assert_eq!(held, main_chain(&chain));
        // A branch from height 1 with more blocks wins.
        extend(&mut chain, &a[0], "b", 4);
        let (events, at) = next_events(&chain, tag, at, 1, 100).unwrap();
        let kinds: Vec<_> = events.iter().map(|e| matches!(e, LedgerEvent::Connect(_))).collect();
        assert_eq!(kinds, [false, false, true, true, true, true], "heights 3 and 2 out, then 2 to 5 in");
        replay(&mut held, &events);
        assert_eq!(held, main_chain(&chain));
        assert_eq!(at.next_seq, 10, "one sequence, no gap");
    }

    #[test]
    fn with_enough_confirmations_a_shallow_reorganization_never_reaches_the_stream() {
        let mut chain = MemoryChain::new(params());
        let genesis = genesis_block();
        let a = extend(&mut chain, &genesis, "a", 3);
        let tag = params().chain_tag();
        let (events, at) = next_events(&chain, tag, StreamPosition::default(), 3, 100).unwrap();
        assert_eq!(events.len(), 2, "genesis and height 1");
        extend(&mut chain, &a[1], "b", 2);
        let (events, _) = next_events(&chain, tag, at, 3, 100).unwrap();
        assert!(events.iter().all(|e| matches!(e, LedgerEvent::Connect(_))), "{events:?}");
        assert!(events.iter().all(|e| e.hash() != a[2].hash()), "the losing block never went out");
    }

    #[test]
    fn a_stream_of_another_chain_is_refused() {
        let chain = MemoryChain::new(params());
        let stranger = BlockHash::new([9; 32]);
        let from = StreamPosition { next_seq: 5, tip: Some((0, stranger)) };
        let refused = next_events(&chain, params().chain_tag(), from, 1, 10);
        assert!(matches!(refused, Err(PlanError::UnknownBlock(hash)) if hash == stranger));
    }
}
