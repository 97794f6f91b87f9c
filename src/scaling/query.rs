//! Fleet-wide HTTP answers (scaling.md §5): the requester's side (publish a `metrics`
//! request, collect one answer per subscriber for at most 10 s, merge) and the
//! responder's side (this node's answer to any node's request, ours included).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::envelope;
use super::link::Link;
use super::merge;
use super::pending_metric::{self as pm, MetricOptions, MetricType, OptionValue};
use crate::api::stats::{self, ChannelTotals, StatsFilter, Wanted};
use crate::app::App;
use crate::channels::presence;
use crate::server::shard::ShardState;
use crate::server::ShardMsg;
use shards::Reply;

/// How long a requester waits for the fleet's answers (Reverb's limit).
pub const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// Every attribute the totals need, whatever the HTTP caller asked for: the answer is
/// cut down to what was asked afterwards, exactly as for a single node.
const ALL_INFO: &str = "occupied,user_count,subscription_count";

/// Publish a request and collect the answers (from any shard; shard 0 does the work).
/// `None` when the publisher is not connected: the caller answers from local state.
pub async fn ask_fleet(
    state: &ShardState,
    app: &App,
    kind: MetricType,
    options: &[(&str, OptionValue)],
) -> Option<Vec<Value>> {
    let key = pm::fresh_key();
    let request = pm::write_request(&key, &app.config, kind, options);
    let json = envelope::metrics_request(&request);
    match state.mesh.ask(0, ShardMsg::FleetQuery { key, json }).await {
        Ok(ShardMsg::FleetAnswers(answers)) => answers,
        _ => None,
    }
}

/// Shard 0's side of `FleetQuery`: publish, then answer the asking shard once the
/// answers are in.
pub fn on_fleet_query(
    state: &ShardState,
    key: String,
    json: String,
    reply: Option<Reply<ShardMsg>>,
) {
    let Some(reply) = reply else { return };
    let Some(link) = state.link.clone() else {
        return reply.send(ShardMsg::FleetAnswers(None));
    };
    if !link.publisher_up() {
        crate::debug!("Redis publisher is down: answering a fleet query from this node only");
        return reply.send(ShardMsg::FleetAnswers(None));
    }
    link.publish_query(&key, json);
    glommio::spawn_local(async move {
        let answers = link.collect(&key, ANSWER_WAIT).await;
        reply.send(ShardMsg::FleetAnswers(Some(answers)));
    })
    .detach();
}

/// Channel totals over the fleet: the scaling counterpart of `stats::gather_local`.
/// Subscription counts are summed over nodes; with fleet presence, user counts come
/// from this node's presence owners, which know every node's members.
pub async fn gather(
    state: &ShardState,
    app: &App,
    filter: StatsFilter,
) -> Option<BTreeMap<String, ChannelTotals>> {
    let local = stats::gather_local(state, app.index, filter.clone()).await?;
    let (kind, options) = match &filter {
        StatsFilter::Prefix(prefix) => (
            MetricType::Channels,
            pm::channels_query_options(prefix.as_deref(), Some(ALL_INFO)),
        ),
        StatsFilter::Named(names) if names.len() == 1 => (
            MetricType::Channel,
            pm::channel_query_options(&names[0], Some("user_count,subscription_count")),
        ),
        StatsFilter::Named(names) => (
            MetricType::Channels,
            pm::event_info_options(ALL_INFO, names),
        ),
    };
    let Some(answers) = ask_fleet(state, app, kind, &options).await else {
        return Some(local);
    };
    let merged: Map<String, Value> = match (&filter, kind) {
        (StatsFilter::Named(names), MetricType::Channel) => {
            let mut one = Map::new();
            one.insert(names[0].clone(), merge::channel(&answers));
            one
        }
        _ => merge::channels(&answers),
    };
    let fleet_presence = state.settings.fleet_presence();
    let mut totals = BTreeMap::new();
    for (name, attributes) in merged {
        let occupied = attributes.get("occupied").and_then(Value::as_bool) == Some(true);
        let count = |key: &str| attributes.get(key).and_then(Value::as_u64).unwrap_or(0) as usize;
        let subscriptions = count("subscription_count").max(usize::from(occupied));
        if subscriptions == 0 {
            continue;
        }
        let users = if fleet_presence {
            local.get(&name).map_or(0, |t| t.users)
        } else {
            count("user_count")
        };
        totals.insert(
            name,
            ChannelTotals {
                subscriptions,
                users,
            },
        );
    }
    Some(totals)
}

/// The user ids of a presence channel over the fleet (node-scoped presence only; with
/// fleet presence the channel's owner shard already knows every member).
pub async fn users(state: &ShardState, app: &App, channel: &str) -> Option<Vec<Value>> {
    let options = pm::channel_users_options(channel);
    let answers = ask_fleet(state, app, MetricType::ChannelUsers, &options).await?;
    Some(
        merge::channel_users(&answers)
            .into_iter()
            .filter_map(|u| u.get("id").cloned())
            .collect(),
    )
}

/// How many connections the app has over the fleet.
pub async fn connection_count(state: &ShardState, app: &App) -> Option<u64> {
    let answers = ask_fleet(state, app, MetricType::Connections, &[]).await?;
    Some(merge::connections(&answers) as u64)
}

/// Answer a `metrics` request from any node (ours included): compute this node's part
/// and publish it under the request's key, also when it is empty.
pub async fn answer(state: Rc<ShardState>, link: Rc<Link>, request: String) {
    let request = match pm::parse_request(&request) {
        Ok(r) => r,
        Err(e) => {
            crate::debug!("ignored a metrics request: {e:?}");
            return;
        }
    };
    let Some(app) = state.apps.by_id(&request.app_id).cloned() else {
        crate::debug!("metrics request for unknown app {}", request.app_id);
        return;
    };
    let payload = local_answer(&state, &app, request.kind, &request.options)
        .await
        .unwrap_or(Value::Array(Vec::new()));
    link.publish(envelope::answer(&request.key, payload));
}

async fn local_answer(
    state: &ShardState,
    app: &App,
    kind: MetricType,
    options: &MetricOptions,
) -> Option<Value> {
    let wanted = Wanted::parse(options.info.as_deref().unwrap_or(""));
    match kind {
        MetricType::Connections => {
            let ids = state
                .mesh
                .try_map_reduce(
                    ShardMsg::SocketIds { app: app.index },
                    Vec::new(),
                    |mut acc, msg| {
                        if let ShardMsg::Ids(ids) = msg {
                            acc.extend(ids);
                        }
                        acc
                    },
                )
                .await
                .ok()?;
            Some(merge::connections_answer(ids.iter().map(String::as_str)))
        }
        MetricType::Channel => {
            let name = options.channel.clone()?;
            let totals = stats::gather_local(
                state,
                app.index,
                StatsFilter::Named(Arc::new(vec![name.clone()])),
            )
            .await?;
            Some(stats::attributes(
                state,
                app.index,
                &name,
                totals.get(&name).copied(),
                wanted,
            ))
        }
        MetricType::Channels => {
            let out = match &options.channels {
                Some(names) => {
                    let filter = StatsFilter::Named(Arc::new(names.clone()));
                    let totals = stats::gather_local(state, app.index, filter).await?;
                    stats::named_attributes(state, app.index, names, &totals, wanted)
                }
                None => {
                    let prefix = options.filter.clone().filter(|p| !p.is_empty());
                    let filter = StatsFilter::Prefix(prefix);
                    let totals = stats::gather_local(state, app.index, filter).await?;
                    stats::occupied_attributes(state, app.index, totals, wanted)
                }
            };
            Some(Value::Object(out))
        }
        MetricType::ChannelUsers => {
            let name = options.channel.clone()?;
            let owner = presence::owner(app.index, &name, state.count);
            let ask = ShardMsg::PresenceUsers {
                app: app.index,
                channel: Arc::from(name.as_str()),
            };
            let ids = match state.mesh.ask(owner, ask).await {
                Ok(ShardMsg::Users(ids)) => ids,
                _ => return None,
            };
            Some(merge::channel_users_answer(ids))
        }
    }
}
