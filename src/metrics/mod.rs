//! Monitoring (operations.md §7): per-shard counters that the hot paths bump, the
//! Prometheus endpoint that gathers them from every shard, process-wide figures (Redis
//! link, open files), and the Laravel Pulse writer.
//!
//! - `counters.rs`: one shard's plain counters (no atomics on the message path);
//! - `http.rs`: the `route` label of HTTP API requests;
//! - `snapshot.rs`: what a shard reports to a scrape;
//! - `prometheus.rs`: the text exposition format;
//! - `endpoint.rs`: `GET {prefix}/metrics` and who may read it;
//! - `process.rs`: process-wide atomics set by the Redis scaling link, and fd figures;
//! - `pulse/`: the Pulse writer thread and the shards' reports to it.

pub mod counters;
pub mod endpoint;
pub mod http;
pub mod process;
pub mod prometheus;
pub mod pulse;
pub mod snapshot;

use std::cell::{OnceCell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;

pub use counters::ShardMetrics;
pub use endpoint::Endpoint;
pub use http::ApiRoute;

use crate::config::Config;
use crate::http::request::Request;
use crate::http::response::Response;
use crate::server::shard::ShardState;

/// How monitoring is set up for the whole process; every shard gets a clone.
#[derive(Clone, Default)]
pub struct Setup {
    /// `None` when `[server] metrics = false` (the path is then unknown: 404).
    pub endpoint: Option<Endpoint>,
    /// The Pulse writer's input, when `[pulse] database_url` is set.
    pub pulse: Option<pulse::Feed>,
}

impl Setup {
    /// The endpoint part from the configuration (the Pulse feed is added by whoever
    /// starts the writer).
    pub fn from_config(config: &Config) -> Setup {
        Setup {
            endpoint: config.server.metrics.then(|| Endpoint {
                token: config.server.metrics_token.clone(),
            }),
            pulse: None,
        }
    }
}

/// Set up monitoring for a process about to start its shards: the endpoint settings,
/// and the Pulse writer when `[pulse] database_url` is set. A Pulse URL the writer
/// cannot use is logged and Pulse left off: monitoring never keeps the server from
/// serving.
pub fn setup(config: &Config) -> (Setup, Option<pulse::Writer>) {
    let mut setup = Setup::from_config(config);
    let writer = config.pulse.database_url.as_deref().and_then(|url| {
        let every = std::time::Duration::from_secs(config.server.pulse_ingest_interval.max(1));
        let app_ids = config.apps.iter().map(|a| a.app_id.clone()).collect();
        match pulse::Writer::start(url, every, app_ids) {
            Ok(writer) => Some(writer),
            Err(e) => {
                crate::warn!("Pulse writer off: {e}");
                None
            }
        }
    });
    setup.pulse = writer.as_ref().map(pulse::Writer::feed);
    (setup, writer)
}

/// A shard's monitoring state, a field of its `ShardState`.
#[derive(Debug)]
pub struct Metrics {
    pub counters: ShardMetrics,
    /// Set once when the shard starts (absent in benchmarks that build a bare state:
    /// no endpoint, no Pulse).
    endpoint: OnceCell<Option<Endpoint>>,
    /// Counts already handed to the Pulse writer.
    pub(crate) pulse_reported: RefCell<pulse::Reported>,
}

impl Metrics {
    pub fn new(apps: usize) -> Metrics {
        Metrics {
            counters: ShardMetrics::new(apps),
            endpoint: OnceCell::new(),
            pulse_reported: RefCell::new(pulse::Reported::default()),
        }
    }

    /// The endpoint settings, `None` when it is off.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.get().and_then(Option::as_ref)
    }
}

/// Start monitoring on a shard: record the endpoint settings and start the Pulse
/// reports. Called once, first thing, by the shard's main task.
pub fn start_shard(state: &Rc<ShardState>, setup: &Setup) {
    let _ = state.metrics.endpoint.set(setup.endpoint.clone());
    if let Some(feed) = &setup.pulse {
        glommio::spawn_local(pulse::report_loop(state.clone(), feed.clone())).detach();
    }
}

/// Last words of a stopping shard (after its connections drained): the final Pulse
/// report, so the messages of the drain are not lost.
pub fn stop_shard(state: &ShardState, setup: &Setup) {
    if let Some(feed) = &setup.pulse {
        pulse::report(state, feed);
    }
}

/// `GET {prefix}/metrics`; `None` when the endpoint is off.
pub async fn serve(
    state: &ShardState,
    request: &Request,
    peer: Option<IpAddr>,
) -> Option<Response> {
    endpoint::serve(state, request, peer).await
}

/// Count an answered HTTP API request; `rest` is its path after the server prefix.
pub fn count_api(state: &ShardState, rest: &str, response: &Response) {
    state
        .metrics
        .counters
        .http(ApiRoute::of(rest), response.status);
}
