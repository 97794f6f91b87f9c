//! The error catalogue (websocket.md §16): every `pusher:error` code and its exact
//! message, and the close codes reverb-shard adds.

/// A `pusher:error` the server can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PusherError {
    AppDoesNotExist,
    OverQuota,
    OriginNotAllowed,
    Unauthorized,
    NotAMember,
    InvalidMessage,
    PongNotReceived,
    RateLimited,
    ClientEventsDisabled,
}

impl PusherError {
    pub fn code(self) -> u16 {
        match self {
            PusherError::AppDoesNotExist => 4001,
            PusherError::OverQuota => 4004,
            PusherError::OriginNotAllowed | PusherError::Unauthorized | PusherError::NotAMember => {
                4009
            }
            PusherError::InvalidMessage => 4200,
            PusherError::PongNotReceived => 4201,
            PusherError::RateLimited | PusherError::ClientEventsDisabled => 4301,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            PusherError::AppDoesNotExist => "Application does not exist",
            PusherError::OverQuota => "Application is over connection quota",
            PusherError::OriginNotAllowed => "Origin not allowed",
            PusherError::Unauthorized => "Connection is unauthorized",
            PusherError::NotAMember => "The client is not a member of the specified channel.",
            PusherError::InvalidMessage => "Invalid message format",
            PusherError::PongNotReceived => "Pong reply not received in time",
            PusherError::RateLimited => "Rate limit exceeded",
            PusherError::ClientEventsDisabled => "The app does not have client messaging enabled.",
        }
    }
}

/// Close frames reverb-shard sends without a `pusher:error` (status, reason).
pub mod close {
    pub const SHUTTING_DOWN: (u16, &str) = (4200, "Server shutting down");
    pub const RESTARTING: (u16, &str) = (4200, "Server is restarting");
    pub const SLOW_CONSUMER: (u16, &str) = (4100, "Slow consumer");
    pub const TERMINATED: (u16, &str) = (1000, "Connection terminated");
}
