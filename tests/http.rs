//! Plain HTTP on the shared port and everything that is not a good handshake: `/up`,
//! 404, 426, 400, 413, garbage and half-open sockets. After each, the shard still serves
//! a normal client.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::raw::{self, http_exchange, wait_closed, Ending, WS_KEY};
use support::{TestServer, APP_KEY};

/// The server closes the socket soon after its answer.
fn assert_closes(stream: &mut std::net::TcpStream) {
    wait_closed(stream, Duration::from_secs(5));
}

/// A normal client still connects (the shard survived).
fn assert_serving(server: &TestServer) {
    let (mut client, _) = server.connect_established();
    client.assert_alive();
}

fn upgrade_request(path: &str, headers: &[&str]) -> Vec<u8> {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

#[test]
fn up_answers_health_ok() {
    let server = TestServer::builder().start();
    let r = raw::get(&server.addr(), "/up");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body_text(), r#"{"health":"OK"}"#);
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{r:?}"
    );
    assert_serving(&server);
}

#[test]
fn up_follows_the_path_prefix() {
    let server = TestServer::builder().arg("--path").arg("/ws/").start();
    assert_eq!(raw::get(&server.addr(), "/ws/up").status, 200);
    assert_eq!(raw::get(&server.addr(), "/up").status, 404);
}

#[test]
fn keep_alive_serves_several_requests_on_one_socket() {
    let server = TestServer::builder().start();
    let mut stream = raw::connect(&server.addr());
    let mut buf = Vec::new();
    for _ in 0..3 {
        stream
            .write_all(b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let r = raw::read_response(&mut stream, &mut buf);
        assert_eq!(r.status, 200);
    }
}

#[test]
fn an_unknown_path_is_404_not_found() {
    let server = TestServer::builder().start();
    for path in ["/", "/nope", "/apps", "/app", "/up/x"] {
        let r = raw::get(&server.addr(), path);
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert_eq!(r.body_text(), "Not found.", "{path}");
    }
    // An upgrade request on an unknown path is a 404 too.
    let (r, mut stream) = http_exchange(
        &server.addr(),
        &upgrade_request(
            "/nope",
            &[
                "Upgrade: websocket",
                "Connection: Upgrade",
                &format!("Sec-WebSocket-Key: {WS_KEY}"),
                "Sec-WebSocket-Version: 13",
            ],
        ),
    );
    assert_eq!(r.status, 404, "{r:?}");
    assert_closes(&mut stream);
    assert_serving(&server);
}

#[test]
fn a_plain_get_on_the_websocket_route_is_426() {
    let server = TestServer::builder().start();
    let (r, mut stream) = http_exchange(
        &server.addr(),
        &upgrade_request(&format!("/app/{APP_KEY}"), &[]),
    );
    assert_eq!(r.status, 426, "{r:?}");
    assert_closes(&mut stream);
    assert_serving(&server);
}

#[test]
fn websocket_version_8_is_426_naming_version_13() {
    let server = TestServer::builder().start();
    let (r, mut stream) = http_exchange(
        &server.addr(),
        &upgrade_request(
            &format!("/app/{APP_KEY}"),
            &[
                "Upgrade: websocket",
                "Connection: Upgrade",
                &format!("Sec-WebSocket-Key: {WS_KEY}"),
                "Sec-WebSocket-Version: 8",
            ],
        ),
    );
    assert_eq!(r.status, 426, "{r:?}");
    assert_eq!(r.header("sec-websocket-version"), Some("13"), "{r:?}");
    assert_closes(&mut stream);
    assert_serving(&server);
}

#[test]
fn a_missing_or_invalid_websocket_key_is_400() {
    let server = TestServer::builder().start();
    for key in [None, Some("short"), Some("not a key at all!!!!!!==")] {
        let mut headers = vec![
            "Upgrade: websocket".to_string(),
            "Connection: Upgrade".to_string(),
            "Sec-WebSocket-Version: 13".to_string(),
        ];
        if let Some(key) = key {
            headers.push(format!("Sec-WebSocket-Key: {key}"));
        }
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let (r, mut stream) = http_exchange(
            &server.addr(),
            &upgrade_request(&format!("/app/{APP_KEY}"), &headers),
        );
        assert_eq!(r.status, 400, "key {key:?}: {r:?}");
        assert_closes(&mut stream);
    }
    assert_serving(&server);
}

#[test]
fn a_non_get_upgrade_or_http_1_0_is_400() {
    let server = TestServer::builder().start();
    for request_line in [
        format!("POST /app/{APP_KEY} HTTP/1.1"),
        format!("GET /app/{APP_KEY} HTTP/1.0"),
    ] {
        let request = format!(
            "{request_line}\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let (r, mut stream) = http_exchange(&server.addr(), request.as_bytes());
        assert_eq!(r.status, 400, "{request_line}: {r:?}");
        assert_closes(&mut stream);
    }
    assert_serving(&server);
}

#[test]
fn non_http_bytes_get_400_and_a_close() {
    let server = TestServer::builder().start();
    // A TLS ClientHello-like start, then binary noise.
    let mut garbage = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    garbage.extend((0u8..=255).rev());
    garbage.extend_from_slice(b"\r\n\r\n");
    let (r, mut stream) = http_exchange(&server.addr(), &garbage);
    assert_eq!(r.status, 400, "{r:?}");
    assert_closes(&mut stream);
    assert_serving(&server);
}

#[test]
fn a_request_head_over_max_request_size_is_413() {
    let server = TestServer::builder().start();
    let cookie = "c".repeat(20_000);
    let request = format!(
        "GET /app/{APP_KEY} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n"
    );
    let (r, mut stream) = http_exchange(&server.addr(), request.as_bytes());
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.body_text(), "Payload too large.");
    assert_closes(&mut stream);
    assert_serving(&server);
}

#[test]
fn max_request_size_is_configurable() {
    let server = TestServer::builder()
        .config(&format!(
            "{}\n",
            support::app_config("").replace("port = 0\n", "port = 0\nmax_request_size = 600\n")
        ))
        .start();
    // A normal handshake fits...
    let (mut client, _) = server.connect_established();
    client.assert_alive();
    // ...one with a 1 KB header does not.
    let request = format!(
        "GET /up HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "f".repeat(1000)
    );
    let (r, _) = http_exchange(&server.addr(), request.as_bytes());
    assert_eq!(r.status, 413, "{r:?}");
}

#[test]
fn a_silent_half_request_is_closed_by_the_server() {
    let server = TestServer::builder().start();
    let started = Instant::now();
    let mut stream = raw::connect(&server.addr());
    stream
        .write_all(format!("GET /app/{APP_KEY} HTTP/1.1\r\nHost: x\r\nUpg").as_bytes())
        .unwrap();
    // Meanwhile the shard serves others.
    assert_serving(&server);
    let mut buf = Vec::new();
    let (ending, _) = {
        // Either a 408 then the end, or just the end; never more than ~10 s plus slack.
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut chunk = [0u8; 1024];
        match std::io::Read::read(&mut stream, &mut chunk) {
            Ok(0) => (Ending::Eof, 0),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                wait_closed(&mut stream, Duration::from_secs(5))
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!(
                    "the half-open socket is still open after {:?}",
                    started.elapsed()
                )
            }
            Err(_) => (Ending::Reset, 0),
        }
    };
    let text = String::from_utf8_lossy(&buf);
    assert!(
        buf.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected answer {text:?} ({ending:?})"
    );
    assert!(started.elapsed() < Duration::from_secs(16));
    assert_serving(&server);
}

#[test]
fn chunked_bodies_are_refused_without_a_5xx() {
    let server = TestServer::builder().start();
    let (r, mut stream) = http_exchange(
        &server.addr(),
        b"POST /apps/1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert!((400..500).contains(&r.status), "{r:?}");
    assert_closes(&mut stream);
    assert_serving(&server);
}
