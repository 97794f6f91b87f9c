//! Subscribe and unsubscribe: the channel registry (`channels::registry::Registry`,
//! one per shard: app → channel → subscribers) and the `pusher:subscribe` /
//! `pusher:unsubscribe` handlers on top of it.
//!
//! Registry alone (plain data structure, no runtime):
//! - `registry/add_remove_busy_channel`: one connection added to and removed from a
//!   channel that already has 10,000 subscribers (the steady state of a popular
//!   channel: the channel's map exists and stays).
//! - `registry/add_remove_new_channel`: one connection added to and removed from a
//!   channel nobody else is on, in a registry holding 1,000 other channels of the same
//!   app (the channel's entry and subscriber map are created and dropped each time).
//! - `registry/fill_and_empty_10k`: 10,000 connections added to one empty channel,
//!   then all removed (in subscription order) — throughput per subscription.
//!
//! Protocol handlers, on a real shard (`shards::Builder`, one pinned glommio executor,
//! a real `ShardState`), the connection not socket-backed:
//! - `subscribe/public_round_trip`: `channels::subscribe::subscribe` with the decoded
//!   data of `{"channel":"prices"}` (10,000 other local subscribers there), which queues
//!   `pusher_internal:subscription_succeeded`, then `unsubscribe`; the queued frame is
//!   taken off again (what the writer does once it is written), all timed.
//! - `subscribe/private_round_trip`: the same on `private-prices` with a valid `auth`,
//!   so the channel-auth signature check is included.
//!
//! Run with `cargo bench --bench registry` (criterion's command-line options apply).

use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reverb_shard::app::{App, Apps};
use reverb_shard::channels::registry::Registry;
use reverb_shard::channels::subscribe::{subscribe, unsubscribe};
use reverb_shard::config::AppConfig;
use reverb_shard::connection::Connection;
use reverb_shard::pusher::auth::sign;
use reverb_shard::pusher::socket_id::SocketId;
use reverb_shard::server::settings::Settings;
use reverb_shard::server::shard::ShardState;
use reverb_shard::server::ShardMsg;
use serde_json::{json, Value};

const SUBSCRIBERS: usize = 10_000;
const OTHER_CHANNELS: usize = 1_000;
const OUTBOUND_BUFFER: usize = 1 << 20;
const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret";

fn app() -> Arc<App> {
    Apps::new(&[AppConfig::new("bench", KEY, SECRET)])
        .by_index(0)
        .clone()
}

/// `n` connections of `app` with distinct socket ids (as the shard mints them).
fn connections(app: &Arc<App>, n: usize) -> Vec<Rc<Connection>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let id = SocketId::random(0);
        if seen.insert(id) {
            out.push(Rc::new(Connection::new(id, app.clone(), OUTBOUND_BUFFER)));
        }
    }
    out
}

fn registry(c: &mut Criterion) {
    let app = app();
    let conns = connections(&app, SUBSCRIBERS + 1);
    let (one, others) = conns.split_last().expect("connections");
    let mut group = c.benchmark_group("registry");

    let busy: Arc<str> = Arc::from("prices");
    let mut reg = Registry::default();
    for conn in others {
        assert!(reg.add(0, &busy, conn));
    }
    group.bench_function("add_remove_busy_channel", |b| {
        b.iter(|| {
            assert!(reg.add(0, black_box(&busy), one));
            assert!(reg.remove(0, black_box(&busy), one.socket_id));
        })
    });
    assert_eq!(reg.subscription_count(), SUBSCRIBERS);

    let mut reg = Registry::default();
    for (i, conn) in others.iter().take(OTHER_CHANNELS).enumerate() {
        let channel: Arc<str> = Arc::from(format!("orders.{i}"));
        assert!(reg.add(0, &channel, conn));
    }
    let lonely: Arc<str> = Arc::from("private-user.42");
    group.bench_function("add_remove_new_channel", |b| {
        b.iter(|| {
            assert!(reg.add(0, black_box(&lonely), one));
            assert!(reg.remove(0, black_box(&lonely), one.socket_id));
        })
    });
    assert_eq!(reg.subscription_count(), OTHER_CHANNELS);

    let mut reg = Registry::default();
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    group.bench_function("fill_and_empty_10k", |b| {
        b.iter(|| {
            for conn in others {
                reg.add(0, &busy, conn);
            }
            for conn in others {
                reg.remove(0, &busy, conn.socket_id);
            }
        })
    });
    assert_eq!(reg.subscription_count(), 0);
    group.finish();
}

/// `iters` subscribe + unsubscribe round trips of one connection on `channel` (which
/// has 10,000 other local subscribers), on a 1-shard runtime; the time they took.
fn protocol_round_trips(iters: u64, channel: &'static str) -> Duration {
    let runtime = shards::Builder::new()
        .shards(1)
        .build::<ShardMsg>()
        .expect("1 shard");
    let out = runtime
        .run(move |shard| async move {
            let apps = Arc::new(Apps::new(&[AppConfig::new("bench", KEY, SECRET)]));
            let settings = Arc::new(Settings {
                path: String::new(),
                max_request_size: 10_000,
                outbound_buffer: OUTBOUND_BUFFER,
                shutdown_timeout: Duration::from_secs(1),
                pusher_limits: true,
                scaling: None,
            });
            let state = Rc::new(ShardState::new(
                apps,
                settings,
                shard.mesh().clone(),
                shard.stop_signal(),
            ));
            let app = state.apps.by_index(0).clone();
            let new_conn = || {
                let conn = Rc::new(Connection::new(
                    state.mint_socket_id(),
                    app.clone(),
                    OUTBOUND_BUFFER,
                ));
                state
                    .connections
                    .borrow_mut()
                    .insert(conn.socket_id, conn.clone());
                conn
            };
            let request = |conn: &Connection| -> Value {
                let mut data = json!({ "channel": channel });
                if channel.starts_with("private-") {
                    let auth = sign(SECRET, &format!("{}:{channel}", conn.socket_id));
                    data["auth"] = Value::String(format!("{KEY}:{auth}"));
                }
                data
            };
            // Take the queued frames off, as the writer would once they are written.
            let drain = |conn: &Connection| {
                let mut frames = 0;
                conn.outbox.consume(conn.outbox.queued_bytes(), |frame| {
                    black_box(frame);
                    frames += 1;
                });
                frames
            };

            for _ in 0..SUBSCRIBERS {
                let conn = new_conn();
                subscribe(&state, &conn, &request(&conn)).await;
                assert_eq!(drain(&conn), 1);
            }
            let conn = new_conn();
            let subscribe_data = request(&conn);
            let unsubscribe_data = json!({ "channel": channel });
            let count = |state: &ShardState| {
                state
                    .registry
                    .borrow()
                    .subscribers(0, channel)
                    .map_or(0, |s| s.len())
            };
            assert_eq!(count(&state), SUBSCRIBERS);

            let start = Instant::now();
            for _ in 0..iters {
                subscribe(&state, &conn, black_box(&subscribe_data)).await;
                unsubscribe(&state, &conn, black_box(&unsubscribe_data));
                // The subscription_succeeded frame, as the writer takes it.
                drain(&conn);
            }
            let took = start.elapsed();
            assert_eq!(count(&state), SUBSCRIBERS);
            assert!(conn.subscriptions.borrow().is_empty());
            took
        })
        .expect("bench shard");
    out[0]
}

fn protocol(c: &mut Criterion) {
    let mut group = c.benchmark_group("subscribe");
    group.bench_function("public_round_trip", |b| {
        b.iter_custom(|n| protocol_round_trips(n, "prices"))
    });
    group.bench_function("private_round_trip", |b| {
        b.iter_custom(|n| protocol_round_trips(n, "private-prices"))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = registry, protocol
}
criterion_main!(benches);
