//! The `route` label of HTTP API requests: a fixed set, named after the path shape (never
//! after the app id or channel name in it, so the number of series stays bounded).

use crate::api::query;

/// Which API route a request asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiRoute {
    Events,
    BatchEvents,
    Channels,
    Channel,
    ChannelUsers,
    Connections,
    TerminateConnections,
    /// Any other path under `/apps/`.
    Unknown,
}

impl ApiRoute {
    /// Classify `rest`, the request path after the server prefix (query excluded),
    /// the way the API router matches it.
    pub fn of(rest: &str) -> ApiRoute {
        let segments: Vec<String> = rest
            .trim_start_matches('/')
            .split('/')
            .map(|s| query::decode(s, false))
            .collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        match segs.as_slice() {
            ["apps", id, "events"] if !id.is_empty() => ApiRoute::Events,
            ["apps", id, "batch_events"] if !id.is_empty() => ApiRoute::BatchEvents,
            ["apps", id, "channels"] if !id.is_empty() => ApiRoute::Channels,
            ["apps", id, "channels", ch] if !id.is_empty() && !ch.is_empty() => ApiRoute::Channel,
            ["apps", id, "channels", ch, "users"] if !id.is_empty() && !ch.is_empty() => {
                ApiRoute::ChannelUsers
            }
            ["apps", id, "connections"] if !id.is_empty() => ApiRoute::Connections,
            ["apps", id, "users", user, "terminate_connections"]
                if !id.is_empty() && !user.is_empty() =>
            {
                ApiRoute::TerminateConnections
            }
            _ => ApiRoute::Unknown,
        }
    }

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            ApiRoute::Events => "events",
            ApiRoute::BatchEvents => "batch_events",
            ApiRoute::Channels => "channels",
            ApiRoute::Channel => "channel",
            ApiRoute::ChannelUsers => "channel_users",
            ApiRoute::Connections => "connections",
            ApiRoute::TerminateConnections => "terminate_connections",
            ApiRoute::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_shape() {
        assert_eq!(ApiRoute::of("/apps/1/events"), ApiRoute::Events);
        assert_eq!(ApiRoute::of("/apps/1/batch_events"), ApiRoute::BatchEvents);
        assert_eq!(ApiRoute::of("/apps/1/channels"), ApiRoute::Channels);
        assert_eq!(ApiRoute::of("/apps/1/channels/a"), ApiRoute::Channel);
        assert_eq!(
            ApiRoute::of("/apps/1/channels/presence-a/users"),
            ApiRoute::ChannelUsers
        );
        assert_eq!(ApiRoute::of("/apps/1/connections"), ApiRoute::Connections);
        assert_eq!(
            ApiRoute::of("/apps/1/users/u/terminate_connections"),
            ApiRoute::TerminateConnections
        );
        assert_eq!(ApiRoute::of("/apps/1/%65vents"), ApiRoute::Events);
        assert_eq!(ApiRoute::of("/apps//events"), ApiRoute::Unknown);
        assert_eq!(ApiRoute::of("/apps/1/nope"), ApiRoute::Unknown);
        assert_eq!(ApiRoute::of("/apps/1/channels/"), ApiRoute::Unknown);
    }
}
