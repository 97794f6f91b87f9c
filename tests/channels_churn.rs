//! Churn on a 2-shard server: 500 connect / presence subscribe / disconnect cycles from several threads, ended every way a client can end, leave no ghost members and no broken channel behind.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::json;
use support::channels::{self, member};
use support::{channel_auth, Client, Received, TestServer};

const THREADS: usize = 4;
const CYCLES_PER_THREAD: usize = 125;
const CHANNELS: usize = 4;
/// Bound on the whole churn and on waiting for the server to log every close.
const BOUND: Duration = Duration::from_secs(60);

fn channel(k: usize) -> String {
    format!("presence-churn-{k}")
}

/// Read until the subscription is acknowledged (member events of others may not come
/// first: a connection is only registered once acknowledged).
fn expect_succeeded(client: &mut Client, channel: &str) {
    let msg = client.recv_json();
    assert_eq!(
        msg["event"], "pusher_internal:subscription_succeeded",
        "{msg}"
    );
    assert_eq!(msg["channel"], channel, "{msg}");
}

/// Read (and skip member events) until the server's Close or the end of the stream.
fn until_closed(client: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match client.recv_within(Duration::from_secs(5)) {
            Received::Json(_) | Received::Ping(_) | Received::Pong(_) => {}
            Received::Close(_) | Received::Gone => return,
            Received::Timeout => break,
        }
    }
    panic!("the server did not close the connection");
}

/// One thread's cycles; the socket ids it used.
fn churn(url: &str, thread: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(CYCLES_PER_THREAD);
    for i in 0..CYCLES_PER_THREAD {
        let mut client = Client::connect(url, &[]);
        let id = client.established();
        let ch = channel(i % CHANNELS);
        // Users are shared between threads and cycles, so many sockets hold one user.
        let data = json!({"user_id": format!("u{}", (thread * 7 + i) % 23), "user_info": {"i": i}})
            .to_string();
        client.send_json(&json!({"event": "pusher:subscribe", "data": {
            "channel": ch,
            "auth": channel_auth(&id, &ch, Some(&data)),
            "channel_data": data,
        }}));
        match (i / CHANNELS) % 4 {
            // Acknowledged, then the TCP connection just goes.
            0 => expect_succeeded(&mut client, &ch),
            // Unsubscribe, then a close handshake.
            1 => {
                expect_succeeded(&mut client, &ch);
                client.send_json(&json!({"event": "pusher:unsubscribe", "data": {"channel": ch}}));
                client.close_with(1000, "");
                until_closed(&mut client);
            }
            // Gone before the acknowledgement could arrive.
            2 => {}
            // A close handshake while subscribed.
            _ => {
                expect_succeeded(&mut client, &ch);
                client.close_with(1001, "going away");
                until_closed(&mut client);
            }
        }
        drop(client);
        ids.push(id);
    }
    ids
}

/// Wait until the server has logged the end of every connection in `ids` (it leaves
/// all channels just before that line).
fn await_all_closed(server: &TestServer, ids: &[String]) {
    let deadline = Instant::now() + BOUND;
    let mut open: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut seen = 0;
    while !open.is_empty() {
        let logs = server.logs();
        for line in &logs[seen.min(logs.len())..] {
            if let Some(rest) = line.split("Connection Closed ").nth(1) {
                open.remove(rest.trim());
            }
        }
        seen = logs.len();
        if open.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} connection(s) never logged their close, e.g. {:?}",
            open.len(),
            open.iter().next()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn churn_leaves_no_ghost_members_and_channels_keep_working() {
    let mut server = TestServer::builder()
        .config(&channels::config("", ""))
        .cores(channels::SHARDS)
        .arg("--debug")
        .start();
    let url = server.ws_url(support::APP_KEY);
    let started = Instant::now();
    let ids: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let url = url.clone();
                scope.spawn(move || churn(&url, t))
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("churn thread"))
            .collect()
    });
    assert_eq!(ids.len(), THREADS * CYCLES_PER_THREAD);
    assert!(
        started.elapsed() < BOUND,
        "churn took {:?}",
        started.elapsed()
    );
    // Both shards took part.
    for shard in 0..channels::SHARDS as u64 {
        assert!(ids.iter().any(|id| support::shard_of(id) == shard));
    }
    await_all_closed(&server, &ids);
    assert!(server.is_running(), "the server died during churn");

    // One non-member join from each shard flushes what each shard told the presence
    // owners before (queues between two shards are in order): after the second
    // acknowledgement every leave of the churn has been recorded.
    let (mut flush0, mut flush1) = channels::pair(&server);
    let empty = r#"{"presence":{"count":0,"ids":[],"hash":{}}}"#;
    flush0.join(&channel(0), None);
    assert_eq!(flush1.join(&channel(0), None), empty);

    // A fresh member of every churned channel, on either shard, is alone.
    for k in 0..CHANNELS {
        let mut fresh = channels::on_shard(&server, k % channels::SHARDS);
        let data = member(json!("fresh"), "Fresh");
        assert_eq!(
            fresh.join(&channel(k), Some(&data)),
            r#"{"presence":{"count":1,"ids":["fresh"],"hash":{"fresh":{"name":"Fresh"}}}}"#,
            "channel {k}"
        );
        if k == 0 {
            // The flushing non-members of channel 0 hear it; nobody else is there.
            flush0.expect_text(&channels::member_added_text(&channel(0), &data));
            flush1.expect_text(&channels::member_added_text(&channel(0), &data));
        }
        fresh.barrier();
    }

    // A fresh public subscribe / publish pair still works across shards.
    let (mut p, mut q) = channels::pair(&server);
    p.join_plain("after-churn");
    q.join_plain("after-churn");
    p.whisper("after-churn", "client-alive", json!({"ok": true}));
    q.expect_text(r#"{"event":"client-alive","channel":"after-churn","data":{"ok":true}}"#);
    q.whisper("after-churn", "client-alive", json!({"ok": true}));
    p.expect_text(r#"{"event":"client-alive","channel":"after-churn","data":{"ok":true}}"#);
    assert!(server.is_running());
}
