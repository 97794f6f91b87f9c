//! What one shard reports to a scrape: copies of its counters plus the gauges it can
//! only know on its own thread (its connections, subscriptions and occupied channels),
//! taken on that shard by the mesh handler and sent to the shard serving `/metrics`.

use std::collections::HashSet;
use std::sync::Arc;

use super::http::ApiRoute;
use crate::server::shard::ShardState;

/// One app on one shard.
#[derive(Clone, Debug, Default)]
pub struct AppSnapshot {
    pub connections: u64,
    pub subscriptions: u64,
    /// Occupied channel names: a channel with subscribers on several shards must be
    /// counted once, so the names travel (as shared `Arc`s, not copies).
    pub channels: Vec<Arc<str>>,
    pub received: u64,
    pub sent: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rate_limited: u64,
    pub slow_consumers: u64,
}

/// One shard.
#[derive(Clone, Debug, Default)]
pub struct ShardSnapshot {
    pub shard: usize,
    /// Indexed by `App::index`.
    pub apps: Vec<AppSnapshot>,
    pub http: Vec<(ApiRoute, u16, u64)>,
    /// How often a non-waiting mesh send from this shard found its queue full.
    pub mesh_full_events: u64,
    /// Messages parked in this shard's outboxes, waiting for room in a mesh queue.
    pub mesh_parked: usize,
}

impl ShardSnapshot {
    /// Take this shard's figures (runs on the shard's own thread).
    pub fn take(state: &ShardState) -> ShardSnapshot {
        let metrics = &state.metrics.counters;
        let mut apps: Vec<AppSnapshot> = metrics
            .apps()
            .iter()
            .map(|c| AppSnapshot {
                received: c.received.get(),
                sent: c.sent.get(),
                bytes_in: c.bytes_in.get(),
                bytes_out: c.bytes_out.get(),
                rate_limited: c.rate_limited.get(),
                slow_consumers: c.slow_consumers.get(),
                ..AppSnapshot::default()
            })
            .collect();
        for conn in state.connections.borrow().values() {
            if let Some(app) = apps.get_mut(conn.app.index) {
                app.connections += 1;
            }
        }
        let registry = state.registry.borrow();
        for (index, app) in apps.iter_mut().enumerate() {
            for (name, subscribers) in registry.channels_of(index) {
                app.subscriptions += subscribers as u64;
                app.channels.push(name.clone());
            }
        }
        ShardSnapshot {
            shard: state.id,
            apps,
            http: metrics.http_counts(),
            mesh_full_events: state.mesh.full_events(),
            mesh_parked: state.mesh.parked(),
        }
    }
}

/// Occupied channels of app `index` across all shards, each counted once.
pub fn distinct_channels(shards: &[ShardSnapshot], index: usize) -> u64 {
    let mut names: HashSet<&str> = HashSet::new();
    for shard in shards {
        if let Some(app) = shard.apps.get(index) {
            names.extend(app.channels.iter().map(|n| &**n));
        }
    }
    names.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_on_two_shards_counts_once() {
        let shard = |names: &[&str]| ShardSnapshot {
            apps: vec![AppSnapshot {
                channels: names.iter().map(|n| Arc::from(*n)).collect(),
                ..AppSnapshot::default()
            }],
            ..ShardSnapshot::default()
        };
        let shards = [shard(&["a", "b"]), shard(&["b", "c"]), shard(&[])];
        assert_eq!(distinct_channels(&shards, 0), 3);
        assert_eq!(distinct_channels(&shards, 1), 0);
    }
}
