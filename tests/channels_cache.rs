//! Cache channels on a 2-shard server (websocket.md §12): the cache miss, the last event replayed on either shard, the cache outliving its subscribers, client events as cached events, and member events never cached.

mod support;

use serde_json::json;
use support::channels::{self, member, member_added_text, member_removed_text};

#[test]
fn an_empty_cache_answers_cache_miss_on_every_cache_kind() {
    let server = channels::start("");
    let (a, b) = channels::pair(&server);
    for mut p in [a, b] {
        for channel in ["cache-ticker", "private-cache-ticker", "cacheX"] {
            p.join_plain(channel);
            p.expect_text(&format!(
                r#"{{"event":"pusher:cache_miss","channel":"{channel}"}}"#
            ));
        }
        let ch = format!("presence-cache-room.{}", p.shard);
        p.join(&ch, Some(&member(json!(1), "One")));
        p.expect_text(&format!(
            r#"{{"event":"pusher:cache_miss","channel":"{ch}"}}"#
        ));
        p.barrier();
    }
}

#[test]
fn the_last_event_is_replayed_to_new_subscribers_on_either_shard() {
    let server = channels::start("");
    let [mut s0, mut s1] = channels::spread(&server, [2, 2]);
    let (mut publisher, mut late0) = (s0.remove(0), s0.remove(0));
    let (mut early1, mut late1) = (s1.remove(0), s1.remove(0));
    for ch in ["cache-ticker", "private-cache-ticker"] {
        publisher.join_cache_miss(ch);
        early1.join_cache_miss(ch);
        publisher.whisper(ch, "client-price", json!({"eur": 12}));
        publisher.whisper(ch, "client-price", json!({"eur": 13}));
        let first = format!(r#"{{"event":"client-price","channel":"{ch}","data":{{"eur":12}}}}"#);
        let last = format!(r#"{{"event":"client-price","channel":"{ch}","data":{{"eur":13}}}}"#);
        early1.expect_text(&first);
        // Shard 1 has stored the last event once its subscriber got it.
        early1.expect_text(&last);
        publisher.barrier();
        // New subscribers on both shards get exactly the last event after the answer.
        for late in [&mut late0, &mut late1] {
            late.join_plain(ch);
            late.expect_text(&last);
            late.barrier();
        }
    }
}

#[test]
fn the_cache_outlives_its_subscribers_with_client_events_from_all() {
    let server = channels::start(r#"accept_client_events_from = "all""#);
    let [mut s0, mut s1] = channels::spread(&server, [3, 3]);
    let ch = "cache-all";
    let (mut sub0, mut sender, mut fresh0) = (s0.remove(0), s0.remove(0), s0.remove(0));
    let (mut sub1, mut fresh1, mut fresh1b) = (s1.remove(0), s1.remove(0), s1.remove(0));
    sub0.join_cache_miss(ch);
    sub1.join_cache_miss(ch);
    // `all`: the sender need not be subscribed; the event is relayed as received
    // and is what the cache keeps.
    let text = r#"{"event":"client-x","channel":"cache-all","data":{"v":1},"extra":"kept"}"#;
    sender.send_text(text);
    sub0.expect_text(text);
    sub1.expect_text(text);
    // Everyone leaves: the sender disconnects, the subscribers unsubscribe or go.
    drop(sender);
    sub0.unsubscribe(ch);
    sub0.barrier();
    sub1.unsubscribe(ch);
    sub1.barrier();
    drop(sub1);
    // New subscribers on both shards still get it.
    for fresh in [&mut fresh0, &mut fresh1] {
        fresh.join_plain(ch);
        fresh.expect_text(text);
        fresh.barrier();
    }
    fresh0.unsubscribe(ch);
    fresh1.unsubscribe(ch);
    fresh0.barrier();
    fresh1.barrier();
    fresh1b.join_plain(ch);
    fresh1b.expect_text(text);
}

#[test]
fn the_cache_outlives_its_subscribers_with_client_events_from_members() {
    let server = channels::start("");
    let (mut a, mut b) = channels::pair(&server);
    let ch = "private-cache-members";
    a.join_cache_miss(ch);
    b.join_cache_miss(ch);
    b.whisper(ch, "client-last", json!({"n": 1}));
    let text = r#"{"event":"client-last","channel":"private-cache-members","data":{"n":1}}"#;
    a.expect_text(text);
    a.unsubscribe(ch);
    b.unsubscribe(ch);
    a.barrier();
    b.barrier();
    for p in [&mut a, &mut b] {
        p.join_plain(ch);
        p.expect_text(text);
        p.barrier();
    }
}

#[test]
fn member_events_are_never_cached() {
    let server = channels::start("");
    let [mut s0, mut s1] = channels::spread(&server, [3, 3]);
    let (mut a0, mut c0, mut d0) = (s0.remove(0), s0.remove(0), s0.remove(0));
    let (mut a1, mut b1, mut c1) = (s1.remove(0), s1.remove(0), s1.remove(0));

    // Only member events: later subscribers still get a cache miss.
    let ch = "presence-cache-members";
    let ma0 = member(json!("a0"), "A0");
    let ma1 = member(json!("a1"), "A1");
    a0.join(ch, Some(&ma0));
    a0.expect_text(&channels::cache_miss_text(ch));
    a1.join(ch, Some(&ma1));
    a1.expect_text(&channels::cache_miss_text(ch));
    a0.expect_text(&member_added_text(ch, &ma1));
    let mb = member(json!("b"), "B");
    b1.join(ch, Some(&mb));
    b1.expect_text(&channels::cache_miss_text(ch));
    b1.unsubscribe(ch);
    // Each shard has handled both member events once its member got them.
    for a in [&mut a0, &mut a1] {
        a.expect_text(&member_added_text(ch, &mb));
        a.expect_text(&member_removed_text(ch, json!("b")));
    }
    for c in [&mut c0, &mut c1] {
        // Not a member, so no member events for the others to read.
        c.join(ch, None);
        c.expect_text(&channels::cache_miss_text(ch));
        c.barrier();
    }

    // A real event, then member events: the real event stays the cached one.
    let ch = "presence-cache-mixed";
    a0.join(ch, Some(&ma0));
    a0.expect_text(&channels::cache_miss_text(ch));
    a1.join(ch, Some(&ma1));
    a1.expect_text(&channels::cache_miss_text(ch));
    a0.expect_text(&member_added_text(ch, &ma1));
    a0.whisper(ch, "client-real", json!({"r": true}));
    let real = r#"{"event":"client-real","channel":"presence-cache-mixed","data":{"r":true},"user_id":"a0"}"#;
    a1.expect_text(real);
    b1.join(ch, Some(&mb));
    b1.expect_text(real);
    b1.unsubscribe(ch);
    a0.expect_text(&member_added_text(ch, &mb));
    a0.expect_text(&member_removed_text(ch, json!("b")));
    a1.expect_text(&member_added_text(ch, &mb));
    a1.expect_text(&member_removed_text(ch, json!("b")));
    let md = member(json!("d"), "D");
    d0.join(ch, Some(&md));
    d0.expect_text(real);
    d0.barrier();
    a0.expect_text(&member_added_text(ch, &md));
    a1.expect_text(&member_added_text(ch, &md));
    c1.join(ch, None);
    c1.expect_text(real);
    c1.barrier();
}

#[test]
fn encrypted_cache_channels_do_not_cache() {
    let server = channels::start("");
    let (mut a, mut b) = channels::pair(&server);
    let ch = "private-encrypted-cache-x";
    a.join_plain(ch);
    a.barrier();
    b.join_plain(ch);
    b.barrier();
    a.whisper(
        ch,
        "client-secret",
        json!({"ciphertext": "abc", "nonce": "n"}),
    );
    b.expect_text(r#"{"event":"client-secret","channel":"private-encrypted-cache-x","data":{"ciphertext":"abc","nonce":"n"}}"#);
    // A new subscription: no replay, no cache miss.
    b.unsubscribe(ch);
    b.join_plain(ch);
    b.barrier();
    a.unsubscribe(ch);
    a.join_plain(ch);
    a.barrier();
}
