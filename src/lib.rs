//! reverb-shard: a thread-per-core Pusher Channels server, a drop-in replacement for
//! Laravel Reverb. The binary (`src/main.rs`) is a thin CLI over this library so that
//! tests and benchmarks can reach the same code.

pub mod config;
pub mod ws;
