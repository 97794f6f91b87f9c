//! The cross-shard mesh, measured: what design.md asks for to choose the queue.
//!
//! - `round_trip/*`: one request from the executor on CPU 0 to the one on CPU 1 and
//!   its answer back, one at a time (so both sides sleep between messages and every
//!   message is a wake-up): `shards_mesh` is `Mesh::ask`; the other two are a
//!   ping-pong over the bare queues below.
//! - `one_way_100k/*`: 100,000 `u64` messages from the executor on CPU 0 to the one on
//!   CPU 1, timed from the first send to the receipt of the last, through
//!   - `shards_mesh`: `Mesh::send_to` and a `serve` handler (what the server uses);
//!   - `glommio_shared_channel`: the bare glommio channel under the mesh, to show
//!     what the mesh's envelope and dispatch cost on top;
//!   - `crossbeam_eventfd`: a minimal alternative, a crossbeam `ArrayQueue` with an
//!     eventfd wake-up each way (written only when the other side sleeps) read by a
//!     glommio task through io_uring.
//!
//! Every variant carries `u64`s, uses queues of 1024 messages and two executors pinned to the first
//! two allowed CPUs. Run with `cargo bench -p shards --bench mesh`.

use std::cell::Cell;
use std::os::unix::io::{FromRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use glommio::channels::shared_channel;
use glommio::io::BufferedFile;
use glommio::{LocalExecutorBuilder, Placement};
use shards::{allowed_cpus, Builder};

const MESSAGES: u64 = 100_000;
const CAPACITY: usize = 1024;
/// What the shards runtime registers per executor; the glommio default (10 MiB) would
/// not fit two executors under a common 8 MiB RLIMIT_MEMLOCK.
const IO_MEMORY: usize = 256 << 10;

fn runtime() -> shards::Runtime<u64> {
    Builder::new()
        .shards(2)
        .queue_capacity(CAPACITY)
        .build::<u64>()
        .expect("2 shards")
}

/// `iters` asks from shard 0 to shard 1, one after the other; the time they took.
fn mesh_asks(iters: u64) -> Duration {
    let out = runtime()
        .run(move |shard| async move {
            shard.mesh().serve(|incoming| {
                if let Some(reply) = incoming.reply {
                    reply.send(incoming.msg + 1);
                }
            });
            if shard.id() != 0 {
                shard.stopped().await;
                return Duration::ZERO;
            }
            // One untimed ask: shard 1 is up and serving.
            shard.mesh().ask(1, 0).await.unwrap();
            let start = Instant::now();
            for n in 0..iters {
                let answer = shard.mesh().ask(1, n).await.unwrap();
                debug_assert_eq!(answer, n + 1);
            }
            let took = start.elapsed();
            shard.stop_handle().stop();
            took
        })
        .unwrap();
    out[0]
}

/// `total` messages shard 0 → shard 1 through the mesh: (first send, last receipt).
fn mesh_one_way(total: u64) -> Duration {
    let out = runtime()
        .run(move |shard| async move {
            if shard.id() == 1 {
                let received = Rc::new(Cell::new(0u64));
                let done = Rc::new(Cell::new(None));
                let (seen, end) = (received.clone(), done.clone());
                let stop = shard.stop_handle();
                shard.mesh().serve(move |incoming| {
                    let n = seen.get() + 1;
                    seen.set(n);
                    debug_assert_eq!(incoming.msg, n - 1);
                    if n == total {
                        end.set(Some(Instant::now()));
                        stop.stop();
                    }
                });
                shard.stopped().await;
                return done.get().expect("every message arrived");
            }
            shard.mesh().serve(|_| {});
            let start = Instant::now();
            for n in 0..total {
                shard.mesh().send_to(1, n).await.unwrap();
            }
            shard.stopped().await;
            start
        })
        .unwrap();
    out[1] - out[0]
}

/// Two pinned executors, `a` on the first allowed CPU and `b` on the second; what
/// each returned.
fn pair<A, AF, AT, B, BF, BT>(a: A, b: B) -> (AT, BT)
where
    A: FnOnce() -> AF + Send + 'static,
    AF: std::future::Future<Output = AT> + 'static,
    AT: Send + 'static,
    B: FnOnce() -> BF + Send + 'static,
    BF: std::future::Future<Output = BT> + 'static,
    BT: Send + 'static,
{
    let cpus = allowed_cpus().unwrap();
    let a = LocalExecutorBuilder::new(Placement::Fixed(cpus[0]))
        .io_memory(IO_MEMORY)
        .spawn(a)
        .unwrap();
    let b = LocalExecutorBuilder::new(Placement::Fixed(cpus[1]))
        .io_memory(IO_MEMORY)
        .spawn(b)
        .unwrap();
    (a.join().unwrap(), b.join().unwrap())
}

/// For one-way runs: the producer returns when it started, the consumer when it
/// received the last message.
fn elapsed((start, end): (Instant, Instant)) -> Duration {
    end - start
}

/// `total` messages through one bare glommio shared channel.
fn glommio_one_way(total: u64) -> Duration {
    let (tx, rx) = shared_channel::new_bounded::<u64>(CAPACITY);
    elapsed(pair(
        move || async move {
            let tx = tx.connect().await;
            let start = Instant::now();
            for n in 0..total {
                tx.send(n).await.unwrap();
            }
            start
        },
        move || async move {
            let rx = rx.connect().await;
            let mut expected = 0;
            while expected < total {
                let n = rx.recv().await.expect("sender alive");
                debug_assert_eq!(n, expected);
                expected += 1;
            }
            Instant::now()
        },
    ))
}

/// `iters` ping-pongs over two bare glommio shared channels.
fn glommio_round_trips(iters: u64) -> Duration {
    let (ping_tx, ping_rx) = shared_channel::new_bounded::<u64>(CAPACITY);
    let (pong_tx, pong_rx) = shared_channel::new_bounded::<u64>(CAPACITY);
    pair(
        move || async move {
            let (tx, rx) = (ping_tx.connect().await, pong_rx.connect().await);
            tx.send(0).await.unwrap();
            rx.recv().await.unwrap();
            let start = Instant::now();
            for n in 0..iters {
                tx.send(n).await.unwrap();
                let answer = rx.recv().await.unwrap();
                debug_assert_eq!(answer, n + 1);
            }
            start.elapsed()
        },
        move || async move {
            let (rx, tx) = (ping_rx.connect().await, pong_tx.connect().await);
            while let Some(n) = rx.recv().await {
                if tx.send(n + 1).await.is_err() {
                    break;
                }
            }
        },
    )
    .0
}

/// The minimal alternative: a crossbeam `ArrayQueue` plus two eventfds, "data" (the
/// consumer sleeps on it) and "room" (the producer sleeps on it when the queue is full).
/// A side writes the other's eventfd only when that side said it was going to sleep,
/// so a busy link costs one atomic load per message, as glommio's channel does.
struct Link {
    queue: ArrayQueue<u64>,
    consumer_sleeping: AtomicBool,
    producer_sleeping: AtomicBool,
    data: EventFd,
    room: EventFd,
}

struct EventFd(RawFd);

impl EventFd {
    fn new() -> EventFd {
        // Blocking on purpose: io_uring then waits for it by polling, where a
        // non-blocking one would complete the read with EAGAIN.
        // SAFETY: plain syscall.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
        EventFd(fd)
    }

    fn signal(&self) {
        let one = 1u64;
        // SAFETY: writes 8 bytes from a live u64.
        let n = unsafe { libc::write(self.0, (&one as *const u64).cast(), 8) };
        assert_eq!(n, 8);
    }

    /// A glommio handle on this eventfd, for reads through io_uring.
    fn reader(&self) -> BufferedFile {
        // SAFETY: `dup` gives a new fd that the BufferedFile owns and closes.
        unsafe { BufferedFile::from_raw_fd(libc::dup(self.0)) }
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: this struct owns the fd.
        unsafe { libc::close(self.0) };
    }
}

/// Sleep until `flag`'s owner is signalled through `reader`, unless `ready` already
/// holds (checked after announcing the sleep, so no wake-up is lost).
async fn sleep_on(flag: &AtomicBool, reader: &BufferedFile, ready: impl Fn() -> bool) {
    flag.store(true, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    if !ready() {
        reader.read_at(0, 8).await.expect("eventfd read");
    }
    flag.store(false, Ordering::SeqCst);
}

fn wake(flag: &AtomicBool, fd: &EventFd) {
    fence(Ordering::SeqCst);
    if flag.load(Ordering::SeqCst) && flag.swap(false, Ordering::SeqCst) {
        fd.signal();
    }
}

impl Link {
    fn new() -> Arc<Link> {
        Arc::new(Link {
            queue: ArrayQueue::new(CAPACITY),
            consumer_sleeping: AtomicBool::new(false),
            producer_sleeping: AtomicBool::new(false),
            data: EventFd::new(),
            room: EventFd::new(),
        })
    }

    /// Producer side; `room` is `self.room.reader()`.
    async fn send(&self, room: &BufferedFile, mut item: u64) {
        loop {
            match self.queue.push(item) {
                Ok(()) => break,
                Err(back) => {
                    item = back;
                    sleep_on(&self.producer_sleeping, room, || !self.queue.is_full()).await;
                }
            }
        }
        wake(&self.consumer_sleeping, &self.data);
    }

    /// Consumer side; `data` is `self.data.reader()`.
    async fn recv(&self, data: &BufferedFile) -> u64 {
        loop {
            if let Some(item) = self.queue.pop() {
                wake(&self.producer_sleeping, &self.room);
                return item;
            }
            sleep_on(&self.consumer_sleeping, data, || !self.queue.is_empty()).await;
        }
    }
}

fn crossbeam_one_way(total: u64) -> Duration {
    let link = Link::new();
    let (pl, cl) = (link.clone(), link);
    elapsed(pair(
        move || async move {
            let room = pl.room.reader();
            let start = Instant::now();
            for n in 0..total {
                pl.send(&room, n).await;
            }
            start
        },
        move || async move {
            let data = cl.data.reader();
            for expected in 0..total {
                let n = cl.recv(&data).await;
                debug_assert_eq!(n, expected);
            }
            Instant::now()
        },
    ))
}

/// `iters` ping-pongs over two crossbeam + eventfd links.
fn crossbeam_round_trips(iters: u64) -> Duration {
    let (ping, pong) = (Link::new(), Link::new());
    let (ping_a, pong_a) = (ping.clone(), pong.clone());
    pair(
        move || async move {
            let (room, data) = (ping_a.room.reader(), pong_a.data.reader());
            let start = Instant::now();
            for n in 0..iters {
                ping_a.send(&room, n).await;
                let answer = pong_a.recv(&data).await;
                debug_assert_eq!(answer, n + 1);
            }
            start.elapsed()
        },
        move || async move {
            let (data, room) = (ping.data.reader(), pong.room.reader());
            for _ in 0..iters {
                let n = ping.recv(&data).await;
                pong.send(&room, n + 1).await;
            }
        },
    )
    .0
}

/// `iters` repetitions of `one(MESSAGES)`, their times added up (each repetition starts
/// fresh executors, which is not timed).
fn repeat(iters: u64, one: fn(u64) -> Duration) -> Duration {
    (0..iters).map(|_| one(MESSAGES)).sum()
}

fn bench(c: &mut Criterion) {
    if allowed_cpus().map(|cpus| cpus.len()).unwrap_or(0) < 2 {
        eprintln!("the mesh benchmarks need 2 CPUs; skipped");
        return;
    }
    let mut round_trip = c.benchmark_group("round_trip");
    round_trip.throughput(Throughput::Elements(1));
    round_trip.bench_function("shards_mesh", |b| b.iter_custom(mesh_asks));
    round_trip.bench_function("glommio_shared_channel", |b| {
        b.iter_custom(glommio_round_trips)
    });
    round_trip.bench_function("crossbeam_eventfd", |b| {
        b.iter_custom(crossbeam_round_trips)
    });
    round_trip.finish();

    let mut one_way = c.benchmark_group("one_way_100k");
    one_way.throughput(Throughput::Elements(MESSAGES));
    one_way.bench_function("shards_mesh", |b| {
        b.iter_custom(|iters| repeat(iters, mesh_one_way))
    });
    one_way.bench_function("glommio_shared_channel", |b| {
        b.iter_custom(|iters| repeat(iters, glommio_one_way))
    });
    one_way.bench_function("crossbeam_eventfd", |b| {
        b.iter_custom(|iters| repeat(iters, crossbeam_one_way))
    });
    one_way.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
