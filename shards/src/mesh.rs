//! The cross-shard mesh: one bounded lock-free queue per (from, to) pair of shards,
//! with eventfd wake-ups (glommio's shared channels), carrying `M` messages plus the
//! bookkeeping for request/reply.
//!
//! Back-pressure is explicit: `send_to`/`broadcast`/`ask` wait while the target queue
//! is full, `try_send_to` reports `Full` and counts it, and the caller picks the policy.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use glommio::channels::channel_mesh::Senders;
use glommio::GlommioError;

/// What travels on a queue.
pub(crate) enum Envelope<M> {
    Tell(M),
    Ask(u64, M),
    Reply(u64, Result<M, NoReply>),
}

/// Why a message could not be sent.
#[derive(PartialEq, Eq)]
pub enum SendError<M> {
    /// The target queue is full (only from `try_send_to`); the message comes back.
    Full(M),
    /// The target shard has stopped, or the id is not a shard.
    Closed(M),
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("Full(..)"),
            SendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("the target shard's queue is full"),
            SendError::Closed(_) => f.write_str("the target shard has stopped"),
        }
    }
}

impl<M> std::error::Error for SendError<M> {}

/// An `ask` whose answer will never come (the target stopped or has no handler).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct NoReply;

impl fmt::Display for NoReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the target shard stopped before it replied")
    }
}

impl std::error::Error for NoReply {}

/// A message as the receiving shard's handler sees it.
pub struct Incoming<M: Send + 'static> {
    /// The shard that sent it (this shard's own id for a local `ask`).
    pub from: usize,
    /// The message.
    pub msg: M,
    /// Present when the sender `ask`ed: answer through it exactly once.
    pub reply: Option<Reply<M>>,
}

/// The way back to an `ask`er. Dropping it unanswered makes the `ask` fail with
/// [`NoReply`].
pub struct Reply<M: Send + 'static> {
    to: usize,
    id: u64,
    core: Rc<MeshCore<M>>,
    sent: bool,
}

impl<M: Send + 'static> Reply<M> {
    /// Answer the ask. Never waits: a full queue defers the send to a local task.
    pub fn send(mut self, answer: M) {
        self.sent = true;
        self.core.deliver_reply(self.to, self.id, Ok(answer));
    }
}

impl<M: Send + 'static> Drop for Reply<M> {
    fn drop(&mut self) {
        if !self.sent {
            self.core.deliver_reply(self.to, self.id, Err(NoReply));
        }
    }
}

type Handler<M> = Rc<dyn Fn(Incoming<M>)>;

struct PendingAsk<M> {
    answer: Option<Result<M, NoReply>>,
    waker: Option<Waker>,
}

/// Per-shard state shared by the shard's handle and its receiving tasks.
pub(crate) struct MeshCore<M: Send + 'static> {
    pub(crate) id: usize,
    pub(crate) count: usize,
    senders: Option<Senders<Envelope<M>>>,
    handler: RefCell<Option<Handler<M>>>,
    /// Messages that arrived before `serve` installed the handler.
    early: RefCell<Vec<(usize, Envelope<M>)>>,
    pending: RefCell<HashMap<u64, PendingAsk<M>>>,
    next_ask: Cell<u64>,
    full_events: Cell<u64>,
}

impl<M: Send + 'static> MeshCore<M> {
    pub(crate) fn new(id: usize, count: usize, senders: Option<Senders<Envelope<M>>>) -> Self {
        MeshCore {
            id,
            count,
            senders,
            handler: RefCell::new(None),
            early: RefCell::new(Vec::new()),
            pending: RefCell::new(HashMap::new()),
            next_ask: Cell::new(0),
            full_events: Cell::new(0),
        }
    }

    pub(crate) fn full_events(&self) -> u64 {
        self.full_events.get()
    }

    async fn raw_send(&self, to: usize, envelope: Envelope<M>) -> Result<(), Envelope<M>> {
        let Some(senders) = &self.senders else { return Err(envelope) };
        senders.send_to(to, envelope).await.map_err(take_back)
    }

    fn raw_try_send(&self, to: usize, envelope: Envelope<M>) -> Result<(), SendError<Envelope<M>>> {
        let Some(senders) = &self.senders else { return Err(SendError::Closed(envelope)) };
        senders.try_send_to(to, envelope).map_err(|e| match e {
            GlommioError::WouldBlock(_) => {
                self.full_events.set(self.full_events.get() + 1);
                SendError::Full(take_back(e))
            }
            other => SendError::Closed(take_back(other)),
        })
    }

    fn deliver_reply(self: &Rc<Self>, to: usize, id: u64, answer: Result<M, NoReply>) {
        if to == self.id {
            self.complete(id, answer);
            return;
        }
        match self.raw_try_send(to, Envelope::Reply(id, answer)) {
            Ok(()) => {}
            Err(SendError::Full(envelope)) => {
                let core = self.clone();
                glommio::spawn_local(async move {
                    let _ = core.raw_send(to, envelope).await;
                })
                .detach();
            }
            Err(SendError::Closed(_)) => {}
        }
    }

    fn complete(&self, id: u64, answer: Result<M, NoReply>) {
        if let Some(slot) = self.pending.borrow_mut().get_mut(&id) {
            slot.answer = Some(answer);
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        }
    }

    /// Fail every outstanding ask: called when the mesh shuts down.
    pub(crate) fn fail_pending(&self) {
        for slot in self.pending.borrow_mut().values_mut() {
            if slot.answer.is_none() {
                slot.answer = Some(Err(NoReply));
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
            }
        }
    }

    pub(crate) fn close(&self) {
        if let Some(senders) = &self.senders {
            senders.close();
        }
        self.fail_pending();
    }
}

/// Route one envelope that arrived from `from`.
pub(crate) fn dispatch<M: Send + 'static>(core: &Rc<MeshCore<M>>, from: usize, envelope: Envelope<M>) {
    let handler = core.handler.borrow().clone();
    let Some(handler) = handler else {
        if !matches!(envelope, Envelope::Reply(..)) {
            core.early.borrow_mut().push((from, envelope));
            return;
        }
        if let Envelope::Reply(id, answer) = envelope {
            core.complete(id, answer);
        }
        return;
    };
    match envelope {
        Envelope::Tell(msg) => handler(Incoming { from, msg, reply: None }),
        Envelope::Ask(id, msg) => {
            let reply = Reply { to: from, id, core: core.clone(), sent: false };
            handler(Incoming { from, msg, reply: Some(reply) })
        }
        Envelope::Reply(id, answer) => core.complete(id, answer),
    }
}

fn take_back<M>(error: GlommioError<M>) -> M {
    match error {
        GlommioError::Closed(glommio::ResourceType::Channel(m)) => m,
        GlommioError::WouldBlock(glommio::ResourceType::Channel(m)) => m,
        other => panic!("unexpected mesh error: {other}"),
    }
}

/// This shard's view of the mesh: cheap to clone, `!Send` (it belongs to its shard).
pub struct Mesh<M: Send + 'static> {
    pub(crate) core: Rc<MeshCore<M>>,
}

impl<M: Send + 'static> Clone for Mesh<M> {
    fn clone(&self) -> Self {
        Mesh { core: self.core.clone() }
    }
}

impl<M: Send + 'static> Mesh<M> {
    /// This shard's index, `0..count()`.
    pub fn id(&self) -> usize {
        self.core.id
    }

    /// How many shards run.
    pub fn count(&self) -> usize {
        self.core.count
    }

    /// How often `try_send_to` found a queue full on this shard.
    pub fn full_events(&self) -> u64 {
        self.core.full_events()
    }

    /// Install the function that handles messages sent to this shard. Messages that
    /// arrived earlier are handled now, in order. The handler runs inline on the
    /// receiving task: keep it short and spawn a local task for anything that waits.
    pub fn serve(&self, handler: impl Fn(Incoming<M>) + 'static) {
        let handler: Handler<M> = Rc::new(handler);
        *self.core.handler.borrow_mut() = Some(handler);
        let early = std::mem::take(&mut *self.core.early.borrow_mut());
        for (from, envelope) in early {
            dispatch(&self.core, from, envelope);
        }
    }

    /// Send `msg` to shard `to`, waiting while its queue is full. Sending to this
    /// shard itself calls the handler directly.
    pub async fn send_to(&self, to: usize, msg: M) -> Result<(), SendError<M>> {
        if to == self.core.id {
            return self.local(msg, None);
        }
        self.core.raw_send(to, Envelope::Tell(msg)).await.map_err(|e| SendError::Closed(unwrap_tell(e)))
    }

    /// Send without waiting: `Full` gives the message back when the queue is full.
    pub fn try_send_to(&self, to: usize, msg: M) -> Result<(), SendError<M>> {
        if to == self.core.id {
            return self.local(msg, None);
        }
        self.core.raw_try_send(to, Envelope::Tell(msg)).map_err(|e| match e {
            SendError::Full(env) => SendError::Full(unwrap_tell(env)),
            SendError::Closed(env) => SendError::Closed(unwrap_tell(env)),
        })
    }

    /// Send one copy of `msg` to every *other* shard (never one per anything else).
    /// Returns how many shards could not be reached because they stopped.
    pub async fn broadcast(&self, msg: M) -> usize
    where
        M: Clone,
    {
        let mut unreachable = 0;
        for to in (0..self.core.count).filter(|&to| to != self.core.id) {
            if self.send_to(to, msg.clone()).await.is_err() {
                unreachable += 1;
            }
        }
        unreachable
    }

    /// Send `msg` to shard `to` and wait for its handler's `Reply`.
    pub async fn ask(&self, to: usize, msg: M) -> Result<M, NoReply> {
        let id = self.core.next_ask.get();
        self.core.next_ask.set(id.wrapping_add(1));
        self.core.pending.borrow_mut().insert(id, PendingAsk { answer: None, waker: None });
        let _guard = PendingGuard { core: &self.core, id };
        if to == self.core.id {
            let reply = Reply { to, id, core: self.core.clone(), sent: false };
            if self.local(msg, Some(reply)).is_err() {
                return Err(NoReply);
            }
        } else if self.core.raw_send(to, Envelope::Ask(id, msg)).await.is_err() {
            return Err(NoReply);
        }
        poll_fn(|cx| {
            let mut pending = self.core.pending.borrow_mut();
            let slot = pending.get_mut(&id).expect("pending ask slot");
            match slot.answer.take() {
                Some(answer) => Poll::Ready(answer),
                None => {
                    slot.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Ask every shard (this one included) with a copy of `msg` and fold the answers
    /// in shard order. Shards that cannot answer are skipped.
    pub async fn map_reduce<A>(&self, msg: M, init: A, mut fold: impl FnMut(A, M) -> A) -> A
    where
        M: Clone,
    {
        let asks: Vec<_> = (0..self.core.count).map(|to| self.ask(to, msg.clone())).collect();
        let answers = join_all(asks).await;
        let mut acc = init;
        for answer in answers.into_iter().flatten() {
            acc = fold(acc, answer);
        }
        acc
    }

    fn local(&self, msg: M, reply: Option<Reply<M>>) -> Result<(), SendError<M>> {
        let handler = self.core.handler.borrow().clone();
        match handler {
            Some(handler) => {
                handler(Incoming { from: self.core.id, msg, reply });
                Ok(())
            }
            None => Err(SendError::Closed(msg)),
        }
    }
}

struct PendingGuard<'a, M: Send + 'static> {
    core: &'a MeshCore<M>,
    id: u64,
}

impl<M: Send + 'static> Drop for PendingGuard<'_, M> {
    fn drop(&mut self) {
        self.core.pending.borrow_mut().remove(&self.id);
    }
}

fn unwrap_tell<M>(envelope: Envelope<M>) -> M {
    match envelope {
        Envelope::Tell(m) | Envelope::Ask(_, m) => m,
        Envelope::Reply(..) => unreachable!("replies never come back to their sender"),
    }
}

/// Await several futures concurrently on this executor, keeping their order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..futures.len()).map(|_| None).collect();
    poll_fn(|cx| {
        let mut all_done = true;
        for (slot, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("joined future output")).collect()
}
