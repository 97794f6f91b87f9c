//! The JSON envelopes on the Redis channel (scaling.md §2): the ones Reverb knows
//! (`message`, `terminate`, `metrics`, answers under a request key) and reverb-shard's
//! own `reverb_shard:*` kinds, which carry no `application` so Reverb ignores them.

use serde_json::{json, Map, Value};

use super::settings::ScalingSettings;

pub const PRESENCE: &str = "reverb_shard:presence";
pub const HEARTBEAT: &str = "reverb_shard:heartbeat";
pub const HELLO: &str = "reverb_shard:hello";

/// A `message` envelope: `payload` is the event (HTTP `events` shape with `channels`,
/// a batch item with `channel`, or a relayed client event).
pub fn message(
    settings: &ScalingSettings,
    app: usize,
    payload: Value,
    socket_id: Option<String>,
) -> String {
    let mut out = Map::new();
    out.insert("type".into(), "message".into());
    out.insert(
        "application".into(),
        settings.applications[app].as_str().into(),
    );
    out.insert("payload".into(), payload);
    if let Some(socket_id) = socket_id {
        out.insert("socket_id".into(), socket_id.into());
    }
    out.insert("node_id".into(), settings.node_id.as_str().into());
    Value::Object(out).to_string()
}

/// A `terminate` envelope for `user_id` (always sent as a string).
pub fn terminate(settings: &ScalingSettings, app: usize, user_id: &str) -> String {
    json!({
        "type": "terminate",
        "application": settings.applications[app],
        "payload": {"user_id": user_id},
        "node_id": settings.node_id,
    })
    .to_string()
}

/// A `metrics` request (payload = the serialized PendingMetric).
pub fn metrics_request(serialized: &str) -> String {
    json!({"type": "metrics", "payload": serialized}).to_string()
}

/// One node's answer to the request `key`: must be an object or an array.
pub fn answer(key: &str, payload: Value) -> String {
    let payload = match payload {
        v @ (Value::Object(_) | Value::Array(_)) => v,
        _ => Value::Array(Vec::new()),
    };
    json!({"type": key, "payload": payload}).to_string()
}

/// A fleet-presence change made on this node.
#[derive(Clone, Debug)]
pub struct PresenceChange {
    pub app_id: String,
    pub channel: String,
    pub socket_id: String,
    /// `Some(channel_data)` for a join, `None` for a leave.
    pub joined: Option<Value>,
    pub user_key: String,
}

pub fn presence(settings: &ScalingSettings, change: &PresenceChange) -> String {
    let mut out = Map::new();
    out.insert("type".into(), PRESENCE.into());
    out.insert("node_id".into(), settings.instance().into());
    out.insert("app_id".into(), change.app_id.as_str().into());
    out.insert("channel".into(), change.channel.as_str().into());
    out.insert("socket_id".into(), change.socket_id.as_str().into());
    out.insert("user_key".into(), change.user_key.as_str().into());
    match &change.joined {
        Some(data) => {
            out.insert("op".into(), "join".into());
            out.insert(
                "user_id".into(),
                data.get("user_id").cloned().unwrap_or(Value::Null),
            );
            out.insert(
                "user_info".into(),
                data.get("user_info").cloned().unwrap_or(Value::Null),
            );
            out.insert("channel_data".into(), data.clone());
        }
        None => {
            out.insert("op".into(), "leave".into());
        }
    }
    Value::Object(out).to_string()
}

/// `reverb_shard:heartbeat` (every 5 s) or `reverb_shard:hello` (after subscribing:
/// asks the other nodes for their presence members).
pub fn beacon(settings: &ScalingSettings, kind: &str) -> String {
    json!({"type": kind, "node_id": settings.instance()}).to_string()
}

/// What arrived on the channel, as far as routing needs it.
#[derive(Debug)]
pub enum Inbound {
    Message {
        application: String,
        payload: Map<String, Value>,
        socket_id: Option<String>,
        node_id: Option<String>,
    },
    Terminate {
        application: String,
        user_id: String,
        node_id: Option<String>,
    },
    Metrics {
        request: String,
    },
    Presence(Map<String, Value>),
    Heartbeat {
        node: String,
    },
    Hello {
        node: String,
    },
    /// Any other `type` with a payload: maybe the answer to one of our requests.
    Answer {
        key: String,
        payload: Value,
    },
}

/// Parse one message from the channel; `Err` says why it is ignored (logged at debug).
pub fn parse(bytes: &[u8]) -> Result<Inbound, &'static str> {
    let Ok(Value::Object(mut envelope)) = serde_json::from_slice::<Value>(bytes) else {
        return Err("not a JSON object");
    };
    let Some(Value::String(kind)) = envelope.remove("type") else {
        return Err("no type");
    };
    let string = |v: Option<Value>| match v {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let node_id = string(envelope.remove("node_id"));
    match kind.as_str() {
        "message" => {
            let application = string(envelope.remove("application")).ok_or("no application")?;
            let Some(Value::Object(payload)) = envelope.remove("payload") else {
                return Err("message without an object payload");
            };
            Ok(Inbound::Message {
                application,
                payload,
                socket_id: string(envelope.remove("socket_id")),
                node_id,
            })
        }
        "terminate" => {
            let application = string(envelope.remove("application")).ok_or("no application")?;
            let user_id = match envelope.remove("payload") {
                Some(Value::Object(mut p)) => string(p.remove("user_id")),
                _ => None,
            }
            .ok_or("terminate without payload.user_id")?;
            Ok(Inbound::Terminate {
                application,
                user_id,
                node_id,
            })
        }
        "metrics" => Ok(Inbound::Metrics {
            request: string(envelope.remove("payload")).ok_or("metrics without payload")?,
        }),
        PRESENCE => {
            envelope.insert("node_id".into(), node_id.ok_or("no node_id")?.into());
            Ok(Inbound::Presence(envelope))
        }
        HEARTBEAT => Ok(Inbound::Heartbeat {
            node: node_id.ok_or("no node_id")?,
        }),
        HELLO => Ok(Inbound::Hello {
            node: node_id.ok_or("no node_id")?,
        }),
        _ => Ok(Inbound::Answer {
            key: kind,
            payload: envelope.remove("payload").ok_or("no payload")?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverb_envelopes_parse() {
        let m = parse(br#"{"type":"message","application":"O:1:\"x\":0:{}","payload":{"event":"b","channel":"orders","data":"{}"},"socket_id":"1.2"}"#).unwrap();
        assert!(
            matches!(m, Inbound::Message { socket_id: Some(ref s), node_id: None, .. } if s == "1.2")
        );
        let t =
            parse(br#"{"type":"terminate","application":"A","payload":{"user_id":42}}"#).unwrap();
        assert!(matches!(t, Inbound::Terminate { ref user_id, .. } if user_id == "42"));
        let a = parse(br#"{"type":"Xy12Ab34Cd","payload":[]}"#).unwrap();
        assert!(matches!(a, Inbound::Answer { ref key, .. } if key == "Xy12Ab34Cd"));
        // PHP's json_encode escapes slashes; parsing, not byte comparison, handles it.
        let m =
            parse(br#"{"type":"message","application":"a\/b","payload":{"event":"e"}}"#).unwrap();
        assert!(matches!(m, Inbound::Message { ref application, .. } if application == "a/b"));
    }

    #[test]
    fn junk_is_refused_not_fatal() {
        for junk in [
            &b"nope"[..],
            b"[]",
            b"{}",
            b"{\"type\":1}",
            b"{\"type\":\"message\"}",
            b"{\"type\":\"message\",\"application\":\"x\",\"payload\":\"s\"}",
            b"{\"type\":\"terminate\",\"application\":\"x\",\"payload\":{}}",
            b"{\"type\":\"metrics\",\"payload\":{}}",
            b"{\"type\":\"abc\"}",
            b"{\"type\":\"reverb_shard:presence\"}",
        ] {
            assert!(parse(junk).is_err(), "{}", String::from_utf8_lossy(junk));
        }
    }
}
