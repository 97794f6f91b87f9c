//! Raw TCP for tests that need bytes a WebSocket library would never send (unmasked
//! frames, reserved bits, broken UTF-8, half requests) or want to see the handshake
//! response's headers. Every read has a timeout, so no test can hang.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use socket2::{Domain, Protocol, Socket, Type};

/// How long a raw read waits for bytes it expects.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(5);

/// The RFC 6455 sample key and its accept value.
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The masking key of every frame these helpers mask.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;
pub const FIN: u8 = 0x80;

/// A parsed HTTP response. Header names are lowercase.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking loopback connection with read and write timeouts.
pub fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(RAW_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(RAW_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A loopback connection with a tiny receive buffer (4 KiB, set before connecting so the
/// TCP window is small from the start): the server's writes to it back up at once.
/// Reads wait up to 5 s, writes 200 ms.
pub fn tiny_receiver(addr: &str) -> TcpStream {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(RAW_TIMEOUT)).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Send `request` on a fresh connection and read one response.
pub fn http_exchange(addr: &str, request: &[u8]) -> (HttpResponse, TcpStream) {
    let mut stream = connect(addr);
    stream.write_all(request).expect("write request");
    let mut buf = Vec::new();
    let response = read_response(&mut stream, &mut buf);
    (response, stream)
}

/// A simple `GET path` with `Host` and `Connection: close`.
pub fn get(addr: &str, path: &str) -> HttpResponse {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    http_exchange(addr, request.as_bytes()).0
}

/// Read one HTTP response (head and `Content-Length` body); bytes after it stay in
/// `buf`. Panics on a timeout or an early end of the stream.
pub fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> HttpResponse {
    let deadline = Instant::now() + RAW_TIMEOUT;
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if !fill(stream, buf, deadline) {
            panic!(
                "the stream ended before a complete response head; got {:?}",
                String::from_utf8_lossy(buf)
            );
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap_or((l, ""));
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        if !fill(stream, buf, deadline) {
            panic!("the stream ended inside the response body");
        }
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// Read more bytes into `buf`; false at EOF or on a reset. Panics after `deadline`.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() >= deadline {
                    panic!("timed out waiting for the server");
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// How a stream ended, when a test waits for it to end.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// Orderly end of stream (FIN).
    Eof,
    /// Connection reset.
    Reset,
}

/// Read (and discard) until the peer ends the stream; panics if it is still open after
/// `within`. Returns how it ended and how many bytes came before.
pub fn wait_closed(stream: &mut TcpStream, within: Duration) -> (Ending, usize) {
    let deadline = Instant::now() + within;
    let mut chunk = [0u8; 16 * 1024];
    let mut seen = 0;
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (Ending::Eof, seen),
            Ok(n) => seen += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return (Ending::Reset, seen),
        }
        if Instant::now() >= deadline {
            panic!("the server kept the connection open for more than {within:?}");
        }
    }
}

/// The bytes of one frame: `b0` is FIN|RSV|opcode as sent; masked with a fixed key
/// unless `mask` is false.
pub fn frame_bytes(b0: u8, masked: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A complete masked text frame.
pub fn text_frame(text: &str) -> Vec<u8> {
    frame_bytes(FIN | OP_TEXT, true, text.as_bytes())
}

/// A close frame payload: status code and reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// One frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

/// What a raw read saw.
#[derive(Debug)]
pub enum RawEvent {
    Frame(RawFrame),
    /// The stream ended (EOF or reset).
    Closed,
    Timeout,
}

/// A WebSocket connection upgraded by hand on a std socket: the test writes any bytes
/// and reads the server's frames as they are.
pub struct RawWs {
    pub stream: TcpStream,
    /// Bytes read but not consumed yet.
    buf: Vec<u8>,
    /// The handshake response (status 101).
    pub response: HttpResponse,
}

impl RawWs {
    /// Upgrade on `path` (e.g. `/app/app-key`) with extra request headers; panics unless
    /// the answer is a valid `101`.
    pub fn upgrade(addr: &str, path: &str, headers: &[(&str, &str)]) -> RawWs {
        RawWs::upgrade_on(connect(addr), addr, path, headers)
    }

    /// Like [`RawWs::upgrade`] on a socket the test prepared (e.g. small buffers).
    pub fn upgrade_on(
        mut stream: TcpStream,
        addr: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> RawWs {
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n"
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).expect("write upgrade");
        let mut buf = Vec::new();
        let response = read_response(&mut stream, &mut buf);
        assert_eq!(response.status, 101, "upgrade refused: {response:?}");
        assert_eq!(response.header("sec-websocket-accept"), Some(WS_ACCEPT));
        RawWs {
            stream,
            buf,
            response,
        }
    }

    /// Upgrade to the demo app and read `connection_established`; returns the socket id.
    pub fn established(addr: &str) -> (RawWs, String) {
        let mut ws = RawWs::upgrade(addr, &format!("/app/{}", super::APP_KEY), &[]);
        let msg = ws.expect_json();
        assert_eq!(msg["event"], "pusher:connection_established", "{msg}");
        let data: Value = serde_json::from_str(msg["data"].as_str().unwrap()).unwrap();
        let id = data["socket_id"].as_str().unwrap().to_string();
        (ws, id)
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Send one masked frame (`b0` = FIN|RSV|opcode).
    pub fn send_frame(&mut self, b0: u8, payload: &[u8]) {
        self.write_raw(&frame_bytes(b0, true, payload));
    }

    pub fn send_text(&mut self, text: &str) {
        self.write_raw(&text_frame(text));
    }

    /// The next frame within `timeout`.
    pub fn read_frame(&mut self, timeout: Duration) -> RawEvent {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return RawEvent::Frame(frame);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return RawEvent::Timeout;
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return RawEvent::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return RawEvent::Closed,
            }
        }
    }

    /// The next frame; panics on a timeout or a closed stream.
    pub fn expect_frame(&mut self) -> RawFrame {
        match self.read_frame(RAW_TIMEOUT) {
            RawEvent::Frame(f) => {
                assert!(!f.masked, "server frames must not be masked: {f:?}");
                f
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next frame is a text frame holding JSON.
    pub fn expect_json(&mut self) -> Value {
        let f = self.expect_frame();
        assert_eq!(f.opcode, OP_TEXT, "expected a text frame, got {f:?}");
        assert!(f.fin, "server frames are unfragmented: {f:?}");
        serde_json::from_slice(&f.payload).unwrap_or_else(|e| {
            panic!(
                "server sent non-JSON text {:?}: {e}",
                String::from_utf8_lossy(&f.payload)
            )
        })
    }

    /// The next frame is a Close frame; returns (code, reason).
    pub fn expect_close(&mut self) -> (u16, String) {
        let f = self.expect_frame();
        assert_eq!(f.opcode, OP_CLOSE, "expected a close frame, got {f:?}");
        if f.payload.is_empty() {
            return (1005, String::new());
        }
        assert!(f.payload.len() >= 2, "bad close payload {f:?}");
        let code = u16::from_be_bytes([f.payload[0], f.payload[1]]);
        (code, String::from_utf8(f.payload[2..].to_vec()).unwrap())
    }

    /// The server ends the TCP connection within `within`, sending no further frame.
    pub fn expect_closed_within(&mut self, within: Duration) {
        match self.read_frame(within) {
            RawEvent::Closed => {}
            RawEvent::Frame(f) => panic!("expected the socket to close, got a frame {f:?}"),
            RawEvent::Timeout => panic!("the server did not close the socket in {within:?}"),
        }
    }

    /// Nothing arrives for `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) {
        match self.read_frame(quiet) {
            RawEvent::Timeout => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }

    /// A `pusher:ping` → `pusher:pong` round trip.
    pub fn assert_alive(&mut self) {
        self.send_text(r#"{"event":"pusher:ping","data":{}}"#);
        assert_eq!(
            self.expect_json(),
            serde_json::json!({"event": "pusher:pong"})
        );
    }
}

/// One complete frame at the start of `buf` and its length on the wire.
fn parse_frame(buf: &[u8]) -> Option<(RawFrame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7F {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            (
                u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                10,
            )
        }
        n => (n as usize, 2),
    };
    let mut key = [0u8; 4];
    if masked {
        if buf.len() < at + 4 {
            return None;
        }
        key.copy_from_slice(&buf[at..at + 4]);
        at += 4;
    }
    if buf.len() < at + len {
        return None;
    }
    let mut payload = buf[at..at + len].to_vec();
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    Some((
        RawFrame {
            fin,
            opcode,
            masked,
            payload,
        },
        at + len,
    ))
}
