//! `GET /metrics` on a real node and broker: the Prometheus text parses, and its values agree
//! with `/status`, `/mempool` and what the test did (blocks mined, a transfer admitted, junk
//! rejected by reason on each topic, requests answered by route template and status); consumer
//! lag is reported for every partition and drops to 0 once the node has read everything;
//! histogram buckets are cumulative.

use crate::common::{produce, wait_for, NodeProc, TestNet};
use prom_text_format_parser::{Metric, Sample, Scrape, Type, ValueType};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Transactions partitions of the test's topic.
const TX_PARTITIONS: i32 = 2;

/// One parsed scrape of `node`, after checking the answer's status and content type.
fn scrape(node: &NodeProc) -> Vec<Metric> {
    let (code, content_type, body) = node.get_text("/metrics");
    assert_eq!(code, 200, "{body}");
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "content type {content_type:?}");
    Scrape::parse(&body).unwrap_or_else(|e| panic!("{e:?} in\n{body}")).metrics
}

/// A sample's labels.
fn labels(sample: &Sample) -> BTreeMap<&str, &str> {
    sample.labels.iter().map(|label| (label.key.as_str(), label.value.as_str())).collect()
}

/// The samples of the family `name` (of `value_type`) whose labels include every pair of
/// `wanted`.
fn find<'a>(scrape: &'a [Metric], name: &str, value_type: ValueType, wanted: &[(&str, &str)]) -> Vec<&'a Sample> {
    scrape
        .iter()
        .filter(|metric| metric.name == name)
        .flat_map(|metric| &metric.samples)
        .filter(|s| s.value.value_type == value_type && wanted.iter().all(|(k, v)| labels(s).get(k) == Some(v)))
        .collect()
}

/// The value of the one sample of the family `name` with the labels `wanted`.
fn value(scrape: &[Metric], name: &str, wanted: &[(&str, &str)]) -> f64 {
    match find(scrape, name, ValueType::Sample, wanted).as_slice() {
        [one] => one.value.value.as_f64(),
        found => panic!("{} samples of {name}{wanted:?}: {found:?}", found.len()),
    }
}

/// The series of the family `name` as (labels, value).
fn series(scrape: &[Metric], name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    find(scrape, name, ValueType::Sample, &[])
        .into_iter()
        .map(|s| (labels(s).into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(), s.value.value.as_f64()))
        .collect()
}

/// Checks every histogram of the family `name` (one per label set): the family is a histogram,
/// bounds rise, bucket counts never fall, the last bound is +Inf and holds `_count`, `_sum` is
/// not negative. Returns the count of each, by label set.
fn check_histograms(scrape: &[Metric], name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
    let family = scrape.iter().find(|metric| metric.name == name).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(family.kind, Type::Histogram);
    let mut buckets: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
    for bucket in find(scrape, name, ValueType::Sample, &[]) {
        let mut set: BTreeMap<String, String> =
            labels(bucket).into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let bound: f64 = set.remove("le").unwrap_or_else(|| panic!("bucket without le: {bucket:?}")).parse().unwrap();
        buckets.entry(set).or_default().push((bound, bucket.value.value.as_f64()));
    }
    buckets
        .into_iter()
        .map(|(set, buckets)| {
            let wanted: Vec<(&str, &str)> = set.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let one = |value_type| match find(scrape, name, value_type, &wanted).as_slice() {
                [one] => one.value.value.as_f64(),
                found => panic!("{name}{wanted:?}: {found:?}"),
            };
            let (count, sum) = (one(ValueType::Count), one(ValueType::Sum));
            assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0), "bounds rise: {buckets:?}");
            assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "counts are cumulative: {buckets:?}");
            assert_eq!(buckets.last().copied(), Some((f64::INFINITY, count)), "+Inf holds the count");
            assert!(sum >= 0.0, "{name}{wanted:?} sum {sum}");
            (set, count)
        })
        .collect()
}

#[test]
fn metrics_agree_with_status_and_with_what_happened() {
    let net = TestNet::start_with("metrics", 1, |spec| spec.kafka.transaction_partitions = TX_PARTITIONS);
    let node = &net.nodes[0];
    let work_at_start = value(&scrape(node), "kafkachain_tip_cumulative_work", &[]);

    for _ in 0..3 {
        node.mine();
    }
    node.submit("alice", "bob", 5);
    // Junk on each topic: one rejected block message, one rejected transaction message.
    produce(&format!("{}.blocks", net.prefix), &[b"junk block".to_vec()]);
    produce(&format!("{}.transactions", net.prefix), &[b"junk transfer".to_vec()]);
    wait_for("the transfer pooled and both junk messages rejected", Duration::from_secs(30), || {
        let status = node.status();
        let rejected: u64 = status["rejected"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        (status["mempool"] == 1 && rejected == 2).then_some(())
    });
    // Invalid requests: a malformed hash (400), an unknown one (404), a path no route matches.
    assert_eq!(node.get("/blocks/xyz").0, 400);
    assert_eq!(node.get(&format!("/blocks/{}", "00".repeat(32))).0, 404);
    assert_eq!(node.get("/no/such/path").0, 404);

    // Every partition's end and lag, once the ends were asked after the last message (every
    // 2 s): each end equals the offset the node stored (/status next_offsets), each lag is 0.
    let partitions: BTreeSet<(String, String)> = std::iter::once((format!("{}.blocks", net.prefix), "0".to_owned()))
        .chain((0..TX_PARTITIONS).map(|p| (format!("{}.transactions", net.prefix), p.to_string())))
        .collect();
    let by_partition = |samples: &[Metric], name: &str| -> BTreeMap<(String, String), f64> {
        series(samples, name)
            .into_iter()
            .map(|(labels, value)| ((labels["topic"].clone(), labels["partition"].clone()), value))
            .collect()
    };
    let samples = wait_for("every partition's end read up to", Duration::from_secs(20), || {
        let samples = scrape(node);
        let next = node.status()["next_offsets"].clone();
        let ends = by_partition(&samples, "kafkachain_consumer_end_offset");
        let lags = by_partition(&samples, "kafkachain_consumer_lag_messages");
        assert!(lags.keys().all(|p| partitions.contains(p)), "lag of a partition the node does not read: {lags:?}");
        assert!(lags.values().all(|lag| *lag >= 0.0), "{lags:?}");
        let read_up_to = partitions.iter().all(|p| {
            let stored = next[format!("{}/{}", p.0, p.1)].as_f64().unwrap_or(0.0);
            ends.get(p) == Some(&stored) && lags.get(p) == Some(&0.0)
        });
        read_up_to.then_some(samples)
    });
    let blocks = (format!("{}.blocks", net.prefix), "0".to_owned());
    assert_eq!(by_partition(&samples, "kafkachain_consumer_end_offset")[&blocks], 4.0, "3 blocks and the junk");
    let status = node.status();
    let (_, mempool) = node.get("/mempool");
    let number = |field: &str| status[field].as_f64().unwrap_or_else(|| panic!("/status {field}: {status}"));

    assert_eq!(number("height"), 3.0);
    assert_eq!(value(&samples, "kafkachain_height", &[]), number("height"));
    assert_eq!(value(&samples, "kafkachain_blocks_applied_total", &[]), number("applied_since_start"));
    assert_eq!(value(&samples, "kafkachain_blocks_applied_total", &[]), 3.0);
    assert_eq!(value(&samples, "kafkachain_blocks_mined_total", &[]), number("mined_since_start"));
    assert_eq!(value(&samples, "kafkachain_blocks_mined_total", &[]), 3.0);
    assert_eq!(value(&samples, "kafkachain_mempool_transactions", &[]), number("mempool"));
    assert_eq!(value(&samples, "kafkachain_mempool_transactions", &[]), 1.0);
    assert_eq!(value(&samples, "kafkachain_mempool_bytes", &[]), mempool["bytes"].as_f64().unwrap());
    assert_eq!(value(&samples, "kafkachain_transactions_admitted_total", &[]), 1.0);
    assert_eq!(value(&samples, "kafkachain_orphans", &[]), number("orphans"));
    assert_eq!(value(&samples, "kafkachain_messages_consumed_total", &[]), number("consumed_since_start"));
    assert_eq!(value(&samples, "kafkachain_messages_reread_total", &[]), 0.0);
    assert_eq!(value(&samples, "kafkachain_miner_hashes_total", &[]), number("hashes_since_start"));
    assert_eq!(value(&samples, "kafkachain_miner_hashes_per_second", &[]), number("hash_rate"));
    assert_eq!(value(&samples, "kafkachain_difficulty_bits", &[]), number("difficulty_bits"));
    assert_eq!(value(&samples, "kafkachain_network_hashes_per_second", &[]), number("network_hash_rate"));
    assert_eq!(value(&samples, "kafkachain_caught_up", &[]), 1.0);
    assert_eq!(value(&samples, "kafkachain_halted", &[]), 0.0);
    assert_eq!(value(&samples, "kafkachain_kafka_reachable", &[]), 1.0);
    assert!(value(&samples, "kafkachain_tip_cumulative_work", &[]) > work_at_start, "three blocks added work");
    assert!(value(&samples, "kafkachain_store_size_bytes", &[]) > 0.0);

    // Rejections: one family per topic, by reason, adding up to /status's counts by reason.
    let block_reasons = series(&samples, "kafkachain_blocks_rejected_total");
    let tx_reasons = series(&samples, "kafkachain_transactions_rejected_total");
    assert_eq!(block_reasons.len(), 1, "one block reason: {block_reasons:?}");
    assert_eq!(tx_reasons.len(), 1, "one transaction reason: {tx_reasons:?}");
    let mut by_reason: BTreeMap<String, f64> = BTreeMap::new();
    for (labels, count) in block_reasons.iter().chain(&tx_reasons) {
        assert_eq!(*count, 1.0, "{labels:?}");
        *by_reason.entry(labels["reason"].clone()).or_default() += count;
    }
    let status_reasons: BTreeMap<String, f64> =
        status["rejected"].as_object().unwrap().iter().map(|(r, n)| (r.clone(), n.as_f64().unwrap())).collect();
    assert_eq!(by_reason, status_reasons);

    // Stage times: to the microsecond here, in whole milliseconds in /status.
    let busy = status["busy_ms"].as_object().unwrap();
    assert!(busy.contains_key("apply_blocks") && busy.contains_key("mine_search"), "{busy:?}");
    assert_eq!(series(&samples, "kafkachain_stage_busy_seconds_total").len(), busy.len());
    for (stage, ms) in busy {
        let seconds = value(&samples, "kafkachain_stage_busy_seconds_total", &[("stage", stage)]);
        assert_eq!((seconds * 1e6).round() as u64 / 1000, ms.as_u64().unwrap(), "stage {stage}");
    }

    // Block propagation: the three blocks, all applied after the node caught up.
    let propagation = check_histograms(&samples, "kafkachain_block_propagation_seconds");
    assert_eq!(propagation, BTreeMap::from([(BTreeMap::new(), 3.0)]));

    // HTTP: by route template and status, never by the path sent.
    let requests = |route: &str, status: &str| {
        value(&samples, "kafkachain_http_requests_total", &[("route", route), ("method", "GET"), ("status", status)])
    };
    assert_eq!(requests("/blocks/{hash}", "400"), 1.0);
    assert_eq!(requests("/blocks/{hash}", "404"), 1.0);
    assert_eq!(requests("unmatched", "404"), 1.0);
    assert_eq!(requests("/mine", "200"), 3.0);
    assert_eq!(value(&samples, "kafkachain_http_requests_total", &[("route", "/transactions/new")]), 1.0);
    let routes: BTreeSet<String> = series(&samples, "kafkachain_http_requests_total")
        .into_iter()
        .map(|(labels, _)| labels["route"].clone())
        .collect();
    assert!(routes.iter().all(|r| r == "unmatched" || r.starts_with('/') && !r.contains("xyz") && !r.contains("0000")));
    let latency = check_histograms(&samples, "kafkachain_http_request_duration_seconds");
    let mine = BTreeMap::from([("method".to_owned(), "GET".to_owned()), ("route".to_owned(), "/mine".to_owned())]);
    assert_eq!(latency.get(&mine), Some(&3.0), "{latency:?}");

    // The scrape itself is counted by the next one.
    let again = scrape(node);
    assert!(value(&again, "kafkachain_http_requests_total", &[("route", "/metrics"), ("status", "200")]) >= 1.0);
}
