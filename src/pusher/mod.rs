//! The Pusher Channels protocol (version 7) as Laravel Reverb speaks it: ids, origin
//! rules, rate limits, the message shapes the server emits and the error catalogue.

pub mod auth;
pub mod errors;
pub mod messages;
pub mod origin;
pub mod rate_limit;
pub mod socket_id;
