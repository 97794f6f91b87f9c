//! A WebSocket session from the `101` to the closed socket: admission (app, quota,
//! origin), the reader loop, the writer task, and the closing handshake.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::os::unix::io::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};

use super::outbox::Frame;
use super::stream::Stream;
use super::Connection;
use crate::pusher::errors::PusherError;
use crate::pusher::{messages, origin};
use crate::server::shard::ShardState;
use crate::ws::frame::{self, Decoder, Message};

/// How long a closing connection may take to flush its last frames and for the peer
/// to answer the Close before the socket is cut.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

type SharedStream = Rc<RefCell<Stream>>;

/// The writer's "I am done" flag, with the reader waiting on it.
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

pub async fn run(
    shard: Rc<ShardState>,
    stream: Stream,
    key: &str,
    origin_header: Option<&str>,
    leftover: Vec<u8>,
) {
    let stream: SharedStream = Rc::new(RefCell::new(stream));
    let socket_id = shard.mint_socket_id();
    let outbound = shard.settings.outbound_buffer;

    let Some(app) = shard.apps.by_key(key).cloned() else {
        // No app: still a Connection, so the refusal goes through the same writer.
        let conn = Rc::new(Connection::new(
            socket_id,
            unknown_app_placeholder(&shard),
            outbound,
        ));
        conn.refuse(PusherError::AppDoesNotExist);
        return drive(&shard, conn, stream, leftover, false).await;
    };
    let conn = Rc::new(Connection::new(socket_id, app.clone(), outbound));
    if !app.try_admit() {
        conn.refuse(PusherError::OverQuota);
        return drive(&shard, conn, stream, leftover, false).await;
    }
    if !origin::allowed(&app.config.allowed_origins, origin_header) {
        app.release();
        conn.refuse(PusherError::OriginNotAllowed);
        return drive(&shard, conn, stream, leftover, false).await;
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
    drive(&shard, conn, stream, leftover, true).await;
}

/// Run the writer and the reader until the socket is closed; `admitted` connections
/// are unregistered at the end.
async fn drive(
    shard: &Rc<ShardState>,
    conn: Rc<Connection>,
    stream: SharedStream,
    leftover: Vec<u8>,
    admitted: bool,
) {
    let done = Rc::new(WriterDone::default());
    // Only admitted connections count in the metrics (a refusal has no real app).
    let counted = admitted.then(|| shard.clone());
    glommio::spawn_local(write_loop(
        conn.clone(),
        stream.clone(),
        done.clone(),
        counted,
    ))
    .detach();
    if admitted {
        read_loop(shard, &conn, &stream, leftover).await;
    }
    // Closing: let the writer flush the Close frame, then wait for the peer's answer.
    if !conn.is_closing() {
        conn.outbox.abandon();
    }
    let flushed = crate::connection::accept::with_timeout(CLOSE_LINGER, done.wait())
        .await
        .is_some();
    if flushed {
        drain_until_eof(shard, &stream, CLOSE_LINGER).await;
    }
    shutdown_both(&stream);
    if admitted {
        crate::channels::subscribe::leave_all(shard, &conn);
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
}

async fn read_loop(
    shard: &Rc<ShardState>,
    conn: &Rc<Connection>,
    stream: &SharedStream,
    leftover: Vec<u8>,
) {
    let mut decoder = Decoder::new(conn.app.config.max_message_size);
    let mut pending = leftover;
    let mut messages = Vec::new();
    let mut fresh = 0;
    loop {
        // Decode what arrived (in the shard's scratch buffer) plus any partial frame.
        let outcome = {
            let scratch = shard.scratch.borrow();
            decode_all(&mut decoder, &mut pending, &scratch[..fresh], &mut messages)
        };
        if fresh > 0 || !messages.is_empty() {
            conn.touch(Instant::now());
        }
        for message in messages.drain(..) {
            on_frame(shard, conn, message).await;
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

/// One read into the shard-wide scratch buffer. `None` when the connection started
/// closing meanwhile, `Some(0)` at EOF or on an error.
async fn read_into_scratch(
    shard: &ShardState,
    conn: &Connection,
    stream: &SharedStream,
) -> Option<usize> {
    poll_fn(|cx| {
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
    .await
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

async fn on_frame(shard: &Rc<ShardState>, conn: &Rc<Connection>, message: Message) {
    if conn.is_closing() {
        return;
    }
    match message {
        Message::Text(payload) | Message::Binary(payload) => {
            super::protocol::on_message(shard, conn, &payload).await
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
}

/// `counted`: the shard whose metrics count what is written (`None`: not counted).
async fn write_loop(
    conn: Rc<Connection>,
    stream: SharedStream,
    done: Rc<WriterDone>,
    counted: Option<Rc<ShardState>>,
) {
    // Frames that piled up while this task waited for its turn go out in one
    // `writev` (plain TCP): one system call per wake-up instead of one per frame.
    let mut batch: Vec<Frame> = Vec::new();
    while let Some(frame) = poll_fn(|cx| conn.outbox.poll_next(cx)).await {
        batch.clear();
        batch.push(frame);
        if !stream.borrow().buffers_writes() {
            conn.outbox.take_ready(&mut batch, GATHER);
        }
        if write_batch(&stream, &batch).await.is_err() {
            conn.outbox.abandon();
            break;
        }
        if let Some(shard) = &counted {
            for frame in &batch {
                shard.metrics.counters.frame_out(conn.app.index, frame);
            }
        }
    }
    drop(batch);
    // Our side is finished: FIN after the last (Close) frame; with TLS, close_notify
    // before it.
    let _ = poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_close(cx)).await;
    done.finish();
}

/// Frames gathered into one `writev` at most.
const GATHER: usize = 64;

/// Write every frame of `batch`, in order: one `writev` for as much as the socket takes
/// at once, the rest (if any) with the stream's own waiting writes.
async fn write_batch(stream: &SharedStream, batch: &[Frame]) -> std::io::Result<()> {
    if batch.len() == 1 {
        return write_all(stream, &batch[0]).await;
    }
    let mut written = gathered_write(stream.borrow().as_raw_fd(), batch)?;
    for frame in batch {
        if written >= frame.len() {
            written -= frame.len();
            continue;
        }
        write_all(stream, &frame[written..]).await?;
        written = 0;
    }
    Ok(())
}

/// One non-blocking `writev` of `batch`; how many bytes the socket took (0 when it
/// was full). Not async, so the iovec array never lives in the writer task's state.
fn gathered_write(fd: std::os::unix::io::RawFd, batch: &[Frame]) -> std::io::Result<usize> {
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; GATHER];
    for (slot, frame) in iov.iter_mut().zip(batch) {
        slot.iov_base = frame.as_ptr() as *mut libc::c_void;
        slot.iov_len = frame.len();
    }
    let count = batch.len().min(GATHER) as libc::c_int;
    // SAFETY: every iovec points into a frame that `batch` keeps alive for the call;
    // the socket is non-blocking, so this never stalls the shard.
    let n = unsafe { libc::writev(fd, iov.as_ptr(), count) };
    if n >= 0 {
        return Ok(n as usize);
    }
    let e = std::io::Error::last_os_error();
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(0),
        _ => Err(e),
    }
}

async fn write_all(stream: &SharedStream, bytes: &[u8]) -> std::io::Result<()> {
    let mut written = 0;
    while written < bytes.len() {
        let n = poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_write(cx, &bytes[written..]))
            .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        written += n;
    }
    if stream.borrow().buffers_writes() {
        // rustls may hold the tail of the frame until flushed; nothing else would
        // send it while the outbox is empty.
        poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_flush(cx)).await?;
    }
    Ok(())
}

/// Read and discard until the peer closes or `limit` passes.
async fn drain_until_eof(shard: &ShardState, stream: &SharedStream, limit: Duration) {
    let deadline = Instant::now() + limit;
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

fn shutdown_both(stream: &SharedStream) {
    // Also wakes a writer still blocked on a peer that never reads.
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
    /// The size of the future an async fn with these argument types returns.
    fn future_size<A, B, C, D, F: std::future::Future>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    fn future_size5<A, B, C, D, E, F: std::future::Future>(
        _: impl FnOnce(A, B, C, D, E) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every idle connection holds its reader and writer tasks' futures: keep them
    /// small (rare, large states such as a subscription are boxed while they run).
    /// Was 5,344 + 1,296 bytes before the session got its own task.
    #[test]
    fn an_idle_connection_holds_small_task_states() {
        let reader = future_size5(super::run);
        let writer = future_size(super::write_loop);
        assert!(reader <= 1536, "session future: {reader} bytes");
        assert!(writer <= 512, "writer future: {writer} bytes");
    }
}
