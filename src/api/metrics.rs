//! The `GET /metrics` body: the node's [`Readings`] and the HTTP metrics in the Prometheus text
//! exposition format (version 0.0.4), through `prometheus-client`. Names carry the
//! `kafkachain_` prefix and their base unit; counters end in `_total`; reasons, stages, topics
//! and partitions are labels, each from a bounded set (no per-block or per-transaction value).

use super::http_metrics::HttpMetrics;
use crate::kafka::Payload;
use crate::node::lag::PartitionLag;
use crate::node::readings::Readings;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;

/// The content type of the body [`render`] writes.
pub(super) use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The exposition of `readings` and of the HTTP metrics.
pub(super) fn render(readings: Readings, http: &HttpMetrics) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(NodeCollector(readings)));
    http.register(&mut registry);
    let mut body = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut body, &registry)?;
    Ok(body)
}

/// Writes one scrape's readings as metric families.
#[derive(Debug)]
struct NodeCollector(Readings);

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let readings = &self.0;
        let status = &readings.status;
        let stats = &status.stats;
        let out = &mut encoder;
        gauge(out, "kafkachain_height", "Height of the main-chain tip", status.height)?;
        gauge(
            out,
            "kafkachain_tip_cumulative_work",
            "Cumulative proof of work of the main chain, in expected hashes",
            readings.tip_work,
        )?;
        gauge(
            out,
            "kafkachain_difficulty_bits",
            "Difficulty of the next block: log2 of the expected hashes per block",
            status.difficulty_bits,
        )?;
        gauge(
            out,
            "kafkachain_network_hashes_per_second",
            "The network's hash rate, estimated from the work and timestamps of the last 32 main-chain blocks",
            status.network_hash_rate,
        )?;
        gauge(
            out,
            "kafkachain_miner_hashes_per_second",
            "This node's hash rate while searching: nonces tried per second of search time",
            status.hash_rate,
        )?;
        counter(out, "kafkachain_miner_hashes", "Nonces this node's miner tried", status.hashes_since_start)?;
        gauge(out, "kafkachain_mempool_transactions", "Transfers waiting in the mempool", status.mempool)?;
        gauge(out, "kafkachain_mempool_bytes", "Encoded size of the transfers in the mempool", readings.mempool_bytes)?;
        gauge(out, "kafkachain_orphans", "Blocks waiting for their parent", status.orphans)?;
        gauge(out, "kafkachain_store_size_bytes", "Bytes the sled store takes on disk", readings.store_bytes)?;
        gauge(
            out,
            "kafkachain_caught_up",
            "1 once the node has read the blocks topic up to where it stood at start",
            u64::from(stats.caught_up),
        )?;
        gauge(
            out,
            "kafkachain_halted",
            "1 while the node has stopped consuming (see /status halted)",
            u64::from(status.halted.is_some()),
        )?;
        if let Some(ledger) = &status.ledger {
            gauge(
                out,
                "kafkachain_ledger_lag_blocks",
                "Blocks deep enough for the ledger stream that are not yet published",
                ledger.lag_blocks,
            )?;
            counter(
                out,
                "kafkachain_ledger_events_published",
                "Ledger events committed to the ledger topic by this process",
                ledger.published_since_start,
            )?;
            gauge(
                out,
                "kafkachain_ledger_publishing",
                "1 while the ledger publisher publishes (0 while starting, retrying, fenced or failed)",
                u64::from(ledger.state == crate::node::LedgerState::Publishing),
            )?;
        }
        gauge(
            out,
            "kafkachain_kafka_reachable",
            "1 while the Kafka brokers answer",
            u64::from(status.kafka_reachable),
        )?;
        family(
            out,
            "kafkachain_topic_setting_warnings",
            "1 for each topic setting found at start that a production network should not run with (see /status topic_warnings)",
            MetricType::Gauge,
            status.topic_warnings.iter().map(|warning| {
                ([("warning", warning.warning.to_owned()), ("topic", warning.topic.clone())], ConstGauge::new(1u64))
            }),
        )?;
        counter(out, "kafkachain_messages_consumed", "Messages of either topic read", stats.consumed_since_start)?;
        counter(
            out,
            "kafkachain_messages_reread",
            "Messages read again although applied before this start (should stay 0)",
            stats.reread_since_start,
        )?;
        counter(out, "kafkachain_blocks_applied", "Blocks stored", stats.applied_since_start)?;
        counter(out, "kafkachain_blocks_mined", "Blocks this node mined and saw applied", stats.mined_since_start)?;
        counter(
            out,
            "kafkachain_transactions_admitted",
            "Transfers admitted to the mempool from the transactions topic",
            readings.transactions_admitted,
        )?;
        for (topic, name, help) in [
            (Payload::Block, "kafkachain_blocks_rejected", "Block messages rejected, by reason"),
            (
                Payload::Transaction,
                "kafkachain_transactions_rejected",
                "Transaction messages rejected (undecodable, or refused by the mempool), by reason",
            ),
        ] {
            let by_reason = readings.rejections.iter().filter(|((of, _), _)| *of == topic);
            family(
                out,
                name,
                help,
                MetricType::Counter,
                by_reason.map(|((_, reason), count)| ([("reason", *reason)], ConstCounter::new(*count))),
            )?;
        }
        family(
            out,
            "kafkachain_stage_busy_seconds",
            "Time spent per stage (applying transactions and blocks, verifying signatures, mining)",
            MetricType::Counter,
            readings.busy_seconds.iter().map(|(stage, seconds)| ([("stage", *stage)], ConstCounter::new(*seconds))),
        )?;
        family(
            out,
            "kafkachain_consumer_lag_messages",
            "Messages between the partition's end (asked of the brokers every few seconds) and the next offset the store holds; absent while the brokers are away",
            MetricType::Gauge,
            readings.consumer_lag.iter().map(|lag| (partition_labels(lag), ConstGauge::new(lag.messages))),
        )?;
        family(
            out,
            "kafkachain_consumer_end_offset",
            "The partition's end (the offset after its last message) when last asked of the brokers",
            MetricType::Gauge,
            readings.consumer_lag.iter().map(|lag| (partition_labels(lag), ConstGauge::new(lag.end))),
        )?;
        if let Some(ledger_lag) = &readings.ledger_lag {
            ledger_lag.encode(out.encode_descriptor(
                "kafkachain_ledger_publish_lag_seconds",
                &sentence("Time from a block applied on this node to its connect event committed in the ledger topic, once caught up"),
                None,
                ledger_lag.metric_type(),
            )?)?;
        }
        let propagation = &readings.propagation;
        propagation.encode(out.encode_descriptor(
            "kafkachain_block_propagation_seconds",
            &sentence("Time from a block's Kafka timestamp (its producer's clock) to this node having applied it, for blocks read once caught up"),
            None,
            propagation.metric_type(),
        )?)
    }
}

/// The labels of one partition's series.
fn partition_labels(lag: &PartitionLag) -> [(&'static str, String); 2] {
    [("topic", lag.position.topic().to_owned()), ("partition", lag.position.partition().to_string())]
}

/// `help` ended with a full stop, as `prometheus-client` ends the help of registered metrics.
fn sentence(help: &str) -> String {
    format!("{help}.")
}

/// Writes a gauge without labels.
fn gauge(out: &mut DescriptorEncoder, name: &str, help: &str, value: impl EncodeGaugeValue) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(out.encode_descriptor(name, &sentence(help), None, metric.metric_type())?)
}

/// Writes a counter without labels (`name` without `_total`: the encoder adds it).
fn counter(out: &mut DescriptorEncoder, name: &str, help: &str, value: impl EncodeCounterValue) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(out.encode_descriptor(name, &sentence(help), None, metric.metric_type())?)
}

/// Writes a family of `kind` with one series per label set; nothing at all when there is none
/// (as a labelled family of the Go client: no rejection yet, no rejection family).
fn family<L, M>(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    series: impl Iterator<Item = (L, M)>,
) -> fmt::Result
where
    L: prometheus_client::encoding::EncodeLabelSet,
    M: EncodeMetric,
{
    let mut series = series.peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let mut metric = out.encode_descriptor(name, &sentence(help), None, kind)?;
    for (labels, value) in series {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}
