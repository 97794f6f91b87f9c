//! The broadcast path: a message is encoded to WebSocket frame bytes once, delivered to
//! this shard's subscribers, and sent once to each other shard, which delivers the same
//! bytes to its own (design invariants 3 and 5). No per-subscriber allocation: each
//! delivery queues a reference to the shared frame.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use super::kind::ChannelKind;
use crate::app::App;
use crate::connection::outbox::Frame;
use crate::pusher::socket_id::SocketId;
use crate::server::shard::ShardState;
use crate::server::ShardMsg;
use crate::ws::frame;

/// One broadcast, as every shard receives it.
#[derive(Debug)]
pub struct Delivery {
    pub app: usize,
    pub channel: Arc<str>,
    /// The complete WebSocket text frame.
    pub frame: Arc<[u8]>,
    /// A socket that must not receive it (the sender of a client event, or the HTTP
    /// API's `socket_id`).
    pub except: Option<SocketId>,
    /// Whether it becomes the channel's cached event.
    pub cache: bool,
}

impl Delivery {
    pub fn new(app: usize, channel: Arc<str>, json: &str, except: Option<SocketId>) -> Delivery {
        let cache = ChannelKind::of(&channel).caches;
        Delivery {
            app,
            channel,
            frame: Arc::from(frame::text_frame(json.as_bytes())),
            except,
            cache,
        }
    }

    /// A presence member event: never cached (websocket.md §12).
    pub fn member_event(
        app: usize,
        channel: Arc<str>,
        json: &str,
        except: Option<SocketId>,
    ) -> Delivery {
        Delivery {
            cache: false,
            ..Delivery::new(app, channel, json, except)
        }
    }
}

/// Hand the frame to this shard's subscribers (and the cache).
pub fn deliver_local(state: &ShardState, delivery: &Delivery) {
    if delivery.cache {
        state.cache.borrow_mut().store(
            delivery.app,
            &delivery.channel,
            &delivery.frame,
            Instant::now(),
        );
    }
    let registry = state.registry.borrow();
    let Some(subscribers) = registry.subscribers(delivery.app, &delivery.channel) else {
        return;
    };
    for conn in subscribers.values() {
        if Some(conn.socket_id) != delivery.except {
            state
                .writes
                .send(conn, Frame::Shared(delivery.frame.clone()));
        }
    }
}

/// Publish from a task that may wait: a full queue to another shard slows this
/// publisher down (back-pressure) instead of dropping or reordering.
pub async fn publish(state: &ShardState, delivery: Delivery) {
    log_broadcast(state, &delivery);
    let delivery = Arc::new(delivery);
    deliver_local(state, &delivery);
    for to in (0..state.count).filter(|&to| to != state.id) {
        // A shard that stopped has no subscribers left to miss this.
        if delivery.cache {
            // Wait until every shard has stored the new cached event, so a client
            // subscribing anywhere after this publish returns is replayed this event
            // (as in one Reverb process). Only cache channels pay the round trip.
            let _ = state
                .mesh
                .ask(to, ShardMsg::Deliver(delivery.clone()))
                .await;
        } else {
            let _ = state
                .mesh
                .send_to(to, ShardMsg::Deliver(delivery.clone()))
                .await;
        }
    }
}

/// Publish from code that cannot wait (mesh handlers): in order, never blocking.
pub fn publish_now(state: &ShardState, delivery: Delivery) {
    log_broadcast(state, &delivery);
    let delivery = Arc::new(delivery);
    deliver_local(state, &delivery);
    for to in (0..state.count).filter(|&to| to != state.id) {
        state.mesh.post(to, ShardMsg::Deliver(delivery.clone()));
    }
}

/// The key order of an event published through the HTTP API (websocket.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrder {
    /// `event, data, channel` (`POST …/events`).
    Event,
    /// `event, channel, data` (`POST …/batch_events`).
    Batch,
}

/// The in-process publish entry point (the HTTP API's triggers): `event` with `data`
/// (sent as the string it is) on each channel, skipping `except`.
pub async fn publish_event(
    state: &ShardState,
    app: &App,
    channels: &[String],
    event: &str,
    data: &str,
    except: Option<SocketId>,
    order: KeyOrder,
) {
    for channel in channels {
        let mut message = Map::new();
        message.insert("event".into(), event.into());
        if order == KeyOrder::Batch {
            message.insert("channel".into(), channel.as_str().into());
        }
        message.insert("data".into(), data.into());
        if order == KeyOrder::Event {
            message.insert("channel".into(), channel.as_str().into());
        }
        let json = Value::Object(message).to_string();
        publish(
            state,
            Delivery::new(app.index, Arc::from(channel.as_str()), &json, except),
        )
        .await;
    }
}

fn log_broadcast(state: &ShardState, delivery: &Delivery) {
    if crate::log::debug_enabled() {
        let json = frame::server_frame_payload(&delivery.frame);
        crate::debug!(
            "[shard {}] [app {}] Broadcasting To {} {}",
            state.id,
            state.apps.by_index(delivery.app).id(),
            delivery.channel,
            crate::connection::protocol::preview(json)
        );
    }
}
