//! A WebSocket session from the `101` to the closed socket: admission (app, quota,
//! origin), then one task per connection that reads, writes and closes.
//!
//! The reader and the writer are two halves of that one task (polled together), not
//! two tasks: an idle connection then costs one task allocation holding the socket
//! and both halves' small states, which is most of what it costs at all.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::os::unix::io::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};

use super::outbox::{Frame, Outbox, EMPTY_IOVEC};
use super::stream::Stream;
use super::Connection;
use crate::pusher::errors::PusherError;
use crate::pusher::{messages, origin};
use crate::server::shard::ShardState;
use crate::ws::frame::{self, Decoder, Message};

/// How long a closing connection may take to flush its last frames and for the peer
/// to answer the Close before the socket is cut.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// The socket, shared by the two halves of the session; each borrows it only inside
/// a poll, never across an await.
type SharedStream = RefCell<Stream>;

/// The writer's "I am done" flag, with the closing half waiting on it.
#[derive(Default)]
struct WriterDone {
    done: Cell<bool>,
    waiter: Cell<Option<Waker>>,
}

impl WriterDone {
    fn finish(&self) {
        self.done.set(true);
        if let Some(w) = self.waiter.take() {
            w.wake();
        }
    }

    async fn wait(&self) {
        poll_fn(|cx| {
            if self.done.get() {
                Poll::Ready(())
            } else {
                self.waiter.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

/// Admit an upgraded socket and start its session task. Refused connections (unknown
/// app, over quota, origin not allowed) still get a task that writes the refusal.
pub fn start(
    shard: Rc<ShardState>,
    stream: Stream,
    key: &str,
    origin_header: Option<&str>,
    leftover: Vec<u8>,
) {
    let (conn, admitted) = admit(&shard, key, origin_header);
    // The writer and reader halves take turns with the socket, each borrowing it only
    // inside a poll.
    let stream = RefCell::new(stream);
    glommio::spawn_local(drive(shard, conn, stream, leftover, admitted)).detach();
}

/// The connection, and whether it was admitted (registered on the shard).
fn admit(shard: &ShardState, key: &str, origin_header: Option<&str>) -> (Rc<Connection>, bool) {
    let socket_id = shard.mint_socket_id();
    let outbound = shard.settings.outbound_buffer;
    let Some(app) = shard.apps.by_key(key).cloned() else {
        // No app: still a Connection, so the refusal goes through the same writer.
        let conn = Rc::new(Connection::new(
            socket_id,
            unknown_app_placeholder(shard),
            outbound,
        ));
        conn.refuse(PusherError::AppDoesNotExist);
        return (conn, false);
    };
    let conn = Rc::new(Connection::new(socket_id, app.clone(), outbound));
    if !app.try_admit() {
        conn.refuse(PusherError::OverQuota);
        return (conn, false);
    }
    if !origin::allowed(&app.config.allowed_origins, origin_header) {
        app.release();
        conn.refuse(PusherError::OriginNotAllowed);
        return (conn, false);
    }
    shard
        .connections
        .borrow_mut()
        .insert(socket_id, conn.clone());
    crate::debug!(
        "[shard {}] [app {}] Connection Established {socket_id}",
        shard.id,
        app.id()
    );
    conn.send_text(&messages::connection_established(
        socket_id,
        app.config.activity_timeout,
    ));
    (conn, true)
}

/// The session task: the writer and the reader until the socket is closed; `admitted`
/// connections are unregistered at the end.
#[allow(clippy::manual_async_fn)] // on purpose: see the first comment inside
fn drive(
    shard: Rc<ShardState>,
    conn: Rc<Connection>,
    stream: SharedStream,
    mut pending: Vec<u8>,
    admitted: bool,
) -> impl Future<Output = ()> {
    // `async` blocks rather than `async fn`s, here and in `read_loop`: a block keeps
    // what it captures in one place, where an async fn would also copy each argument
    // into a local of its own, in every idle connection's task.
    async move {
        let done = WriterDone::default();
        futures_lite::future::zip(
            // The writer: what the outbox holds until it is sealed and empty, then FIN
            // (with TLS, close_notify first). Only admitted connections count in the
            // metrics (a refusal has no real app).
            async {
                if admitted && !stream.borrow().buffers_writes() {
                    // Broadcasts may now be written by the shard's write batch too.
                    conn.write_fd.set(stream.borrow().as_raw_fd());
                }
                let flushed =
                    poll_fn(|cx| poll_write_outbox(&shard, &conn, &stream, admitted, cx)).await;
                // Before the socket can close (it lives until both halves are done; a
                // task is only ever dropped unfinished with its executor, when no
                // flusher runs any more).
                conn.write_fd.set(-1);
                if flushed.is_err() {
                    conn.outbox.abandon();
                }
                let _ = poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_close(cx)).await;
                done.finish();
            },
            // The reader, until the connection ends; then the close: let the writer
            // flush the Close frame, wait for the peer's answer, cut the socket and
            // unregister.
            async {
                if admitted {
                    read_loop(&shard, &conn, &stream, &mut pending).await;
                }
                if !conn.is_closing() {
                    conn.outbox.abandon();
                }
                let flushed = crate::connection::accept::with_timeout(CLOSE_LINGER, done.wait())
                    .await
                    .is_some();
                if flushed {
                    drain_until_eof(&shard, &stream, CLOSE_LINGER).await;
                }
                // Also ends a writer still blocked on a peer that never reads.
                shutdown_both(&stream);
                if admitted {
                    unregister(&shard, &conn);
                }
            },
        )
        .await;
    }
}

fn unregister(shard: &Rc<ShardState>, conn: &Rc<Connection>) {
    crate::channels::subscribe::leave_all(shard, conn);
    shard.connections.borrow_mut().remove(&conn.socket_id);
    conn.app.release();
    if conn.closed_as_slow() {
        shard.metrics.counters.slow_consumer(conn.app.index);
    }
    crate::debug!(
        "[shard {}] [app {}] Connection Closed {}",
        shard.id,
        conn.app.id(),
        conn.socket_id
    );
}

/// `pending`: bytes of an incomplete frame (at first, what followed the request).
#[allow(clippy::manual_async_fn)] // not an async fn on purpose: see `drive`
fn read_loop<'a>(
    shard: &'a Rc<ShardState>,
    conn: &'a Rc<Connection>,
    stream: &'a SharedStream,
    pending: &'a mut Vec<u8>,
) -> impl Future<Output = ()> + 'a {
    async move {
        let mut decoder = Decoder::new(conn.app.config.max_message_size);
        let mut messages = Vec::new();
        let mut fresh = 0;
        loop {
            // Decode what arrived (in the shard's scratch buffer) plus any partial frame.
            let outcome = {
                let scratch = shard.scratch.borrow();
                decode_all(&mut decoder, pending, &scratch[..fresh], &mut messages)
            };
            if fresh > 0 || !messages.is_empty() {
                conn.touch(Instant::now());
            }
            // Popped from the back of the reversed list: unlike a `drain(..)` iterator,
            // nothing but the list itself is held across the await.
            messages.reverse();
            while let Some(message) = messages.pop() {
                if let Some(rest) = on_frame(shard, conn, message) {
                    rest.await;
                }
            }
            if let Err(violation) = outcome {
                conn.close(violation.close_code(), violation.reason());
            }
            if conn.is_closing() {
                return;
            }
            if conn.outbox.queued_bytes() > 0 {
                // Let the writer flush what these messages queued before reading more:
                // reads complete synchronously while input is waiting, so without this turn
                // a client that pipelines requests (and reads every answer) fills its outbox
                // faster than the writer ever runs and is closed as a slow consumer.
                futures_lite::future::yield_now().await;
            }
            fresh = match read_into_scratch(shard, conn, stream).await {
                Some(0) | None => return,
                Some(n) => {
                    shard.metrics.counters.bytes_in(conn.app.index, n);
                    n
                }
            };
        }
    }
}

/// One read into the shard-wide scratch buffer. `None` when the connection started
/// closing meanwhile, `Some(0)` at EOF or on an error.
fn read_into_scratch<'a>(
    shard: &'a ShardState,
    conn: &'a Connection,
    stream: &'a SharedStream,
) -> impl Future<Output = Option<usize>> + 'a {
    poll_fn(move |cx| {
        if conn.is_closing() {
            return Poll::Ready(None);
        }
        conn.set_reader_waker(cx.waker());
        let mut scratch = shard.scratch.borrow_mut();
        let mut stream = stream.borrow_mut();
        match Pin::new(&mut *stream).poll_read(cx, &mut scratch[..]) {
            Poll::Ready(Ok(n)) => Poll::Ready(Some(n)),
            Poll::Ready(Err(_)) => Poll::Ready(Some(0)),
            Poll::Pending => Poll::Pending,
        }
    })
}

/// Decode every complete frame of `pending ++ fresh`; keep the incomplete tail in
/// `pending`. Frames before a violation are still returned.
fn decode_all(
    decoder: &mut Decoder,
    pending: &mut Vec<u8>,
    fresh: &[u8],
    out: &mut Vec<Message>,
) -> Result<(), frame::Violation> {
    if pending.is_empty() {
        // Common case: whole frames straight from the scratch buffer, no copy.
        let used = decode_slice(decoder, fresh, out)?;
        pending.extend_from_slice(&fresh[used..]);
        return Ok(());
    }
    pending.extend_from_slice(fresh);
    let used = decode_slice(decoder, pending, out);
    let used = used?;
    pending.drain(..used);
    if pending.is_empty() {
        // Give back the memory of a large partial frame once it is complete.
        pending.shrink_to(0);
    }
    Ok(())
}

fn decode_slice(
    decoder: &mut Decoder,
    input: &[u8],
    out: &mut Vec<Message>,
) -> Result<usize, frame::Violation> {
    let mut used = 0;
    loop {
        let (n, message) = decoder.decode(&input[used..])?;
        used += n;
        if let Some(message) = message {
            out.push(message);
        }
        if n == 0 || used == input.len() {
            return Ok(used);
        }
    }
}

fn on_frame<'a>(
    shard: &'a Rc<ShardState>,
    conn: &'a Rc<Connection>,
    message: Message,
) -> Option<super::protocol::Continuation<'a>> {
    if conn.is_closing() {
        return None;
    }
    match message {
        Message::Text(payload) | Message::Binary(payload) => {
            return super::protocol::on_message(shard, conn, &payload)
        }
        Message::Ping(payload) => {
            crate::debug!(
                "[shard {}] [app {}] Control Frame Received {} ping",
                shard.id,
                conn.app.id(),
                conn.socket_id
            );
            conn.enter_control_mode();
            conn.send(Frame::Owned(frame::pong_frame(&payload)));
        }
        Message::Pong(_) => {
            crate::debug!(
                "[shard {}] [app {}] Control Frame Received {} pong",
                shard.id,
                conn.app.id(),
                conn.socket_id
            );
            conn.enter_control_mode();
        }
        Message::Close(status) => {
            let (code, reason) = status.unwrap_or((1000, String::new()));
            conn.close(code, &reason);
        }
    }
    None
}

/// Write queued frames until the outbox is sealed and empty (`Ready(Ok)`) or the
/// socket fails. Frames leave the outbox only once fully written, so the writer's own
/// state is nothing but this poll: an idle connection holds no frame and no buffer.
fn poll_write_outbox(
    shard: &ShardState,
    conn: &Connection,
    stream: &SharedStream,
    counted: bool,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<()>> {
    let count = |frame: &Frame| {
        if counted {
            shard.metrics.counters.frame_out(conn.app.index, frame);
        }
    };
    loop {
        let mut stream = stream.borrow_mut();
        if !conn.outbox.has_ready() && stream.buffers_writes() {
            // rustls may hold the tail of the last frame until flushed.
            ready!(Pin::new(&mut *stream).poll_flush(cx))?;
        }
        if !ready!(conn.outbox.poll_ready(cx)) {
            return Poll::Ready(Ok(()));
        }
        // Whatever piled up while this half waited goes out in one gathered write
        // (plain TCP): one system call per wake-up instead of one per frame.
        let n = if stream.buffers_writes() {
            0
        } else {
            gathered_write(stream.as_raw_fd(), &conn.outbox)?
        };
        let n = if n > 0 {
            n
        } else {
            // TLS, or the socket is full: the stream's own write, which waits for room.
            let mut wrote = Poll::Pending;
            conn.outbox.unwritten(1, |head| {
                wrote = Pin::new(&mut *stream).poll_write(cx, head);
            });
            match ready!(wrote)? {
                0 => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                n => n,
            }
        };
        conn.outbox.consume(n, count);
    }
}

/// Frames gathered into one write at most.
const GATHER: usize = 64;

/// One non-blocking gathered write (`sendmsg`) of the outbox's first frames; how many
/// bytes the socket took (0 when it was full).
fn gathered_write(fd: std::os::unix::io::RawFd, outbox: &Outbox) -> std::io::Result<usize> {
    let mut iov = [EMPTY_IOVEC; GATHER];
    let count = outbox.unwritten_iovecs(&mut iov);
    // SAFETY: every iovec points into a frame the outbox holds until `consume` (after
    // this call). The accepted socket itself is blocking (glommio sends with
    // MSG_DONTWAIT instead), so the flag is what keeps a full socket from stalling the
    // shard.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = count as _;
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    if n >= 0 {
        return Ok(n as usize);
    }
    let e = std::io::Error::last_os_error();
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(0),
        _ => Err(e),
    }
}

/// Read and discard until the peer closes or `limit` passes.
fn drain_until_eof<'a>(
    shard: &'a ShardState,
    stream: &'a SharedStream,
    limit: Duration,
) -> impl Future<Output = ()> + 'a {
    let deadline = Instant::now() + limit;
    async move {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let read = crate::connection::accept::with_timeout(
                left,
                poll_fn(|cx| {
                    let mut scratch = shard.scratch.borrow_mut();
                    Pin::new(&mut *stream.borrow_mut()).poll_read(cx, &mut scratch[..])
                }),
            )
            .await;
            match read {
                Some(Ok(n)) if n > 0 => continue,
                _ => return,
            }
        }
    }
}

fn shutdown_both(stream: &SharedStream) {
    let _ = unsafe { libc::shutdown(stream.borrow().as_raw_fd(), libc::SHUT_RDWR) };
}

/// Refusals of unknown keys need an `App` for the connection's bookkeeping; any
/// configured app will do since nothing of it is used or counted.
fn unknown_app_placeholder(shard: &ShardState) -> std::sync::Arc<crate::app::App> {
    shard
        .apps
        .iter()
        .next()
        .expect("at least one app is configured")
        .clone()
}
#[cfg(test)]
mod tests {
    fn future_size5<A, B, C, D, E, F: std::future::Future>(
        _: impl FnOnce(A, B, C, D, E) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every idle connection holds its session task's future (the reader and the
    /// writer halves together): keep it small (rare, large states such as a
    /// subscription are boxed while they run). With glommio's task header (about 48
    /// bytes) it must fit the allocator's 640-byte class. Was 5,344 + 1,296 bytes in
    /// two tasks before the session got its own task, 896 + 272 before the writer
    /// joined it, 840 before the async fns became async blocks.
    #[test]
    fn an_idle_connection_holds_a_small_task_state() {
        let session = future_size5(super::drive);
        assert!(session <= 592, "session future: {session} bytes");
    }
}
