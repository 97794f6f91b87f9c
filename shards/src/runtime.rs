//! Starting and stopping the shards: one OS thread per shard, pinned to one CPU, each
//! running one glommio `LocalExecutor`, joined by the mesh.

use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use futures_lite::future;
use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use glommio::{LocalExecutorBuilder, Placement};

use crate::cpus::allowed_cpus;
use crate::mesh::{Envelope, Mesh, MeshCore};
use crate::stop::{StopCause, StopHandle, StopListener, StopListenerSeed};

/// glommio registers this much memory per executor for file DMA, which a network
/// server never uses; keep it small so many shards fit under RLIMIT_MEMLOCK.
const IO_MEMORY: usize = 256 << 10;
/// glommio refuses to start below this RLIMIT_MEMLOCK (its own check, in bytes).
const MIN_MEMLOCK: u64 = 512 << 10;

/// How a runtime is shaped. `Builder::new().shards(n).run(f)`.
#[derive(Clone, Debug)]
pub struct Builder {
    shards: Option<usize>,
    pin: bool,
    queue_capacity: usize,
    name: String,
    stop_on_signals: bool,
    signal_hooks: Vec<(i32, SignalHook)>,
}

/// What [`Builder::on_signal`] runs, on the runtime's signal thread.
#[derive(Clone)]
struct SignalHook(Arc<dyn Fn(&StopHandle) + Send + Sync>);

impl fmt::Debug for SignalHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignalHook")
    }
}

/// Why the runtime could not start or did not end cleanly.
#[derive(Debug)]
pub enum Error {
    /// More shards were asked for than CPUs are allowed to this process.
    TooManyShards { asked: usize, allowed: usize },
    /// Zero shards were asked for.
    NoShards,
    /// The kernel refused what glommio needs (io_uring, locked memory, a thread).
    Start(String),
    /// A shard panicked (this is the first one that did); the others were aborted.
    ShardPanicked(usize),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooManyShards { asked, allowed } => write!(
                f,
                "{asked} shards asked for, but this process may only run on {allowed} CPU(s) \
                 (its affinity mask; see `taskset -p $$` or the cgroup cpuset)"
            ),
            Error::NoShards => f.write_str("at least one shard is needed"),
            Error::Start(why) => f.write_str(why),
            Error::ShardPanicked(id) => write!(f, "shard {id} panicked; all shards were aborted"),
        }
    }
}

impl std::error::Error for Error {}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// One shard per allowed CPU, pinned, 1024-message queues, no signal handling.
    pub fn new() -> Builder {
        Builder {
            shards: None,
            pin: true,
            queue_capacity: 1024,
            name: "shard".into(),
            stop_on_signals: false,
            signal_hooks: Vec::new(),
        }
    }

    /// Run `n` shards instead of one per allowed CPU; more than the allowed CPUs is an error.
    pub fn shards(mut self, n: usize) -> Builder {
        self.shards = Some(n);
        self
    }

    /// Pin shard i to the i-th allowed CPU (default true).
    pub fn pin(mut self, pin: bool) -> Builder {
        self.pin = pin;
        self
    }

    /// Capacity of each (from, to) queue, in messages, rounded up to a power of two.
    pub fn queue_capacity(mut self, capacity: usize) -> Builder {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Thread name prefix: shard threads are named `{name}-{id}` (Linux keeps the first
    /// 15 bytes).
    pub fn name(mut self, name: &str) -> Builder {
        self.name = name.into();
        self
    }

    /// Fire the stop handle on SIGINT or SIGTERM, with [`StopCause::Signal`] naming
    /// the signal.
    pub fn stop_on_signals(mut self, yes: bool) -> Builder {
        self.stop_on_signals = yes;
        self
    }

    /// Run `hook` each time `signal` arrives while the runtime exists, on the runtime's
    /// signal thread, with the runtime's stop handle. The hook decides what the signal
    /// means: stop at once (`stop.stop_with(StopCause::Signal(signal))`), or start some
    /// work and stop later, or nothing. A hook for SIGINT or SIGTERM replaces the stop
    /// of [`stop_on_signals`](Self::stop_on_signals) for that signal; a second hook for
    /// the same signal replaces the first.
    ///
    /// The hook should return quickly (start a thread for long work): signals that
    /// arrive meanwhile wait for it. Signals that cannot be caught (SIGKILL, SIGSTOP)
    /// or that signal-hook forbids (SIGSEGV, SIGILL, SIGFPE) make `build` fail.
    pub fn on_signal(
        mut self,
        signal: i32,
        hook: impl Fn(&StopHandle) + Send + Sync + 'static,
    ) -> Builder {
        self.signal_hooks.retain(|(s, _)| *s != signal);
        self.signal_hooks.push((signal, SignalHook(Arc::new(hook))));
        self
    }

    /// Check the limits, then return a runtime ready to `run`.
    pub fn build<M: Send + 'static>(self) -> Result<Runtime<M>, Error> {
        let cpus = allowed_cpus()
            .map_err(|e| Error::Start(format!("cannot read the CPU affinity mask: {e}")))?;
        let count = self.shards.unwrap_or(cpus.len());
        if count == 0 {
            return Err(Error::NoShards);
        }
        if count > cpus.len() {
            return Err(Error::TooManyShards {
                asked: count,
                allowed: cpus.len(),
            });
        }
        check_memlock()?;
        let (stop, seeds) = StopHandle::new(count)
            .map_err(|e| Error::Start(format!("cannot create the stop sockets: {e}")))?;
        let signals = if self.stop_on_signals || !self.signal_hooks.is_empty() {
            Some(SignalThread::start(
                stop.clone(),
                self.stop_on_signals,
                self.signal_hooks.clone(),
            )?)
        } else {
            None
        };
        Ok(Runtime {
            builder: self,
            cpus: cpus[..count].to_vec(),
            stop,
            seeds,
            _signals: signals,
            _m: std::marker::PhantomData,
        })
    }
}

/// A built runtime: `stop_handle()` before `run` to stop it from elsewhere.
pub struct Runtime<M> {
    builder: Builder,
    cpus: Vec<usize>,
    stop: StopHandle,
    seeds: Vec<StopListenerSeed>,
    /// Handles the signals for as long as the runtime exists (until `run` returns).
    _signals: Option<SignalThread>,
    _m: std::marker::PhantomData<fn() -> M>,
}

impl<M: Send + 'static> Runtime<M> {
    /// How many shards `run` will start.
    pub fn shards(&self) -> usize {
        self.cpus.len()
    }

    /// A handle that stops every shard; usable from any thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Start every shard, run `f` on each, and wait for all of them. The results come
    /// back in shard order.
    ///
    /// If a shard panics, the others are aborted (their futures are dropped, whether or
    /// not they watch `stopped()`) and `run` returns [`Error::ShardPanicked`] naming the
    /// first shard that panicked. If a shard cannot start, the others are aborted the
    /// same way and `run` returns [`Error::Start`].
    pub fn run<F, Fut, T>(self, f: F) -> Result<Vec<T>, Error>
    where
        F: Fn(Shard<M>) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let count = self.cpus.len();
        let mut ends: Vec<Ends<M>> = (0..count).map(|_| Ends::new(count)).collect();
        for from in 0..count {
            for to in (0..count).filter(|&to| to != from) {
                let (tx, rx) = shared_channel::new_bounded(self.builder.queue_capacity);
                ends[from].senders[to] = Some(tx);
                ends[to].receivers[from] = Some(rx);
            }
        }
        let first_panic = Arc::new(AtomicUsize::new(NONE));
        let mut handles = Vec::with_capacity(count);
        let mut start_error = None;
        for (id, (seed, ends)) in self.seeds.into_iter().zip(ends).enumerate() {
            let placement = if self.builder.pin {
                Placement::Fixed(self.cpus[id])
            } else {
                Placement::Unbound
            };
            let f = f.clone();
            let stop = self.stop.clone();
            let first_panic = first_panic.clone();
            let spawned = thread::Builder::new()
                .name(format!("{}-{id}", self.builder.name))
                .spawn(move || {
                    let body = AssertUnwindSafe(|| {
                        shard_thread(
                            id,
                            count,
                            placement,
                            ends,
                            seed,
                            stop.clone(),
                            first_panic.clone(),
                            f,
                        )
                    });
                    panic::catch_unwind(body).unwrap_or_else(|_| {
                        // A panic outside the executor (placement, executor teardown).
                        let _ = first_panic.compare_exchange(
                            NONE,
                            id,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                        stop.abort();
                        Outcome::Aborted
                    })
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    // The shards already started are aborted; the channel ends of the
                    // ones never started are dropped here, which lets the others'
                    // connects finish.
                    self.stop.abort();
                    start_error = Some(explain_start_error(&format!(
                        "cannot spawn its thread: {e}"
                    )));
                    break;
                }
            }
        }
        let mut results = Vec::with_capacity(count);
        let mut thread_panic = None;
        for (id, handle) in handles.into_iter().enumerate() {
            match handle.join() {
                Ok(Outcome::Done(out)) => results.push(out),
                Ok(Outcome::Aborted) => {}
                Ok(Outcome::StartFailed(why)) => {
                    start_error.get_or_insert(explain_start_error(&why));
                }
                // Cannot happen: the body catches its panics.
                Err(_) => {
                    thread_panic.get_or_insert(id);
                }
            }
        }
        if let Some(why) = start_error {
            return Err(Error::Start(why));
        }
        match (first_panic.load(Ordering::Acquire), thread_panic) {
            (NONE, None) if results.len() == count => Ok(results),
            (NONE, Some(id)) => Err(Error::ShardPanicked(id)),
            (NONE, None) => Err(Error::Start(
                "a shard was aborted without a cause; this is a bug".into(),
            )),
            (id, _) => Err(Error::ShardPanicked(id)),
        }
    }
}

/// No shard panicked (yet).
const NONE: usize = usize::MAX;

/// One shard's ends of the mesh: `senders[to]` and `receivers[from]`, `None` at its
/// own index.
struct Ends<M: Send> {
    senders: Vec<Option<SharedSender<Envelope<M>>>>,
    receivers: Vec<Option<SharedReceiver<Envelope<M>>>>,
}

impl<M: Send> Ends<M> {
    fn new(count: usize) -> Self {
        Ends {
            senders: (0..count).map(|_| None).collect(),
            receivers: (0..count).map(|_| None).collect(),
        }
    }
}

/// How one shard's thread ended.
enum Outcome<T> {
    Done(T),
    /// Cancelled because another shard panicked or could not start.
    Aborted,
    StartFailed(String),
}

/// The body of one shard's thread: make the executor, run the shard, and turn a panic
/// into an abort of every other shard.
#[allow(clippy::too_many_arguments)]
fn shard_thread<M, F, Fut, T>(
    id: usize,
    count: usize,
    placement: Placement,
    ends: Ends<M>,
    seed: StopListenerSeed,
    stop: StopHandle,
    first_panic: Arc<AtomicUsize>,
    f: F,
) -> Outcome<T>
where
    M: Send + 'static,
    F: Fn(Shard<M>) -> Fut,
    Fut: Future<Output = T> + 'static,
{
    let executor = match LocalExecutorBuilder::new(placement)
        .io_memory(IO_MEMORY)
        .make()
    {
        Ok(executor) => executor,
        Err(e) => {
            drop(ends);
            stop.abort();
            return Outcome::StartFailed(e.to_string());
        }
    };
    let core = Rc::new(MeshCore::new(id, count));
    let ran = panic::catch_unwind(AssertUnwindSafe(|| {
        executor.run(shard_main(core.clone(), ends, seed, stop.clone(), f))
    }));
    let outcome = match ran {
        Ok(Some(out)) => Outcome::Done(out),
        Ok(None) => Outcome::Aborted,
        Err(_) => {
            let _ = first_panic.compare_exchange(NONE, id, Ordering::AcqRel, Ordering::Acquire);
            stop.abort();
            Outcome::Aborted
        }
    };
    // Close this shard's queues while its executor still exists, so the peers are
    // woken and fail their asks to it; then drop the executor and every task on it.
    core.close();
    drop(core);
    drop(executor);
    outcome
}

/// What runs on a shard's executor: join the mesh, then the user's code, racing an
/// abort. `None` when aborted.
async fn shard_main<M, F, Fut, T>(
    core: Rc<MeshCore<M>>,
    ends: Ends<M>,
    seed: StopListenerSeed,
    handle: StopHandle,
    f: F,
) -> Option<T>
where
    M: Send + 'static,
    F: Fn(Shard<M>) -> Fut,
    Fut: Future<Output = T> + 'static,
{
    let listener = seed.listen();
    let abort = listener.clone();
    let body = async {
        connect(&core, ends).await;
        let shard = Shard {
            mesh: Mesh { core: core.clone() },
            stop: listener,
            handle,
        };
        Some(f(shard).await)
    };
    let out = future::or(body, async move {
        abort.aborted().await;
        None
    })
    .await;
    core.close();
    out
}

/// Connect every end at once (a connect waits for its peer's, so one at a time could
/// deadlock), then start one receiving task per peer. An end whose peer never
/// started connects as closed.
async fn connect<M: Send + 'static>(core: &Rc<MeshCore<M>>, ends: Ends<M>) {
    let senders: Vec<_> = ends
        .senders
        .into_iter()
        .map(|s| s.map(|s| glommio::spawn_local(s.connect())))
        .collect();
    let receivers: Vec<_> = ends
        .receivers
        .into_iter()
        .map(|r| r.map(|r| glommio::spawn_local(r.connect())))
        .collect();
    let mut connected = Vec::with_capacity(senders.len());
    for sender in senders {
        connected.push(match sender {
            Some(task) => Some(task.await),
            None => None,
        });
    }
    core.set_senders(connected);
    for (from, receiver) in receivers.into_iter().enumerate() {
        if let Some(task) = receiver {
            core.spawn_receiver(from, task.await);
        }
    }
}

/// What a shard's code sees: its id, the mesh, and the stop signal.
pub struct Shard<M: Send + 'static> {
    mesh: Mesh<M>,
    stop: Rc<StopListener>,
    handle: StopHandle,
}

impl<M: Send + 'static> Shard<M> {
    /// This shard's index, `0..count()`.
    pub fn id(&self) -> usize {
        self.mesh.id()
    }

    /// How many shards run.
    pub fn count(&self) -> usize {
        self.mesh.count()
    }

    /// The handle for talking to other shards.
    pub fn mesh(&self) -> &Mesh<M> {
        &self.mesh
    }

    /// Resolves when the runtime is asked to stop.
    pub async fn stopped(&self) {
        self.stop.wait().await
    }

    /// A stopper handle for this runtime that resolves `stopped` on every shard.
    pub fn stop_handle(&self) -> StopHandle {
        self.handle.clone()
    }

    /// Whether a stop was requested (and already seen by this shard).
    pub fn is_stopping(&self) -> bool {
        self.stop.fired()
    }

    /// Why the runtime was asked to stop (`None` while it runs).
    pub fn stop_cause(&self) -> Option<StopCause> {
        self.handle.cause()
    }

    /// A cheap clone of the stop signal for spawned tasks.
    pub fn stop_signal(&self) -> StopSignal {
        StopSignal(self.stop.clone())
    }
}

/// A clonable, shard-local view of the stop signal.
#[derive(Clone)]
pub struct StopSignal(Rc<StopListener>);

impl StopSignal {
    /// Resolves when the runtime is asked to stop.
    pub async fn wait(&self) {
        self.0.wait().await
    }

    /// Whether the stop was seen by this shard.
    pub fn fired(&self) -> bool {
        self.0.fired()
    }
}

fn check_memlock() -> Result<(), Error> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Ok(());
    }
    if lim.rlim_cur != libc::RLIM_INFINITY && lim.rlim_cur < MIN_MEMLOCK {
        // Try to raise it ourselves before giving up.
        let wanted = libc::rlimit {
            rlim_cur: lim.rlim_max.min(MIN_MEMLOCK.max(lim.rlim_cur)),
            rlim_max: lim.rlim_max,
        };
        let raised = wanted.rlim_cur >= MIN_MEMLOCK
            && unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &wanted) } == 0;
        if !raised {
            return Err(Error::Start(format!(
                "the locked-memory limit (RLIMIT_MEMLOCK) is {} KiB; io_uring needs at least {} KiB. \
                 Raise it with `ulimit -l {}` (shell), `LimitMEMLOCK=` (systemd) or memlock in \
                 /etc/security/limits.conf",
                lim.rlim_cur / 1024,
                MIN_MEMLOCK / 1024,
                MIN_MEMLOCK / 1024
            )));
        }
    }
    Ok(())
}

fn explain_start_error(raw: &str) -> String {
    format!(
        "cannot start a shard executor: {raw}. The server needs io_uring (Linux 5.8 or newer, \
         not disabled by /proc/sys/kernel/io_uring_disabled or a seccomp profile) and at least \
         {} KiB of locked memory per process (`ulimit -l`, systemd `LimitMEMLOCK=`)",
        MIN_MEMLOCK / 1024
    )
}

/// The thread that turns signals into stops or hook calls; it ends when this is
/// dropped (with the runtime).
struct SignalThread(signal_hook::iterator::Handle);

impl SignalThread {
    fn start(
        stop: StopHandle,
        stop_on_signals: bool,
        hooks: Vec<(i32, SignalHook)>,
    ) -> Result<SignalThread, Error> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut wanted: Vec<i32> = hooks.iter().map(|(s, _)| *s).collect();
        if stop_on_signals {
            wanted.extend([SIGINT, SIGTERM]);
        }
        wanted.sort_unstable();
        wanted.dedup();
        let mut signals = signal_hook::iterator::Signals::new(&wanted).map_err(|e| {
            Error::Start(format!(
                "cannot install the handler for signals {wanted:?}: {e}"
            ))
        })?;
        let handle = signals.handle();
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                // Every signal, not only the first: a hook may run many times, and a
                // second SIGTERM during a long drain must not kill the process with
                // the default action.
                for signal in signals.forever() {
                    match hooks.iter().find(|(s, _)| *s == signal) {
                        Some((_, hook)) => (hook.0)(&stop),
                        None => stop.stop_with(StopCause::Signal(signal)),
                    }
                }
            })
            .map_err(|e| Error::Start(format!("cannot start the signal thread: {e}")))?;
        Ok(SignalThread(handle))
    }
}

impl Drop for SignalThread {
    fn drop(&mut self) {
        self.0.close();
    }
}
