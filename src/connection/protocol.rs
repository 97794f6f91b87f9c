//! What the server does with each complete WebSocket message (websocket.md §5):
//! rate limit, JSON parsing, the double-encoding rule, and dispatch of `pusher:`
//! events and client events.

use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Connection;
use crate::config::ClientEvents;
use crate::pusher::errors::PusherError;
use crate::pusher::messages;
use crate::server::shard::ShardState;

/// Longest message text shown in `--debug` lines.
const DEBUG_PREVIEW: usize = 200;

pub fn on_message(shard: &Rc<ShardState>, conn: &Rc<Connection>, payload: &[u8]) {
    crate::debug!(
        "[shard {}] [app {}] Message Received {} {}",
        shard.id,
        conn.app.id(),
        conn.socket_id,
        preview(payload)
    );
    let limits = &conn.app.config.rate_limiting;
    if limits.enabled {
        let admitted = conn.rate.borrow_mut().admit(
            Instant::now(),
            limits.max_attempts,
            Duration::from_secs(limits.decay_seconds),
        );
        if !admitted {
            if limits.terminate_on_limit {
                conn.refuse(PusherError::RateLimited);
            } else {
                conn.send_error(PusherError::RateLimited);
            }
            return;
        }
    }
    let Some((event, message)) = parse(payload) else {
        return conn.send_error(PusherError::InvalidMessage);
    };
    if let Some(protocol_event) = event.strip_prefix("pusher:") {
        match protocol_event {
            "ping" => conn.send_text(messages::PONG),
            "pong" => {}
            "connection_established" => conn.send_text(&messages::connection_established(
                conn.socket_id,
                conn.app.config.activity_timeout,
            )),
            _ => conn.send_error(PusherError::InvalidMessage),
        }
        return;
    }
    on_client_event(conn, &event, &message);
}

/// Parse a message: a JSON object with a non-empty string `event`; a `data` string that
/// holds JSON is replaced by its decoded value.
fn parse(payload: &[u8]) -> Option<(String, serde_json::Map<String, Value>)> {
    let Value::Object(mut message) = serde_json::from_slice::<Value>(payload).ok()? else {
        return None;
    };
    if let Some(Value::String(text)) = message.get("data") {
        if let Ok(decoded) = serde_json::from_str::<Value>(text) {
            message.insert("data".into(), decoded);
        }
    }
    match message.get("event") {
        Some(Value::String(event)) if !event.is_empty() => Some((event.clone(), message)),
        _ => None,
    }
}

/// Client events (websocket.md §11). Channels are not subscribable yet, so in
/// `members` mode no sender is a member.
fn on_client_event(conn: &Connection, event: &str, message: &serde_json::Map<String, Value>) {
    let channel_ok = matches!(message.get("channel"), Some(Value::String(_)));
    let data_ok = matches!(
        message.get("data"),
        None | Some(Value::Object(_) | Value::Array(_) | Value::Null)
    );
    if !channel_ok || !data_ok {
        return conn.send_error(PusherError::InvalidMessage);
    }
    if !event.starts_with("client-") {
        return;
    }
    match &conn.app.config.accept_client_events_from {
        ClientEvents::Disabled(_) => conn.send_error(PusherError::ClientEventsDisabled),
        ClientEvents::Members => conn.send_error(PusherError::NotAMember),
        ClientEvents::All => {}
    }
}

fn preview(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    match text.char_indices().nth(DEBUG_PREVIEW) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rules() {
        assert!(parse(b"not json").is_none());
        assert!(parse(b"[1,2]").is_none());
        assert!(parse(br#"{"data":{}}"#).is_none());
        assert!(parse(br#"{"event":""}"#).is_none());
        assert!(parse(br#"{"event":5}"#).is_none());
        let (event, message) =
            parse(br#"{"event":"pusher:subscribe","data":"{\"channel\":\"a\"}"}"#).unwrap();
        assert_eq!(event, "pusher:subscribe");
        assert_eq!(message["data"]["channel"], "a");
        let (_, message) = parse(br#"{"event":"x","data":"not json"}"#).unwrap();
        assert_eq!(message["data"], "not json");
    }
}
