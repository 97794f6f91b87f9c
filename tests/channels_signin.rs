//! `pusher:signin` and `#server-to-user-{id}` channels on a 2-shard server (websocket.md §14): the signature, the exact success answer, refusals that leave the connection open and unbound, and who may join a user's channel.

mod support;

use serde_json::{json, Value};
use support::channels::{self, error_text, hmac_hex, Peer, UNAUTHORIZED};
use support::{APP_KEY, APP_SECRET};

/// `auth` for a signin of `socket_id` with this exact `user_data` (demo secret).
fn signin_auth(socket_id: &str, user_data: &str) -> String {
    format!(
        "{APP_KEY}:{}",
        hmac_hex(APP_SECRET, &format!("{socket_id}::user::{user_data}"))
    )
}

fn send_signin(peer: &mut Peer, auth: &str, user_data: Value) {
    peer.send(&json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}));
}

/// Sign in with this `user_data` text and require the exact success answer.
fn sign_in(peer: &mut Peer, user_data: &str) {
    let auth = signin_auth(&peer.id, user_data);
    send_signin(peer, &auth, json!(user_data));
    let answer = json!({"user_data": user_data}).to_string();
    peer.expect_text(&json!({"event": "pusher:signin_success", "data": answer}).to_string());
}

#[test]
fn the_test_signer_matches_the_spec_example() {
    assert_eq!(
        hmac_hex(
            "app-secret",
            r#"123456789.987654321::user::{"id":"7","user_info":{"name":"Ada"}}"#
        ),
        "067d9edea87a7487db305eb944f3b87057e554714f8c8b235ef8e5ed8afcfddf"
    );
}

#[test]
fn a_valid_signin_answers_with_the_exact_user_data() {
    let server = channels::start("");
    let (a, b) = channels::pair(&server);
    for mut p in [a, b] {
        let user_data = r#"{"id":"7","user_info":{"name":"Ada"}}"#;
        let auth = signin_auth(&p.id, user_data);
        send_signin(&mut p, &auth, json!(user_data));
        p.expect_text(
            r#"{"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"7\\\",\\\"user_info\\\":{\\\"name\\\":\\\"Ada\\\"}}\"}"}"#,
        );
        // A double-encoded `data` works too, and user_data is kept byte for byte.
        let spaced = r#"{ "id" : "7", "user_info" : {} }"#;
        let data = json!({"auth": signin_auth(&p.id, spaced), "user_data": spaced}).to_string();
        p.send(&json!({"event": "pusher:signin", "data": data}));
        let answer = json!({ "user_data": spaced }).to_string();
        p.expect_text(&json!({"event": "pusher:signin_success", "data": answer}).to_string());
        p.barrier();
    }
}

#[test]
fn a_bad_signin_is_4009_and_the_connection_stays_open_and_unbound() {
    let server = channels::start("");
    let (mut a, b) = channels::pair(&server);
    let good = r#"{"id":"7"}"#;
    let refused = error_text(4009, UNAUTHORIZED);
    let attempts: Vec<Value> = vec![
        // Wrong signatures.
        json!({"auth": "app-key:00", "user_data": good}),
        json!({"auth": signin_auth(&b.id, good), "user_data": good}),
        json!({"auth": signin_auth(&a.id, r#"{"id":"8"}"#), "user_data": good}),
        json!({"auth": signin_auth(&a.id, good).to_uppercase(), "user_data": good}),
        json!({"user_data": good}),
        json!({"auth": signin_auth(&a.id, good)}),
        json!({"auth": "", "user_data": good}),
        // Signed, but the data is no good: not JSON, not an object, no / empty / bad id.
        json!({"auth": signin_auth(&a.id, "not json"), "user_data": "not json"}),
        json!({"auth": signin_auth(&a.id, "[1]"), "user_data": "[1]"}),
        json!({"auth": signin_auth(&a.id, "{}"), "user_data": "{}"}),
        json!({"auth": signin_auth(&a.id, r#"{"id":""}"#), "user_data": r#"{"id":""}"#}),
        json!({"auth": signin_auth(&a.id, r#"{"id":null}"#), "user_data": r#"{"id":null}"#}),
        json!({"auth": signin_auth(&a.id, r#"{"id":true}"#), "user_data": r#"{"id":true}"#}),
        // user_data as an object cannot have been signed.
        json!({"auth": signin_auth(&a.id, good), "user_data": {"id": "7"}}),
    ];
    for data in attempts {
        a.send(&json!({"event": "pusher:signin", "data": data}));
        let got = a.recv_text();
        assert_eq!(got, refused, "for {data}");
    }
    a.barrier();
    // Unbound: the user channel of the id it tried is refused.
    a.send_subscribe(json!({"channel": "#server-to-user-7", "auth": ""}));
    a.expect_error(4009, UNAUTHORIZED);
    // The connection still works: a right signin now succeeds.
    sign_in(&mut a, good);
    a.join_plain("#server-to-user-7");
    a.barrier();
}

#[test]
fn a_numeric_id_is_bound_as_its_decimal_string() {
    let server = channels::start("");
    let (mut a, _) = channels::pair(&server);
    sign_in(&mut a, r#"{"id":42,"user_info":{"n":1}}"#);
    a.join_plain("#server-to-user-42");
    a.barrier();
}

#[test]
fn server_to_user_channels_only_for_the_signed_in_user() {
    let server = channels::start("");
    let [mut s0, mut s1] = channels::spread(&server, [2, 2]);
    let (mut ada0, mut bob) = (s0.remove(0), s0.remove(0));
    let (mut ada1, mut nobody) = (s1.remove(0), s1.remove(0));
    let ada = r#"{"id":"7","user_info":{"name":"Ada"}}"#;
    sign_in(&mut ada0, ada);
    sign_in(&mut ada1, ada);
    sign_in(&mut bob, r#"{"id":"8"}"#);
    let ch = "#server-to-user-7";
    ada0.send_subscribe(json!({"channel": ch, "auth": ""}));
    ada0.expect_text(r##"{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"#server-to-user-7"}"##);
    ada1.join_plain(ch);
    // Another signed-in user, a connection not signed in, a prefix of the id, and an
    // auth that would sign it as a private channel: all refused.
    for (who, channel) in [
        ("bob", ch),
        ("nobody", ch),
        ("ada0", "#server-to-user-77"),
        ("ada0", "#server-to-user-"),
        ("bob", "#server-to-user-7 "),
    ] {
        let p = match who {
            "bob" => &mut bob,
            "nobody" => &mut nobody,
            _ => &mut ada0,
        };
        p.send_subscribe(
            json!({"channel": channel, "auth": support::channel_auth(&p.id, channel, None)}),
        );
        p.expect_error(4009, UNAUTHORIZED);
    }
    bob.join_plain("#server-to-user-8");
    // Events on the user's channel reach the user's connections on both shards.
    ada1.whisper(ch, "client-note", json!({"to": "self"}));
    ada0.expect_text(
        r##"{"event":"client-note","channel":"#server-to-user-7","data":{"to":"self"}}"##,
    );
    ada1.barrier();
    bob.barrier();
    nobody.barrier();
    // A second signin replaces the bound user.
    sign_in(&mut bob, r#"{"id":"9"}"#);
    bob.join_plain("#server-to-user-9");
    bob.send_subscribe(json!({"channel": "#server-to-user-8", "auth": ""}));
    bob.expect_error(4009, UNAUTHORIZED);
}
