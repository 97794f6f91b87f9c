//! Fleet presence (scaling.md §6, reverb-shard only): presence owners on every node
//! learn the members that other nodes' sockets hold, so `member_added` /
//! `member_removed` fire on a user's first / last connection in the whole fleet and
//! snapshots and user counts cover it.
//!
//! Each owner shard announces its local joins and leaves (`reverb_shard:presence`).
//! Shard 0 publishes a heartbeat every 5 s and forgets the members of a process that
//! has been silent for 15 s or that restarted (same node id, new incarnation). A
//! process that (re)subscribes says hello; every other node answers by re-announcing
//! its local members. Reverb nodes ignore all of these envelope types.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::envelope::{self, PresenceChange};
use super::link::Link;
use crate::channels::presence::{self, user_key, Change, Joiner};
use crate::server::shard::ShardState;
use crate::server::ShardMsg;

pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
pub const SILENT_AFTER: Duration = Duration::from_secs(15);

/// Shard 0: heartbeats and expiry, until the shard stops.
pub fn start(state: &Rc<ShardState>, link: &Rc<Link>) {
    if !link.settings.fleet_presence {
        return;
    }
    let (state, link) = (state.clone(), link.clone());
    glommio::spawn_local(async move {
        loop {
            let slept = super::link::with_stop(&state, glommio::timer::sleep(HEARTBEAT_EVERY));
            if slept.await.is_none() {
                return;
            }
            link.publish(envelope::beacon(&link.settings, envelope::HEARTBEAT));
            expire(&state, &link);
        }
    })
    .detach();
}

/// A heartbeat or hello from `instance`; a hello asks for our members.
pub fn on_beacon(state: &ShardState, link: &Link, instance: &str, hello: bool) {
    if instance == link.settings.instance() {
        return;
    }
    seen(state, link, instance);
    if hello {
        for to in 0..state.count {
            state.mesh.post(to, ShardMsg::DumpPresence);
        }
    }
}

/// Another node's join or leave: hand it to the channel's owner shard here.
pub fn on_presence(state: &ShardState, link: &Link, mut change: Map<String, Value>) {
    let mut text = |k: &str| match change.remove(k) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let (Some(instance), Some(app_id), Some(channel), Some(socket), Some(key), Some(op)) = (
        text("node_id"),
        text("app_id"),
        text("channel"),
        text("socket_id"),
        text("user_key"),
        text("op"),
    ) else {
        return crate::debug!("ignored a presence envelope without its fields");
    };
    if instance == link.settings.instance() {
        return;
    }
    seen(state, link, &instance);
    let Some(app) = state.apps.by_id(&app_id).map(|a| a.index) else {
        return;
    };
    let joined = match op.as_str() {
        "join" => match change.remove("channel_data") {
            Some(data @ Value::Object(_)) => Some(data),
            _ => return,
        },
        "leave" => None,
        _ => return,
    };
    let owner = presence::owner(app, &channel, state.count);
    state.mesh.post(
        owner,
        ShardMsg::RemotePresence {
            app,
            channel: Arc::from(channel.as_str()),
            instance: Arc::from(instance.as_str()),
            socket,
            key,
            joined,
        },
    );
}

/// The owner shard applies another node's join or leave and tells local subscribers.
pub fn apply_remote(
    state: &ShardState,
    app: usize,
    channel: Arc<str>,
    instance: Arc<str>,
    socket: String,
    key: String,
    joined: Option<Value>,
) {
    let changes = match joined {
        Some(data) => {
            let user_id = data.get("user_id").cloned().unwrap_or(Value::Null);
            if user_key(&user_id).as_deref() != Some(key.as_str()) {
                return;
            }
            let joiner = Joiner { key, user_id, data };
            state
                .presence
                .borrow_mut()
                .join_remote(app, &channel, instance, socket, joiner)
        }
        None => state
            .presence
            .borrow_mut()
            .leave_remote(app, &channel, instance, socket)
            .map(Change::Removed)
            .into_iter()
            .collect(),
    };
    for change in changes {
        crate::channels::subscribe::announce(state, app, &channel, None, change);
    }
}

/// Every shard: forget the members `instance` held.
pub fn drop_instance(state: &ShardState, instance: &str) {
    let removed = state.presence.borrow_mut().drop_instance(instance);
    for (app, channel, user_id) in removed {
        crate::channels::subscribe::announce(state, app, &channel, None, Change::Removed(user_id));
    }
}

/// Every shard: re-announce the members this node's sockets hold (a node said hello).
pub fn dump(state: &ShardState) {
    let members = state.presence.borrow().local_members();
    for m in members {
        announce_local(
            state,
            m.app,
            &m.channel,
            &m.socket.to_string(),
            &m.key,
            Some(m.data),
        );
    }
}

/// Tell the fleet about a local join (`Some(channel_data)`) or leave.
pub fn announce_local(
    state: &ShardState,
    app: usize,
    channel: &str,
    socket: &str,
    key: &str,
    joined: Option<Value>,
) {
    if !state.settings.fleet_presence() {
        return;
    }
    let change = PresenceChange {
        app_id: state.apps.by_index(app).id().to_string(),
        channel: channel.to_string(),
        socket_id: socket.to_string(),
        joined,
        user_key: key.to_string(),
    };
    super::publish(state, |s| envelope::presence(s, &change));
}

/// Note that `instance` is alive; a new incarnation of a known node id replaces (and
/// forgets) the old one.
fn seen(state: &ShardState, link: &Link, instance: &str) {
    let base = instance.rsplit_once('/').map_or(instance, |(b, _)| b);
    let mut nodes = link.nodes.borrow_mut();
    let now = Instant::now();
    match nodes.get_mut(base) {
        Some((known, at)) if known == instance => *at = now,
        Some((known, at)) => {
            let old = std::mem::replace(known, instance.to_string());
            *at = now;
            gone(state, &old, "restarted");
        }
        None => {
            crate::info!("Redis: node {instance} joined the fleet");
            nodes.insert(base.to_string(), (instance.to_string(), now));
        }
    }
}

fn expire(state: &ShardState, link: &Link) {
    let silent: Vec<String> = link
        .nodes
        .borrow()
        .iter()
        .filter(|(_, (_, at))| at.elapsed() > SILENT_AFTER)
        .map(|(base, _)| base.clone())
        .collect();
    for base in silent {
        if let Some((instance, _)) = link.nodes.borrow_mut().remove(&base) {
            gone(state, &instance, "silent for 15 s");
        }
    }
}

fn gone(state: &ShardState, instance: &str, why: &str) {
    crate::info!("Redis: node {instance} left the fleet ({why}); forgetting its presence members");
    let instance: Arc<str> = Arc::from(instance);
    for to in 0..state.count {
        state.mesh.post(to, ShardMsg::NodeGone(instance.clone()));
    }
}
