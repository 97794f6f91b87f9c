//! Orderly shutdown: a `Send` handle any thread can fire, and the per-shard future
//! that resolves when it fires.
//!
//! Each shard gets one end of a socket pair; firing the handle writes a byte to every
//! other end. Waiting on a socket costs nothing while idle (the executor sleeps in
//! io_uring), unlike polling an atomic flag on a timer.
//!
//! The handle also remembers *why* it fired first ([`StopCause`]): a plain request or
//! the number of the signal that asked for it, so the code on the shards can end
//! differently for, say, SIGTERM and SIGHUP without the runtime knowing what either
//! means to it.
//!
//! Besides the orderly stop there is an internal *abort*: when a shard panics (or
//! cannot start) the runtime aborts the others, which cancels their top-level future,
//! so `run` returns an error instead of waiting on shards that never look at
//! `stopped()`.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io::{self, Write};
use std::os::unix::io::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_lite::AsyncReadExt;

/// The byte written for an orderly stop.
const STOP: u8 = 1;
/// The byte written when a shard panicked or could not start.
const ABORT: u8 = 2;

/// Why a runtime was asked to stop: the first cause wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopCause {
    /// [`StopHandle::stop`] was called.
    Requested,
    /// A signal asked for it: SIGINT/SIGTERM with [`Builder::stop_on_signals`], or
    /// whatever a hook of [`Builder::on_signal`] passed to [`StopHandle::stop_with`].
    ///
    /// [`Builder::stop_on_signals`]: crate::Builder::stop_on_signals
    /// [`Builder::on_signal`]: crate::Builder::on_signal
    Signal(i32),
}

/// `StopInner::cause` before any stop.
const NO_CAUSE: i64 = i64::MIN;
/// `StopInner::cause` for [`StopCause::Requested`] (signal numbers are positive).
const REQUESTED: i64 = -1;

impl StopCause {
    fn encode(self) -> i64 {
        match self {
            StopCause::Requested => REQUESTED,
            StopCause::Signal(n) => i64::from(n),
        }
    }

    fn decode(raw: i64) -> Option<StopCause> {
        match raw {
            NO_CAUSE => None,
            REQUESTED => Some(StopCause::Requested),
            n => Some(StopCause::Signal(n as i32)),
        }
    }
}

/// Fires shutdown on every shard. Cheap to clone, usable from any thread.
#[derive(Clone, Debug)]
pub struct StopHandle {
    inner: Arc<StopInner>,
}

#[derive(Debug)]
struct StopInner {
    fired: AtomicBool,
    aborted: AtomicBool,
    /// The first [`StopCause`], encoded; written before the stop byte goes out, so a
    /// shard that sees the stop also sees why.
    cause: AtomicI64,
    writers: Vec<StdUnixStream>,
}

impl StopHandle {
    pub(crate) fn new(shards: usize) -> io::Result<(StopHandle, Vec<StopListenerSeed>)> {
        let mut writers = Vec::with_capacity(shards);
        let mut seeds = Vec::with_capacity(shards);
        for _ in 0..shards {
            let (w, r) = StdUnixStream::pair()?;
            w.set_nonblocking(true)?;
            writers.push(w);
            seeds.push(StopListenerSeed(r));
        }
        let inner = Arc::new(StopInner {
            fired: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            cause: AtomicI64::new(NO_CAUSE),
            writers,
        });
        Ok((StopHandle { inner }, seeds))
    }

    /// Ask every shard to stop. Idempotent.
    pub fn stop(&self) {
        self.stop_with(StopCause::Requested);
    }

    /// Ask every shard to stop, recording why. Only the first call (of this and
    /// [`stop`](Self::stop)) counts; later ones change nothing.
    pub fn stop_with(&self, cause: StopCause) {
        // Claim the cause first: whoever records it is the one that fires.
        if self
            .inner
            .cause
            .compare_exchange(
                NO_CAUSE,
                cause.encode(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return;
        }
        if self.inner.fired.swap(true, Ordering::AcqRel) {
            // Already fired by an abort: nothing left to wake.
            return;
        }
        self.write_all(STOP);
    }

    /// Why the runtime was asked to stop; `None` before any `stop`/`stop_with` (an
    /// abort after a panic records no cause).
    pub fn cause(&self) -> Option<StopCause> {
        StopCause::decode(self.inner.cause.load(Ordering::Acquire))
    }

    /// Stop every shard *and* cancel its top-level future: the runtime's answer to a
    /// shard that panicked or could not start. Idempotent.
    pub(crate) fn abort(&self) {
        self.inner.fired.store(true, Ordering::Release);
        if self.inner.aborted.swap(true, Ordering::AcqRel) {
            return;
        }
        self.write_all(ABORT);
    }

    fn write_all(&self, byte: u8) {
        for mut w in &self.inner.writers {
            // At most two bytes ever go into a fresh socket buffer, so a non-blocking
            // write cannot find it full; an error means that shard already ended.
            let _ = w.write(&[byte]);
        }
    }

    /// Whether `stop` was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.fired.load(Ordering::Acquire)
    }
}

/// The shard-side end: `wait().await` resolves once the handle fired.
pub(crate) struct StopListener {
    stopped: Cell<bool>,
    aborted: Cell<bool>,
    waiters: RefCell<Waiters>,
    abort_waiter: RefCell<Option<Waker>>,
}

/// Wakers of the `wait` futures now pending, each in its own slot, so a future that is
/// polled many times keeps one slot and one that is dropped frees it (a server that
/// selects on `stopped()` per accepted connection must not grow this list).
#[derive(Default)]
struct Waiters {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

/// The reading end travelling to its shard's thread.
pub(crate) struct StopListenerSeed(StdUnixStream);

impl StopListenerSeed {
    /// Called on the shard's thread: starts the one task that watches the socket.
    pub(crate) fn listen(self) -> Rc<StopListener> {
        let listener = Rc::new(StopListener {
            stopped: Cell::new(false),
            aborted: Cell::new(false),
            waiters: RefCell::new(Waiters::default()),
            abort_waiter: RefCell::new(None),
        });
        let watcher = listener.clone();
        // SAFETY: the fd is owned by `self.0` and handed over exactly once.
        let mut stream = unsafe { glommio::net::UnixStream::from_raw_fd(self.0.into_raw_fd()) };
        glommio::spawn_local(async move {
            let mut byte = [0u8; 1];
            loop {
                match stream.read(&mut byte).await {
                    Ok(1) if byte[0] == STOP => watcher.fire_stop(),
                    Ok(1) if byte[0] == ABORT => {
                        watcher.fire_stop();
                        watcher.fire_abort();
                        break;
                    }
                    // Every handle is gone (cannot happen while the shard runs: its
                    // thread holds one) or the socket failed: treat it as a stop.
                    _ => {
                        watcher.fire_stop();
                        break;
                    }
                }
            }
        })
        .detach();
        listener
    }
}

impl StopListener {
    /// Resolves once the runtime is asked to stop.
    pub(crate) fn wait(&self) -> StopWait<'_> {
        StopWait {
            listener: self,
            slot: None,
        }
    }

    pub(crate) fn fired(&self) -> bool {
        self.stopped.get()
    }

    /// Resolves once the runtime aborts (a shard panicked or could not start).
    pub(crate) async fn aborted(&self) {
        poll_fn(|cx| {
            if self.aborted.get() {
                return Poll::Ready(());
            }
            let mut waiter = self.abort_waiter.borrow_mut();
            if !waiter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waiter = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    fn fire_stop(&self) {
        if self.stopped.replace(true) {
            return;
        }
        let wakers: Vec<Waker> = self
            .waiters
            .borrow_mut()
            .slots
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for waker in wakers {
            waker.wake();
        }
    }

    fn fire_abort(&self) {
        self.aborted.set(true);
        let waker = self.abort_waiter.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The future of [`StopListener::wait`]; it frees its waker slot when dropped.
pub(crate) struct StopWait<'a> {
    listener: &'a StopListener,
    slot: Option<usize>,
}

impl Future for StopWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let listener = self.listener;
        if listener.stopped.get() {
            return Poll::Ready(());
        }
        let mut waiters = listener.waiters.borrow_mut();
        match self.slot {
            Some(slot) => match &mut waiters.slots[slot] {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                entry => *entry = Some(cx.waker().clone()),
            },
            None => {
                let slot = match waiters.free.pop() {
                    Some(slot) => {
                        waiters.slots[slot] = Some(cx.waker().clone());
                        slot
                    }
                    None => {
                        waiters.slots.push(Some(cx.waker().clone()));
                        waiters.slots.len() - 1
                    }
                };
                drop(waiters);
                self.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Drop for StopWait<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let mut waiters = self.listener.waiters.borrow_mut();
            waiters.slots[slot] = None;
            waiters.free.push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_wait_frees_its_slot() {
        let listener = StopListener {
            stopped: Cell::new(false),
            aborted: Cell::new(false),
            waiters: RefCell::new(Waiters::default()),
            abort_waiter: RefCell::new(None),
        };
        let waker = futures_lite::future::block_on(poll_fn(|cx| Poll::Ready(cx.waker().clone())));
        let mut cx = Context::from_waker(&waker);
        for _ in 0..1000 {
            let mut wait = std::pin::pin!(listener.wait());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(listener.waiters.borrow().slots.len(), 1);
        let mut wait = std::pin::pin!(listener.wait());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        listener.fire_stop();
        assert!(wait.as_mut().poll(&mut cx).is_ready());
        assert!(listener.fired());
    }
}
