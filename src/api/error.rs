//! API errors: every failure answers with a status code and `{"error": "..."}`.

use crate::node::NodeError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An HTTP error answer.
#[derive(Debug)]
pub struct ApiError {
    /// Status code.
    pub status: StatusCode,
    /// What was wrong, for the client.
    pub message: String,
}

impl ApiError {
    /// A 400 answer naming what was wrong with the request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let status = match &e {
            NodeError::InvalidTransaction(_) | NodeError::InvalidPeer(_) | NodeError::TooManyPeers(_) => {
                StatusCode::BAD_REQUEST
            }
            NodeError::Publish(_) | NodeError::ShuttingDown | NodeError::Halted(_) | NodeError::MempoolFull { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            NodeError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            NodeError::Bootstrap(_) => StatusCode::CONFLICT,
            NodeError::Store(_) | NodeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self { status, message: e.to_string() }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        Self { status: rejection.status(), message: rejection.body_text() }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}
