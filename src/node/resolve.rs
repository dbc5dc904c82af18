//! Peers and resolving forks with them: fetching their branches, publishing the best into the
//! blocks topic, and bootstrapping a node halted on a retention gap.

use super::error::NodeError;
use super::events::BlockOutcomes;
use super::sync::{PeerBranch, PeerVerdict};
use super::{sync, Node, READ_BACK_TIMEOUT};
use crate::core::block::Block;
use crate::core::chain::ChainView;
use crate::core::hash::BlockHash;
use std::time::Duration;

/// What `GET /nodes/resolve` did.
#[derive(Debug)]
pub struct Resolution {
    /// Blocks published into the blocks topic (0 when no peer had more work).
    pub published: usize,
    /// Whether this resolve repaired a retention gap (a bootstrap): the node reads the topics
    /// again from the earliest offsets the broker holds.
    pub bootstrapped: bool,
    /// Whether our tip is now the published branch's tip.
    pub replaced: bool,
    /// Each peer asked, with what it gave.
    pub peers: Vec<(String, PeerVerdict)>,
}

impl Node {
    /// Remembers peers (each normalized to a plain `http(s)://host:port` URL, at most
    /// `peers.max_peers` in all) for `/nodes/resolve`; returns them all.
    pub fn register_peers(&self, addresses: &[String]) -> Result<Vec<String>, NodeError> {
        let urls = addresses.iter().map(|a| sync::normalize_peer(a)).collect::<Result<Vec<_>, _>>()?;
        let mut known = self.inner.store.peers()?;
        let max = self.inner.config.peers.max_peers;
        let added = urls.iter().filter(|u| !known.contains(u)).count();
        if known.len() + added > max {
            return Err(NodeError::TooManyPeers(max));
        }
        for url in urls {
            if !known.contains(&url) {
                self.inner.store.add_peer(&url)?;
                known.push(url);
            }
        }
        Ok(self.inner.store.peers()?)
    }

    /// The registered peers.
    pub fn peers(&self) -> Result<Vec<String>, NodeError> {
        Ok(self.inner.store.peers()?)
    }

    /// Asks every registered peer for the part of its chain this node lacks, validates it as the
    /// topic is validated, and publishes the best branch into the blocks topic when it carries
    /// more work than our tip. Nothing is written to the store here: the blocks reach it (and
    /// every other node) when the applier reads them back. Answers once they are applied, or
    /// after [`READ_BACK_TIMEOUT`].
    ///
    /// On a node halted on a retention gap (the broker deleted what it had to read next) the
    /// branch is published the same way, and the node then reads the topics again from the
    /// earliest offsets the broker holds, which brings it the branch after what was retained.
    pub async fn resolve(&self) -> Result<Resolution, NodeError> {
        let _one_at_a_time = self.inner.resolving.try_lock().map_err(|_| NodeError::Busy("a resolve"))?;
        let state = self.inner.applier.state();
        if state.awaits_bootstrap() {
            return self.bootstrap().await;
        }
        state.writable()?;
        let (best, peers) = self.best_peer_branch().await?;
        let Some(branch) = best else {
            return Ok(Resolution { published: 0, bootstrapped: false, replaced: false, peers });
        };
        let published = branch.blocks.len();
        let mut outcomes = self.inner.events.subscribe_blocks();
        let last = self.publish_blocks(&branch.blocks).await?;
        self.await_read_back(&mut outcomes, last).await;
        let replaced = self.inner.store.tip()?.hash == branch.tip.hash;
        tracing::info!(
            published,
            replaced,
            height = branch.tip.height,
            "published a peer's branch with more work into the blocks topic"
        );
        Ok(Resolution { published, bootstrapped: false, replaced, peers })
    }

    /// Every peer's verdict, and the branch with the most work beyond our tip, if any. All peers
    /// together get `peers.sync_timeout_ms`, asked in random order, each with an equal share of
    /// the time left (what a fast peer leaves goes to those after it), so a slow peer can use up
    /// its own share but never keep the others from being asked.
    async fn best_peer_branch(&self) -> Result<(Option<PeerBranch>, Vec<(String, PeerVerdict)>), NodeError> {
        let store = &self.inner.store;
        let mut best: Option<PeerBranch> = None;
        let mut peers = Vec::new();
        let mut urls = store.peers()?;
        rand::seq::SliceRandom::shuffle(urls.as_mut_slice(), &mut rand::thread_rng());
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.inner.config.peers.sync_timeout_ms);
        let count = urls.len();
        for (asked, url) in urls.into_iter().enumerate() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let budget = left / (count - asked) as u32;
            if budget.is_zero() {
                peers.push((url, PeerVerdict::NotAsked));
                continue;
            }
            let verdict = match self.inner.peer_client.fetch_branch(store, &url, budget).await {
                Ok(Some(branch)) => {
                    let to_beat = best.as_ref().map_or(store.tip()?.cumulative_work, |b| b.tip.cumulative_work);
                    if branch.tip.cumulative_work > to_beat {
                        let verdict = PeerVerdict::MoreWork {
                            new_blocks: branch.blocks.len(),
                            height: branch.tip.height,
                            complete: branch.complete,
                        };
                        best = Some(branch);
                        verdict
                    } else {
                        PeerVerdict::NotMoreWork { height: branch.tip.height }
                    }
                }
                Ok(None) => PeerVerdict::NotMoreWork { height: store.tip()?.height },
                Err(e) => {
                    tracing::warn!(peer = url, "peer dropped from this resolve: {e}");
                    PeerVerdict::Dropped(e)
                }
            };
            peers.push((url, verdict));
        }
        Ok((best, peers))
    }

    /// Repairs a retention gap from the best peer: publishes its branch into the blocks topic,
    /// then asks the applier to read the topics again from the earliest offsets the broker
    /// holds, where it meets the branch again after what was retained. The blocks reach the
    /// store the one way every block does, dated by the broker and checked by the topic's rules;
    /// nothing here reads this node's clock or writes the chain. Needs at least one peer that
    /// answered. Answers once the applier reads on (so a client can write again as soon as it
    /// has the answer) and has read the branch back, or with the halt it met again.
    async fn bootstrap(&self) -> Result<Resolution, NodeError> {
        if self.inner.store.peers()?.is_empty() {
            return Err(NodeError::Bootstrap("no peers are registered: POST /nodes/register first"));
        }
        let (best, peers) = self.best_peer_branch().await?;
        if peers.iter().all(|(_, verdict)| matches!(verdict, PeerVerdict::Dropped(_))) {
            return Ok(Resolution { published: 0, bootstrapped: false, replaced: false, peers });
        }
        let blocks = best.as_ref().map(|b| b.blocks.as_slice()).unwrap_or_default();
        let tip = best.as_ref().map(|b| b.tip.hash);
        let mut outcomes = self.inner.events.subscribe_blocks();
        let last = self.publish_blocks(blocks).await?;
        self.inner.applier.read_on().await?.writable()?;
        self.await_read_back(&mut outcomes, last).await;
        let now = self.inner.store.tip()?;
        tracing::info!(published = blocks.len(), height = now.height, "bootstrapped from peers after a retention gap");
        Ok(Resolution { published: blocks.len(), bootstrapped: true, replaced: tip == Some(now.hash), peers })
    }

    /// Publishes `blocks` into the blocks topic in order and returns the last one's hash once
    /// Kafka acknowledged them all.
    async fn publish_blocks(&self, blocks: &[Block]) -> Result<Option<BlockHash>, NodeError> {
        let publisher = &self.inner.publisher;
        // Each chunk is queued in order before any acknowledgement is awaited; with idempotence
        // on one partition, Kafka keeps that order.
        for chunk in blocks.chunks(256) {
            let acks = futures_util::future::join_all(chunk.iter().map(|b| publisher.publish_block(b))).await;
            for ack in acks {
                ack?;
            }
        }
        Ok(blocks.last().map(Block::hash))
    }

    /// Waits until the applier has read block `last` back (or [`READ_BACK_TIMEOUT`] passed);
    /// `outcomes` were subscribed to before it was published.
    async fn await_read_back(&self, outcomes: &mut BlockOutcomes, last: Option<BlockHash>) {
        let Some(last) = last else { return };
        if tokio::time::timeout(READ_BACK_TIMEOUT, outcomes.of(last)).await.is_err() {
            tracing::warn!(%last, "published a peer's branch but did not read its last block back within {READ_BACK_TIMEOUT:?}");
        }
    }
}
