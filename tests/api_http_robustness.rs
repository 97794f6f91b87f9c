//! HTTP mechanics of the API port (http-api.md §2): keep-alive (several and pipelined
//! requests on one socket), `Connection: close` and HTTP/1.0 honoured, chunked bodies
//! answered (411 or accepted) without hanging, and hostile input — bad request lines,
//! huge or too many headers, bad `Content-Length`, a slow-loris body, bad
//! percent-encoding and raw bytes in the path — answered with a 4xx (never a 5xx, never
//! a hang) while the server keeps serving.

mod support;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use serde_json::json;
use support::http_api::*;
use support::raw::{self, wait_closed, HttpResponse};
use support::{app_config, TestServer};

fn start() -> TestServer {
    TestServer::start(&app_config(""), 1)
}

/// A normal API request and a WebSocket client are still served.
fn assert_serving(server: &TestServer) {
    assert_json_raw(
        &api(server, "GET", "/channels", &[], ""),
        200,
        r#"{"channels":{}}"#,
    );
    let (mut c, _) = server.connect_established();
    alive(&mut c);
}

/// Send `bytes` on a fresh socket: a 4xx answer, then the server closes the socket.
fn refused_and_closed(server: &TestServer, bytes: &[u8]) -> HttpResponse {
    let (r, mut stream) = raw::http_exchange(&server.addr(), bytes);
    assert!(
        (400..500).contains(&r.status),
        "{r:?} for {:?}",
        String::from_utf8_lossy(bytes)
    );
    wait_closed(&mut stream, Duration::from_secs(5));
    r
}

fn signed_get(rest: &str) -> Vec<u8> {
    let target = Signer::default().target("GET", &app_path(rest), &[], b"");
    request_bytes("GET", &target, b"", false)
}

#[test]
fn two_api_requests_on_one_keep_alive_socket() {
    let server = start();
    let mut conn = KeepAlive::open(&server);
    let r = conn.api("GET", "/channels", &[], "");
    assert_json_raw(&r, 200, r#"{"channels":{}}"#);
    assert_eq!(r.header("connection"), None, "{r:?}");
    let r = conn.api(
        "POST",
        "/events",
        &[],
        r#"{"name":"e","channel":"c","data":"d"}"#,
    );
    assert_json_raw(&r, 200, "{}");
    let r = conn.exchange(b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_json_raw(&r, 200, r#"{"health":"OK"}"#);
    let r = conn.api("GET", "/connections", &[], "");
    assert_json_raw(&r, 200, r#"{"connections":0}"#);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = start();
    let mut conn = KeepAlive::open(&server);
    let mut bytes = signed_get("/channels");
    let body = br#"{"name":"e","channel":"c","data":"d"}"#;
    let target = Signer::default().target("POST", &app_path("/events"), &[], body);
    bytes.extend(request_bytes("POST", &target, body, false));
    bytes.extend(signed_get("/channels/c"));
    bytes.extend(b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n");
    conn.stream.write_all(&bytes).unwrap();
    assert_json_raw(&conn.read(), 200, r#"{"channels":{}}"#);
    assert_json_raw(&conn.read(), 200, "{}");
    assert_json_raw(&conn.read(), 200, r#"{"occupied":false}"#);
    assert_json_raw(&conn.read(), 200, r#"{"health":"OK"}"#);
}

#[test]
fn connection_close_is_honoured() {
    let server = start();
    let target = Signer::default().target("GET", &app_path("/channels"), &[], b"");
    let (r, mut stream) =
        raw::http_exchange(&server.addr(), &request_bytes("GET", &target, b"", true));
    assert_json_raw(&r, 200, r#"{"channels":{}}"#);
    assert_eq!(r.header("connection"), Some("close"));
    wait_closed(&mut stream, Duration::from_secs(5));
    // Also after an error answer.
    let (r, mut stream) = raw::http_exchange(
        &server.addr(),
        &request_bytes("GET", &app_path("/channels"), b"", true),
    );
    assert_eq!(r.status, 401);
    wait_closed(&mut stream, Duration::from_secs(5));
}

#[test]
fn http_1_0_requests_are_answered_then_closed() {
    let server = start();
    let target = Signer::default().target("GET", &app_path("/channels"), &[], b"");
    let request = format!("GET {target} HTTP/1.0\r\nHost: x\r\n\r\n");
    let (r, mut stream) = raw::http_exchange(&server.addr(), request.as_bytes());
    assert_json_raw(&r, 200, r#"{"channels":{}}"#);
    wait_closed(&mut stream, Duration::from_secs(5));
}

#[test]
fn a_chunked_body_is_answered_411_or_accepted_and_never_hangs() {
    let server = start();
    let body = br#"{"name":"e","channel":"c","data":"d"}"#;
    let target = Signer::default().target("POST", &app_path("/events"), &[], body);
    let mut request = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request.extend_from_slice(b"\r\n0\r\n\r\n");
    let (r, mut stream) = raw::http_exchange(&server.addr(), &request);
    match r.status {
        411 => {
            assert_text(&r, 411, "Length required.");
            wait_closed(&mut stream, Duration::from_secs(5));
        }
        200 => assert_json_raw(&r, 200, "{}"),
        other => panic!("chunked body answered {other}: {r:?}"),
    }
    // Chunked headers without any body bytes sent yet: an answer, not a wait.
    let head = format!("POST {target} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut stream = raw::connect(&server.addr());
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.shutdown(Shutdown::Write);
    let (ending, _) = wait_closed(&mut stream, Duration::from_secs(15));
    let _ = ending;
    assert_serving(&server);
}

#[test]
fn bad_request_lines_are_400_and_closed() {
    let server = start();
    for bytes in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /up\r\n\r\n",
        b"GET /up FOO/1.1\r\n\r\n",
        b"GET /a b/c HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\r\nGET /up HTTP/1.1\r\n\tbad header\r\n\r\n",
        b"GET /up HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"G\x00T /up HTTP/1.1\r\n\r\n",
    ] {
        let r = refused_and_closed(&server, bytes);
        assert_text(&r, 400, "Bad request.");
    }
    assert_serving(&server);
}

#[test]
fn huge_or_too_many_headers_are_refused_and_closed() {
    let server = start();
    let target = Signer::default().target("GET", &app_path("/channels"), &[], b"");
    let huge = format!(
        "GET {target} HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "f".repeat(50_000)
    );
    let (r, mut stream) = raw::http_exchange(&server.addr(), huge.as_bytes());
    assert_text(&r, 413, "Payload too large.");
    wait_closed(&mut stream, Duration::from_secs(5));
    let mut many = format!("GET {target} HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    refused_and_closed(&server, many.as_bytes());
    assert_serving(&server);
}

#[test]
fn a_bad_content_length_is_400_and_closed() {
    let server = start();
    let target = Signer::default().target("POST", &app_path("/events"), &[], b"{}");
    for header in [
        "Content-Length: abc",
        "Content-Length: -1",
        "Content-Length: 1e3",
        "Content-Length: 2, 3",
    ] {
        let request = format!("POST {target} HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\n{{}}");
        let r = refused_and_closed(&server, request.as_bytes());
        assert_text(&r, 400, "Bad request.");
    }
    assert_serving(&server);
}

#[test]
fn a_body_shorter_than_its_content_length_never_hangs_the_server() {
    let server = start();
    let target = Signer::default().target("POST", &app_path("/events"), &[], b"{}");
    let request = format!("POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{}}");
    let mut stream = raw::connect(&server.addr());
    stream.write_all(request.as_bytes()).unwrap();
    // The client gives up sending: the server sees the end and closes its side.
    stream.shutdown(Shutdown::Write).unwrap();
    wait_closed(&mut stream, Duration::from_secs(15));
    assert_serving(&server);
}

#[test]
fn a_slow_loris_body_is_cut_off_while_others_are_served() {
    let server = start();
    let target = Signer::default().target("POST", &app_path("/events"), &[], b"{}");
    let request =
        format!("POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{\"name\":");
    let mut stream = raw::connect(&server.addr());
    stream.write_all(request.as_bytes()).unwrap();
    // Meanwhile the (single) shard serves everyone else.
    assert_serving(&server);
    // The server ends the stalled request by itself: a 408, or just the close. The
    // bound is generous; the server's own deadline is what ends it.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the server kept a stalled request open for 30 s")
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(
        seen.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected answer {text:?}"
    );
    assert_serving(&server);
}

#[test]
fn bad_percent_encoding_in_the_path_is_a_4xx_and_the_server_keeps_serving() {
    let server = start();
    let paths = [
        "/apps/123456/channels/%zz",
        "/apps/123456/channels/%",
        "/apps/123456/channels/%f",
        "/apps/123456/channels/%ff/users",
        "/apps/123456/channels/%00",
        "/apps/123456/channels/%C3%28",
        "/apps/%zz/channels",
        "/apps/%ff%fe/events",
        "/apps/123456/users/%/terminate_connections",
        "/%zz",
        "/up%zz",
        "/app%",
        "/app/%zz",
        "/app/app-key%",
    ];
    for path in paths {
        for method in ["GET", "POST"] {
            // Unsigned, keep-alive requested: a 4xx; then the socket is closed or
            // still serves a good request.
            let mut conn = KeepAlive::open(&server);
            let r = conn.exchange(&request_bytes(method, path, b"", false));
            assert!((400..500).contains(&r.status), "{method} {path}: {r:?}");
            if r.header("connection") == Some("close") {
                wait_closed(&mut conn.stream, Duration::from_secs(5));
            } else {
                let r = conn.exchange(&signed_get("/channels"));
                assert_json_raw(&r, 200, r#"{"channels":{}}"#);
            }
            // Signed over the path as sent: never a 5xx.
            let r = call_signed(&server, &Signer::default(), method, path, &[], "");
            assert!(r.status < 500, "{method} {path} (signed): {r:?}");
        }
    }
    assert_serving(&server);
}

#[test]
fn raw_non_ascii_bytes_in_the_path_are_a_4xx() {
    let server = start();
    for bytes in [
        &b"GET /apps/123456/channels/\xff HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET /apps/123456/channels/\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /up HTTP/1.1\r\nHost: \xff\r\n\r\n",
    ] {
        let (r, _stream) = raw::http_exchange(&server.addr(), bytes);
        assert!(
            (400..500).contains(&r.status) || (r.status == 200 && bytes.ends_with(b"\xff\r\n\r\n")),
            "{r:?} for {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert_serving(&server);
}

#[test]
fn error_answers_are_plain_text_with_content_length() {
    let server = start();
    let r = refused_and_closed(&server, b"GARBAGE\r\n\r\n");
    assert_text(&r, 400, "Bad request.");
    let r = api(&server, "GET", "/nope", &[], "");
    assert_text(&r, 404, "Not found.");
    let r = api(&server, "POST", "/events", &[], "{");
    assert_text(&r, 400, "Invalid JSON body.");
    let r = trigger(&server, &json!({}));
    assert_eq!(r.header("content-type"), Some(JSON));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
}
