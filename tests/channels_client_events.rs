//! Client events on a 2-shard server (websocket.md §11, §15; design invariant 5): the three `accept_client_events_from` modes, the relayed shape with user_id, no echo to the sender, ignored and invalid events, the message-size limit, and per-sender order across shards.

mod support;

use serde_json::json;
use support::channels::{self, member, Peer, INVALID, NOT_A_MEMBER};
use support::TestServer;

/// A sender on shard 0 and receivers on both shards, all on `channel`.
fn trio(server: &TestServer, channel: &str, data: [Option<&str>; 3]) -> (Peer, Peer, Peer) {
    let [mut s0, mut s1] = channels::spread(server, [2, 1]);
    let (mut sender, mut local) = (s0.remove(0), s0.remove(0));
    let mut remote = s1.remove(0);
    for (p, cd) in [&mut sender, &mut local, &mut remote].into_iter().zip(data) {
        p.join(channel, cd);
    }
    if channel.starts_with("presence") {
        // Read the joins' member_added events: each hears those after its own.
        let added = |i: usize| channels::member_added_text(channel, data[i].unwrap());
        sender.expect_text(&added(1));
        sender.expect_text(&added(2));
        local.expect_text(&added(2));
    }
    (sender, local, remote)
}

#[test]
fn members_mode_requires_a_subscription() {
    let server = channels::start("");
    let (mut a, mut b) = channels::pair(&server);
    b.join_plain("room");
    a.whisper("room", "client-x", json!({"a": 1}));
    a.expect_text(
        r#"{"event":"pusher:error","data":"{\"code\":4009,\"message\":\"The client is not a member of the specified channel.\"}"}"#,
    );
    a.barrier();
    // Subscribed to another channel is not enough either.
    a.join_plain("elsewhere");
    a.whisper("room", "client-x", json!({"a": 2}));
    a.expect_error(4009, NOT_A_MEMBER);
    // After subscribing it goes through; b heard nothing before it.
    a.join_plain("room");
    a.whisper("room", "client-x", json!({"a": 3}));
    b.expect_text(r#"{"event":"client-x","channel":"room","data":{"a":3}}"#);
    a.barrier();
    // And after unsubscribing it is refused again.
    a.unsubscribe("room");
    a.whisper("room", "client-x", json!({"a": 4}));
    a.expect_error(4009, NOT_A_MEMBER);
}

#[test]
fn relayed_as_event_channel_data_with_the_senders_user_id_never_echoed() {
    let server = channels::start("");
    let ch = "presence-chat";
    let (mut sender, mut local, mut remote) = trio(
        &server,
        ch,
        [
            Some(member(json!(7), "Ada").as_str()),
            Some(member(json!("l"), "L").as_str()),
            Some(member(json!("r"), "R").as_str()),
        ],
    );
    // Keys in another order, an extra key, and a user_id of its own: rebuilt as
    // event, channel, data, user_id (the subscription's).
    sender.send_text(
        r#"{"data":{"typing":true},"channel":"presence-chat","event":"client-typing","user_id":"forged","extra":1}"#,
    );
    let expected =
        r#"{"event":"client-typing","channel":"presence-chat","data":{"typing":true},"user_id":7}"#;
    local.expect_text(expected);
    remote.expect_text(expected);
    // Never echoed to the sender.
    sender.barrier();
    // Without data: data is null. A double-encoded object is decoded; arrays pass.
    sender.send_text(r#"{"event":"client-none","channel":"presence-chat"}"#);
    sender.send_text(r#"{"event":"client-str","channel":"presence-chat","data":"{\"a\":[1,2]}"}"#);
    sender.send_text(r#"{"event":"client-arr","channel":"presence-chat","data":[1,"two"]}"#);
    sender.send_text(r#"{"event":"client-null","channel":"presence-chat","data":null}"#);
    for p in [&mut local, &mut remote] {
        p.expect_text(
            r#"{"event":"client-none","channel":"presence-chat","data":null,"user_id":7}"#,
        );
        p.expect_text(
            r#"{"event":"client-str","channel":"presence-chat","data":{"a":[1,2]},"user_id":7}"#,
        );
        p.expect_text(
            r#"{"event":"client-arr","channel":"presence-chat","data":[1,"two"],"user_id":7}"#,
        );
        p.expect_text(
            r#"{"event":"client-null","channel":"presence-chat","data":null,"user_id":7}"#,
        );
    }
    sender.barrier();
    // The remote receiver answers: the sender gets it, the remote itself does not.
    remote.whisper(ch, "client-reply", json!({}));
    sender.expect_text(
        r#"{"event":"client-reply","channel":"presence-chat","data":{},"user_id":"r"}"#,
    );
    local.expect_text(
        r#"{"event":"client-reply","channel":"presence-chat","data":{},"user_id":"r"}"#,
    );
    remote.barrier();
}

#[test]
fn user_id_zero_is_kept_and_other_kinds_carry_user_id_only_when_given() {
    let server = channels::start("");
    let [mut s0, mut s1] = channels::spread(&server, [2, 1]);
    let (mut zero, mut zero_str) = (s0.remove(0), s0.remove(0));
    let mut receiver = s1.remove(0);
    let ch = "presence-zero";
    receiver.join(ch, Some(&member(json!("rx"), "Rx")));
    zero.join(ch, Some(&member(json!(0), "Zero")));
    zero_str.join(ch, Some(&member(json!("0"), "Zero again")));
    receiver.expect_text(&channels::member_added_text(ch, &member(json!(0), "Zero")));
    zero.whisper(ch, "client-z", json!({}));
    receiver.expect_text(r#"{"event":"client-z","channel":"presence-zero","data":{},"user_id":0}"#);
    zero_str.whisper(ch, "client-z", json!({}));
    receiver
        .expect_text(r#"{"event":"client-z","channel":"presence-zero","data":{},"user_id":"0"}"#);
    // The two connections of user 0 hear each other (each only the other).
    zero.expect_text(r#"{"event":"client-z","channel":"presence-zero","data":{},"user_id":"0"}"#);

    // A private channel without channel_data: no user_id.
    receiver.join_plain("private-p");
    zero.join_plain("private-p");
    zero.whisper("private-p", "client-p", json!({"k": "v"}));
    receiver.expect_text(r#"{"event":"client-p","channel":"private-p","data":{"k":"v"}}"#);
    // A public channel subscribed with channel_data carrying a user_id: added.
    receiver.join_plain("public-u");
    zero.send_subscribe(json!({"channel": "public-u", "channel_data": "{\"user_id\":5}"}));
    zero.expect_text(&channels::succeeded_text("public-u", "{}"));
    zero.whisper("public-u", "client-u", json!({}));
    receiver.expect_text(r#"{"event":"client-u","channel":"public-u","data":{},"user_id":5}"#);
}

#[test]
fn all_mode_relays_the_message_as_received_without_user_id() {
    let server = channels::start(r#"accept_client_events_from = "all""#);
    let ch = "presence-all";
    let (mut sender, mut local, mut remote) = trio(
        &server,
        ch,
        [
            Some(member(json!(7), "Ada").as_str()),
            Some(member(json!("l"), "L").as_str()),
            Some(member(json!("r"), "R").as_str()),
        ],
    );
    let text = r#"{"channel":"presence-all","event":"client-a","data":{"k":1},"extra":"kept"}"#;
    sender.send_text(text);
    local.expect_text(text);
    remote.expect_text(text);
    sender.barrier();
    // The data decoding of §5 still applies.
    sender.send_text(r#"{"event":"client-b","channel":"presence-all","data":"{\"k\":2}"}"#);
    for p in [&mut local, &mut remote] {
        p.expect_text(r#"{"event":"client-b","channel":"presence-all","data":{"k":2}}"#);
    }
    // No membership check: a connection subscribed to nothing can send.
    let mut outsider = channels::on_shard(&server, 1);
    outsider.send_text(r#"{"event":"client-c","channel":"presence-all"}"#);
    for p in [&mut sender, &mut local, &mut remote] {
        p.expect_text(r#"{"event":"client-c","channel":"presence-all"}"#);
    }
    outsider.barrier();
}

#[test]
fn disabled_client_events_get_4301() {
    let server = channels::start(r#"accept_client_events_from = "none""#);
    let (mut a, mut b) = channels::pair(&server);
    for p in [&mut a, &mut b] {
        p.join_plain("room");
    }
    for p in [&mut a, &mut b] {
        p.whisper("room", "client-x", json!({}));
        p.expect_text(
            r#"{"event":"pusher:error","data":"{\"code\":4301,\"message\":\"The app does not have client messaging enabled.\"}"}"#,
        );
        p.barrier();
    }
    // Each got only its own error, nothing relayed.
    a.barrier();
    b.barrier();
}

#[test]
fn non_client_events_are_ignored_and_invalid_ones_get_4200() {
    let server = channels::start("");
    let (mut sender, mut receiver) = channels::pair(&server);
    sender.join_plain("room");
    receiver.join_plain("room");
    // Not `client-`: ignored silently (no error, nothing relayed).
    for text in [
        r#"{"event":"typing","channel":"room","data":{}}"#,
        r#"{"event":"App\\Events\\Shipped","channel":"room","data":{}}"#,
        r#"{"event":"Client-x","channel":"room","data":{}}"#,
        r#"{"event":"pusher_internal:member_added","channel":"room","data":{"user_id":1}}"#,
    ] {
        sender.send_text(text);
    }
    sender.barrier();
    // Validation failures: 4200, nothing relayed.
    for text in [
        r#"{"event":"client-x","data":{}}"#,
        r#"{"event":"client-x","channel":5,"data":{}}"#,
        r#"{"event":"client-x","channel":null}"#,
        r#"{"event":"client-x","channel":"room","data":"plain"}"#,
        r#"{"event":"client-x","channel":"room","data":5}"#,
        r#"{"event":"client-x","channel":"room","data":"5"}"#,
        r#"{"event":"client-x","channel":"room","data":true}"#,
        r#"{"event":"typing","channel":"room","data":"plain"}"#,
        r#"{"event":"","channel":"room","data":{}}"#,
        r#"{"channel":"room","data":{}}"#,
        r#"["client-x"]"#,
        r#"not json"#,
    ] {
        sender.send_text(text);
        let got = sender.recv_text();
        assert_eq!(got, channels::error_text(4200, INVALID), "for {text}");
    }
    sender.barrier();
    // The receiver's first message is the sentinel sent after all of the above.
    sender.whisper("room", "client-sentinel", json!({}));
    receiver.expect_text(r#"{"event":"client-sentinel","channel":"room","data":{}}"#);
    receiver.barrier();
}

#[test]
fn max_message_size_applies_to_client_events() {
    let server = channels::start("max_message_size = 512");
    let [mut s0, mut s1] = channels::spread(&server, [2, 1]);
    let (mut sender, mut sentinel) = (s0.remove(0), s0.remove(0));
    let mut receiver = s1.remove(0);
    for p in [&mut sender, &mut sentinel, &mut receiver] {
        p.join_plain("room");
    }
    let message = |len: usize| {
        let head = r#"{"event":"client-big","channel":"room","data":{"pad":""#;
        let tail = r#""}}"#;
        let text = format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()));
        assert_eq!(text.len(), len);
        text
    };
    // Exactly the limit: relayed.
    let at_limit = message(512);
    sender.send_text(&at_limit);
    receiver.expect_text(&at_limit);
    sender.barrier();
    // One byte over: Close 1009, not relayed.
    sender.send_text(&message(513));
    assert_eq!(
        sender.client.expect_close(),
        (1009, "Maximum message size exceeded".to_string())
    );
    sentinel.whisper("room", "client-after", json!({}));
    receiver.expect_text(r#"{"event":"client-after","channel":"room","data":{}}"#);
}

#[test]
fn two_hundred_events_from_one_sender_arrive_in_order_on_both_shards() {
    let server = channels::start("");
    let ch = "room";
    let (mut sender, mut local, mut remote) = trio(&server, ch, [None, None, None]);
    const EVENTS: usize = 200;
    for n in 0..EVENTS {
        sender.whisper(ch, "client-seq", json!({ "n": n }));
    }
    for p in [&mut remote, &mut local] {
        for n in 0..EVENTS {
            p.expect_text(&format!(
                r#"{{"event":"client-seq","channel":"room","data":{{"n":{n}}}}}"#
            ));
        }
        p.barrier();
    }
    sender.barrier();
}

#[test]
fn client_events_stay_in_their_app() {
    let config = format!(
        "{}\n[[apps]]\napp_id = \"other\"\nkey = \"other-key\"\nsecret = \"other-secret\"\n",
        channels::config("", "")
    );
    let server = TestServer::start(&config, channels::SHARDS);
    // The other app's receiver, on shard 1.
    let mut other_rx = other_app_client(&server, 1);
    other_rx.send_json(&json!({"event": "pusher:subscribe", "data": {"channel": "room"}}));
    assert_eq!(
        other_rx.recv_json(),
        json!({"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"room"})
    );
    let mut other_tx = other_app_client(&server, 0);
    other_tx.send_json(&json!({"event": "pusher:subscribe", "data": {"channel": "room"}}));
    other_tx.recv_json();
    let (mut demo_tx, mut demo_rx) = channels::pair(&server);
    demo_tx.join_plain("room");
    demo_rx.join_plain("room");
    // The demo app's event, then the other app's from the same shard: the other
    // app's receiver gets only its own.
    demo_tx.whisper("room", "client-demo", json!({}));
    demo_rx.expect_text(r#"{"event":"client-demo","channel":"room","data":{}}"#);
    demo_tx.barrier();
    other_tx.send_json(&json!({"event": "client-other", "channel": "room", "data": {}}));
    assert_eq!(
        other_rx.recv_json(),
        json!({"event":"client-other","channel":"room","data":{}})
    );
    demo_rx.barrier();
}

/// A client of the second app ("other-key") on `shard`.
fn other_app_client(server: &TestServer, shard: u64) -> support::Client {
    for _ in 0..2000 {
        let mut client = server.connect("other-key");
        let id = client.established();
        if support::shard_of(&id) == shard {
            return client;
        }
    }
    panic!("no connection landed on shard {shard}");
}
