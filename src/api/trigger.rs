//! `POST …/events` and `POST …/batch_events` (http-api.md §5): validate, publish through
//! the channels' broadcast path, and answer with the requested channel attributes.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::stats::{self, StatsFilter, Wanted};
use super::validate::{self, Event};
use crate::app::App;
use crate::channels::publish::{publish_event, KeyOrder};
use crate::http::response::Response;
use crate::pusher::socket_id::SocketId;
use crate::scaling::envelope;
use crate::server::shard::ShardState;

/// Parse a body as a JSON object; valid JSON that is not an object validates as `{}`.
fn body_object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Ok(Map::new()),
        Err(_) => Err(Response::text(400, "Invalid JSON body.")),
    }
}

pub async fn events(state: &ShardState, app: &App, body: &[u8]) -> Response {
    let body = match body_object(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let event = match validate::event(&body) {
        Ok(e) => e,
        Err(errors) => return Response::json(422, errors.into_json()),
    };
    if state.settings.pusher_limits {
        if let Some(text) = validate::limits(&event) {
            return Response::text(400, text);
        }
    }
    publish(state, app, &event, KeyOrder::Event).await;
    match &event.info {
        None => Response::json(200, "{}"),
        Some(info) => {
            let channels = info_for(state, app, &event.channels, Wanted::parse(info)).await;
            let mut out = Map::new();
            out.insert("channels".into(), Value::Object(channels));
            Response::json(200, Value::Object(out).to_string())
        }
    }
}

pub async fn batch(state: &ShardState, app: &App, body: &[u8]) -> Response {
    let body = match body_object(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let events = match validate::batch(&body) {
        Ok(e) => e,
        Err(errors) => return Response::json(422, errors.into_json()),
    };
    if state.settings.pusher_limits {
        if events.len() > validate::MAX_BATCH {
            return Response::text(400, "Too many events: at most 10 per batch.");
        }
        if let Some(text) = events.iter().find_map(validate::limits) {
            return Response::text(400, text);
        }
    }
    for event in &events {
        publish(state, app, event, KeyOrder::Batch).await;
    }
    if events.iter().all(|e| e.info.is_none()) {
        return Response::json(200, r#"{"batch":{}}"#);
    }
    let mut answers = Vec::with_capacity(events.len());
    for event in &events {
        let answer = match &event.info {
            None => Value::Object(Map::new()),
            Some(info) => {
                let mut channels = info_for(state, app, &event.channels, Wanted::parse(info)).await;
                channels
                    .remove(&event.channels[0])
                    .unwrap_or(Value::Object(Map::new()))
            }
        };
        answers.push(answer);
    }
    let mut out = Map::new();
    out.insert("batch".into(), Value::Array(answers));
    Response::json(200, Value::Object(out).to_string())
}

async fn publish(state: &ShardState, app: &App, event: &Event, order: KeyOrder) {
    // Other nodes first learn of it through Redis (never waits); local delivery below.
    crate::scaling::publish(state, |scaling| {
        let mut payload = Map::new();
        payload.insert("event".into(), event.name.as_str().into());
        match order {
            KeyOrder::Event => {
                payload.insert("channels".into(), event.channels.clone().into());
            }
            KeyOrder::Batch => {
                payload.insert("channel".into(), event.channels[0].as_str().into());
            }
        }
        payload.insert("data".into(), event.data.as_str().into());
        envelope::message(
            scaling,
            app.index,
            Value::Object(payload),
            event.socket_id.clone(),
        )
    });
    let except = event.socket_id.as_deref().and_then(SocketId::parse);
    publish_event(
        state,
        app,
        &event.channels,
        &event.name,
        &event.data,
        except,
        order,
    )
    .await;
}

/// Attributes of each named channel, counted after the publish.
async fn info_for(
    state: &ShardState,
    app: &App,
    channels: &[String],
    wanted: Wanted,
) -> Map<String, Value> {
    let totals = stats::gather(
        state,
        app.index,
        StatsFilter::Named(Arc::new(channels.to_vec())),
    )
    .await
    .unwrap_or_default();
    stats::named_attributes(state, app.index, channels, &totals, wanted)
}
