//! Request guards, as axum middleware: the operator token on endpoints that change state or
//! make the node work, JSON-only bodies (a browser page cannot then post to the node with a
//! simple form or `text/plain` request), a bound on requests in flight and on each request's
//! time. Every refusal is a JSON `{"error"}` like the handlers' own.

use super::error::ApiError;
use super::token::OperatorToken;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Refuses a request without `Authorization: Bearer <operator token>` with 401.
pub(super) async fn require_token(State(token): State<OperatorToken>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(presented) if token.matches(presented.trim()) => next.run(request).await,
        _ => {
            let error = ApiError::new(StatusCode::UNAUTHORIZED, "this endpoint needs the operator token: Authorization: Bearer <the token in {data_dir}/.cookie or http.token_file>");
            let mut response = error.into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// Refuses a request that carries a body (POST) unless its `Content-Type` is JSON, with 415.
pub(super) async fn require_json(request: Request, next: Next) -> Response {
    if request.method() == Method::POST {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "request bodies must be sent with Content-Type: application/json",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// How long a body may take to arrive, and its largest size on any route.
#[derive(Clone, Debug)]
pub(super) struct BodyLimits {
    /// Longest time to receive the whole body.
    pub timeout: Duration,
    /// Largest body any route takes (routes refuse smaller ones themselves).
    pub max_bytes: usize,
}

/// Reads a POST body in full, within `http.body_timeout_ms` (408) and the largest body any
/// route takes (413), before the request takes one of the in-flight permits: a client sending
/// its body a byte at a time holds a connection for at most that long, and no permit.
pub(super) async fn read_body_first(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(limits.timeout, axum::body::to_bytes(body, limits.max_bytes)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Ok(Err(_)) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is unreadable or longer than {} bytes (length limit exceeded)", limits.max_bytes),
        )
        .into_response(),
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body did not arrive within {:?} (http.body_timeout_ms)", limits.timeout),
        )
        .into_response(),
    }
}

/// The bounds every request runs under.
#[derive(Clone, Debug)]
pub(super) struct RequestLimits {
    /// Permits for requests in flight.
    pub in_flight: Arc<Semaphore>,
    /// Longest time from a request's headers to its answer.
    pub timeout: Duration,
}

/// Answers 503 at once when `http.max_in_flight` requests are already being handled, and 503
/// when one takes longer than `http.request_timeout_ms` (the handler is then dropped).
pub(super) async fn bound_request(State(limits): State<RequestLimits>, request: Request, next: Next) -> Response {
    let Ok(_permit) = limits.in_flight.clone().try_acquire_owned() else {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too many requests in flight; try again")
            .into_response();
    };
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the request took longer than {:?} (http.request_timeout_ms)", limits.timeout),
        )
        .into_response(),
    }
}
