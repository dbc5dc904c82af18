//! The ledger stream: the main chain's history as events a downstream system applies in order
//! (`connect` when a block joins the main chain, `disconnect` when a reorganization takes it
//! out), and the plan of which events come next from the chain a node holds. Pure: the Kafka
//! side is in `kafka::ledger`, the thread that drives both in `node`.

mod event;
mod plan;

pub use event::{
    max_event_bytes, Connected, Disconnected, LedgerEvent, RewardEvent, StreamPosition, TransferEvent,
    EVENT_OVERHEAD_BYTES, JSON_BYTES_PER_BLOCK_BYTE,
};
pub use plan::{next_events, PlanError};
