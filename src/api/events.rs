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
use tokio::sync::broadcast::error::RecvError;

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

/// The SSE frame of one event: its name, its id and its JSON (without the `type`, which the
/// name says).
fn frame(numbered: Numbered) -> Event {
    let mut data = serde_json::to_value(&numbered.event).unwrap_or_default();
    if let Some(object) = data.as_object_mut() {
        object.remove("type");
    }
    Event::default().event(numbered.event.name()).id(numbered.id).data(data.to_string())
}

/// The events first owed, then the live ones until the client lags or the node stops.
fn sse_stream(subscription: Subscription) -> impl Stream<Item = Result<Event, Infallible>> {
    let Subscription { first, live, epoch, counted } = subscription;
    let live = stream::unfold((live, counted), move |(mut live, counted)| async move {
        match live.recv().await {
            Ok((number, event)) => {
                let numbered = Numbered { id: format!("{epoch}-{number}"), event };
                Some((numbered, (live, counted)))
            }
            // Behind by more than the history: dropped; it reconnects with its last id.
            Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => None,
        }
    });
    stream::iter(first).chain(live).map(|numbered| Ok(frame(numbered)))
}
