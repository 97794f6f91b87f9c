//! A real WebSocket client for tests: tungstenite over a blocking std socket with read
//! timeouts, so no test can hang on a silent server.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// How long a test waits for a frame it expects.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Client {
    pub ws: WebSocket<TcpStream>,
}

/// What arrived, when a test wants to see frames other than text.
#[derive(Debug)]
pub enum Received {
    Json(Value),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
    /// The server closed the TCP connection (or reset it) without a close frame.
    Gone,
    Timeout,
}

impl Client {
    /// Connect with extra request headers (e.g. `("Origin", "https://a.com")`).
    pub fn connect(url: &str, headers: &[(&str, &str)]) -> Client {
        Client::try_connect(url, headers).unwrap_or_else(|e| panic!("connect {url}: {e}"))
    }

    pub fn try_connect(url: &str, headers: &[(&str, &str)]) -> Result<Client, tungstenite::Error> {
        let mut request = url.into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let host = request.uri().authority().unwrap().as_str().to_string();
        let stream = TcpStream::connect(&host).map_err(tungstenite::Error::Io)?;
        stream.set_read_timeout(Some(RECV_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let (ws, _) = tungstenite::client(request, stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => tungstenite::Error::ConnectionClosed,
        })?;
        Ok(Client { ws })
    }

    /// Read `connection_established` and return the socket id.
    pub fn established(&mut self) -> String {
        let msg = self.recv_json();
        assert_eq!(msg["event"], "pusher:connection_established", "{msg}");
        let data: Value =
            serde_json::from_str(msg["data"].as_str().expect("data is a string")).unwrap();
        data["socket_id"].as_str().unwrap().to_string()
    }

    pub fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string());
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    /// The next frame of any kind, within `timeout`.
    pub fn recv_within(&mut self, timeout: Duration) -> Received {
        self.ws.get_mut().set_read_timeout(Some(timeout)).unwrap();
        let deadline = Instant::now() + timeout;
        let out = loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    break Received::Json(
                        serde_json::from_str(&t)
                            .unwrap_or_else(|e| panic!("server sent non-JSON text {t:?}: {e}")),
                    )
                }
                Ok(Message::Binary(b)) => panic!("server sent a binary frame: {b:?}"),
                Ok(Message::Ping(p)) => break Received::Ping(p.to_vec()),
                Ok(Message::Pong(p)) => break Received::Pong(p.to_vec()),
                Ok(Message::Frame(_)) => {}
                Ok(Message::Close(frame)) => {
                    break Received::Close(frame.map(|f| (u16::from(f.code), f.reason.to_string())))
                }
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        break Received::Timeout;
                    }
                }
                Err(_) => break Received::Gone,
            }
        };
        self.ws
            .get_mut()
            .set_read_timeout(Some(RECV_TIMEOUT))
            .unwrap();
        out
    }

    /// The next text message as JSON; panics on anything else.
    pub fn recv_json(&mut self) -> Value {
        match self.recv_within(RECV_TIMEOUT) {
            Received::Json(v) => v,
            other => panic!("expected a JSON message, got {other:?}"),
        }
    }

    /// Expect `pusher:error` with this code; returns the message text.
    pub fn expect_error(&mut self, code: u64) -> String {
        let msg = self.recv_json();
        assert_eq!(msg["event"], "pusher:error", "{msg}");
        let data: Value = serde_json::from_str(msg["data"].as_str().unwrap()).unwrap();
        assert_eq!(data["code"], code, "{msg}");
        data["message"].as_str().unwrap().to_string()
    }

    /// Expect a Close frame (skipping nothing); returns (code, reason).
    pub fn expect_close(&mut self) -> (u16, String) {
        match self.recv_within(RECV_TIMEOUT) {
            Received::Close(Some(c)) => c,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    /// Nothing arrives within `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) {
        match self.recv_within(quiet) {
            Received::Timeout => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }

    /// After a close frame: the server ends the TCP connection.
    pub fn expect_gone(&mut self) {
        match self.recv_within(RECV_TIMEOUT) {
            Received::Gone | Received::Close(_) => {}
            other => panic!("expected the connection to end, got {other:?}"),
        }
    }

    /// Ping-pong round trip proving the connection still works.
    pub fn assert_alive(&mut self) {
        self.send_json(&serde_json::json!({"event": "pusher:ping", "data": {}}));
        let msg = self.recv_json();
        assert_eq!(msg, serde_json::json!({"event": "pusher:pong"}));
    }

    /// Send a WebSocket Ping frame and wait for the Pong with the same payload (which
    /// also proves the connection is open without sending a counted message).
    pub fn control_ping(&mut self, payload: &[u8]) {
        self.ws
            .send(Message::Ping(payload.to_vec().into()))
            .expect("send ping");
        match self.recv_within(RECV_TIMEOUT) {
            Received::Pong(p) => assert_eq!(p, payload, "pong payload"),
            other => panic!("expected a pong, got {other:?}"),
        }
    }

    /// Send a binary message.
    pub fn send_binary(&mut self, bytes: &[u8]) {
        self.ws.send(Message::binary(bytes.to_vec())).expect("send");
    }

    /// Send a raw close code (used to test the echo rule).
    pub fn close_with(&mut self, code: u16, reason: &str) {
        let frame = tungstenite::protocol::CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_string().into(),
        };
        let _ = self.ws.close(Some(frame));
    }
}
