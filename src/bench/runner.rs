//! Running a scenario on the `shards` runtime: one pinned client executor per
//! `--cores`, each owning its share of the connections; what they share ([`Run`]:
//! flags, endpoints, live counters, phase barriers, the stop flag); what each one sees
//! ([`Env`]); and Ctrl-C, which stops every executor so the report of what was
//! measured still prints (a second Ctrl-C exits at once).

use std::future::Future;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use shards::{Shard, StopHandle};

use super::args::Common;
use super::client::{self, Scratch};
use super::clock;
use super::live::{Live, Slot};
use super::progress::Progress;

/// Phase barriers a scenario may use, in order.
pub const BARRIERS: usize = 8;

/// What every executor of a run shares.
pub struct Run {
    pub common: Common,
    /// One per `--url`, in order.
    pub endpoints: Vec<client::Endpoint>,
    pub live: Arc<Live>,
    arrived: [AtomicUsize; BARRIERS],
    passed_ns: [AtomicU64; BARRIERS],
    interrupted: Arc<AtomicBool>,
}

impl Run {
    pub fn new(common: Common, endpoints: Vec<client::Endpoint>, live: Live) -> Run {
        Run {
            common,
            endpoints,
            live: Arc::new(live),
            arrived: Default::default(),
            passed_ns: Default::default(),
            interrupted: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether Ctrl-C (or SIGTERM) ended the run early.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Acquire)
    }

    /// When barrier `n` was passed (`clock::now_ns`), 0 if never.
    pub fn passed_at(&self, n: usize) -> u64 {
        self.passed_ns[n].load(Ordering::Acquire)
    }

    /// Start one executor per `--cores`, run `body` on each, and return their results
    /// in executor order. Draws the progress line meanwhile.
    pub fn launch<T, F, Fut>(self: &Arc<Run>, body: F) -> Result<Vec<T>, String>
    where
        F: Fn(Rc<Env>) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let runtime = shards::Builder::new()
            .shards(self.common.cores)
            .name("bench")
            .build::<()>()
            .map_err(|e| e.to_string())?;
        watch_signals(runtime.stop_handle(), self.interrupted.clone());
        let progress = Progress::start(self.live.clone(), self.common.duration);
        let run = self.clone();
        let results = runtime.run(move |shard| {
            let env = Rc::new(Env {
                id: shard.id(),
                count: shard.count(),
                run: run.clone(),
                scratch: Scratch::new(vec![0; client::SCRATCH_BYTES]),
                shard,
            });
            body(env)
        });
        progress.finish();
        results.map_err(|e| e.to_string())
    }
}

/// What one client executor sees.
pub struct Env {
    pub id: usize,
    pub count: usize,
    pub run: Arc<Run>,
    /// The read buffer every connection of this executor reads into.
    pub scratch: Scratch,
    shard: Shard<()>,
}

impl Env {
    pub fn common(&self) -> &Common {
        &self.run.common
    }

    pub fn slot(&self) -> &Slot {
        self.run.live.slot(self.id)
    }

    /// The endpoint for connection number `i` (round-robin over `--url`).
    pub fn endpoint(&self, i: usize) -> &client::Endpoint {
        &self.run.endpoints[i % self.run.endpoints.len()]
    }

    /// The source address for connection number `i` (with `--source-ips`).
    pub fn source(&self, i: usize) -> Option<Ipv4Addr> {
        self.run
            .common
            .source_ips
            .map(|n| super::dial::source_ip(i, n))
    }

    /// The items `0..total` this executor owns: `id, id + count, ...`.
    pub fn mine(&self, total: usize) -> impl Iterator<Item = usize> {
        (self.id..total).step_by(self.count)
    }

    /// Whether a stop (Ctrl-C) was requested.
    pub fn stopping(&self) -> bool {
        self.shard.is_stopping()
    }

    /// Run `fut` unless a stop comes first (`None` then).
    pub async fn unless_stopped<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        if self.stopping() {
            return None;
        }
        futures_lite::future::or(async { Some(fut.await) }, async {
            self.shard.stopped().await;
            None
        })
        .await
    }

    /// Sleep until `when`; false when a stop came first.
    pub async fn sleep_until(&self, when: Instant) -> bool {
        let left = when.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return !self.stopping();
        }
        self.unless_stopped(glommio::timer::sleep(left))
            .await
            .is_some()
    }

    /// Wait until every executor reached barrier `n` (or a stop); returns when it
    /// was passed (`clock::now_ns`).
    pub async fn barrier(&self, n: usize) -> u64 {
        let arrived = &self.run.arrived[n];
        arrived.fetch_add(1, Ordering::AcqRel);
        while arrived.load(Ordering::Acquire) < self.count && !self.stopping() {
            let _ = self
                .unless_stopped(glommio::timer::sleep(Duration::from_millis(1)))
                .await;
        }
        let now = clock::now_ns();
        let _ = self.run.passed_ns[n].compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
        self.run.passed_at(n)
    }

    /// Poll `done` every few milliseconds until it holds, `deadline` passes or a stop
    /// comes; returns whether it held.
    pub async fn wait_for(&self, deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
        loop {
            if done() {
                return true;
            }
            if Instant::now() >= deadline || self.stopping() {
                return false;
            }
            let pause = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(5));
            let _ = self.unless_stopped(glommio::timer::sleep(pause)).await;
        }
    }
}

/// The first SIGINT/SIGTERM stops every executor (the report still prints); a second
/// one exits at once. Installed once per process.
fn watch_signals(stop: StopHandle, interrupted: Arc<AtomicBool>) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if INSTALLED.set(()).is_err() {
        return;
    }
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("bench-signals".into())
        .spawn(move || {
            let mut seen = 0;
            for _ in signals.forever() {
                seen += 1;
                if seen == 1 {
                    interrupted.store(true, Ordering::Release);
                    eprintln!("\ninterrupted: stopping and reporting what was measured (Ctrl-C again to quit at once)");
                    stop.stop();
                } else {
                    std::process::exit(130);
                }
            }
        });
}
