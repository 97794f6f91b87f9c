//! Horizontal scaling over Redis pub/sub (scaling.md): several nodes behind a load
//! balancer share one Redis channel and behave as one server.
//!
//! Shard 0 owns the process's only Redis link (`link.rs`: one publisher and one
//! subscriber connection). Every shard delivers its own publishes locally at once and
//! hands the envelope to shard 0 (`publish` here); shard 0 routes what arrives
//! (`inbound.rs`) to the shards over the mesh. Fleet-wide HTTP answers use Reverb's
//! request/answer protocol (`query.rs`, PHP-serialized requests in `php.rs`,
//! `application.rs`, `pending_metric.rs`, merged by `merge.rs`); fleet presence
//! (`fleet.rs`) is reverb-shard's own extension, ignored by Reverb nodes.

pub mod application;
pub mod conn;
pub mod envelope;
pub mod fleet;
pub mod inbound;
pub mod link;
pub mod merge;
pub mod pending_metric;
pub mod php;
pub mod query;
pub mod resp;
pub mod settings;

use crate::server::shard::ShardState;
use crate::server::ShardMsg;

/// Send an envelope to the other nodes (no-op without scaling). Never waits: other
/// shards post it to shard 0, which queues it for the publisher connection.
pub fn publish(state: &ShardState, json: impl FnOnce(&settings::ScalingSettings) -> String) {
    let Some(settings) = &state.settings.scaling else {
        return;
    };
    let json = json(settings);
    match &state.link {
        Some(link) => link.publish(json),
        None => state.mesh.post(0, ShardMsg::ScalingPublish(json)),
    }
}
