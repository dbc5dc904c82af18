//! Slowloris: thousands of connections that start a request and never finish its headers do not
//! stop the node from answering, and are closed once the header timeout passes.

use crate::common::TestNet;
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
        spec.http.header_timeout_ms = 2000;
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
    let still_open =
        sockets.iter_mut().map(|s| closed_by_server(s, Duration::from_secs(5))).filter(|closed| !closed).count();
    assert_eq!(still_open, 0, "{still_open} of {SOCKETS} half-open connections outlived the header timeout");
    assert_eq!(node.status()["height"], 0);
}

/// A body sent a byte at a time is answered 408 after the body timeout, and such requests never
/// hold the in-flight permits other clients need.
#[test]
fn slow_bodies_time_out_without_taking_the_in_flight_permits() {
    let net = TestNet::start_with("slow-body", 1, |spec| {
        spec.http.body_timeout_ms = 1500;
        spec.http.max_in_flight = 2;
    });
    let node = &net.nodes[0];
    let address = node.url.trim_start_matches("http://").to_owned();
    let mut slow: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut stream = TcpStream::connect(&address).unwrap();
            let head = "POST /transactions/new HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sen";
            stream.write_all(head.as_bytes()).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        assert_eq!(node.get("/status").0, 200, "the permits are free while bodies trickle in");
    }
    for stream in &mut slow {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("body_timeout_ms"), "{answer}");
    }
}

/// A client that sends requests and never reads the answers loses its connection once a write
/// has been stuck for the write timeout.
#[test]
fn a_client_that_never_reads_is_cut_off() {
    let net = TestNet::start_with("no-reader", 1, |spec| {
        spec.http.write_timeout_ms = 1500;
    });
    let node = &net.nodes[0];
    let address = node.url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).unwrap();
    // Pipelined requests for the OpenAPI description: far more answer bytes than the socket
    // buffers hold, so the node's writes stall until this client reads.
    let request = "GET /openapi.json HTTP/1.1\r\nHost: lazy\r\n\r\n".repeat(3_000);
    stream.write_all(request.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(closed_by_server(&mut stream, Duration::from_secs(10)), "the stalled connection is still open");
    assert_eq!(node.status()["height"], 0);
}
