//! Consumer lag for `GET /metrics`: how far the end of each partition the node reads is ahead of
//! the next offset its store holds. A thread of its own asks the brokers for the ends every
//! [`REFRESH_EVERY`], so a scrape reads memory only and never waits on a broker; while the
//! brokers are away it asks nothing, and after [`STALE_AFTER`] the lag is no longer reported
//! (an absent series, rather than one that looks fine and is old).

use crate::kafka::{EndOffsetQuery, PartitionEnd};
use crate::store::{Positions, TopicPartition};
use crate::sync::lock;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the partitions' ends are asked of the brokers: one small request per partition.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);
/// Ends older than this are not reported.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// Longest time one refresh may take, all partitions together.
const FETCH_BUDGET: Duration = Duration::from_secs(2);
/// How often the refreshing thread looks at the shutdown token while it waits.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// The partitions' ends last fetched, and when.
#[derive(Debug, Default)]
pub struct PartitionEnds {
    last: Mutex<Option<(Instant, Vec<PartitionEnd>)>>,
}

impl PartitionEnds {
    /// The ends fetched within [`STALE_AFTER`] of `now`; none when they are older or were never
    /// fetched.
    pub fn recent(&self, now: Instant) -> Vec<PartitionEnd> {
        let last = lock(&self.last);
        match &*last {
            Some((at, ends)) if now.saturating_duration_since(*at) <= STALE_AFTER => ends.clone(),
            _ => Vec::new(),
        }
    }

    /// Keeps `ends`, fetched at `at`.
    pub fn record(&self, at: Instant, ends: Vec<PartitionEnd>) {
        *lock(&self.last) = Some((at, ends));
    }
}

/// How far the store is behind the end of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub position: TopicPartition,
    /// The partition's end when it was last asked.
    pub end: u64,
    /// Messages between the stored next offset and that end.
    pub messages: u64,
}

/// The lag of each partition in `ends` against the `stored` next offsets (a partition never
/// read counts from 0). An end is up to [`REFRESH_EVERY`] old, so a store that
/// has read past it shows 0, not a negative lag.
pub fn lag(ends: &[PartitionEnd], stored: &Positions) -> Vec<PartitionLag> {
    ends.iter()
        .map(|end| PartitionLag {
            position: end.position.clone(),
            end: end.end,
            messages: end.end.saturating_sub(stored.get(&end.position).copied().unwrap_or(0)),
        })
        .collect()
}

/// Asks for the partitions' ends every [`REFRESH_EVERY`] while the brokers answer, and keeps
/// them in `ends`, until `shutdown`.
pub fn keep_fresh(query: EndOffsetQuery, ends: &PartitionEnds, shutdown: &CancellationToken) {
    let mut failing = false;
    while !shutdown.is_cancelled() {
        if query.brokers_reachable() {
            match query.fetch(FETCH_BUDGET) {
                Ok(fetched) => {
                    ends.record(Instant::now(), fetched);
                    failing = false;
                }
                // Logged once per run of failures: the broker's absence is logged elsewhere.
                Err(e) if !failing => {
                    tracing::debug!("consumer lag not refreshed: {e}");
                    failing = true;
                }
                Err(_) => {}
            }
        }
        let next = Instant::now() + REFRESH_EVERY;
        while Instant::now() < next && !shutdown.is_cancelled() {
            std::thread::sleep(SHUTDOWN_POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(topic: &str, partition: i32, end: u64) -> PartitionEnd {
        PartitionEnd { position: TopicPartition::new(topic, partition), end }
    }

    #[test]
    fn lag_is_the_end_minus_the_stored_offset_and_never_negative() {
        let ends = [end("p.blocks", 0, 10), end("p.transactions", 0, 5), end("p.transactions", 1, 7)];
        let stored =
            Positions::from([(TopicPartition::new("p.blocks", 0), 4), (TopicPartition::new("p.transactions", 0), 9)]);
        let lags: Vec<(String, i32, u64, u64)> = lag(&ends, &stored)
            .into_iter()
            .map(|l| (l.position.topic().to_owned(), l.position.partition(), l.end, l.messages))
            .collect();
        assert_eq!(
            lags,
            vec![
                ("p.blocks".to_owned(), 0, 10, 6),
                ("p.transactions".to_owned(), 0, 5, 0), // read past an end fetched a moment ago
                ("p.transactions".to_owned(), 1, 7, 7), // never read
            ]
        );
    }

    #[test]
    fn ends_older_than_the_bound_are_not_reported() {
        let ends = PartitionEnds::default();
        let at = Instant::now();
        assert!(ends.recent(at).is_empty(), "never fetched");
        ends.record(at, vec![end("p.blocks", 0, 3)]);
        assert_eq!(ends.recent(at + STALE_AFTER), vec![end("p.blocks", 0, 3)]);
        assert!(ends.recent(at + STALE_AFTER + Duration::from_millis(1)).is_empty(), "stale");
    }
}
