//! Triggering events over the HTTP API (http-api.md §5, §6; websocket.md §12, §17):
//! delivery to subscribers on every shard, `channels` winning over `channel`, `data`
//! delivered verbatim, the exact key order of `/events` and `/batch_events` frames,
//! `socket_id` exclusion (also per batch item), `info` answers of both routes, and cache
//! channels updated by triggers with or without subscribers.

mod support;

use serde_json::{json, Value};
use support::http_api::*;
use support::{Client, TestServer};

fn start() -> TestServer {
    TestServer::start(&support::app_config(""), shards())
}

/// Clients on every shard (`per_shard` each, the first ones of each group), all
/// subscribed to `channel`.
fn subscribers(server: &TestServer, per_shard: usize, channel: &str) -> Vec<(Client, String)> {
    let mut out = Vec::new();
    for group in spread(server, shards(), per_shard) {
        for (mut c, id) in group.into_iter().take(per_shard) {
            subscribe(&mut c, &id, channel);
            out.push((c, id));
        }
    }
    out
}

#[test]
fn events_reach_subscribers_on_every_shard_with_key_order_event_data_channel() {
    let server = start();
    let mut subs = subscribers(&server, 2, "orders");
    let r = trigger(
        &server,
        &json!({"name":"order.shipped","channels":["orders"],"data":"{\"id\":42}"}),
    );
    assert_json_raw(&r, 200, "{}");
    for (c, _) in subs.iter_mut() {
        assert_eq!(
            next_text(c),
            r#"{"event":"order.shipped","data":"{\"id\":42}","channel":"orders"}"#
        );
    }
}

#[test]
fn batch_events_reach_every_shard_with_key_order_event_channel_data() {
    let server = start();
    let mut subs = subscribers(&server, 2, "orders");
    for (c, id) in subs.iter_mut() {
        subscribe(c, id, "news");
    }
    let r = batch(
        &server,
        &json!({"batch":[
            {"name":"a","channel":"orders","data":"{}"},
            {"name":"b","channel":"news","data":"{\"x\":1}"},
            {"name":"c","channel":"orders","data":"3"},
        ]}),
    );
    assert_json_raw(&r, 200, r#"{"batch":{}}"#);
    for (c, _) in subs.iter_mut() {
        assert_eq!(
            next_text(c),
            r#"{"event":"a","channel":"orders","data":"{}"}"#
        );
        assert_eq!(
            next_text(c),
            r#"{"event":"b","channel":"news","data":"{\"x\":1}"}"#
        );
        assert_eq!(
            next_text(c),
            r#"{"event":"c","channel":"orders","data":"3"}"#
        );
    }
}

#[test]
fn one_event_on_several_channels_reaches_each_channel() {
    let server = start();
    let mut subs = subscribers(&server, 1, "a");
    for (c, id) in subs.iter_mut() {
        subscribe(c, id, "b");
    }
    let r = trigger(
        &server,
        &json!({"name":"e","channels":["a","b","nobody"],"data":"d"}),
    );
    assert_json_raw(&r, 200, "{}");
    for (c, _) in subs.iter_mut() {
        let mut got = [c.recv_json(), c.recv_json()]
            .map(|m| m["channel"].as_str().unwrap().to_string())
            .to_vec();
        got.sort();
        assert_eq!(got, ["a", "b"]);
    }
}

#[test]
fn channels_wins_over_channel() {
    let server = start();
    let mut groups = spread(&server, shards(), 1);
    let (mut a, a_id) = groups[0].remove(0);
    let (mut b, b_id) = groups.last_mut().unwrap().pop().unwrap();
    subscribe(&mut a, &a_id, "a");
    subscribe(&mut b, &b_id, "b");
    let mut conn = KeepAlive::open(&server);
    conn.trigger(&json!({"name":"e","channels":["a"],"channel":"b","data":"1"}));
    // A marker to `b` from the same API connection (same shard, so ordered after the
    // first trigger) arrives first at `b`: the trigger never went to `b`.
    conn.trigger(&json!({"name":"marker","channel":"b","data":"m"}));
    assert_eq!(b.recv_json()["event"], "marker");
    assert_eq!(a.recv_json(), json!({"event":"e","data":"1","channel":"a"}));
    // `channel` alone is used when `channels` is absent.
    conn.trigger(&json!({"name":"single","channel":"b","data":"2"}));
    assert_eq!(
        b.recv_json(),
        json!({"event":"single","data":"2","channel":"b"})
    );
}

#[test]
fn data_is_delivered_verbatim_as_a_string() {
    let server = start();
    let mut subs = subscribers(&server, 1, "orders");
    let samples = [
        "plain text",
        "{\"id\":42,\"nested\":{\"a\":[1,2]}}",
        "  spaced  ",
        "unicode ✓ é 😀",
        "quote \" backslash \\ slash / newline \n tab \t",
        "<script>&amp;</script>",
        "null",
        "[1,2]",
        "0",
        "{not json",
    ];
    let mut conn = KeepAlive::open(&server);
    for data in samples {
        conn.trigger(&json!({"name":"e","channel":"orders","data":data}));
    }
    for (c, _) in subs.iter_mut() {
        for data in samples {
            let msg = c.recv_json();
            assert_eq!(msg["data"], Value::String(data.into()), "{msg}");
        }
    }
}

#[test]
fn the_socket_id_is_excluded_on_every_shard() {
    let server = start();
    let mut subs = subscribers(&server, 2, "orders");
    let mut conn = KeepAlive::open(&server);
    for skip in 0..subs.len() {
        let skip_id = subs[skip].1.clone();
        conn.trigger(&json!({"name":"e","channel":"orders","data":"x","socket_id":skip_id}));
        conn.trigger(&json!({"name":"marker","channel":"orders","data":"m"}));
        for (i, (c, _)) in subs.iter_mut().enumerate() {
            if i != skip {
                assert_eq!(c.recv_json()["event"], "e");
            }
            assert_eq!(c.recv_json()["event"], "marker");
        }
    }
}

#[test]
fn an_unknown_or_malformed_socket_id_excludes_nobody() {
    let server = start();
    let mut subs = subscribers(&server, 1, "orders");
    for socket_id in ["123.456", "999999.999", "garbage", "", "1.2.3"] {
        let r = trigger(
            &server,
            &json!({"name":"e","channel":"orders","data":"x","socket_id":socket_id}),
        );
        assert_json_raw(&r, 200, "{}");
        for (c, _) in subs.iter_mut() {
            assert_eq!(c.recv_json()["event"], "e");
        }
    }
}

#[test]
fn socket_id_exclusion_works_per_batch_item() {
    let server = start();
    let mut subs = subscribers(&server, 1, "orders");
    let mut extra = subscribers(&server, 1, "orders");
    subs.append(&mut extra);
    let x = subs[0].1.clone();
    let y = subs.last().unwrap().1.clone();
    let r = batch(
        &server,
        &json!({"batch":[
            {"name":"0","channel":"orders","data":"d","socket_id":x},
            {"name":"1","channel":"orders","data":"d","socket_id":y},
            {"name":"2","channel":"orders","data":"d"},
        ]}),
    );
    assert_json_raw(&r, 200, r#"{"batch":{}}"#);
    for (c, id) in subs.iter_mut() {
        let expected: Vec<&str> = if *id == x {
            vec!["1", "2"]
        } else if *id == y {
            vec!["0", "2"]
        } else {
            vec!["0", "1", "2"]
        };
        for name in expected {
            assert_eq!(c.recv_json()["event"], name, "client {id}");
        }
    }
}

#[test]
fn events_from_one_api_connection_arrive_in_order_on_every_shard() {
    let server = start();
    let mut subs = subscribers(&server, 2, "orders");
    let mut conn = KeepAlive::open(&server);
    for i in 0..40 {
        conn.trigger(&json!({"name":"e","channel":"orders","data":i.to_string()}));
    }
    for (c, _) in subs.iter_mut() {
        for i in 0..40 {
            assert_eq!(c.recv_json()["data"], i.to_string());
        }
    }
}

/// `orders` (public, one subscriber per shard), `presence-room` (users 7 and "8"; user 7
/// on two connections on different shards), nothing on `empty`.
fn populated(server: &TestServer) -> Vec<(Client, String)> {
    let mut subs = subscribers(server, 1, "orders");
    let n = subs.len();
    let (c, id) = &mut subs[0];
    join(c, id, "presence-room", &json!(7));
    let (c, id) = &mut subs[n - 1];
    join(c, id, "presence-room", &json!(7));
    let (mut c, id) = server.connect_established();
    join(&mut c, &id, "presence-room", &json!("8"));
    subs.push((c, id));
    subs
}

#[test]
fn trigger_info_reports_the_requested_attributes_per_channel() {
    let server = start();
    let _subs = populated(&server);
    let orders = shards() as u64;
    let r = trigger(
        &server,
        &json!({"name":"e","channels":["presence-room","orders","empty"],"data":"x",
                "info":"subscription_count,user_count,occupied"}),
    );
    assert_json(
        &r,
        200,
        &json!({"channels":{
            "presence-room":{"occupied":true,"user_count":2},
            "orders":{"occupied":true,"subscription_count":orders},
            "empty":{"occupied":false},
        }}),
    );
    // Key order inside each entry: occupied, user_count, subscription_count.
    let body = json_of(&r);
    for (name, keys) in [
        ("presence-room", vec!["occupied", "user_count"]),
        ("orders", vec!["occupied", "subscription_count"]),
    ] {
        let got: Vec<&str> = body["channels"][name]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(got, keys, "{body}");
    }
    // Without `occupied`: an empty channel is `{}`; presence never reports
    // subscription_count, others never user_count.
    let r = trigger(
        &server,
        &json!({"name":"e","channels":["presence-room","orders","empty"],"data":"x",
                "info":"subscription_count,user_count"}),
    );
    assert_json(
        &r,
        200,
        &json!({"channels":{
            "presence-room":{"user_count":2},
            "orders":{"subscription_count":orders},
            "empty":{},
        }}),
    );
    // Unknown attribute names are ignored; an empty `info` still asks for the entries.
    let r = trigger(
        &server,
        &json!({"name":"e","channel":"orders","data":"x","info":"bogus,occupied"}),
    );
    assert_json(&r, 200, &json!({"channels":{"orders":{"occupied":true}}}));
    let r = trigger(
        &server,
        &json!({"name":"e","channels":["orders","empty"],"data":"x","info":""}),
    );
    assert_json(&r, 200, &json!({"channels":{"orders":{},"empty":{}}}));
    // Without `info` the answer is `{}`.
    let r = trigger(&server, &json!({"name":"e","channel":"orders","data":"x"}));
    assert_json_raw(&r, 200, "{}");
}

#[test]
fn trigger_info_counts_the_excluded_socket_too() {
    let server = start();
    let subs = subscribers(&server, 1, "orders");
    let r = trigger(
        &server,
        &json!({"name":"e","channel":"orders","data":"x","socket_id":subs[0].1,
                "info":"subscription_count"}),
    );
    assert_json(
        &r,
        200,
        &json!({"channels":{"orders":{"subscription_count":subs.len()}}}),
    );
}

#[test]
fn batch_info_is_a_list_with_one_entry_per_item() {
    let server = start();
    let _subs = populated(&server);
    let orders = shards() as u64;
    let r = batch(
        &server,
        &json!({"batch":[
            {"name":"e","channel":"orders","data":"x"},
            {"name":"e","channel":"presence-room","data":"x","info":"user_count"},
            {"name":"e","channel":"orders","data":"x","info":"subscription_count"},
            {"name":"e","channel":"presence-room","data":"x","info":"subscription_count"},
            {"name":"e","channel":"empty","data":"x","info":"subscription_count,user_count"},
            {"name":"e","channel":"empty","data":"x","info":"occupied"},
            {"name":"e","channel":"orders","data":"x","info":"occupied,subscription_count"},
        ]}),
    );
    assert_json(
        &r,
        200,
        &json!({"batch":[
            {},
            {"user_count":2},
            {"subscription_count":orders},
            {},
            {},
            {"occupied":false},
            {"occupied":true,"subscription_count":orders},
        ]}),
    );
    // Without any `info` the answer is the object `{"batch":{}}`.
    let r = batch(
        &server,
        &json!({"batch":[{"name":"e","channel":"orders","data":"x"}]}),
    );
    assert_json_raw(&r, 200, r#"{"batch":{}}"#);
}

fn price(i: usize) -> String {
    format!(r#"{{"event":"price.updated","data":"{{\"eur\":{i}}}","channel":"cache-ticker"}}"#)
}

/// One witness per shard, subscribed to `barrier`.
fn witnesses(server: &TestServer) -> Vec<Client> {
    spread(server, shards(), 1)
        .into_iter()
        .map(|mut group| {
            let (mut c, id) = group.remove(0);
            subscribe(&mut c, &id, "barrier");
            c
        })
        .collect()
}

/// POST `body` to `rest` (`/events` or `/batch_events`), then a barrier event on the
/// same API connection; once every witness has the barrier, every shard has handled
/// the first request too (events from one publisher stay in order, design invariant
/// 5), so its cache copy is up to date.
fn post_settled(
    server: &TestServer,
    witnesses: &mut [Client],
    rest: &str,
    body: &Value,
) -> support::raw::HttpResponse {
    let mut conn = KeepAlive::open(server);
    let r = conn.api("POST", rest, &[], &body.to_string());
    conn.trigger(&json!({"name":"barrier","channel":"barrier","data":"x"}));
    for w in witnesses.iter_mut() {
        until_event(w, "barrier", Some("barrier"));
    }
    r
}

#[test]
fn a_cache_channel_keeps_an_http_event_sent_without_subscribers() {
    let server = start();
    let mut witnesses = witnesses(&server);
    let mut groups = spread(&server, shards(), 1);
    for round in 0..4 {
        // Nobody is subscribed to the cache channel when the event is sent.
        let r = post_settled(
            &server,
            &mut witnesses,
            "/events",
            &json!({"name":"price.updated","channel":"cache-ticker",
                    "data":format!("{{\"eur\":{round}}}")}),
        );
        assert_json_raw(&r, 200, "{}");
        // A subscriber on every shard gets it replayed, exactly as it was broadcast.
        for group in groups.iter_mut() {
            let (c, id) = &mut group[0];
            subscribe(c, id, "cache-ticker");
            assert_eq!(next_text(c), price(round));
            c.send_json(&json!({"event":"pusher:unsubscribe","data":{"channel":"cache-ticker"}}));
            alive(c);
        }
    }
}

#[test]
fn info_cache_is_exact_right_after_the_trigger_whichever_shard_answers() {
    let server = start();
    let mut groups = spread(&server, shards(), 1);
    for group in groups.iter_mut() {
        let (c, id) = &mut group[0];
        subscribe(c, id, "cache-ticker");
        assert_eq!(
            next_text(c),
            r#"{"event":"pusher:cache_miss","channel":"cache-ticker"}"#
        );
    }
    for round in 0..20 {
        let r = trigger(
            &server,
            &json!({"name":"price.updated","channel":"cache-ticker","data":format!("{{\"eur\":{round}}}")}),
        );
        assert_json_raw(&r, 200, "{}");
        let r = api(
            &server,
            "GET",
            "/channels/cache-ticker",
            &[("info", "cache")],
            "",
        );
        assert_json_raw(
            &r,
            200,
            &format!(r#"{{"occupied":true,"cache":{}}}"#, price(round)),
        );
    }
}

/// Reverb replays the last event to a subscriber that joins after the trigger's 200
/// (its cache is updated synchronously); reverb-shard must replay the same event
/// (websocket.md §12 "every case where Reverb replays an event replays the same
/// event here").
#[test]
fn a_subscriber_right_after_the_trigger_gets_the_new_cached_event_on_any_shard() {
    let server = start();
    let mut groups = spread(&server, shards(), 2);
    // The channel is occupied on every shard (the case where Reverb caches too).
    for group in groups.iter_mut() {
        let (c, id) = &mut group[1];
        subscribe(c, id, "cache-ticker");
        next_text(c);
    }
    for round in 0..20 {
        let r = trigger(
            &server,
            &json!({"name":"price.updated","channel":"cache-ticker","data":format!("{{\"eur\":{round}}}")}),
        );
        assert_json_raw(&r, 200, "{}");
        for group in groups.iter_mut() {
            let (c, id) = &mut group[0];
            subscribe(c, id, "cache-ticker");
            assert_eq!(next_text(c), price(round), "round {round}");
            c.send_json(&json!({"event":"pusher:unsubscribe","data":{"channel":"cache-ticker"}}));
            alive(c);
        }
        for group in groups.iter_mut() {
            assert_eq!(group[1].0.recv_json()["event"], "price.updated");
        }
    }
}

#[test]
fn a_batch_event_is_cached_with_the_batch_key_order() {
    let server = start();
    let mut witnesses = witnesses(&server);
    let r = post_settled(
        &server,
        &mut witnesses,
        "/batch_events",
        &json!({"batch":[{"name":"x","channel":"cache-b","data":"1"}]}),
    );
    assert_json_raw(&r, 200, r#"{"batch":{}}"#);
    for group in spread(&server, shards(), 1).iter_mut() {
        let (c, id) = &mut group[0];
        subscribe(c, id, "cache-b");
        assert_eq!(
            next_text(c),
            r#"{"event":"x","channel":"cache-b","data":"1"}"#
        );
    }
}

#[test]
fn private_and_presence_cache_channels_keep_http_events_too() {
    let server = start();
    let mut witnesses = witnesses(&server);
    for channel in ["private-cache-a", "presence-cache-a"] {
        let body = json!({"name":"e","channel":channel,"data":"v"});
        let r = post_settled(&server, &mut witnesses, "/events", &body);
        assert_json_raw(&r, 200, "{}");
    }
    for group in spread(&server, shards(), 1).iter_mut() {
        let (c, id) = &mut group[0];
        subscribe(c, id, "private-cache-a");
        assert_eq!(
            next_text(c),
            r#"{"event":"e","data":"v","channel":"private-cache-a"}"#
        );
        join(c, id, "presence-cache-a", &json!(1));
        assert_eq!(
            next_text(c),
            r#"{"event":"e","data":"v","channel":"presence-cache-a"}"#
        );
    }
}

#[test]
fn info_cache_returns_the_cached_event_of_an_occupied_cache_channel() {
    let server = start();
    let mut witnesses = witnesses(&server);
    let r = trigger(
        &server,
        &json!({"name":"price.updated","channel":"cache-ticker","data":"{\"eur\":12}"}),
    );
    assert_json_raw(&r, 200, "{}");
    // Unoccupied: only `occupied` can appear, even with a cached event.
    let r = api(
        &server,
        "GET",
        "/channels/cache-ticker",
        &[("info", "cache")],
        "",
    );
    assert_json_raw(&r, 200, r#"{"occupied":false}"#);
    let r = post_settled(
        &server,
        &mut witnesses,
        "/events",
        &json!({"name":"e2","channel":"cache-ticker","data":"a","info":"cache"}),
    );
    assert_json(&r, 200, &json!({"channels":{"cache-ticker":{}}}));
    let mut groups = spread(&server, shards(), 1);
    let (c, id) = &mut groups[0][0];
    subscribe(c, id, "cache-ticker");
    assert_eq!(
        next_text(c),
        r#"{"event":"e2","data":"a","channel":"cache-ticker"}"#
    );
    // Occupied: the cached message as a JSON object, asked through either shard.
    for _ in 0..6 {
        let r = api(
            &server,
            "GET",
            "/channels/cache-ticker",
            &[("info", "cache")],
            "",
        );
        assert_json_raw(
            &r,
            200,
            r#"{"occupied":true,"cache":{"event":"e2","data":"a","channel":"cache-ticker"}}"#,
        );
    }
    // The trigger answer reports the event it just published.
    let r = trigger(
        &server,
        &json!({"name":"price.updated","channel":"cache-ticker","data":"{\"eur\":13}",
                "info":"cache,subscription_count,occupied"}),
    );
    assert_json_raw(
        &r,
        200,
        r#"{"channels":{"cache-ticker":{"occupied":true,"subscription_count":1,"cache":{"event":"price.updated","data":"{\"eur\":13}","channel":"cache-ticker"}}}}"#,
    );
    // The channel list reports it for cache channels only.
    subscribe(c, id, "orders");
    let r = api(&server, "GET", "/channels", &[("info", "cache")], "");
    assert_json(
        &r,
        200,
        &json!({"channels":{
            "barrier":{},
            "cache-ticker":{"cache":{"event":"price.updated","data":"{\"eur\":13}","channel":"cache-ticker"}},
            "orders":{},
        }}),
    );
    // A batch item's `info=cache` too.
    let r = batch(
        &server,
        &json!({"batch":[{"name":"b","channel":"cache-ticker","data":"z","info":"cache"}]}),
    );
    assert_json(
        &r,
        200,
        &json!({"batch":[{"cache":{"event":"b","channel":"cache-ticker","data":"z"}}]}),
    );
}

#[test]
fn a_non_cache_channel_has_no_cache_attribute() {
    let server = start();
    let (mut c, id) = server.connect_established();
    subscribe(&mut c, &id, "orders");
    let r = trigger(
        &server,
        &json!({"name":"e","channel":"orders","data":"x","info":"cache"}),
    );
    assert_json(&r, 200, &json!({"channels":{"orders":{}}}));
    let r = api(&server, "GET", "/channels/orders", &[("info", "cache")], "");
    assert_json_raw(&r, 200, r#"{"occupied":true}"#);
}

#[test]
fn events_to_a_server_to_user_channel_reach_the_signed_in_user() {
    let server = start();
    let mut groups = spread(&server, shards(), 1);
    let mut users = Vec::new();
    for group in groups.iter_mut() {
        let (mut c, id) = group.remove(0);
        signin(&mut c, &id, "42");
        subscribe(&mut c, &id, "#server-to-user-42");
        users.push(c);
    }
    let r = trigger(
        &server,
        &json!({"name":"note","channel":"#server-to-user-42","data":"hi"}),
    );
    assert_json_raw(&r, 200, "{}");
    for c in users.iter_mut() {
        assert_eq!(
            next_text(c),
            r##"{"event":"note","data":"hi","channel":"#server-to-user-42"}"##
        );
    }
}
