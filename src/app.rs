//! The application table: every configured app, found by key (WebSocket) or id
//! (HTTP API). Built once at start, shared read-only by all shards behind an `Arc`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::AppConfig;

/// One application and its process-wide live counters.
#[derive(Debug)]
pub struct App {
    /// Position in the app table: how shards name the app to each other.
    pub index: usize,
    pub config: AppConfig,
    /// Established WebSocket connections of this app on all shards. An atomic, not a
    /// lock: `max_connections` must be exact across shards without a cross-shard
    /// round trip on every connect.
    connections: AtomicU64,
}

impl App {
    pub fn id(&self) -> &str {
        &self.config.app_id
    }

    /// Count a new connection unless the app is at its `max_connections`.
    pub fn try_admit(&self) -> bool {
        match self.config.max_connections {
            None => {
                self.connections.fetch_add(1, Ordering::Relaxed);
                true
            }
            Some(max) => self
                .connections
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                })
                .is_ok(),
        }
    }

    /// Forget a connection counted by `try_admit`.
    pub fn release(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Established connections right now, all shards.
    pub fn connection_count(&self) -> u64 {
        self.connections.load(Ordering::Acquire)
    }
}

/// All apps, indexed both ways.
#[derive(Debug)]
pub struct Apps {
    apps: Vec<Arc<App>>,
    by_key: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
}

impl Apps {
    pub fn new(configs: &[AppConfig]) -> Apps {
        let mut apps = Vec::with_capacity(configs.len());
        let mut by_key = HashMap::new();
        let mut by_id = HashMap::new();
        for (index, config) in configs.iter().enumerate() {
            // First match wins, as in Reverb (config validation rejects duplicates anyway).
            by_key.entry(config.key.clone()).or_insert(index);
            by_id.entry(config.app_id.clone()).or_insert(index);
            apps.push(Arc::new(App {
                index,
                config: config.clone(),
                connections: AtomicU64::new(0),
            }));
        }
        Apps {
            apps,
            by_key,
            by_id,
        }
    }

    pub fn by_key(&self, key: &str) -> Option<&Arc<App>> {
        self.by_key.get(key).map(|&i| &self.apps[i])
    }

    pub fn by_id(&self, id: &str) -> Option<&Arc<App>> {
        self.by_id.get(id).map(|&i| &self.apps[i])
    }

    pub fn by_index(&self, index: usize) -> &Arc<App> {
        &self.apps[index]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<App>> {
        self.apps.iter()
    }
}
