//! `GET /events` against a real node: a mined block arrives as `connect` then `tip`; a client
//! reconnecting with `Last-Event-ID` gets what it missed, one with an id from before a restart
//! gets `reset`; clients past `http.max_event_subscribers` get 503; a client that never reads
//! does not hold the node back.

use crate::common::{NodeProc, TestNet};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

/// One Server-Sent Event: its name, id and JSON data.
#[derive(Debug)]
struct SseEvent {
    name: String,
    id: String,
    data: Value,
}

/// An open `GET /events` stream.
struct EventStream(BufReader<reqwest::blocking::Response>);

impl EventStream {
    fn open(node: &NodeProc, last_event_id: Option<&str>) -> Result<EventStream, (u16, String)> {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let mut request = client.get(format!("{}/events", node.url));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().unwrap();
        if response.status() != 200 {
            let code = response.status().as_u16();
            return Err((code, response.text().unwrap()));
        }
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Ok(EventStream(BufReader::new(response)))
    }

    /// The next event (heartbeat comments are skipped).
    fn next(&mut self) -> SseEvent {
        let (mut name, mut id, mut data) = (String::new(), String::new(), String::new());
        loop {
            let mut line = String::new();
            assert!(self.0.read_line(&mut line).unwrap() > 0, "the stream ended");
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !name.is_empty() {
                    return SseEvent { name, id, data: serde_json::from_str(&data).unwrap() };
                }
                continue;
            }
            if let Some(value) = line.strip_prefix("event:") {
                name = value.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("id:") {
                id = value.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data = value.trim().to_owned();
            }
        }
    }
}

#[test]
fn a_mined_block_is_streamed_and_a_reconnecting_client_resumes_where_it_left() {
    let net = TestNet::start_with("events", 1, |spec| {
        spec.http.max_event_subscribers = 3;
        spec.http.events_heartbeat_ms = 200;
    });
    let node = &net.nodes[0];
    let mut stream = EventStream::open(node, None).unwrap();
    let first = stream.next();
    assert_eq!((first.name.as_str(), &first.data["height"]), ("tip", &Value::from(0)), "{first:?}");

    let mined = node.mine();
    let connect = stream.next();
    assert_eq!(connect.name, "connect", "{connect:?}");
    assert_eq!(connect.data["height"], 1);
    assert_eq!(connect.data["hash"], mined["hash"], "{connect:?} {mined}");
    assert_eq!(connect.data["reward"]["amount"], 50);
    let tip = stream.next();
    assert_eq!((tip.name.as_str(), &tip.data["hash"]), ("tip", &mined["hash"]));

    // Reconnecting after the first event replays the two after it.
    let mut resumed = EventStream::open(node, Some(&first.id)).unwrap();
    let (again, tip_again) = (resumed.next(), resumed.next());
    assert_eq!((again.id, again.name), (connect.id, connect.name));
    assert_eq!(tip_again.id, tip.id);

    // An id the node never gave (another start, say) is told to reload.
    let (epoch, _) = first.id.split_once('-').unwrap();
    let stale = format!("{}-1", epoch.parse::<u64>().unwrap() - 1);
    let mut told = EventStream::open(node, Some(&stale)).unwrap();
    assert_eq!(told.next().name, "reset");

    // Three follow now; the fourth is refused.
    let refused = EventStream::open(node, None).err().expect("503 past the bound");
    assert_eq!(refused.0, 503, "{}", refused.1);
    drop(told);
    let mut admitted = None;
    for _ in 0..50 {
        if let Ok(stream) = EventStream::open(node, None) {
            admitted = Some(stream);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(admitted.is_some(), "a client that leaves frees its place");
}

#[test]
fn a_client_that_never_reads_does_not_hold_the_node_back() {
    let net = TestNet::start_with("events-stalled", 1, |spec| spec.http.events_history = 4);
    let node = &net.nodes[0];
    let address = node.url.trim_start_matches("http://");
    let mut stalled = std::net::TcpStream::connect(address).unwrap();
    write!(stalled, "GET /events HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    let mut reading = EventStream::open(node, None).unwrap();
    assert_eq!(reading.next().name, "tip");
    for height in 1..=12u64 {
        node.mine();
        let connect = reading.next();
        assert_eq!((connect.name.as_str(), &connect.data["height"]), ("connect", &Value::from(height)));
        assert_eq!(reading.next().name, "tip");
    }
    assert_eq!(node.status()["height"], 12, "the node went on while one client read nothing");
}

/// Runs `kafkachain wallet --dir DIR ARGS`; its standard output.
fn wallet(dir: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new(crate::common::KAFKACHAIN)
        .arg("wallet")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "wallet {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn wallet_watch_prints_a_line_for_each_transfer_in_and_out_as_it_confirms() {
    use kafkachain::core::account::Address;
    use kafkachain::core::transaction::{ChainTag, Transfer};
    use kafkachain::json::SignedTransferJson;
    use kafkachain::tools::cluster::LOAD_ACCOUNTS;
    use kafkachain::tools::load::LoadAccounts;
    use std::sync::mpsc;

    let net = TestNet::start("wallet-watch", 1);
    let node = &net.nodes[0];
    let home = tempfile::tempdir().unwrap();
    // A directory of its own, which the wallet makes private.
    let keys = home.path().join("keys");
    let mine: Address = wallet(&keys, &["new", "w"]).trim().parse().unwrap();
    let mut watching = std::process::Command::new(crate::common::KAFKACHAIN)
        .args(["wallet", "--dir"])
        .arg(&keys)
        .args(["watch", "w", "--node", &node.url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, printed) = mpsc::channel();
    let stdout = BufReader::new(watching.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let first = printed.recv_timeout(Duration::from_secs(30)).expect("the watch connects");
    assert_eq!(first, format!("watching {mine} from height 0"));

    let payer = LoadAccounts::new(LOAD_ACCOUNTS);
    let paid = Transfer::sign(payer.key(30), ChainTag::of(crate::common::CHAIN_ID), mine, 1_000, 0, 0);
    let (code, answer) = node.post("/transactions/new", serde_json::json!(SignedTransferJson::from(&paid)).to_string());
    assert_eq!(code, 201, "{answer}");
    node.mine();
    let line = printed.recv_timeout(Duration::from_secs(30)).expect("a line for the incoming transfer");
    assert!(
        line.starts_with("height 1 in +1000 from")
            && line.ends_with(&paid.id(ChainTag::of(crate::common::CHAIN_ID)).to_hex()),
        "{line}"
    );

    let shop = Address::new([0x5a; 32]).to_hex();
    let sent = wallet(&keys, &["send", "w", "--to", &shop, "--amount", "10", "--fee", "1", "--node", &node.url]);
    node.mine();
    let line = printed.recv_timeout(Duration::from_secs(30)).expect("a line for the outgoing transfer");
    assert_eq!(line, format!("height 2 out -11 to {shop} (fee 1) tx {}", sent.trim()));
    watching.kill().unwrap();
    watching.wait().unwrap();
}
