//! Processing of incoming messages: parse failures (4200, connection lives on), ping/pong,
//! the double-encoded `data` rule, re-sent `connection_established`, and the client-event
//! gates (disabled, `members` without membership, non-`client-` names ignored).

mod support;

use std::time::Duration;

use serde_json::json;
use support::{app_config, TestServer};

const INVALID: &str = "Invalid message format";

#[test]
fn malformed_messages_get_4200_and_the_connection_lives_on() {
    let server = TestServer::builder().start();
    let (mut client, _) = server.connect_established();
    for bad in [
        "not json",
        "{\"event\":",
        "[1,2,3]",
        r#"["pusher:ping"]"#,
        "\"pusher:ping\"",
        "42",
        "null",
        r#"{"data":{}}"#,
        r#"{"event":""}"#,
        r#"{"event":5}"#,
        r#"{"event":null}"#,
        r#"{"event":{"name":"pusher:ping"}}"#,
        r#"{"event":"pusher:foo","data":{}}"#,
        r#"{"event":"pusher:Ping"}"#,
        "",
    ] {
        client.send_text(bad);
        let msg = client.recv_json();
        assert_eq!(
            msg,
            json!({"event":"pusher:error","data":r#"{"code":4200,"message":"Invalid message format"}"#}),
            "for {bad:?}"
        );
        client.assert_alive();
    }
}

#[test]
fn binary_garbage_gets_4200_and_the_connection_lives_on() {
    let server = TestServer::builder().start();
    let (mut client, _) = server.connect_established();
    // Deterministic "random" bytes (xorshift), never valid JSON (starts with 0xff).
    let mut x: u32 = 0x9E37_79B9;
    let mut garbage = vec![0xff];
    garbage.extend((0..300).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    client.send_binary(&garbage);
    assert_eq!(client.expect_error(4200), INVALID);
    client.assert_alive();
}

#[test]
fn a_binary_message_holding_json_is_processed_like_text() {
    let server = TestServer::builder().start();
    let (mut client, _) = server.connect_established();
    client.send_binary(br#"{"event":"pusher:ping","data":{}}"#);
    assert_eq!(client.recv_json(), json!({"event":"pusher:pong"}));
}

#[test]
fn ping_is_answered_with_exactly_pong() {
    let server = TestServer::builder().start();
    let (mut client, _) = server.connect_established();
    for ping in [
        r#"{"event":"pusher:ping","data":{}}"#,
        r#"{"event":"pusher:ping"}"#,
        r#"{"event":"pusher:ping","data":"{}"}"#,
        r#"{"event":"pusher:ping","data":{"x":[1,2]},"channel":"whatever"}"#,
    ] {
        client.send_text(ping);
        match client.recv_within(support::client::RECV_TIMEOUT) {
            support::Received::Json(v) => {
                // The exact bytes matter to clients that compare strings.
                assert_eq!(v.to_string(), r#"{"event":"pusher:pong"}"#, "for {ping}");
            }
            other => panic!("for {ping}: {other:?}"),
        }
    }
    // A pong from the client is activity only: no answer.
    client.send_text(r#"{"event":"pusher:pong","data":{}}"#);
    client.expect_silence(Duration::from_millis(300));
    client.assert_alive();
}

#[test]
fn a_double_encoded_data_string_is_decoded_first() {
    // With client events disabled, a client event whose `data` decodes to an object
    // reaches the 4301 gate; had the string not been decoded it would fail validation
    // (data must be an object, array or null) with 4200.
    let server = TestServer::builder()
        .config(&app_config(r#"accept_client_events_from = "none""#))
        .start();
    let (mut client, _) = server.connect_established();
    client.send_json(
        &json!({"event":"client-typing","channel":"private-chat","data":"{\"typing\":true}"}),
    );
    assert_eq!(
        client.expect_error(4301),
        "The app does not have client messaging enabled."
    );
    client.send_json(&json!({"event":"client-typing","channel":"private-chat","data":"[1,2]"}));
    assert_eq!(
        client.expect_error(4301),
        "The app does not have client messaging enabled."
    );
    // A string that is not JSON stays a string, which client events refuse.
    client.send_json(&json!({"event":"client-typing","channel":"private-chat","data":"typing"}));
    assert_eq!(client.expect_error(4200), INVALID);
    // A JSON string that decodes to a scalar is refused too.
    client.send_json(&json!({"event":"client-typing","channel":"private-chat","data":"123"}));
    assert_eq!(client.expect_error(4200), INVALID);
    client.assert_alive();
}

#[test]
fn resending_connection_established_gets_the_same_socket_id() {
    let server = TestServer::builder()
        .config(&app_config("activity_timeout = 45"))
        .start();
    let (mut client, socket_id) = server.connect_established();
    client.send_json(&json!({"event":"pusher:connection_established","data":{}}));
    let msg = client.recv_json();
    let (again, timeout) = support::established_data(&msg);
    assert_eq!(again, socket_id);
    assert_eq!(timeout, 45);
    client.assert_alive();
}

#[test]
fn client_events_when_disabled_get_4301() {
    let server = TestServer::builder()
        .config(&app_config(r#"accept_client_events_from = "none""#))
        .start();
    let (mut client, _) = server.connect_established();
    client.send_json(
        &json!({"event":"client-typing","channel":"private-chat.1","data":{"typing":true}}),
    );
    assert_eq!(
        client.expect_error(4301),
        "The app does not have client messaging enabled."
    );
    client.assert_alive();
}

#[test]
fn client_events_in_members_mode_need_a_subscription() {
    let server = TestServer::builder()
        .config(&app_config(r#"accept_client_events_from = "members""#))
        .start();
    let (mut client, _) = server.connect_established();
    client.send_json(
        &json!({"event":"client-typing","channel":"private-chat.1","data":{"typing":true}}),
    );
    assert_eq!(
        client.expect_error(4009),
        "The client is not a member of the specified channel."
    );
    // `null` data and no data are allowed shapes too.
    client.send_json(&json!({"event":"client-typing","channel":"private-chat.1","data":null}));
    assert_eq!(
        client.expect_error(4009),
        "The client is not a member of the specified channel."
    );
    client.send_json(&json!({"event":"client-typing","channel":"private-chat.1"}));
    assert_eq!(
        client.expect_error(4009),
        "The client is not a member of the specified channel."
    );
    client.assert_alive();
}

#[test]
fn client_events_without_a_channel_or_with_scalar_data_get_4200() {
    let server = TestServer::builder().start();
    let (mut client, _) = server.connect_established();
    for bad in [
        json!({"event":"client-typing","data":{}}),
        json!({"event":"client-typing","channel":5,"data":{}}),
        json!({"event":"client-typing","channel":"private-chat","data":true}),
        json!({"event":"client-typing","channel":"private-chat","data":7}),
    ] {
        client.send_json(&bad);
        assert_eq!(client.expect_error(4200), INVALID, "for {bad}");
    }
    client.assert_alive();
}

#[test]
fn events_that_are_neither_pusher_nor_client_are_ignored() {
    for mode in ["none", "members", "all"] {
        let server = TestServer::builder()
            .config(&app_config(&format!(
                "accept_client_events_from = \"{mode}\""
            )))
            .start();
        let (mut client, _) = server.connect_established();
        client.send_json(&json!({"event":"my-event","channel":"orders","data":{"a":1}}));
        client.send_json(&json!({"event":"Client-typing","channel":"orders","data":{}}));
        client.expect_silence(Duration::from_millis(300));
        client.assert_alive();
    }
}
