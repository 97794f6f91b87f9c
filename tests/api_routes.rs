//! Routing of the HTTP API (http-api.md §1, §4): the route table, 404 `Not found.` for
//! unknown paths, 405 with `Allow` for a known path with the wrong method, 404 for an
//! unknown app id, the order of the checks (size/parse, route, app, signature, JSON,
//! validation, limits), percent-decoded path segments, and `GET /up`.

mod support;

use serde_json::json;
use support::http_api::*;
use support::raw::{self, HttpResponse};
use support::{app_config, TestServer, APP_ID, APP_KEY};

fn server() -> TestServer {
    TestServer::start(&app_config(""), 1)
}

/// An unsigned request (no query) with `Connection: close`.
fn unsigned(server: &TestServer, method: &str, path: &str, body: &str) -> HttpResponse {
    send_raw(server, &request_bytes(method, path, body.as_bytes(), true))
}

#[test]
fn every_route_answers_with_a_valid_signature() {
    let server = server();
    let cases: [(&str, &str, &str, &str); 7] = [
        (
            "POST",
            "/events",
            r#"{"name":"a","channel":"c","data":"d"}"#,
            "{}",
        ),
        (
            "POST",
            "/batch_events",
            r#"{"batch":[{"name":"a","channel":"c","data":"d"}]}"#,
            r#"{"batch":{}}"#,
        ),
        ("GET", "/channels", "", r#"{"channels":{}}"#),
        ("GET", "/channels/orders", "", r#"{"occupied":false}"#),
        ("GET", "/channels/presence-a/users", "", "{}"),
        ("GET", "/connections", "", r#"{"connections":0}"#),
        ("POST", "/users/7/terminate_connections", "{}", "{}"),
    ];
    for (method, rest, body, answer) in cases {
        let r = api(&server, method, rest, &[], body);
        let status = if rest.ends_with("/users") { 404 } else { 200 };
        assert_json_raw(&r, status, answer);
    }
}

#[test]
fn unknown_paths_are_404_not_found() {
    let server = server();
    for rest in [
        "",
        "/",
        "/event",
        "/events/",
        "/events/extra",
        "/channels/",
        "/channels/orders/",
        "/channels/orders/user",
        "/channels/orders/users/",
        "/channels/orders/users/x",
        "/channels//users",
        "/users",
        "/users/7",
        "/users//terminate_connections",
        "/users/7/terminate_connections/",
        "/users/7/terminate",
        "/connections/",
        "/Events",
    ] {
        let path = app_path(rest);
        for method in ["GET", "POST"] {
            // Signed or not: the route is checked first.
            let r = call_signed(&server, &Signer::default(), method, &path, &[], "");
            assert_text(&r, 404, "Not found.");
            let r = unsigned(&server, method, &path, "");
            assert_text(&r, 404, "Not found.");
        }
    }
    for path in [
        "/apps",
        "/apps/",
        "/app",
        "/nope",
        "/apps//events",
        "/APPS/123456/events",
    ] {
        let r = unsigned(&server, "GET", path, "");
        assert_text(&r, 404, "Not found.");
    }
}

#[test]
fn a_wrong_method_is_405_with_allow() {
    let server = server();
    let cases = [
        ("/events", "POST"),
        ("/batch_events", "POST"),
        ("/channels", "GET"),
        ("/channels/orders", "GET"),
        ("/channels/presence-a/users", "GET"),
        ("/connections", "GET"),
        ("/users/7/terminate_connections", "POST"),
    ];
    for (rest, allowed) in cases {
        let wrong_methods: &[&str] = if allowed == "GET" {
            &["POST", "PUT", "DELETE", "PATCH"]
        } else {
            &["GET", "PUT", "DELETE", "PATCH"]
        };
        for method in wrong_methods {
            // Even a valid signature for the wrong method gets 405, not 401.
            let r = call_signed(
                &server,
                &Signer::default(),
                method,
                &app_path(rest),
                &[],
                "",
            );
            assert_text(&r, 405, "Method not allowed.");
            assert_eq!(r.header("allow"), Some(allowed), "{method} {rest}: {r:?}");
            // Unsigned, and for an unknown app: the method check comes first.
            let r = unsigned(&server, method, &format!("/apps/nope{rest}"), "");
            assert_text(&r, 405, "Method not allowed.");
            assert_eq!(r.header("allow"), Some(allowed), "{method} {rest}: {r:?}");
        }
    }
}

#[test]
fn an_unknown_app_id_is_404_naming_it() {
    let server = server();
    for (method, rest, body) in [
        (
            "POST",
            "/events",
            r#"{"name":"a","channel":"c","data":"d"}"#,
        ),
        ("POST", "/batch_events", r#"{"batch":[]}"#),
        ("GET", "/channels", ""),
        ("GET", "/channels/orders", ""),
        ("GET", "/channels/presence-a/users", ""),
        ("GET", "/connections", ""),
        ("POST", "/users/7/terminate_connections", "{}"),
    ] {
        // Signed (with the demo secret) or not: the app is checked before the signature.
        let path = format!("/apps/999{rest}");
        let r = call_signed(&server, &Signer::default(), method, &path, &[], body);
        assert_text(&r, 404, "No matching application for ID [999].");
        let r = unsigned(&server, method, &path, body);
        assert_text(&r, 404, "No matching application for ID [999].");
    }
}

#[test]
fn the_app_is_found_by_id_not_by_key() {
    let server = server();
    let path = format!("/apps/{APP_KEY}/channels");
    let r = call_signed(&server, &Signer::default(), "GET", &path, &[], "");
    assert_text(
        &r,
        404,
        &format!("No matching application for ID [{APP_KEY}]."),
    );
    // Ids are compared exactly (Reverb's loose `123456.0` match is not copied).
    let path = format!("/apps/{APP_ID}.0/channels");
    let r = call_signed(&server, &Signer::default(), "GET", &path, &[], "");
    assert_text(
        &r,
        404,
        &format!("No matching application for ID [{APP_ID}.0]."),
    );
}

#[test]
fn path_segments_are_matched_after_percent_decoding() {
    let server = server();
    // `%31%32%33456` is `123456`; `%65vents` is `events`. Signed over the raw path.
    let r = call_signed(
        &server,
        &Signer::default(),
        "GET",
        "/apps/%31%32%33456/channels",
        &[],
        "",
    );
    assert_json_raw(&r, 200, r#"{"channels":{}}"#);
    let body = r#"{"name":"a","channel":"c","data":"d"}"#;
    let r = call_signed(
        &server,
        &Signer::default(),
        "POST",
        &format!("/apps/{APP_ID}/%65vents"),
        &[],
        body,
    );
    assert_json_raw(&r, 200, "{}");
    // The unknown-app message shows the decoded id.
    let r = unsigned(&server, "GET", "/apps/a%20b/channels", "");
    assert_text(&r, 404, "No matching application for ID [a b].");
}

#[test]
fn the_order_of_checks() {
    let server = server();
    // 1 before 2: a request over max_request_size on an unknown path is 413.
    let big = "x".repeat(20_000);
    let r = unsigned(&server, "POST", "/nope", &big);
    assert_text(&r, 413, "Payload too large.");
    // 2 before 3: unknown route of an unknown app is `Not found.`.
    let r = unsigned(&server, "GET", "/apps/999/nope", "");
    assert_text(&r, 404, "Not found.");
    // 3 before 4: unknown app with a bad signature.
    let r = unsigned(&server, "POST", "/apps/999/events", "{");
    assert_text(&r, 404, "No matching application for ID [999].");
    // 4 before 5: bad JSON with a bad signature is 401.
    let r = unsigned(&server, "POST", &app_path("/events"), "{");
    assert_text(&r, 401, "Unknown auth_key.");
    let signer = Signer {
        secret: "wrong".into(),
        ..Signer::default()
    };
    let r = call_signed(&server, &signer, "POST", &app_path("/events"), &[], "{");
    assert_text(&r, 401, "Authentication signature invalid.");
    // 5 before 6: bad JSON with a valid signature is 400.
    let r = api(&server, "POST", "/events", &[], "{");
    assert_text(&r, 400, "Invalid JSON body.");
    // 6 before 7: a body that breaks both validation and a Pusher limit is 422.
    let channels: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let r = trigger(&server, &json!({"channels": channels, "data": "x"}));
    assert_json(&r, 422, &json!({"name":["The name field is required."]}));
    // 7: valid but over a limit.
    let r = trigger(
        &server,
        &json!({"name":"a","channels": channels, "data": "x"}),
    );
    assert_text(&r, 400, "Too many channels: at most 100 per event.");
}

#[test]
fn up_is_unsigned_and_answers_health_ok() {
    let server = server();
    let r = raw::get(&server.addr(), "/up");
    assert_json_raw(&r, 200, r#"{"health":"OK"}"#);
    assert_eq!(r.header("content-length"), Some("15"));
    // Query strings (even a bad signature) do not matter.
    let r = raw::get(&server.addr(), "/up?auth_signature=x");
    assert_json_raw(&r, 200, r#"{"health":"OK"}"#);
    // Another method: 405 naming GET.
    let r = unsigned(&server, "POST", "/up", "");
    assert_text(&r, 405, "Method not allowed.");
    assert_eq!(r.header("allow"), Some("GET"));
}

#[test]
fn up_and_the_api_live_under_the_prefix() {
    let server = TestServer::builder().arg("--path").arg("ws").start();
    assert_json_raw(
        &raw::get(&server.addr(), "/ws/up"),
        200,
        r#"{"health":"OK"}"#,
    );
    assert_text(&raw::get(&server.addr(), "/up"), 404, "Not found.");
    let r = unsigned(&server, "GET", "/ws/apps/999/channels", "");
    assert_text(&r, 404, "No matching application for ID [999].");
    let r = unsigned(&server, "GET", "/ws/apps/123456/nope", "");
    assert_text(&r, 404, "Not found.");
}

#[test]
fn responses_are_http_1_1_with_content_length_and_no_cors_or_powered_by() {
    let server = server();
    let target = Signer::default().target("GET", &app_path("/channels"), &[], b"");
    let (r, _stream) =
        raw::http_exchange(&server.addr(), &request_bytes("GET", &target, b"", true));
    assert_json_raw(&r, 200, r#"{"channels":{}}"#);
    assert_eq!(r.header("content-length"), Some("15"));
    for header in [
        "access-control-allow-origin",
        "x-powered-by",
        "transfer-encoding",
    ] {
        assert_eq!(r.header(header), None, "{r:?}");
    }
    // The status line itself.
    let mut stream = raw::connect(&server.addr());
    std::io::Write::write_all(&mut stream, &request_bytes("GET", &target, b"", true)).unwrap();
    let mut head = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut head);
    assert!(
        head.starts_with(b"HTTP/1.1 200 "),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
}
