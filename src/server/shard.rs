//! One shard's state: everything its connections share, owned by its thread alone.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use shards::{Mesh, StopSignal};

use crate::app::Apps;
use crate::channels::cache::EventCache;
use crate::channels::presence::PresenceBook;
use crate::channels::registry::Registry;
use crate::connection::Connection;
use crate::pusher::socket_id::SocketId;
use crate::server::settings::Settings;
use crate::server::ShardMsg;

/// Size of the shard-wide read buffer: every socket on the shard reads into it in turn,
/// so an idle connection holds no read buffer of its own.
const SCRATCH: usize = 64 * 1024;

pub struct ShardState {
    pub id: usize,
    pub count: usize,
    pub apps: Arc<Apps>,
    pub settings: Arc<Settings>,
    pub mesh: Mesh<ShardMsg>,
    pub stop: StopSignal,
    pub connections: RefCell<HashMap<SocketId, Rc<Connection>>>,
    pub scratch: RefCell<Vec<u8>>,
    /// Local subscribers per channel.
    pub registry: RefCell<Registry>,
    /// Last events of cache channels.
    pub cache: RefCell<EventCache>,
    /// Presence members of the channels this shard owns.
    pub presence: RefCell<PresenceBook>,
    /// Monitoring: this shard's counters and endpoint settings (`crate::metrics`).
    pub metrics: crate::metrics::Metrics,
    /// TLS on the port (`crate::tls`): one config built before the shards started,
    /// shared by all of them; `None` = plain TCP. Set by the server after `new`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The process's Redis link (scaling): on shard 0 only, which owns it.
    pub link: Option<Rc<crate::scaling::link::Link>>,
    /// Broadcast frames on their way out, one system call per batch
    /// (`crate::connection::batch`).
    pub writes: crate::connection::batch::WriteBatch,
}

impl ShardState {
    pub fn new(
        apps: Arc<Apps>,
        settings: Arc<Settings>,
        mesh: Mesh<ShardMsg>,
        stop: StopSignal,
    ) -> ShardState {
        let link = match &settings.scaling {
            Some(scaling) if mesh.id() == 0 => {
                Some(Rc::new(crate::scaling::link::Link::new(scaling.clone())))
            }
            _ => None,
        };
        ShardState {
            // Before `apps` moves into the state.
            metrics: crate::metrics::Metrics::new(apps.iter().count()),
            id: mesh.id(),
            count: mesh.count(),
            apps,
            settings,
            mesh,
            stop,
            connections: RefCell::new(HashMap::new()),
            scratch: RefCell::new(vec![0; SCRATCH]),
            registry: RefCell::new(Registry::default()),
            cache: RefCell::new(EventCache::default()),
            presence: RefCell::new(PresenceBook::default()),
            tls: None,
            link,
            writes: crate::connection::batch::WriteBatch::new(),
        }
    }

    /// A socket id owned by this shard and not in use on it.
    pub fn mint_socket_id(&self) -> SocketId {
        let connections = self.connections.borrow();
        loop {
            let id = SocketId::random(self.id);
            if !connections.contains_key(&id) {
                return id;
            }
        }
    }
}
