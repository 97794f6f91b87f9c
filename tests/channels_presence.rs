//! Presence channels on a 2-shard server (websocket.md §8.2, §9; design invariant 7): exact member snapshots, one member per user across shards, member_added / member_removed on first join / last leave only, their order, and subscriptions that are not members.

mod support;

use serde_json::json;
use support::channels::{self, await_log, member, member_added_text, member_removed_text};
use support::TestServer;

fn debug_server() -> TestServer {
    TestServer::builder()
        .config(&channels::config("", ""))
        .cores(channels::SHARDS)
        .arg("--debug")
        .start()
}

#[test]
fn the_snapshot_is_exact_and_keeps_json_types() {
    let server = channels::start("");
    let [mut s0, mut s1] = channels::spread(&server, [2, 2]);
    let ch = "presence-room.1";
    let ada = member(json!(7), "Ada");
    let bob = member(json!("8"), "Bob");
    let (mut a, mut a_again) = (s0.remove(0), s0.remove(0));
    let (mut b, mut c) = (s1.remove(0), s1.remove(0));

    assert_eq!(
        a.join(ch, Some(&ada)),
        r#"{"presence":{"count":1,"ids":[7],"hash":{"7":{"name":"Ada"}}}}"#
    );
    assert_eq!(
        b.join(ch, Some(&bob)),
        r#"{"presence":{"count":2,"ids":[7,"8"],"hash":{"7":{"name":"Ada"},"8":{"name":"Bob"}}}}"#
    );
    a.expect_text(&member_added_text(ch, &bob));
    // Extra fields and no user_info: the hash has null, member_added re-sends the
    // whole channel_data.
    let carol = r#"{"user_id":"c","extra":[1,{"k":"v"}]}"#;
    assert_eq!(
        c.join(ch, Some(carol)),
        r#"{"presence":{"count":3,"ids":[7,"8","c"],"hash":{"7":{"name":"Ada"},"8":{"name":"Bob"},"c":null}}}"#
    );
    a.expect_text(
        r#"{"event":"pusher_internal:member_added","data":"{\"user_id\":\"c\",\"extra\":[1,{\"k\":\"v\"}]}","channel":"presence-room.1"}"#,
    );
    b.expect_text(&member_added_text(ch, carol));
    // "7" as a string is the same user as 7: no event, first connection's data wins.
    assert_eq!(
        a_again.join(ch, Some(&member(json!("7"), "Impostor"))),
        r#"{"presence":{"count":3,"ids":[7,"8","c"],"hash":{"7":{"name":"Ada"},"8":{"name":"Bob"},"c":null}}}"#
    );
    // Leaving keeps first-join order for the others; the id keeps its JSON type.
    b.unsubscribe(ch);
    a.expect_text(&member_removed_text(ch, json!("8")));
    c.expect_text(
        r#"{"event":"pusher_internal:member_removed","data":"{\"user_id\":\"8\"}","channel":"presence-room.1"}"#,
    );
    b.barrier();
    assert_eq!(
        b.join(ch, Some(&bob)),
        r#"{"presence":{"count":3,"ids":[7,"c","8"],"hash":{"7":{"name":"Ada"},"c":null,"8":{"name":"Bob"}}}}"#
    );
}

#[test]
fn one_user_on_two_shards_is_one_member_with_one_added_and_one_removed() {
    let server = debug_server();
    let [mut s0, mut s1] = channels::spread(&server, [3, 3]);
    let (mut observer, mut ada0, mut sentinel0) = (s0.remove(0), s0.remove(0), s0.remove(0));
    let (mut ada1, mut sentinel1, mut late) = (s1.remove(0), s1.remove(0), s1.remove(0));
    let ch = "presence-shared";
    let ada = member(json!(7), "Ada");
    observer.join(ch, Some(&member(json!("o"), "O")));

    assert_eq!(
        ada0.join(ch, Some(&ada)),
        r#"{"presence":{"count":2,"ids":["o",7],"hash":{"o":{"name":"O"},"7":{"name":"Ada"}}}}"#
    );
    observer.expect_text(&member_added_text(ch, &ada));
    // The same user from the other shard: counted once.
    assert_eq!(
        ada1.join(ch, Some(&ada)),
        r#"{"presence":{"count":2,"ids":["o",7],"hash":{"o":{"name":"O"},"7":{"name":"Ada"}}}}"#
    );
    ada0.barrier();
    // No second member_added: the observer's next event is a later join.
    let s1 = member(json!("s1"), "S1");
    sentinel1.join(ch, Some(&s1));
    observer.expect_text(&member_added_text(ch, &s1));

    // Ada's first connection goes away (disconnect): she is still a member.
    let gone = ada0.id.clone();
    drop(ada0);
    await_log(&server, &format!("Connection Closed {gone}"));
    // Its leave went to the owner before this join from the same shard.
    let s0 = member(json!("s0"), "S0");
    sentinel0.join(ch, Some(&s0));
    observer.expect_text(&member_added_text(ch, &s0));
    assert_eq!(
        late.join(ch, None),
        r#"{"presence":{"count":4,"ids":["o",7,"s1","s0"],"hash":{"o":{"name":"O"},"7":{"name":"Ada"},"s1":{"name":"S1"},"s0":{"name":"S0"}}}}"#
    );

    // Her last connection goes: exactly one member_removed, to everyone else.
    let gone = ada1.id.clone();
    drop(ada1);
    let removed = member_removed_text(ch, json!(7));
    observer.expect_text(&removed);
    sentinel0.expect_text(&removed);
    sentinel1.expect_text(&member_added_text(ch, &s0));
    sentinel1.expect_text(&removed);
    await_log(&server, &format!("Connection Closed {gone}"));
    sentinel1.unsubscribe(ch);
    observer.expect_text(&member_removed_text(ch, json!("s1")));
    sentinel0.expect_text(&member_removed_text(ch, json!("s1")));
}

#[test]
fn members_hear_member_added_before_the_joiner_can_speak_and_the_joiner_never_hears_itself() {
    let server = channels::start("");
    let [mut s0, mut s1] = channels::spread(&server, [2, 2]);
    let ch = "presence-order";
    let (mut o0, mut j0) = (s0.remove(0), s0.remove(0));
    let (mut o1, mut j1) = (s1.remove(0), s1.remove(0));
    o0.join(ch, Some(&member(json!("o0"), "O0")));
    o1.join(ch, Some(&member(json!("o1"), "O1")));
    o0.expect_text(&member_added_text(ch, &member(json!("o1"), "O1")));

    for (n, joiner) in [(0, &mut j0), (1, &mut j1)] {
        let data = member(json!(format!("j{n}")), "J");
        // The joiner's first message is its own subscription_succeeded, and nothing
        // about itself follows.
        let snapshot = joiner.join(ch, Some(&data));
        assert!(
            snapshot.contains(&format!("\"count\":{}", 3 + n)),
            "{snapshot}"
        );
        joiner.barrier();
        // The joiner speaks right after its acknowledgement: every member on either
        // shard hears member_added first (it was sent before the acknowledgement).
        joiner.whisper(ch, "client-hi", json!({"n": n}));
        let hi = format!(
            r#"{{"event":"client-hi","channel":"{ch}","data":{{"n":{n}}},"user_id":"j{n}"}}"#
        );
        for o in [&mut o0, &mut o1] {
            o.expect_text(&member_added_text(ch, &data));
            o.expect_text(&hi);
        }
        joiner.barrier();
    }
    // j0 heard j1 join, and j1's hello, and nothing of its own.
    j0.expect_text(&member_added_text(ch, &member(json!("j1"), "J")));
    j0.expect_text(&format!(
        r#"{{"event":"client-hi","channel":"{ch}","data":{{"n":1}},"user_id":"j1"}}"#
    ));
    j0.barrier();
}

#[test]
fn subscriptions_without_user_id_are_not_members() {
    let server = channels::start("");
    let [mut s0, mut s1] = channels::spread(&server, [2, 2]);
    let (mut observer, mut anon_info) = (s0.remove(0), s0.remove(0));
    let (mut anon_plain, mut anon_null) = (s1.remove(0), s1.remove(0));
    let ch = "presence-anon";
    let o = member(json!("o"), "O");
    observer.join(ch, Some(&o));
    let only_o = r#"{"presence":{"count":1,"ids":["o"],"hash":{"o":{"name":"O"}}}}"#;
    // channel_data without user_id, no channel_data at all, and a null user_id.
    assert_eq!(
        anon_info.join(ch, Some(r#"{"user_info":{"name":"x"}}"#)),
        only_o
    );
    assert_eq!(anon_plain.join(ch, None), only_o);
    assert_eq!(anon_null.join(ch, Some(r#"{"user_id":null}"#)), only_o);
    // They still receive member events and relayed client events.
    let m = member(json!("m"), "M");
    observer.whisper(ch, "client-x", json!({}));
    let x = r#"{"event":"client-x","channel":"presence-anon","data":{},"user_id":"o"}"#;
    for p in [&mut anon_info, &mut anon_plain, &mut anon_null] {
        p.expect_text(x);
    }
    // No member events came from them: the observer's next event is a real join.
    let mut joiner = channels::on_shard(&server, 1);
    joiner.join(ch, Some(&m));
    observer.expect_text(&member_added_text(ch, &m));
    for p in [&mut anon_info, &mut anon_plain, &mut anon_null] {
        p.expect_text(&member_added_text(ch, &m));
    }
    // Their leaving is not a member leaving either.
    anon_info.unsubscribe(ch);
    anon_info.barrier();
    drop(anon_plain);
    anon_null.unsubscribe(ch);
    anon_null.barrier();
    joiner.unsubscribe(ch);
    observer.expect_text(&member_removed_text(ch, json!("m")));
    // And their client events carry no user_id.
    let mut anon = channels::on_shard(&server, 1);
    anon.join(ch, Some(r#"{"user_info":{}}"#));
    anon.whisper(ch, "client-anon", json!({"a": 1}));
    observer.expect_text(r#"{"event":"client-anon","channel":"presence-anon","data":{"a":1}}"#);
}

#[test]
fn resubscribing_under_another_user_id_replaces_the_member() {
    let server = channels::start("");
    let (mut observer, mut switcher) = channels::pair(&server);
    let ch = "presence-switch";
    observer.join(ch, Some(&member(json!("o"), "O")));
    let first = member(json!(1), "First");
    switcher.join(ch, Some(&first));
    observer.expect_text(&member_added_text(ch, &first));
    let second = member(json!(2), "Second");
    assert_eq!(
        switcher.join(ch, Some(&second)),
        r#"{"presence":{"count":2,"ids":["o",2],"hash":{"o":{"name":"O"},"2":{"name":"Second"}}}}"#
    );
    observer.expect_text(&member_removed_text(ch, json!(1)));
    observer.expect_text(&member_added_text(ch, &second));
    switcher.barrier();
    // Now a non-member: the user leaves.
    switcher.join(ch, Some(r#"{"user_info":{}}"#));
    observer.expect_text(&member_removed_text(ch, json!(2)));
}

#[test]
fn unsubscribe_and_disconnect_remove_members_on_both_shards() {
    let server = channels::start("");
    let [mut s0, mut s1] = channels::spread(&server, [2, 2]);
    let (mut o0, mut leaver0) = (s0.remove(0), s0.remove(0));
    let (mut o1, mut leaver1) = (s1.remove(0), s1.remove(0));
    let ch = "presence-leave";
    o0.join(ch, Some(&member(json!("o0"), "O0")));
    o1.join(ch, Some(&member(json!("o1"), "O1")));
    o0.expect_text(&member_added_text(ch, &member(json!("o1"), "O1")));
    let l0 = member(json!(10), "L0");
    let l1 = member(json!(11), "L1");
    leaver0.join(ch, Some(&l0));
    leaver1.join(ch, Some(&l1));
    for o in [&mut o0, &mut o1] {
        o.expect_text(&member_added_text(ch, &l0));
    }
    leaver0.expect_text(&member_added_text(ch, &l1));
    for o in [&mut o0, &mut o1] {
        o.expect_text(&member_added_text(ch, &l1));
    }
    // Unsubscribe on shard 0, disconnect (close handshake) on shard 1.
    leaver0.unsubscribe(ch);
    for o in [&mut o0, &mut o1] {
        o.expect_text(&member_removed_text(ch, json!(10)));
    }
    leaver0.barrier();
    leaver1.client.close_with(1000, "bye");
    for o in [&mut o0, &mut o1] {
        o.expect_text(&member_removed_text(ch, json!(11)));
    }
    // The leaver on shard 0 heard nothing of its own leave.
    leaver0.barrier();
}
