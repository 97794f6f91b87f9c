//! Routing of `/apps/…` requests: the route table, method and app checks, request
//! signing, then the handler (http-api.md §1, §4 for the order of checks).

use std::sync::Arc;

use serde_json::{json, Value};

use super::query::{self, Params};
use super::signature::{self, Signed};
use super::stats::{self, StatsFilter, Wanted};
use super::{terminate, trigger};
use crate::app::App;
use crate::channels::kind::ChannelKind;
use crate::channels::presence;
use crate::http::request::Request;
use crate::http::response::Response;
use crate::server::shard::ShardState;
use crate::server::ShardMsg;

enum Route {
    Events,
    Batch,
    Channels,
    Channel(String),
    Users(String),
    Connections,
    Terminate(String),
}

impl Route {
    fn method(&self) -> &'static str {
        match self {
            Route::Events | Route::Batch | Route::Terminate(_) => "POST",
            _ => "GET",
        }
    }
}

/// Whether `rest` (the path after the server prefix) belongs to the HTTP API.
pub fn is_api_path(rest: &str) -> bool {
    rest.starts_with("/apps/")
}

/// Answer one API request; `rest` is its path after the server prefix.
pub async fn handle(state: &ShardState, request: &Request, rest: &str) -> Response {
    let segments: Vec<String> = rest[1..]
        .split('/')
        .map(|s| query::decode(s, false))
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (app_id, route) = match segs.as_slice() {
        ["apps", id, "events"] => (*id, Route::Events),
        ["apps", id, "batch_events"] => (*id, Route::Batch),
        ["apps", id, "channels"] => (*id, Route::Channels),
        ["apps", id, "channels", ch] if !ch.is_empty() => (*id, Route::Channel(ch.to_string())),
        ["apps", id, "channels", ch, "users"] if !ch.is_empty() => {
            (*id, Route::Users(ch.to_string()))
        }
        ["apps", id, "connections"] => (*id, Route::Connections),
        ["apps", id, "users", user, "terminate_connections"] if !user.is_empty() => {
            (*id, Route::Terminate(user.to_string()))
        }
        _ => return Response::text(404, "Not found."),
    };
    // Route parameters are non-empty (Laravel's `{appId}` matches `[^/]+`): `/apps//events`
    // is an unknown path, not a wrong method or an app with an empty id.
    if app_id.is_empty() {
        return Response::text(404, "Not found.");
    }
    let method = if request.method == "HEAD" {
        "GET"
    } else {
        request.method.as_str()
    };
    if method != route.method() {
        return Response::text(405, "Method not allowed.").with_header("Allow", route.method());
    }
    let Some(app) = state.apps.by_id(app_id).cloned() else {
        return Response::text(404, &format!("No matching application for ID [{app_id}]."));
    };
    let params = query::parse(request.query().unwrap_or(""));
    let signed = Signed {
        method: &request.method,
        raw_path: request.path(),
        prefix: &state.settings.path,
        params: &params,
        body: &request.body,
    };
    if let Err(refusal) = signature::check(&app, &signed, state.settings.pusher_limits) {
        return Response::text(401, refusal.text());
    }
    match route {
        Route::Events => trigger::events(state, &app, &request.body).await,
        Route::Batch => trigger::batch(state, &app, &request.body).await,
        Route::Channels => channels(state, &app, &params).await,
        Route::Channel(name) => channel(state, &app, &name, &params).await,
        Route::Users(name) => users(state, &app, &name).await,
        Route::Connections => connections(state, &app).await,
        Route::Terminate(user) => terminate::terminate(state, app.index, &user).await,
    }
}

fn wanted(params: &Params) -> Wanted {
    Wanted::parse(&params.get("info").map(|p| p.joined()).unwrap_or_default())
}

/// A stopping process may fail to gather from every shard: say so, never guess.
fn unavailable() -> Response {
    Response::text(503, "Server shutting down.")
}

async fn channels(state: &ShardState, app: &App, params: &Params) -> Response {
    let prefix = params
        .get("filter_by_prefix")
        .map(|p| p.joined())
        .filter(|p| !p.is_empty());
    let Some(totals) = stats::gather(state, app.index, StatsFilter::Prefix(prefix)).await else {
        return unavailable();
    };
    let out = stats::occupied_attributes(state, app.index, totals, wanted(params));
    Response::json(200, json!({ "channels": out }).to_string())
}

async fn channel(state: &ShardState, app: &App, name: &str, params: &Params) -> Response {
    let Some(totals) = stats::gather(
        state,
        app.index,
        StatsFilter::Named(Arc::new(vec![name.to_string()])),
    )
    .await
    else {
        return unavailable();
    };
    // `occupied` is always part of this answer (Reverb appends it).
    let wanted = Wanted {
        occupied: true,
        ..wanted(params)
    };
    Response::json(
        200,
        stats::attributes(state, app.index, name, totals.get(name).copied(), wanted).to_string(),
    )
}

async fn users(state: &ShardState, app: &App, name: &str) -> Response {
    let Some(totals) = stats::gather(
        state,
        app.index,
        StatsFilter::Named(Arc::new(vec![name.to_string()])),
    )
    .await
    else {
        return unavailable();
    };
    if totals.get(name).is_none_or(|t| t.subscriptions == 0) {
        return Response::json(404, "{}");
    }
    if !ChannelKind::of(name).presence {
        return Response::json(400, "{}");
    }
    // With node-scoped presence each node knows only its own members: ask the fleet
    // (scaling.md §5); otherwise this process's presence owner knows them all.
    let node_scoped = state.settings.scaling.is_some() && !state.settings.fleet_presence();
    let fleet = match node_scoped {
        true => crate::scaling::query::users(state, app, name).await,
        false => None,
    };
    let ids = match fleet {
        Some(ids) => ids,
        None => {
            let owner = presence::owner(app.index, name, state.count);
            let ask = ShardMsg::PresenceUsers {
                app: app.index,
                channel: Arc::from(name),
            };
            match state.mesh.ask(owner, ask).await {
                Ok(ShardMsg::Users(ids)) => ids,
                _ => return unavailable(),
            }
        }
    };
    let users: Vec<Value> = ids.into_iter().map(|id| json!({ "id": id })).collect();
    Response::json(200, json!({ "users": users }).to_string())
}

/// `GET …/connections`: this process's count, or the fleet's with scaling.
async fn connections(state: &ShardState, app: &App) -> Response {
    let mut count = app.connection_count();
    if state.settings.scaling.is_some() {
        if let Some(fleet) = crate::scaling::query::connection_count(state, app).await {
            count = fleet;
        }
    }
    Response::json(200, json!({ "connections": count }).to_string())
}
