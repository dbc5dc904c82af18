//! One handler per endpoint: parse and check the request, call the node, shape the answer.

use super::error::ApiError;
use super::ApiState;
use crate::core::block::Block;
use crate::json::BlockJson;
use crate::node::{NewTransfer, Node};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRef, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Most blocks one `GET /chain` page returns.
pub const MAX_CHAIN_PAGE: usize = 1_000;

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
fn bounded_page(blocks: &[Block], max_bytes: usize) -> Vec<Value> {
    let mut page = Vec::with_capacity(blocks.len());
    let mut bytes = 0;
    for block in blocks {
        let json = json!(BlockJson::from(block));
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
    let body = body?;
    serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

#[derive(Deserialize)]
struct NewTransaction {
    sender: String,
    recipient: String,
    amount: Value,
}

impl NewTransaction {
    fn into_transfer(self) -> Result<NewTransfer, ApiError> {
        let amount = parse_amount(&self.amount)?;
        Ok(NewTransfer { sender: self.sender, recipient: self.recipient, amount })
    }
}

#[derive(Deserialize)]
struct NewTransactions {
    transactions: Vec<NewTransaction>,
}

/// Most transactions in one `POST /transactions/batch`.
pub const MAX_BATCH: usize = 1_000;

/// Reads an amount: a JSON integer from 1 to 2^64-1.
fn parse_amount(value: &Value) -> Result<u64, ApiError> {
    match value {
        Value::Number(n) => match n.as_u64() {
            Some(0) => Err(ApiError::bad_request("amount must be at least 1")),
            Some(amount) => Ok(amount),
            None if n.as_i64().is_some() => Err(ApiError::bad_request("amount must not be negative")),
            None if n.is_f64() && n.as_f64().is_some_and(|f| f.fract() != 0.0) => {
                Err(ApiError::bad_request("amount must be a whole number of the smallest unit"))
            }
            None => Err(ApiError::bad_request("amount does not fit in 64 bits")),
        },
        _ => Err(ApiError::bad_request("amount must be a JSON number")),
    }
}

/// `POST /transactions/new`: answers 201 once Kafka acknowledged the transaction.
pub async fn new_transaction(State(node): State<Node>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let request: NewTransaction = parse_body(body)?;
    let (ids, height) = node.submit_transactions(vec![request.into_transfer()?]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "message": format!("Transaction will be added to Block {height}"),
            "transaction_id": ids[0].to_hex(),
        })),
    ))
}

/// `POST /transactions/batch` `{"transactions":[{sender,recipient,amount},...]}`: like
/// `/transactions/new` for up to [`MAX_BATCH`] transfers at once; all are checked before any is
/// published, and the answer comes once Kafka acknowledged every one.
pub async fn new_transactions(State(node): State<Node>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let request: NewTransactions = parse_body(body)?;
    if request.transactions.is_empty() || request.transactions.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!("transactions must hold 1 to {MAX_BATCH} entries")));
    }
    let transfers = request
        .transactions
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.into_transfer().map_err(|e| ApiError::bad_request(format!("transaction {i}: {}", e.message))))
        .collect::<Result<Vec<_>, _>>()?;
    let (ids, height) = node.submit_transactions(transfers).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "message": format!("{} transactions will be added to Block {height}", ids.len()),
            "transaction_ids": ids.iter().map(|id| id.to_hex()).collect::<Vec<_>>(),
        })),
    ))
}

/// `GET /mine`: mines one block and answers once it is applied.
pub async fn mine(State(node): State<Node>) -> ApiResult {
    let mined = node.mine().await?;
    let block = BlockJson::from(&mined.block);
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
pub struct ChainPage {
    from: Option<u64>,
    limit: Option<usize>,
}

/// `GET /chain?from=&limit=`: the main chain (a page of it, at most [`MAX_CHAIN_PAGE`] blocks
/// and `http.max_chain_page_bytes` of JSON) and its full length.
pub async fn chain(State(api): State<ApiState>, page: Result<Query<ChainPage>, QueryRejection>) -> ApiResult {
    let Query(page) = page?;
    let limit = page.limit.unwrap_or(MAX_CHAIN_PAGE).min(MAX_CHAIN_PAGE);
    let (blocks, length) =
        api.node.chain(page.from.unwrap_or(0), limit, store_budget(api.max_chain_page_bytes)).await?;
    let chain = bounded_page(&blocks, api.max_chain_page_bytes);
    Ok((StatusCode::OK, Json(json!({ "chain": chain, "length": length }))))
}

#[derive(Deserialize)]
struct RegisterNodes {
    nodes: Vec<String>,
}

/// `POST /nodes/register`: remembers peers (`http(s)://host:port`, or `host:port`).
pub async fn register_nodes(State(node): State<Node>, body: Result<Bytes, BytesRejection>) -> ApiResult {
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
pub async fn resolve_nodes(State(api): State<ApiState>) -> ApiResult {
    let node = &api.node;
    let resolution = node.resolve().await?;
    let peers: Vec<Value> =
        resolution.peers.iter().map(|(url, verdict)| json!({ "node": url, "outcome": verdict.to_string() })).collect();
    let (chain, length) = node.chain(0, MAX_CHAIN_PAGE, store_budget(api.max_chain_page_bytes)).await?;
    let chain = bounded_page(&chain, api.max_chain_page_bytes);
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
pub struct FromHeight {
    from: Option<u64>,
}

/// `GET /metrics/blocks?from=`: recently applied blocks with produced and applied times, for
/// measuring propagation.
pub async fn recent_blocks(State(node): State<Node>, query: Result<Query<FromHeight>, QueryRejection>) -> ApiResult {
    let Query(query) = query?;
    let blocks = node.recent_blocks(query.from.unwrap_or(0));
    Ok((StatusCode::OK, Json(json!({ "blocks": blocks }))))
}

/// `GET /status`: height, tip, offsets and counters.
pub async fn status(State(node): State<Node>) -> ApiResult {
    let status = node.status()?;
    let body = serde_json::to_value(status)
        .map_err(|e| ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: e.to_string() })?;
    Ok((StatusCode::OK, Json(body)))
}

/// `GET /health/live`: the process answers.
pub async fn live() -> ApiResult {
    Ok((StatusCode::OK, Json(json!({ "status": "live" }))))
}

/// `GET /health/ready`: 200 when caught up with the blocks topic, not halted and the brokers
/// answer; 503 with the reason otherwise (for load balancers and orchestrators).
pub async fn ready(State(node): State<Node>) -> ApiResult {
    match node.readiness() {
        Ok(()) => Ok((StatusCode::OK, Json(json!({ "status": "ready" })))),
        Err(why) => Err(ApiError { status: StatusCode::SERVICE_UNAVAILABLE, message: format!("not ready: {why}") }),
    }
}

/// `GET /openapi.json`: the OpenAPI 3 description of this API.
pub async fn openapi() -> ([(axum::http::header::HeaderName, &'static str); 1], &'static str) {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], include_str!("openapi.json"))
}

/// Unknown path.
pub async fn not_found() -> ApiError {
    ApiError { status: StatusCode::NOT_FOUND, message: "no such endpoint".into() }
}

/// Known path, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError { status: StatusCode::METHOD_NOT_ALLOWED, message: "method not allowed on this endpoint".into() }
}
