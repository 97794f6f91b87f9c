//! reverb-shard: a thread-per-core Pusher Channels server, a drop-in replacement for
//! Laravel Reverb. The binary (`src/main.rs`) is a thin CLI over this library so that
//! tests and benchmarks reach the same code.

#[macro_use]
pub mod log;

pub mod api;
pub mod app;
pub mod bench;
pub mod channels;
pub mod cli;
pub mod config;
pub mod connection;
pub mod http;
pub mod install;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod pidfile;
pub mod pusher;
pub mod restart;
pub mod scaling;
pub mod selfcheck;
pub mod server;
pub mod tls;
pub mod ws;
