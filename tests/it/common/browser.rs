//! A headless Chromium driven through its DevTools protocol, in real time: the test opens a page,
//! waits for what the page shows (a script expression turning true), reads its DOM, and sees
//! every request the page made and every Server-Sent Event it received (the `Network` domain's
//! `requestWillBeSent` and `eventSourceMessageReceived` events). Unlike
//! `--dump-dom`, this works while the page holds a stream open (an `EventSource`).

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// The `chromium` on PATH, or a panic saying how to install it.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join("chromium")).find(|exe| exe.is_file()).unwrap_or_else(|| {
        panic!("chromium is not installed: `apt-get update && apt-get install -y chromium` (scripts/test installs it)")
    })
}

/// What the page did, as DevTools reported it, numbered in the order it was reported.
#[derive(Clone, Debug)]
pub enum Seen {
    /// A request: its path and query (the origin left out), and what asked for it as DevTools
    /// names it (`Document`, `Script`, `Fetch`, `EventSource`…).
    Request { order: usize, path: String, kind: String },
    /// A Server-Sent Event an `EventSource` of the page received: its name and data.
    Event { order: usize, name: String, data: String },
}

/// A browser with one tab.
pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    next_id: u64,
    seen: Vec<Seen>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium in a fresh profile and attaches to its tab.
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"])
            .args(["--disable-background-networking", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromium: {e}"));
        // Chromium names its DevTools endpoint on stderr; the rest of stderr is drained unread.
        let (found, endpoint) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = found.send(url.to_owned());
                }
            }
        });
        let browser_url = endpoint
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("chromium named no DevTools endpoint within 60 s"));
        let host = browser_url.trim_start_matches("ws://").split('/').next().unwrap().to_owned();
        let targets: Value = reqwest::blocking::get(format!("http://{host}/json/list")).unwrap().json().unwrap();
        let tab = targets.as_array().unwrap().iter().find(|t| t["type"] == "page").expect("chromium opened a tab");
        let tab_url = tab["webSocketDebuggerUrl"].as_str().unwrap().to_owned();
        let stream = TcpStream::connect(&host).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let (socket, _) = tungstenite::client(tab_url.as_str(), stream).unwrap();
        let mut browser = Browser { child, socket, next_id: 0, seen: Vec::new(), _profile: profile };
        browser.call("Network.enable", json!({}));
        browser
    }

    /// Sends one DevTools command and returns its result, noting the events that came before it.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params).unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// Like [`Browser::call`], with the error DevTools answered (a page between two documents
    /// has no context to evaluate in, for one).
    fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(Message::text(command)).unwrap();
        loop {
            let message = match self.socket.read().unwrap_or_else(|e| panic!("DevTools during {method}: {e}")) {
                Message::Text(text) => serde_json::from_str::<Value>(text.as_str()).unwrap(),
                _ => continue,
            };
            if message["id"] == id {
                return match message["error"].is_null() {
                    true => Ok(message["result"].clone()),
                    false => Err(message["error"].clone()),
                };
            }
            let order = self.seen.len();
            let params = &message["params"];
            let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
            if message["method"] == "Network.requestWillBeSent" {
                let url = text(&params["request"]["url"]);
                let path = url.splitn(4, '/').nth(3).map(|rest| format!("/{rest}")).unwrap_or_default();
                self.seen.push(Seen::Request { order, path, kind: text(&params["type"]) });
            } else if message["method"] == "Network.eventSourceMessageReceived" {
                self.seen.push(Seen::Event { order, name: text(&params["eventName"]), data: text(&params["data"]) });
            }
        }
    }

    /// Loads `url` afresh (through a blank page, so nothing of the page before lingers).
    pub fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": "about:blank"}));
        self.wait_until("the blank page", Duration::from_secs(10), "location.href === 'about:blank'");
        self.call("Page.navigate", json!({"url": url}));
    }

    /// The value of a script expression on the page.
    pub fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression).unwrap_or_else(|error| panic!("{expression}: {error}"))
    }

    /// The value of a script expression, or why there is none (it threw, or no document is
    /// loaded at the moment).
    fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let result = self.try_call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true}))?;
        match result["exceptionDetails"].is_null() {
            true => Ok(result["result"]["value"].clone()),
            false => Err(result["exceptionDetails"].clone()),
        }
    }

    /// Waits until `expression` is true on the page, or panics after `timeout` saying `what`.
    pub fn wait_until(&mut self, what: &str, timeout: Duration, expression: &str) {
        let deadline = Instant::now() + timeout;
        while self.try_eval(expression) != Ok(Value::Bool(true)) {
            assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}: {}", self.dom());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The page's DOM as HTML.
    pub fn dom(&mut self) -> String {
        self.eval("document.documentElement.outerHTML").as_str().unwrap_or_default().to_owned()
    }

    /// Everything the page did so far, in order.
    pub fn seen(&mut self) -> Vec<Seen> {
        self.eval("0"); // the reports the browser sent before now
        self.seen.clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
