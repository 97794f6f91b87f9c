//! The WebSocket layer: RFC 6455 opening handshake and frames (server side).

pub mod frame;
pub mod handshake;
