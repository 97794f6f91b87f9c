//! Channels across shards: the core paths (more in the channel suites).

mod support;

use serde_json::json;
use support::{app_config, channel_auth, shard_of, Client, TestServer};

/// Connect until there is one client on each of the two shards.
fn one_per_shard(server: &TestServer) -> [(Client, String); 2] {
    let mut slots: [Option<(Client, String)>; 2] = [None, None];
    for _ in 0..200 {
        let (client, id) = server.connect_established();
        let shard = shard_of(&id) as usize;
        if slots[shard].is_none() {
            slots[shard] = Some((client, id));
        }
        if slots.iter().all(Option::is_some) {
            break;
        }
    }
    slots.map(|s| s.expect("connections landed on both shards"))
}

fn subscribe(
    client: &mut Client,
    channel: &str,
    auth: Option<String>,
    channel_data: Option<&str>,
) -> serde_json::Value {
    let mut data = json!({"channel": channel});
    if let Some(auth) = auth {
        data["auth"] = json!(auth);
    }
    if let Some(cd) = channel_data {
        data["channel_data"] = json!(cd);
    }
    client.send_json(&json!({"event": "pusher:subscribe", "data": data}));
    client.recv_json()
}

#[test]
fn client_event_reaches_the_other_shard_not_the_sender() {
    let server = TestServer::start(&app_config("accept_client_events_from = \"members\""), 2);
    let [(mut a, _), (mut b, _)] = one_per_shard(&server);
    for c in [&mut a, &mut b] {
        let ok = subscribe(c, "public-room", None, None);
        assert_eq!(
            ok,
            json!({"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"public-room"})
        );
    }
    a.send_json(&json!({"event":"client-typing","channel":"public-room","data":{"typing":true}}));
    assert_eq!(
        b.recv_json(),
        json!({"event":"client-typing","channel":"public-room","data":{"typing":true}})
    );
    a.assert_alive();
}

#[test]
fn presence_members_across_shards() {
    let server = TestServer::start(&app_config(""), 2);
    let [(mut a, a_id), (mut b, b_id)] = one_per_shard(&server);
    let ch = "presence-room.1";
    let a_data = r#"{"user_id":7,"user_info":{"name":"Ada"}}"#;
    let ok = subscribe(
        &mut a,
        ch,
        Some(channel_auth(&a_id, ch, Some(a_data))),
        Some(a_data),
    );
    assert_eq!(
        ok["data"],
        r#"{"presence":{"count":1,"ids":[7],"hash":{"7":{"name":"Ada"}}}}"#
    );
    let b_data = r#"{"user_id":"8","user_info":{"name":"Bob"}}"#;
    let ok = subscribe(
        &mut b,
        ch,
        Some(channel_auth(&b_id, ch, Some(b_data))),
        Some(b_data),
    );
    assert_eq!(
        ok["data"],
        r#"{"presence":{"count":2,"ids":[7,"8"],"hash":{"7":{"name":"Ada"},"8":{"name":"Bob"}}}}"#
    );
    assert_eq!(
        a.recv_json(),
        json!({"event":"pusher_internal:member_added","data":b_data,"channel":ch})
    );
    drop(b);
    assert_eq!(
        a.recv_json(),
        json!({"event":"pusher_internal:member_removed","data":"{\"user_id\":\"8\"}","channel":ch})
    );
}

#[test]
fn bad_signature_is_refused_and_the_connection_lives() {
    let server = TestServer::start(&app_config(""), 1);
    let (mut c, _) = server.connect_established();
    c.send_json(
        &json!({"event":"pusher:subscribe","data":{"channel":"private-x","auth":"app-key:00"}}),
    );
    assert_eq!(c.expect_error(4009), "Connection is unauthorized");
    c.assert_alive();
}
