//! One client connection: its state, how frames reach it, and how it ends.
//!
//! A connection lives its whole life on the shard that accepted it (design invariant
//! 1): its session task (`session`) owns the socket; the shard's registry and
//! channels reach the connection through an `Rc` to queue frames in its outbox.

pub mod accept;
pub mod batch;
pub mod outbox;
pub mod protocol;
pub mod session;
pub mod signin;
pub mod stream;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::unix::io::RawFd;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use crate::app::App;
use crate::pusher::errors::close;
use crate::pusher::errors::PusherError;
use crate::pusher::messages;
use crate::pusher::rate_limit::RateWindow;
use crate::pusher::socket_id::SocketId;
use crate::ws::frame;
use outbox::{Frame, Outbox, Pushed};

/// What the connection holds for one channel it is subscribed to.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// `channel_data.user_id` (any channel kind): added to relayed client events.
    pub user_id: Option<serde_json::Value>,
    /// The presence member key, when this subscription is a presence member.
    pub presence_key: Option<String>,
}

pub struct Connection {
    pub socket_id: SocketId,
    pub app: Arc<App>,
    pub outbox: Outbox,
    /// Last time anything arrived from the client (any frame).
    last_seen: Cell<Instant>,
    /// When the server pinged since the last activity, if it did.
    pinged_at: Cell<Option<Instant>>,
    /// The client has sent a control frame: ping it with WebSocket Ping frames.
    control_mode: Cell<bool>,
    pub rate: RefCell<RateWindow>,
    pub subscriptions: RefCell<HashMap<Arc<str>, Subscription>>,
    /// The user id bound by `pusher:signin`, if any.
    pub user: RefCell<Option<String>>,
    /// The session task's waker for its reader half, woken when someone else decides
    /// to close the connection. The same task as the outbox's waker but not the same
    /// slot: that one is armed only while the writer waits for frames, so a push to a
    /// consumer whose socket is full does not poll the task for nothing.
    reader: Cell<Option<Waker>>,
    /// Closed for falling behind its outbound bound (counted in the metrics at the end).
    slow: Cell<bool>,
    /// Registered in the shard's write batch, which will send what the outbox holds.
    pub(crate) in_batch: Cell<bool>,
    /// The plain TCP socket while its session writes to it, for the write batch; -1
    /// otherwise (TLS, a refusal, or once the writer is done: the socket may then
    /// close at any time).
    pub(crate) write_fd: Cell<RawFd>,
}

impl Connection {
    pub fn new(socket_id: SocketId, app: Arc<App>, outbound_buffer: usize) -> Connection {
        Connection {
            socket_id,
            app,
            outbox: Outbox::new(outbound_buffer),
            last_seen: Cell::new(Instant::now()),
            pinged_at: Cell::new(None),
            control_mode: Cell::new(false),
            rate: RefCell::new(RateWindow::default()),
            subscriptions: RefCell::new(HashMap::new()),
            user: RefCell::new(None),
            reader: Cell::new(None),
            slow: Cell::new(false),
            in_batch: Cell::new(false),
            write_fd: Cell::new(-1),
        }
    }

    /// Queue a text message (an owned frame).
    pub fn send_text(&self, text: &str) {
        crate::debug!(
            "[app {}] Message Sent {} {}",
            self.app.id(),
            self.socket_id,
            crate::connection::protocol::preview(text.as_bytes())
        );
        self.send(Frame::Owned(frame::text_frame(text.as_bytes())));
    }

    /// Queue a ready frame; a consumer over its bound is closed as slow.
    pub fn send(&self, frame: Frame) {
        if self.outbox.push(frame) == Pushed::Overflow {
            self.close_as_slow();
        }
    }

    /// `send` without waking the writer: the write batch sends it.
    pub(crate) fn send_quietly(&self, frame: Frame) -> Pushed {
        let pushed = self.outbox.push_quietly(frame);
        if pushed == Pushed::Overflow {
            self.close_as_slow();
        }
        pushed
    }

    fn close_as_slow(&self) {
        crate::debug!(
            "[app {}] Slow consumer closed {}",
            self.app.id(),
            self.socket_id
        );
        self.slow.set(true);
        let (code, reason) = close::SLOW_CONSUMER;
        self.outbox
            .seal(Frame::Owned(frame::close_frame(code, reason)), true);
        self.wake_reader();
    }

    /// Send `pusher:error`.
    pub fn send_error(&self, error: PusherError) {
        self.send_text(&messages::error(error));
    }

    /// Send a Close frame after whatever is queued, then end the connection.
    pub fn close(&self, code: u16, reason: &str) {
        self.outbox
            .seal(Frame::Owned(frame::close_frame(code, reason)), false);
        self.wake_reader();
    }

    /// `pusher:error` followed by a Close frame with the same code.
    pub fn refuse(&self, error: PusherError) {
        self.send_error(error);
        self.close(error.code(), error.message());
    }

    /// The user this connection signed in as.
    pub fn signed_in_user(&self) -> Option<String> {
        self.user.borrow().clone()
    }

    /// Whether the connection was closed as a slow consumer.
    pub fn closed_as_slow(&self) -> bool {
        self.slow.get()
    }

    pub fn is_closing(&self) -> bool {
        self.outbox.is_sealed()
    }

    pub fn touch(&self, now: Instant) {
        self.last_seen.set(now);
        self.pinged_at.set(None);
    }

    pub fn enter_control_mode(&self) {
        self.control_mode.set(true);
    }

    /// The heartbeat rule of websocket.md §6.1, checked about once a second.
    pub fn heartbeat(&self, now: Instant) {
        if self.is_closing() {
            return;
        }
        self.outbox.trim();
        let interval = std::time::Duration::from_secs(self.app.config.ping_interval);
        match self.pinged_at.get() {
            None if now.duration_since(self.last_seen.get()) >= interval => {
                crate::debug!(
                    "[app {}] Connection Pinged {}",
                    self.app.id(),
                    self.socket_id
                );
                if self.control_mode.get() {
                    self.send(Frame::Owned(frame::ping_frame(b"")));
                } else {
                    self.send_text(messages::PING);
                }
                self.pinged_at.set(Some(now));
            }
            Some(pinged) if now.duration_since(pinged) >= interval => {
                crate::debug!(
                    "[app {}] Connection Pruned {}",
                    self.app.id(),
                    self.socket_id
                );
                self.refuse(PusherError::PongNotReceived);
            }
            _ => {}
        }
    }

    pub(crate) fn set_reader_waker(&self, waker: &Waker) {
        outbox::remember(&self.reader, waker);
    }

    fn wake_reader(&self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }
}
