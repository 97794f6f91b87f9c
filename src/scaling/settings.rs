//! What every shard needs to know about the Redis link, fixed at start.

use crate::config::{Config, PresenceScope, RedisEndpoint};

#[derive(Debug, Clone)]
pub struct ScalingSettings {
    /// Tags this node's envelopes so it can drop its own on receipt (scaling.md §3).
    pub node_id: String,
    /// Random per process start: tells a restarted node (same `node_id`) from its
    /// previous life, whose presence members must be forgotten.
    pub incarnation: String,
    pub channel: String,
    pub endpoint: RedisEndpoint,
    /// Seconds of failed reconnection after which an error is logged (and again).
    pub timeout: u64,
    pub fleet_presence: bool,
    /// Each app's serialized `Laravel\Reverb\Application`, by app index.
    pub applications: Vec<String>,
}

impl ScalingSettings {
    /// `None` when scaling is off. Errors name what is wrong with the Redis target.
    pub fn from_config(config: &Config) -> Result<Option<ScalingSettings>, String> {
        let sc = &config.scaling;
        if !sc.enabled {
            return Ok(None);
        }
        let endpoint = sc
            .redis
            .endpoint()
            .map_err(|e| format!("[scaling.redis] url / REDIS_URL: {e}"))?;
        Ok(Some(ScalingSettings {
            node_id: sc.node_id.clone().unwrap_or_else(|| random_id(12)),
            incarnation: random_id(8),
            channel: sc.channel.clone(),
            endpoint,
            timeout: sc.redis.timeout.max(1),
            fleet_presence: sc.presence == PresenceScope::Fleet,
            applications: config
                .apps
                .iter()
                .map(super::application::serialize)
                .collect(),
        }))
    }

    /// The holder tag of this process in fleet presence.
    pub fn instance(&self) -> String {
        format!("{}/{}", self.node_id, self.incarnation)
    }
}

/// `len` random characters from [a-z0-9].
pub fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    getrandom::getrandom(&mut bytes).expect("the OS random source failed");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}
