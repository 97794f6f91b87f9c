//! The JSON the server sends, in Reverb's key order (`event`, `data`, `channel`), with
//! `data` of generated messages being a string that holds JSON (websocket.md §1).

use serde_json::json;

use super::errors::PusherError;
use super::socket_id::SocketId;

pub const PONG: &str = r#"{"event":"pusher:pong"}"#;
pub const PING: &str = r#"{"event":"pusher:ping"}"#;

/// `pusher:connection_established`.
pub fn connection_established(socket_id: SocketId, activity_timeout: u64) -> String {
    let data = json!({ "socket_id": socket_id.to_string(), "activity_timeout": activity_timeout });
    generated(
        "pusher:connection_established",
        Some(&data.to_string()),
        None,
    )
}

/// `pusher:error` with its code and exact message (no `channel`).
pub fn error(e: PusherError) -> String {
    let data = json!({ "code": e.code(), "message": e.message() });
    generated("pusher:error", Some(&data.to_string()), None)
}

/// A message whose `data` (if any) is already JSON text, sent as a JSON string.
pub fn generated(event: &str, data: Option<&str>, channel: Option<&str>) -> String {
    let mut out = serde_json::Map::new();
    out.insert("event".into(), event.into());
    if let Some(data) = data {
        out.insert("data".into(), data.into());
    }
    if let Some(channel) = channel {
        out.insert("channel".into(), channel.into());
    }
    serde_json::Value::Object(out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_shapes() {
        assert_eq!(
            error(PusherError::AppDoesNotExist),
            r#"{"event":"pusher:error","data":"{\"code\":4001,\"message\":\"Application does not exist\"}"}"#
        );
        let id = SocketId::parse("482915372.91823003").unwrap();
        assert_eq!(
            connection_established(id, 30),
            r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"482915372.91823003\",\"activity_timeout\":30}"}"#
        );
        assert_eq!(
            generated(
                "pusher_internal:subscription_succeeded",
                Some("{}"),
                Some("orders")
            ),
            r#"{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"orders"}"#
        );
    }
}
