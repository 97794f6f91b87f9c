//! Admission after the 101: the per-app `max_connections` quota, counted across shards,
//! and which refusals do (not) use up the quota.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use support::{allowed_cpus, app_config, shard_of, Client, TestServer, APP_KEY};

/// The first message decides: `Ok(socket id)` or `Err(error code)` (after which the
/// Close frame with the same code and the end of the socket are checked).
fn try_admit(client: &mut Client) -> Result<String, u64> {
    let msg = client.recv_json();
    if msg["event"] == "pusher:connection_established" {
        return Ok(support::established_data(&msg).0);
    }
    assert_eq!(msg["event"], "pusher:error", "{msg}");
    let data: serde_json::Value = serde_json::from_str(msg["data"].as_str().unwrap()).unwrap();
    let code = data["code"].as_u64().unwrap();
    let reason = data["message"].as_str().unwrap().to_string();
    assert_eq!(client.expect_close(), (code as u16, reason));
    client.expect_gone();
    Err(code)
}

/// The quota refusal, in full: error 4004 with its exact message, Close 4004, socket ends.
fn expect_over_quota(client: &mut Client) {
    assert_eq!(
        client.expect_error(4004),
        "Application is over connection quota"
    );
    assert_eq!(
        client.expect_close(),
        (4004, "Application is over connection quota".to_string())
    );
    client.expect_gone();
}

#[test]
fn the_connection_over_max_connections_gets_4004_and_a_close() {
    let server = TestServer::builder()
        .config(&app_config("max_connections = 3"))
        .start();
    let held: Vec<_> = (0..3).map(|_| server.connect_established()).collect();
    let mut extra = server.connect(APP_KEY);
    expect_over_quota(&mut extra);
    // The admitted ones are unaffected.
    for (mut client, _) in held {
        client.assert_alive();
    }
}

#[test]
fn a_closed_connection_frees_its_place() {
    let server = TestServer::builder()
        .config(&app_config("max_connections = 2"))
        .start();
    let (mut first, _) = server.connect_established();
    let (mut second, _) = server.connect_established();
    expect_over_quota(&mut server.connect(APP_KEY));

    first.close_with(1000, "");
    assert_eq!(first.expect_close().0, 1000);
    drop(first);
    // The server forgets the connection once the close handshake is done; poll for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut replacement = loop {
        let mut client = server.connect(APP_KEY);
        match try_admit(&mut client) {
            Ok(_) => break client,
            Err(4004) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(code) => panic!("a freed place was not given back (last refusal {code})"),
        }
    };
    replacement.assert_alive();
    second.assert_alive();
    // Full again.
    expect_over_quota(&mut server.connect(APP_KEY));
}

#[test]
fn the_quota_counts_connections_on_every_shard() {
    if allowed_cpus() < 2 {
        eprintln!("skipped: needs 2 CPUs for --cores 2");
        return;
    }
    const MAX: usize = 12;
    let server = TestServer::builder()
        .config(&app_config(&format!("max_connections = {MAX}")))
        .cores(2)
        .start();
    let held: Vec<_> = (0..MAX).map(|_| server.connect_established()).collect();
    let shards: HashSet<u64> = held.iter().map(|(_, id)| shard_of(id)).collect();
    // The kernel spreads connections over both shards (2^-11 odds against with 12).
    assert_eq!(
        shards.len(),
        2,
        "all {MAX} connections landed on one shard: {shards:?}"
    );
    // Each shard holds fewer than MAX, so only a process-wide count refuses these.
    for _ in 0..6 {
        expect_over_quota(&mut server.connect(APP_KEY));
    }
    for (mut client, _) in held {
        client.assert_alive();
    }
}

#[test]
fn refused_origins_do_not_use_up_the_quota() {
    let server = TestServer::builder()
        .config(&app_config(
            "max_connections = 1\nallowed_origins = [\"good.example\"]",
        ))
        .start();
    for _ in 0..3 {
        let mut refused = Client::connect(
            &server.ws_url(APP_KEY),
            &[("Origin", "https://evil.example")],
        );
        assert_eq!(try_admit(&mut refused), Err(4009));
    }
    let mut good = Client::connect(
        &server.ws_url(APP_KEY),
        &[("Origin", "https://good.example")],
    );
    assert!(try_admit(&mut good).is_ok());
    good.assert_alive();
}

#[test]
fn unknown_keys_do_not_use_up_any_apps_quota() {
    let server = TestServer::builder()
        .config(&app_config("max_connections = 1"))
        .start();
    for _ in 0..3 {
        let mut unknown = server.connect("no-such-key");
        assert_eq!(try_admit(&mut unknown), Err(4001));
    }
    let (mut client, _) = server.connect_established();
    client.assert_alive();
}
