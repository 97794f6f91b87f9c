//! Size limits of the HTTP API: reverb-shard's Pusher limits (http-api.md §5.4: 100
//! channels per event, 10 events per batch, 200-character names; 400 with exact texts,
//! off with `pusher_limits = false`) and `max_request_size` (413 and close; no separate
//! `data` limit, so a raised `max_request_size` carries big payloads).

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::http_api::*;
use support::raw::{self, wait_closed};
use support::{app_config, TestServer};

const TOO_MANY_CHANNELS: &str = "Too many channels: at most 100 per event.";
const TOO_MANY_EVENTS: &str = "Too many events: at most 10 per batch.";
const NAME_TOO_LONG: &str = "Name too long: at most 200 characters.";

fn channel_list(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i}")).collect()
}

fn items(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"name":"e","channel":format!("c{i}"),"data":"x"}))
        .collect()
}

#[test]
fn at_most_100_channels_per_event() {
    let server = TestServer::start(&app_config(""), 1);
    let r = trigger(
        &server,
        &json!({"name":"e","channels":channel_list(100),"data":"x"}),
    );
    assert_json_raw(&r, 200, "{}");
    let r = trigger(
        &server,
        &json!({"name":"e","channels":channel_list(101),"data":"x"}),
    );
    assert_text(&r, 400, TOO_MANY_CHANNELS);
}

#[test]
fn at_most_10_events_per_batch() {
    let server = TestServer::start(&app_config(""), 1);
    let r = batch(&server, &json!({"batch": items(10)}));
    assert_json_raw(&r, 200, r#"{"batch":{}}"#);
    let r = batch(&server, &json!({"batch": items(11)}));
    assert_text(&r, 400, TOO_MANY_EVENTS);
}

#[test]
fn names_of_at_most_200_characters() {
    let server = TestServer::start(&app_config(""), 1);
    let ok = "n".repeat(200);
    let long = "n".repeat(201);
    // Characters, not bytes: 200 two-byte characters are fine.
    let wide = "é".repeat(200);
    for name in [&ok, &wide] {
        let r = trigger(&server, &json!({"name":name,"channel":name,"data":"x"}));
        assert_json_raw(&r, 200, "{}");
        let r = batch(
            &server,
            &json!({"batch":[{"name":name,"channel":name,"data":"x"}]}),
        );
        assert_json_raw(&r, 200, r#"{"batch":{}}"#);
    }
    for body in [
        json!({"name":long,"channel":"c","data":"x"}),
        json!({"name":"e","channel":long,"data":"x"}),
        json!({"name":"e","channels":["c", long],"data":"x"}),
    ] {
        assert_text(&trigger(&server, &body), 400, NAME_TOO_LONG);
    }
    for item in [
        json!({"name":long,"channel":"c","data":"x"}),
        json!({"name":"e","channel":long,"data":"x"}),
    ] {
        let r = batch(
            &server,
            &json!({"batch":[{"name":"a","channel":"b","data":"x"}, item]}),
        );
        assert_text(&r, 400, NAME_TOO_LONG);
    }
}

#[test]
fn an_event_over_a_limit_is_not_published() {
    let server = TestServer::start(&app_config(""), 1);
    let (mut sub, id) = server.connect_established();
    subscribe(&mut sub, &id, "c0");
    let mut conn = KeepAlive::open(&server);
    let body = json!({"name":"bad","channels":channel_list(101),"data":"x"}).to_string();
    assert_eq!(conn.api("POST", "/events", &[], &body).status, 400);
    let body = json!({"batch": items(11)}).to_string();
    assert_eq!(conn.api("POST", "/batch_events", &[], &body).status, 400);
    conn.trigger(&json!({"name":"marker","channel":"c0","data":"m"}));
    assert_eq!(sub.recv_json()["event"], "marker");
}

#[test]
fn without_pusher_limits_nothing_is_refused() {
    let server = TestServer::start(&server_config("pusher_limits = false"), 1);
    let (mut sub, id) = server.connect_established();
    let long = "n".repeat(300);
    subscribe(&mut sub, &id, &long);
    let mut channels = channel_list(150);
    channels.push(long.clone());
    let r = trigger(
        &server,
        &json!({"name":long,"channels":channels,"data":"x"}),
    );
    assert_json_raw(&r, 200, "{}");
    assert_eq!(
        sub.recv_json(),
        json!({"event":long,"data":"x","channel":long})
    );
    let r = batch(&server, &json!({"batch": items(15)}));
    assert_json_raw(&r, 200, r#"{"batch":{}}"#);
}

#[test]
fn a_request_over_max_request_size_is_413_and_closed() {
    let server = TestServer::start(&server_config("max_request_size = 2000"), 1);
    let data = "d".repeat(3000);
    let body = json!({"name":"e","channel":"c","data":data}).to_string();
    let target = Signer::default().target("POST", &app_path("/events"), &[], body.as_bytes());
    let (r, mut stream) = raw::http_exchange(
        &server.addr(),
        &request_bytes("POST", &target, body.as_bytes(), false),
    );
    assert_text(&r, 413, "Payload too large.");
    wait_closed(&mut stream, Duration::from_secs(5));
    // A Content-Length over the limit is refused before the body arrives.
    let head = format!("POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
    let (r, mut stream) = raw::http_exchange(&server.addr(), head.as_bytes());
    assert_text(&r, 413, "Payload too large.");
    wait_closed(&mut stream, Duration::from_secs(5));
    // A request that fits is served.
    let r = trigger(
        &server,
        &json!({"name":"e","channel":"c","data":"d".repeat(500)}),
    );
    assert_json_raw(&r, 200, "{}");
}

#[test]
fn the_default_max_request_size_is_10000_bytes() {
    let server = TestServer::start(&app_config(""), 1);
    let r = trigger(
        &server,
        &json!({"name":"e","channel":"c","data":"d".repeat(9000)}),
    );
    assert_json_raw(&r, 200, "{}");
    let r = trigger(
        &server,
        &json!({"name":"e","channel":"c","data":"d".repeat(10_000)}),
    );
    assert_text(&r, 413, "Payload too large.");
}

#[test]
fn a_raised_max_request_size_carries_big_payloads_to_subscribers() {
    let server = TestServer::start(&server_config("max_request_size = 300000"), shards());
    let mut groups = spread(&server, shards(), 1);
    let data: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    for group in groups.iter_mut() {
        let (c, id) = &mut group[0];
        subscribe(c, id, "big");
    }
    let r = trigger(&server, &json!({"name":"e","channel":"big","data":data}));
    assert_json_raw(&r, 200, "{}");
    for group in groups.iter_mut() {
        let msg = group[0].0.recv_json();
        assert_eq!(msg["data"].as_str().map(str::len), Some(data.len()));
        assert_eq!(msg["data"], data.as_str());
    }
    let r = batch(
        &server,
        &json!({"batch":[{"name":"e","channel":"big","data":data}]}),
    );
    assert_json_raw(&r, 200, r#"{"batch":{}}"#);
    for group in groups.iter_mut() {
        assert_eq!(group[0].0.recv_json()["data"], data.as_str());
    }
}
