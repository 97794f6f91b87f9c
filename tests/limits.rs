//! Per-app limits on incoming traffic: `max_message_size` (Close 1009) and the
//! per-connection rate limit (4301, with and without `terminate_on_limit`).

mod support;

use std::time::Duration;

use serde_json::json;
use support::raw::{frame_bytes, FIN, OP_CONT, OP_TEXT};
use support::{app_config, RawWs, TestServer};

/// A `pusher:ping` message of exactly `len` bytes.
fn ping_of_len(len: usize) -> String {
    let base = r#"{"event":"pusher:ping","data":{"pad":""}}"#;
    assert!(len >= base.len());
    let pad = "x".repeat(len - base.len());
    let text = format!(r#"{{"event":"pusher:ping","data":{{"pad":"{pad}"}}}}"#);
    assert_eq!(text.len(), len);
    text
}

#[test]
fn a_message_of_exactly_max_message_size_is_accepted() {
    let server = TestServer::builder()
        .config(&app_config("max_message_size = 200"))
        .start();
    let (mut client, _) = server.connect_established();
    client.send_text(&ping_of_len(200));
    assert_eq!(client.recv_json(), json!({"event":"pusher:pong"}));
    client.assert_alive();
}

#[test]
fn one_byte_over_max_message_size_closes_with_1009() {
    let server = TestServer::builder()
        .config(&app_config("max_message_size = 200"))
        .start();
    let (mut client, _) = server.connect_established();
    client.send_text(&ping_of_len(201));
    // The Close comes first: no pusher:error, no pong.
    assert_eq!(
        client.expect_close(),
        (1009, "Maximum message size exceeded".to_string())
    );
    client.expect_gone();
    // The shard is fine.
    let (mut other, _) = server.connect_established();
    other.assert_alive();
}

#[test]
fn the_default_max_message_size_is_10000_bytes() {
    let server = TestServer::builder().start();
    let (mut client, _) = server.connect_established();
    client.send_text(&ping_of_len(10_000));
    assert_eq!(client.recv_json(), json!({"event":"pusher:pong"}));
    client.send_text(&ping_of_len(10_001));
    assert_eq!(
        client.expect_close(),
        (1009, "Maximum message size exceeded".to_string())
    );
}

#[test]
fn the_size_limit_applies_to_the_total_of_a_fragmented_message() {
    let server = TestServer::builder()
        .config(&app_config("max_message_size = 200"))
        .start();
    // Exactly the limit over three fragments: accepted.
    let (mut ws, _) = RawWs::established(&server.addr());
    let text = ping_of_len(200);
    let (a, rest) = text.split_at(70);
    let (b, c) = rest.split_at(70);
    ws.write_raw(&frame_bytes(OP_TEXT, true, a.as_bytes()));
    ws.write_raw(&frame_bytes(OP_CONT, true, b.as_bytes()));
    ws.write_raw(&frame_bytes(FIN | OP_CONT, true, c.as_bytes()));
    assert_eq!(ws.expect_json(), json!({"event":"pusher:pong"}));
    // One byte more, with each fragment under the limit: 1009.
    let text = ping_of_len(201);
    let (a, b) = text.split_at(120);
    ws.write_raw(&frame_bytes(OP_TEXT, true, a.as_bytes()));
    ws.write_raw(&frame_bytes(FIN | OP_CONT, true, b.as_bytes()));
    assert_eq!(
        ws.expect_close(),
        (1009, "Maximum message size exceeded".to_string())
    );
    ws.expect_closed_within(Duration::from_secs(5));
}

const RATE_LIMITED: &str = r#"[apps.rate_limiting]
enabled = true
max_attempts = 3
decay_seconds = 60
"#;

#[test]
fn the_message_over_the_rate_limit_gets_4301_and_the_connection_stays() {
    let server = TestServer::builder()
        .config(&app_config(RATE_LIMITED))
        .start();
    let (mut client, _) = server.connect_established();
    for _ in 0..3 {
        client.assert_alive();
    }
    for _ in 0..3 {
        // Over the limit: not processed (no pong), every kind of message counts.
        client.send_json(&json!({"event":"pusher:ping","data":{}}));
        assert_eq!(client.expect_error(4301), "Rate limit exceeded");
        client.send_text("not json");
        assert_eq!(client.expect_error(4301), "Rate limit exceeded");
    }
    // Control frames are not counted, and the socket is still open.
    client.control_ping(b"still here");
    client.expect_silence(Duration::from_millis(200));
    // Other connections have their own window.
    let (mut other, _) = server.connect_established();
    other.assert_alive();
}

#[test]
fn with_terminate_on_limit_the_error_is_followed_by_close_4301() {
    let config = app_config(&format!("{RATE_LIMITED}terminate_on_limit = true\n"));
    let server = TestServer::builder().config(&config).start();
    let (mut client, _) = server.connect_established();
    for _ in 0..3 {
        client.assert_alive();
    }
    client.send_json(&json!({"event":"pusher:ping","data":{}}));
    assert_eq!(client.expect_error(4301), "Rate limit exceeded");
    assert_eq!(
        client.expect_close(),
        (4301, "Rate limit exceeded".to_string())
    );
    client.expect_gone();
}

#[test]
fn rate_limiting_is_off_by_default() {
    let server = TestServer::builder().start();
    let (mut client, _) = server.connect_established();
    for _ in 0..100 {
        client.assert_alive();
    }
}
