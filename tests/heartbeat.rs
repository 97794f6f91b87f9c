//! Heartbeats with `ping_interval = 1`: the server pings silent clients, keeps those that
//! answer, drops those that do not (4201), pings control-frame clients with Ping frames,
//! and answers WebSocket Pings with Pongs.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::raw::{close_payload, FIN, OP_CLOSE, OP_PING, OP_PONG};
use support::{app_config, RawWs, Received, TestServer};

/// One heartbeat tick is one second; allow a ping within three.
const PING_WITHIN: Duration = Duration::from_secs(3);

fn fast_pings() -> TestServer {
    TestServer::builder()
        .config(&app_config("ping_interval = 1"))
        .start()
}

#[test]
fn a_silent_client_receives_pusher_ping() {
    let server = fast_pings();
    let (mut client, _) = server.connect_established();
    match client.recv_within(PING_WITHIN) {
        Received::Json(msg) => assert_eq!(msg.to_string(), r#"{"event":"pusher:ping"}"#),
        other => panic!("expected pusher:ping, got {other:?}"),
    }
}

#[test]
fn answering_with_pong_keeps_the_connection() {
    let server = fast_pings();
    let (mut client, _) = server.connect_established();
    // Three ping/pong rounds: long past the point where an unanswered ping is dropped.
    for round in 0..3 {
        match client.recv_within(PING_WITHIN) {
            Received::Json(msg) => {
                assert_eq!(msg, json!({"event":"pusher:ping"}), "round {round}")
            }
            other => panic!("round {round}: expected pusher:ping, got {other:?}"),
        }
        client.send_json(&json!({"event":"pusher:pong","data":{}}));
    }
    client.assert_alive();
}

#[test]
fn any_message_counts_as_activity() {
    let server = fast_pings();
    let (mut client, _) = server.connect_established();
    // Talking every 200 ms for 3 s: never silent for a whole interval, so never pinged
    // (a pusher:ping from the server would show up instead of a pong).
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        client.assert_alive();
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_client_that_never_answers_is_dropped_with_4201() {
    let server = fast_pings();
    let (mut client, _) = server.connect_established();
    match client.recv_within(PING_WITHIN) {
        Received::Json(msg) => assert_eq!(msg, json!({"event":"pusher:ping"})),
        other => panic!("expected pusher:ping, got {other:?}"),
    }
    match client.recv_within(PING_WITHIN) {
        Received::Json(msg) => assert_eq!(
            msg,
            json!({"event":"pusher:error","data":r#"{"code":4201,"message":"Pong reply not received in time"}"#})
        ),
        other => panic!("expected the 4201 error, got {other:?}"),
    }
    assert_eq!(
        client.expect_close(),
        (4201, "Pong reply not received in time".to_string())
    );
    client.expect_gone();
}

#[test]
fn a_control_frame_client_is_pinged_with_ping_frames() {
    let server = fast_pings();
    // Raw, so that nothing answers the server's Ping behind the test's back.
    let (mut ws, _) = RawWs::established(&server.addr());
    ws.send_frame(FIN | OP_PING, b"hi");
    let pong = ws.expect_frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (OP_PONG, &b"hi"[..])
    );
    // From now on the server's heartbeat is a WebSocket Ping (empty), not pusher:ping.
    let ping = ws.expect_frame();
    assert_eq!(ping.opcode, OP_PING, "{ping:?}");
    assert!(ping.payload.is_empty(), "{ping:?}");
    // Answering with a Pong frame keeps it alive through the next rounds.
    ws.send_frame(FIN | OP_PONG, b"");
    let again = ws.expect_frame();
    assert_eq!(again.opcode, OP_PING, "{again:?}");
    ws.send_frame(FIN | OP_PONG, b"");
    ws.assert_alive();
    // Never answering it gets the same 4201 ending.
    let ping = ws.expect_frame();
    assert_eq!(ping.opcode, OP_PING, "{ping:?}");
    assert_eq!(
        ws.expect_json(),
        json!({"event":"pusher:error","data":r#"{"code":4201,"message":"Pong reply not received in time"}"#})
    );
    assert_eq!(ws.expect_close().0, 4201);
    ws.send_frame(FIN | OP_CLOSE, &close_payload(4201, ""));
    ws.expect_closed_within(Duration::from_secs(5));
}

#[test]
fn a_websocket_ping_gets_a_pong_with_the_same_payload() {
    let server = TestServer::builder().start();
    let (mut ws, _) = RawWs::established(&server.addr());
    for payload in [&b""[..], b"x", &[0u8, 255, 1, 2, 3][..], &[b'p'; 125][..]] {
        ws.send_frame(FIN | OP_PING, payload);
        let pong = ws.expect_frame();
        assert_eq!(pong.opcode, OP_PONG, "{pong:?}");
        assert!(pong.fin);
        assert_eq!(pong.payload, payload);
    }
    // Unsolicited Pongs get no answer.
    ws.send_frame(FIN | OP_PONG, b"unsolicited");
    ws.expect_silence(Duration::from_millis(300));
    ws.assert_alive();
}
