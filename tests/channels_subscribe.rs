//! `pusher:subscribe` / `pusher:unsubscribe` on a 2-shard server (websocket.md §7, §8, §10): exact answers per channel kind, the signature rule, refusals that leave the connection usable, the channel-name limit, unsubscribe and re-subscribe.

mod support;

use serde_json::{json, Value};
use support::channels::{
    self, cache_miss_text, error_text, hmac_hex, member, succeeded_text, Peer, INVALID,
    NOT_A_MEMBER, UNAUTHORIZED,
};
use support::{channel_auth, TestServer};

/// Proves `peer` is not subscribed to `channel` (members mode: a client event there is
/// refused as from a non-member).
fn assert_not_subscribed(peer: &mut Peer, channel: &str) {
    peer.whisper(channel, "client-probe", json!({}));
    peer.expect_error(4009, NOT_A_MEMBER);
}

#[test]
fn the_test_signer_matches_the_spec_worked_examples() {
    // websocket.md §8.1, checked there with two independent HMAC implementations.
    assert_eq!(
        hmac_hex("app-secret", "123456789.987654321:private-orders.42"),
        "89cb3d79fcfe7beffb870e778a4dfa0ce2282d0ece6272e98e18c3e344894e4e"
    );
    assert_eq!(
        channel_auth("123456789.987654321", "private-orders.42", None),
        "app-key:89cb3d79fcfe7beffb870e778a4dfa0ce2282d0ece6272e98e18c3e344894e4e"
    );
    assert_eq!(
        channel_auth(
            "123456789.987654321",
            "presence-room.1",
            Some(r#"{"user_id":7,"user_info":{"name":"Ada"}}"#)
        ),
        "app-key:6602477fe21edc15ef8e6a877db2529a370c365b7b3e26762c4b60fab50e998c"
    );
    // Pusher's published example.
    assert_eq!(
        hmac_hex("7ad3773142a6692b25b8", "1234.1234:private-foobar"),
        "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
    );
}

#[test]
fn success_answers_are_exact_for_every_kind_on_both_shards() {
    let server = channels::start("");
    let (a, b) = channels::pair(&server);
    for mut peer in [a, b] {
        let s = peer.shard;
        // Plain answers: `data` is the string "{}", key order event, data, channel.
        for channel in [
            format!("orders.{s}"),
            format!("private-orders.{s}"),
            format!("private-encrypted-orders.{s}"),
            // Encrypted cache channels are plain private channels: no cache answer.
            format!("private-encrypted-cache-orders.{s}"),
            format!("privateX{s}"),
        ] {
            let answer = peer.subscribe(&channel, None);
            assert_eq!(
                answer,
                format!(
                    r#"{{"event":"pusher_internal:subscription_succeeded","data":"{{}}","channel":"{channel}"}}"#
                )
            );
        }
        // Cache kinds: the same answer, then the cache miss of an empty cache.
        for channel in [
            format!("cache-ticker.{s}"),
            format!("cacheX{s}"),
            format!("private-cache-ticker.{s}"),
        ] {
            let answer = peer.subscribe(&channel, None);
            assert_eq!(
                answer,
                format!(
                    r#"{{"event":"pusher_internal:subscription_succeeded","data":"{{}}","channel":"{channel}"}}"#
                )
            );
            peer.expect_text(&format!(
                r#"{{"event":"pusher:cache_miss","channel":"{channel}"}}"#
            ));
        }
        // Presence kinds: the member snapshot after adding the subscriber.
        let ada = r#"{"user_id":7,"user_info":{"name":"Ada"}}"#;
        let snapshot =
            r#"{\"presence\":{\"count\":1,\"ids\":[7],\"hash\":{\"7\":{\"name\":\"Ada\"}}}}"#;
        for (channel, caches) in [
            (format!("presence-room.{s}"), false),
            (format!("presenceX{s}"), false),
            (format!("presence-cache-room.{s}"), true),
        ] {
            let answer = peer.subscribe(&channel, Some(ada));
            assert_eq!(
                answer,
                format!(
                    r#"{{"event":"pusher_internal:subscription_succeeded","data":"{snapshot}","channel":"{channel}"}}"#
                )
            );
            if caches {
                peer.expect_text(&cache_miss_text(&channel));
            }
        }
        peer.barrier();
    }
}

#[test]
fn the_signature_covers_socket_id_channel_and_channel_data() {
    let server = channels::start("");
    let (mut a, b) = channels::pair(&server);
    let sign =
        |socket: &str, message: &str| hmac_hex(support::APP_SECRET, &format!("{socket}:{message}"));
    let refused = error_text(4009, UNAUTHORIZED);

    // Right: socket_id:channel.
    let ch = "private-orders.42";
    a.send_subscribe(json!({"channel": ch, "auth": format!("app-key:{}", sign(&a.id, ch))}));
    a.expect_text(&succeeded_text(ch, "{}"));

    let attempts: Vec<(&str, Value)> = vec![
        // Another socket's signature (the other shard's connection).
        (
            "private-a",
            json!({"channel": "private-a", "auth": format!("app-key:{}", sign(&b.id, "private-a"))}),
        ),
        // Another channel's signature.
        (
            "private-b",
            json!({"channel": "private-b", "auth": format!("app-key:{}", sign(&a.id, "private-other"))}),
        ),
        // Upper-case hex: compared exactly.
        (
            "private-c",
            json!({"channel": "private-c", "auth": format!("app-key:{}", sign(&a.id, "private-c").to_uppercase())}),
        ),
        // channel_data present: socket_id:channel alone is not enough.
        (
            "private-d",
            json!({"channel": "private-d", "channel_data": "{\"user_id\":1}", "auth": format!("app-key:{}", sign(&a.id, "private-d"))}),
        ),
        (
            "presence-e",
            json!({"channel": "presence-e", "channel_data": "{\"user_id\":1}", "auth": format!("app-key:{}", sign(&a.id, "presence-e"))}),
        ),
        // Missing, null, empty, garbage.
        ("private-f", json!({"channel": "private-f"})),
        ("private-g", json!({"channel": "private-g", "auth": null})),
        ("private-h", json!({"channel": "private-h", "auth": ""})),
        (
            "private-i",
            json!({"channel": "private-i", "auth": "app-key:"}),
        ),
        (
            "presence-j",
            json!({"channel": "presence-j", "auth": "app-key:00", "channel_data": "{\"user_id\":1}"}),
        ),
    ];
    for (channel, data) in attempts {
        a.send_subscribe(data);
        // No `channel` key, no subscription_error; not subscribed; the socket stays.
        a.expect_text(&refused);
        assert_not_subscribed(&mut a, channel);
    }
    a.barrier();

    // Right: socket_id:channel:channel_data, byte for byte, on private and presence.
    let cd = r#"{"user_id":1,  "user_info":{"name":"spaced"}}"#;
    for channel in ["private-k", "presence-k"] {
        a.send_subscribe(json!({
            "channel": channel,
            "channel_data": cd,
            "auth": format!("app-key:{}", sign(&a.id, &format!("{channel}:{cd}"))),
        }));
        let answer: Value = serde_json::from_str(&a.recv_text()).unwrap();
        assert_eq!(
            answer["event"], "pusher_internal:subscription_succeeded",
            "{answer}"
        );
    }
    // The part before the first ':' (the app key) is not checked; an auth without ':'
    // is compared whole.
    a.send_subscribe(json!({"channel": "private-l", "auth": format!("some-other-key:{}", sign(&a.id, "private-l"))}));
    a.expect_text(&succeeded_text("private-l", "{}"));
    a.send_subscribe(json!({"channel": "private-m", "auth": sign(&a.id, "private-m")}));
    a.expect_text(&succeeded_text("private-m", "{}"));
    // Public channels ignore auth entirely.
    a.send_subscribe(json!({"channel": "orders", "auth": "app-key:nonsense"}));
    a.expect_text(&succeeded_text("orders", "{}"));
    a.barrier();
}

#[test]
fn a_failed_auth_is_exactly_4009_and_the_connection_stays_usable() {
    let server = channels::start("");
    let (mut a, mut b) = channels::pair(&server);
    for peer in [&mut a, &mut b] {
        peer.send_subscribe(json!({"channel": "private-x", "auth": "app-key:00"}));
        peer.expect_text(
            r#"{"event":"pusher:error","data":"{\"code\":4009,\"message\":\"Connection is unauthorized\"}"}"#,
        );
        peer.barrier();
        // Still usable: the right signature now works, and events flow.
        peer.join_plain("private-x");
    }
    a.whisper("private-x", "client-after", json!({"ok": true}));
    b.expect_text(r#"{"event":"client-after","channel":"private-x","data":{"ok":true}}"#);
}

#[test]
fn tampered_channel_data_is_refused() {
    let server = channels::start("");
    let (mut observer, mut mallory) = channels::pair(&server);
    let ch = "presence-room";
    observer.join(ch, Some(&member(json!("o"), "Observer")));

    // Signed for user 1, sent as user 2 (and as user 1 with extra info).
    let signed = member(json!(1), "Mallory");
    for sent in [member(json!(2), "Mallory"), member(json!(1), "Admin")] {
        mallory.send_subscribe(json!({
            "channel": ch,
            "auth": channel_auth(&mallory.id, ch, Some(&signed)),
            "channel_data": sent,
        }));
        mallory.expect_error(4009, UNAUTHORIZED);
        assert_not_subscribed(&mut mallory, ch);
    }
    // No member event went out: the next thing the observer hears is a real join
    // from the same shard as the refused ones.
    let honest = member(json!(3), "Honest");
    let answer = mallory.join(ch, Some(&honest));
    assert_eq!(
        answer,
        r#"{"presence":{"count":2,"ids":["o",3],"hash":{"o":{"name":"Observer"},"3":{"name":"Honest"}}}}"#
    );
    observer.expect_text(&channels::member_added_text(ch, &honest));
}

#[test]
fn malformed_subscribe_payloads_get_4200_and_the_connection_lives() {
    let server = channels::start("");
    let (a, b) = channels::pair(&server);
    let invalid = error_text(4200, INVALID);
    for mut peer in [a, b] {
        for text in [
            r#"{"event":"pusher:subscribe"}"#,
            r#"{"event":"pusher:subscribe","data":{}}"#,
            r#"{"event":"pusher:subscribe","data":null}"#,
            r#"{"event":"pusher:subscribe","data":"not json"}"#,
            r#"{"event":"pusher:subscribe","data":{"auth":""}}"#,
            r#"{"event":"pusher:subscribe","data":{"channel":5}}"#,
            r#"{"event":"pusher:subscribe","data":{"channel":null}}"#,
            r#"{"event":"pusher:subscribe","data":{"channel":["orders"]}}"#,
            r#"{"event":"pusher:subscribe","data":{"channel":{"name":"orders"}}}"#,
            r#"{"event":"pusher:subscribe","data":{"channel":"private-x","auth":5}}"#,
            r#"{"event":"pusher:subscribe","data":{"channel":"orders","auth":{"a":1}}}"#,
            r#"{"event":"pusher:subscribe","data":{"channel":"orders","auth":true}}"#,
            r#"{"event":"pusher:subscribe","data":{"channel":"presence-x","auth":"app-key:00","channel_data":"not json"}}"#,
            r#"{"event":"pusher:subscribe","data":{"channel":"orders","channel_data":"{\"user_id\":"}}"#,
            r#"{"event":"pusher:unsubscribe"}"#,
            r#"{"event":"pusher:unsubscribe","data":{}}"#,
            r#"{"event":"pusher:unsubscribe","data":{"channel":1}}"#,
        ] {
            peer.send_text(text);
            let got = peer.recv_text();
            assert_eq!(got, invalid, "for {text}");
        }
        peer.barrier();
        // Nothing was subscribed by any of them, and the connection still works; a
        // double-encoded `data` is decoded first.
        assert_not_subscribed(&mut peer, "orders");
        peer.send_text(r#"{"event":"pusher:subscribe","data":"{\"channel\":\"orders\"}"}"#);
        peer.expect_text(&succeeded_text("orders", "{}"));
        peer.barrier();
    }
}

#[test]
fn channel_names_over_200_characters_are_refused_while_pusher_limits_is_on() {
    let server = channels::start("");
    let (a, b) = channels::pair(&server);
    for mut peer in [a, b] {
        let long = "a".repeat(201);
        peer.send_subscribe(json!({"channel": long}));
        peer.expect_text(
            r#"{"event":"pusher:error","data":"{\"code\":4200,\"message\":\"Invalid message format\"}"}"#,
        );
        // Also with a valid signature.
        let private = format!("private-{}", "p".repeat(193));
        assert_eq!(private.len(), 201);
        peer.send_subscribe(
            json!({"channel": private, "auth": channel_auth(&peer.id, &private, None)}),
        );
        peer.expect_error(4200, INVALID);
        // Multi-byte characters count as characters: 200 of them are fine.
        let wide = "é".repeat(200);
        peer.join_plain(&wide);
        let exact = "b".repeat(200);
        peer.join_plain(&exact);
        peer.barrier();
    }
}

#[test]
fn long_channel_names_are_accepted_with_pusher_limits_off() {
    let server = TestServer::start(
        &channels::config("pusher_limits = false", ""),
        channels::SHARDS,
    );
    let (mut a, _) = channels::pair(&server);
    let long = "a".repeat(201);
    a.join_plain(&long);
    a.barrier();
}

#[test]
fn unsubscribe_stops_delivery_on_both_shards() {
    let server = channels::start("");
    let [mut s0, mut s1] = channels::spread(&server, [2, 2]);
    let (mut sender, mut local) = (s0.remove(0), s0.remove(0));
    let (mut remote, mut witness) = (s1.remove(0), s1.remove(0));
    let ch = "room";
    for p in [&mut sender, &mut local, &mut remote, &mut witness] {
        p.join_plain(ch);
    }
    sender.whisper(ch, "client-n", json!({"n": 1}));
    let first = r#"{"event":"client-n","channel":"room","data":{"n":1}}"#;
    for p in [&mut local, &mut remote, &mut witness] {
        p.expect_text(first);
    }

    // Unsubscribe (no answer), then make sure each shard handled it.
    for p in [&mut local, &mut remote] {
        p.unsubscribe(ch);
        p.barrier();
    }
    sender.whisper(ch, "client-n", json!({"n": 2}));
    // Shard 0 delivers while handling the sender's message; shard 1 has delivered
    // once the witness (still subscribed there) has it.
    sender.barrier();
    witness.expect_text(r#"{"event":"client-n","channel":"room","data":{"n":2}}"#);
    for p in [&mut local, &mut remote] {
        p.barrier();
        assert_not_subscribed(p, ch);
        // Subscribing again: the next event is the first they get.
        p.join_plain(ch);
    }
    sender.whisper(ch, "client-n", json!({"n": 3}));
    let third = r#"{"event":"client-n","channel":"room","data":{"n":3}}"#;
    for p in [&mut local, &mut remote, &mut witness] {
        p.expect_text(third);
    }
}

#[test]
fn unsubscribing_an_unknown_channel_is_silent() {
    let server = channels::start("");
    let (a, b) = channels::pair(&server);
    for mut peer in [a, b] {
        let kept = format!("kept.{}", peer.shard);
        peer.join_plain(&kept);
        peer.unsubscribe("never-subscribed");
        peer.unsubscribe("presence-never");
        peer.barrier();
        peer.join_plain("once");
        peer.unsubscribe("once");
        peer.unsubscribe("once");
        peer.barrier();
        // Other subscriptions are untouched.
        peer.join_plain("probe");
        peer.whisper(&kept, "client-x", json!({}));
        peer.barrier();
    }
}

#[test]
fn resubscribing_answers_again_and_delivers_once() {
    let server = channels::start("");
    let (mut a, mut b) = channels::pair(&server);
    for p in [&mut a, &mut b] {
        p.join_plain("room");
        p.join_plain("room");
        p.join_cache_miss("cache-room");
        p.join_cache_miss("cache-room");
        p.barrier();
    }
    // One subscription each, so one delivery each.
    a.whisper("room", "client-once", json!({}));
    b.expect_text(r#"{"event":"client-once","channel":"room","data":{}}"#);
    b.barrier();
    b.whisper("room", "client-once", json!({}));
    a.expect_text(r#"{"event":"client-once","channel":"room","data":{}}"#);
    a.barrier();
    // A re-subscribe to a cache channel replays the cached event again.
    a.whisper("cache-room", "client-cached", json!({"v": 1}));
    let cached = r#"{"event":"client-cached","channel":"cache-room","data":{"v":1}}"#;
    b.expect_text(cached);
    for p in [&mut a, &mut b] {
        p.join_plain("cache-room");
        p.expect_text(cached);
        p.barrier();
    }
    // A single unsubscribe ends the (single) subscription.
    b.unsubscribe("room");
    b.barrier();
    assert_not_subscribed(&mut b, "room");
}

#[test]
fn resubscribing_to_presence_sends_the_snapshot_again_without_member_added() {
    let server = channels::start("");
    let [mut s0, mut s1] = channels::spread(&server, [1, 2]);
    let mut observer = s0.remove(0);
    let (mut ada, mut sentinel) = (s1.remove(0), s1.remove(0));
    let ch = "presence-room";
    let o = member(json!("o"), "Observer");
    observer.join(ch, Some(&o));
    let a = member(json!(7), "Ada");
    ada.join(ch, Some(&a));
    observer.expect_text(&channels::member_added_text(ch, &a));

    let snapshot = ada.join(ch, Some(&a));
    assert_eq!(
        snapshot,
        r#"{"presence":{"count":2,"ids":["o",7],"hash":{"o":{"name":"Observer"},"7":{"name":"Ada"}}}}"#
    );
    ada.barrier();
    // The observer's next event is a later join: nothing came from the re-subscribe.
    let s = member(json!("s"), "Sentinel");
    sentinel.join(ch, Some(&s));
    observer.expect_text(&channels::member_added_text(ch, &s));
}
