//! Orderly shutdown: a `Send` handle any thread can fire, and the per-shard future
//! that resolves when it fires.
//!
//! Each shard gets one end of a socket pair; firing the handle writes a byte to every
//! other end. Waiting on a socket costs nothing while idle (the executor sleeps in
//! io_uring), unlike polling an atomic flag on a timer.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::io::{self, Write};
use std::os::unix::io::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_lite::AsyncReadExt;

/// Fires shutdown on every shard. Cheap to clone, usable from any thread.
#[derive(Clone, Debug)]
pub struct StopHandle {
    inner: Arc<StopInner>,
}

#[derive(Debug)]
struct StopInner {
    fired: AtomicBool,
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
        let inner = Arc::new(StopInner { fired: AtomicBool::new(false), writers });
        Ok((StopHandle { inner }, seeds))
    }

    /// Ask every shard to stop. Idempotent.
    pub fn stop(&self) {
        if self.inner.fired.swap(true, Ordering::AcqRel) {
            return;
        }
        for mut w in &self.inner.writers {
            // A closed pair means that shard already stopped.
            let _ = w.write(&[1]);
        }
    }

    /// Whether `stop` was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.fired.load(Ordering::Acquire)
    }
}

/// The shard-side end: `wait().await` resolves once the handle fired.
pub(crate) struct StopListener {
    done: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

/// The reading end travelling to its shard's thread.
pub(crate) struct StopListenerSeed(StdUnixStream);

impl StopListenerSeed {
    /// Called on the shard's thread: starts the one task that watches the socket.
    pub(crate) fn listen(self) -> Rc<StopListener> {
        let listener = Rc::new(StopListener { done: Cell::new(false), waiters: RefCell::new(Vec::new()) });
        let watcher = listener.clone();
        // SAFETY: the fd is owned by `self.0` and handed over exactly once.
        let mut stream = unsafe { glommio::net::UnixStream::from_raw_fd(self.0.into_raw_fd()) };
        glommio::spawn_local(async move {
            let mut byte = [0u8; 1];
            let _ = stream.read(&mut byte).await;
            watcher.done.set(true);
            for waker in watcher.waiters.borrow_mut().drain(..) {
                waker.wake();
            }
        })
        .detach();
        listener
    }
}

impl StopListener {
    pub(crate) async fn wait(&self) {
        poll_fn(|cx| {
            if self.done.get() {
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    pub(crate) fn fired(&self) -> bool {
        self.done.get()
    }
}
