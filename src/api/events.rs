//! `GET /events`: the node's chain as Server-Sent Events. Each event carries its id, so a client
//! that reconnects with `Last-Event-ID` gets what it missed (or a `reset` when the history no
//! longer holds it); a quiet stream gets a comment every `http.events_heartbeat_ms`; a client
//! that falls further behind than the history is dropped, and reconnects.

use super::error::ApiError;
use crate::node::{Node, Numbered, Subscription};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use std::convert::Infallible;
use std::time::Duration;

/// What the events route shares: the node and the heartbeat interval.
#[derive(Clone)]
pub(super) struct EventsState {
    pub(super) node: Node,
    pub(super) heartbeat: Duration,
}

/// `GET /events`.
pub(super) async fn events(State(state): State<EventsState>, headers: HeaderMap) -> Response {
    let last_event_id = headers.get("last-event-id").and_then(|value| value.to_str().ok());
    match state.node.subscribe_events(last_event_id) {
        Ok(subscription) => Sse::new(sse_stream(subscription))
            .keep_alive(KeepAlive::new().interval(state.heartbeat).text("heartbeat"))
            .into_response(),
        Err(full) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, full.to_string()).into_response(),
    }
}

/// The SSE frame of one event.
fn frame(numbered: Numbered) -> Event {
    Event::default().event(numbered.name).id(numbered.id).data(&*numbered.data)
}

/// The events first owed, then the history's from the client's place on, until it falls
/// behind the history or the node stops.
fn sse_stream(mut subscription: Subscription) -> impl Stream<Item = Result<Event, Infallible>> {
    let first = std::mem::take(&mut subscription.first);
    let rest = stream::unfold(subscription, |mut subscription| async move {
        subscription.next().await.map(|numbered| (numbered, subscription))
    });
    stream::iter(first).chain(rest).map(|numbered| Ok(frame(numbered)))
}
