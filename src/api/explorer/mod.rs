//! The block explorer: a small page the node serves itself at `/`. Its three files (HTML, CSS and
//! plain JavaScript, beside this module) are embedded in the binary, so there is no build step and
//! nothing is fetched from elsewhere at run time; the script reads the node's own JSON API. Every
//! answer carries a strict Content-Security-Policy: scripts, styles and requests from this origin
//! only, no inline script, so text from the chain that reached the page could never run as code.

use axum::http::header::{self, HeaderName};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// What an explorer page may load and do: its own script, stylesheet and API calls, nothing
/// inline, nothing from another origin, no forms posted anywhere, no framing.
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Where the page's script is served (the page names it in its `<script src>`).
pub(super) const SCRIPT_PATH: &str = "/explorer/explorer.js";

/// Where the page's stylesheet is served (the page names it in its `<link href>`).
pub(super) const STYLESHEET_PATH: &str = "/explorer/explorer.css";

/// One embedded file and the media type it is served as.
struct Asset {
    content_type: &'static str,
    body: &'static str,
}

/// The page itself.
const INDEX: Asset = Asset { content_type: "text/html; charset=utf-8", body: include_str!("index.html") };
/// Its script.
const SCRIPT: Asset = Asset { content_type: "text/javascript; charset=utf-8", body: include_str!("explorer.js") };
/// Its stylesheet.
const STYLESHEET: Asset = Asset { content_type: "text/css; charset=utf-8", body: include_str!("explorer.css") };

impl Asset {
    /// The file with its media type, the policy, no content sniffing, no referrer sent to links
    /// the page holds, and revalidation on each load (a new binary serves new files at once).
    fn response(&self) -> Response {
        let headers: [(HeaderName, &'static str); 5] = [
            (header::CONTENT_TYPE, self.content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ];
        (headers, self.body).into_response()
    }
}

/// The explorer's routes: the page at `/`, its script and its stylesheet (GET and HEAD; other
/// methods get the API's JSON 405 from the router they are merged into).
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { INDEX.response() }))
        .route(SCRIPT_PATH, get(|| async { SCRIPT.response() }))
        .route(STYLESHEET_PATH, get(|| async { STYLESHEET.response() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_the_files_served_here() {
        assert!(INDEX.body.contains(&format!("<script src=\"{SCRIPT_PATH}\" defer></script>")));
        assert!(INDEX.body.contains(&format!("<link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\">")));
        assert_eq!(INDEX.body.matches("<script").count(), 1, "no inline script: the policy would refuse it");
        assert!(!INDEX.body.contains("style="), "no inline style: the policy would refuse it");
        assert!(!INDEX.body.contains("http://") && !INDEX.body.contains("https://"), "nothing from elsewhere");
    }

    #[test]
    fn the_script_never_writes_html_and_follows_the_events() {
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
            assert!(!SCRIPT.body.contains(sink), "the script uses {sink}");
        }
        assert!(SCRIPT.body.contains("new EventSource(\"/events\")"));
        assert!(SCRIPT.body.contains("setInterval(poll, POLL_MS)"), "it polls while the stream is down");
        assert!(SCRIPT.body.contains("get(\"/status\")"));
    }

    #[test]
    fn every_file_is_served_with_its_type_and_the_policy() {
        for (asset, media) in [(INDEX, "text/html"), (SCRIPT, "text/javascript"), (STYLESHEET, "text/css")] {
            let response = asset.response();
            let headers = response.headers();
            assert!(headers[header::CONTENT_TYPE].to_str().is_ok_and(|t| t.starts_with(media)));
            assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    }
}
