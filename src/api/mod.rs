//! The HTTP API: a thin adapter over [`Node`]. Same endpoints and JSON shapes as the Flask
//! original, plus `/status`. Every error is a JSON `{"error": ...}`; bodies over
//! [`MAX_BODY_BYTES`] are refused with 413.

mod error;
mod handlers;

use crate::node::Node;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use tokio::net::TcpListener;

pub use error::ApiError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest body of `POST /transactions/batch`.
pub const MAX_BATCH_BODY_BYTES: usize = 1024 * 1024;

/// The API's routes over `node`.
pub fn router(node: Node) -> Router {
    Router::new()
        .route("/transactions/new", post(handlers::new_transaction))
        .route(
            "/transactions/batch",
            post(handlers::new_transactions).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)),
        )
        .route("/mine", get(handlers::mine))
        .route("/chain", get(handlers::chain))
        .route("/nodes/register", post(handlers::register_nodes))
        .route("/nodes/resolve", get(handlers::resolve_nodes))
        .route("/status", get(handlers::status))
        .route("/metrics/blocks", get(handlers::recent_blocks))
        .route("/openapi.json", get(handlers::openapi))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(node)
}

/// Serves the API on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(listener: TcpListener, node: Node, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, router(node)).with_graceful_shutdown(shutdown).await
}
