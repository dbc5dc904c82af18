//! API errors: every failure answers with a status code and `{"error": "..."}`; a transfer
//! refused by a named rule adds `"rule"` (the label `/status` counts it by).

use crate::core::admission::Refusal;
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
    /// The rule a refused transfer broke, when there is one.
    pub rule: Option<&'static str>,
}

impl ApiError {
    /// A 400 answer naming what was wrong with the request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into(), rule: None }
    }

    /// A 404 answer naming what was not found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, message: message.into(), rule: None }
    }
}

/// Why a submission was not taken: an [`ApiError`], or the client is over its allowance of
/// transfers (429 with `Retry-After`, in whole seconds, at least 1).
#[derive(Debug)]
pub enum SubmitError {
    /// Refused as any other request.
    Api(ApiError),
    /// The client's allowance has room again after this long.
    TooFast(std::time::Duration),
}

impl From<ApiError> for SubmitError {
    fn from(error: ApiError) -> Self {
        SubmitError::Api(error)
    }
}

impl IntoResponse for SubmitError {
    fn into_response(self) -> Response {
        match self {
            SubmitError::Api(error) => error.into_response(),
            SubmitError::TooFast(wait) => {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let error = ApiError {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    message: format!(
                        "this address submits more transfers than http.submit_per_sec allows; retry in {seconds} s"
                    ),
                    rule: Some("rate_limited"),
                };
                let mut response = error.into_response();
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.max(1).into());
                response
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.rule {
            Some(rule) => serde_json::json!({ "error": self.message, "rule": rule }),
            None => serde_json::json!({ "error": self.message }),
        };
        (self.status, Json(body)).into_response()
    }
}

/// The status of a refused transfer: 400 for a transfer that can never be valid as sent, 409
/// for one that conflicts with the chain's or the mempool's state, 503 for a full mempool.
fn refusal_status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::Malformed(_) | Refusal::BadSignature => StatusCode::BAD_REQUEST,
        Refusal::NonceUsed { .. }
        | Refusal::NonceTooFar { .. }
        | Refusal::NonceTaken(_)
        | Refusal::InsufficientFunds { .. }
        | Refusal::AlreadyPooled => StatusCode::CONFLICT,
        Refusal::MempoolFull => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let status = match &e {
            NodeError::Refused { refusal, .. } => refusal_status(refusal),
            NodeError::InvalidPeer(_) | NodeError::TooManyPeers(_) => StatusCode::BAD_REQUEST,
            NodeError::Publish(_) | NodeError::ShuttingDown | NodeError::Halted(_) | NodeError::MempoolFull { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            NodeError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            NodeError::Bootstrap(_) => StatusCode::CONFLICT,
            NodeError::Store(_)
            | NodeError::TaskFailed { .. }
            | NodeError::NotReadBack { .. }
            | NodeError::Candidate(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let rule = match &e {
            NodeError::Refused { refusal, .. } => Some(refusal.reason()),
            _ => None,
        };
        Self { status, message: e.to_string(), rule }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        Self { status: rejection.status(), message: rejection.body_text(), rule: None }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}
