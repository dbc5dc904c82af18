//! Talking to peer nodes over HTTP: normalizing registered addresses and fetching a peer's whole
//! chain page by page through its `GET /chain`.

use super::error::ApiError;
use super::handlers::MAX_CHAIN_PAGE;
use super::json::BlockJson;
use crate::core::block::Block;
use serde::Deserialize;
use std::time::Duration;

/// Most blocks fetched from one peer: a bound on what a hostile peer can make us hold.
const MAX_PEER_CHAIN: u64 = 1_000_000;

/// A peer's base URL: `http://host:port` (a bare `host:port` gets `http://`).
pub fn normalize(address: &str) -> Result<String, ApiError> {
    let with_scheme = if address.contains("://") { address.to_owned() } else { format!("http://{address}") };
    let url = reqwest::Url::parse(&with_scheme)
        .map_err(|e| ApiError::bad_request(format!("invalid node address {address:?}: {e}")))?;
    if url.scheme() != "http" || url.host_str().is_none() {
        return Err(ApiError::bad_request(format!("node address {address:?} must be http://host:port")));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[derive(Deserialize)]
struct ChainPage {
    chain: Vec<BlockJson>,
    length: u64,
}

/// Fetches the peer's main chain, genesis first.
pub async fn fetch_chain(base: &str) -> Result<Vec<Block>, String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| e.to_string())?;
    let mut blocks = Vec::new();
    loop {
        let url = format!("{base}/chain?from={}&limit={MAX_CHAIN_PAGE}", blocks.len());
        let page: ChainPage = client
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if page.length > MAX_PEER_CHAIN {
            return Err(format!("the peer's chain of {} blocks exceeds {MAX_PEER_CHAIN}", page.length));
        }
        let got = page.chain.len();
        for json in page.chain {
            blocks.push(Block::try_from(json)?);
        }
        if blocks.len() as u64 >= page.length || got == 0 {
            return Ok(blocks);
        }
    }
}
