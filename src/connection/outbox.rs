//! A connection's outbound queue: frames waiting to be written, bounded in bytes.
//!
//! Broadcast frames are shared (`Arc<[u8]>`, encoded once for every subscriber); the
//! queue holds references, never copies. A consumer whose queue would grow past the
//! bound is a slow consumer: the queue is dropped and the connection closed with 4100
//! (config.md `outbound_buffer`), so one stalled reader never costs more memory.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Bytes of one WebSocket frame on the wire.
#[derive(Clone, Debug)]
pub enum Frame {
    Shared(Arc<[u8]>),
    Owned(Vec<u8>),
}

impl Deref for Frame {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Frame::Shared(b) => b,
            Frame::Owned(b) => b,
        }
    }
}

/// An iovec that points nowhere, to fill arrays of them with.
pub const EMPTY_IOVEC: libc::iovec = libc::iovec {
    iov_base: std::ptr::null_mut(),
    iov_len: 0,
};

/// What happened to a pushed frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The connection is closing; the frame was dropped.
    Dropped,
    /// Over the bound: the caller must close the connection as a slow consumer.
    Overflow,
}

pub struct Outbox {
    /// Frames not yet fully written; the first may be partly written already.
    queue: RefCell<VecDeque<Frame>>,
    /// Bytes of the first frame already on the wire.
    head_written: Cell<usize>,
    /// Bytes of `queue` not yet written.
    bytes: Cell<usize>,
    limit: usize,
    /// Set once the final (close) frame is queued: nothing is queued after it.
    sealed: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Outbox {
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            queue: RefCell::new(VecDeque::new()),
            head_written: Cell::new(0),
            bytes: Cell::new(0),
            limit,
            sealed: Cell::new(false),
            waker: Cell::new(None),
        }
    }

    pub fn push(&self, frame: Frame) -> Pushed {
        let pushed = self.push_quietly(frame);
        if pushed == Pushed::Queued {
            self.wake_writer();
        }
        pushed
    }

    /// Queue without waking the writer: for a frame someone else sends
    /// (`batch::WriteBatch`), which wakes the writer only for what it leaves behind.
    pub fn push_quietly(&self, frame: Frame) -> Pushed {
        if self.sealed.get() {
            return Pushed::Dropped;
        }
        let bytes = self.bytes.get() + frame.len();
        if bytes > self.limit && !self.queue.borrow().is_empty() {
            return Pushed::Overflow;
        }
        self.bytes.set(bytes);
        self.queue.borrow_mut().push_back(frame);
        Pushed::Queued
    }

    /// Queue the last frame (a Close). `discard` drops whatever is still queued first,
    /// except a frame already partly written (the peer must get it whole, or the Close
    /// would be read as the rest of it).
    pub fn seal(&self, last: Frame, discard: bool) {
        if self.sealed.replace(true) {
            return;
        }
        if discard {
            self.discard_unstarted();
        }
        self.bytes.set(self.bytes.get() + last.len());
        self.queue.borrow_mut().push_back(last);
        self.wake_writer();
    }

    /// Seal without a last frame (the peer is gone).
    pub fn abandon(&self) {
        self.sealed.set(true);
        self.queue.borrow_mut().clear();
        self.head_written.set(0);
        self.bytes.set(0);
        self.wake_writer();
    }

    fn discard_unstarted(&self) {
        let mut queue = self.queue.borrow_mut();
        let keep = usize::from(self.head_written.get() > 0).min(queue.len());
        queue.truncate(keep);
        let unwritten = queue
            .front()
            .map_or(0, |f| f.len() - self.head_written.get());
        self.bytes.set(unwritten);
    }

    pub fn is_sealed(&self) -> bool {
        self.sealed.get()
    }

    pub fn queued_bytes(&self) -> usize {
        self.bytes.get()
    }

    /// Whether a frame is waiting to be written.
    pub fn has_ready(&self) -> bool {
        !self.queue.borrow().is_empty()
    }

    /// The writer's wait for the first frame: `Ready(true)` when one is queued,
    /// `Ready(false)` once sealed and empty (nothing more will ever come).
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.has_ready() {
            return Poll::Ready(true);
        }
        if self.sealed.get() {
            return Poll::Ready(false);
        }
        remember(&self.waker, cx.waker());
        Poll::Pending
    }

    /// The unwritten part of up to `max` queued frames, in order, to `each`.
    pub fn unwritten(&self, max: usize, mut each: impl FnMut(&[u8])) {
        let queue = self.queue.borrow();
        let mut skip = self.head_written.get();
        for frame in queue.iter().take(max) {
            each(&frame[skip..]);
            skip = 0;
        }
    }

    /// The same as `unwritten`, as the iovecs of a gathered write: fills the front of
    /// `iov` (one entry per frame, as many as fit) and says how many entries it filled.
    /// They point into the queued frames: valid until the next `consume` or `push`.
    pub fn unwritten_iovecs(&self, iov: &mut [libc::iovec]) -> usize {
        let mut count = 0;
        self.unwritten(iov.len(), |part| {
            iov[count] = libc::iovec {
                iov_base: part.as_ptr() as *mut libc::c_void,
                iov_len: part.len(),
            };
            count += 1;
        });
        count
    }

    /// `n` more bytes went out: drop the frames now fully written (each passed to
    /// `written` first) and remember how far into the next one the write got.
    pub fn consume(&self, mut n: usize, mut written: impl FnMut(&Frame)) {
        self.bytes.set(self.bytes.get() - n);
        let mut queue = self.queue.borrow_mut();
        n += self.head_written.get();
        while let Some(head) = queue.front() {
            if n < head.len() {
                break;
            }
            n -= head.len();
            written(head);
            queue.pop_front();
        }
        self.head_written.set(n);
    }

    /// Give back the queue's memory when it is empty. Called about once a second (the
    /// heartbeat), so a connection that went quiet holds no queue at all while a busy
    /// one allocates at most once a second, never once per frame.
    pub fn trim(&self) {
        let mut queue = self.queue.borrow_mut();
        if queue.is_empty() && queue.capacity() > 0 {
            *queue = VecDeque::new();
        }
    }

    /// Hand what is queued to the writer (if it is waiting for frames).
    pub fn wake_writer(&self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// Store `waker` in `slot` unless the one there already wakes the same task: the session
/// polls this on every wake-up, and cloning a glommio waker is a reference count
/// update on the task.
pub fn remember(slot: &Cell<Option<Waker>>, waker: &Waker) {
    match slot.take() {
        Some(held) if held.will_wake(waker) => slot.set(Some(held)),
        _ => slot.set(Some(waker.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_bytes() {
        let out = Outbox::new(10);
        assert_eq!(out.push(Frame::Owned(vec![0; 6])), Pushed::Queued);
        assert_eq!(out.push(Frame::Owned(vec![0; 4])), Pushed::Queued);
        assert_eq!(out.push(Frame::Owned(vec![0; 1])), Pushed::Overflow);
        assert_eq!(out.queued_bytes(), 10);
        out.seal(Frame::Owned(vec![1; 2]), true);
        assert_eq!(out.queued_bytes(), 2);
        assert_eq!(out.push(Frame::Owned(vec![0; 1])), Pushed::Dropped);
    }

    /// An outbox (bound 100) holding these frames.
    fn holding(frames: &[&[u8]]) -> Outbox {
        let out = Outbox::new(100);
        for frame in frames {
            out.push(Frame::Owned(frame.to_vec()));
        }
        out
    }

    fn unwritten(out: &Outbox, max: usize) -> Vec<Vec<u8>> {
        let mut parts = Vec::new();
        out.unwritten(max, |part| parts.push(part.to_vec()));
        parts
    }

    #[test]
    fn partial_writes_resume_where_they_stopped_and_free_whole_frames() {
        let out = holding(&[&[1, 2, 3], &[4, 5], &[6]]);
        assert_eq!(unwritten(&out, 2), [vec![1, 2, 3], vec![4, 5]]);
        let mut done = Vec::new();
        out.consume(4, |f| done.push(f.to_vec()));
        assert_eq!(done, [vec![1, 2, 3]]);
        assert_eq!(out.queued_bytes(), 2);
        assert_eq!(unwritten(&out, 64), [vec![5], vec![6]]);
        out.consume(2, |f| done.push(f.to_vec()));
        assert_eq!(done.len(), 3);
        assert!(!out.has_ready());
        assert_eq!(out.queued_bytes(), 0);
    }

    #[test]
    fn iovecs_start_where_the_last_write_stopped_and_fill_at_most_the_array() {
        let out = holding(&[&[1, 2, 3], &[4, 5], &[6]]);
        out.consume(1, |_| {});
        let mut iov = [EMPTY_IOVEC; 2];
        assert_eq!(out.unwritten_iovecs(&mut iov), 2);
        // SAFETY: the iovecs point into frames the outbox still holds.
        let parts: Vec<&[u8]> = iov
            .iter()
            .map(|v| unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) })
            .collect();
        assert_eq!(parts, [&[2u8, 3][..], &[4, 5][..]]);
    }

    #[test]
    fn a_close_never_cuts_into_a_partly_written_frame() {
        let out = holding(&[&[1, 2, 3], &[4, 5]]);
        out.consume(1, |_| {});
        out.seal(Frame::Owned(vec![9]), true);
        assert_eq!(unwritten(&out, 64), [vec![2, 3], vec![9]]);
        assert_eq!(out.queued_bytes(), 3);
        let out = holding(&[&[1, 2, 3]]);
        out.seal(Frame::Owned(vec![9]), true);
        assert_eq!(unwritten(&out, 64), [vec![9]]);
    }

    #[test]
    fn trim_frees_an_empty_queue_only() {
        let out = Outbox::new(100);
        out.push(Frame::Owned(vec![1; 10]));
        out.trim();
        assert!(out.has_ready(), "a queued frame survives trim");
        out.consume(10, |_| {});
        assert!(out.queue.borrow().capacity() > 0);
        out.trim();
        assert_eq!(out.queue.borrow().capacity(), 0);
        assert!(!out.has_ready());
    }

    #[test]
    fn one_frame_larger_than_the_bound_still_goes_when_the_queue_is_empty() {
        // A single message bigger than the bound is not a slow consumer.
        let out = Outbox::new(10);
        assert_eq!(out.push(Frame::Owned(vec![0; 50])), Pushed::Queued);
    }
}
