//! The HTTP API: a thin adapter over [`Node`]. Same endpoints and JSON shapes as the Flask
//! original, plus `/status`, the explorer endpoints and `/metrics` (Prometheus). Every error is a JSON `{"error": ...}`; bodies over
//! [`MAX_BODY_BYTES`] are refused with 413, bodies that are not JSON with 415, and the endpoints
//! that change state or make the node work need the operator token ([`token`]). `GET /` serves
//! a block explorer page over the same API ([`explorer`]).

mod error;
mod events;
mod explorer;
mod guard;
mod handlers;
mod http_metrics;
mod metrics;
pub mod open_files;
mod server;
pub mod submit_rate;
pub mod token;

use crate::config::HttpConfig;
use crate::node::Node;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;
use guard::{BodyLimits, RequestLimits};
use http_metrics::HttpMetrics;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use token::OperatorToken;

pub use error::ApiError;
pub use server::serve;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest body of `POST /transactions/batch`.
pub const MAX_BATCH_BODY_BYTES: usize = 1024 * 1024;

/// What the handlers share: the node, the `/chain` page bound, the per-client bound on
/// submitted transfers and the HTTP metrics.
#[derive(Clone)]
pub struct ApiState {
    /// The node the API adapts.
    pub node: Node,
    /// Largest `/chain` page in bytes of JSON.
    pub max_chain_page_bytes: usize,
    /// Transfers each client address may submit per second.
    submit_rate: Arc<submit_rate::SubmitRate>,
    /// Requests counted by route and status, for `/metrics`.
    http_metrics: Arc<HttpMetrics>,
}

/// The API's routes over `node`, guarded by `token` and bounded by `http`.
pub fn router(node: Node, token: OperatorToken, http: &HttpConfig) -> Router {
    let http_metrics = Arc::new(HttpMetrics::default());
    let submit_rate = Arc::new(submit_rate::SubmitRate::new(
        NonZeroU32::new(http.submit_per_sec).unwrap_or(NonZeroU32::MIN),
        NonZeroU32::new(http.submit_burst).unwrap_or(NonZeroU32::MIN),
    ));
    let state = ApiState {
        node,
        max_chain_page_bytes: http.max_chain_page_bytes,
        submit_rate,
        http_metrics: http_metrics.clone(),
    };
    let operator = Router::new()
        .route("/mine", get(handlers::mine))
        .route("/nodes/register", post(handlers::register_nodes).layer(from_fn(guard::require_json)))
        .route("/nodes/resolve", get(handlers::resolve_nodes))
        .route_layer(from_fn_with_state(token, guard::require_token));
    let events = Router::new().route("/events", get(events::events)).with_state(events::EventsState {
        node: state.node.clone(),
        heartbeat: Duration::from_millis(http.events_heartbeat_ms),
    });
    let bodies = BodyLimits { timeout: Duration::from_millis(http.body_timeout_ms), max_bytes: MAX_BATCH_BODY_BYTES };
    let limits = RequestLimits {
        in_flight: Arc::new(tokio::sync::Semaphore::new(http.max_in_flight)),
        timeout: Duration::from_millis(http.request_timeout_ms),
    };
    Router::new()
        // JSON bodies are asked of the methods that take one, so a method a path does not
        // serve is answered 405 (with `Allow`) whatever its content type.
        .route("/transactions/new", post(handlers::new_transaction).layer(from_fn(guard::require_json)))
        .route(
            "/transactions/batch",
            post(handlers::new_transactions)
                .layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES))
                .layer(from_fn(guard::require_json)),
        )
        .route("/accounts/{address}", get(handlers::account))
        .route("/transactions/{id}", get(handlers::transaction))
        .route("/chain", get(handlers::chain))
        .route("/blocks", get(handlers::headers))
        .route("/blocks/{hash}", get(handlers::block_by_hash))
        .route("/blocks/height/{height}", get(handlers::block_at_height))
        .route("/mempool", get(handlers::mempool))
        .route("/status", get(handlers::status))
        .route("/health/live", get(handlers::live))
        .route("/health/ready", get(handlers::ready))
        .route("/metrics", get(handlers::metrics))
        .route("/metrics/blocks", get(handlers::recent_blocks))
        .route("/openapi.json", get(handlers::openapi))
        .merge(operator)
        .merge(events)
        .merge(explorer::routes())
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn_with_state(limits, guard::bound_request))
        .layer(from_fn_with_state(bodies, guard::read_body_first))
        .layer(from_fn_with_state(http_metrics, http_metrics::record))
        .with_state(state)
}
