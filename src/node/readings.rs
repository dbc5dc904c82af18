//! What `GET /metrics` reports about the node, read at scrape time: the values `/status`
//! computes (taken from [`Node::status`], so both always agree), and what it does not show: the
//! tip's cumulative work, the mempool's bytes, the store's size on disk, consumer lag, the
//! rejections split by topic, transfers admitted, stage times to the microsecond and the block
//! propagation histogram. Reading them costs the same as `/status` plus one entry per partition,
//! whatever the length of the chain.

use super::lag::{lag, PartitionLag};
use super::{Node, NodeError, Status};
use crate::core::chain::ChainView;
use crate::kafka::Payload;
use prometheus_client::metrics::histogram::Histogram;
use std::collections::BTreeMap;
use std::time::Instant;

/// Everything the node reports at one scrape.
#[derive(Debug)]
pub struct Readings {
    /// What `/status` shows now.
    pub status: Status,
    /// Cumulative proof of work of the main chain (expected hashes).
    pub tip_work: f64,
    /// Encoded size of the transfers in the mempool, in bytes.
    pub mempool_bytes: u64,
    /// Bytes the store takes on disk.
    pub store_bytes: u64,
    /// Lag of each partition whose end was fetched recently (none while the brokers are away).
    pub consumer_lag: Vec<PartitionLag>,
    /// Rejections since start, by topic and reason.
    pub rejections: BTreeMap<(Payload, &'static str), u64>,
    /// Transfers admitted to the mempool from the topic since start.
    pub transactions_admitted: u64,
    /// Seconds spent per stage since start.
    pub busy_seconds: BTreeMap<&'static str, f64>,
    /// Seconds from a block's Kafka timestamp to this node having applied it.
    pub propagation: Histogram,
    /// Seconds from a block applied here to its `connect` committed in the ledger topic (with
    /// the ledger stream).
    pub ledger_lag: Option<Histogram>,
}

impl Node {
    /// The node's readings now, for `GET /metrics`.
    pub fn readings(&self) -> Result<Readings, NodeError> {
        let status = self.status()?;
        let store = &self.inner.store;
        let stats = &self.inner.stats;
        let consumer_lag = lag(&self.inner.partition_ends.recent(Instant::now()), &status.next_offsets);
        Ok(Readings {
            tip_work: store.tip()?.cumulative_work.0 as f64,
            mempool_bytes: store.mempool_bytes(),
            store_bytes: store.size_on_disk()?,
            consumer_lag,
            rejections: stats.rejections(),
            transactions_admitted: stats.transactions_admitted(),
            busy_seconds: stats.busy_seconds(),
            propagation: stats.propagation(),
            ledger_lag: self.inner.ledger.as_ref().map(|progress| progress.lag_histogram()),
            status,
        })
    }
}
