//! The WebSocket layer: RFC 6455 frames (server side).

pub mod frame;
