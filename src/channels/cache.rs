//! The last event of each cache channel (websocket.md §12). Kept 30 minutes from the
//! event whether or not anyone is subscribed (Pusher's rule; Reverb forgets it when
//! the channel empties). Every shard receives every broadcast, so each keeps its own
//! copy and a subscriber on any shard is answered locally.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a cached event stays.
pub const CACHE_TTL: Duration = Duration::from_secs(30 * 60);

/// A channel's last event: the frame and when it was published.
type Cached = (Arc<[u8]>, Instant);

#[derive(Default)]
pub struct EventCache {
    entries: HashMap<usize, HashMap<Arc<str>, Cached>>,
}

impl EventCache {
    /// Remember `frame` (the exact WebSocket frame subscribers got) as the channel's last event.
    pub fn store(&mut self, app: usize, channel: &Arc<str>, frame: &Arc<[u8]>, now: Instant) {
        self.entries
            .entry(app)
            .or_default()
            .insert(channel.clone(), (frame.clone(), now));
    }

    /// The last event's frame, if one is younger than the TTL.
    pub fn get(&self, app: usize, channel: &str, now: Instant) -> Option<&Arc<[u8]>> {
        let (frame, at) = self.entries.get(&app)?.get(channel)?;
        (now.duration_since(*at) < CACHE_TTL).then_some(frame)
    }

    /// Drop expired events so memory follows live channels only.
    pub fn purge(&mut self, now: Instant) {
        for channels in self.entries.values_mut() {
            channels.retain(|_, (_, at)| now.duration_since(*at) < CACHE_TTL);
        }
        self.entries.retain(|_, channels| !channels.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_after_the_ttl() {
        let mut cache = EventCache::default();
        let t0 = Instant::now();
        let name: Arc<str> = Arc::from("cache-x");
        let frame: Arc<[u8]> = Arc::from(&b"abc"[..]);
        cache.store(0, &name, &frame, t0);
        assert!(cache
            .get(0, "cache-x", t0 + Duration::from_secs(60))
            .is_some());
        assert!(cache.get(0, "cache-x", t0 + CACHE_TTL).is_none());
        assert!(cache.get(1, "cache-x", t0).is_none());
        cache.purge(t0 + CACHE_TTL);
        assert!(cache.entries.is_empty());
    }
}
