//! Channels across shards: who is subscribed where, presence membership with one owner
//! shard per channel, the cache of last events, and the publish path that encodes a
//! broadcast once and sends it once per other shard.

pub mod cache;
pub mod kind;
pub mod presence;
pub mod publish;
pub mod registry;
pub mod subscribe;
