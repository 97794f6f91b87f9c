//! The HTTP API end to end: triggers reach subscribers on both shards, queries are
//! exact, termination closes the user's sockets.

mod support;

use serde_json::json;
use support::http_api::{api, call_signed, json_of, trigger, Signer};
use support::{app_config, channel_auth, TestServer, APP_ID};

#[test]
fn trigger_reaches_subscribers_and_skips_socket_id() {
    let server = TestServer::start(&app_config(""), 2);
    let mut clients: Vec<_> = (0..6).map(|_| server.connect_established()).collect();
    for (c, _) in clients.iter_mut() {
        c.send_json(&json!({"event":"pusher:subscribe","data":{"channel":"orders"}}));
        c.recv_json();
    }
    let skip = clients[0].1.clone();
    let r = trigger(
        &server,
        &json!({"name":"order.shipped","channels":["orders"],"data":"{\"id\":42}","socket_id":skip,"info":"subscription_count"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        json_of(&r),
        json!({"channels":{"orders":{"subscription_count":6}}})
    );
    for (c, _) in clients.iter_mut().skip(1) {
        assert_eq!(
            c.recv_json(),
            json!({"event":"order.shipped","data":"{\"id\":42}","channel":"orders"})
        );
    }
    clients[0].0.assert_alive();
}

#[test]
fn queries_and_terminate() {
    let server = TestServer::start(&app_config(""), 2);
    let (mut a, a_id) = server.connect_established();
    let data = r#"{"user_id":"42","user_info":{"name":"Ada"}}"#;
    let ch = "presence-room";
    a.send_json(&json!({"event":"pusher:subscribe","data":{"channel":ch,"auth":channel_auth(&a_id, ch, Some(data)),"channel_data":data}}));
    assert_eq!(
        a.recv_json()["event"],
        "pusher_internal:subscription_succeeded"
    );
    let r = api(&server, "GET", "/channels", &[("info", "user_count")], "");
    assert_eq!(
        json_of(&r),
        json!({"channels":{"presence-room":{"user_count":1}}})
    );
    let r = api(&server, "GET", &format!("/channels/{ch}/users"), &[], "");
    assert_eq!(json_of(&r), json!({"users":[{"id":"42"}]}));
    let r = api(&server, "GET", "/connections", &[], "");
    assert_eq!(json_of(&r), json!({"connections":1}));
    let r = api(
        &server,
        "POST",
        "/users/42/terminate_connections",
        &[],
        "{}",
    );
    assert_eq!((r.status, &r.body[..]), (200, &b"{}"[..]));
    assert_eq!(
        a.expect_close(),
        (1000, "Connection terminated".to_string())
    );
}

#[test]
fn wrong_secret_is_401() {
    let server = TestServer::start(&app_config(""), 1);
    let wrong = Signer {
        secret: "nope".into(),
        ..Signer::default()
    };
    let r = call_signed(
        &server,
        &wrong,
        "GET",
        &format!("/apps/{APP_ID}/channels"),
        &[],
        "",
    );
    assert_eq!(
        (r.status, &r.body[..]),
        (401, &b"Authentication signature invalid."[..])
    );
}
