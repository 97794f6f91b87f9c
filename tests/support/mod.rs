//! Test support shared by every integration test: start the real `reverb-shard` binary
//! on an ephemeral loopback port with a given config and shard count, connect real
//! WebSocket clients (tungstenite over std sockets), read frames with timeouts, and
//! stop the server cleanly. Everything here is bounded in time.
#![allow(dead_code, unused_imports)]

pub mod client;
pub mod server;

pub use client::Client;
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
