//! Building blocks for the HTTP API tests (tests/api_*.rs): requests signed with any
//! key, secret, timestamp or signed path; keep-alive API connections; subscribe, join
//! and sign-in helpers for WebSocket clients; clients placed on every shard; raw text
//! frames (to compare key order). Every read is bounded in time.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tungstenite::Message;

use super::raw::{self, HttpResponse};
pub use super::sign::{hmac_hex, md5_hex};
use super::{allowed_cpus, channel_auth, shard_of, Client, TestServer};
use super::{APP_ID, APP_KEY, APP_SECRET};

/// `Content-Type` of the plain-text answers (http-api.md §2).
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const JSON: &str = "application/json";

/// Shards to start where shards matter: 2, or 1 on a machine with a single CPU (the
/// server refuses more cores than CPUs).
pub fn shards() -> usize {
    allowed_cpus().min(2)
}

/// The demo app with extra `[server]` lines, e.g. `server_config("pusher_limits = false")`.
pub fn server_config(server_lines: &str) -> String {
    super::app_config("").replace("port = 0\n", &format!("port = 0\n{server_lines}\n"))
}

/// A second app appended to a config (for isolation between apps).
pub const OTHER_APP: &str =
    "\n[[apps]]\napp_id = \"654321\"\nkey = \"other-key\"\nsecret = \"other-secret\"\n";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// How a request is signed; `Signer::default()` signs like the SDKs with the demo app.
#[derive(Clone, Debug)]
pub struct Signer {
    pub key: String,
    pub secret: String,
    pub timestamp: u64,
    pub version: String,
    /// The path that enters the string to sign (default: the request path).
    pub sign_path: Option<String>,
    /// `body_md5` as signed and sent (default: the body's real MD5, when non-empty).
    pub body_md5: Option<String>,
}

impl Default for Signer {
    fn default() -> Signer {
        Signer {
            key: APP_KEY.into(),
            secret: APP_SECRET.into(),
            timestamp: now(),
            version: "1.0".into(),
            sign_path: None,
            body_md5: None,
        }
    }
}

impl Signer {
    /// The request target `path?query&auth_signature=…`. `params` are sent and signed
    /// as written (tests use values that need no escaping).
    pub fn target(&self, method: &str, path: &str, params: &[(&str, &str)], body: &[u8]) -> String {
        let mut pairs: Vec<(String, String)> = vec![
            ("auth_key".into(), self.key.clone()),
            ("auth_timestamp".into(), self.timestamp.to_string()),
            ("auth_version".into(), self.version.clone()),
        ];
        let md5 = self
            .body_md5
            .clone()
            .or_else(|| (!body.is_empty()).then(|| md5_hex(body)));
        if let Some(md5) = md5 {
            pairs.push(("body_md5".into(), md5));
        }
        pairs.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        pairs.sort();
        let query = join_pairs(&pairs);
        let signed = self.sign_path.as_deref().unwrap_or(path);
        let signature = hmac_hex(&self.secret, &format!("{method}\n{signed}\n{query}"));
        format!("{path}?{query}&auth_signature={signature}")
    }
}

fn join_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `/apps/{APP_ID}{rest}`.
pub fn app_path(rest: &str) -> String {
    format!("/apps/{APP_ID}{rest}")
}

/// The bytes of one request with `Content-Length`; `close` adds `Connection: close`.
pub fn request_bytes(method: &str, target: &str, body: &[u8], close: bool) -> Vec<u8> {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Send raw bytes on a fresh connection and read one response.
pub fn send_raw(server: &TestServer, bytes: &[u8]) -> HttpResponse {
    raw::http_exchange(&server.addr(), bytes).0
}

/// One request on a fresh connection (`Connection: close`), signed by `signer`.
pub fn call_signed(
    server: &TestServer,
    signer: &Signer,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let target = signer.target(method, path, params, body.as_bytes());
    send_raw(
        server,
        &request_bytes(method, &target, body.as_bytes(), true),
    )
}

/// A request to `/apps/{APP_ID}{rest}` signed like the SDKs on a fresh connection.
pub fn api(
    server: &TestServer,
    method: &str,
    rest: &str,
    params: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    call_signed(
        server,
        &Signer::default(),
        method,
        &app_path(rest),
        params,
        body,
    )
}

/// `GET /apps/{APP_ID}{rest}` answered 200; the body as JSON.
pub fn get_json(server: &TestServer, rest: &str, params: &[(&str, &str)]) -> Value {
    let r = api(server, "GET", rest, params, "");
    assert_eq!(r.status, 200, "GET {rest}: {r:?}");
    json_of(&r)
}

/// `POST /apps/{APP_ID}/events` with `body`.
pub fn trigger(server: &TestServer, body: &Value) -> HttpResponse {
    api(server, "POST", "/events", &[], &body.to_string())
}

/// `POST /apps/{APP_ID}/batch_events` with `body`.
pub fn batch(server: &TestServer, body: &Value) -> HttpResponse {
    api(server, "POST", "/batch_events", &[], &body.to_string())
}

/// The body as JSON (panics with the response if it is not).
pub fn json_of(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

/// A plain-text answer: status, exact body and the text content type.
pub fn assert_text(r: &HttpResponse, status: u16, text: &str) {
    assert_eq!((r.status, r.body_text().as_str()), (status, text), "{r:?}");
    assert_eq!(r.header("content-type"), Some(TEXT), "{r:?}");
    assert_eq!(
        r.header("content-length"),
        Some(text.len().to_string().as_str()),
        "{r:?}"
    );
}

/// A JSON answer: status, exact body bytes and the JSON content type.
pub fn assert_json_raw(r: &HttpResponse, status: u16, body: &str) {
    assert_eq!((r.status, r.body_text().as_str()), (status, body), "{r:?}");
    assert_eq!(r.header("content-type"), Some(JSON), "{r:?}");
}

/// A JSON answer equal (as JSON) to `expected`.
pub fn assert_json(r: &HttpResponse, status: u16, expected: &Value) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.header("content-type"), Some(JSON), "{r:?}");
    assert_eq!(&json_of(r), expected, "{r:?}");
}

/// An HTTP/1.1 keep-alive connection to the API: several requests on one socket (so
/// all of them are served, in order, by the same shard).
pub struct KeepAlive {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl KeepAlive {
    pub fn open(server: &TestServer) -> KeepAlive {
        KeepAlive {
            stream: raw::connect(&server.addr()),
            buf: Vec::new(),
        }
    }

    /// Write `bytes` and read one response.
    pub fn exchange(&mut self, bytes: &[u8]) -> HttpResponse {
        self.stream.write_all(bytes).expect("write request");
        self.read()
    }

    /// Read the next response.
    pub fn read(&mut self) -> HttpResponse {
        raw::read_response(&mut self.stream, &mut self.buf)
    }

    /// A signed request to `/apps/{APP_ID}{rest}` without `Connection: close`.
    pub fn api(
        &mut self,
        method: &str,
        rest: &str,
        params: &[(&str, &str)],
        body: &str,
    ) -> HttpResponse {
        let target = Signer::default().target(method, &app_path(rest), params, body.as_bytes());
        self.exchange(&request_bytes(method, &target, body.as_bytes(), false))
    }

    pub fn trigger(&mut self, body: &Value) -> HttpResponse {
        let r = self.api("POST", "/events", &[], &body.to_string());
        assert_eq!(r.status, 200, "{r:?}");
        r
    }
}

/// Connect clients until every shard holds at least `per_shard` of them; returns them
/// grouped by shard (a shard's group may hold more). Every client stays connected.
pub fn spread(server: &TestServer, shards: usize, per_shard: usize) -> Vec<Vec<(Client, String)>> {
    let mut groups: Vec<Vec<(Client, String)>> = (0..shards).map(|_| Vec::new()).collect();
    for _ in 0..500 {
        if groups.iter().all(|g| g.len() >= per_shard) {
            return groups;
        }
        let (client, id) = server.connect_established();
        let shard = shard_of(&id) as usize;
        assert!(shard < shards, "socket id {id} names shard {shard}");
        groups[shard].push((client, id));
    }
    panic!("500 connections did not reach every shard");
}

/// `{"user_id":…,"user_info":{…}}` for a presence subscription.
pub fn member_data(user_id: &Value) -> String {
    json!({"user_id": user_id, "user_info": {"name": format!("user {user_id}")}}).to_string()
}

/// Read JSON messages until one has `event` (and, if given, `channel`); returns it and
/// the messages skipped before it. Panics on `pusher:error` or after a timeout.
pub fn until_event(client: &mut Client, event: &str, channel: Option<&str>) -> (Value, Vec<Value>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut skipped = Vec::new();
    while Instant::now() < deadline {
        let msg = client.recv_json();
        if msg["event"] == event && channel.is_none_or(|c| msg["channel"] == c) {
            return (msg, skipped);
        }
        assert_ne!(
            msg["event"], "pusher:error",
            "while waiting for {event}: {msg}"
        );
        skipped.push(msg);
    }
    panic!("no {event} in time; got {skipped:?}");
}

/// Subscribe to a public, private or cache channel and wait for
/// `subscription_succeeded` (a cache channel's replay or miss follows; not read).
pub fn subscribe(client: &mut Client, socket_id: &str, channel: &str) {
    let auth = if channel.starts_with("private") {
        channel_auth(socket_id, channel, None)
    } else {
        String::new()
    };
    client.send_json(&json!({"event":"pusher:subscribe","data":{"channel":channel,"auth":auth}}));
    until_event(
        client,
        "pusher_internal:subscription_succeeded",
        Some(channel),
    );
}

/// Join a presence channel as `user_id`; returns the member snapshot
/// (`{"presence":{…}}`) from `subscription_succeeded`.
pub fn join(client: &mut Client, socket_id: &str, channel: &str, user_id: &Value) -> Value {
    let data = member_data(user_id);
    client.send_json(&json!({"event":"pusher:subscribe","data":{
        "channel": channel,
        "auth": channel_auth(socket_id, channel, Some(&data)),
        "channel_data": data,
    }}));
    let (msg, _) = until_event(
        client,
        "pusher_internal:subscription_succeeded",
        Some(channel),
    );
    serde_json::from_str(msg["data"].as_str().unwrap()).unwrap()
}

/// `pusher:signin` as `user_id` (a string id); waits for `signin_success`.
pub fn signin(client: &mut Client, socket_id: &str, user_id: &str) {
    let user_data = json!({"id": user_id, "user_info": {"name": "x"}}).to_string();
    let sig = hmac_hex(APP_SECRET, &format!("{socket_id}::user::{user_data}"));
    client.send_json(&json!({"event":"pusher:signin","data":{
        "auth": format!("{APP_KEY}:{sig}"),
        "user_data": user_data,
    }}));
    until_event(client, "pusher:signin_success", None);
}

/// The next text frame exactly as the server sent it (WebSocket pings are skipped).
pub fn next_text(client: &mut Client) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match client.ws.read() {
            Ok(Message::Text(t)) => return t.as_str().to_string(),
            Ok(Message::Ping(_)) | Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => {}
            Ok(other) => panic!("expected a text frame, got {other:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) && Instant::now() < deadline => {}
            Err(e) => panic!("expected a text frame, got {e}"),
        }
    }
}

/// Poll `probe` until it returns `expected` (state that changes after a disconnect is
/// eventually exact); panics with the last value after 10 s.
pub fn eventually<T: PartialEq + std::fmt::Debug>(expected: T, mut probe: impl FnMut() -> T) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = probe();
        if got == expected {
            return;
        }
        if Instant::now() > deadline {
            panic!("expected {expected:?}, still {got:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Expect a Close frame, skipping presence member events that arrived before it.
pub fn expect_close_skipping_members(client: &mut Client) -> (u16, String) {
    for _ in 0..100 {
        match client.recv_within(super::client::RECV_TIMEOUT) {
            super::Received::Close(Some(c)) => return c,
            super::Received::Json(v)
                if v["event"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("pusher_internal:member_")) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    panic!("too many messages before the close frame");
}

/// A ping/pong round trip proving the connection is open; returns the messages that
/// arrived before the pong.
pub fn alive(client: &mut Client) -> Vec<Value> {
    client.send_json(&json!({"event":"pusher:ping","data":{}}));
    until_event(client, "pusher:pong", None).1
}
