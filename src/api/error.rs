//! API errors: every failure answers with a status code and `{"error": "..."}`; a transfer
//! refused by a named rule adds `"rule"` (the label `/status` counts it by), and `"min_fee"`
//! when a higher fee would get it in.

use crate::core::admission::Refusal;
use crate::node::{NodeError, NotReady};
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
    /// The rule a refused transfer broke, or why a halted node refuses, when there is one.
    pub rule: Option<&'static str>,
    /// The least fee that would get the transfer in now, when paying more is the way in (a
    /// full mempool, a nonce a pending transfer holds).
    pub min_fee: Option<u64>,
}

impl ApiError {
    /// An answer with this status that names no rule.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), rule: None, min_fee: None }
    }

    /// A 400 answer naming what was wrong with the request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// A 404 answer naming what was not found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

/// Why a submission was not taken: an [`ApiError`], or the client is over its allowance of
/// transfers (429 with `Retry-After`, in whole seconds, at least 1).
#[derive(Debug)]
pub(super) enum SubmitError {
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
                    min_fee: None,
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
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(rule) = self.rule {
            body["rule"] = rule.into();
        }
        if let Some(fee) = self.min_fee {
            body["min_fee"] = fee.into();
        }
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
        | Refusal::NonceTaken { .. }
        | Refusal::InsufficientFunds { .. }
        | Refusal::AlreadyPooled => StatusCode::CONFLICT,
        Refusal::MempoolFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let status = match &e {
            NodeError::Refused { refusal, .. } => refusal_status(refusal),
            NodeError::InvalidPeer(_) | NodeError::TooManyPeers(_) => StatusCode::BAD_REQUEST,
            NodeError::Publish(_) | NodeError::ShuttingDown | NodeError::Halted(_) | NodeError::Bootstrapping => {
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
            NodeError::Halted(why) => Some(why.label()),
            NodeError::Bootstrapping => Some(NotReady::Bootstrapping.label()),
            _ => None,
        };
        let min_fee = match &e {
            NodeError::Refused {
                refusal: Refusal::MempoolFull { min_fee } | Refusal::NonceTaken { min_fee, .. },
                ..
            } => *min_fee,
            _ => None,
        };
        Self { status, message: e.to_string(), rule, min_fee }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}
