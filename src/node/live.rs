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
use tokio::sync::watch;
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

/// An event as a subscriber sends it: ids are `{epoch}-{n}`, the epoch being the node's start
/// time in milliseconds, so an id from before a restart is told apart.
#[derive(Clone, Debug, PartialEq)]
pub struct Numbered {
    /// Its id.
    pub id: String,
    /// Its name, the SSE `event:` field.
    pub name: &'static str,
    /// Its JSON (without the `type`, which the name says), made once for every subscriber.
    pub data: Arc<str>,
}

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0} clients already follow /events (http.max_event_subscribers)")]
pub struct TooManySubscribers(pub usize);

/// One client's place in the feed: what to send first, then the history's events from its
/// cursor on, read as they come. The history is the only buffer: a subscriber holds no events
/// of its own, so its memory does not grow with the blocks.
pub struct Subscription {
    /// Sent first: a `reset` or the current tip (nothing when resuming after `Last-Event-ID`).
    pub first: Vec<Numbered>,
    /// The number of the next history event to send.
    next: u64,
    /// The number of the latest event, which wakes the subscriber.
    latest: watch::Receiver<u64>,
    feed: Arc<LiveFeed>,
    /// Counts this subscriber until dropped.
    _counted: SubscriberCount,
}

impl Subscription {
    /// The next event, waiting for it; `None` once the client fell further behind than the
    /// history holds (it is dropped, and reconnects with its last id).
    pub async fn next(&mut self) -> Option<Numbered> {
        loop {
            // Marked seen before reading: an event pushed after the read wakes the wait.
            self.latest.borrow_and_update();
            match self.feed.read(self.next) {
                Read::Event(numbered) => {
                    self.next += 1;
                    return Some(numbered);
                }
                Read::Gone => return None,
                Read::NotYet => self.latest.changed().await.ok()?,
            }
        }
    }
}

/// One subscriber counted against the bound, until dropped.
struct SubscriberCount(Arc<AtomicUsize>);

impl Drop for SubscriberCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An event the history keeps.
struct Kept {
    number: u64,
    name: &'static str,
    data: Arc<str>,
}

struct History {
    /// Numbered consecutively, oldest first.
    events: VecDeque<Kept>,
    /// Bytes of JSON the events hold.
    bytes: usize,
    /// The number the next event gets (from 1).
    next: u64,
    /// The tip last announced.
    tip: Option<(u64, BlockHash)>,
}

impl History {
    /// The number of the oldest event kept (the next one's when none is).
    fn oldest(&self) -> u64 {
        self.events.front().map_or(self.next, |kept| kept.number)
    }
}

/// What reading the history at a number found.
enum Read {
    Event(Numbered),
    /// Not pushed yet.
    NotYet,
    /// Dropped from the history.
    Gone,
}

/// The feed's bounds: events kept, their bytes of JSON, subscribers.
#[derive(Clone, Copy, Debug)]
pub(super) struct FeedBounds {
    /// Most events kept.
    pub(super) events: usize,
    /// Most bytes of JSON kept (the latest event always is, whatever its size).
    pub(super) bytes: usize,
    /// Most subscribers at once.
    pub(super) subscribers: usize,
}

/// The feed's history and its subscribers.
pub(super) struct LiveFeed {
    epoch: u64,
    bounds: FeedBounds,
    history: Mutex<History>,
    latest: watch::Sender<u64>,
    subscribers: Arc<AtomicUsize>,
}

/// An event's JSON as `GET /events` sends it: its fields, without the `type` its name says.
fn event_json(event: &LiveEvent) -> Arc<str> {
    let mut data = serde_json::to_value(event).unwrap_or_default();
    if let Some(object) = data.as_object_mut() {
        object.remove("type");
    }
    data.to_string().into()
}

impl LiveFeed {
    /// A feed starting at `tip`, within `bounds`.
    pub(super) fn new(tip: &Tip, bounds: FeedBounds) -> Self {
        let feed = Self {
            epoch: crate::clock::now_ms(),
            bounds,
            history: Mutex::new(History { events: VecDeque::new(), bytes: 0, next: 1, tip: None }),
            latest: watch::Sender::new(0),
            subscribers: Arc::new(AtomicUsize::new(0)),
        };
        feed.push(LiveEvent::Tip { height: tip.height, hash: tip.hash });
        feed
    }

    fn numbered(&self, number: u64, name: &'static str, data: Arc<str>) -> Numbered {
        Numbered { id: format!("{}-{number}", self.epoch), name, data }
    }

    /// `event`, not kept in the history, as sent numbered `number`.
    fn unkept(&self, number: u64, event: &LiveEvent) -> Numbered {
        self.numbered(number, event.name(), event_json(event))
    }

    fn push(&self, event: LiveEvent) {
        let data = event_json(&event);
        let mut history = lock(&self.history);
        let number = history.next;
        history.next += 1;
        if let LiveEvent::Tip { height, hash } = event {
            history.tip = Some((height, hash));
        }
        history.bytes += data.len();
        history.events.push_back(Kept { number, name: event.name(), data });
        while history.events.len() > self.bounds.events
            || (history.bytes > self.bounds.bytes && history.events.len() > 1)
        {
            if let Some(dropped) = history.events.pop_front() {
                history.bytes -= dropped.data.len();
            }
        }
        self.latest.send_replace(number);
    }

    /// The event numbered `number`, if the history holds it.
    fn read(&self, number: u64) -> Read {
        let history = lock(&self.history);
        if number >= history.next {
            return Read::NotYet;
        }
        let oldest = history.oldest();
        match number.checked_sub(oldest).and_then(|at| history.events.get(at as usize)) {
            Some(kept) => Read::Event(self.numbered(kept.number, kept.name, kept.data.clone())),
            None => Read::Gone,
        }
    }

    /// Whether any client follows the feed now.
    fn has_subscribers(&self) -> bool {
        self.subscribers.load(Ordering::SeqCst) > 0
    }

    /// Subscribes a client that last saw `last_event_id` (none for a new client).
    pub(super) fn subscribe(self: &Arc<Self>, last_event_id: Option<&str>) -> Result<Subscription, TooManySubscribers> {
        let counted = self.subscribers.fetch_add(1, Ordering::SeqCst) + 1;
        let count = SubscriberCount(self.subscribers.clone());
        if counted > self.bounds.subscribers {
            return Err(TooManySubscribers(self.bounds.subscribers));
        }
        let history = lock(&self.history);
        let latest = history.next - 1;
        let oldest = history.oldest();
        let resume = last_event_id.map(|id| {
            id.split_once('-')
                .and_then(|(epoch, number)| Some((epoch.parse::<u64>().ok()?, number.parse::<u64>().ok()?)))
                .filter(|(epoch, number)| *epoch == self.epoch && *number <= latest && *number + 1 >= oldest)
                .map(|(_, number)| number)
        });
        let (first, next) = match resume {
            Some(Some(seen)) => (Vec::new(), seen + 1),
            Some(None) => (vec![self.unkept(latest, &LiveEvent::Reset)], latest + 1),
            None => {
                let tip = history.tip.map(|(height, hash)| self.unkept(latest, &LiveEvent::Tip { height, hash }));
                (tip.into_iter().collect(), latest + 1)
            }
        };
        drop(history);
        Ok(Subscription { first, next, latest: self.latest.subscribe(), feed: self.clone(), _counted: count })
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
                if behind as usize > feed.bounds.events || !feed.has_subscribers() {
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

    fn bounds(events: usize, bytes: usize, subscribers: usize) -> FeedBounds {
        FeedBounds { events, bytes, subscribers }
    }

    /// The names and JSON of what `subscription` sends first and then holds in the history.
    async fn received(subscription: &mut Subscription, count: usize) -> Vec<Numbered> {
        let mut all = subscription.first.clone();
        while all.len() < count {
            all.push(subscription.next().await.expect("an event"));
        }
        all
    }

    #[tokio::test]
    async fn a_client_resumes_after_its_last_event_or_is_told_to_reload() {
        let feed = Arc::new(LiveFeed::new(&tip_at(1), bounds(3, usize::MAX, 10)));
        for height in 2..=5 {
            feed.push(tip(height));
        }
        let epoch = feed.epoch;
        let new = feed.subscribe(None).unwrap();
        assert_eq!(new.first.len(), 1, "a new client gets the tip");
        assert_eq!((new.first[0].name, &*new.first[0].data), ("tip", &*event_json(&tip(5))));
        let mut resumed = feed.subscribe(Some(&format!("{epoch}-3"))).unwrap();
        let ids: Vec<String> = received(&mut resumed, 2).await.into_iter().map(|n| n.id).collect();
        assert_eq!(ids, [format!("{epoch}-4"), format!("{epoch}-5")]);
        for gone in [format!("{epoch}-1"), format!("{}-4", epoch + 1), "junk".to_owned(), format!("{epoch}-9")] {
            let told = feed.subscribe(Some(&gone)).unwrap();
            assert_eq!(told.first.len(), 1, "{gone}");
            assert_eq!(told.first[0].name, "reset", "{gone}");
        }
        let waiting = tokio::spawn(async move { resumed.next().await });
        tokio::task::yield_now().await;
        feed.push(tip(6));
        let live = waiting.await.unwrap().expect("the live event");
        assert_eq!((live.id, live.data), (format!("{epoch}-6"), event_json(&tip(6))), "then the live events");
    }

    #[tokio::test]
    async fn the_history_keeps_at_most_its_bytes_and_a_client_behind_it_is_dropped() {
        let one = event_json(&tip(2)).len();
        let feed = Arc::new(LiveFeed::new(&tip_at(1), bounds(100, one * 2, 10)));
        let mut slow = feed.subscribe(None).unwrap();
        for height in 2..=9 {
            feed.push(tip(height));
        }
        let (kept, bytes) = {
            let history = lock(&feed.history);
            (history.events.len(), history.bytes)
        };
        assert_eq!(kept, 2, "two events' worth of bytes");
        assert!(bytes <= one * 2);
        assert_eq!(slow.next().await, None, "its next event is gone: dropped");
        let huge = LiveEvent::Halted { reason: "store_failed", message: "x".repeat(one * 10) };
        feed.push(huge.clone());
        let mut fresh = feed.subscribe(Some(&format!("{}-9", feed.epoch))).unwrap();
        assert_eq!(fresh.next().await.map(|n| n.data), Some(event_json(&huge)), "the latest is kept whatever its size");
    }

    #[test]
    fn subscribers_past_the_bound_are_refused_until_one_leaves() {
        let feed = Arc::new(LiveFeed::new(&tip_at(0), bounds(3, usize::MAX, 2)));
        let first = feed.subscribe(None).unwrap();
        let _second = feed.subscribe(None).unwrap();
        assert!(feed.subscribe(None).is_err());
        drop(first);
        assert!(feed.subscribe(None).is_ok());
    }
}
