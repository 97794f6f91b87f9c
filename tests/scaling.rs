//! Horizontal scaling over Redis (scaling.md): two reverb-shard processes (`--cores 2`
//! each) and a real `redis-server` on free loopback ports behave as one server —
//! events, batch items, client events and terminations cross nodes exactly once,
//! socket-id exclusion works across nodes, HTTP answers cover the fleet, presence is
//! fleet-wide, the wire format is Reverb's (so Reverb nodes can share the channel),
//! and a Redis restart costs nothing but the messages published while it was down.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::channels::{member, member_added_text, member_removed_text, Peer};
use support::http_api::{api, batch, get_json, trigger};
use support::redis::{self, RedisClient, RedisServer};
use support::{shard_of, TestServer, APP_ID, APP_KEY, APP_SECRET};

const CHANNEL: &str = "reverb-test";

/// One fleet at a time: each test runs three servers on this 2-CPU budget.
static FLEET: Mutex<()> = Mutex::new(());

struct Fleet {
    redis: RedisServer,
    a: TestServer,
    b: TestServer,
}

fn node_config(redis_port: u16, node_id: &str, scaling_lines: &str) -> String {
    format!(
        "[server]\nhost = \"127.0.0.1\"\nport = 0\n\n\
         [scaling]\nenabled = true\nchannel = \"{CHANNEL}\"\nnode_id = \"{node_id}\"\n{scaling_lines}\n\n\
         [scaling.redis]\nhost = \"127.0.0.1\"\nport = {redis_port}\n\n\
         [[apps]]\napp_id = \"{APP_ID}\"\nkey = \"{APP_KEY}\"\nsecret = \"{APP_SECRET}\"\n"
    )
}

fn start_node(redis_port: u16, node_id: &str, scaling_lines: &str) -> TestServer {
    TestServer::start(&node_config(redis_port, node_id, scaling_lines), 2)
}

/// Wait until `server` logged `needle` at least `times` times.
fn await_log_count(server: &TestServer, needle: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if server.logs().iter().filter(|l| l.contains(needle)).count() >= times {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "no {times}x {needle:?} in the logs:\n{}",
        server.logs().join("\n")
    );
}

fn await_linked(server: &TestServer, times: usize) {
    await_log_count(server, "Redis connection established [subscriber]", times);
    await_log_count(server, "Redis connection established [publisher]", times);
}

/// Redis and two linked nodes; `None` (skipped) when redis-server is missing.
fn fleet(scaling_lines: &str) -> Option<(std::sync::MutexGuard<'static, ()>, Fleet)> {
    if !redis::available() {
        return None;
    }
    let guard = FLEET.lock().unwrap_or_else(|e| e.into_inner());
    let redis = RedisServer::start();
    let a = start_node(redis.port, "node-a", scaling_lines);
    let b = start_node(redis.port, "node-b", scaling_lines);
    await_linked(&a, 1);
    await_linked(&b, 1);
    Some((guard, Fleet { redis, a, b }))
}

fn peer(server: &TestServer) -> Peer {
    let (client, id) = server.connect_established();
    let shard = shard_of(&id) as usize;
    Peer { client, id, shard }
}

fn event_text(event: &str, data: &str, channel: &str) -> String {
    json!({"event": event, "data": data, "channel": channel}).to_string()
}

fn ok(r: &support::raw::HttpResponse) {
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn events_reach_every_node_exactly_once() {
    let Some((_guard, f)) = fleet("") else { return };
    let (mut on_a, mut on_b) = (peer(&f.a), peer(&f.b));
    on_a.join_plain("orders");
    on_b.join_plain("orders");

    ok(&trigger(
        &f.a,
        &json!({"name": "e1", "channel": "orders", "data": "1"}),
    ));
    ok(&trigger(
        &f.a,
        &json!({"name": "e2", "channels": ["orders"], "data": "2"}),
    ));
    for p in [&mut on_a, &mut on_b] {
        // e1 then e2 (not e1 twice: a node drops its own envelopes).
        p.expect_text(&event_text("e1", "1", "orders"));
        p.expect_text(&event_text("e2", "2", "orders"));
    }
    // (Order is kept per publisher; events of two nodes may interleave differently
    // on each node, so B publishes only now.)
    ok(&trigger(
        &f.b,
        &json!({"name": "e3", "channel": "orders", "data": "3"}),
    ));
    for p in [&mut on_a, &mut on_b] {
        p.expect_text(&event_text("e3", "3", "orders"));
    }

    // A batch item keeps its key order (event, channel, data) on the other node.
    ok(&batch(
        &f.b,
        &json!({"batch": [{"name": "b1", "channel": "orders", "data": "x"}]}),
    ));
    let batch_text = json!({"event": "b1", "channel": "orders", "data": "x"}).to_string();
    on_a.expect_text(&batch_text);
    on_b.expect_text(&batch_text);

    // socket_id excludes that socket wherever it lives: B's subscriber skips it, and
    // the sentinel published after it by the same node arrives first.
    ok(&trigger(
        &f.a,
        &json!({"name": "skip", "channel": "orders", "data": "s", "socket_id": on_b.id}),
    ));
    ok(&trigger(
        &f.a,
        &json!({"name": "sentinel", "channel": "orders", "data": "t"}),
    ));
    on_a.expect_text(&event_text("skip", "s", "orders"));
    on_a.expect_text(&event_text("sentinel", "t", "orders"));
    on_b.expect_text(&event_text("sentinel", "t", "orders"));
}

#[test]
fn client_events_cross_nodes_and_skip_the_sender() {
    let Some((_guard, f)) = fleet("") else { return };
    let (mut on_a, mut on_b) = (peer(&f.a), peer(&f.b));
    on_a.join_plain("private-chat");
    on_b.join_plain("private-chat");
    on_b.whisper("private-chat", "client-typing", json!({"who": "b"}));
    on_a.expect_text(
        &json!({"event": "client-typing", "channel": "private-chat", "data": {"who": "b"}})
            .to_string(),
    );
    // The sender gets nothing back from the other node: the next thing it sees is
    // A's answer.
    on_a.whisper("private-chat", "client-reply", json!({}));
    on_b.expect_text(
        &json!({"event": "client-reply", "channel": "private-chat", "data": {}}).to_string(),
    );
}

/// The user ids of a presence channel as HTTP reports them on `server`.
fn users_on(server: &TestServer, channel: &str) -> Vec<Value> {
    let mut ids: Vec<Value> = get_json(server, &format!("/channels/{channel}/users"), &[])["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].clone())
        .collect();
    ids.sort_by_key(|v| v.to_string());
    ids
}

fn await_users(server: &TestServer, channel: &str, want: &[Value]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = api(
            server,
            "GET",
            &format!("/channels/{channel}/users"),
            &[],
            "",
        );
        if r.status == 200 && users_on(server, channel) == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "users of {channel} never became {want:?}: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn presence_is_fleet_wide() {
    let Some((_guard, f)) = fleet("") else { return };
    let room = "presence-room";
    let ada = member(json!(1), "Ada");
    let bob = member(json!(2), "Bob");
    let eve = member(json!(9), "Eve");

    let mut a1 = peer(&f.a);
    a1.join(room, Some(&ada));
    // B learns of Ada through Redis; then Bob's snapshot on B lists both.
    await_users(&f.b, room, &[json!(1)]);
    let mut b1 = peer(&f.b);
    let snapshot: Value = serde_json::from_str(&b1.join(room, Some(&bob))).unwrap();
    assert_eq!(snapshot["presence"]["count"], 2, "{snapshot}");
    a1.expect_text(&member_added_text(room, &bob));

    // Bob again, on A: not new to the fleet, so no member_added anywhere.
    let mut a2 = peer(&f.a);
    a2.join(room, Some(&bob));
    // Cy joins on A after that: when B announces Cy, B has also learnt that A holds
    // Bob (one node's presence changes reach the others in order).
    let cy = member(json!(5), "Cy");
    let mut a3 = peer(&f.a);
    a3.join(room, Some(&cy));
    a1.expect_text(&member_added_text(room, &cy));
    b1.expect_text(&member_added_text(room, &cy));
    // Bob's B connection leaves: Bob is still on A, so no member_removed. Eve joining
    // on B afterwards is published after that leave by the same node, so it reaches
    // A after it: A's next message proves no member_removed came first.
    b1.unsubscribe(room);
    let mut b2 = peer(&f.b);
    b2.join(room, Some(&eve));
    a1.expect_text(&member_added_text(room, &eve));

    // Both nodes answer with the fleet's members and distinct user count.
    let all = vec![json!(1), json!(2), json!(5), json!(9)];
    await_users(&f.a, room, &all);
    assert_eq!(users_on(&f.b, room), all);
    for server in [&f.a, &f.b] {
        let info = get_json(
            server,
            &format!("/channels/{room}"),
            &[("info", "user_count")],
        );
        assert_eq!(info["user_count"], 4, "{info}");
        assert_eq!(info["occupied"], true, "{info}");
    }

    // Bob's last connection (on A) leaves: now B hears member_removed.
    a2.unsubscribe(room);
    b2.expect_text(&member_removed_text(room, json!(2)));
    a1.expect_text(&member_removed_text(room, json!(2)));
}

#[test]
fn terminate_on_one_node_closes_the_users_sockets_on_the_other() {
    let Some((_guard, f)) = fleet("") else { return };
    let mut on_b = peer(&f.b);
    on_b.join("presence-team", Some(&member(json!("42"), "Zed")));
    let mut bystander = peer(&f.b);
    bystander.join_plain("orders");
    ok(&api(
        &f.a,
        "POST",
        "/users/42/terminate_connections",
        &[],
        "{}",
    ));
    // The same close as a local terminate (http-api.md §8).
    let (code, _) = on_b.client.expect_close();
    assert_eq!(code, 1000);
    bystander.barrier();
}

#[test]
fn http_queries_answer_for_the_fleet() {
    let Some((_guard, f)) = fleet("") else { return };
    let mut a1 = peer(&f.a);
    a1.join_plain("news");
    let mut b1 = peer(&f.b);
    b1.join_plain("news");
    let mut b2 = peer(&f.b);
    b2.join_plain("sports");

    for server in [&f.a, &f.b] {
        let channels = get_json(server, "/channels", &[]);
        let mut names: Vec<&String> = channels["channels"].as_object().unwrap().keys().collect();
        names.sort();
        assert_eq!(names, ["news", "sports"], "{channels}");
        let news = get_json(server, "/channels/news", &[("info", "subscription_count")]);
        assert_eq!(news, json!({"occupied": true, "subscription_count": 2}));
        let connections = get_json(server, "/connections", &[]);
        assert_eq!(connections, json!({"connections": 3}));
    }
    // A channel occupied only on B is reported by A's trigger `info` too.
    let r = api(
        &f.a,
        "POST",
        "/events",
        &[],
        &json!({"name": "e", "channel": "sports", "data": "{}", "info": "subscription_count"})
            .to_string(),
    );
    ok(&r);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"channels": {"sports": {"subscription_count": 1}}})
    );
}

#[test]
fn delivery_survives_a_redis_restart() {
    let Some((_guard, mut f)) = fleet("") else {
        return;
    };
    let (mut on_a, mut on_b) = (peer(&f.a), peer(&f.b));
    on_a.join_plain("orders");
    on_b.join_plain("orders");

    f.redis.kill();
    // Redis is gone: local delivery goes on, nothing crashes.
    ok(&trigger(
        &f.a,
        &json!({"name": "during", "channel": "orders", "data": "d"}),
    ));
    on_a.expect_text(&event_text("during", "d", "orders"));
    await_log_count(&f.a, "Disconnected from Redis", 1);

    f.redis.restart();
    await_linked(&f.a, 2);
    await_linked(&f.b, 2);
    ok(&trigger(
        &f.a,
        &json!({"name": "after", "channel": "orders", "data": "a"}),
    ));
    on_a.expect_text(&event_text("after", "a", "orders"));
    // "during" was queued by A's publisher and may reach B once B resubscribed first.
    let mut next = on_b.recv_text();
    if next == event_text("during", "d", "orders") {
        next = on_b.recv_text();
    }
    assert_eq!(next, event_text("after", "a", "orders"));
    // A new subscriber on B still gets A's events.
    ok(&trigger(
        &f.a,
        &json!({"name": "later", "channel": "orders", "data": "l"}),
    ));
    on_b.expect_text(&event_text("later", "l", "orders"));
}

/// The application object Reverb writes for the demo app (scaling.md §4.2).
fn reverb_application() -> String {
    let p = |name: &str| format!("s:{}:\"\0*\0{name}\";", name.len() + 3);
    format!(
        "O:26:\"Laravel\\Reverb\\Application\":11:{{{}s:6:\"{APP_ID}\";{}s:7:\"{APP_KEY}\";{}s:10:\"{APP_SECRET}\";{}i:60;{}i:30;{}a:1:{{i:0;s:1:\"*\";}}{}i:10000;{}N;{}s:7:\"members\";{}N;{}a:0:{{}}}}",
        p("id"),
        p("key"),
        p("secret"),
        p("pingInterval"),
        p("activityTimeout"),
        p("allowedOrigins"),
        p("maxMessageSize"),
        p("maxConnections"),
        p("acceptClientEventsFrom"),
        p("rateLimiting"),
        p("options"),
    )
}

#[test]
fn speaks_reverbs_wire_format_and_shrugs_off_junk() {
    let Some((_guard, f)) = fleet("") else { return };
    let (mut on_a, mut on_b) = (peer(&f.a), peer(&f.b));
    on_a.join_plain("orders");
    on_b.join_plain("orders");
    let mut watcher = RedisClient::connect(f.redis.port).unwrap();
    watcher.subscribe(CHANNEL);
    let mut publisher = RedisClient::connect(f.redis.port).unwrap();

    // Junk on the channel is dropped; nobody crashes.
    for junk in [
        "nope",
        "{}",
        "[1,2]",
        r#"{"type":"message"}"#,
        r#"{"type":"message","application":"O:3:\"Foo\":0:{}","payload":{"event":"x","channel":"orders"}}"#,
        r#"{"type":"terminate","application":"garbage","payload":{"user_id":"1"}}"#,
        r#"{"type":"metrics","payload":"O:1:\"x"}"#,
        r#"{"type":"reverb_shard:presence","node_id":"z/1","op":"join"}"#,
    ] {
        publisher.publish(CHANNEL, junk);
    }

    // A message as a Reverb node publishes it: both nodes deliver it.
    let from_reverb = json!({
        "type": "message",
        "application": reverb_application(),
        "payload": {"event": "from-reverb", "channels": ["orders"], "data": "{\"id\":1}"},
    });
    assert_eq!(publisher.publish(CHANNEL, &from_reverb.to_string()), 3);
    on_a.expect_text(&event_text("from-reverb", "{\"id\":1}", "orders"));
    on_b.expect_text(&event_text("from-reverb", "{\"id\":1}", "orders"));

    // What a node publishes is Reverb's envelope (plus node_id).
    ok(&trigger(
        &f.a,
        &json!({"name": "out", "channel": "orders", "data": "o", "socket_id": "1.2"}),
    ));
    let envelope = loop {
        let text = watcher
            .next_message(Duration::from_secs(10))
            .expect("node A published nothing");
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if v["type"] == "message" && v["payload"]["event"] == "out" {
            break v;
        }
    };
    assert_eq!(envelope["application"], reverb_application());
    assert_eq!(
        envelope["payload"],
        json!({"event": "out", "channels": ["orders"], "data": "o"})
    );
    assert_eq!(envelope["socket_id"], "1.2");
    assert_eq!(envelope["node_id"], "node-a");

    // A Reverb node's connections query: both nodes answer under its key.
    let request = format!(
        "O:45:\"Laravel\\Reverb\\Protocols\\Pusher\\PendingMetric\":6:{{s:14:\"\0*\0subscribers\";N;s:7:\"\0*\0data\";a:0:{{}}s:6:\"\0*\0key\";s:10:\"TestKey001\";s:14:\"\0*\0application\";{}s:7:\"\0*\0type\";E:54:\"Laravel\\Reverb\\Protocols\\Pusher\\MetricType:CONNECTIONS\";s:10:\"\0*\0options\";a:0:{{}}}}",
        reverb_application()
    );
    publisher.publish(
        CHANNEL,
        &json!({"type": "metrics", "payload": request}).to_string(),
    );
    let mut answers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while answers.len() < 2 && Instant::now() < deadline {
        if let Some(text) = watcher.next_message(Duration::from_secs(1)) {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if v["type"] == "TestKey001" {
                answers.push(v["payload"].clone());
            }
        }
    }
    assert_eq!(answers.len(), 2, "answers: {answers:?}");
    let mut ids: Vec<String> = answers
        .iter()
        .flat_map(|a| a.as_object().unwrap().keys().cloned())
        .collect();
    ids.sort();
    let mut want = vec![on_a.id.clone(), on_b.id.clone()];
    want.sort();
    assert_eq!(ids, want);

    // Both nodes are still serving (and delivered "out" once each).
    on_a.expect_text(&event_text("out", "o", "orders"));
    on_b.expect_text(&event_text("out", "o", "orders"));
    on_a.barrier();
    on_b.barrier();
}

#[test]
fn node_scoped_presence_follows_reverb() {
    let Some((_guard, f)) = fleet("presence = \"node\"") else {
        return;
    };
    let room = "presence-lobby";
    let mut a1 = peer(&f.a);
    a1.join(room, Some(&member(json!(1), "Ada")));
    let mut b1 = peer(&f.b);
    // Per node, like Reverb: B's snapshot lists only B's members...
    let snapshot: Value =
        serde_json::from_str(&b1.join(room, Some(&member(json!(2), "Bob")))).unwrap();
    assert_eq!(snapshot["presence"]["count"], 1, "{snapshot}");
    // ...but the HTTP answer is the fleet's (through the metrics request protocol).
    assert_eq!(users_on(&f.a, room), vec![json!(1), json!(2)]);
    assert_eq!(users_on(&f.b, room), vec![json!(1), json!(2)]);
    let info = get_json(
        &f.a,
        &format!("/channels/{room}"),
        &[("info", "user_count")],
    );
    assert_eq!(info["user_count"], 2, "{info}");
}

#[test]
fn members_of_a_vanished_node_expire() {
    let Some((_guard, mut f)) = fleet("") else {
        return;
    };
    let room = "presence-watch";
    let mut a1 = peer(&f.a);
    a1.join(room, Some(&member(json!(1), "Ada")));
    let mut b1 = peer(&f.b);
    b1.join(room, Some(&member(json!(2), "Bob")));
    a1.expect_text(&member_added_text(room, &member(json!(2), "Bob")));
    // B dies without a word (no leave is ever published): A forgets Bob once B has
    // been silent for 15 s (three missed heartbeats).
    f.b.kill();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        match a1.client.recv_within(Duration::from_secs(1)) {
            support::Received::Json(msg) => {
                assert_eq!(msg["event"], "pusher_internal:member_removed", "{msg}");
                assert_eq!(msg["data"], json!({"user_id": 2}).to_string());
                break;
            }
            support::Received::Timeout => {
                assert!(Instant::now() < deadline, "Bob never expired");
                // Keep A's connection alive with a ping of our own.
                a1.send(&json!({"event": "pusher:ping", "data": {}}));
                let pong = a1.recv_text();
                if pong != r#"{"event":"pusher:pong"}"# {
                    assert_eq!(pong, member_removed_text(room, json!(2)));
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(users_on(&f.a, room), vec![json!(1)]);
}

#[test]
fn a_node_starts_without_redis_and_links_up_once_it_appears() {
    if !redis::available() {
        return;
    }
    let _guard = FLEET.lock().unwrap_or_else(|e| e.into_inner());
    // A port with nothing listening yet.
    let port = support::free_port();
    let a = start_node(port, "node-a", "");
    // It serves its own clients at once and says why Redis is missing.
    await_log_count(&a, "Disconnected from Redis", 1);
    let mut local = peer(&a);
    local.join_plain("orders");
    ok(&trigger(
        &a,
        &json!({"name": "alone", "channel": "orders", "data": "1"}),
    ));
    local.expect_text(&event_text("alone", "1", "orders"));

    // Redis comes up on that port: the node links up and reaches another node.
    let _redis = RedisServer::start_on(port);
    await_linked(&a, 1);
    let b = start_node(port, "node-b", "");
    await_linked(&b, 1);
    let mut remote = peer(&b);
    remote.join_plain("orders");
    ok(&trigger(
        &a,
        &json!({"name": "linked", "channel": "orders", "data": "2"}),
    ));
    local.expect_text(&event_text("linked", "2", "orders"));
    remote.expect_text(&event_text("linked", "2", "orders"));
}
