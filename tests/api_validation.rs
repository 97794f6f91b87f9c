//! Trigger bodies that are not acceptable (http-api.md §4 #5–6, §5.3): malformed JSON is
//! 400 `Invalid JSON body.` (never a 5xx), valid JSON that is not an object validates as
//! `{}`, and every 422 message form of `/events` and `/batch_events` (required, must be a
//! string, must be an array, the channels/channel pair, `batch.N.field`).

mod support;

use serde_json::{json, Value};
use support::http_api::*;
use support::{app_config, TestServer};

const EMPTY_EVENT_ERRORS: &str = r#"{"name":["The name field is required."],"data":["The data field is required."],"channels":["The channels field is required when channel is not present."],"channel":["The channel field is required when channels is not present."]}"#;

fn server() -> TestServer {
    TestServer::start(&app_config(""), 1)
}

fn events_raw(server: &TestServer, body: &str) -> support::raw::HttpResponse {
    api(server, "POST", "/events", &[], body)
}

fn batch_raw(server: &TestServer, body: &str) -> support::raw::HttpResponse {
    api(server, "POST", "/batch_events", &[], body)
}

/// `/events` with `body` answers 422 with exactly these errors.
fn event_422(server: &TestServer, body: Value, errors: Value) {
    let r = trigger(server, &body);
    assert_json(&r, 422, &errors);
}

#[test]
fn malformed_json_is_400_invalid_json_body() {
    let server = server();
    let bodies: [&[u8]; 9] = [
        b"{",
        b"{\"name\":",
        b"nonsense",
        b"{} x",
        b"{\"name\":\"a\",}",
        b"'single'",
        b"\xff\xfe{}",
        b"{\"data\":\"\xc3\x28\"}",
        b"",
    ];
    for body in bodies {
        for rest in ["/events", "/batch_events"] {
            let target = Signer::default().target("POST", &app_path(rest), &[], body);
            let r = send_raw(&server, &request_bytes("POST", &target, body, true));
            assert_text(&r, 400, "Invalid JSON body.");
        }
    }
    // The server is fine afterwards.
    let r = events_raw(&server, r#"{"name":"a","channel":"c","data":"d"}"#);
    assert_json_raw(&r, 200, "{}");
}

#[test]
fn valid_json_that_is_not_an_object_validates_as_empty() {
    let server = server();
    for body in ["[]", "[1,2]", "\"text\"", "42", "null", "true", "{}"] {
        let r = events_raw(&server, body);
        assert_json_raw(&r, 422, EMPTY_EVENT_ERRORS);
        let r = batch_raw(&server, body);
        assert_json_raw(&r, 422, r#"{"batch":["The batch field is required."]}"#);
    }
}

#[test]
fn required_fields() {
    let server = server();
    event_422(
        &server,
        json!({"data":"x","channel":"c"}),
        json!({"name":["The name field is required."]}),
    );
    event_422(
        &server,
        json!({"name":"","data":"x","channel":"c"}),
        json!({"name":["The name field is required."]}),
    );
    event_422(
        &server,
        json!({"name":"a","channel":"c"}),
        json!({"data":["The data field is required."]}),
    );
    event_422(
        &server,
        json!({"name":"a","data":"","channel":"c"}),
        json!({"data":["The data field is required."]}),
    );
}

#[test]
fn fields_that_must_be_strings() {
    let server = server();
    event_422(
        &server,
        json!({"name":5,"data":"x","channel":"c"}),
        json!({"name":["The name field must be a string."]}),
    );
    event_422(
        &server,
        json!({"name":"a","data":{"id":42},"channel":"c"}),
        json!({"data":["The data field must be a string."]}),
    );
    event_422(
        &server,
        json!({"name":"a","data":true,"channel":"c"}),
        json!({"data":["The data field must be a string."]}),
    );
    event_422(
        &server,
        json!({"name":"a","data":"x","channel":5}),
        json!({"channel":["The channel field must be a string."]}),
    );
    event_422(
        &server,
        json!({"name":"a","data":"x","channel":"c","socket_id":5}),
        json!({"socket_id":["The socket id field must be a string."]}),
    );
    event_422(
        &server,
        json!({"name":"a","data":"x","channel":"c","socket_id":null}),
        json!({"socket_id":["The socket id field must be a string."]}),
    );
    event_422(
        &server,
        json!({"name":"a","data":"x","channel":"c","info":["user_count"]}),
        json!({"info":["The info field must be a string."]}),
    );
}

#[test]
fn channels_must_be_an_array() {
    let server = server();
    for channels in [json!("orders"), json!(5), json!({"a":"b"}), json!(null)] {
        event_422(
            &server,
            json!({"name":"a","data":"x","channels":channels}),
            json!({"channels":["The channels field must be an array."]}),
        );
    }
}

#[test]
fn channels_or_channel_is_required() {
    let server = server();
    event_422(
        &server,
        json!({"name":"a","data":"x"}),
        json!({
            "channels":["The channels field is required when channel is not present."],
            "channel":["The channel field is required when channels is not present."],
        }),
    );
    // Either alone is enough.
    assert_json_raw(
        &trigger(&server, &json!({"name":"a","data":"x","channel":"c"})),
        200,
        "{}",
    );
    assert_json_raw(
        &trigger(&server, &json!({"name":"a","data":"x","channels":["c"]})),
        200,
        "{}",
    );
}

#[test]
fn channel_keeps_its_string_rule_when_channels_is_given() {
    let server = server();
    event_422(
        &server,
        json!({"name":"a","data":"x","channels":["c"],"channel":5}),
        json!({"channel":["The channel field must be a string."]}),
    );
    event_422(
        &server,
        json!({"name":"a","data":"x","channels":"c","channel":5}),
        json!({
            "channels":["The channels field must be an array."],
            "channel":["The channel field must be a string."],
        }),
    );
}

#[test]
fn non_string_channel_names_are_refused_without_a_5xx() {
    let server = server();
    let r = trigger(
        &server,
        &json!({"name":"a","data":"x","channels":["ok",5,null]}),
    );
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.header("content-type"), Some(JSON));
}

#[test]
fn all_failing_fields_are_listed_together() {
    let server = server();
    let r = trigger(
        &server,
        &json!({"name":1,"channels":"c","socket_id":2,"info":3}),
    );
    assert_json(
        &r,
        422,
        &json!({
            "name":["The name field must be a string."],
            "data":["The data field is required."],
            "channels":["The channels field must be an array."],
            "socket_id":["The socket id field must be a string."],
            "info":["The info field must be a string."],
        }),
    );
}

#[test]
fn a_refused_trigger_publishes_nothing() {
    let server = server();
    let (mut sub, id) = server.connect_established();
    subscribe(&mut sub, &id, "orders");
    let mut conn = KeepAlive::open(&server);
    let r = conn.api(
        "POST",
        "/events",
        &[],
        &json!({"name":"bad","channel":"orders","data":{"x":1}}).to_string(),
    );
    assert_eq!(r.status, 422, "{r:?}");
    let r = conn.api(
        "POST",
        "/batch_events",
        &[],
        &json!({"batch":[{"name":"bad","channel":"orders","data":"x"},{"name":"b"}]}).to_string(),
    );
    assert_eq!(r.status, 422, "{r:?}");
    // A marker from the same shard arrives first: the refused events never went out.
    conn.trigger(&json!({"name":"marker","channel":"orders","data":"m"}));
    assert_eq!(sub.recv_json()["event"], "marker");
}

#[test]
fn batch_must_be_a_present_array() {
    let server = server();
    let r = batch(&server, &json!({}));
    assert_json_raw(&r, 422, r#"{"batch":["The batch field is required."]}"#);
    for value in [json!("x"), json!(5), json!(true), json!(null)] {
        let r = batch(&server, &json!({"batch": value}));
        assert_json_raw(
            &r,
            422,
            r#"{"batch":["The batch field must be an array."]}"#,
        );
    }
    // An empty batch is valid.
    assert_json_raw(
        &batch(&server, &json!({"batch":[]})),
        200,
        r#"{"batch":{}}"#,
    );
}

#[test]
fn batch_item_errors_are_named_batch_n_field() {
    let server = server();
    let r = batch(&server, &json!({"batch":[{"data":"x","channel":"c"}]}));
    assert_json_raw(
        &r,
        422,
        r#"{"batch.0.name":["The batch.0.name field is required."]}"#,
    );
    let r = batch(
        &server,
        &json!({"batch":[
            {"name":"ok","channel":"c","data":"x"},
            {"name":"b","channel":5,"data":{"a":1},"socket_id":1,"info":2},
            {"name":"","channel":"","data":""},
        ]}),
    );
    assert_json(
        &r,
        422,
        &json!({
            "batch.1.data":["The batch.1.data field must be a string."],
            "batch.1.channel":["The batch.1.channel field must be a string."],
            "batch.1.socket_id":["The batch.1.socket_id field must be a string."],
            "batch.1.info":["The batch.1.info field must be a string."],
            "batch.2.name":["The batch.2.name field is required."],
            "batch.2.data":["The batch.2.data field is required."],
            "batch.2.channel":["The batch.2.channel field is required."],
        }),
    );
}

#[test]
fn batch_items_need_channel_not_channels() {
    let server = server();
    let r = batch(
        &server,
        &json!({"batch":[{"name":"a","channels":["c"],"data":"x"}]}),
    );
    assert_json(
        &r,
        422,
        &json!({"batch.0.channel":["The batch.0.channel field is required."]}),
    );
}

#[test]
fn a_batch_item_that_is_not_an_object_misses_every_required_field() {
    let server = server();
    for item in [json!(5), json!("x"), json!([]), json!(null)] {
        let r = batch(&server, &json!({"batch":[item]}));
        assert_json(
            &r,
            422,
            &json!({
                "batch.0.name":["The batch.0.name field is required."],
                "batch.0.data":["The batch.0.data field is required."],
                "batch.0.channel":["The batch.0.channel field is required."],
            }),
        );
    }
}

#[test]
fn terminate_bodies_are_not_validated() {
    let server = server();
    for body in ["{}", "", "not json", "[1]", r#"{"anything":true}"#] {
        let r = api(&server, "POST", "/users/1/terminate_connections", &[], body);
        assert_json_raw(&r, 200, "{}");
    }
}
