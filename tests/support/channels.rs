//! Helpers for the channel suites (`tests/channels_*.rs`): clients placed on chosen
//! shards of a `--cores 2` server, subscriptions signed the way a Laravel backend
//! signs them, raw-text reads (for exact key order), and ordering barriers that prove
//! a message did *not* arrive without waiting on a clock.
//!
//! Barriers rely on two facts of the server, both design invariants: a connection's
//! messages are handled one after the other on its shard, and messages from one
//! shard to another are handled in the order they were sent (invariant 5). So
//! - `Peer::barrier` (ping → the very next message is the pong) proves that nothing
//!   this connection's earlier messages caused *on its own shard* is still to come;
//! - a "sentinel" event sent after X by a sender on the same shard as X's source,
//!   arriving first, proves X was never delivered.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::Message;

use super::{channel_auth, shard_of, Client, TestServer, APP_ID, APP_KEY, APP_SECRET};

/// Shards of every channel-suite server.
pub const SHARDS: usize = 2;

/// How many connections `spread` opens at most before giving up.
const MAX_ATTEMPTS: usize = 2000;

/// One established connection and where it lives.
pub struct Peer {
    pub client: Client,
    pub id: String,
    pub shard: usize,
}

/// A server config with the demo app, its extra `[[apps]]` lines and extra
/// `[server]` lines.
pub fn config(server_lines: &str, app_lines: &str) -> String {
    format!(
        "[server]\nhost = \"127.0.0.1\"\nport = 0\n{server_lines}\n\n[[apps]]\napp_id = \"{APP_ID}\"\nkey = \"{APP_KEY}\"\nsecret = \"{APP_SECRET}\"\n{app_lines}\n"
    )
}

/// A `--cores 2` server with the demo app and these extra `[[apps]]` lines.
pub fn start(app_lines: &str) -> TestServer {
    TestServer::start(&config("", app_lines), SHARDS)
}

/// Connect until shard `s` holds `want[s]` of the new connections (the kernel spreads
/// accepted sockets over the shards; extra connections are closed again).
pub fn spread(server: &TestServer, want: [usize; SHARDS]) -> [Vec<Peer>; SHARDS] {
    let mut out: [Vec<Peer>; SHARDS] = [Vec::new(), Vec::new()];
    for _ in 0..MAX_ATTEMPTS {
        if out.iter().zip(want).all(|(got, n)| got.len() >= n) {
            return out;
        }
        let (client, id) = server.connect_established();
        let shard = shard_of(&id) as usize;
        if out[shard].len() < want[shard] {
            out[shard].push(Peer { client, id, shard });
        }
    }
    panic!(
        "could not place {want:?} connections on the shards (got {:?})",
        out.each_ref().map(Vec::len)
    );
}

/// One connection on each shard: (shard 0, shard 1).
pub fn pair(server: &TestServer) -> (Peer, Peer) {
    let [mut s0, mut s1] = spread(server, [1, 1]);
    (s0.pop().unwrap(), s1.pop().unwrap())
}

/// Connect one more client on `shard`.
pub fn on_shard(server: &TestServer, shard: usize) -> Peer {
    let mut want = [0; SHARDS];
    want[shard] = 1;
    spread(server, want)[shard].pop().unwrap()
}

pub use super::sign::hmac_hex;

/// The test's own copy of the rule of websocket.md §7: does subscribing need `auth`?
pub fn needs_auth(channel: &str) -> bool {
    channel.starts_with("private") || channel.starts_with("presence")
}

/// `channel_data` text for a presence member.
pub fn member(user_id: Value, name: &str) -> String {
    json!({"user_id": user_id, "user_info": {"name": name}}).to_string()
}

/// The exact `subscription_succeeded` text for a channel with this `data` text.
pub fn succeeded_text(channel: &str, data: &str) -> String {
    json!({"event": "pusher_internal:subscription_succeeded", "data": data, "channel": channel})
        .to_string()
}

/// The exact `pusher:cache_miss` text.
pub fn cache_miss_text(channel: &str) -> String {
    json!({"event": "pusher:cache_miss", "channel": channel}).to_string()
}

/// The exact `pusher:error` text.
pub fn error_text(code: u16, message: &str) -> String {
    let data = json!({"code": code, "message": message}).to_string();
    json!({"event": "pusher:error", "data": data}).to_string()
}

/// The exact `member_added` text for a joiner's `channel_data`.
pub fn member_added_text(channel: &str, channel_data: &str) -> String {
    json!({"event": "pusher_internal:member_added", "data": channel_data, "channel": channel})
        .to_string()
}

/// The exact `member_removed` text.
pub fn member_removed_text(channel: &str, user_id: Value) -> String {
    let data = json!({ "user_id": user_id }).to_string();
    json!({"event": "pusher_internal:member_removed", "data": data, "channel": channel}).to_string()
}

pub const UNAUTHORIZED: &str = "Connection is unauthorized";
pub const NOT_A_MEMBER: &str = "The client is not a member of the specified channel.";
pub const INVALID: &str = "Invalid message format";

impl Peer {
    pub fn send(&mut self, message: &Value) {
        self.client.send_json(message);
    }

    pub fn send_text(&mut self, text: &str) {
        self.client.send_text(text);
    }

    pub fn recv(&mut self) -> Value {
        self.client.recv_json()
    }

    /// The next message as the exact text the server sent (panics on anything else
    /// or after the client's receive timeout).
    pub fn recv_text(&mut self) -> String {
        let deadline = Instant::now() + super::client::RECV_TIMEOUT;
        loop {
            match self.client.ws.read() {
                Ok(Message::Text(text)) => return text.to_string(),
                Ok(Message::Frame(_)) => {}
                Ok(other) => panic!("[{}] expected a text message, got {other:?}", self.id),
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) && Instant::now() < deadline => {}
                Err(e) => panic!("[{}] expected a text message, got {e}", self.id),
            }
        }
    }

    /// The next message must be exactly `expected`.
    pub fn expect_text(&mut self, expected: &str) {
        let got = self.recv_text();
        assert_eq!(got, expected, "[{} on shard {}]", self.id, self.shard);
    }

    /// Ping, and the very next message must be the pong: nothing else was queued for
    /// this connection on its shard before it.
    pub fn barrier(&mut self) {
        self.send(&json!({"event": "pusher:ping", "data": {}}));
        self.expect_text(r#"{"event":"pusher:pong"}"#);
    }

    /// Send `pusher:subscribe` with this `data`.
    pub fn send_subscribe(&mut self, data: Value) {
        self.send(&json!({"event": "pusher:subscribe", "data": data}));
    }

    /// Subscribe (signed when the channel needs it) and return the answer's text.
    pub fn subscribe(&mut self, channel: &str, channel_data: Option<&str>) -> String {
        let mut data = json!({ "channel": channel });
        if needs_auth(channel) {
            data["auth"] = json!(channel_auth(&self.id, channel, channel_data));
        }
        if let Some(cd) = channel_data {
            data["channel_data"] = json!(cd);
        }
        self.send_subscribe(data);
        self.recv_text()
    }

    /// Subscribe, require `subscription_succeeded` and return its `data` text.
    pub fn join(&mut self, channel: &str, channel_data: Option<&str>) -> String {
        let answer = self.subscribe(channel, channel_data);
        let msg: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(
            msg["event"], "pusher_internal:subscription_succeeded",
            "[{}] subscribing to {channel}: {answer}",
            self.id
        );
        assert_eq!(msg["channel"], channel, "{answer}");
        msg["data"].as_str().unwrap().to_string()
    }

    /// Subscribe to a non-presence, non-cache channel and require the exact answer.
    pub fn join_plain(&mut self, channel: &str) {
        let answer = self.subscribe(channel, None);
        assert_eq!(answer, succeeded_text(channel, "{}"), "[{}]", self.id);
    }

    /// Subscribe to a cache channel: the exact answer, then the cache miss.
    pub fn join_cache_miss(&mut self, channel: &str) {
        self.join_plain(channel);
        self.expect_text(&cache_miss_text(channel));
    }

    pub fn unsubscribe(&mut self, channel: &str) {
        self.send(&json!({"event": "pusher:unsubscribe", "data": {"channel": channel}}));
    }

    /// Send a client event (`event`, `channel`, `data`).
    pub fn whisper(&mut self, channel: &str, event: &str, data: Value) {
        self.send(&json!({"event": event, "channel": channel, "data": data}));
    }

    /// The next message must be `pusher:error` with this code and message, exactly.
    pub fn expect_error(&mut self, code: u16, message: &str) {
        self.expect_text(&error_text(code, message));
    }
}

/// Wait for a server log line (bounded); panics with the logs when it never comes.
pub fn await_log(server: &TestServer, needle: &str) {
    assert!(
        server.wait_for_log(needle, Duration::from_secs(20)),
        "no log line containing {needle:?}:\n{}",
        server.logs().join("\n")
    );
}
