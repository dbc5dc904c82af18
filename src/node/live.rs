//! The live feed behind `GET /events`: the node's chain as it changes (`tip`, `connect`,
//! `disconnect`, `halted`, `resumed`), numbered, with a bounded history a reconnecting client
//! resumes from (`Last-Event-ID`) and a bounded number of subscribers. A subscriber that does not
//! keep up is dropped; the feed never waits for one, and the applier never waits for the feed.

use super::state::ApplierState;
use crate::core::chain::Tip;
use crate::core::hash::BlockHash;
use crate::store::Store;
use crate::stream::{next_events, Connected, Disconnected, LedgerEvent, StreamPosition};
use crate::sync::lock;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// One change of the node's chain.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// The tip moved.
    Tip {
        /// Its height.
        height: u64,
        /// Its hash.
        hash: BlockHash,
    },
    /// A block joined the main chain (`seq` counts this feed's connects and disconnects).
    Connect(Connected),
    /// A block left the main chain.
    Disconnect(Disconnected),
    /// The applier halted.
    Halted {
        /// The halt's label.
        reason: &'static str,
        /// What an operator should do.
        message: String,
    },
    /// The applier runs again.
    Resumed,
    /// The client missed events the history no longer holds (or the node restarted): reload.
    Reset,
}

impl LiveEvent {
    /// Its name, the SSE `event:` field.
    pub fn name(&self) -> &'static str {
        match self {
            LiveEvent::Tip { .. } => "tip",
            LiveEvent::Connect(_) => "connect",
            LiveEvent::Disconnect(_) => "disconnect",
            LiveEvent::Halted { .. } => "halted",
            LiveEvent::Resumed => "resumed",
            LiveEvent::Reset => "reset",
        }
    }
}

/// A numbered event: ids are `{epoch}-{n}`, the epoch being the node's start time in
/// milliseconds, so an id from before a restart is told apart.
#[derive(Clone, Debug, PartialEq)]
pub struct Numbered {
    /// Its id.
    pub id: String,
    /// The event.
    pub event: LiveEvent,
}

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0} clients already follow /events (http.max_event_subscribers)")]
pub struct TooManySubscribers(pub usize);

/// What a new subscriber gets: the events to send first, then the live ones.
pub struct Subscription {
    /// Sent first: the missed events after `Last-Event-ID`, a `reset`, or the current tip.
    pub first: Vec<Numbered>,
    /// The live events, each numbered after every event of `first`.
    pub live: broadcast::Receiver<(u64, LiveEvent)>,
    /// The feed's epoch, to number the live events.
    pub epoch: u64,
    /// Counts this subscriber until dropped.
    pub counted: SubscriberCount,
}

/// One subscriber counted against the bound, until dropped.
pub struct SubscriberCount(Arc<AtomicUsize>);

impl Drop for SubscriberCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct History {
    events: VecDeque<(u64, LiveEvent)>,
    /// The number the next event gets (from 1).
    next: u64,
    /// The tip last announced.
    tip: Option<(u64, BlockHash)>,
}

/// The feed's history, its live channel and its subscribers.
pub(super) struct LiveFeed {
    epoch: u64,
    capacity: usize,
    history: Mutex<History>,
    sender: broadcast::Sender<(u64, LiveEvent)>,
    subscribers: Arc<AtomicUsize>,
    max_subscribers: usize,
}

impl LiveFeed {
    /// A feed starting at `tip`, keeping `capacity` events for clients that reconnect, serving
    /// at most `max_subscribers` at once.
    pub(super) fn new(tip: &Tip, capacity: usize, max_subscribers: usize) -> Self {
        let feed = Self {
            epoch: crate::clock::now_ms(),
            capacity,
            history: Mutex::new(History { events: VecDeque::with_capacity(capacity), next: 1, tip: None }),
            sender: broadcast::Sender::new(capacity),
            subscribers: Arc::new(AtomicUsize::new(0)),
            max_subscribers,
        };
        feed.push(LiveEvent::Tip { height: tip.height, hash: tip.hash });
        feed
    }

    fn push(&self, event: LiveEvent) {
        let mut history = lock(&self.history);
        let number = history.next;
        history.next += 1;
        if let LiveEvent::Tip { height, hash } = &event {
            history.tip = Some((*height, *hash));
        }
        if history.events.len() == self.capacity {
            history.events.pop_front();
        }
        history.events.push_back((number, event.clone()));
        // Sent under the lock, so a subscriber taking the history sees each event once.
        let _ = self.sender.send((number, event));
    }

    /// Whether any client follows the feed now.
    fn has_subscribers(&self) -> bool {
        self.subscribers.load(Ordering::SeqCst) > 0
    }

    /// Subscribes a client that last saw `last_event_id` (none for a new client).
    pub(super) fn subscribe(&self, last_event_id: Option<&str>) -> Result<Subscription, TooManySubscribers> {
        let counted = self.subscribers.fetch_add(1, Ordering::SeqCst) + 1;
        let count = SubscriberCount(self.subscribers.clone());
        if counted > self.max_subscribers {
            return Err(TooManySubscribers(self.max_subscribers));
        }
        let history = lock(&self.history);
        let live = self.sender.subscribe();
        let latest = history.next - 1;
        let numbered = |number: u64, event: LiveEvent| Numbered { id: format!("{}-{number}", self.epoch), event };
        let oldest = history.events.front().map_or(history.next, |(number, _)| *number);
        let resume = last_event_id.map(|id| {
            id.split_once('-')
                .and_then(|(epoch, number)| Some((epoch.parse::<u64>().ok()?, number.parse::<u64>().ok()?)))
                .filter(|(epoch, number)| *epoch == self.epoch && *number <= latest && *number + 1 >= oldest)
                .map(|(_, number)| number)
        });
        let first = match resume {
            Some(Some(seen)) => history
                .events
                .iter()
                .filter(|(number, _)| *number > seen)
                .map(|(number, event)| numbered(*number, event.clone()))
                .collect(),
            Some(None) => vec![numbered(latest, LiveEvent::Reset)],
            None => history
                .tip
                .map(|(height, hash)| vec![numbered(latest, LiveEvent::Tip { height, hash })])
                .unwrap_or_default(),
        };
        Ok(Subscription { first, live, epoch: self.epoch, counted: count })
    }
}

/// Follows the chain into `feed` (which starts at `start`) until shutdown: each tip change
/// becomes the `disconnect`s and `connect`s that lead there (planned as the ledger stream is,
/// with one confirmation) and a `tip`. While nobody listens, or for a jump longer than the
/// history, it skips ahead to the tip (a `reset`, then `tip`s): no block is read for clients
/// that are not there or could not replay it anyway, so a node catching up pays nothing.
pub(super) async fn follow(
    feed: Arc<LiveFeed>,
    store: Store,
    start: Tip,
    mut tips: watch::Receiver<Tip>,
    mut applier: watch::Receiver<ApplierState>,
    shutdown: CancellationToken,
) {
    let mut position = StreamPosition { next_seq: 0, tip: Some((start.height, start.hash)) };
    let chain_tag = store.params().chain_tag();
    // Whether the feed skips ahead (nobody listens, or the jump is longer than the history):
    // one `reset` tells a client resuming from before it to reload.
    let mut skipping = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = tips.changed() => {
                if changed.is_err() {
                    return;
                }
                let tip = *tips.borrow_and_update();
                let behind = tip.height.saturating_sub(position.height().unwrap_or(0));
                if behind as usize > feed.capacity || !feed.has_subscribers() {
                    position = StreamPosition { next_seq: position.next_seq, tip: Some((tip.height, tip.hash)) };
                    if !skipping {
                        feed.push(LiveEvent::Reset);
                        skipping = true;
                    }
                } else {
                    skipping = false;
                    let reading = store.clone();
                    let planned = tokio::task::spawn_blocking(move || {
                        next_events(&reading, chain_tag, position, 1, usize::MAX)
                    })
                    .await;
                    match planned {
                        Ok(Ok((events, next))) => {
                            position = next;
                            for event in events {
                                feed.push(match event {
                                    LedgerEvent::Connect(c) => LiveEvent::Connect(c),
                                    LedgerEvent::Disconnect(d) => LiveEvent::Disconnect(d),
                                });
                            }
                        }
                        Ok(Err(e)) => tracing::warn!("the live feed could not follow the chain: {e}"),
                        Err(e) => tracing::warn!("the live feed's planning task failed: {e}"),
                    }
                }
                feed.push(LiveEvent::Tip { height: tip.height, hash: tip.hash });
            }
            changed = applier.changed() => {
                if changed.is_err() {
                    return;
                }
                let state = applier.borrow_and_update().clone();
                match state {
                    ApplierState::Halted(why) => {
                        feed.push(LiveEvent::Halted { reason: why.label(), message: why.to_string() })
                    }
                    ApplierState::Running => feed.push(LiveEvent::Resumed),
                    ApplierState::Bootstrapping => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tip_at(height: u64) -> Tip {
        let hash = BlockHash::new([height as u8; 32]);
        Tip { hash, height, cumulative_work: crate::core::pow::Work(1), peak_height: height }
    }

    fn tip(height: u64) -> LiveEvent {
        LiveEvent::Tip { height, hash: BlockHash::new([height as u8; 32]) }
    }

    #[test]
    fn a_client_resumes_after_its_last_event_or_is_told_to_reload() {
        let feed = LiveFeed::new(&tip_at(1), 3, 10);
        for height in 2..=5 {
            feed.push(tip(height));
        }
        let epoch = feed.epoch;
        let new = feed.subscribe(None).unwrap();
        assert_eq!(
            new.first.iter().map(|n| n.event.clone()).collect::<Vec<_>>(),
            [tip(5)],
            "a new client gets the tip"
        );
        let resumed = feed.subscribe(Some(&format!("{epoch}-3"))).unwrap();
        let ids: Vec<&str> = resumed.first.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, [format!("{epoch}-4"), format!("{epoch}-5")]);
        for gone in [format!("{epoch}-1"), format!("{}-4", epoch + 1), "junk".to_owned(), format!("{epoch}-9")] {
            let told = feed.subscribe(Some(&gone)).unwrap();
            assert_eq!(told.first.len(), 1, "{gone}");
            assert_eq!(told.first[0].event, LiveEvent::Reset, "{gone}");
        }
        let mut live = resumed.live;
        feed.push(tip(6));
        assert_eq!(live.try_recv().unwrap(), (6, tip(6)), "then the live events");
    }

    #[test]
    fn subscribers_past_the_bound_are_refused_until_one_leaves() {
        let feed = LiveFeed::new(&tip_at(0), 3, 2);
        let first = feed.subscribe(None).unwrap();
        let _second = feed.subscribe(None).unwrap();
        assert!(feed.subscribe(None).is_err());
        drop(first);
        assert!(feed.subscribe(None).is_ok());
    }
}
