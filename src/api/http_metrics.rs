//! Counts HTTP requests for `GET /metrics`, as axum middleware: by route, method and status, with
//! a latency histogram by route and method. The route is the matched path template
//! (`/blocks/{hash}`, never the path sent) and the method one of a fixed few, so the series stay
//! bounded whatever clients send.

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

/// The route label of a request no route matched (a 404 from the fallback).
pub(super) const UNMATCHED_ROUTE: &str = "unmatched";

/// Upper bounds, in seconds, of the request latency buckets: reads answer in well under a
/// millisecond, `/mine` and `/nodes/resolve` take seconds.
const LATENCY_BUCKETS: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

/// A latency histogram with [`LATENCY_BUCKETS`].
fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The HTTP request metrics, shared by the middleware and the `/metrics` handler.
#[derive(Debug)]
pub(super) struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self { requests: Family::default(), latency: Family::new_with_constructor(latency_histogram) }
    }
}

impl HttpMetrics {
    /// Adds these metrics to `registry` (handles on the same counts, not copies).
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "kafkachain_http_requests",
            "HTTP requests answered, by route template, method and status code",
            self.requests.clone(),
        );
        registry.register(
            "kafkachain_http_request_duration_seconds",
            "Time from a request's headers to its answer, by route template and method",
            self.latency.clone(),
        );
    }

    fn observe(&self, route: String, method: &'static str, status: u16, seconds: f64) {
        self.latency.get_or_create(&RouteLabels { route: route.clone(), method }).observe(seconds);
        self.requests.get_or_create(&RequestLabels { route, method, status }).inc();
    }
}

/// The method label: the methods the API answers, or `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts the request and times its answer. Placed outside the other guards, so their refusals
/// (401, 408, 413, 415, 503) are counted too.
pub(super) async fn record(State(metrics): State<Arc<HttpMetrics>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE, MatchedPath::as_str).to_owned();
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(route, method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    fn encoded(metrics: &HttpMetrics) -> String {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        text
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_template_method_and_status() {
        let metrics = Arc::new(HttpMetrics::default());
        let router = Router::new()
            .route("/blocks/{hash}", get(|| async { StatusCode::BAD_REQUEST }))
            .fallback(|| async { StatusCode::NOT_FOUND })
            .layer(axum::middleware::from_fn_with_state(metrics.clone(), record));
        for (method, path) in [("GET", "/blocks/xyz"), ("GET", "/blocks/abc"), ("BREW", "/nowhere/42")] {
            let request = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
            router.clone().oneshot(request).await.unwrap();
        }
        let text = encoded(&metrics);
        assert!(
            text.contains(r#"kafkachain_http_requests_total{route="/blocks/{hash}",method="GET",status="400"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"kafkachain_http_requests_total{route="unmatched",method="other",status="404"} 1"#));
        assert!(
            text.contains(r#"kafkachain_http_request_duration_seconds_count{route="/blocks/{hash}",method="GET"} 2"#)
        );
        assert!(!text.contains("xyz") && !text.contains("nowhere"), "no raw path in a label: {text}");
    }
}
