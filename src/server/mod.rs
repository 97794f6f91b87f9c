//! Running the server: bind the listeners, start one shard per core, and on each shard
//! accept connections, keep heartbeats, and drain on shutdown.

pub mod handover;
pub mod listener;
pub mod settings;
pub mod shard;

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::unix::io::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shards::{Incoming, Shard, StopCause, StopHandle};

use crate::api::stats::{self, ShardStats, StatsFilter};
use crate::app::Apps;
use crate::channels::presence::Joiner;
use crate::channels::publish::{deliver_local, Delivery};
use crate::channels::subscribe::on_owner_message;
use crate::config::Config;
use crate::pusher::errors::close;
use crate::pusher::socket_id::SocketId;
use settings::Settings;
use shard::ShardState;

/// Messages between shards.
#[derive(Clone, Debug)]
pub enum ShardMsg {
    /// A broadcast for this shard's subscribers (one per shard, never per subscriber).
    Deliver(Arc<Delivery>),
    /// Ask the presence owner: record this socket joining; answered with a snapshot.
    PresenceJoin {
        app: usize,
        channel: Arc<str>,
        socket: SocketId,
        joiner: Option<Joiner>,
    },
    /// Tell the presence owner: this socket left.
    PresenceLeave {
        app: usize,
        channel: Arc<str>,
        socket: SocketId,
        key: String,
    },
    /// Answer to `PresenceJoin`: the member snapshot as JSON text.
    PresenceSnapshot(String),
    /// Ask the presence owner: the members' user ids, in join order.
    PresenceUsers { app: usize, channel: Arc<str> },
    /// Answer to `PresenceUsers`.
    Users(Vec<serde_json::Value>),
    /// Ask every shard: its part of the channel statistics.
    ChannelStats { app: usize, filter: StatsFilter },
    /// Answer to `ChannelStats`.
    Stats(ShardStats),
    /// Ask every shard: close the connections of this user (answered with `Count`).
    Terminate { app: usize, user: String },
    /// Ask: how many WebSocket connections does this shard hold?
    CountConnections,
    /// Answer to `CountConnections`.
    Count(u64),
    /// Ask every shard: its monitoring counters and gauges (`/metrics`).
    MetricsSnapshot,
    /// Answer to `MetricsSnapshot`.
    Metrics(Box<crate::metrics::snapshot::ShardSnapshot>),
    /// To shard 0 (scaling): publish this envelope on the Redis channel.
    ScalingPublish(String),
    /// Ask shard 0 (scaling): publish this `metrics` request and collect the answers.
    FleetQuery { key: String, json: String },
    /// Answer to `FleetQuery`; `None` when Redis is unreachable.
    FleetAnswers(Option<Vec<serde_json::Value>>),
    /// Ask every shard: the socket ids of the app's connections.
    SocketIds { app: usize },
    /// Answer to `SocketIds`.
    Ids(Vec<String>),
    /// To a presence owner (fleet presence): another node's socket joined or left.
    RemotePresence {
        app: usize,
        channel: Arc<str>,
        instance: Arc<str>,
        socket: String,
        key: String,
        joined: Option<serde_json::Value>,
    },
    /// To every shard (fleet presence): forget the members this process held.
    NodeGone(Arc<str>),
    /// To every shard (fleet presence): re-announce local members to a new node.
    DumpPresence,
}

/// How often each shard checks its connections' heartbeats.
const HEARTBEAT_TICK: Duration = Duration::from_secs(1);
/// How often each shard drops expired cache-channel events.
const CACHE_PURGE_EVERY: Duration = Duration::from_secs(60);

/// A server whose listeners are bound and whose shards are about to start.
pub struct Server {
    config: Config,
    shards: usize,
    listeners: Vec<std::net::TcpListener>,
    addr: SocketAddr,
    /// Set when this process took over from another (`handover`): the link to it.
    predecessor: Option<std::os::unix::net::UnixStream>,
    /// TLS for every shard's listener (`crate::tls`), `None` for plain TCP.
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Server {
    /// Bind one listener per shard, or take over those of the process this one
    /// replaces (`handover`). Errors name the address.
    pub fn bind(config: Config, shards: usize) -> Result<Server, String> {
        let (host, port) = (&config.server.host, config.server.port);
        let bound = handover::bind(host, port, shards)
            .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
        Ok(Server {
            config,
            shards,
            listeners: bound.listeners,
            addr: bound.addr,
            predecessor: bound.predecessor,
            tls: None,
        })
    }

    /// Serve TLS (`wss://`, `https://`) on the port with this config.
    pub fn with_tls(mut self, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        self.tls = tls;
        self
    }

    /// The address actually bound (the real port when 0 was configured).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Run until `stop` fires (or SIGINT/SIGTERM when `signals`), then drain and return.
    /// With `signals` this is the real process: it also writes the pid file, tells
    /// systemd when it is ready and restarts on SIGHUP (`handover`).
    pub fn run(self, signals: bool, on_start: impl FnOnce(StopHandle)) -> Result<(), String> {
        let listeners = self
            .listeners
            .into_iter()
            .map(|l| l.into_raw_fd())
            .collect();
        let lifecycle = handover::Lifecycle::new(
            &self.config,
            listeners,
            self.addr,
            self.shards,
            self.predecessor,
            signals,
        );
        let runtime = lifecycle
            .register(shards::Builder::new())
            .shards(self.shards)
            .name("shard")
            .stop_on_signals(signals)
            .build::<ShardMsg>()
            .map_err(|e| e.to_string())?;
        on_start(runtime.stop_handle());
        let apps = Arc::new(Apps::new(&self.config.apps));
        let settings = Arc::new(Settings::from_config(&self.config));
        let tls = self.tls;
        let (monitoring, pulse) = crate::metrics::setup(&self.config);
        let life = lifecycle.clone();
        let ran = runtime
            .run(move |shard| {
                let (apps, settings, life) = (apps.clone(), settings.clone(), life.clone());
                let tls = tls.clone();
                let monitoring = monitoring.clone();
                async move { shard_main(shard, life, apps, settings, tls, monitoring).await }
            })
            .map(|_| ())
            .map_err(|e| e.to_string());
        lifecycle.finish();
        // After the shards' last reports: write them, bounded in time.
        if let Some(pulse) = pulse {
            pulse.finish();
        }
        ran
    }
}

async fn shard_main(
    shard: Shard<ShardMsg>,
    lifecycle: Arc<handover::Lifecycle>,
    apps: Arc<Apps>,
    settings: Arc<Settings>,
    tls: Option<Arc<rustls::ServerConfig>>,
    monitoring: crate::metrics::Setup,
) {
    let mut state = ShardState::new(apps, settings, shard.mesh().clone(), shard.stop_signal());
    state.tls = tls;
    let state = Rc::new(state);
    crate::metrics::start_shard(&state, &monitoring);
    let weak = Rc::downgrade(&state);
    shard.mesh().serve(move |incoming: Incoming<ShardMsg>| {
        if let Some(state) = weak.upgrade() {
            on_shard_message(&state, incoming);
        }
    });
    // Accept loops still running, and accepted sockets still being served: a process
    // that hands over waits for both before it exits.
    let (accepting, inflight) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    lifecycle.shard_ready();
    let opening = glommio::spawn_local({
        let (state, lifecycle) = (state.clone(), lifecycle.clone());
        let (accepting, inflight) = (accepting.clone(), inflight.clone());
        async move {
            for fd in lifecycle.open_listeners(state.id, &state.stop).await {
                // SAFETY: a listening socket of this shard's alone, handed over once.
                let listener = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
                accepting.set(accepting.get() + 1);
                let accept = AcceptLoop {
                    state: state.clone(),
                    lifecycle: lifecycle.clone(),
                    running: accepting.clone(),
                    inflight: inflight.clone(),
                };
                glommio::spawn_local(accept.run(listener)).detach();
            }
        }
    });
    glommio::spawn_local(heartbeat_loop(state.clone())).detach();
    glommio::spawn_local({
        let state = state.clone();
        async move { state.writes.run_flusher(&state.metrics.counters).await }
    })
    .detach();
    if let Some(link) = &state.link {
        crate::scaling::link::start(&state, link);
        crate::scaling::fleet::start(&state, link);
    }

    shard.stopped().await;
    opening.await;
    let handing_over = lifecycle.handing_over();
    if shard.id() == 0 {
        let total = state
            .mesh
            .map_reduce(ShardMsg::CountConnections, 0, |acc, m| acc + count_of(&m))
            .await;
        crate::info!("Gracefully terminating {total} connection(s)");
    }
    let (code, reason) = match shard.stop_cause() {
        Some(StopCause::Signal(libc::SIGHUP)) => close::RESTARTING,
        _ => close::SHUTTING_DOWN,
    };
    let deadline = Instant::now() + state.settings.shutdown_timeout;
    loop {
        // Again each round: a handshake that completes during the drain is closed too.
        let open: Vec<_> = (state.connections.borrow().values())
            .filter(|conn| !conn.is_closing())
            .cloned()
            .collect();
        for conn in open {
            conn.close(code, reason);
        }
        // Handing over, every accepted socket is seen to its end (an API request, a
        // handshake): dropping it would fail a client the restart promised not to.
        let busy = !state.connections.borrow().is_empty()
            || (handing_over && (accepting.get() > 0 || inflight.get() > 0));
        if !busy || Instant::now() >= deadline {
            break;
        }
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
    crate::metrics::stop_shard(&state, &monitoring);
}

fn count_of(msg: &ShardMsg) -> u64 {
    match msg {
        ShardMsg::Count(n) => *n,
        _ => 0,
    }
}

fn on_shard_message(state: &ShardState, incoming: Incoming<ShardMsg>) {
    let answer = match incoming.msg {
        ShardMsg::FleetQuery { key, json } => {
            return crate::scaling::query::on_fleet_query(state, key, json, incoming.reply);
        }
        ShardMsg::Deliver(delivery) => {
            deliver_local(state, &delivery);
            // Acknowledges a delivery sent with `ask` (cache channels).
            Some(ShardMsg::Count(0))
        }
        msg @ (ShardMsg::PresenceJoin { .. } | ShardMsg::PresenceLeave { .. }) => {
            on_owner_message(state, msg)
        }
        ShardMsg::MetricsSnapshot => Some(ShardMsg::Metrics(Box::new(
            crate::metrics::snapshot::ShardSnapshot::take(state),
        ))),
        ShardMsg::CountConnections => {
            Some(ShardMsg::Count(state.connections.borrow().len() as u64))
        }
        ShardMsg::PresenceUsers { app, channel } => Some(ShardMsg::Users(
            state.presence.borrow().user_ids(app, &channel),
        )),
        ShardMsg::ChannelStats { app, filter } => {
            Some(ShardMsg::Stats(stats::local(state, app, &filter)))
        }
        ShardMsg::Terminate { app, user } => Some(ShardMsg::Count(crate::api::terminate::local(
            state, app, &user,
        ))),
        ShardMsg::ScalingPublish(json) => {
            if let Some(link) = &state.link {
                link.publish(json);
            }
            None
        }
        ShardMsg::SocketIds { app } => Some(ShardMsg::Ids(
            state
                .connections
                .borrow()
                .values()
                .filter(|c| c.app.index == app)
                .map(|c| c.socket_id.to_string())
                .collect(),
        )),
        ShardMsg::RemotePresence {
            app,
            channel,
            instance,
            socket,
            key,
            joined,
        } => {
            crate::scaling::fleet::apply_remote(state, app, channel, instance, socket, key, joined);
            None
        }
        ShardMsg::NodeGone(instance) => {
            crate::scaling::fleet::drop_instance(state, &instance);
            None
        }
        ShardMsg::DumpPresence => {
            crate::scaling::fleet::dump(state);
            None
        }
        ShardMsg::Count(_)
        | ShardMsg::PresenceSnapshot(_)
        | ShardMsg::Users(_)
        | ShardMsg::Stats(_)
        | ShardMsg::Metrics(_)
        | ShardMsg::FleetAnswers(_)
        | ShardMsg::Ids(_) => None,
    };
    if let (Some(reply), Some(answer)) = (incoming.reply, answer) {
        reply.send(answer);
    }
}

/// One listener's accept loop and what it shares with its shard.
struct AcceptLoop {
    state: Rc<ShardState>,
    lifecycle: Arc<handover::Lifecycle>,
    /// Accept loops of the shard still running (this one included).
    running: Rc<Cell<usize>>,
    /// Sockets the shard accepted and still serves.
    inflight: Rc<Cell<usize>>,
}

impl AcceptLoop {
    async fn run(self, listener: glommio::net::TcpListener) {
        let state = &self.state;
        let mut warned_at: Option<Instant> = None;
        // Checked before each accept: after a stop, a queued connection is left to the
        // successor (or to the kernel's reset when the process ends).
        while !state.stop.fired() {
            let mut accept = std::pin::pin!(listener.accept());
            let accepted = futures_lite::future::or(async { Some((&mut accept).await) }, async {
                state.stop.wait().await;
                None
            })
            .await;
            let accepted = match accepted {
                Some(accepted) => accepted,
                None if self.lifecycle.handing_over() => {
                    // Let the accept io_uring already armed complete (the old process
                    // connects to itself if no client does): cancelling it can cross
                    // the kernel completing it, and that connection would be lost.
                    let last = futures_lite::future::or(async { Some(accept.await) }, async {
                        glommio::timer::sleep(handover::ACCEPT_FINISH_LIMIT).await;
                        None
                    })
                    .await;
                    if let Some(Ok(stream)) = last {
                        self.serve(stream);
                    }
                    break;
                }
                None => break,
            };
            match accepted {
                Ok(stream) => self.serve(stream),
                Err(e) => {
                    // Out of file descriptors (EMFILE/ENFILE) or a transient error: say so at
                    // most once a minute and back off briefly instead of spinning.
                    if warned_at.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                        crate::warn!(
                            "shard {}: accept failed: {e} (is the open-files limit too low?)",
                            state.id
                        );
                        warned_at = Some(Instant::now());
                    }
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        if self.lifecycle.handing_over() {
            self.lifecycle.accept_loop_done();
        }
        self.running.set(self.running.get() - 1);
    }

    fn serve(&self, stream: glommio::net::TcpStream) {
        let inflight = InFlight::enter(&self.inflight);
        let state = self.state.clone();
        glommio::spawn_local(async move {
            let _inflight = inflight;
            crate::connection::accept::serve_socket(state, stream).await
        })
        .detach();
    }
}

/// Counts one accepted socket until its task ends (or is dropped).
struct InFlight(Rc<Cell<usize>>);

impl InFlight {
    fn enter(count: &Rc<Cell<usize>>) -> InFlight {
        count.set(count.get() + 1);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

async fn heartbeat_loop(state: Rc<ShardState>) {
    let mut last_purge = Instant::now();
    loop {
        glommio::timer::sleep(HEARTBEAT_TICK).await;
        let now = Instant::now();
        for conn in state.connections.borrow().values() {
            conn.heartbeat(now);
        }
        state.writes.heartbeat(now);
        crate::memory::give_back_freed();
        // Expired cache events only cost memory (reads check the age themselves), so
        // walking every cached channel once a minute is enough.
        if now.duration_since(last_purge) >= CACHE_PURGE_EVERY {
            state.cache.borrow_mut().purge(now);
            last_purge = now;
        }
    }
}
