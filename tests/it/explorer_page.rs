//! The explorer page in a real browser. Headless Chromium, driven through its DevTools protocol
//! in real time ([`Browser`]), loads `/` from a node on a real broker. The page must show the tip
//! `/status` gives and the block list and mempool around it; it must follow the node through
//! `GET /events` without polling, so that a block mined while it is open appears by itself; when
//! the node refuses the stream it must fall back to polling `/status`; a page further back must
//! link to either side; the search box must find a height, a block hash, a transaction id and an
//! address. `scripts/test` installs Chromium when it is missing; without it this test fails and
//! says how to install it.

use crate::common::browser::{chromium, Browser, Seen};
use crate::common::{wait_for, NodeProc, TestNet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How often the page polls `/status` when it cannot follow `/events` (`POLL_MS` in the script).
const POLL: Duration = Duration::from_millis(2_500);

/// Time allowed for a page to load and render, on a loaded machine.
const LOAD: Duration = Duration::from_secs(30);

/// The text of the element with `id` in a DOM, up to its first child tag.
fn text_of(dom: &str, id: &str) -> String {
    let at = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in the page:\n{dom}"));
    let open = at + dom[at..].find('>').unwrap() + 1;
    dom[open..].split('<').next().unwrap().to_owned()
}

/// `(height, tip)` from `/status`.
fn tip(node: &NodeProc) -> (String, String) {
    let status = node.status();
    (status["height"].to_string(), status["tip"].as_str().unwrap().to_owned())
}

/// Opens `url` and waits until the page shows the view `view`, its status read while it follows
/// the node the way `live` says (`events` or `polling`); returns the DOM.
fn show(browser: &mut Browser, url: &str, view: &str, live: &str) -> String {
    browser.open(url);
    let shown =
        format!("document.getElementById('view').dataset.view === '{view}' && document.body.dataset.live === '{live}'");
    browser.wait_until(&format!("the {view} view, {live}"), LOAD, &shown);
    browser.dom()
}

/// The order numbers of the page's requests for `path` from the order number `from` on.
fn requests_for(seen: &[Seen], path: &str, from: usize) -> Vec<usize> {
    let asked = |s: &Seen| match s {
        Seen::Request { order, path: asked, .. } if *order >= from && asked == path => Some(*order),
        _ => None,
    };
    seen.iter().filter_map(asked).collect()
}

/// The order number of the first `tip` event announcing `hash` the page received.
fn tip_event(seen: &[Seen], hash: &str) -> Option<usize> {
    seen.iter().find_map(|s| match s {
        Seen::Event { order, name, data } if name == "tip" && data.contains(hash) => Some(*order),
        _ => None,
    })
}

/// Whether the page shows `hash` as its tip and lists the block at `height`.
fn shows_block(height: &str, hash: &str) -> String {
    format!(
        "document.getElementById('tip-hash').textContent === '{hash}' \
         && document.querySelector('tr[data-height=\"{height}\"][data-hash=\"{hash}\"]') !== null"
    )
}

#[test]
fn the_explorer_shows_the_chain_and_follows_it() {
    chromium(); // a missing browser fails the test at once, saying how to install it
    let net = TestNet::start("explorer-page", 1);
    let node = &net.nodes[0];
    node.mine();
    let pending = node.submit("alice", "bob", 7);
    wait_for("the transfer in the mempool", Duration::from_secs(10), || (node.status()["mempool"] == 1).then_some(()));

    // The files, as the browser gets them and as the OpenAPI description lists them.
    let http = reqwest::blocking::Client::new();
    let (_, description) = node.get("/openapi.json");
    for (path, media) in
        [("/", "text/html"), ("/explorer/explorer.js", "text/javascript"), ("/explorer/explorer.css", "text/css")]
    {
        let described = &description["paths"][path]["get"]["responses"]["200"]["content"][media];
        assert!(described.is_object(), "GET {path} is described as {media}");
        let answer = http.get(format!("{}{path}", node.url)).send().unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let header = |name: &str| answer.headers()[name].to_str().unwrap().to_owned();
        assert!(header("content-type").starts_with(media), "{path}: {}", header("content-type"));
        let policy = header("content-security-policy");
        assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
        assert_eq!(header("x-content-type-options"), "nosniff");
    }
    let script = http.get(format!("{}/explorer/explorer.js", node.url)).send().unwrap().text().unwrap();
    assert!(script.contains("new EventSource(\"/events\")"), "the page follows /events");

    // The page shows the tip /status gives, the block list up to it and the pending transfer.
    let (height, hash) = tip(node);
    assert_eq!(height, "1");
    let mut browser = Browser::start();
    let dom = show(&mut browser, &format!("{}/", node.url), "home", "events");
    assert_eq!(text_of(&dom, "tip-height"), height, "{dom}");
    assert_eq!(text_of(&dom, "tip-hash"), hash);
    assert_eq!(text_of(&dom, "mempool-size"), "1");
    assert_eq!(text_of(&dom, "kafka"), "reachable");
    assert!(dom.contains(&format!("<tr data-height=\"1\" data-hash=\"{hash}\">")), "the tip is listed: {dom}");
    assert!(dom.contains("<tr data-height=\"0\""), "and genesis");
    assert!(dom.contains(&format!(">{pending}</a>")), "the pending transfer is listed: {dom}");

    // It follows one stream of /events and does not poll: two poll intervals go by with at most
    // one read of /status (the one the stream's first `tip` event asks for, when it came just
    // after the page showed the first read), where polling would have made two.
    let loaded = browser.seen().len();
    std::thread::sleep(POLL * 5 / 2);
    let seen = browser.seen();
    assert!(requests_for(&seen, "/status", loaded).len() <= 1, "the page polled /status: {seen:?}");
    let streams: Vec<&Seen> =
        seen.iter().filter(|s| matches!(s, Seen::Request { path, .. } if path == "/events")).collect();
    assert!(
        matches!(streams[..], [Seen::Request { kind, .. }] if kind == "EventSource"),
        "one EventSource on /events: {seen:?}"
    );

    // A block mined while the page is open appears by itself: the tip from the `tip` event, then
    // the status and the list, read because of that event.
    let before = browser.seen().len();
    let mined = Instant::now();
    node.mine();
    let (height, hash) = tip(node);
    assert_eq!(height, "2");
    browser.wait_until(
        "the mined tip on the page",
        LOAD,
        &format!("document.getElementById('tip-hash').textContent === '{hash}'"),
    );
    let appeared = mined.elapsed();
    browser.wait_until("the mined block listed", LOAD, &shows_block(&height, &hash));
    eprintln!("the block mined appeared on the page {} ms after /mine answered", appeared.as_millis());
    let dom = browser.dom();
    assert_eq!(text_of(&dom, "tip-height"), height, "{dom}");
    assert_eq!(text_of(&dom, "mempool-size"), "0", "the status was read again: {dom}");
    let seen = browser.seen();
    let announced = tip_event(&seen, &hash).unwrap_or_else(|| panic!("no tip event for {hash}: {seen:?}"));
    let reads = requests_for(&seen, "/status", before);
    assert!(!reads.is_empty() && reads.iter().all(|r| *r > announced), "/status read after the event only: {seen:?}");
    assert!(!requests_for(&seen, "/blocks?limit=20", announced).is_empty(), "the list redrawn: {seen:?}");

    // A page of the list further back, with links to either side.
    let dom = show(&mut browser, &format!("{}/#/blocks?from=1&limit=1", node.url), "blocks", "events");
    assert_eq!(dom.matches("<tr data-height=").count(), 1, "{dom}");
    assert!(dom.contains("<tr data-height=\"1\""), "{dom}");
    assert!(dom.contains("id=\"newer\" href=\"#/blocks?from=2\""), "{dom}");
    assert!(dom.contains("id=\"older\" href=\"#/blocks?from=0&amp;limit=1\""), "{dom}");

    // The search box: a height, a block hash (any case), a transaction id, an address.
    let mut search =
        |text: &str, view: &str| show(&mut browser, &format!("{}/#/search/{text}", node.url), view, "events");
    let dom = search("2", "block");
    assert!(dom.contains("data-view=\"block\""), "{dom}");
    assert_eq!(text_of(&dom, "block-hash"), hash);
    let dom = search(&hash.to_uppercase(), "block");
    assert_eq!(text_of(&dom, "block-hash"), hash);
    let dom = search(&pending, "tx");
    assert!(dom.contains("data-view=\"tx\""), "{dom}");
    assert_eq!(text_of(&dom, "tx-status"), "confirmed");
    let (_, found) = node.get(&format!("/transactions/{pending}"));
    let bob = found["transaction"]["recipient"].as_str().unwrap().to_owned();
    let dom = search(&bob, "account");
    assert!(dom.contains("data-view=\"account\""), "{dom}");
    let balance = node.get(&format!("/accounts/{bob}")).1["balance"].to_string();
    assert_eq!(text_of(&dom, "account-balance").replace(',', ""), balance, "{dom}");
    let dom = search("not-a-key", "error");
    assert!(dom.contains("data-view=\"error\""), "{dom}");
    assert!(text_of(&dom, "error").contains("Search for a block hash"), "{dom}");
}

/// Holds one `GET /events` stream open on `node` until dropped (the test's own subscriber).
fn hold_events_stream(node: &NodeProc) -> TcpStream {
    let address = node.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    write!(stream, "GET /events HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream
}

#[test]
fn the_explorer_polls_when_the_node_refuses_its_event_stream() {
    chromium();
    let net = TestNet::start_with("explorer-polling", 1, |spec| spec.http.max_event_subscribers = 1);
    let node = &net.nodes[0];
    let _taken = hold_events_stream(node);

    // Refused with 503 (the one subscriber allowed is taken), the page polls /status instead.
    let mut browser = Browser::start();
    let dom = show(&mut browser, &format!("{}/", node.url), "home", "polling");
    assert_eq!(text_of(&dom, "tip-height"), "0", "{dom}");
    assert!(text_of(&dom, "live").starts_with("Polling the node"), "{dom}");
    let loaded = browser.seen().len();

    // A block mined meanwhile appears through those polls, with no event received.
    node.mine();
    let (height, hash) = tip(node);
    browser.wait_until("the mined block through polling", LOAD, &shows_block(&height, &hash));
    let seen = browser.seen();
    assert!(!requests_for(&seen, "/status", loaded).is_empty(), "{seen:?}");
    assert!(!seen.iter().any(|s| matches!(s, Seen::Event { .. })), "no event got through: {seen:?}");
    wait_for("a further poll", POLL * 4, || {
        (requests_for(&browser.seen(), "/status", loaded).len() >= 2).then_some(())
    });
}
