//! This shard's subscribers, per (app, channel). Only local connections are here; other
//! shards keep their own, and a broadcast reaches them through the mesh.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::connection::Connection;
use crate::pusher::socket_id::SocketId;

/// Subscribers of one channel on this shard, in a dense map so fan-out walks memory
/// in order.
pub type Subscribers = IndexMap<SocketId, Rc<Connection>>;

#[derive(Default)]
pub struct Registry {
    /// app index → channel → subscribers. Nested so lookups by `&str` need no allocation.
    apps: HashMap<usize, HashMap<Arc<str>, Subscribers>>,
}

impl Registry {
    /// Add `conn` to the channel; false if it was already there.
    pub fn add(&mut self, app: usize, channel: &Arc<str>, conn: &Rc<Connection>) -> bool {
        self.apps
            .entry(app)
            .or_default()
            .entry(channel.clone())
            .or_default()
            .insert(conn.socket_id, conn.clone())
            .is_none()
    }

    /// Remove a socket from a channel; empty channels are dropped.
    pub fn remove(&mut self, app: usize, channel: &str, socket_id: SocketId) -> bool {
        let Some(channels) = self.apps.get_mut(&app) else {
            return false;
        };
        let Some(subscribers) = channels.get_mut(channel) else {
            return false;
        };
        let removed = subscribers.swap_remove(&socket_id).is_some();
        if subscribers.is_empty() {
            channels.remove(channel);
            if channels.is_empty() {
                self.apps.remove(&app);
            }
        }
        removed
    }

    pub fn subscribers(&self, app: usize, channel: &str) -> Option<&Subscribers> {
        self.apps.get(&app)?.get(channel)
    }

    /// Every occupied channel of an app on this shard with its subscriber count.
    pub fn channels_of(&self, app: usize) -> impl Iterator<Item = (&Arc<str>, usize)> {
        self.apps
            .get(&app)
            .into_iter()
            .flat_map(|m| m.iter().map(|(name, subs)| (name, subs.len())))
    }

    /// Total subscriptions on this shard (all apps, all channels).
    pub fn subscription_count(&self) -> usize {
        self.apps
            .values()
            .flat_map(|m| m.values())
            .map(|s| s.len())
            .sum()
    }
}
