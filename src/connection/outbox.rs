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
    queue: RefCell<VecDeque<Frame>>,
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
            bytes: Cell::new(0),
            limit,
            sealed: Cell::new(false),
            waker: Cell::new(None),
        }
    }

    pub fn push(&self, frame: Frame) -> Pushed {
        if self.sealed.get() {
            return Pushed::Dropped;
        }
        let bytes = self.bytes.get() + frame.len();
        if bytes > self.limit && !self.queue.borrow().is_empty() {
            return Pushed::Overflow;
        }
        self.bytes.set(bytes);
        self.queue.borrow_mut().push_back(frame);
        self.wake();
        Pushed::Queued
    }

    /// Queue the last frame (a Close). `discard` drops whatever is still queued first.
    pub fn seal(&self, last: Frame, discard: bool) {
        if self.sealed.replace(true) {
            return;
        }
        if discard {
            self.queue.borrow_mut().clear();
            self.bytes.set(0);
        }
        self.bytes.set(self.bytes.get() + last.len());
        self.queue.borrow_mut().push_back(last);
        self.wake();
    }

    /// Seal without a last frame (the peer is gone).
    pub fn abandon(&self) {
        self.sealed.set(true);
        self.queue.borrow_mut().clear();
        self.bytes.set(0);
        self.wake();
    }

    pub fn is_sealed(&self) -> bool {
        self.sealed.get()
    }

    pub fn queued_bytes(&self) -> usize {
        self.bytes.get()
    }

    /// The writer's wait: the next frame, or `None` once sealed and empty.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        if let Some(frame) = self.queue.borrow_mut().pop_front() {
            self.bytes.set(self.bytes.get() - frame.len());
            return Poll::Ready(Some(frame));
        }
        if self.sealed.get() {
            return Poll::Ready(None);
        }
        self.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }

    /// Move up to `max` more queued frames into `out` without waiting (the writer
    /// gathers what piled up while it was busy into one write).
    pub fn take_ready(&self, out: &mut Vec<Frame>, max: usize) {
        let mut queue = self.queue.borrow_mut();
        let n = queue.len().min(max);
        for frame in queue.drain(..n) {
            self.bytes.set(self.bytes.get() - frame.len());
            out.push(frame);
        }
    }

    fn wake(&self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
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

    #[test]
    fn take_ready_moves_queued_frames_in_order_and_frees_their_bytes() {
        let out = Outbox::new(100);
        for i in 0..5u8 {
            out.push(Frame::Owned(vec![i; 10]));
        }
        let mut batch = Vec::new();
        out.take_ready(&mut batch, 3);
        let firsts: Vec<u8> = batch.iter().map(|f| f[0]).collect();
        assert_eq!(firsts, [0, 1, 2]);
        assert_eq!(out.queued_bytes(), 20);
        out.take_ready(&mut batch, 64);
        assert_eq!(batch.len(), 5);
        assert_eq!(out.queued_bytes(), 0);
    }

    #[test]
    fn one_frame_larger_than_the_bound_still_goes_when_the_queue_is_empty() {
        // A single message bigger than the bound is not a slow consumer.
        let out = Outbox::new(10);
        assert_eq!(out.push(Frame::Owned(vec![0; 50])), Pushed::Queued);
    }
}
