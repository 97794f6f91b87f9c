//! Running the server: bind the listeners, start one shard per core, and on each shard
//! accept connections, keep heartbeats, and drain on shutdown.

pub mod listener;
pub mod settings;
pub mod shard;

use std::net::SocketAddr;
use std::os::unix::io::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shards::{Incoming, Shard, StopHandle};

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
}

impl Server {
    /// Bind one listener per shard. Errors name the address.
    pub fn bind(config: Config, shards: usize) -> Result<Server, String> {
        let (host, port) = (&config.server.host, config.server.port);
        let (listeners, addr) = listener::bind(host, port, shards)
            .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
        Ok(Server {
            config,
            shards,
            listeners,
            addr,
        })
    }

    /// The address actually bound (the real port when 0 was configured).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Run until `stop` fires (or SIGINT/SIGTERM when `signals`), then drain and return.
    pub fn run(self, signals: bool, on_start: impl FnOnce(StopHandle)) -> Result<(), String> {
        let runtime = shards::Builder::new()
            .shards(self.shards)
            .name("shard")
            .stop_on_signals(signals)
            .build::<ShardMsg>()
            .map_err(|e| e.to_string())?;
        on_start(runtime.stop_handle());
        let apps = Arc::new(Apps::new(&self.config.apps));
        let settings = Arc::new(Settings::from_config(&self.config));
        let fds: Arc<Vec<i32>> = Arc::new(
            self.listeners
                .into_iter()
                .map(|l| l.into_raw_fd())
                .collect(),
        );
        runtime
            .run(move |shard| {
                let (apps, settings, fds) = (apps.clone(), settings.clone(), fds.clone());
                async move {
                    let fd = fds[shard.id()];
                    shard_main(shard, fd, apps, settings).await
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

async fn shard_main(
    shard: Shard<ShardMsg>,
    listener_fd: i32,
    apps: Arc<Apps>,
    settings: Arc<Settings>,
) {
    let state = Rc::new(ShardState::new(
        apps,
        settings,
        shard.mesh().clone(),
        shard.stop_signal(),
    ));
    let weak = Rc::downgrade(&state);
    shard.mesh().serve(move |incoming: Incoming<ShardMsg>| {
        if let Some(state) = weak.upgrade() {
            on_shard_message(&state, incoming);
        }
    });
    // SAFETY: the fd is a listening socket bound for this shard alone, handed over once.
    let listener = unsafe { glommio::net::TcpListener::from_raw_fd(listener_fd) };
    let accepting = glommio::spawn_local(accept_loop(state.clone(), listener));
    glommio::spawn_local(heartbeat_loop(state.clone())).detach();

    shard.stopped().await;
    accepting.await;
    if shard.id() == 0 {
        let total = state
            .mesh
            .map_reduce(ShardMsg::CountConnections, 0, |acc, m| acc + count_of(&m))
            .await;
        crate::info!("Gracefully terminating {total} connection(s)");
    }
    let (code, reason) = close::SHUTTING_DOWN;
    let open: Vec<_> = state.connections.borrow().values().cloned().collect();
    for conn in open {
        conn.close(code, reason);
    }
    let deadline = Instant::now() + state.settings.shutdown_timeout;
    while !state.connections.borrow().is_empty() && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

fn count_of(msg: &ShardMsg) -> u64 {
    match msg {
        ShardMsg::Count(n) => *n,
        _ => 0,
    }
}

fn on_shard_message(state: &ShardState, incoming: Incoming<ShardMsg>) {
    let answer = match incoming.msg {
        ShardMsg::Deliver(delivery) => {
            deliver_local(state, &delivery);
            // Acknowledges a delivery sent with `ask` (cache channels).
            Some(ShardMsg::Count(0))
        }
        msg @ (ShardMsg::PresenceJoin { .. } | ShardMsg::PresenceLeave { .. }) => {
            on_owner_message(state, msg)
        }
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
        ShardMsg::Count(_)
        | ShardMsg::PresenceSnapshot(_)
        | ShardMsg::Users(_)
        | ShardMsg::Stats(_) => None,
    };
    if let (Some(reply), Some(answer)) = (incoming.reply, answer) {
        reply.send(answer);
    }
}

async fn accept_loop(state: Rc<ShardState>, listener: glommio::net::TcpListener) {
    let mut warned_at: Option<Instant> = None;
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            state.stop.wait().await;
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Ok(stream)) => {
                glommio::spawn_local(crate::connection::accept::serve_socket(
                    state.clone(),
                    stream,
                ))
                .detach();
            }
            Some(Err(e)) => {
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
}

async fn heartbeat_loop(state: Rc<ShardState>) {
    let mut last_purge = Instant::now();
    loop {
        glommio::timer::sleep(HEARTBEAT_TICK).await;
        let now = Instant::now();
        for conn in state.connections.borrow().values() {
            conn.heartbeat(now);
        }
        // Expired cache events only cost memory (reads check the age themselves), so
        // walking every cached channel once a minute is enough.
        if now.duration_since(last_purge) >= CACHE_PURGE_EVERY {
            state.cache.borrow_mut().purge(now);
            last_purge = now;
        }
    }
}
