//! The cross-shard mesh: one bounded lock-free queue per (from, to) pair of shards,
//! with eventfd wake-ups (glommio's shared channels), carrying `M` messages plus the
//! bookkeeping for request/reply.
//!
//! Back-pressure is explicit: `send_to`/`broadcast`/`ask` wait while the target queue
//! is full, `try_send_to` reports `Full` and counts it, and the caller picks the policy.
//! Replies never wait: one that finds its queue full is parked in a per-target outbox
//! that a local task drains in order, so a handler never blocks its receiving task.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::{Poll, Waker};

use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use glommio::GlommioError;

/// A receiving task checks whether it should yield to the shard's other tasks after
/// this many messages in a row.
const YIELD_CHECK_EVERY: u32 = 16;

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

impl<M> SendError<M> {
    /// The message that could not be sent.
    pub fn into_inner(self) -> M {
        match self {
            SendError::Full(m) | SendError::Closed(m) => m,
        }
    }
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

/// An `ask` whose answer will never come: the target stopped, the id is not a shard,
/// or the handler dropped its [`Reply`] unanswered.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct NoReply;

impl fmt::Display for NoReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the target shard did not reply (it stopped or dropped the request)")
    }
}

impl std::error::Error for NoReply {}

/// A message as the receiving shard's handler sees it.
pub struct Incoming<M: Send + 'static> {
    /// The shard that sent it (this shard's own id for a message to itself).
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

    /// The shard that asked.
    pub fn to(&self) -> usize {
        self.to
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
    /// The shard asked, so its departure can fail this ask.
    to: usize,
    answer: Option<Result<M, NoReply>>,
    waker: Option<Waker>,
}

/// Per-shard state shared by the shard's handle and its receiving tasks.
pub(crate) struct MeshCore<M: Send + 'static> {
    pub(crate) id: usize,
    pub(crate) count: usize,
    /// `senders[to]`, `None` for this shard itself; unset before the mesh is connected.
    /// Closed (not removed) by `close`.
    senders: OnceCell<Vec<Option<ConnectedSender<Envelope<M>>>>>,
    /// Peers whose queue to this shard ended: they stopped and will never reply.
    gone: RefCell<Vec<bool>>,
    handler: RefCell<Option<Handler<M>>>,
    /// Messages that arrived before `serve` installed the handler, in arrival order.
    early: RefCell<VecDeque<(usize, Envelope<M>)>>,
    pending: RefCell<HashMap<u64, PendingAsk<M>>>,
    next_ask: Cell<u64>,
    full_events: Cell<u64>,
    /// Envelopes (replies, posts) that found their queue full, per target, drained in
    /// order by one local task each.
    outbox: RefCell<Vec<VecDeque<Envelope<M>>>>,
    flushing: RefCell<Vec<bool>>,
    closed: Cell<bool>,
}

impl<M: Send + 'static> MeshCore<M> {
    pub(crate) fn new(id: usize, count: usize) -> Self {
        MeshCore {
            id,
            count,
            senders: OnceCell::new(),
            gone: RefCell::new(vec![false; count]),
            handler: RefCell::new(None),
            early: RefCell::new(VecDeque::new()),
            pending: RefCell::new(HashMap::new()),
            next_ask: Cell::new(0),
            full_events: Cell::new(0),
            outbox: RefCell::new((0..count).map(|_| VecDeque::new()).collect()),
            flushing: RefCell::new(vec![false; count]),
            closed: Cell::new(false),
        }
    }

    /// Install the connected senders (called once, before the shard's code runs).
    pub(crate) fn set_senders(&self, senders: Vec<Option<ConnectedSender<Envelope<M>>>>) {
        if self.closed.get() {
            for sender in senders.iter().flatten() {
                sender.close();
            }
        }
        if self.senders.set(senders).is_err() {
            unreachable!("the mesh is connected once");
        }
    }

    /// Run the task that receives from shard `from` until that shard closes its end.
    pub(crate) fn spawn_receiver(self: &Rc<Self>, from: usize, rx: ConnectedReceiver<Envelope<M>>) {
        let core = self.clone();
        glommio::spawn_local(async move {
            let mut until_yield_check = YIELD_CHECK_EVERY;
            while let Some(envelope) = rx.recv().await {
                dispatch(&core, from, envelope);
                // A flood from one peer must not starve this shard's other tasks (the
                // check is cheap but not free, so not after every message).
                until_yield_check -= 1;
                if until_yield_check == 0 {
                    until_yield_check = YIELD_CHECK_EVERY;
                    glommio::yield_if_needed().await;
                }
            }
            core.peer_gone(from);
        })
        .detach();
    }

    pub(crate) fn full_events(&self) -> u64 {
        self.full_events.get()
    }

    pub(crate) fn parked(&self) -> usize {
        self.outbox.borrow().iter().map(VecDeque::len).sum()
    }

    fn sender(&self, to: usize) -> Option<&ConnectedSender<Envelope<M>>> {
        self.senders.get()?.get(to)?.as_ref()
    }

    fn is_gone(&self, to: usize) -> bool {
        self.gone.borrow().get(to).copied().unwrap_or(true)
    }

    async fn raw_send(&self, to: usize, envelope: Envelope<M>) -> Result<(), Envelope<M>> {
        let Some(sender) = self.sender(to) else {
            return Err(envelope);
        };
        sender.send(envelope).await.map_err(take_back)
    }

    fn raw_try_send(&self, to: usize, envelope: Envelope<M>) -> Result<(), SendError<Envelope<M>>> {
        let Some(sender) = self.sender(to) else {
            return Err(SendError::Closed(envelope));
        };
        sender.try_send(envelope).map_err(|e| match e {
            GlommioError::WouldBlock(_) => {
                self.full_events.set(self.full_events.get() + 1);
                SendError::Full(take_back(e))
            }
            other => SendError::Closed(take_back(other)),
        })
    }

    /// Hand an envelope addressed to this shard itself to the handler, or keep it for
    /// `serve` when there is none yet.
    fn local(self: &Rc<Self>, envelope: Envelope<M>) -> Result<(), Envelope<M>> {
        if self.closed.get() {
            return Err(envelope);
        }
        dispatch(self, self.id, envelope);
        Ok(())
    }

    fn deliver_reply(self: &Rc<Self>, to: usize, id: u64, answer: Result<M, NoReply>) {
        if to == self.id {
            self.complete(id, answer);
            return;
        }
        // While shutting down (or unwinding from a panic) nothing may be spawned; the
        // asker learns of it when this shard's queue to it ends.
        if self.closed.get() || std::thread::panicking() {
            return;
        }
        self.enqueue_ordered(to, Envelope::Reply(id, answer));
    }

    /// Queue an envelope for `to` without waiting, after everything queued before it:
    /// straight into the channel when it has room and nothing is parked, else parked
    /// and sent in order by one local task per target.
    fn enqueue_ordered(self: &Rc<Self>, to: usize, envelope: Envelope<M>) {
        if self.flushing.borrow()[to] {
            self.outbox.borrow_mut()[to].push_back(envelope);
            return;
        }
        match self.raw_try_send(to, envelope) {
            Ok(()) | Err(SendError::Closed(_)) => {}
            Err(SendError::Full(envelope)) => {
                self.outbox.borrow_mut()[to].push_back(envelope);
                self.flushing.borrow_mut()[to] = true;
                let core = self.clone();
                glommio::spawn_local(async move { core.flush(to).await }).detach();
            }
        }
    }

    /// Whether envelopes to `to` are parked: a direct send now would overtake them.
    fn is_flushing(&self, to: usize) -> bool {
        self.flushing.borrow()[to]
    }

    /// Send the parked envelopes to `to`, in order, waiting for room.
    async fn flush(&self, to: usize) {
        loop {
            let next = self.outbox.borrow_mut()[to].pop_front();
            let Some(envelope) = next else { break };
            if self.raw_send(to, envelope).await.is_err() {
                self.outbox.borrow_mut()[to].clear();
                break;
            }
        }
        self.flushing.borrow_mut()[to] = false;
    }

    fn complete(&self, id: u64, answer: Result<M, NoReply>) {
        let waker = match self.pending.borrow_mut().get_mut(&id) {
            Some(slot) => {
                slot.answer = Some(answer);
                slot.waker.take()
            }
            None => None,
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Fail the outstanding asks that match `which`.
    fn fail_pending(&self, which: impl Fn(&PendingAsk<M>) -> bool) {
        let mut wakers = Vec::new();
        for slot in self.pending.borrow_mut().values_mut() {
            if slot.answer.is_none() && which(slot) {
                slot.answer = Some(Err(NoReply));
                wakers.extend(slot.waker.take());
            }
        }
        for waker in wakers {
            waker.wake();
        }
    }

    /// Shard `from` closed its queue to this shard (it stopped or died): every reply it
    /// sent has been received, so whatever is still pending from it never will be.
    fn peer_gone(&self, from: usize) {
        if let Some(gone) = self.gone.borrow_mut().get_mut(from) {
            *gone = true;
        }
        self.fail_pending(|slot| slot.to == from);
    }

    /// Shut this shard's side of the mesh: close its queues (peers see `Closed` and
    /// fail their asks to it), drop the handler (which may hold a `Mesh`, i.e. this
    /// core) and unanswered early messages, and fail this shard's own pending asks.
    /// Idempotent.
    pub(crate) fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        for sender in self.senders.get().into_iter().flatten().flatten() {
            sender.close();
        }
        let handler = self.handler.borrow_mut().take();
        drop(handler);
        let early = std::mem::take(&mut *self.early.borrow_mut());
        drop(early);
        for outbox in self.outbox.borrow_mut().iter_mut() {
            outbox.clear();
        }
        self.fail_pending(|_| true);
    }
}

/// Route one envelope that arrived from `from`.
fn dispatch<M: Send + 'static>(core: &Rc<MeshCore<M>>, from: usize, envelope: Envelope<M>) {
    if let Envelope::Reply(id, answer) = envelope {
        core.complete(id, answer);
        return;
    }
    if core.closed.get() {
        // Dropping an ask here is fine: the asker fails it when our queue to it ends.
        return;
    }
    let handler = core.handler.borrow().clone();
    let Some(handler) = handler else {
        core.early.borrow_mut().push_back((from, envelope));
        return;
    };
    match envelope {
        Envelope::Tell(msg) => handler(Incoming {
            from,
            msg,
            reply: None,
        }),
        Envelope::Ask(id, msg) => {
            let reply = Reply {
                to: from,
                id,
                core: core.clone(),
                sent: false,
            };
            handler(Incoming {
                from,
                msg,
                reply: Some(reply),
            })
        }
        Envelope::Reply(..) => unreachable!("handled above"),
    }
}

fn take_back<M>(error: GlommioError<M>) -> M {
    match error {
        GlommioError::Closed(glommio::ResourceType::Channel(m)) => m,
        GlommioError::WouldBlock(glommio::ResourceType::Channel(m)) => m,
        other => {
            unreachable!("a shared channel send fails only as Closed or WouldBlock, not {other}")
        }
    }
}

/// This shard's view of the mesh: cheap to clone, `!Send` (it belongs to its shard).
pub struct Mesh<M: Send + 'static> {
    pub(crate) core: Rc<MeshCore<M>>,
}

impl<M: Send + 'static> Clone for Mesh<M> {
    fn clone(&self) -> Self {
        Mesh {
            core: self.core.clone(),
        }
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

    /// How often a non-waiting send from this shard found its queue full: each
    /// `try_send_to` that returned [`SendError::Full`], plus each reply that had to be
    /// deferred.
    pub fn full_events(&self) -> u64 {
        self.core.full_events()
    }

    /// Messages this shard has parked because their queue was full (posts and
    /// deferred replies waiting for room): the visible part of mesh back-pressure.
    pub fn parked(&self) -> usize {
        self.core.parked()
    }

    /// Install the function that handles messages sent to this shard (replacing any
    /// earlier one). Messages that arrived earlier — from other shards or from this
    /// one — are handled now, in arrival order. Until `serve` is called they are
    /// buffered without bound, so call it first thing. The handler runs inline on the
    /// receiving task: keep it short and spawn a local task for anything that waits.
    pub fn serve(&self, handler: impl Fn(Incoming<M>) + 'static) {
        if self.core.closed.get() {
            return;
        }
        let handler: Handler<M> = Rc::new(handler);
        *self.core.handler.borrow_mut() = Some(handler);
        loop {
            // One at a time, so a handler that calls `serve` again, or sends to this
            // shard, sees a consistent queue.
            let next = self.core.early.borrow_mut().pop_front();
            let Some((from, envelope)) = next else { break };
            dispatch(&self.core, from, envelope);
        }
    }

    /// Send `msg` to shard `to`, waiting while its queue is full. Sending to this
    /// shard itself calls the handler directly (or buffers the message until `serve`).
    pub async fn send_to(&self, to: usize, msg: M) -> Result<(), SendError<M>> {
        if to >= self.core.count {
            return Err(SendError::Closed(msg));
        }
        if to == self.core.id {
            return self
                .core
                .local(Envelope::Tell(msg))
                .map_err(|e| SendError::Closed(unwrap_tell(e)));
        }
        if self.core.is_flushing(to) {
            // Behind parked posts: queue after them so this shard's order to `to` holds.
            self.core.enqueue_ordered(to, Envelope::Tell(msg));
            return Ok(());
        }
        self.core
            .raw_send(to, Envelope::Tell(msg))
            .await
            .map_err(|e| SendError::Closed(unwrap_tell(e)))
    }

    /// Send `msg` to shard `to` without ever waiting and in order with everything this
    /// shard sent there before. When the queue is full the message is parked locally
    /// (unbounded, drained in order by a local task) — for handlers and other code
    /// that cannot wait. Posting to this shard itself runs the handler on a new task.
    pub fn post(&self, to: usize, msg: M) {
        if to >= self.core.count || self.core.closed.get() {
            return;
        }
        if to == self.core.id {
            let core = self.core.clone();
            glommio::spawn_local(async move {
                let _ = core.local(Envelope::Tell(msg));
            })
            .detach();
            return;
        }
        self.core.enqueue_ordered(to, Envelope::Tell(msg));
    }

    /// Send without waiting: `Full` gives the message back when the queue is full.
    pub fn try_send_to(&self, to: usize, msg: M) -> Result<(), SendError<M>> {
        if to >= self.core.count {
            return Err(SendError::Closed(msg));
        }
        if to == self.core.id {
            return self
                .core
                .local(Envelope::Tell(msg))
                .map_err(|e| SendError::Closed(unwrap_tell(e)));
        }
        self.core
            .raw_try_send(to, Envelope::Tell(msg))
            .map_err(|e| match e {
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

    /// Send `msg` to shard `to` (this one included) and wait for its handler's
    /// `Reply`. Fails with [`NoReply`] when the handler drops the `Reply`, when the
    /// target stops first, or when `to` is not a shard; it waits as long as the
    /// handler holds the `Reply` unanswered.
    pub async fn ask(&self, to: usize, msg: M) -> Result<M, NoReply> {
        let core = &self.core;
        if to >= core.count || core.closed.get() || (to != core.id && core.is_gone(to)) {
            return Err(NoReply);
        }
        let id = core.next_ask.get();
        core.next_ask.set(id.wrapping_add(1));
        core.pending.borrow_mut().insert(
            id,
            PendingAsk {
                to,
                answer: None,
                waker: None,
            },
        );
        let _guard = PendingGuard { core, id };
        if to == core.id {
            if core.local(Envelope::Ask(id, msg)).is_err() {
                return Err(NoReply);
            }
        } else if core.is_flushing(to) {
            core.enqueue_ordered(to, Envelope::Ask(id, msg));
        } else if core.raw_send(to, Envelope::Ask(id, msg)).await.is_err() {
            return Err(NoReply);
        }
        poll_fn(|cx| {
            let mut pending = core.pending.borrow_mut();
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

    /// Ask every shard (this one included) with a copy of `msg`, concurrently, and
    /// fold the answers in shard order. Shards that cannot answer are skipped; use
    /// [`Mesh::try_map_reduce`] when a partial answer is not acceptable.
    pub async fn map_reduce<A>(&self, msg: M, init: A, mut fold: impl FnMut(A, M) -> A) -> A
    where
        M: Clone,
    {
        let mut acc = init;
        for answer in self.ask_all(msg).await.into_iter().flatten() {
            acc = fold(acc, answer);
        }
        acc
    }

    /// Like [`Mesh::map_reduce`], but fails with [`NoReply`] if any shard cannot
    /// answer, so the result is never silently partial.
    pub async fn try_map_reduce<A>(
        &self,
        msg: M,
        init: A,
        mut fold: impl FnMut(A, M) -> A,
    ) -> Result<A, NoReply>
    where
        M: Clone,
    {
        let answers = self
            .ask_all(msg)
            .await
            .into_iter()
            .collect::<Result<Vec<M>, NoReply>>()?;
        Ok(answers.into_iter().fold(init, &mut fold))
    }

    async fn ask_all(&self, msg: M) -> Vec<Result<M, NoReply>>
    where
        M: Clone,
    {
        let asks: Vec<_> = (0..self.core.count)
            .map(|to| self.ask(to, msg.clone()))
            .collect();
        join_all(asks).await
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
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
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
    outputs
        .into_iter()
        .map(|o| o.expect("joined future output"))
        .collect()
}
