//! Connecting: the handshake, `connection_established`, socket ids, the route prefix.

mod support;

use serde_json::Value;
use support::{app_config, established_data, Client, RawWs, TestServer, APP_KEY};

/// `^\d+\.\d+$` with no leading zeros (what Pusher SDKs and Laravel accept).
fn assert_socket_id_format(id: &str) {
    let (a, b) = id.split_once('.').unwrap_or_else(|| panic!("{id}: no dot"));
    for part in [a, b] {
        assert!(
            !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit()),
            "{id}: not two decimal integers"
        );
        assert!(!part.starts_with('0'), "{id}: leading zero");
    }
}

#[test]
fn connect_gets_connection_established_with_a_socket_id() {
    let server = TestServer::builder().start();
    let (mut client, socket_id) = server.connect_established();
    assert_socket_id_format(&socket_id);
    client.assert_alive();
}

#[test]
fn connection_established_has_the_exact_shape_and_the_apps_activity_timeout() {
    let server = TestServer::builder()
        .config(&app_config("activity_timeout = 17"))
        .start();
    let mut client = server.connect(APP_KEY);
    let msg = client.recv_json();
    // Exactly two keys, in this order, and `data` is a string holding JSON.
    let keys: Vec<&str> = msg
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(keys, ["event", "data"], "{msg}");
    assert_eq!(msg["event"], "pusher:connection_established");
    let data_text = msg["data"].as_str().expect("data is a JSON string");
    let data: Value = serde_json::from_str(data_text).unwrap();
    let data_keys: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(data_keys, ["socket_id", "activity_timeout"], "{data_text}");
    let (socket_id, activity_timeout) = established_data(&msg);
    assert_eq!(activity_timeout, 17);
    assert_socket_id_format(&socket_id);
    assert_eq!(
        data_text,
        format!(r#"{{"socket_id":"{socket_id}","activity_timeout":17}}"#)
    );
}

#[test]
fn socket_ids_are_well_formed_and_distinct() {
    let server = TestServer::builder().start();
    let mut seen = std::collections::HashSet::new();
    let mut clients = Vec::new();
    for _ in 0..50 {
        let (client, id) = server.connect_established();
        assert_socket_id_format(&id);
        let (a, b) = id.split_once('.').unwrap();
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
        assert!((1..=1_000_000_000).contains(&a), "{id}");
        assert!((1..=1_000_000_000).contains(&b), "{id}");
        assert!(seen.insert(id.clone()), "duplicate socket id {id}");
        clients.push(client);
    }
}

#[test]
fn the_101_carries_x_powered_by_and_negotiates_nothing() {
    let server = TestServer::builder().start();
    let mut ws = RawWs::upgrade(
        &server.addr(),
        &format!("/app/{APP_KEY}"),
        &[
            (
                "Sec-WebSocket-Extensions",
                "permessage-deflate; client_max_window_bits",
            ),
            ("Sec-WebSocket-Protocol", "pusher, chat"),
        ],
    );
    let r = &ws.response;
    assert_eq!(r.header("x-powered-by"), Some("Laravel Reverb"), "{r:?}");
    assert!(
        r.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
        "{r:?}"
    );
    assert!(
        r.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("upgrade")),
        "{r:?}"
    );
    // No compression, even when asked; the requested subprotocol is not echoed.
    assert_eq!(r.header("sec-websocket-extensions"), None, "{r:?}");
    assert_eq!(r.header("sec-websocket-protocol"), None, "{r:?}");
    // And the session works uncompressed (RSV1 never set on server frames).
    let msg = ws.expect_json();
    assert_eq!(msg["event"], "pusher:connection_established");
    ws.assert_alive();
}

#[test]
fn the_query_string_is_ignored() {
    let server = TestServer::builder().start();
    for query in [
        "",
        "?protocol=7&client=js&version=8.4.0&flash=false",
        "?protocol=1",
        "?garbage&&==%zz",
    ] {
        let mut client = Client::connect(&server.url(&format!("/app/{APP_KEY}{query}")), &[]);
        client.established();
        client.assert_alive();
    }
}

#[test]
fn the_path_prefix_applies_to_the_websocket_route() {
    let server = TestServer::builder().arg("--path").arg("ws").start();
    let mut client = Client::connect(&server.url(&format!("/ws/app/{APP_KEY}?protocol=7")), &[]);
    client.established();
    client.assert_alive();
    let without = support::raw::get(&server.addr(), &format!("/app/{APP_KEY}"));
    assert_eq!(without.status, 404, "{without:?}");
    assert_eq!(without.body_text(), "Not found.");
    // The upgrade on the unprefixed path is refused too.
    let refused = Client::try_connect(&server.url(&format!("/app/{APP_KEY}")), &[]);
    assert!(
        refused.is_err(),
        "/app/{{key}} must not upgrade with --path ws"
    );
}

#[test]
fn a_key_with_a_trailing_slash_or_extra_segment_is_not_found() {
    let server = TestServer::builder().start();
    for path in [
        format!("/app/{APP_KEY}/"),
        format!("/app/{APP_KEY}/x"),
        "/app/".to_string(),
    ] {
        let r = support::raw::get(&server.addr(), &path);
        assert_eq!(r.status, 404, "{path}: {r:?}");
    }
}

#[test]
fn unknown_app_key_gets_4001_and_a_close() {
    let server = TestServer::builder().start();
    let mut client = server.connect("no-such-key");
    assert_eq!(client.expect_error(4001), "Application does not exist");
    assert_eq!(
        client.expect_close(),
        (4001, "Application does not exist".to_string())
    );
    client.expect_gone();
}

#[test]
fn app_keys_are_case_sensitive() {
    let server = TestServer::builder().start();
    let mut client = server.connect(&APP_KEY.to_uppercase());
    assert_eq!(client.expect_error(4001), "Application does not exist");
    assert_eq!(client.expect_close().0, 4001);
}

#[test]
fn a_client_close_is_answered_and_the_server_keeps_serving() {
    let server = TestServer::builder().start();
    let (mut client, _) = server.connect_established();
    client.close_with(1000, "done");
    assert_eq!(client.expect_close(), (1000, "done".to_string()));
    let (mut again, _) = server.connect_established();
    again.assert_alive();
}
