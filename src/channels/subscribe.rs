//! `pusher:subscribe` / `pusher:unsubscribe` and leaving everything on disconnect
//! (websocket.md §8–§10), plus the presence owner's side of joins and leaves.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::kind::{ChannelKind, USER_CHANNEL_PREFIX};
use super::presence::{self, Change, Joiner};
use super::publish::{publish_now, Delivery};
use crate::connection::outbox::Frame;
use crate::connection::{Connection, Subscription};
use crate::pusher::auth;
use crate::pusher::errors::PusherError;
use crate::pusher::messages;
use crate::pusher::socket_id::SocketId;
use crate::scaling::fleet;
use crate::server::shard::ShardState;
use crate::server::ShardMsg;

/// Longest channel name accepted while `pusher_limits` is on: the HTTP API refuses
/// longer names, so such a channel could never receive an event.
pub const MAX_CHANNEL_NAME: usize = 200;

/// A validated subscribe request.
struct Request<'a> {
    channel: &'a str,
    auth: Option<&'a str>,
    /// `channel_data` exactly as sent (signed byte for byte) and decoded.
    channel_data: Option<(&'a str, Value)>,
}

fn parse_request(data: &Value) -> Result<Request<'_>, PusherError> {
    let invalid = PusherError::InvalidMessage;
    let channel = data.get("channel").and_then(Value::as_str).ok_or(invalid)?;
    let auth = match data.get("auth") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(invalid),
    };
    let channel_data = match data.get("channel_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => Some((
            raw.as_str(),
            serde_json::from_str::<Value>(raw).map_err(|_| invalid)?,
        )),
        Some(_) => return Err(invalid),
    };
    Ok(Request {
        channel,
        auth,
        channel_data,
    })
}

pub async fn subscribe(state: &Rc<ShardState>, conn: &Rc<Connection>, data: &Value) {
    let request = match parse_request(data) {
        Ok(r) => r,
        Err(e) => return conn.send_error(e),
    };
    if state.settings.pusher_limits && request.channel.chars().count() > MAX_CHANNEL_NAME {
        return conn.send_error(PusherError::InvalidMessage);
    }
    let kind = ChannelKind::of(request.channel);
    if request.channel.starts_with(USER_CHANNEL_PREFIX) {
        // Only the user it names, signed in with pusher:signin, may join it.
        let allowed = conn
            .signed_in_user()
            .is_some_and(|user| request.channel[USER_CHANNEL_PREFIX.len()..] == *user);
        if !allowed {
            return conn.send_error(PusherError::Unauthorized);
        }
    } else if kind.needs_auth && !signature_ok(conn, &request) {
        return conn.send_error(PusherError::Unauthorized);
    }

    let app = conn.app.index;
    let channel: Arc<str> = Arc::from(request.channel);
    let decoded = request.channel_data.map(|(_, v)| v);
    let user_id = decoded
        .as_ref()
        .and_then(|d| d.get("user_id"))
        .filter(|v| !v.is_null())
        .cloned();
    let mut presence_key = None;
    let answer = if kind.presence {
        let joiner = user_id.as_ref().and_then(|id| {
            presence::user_key(id).map(|key| Joiner {
                key,
                user_id: id.clone(),
                data: decoded.clone().unwrap_or(Value::Null),
            })
        });
        presence_key = joiner.as_ref().map(|j| j.key.clone());
        let owner = presence::owner(app, &channel, state.count);
        let join = ShardMsg::PresenceJoin {
            app,
            channel: channel.clone(),
            socket: conn.socket_id,
            joiner,
        };
        match state.mesh.ask(owner, join).await {
            Ok(ShardMsg::PresenceSnapshot(snapshot)) => snapshot,
            _ => return conn.send_error(PusherError::InvalidMessage),
        }
    } else {
        "{}".to_string()
    };
    if conn.is_closing() {
        // Disconnected while the owner answered: undo the join.
        if let Some(key) = presence_key {
            leave_presence(state, app, &channel, conn.socket_id, key);
        }
        return;
    }
    // A re-subscribe replaces the stored data; the owner already moved a presence
    // socket that changed user id.
    conn.subscriptions.borrow_mut().insert(
        channel.clone(),
        Subscription {
            user_id,
            presence_key,
        },
    );
    state.registry.borrow_mut().add(app, &channel, conn);
    crate::debug!(
        "[shard {}] [app {}] Subscribed {} to {}",
        state.id,
        conn.app.id(),
        conn.socket_id,
        channel
    );
    conn.send_text(&messages::generated(
        "pusher_internal:subscription_succeeded",
        Some(&answer),
        Some(&channel),
    ));
    if kind.caches {
        let cached = state
            .cache
            .borrow()
            .get(app, &channel, Instant::now())
            .cloned();
        match cached {
            Some(frame) => conn.send(Frame::Shared(frame)),
            None => conn.send_text(
                &json!({"event": "pusher:cache_miss", "channel": &*channel}).to_string(),
            ),
        }
    }
}

fn signature_ok(conn: &Connection, request: &Request<'_>) -> bool {
    let Some(auth) = request.auth else {
        return false;
    };
    let message = match request.channel_data {
        Some((raw, _)) if !raw.is_empty() => {
            format!("{}:{}:{}", conn.socket_id, request.channel, raw)
        }
        _ => format!("{}:{}", conn.socket_id, request.channel),
    };
    auth::verify(&conn.app.config.secret, &message, auth)
}

pub fn unsubscribe(state: &ShardState, conn: &Connection, data: &Value) {
    let Some(channel) = data.get("channel").and_then(Value::as_str) else {
        return conn.send_error(PusherError::InvalidMessage);
    };
    let removed = conn.subscriptions.borrow_mut().remove_entry(channel);
    if let Some((channel, subscription)) = removed {
        forget(state, conn, &channel, subscription);
    }
}

/// On disconnect: leave every channel, with presence effects.
pub fn leave_all(state: &ShardState, conn: &Connection) {
    let subscriptions = std::mem::take(&mut *conn.subscriptions.borrow_mut());
    for (channel, subscription) in subscriptions {
        forget(state, conn, &channel, subscription);
    }
}

fn forget(state: &ShardState, conn: &Connection, channel: &Arc<str>, subscription: Subscription) {
    let app = conn.app.index;
    state
        .registry
        .borrow_mut()
        .remove(app, channel, conn.socket_id);
    if let Some(key) = subscription.presence_key {
        leave_presence(state, app, channel, conn.socket_id, key);
    }
}

fn leave_presence(
    state: &ShardState,
    app: usize,
    channel: &Arc<str>,
    socket: SocketId,
    key: String,
) {
    let owner = presence::owner(app, channel, state.count);
    let leave = ShardMsg::PresenceLeave {
        app,
        channel: channel.clone(),
        socket,
        key,
    };
    if owner == state.id {
        on_owner_message(state, leave);
    } else {
        state.mesh.post(owner, leave);
    }
}

/// The owner shard's handling of presence joins and leaves. Returns the snapshot for
/// a join. Membership changes are announced before the join is answered, so the
/// other members hear `member_added` before the joiner's `subscription_succeeded`.
pub fn on_owner_message(state: &ShardState, msg: ShardMsg) -> Option<ShardMsg> {
    match msg {
        ShardMsg::PresenceJoin {
            app,
            channel,
            socket,
            joiner,
        } => {
            let told = joiner.as_ref().map(|j| (j.key.clone(), j.data.clone()));
            let (changes, snapshot) = state
                .presence
                .borrow_mut()
                .join(app, &channel, socket, joiner);
            for change in changes {
                announce(state, app, &channel, Some(socket), change);
            }
            if let Some((key, data)) = told {
                let socket = socket.to_string();
                fleet::announce_local(state, app, &channel, &socket, &key, Some(data));
            }
            Some(ShardMsg::PresenceSnapshot(snapshot))
        }
        ShardMsg::PresenceLeave {
            app,
            channel,
            socket,
            key,
        } => {
            let removed = state
                .presence
                .borrow_mut()
                .leave(app, &channel, socket, &key);
            if let Some(user_id) = removed {
                announce(state, app, &channel, Some(socket), Change::Removed(user_id));
            }
            fleet::announce_local(state, app, &channel, &socket.to_string(), &key, None);
            None
        }
        _ => None,
    }
}

/// Tell the channel's subscribers on every shard about a membership change, except
/// the socket that caused it.
pub fn announce(
    state: &ShardState,
    app: usize,
    channel: &Arc<str>,
    except: Option<SocketId>,
    change: Change,
) {
    let (event, data) = match change {
        Change::Added(data) => ("pusher_internal:member_added", data.to_string()),
        Change::Removed(user_id) => (
            "pusher_internal:member_removed",
            json!({ "user_id": user_id }).to_string(),
        ),
    };
    let json = messages::generated(event, Some(&data), Some(channel));
    publish_now(
        state,
        Delivery::member_event(app, channel.clone(), &json, except),
    );
}
