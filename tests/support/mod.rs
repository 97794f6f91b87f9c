//! Test support shared by every integration test: start the real `reverb-shard` binary
//! on an ephemeral loopback port with a given config and shard count, connect real
//! WebSocket clients (tungstenite over std sockets), read frames with timeouts, and
//! stop the server cleanly. Everything here is bounded in time.
#![allow(dead_code, unused_imports)]

pub mod channels;
pub mod client;
pub mod http_api;
pub mod raw;
pub mod redis;
pub mod server;
pub mod sign;

pub use client::{Client, Received};
pub use raw::RawWs;
pub use server::{TestServer, TestServerBuilder};

/// The demo app of the shipped config.toml, used by most tests.
pub const APP_ID: &str = "123456";
pub const APP_KEY: &str = "app-key";
pub const APP_SECRET: &str = "app-secret";

/// A config with one app (the demo credentials) and extra lines appended to its
/// `[[apps]]` table, e.g. `app_config("max_connections = 2")`.
pub fn app_config(extra_app_lines: &str) -> String {
    format!(
        "[server]\nhost = \"127.0.0.1\"\nport = 0\n\n[[apps]]\napp_id = \"{APP_ID}\"\nkey = \"{APP_KEY}\"\nsecret = \"{APP_SECRET}\"\n{extra_app_lines}\n"
    )
}

/// CPUs in this process's affinity mask (what `--cores auto` means to the server).
pub fn allowed_cpus() -> usize {
    // SAFETY: sched_getaffinity only writes the set it is given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 1;
        }
        libc::CPU_COUNT(&set) as usize
    }
}

/// A loopback port that was free a moment ago (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Parse `connection_established`'s data: (socket id, activity_timeout).
pub fn established_data(msg: &serde_json::Value) -> (String, u64) {
    assert_eq!(msg["event"], "pusher:connection_established", "{msg}");
    let data: serde_json::Value =
        serde_json::from_str(msg["data"].as_str().expect("data is a JSON string")).unwrap();
    (
        data["socket_id"].as_str().unwrap().to_string(),
        data["activity_timeout"].as_u64().unwrap(),
    )
}

/// The shard that owns a socket id: B's last three digits.
pub fn shard_of(socket_id: &str) -> u64 {
    socket_id.split_once('.').unwrap().1.parse::<u64>().unwrap() % 1000
}

/// `auth` for a private/presence subscription of `socket_id` (demo secret).
pub fn channel_auth(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    let message = match channel_data {
        Some(data) => format!("{socket_id}:{channel}:{data}"),
        None => format!("{socket_id}:{channel}"),
    };
    format!("{APP_KEY}:{}", sign::hmac_hex(APP_SECRET, &message))
}
