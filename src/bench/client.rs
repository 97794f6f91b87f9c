//! The WebSocket client the scenarios drive: one [`Conn`] per connection on a client
//! executor. It does the RFC 6455 handshake itself, sends masked frames and reads the
//! server's frames in place from the shard's scratch buffer (frame codec of
//! `crate::ws::frame`): a message that arrives whole is handed to the caller as a slice
//! of that buffer, without a copy or an allocation; only a frame split across reads
//! is kept per connection. Server pings (`pusher:ping` messages and Ping frames) are
//! answered here, so long runs stay connected to any server.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use memchr::memmem;
use serde_json::Value;

use super::dial;
use super::fail::Fail;
use crate::ws::frame::{self, Opcode};

/// The per-executor read buffer every connection of that executor reads into.
pub type Scratch = RefCell<Vec<u8>>;

/// Size of the per-executor read buffer.
pub const SCRATCH_BYTES: usize = 256 << 10;

/// Largest server message accepted (a guard against a garbled length).
const MAX_MESSAGE: u64 = 64 << 20;

/// Largest handshake answer accepted.
const MAX_HANDSHAKE: usize = 16 << 10;

/// What a client sends in answer to `pusher:ping`.
const PONG: &[u8] = br#"{"event":"pusher:pong","data":{}}"#;

static PUSHER_PING: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\"pusher:ping\""));

/// How to reach one server's WebSocket endpoint, prepared once per `--url`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Request target: `{prefix}/app/{key}?protocol=7&...`.
    pub path: String,
    pub origin: Option<String>,
}

/// One client connection.
pub struct Conn {
    stream: RefCell<TcpStream>,
    /// The start of a frame whose end has not arrived yet.
    pending: RefCell<Vec<u8>>,
    /// A fragmented message being assembled (servers rarely fragment).
    fragments: RefCell<Vec<u8>>,
    /// Messages read by [`Conn::recv_text`] but not yet returned (setup only).
    inbox: RefCell<VecDeque<Vec<u8>>>,
    /// Frames queued for sending, and the buffer being written.
    out: RefCell<Vec<u8>>,
    spare: RefCell<Vec<u8>>,
    flushing: Cell<bool>,
    /// We sent our Close: do not answer the server's with another.
    close_sent: Cell<bool>,
    /// How the connection ended, when messages read before the end are still in
    /// `inbox`: they are returned first, then this.
    deferred_end: RefCell<Option<Fail>>,
}

impl Conn {
    /// TCP connect (from `source` when given), then the opening handshake; every step
    /// within `limit`.
    pub async fn open(
        endpoint: &Endpoint,
        source: Option<Ipv4Addr>,
        limit: Duration,
        scratch: &Scratch,
    ) -> Result<Rc<Conn>, Fail> {
        let stream = dial::dial(endpoint.addr, source, limit).await?;
        let conn = Rc::new(Conn {
            stream: RefCell::new(stream),
            pending: RefCell::new(Vec::new()),
            fragments: RefCell::new(Vec::new()),
            inbox: RefCell::new(VecDeque::new()),
            out: RefCell::new(Vec::new()),
            spare: RefCell::new(Vec::new()),
            flushing: Cell::new(false),
            close_sent: Cell::new(false),
            deferred_end: RefCell::new(None),
        });
        let deadline = Instant::now() + limit;
        within(deadline, "handshake", conn.handshake(endpoint, scratch)).await??;
        Ok(conn)
    }

    async fn handshake(&self, endpoint: &Endpoint, scratch: &Scratch) -> Result<(), Fail> {
        let key = handshake_key();
        let mut request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            endpoint.path, endpoint.host
        );
        if let Some(origin) = &endpoint.origin {
            request.push_str(&format!("Origin: {origin}\r\n"));
        }
        request.push_str("\r\n");
        self.out.borrow_mut().extend_from_slice(request.as_bytes());
        self.flush().await?;
        loop {
            let n = self.read_raw(scratch).await?;
            let mut pending = self.pending.borrow_mut();
            pending.extend_from_slice(&scratch.borrow()[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&pending) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = response.code.unwrap_or(0);
                    if status != 101 {
                        return Err(Fail::HandshakeStatus(status));
                    }
                    let accept = response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
                        .map(|h| h.value.trim_ascii());
                    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
                    if accept != Some(expected.as_bytes()) {
                        return Err(Fail::HandshakeInvalid("wrong Sec-WebSocket-Accept"));
                    }
                    // Frames that came with the answer stay for the first read.
                    pending.drain(..len);
                    return Ok(());
                }
                Ok(httparse::Status::Partial) if pending.len() < MAX_HANDSHAKE => {}
                Ok(httparse::Status::Partial) => {
                    return Err(Fail::HandshakeInvalid("answer too long"))
                }
                Err(_) => return Err(Fail::HandshakeInvalid("not an HTTP answer")),
            }
        }
    }

    /// Read until `pusher:connection_established`; returns the socket id.
    pub async fn established(&self, scratch: &Scratch, deadline: Instant) -> Result<String, Fail> {
        loop {
            let text = self
                .recv_text(scratch, deadline, "connection_established")
                .await?;
            let Some(msg) = parse(&text) else { continue };
            match msg.event.as_str() {
                "pusher:connection_established" => {
                    return msg
                        .data_json()
                        .and_then(|d| d["socket_id"].as_str().map(str::to_string))
                        .ok_or(Fail::Protocol("connection_established without a socket_id"));
                }
                "pusher:error" => return Err(msg.pusher_error()),
                _ => {}
            }
        }
    }

    /// Send `pusher:subscribe` (with `auth` and `channel_data` when given).
    pub async fn subscribe(
        &self,
        channel: &str,
        auth: Option<&str>,
        channel_data: Option<&str>,
    ) -> Result<(), Fail> {
        let mut data = serde_json::Map::new();
        data.insert("auth".into(), Value::from(auth.unwrap_or("")));
        if let Some(channel_data) = channel_data {
            data.insert("channel_data".into(), Value::from(channel_data));
        }
        data.insert("channel".into(), Value::from(channel));
        let msg = serde_json::json!({"event": "pusher:subscribe", "data": data});
        self.send_text(msg.to_string().as_bytes()).await
    }

    /// Send `pusher:unsubscribe`.
    pub async fn unsubscribe(&self, channel: &str) -> Result<(), Fail> {
        let msg = serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": channel}});
        self.send_text(msg.to_string().as_bytes()).await
    }

    /// Read until the subscription to `channel` is acknowledged; other messages are
    /// skipped. Returns the acknowledgment's `data` string.
    pub async fn subscribed(
        &self,
        channel: &str,
        scratch: &Scratch,
        deadline: Instant,
    ) -> Result<String, Fail> {
        loop {
            let text = self
                .recv_text(scratch, deadline, "subscription_succeeded")
                .await?;
            let Some(msg) = parse(&text) else { continue };
            match msg.event.as_str() {
                "pusher_internal:subscription_succeeded" if msg.channel == channel => {
                    return Ok(msg.data_string());
                }
                "pusher:error" => return Err(msg.pusher_error()),
                "pusher:subscription_error" if msg.channel.is_empty() || msg.channel == channel => {
                    let status = msg
                        .data_json()
                        .and_then(|d| d.get("status").map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown".into());
                    return Err(Fail::SubscriptionError(status));
                }
                _ => {}
            }
        }
    }

    /// The next whole text (or binary) message, read by this task itself (setup
    /// phases; allocates). `step` names the timeout.
    pub async fn recv_text(
        &self,
        scratch: &Scratch,
        deadline: Instant,
        step: &'static str,
    ) -> Result<Vec<u8>, Fail> {
        loop {
            if let Some(text) = self.inbox.borrow_mut().pop_front() {
                return Ok(text);
            }
            if let Some(end) = self.deferred_end.borrow_mut().take() {
                return Err(end);
            }
            let inbox = &self.inbox;
            let mut to_inbox = |t: &[u8]| inbox.borrow_mut().push_back(t.to_vec());
            // Bytes left from the handshake (or a previous read) first.
            if !self.pending.borrow().is_empty() {
                let outcome = self.process(&[], &mut to_inbox);
                let outcome = self.answer(outcome).await;
                if outcome.is_err() || !self.inbox.borrow().is_empty() {
                    self.defer(outcome)?;
                    continue;
                }
            }
            let outcome = within(deadline, step, self.read_some(scratch, to_inbox)).await?;
            self.defer(outcome)?;
        }
    }

    /// A connection that ended after delivering messages still owes them: keep the
    /// end for after the inbox (a server may send its last events and a Close in one
    /// segment, or before the client first reads).
    fn defer(&self, outcome: Result<(), Fail>) -> Result<(), Fail> {
        match outcome {
            Err(end) if !self.inbox.borrow().is_empty() => {
                *self.deferred_end.borrow_mut() = Some(end);
                Ok(())
            }
            other => other,
        }
    }

    /// Hand the messages already read by [`Conn::recv_text`] (and any bytes left
    /// from the handshake) to `on_text`: call once before a reader loop takes over.
    /// `Err` when the connection has already ended.
    pub fn take_buffered(&self, mut on_text: impl FnMut(&[u8])) -> Result<(), Fail> {
        let buffered: Vec<Vec<u8>> = self.inbox.borrow_mut().drain(..).collect();
        for text in buffered {
            on_text(&text);
        }
        if let Some(end) = self.deferred_end.borrow_mut().take() {
            return Err(end);
        }
        self.process(&[], &mut on_text)
    }

    /// Wait for bytes, then give every complete message to `on_text` (a slice of the
    /// scratch buffer when it arrived whole). `Err` when the connection ended: the
    /// server's Close (answered), EOF, or an error.
    pub async fn read_some(
        &self,
        scratch: &Scratch,
        mut on_text: impl FnMut(&[u8]),
    ) -> Result<(), Fail> {
        let n = self.read_raw(scratch).await?;
        let outcome = {
            let buf = scratch.borrow();
            self.process(&buf[..n], &mut on_text)
        };
        self.answer(outcome).await
    }

    /// Answer what the last frames asked for (pongs, the server's Close) and flush;
    /// returns `outcome`, the reason the connection ended winning over a failed write.
    async fn answer(&self, outcome: Result<(), Fail>) -> Result<(), Fail> {
        if let Err(Fail::Closed(code)) = &outcome {
            if !self.close_sent.replace(true) {
                // Answer the server's Close (RFC 6455 5.5.1) so it can finish at once.
                frame::encode_masked_into(
                    Opcode::Close,
                    &code.unwrap_or(1000).to_be_bytes(),
                    mask(),
                    &mut self.out.borrow_mut(),
                );
            }
        }
        if !self.out.borrow().is_empty() {
            let flushed = self.flush().await;
            // The reason the connection ended wins over a failed last write.
            outcome.clone()?;
            flushed?;
        }
        outcome
    }

    async fn read_raw(&self, scratch: &Scratch) -> Result<usize, Fail> {
        let n = poll_fn(|cx| {
            let mut buf = scratch.borrow_mut();
            Pin::new(&mut *self.stream.borrow_mut()).poll_read(cx, &mut buf[..])
        })
        .await
        .map_err(|e| Fail::from_io(&e))?;
        if n == 0 {
            return Err(Fail::Eof);
        }
        Ok(n)
    }

    /// Decode `pending ++ fresh`, keeping an incomplete tail in `pending`.
    fn process(&self, fresh: &[u8], on_text: &mut impl FnMut(&[u8])) -> Result<(), Fail> {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            let used = self.frames(fresh, on_text)?;
            pending.extend_from_slice(&fresh[used..]);
            return Ok(());
        }
        pending.extend_from_slice(fresh);
        let used = self.frames(&pending, on_text)?;
        pending.drain(..used);
        if pending.is_empty() && pending.capacity() > 64 << 10 {
            pending.shrink_to(0);
        }
        Ok(())
    }

    /// Handle every whole frame at the front of `data`; returns the bytes used.
    fn frames(&self, data: &[u8], on_text: &mut impl FnMut(&[u8])) -> Result<usize, Fail> {
        let mut pos = 0;
        while let Some(head) = frame::frame_head(&data[pos..]) {
            if head.payload_len > MAX_MESSAGE {
                return Err(Fail::Protocol("frame longer than 64 MiB"));
            }
            let end = pos + head.frame_len() as usize;
            if end > data.len() {
                break;
            }
            if head.masked {
                return Err(Fail::Protocol("masked server frame"));
            }
            if head.rsv {
                return Err(Fail::Protocol("reserved bits set"));
            }
            let payload = &data[pos + head.header_len..end];
            pos = end;
            match head.opcode {
                Some(Opcode::Text | Opcode::Binary) if self.fragments.borrow().is_empty() => {
                    if head.fin {
                        self.message(payload, on_text);
                    } else {
                        self.fragments.borrow_mut().extend_from_slice(payload);
                    }
                }
                Some(Opcode::Text | Opcode::Binary) => {
                    return Err(Fail::Protocol("new message inside a fragmented one"))
                }
                Some(Opcode::Continuation) => {
                    self.fragments.borrow_mut().extend_from_slice(payload);
                    if head.fin {
                        let whole = std::mem::take(&mut *self.fragments.borrow_mut());
                        self.message(&whole, on_text);
                    }
                }
                Some(Opcode::Ping) => {
                    frame::encode_masked_into(
                        Opcode::Pong,
                        payload,
                        mask(),
                        &mut self.out.borrow_mut(),
                    );
                }
                Some(Opcode::Pong) => {}
                Some(Opcode::Close) => {
                    let code = payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
                    return Err(Fail::Closed(code));
                }
                None => return Err(Fail::Protocol("unknown opcode")),
            }
        }
        Ok(pos)
    }

    fn message(&self, payload: &[u8], on_text: &mut impl FnMut(&[u8])) {
        if is_pusher_ping(payload) {
            self.queue_text(PONG);
        } else {
            on_text(payload);
        }
    }

    /// Queue a text frame (masked) for the next flush.
    pub fn queue_text(&self, payload: &[u8]) {
        frame::encode_masked_into(Opcode::Text, payload, mask(), &mut self.out.borrow_mut());
    }

    /// Queue a text frame and write everything queued.
    pub async fn send_text(&self, payload: &[u8]) -> Result<(), Fail> {
        self.queue_text(payload);
        self.flush().await
    }

    /// Write what is queued. When another task is already writing this connection,
    /// return at once: that writer sends what was queued here too, in order.
    pub async fn flush(&self) -> Result<(), Fail> {
        if self.flushing.get() {
            return Ok(());
        }
        self.flushing.set(true);
        let _writing = ResetOnDrop(&self.flushing);
        loop {
            let mut buf = self.spare.take();
            std::mem::swap(&mut buf, &mut *self.out.borrow_mut());
            if buf.is_empty() {
                *self.spare.borrow_mut() = buf;
                return Ok(());
            }
            let written = self.write_all(&buf).await;
            buf.clear();
            *self.spare.borrow_mut() = buf;
            written?;
        }
    }

    async fn write_all(&self, bytes: &[u8]) -> Result<(), Fail> {
        let mut written = 0;
        while written < bytes.len() {
            let n = poll_fn(|cx| {
                Pin::new(&mut *self.stream.borrow_mut()).poll_write(cx, &bytes[written..])
            })
            .await
            .map_err(|e| Fail::from_io(&e))?;
            if n == 0 {
                return Err(Fail::Reset);
            }
            written += n;
        }
        Ok(())
    }

    /// Send a Close (1000) and flush it; the server answers with its Close, which
    /// ends whatever reads this connection.
    pub async fn start_close(&self) -> Result<(), Fail> {
        if self.close_sent.replace(true) {
            return Ok(());
        }
        frame::encode_masked_into(
            Opcode::Close,
            &1000u16.to_be_bytes(),
            mask(),
            &mut self.out.borrow_mut(),
        );
        self.flush().await
    }

    /// The closing handshake when no other task reads this connection: send a Close,
    /// then read (and drop) past the server's Close until its FIN, at most `limit`;
    /// then [`Conn::discard`].
    pub async fn close(&self, scratch: &Scratch, limit: Duration) {
        if self.start_close().await.is_ok() {
            let deadline = Instant::now() + limit;
            while let Ok(Ok(()) | Err(Fail::Closed(_))) =
                within(deadline, "close", self.read_some(scratch, |_| {})).await
            {}
        }
        self.discard();
    }

    /// Make dropping the connection reset it (SO_LINGER 0) instead of closing it with a
    /// FIN: called once the closing handshake is over (or given up), so no TIME_WAIT
    /// is left on either side. Otherwise the server's TIME_WAIT entries make the next
    /// run that reuses these ports stall 1 s on some connects (the SYN that meets an
    /// old tuple is answered with an ACK and retried after the 1 s SYN timeout).
    pub fn discard(&self) {
        use std::os::unix::io::AsRawFd;
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt reads one `linger` from the pointer it is given, on the
        // descriptor this connection owns.
        unsafe {
            libc::setsockopt(
                self.stream.borrow().as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }

    /// Give back the buffers' memory after setup (a held connection keeps none).
    pub fn trim(&self) {
        for buf in [&self.out, &self.spare, &self.pending] {
            let mut buf = buf.borrow_mut();
            if buf.is_empty() {
                *buf = Vec::new();
            }
        }
    }
}

struct ResetOnDrop<'a>(&'a Cell<bool>);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// Whether a message is the server's `pusher:ping` (small, event near the front).
pub fn is_pusher_ping(payload: &[u8]) -> bool {
    payload.len() < 128
        && PUSHER_PING
            .find(&payload[..payload.len().min(48)])
            .is_some()
}

/// Run `fut` until `deadline`; `Err(Fail::Timeout(step))` after it.
pub async fn within<T>(
    deadline: Instant,
    step: &'static str,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, Fail> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Fail::Timeout(step));
    }
    futures_lite::future::or(async { Ok(fut.await) }, async {
        glommio::timer::sleep(left).await;
        Err(Fail::Timeout(step))
    })
    .await
}

/// A server message, parsed (setup paths only).
pub struct Parsed {
    pub event: String,
    pub channel: String,
    pub data: Value,
}

pub fn parse(text: &[u8]) -> Option<Parsed> {
    let value: Value = serde_json::from_slice(text).ok()?;
    Some(Parsed {
        event: value.get("event")?.as_str()?.to_string(),
        channel: value
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        data: value.get("data").cloned().unwrap_or(Value::Null),
    })
}

impl Parsed {
    /// `data` decoded: a JSON string holding JSON is parsed, an object kept.
    pub fn data_json(&self) -> Option<Value> {
        match &self.data {
            Value::String(s) => serde_json::from_str(s).ok(),
            Value::Null => None,
            other => Some(other.clone()),
        }
    }

    /// `data` as the string the server sent (or its JSON text).
    pub fn data_string(&self) -> String {
        match &self.data {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    pub fn pusher_error(&self) -> Fail {
        let data = self.data_json().unwrap_or(Value::Null);
        let code = data["code"].as_u64().unwrap_or(0) as u16;
        let message = data["message"].as_str().unwrap_or("").to_string();
        Fail::PusherError(code, message)
    }
}

/// A per-frame masking key. Masks only need to be unpredictable to the network path
/// (RFC 6455 10.3), so a per-thread xorshift seeded from the OS is enough.
fn mask() -> [u8; 4] {
    (random() as u32).to_ne_bytes()
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        let mut seed = [0u8; 8];
        let _ = getrandom::getrandom(&mut seed);
        u64::from_ne_bytes(seed) | 1
    });
}

/// xorshift64*.
pub fn random() -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64.
fn handshake_key() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random().to_ne_bytes());
    bytes[8..].copy_from_slice(&random().to_ne_bytes());
    base64(&bytes)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(handshake_key().len(), 24);
        assert!(handshake_key().ends_with("=="));
    }

    #[test]
    fn pusher_ping_is_recognised() {
        assert!(is_pusher_ping(br#"{"event":"pusher:ping"}"#));
        assert!(is_pusher_ping(br#"{"event":"pusher:ping","data":{}}"#));
        assert!(!is_pusher_ping(br#"{"event":"pusher:pong"}"#));
        assert!(!is_pusher_ping(
            br##"{"event":"bench","data":"{\"m\":\"#b:0:1:2;\"}","channel":"bench-0"}"##
        ));
    }

    /// A scripted server on a std socket: it checks the handshake, then sends a
    /// `connection_established` in the same write as its 101, a message split over
    /// two fragments (and two writes), a Ping frame, a `pusher:ping` and a Close; the
    /// client must hand over the messages and answer the pings and the Close.
    #[test]
    fn reads_a_scripted_server() {
        scripted_exchange(false);
    }

    /// The same script in the same write as the 101, so the client finds it all
    /// buffered behind the handshake (as a slow client does): the messages before
    /// the Close still come first, then the Close, answered.
    #[test]
    fn reads_a_script_that_arrived_before_the_first_read() {
        scripted_exchange(true);
    }

    fn scripted_exchange(in_one_write: bool) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                sock.read_exact(&mut byte).unwrap();
                request.push(byte[0]);
            }
            let request = String::from_utf8(request).unwrap();
            assert!(request.starts_with("GET /app/k?protocol=7"), "{request}");
            let key = request
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap();
            let accept = tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
            let mut out = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )
            .into_bytes();
            out.extend(frame::text_frame(
                br#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\"}"}"#,
            ));
            // "hello" in two fragments, the second one split across writes.
            out.extend([0x01, 3, b'h', b'e', b'l', 0x80, 2, b'l']);
            if !in_one_write {
                sock.write_all(&std::mem::take(&mut out)).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            out.push(b'o');
            out.extend(frame::ping_frame(b"p!"));
            out.extend(frame::text_frame(br#"{"event":"pusher:ping"}"#));
            out.extend(frame::close_frame(4200, "bye"));
            sock.write_all(&out).unwrap();
            // Pong frame, pusher:pong, Close answer: three masked client frames.
            let mut decoder = crate::ws::frame::Decoder::new(1 << 16);
            let mut got = Vec::new();
            let mut buf = Vec::new();
            while got.len() < 3 {
                let mut chunk = [0u8; 512];
                let n = sock.read(&mut chunk).unwrap();
                assert!(n > 0, "client closed early; got {got:?}");
                buf.extend_from_slice(&chunk[..n]);
                loop {
                    let (used, message) = decoder.decode(&buf).unwrap();
                    buf.drain(..used);
                    match message {
                        Some(m) => got.push(m),
                        None if used == 0 => break,
                        None => {}
                    }
                }
            }
            got
        });
        let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(256 << 10)
            .make()
            .unwrap();
        let (socket_id, texts, end) = executor.run(async move {
            let scratch = Scratch::new(vec![0; 4096]);
            let endpoint = Endpoint {
                addr,
                host: addr.to_string(),
                path: "/app/k?protocol=7".into(),
                origin: None,
            };
            let conn = Conn::open(&endpoint, None, Duration::from_secs(5), &scratch)
                .await
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            let socket_id = conn.established(&scratch, deadline).await.unwrap();
            let mut texts = Vec::new();
            let mut keep = |t: &[u8]| texts.push(String::from_utf8_lossy(t).into_owned());
            let end = match conn.take_buffered(&mut keep) {
                Err(fail) => fail,
                Ok(()) => loop {
                    if let Err(fail) = conn.read_some(&scratch, &mut keep).await {
                        break fail;
                    }
                },
            };
            (socket_id, texts, end)
        });
        assert_eq!(socket_id, "1.2");
        assert_eq!(texts, vec!["hello".to_string()]);
        assert_eq!(end, Fail::Closed(Some(4200)));
        let answers = server.join().unwrap();
        use crate::ws::frame::Message;
        assert_eq!(answers[0], Message::Pong(b"p!".to_vec()));
        assert_eq!(answers[1], Message::Text(PONG.to_vec()));
        assert_eq!(answers[2], Message::Close(Some((4200, String::new()))));
    }

    #[test]
    fn parsed_messages() {
        let msg = parse(br#"{"event":"pusher:error","data":"{\"code\":4001,\"message\":\"Application does not exist\"}"}"#).unwrap();
        assert_eq!(
            msg.pusher_error(),
            Fail::PusherError(4001, "Application does not exist".into())
        );
        let msg = parse(br#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":30}"}"#).unwrap();
        assert_eq!(msg.data_json().unwrap()["socket_id"], "1.2");
        assert!(parse(b"not json").is_none());
    }
}
