//! What the server does with each complete WebSocket message (websocket.md §5):
//! rate limit, JSON parsing, the double-encoding rule, and dispatch of `pusher:`
//! events and client events.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{signin, Connection};
use crate::channels::publish::{publish, Delivery};
use crate::channels::subscribe;
use crate::config::ClientEvents;
use crate::pusher::errors::PusherError;
use crate::pusher::messages;
use crate::server::shard::ShardState;

/// Longest message text shown in `--debug` lines.
const DEBUG_PREVIEW: usize = 200;

/// The rest of a message's handling when it must wait (a subscription's round trip to
/// other shards, a client event's fan-out): boxed, because such states are large and
/// rare and would otherwise sit in every idle connection's task.
pub type Continuation<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Handle one complete message. Most answers are immediate; the rest is returned as a
/// [`Continuation`] for the session to await.
pub fn on_message<'a>(
    shard: &'a Rc<ShardState>,
    conn: &'a Rc<Connection>,
    payload: &[u8],
) -> Option<Continuation<'a>> {
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
            shard.metrics.counters.rate_limited(conn.app.index);
            if limits.terminate_on_limit {
                conn.refuse(PusherError::RateLimited);
            } else {
                conn.send_error(PusherError::RateLimited);
            }
            return None;
        }
    }
    let Some((event, mut message)) = parse(payload) else {
        conn.send_error(PusherError::InvalidMessage);
        return None;
    };
    // Received = handled: past the rate limit and a Pusher message (what Reverb counts
    // for Pulse, minus its handler's own failures).
    shard.metrics.counters.received(conn.app.index);
    if let Some(protocol_event) = event.strip_prefix("pusher:") {
        let data = message.get("data").unwrap_or(&Value::Null);
        match protocol_event {
            "ping" => conn.send_text(messages::PONG),
            "pong" => {}
            "connection_established" => conn.send_text(&messages::connection_established(
                conn.socket_id,
                conn.app.config.activity_timeout,
            )),
            "subscribe" => {
                let data = message.remove("data").unwrap_or(Value::Null);
                return Some(Box::pin(async move {
                    subscribe::subscribe(shard, conn, &data).await
                }));
            }
            "unsubscribe" => subscribe::unsubscribe(shard, conn, data),
            "signin" => signin::signin(conn, data),
            _ => conn.send_error(PusherError::InvalidMessage),
        }
        return None;
    }
    Some(Box::pin(on_client_event(shard, conn, event, message)))
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

/// Client events (websocket.md §11): relayed to the channel's other subscribers on
/// every shard, never echoed to the sender.
async fn on_client_event(
    shard: &ShardState,
    conn: &Connection,
    event: String,
    mut message: serde_json::Map<String, Value>,
) {
    let channel = match message.get("channel") {
        Some(Value::String(channel)) => channel.clone(),
        _ => return conn.send_error(PusherError::InvalidMessage),
    };
    if !matches!(
        message.get("data"),
        None | Some(Value::Object(_) | Value::Array(_) | Value::Null)
    ) {
        return conn.send_error(PusherError::InvalidMessage);
    }
    if !event.starts_with("client-") {
        return;
    }
    let relayed = match &conn.app.config.accept_client_events_from {
        ClientEvents::Disabled(_) => return conn.send_error(PusherError::ClientEventsDisabled),
        ClientEvents::Members => {
            let user_id = match conn.subscriptions.borrow().get(channel.as_str()) {
                None => return conn.send_error(PusherError::NotAMember),
                Some(subscription) => subscription.user_id.clone(),
            };
            let mut out = serde_json::Map::new();
            out.insert("event".into(), event.as_str().into());
            out.insert("channel".into(), channel.as_str().into());
            out.insert("data".into(), message.remove("data").unwrap_or(Value::Null));
            if let Some(user_id) = user_id {
                out.insert("user_id".into(), user_id);
            }
            out
        }
        // Relayed as received (after the data decoding), without user_id.
        ClientEvents::All => message,
    };
    let relayed = Value::Object(relayed);
    let json = relayed.to_string();
    crate::scaling::publish(shard, |scaling| {
        crate::scaling::envelope::message(
            scaling,
            conn.app.index,
            // Relayed exactly as local subscribers get it (scaling.md §2).
            relayed,
            Some(conn.socket_id.to_string()),
        )
    });
    let delivery = Delivery::new(
        conn.app.index,
        Arc::from(channel.as_str()),
        &json,
        Some(conn.socket_id),
    );
    publish(shard, delivery).await;
}

/// A message cut to 200 characters for `--debug` lines.
pub fn preview(payload: &[u8]) -> String {
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
