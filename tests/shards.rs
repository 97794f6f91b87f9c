//! Shards: `--cores` choices, many concurrent connections spread over shards with unique
//! socket ids, and the graceful stop (Close 4200 to everyone, exit 0).

mod support;

use std::collections::HashSet;
use std::time::Duration;

use support::{allowed_cpus, shard_of, Client, Received, TestServer, APP_KEY};

fn needs_two_cpus() -> bool {
    if allowed_cpus() < 2 {
        eprintln!("skipped: needs 2 CPUs in the affinity mask");
        return false;
    }
    true
}

#[test]
fn one_and_two_shards_both_serve() {
    let mut counts = vec![1];
    if allowed_cpus() >= 2 {
        counts.push(2);
    }
    for cores in counts {
        let server = TestServer::builder().cores(cores).start();
        assert!(
            server.wait_for_log(&format!("{cores} shard(s)"), Duration::from_secs(5)),
            "{:?}",
            server.logs()
        );
        let mut shards = HashSet::new();
        for _ in 0..10 {
            let (mut client, id) = server.connect_established();
            client.assert_alive();
            shards.insert(shard_of(&id));
        }
        assert!(
            shards.iter().all(|&s| s < cores as u64),
            "shard index out of range: {shards:?}"
        );
    }
}

#[test]
fn more_cores_than_cpus_is_a_configuration_error() {
    let cpus = allowed_cpus();
    let (code, out) = TestServer::builder().cores(cpus + 1).run_to_exit();
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--cores"), "{out}");
    assert!(out.contains(&(cpus + 1).to_string()), "{out}");
}

#[test]
fn two_thousand_concurrent_connections_spread_over_the_shards() {
    if !needs_two_cpus() {
        return;
    }
    const THREADS: usize = 8;
    const PER_THREAD: usize = 250;
    let server = TestServer::builder().cores(2).start();
    let url = server.ws_url(APP_KEY);
    // Each thread opens its share and keeps it open until every thread is done, so all
    // 2,000 are open at once.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(THREADS + 1));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let url = url.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut clients = Vec::with_capacity(PER_THREAD);
                let mut ids = Vec::with_capacity(PER_THREAD);
                for _ in 0..PER_THREAD {
                    let mut client = Client::connect(&url, &[]);
                    ids.push(client.established());
                    clients.push(client);
                }
                barrier.wait();
                // All open now: each still answers.
                for client in clients.iter_mut().step_by(25) {
                    client.assert_alive();
                }
                barrier.wait();
                ids
            })
        })
        .collect();
    barrier.wait();
    barrier.wait();
    let ids: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker"))
        .collect();
    assert_eq!(ids.len(), THREADS * PER_THREAD);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate socket ids");
    let shards: HashSet<u64> = ids.iter().map(|id| shard_of(id)).collect();
    assert_eq!(shards, HashSet::from([0, 1]), "shards used: {shards:?}");
}

#[test]
fn sigterm_closes_every_client_with_4200_and_exits_0() {
    let cores = allowed_cpus().min(2);
    let mut server = TestServer::builder().cores(cores).start();
    let mut clients: Vec<Client> = (0..20).map(|_| server.connect_established().0).collect();
    server.signal(libc::SIGTERM);
    for (i, client) in clients.iter_mut().enumerate() {
        match client.recv_within(Duration::from_secs(10)) {
            Received::Close(Some((code, reason))) => {
                assert_eq!(
                    (code, reason.as_str()),
                    (4200, "Server shutting down"),
                    "client {i}"
                )
            }
            other => panic!("client {i}: expected Close 4200, got {other:?}"),
        }
        client.expect_gone();
    }
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "{:?}", server.logs());
    assert!(
        server
            .logs()
            .iter()
            .any(|l| l.contains("Gracefully terminating")),
        "{:?}",
        server.logs()
    );
}

#[test]
fn sigint_with_no_clients_exits_0() {
    let mut server = TestServer::builder().start();
    server.signal(libc::SIGINT);
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("the server exits after SIGINT");
    assert_eq!(status.code(), Some(0));
}
