//! The WebSocket frame layer over raw TCP: protocol violations (1002), invalid UTF-8
//! (1007), fragmentation, and the closing handshake.

mod support;

use std::time::Duration;

use serde_json::json;
use support::raw::{
    close_payload, frame_bytes, FIN, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
};
use support::{RawWs, TestServer};

const CLOSED_WITHIN: Duration = Duration::from_secs(5);

/// Send `bytes` on an established connection; expect Close `code` and the TCP end.
fn expect_violation(server: &TestServer, bytes: &[u8], code: u16) {
    let (mut ws, _) = RawWs::established(&server.addr());
    ws.write_raw(bytes);
    let (got, _reason) = ws.expect_close();
    assert_eq!(got, code, "for {bytes:02x?}");
    ws.expect_closed_within(CLOSED_WITHIN);
    // The shard survived.
    let (mut next, _) = RawWs::established(&server.addr());
    next.assert_alive();
}

#[test]
fn an_unmasked_client_frame_is_a_protocol_error() {
    let server = TestServer::builder().start();
    expect_violation(
        &server,
        &frame_bytes(FIN | OP_TEXT, false, br#"{"event":"pusher:ping"}"#),
        1002,
    );
}

#[test]
fn reserved_bits_are_a_protocol_error() {
    let server = TestServer::builder().start();
    for rsv in [0x40, 0x20, 0x10] {
        expect_violation(
            &server,
            &frame_bytes(FIN | rsv | OP_TEXT, true, br#"{"event":"pusher:ping"}"#),
            1002,
        );
    }
}

#[test]
fn unknown_opcodes_are_a_protocol_error() {
    let server = TestServer::builder().start();
    for opcode in [0x3, 0x7, 0xB, 0xF] {
        expect_violation(&server, &frame_bytes(FIN | opcode, true, b"x"), 1002);
    }
}

#[test]
fn bad_control_frames_and_continuations_are_protocol_errors() {
    let server = TestServer::builder().start();
    // Ping over 125 bytes.
    expect_violation(&server, &frame_bytes(FIN | OP_PING, true, &[0; 126]), 1002);
    // Fragmented ping.
    expect_violation(&server, &frame_bytes(OP_PING, true, b"a"), 1002);
    // Continuation with nothing started.
    expect_violation(&server, &frame_bytes(FIN | OP_CONT, true, b"a"), 1002);
    // A new data frame inside a fragmented message.
    let mut bytes = frame_bytes(OP_TEXT, true, b"{\"event\":");
    bytes.extend(frame_bytes(FIN | OP_TEXT, true, b"{}"));
    expect_violation(&server, &bytes, 1002);
    // A close frame with a one-byte payload.
    expect_violation(&server, &frame_bytes(FIN | OP_CLOSE, true, &[3]), 1002);
}

#[test]
fn invalid_utf8_text_closes_with_1007() {
    let server = TestServer::builder().start();
    expect_violation(
        &server,
        &frame_bytes(FIN | OP_TEXT, true, b"{\"event\":\"\xff\xfe\"}"),
        1007,
    );
    // Split across fragments: the invalid sequence is still found.
    let mut bytes = frame_bytes(OP_TEXT, true, b"{\"event\":\"\xed");
    bytes.extend(frame_bytes(FIN | OP_CONT, true, b"\xa0\x80\"}"));
    expect_violation(&server, &bytes, 1007);
}

#[test]
fn a_fragmented_message_is_reassembled() {
    let server = TestServer::builder().start();
    let (mut ws, _) = RawWs::established(&server.addr());
    let mut bytes = frame_bytes(OP_TEXT, true, b"{\"event\":\"pus");
    bytes.extend(frame_bytes(OP_CONT, true, b"her:pi"));
    // A control frame may sit between fragments.
    bytes.extend(frame_bytes(FIN | OP_PING, true, b"mid"));
    bytes.extend(frame_bytes(FIN | OP_CONT, true, b"ng\",\"data\":{}}"));
    ws.write_raw(&bytes);
    let pong = ws.expect_frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (OP_PONG, &b"mid"[..])
    );
    assert_eq!(ws.expect_json(), json!({"event":"pusher:pong"}));
    // Sent one byte at a time, frames still decode.
    for byte in frame_bytes(FIN | OP_TEXT, true, br#"{"event":"pusher:ping"}"#) {
        ws.write_raw(&[byte]);
    }
    assert_eq!(ws.expect_json(), json!({"event":"pusher:pong"}));
    // Binary fragments too.
    let mut bytes = frame_bytes(OP_BINARY, true, b"{\"event\":");
    bytes.extend(frame_bytes(FIN | OP_CONT, true, b"\"pusher:ping\"}"));
    ws.write_raw(&bytes);
    assert_eq!(ws.expect_json(), json!({"event":"pusher:pong"}));
}

#[test]
fn several_messages_in_one_segment_are_all_answered() {
    let server = TestServer::builder().start();
    let (mut ws, _) = RawWs::established(&server.addr());
    let mut bytes = Vec::new();
    for _ in 0..20 {
        bytes.extend(frame_bytes(
            FIN | OP_TEXT,
            true,
            br#"{"event":"pusher:ping"}"#,
        ));
    }
    ws.write_raw(&bytes);
    for _ in 0..20 {
        assert_eq!(ws.expect_json(), json!({"event":"pusher:pong"}));
    }
}

#[test]
fn a_client_close_is_echoed_and_the_socket_closed() {
    let server = TestServer::builder().start();
    let (mut ws, _) = RawWs::established(&server.addr());
    ws.send_frame(FIN | OP_CLOSE, &close_payload(1001, "bye"));
    assert_eq!(ws.expect_close(), (1001, "bye".to_string()));
    ws.expect_closed_within(CLOSED_WITHIN);
}

#[test]
fn an_empty_client_close_is_answered_with_1000() {
    let server = TestServer::builder().start();
    let (mut ws, _) = RawWs::established(&server.addr());
    ws.send_frame(FIN | OP_CLOSE, b"");
    assert_eq!(ws.expect_close(), (1000, String::new()));
    ws.expect_closed_within(CLOSED_WITHIN);
}

#[test]
fn a_close_with_an_invalid_code_is_a_protocol_error() {
    let server = TestServer::builder().start();
    for code in [0u16, 999, 1005, 1006, 1015, 2999, 5000] {
        expect_violation(
            &server,
            &frame_bytes(FIN | OP_CLOSE, true, &close_payload(code, "")),
            1002,
        );
    }
}

#[test]
fn nothing_is_processed_after_the_client_close() {
    let server = TestServer::builder().start();
    let (mut ws, _) = RawWs::established(&server.addr());
    let mut bytes = frame_bytes(FIN | OP_CLOSE, true, &close_payload(1000, ""));
    bytes.extend(frame_bytes(
        FIN | OP_TEXT,
        true,
        br#"{"event":"pusher:ping"}"#,
    ));
    ws.write_raw(&bytes);
    assert_eq!(ws.expect_close().0, 1000);
    ws.expect_closed_within(CLOSED_WITHIN);
}
