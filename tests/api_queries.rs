//! Channel queries of the HTTP API (http-api.md §7): `GET channels` (occupied only,
//! `filter_by_prefix`, `info`, `{"channels":{}}` when empty), `GET channels/{c}`
//! (`occupied` always), `GET channels/{c}/users` (404/400 `{}`, first-join order, id
//! types kept, one entry per user across shards), `GET connections` (every established
//! connection on every shard), and exactness right after `subscription_succeeded`
//! (design invariant 6) whichever shard serves the query.

mod support;

use serde_json::{json, Value};
use support::http_api::*;
use support::{app_config, shard_of, Client, TestServer};

fn start() -> TestServer {
    TestServer::start(&app_config(""), shards())
}

fn channels(server: &TestServer, params: &[(&str, &str)]) -> Value {
    get_json(server, "/channels", params)
}

fn connections(server: &TestServer) -> u64 {
    get_json(server, "/connections", &[])["connections"]
        .as_u64()
        .unwrap()
}

#[test]
fn no_channels_is_an_empty_object() {
    let server = start();
    let r = api(&server, "GET", "/channels", &[], "");
    assert_json_raw(&r, 200, r#"{"channels":{}}"#);
    let r = api(
        &server,
        "GET",
        "/channels",
        &[("info", "user_count,subscription_count")],
        "",
    );
    assert_json_raw(&r, 200, r#"{"channels":{}}"#);
    // Connections without subscriptions do not make channels.
    let _idle = server.connect_established();
    let r = api(&server, "GET", "/channels", &[], "");
    assert_json_raw(&r, 200, r#"{"channels":{}}"#);
}

#[test]
fn channels_lists_occupied_channels_with_the_requested_info() {
    let server = start();
    let mut groups = spread(&server, shards(), 2);
    let mut all: Vec<(Client, String)> = groups.iter_mut().flat_map(|g| g.drain(..2)).collect();
    let n = all.len() as u64;
    for (c, id) in all.iter_mut() {
        subscribe(c, id, "orders");
    }
    {
        let (c, id) = &mut all[0];
        subscribe(c, id, "private-orders.1");
        join(c, id, "presence-room", &json!(1));
    }
    let (c, id) = all.last_mut().unwrap();
    join(c, id, "presence-room", &json!(2));
    join(c, id, "presence-cache-x", &json!(2));
    assert_eq!(
        channels(&server, &[]),
        json!({"channels":{"orders":{},"private-orders.1":{},"presence-room":{},"presence-cache-x":{}}})
    );
    assert_eq!(
        channels(&server, &[("info", "user_count")]),
        json!({"channels":{
            "orders":{},
            "private-orders.1":{},
            "presence-room":{"user_count":2},
            "presence-cache-x":{"user_count":1},
        }})
    );
    assert_eq!(
        channels(&server, &[("info", "subscription_count")]),
        json!({"channels":{
            "orders":{"subscription_count":n},
            "private-orders.1":{"subscription_count":1},
            "presence-room":{},
            "presence-cache-x":{},
        }})
    );
    assert_eq!(
        channels(
            &server,
            &[("info", "subscription_count,user_count,occupied")]
        ),
        json!({"channels":{
            "orders":{"occupied":true,"subscription_count":n},
            "private-orders.1":{"occupied":true,"subscription_count":1},
            "presence-room":{"occupied":true,"user_count":2},
            "presence-cache-x":{"occupied":true,"user_count":1},
        }})
    );
    // filter_by_prefix, with and without info (user_count is not tied to the
    // `presence-` prefix, as in Reverb).
    assert_eq!(
        channels(&server, &[("filter_by_prefix", "presence-")]),
        json!({"channels":{"presence-room":{},"presence-cache-x":{}}})
    );
    assert_eq!(
        channels(
            &server,
            &[("filter_by_prefix", "presence-r"), ("info", "user_count")]
        ),
        json!({"channels":{"presence-room":{"user_count":2}}})
    );
    assert_eq!(
        channels(
            &server,
            &[("filter_by_prefix", "or"), ("info", "user_count")]
        ),
        json!({"channels":{"orders":{}}})
    );
    assert_eq!(
        channels(&server, &[("filter_by_prefix", "nothing")]),
        json!({"channels":{}})
    );
    // An empty prefix filters nothing.
    assert_eq!(
        channels(&server, &[("filter_by_prefix", "")])["channels"]
            .as_object()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn a_channel_left_by_everyone_is_no_longer_listed() {
    let server = start();
    let mut groups = spread(&server, shards(), 1);
    for group in groups.iter_mut() {
        let (c, id) = &mut group[0];
        subscribe(c, id, "orders");
        subscribe(c, id, "news");
    }
    for group in groups.iter_mut() {
        let (c, _) = &mut group[0];
        c.send_json(&json!({"event":"pusher:unsubscribe","data":{"channel":"orders"}}));
        // The unsubscribe is done on its shard once the pong comes back.
        alive(c);
    }
    assert_eq!(channels(&server, &[]), json!({"channels":{"news":{}}}));
    let r = api(&server, "GET", "/channels/orders", &[], "");
    assert_json_raw(&r, 200, r#"{"occupied":false}"#);
    // Disconnecting leaves every channel (eventually: a disconnect has no answer).
    for group in groups.iter_mut() {
        let (c, _) = &mut group[0];
        c.close_with(1000, "");
    }
    eventually(json!({"channels":{}}), || channels(&server, &[]));
}

#[test]
fn channel_always_reports_occupied() {
    let server = start();
    let mut groups = spread(&server, shards(), 1);
    let n = shards() as u64;
    for group in groups.iter_mut() {
        let (c, id) = &mut group[0];
        subscribe(c, id, "orders");
        join(c, id, "presence-room", &json!(5));
    }
    let get = |rest: &str, info: &[(&str, &str)]| {
        let r = api(&server, "GET", rest, info, "");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("content-type"), Some(JSON));
        r.body_text()
    };
    assert_eq!(get("/channels/orders", &[]), r#"{"occupied":true}"#);
    assert_eq!(
        get("/channels/orders", &[("info", "subscription_count")]),
        format!(r#"{{"occupied":true,"subscription_count":{n}}}"#)
    );
    assert_eq!(
        get(
            "/channels/orders",
            &[("info", "user_count,subscription_count")]
        ),
        format!(r#"{{"occupied":true,"subscription_count":{n}}}"#)
    );
    assert_eq!(
        get(
            "/channels/presence-room",
            &[("info", "user_count,subscription_count")]
        ),
        r#"{"occupied":true,"user_count":1}"#
    );
    assert_eq!(
        get("/channels/presence-room", &[("info", "subscription_count")]),
        r#"{"occupied":true}"#
    );
    assert_eq!(
        get("/channels/presence-room", &[("info", "occupied")]),
        r#"{"occupied":true}"#
    );
    for name in ["empty", "presence-empty", "private-x", "cache-x"] {
        assert_eq!(
            get(
                &format!("/channels/{name}"),
                &[("info", "user_count,subscription_count")]
            ),
            r#"{"occupied":false}"#
        );
    }
}

#[test]
fn users_of_an_unoccupied_or_non_presence_channel() {
    let server = start();
    let (mut c, id) = server.connect_established();
    subscribe(&mut c, &id, "orders");
    subscribe(&mut c, &id, "private-a");
    for name in ["presence-room", "presence-cache-x", "nobody"] {
        let r = api(&server, "GET", &format!("/channels/{name}/users"), &[], "");
        assert_json_raw(&r, 404, "{}");
    }
    for name in ["orders", "private-a"] {
        let r = api(&server, "GET", &format!("/channels/{name}/users"), &[], "");
        assert_json_raw(&r, 400, "{}");
    }
}

#[test]
fn users_are_listed_once_in_first_join_order_with_their_id_types() {
    let server = start();
    let mut groups = spread(&server, shards(), 2);
    let last = groups.len() - 1;
    // User 7 (a number) first, on shard 0; "8" (a string) on the last shard; user 7
    // again on the last shard, this time as the string "7" (the same user); then 3.
    let (mut a, a_id) = groups[0].remove(0);
    let (mut b, b_id) = groups[last].remove(0);
    let (mut c, c_id) = groups[last].remove(0);
    let (mut d, d_id) = groups[0].remove(0);
    assert_eq!(shard_of(&a_id) as usize, 0);
    join(&mut a, &a_id, "presence-room", &json!(7));
    join(&mut b, &b_id, "presence-room", &json!("8"));
    let snapshot = join(&mut c, &c_id, "presence-room", &json!("7"));
    assert_eq!(snapshot["presence"]["count"], 2, "{snapshot}");
    join(&mut d, &d_id, "presence-room", &json!(3));
    let expected = json!({"users":[{"id":7},{"id":"8"},{"id":3}]});
    for _ in 0..8 {
        let r = api(&server, "GET", "/channels/presence-room/users", &[], "");
        assert_json(&r, 200, &expected);
    }
    let r = api(
        &server,
        "GET",
        "/channels/presence-room",
        &[("info", "user_count")],
        "",
    );
    assert_json_raw(&r, 200, r#"{"occupied":true,"user_count":3}"#);
    // The first connection of user 7 leaves and joins again as user 10: user 7 stays
    // (on its second connection) in first place. Leave and join go from one shard to the
    // presence owner in order, so the snapshot and the list after it are exact.
    a.send_json(&json!({"event":"pusher:unsubscribe","data":{"channel":"presence-room"}}));
    join(&mut a, &a_id, "presence-room", &json!(10));
    let users = get_json(&server, "/channels/presence-room/users", &[]);
    let ids: Vec<Value> = users["users"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 4, "{users}");
    assert!(
        ids[0] == json!({"id":7}) || ids[0] == json!({"id":"7"}),
        "{users}"
    );
    assert_eq!(
        ids[1..],
        [json!({"id":"8"}), json!({"id":3}), json!({"id":10})]
    );
    // "8" leaves (its only connection) and that connection joins as 9: "8" is gone.
    b.send_json(&json!({"event":"pusher:unsubscribe","data":{"channel":"presence-room"}}));
    join(&mut b, &b_id, "presence-room", &json!(9));
    let users = get_json(&server, "/channels/presence-room/users", &[]);
    let ids: Vec<Value> = users["users"].as_array().unwrap().clone();
    assert_eq!(
        ids[1..],
        [json!({"id":3}), json!({"id":10}), json!({"id":9})],
        "{users}"
    );
    drop((c, d));
}

#[test]
fn connections_counts_every_established_connection_on_every_shard() {
    let server = TestServer::start(&(app_config("") + OTHER_APP), shards());
    assert_eq!(connections(&server), 0);
    let mut groups = spread(&server, shards(), 3);
    let total: usize = groups.iter().map(Vec::len).sum();
    // None of them is subscribed to anything (Reverb would count 0).
    for _ in 0..6 {
        assert_eq!(connections(&server), total as u64);
    }
    // Another app's connections are not counted.
    let mut other = Client::connect(&server.ws_url("other-key"), &[]);
    other.established();
    assert_eq!(connections(&server), total as u64);
    // Subscribing does not change the count; closing does (eventually).
    let (c, id) = &mut groups[0][0];
    subscribe(c, id, "orders");
    assert_eq!(connections(&server), total as u64);
    for group in groups.iter_mut() {
        let (mut c, _) = group.pop().unwrap();
        c.close_with(1000, "");
    }
    let left = (total - groups.len()) as u64;
    eventually(left, || connections(&server));
}

#[test]
fn counts_are_exact_right_after_subscription_succeeded() {
    let server = start();
    let mut groups = spread(&server, shards(), 6);
    let mut clients: Vec<(Client, String)> = Vec::new();
    // Alternate shards so both hold subscribers; every query is a new TCP connection,
    // which the kernel hands to either shard.
    for _ in 0..6 {
        for group in groups.iter_mut() {
            clients.push(group.remove(0));
        }
    }
    let total_connections: u64 =
        (clients.len() + groups.iter().map(Vec::len).sum::<usize>()) as u64;
    for (i, (c, id)) in clients.iter_mut().enumerate() {
        let n = i as u64 + 1;
        subscribe(c, id, "orders");
        assert_eq!(
            get_json(
                &server,
                "/channels/orders",
                &[("info", "subscription_count")]
            ),
            json!({"occupied":true,"subscription_count":n})
        );
        join(c, id, "presence-room", &json!(i));
        assert_eq!(
            get_json(
                &server,
                "/channels/presence-room",
                &[("info", "user_count")]
            ),
            json!({"occupied":true,"user_count":n})
        );
        let users = get_json(&server, "/channels/presence-room/users", &[]);
        let ids: Vec<Value> = (0..=i).map(|u| json!({"id":u})).collect();
        assert_eq!(users, json!({"users":ids}));
        assert_eq!(
            channels(&server, &[("info", "subscription_count,user_count")]),
            json!({"channels":{
                "orders":{"subscription_count":n},
                "presence-room":{"user_count":n},
            }})
        );
        let r = trigger(
            &server,
            &json!({"name":"e","channels":["orders","presence-room"],"data":"x",
                    "info":"subscription_count,user_count"}),
        );
        assert_json(
            &r,
            200,
            &json!({"channels":{
                "orders":{"subscription_count":n},
                "presence-room":{"user_count":n},
            }}),
        );
        assert_eq!(connections(&server), total_connections);
    }
}

#[test]
fn another_apps_channels_are_not_listed() {
    let server = TestServer::start(&(app_config("") + OTHER_APP), 1);
    let mut other = Client::connect(&server.ws_url("other-key"), &[]);
    let id = other.established();
    other.send_json(&json!({"event":"pusher:subscribe","data":{"channel":"orders"}}));
    until_event(
        &mut other,
        "pusher_internal:subscription_succeeded",
        Some("orders"),
    );
    assert_eq!(channels(&server, &[]), json!({"channels":{}}));
    let r = api(&server, "GET", "/channels/orders", &[], "");
    assert_json_raw(&r, 200, r#"{"occupied":false}"#);
    // The other app sees it with its own credentials.
    let signer = Signer {
        key: "other-key".into(),
        secret: "other-secret".into(),
        ..Signer::default()
    };
    let r = call_signed(&server, &signer, "GET", "/apps/654321/channels", &[], "");
    assert_json_raw(&r, 200, r#"{"channels":{"orders":{}}}"#);
    let r = call_signed(&server, &signer, "GET", "/apps/654321/connections", &[], "");
    assert_json_raw(&r, 200, r#"{"connections":1}"#);
    drop(id);
}
