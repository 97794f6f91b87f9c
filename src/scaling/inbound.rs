//! What shard 0 does with each message from the Redis channel (scaling.md §3): deliver
//! other nodes' events on every shard, act on their terminations, answer fleet
//! queries, collect answers to ours, and keep fleet presence current. Nothing on the
//! channel can hurt the node: anything unexpected is logged at debug and dropped.

use std::rc::Rc;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::envelope::{self, Inbound};
use super::link::Link;
use crate::channels::publish::{publish_now, Delivery};
use crate::pusher::socket_id::SocketId;
use crate::server::shard::ShardState;
use crate::server::ShardMsg;

/// The subscriber is (again) listening: ask the other nodes for their presence members.
pub fn on_subscribed(link: &Link) {
    if link.settings.fleet_presence {
        link.publish(envelope::beacon(&link.settings, envelope::HELLO));
    }
}

pub fn on_message(state: &Rc<ShardState>, link: &Rc<Link>, bytes: &[u8]) {
    let inbound = match envelope::parse(bytes) {
        Ok(inbound) => inbound,
        Err(why) => {
            crate::debug!(
                "[shard {}] ignored a Redis message ({why}): {}",
                state.id,
                crate::connection::protocol::preview(bytes)
            );
            return;
        }
    };
    let own = |node: &Option<String>| node.as_deref() == Some(link.settings.node_id.as_str());
    match inbound {
        Inbound::Message {
            application,
            payload,
            socket_id,
            node_id,
        } => {
            if own(&node_id) {
                return;
            }
            if let Some(app) = app_of(state, &application) {
                deliver(state, app, payload, socket_id.as_deref());
            }
        }
        Inbound::Terminate {
            application,
            user_id,
            node_id,
        } => {
            if own(&node_id) {
                return;
            }
            if let Some(app) = app_of(state, &application) {
                crate::api::terminate::local(state, app, &user_id);
                for to in 1..state.count {
                    state.mesh.post(
                        to,
                        ShardMsg::Terminate {
                            app,
                            user: user_id.clone(),
                        },
                    );
                }
            }
        }
        Inbound::Metrics { request } => {
            glommio::spawn_local(super::query::answer(state.clone(), link.clone(), request))
                .detach();
        }
        Inbound::Answer { key, payload } => link.on_answer(&key, payload),
        // Node-scoped presence (Reverb's) ignores the fleet-presence envelopes.
        _ if !link.settings.fleet_presence => {}
        Inbound::Presence(change) => super::fleet::on_presence(state, link, change),
        Inbound::Heartbeat { node } => super::fleet::on_beacon(state, link, &node, false),
        Inbound::Hello { node } => super::fleet::on_beacon(state, link, &node, true),
    }
}

/// The app index of a serialized `Laravel\Reverb\Application`, if it is one of ours.
fn app_of(state: &ShardState, application: &str) -> Option<usize> {
    let id = super::application::app_id_of(application)?;
    let app = state.apps.by_id(&id);
    if app.is_none() {
        crate::debug!("[shard {}] Redis message for unknown app {id}", state.id);
    }
    app.map(|a| a.index)
}

/// Deliver another node's event to this node's subscribers of each named channel,
/// with `channel` set to that name (and `channels` removed), skipping `socket_id`.
fn deliver(
    state: &ShardState,
    app: usize,
    mut payload: Map<String, Value>,
    socket_id: Option<&str>,
) {
    let except = socket_id.and_then(SocketId::parse);
    let names: Vec<String> = match payload.remove("channels") {
        Some(Value::Array(list)) => list
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) if !s.is_empty() => Some(s),
                _ => None,
            })
            .collect(),
        _ => match payload.get("channel") {
            Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
            _ => return,
        },
    };
    for name in names {
        // Re-inserting an existing key keeps its place, so a batch item or a client
        // event keeps its own key order; an HTTP event gets `channel` last.
        payload.insert("channel".into(), Value::String(name.clone()));
        let json = Value::Object(payload.clone()).to_string();
        publish_now(
            state,
            Delivery::new(app, Arc::from(name.as_str()), &json, except),
        );
    }
}
