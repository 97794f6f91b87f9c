//! `POST /apps/{id}/users/{user}/terminate_connections` (http-api.md §8): every
//! connection of the app signed in as the user (`pusher:signin`) or holding a presence
//! membership with that `user_id` is closed with Close 1000 `Connection terminated` on
//! every shard; everyone else is untouched; the remaining presence members get
//! `member_removed`; an unknown user is `200 {}` with nobody closed.

mod support;

use serde_json::{json, Value};
use support::http_api::*;
use support::{app_config, Client, TestServer};

const TERMINATED: (u16, &str) = (1000, "Connection terminated");

fn terminate(server: &TestServer, user: &str) {
    let r = api(
        server,
        "POST",
        &format!("/users/{user}/terminate_connections"),
        &[],
        "{}",
    );
    assert_json_raw(&r, 200, "{}");
}

fn expect_terminated(client: &mut Client) {
    let (code, reason) = expect_close_skipping_members(client);
    assert_eq!((code, reason.as_str()), TERMINATED);
    client.expect_gone();
}

fn user_ids(server: &TestServer, channel: &str) -> Vec<Value> {
    let r = api(
        server,
        "GET",
        &format!("/channels/{channel}/users"),
        &[],
        "",
    );
    if r.status == 404 {
        return Vec::new();
    }
    json_of(&r)["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].clone())
        .collect()
}

fn connections(server: &TestServer) -> u64 {
    get_json(server, "/connections", &[])["connections"]
        .as_u64()
        .unwrap()
}

#[test]
fn signed_in_sockets_and_presence_members_of_the_user_are_closed_on_every_shard() {
    let server = TestServer::start(&(app_config("") + OTHER_APP), shards());
    let mut groups = spread(&server, shards(), 4);
    let last = groups.len() - 1;
    let mut take = |shard: usize| groups[shard].remove(0);

    // User 42's connections.
    let (mut signed_only, id) = take(0);
    signin(&mut signed_only, &id, "42");
    let (mut member_after_public, id) = take(0);
    // Reverb looks only at the first subscription; here a public one comes first.
    subscribe(&mut member_after_public, &id, "orders");
    join(&mut member_after_public, &id, "presence-room", &json!(42));
    let (mut signed_and_member, id) = take(last);
    signin(&mut signed_and_member, &id, "42");
    join(&mut signed_and_member, &id, "presence-room", &json!(42));
    let (mut member_elsewhere, id) = take(last);
    join(&mut member_elsewhere, &id, "presence-other", &json!(42));

    // Everyone else.
    let (mut member_7, id) = take(0);
    join(&mut member_7, &id, "presence-room", &json!(7));
    let (mut member_420, id) = take(last);
    join(&mut member_420, &id, "presence-room", &json!("420"));
    join(&mut member_420, &id, "presence-other", &json!("420"));
    let (mut signed_4, id) = take(0);
    signin(&mut signed_4, &id, "4");
    subscribe(&mut signed_4, &id, "orders");
    let (mut plain, id) = take(last);
    subscribe(&mut plain, &id, "orders");
    let mut other_app = Client::connect(&server.ws_url("other-key"), &[]);
    let other_id = other_app.established();
    signin_other_app(&mut other_app, &other_id, "42");

    let before = connections(&server);
    terminate(&server, "42");
    for c in [
        &mut signed_only,
        &mut member_after_public,
        &mut signed_and_member,
        &mut member_elsewhere,
    ] {
        expect_terminated(c);
    }
    // Untouched (the closes were all queued before the 200 was sent, so a pong proves
    // the connection was spared).
    for c in [
        &mut member_7,
        &mut member_420,
        &mut signed_4,
        &mut plain,
        &mut other_app,
    ] {
        alive(c);
    }
    // The remaining members hear that user 42 left, once per channel.
    let (msg, _) = until_event(&mut member_7, "pusher_internal:member_removed", None);
    assert_eq!(msg["channel"], "presence-room");
    assert_eq!(msg["data"], json!({"user_id":42}).to_string(), "{msg}");
    let mut heard = Vec::new();
    for _ in 0..2 {
        let (msg, _) = until_event(&mut member_420, "pusher_internal:member_removed", None);
        assert_eq!(msg["data"], json!({"user_id":42}).to_string(), "{msg}");
        heard.push(msg["channel"].as_str().unwrap().to_string());
    }
    heard.sort();
    assert_eq!(heard, ["presence-other", "presence-room"]);
    eventually(vec![json!(7), json!("420")], || {
        user_ids(&server, "presence-room")
    });
    eventually(vec![json!("420")], || user_ids(&server, "presence-other"));
    eventually(before - 4, || connections(&server));
    for c in [&mut member_7, &mut member_420] {
        let extra = alive(c);
        assert!(
            extra
                .iter()
                .all(|m| m["event"] != "pusher_internal:member_removed"),
            "a second member_removed: {extra:?}"
        );
    }
}

/// Sign in on the second app (its own secret).
fn signin_other_app(client: &mut Client, socket_id: &str, user_id: &str) {
    let user_data = json!({"id": user_id}).to_string();
    let sig = hmac_hex("other-secret", &format!("{socket_id}::user::{user_data}"));
    client.send_json(&json!({"event":"pusher:signin","data":{
        "auth": format!("other-key:{sig}"),
        "user_data": user_data,
    }}));
    until_event(client, "pusher:signin_success", None);
}

#[test]
fn every_connection_of_one_user_on_both_shards_is_closed() {
    let server = TestServer::start(&app_config(""), shards());
    let mut groups = spread(&server, shards(), 3);
    let mut users = Vec::new();
    for group in groups.iter_mut() {
        for _ in 0..3 {
            let (mut c, id) = group.remove(0);
            signin(&mut c, &id, "u1");
            users.push(c);
        }
    }
    terminate(&server, "u1");
    for c in users.iter_mut() {
        expect_terminated(c);
    }
    for group in groups.iter_mut() {
        for (c, _) in group.iter_mut() {
            alive(c);
        }
    }
}

#[test]
fn an_unknown_user_is_200_and_nobody_is_disconnected() {
    let server = TestServer::start(&app_config(""), shards());
    let mut groups = spread(&server, shards(), 2);
    {
        let (c, id) = &mut groups[0][0];
        signin(c, id, "42");
        join(c, id, "presence-room", &json!(42));
    }
    {
        let (c, id) = groups.last_mut().unwrap().last_mut().unwrap();
        join(c, id, "presence-room", &json!("7"));
    }
    let before = connections(&server);
    // Other ids, including prefixes and extensions of existing ones.
    for user in ["nobody", "4", "420", "7x", "%2042"] {
        terminate(&server, user);
    }
    for group in groups.iter_mut() {
        for (c, _) in group.iter_mut() {
            let extra = alive(c);
            assert!(
                extra
                    .iter()
                    .all(|m| m["event"] != "pusher_internal:member_removed"),
                "{extra:?}"
            );
        }
    }
    assert_eq!(connections(&server), before);
    assert_eq!(
        user_ids(&server, "presence-room"),
        vec![json!(42), json!("7")]
    );
}

#[test]
fn numeric_presence_ids_match_the_path_as_strings() {
    let server = TestServer::start(&app_config(""), 1);
    let (mut numeric, id) = server.connect_established();
    join(&mut numeric, &id, "presence-room", &json!(5));
    let (mut stays, id) = server.connect_established();
    join(&mut stays, &id, "presence-room", &json!(6));
    terminate(&server, "5");
    expect_terminated(&mut numeric);
    let (msg, _) = until_event(&mut stays, "pusher_internal:member_removed", None);
    assert_eq!(msg["data"], r#"{"user_id":5}"#);
}

#[test]
fn the_user_id_in_the_path_is_percent_decoded() {
    let server = TestServer::start(&app_config(""), 1);
    let (mut c, id) = server.connect_established();
    signin(&mut c, &id, "ada@example.com");
    let (mut other, _) = server.connect_established();
    terminate(&server, "ada%40example.com");
    expect_terminated(&mut c);
    alive(&mut other);
}

#[test]
fn terminating_in_another_app_spares_this_apps_user() {
    let server = TestServer::start(&(app_config("") + OTHER_APP), 1);
    let (mut mine, id) = server.connect_established();
    signin(&mut mine, &id, "42");
    let signer = Signer {
        key: "other-key".into(),
        secret: "other-secret".into(),
        ..Signer::default()
    };
    let r = call_signed(
        &server,
        &signer,
        "POST",
        "/apps/654321/users/42/terminate_connections",
        &[],
        "{}",
    );
    assert_json_raw(&r, 200, "{}");
    alive(&mut mine);
}

#[test]
fn a_terminated_user_can_connect_again() {
    let server = TestServer::start(&app_config(""), 1);
    let (mut c, id) = server.connect_established();
    signin(&mut c, &id, "42");
    terminate(&server, "42");
    expect_terminated(&mut c);
    let (mut again, id) = server.connect_established();
    signin(&mut again, &id, "42");
    alive(&mut again);
}
