//! Channel state for the HTTP API, exact at the moment of the answer (design invariant
//! 6): subscription counts summed over every shard's registry, user counts from each
//! presence channel's owner shard, gathered with one `map_reduce`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::channels::kind::ChannelKind;
use crate::server::shard::ShardState;
use crate::server::ShardMsg;

/// Which channels a stats request is about.
#[derive(Clone, Debug)]
pub enum StatsFilter {
    /// Every occupied channel, optionally only names with this prefix.
    Prefix(Option<String>),
    /// These channels.
    Named(Arc<Vec<String>>),
}

impl StatsFilter {
    fn matches(&self, name: &str) -> bool {
        match self {
            StatsFilter::Prefix(None) => true,
            StatsFilter::Prefix(Some(p)) => name.starts_with(p.as_str()),
            StatsFilter::Named(names) => names.iter().any(|n| n == name),
        }
    }
}

/// One shard's part of the answer.
#[derive(Clone, Debug, Default)]
pub struct ShardStats {
    /// (channel, subscriptions on this shard)
    pub subscriptions: Vec<(Arc<str>, usize)>,
    /// (presence channel this shard owns, distinct users)
    pub users: Vec<(Arc<str>, usize)>,
}

/// What one shard knows: called on every shard by the mesh handler.
pub fn local(state: &ShardState, app: usize, filter: &StatsFilter) -> ShardStats {
    let registry = state.registry.borrow();
    let presence = state.presence.borrow();
    ShardStats {
        subscriptions: registry
            .channels_of(app)
            .filter(|(n, _)| filter.matches(n))
            .map(|(n, c)| (n.clone(), c))
            .collect(),
        users: presence
            .channels_of(app)
            .filter(|(n, _)| filter.matches(n))
            .map(|(n, c)| (n.clone(), c))
            .collect(),
    }
}

/// A channel's totals over the process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelTotals {
    pub subscriptions: usize,
    pub users: usize,
}

/// Totals of every occupied channel that matches, over the whole server: every shard,
/// and with scaling every node. `None` if a shard could not answer (stopping).
pub async fn gather(
    state: &ShardState,
    app: usize,
    filter: StatsFilter,
) -> Option<BTreeMap<String, ChannelTotals>> {
    if state.settings.scaling.is_some() {
        let app = state.apps.by_index(app).clone();
        return crate::scaling::query::gather(state, &app, filter).await;
    }
    gather_local(state, app, filter).await
}

/// Totals of every occupied channel that matches, over all shards of this process,
/// sorted by name. `None` if a shard could not answer (the process is stopping).
pub async fn gather_local(
    state: &ShardState,
    app: usize,
    filter: StatsFilter,
) -> Option<BTreeMap<String, ChannelTotals>> {
    let answers = state
        .mesh
        .try_map_reduce(
            ShardMsg::ChannelStats { app, filter },
            Vec::new(),
            |mut acc, msg| {
                if let ShardMsg::Stats(stats) = msg {
                    acc.push(stats);
                }
                acc
            },
        )
        .await
        .ok()?;
    let mut totals: BTreeMap<String, ChannelTotals> = BTreeMap::new();
    for stats in &answers {
        for (name, n) in &stats.subscriptions {
            totals.entry(name.to_string()).or_default().subscriptions += n;
        }
    }
    for stats in answers {
        for (name, n) in stats.users {
            if let Some(t) = totals.get_mut(&*name) {
                t.users = n;
            }
        }
    }
    Some(totals)
}

/// The attributes a request asked for with `info=a,b`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wanted {
    pub occupied: bool,
    pub user_count: bool,
    pub subscription_count: bool,
    pub cache: bool,
}

impl Wanted {
    pub fn parse(info: &str) -> Wanted {
        let mut w = Wanted::default();
        for item in info.split(',').map(str::trim) {
            match item {
                "occupied" => w.occupied = true,
                "user_count" => w.user_count = true,
                "subscription_count" => w.subscription_count = true,
                "cache" => w.cache = true,
                _ => {}
            }
        }
        w
    }
}

/// The attribute object of one channel (http-api.md §6), in the spec's key order.
pub fn attributes(
    state: &ShardState,
    app: usize,
    name: &str,
    totals: Option<ChannelTotals>,
    wanted: Wanted,
) -> Value {
    let mut out = Map::new();
    let occupied = totals.is_some_and(|t| t.subscriptions > 0);
    if wanted.occupied {
        out.insert("occupied".into(), occupied.into());
    }
    if occupied {
        let totals = totals.unwrap_or_default();
        let kind = ChannelKind::of(name);
        if wanted.user_count && kind.presence {
            out.insert("user_count".into(), totals.users.into());
        }
        if wanted.subscription_count && !kind.presence {
            out.insert("subscription_count".into(), totals.subscriptions.into());
        }
        if wanted.cache && kind.caches {
            if let Some(message) = cached_message(state, app, name) {
                out.insert("cache".into(), message);
            }
        }
    }
    Value::Object(out)
}

/// The attribute objects of each of `names` (occupied or not), from `totals`.
pub fn named_attributes(
    state: &ShardState,
    app: usize,
    names: &[String],
    totals: &BTreeMap<String, ChannelTotals>,
    wanted: Wanted,
) -> Map<String, Value> {
    names
        .iter()
        .map(|name| {
            let t = totals.get(name).copied();
            (name.clone(), attributes(state, app, name, t, wanted))
        })
        .collect()
}

/// The attribute objects of the occupied channels among `totals`.
pub fn occupied_attributes(
    state: &ShardState,
    app: usize,
    totals: BTreeMap<String, ChannelTotals>,
    wanted: Wanted,
) -> Map<String, Value> {
    totals
        .into_iter()
        .filter(|(_, t)| t.subscriptions > 0)
        .map(|(name, t)| {
            let attributes = attributes(state, app, &name, Some(t), wanted);
            (name, attributes)
        })
        .collect()
}

/// The cached event of a cache channel as a JSON object (every shard has a copy).
fn cached_message(state: &ShardState, app: usize, name: &str) -> Option<Value> {
    let cache = state.cache.borrow();
    let frame = cache.get(app, name, Instant::now())?;
    serde_json::from_slice(crate::ws::frame::server_frame_payload(frame)).ok()
}
