//! The server-wide settings a shard needs at run time, taken once from the config.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::scaling::settings::ScalingSettings;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Route prefix, "" or "/segment".
    pub path: String,
    pub max_request_size: usize,
    pub outbound_buffer: usize,
    pub shutdown_timeout: Duration,
    /// Pusher's limits on names and sizes (config.md `pusher_limits`).
    pub pusher_limits: bool,
    /// The Redis link's settings; `None` without scaling.
    pub scaling: Option<Arc<ScalingSettings>>,
}

impl Settings {
    /// Whether presence channels list the whole fleet's members (scaling with
    /// `presence = "fleet"`), so this node's presence owners know every member.
    pub fn fleet_presence(&self) -> bool {
        self.scaling.as_ref().is_some_and(|s| s.fleet_presence)
    }

    pub fn from_config(config: &Config) -> Settings {
        Settings {
            path: config.server.path.clone(),
            max_request_size: config.server.max_request_size,
            outbound_buffer: config.server.outbound_buffer,
            shutdown_timeout: Duration::from_secs(config.server.shutdown_timeout),
            pusher_limits: config.server.pusher_limits,
            // The Redis target was checked when the configuration was loaded.
            scaling: ScalingSettings::from_config(config)
                .unwrap_or_else(|e| panic!("unchecked scaling configuration: {e}"))
                .map(Arc::new),
        }
    }
}
