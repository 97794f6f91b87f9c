//! The `allowed_origins` check: `"*"`, exact hosts, `*` wildcards, scheme and port
//! ignored, and the full refusal (error 4009, Close 4009, socket closed).

mod support;

use support::{app_config, Client, TestServer, APP_KEY};

/// Connect with this Origin (or none): true if admitted; a refusal is checked in full.
fn admitted(server: &TestServer, origin: Option<&str>) -> bool {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
    let mut client = Client::connect(&server.ws_url(APP_KEY), &headers);
    let msg = client.recv_json();
    if msg["event"] == "pusher:connection_established" {
        client.assert_alive();
        return true;
    }
    assert_eq!(
        msg,
        serde_json::json!({
            "event": "pusher:error",
            "data": r#"{"code":4009,"message":"Origin not allowed"}"#
        }),
        "origin {origin:?}"
    );
    assert_eq!(
        client.expect_close(),
        (4009, "Origin not allowed".to_string()),
        "origin {origin:?}"
    );
    client.expect_gone();
    false
}

#[test]
fn a_star_entry_allows_any_origin_and_none() {
    // The default allowed_origins is ["*"].
    let server = TestServer::builder().start();
    assert!(admitted(&server, None));
    assert!(admitted(&server, Some("https://anything.example:1234")));
    assert!(admitted(&server, Some("null")));
    let server = TestServer::builder()
        .config(&app_config(r#"allowed_origins = ["laravel.com", "*"]"#))
        .start();
    assert!(admitted(&server, None));
    assert!(admitted(&server, Some("https://elsewhere.test")));
}

#[test]
fn exact_hosts_match_whole_with_scheme_and_port_dropped() {
    let server = TestServer::builder()
        .config(&app_config(
            r#"allowed_origins = ["laravel.com", "localhost"]"#,
        ))
        .start();
    assert!(admitted(&server, Some("https://laravel.com")));
    assert!(admitted(&server, Some("http://laravel.com:8443")));
    assert!(admitted(&server, Some("http://localhost:5173")));
    assert!(!admitted(&server, Some("https://sub.laravel.com")));
    assert!(!admitted(&server, Some("https://laravel.com.evil.test")));
    assert!(!admitted(&server, Some("https://notlaravel.com")));
}

#[test]
fn a_wildcard_matches_subdomains_but_not_the_bare_domain() {
    let server = TestServer::builder()
        .config(&app_config(r#"allowed_origins = ["*.example.com"]"#))
        .start();
    assert!(admitted(&server, Some("https://a.example.com")));
    assert!(admitted(&server, Some("http://a.b.example.com:8080")));
    assert!(!admitted(&server, Some("https://example.com")));
    assert!(!admitted(&server, Some("https://example.com.evil.test")));
}

#[test]
fn without_a_star_a_missing_or_schemeless_origin_is_refused() {
    let server = TestServer::builder()
        .config(&app_config(r#"allowed_origins = ["laravel.com"]"#))
        .start();
    assert!(!admitted(&server, None));
    assert!(!admitted(&server, Some("null")));
    assert!(!admitted(&server, Some("laravel.com")));
    // Still serving after the refusals.
    assert!(admitted(&server, Some("https://laravel.com")));
}

#[test]
fn an_entry_with_a_scheme_never_matches() {
    let server = TestServer::builder()
        .config(&app_config(r#"allowed_origins = ["https://laravel.com"]"#))
        .start();
    assert!(!admitted(&server, Some("https://laravel.com")));
}
