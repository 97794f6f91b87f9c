//! One shard's counters: plain `Cell<u64>`s owned by the shard's state and touched only
//! by its thread, so counting a message is an add in memory the shard already owns —
//! no atomic, no lock, no allocation (design invariant 2). A scrape or a Pulse flush
//! reads them on the shard itself and ships copies.

use std::cell::{Cell, RefCell};

use super::http::ApiRoute;
use crate::connection::outbox::Frame;

/// The counters of one app on one shard. Monotonic for the life of the process.
#[derive(Debug, Default)]
pub struct AppCounters {
    /// Messages from clients that were handled (passed the rate limit, parsed as a
    /// Pusher message).
    pub received: Cell<u64>,
    /// Data frames (text or binary) written to clients: events, acks, errors, pongs.
    pub sent: Cell<u64>,
    /// Bytes read from the app's WebSocket connections (frames as on the wire).
    pub bytes_in: Cell<u64>,
    /// Bytes written to them, every frame included.
    pub bytes_out: Cell<u64>,
    /// Messages refused by the app's rate limit.
    pub rate_limited: Cell<u64>,
    /// Connections closed because their outbound queue went over `outbound_buffer`.
    pub slow_consumers: Cell<u64>,
}

/// Every counter of one shard.
#[derive(Debug)]
pub struct ShardMetrics {
    /// Indexed by `App::index`.
    apps: Box<[AppCounters]>,
    /// HTTP API answers: (route, status) → count. A handful of entries, found by a
    /// linear scan; an entry is allocated the first time a pair is seen, never again.
    http: RefCell<Vec<(ApiRoute, u16, u64)>>,
}

/// First byte of a WebSocket frame: FIN, RSV and the opcode in the low nibble.
const OPCODE_MASK: u8 = 0x0f;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;

impl ShardMetrics {
    pub fn new(apps: usize) -> ShardMetrics {
        ShardMetrics {
            apps: (0..apps).map(|_| AppCounters::default()).collect(),
            http: RefCell::new(Vec::new()),
        }
    }

    /// The counters of app `index` (`None` only for an index outside the app table).
    #[inline]
    pub fn app(&self, index: usize) -> Option<&AppCounters> {
        self.apps.get(index)
    }

    pub fn apps(&self) -> &[AppCounters] {
        &self.apps
    }

    /// A client message was handled.
    #[inline]
    pub fn received(&self, app: usize) {
        if let Some(c) = self.app(app) {
            bump(&c.received, 1);
        }
    }

    /// Bytes arrived on one of the app's connections.
    #[inline]
    pub fn bytes_in(&self, app: usize, n: usize) {
        if let Some(c) = self.app(app) {
            bump(&c.bytes_in, n as u64);
        }
    }

    /// A frame was written to a client: its bytes always count, and it is a sent
    /// message when it carries data (control frames — ping, pong, close — are not
    /// messages, as in Reverb, where only `send` is counted).
    #[inline]
    pub fn frame_out(&self, app: usize, frame: &Frame) {
        if let Some(c) = self.app(app) {
            bump(&c.bytes_out, frame.len() as u64);
            if matches!(
                frame.first().map(|b| b & OPCODE_MASK),
                Some(OP_TEXT | OP_BINARY)
            ) {
                bump(&c.sent, 1);
            }
        }
    }

    /// A message was refused by the rate limit.
    #[inline]
    pub fn rate_limited(&self, app: usize) {
        if let Some(c) = self.app(app) {
            bump(&c.rate_limited, 1);
        }
    }

    /// A connection was closed as a slow consumer.
    pub fn slow_consumer(&self, app: usize) {
        if let Some(c) = self.app(app) {
            bump(&c.slow_consumers, 1);
        }
    }

    /// An HTTP API request was answered with `status`.
    pub fn http(&self, route: ApiRoute, status: u16) {
        let mut http = self.http.borrow_mut();
        match http
            .iter_mut()
            .find(|(r, s, _)| *r == route && *s == status)
        {
            Some((_, _, n)) => *n += 1,
            None => http.push((route, status, 1)),
        }
    }

    /// The HTTP API counts so far.
    pub fn http_counts(&self) -> Vec<(ApiRoute, u16, u64)> {
        self.http.borrow().clone()
    }
}

#[inline]
fn bump(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().wrapping_add(n));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame;

    #[test]
    fn data_frames_are_messages_and_control_frames_only_bytes() {
        let m = ShardMetrics::new(2);
        let text = Frame::Owned(frame::text_frame(b"{\"event\":\"x\"}"));
        let pong = Frame::Owned(frame::pong_frame(b"abc"));
        let close = Frame::Owned(frame::close_frame(4100, "Slow consumer"));
        m.frame_out(1, &text);
        m.frame_out(1, &pong);
        m.frame_out(1, &close);
        let c = m.app(1).unwrap();
        assert_eq!(c.sent.get(), 1);
        assert_eq!(
            c.bytes_out.get(),
            (text.len() + pong.len() + close.len()) as u64
        );
        assert_eq!(m.app(0).unwrap().sent.get(), 0);
        // An index outside the table is ignored, never a panic.
        m.frame_out(7, &text);
        m.received(7);
    }

    #[test]
    fn http_counts_by_route_and_status() {
        let m = ShardMetrics::new(1);
        m.http(ApiRoute::Events, 200);
        m.http(ApiRoute::Events, 200);
        m.http(ApiRoute::Events, 401);
        m.http(ApiRoute::Channels, 200);
        let mut counts = m.http_counts();
        counts.sort();
        assert_eq!(
            counts,
            vec![
                (ApiRoute::Events, 200, 2),
                (ApiRoute::Events, 401, 1),
                (ApiRoute::Channels, 200, 1)
            ]
        );
    }
}
