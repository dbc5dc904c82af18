//! A hostile or broken peer for the peer-sync tests: a plain TCP server that answers each HTTP
//! request with whatever its handler writes, byte for byte, so a test can serve lies, floods and
//! stalls that no honest HTTP framework would produce.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// A running fake peer; it serves until the test process ends.
pub struct FakePeer {
    pub url: String,
}

/// Writes the status line and headers of a 200 JSON answer whose body ends when the connection
/// closes (no length: the client cannot know in advance how much is coming).
pub fn start_unsized_json(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
}

/// Writes a complete 200 JSON answer.
pub fn json_answer(stream: &mut TcpStream, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The `from` and `limit` query values of a `/chain` request line's path.
pub fn chain_query(path: &str) -> (u64, u64) {
    let value = |name: &str| {
        path.split(['?', '&'])
            .find_map(|part| part.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
    };
    (value("from").unwrap_or(0), value("limit").unwrap_or(1000))
}

impl FakePeer {
    /// Serves every connection on its own thread: reads the request head, then hands the
    /// request path and the stream to `handler`.
    pub fn start(handler: impl Fn(&str, &mut TcpStream) -> std::io::Result<()> + Send + Sync + 'static) -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        return;
                    }
                    let mut header = String::new();
                    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                        header.clear();
                    }
                    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    // The client hanging up mid-answer is what several tests expect.
                    let _ = handler(&path, &mut stream);
                });
            }
        });
        FakePeer { url }
    }
}
