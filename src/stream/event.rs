//! The events of the ledger topic, as JSON (`docs/ledger-event.schema.json` describes them).

use crate::core::account::Address;
use crate::core::block::Block;
use crate::core::hash::{BlockHash, TxId};
use crate::core::transaction::{ChainTag, Transaction};
use serde::{Deserialize, Serialize};

/// A `connect` event's JSON takes at most this many bytes per byte of its block's canonical
/// encoding, plus [`EVENT_OVERHEAD_BYTES`]: a transfer's JSON spells out in hex what the block
/// holds as bytes, adds the id, and leaves the signature out.
pub const JSON_BYTES_PER_BLOCK_BYTE: usize = 3;

/// The bytes of a `connect` event that do not grow with its block (field names, hashes, the
/// reward).
pub const EVENT_OVERHEAD_BYTES: usize = 4096;

/// The most bytes a `connect` event's JSON takes for a block of at most `max_block_bytes`: the
/// ledger topic must accept a message of that size.
pub fn max_event_bytes(max_block_bytes: usize) -> usize {
    max_block_bytes.saturating_mul(JSON_BYTES_PER_BLOCK_BYTE).saturating_add(EVENT_OVERHEAD_BYTES)
}

/// One change of the main chain. Every event carries the next number of one sequence with no
/// gap, so a consumer can tell a lost or repeated event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LedgerEvent {
    /// A block joined the main chain.
    Connect(Connected),
    /// A block left the main chain in a reorganization.
    Disconnect(Disconnected),
}

/// A block that joined the main chain, with everything a payment system acts on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connected {
    /// The event's place in the stream, from 0.
    pub seq: u64,
    /// The block's height.
    pub height: u64,
    /// The block's hash.
    pub hash: BlockHash,
    /// Its parent's hash (for the genesis block, the chain parameters' digest).
    pub prev_hash: BlockHash,
    /// The block's timestamp, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The compact target it met, as 8 hex digits.
    pub bits: String,
    /// The miner's reward (subsidy and fees); none in the genesis block.
    pub reward: Option<RewardEvent>,
    /// The block's transfers, in block order.
    pub transactions: Vec<TransferEvent>,
}

/// A block that left the main chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disconnected {
    /// The event's place in the stream.
    pub seq: u64,
    /// The block's height.
    pub height: u64,
    /// The block's hash.
    pub hash: BlockHash,
    /// Its parent's hash: the main chain's tip once it is gone.
    pub prev_hash: BlockHash,
}

/// A block's reward.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardEvent {
    /// The reward transaction's id.
    pub id: TxId,
    /// Who mined the block.
    pub recipient: Address,
    /// Subsidy plus the block's fees.
    pub amount: u64,
}

/// A signed transfer of a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferEvent {
    /// Transaction id.
    pub id: TxId,
    /// Paying address.
    pub sender: Address,
    /// Receiving address.
    pub recipient: Address,
    /// Amount in the smallest unit.
    pub amount: u64,
    /// Fee paid to the miner.
    pub fee: u64,
    /// The sender's nonce.
    pub nonce: u64,
}

impl LedgerEvent {
    /// The `connect` event of `block` (of the chain tagged `chain`) at `seq`.
    pub fn connect(seq: u64, block: &Block, chain: ChainTag) -> Self {
        let mut reward = None;
        let mut transactions = Vec::with_capacity(block.transactions.len());
        for tx in &block.transactions {
            match tx {
                Transaction::Reward(r) => {
                    reward = Some(RewardEvent { id: tx.id(chain), recipient: r.recipient, amount: r.amount })
                }
                Transaction::Transfer(t) => transactions.push(TransferEvent {
                    id: tx.id(chain),
                    sender: t.sender,
                    recipient: t.recipient,
                    amount: t.amount,
                    fee: t.fee,
                    nonce: t.nonce,
                }),
            }
        }
        let header = &block.header;
        LedgerEvent::Connect(Connected {
            seq,
            height: header.height,
            hash: block.hash(),
            prev_hash: header.prev_hash,
            timestamp_ms: header.timestamp_ms,
            bits: format!("{:08x}", header.bits),
            reward,
            transactions,
        })
    }

    /// The `disconnect` event of `block` at `seq`.
    pub fn disconnect(seq: u64, block: &Block) -> Self {
        LedgerEvent::Disconnect(Disconnected {
            seq,
            height: block.header.height,
            hash: block.hash(),
            prev_hash: block.header.prev_hash,
        })
    }

    /// Its place in the stream.
    pub fn seq(&self) -> u64 {
        match self {
            LedgerEvent::Connect(c) => c.seq,
            LedgerEvent::Disconnect(d) => d.seq,
        }
    }

    /// The block it is about.
    pub fn hash(&self) -> BlockHash {
        match self {
            LedgerEvent::Connect(c) => c.hash,
            LedgerEvent::Disconnect(d) => d.hash,
        }
    }

    /// Where the stream stands once a consumer applied this event.
    pub fn position_after(&self) -> StreamPosition {
        match self {
            LedgerEvent::Connect(c) => StreamPosition { next_seq: c.seq + 1, tip: Some((c.height, c.hash)) },
            LedgerEvent::Disconnect(d) => {
                StreamPosition { next_seq: d.seq + 1, tip: d.height.checked_sub(1).map(|parent| (parent, d.prev_hash)) }
            }
        }
    }
}

/// Where a stream stands: the number its next event gets and the main chain's tip as a consumer
/// that applied every event holds it (`None` before the genesis block's `connect`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamPosition {
    /// The next event's `seq`.
    pub next_seq: u64,
    /// Height and hash of the stream's tip.
    pub tip: Option<(u64, BlockHash)>,
}

impl StreamPosition {
    /// The stream's height: blocks connected minus one (`None` before any).
    pub fn height(&self) -> Option<u64> {
        self.tip.map(|(height, _)| height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::params::ChainParams;

    #[test]
    fn an_event_reads_back_as_written_and_says_its_type() {
        let params = ChainParams::default();
        let genesis = crate::core::block::genesis(&params);
        let connect = LedgerEvent::connect(0, &genesis, params.chain_tag());
        let json = serde_json::to_value(&connect).unwrap();
        assert_eq!(json["type"], "connect");
        assert_eq!(json["hash"], genesis.hash().to_string());
        assert_eq!(serde_json::from_value::<LedgerEvent>(json).unwrap(), connect);
        let disconnect = LedgerEvent::disconnect(1, &genesis);
        let json = serde_json::to_value(&disconnect).unwrap();
        assert_eq!(json["type"], "disconnect");
        assert_eq!(serde_json::from_value::<LedgerEvent>(json).unwrap(), disconnect);
    }

    #[test]
    fn a_connect_event_stays_within_its_bound_for_the_costliest_transfers() {
        use crate::core::account::Address;
        use crate::core::block::Block;
        use crate::core::header::BlockHeader;
        use crate::core::signature::Signature;
        use crate::core::transaction::{Reward, Transfer};
        // The widest numbers in JSON against their varint encoding; any value takes fewer digits.
        let transfer = |n: u8| {
            Transaction::Transfer(Transfer {
                sender: Address::new([n; 32]),
                recipient: Address::new([n.wrapping_add(1); 32]),
                amount: u64::MAX,
                fee: u64::MAX,
                nonce: u64::MAX,
                signature: Signature([n; 64]),
            })
        };
        let params = ChainParams::default();
        for count in [0, 1, 10, 1000] {
            let reward =
                Transaction::Reward(Reward { recipient: Address::new([9; 32]), amount: u64::MAX, height: u64::MAX });
            let header =
                BlockHeader { height: u64::MAX, timestamp_ms: u64::MAX, ..crate::core::block::genesis(&params).header };
            let block = Block {
                header,
                transactions: std::iter::once(reward).chain((0..count).map(|n| transfer(n as u8))).collect(),
            };
            let json = serde_json::to_vec(&LedgerEvent::connect(u64::MAX, &block, params.chain_tag())).unwrap();
            let encoded = crate::core::encoding::encoded_len(&block);
            assert!(
                json.len() <= max_event_bytes(encoded),
                "{count} transfers: {} JSON bytes for {encoded}",
                json.len()
            );
        }
    }

    #[test]
    fn a_disconnect_leaves_the_parent_as_the_streams_tip() {
        let parent = BlockHash::new([7; 32]);
        let event = LedgerEvent::Disconnect(Disconnected {
            seq: 9,
            height: 4,
            hash: BlockHash::new([8; 32]),
            prev_hash: parent,
        });
        assert_eq!(event.position_after(), StreamPosition { next_seq: 10, tip: Some((3, parent)) });
    }
}
