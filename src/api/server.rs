//! The accept loop. axum's own `serve` runs hyper without a header timeout, so a client that
//! opens connections and never finishes its headers (slowloris) holds them forever; this loop
//! serves each connection with hyper's HTTP/1 builder and a timer, so unfinished headers close
//! the connection after `http.header_timeout_ms`, bounds open connections by a semaphore, and
//! closes a connection whose answer stays unread for `http.write_timeout_ms` (hyper has no write
//! timeout: a client that stops reading would hold its connection and answer forever).

use crate::config::HttpConfig;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long open requests may run on after shutdown starts before their connections are dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause after a failed accept (out of file descriptors, ...), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets open requests finish
/// (up to [`DRAIN_TIMEOUT`]).
pub async fn serve(listener: TcpListener, router: Router, http: &HttpConfig, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(http.max_connections));
    let connections = TaskTracker::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(Duration::from_millis(http.header_timeout_ms));
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accepting an HTTP connection: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let (stream, client) = stream;
        let stream = WriteDeadline::new(stream, Duration::from_millis(http.write_timeout_ms));
        // Each request carries the address it came from, as axum's own serve does.
        let service = router.clone().map_request(move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(client));
            request
        });
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _slot = slot;
            tokio::pin!(connection);
            tokio::select! {
                // A client that goes away or times out its headers ends here; nothing to report.
                _ = connection.as_mut() => {}
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    connections.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, connections.wait()).await.is_err() {
        tracing::warn!("open HTTP requests did not finish within {DRAIN_TIMEOUT:?} of shutdown; dropping them");
    }
}

/// A stream whose writes fail once they have been stuck (the peer not reading) for `limit`.
struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    stuck_since: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Self { inner, limit, stuck_since: None }
    }

    /// Called when a write is pending: an error once it has been pending for `limit`.
    fn poll_stuck(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        let limit = self.limit;
        let timer = self.stuck_since.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client has not read its answer within http.write_timeout_ms",
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Passes a write's result on, keeping the stuck timer only while it is pending.
    fn track<T>(&mut self, cx: &mut Context<'_>, result: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        match result {
            Poll::Pending => self.poll_stuck(cx).map(Err),
            ready => {
                self.stuck_since = None;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track(cx, result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.track(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
