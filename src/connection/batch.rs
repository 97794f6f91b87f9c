//! Batched writes: the frames one fan-out queues for many connections leave in one
//! io_uring submission (a `sendmsg` per connection, all inside one system call) instead
//! of one system call per subscriber from each connection's own writer.
//!
//! Why: at a steady event rate every subscriber gets one frame per event, so there is
//! nothing to gather per connection and each delivery was a wake-up of its session task
//! and a `sendmsg` of its own. On machines with today's speculative-execution
//! mitigations a system call's entry and exit cost a good part of a small loopback
//! send; one submission for the whole fan-out pays them once.
//!
//! How: a broadcast delivery that finds a connection's outbox empty queues the frame
//! without waking the session task and registers the connection here; the shard's
//! flusher task, woken once per batch, sends what every registered outbox holds and
//! takes the written frames off. Whatever a send leaves behind (a full socket, an
//! error) goes back to the connection's own writer, which waits for room or meets the
//! error as before. The writes are non-blocking (`MSG_DONTWAIT`), so the submission
//! completes inside the call: no buffer is in the kernel's hands once it returns.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{opcode, types, IoUring};

use super::outbox::{Frame, Pushed, EMPTY_IOVEC};
use super::Connection;
use crate::metrics::counters::ShardMetrics;

/// Connections per submission (and the ring's size).
const ENTRIES: usize = 256;
/// Frames of one connection gathered into its `sendmsg` at most.
const GATHER: usize = 8;

/// How long after a failed ring setup the next batch tries again.
const RETRY_SETUP_AFTER: Duration = Duration::from_secs(60);
/// Failed submissions in a row (a millisecond apart) before giving up on the process.
const SUBMIT_ATTEMPTS: u32 = 1000;

/// One shard's batch: connections with frames to send, and the ring that sends them.
pub struct WriteBatch {
    /// Set up by the first flush, so a shard that never broadcasts holds none.
    ring: RefCell<Option<Ring>>,
    /// When io_uring last could not be set up as needed here (an old kernel, a sandbox,
    /// or for a moment no file descriptor or memory): while set, every write goes
    /// through the connection's own writer, until `heartbeat` lets the next flush try
    /// again.
    failed_at: Cell<Option<Instant>>,
    /// Whether that was said in the log (once per shard).
    warned: Cell<bool>,
    pending: RefCell<Vec<Rc<Connection>>>,
    /// The flusher task, while it waits for work.
    flusher: Cell<Option<Waker>>,
}

struct Ring {
    uring: IoUring,
    /// The list being flushed, kept to reuse its allocation.
    spare: Vec<Rc<Connection>>,
}

impl WriteBatch {
    pub fn new() -> WriteBatch {
        WriteBatch {
            ring: RefCell::new(None),
            failed_at: Cell::new(None),
            warned: Cell::new(false),
            pending: RefCell::new(Vec::new()),
            flusher: Cell::new(None),
        }
    }

    /// Queue a broadcast frame for `conn`, to be sent with the rest of the batch when
    /// that is possible, else by the connection's writer.
    pub fn send(&self, conn: &Rc<Connection>, frame: Frame) {
        if conn.in_batch.get() {
            // Registered already: this frame goes in the same `sendmsg`.
            conn.send_quietly(frame);
            return;
        }
        if self.failed_at.get().is_some() || conn.write_fd.get() < 0 || conn.outbox.has_ready() {
            // Not batchable (TLS, not yet or no longer writing), or the writer is
            // already busy with this outbox: it takes the frame in turn.
            conn.send(frame);
            return;
        }
        if conn.send_quietly(frame) == Pushed::Queued {
            conn.in_batch.set(true);
            let mut pending = self.pending.borrow_mut();
            pending.push(conn.clone());
            if pending.len() == 1 {
                if let Some(w) = self.flusher.take() {
                    w.wake();
                }
            }
        }
    }

    /// The shard's flusher: sends each batch once registrations stop for the moment
    /// (it runs after the task that registered them). Runs for the shard's life.
    pub async fn run_flusher(&self, counters: &ShardMetrics) {
        loop {
            poll_fn(|cx| {
                if self.pending.borrow().is_empty() {
                    crate::connection::outbox::remember(&self.flusher, cx.waker());
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            self.flush(counters);
        }
    }

    /// Called about once a second: a minute after the ring could not be set up, let the
    /// next batch try again (the cause may have been passing: no free descriptor).
    pub fn heartbeat(&self, now: Instant) {
        if let Some(failed) = self.failed_at.get() {
            if now.duration_since(failed) >= RETRY_SETUP_AFTER {
                self.failed_at.set(None);
            }
        }
    }

    /// Send what every registered connection has queued, `ENTRIES` connections per
    /// system call.
    fn flush(&self, counters: &ShardMetrics) {
        let mut slot = self.ring.borrow_mut();
        if slot.is_none() {
            match Ring::new() {
                Ok(ring) => *slot = Some(ring),
                Err(e) => {
                    if !self.warned.replace(true) {
                        crate::warn!(
                            "io_uring cannot batch broadcast writes here ({e}): each \
                             connection writes its own (slower under fan-out, otherwise the \
                             same); trying again once a minute"
                        );
                    } else {
                        crate::debug!("io_uring for batched writes still unavailable: {e}");
                    }
                    self.failed_at.set(Some(Instant::now()));
                    for conn in self.pending.borrow_mut().drain(..) {
                        conn.in_batch.set(false);
                        conn.outbox.wake_writer();
                    }
                    return;
                }
            }
        }
        let ring = slot.as_mut().expect("set up above");
        let mut list = std::mem::replace(
            &mut *self.pending.borrow_mut(),
            std::mem::take(&mut ring.spare),
        );
        for chunk in list.chunks(ENTRIES) {
            ring.send_all(chunk, counters);
        }
        list.clear();
        ring.spare = list;
    }
}

impl Default for WriteBatch {
    fn default() -> WriteBatch {
        WriteBatch::new()
    }
}

impl Ring {
    fn new() -> std::io::Result<Ring> {
        // SUBMIT_ALL: an entry that fails (a socket closed under us) must not stop the
        // ones after it from being submitted. SINGLE_ISSUER: only this shard's thread
        // uses the ring.
        let uring = IoUring::builder()
            .setup_submit_all()
            .setup_single_issuer()
            .build(ENTRIES as u32)?;
        Ok(Ring {
            uring,
            spare: Vec::new(),
        })
    }

    /// One submission for up to `ENTRIES` connections, then each result back into its
    /// outbox.
    fn send_all(&mut self, chunk: &[Rc<Connection>], counters: &ShardMetrics) {
        // Each entry's `sendmsg` arguments, alive until every entry completed: on the
        // stack (46 KB, each entry filled only when used) for this call only. Kept on the
        // heap for the shard's life they cost every connection accepted afterwards ~200
        // bytes more RSS (measured with `bench connect`: 1,540 -> 1,740 B), the
        // allocator placing small objects less densely beside them.
        let mut iovecs = [const { MaybeUninit::<[libc::iovec; GATHER]>::uninit() }; ENTRIES];
        let mut headers = [const { MaybeUninit::<libc::msghdr>::uninit() }; ENTRIES];
        let mut submitted = 0;
        for (i, conn) in chunk.iter().enumerate() {
            conn.in_batch.set(false);
            let fd = conn.write_fd.get();
            if fd < 0 || !conn.outbox.has_ready() {
                // Its writer got there first, or the session is over.
                continue;
            }
            let iov = iovecs[i].write([EMPTY_IOVEC; GATHER]);
            let count = conn.outbox.unwritten_iovecs(iov);
            let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
            let entry = if count == 1 {
                // The usual case at a steady rate: a plain send skips the kernel's
                // copy and check of a message header and iovec array.
                // (A frame over 4 GiB, were one allowed, goes part way and the writer
                // takes the rest.)
                let len = iov[0].iov_len.min(u32::MAX as usize) as u32;
                opcode::Send::new(types::Fd(fd), iov[0].iov_base as *const u8, len)
                    .flags(flags)
                    .build()
            } else {
                // SAFETY: an all-zero msghdr is a valid empty one (no name, no control).
                let header = headers[i].write(unsafe { std::mem::zeroed() });
                header.msg_iov = iov.as_mut_ptr();
                header.msg_iovlen = count as _;
                opcode::SendMsg::new(types::Fd(fd), header as *const libc::msghdr)
                    .flags(flags as u32)
                    .build()
            }
            .user_data(i as u64);
            // SAFETY: the iovecs point into frames their outboxes hold until `consume`
            // below, after every entry completed; the header and iovecs are ours
            // until then too. The ring has room: at most ENTRIES entries per call.
            unsafe {
                self.uring
                    .submission()
                    .push(&entry)
                    .expect("one ring entry per connection of the chunk");
            }
            submitted += 1;
        }
        let (mut completed, mut failures) = (0, 0);
        while completed < submitted {
            // Non-blocking sends complete within the call; the loop covers a signal
            // interrupting it, or a kernel short of memory for a moment (entries it did
            // not take stay queued and go with the next call).
            if let Err(e) = self.uring.submit_and_wait(submitted - completed) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    failures += 1;
                    if failures == 1 {
                        crate::warn!("batched write submission failed: {e}; retrying");
                    }
                    // The frames' memory must not be released while the kernel may
                    // still read it, so there is no giving up quietly here; a kernel
                    // short of memory gets a millisecond at a time to recover.
                    assert!(
                        failures < SUBMIT_ATTEMPTS,
                        "io_uring submission kept failing for a second: {e}"
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            for cqe in self.uring.completion() {
                completed += 1;
                let conn = &chunk[cqe.user_data() as usize];
                let result = cqe.result();
                if result > 0 {
                    conn.outbox.consume(result as usize, |frame| {
                        counters.frame_out(conn.app.index, frame)
                    });
                }
                if result <= 0 || conn.outbox.has_ready() {
                    // A full socket, an error, or more than one send's worth: the
                    // connection's writer takes it from here.
                    conn.outbox.wake_writer();
                }
            }
        }
    }
}
