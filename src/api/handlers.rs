//! One handler per endpoint: parse and check the request, call the node, shape the answer.

use super::error::{ApiError, SubmitError};
use super::ApiState;
use crate::core::account::Address;
use crate::core::block::Block;
use crate::core::encoding::encoded_len;
use crate::core::hash::{BlockHash, TxId};
use crate::core::transaction::{ChainTag, Transaction, Transfer};
use crate::json::{BlockJson, SignedTransferJson, TxJson};
use crate::node::{Node, StoredBlock, TxStatus};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};

/// Most blocks one `GET /chain` page returns.
pub(super) const MAX_CHAIN_PAGE: usize = 1_000;
/// Most headers one `GET /blocks` page returns (and how many without `limit`: 20).
pub(super) const MAX_HEADER_PAGE: usize = 500;
/// Headers a `GET /blocks` page returns unless `limit` says otherwise.
const DEFAULT_HEADER_PAGE: usize = 20;
/// Most transfers `GET /mempool` lists.
pub(super) const MAX_MEMPOOL_LIST: usize = 100;

type ApiResult = Result<(StatusCode, Json<Value>), ApiError>;

impl FromRef<ApiState> for Node {
    fn from_ref(state: &ApiState) -> Node {
        state.node.clone()
    }
}

/// The stored bytes read for a page of at most `json_bytes` of JSON: a block's JSON is never
/// smaller than its stored record (it spells out every string and more), so reading as many
/// stored bytes as the page may hold in JSON is never too little.
fn store_budget(json_bytes: usize) -> usize {
    json_bytes
}

/// The JSON of `blocks`, cut before the block that would take it past `max_bytes` (the first
/// block is always kept, so a page always makes progress).
fn bounded_page(blocks: &[Block], chain: ChainTag, max_bytes: usize) -> Vec<Value> {
    let mut page = Vec::with_capacity(blocks.len());
    let mut bytes = 0;
    for block in blocks {
        let json = json!(BlockJson::new(block, chain));
        bytes += json.to_string().len() + 1;
        if bytes > max_bytes && !page.is_empty() {
            break;
        }
        page.push(json);
    }
    page
}

/// Parses a JSON body into `T`, naming what is wrong when it does not fit.
fn parse_body<T: serde::de::DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    parse_json(&body?)
}

/// Parses `body` into `T`, which may borrow from it.
fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// What a client that still sends the unsigned shape is told.
const HOW_TO_SIGN: &str = "transfers must be signed: send {\"sender\", \"recipient\", \"amount\", \"fee\", \"nonce\", \"signature\"} with sender and recipient as 64-hex-character addresses (Ed25519 public keys), the sender's next nonce (GET /accounts/{address}) and an Ed25519 signature over the signing bytes of docs/consensus.md; `kafkachain wallet send` does all of it";

/// Reads one signed transfer, telling a client of the old unsigned shape how to sign.
/// The signed transfer in `raw`, read straight from the request's bytes (no JSON tree is built
/// for it); an object without a signature is told how to sign.
fn parse_transfer(raw: &RawValue, chain: ChainTag) -> Result<Transfer, ApiError> {
    let json: SignedTransferJson = serde_json::from_str(raw.get()).map_err(|e| {
        let fields = serde_json::from_str::<Value>(raw.get()).ok();
        match fields.as_ref().and_then(Value::as_object) {
            Some(fields) if !fields.contains_key("signature") => ApiError::bad_request(HOW_TO_SIGN),
            _ => ApiError::bad_request(format!("invalid transfer: {e}")),
        }
    })?;
    json.into_transfer(chain).map_err(|e| ApiError::bad_request(e.to_string()))
}

#[derive(Deserialize)]
struct NewTransactions<'a> {
    #[serde(borrow)]
    transactions: Vec<&'a RawValue>,
}

/// Most transactions in one `POST /transactions/batch`.
pub(super) const MAX_BATCH: usize = crate::config::MAX_BATCH_TRANSFERS;

/// The address a request came from (set per connection by the accept loop), for the
/// per-client bound on submitted transfers; unknown clients share one allowance.
fn client_of(connected: Option<Extension<ConnectInfo<SocketAddr>>>) -> IpAddr {
    connected.map_or(IpAddr::from([0, 0, 0, 0]), |Extension(ConnectInfo(address))| address.ip())
}

/// `POST /transactions/new` with a signed transfer: answers 201 once Kafka acknowledged it.
pub(super) async fn new_transaction(
    State(api): State<ApiState>,
    connected: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), SubmitError> {
    let body = body.map_err(ApiError::from)?;
    let transfer = parse_transfer(parse_json(&body)?, api.node.chain_tag())?;
    api.submit_rate.take(client_of(connected), 1).map_err(SubmitError::TooFast)?;
    let (ids, height) = api.node.submit_transactions(vec![transfer]).await.map_err(ApiError::from)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "message": format!("Transaction will be added to Block {height}"),
            "transaction_id": ids[0],
        })),
    ))
}

/// `POST /transactions/batch` `{"transactions":[signed transfer, ...]}`: like
/// `/transactions/new` for up to [`MAX_BATCH`] transfers at once; all are checked before any is
/// published, and the answer comes once Kafka acknowledged every one.
pub(super) async fn new_transactions(
    State(api): State<ApiState>,
    connected: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), SubmitError> {
    let node = &api.node;
    let body = body.map_err(ApiError::from)?;
    let request: NewTransactions = parse_json(&body)?;
    if request.transactions.is_empty() || request.transactions.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!("transactions must hold 1 to {MAX_BATCH} entries")).into());
    }
    let chain = node.chain_tag();
    let transfers = request
        .transactions
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            parse_transfer(t, chain).map_err(|e| ApiError::bad_request(format!("transaction {i}: {}", e.message)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    api.submit_rate.take(client_of(connected), transfers.len()).map_err(SubmitError::TooFast)?;
    let (ids, height) = node.submit_transactions(transfers).await.map_err(ApiError::from)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "message": format!("{} transactions will be added to Block {height}", ids.len()),
            "transaction_ids": ids,
        })),
    ))
}

/// `GET /accounts/{address}`: balance and nonce at the tip, and the nonce the next transfer
/// takes once the pending ones are mined.
pub(super) async fn account(State(node): State<Node>, Path(address): Path<String>) -> ApiResult {
    let address: Address = address
        .parse()
        .map_err(|_| ApiError::bad_request("an address is 64 hex characters (an Ed25519 public key)"))?;
    let (account, pending_nonce) = node.account(&address)?;
    Ok((
        StatusCode::OK,
        Json(json!({
            "address": address,
            "balance": account.balance,
            "nonce": account.nonce,
            "pending_nonce": pending_nonce,
        })),
    ))
}

/// `GET /transactions/{id}`: a pending transfer, or a confirmed one with its block (found
/// through the transaction index).
pub(super) async fn transaction(State(node): State<Node>, Path(id): Path<String>) -> ApiResult {
    let id: TxId = id.parse().map_err(|_| ApiError::bad_request("a transaction id is 64 hex characters"))?;
    match node.transaction(&id)? {
        TxStatus::Pending(transfer) => {
            let tx = TxJson::new(&Transaction::Transfer(transfer), node.chain_tag());
            Ok((StatusCode::OK, Json(json!({ "status": "pending", "transaction": tx }))))
        }
        TxStatus::Confirmed { height, block_hash, transaction } => {
            let tx = TxJson::new(&transaction, node.chain_tag());
            let body = json!({ "status": "confirmed", "height": height, "block_hash": block_hash, "transaction": tx });
            Ok((StatusCode::OK, Json(body)))
        }
        TxStatus::Unknown => Err(ApiError::not_found(format!("no pending or confirmed transaction {id}"))),
        TxStatus::NotIndexed => Err(ApiError::not_found(format!(
            "transaction {id} is not pending; this node keeps no index of confirmed transactions (storage.tx_index = false)"
        ))),
    }
}

/// `GET /mine`: mines one block and answers once it is applied.
pub(super) async fn mine(State(node): State<Node>) -> ApiResult {
    let mined = node.mine().await?;
    let block = BlockJson::new(&mined.block, node.chain_tag());
    Ok((
        StatusCode::OK,
        Json(json!({
            "message": "New Block Forged",
            "index": block.index,
            "transactions": block.transactions,
            "proof": block.proof,
            "previous_hash": block.previous_hash,
            "hash": block.hash,
            "tip_moved": mined.tip_moved,
        })),
    ))
}

#[derive(Deserialize)]
pub(super) struct ChainPage {
    from: Option<u64>,
    limit: Option<usize>,
}

/// `GET /chain?from=&limit=`: the main chain (a page of it, at most [`MAX_CHAIN_PAGE`] blocks
/// and `http.max_chain_page_bytes` of JSON) and its full length.
pub(super) async fn chain(State(api): State<ApiState>, page: Result<Query<ChainPage>, QueryRejection>) -> ApiResult {
    let Query(page) = page?;
    let limit = page.limit.unwrap_or(MAX_CHAIN_PAGE);
    if limit > MAX_CHAIN_PAGE {
        return Err(ApiError::bad_request(format!("limit must be at most {MAX_CHAIN_PAGE}")));
    }
    let (blocks, length) =
        api.node.chain(page.from.unwrap_or(0), limit, store_budget(api.max_chain_page_bytes)).await?;
    let chain = bounded_page(&blocks, api.node.chain_tag(), api.max_chain_page_bytes);
    Ok((StatusCode::OK, Json(json!({ "chain": chain, "length": length }))))
}

/// A block's header fields and summary: what a list of blocks shows.
fn header_json(stored: &StoredBlock) -> Value {
    let header = &stored.block.header;
    json!({
        "hash": stored.hash,
        "height": stored.height,
        "main_chain": stored.main_chain,
        "previous_hash": header.prev_hash,
        "timestamp_ms": header.timestamp_ms,
        "bits": header.bits,
        "nonce": header.nonce,
        "transactions": stored.block.transactions.len(),
        "size": encoded_len(&stored.block),
    })
}

/// `GET /blocks/{hash}`: a stored block (on any branch) with its header summary.
pub(super) async fn block_by_hash(State(node): State<Node>, Path(hash): Path<String>) -> ApiResult {
    let hash: BlockHash = hash.parse().map_err(|_| ApiError::bad_request("a block hash is 64 hex characters"))?;
    let stored = node.block(&hash)?.ok_or_else(|| ApiError::not_found(format!("no block {hash} is stored here")))?;
    Ok((StatusCode::OK, Json(block_json(&stored, node.chain_tag()))))
}

/// `GET /blocks/height/{n}`: the main-chain block at height `n`.
pub(super) async fn block_at_height(State(node): State<Node>, Path(height): Path<String>) -> ApiResult {
    let height: u64 = height.parse().map_err(|_| ApiError::bad_request("a height is a whole number from 0"))?;
    let stored = node
        .main_block(height)?
        .ok_or_else(|| ApiError::not_found(format!("the main chain has no block at height {height}")))?;
    Ok((StatusCode::OK, Json(block_json(&stored, node.chain_tag()))))
}

/// A block's summary with the block itself, in the `/chain` shape.
fn block_json(stored: &StoredBlock, chain: ChainTag) -> Value {
    json!({ "header": header_json(stored), "block": BlockJson::new(&stored.block, chain) })
}

/// The query of `GET /blocks`.
#[derive(Deserialize)]
pub(super) struct HeaderPage {
    from: Option<u64>,
    limit: Option<usize>,
}

/// `GET /blocks?from=&limit=`: main-chain headers, oldest first, from height `from` (without
/// it, the last `limit` up to the tip), at most [`MAX_HEADER_PAGE`].
pub(super) async fn headers(State(api): State<ApiState>, page: Result<Query<HeaderPage>, QueryRejection>) -> ApiResult {
    let Query(page) = page?;
    let limit = page.limit.unwrap_or(DEFAULT_HEADER_PAGE);
    if !(1..=MAX_HEADER_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be 1 to {MAX_HEADER_PAGE}")));
    }
    let tip_height = api.node.height()?;
    let from = page.from.unwrap_or_else(|| (tip_height + 1).saturating_sub(limit as u64));
    let (blocks, _) = api.node.chain(from, limit, store_budget(api.max_chain_page_bytes)).await?;
    let headers: Vec<Value> = (from..)
        .zip(blocks)
        .map(|(height, block)| header_json(&StoredBlock { hash: block.hash(), height, main_chain: true, block }))
        .collect();
    Ok((StatusCode::OK, Json(json!({ "headers": headers, "tip_height": tip_height }))))
}

/// The query of `GET /mempool`.
#[derive(Deserialize)]
pub(super) struct MempoolPage {
    limit: Option<usize>,
}

/// `GET /mempool?limit=`: how many transfers wait, their encoded size, and the oldest `limit`
/// (default 20, at most [`MAX_MEMPOOL_LIST`]).
pub(super) async fn mempool(State(node): State<Node>, page: Result<Query<MempoolPage>, QueryRejection>) -> ApiResult {
    let Query(page) = page?;
    let limit = page.limit.unwrap_or(DEFAULT_HEADER_PAGE);
    if limit > MAX_MEMPOOL_LIST {
        return Err(ApiError::bad_request(format!("limit must be at most {MAX_MEMPOOL_LIST}")));
    }
    let view = node.mempool(limit)?;
    let chain = node.chain_tag();
    let oldest: Vec<TxJson> =
        view.oldest.into_iter().map(|transfer| TxJson::new(&Transaction::Transfer(transfer), chain)).collect();
    Ok((StatusCode::OK, Json(json!({ "size": view.size, "bytes": view.bytes, "oldest": oldest }))))
}

#[derive(Deserialize)]
struct RegisterNodes {
    nodes: Vec<String>,
}

/// `POST /nodes/register`: remembers peers (`http(s)://host:port`, or `host:port`).
pub(super) async fn register_nodes(State(node): State<Node>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let request: RegisterNodes = parse_body(body)?;
    if request.nodes.is_empty() {
        return Err(ApiError::bad_request("nodes must list at least one peer"));
    }
    let all = node.register_peers(&request.nodes)?;
    Ok((StatusCode::CREATED, Json(json!({ "message": "New nodes have been added", "total_nodes": all }))))
}

/// `GET /nodes/resolve`: asks every peer for what it has that we lack; a branch with more work
/// is published into the blocks topic (never written into our store directly) and the answer
/// comes once this node has read it back.
pub(super) async fn resolve_nodes(State(api): State<ApiState>) -> ApiResult {
    let node = &api.node;
    let resolution = node.resolve().await?;
    let peers: Vec<Value> =
        resolution.peers.iter().map(|(url, verdict)| json!({ "node": url, "outcome": verdict.to_string() })).collect();
    let (chain, length) = node.chain(0, MAX_CHAIN_PAGE, store_budget(api.max_chain_page_bytes)).await?;
    let chain = bounded_page(&chain, node.chain_tag(), api.max_chain_page_bytes);
    let message = if resolution.replaced { "Our chain was replaced" } else { "Our chain is authoritative" };
    Ok((
        StatusCode::OK,
        Json(json!({
            "message": message,
            "length": length,
            "published": resolution.published,
            "bootstrapped": resolution.bootstrapped,
            "peers": peers,
            "chain": chain,
        })),
    ))
}

#[derive(Deserialize)]
pub(super) struct FromHeight {
    from: Option<u64>,
}

/// `GET /metrics/blocks?from=`: recently applied blocks with produced and applied times, for
/// measuring propagation.
pub(super) async fn recent_blocks(
    State(node): State<Node>,
    query: Result<Query<FromHeight>, QueryRejection>,
) -> ApiResult {
    let Query(query) = query?;
    let blocks = node.recent_blocks(query.from.unwrap_or(0));
    Ok((StatusCode::OK, Json(json!({ "blocks": blocks }))))
}

/// `GET /status`: height, tip, offsets and counters.
pub(super) async fn status(State(node): State<Node>) -> ApiResult {
    let status = node.status()?;
    let body =
        serde_json::to_value(status).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((StatusCode::OK, Json(body)))
}

/// `GET /metrics`: the node's readings and the HTTP counters in the Prometheus text format.
pub(super) async fn metrics(
    State(api): State<ApiState>,
) -> Result<([(axum::http::header::HeaderName, &'static str); 1], String), ApiError> {
    let body = super::metrics::render(api.node.readings()?, &api.http_metrics)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("writing the metrics: {e}")))?;
    Ok(([(axum::http::header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)], body))
}

/// `GET /health/live`: the process answers.
pub(super) async fn live() -> ApiResult {
    Ok((StatusCode::OK, Json(json!({ "status": "live" }))))
}

/// `GET /health/ready`: 200 when caught up with the blocks topic, not halted and the brokers
/// answer; 503 with the reason otherwise (for load balancers and orchestrators).
pub(super) async fn ready(State(node): State<Node>) -> ApiResult {
    match node.readiness() {
        Ok(()) => Ok((StatusCode::OK, Json(json!({ "status": "ready" })))),
        Err(why) => {
            let mut answer = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}"));
            answer.rule = Some(why.label());
            Err(answer)
        }
    }
}

/// `GET /openapi.json`: the OpenAPI 3 description of this API.
pub(super) async fn openapi() -> ([(axum::http::header::HeaderName, &'static str); 1], &'static str) {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], include_str!("openapi.json"))
}

/// Unknown path.
pub(super) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

/// Known path, wrong method.
pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint")
}
