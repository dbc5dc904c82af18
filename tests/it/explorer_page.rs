//! The explorer page in a real browser. Headless Chromium, run as a subprocess, loads `/` from a
//! node on a real broker and dumps the DOM once the page's script has fetched and rendered
//! (`--virtual-time-budget`: virtual time stands still while a fetch is pending). The page must
//! show the tip `/status` gives and the block list and mempool around it; a block mined while the
//! page is open must appear without a reload; a page further back must link to either side; the
//! search box must find a height, a block hash, a transaction id and an address. `scripts/test` installs Chromium when it is missing; without it
//! this test fails and says how to install it.

use crate::common::{wait_for, NodeProc, TestNet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Virtual time each page gets: two status polls (every 2.5 s) and the renders they cause.
const BUDGET_MS: u64 = 5_000;

/// The `chromium` on PATH.
fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join("chromium")).find(|exe| exe.is_file()).unwrap_or_else(|| {
        panic!("chromium is not installed: `apt-get update && apt-get install -y chromium` (scripts/test installs it)")
    })
}

/// The DOM of `url` after its script ran for [`BUDGET_MS`] of virtual time, in a fresh profile.
fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={BUDGET_MS}"))
        .args(["--dump-dom", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start chromium: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        stdout.read_to_string(&mut dom).map(|_| dom)
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("chromium did not finish loading {url} within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let dom = reader.join().unwrap().unwrap();
    assert!(dom.contains("</html>"), "chromium dumped no page for {url}: {dom:?}");
    dom
}

/// The text of the element with `id` in a dumped DOM, up to its first child tag.
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

/// Serves one request from `client` by asking the node at `upstream` (one request per
/// connection), after `before` saw its path.
fn forward(mut client: TcpStream, upstream: &str, http: &reqwest::blocking::Client, before: impl Fn(&str)) {
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) if head.len() < 16 * 1024 => head.push(byte[0]),
            _ => return, // a connection opened ahead and never used, or closed
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    before(&path);
    let answer = http.get(format!("{upstream}{path}")).send().unwrap();
    let mut reply = format!("HTTP/1.1 {}\r\n", answer.status());
    for (name, value) in answer.headers() {
        if !matches!(name.as_str(), "connection" | "content-length" | "transfer-encoding") {
            reply.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
        }
    }
    let body = answer.bytes().unwrap();
    reply.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    // The browser may have given up on the connection; the test checks what it rendered.
    let _ = client.write_all(reply.as_bytes()).and_then(|()| client.write_all(&body));
}

/// Loads the page through a proxy that mines a block just before it forwards the page's second
/// `/status` poll: the page has then rendered the old tip and must show the new one by itself.
/// Returns the dumped DOM and the paths the page asked for, in order.
fn dom_with_a_block_mined_meanwhile(node: &NodeProc) -> (String, Vec<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let http = reqwest::blocking::Client::new();
    let paths = Mutex::new(Vec::new());
    let polls = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let before = |path: &str| {
        paths.lock().unwrap().push(path.to_owned());
        if path == "/status" && polls.fetch_add(1, Ordering::SeqCst) == 1 {
            node.mine();
        }
    };
    let (listener, done, http, before) = (&listener, &done, &http, &before);
    let dom = std::thread::scope(|scope| {
        scope.spawn(move || {
            for client in listener.incoming() {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(client) = client {
                    scope.spawn(move || forward(client, &node.url, http, before));
                }
            }
        });
        let dom = dump_dom(&format!("http://127.0.0.1:{port}/"));
        done.store(true, Ordering::SeqCst);
        TcpStream::connect(("127.0.0.1", port)).unwrap(); // wakes the accept loop up to stop
        dom
    });
    (dom, paths.into_inner().unwrap())
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
    assert!(script.contains("setInterval(poll, POLL_MS)"), "the page polls /status by itself");

    // The page shows the tip /status gives, the block list up to it and the pending transfer.
    let (height, hash) = tip(node);
    assert_eq!(height, "1");
    let dom = dump_dom(&format!("{}/", node.url));
    assert_eq!(text_of(&dom, "tip-height"), height, "{dom}");
    assert_eq!(text_of(&dom, "tip-hash"), hash);
    assert_eq!(text_of(&dom, "mempool-size"), "1");
    assert_eq!(text_of(&dom, "kafka"), "reachable");
    assert!(dom.contains("data-view=\"home\""), "{dom}");
    assert!(dom.contains(&format!("<tr data-height=\"1\" data-hash=\"{hash}\">")), "the tip is listed: {dom}");
    assert!(dom.contains("<tr data-height=\"0\""), "and genesis");
    assert!(dom.contains(&format!(">{pending}</a>")), "the pending transfer is listed: {dom}");

    // A block mined while the page is open: shown without a reload, the list redrawn.
    let (dom, paths) = dom_with_a_block_mined_meanwhile(node);
    let (height, hash) = tip(node);
    assert_eq!(height, "2");
    assert_eq!(text_of(&dom, "tip-height"), height, "the page followed the tip: {dom}");
    assert_eq!(text_of(&dom, "tip-hash"), hash);
    assert_eq!(text_of(&dom, "mempool-size"), "0");
    assert!(dom.contains(&format!("<tr data-height=\"2\" data-hash=\"{hash}\">")), "the list was redrawn: {dom}");
    let lists = paths.iter().filter(|p| p.starts_with("/blocks?")).count();
    assert!(lists >= 2, "the page asked for the block list again by itself: {paths:?}");

    // A page of the list further back, with links to either side.
    let dom = dump_dom(&format!("{}/#/blocks?from=1&limit=1", node.url));
    assert_eq!(dom.matches("<tr data-height=").count(), 1, "{dom}");
    assert!(dom.contains("<tr data-height=\"1\""), "{dom}");
    assert!(dom.contains("id=\"newer\" href=\"#/blocks?from=2\""), "{dom}");
    assert!(dom.contains("id=\"older\" href=\"#/blocks?from=0&amp;limit=1\""), "{dom}");

    // The search box: a height, a block hash (any case), a transaction id, an address.
    let search = |text: &str| dump_dom(&format!("{}/#/search/{text}", node.url));
    let dom = search("2");
    assert!(dom.contains("data-view=\"block\""), "{dom}");
    assert_eq!(text_of(&dom, "block-hash"), hash);
    let dom = search(&hash.to_uppercase());
    assert_eq!(text_of(&dom, "block-hash"), hash);
    let dom = search(&pending);
    assert!(dom.contains("data-view=\"tx\""), "{dom}");
    assert_eq!(text_of(&dom, "tx-status"), "confirmed");
    let (_, found) = node.get(&format!("/transactions/{pending}"));
    let bob = found["transaction"]["recipient"].as_str().unwrap().to_owned();
    let dom = search(&bob);
    assert!(dom.contains("data-view=\"account\""), "{dom}");
    let balance = node.get(&format!("/accounts/{bob}")).1["balance"].to_string();
    assert_eq!(text_of(&dom, "account-balance").replace(',', ""), balance, "{dom}");
    let dom = search("not-a-key");
    assert!(dom.contains("data-view=\"error\""), "{dom}");
    assert!(text_of(&dom, "error").contains("Search for a block hash"), "{dom}");
}
