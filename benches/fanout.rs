//! Fan-out, measured on the server's own code path (design invariant 3: a broadcast is
//! encoded once and each subscriber's outbox gets a reference to the shared frame).
//!
//! Every variant runs on real shards (`shards::Builder`, pinned glommio executors) with
//! a real `ShardState` holding 10,000 real `Connection`s registered in its `Registry`
//! as subscribers of one channel, exactly as `pusher:subscribe` leaves them. No sockets:
//! what is measured ends where a connection's writer would take the frame.
//!
//! - `fanout/local_deliver`: `channels::publish::deliver_local` of one event to the
//!   10,000 local subscribers (each gets `Frame::Shared` in its outbox). The outboxes
//!   are emptied after each event outside the timed section.
//! - `fanout/local_deliver_and_drain`: the same plus popping every frame again
//!   (`Outbox::consume`, what each writer does once the socket took the bytes), timed.
//! - `fanout/cross_shard`: `channels::publish::publish` on shard 0, which has no
//!   subscribers: the event is encoded once (`Delivery::new`) and one
//!   `ShardMsg::Deliver` crosses the mesh to shard 1, whose handler does what the
//!   server's mesh handler does (`deliver_local`) and then drains the outboxes. Events
//!   are published back to back (the mesh's back-pressure paces shard 0), timed from
//!   the first publish to the moment shard 1 finished the last one.
//! - `fanout/publish_1_shard` and `fanout/publish_2_shards`: every shard holds 10,000
//!   subscribers of the channel; shard 0 publishes (`channels::publish::publish`:
//!   encode, deliver locally, one `Deliver` per other shard) and drains its outboxes,
//!   each other shard delivers and drains in its mesh handler; timed from the first
//!   publish until the last shard finished the last event. Deliveries per second with
//!   2 shards ÷ with 1 shard is how far a second core adds to the server's own fan-out
//!   path (no sockets; design invariant 2: nothing shared behind a lock).
//!
//! Throughput is reported per delivery (one event to one subscriber): criterion's
//! time per iteration divided by 10,000 is the time per delivery.
//!
//! A counting global allocator (around mimalloc, the server binary's allocator)
//! counts allocations inside the timed sections; the counts per delivery are printed
//! after the criterion output. The outboxes are pre-warmed with one untimed event
//! first, since a `VecDeque`'s first push allocates its buffer.
//!
//! Run with `cargo bench --bench fanout` (short settings are built in; criterion's
//! command-line options override them).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use reverb_shard::app::Apps;
use reverb_shard::channels::publish::{deliver_local, publish, Delivery};
use reverb_shard::config::AppConfig;
use reverb_shard::connection::{Connection, Subscription};
use reverb_shard::server::settings::Settings;
use reverb_shard::server::shard::ShardState;
use reverb_shard::server::ShardMsg;

const SUBSCRIBERS: usize = 10_000;
const CHANNEL: &str = "prices";
/// A typical HTTP-API event, as subscribers receive it.
const EVENT: &str = r#"{"event":"price.updated","data":"{\"eur\":12}","channel":"prices"}"#;

/// Counts every allocation (all threads) and hands the work to mimalloc.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to mimalloc; the counter has no effect
// on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        mimalloc::MiMalloc.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        mimalloc::MiMalloc.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        mimalloc::MiMalloc.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        mimalloc::MiMalloc.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Allocations counted in one variant's timed sections, over all of criterion's runs.
struct Tally {
    name: &'static str,
    allocations: AtomicU64,
    events: AtomicU64,
}

impl Tally {
    const fn new(name: &'static str) -> Tally {
        Tally {
            name,
            allocations: AtomicU64::new(0),
            events: AtomicU64::new(0),
        }
    }

    fn add(&self, allocations: u64, events: u64) {
        self.allocations.fetch_add(allocations, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
    }

    fn report(&self) {
        let allocations = self.allocations.load(Ordering::Relaxed);
        let events = self.events.load(Ordering::Relaxed);
        let deliveries = events * SUBSCRIBERS as u64;
        println!(
            "fanout/{}: {allocations} allocation(s) in {events} event(s) × {SUBSCRIBERS} subscribers \
             = {:.3} per event, {:.6} per delivery",
            self.name,
            allocations as f64 / events.max(1) as f64,
            allocations as f64 / deliveries.max(1) as f64,
        );
    }
}

static LOCAL_DELIVER: Tally = Tally::new("local_deliver");
static LOCAL_DRAIN: Tally = Tally::new("local_deliver_and_drain");
static CROSS_SHARD: Tally = Tally::new("cross_shard");

/// A shard's state as the server builds it, with one app.
fn shard_state(shard: &shards::Shard<ShardMsg>) -> Rc<ShardState> {
    let apps = Arc::new(Apps::new(&[AppConfig::new(
        "bench",
        "bench-key",
        "bench-secret",
    )]));
    let settings = Arc::new(Settings {
        path: String::new(),
        max_request_size: 10_000,
        outbound_buffer: 1 << 20,
        shutdown_timeout: Duration::from_secs(1),
        pusher_limits: true,
        scaling: None,
    });
    Rc::new(ShardState::new(
        apps,
        settings,
        shard.mesh().clone(),
        shard.stop_signal(),
    ))
}

/// `n` connections of app 0 on this shard, subscribed to `CHANNEL` the way
/// `pusher:subscribe` leaves them (connection table, subscription set, registry).
fn subscribe_many(state: &ShardState, n: usize) -> Vec<Rc<Connection>> {
    let app = state.apps.by_index(0).clone();
    let channel: Arc<str> = Arc::from(CHANNEL);
    (0..n)
        .map(|_| {
            let conn = Rc::new(Connection::new(
                state.mint_socket_id(),
                app.clone(),
                state.settings.outbound_buffer,
            ));
            state
                .connections
                .borrow_mut()
                .insert(conn.socket_id, conn.clone());
            conn.subscriptions.borrow_mut().insert(
                channel.clone(),
                Subscription {
                    user_id: None,
                    presence_key: None,
                },
            );
            assert!(state.registry.borrow_mut().add(0, &channel, &conn));
            conn
        })
        .collect()
}

/// Take every queued frame off the outboxes, as the writers would once the socket took
/// their bytes; how many there were.
fn drain(conns: &[Rc<Connection>]) -> usize {
    let mut frames = 0;
    for conn in conns {
        let bytes = conn.outbox.queued_bytes();
        conn.outbox.consume(bytes, |frame| {
            black_box(frame);
            frames += 1;
        });
    }
    frames
}

/// `iters` events delivered to the local subscribers of a 1-shard runtime; the time
/// `deliver_local` took (with the drain too when `timed_drain`).
fn local(iters: u64, timed_drain: bool) -> Duration {
    let runtime = shards::Builder::new()
        .shards(1)
        .build::<ShardMsg>()
        .expect("1 shard");
    let out = runtime
        .run(move |shard| async move {
            let state = shard_state(&shard);
            let conns = subscribe_many(&state, SUBSCRIBERS);
            let delivery = Delivery::new(0, Arc::from(CHANNEL), EVENT, None);
            // Pre-warm: each outbox's queue gets its buffer.
            deliver_local(&state, &delivery);
            assert_eq!(drain(&conns), SUBSCRIBERS);

            let mut took = Duration::ZERO;
            let mut allocated = 0;
            for _ in 0..iters {
                let before = allocations();
                let start = Instant::now();
                deliver_local(&state, black_box(&delivery));
                let drained = if timed_drain {
                    let n = drain(&conns);
                    took += start.elapsed();
                    allocated += allocations() - before;
                    n
                } else {
                    took += start.elapsed();
                    allocated += allocations() - before;
                    drain(&conns)
                };
                assert_eq!(drained, SUBSCRIBERS);
            }
            let tally = if timed_drain {
                &LOCAL_DRAIN
            } else {
                &LOCAL_DELIVER
            };
            tally.add(allocated, iters);
            took
        })
        .expect("bench shard");
    out[0]
}

/// What each shard of a publish run reports: a moment and the allocation count then.
#[derive(Default)]
struct Marks {
    /// Shard 0: when the first timed publish started.
    start: Option<(Instant, u64)>,
    /// A shard with subscribers: when it finished delivering the last event.
    end: Option<(Instant, u64)>,
}

/// `iters` events published on shard 0 of a `shards`-shard runtime whose other shards
/// (and shard 0 too when `publisher_subscribes`) hold `SUBSCRIBERS` subscribers each:
/// the time from the first publish until the last shard delivered (and drained) the
/// last event, and the allocations counted meanwhile (all threads).
fn publish_run(iters: u64, shards: usize, publisher_subscribes: bool) -> (Duration, u64) {
    let runtime = shards::Builder::new()
        .shards(shards)
        .build::<ShardMsg>()
        .expect("one allowed CPU per shard");
    let out = runtime
        .run(move |shard| async move {
            let state = shard_state(&shard);
            if shard.id() != 0 {
                let conns = subscribe_many(&state, SUBSCRIBERS);
                let end = Rc::new(Cell::new(None));
                let delivered = Cell::new(0u64);
                let (handler_state, handler_end) = (state.clone(), end.clone());
                shard.mesh().serve(move |incoming| match incoming.msg {
                    ShardMsg::Deliver(delivery) => {
                        // What the server's mesh handler does with a Deliver...
                        deliver_local(&handler_state, &delivery);
                        // ...and what the writers then take out.
                        assert_eq!(drain(&conns), SUBSCRIBERS);
                        let n = delivered.get() + 1;
                        delivered.set(n);
                        // The first event is the untimed warm-up.
                        if n == iters + 1 {
                            handler_end.set(Some((Instant::now(), allocations())));
                        }
                        // As the server's handler: acknowledge a Deliver that was asked
                        // (cache channels; not this benchmark's channel).
                        if let Some(reply) = incoming.reply {
                            reply.send(ShardMsg::Count(0));
                        }
                    }
                    ShardMsg::CountConnections => {
                        if let Some(reply) = incoming.reply {
                            let count = handler_state.connections.borrow().len() as u64;
                            reply.send(ShardMsg::Count(count));
                        }
                    }
                    _ => {}
                });
                shard.stopped().await;
                return Marks {
                    start: None,
                    end: end.get(),
                };
            }
            shard.mesh().serve(|_| {});
            let conns = if publisher_subscribes {
                subscribe_many(&state, SUBSCRIBERS)
            } else {
                Vec::new()
            };
            let mesh = state.mesh.clone();
            let others = 1..state.count;
            // Every other shard answers once it serves, i.e. once its subscribers are in
            // place.
            for to in others.clone() {
                let ready = mesh.ask(to, ShardMsg::CountConnections).await;
                assert!(matches!(ready, Ok(ShardMsg::Count(n)) if n == SUBSCRIBERS as u64));
            }
            // One untimed event warms every outbox; the asks behind it in the same queues
            // return once it was delivered.
            publish(&state, Delivery::new(0, Arc::from(CHANNEL), EVENT, None)).await;
            assert_eq!(drain(&conns), conns.len());
            for to in others.clone() {
                mesh.ask(to, ShardMsg::CountConnections).await.unwrap();
            }

            let start = (Instant::now(), allocations());
            for _ in 0..iters {
                // Per event, as the server does: channel name, frame, local delivery,
                // one Deliver per other shard.
                let delivery = Delivery::new(0, Arc::from(CHANNEL), EVENT, None);
                publish(&state, delivery).await;
                assert_eq!(drain(&conns), conns.len());
            }
            let mine = (Instant::now(), allocations());
            // Behind the last Deliver: returns once each shard handled it.
            for to in others {
                mesh.ask(to, ShardMsg::CountConnections).await.unwrap();
            }
            shard.stop_handle().stop();
            Marks {
                start: Some(start),
                end: publisher_subscribes.then_some(mine),
            }
        })
        .expect("bench shards");
    let (start, start_allocs) = out[0].start.expect("shard 0 started");
    assert!(
        out[1..].iter().all(|marks| marks.end.is_some()),
        "every other shard delivered every event"
    );
    let (end, end_allocs) = out
        .iter()
        .filter_map(|marks| marks.end)
        .max_by_key(|(at, _)| *at)
        .expect("a shard with subscribers");
    (end - start, end_allocs - start_allocs)
}

/// `iters` events published on shard 0 to 10,000 subscribers on shard 1 (none on
/// shard 0): the time from the first publish until shard 1 delivered the last.
fn cross_shard(iters: u64) -> Duration {
    let (took, allocated) = publish_run(iters, 2, false);
    CROSS_SHARD.add(allocated, iters);
    took
}

/// Allocations of `Delivery::new` alone (channel name, frame, shared bytes, the
/// `Delivery`), to tell the encoding's share of the cross-shard count from the mesh's.
fn encode_allocations() -> f64 {
    const EVENTS: u64 = 1000;
    let before = allocations();
    for _ in 0..EVENTS {
        black_box(Arc::new(Delivery::new(
            0,
            Arc::from(CHANNEL),
            black_box(EVENT),
            None,
        )));
    }
    (allocations() - before) as f64 / EVENTS as f64
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    group.bench_function("local_deliver", |b| b.iter_custom(|n| local(n, false)));
    group.bench_function("local_deliver_and_drain", |b| {
        b.iter_custom(|n| local(n, true))
    });
    if shards::allowed_cpus().map_or(0, |cpus| cpus.len()) >= 2 {
        group.bench_function("cross_shard", |b| b.iter_custom(cross_shard));
    } else {
        println!("fanout/cross_shard: skipped (needs 2 allowed CPUs)");
    }
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    group.bench_function("publish_1_shard", |b| {
        b.iter_custom(|n| publish_run(n, 1, true).0)
    });
    if shards::allowed_cpus().map_or(0, |cpus| cpus.len()) >= 2 {
        group.throughput(Throughput::Elements(2 * SUBSCRIBERS as u64));
        group.bench_function("publish_2_shards", |b| {
            b.iter_custom(|n| publish_run(n, 2, true).0)
        });
    } else {
        println!("fanout/publish_2_shards: skipped (needs 2 allowed CPUs)");
    }
    group.finish();
    c.final_summary();
    for tally in [&LOCAL_DELIVER, &LOCAL_DRAIN, &CROSS_SHARD] {
        if tally.events.load(Ordering::Relaxed) > 0 {
            tally.report();
        }
    }
    println!(
        "fanout: encoding one event (Delivery::new + Arc, as publish does) = {:.3} allocation(s)",
        encode_allocations()
    );
}
