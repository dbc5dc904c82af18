//! Whether the node can reach its Kafka brokers, and the few log lines that say so. Without it a
//! broker outage floods the log (every client logs every reconnect attempt, several a second);
//! with it an operator reads one line when the broker goes away, a reminder at most every
//! [`REMINDER_EVERY`], and one line when it is back.

use crate::sync::lock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest silence about a broker that is still unreachable.
pub(super) const REMINDER_EVERY: Duration = Duration::from_secs(30);

/// Broker reachability as the node's Kafka clients see it.
#[derive(Debug, Default)]
pub struct BrokerHealth {
    /// Whether an outage is on: read without the lock, since every message consumed or
    /// acknowledged reports a success.
    down: AtomicBool,
    state: Mutex<Outage>,
}

#[derive(Debug, Default)]
struct Outage {
    /// When the current outage began; `None` while the brokers answer.
    since: Option<Instant>,
    /// When the outage was last logged.
    last_logged: Option<Instant>,
    /// Failures reported since then.
    unlogged: u64,
}

impl BrokerHealth {
    /// A client failed to reach a broker: logged when an outage begins and as a reminder every
    /// [`REMINDER_EVERY`], counted otherwise.
    pub fn failure(&self, detail: &str) {
        let mut outage = self.lock();
        let now = Instant::now();
        match (outage.since, outage.last_logged) {
            (None, _) => {
                tracing::error!(
                    "Kafka brokers unreachable: {detail}; retrying (the next reminder in {}s at most)",
                    REMINDER_EVERY.as_secs()
                );
                *outage = Outage { since: Some(now), last_logged: Some(now), unlogged: 0 };
                self.down.store(true, Ordering::Relaxed);
            }
            (Some(since), Some(last)) if now.duration_since(last) >= REMINDER_EVERY => {
                tracing::warn!(
                    down_for_s = now.duration_since(since).as_secs(),
                    failures = outage.unlogged + 1,
                    "Kafka brokers still unreachable: {detail}"
                );
                outage.last_logged = Some(now);
                outage.unlogged = 0;
            }
            _ => outage.unlogged += 1,
        }
    }

    /// A client exchanged messages with a broker: ends an outage, if there was one.
    pub fn success(&self) {
        if !self.down.load(Ordering::Relaxed) {
            return;
        }
        let mut outage = self.lock();
        if let Some(since) = outage.since {
            tracing::info!(down_for_s = since.elapsed().as_secs(), "Kafka brokers reachable again");
            *outage = Outage::default();
            self.down.store(false, Ordering::Relaxed);
        }
    }

    /// Whether the brokers answered since the last failure.
    pub fn is_reachable(&self) -> bool {
        !self.down.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outage> {
        lock(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_a_state_that_success_ends() {
        let health = BrokerHealth::default();
        assert!(health.is_reachable());
        for _ in 0..100 {
            health.failure("connection refused");
        }
        assert!(!health.is_reachable());
        assert_eq!(health.lock().unlogged, 99, "one line for the first failure, the rest counted");
        health.success();
        assert!(health.is_reachable());
        assert_eq!(health.lock().unlogged, 0);
    }
}
