//! The edge of `serve`, against the real binary and its own accept loop: the connection
//! cap, the request-head limit, and the metrics listener.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use keyinfra_db::testing::TestDatabase;

use crate::support::{Server, base_url, keyinfra};

const START: Duration = Duration::from_secs(180);

fn serve(db: &TestDatabase, extra: &[(&str, &str)]) -> (Server, SocketAddr) {
    let mut cmd = keyinfra();
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", db.url())
        .env("KEYINFRA_ADMIN_PASSWORD", "correct horse battery staple");
    for (name, value) in extra {
        cmd.env(name, value);
    }
    let mut server = Server::spawn(cmd);
    let line = server.wait_for("listening on http://", START);
    let address = base_url(&line)
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    (server, address)
}

/// Sends `request` on a new connection and reads the whole answer (the server closes it).
fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

#[tokio::test]
async fn connections_past_the_cap_get_503_and_a_freed_slot_is_reused() {
    let db = TestDatabase::new().await;
    let (_server, address) = serve(&db, &[("KEYINFRA_MAX_CONNECTIONS", "2")]);
    // Two clients hold their connections open without sending anything.
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(address).unwrap())
        .collect();
    // Give the accept loop the moment it needs to take both.
    std::thread::sleep(Duration::from_millis(300));
    let refused = exchange(address, HEALTH);
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.contains("\"code\":\"too_many_connections\""),
        "{refused}"
    );
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    drop(idle);
    // Their slots come back when they close.
    let mut answered = String::new();
    for _ in 0..50 {
        answered = exchange(address, HEALTH);
        if answered.starts_with("HTTP/1.1 200") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
}

#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    let db = TestDatabase::new().await;
    let (_server, address) = serve(&db, &[]);
    let fine = exchange(address, HEALTH);
    assert!(fine.starts_with("HTTP/1.1 200"), "{fine}");
    let head = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: {}\r\nconnection: close\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let answer = exchange(address, head.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[tokio::test]
async fn the_metrics_listener_serves_metrics_only_and_the_api_one_needs_credentials() {
    let db = TestDatabase::new().await;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let metrics = metrics_port.to_string();
    let (_server, address) = serve(
        &db,
        &[
            ("KEYINFRA_METRICS_LISTEN", metrics.as_str()),
            ("KEYINFRA_METRICS_TOKEN", "scrape-token-0123456789"),
        ],
    );
    let open = exchange(
        metrics_port,
        b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(open.starts_with("HTTP/1.1 200"), "{open}");
    assert!(open.contains("keyinfra_db_pool_connections"), "{open}");
    let other = exchange(
        metrics_port,
        b"GET /api/v1/cas HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
    let api = exchange(
        address,
        b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(api.starts_with("HTTP/1.1 401"), "{api}");
    // The token given in the environment (taken out of it at start) opens it.
    let scraped = exchange(
        address,
        b"GET /metrics HTTP/1.1\r\nhost: x\r\nauthorization: Bearer scrape-token-0123456789\r\nconnection: close\r\n\r\n",
    );
    assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
}
