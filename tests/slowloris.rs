//! Slowloris: thousands of connections that start a request and never finish its headers do not
//! stop the node from answering, and are closed once the header timeout passes.

mod common;

use common::TestNet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const SOCKETS: usize = 2_000;

/// Reads until the server closes the connection; false if it is still open after `wait`.
fn closed_by_server(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(_) => return true, // reset by the server
        }
    }
}

#[test]
fn half_sent_headers_neither_block_the_node_nor_stay_open() {
    let net = TestNet::start_with("slowloris", 1, |spec| {
        spec.extra_toml = "[http]\nheader_timeout_ms = 2000\n".into();
    });
    let node = &net.nodes[0];
    let address = node.url.trim_start_matches("http://").to_owned();
    let mut sockets: Vec<TcpStream> = (0..SOCKETS)
        .map(|_| {
            let mut stream = TcpStream::connect(&address).unwrap();
            stream.write_all(b"GET /status HTTP/1.1\r\nHost: slow\r\nX-Slow: ").unwrap();
            stream
        })
        .collect();
    // Every socket is open and holds a half-sent request; the node still answers.
    assert_eq!(node.status()["height"], 0);
    let (code, _) = node.get("/chain");
    assert_eq!(code, 200);
    std::thread::sleep(Duration::from_millis(2_500));
    let still_open = sockets.iter_mut().map(|s| closed_by_server(s, Duration::from_secs(5))).filter(|closed| !closed).count();
    assert_eq!(still_open, 0, "{still_open} of {SOCKETS} half-open connections outlived the header timeout");
    assert_eq!(node.status()["height"], 0);
}
