//! Connection-level hardening of the accept loop.

use crate::helpers::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until EOF (or error) and returns how long the server kept the connection open.
async fn time_until_closed(mut stream: TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_clients_are_disconnected() {
    let app = spawn_app_with(|s| s.header_read_timeout_secs = 1).await;

    // Connects and never sends a byte.
    let silent = TcpStream::connect(app.addr).await.unwrap();
    // Sends half a request line and stalls.
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();

    let (a, b) = tokio::join!(time_until_closed(silent), time_until_closed(slow));
    for (what, took) in [("silent", a), ("slow", b)] {
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(5),
            "{what} connection closed after {took:?}"
        );
    }

    // A complete request on a fresh connection is still served.
    let mut ok = TcpStream::connect(app.addr).await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    ok.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}
