//! Peer sync: learning blocks from other nodes over HTTP without ever writing them into the store.
//!
//! The topic is the only way into a node's chain. `GET /nodes/resolve` therefore fetches each
//! registered peer's chain page by page, validates the part this node lacks against the store
//! exactly as the applier would (in an [`Overlay`], nothing written), and when the best peer's
//! branch carries more work than our tip, publishes those blocks into `{prefix}.blocks` in
//! order. Every node, this one included, then applies them as it reads them, so all nodes that
//! read the topic stay on one tip.
//!
//! Every cost a peer can impose is bounded ([`PeerConfig`]): bytes per response, blocks per page
//! (checked), time per request and per peer, and the blocks and bytes kept in memory. Redirects
//! are not followed. A peer that breaks a bound or serves an invalid block is dropped from this
//! resolve and reported; the other peers are still asked.

use crate::config::PeerConfig;
use crate::core::block::{genesis, Block};
use crate::core::chain::{ChainView, Outcome, Overlay, Tip};
use crate::core::encoding;
use crate::core::hash::BlockHash;
use crate::core::params::ChainParams;
use crate::core::validate::BlockError;
use crate::json::{BlockJson, JsonError};
use crate::store::{Store, StoreError};
use serde::Deserialize;
use std::time::Duration;

/// Why a peer address is refused at registration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAddressError {
    /// Not a URL.
    #[error("invalid node address {0:?}: {1}")]
    Unparsable(String, String),
    /// Not `http://host[:port]` or `https://host[:port]` (a path prefix is allowed).
    #[error(
        "node address {0:?} must be http://host:port or https://host:port, without credentials, query or fragment"
    )]
    Shape(String),
}

/// A peer's base URL: `http(s)://host[:port][/path]` (a bare `host:port` gets `http://`), with no
/// credentials (they would be stored and shown), no query and no fragment.
pub(super) fn normalize_peer(address: &str) -> Result<String, PeerAddressError> {
    let with_scheme = if address.contains("://") { address.to_owned() } else { format!("http://{address}") };
    let url = reqwest::Url::parse(&with_scheme)
        .map_err(|e| PeerAddressError::Unparsable(address.to_owned(), e.to_string()))?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if !plain {
        return Err(PeerAddressError::Shape(address.to_owned()));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// How a peer's `/chain` pages contradict what was asked for or themselves.
#[derive(Debug, thiserror::Error)]
pub enum PageFault {
    /// A page without blocks below the chain's length.
    #[error("an empty page at height {from} of a chain of {length}")]
    Empty {
        /// The height asked for.
        from: u64,
        /// The length the peer claims.
        length: u64,
    },
    /// The first page holds no genesis block.
    #[error("no genesis block")]
    NoGenesis,
    /// A height below the claimed length has no block.
    #[error("no block at height {height} of a chain of {length}")]
    NoBlockAt {
        /// The height asked for.
        height: u64,
        /// The length the peer claims.
        length: u64,
    },
    /// More blocks than the page size asked for.
    #[error("{got} blocks in a page of at most {limit}")]
    Oversized {
        /// Blocks in the page.
        got: usize,
        /// The page size asked for.
        limit: usize,
    },
    /// A block at another height than its place in the page.
    #[error("block {got} where height {asked} was asked for")]
    WrongHeight {
        /// The height the block claims.
        got: u64,
        /// The height its place stands for.
        asked: u64,
    },
    /// A block whose parent is not the block before it.
    #[error("block at height {height} does not link to the one before")]
    Unlinked {
        /// Its height.
        height: u64,
    },
    /// A block that validation neither stored nor refused (an orphan or a duplicate in a page
    /// that links).
    #[error("the block at height {height} was not stored: {outcome}")]
    NotStored {
        /// Its height.
        height: u64,
        /// What the overlay made of it.
        outcome: String,
    },
}

/// Why a peer was dropped from a resolve.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The request failed (unreachable, timed out, refused, redirected).
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The peer answered with an error status (a redirect included: they are not followed).
    #[error("answered {0}")]
    Status(reqwest::StatusCode),
    /// A response body exceeded `peers.max_response_bytes`.
    #[error("a response exceeded {0} bytes")]
    TooLarge(usize),
    /// A response is not the `/chain` JSON shape.
    #[error("unreadable page: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// A block in the page is malformed or does not hash as it claims.
    #[error("unreadable page: {0}")]
    BadBlock(#[from] JsonError),
    /// The page is not what was asked for (more blocks than the page size, wrong heights,
    /// blocks that do not link).
    #[error("inconsistent page: {0}")]
    Inconsistent(#[from] PageFault),
    /// The peer's chain starts from another genesis: its chain parameters differ from ours.
    #[error("its genesis {0} is not ours: its chain parameters differ")]
    OtherGenesis(BlockHash),
    /// A block of the peer's chain fails validation.
    #[error("block at height {height} is invalid: {error}")]
    InvalidBlock {
        /// Its height.
        height: u64,
        /// The rule it breaks.
        #[source]
        error: BlockError,
    },
    /// The whole exchange took longer than `peers.sync_timeout_ms`.
    #[error("took longer than {0:?}")]
    Timeout(Duration),
    /// Our own store failed while validating.
    #[error("our store failed: {0}")]
    Store(#[from] StoreError),
    /// Our tip moved while the branch was being checked (a block arrived from the topic): the
    /// pages checked so far were read against an older chain, so the next resolve starts over.
    #[error("our tip moved from {was} to {now} during the check; resolve again")]
    TipMoved { was: BlockHash, now: BlockHash },
}

/// A validated branch of a peer's chain that this node lacks, in chain order.
pub(super) struct PeerBranch {
    /// The blocks, parents first; each is new to this node.
    pub blocks: Vec<Block>,
    /// The tip the branch leads to, as the overlay computed it.
    pub tip: Tip,
    /// False when the peer has more than one resolve may take: these blocks are its first part.
    pub complete: bool,
}

/// What one peer gave in one resolve.
#[derive(Debug)]
pub enum PeerVerdict {
    /// Its branch was valid and carries more work than our tip (`complete` false: only its first
    /// part was taken).
    MoreWork { new_blocks: usize, height: u64, complete: bool },
    /// Its chain is valid but carries no more work than ours.
    NotMoreWork { height: u64 },
    /// It was dropped.
    Dropped(PeerError),
    /// The resolve's time ran out before it was asked.
    NotAsked,
}

impl std::fmt::Display for PeerVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerVerdict::MoreWork { new_blocks, height, complete: true } => {
                write!(f, "more work: {new_blocks} new blocks up to height {height}")
            }
            PeerVerdict::MoreWork { new_blocks, height, complete: false } => write!(
                f,
                "more work: the first {new_blocks} new blocks, up to height {height}, of a longer branch (resolve again for the rest)"
            ),
            PeerVerdict::NotMoreWork { height } => write!(f, "not more work than ours (height {height})"),
            PeerVerdict::Dropped(e) => write!(f, "dropped: {e}"),
            PeerVerdict::NotAsked => write!(f, "not asked: the resolve's time (peers.sync_timeout_ms) ran out first"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainPage {
    chain: Vec<BlockJson>,
    length: u64,
}

/// Fetches and validates peers' chains within the configured bounds.
#[derive(Clone)]
pub(super) struct PeerClient {
    http: reqwest::Client,
    limits: PeerConfig,
}

impl PeerClient {
    /// A client that follows no redirects and gives up on a request after
    /// `limits.request_timeout_ms`.
    pub(super) fn new(limits: PeerConfig) -> Result<Self, reqwest::Error> {
        let timeout = Duration::from_millis(limits.request_timeout_ms);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()?;
        Ok(Self { http, limits })
    }

    /// The branch of `base`'s chain that `store` lacks, validated block by block as pages
    /// arrive, within `budget`. `None` when the peer has nothing we lack. When the budget runs
    /// out after some pages were validated, those are kept as an incomplete branch (the next
    /// resolve takes the rest), as when a bound on blocks or bytes is reached: a slow peer
    /// costs its own time, and an honest one with a long branch still makes progress.
    pub(super) async fn fetch_branch(
        &self,
        store: &Store,
        base: &str,
        budget: Duration,
    ) -> Result<Option<PeerBranch>, PeerError> {
        let deadline = tokio::time::Instant::now() + budget;
        let params = store.params().clone();
        let (first, peer_length) = tokio::time::timeout_at(deadline, self.fork_point(store, &params, base))
            .await
            .map_err(|_| PeerError::Timeout(budget))??;
        let mut check = BranchCheck {
            store: store.clone(),
            overlay: Overlay::without_base_orphans(store.clone()),
            base_tip: store.tip()?,
            prev: None,
            new_blocks: 0,
            new_bytes: 0,
        };
        let mut from = first;
        let mut complete = true;
        // Up to where the peer's chain stood at first: if it grows meanwhile, the next resolve
        // takes the rest.
        while from < peer_length && complete {
            let Ok(page) = tokio::time::timeout_at(deadline, self.page(base, from, self.limits.page_blocks)).await
            else {
                if check.new_blocks == 0 {
                    return Err(PeerError::Timeout(budget));
                }
                complete = false;
                break;
            };
            let (page, length) = page?;
            if page.is_empty() {
                return Err(PageFault::Empty { from, length }.into());
            }
            from += page.len() as u64;
            let (limits, params) = (self.limits.clone(), params.clone());
            let (checked, result) = run_blocking(move || {
                let result = check.add_page(&limits, &params, page);
                (check, result)
            })
            .await;
            check = checked;
            complete = result?;
        }
        let tip = check.overlay.tip()?;
        let blocks: Vec<Block> = check.overlay.into_update().blocks.into_iter().map(|(_, block, _)| block).collect();
        Ok((!blocks.is_empty()).then_some(PeerBranch { blocks, tip, complete }))
    }

    /// The height from which the peer's chain has to be read: the first height whose block's
    /// parent this node holds. Probes backwards from our tip in growing steps, so a peer that
    /// extends our chain costs a few small requests, and a fork costs as many as its depth.
    /// Also returns the peer's chain length.
    async fn fork_point(&self, store: &Store, params: &ChainParams, base: &str) -> Result<(u64, u64), PeerError> {
        let (first, length) = self.page(base, 0, 1).await?;
        let ours = genesis(params).hash();
        match first.first() {
            Some(block) if block.hash() == ours => {}
            Some(block) => return Err(PeerError::OtherGenesis(block.hash())),
            None => return Err(PageFault::NoGenesis.into()),
        }
        let top = store.tip()?.height.min(length.saturating_sub(1));
        let mut back = 1u64;
        loop {
            let height = top.saturating_sub(back);
            if height == 0 {
                return Ok((1, length));
            }
            let (probe, _) = self.page(base, height, 1).await?;
            let Some(block) = probe.first() else {
                return Err(PageFault::NoBlockAt { height, length }.into());
            };
            if store.meta(&block.header.prev_hash)?.is_some() {
                return Ok((height, length));
            }
            back = back.saturating_mul(4);
        }
    }

    /// One `GET /chain` page from `from`, at most `limit` blocks, read within the byte bound and
    /// checked: the heights asked for, each block hashing as it claims.
    async fn page(&self, base: &str, from: u64, limit: usize) -> Result<(Vec<Block>, u64), PeerError> {
        let url = format!("{base}/chain?from={from}&limit={limit}");
        let mut response = self.http.get(&url).send().await?;
        if !response.status().is_success() {
            return Err(PeerError::Status(response.status()));
        }
        let max = self.limits.max_response_bytes;
        if response.content_length().is_some_and(|len| len > max as u64) {
            return Err(PeerError::TooLarge(max));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > max {
                return Err(PeerError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        let page: ChainPage = run_blocking(move || serde_json::from_slice(&body)).await?;
        if page.chain.len() > limit {
            return Err(PageFault::Oversized { got: page.chain.len(), limit }.into());
        }
        let mut blocks = Vec::with_capacity(page.chain.len());
        for (expected, json) in (from..).zip(page.chain) {
            if json.index != expected {
                return Err(PageFault::WrongHeight { got: json.index, asked: expected }.into());
            }
            blocks.push(Block::try_from(json)?);
        }
        Ok((blocks, page.length))
    }
}

/// A peer's branch being checked page by page: our store, the overlay holding what the branch
/// adds to it, our tip when the check began, the last block seen (the next must link to it) and what the
/// new blocks cost so far.
struct BranchCheck {
    store: Store,
    overlay: Overlay<Store>,
    base_tip: Tip,
    prev: Option<BlockHash>,
    new_blocks: usize,
    new_bytes: usize,
}

impl BranchCheck {
    /// Validates one page against the store and the pages before it, exactly as the applier
    /// would (proof of work, links, transactions). Returns false once the block or byte bound
    /// is reached: what was validated before it stands, the rest waits for the next resolve.
    /// The page is checked while the store's writers wait, against the tip the check began
    /// with: the overlay reads many records, which must all come from one state.
    fn add_page(&mut self, limits: &PeerConfig, params: &ChainParams, page: Vec<Block>) -> Result<bool, PeerError> {
        let store = self.store.clone();
        store.while_writes_wait(|| {
            let now = store.tip()?;
            if now != self.base_tip {
                return Err(PeerError::TipMoved { was: self.base_tip.hash, now: now.hash });
            }
            self.add_page_unlocked(limits, params, page)
        })
    }

    fn add_page_unlocked(
        &mut self,
        limits: &PeerConfig,
        params: &ChainParams,
        page: Vec<Block>,
    ) -> Result<bool, PeerError> {
        for block in page {
            let (height, hash) = (block.header.height, block.hash());
            if self.prev.is_some_and(|p| p != block.header.prev_hash) {
                return Err(PageFault::Unlinked { height }.into());
            }
            self.prev = Some(hash);
            if self.overlay.meta(&hash)?.is_some() {
                continue;
            }
            let bytes = encoding::encoded_len(&block);
            if self.new_blocks + 1 > limits.max_new_blocks || self.new_bytes + bytes > limits.max_new_bytes {
                return Ok(false);
            }
            self.new_blocks += 1;
            self.new_bytes += bytes;
            // Validated as if appended now, which is about when it will be: the applier checks
            // it again against the broker's real append time.
            match self.overlay.apply(params, block, crate::clock::now_ms())?.as_slice() {
                [Outcome::Stored { .. }] => {}
                [Outcome::Invalid(_, e)] => return Err(PeerError::InvalidBlock { height, error: e.clone() }),
                other => return Err(PageFault::NotStored { height, outcome: format!("{other:?}") }.into()),
            }
        }
        Ok(true)
    }
}

/// Runs `work` on a blocking thread (validating a page hashes every transaction in it) and
/// returns its result; a panic in it carries on here.
async fn run_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_are_plain_http_urls() {
        assert_eq!(normalize_peer("127.0.0.1:8001").unwrap(), "http://127.0.0.1:8001");
        assert_eq!(normalize_peer("https://node.example:443/").unwrap(), "https://node.example");
        for bad in ["ftp://x:1", "http://user:pw@x:1", "http://x:1/?a=b", "http://x:1/#f", "file:///etc/passwd"] {
            assert!(matches!(normalize_peer(bad), Err(PeerAddressError::Shape(_))), "{bad}");
        }
        assert!(matches!(normalize_peer("http://[::1"), Err(PeerAddressError::Unparsable(..))));
    }
}
