//! The Pusher HTTP API (http-api.md) on the WebSocket port, served by every shard:
//! routing, request signing, triggers, channel queries and user termination.

pub mod query;
pub mod routes;
pub mod signature;
pub mod stats;
pub mod terminate;
pub mod trigger;
pub mod validate;

pub use routes::handle;
