//! The process's one Redis link, owned by shard 0 (scaling.md §1): a publisher
//! connection fed by every shard through a bounded queue, and one subscriber
//! connection whose messages shard 0 routes to the others over the mesh. Both
//! reconnect every second for as long as it takes (§7); local delivery never waits
//! for Redis.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::conn::RedisConn;
use super::resp::{self, Frame};
use super::settings::ScalingSettings;
use crate::server::shard::ShardState;

/// Messages kept while the publisher is away; beyond it the oldest are dropped.
pub const QUEUE_LIMIT: usize = 10_000;
/// PUBLISH commands written in one go (their replies are read in order).
const BATCH: usize = 256;
/// Wait between reconnection attempts (Reverb's cadence).
const RETRY: Duration = Duration::from_secs(1);

/// One message waiting to be published.
struct Outgoing {
    json: String,
    /// The request key when this is a fleet query: its PUBLISH reply says how many
    /// subscribers (answers) to expect.
    query: Option<String>,
}

/// A fleet query waiting for answers.
#[derive(Default)]
pub struct Pending {
    pub expected: Option<usize>,
    pub answers: Vec<Value>,
    waker: Option<Waker>,
}

pub struct Link {
    pub settings: Arc<ScalingSettings>,
    queue: RefCell<VecDeque<Outgoing>>,
    queue_waker: Cell<Option<Waker>>,
    publisher_up: Cell<bool>,
    subscriber_up: Cell<bool>,
    dropped: Cell<u64>,
    pub pending: RefCell<HashMap<String, Pending>>,
    /// Other reverb-shard processes seen on the channel: node id → (instance, last seen).
    pub nodes: RefCell<HashMap<String, (String, Instant)>>,
}

impl Link {
    pub fn new(settings: Arc<ScalingSettings>) -> Link {
        Link {
            settings,
            queue: RefCell::new(VecDeque::new()),
            queue_waker: Cell::new(None),
            publisher_up: Cell::new(false),
            subscriber_up: Cell::new(false),
            dropped: Cell::new(0),
            pending: RefCell::new(HashMap::new()),
            nodes: RefCell::new(HashMap::new()),
        }
    }

    /// Queue an envelope for PUBLISH (never waits).
    pub fn publish(&self, json: String) {
        self.push(Outgoing { json, query: None });
    }

    /// Queue a fleet query; answers are collected under `key`.
    pub fn publish_query(&self, key: &str, json: String) {
        self.pending
            .borrow_mut()
            .insert(key.to_string(), Pending::default());
        self.push(Outgoing {
            json,
            query: Some(key.to_string()),
        });
    }

    fn push(&self, item: Outgoing) {
        let mut queue = self.queue.borrow_mut();
        if queue.len() >= QUEUE_LIMIT {
            queue.pop_front();
            let dropped = self.dropped.get() + 1;
            self.dropped.set(dropped);
            crate::metrics::process::redis_dropped(1);
            if dropped == 1 || dropped % 1000 == 0 {
                crate::warn!(
                    "Redis publish queue full ({QUEUE_LIMIT} messages): dropped the oldest; {dropped} dropped so far"
                );
            }
        }
        queue.push_back(item);
        if let Some(w) = self.queue_waker.take() {
            w.wake();
        }
    }

    /// Whether PUBLISH currently reaches Redis.
    pub fn publisher_up(&self) -> bool {
        self.publisher_up.get()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    fn set_up(&self, publisher: Option<bool>, subscriber: Option<bool>) {
        if let Some(up) = publisher {
            self.publisher_up.set(up);
        }
        if let Some(up) = subscriber {
            self.subscriber_up.set(up);
        }
        crate::metrics::process::redis_link(self.publisher_up.get() && self.subscriber_up.get());
    }

    /// Record an answer to one of our queries (other keys are someone else's).
    pub fn on_answer(&self, key: &str, payload: Value) {
        if let Some(p) = self.pending.borrow_mut().get_mut(key) {
            p.answers.push(payload);
            if let Some(w) = p.waker.take() {
                w.wake();
            }
        }
    }

    fn on_publish_reply(&self, key: &str, receivers: usize) {
        if let Some(p) = self.pending.borrow_mut().get_mut(key) {
            p.expected = Some(receivers);
            if let Some(w) = p.waker.take() {
                w.wake();
            }
        }
    }

    /// Wait until every expected answer to `key` arrived (or `limit` passed) and take
    /// them. Completion is re-checked when the PUBLISH reply arrives too, so answers
    /// that beat it do not cost the full wait.
    pub async fn collect(&self, key: &str, limit: Duration) -> Vec<Value> {
        let wait = poll_fn(|cx| {
            let mut pending = self.pending.borrow_mut();
            let Some(p) = pending.get_mut(key) else {
                return Poll::Ready(());
            };
            match p.expected {
                Some(n) if p.answers.len() >= n => Poll::Ready(()),
                _ => {
                    p.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        });
        crate::connection::accept::with_timeout(limit, wait).await;
        self.pending
            .borrow_mut()
            .remove(key)
            .map(|p| p.answers)
            .unwrap_or_default()
    }

    async fn next_batch(&self) -> Vec<Outgoing> {
        poll_fn(|cx| {
            let mut queue = self.queue.borrow_mut();
            if queue.is_empty() {
                self.queue_waker.set(Some(cx.waker().clone()));
                return Poll::Pending;
            }
            let n = queue.len().min(BATCH);
            Poll::Ready(queue.drain(..n).collect())
        })
        .await
    }

    /// Put unacknowledged messages back in front, in their order.
    fn requeue(&self, items: Vec<Outgoing>) {
        let mut queue = self.queue.borrow_mut();
        for item in items.into_iter().rev() {
            if queue.len() >= QUEUE_LIMIT {
                self.dropped.set(self.dropped.get() + 1);
                crate::metrics::process::redis_dropped(1);
                continue;
            }
            queue.push_front(item);
        }
    }
}

/// Which of the two connections a log line is about.
#[derive(Clone, Copy)]
enum Role {
    Publisher,
    Subscriber,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
        }
    }
}

/// Start shard 0's Redis tasks; they end when the shard stops.
pub fn start(state: &Rc<ShardState>, link: &Rc<Link>) {
    glommio::spawn_local(keep_connected(state.clone(), link.clone(), Role::Publisher)).detach();
    glommio::spawn_local(keep_connected(
        state.clone(),
        link.clone(),
        Role::Subscriber,
    ))
    .detach();
}

async fn keep_connected(state: Rc<ShardState>, link: Rc<Link>, role: Role) {
    let endpoint = link.settings.endpoint.clone();
    let target = format!("{}:{}", endpoint.host, endpoint.port);
    let mut failing_since: Option<Instant> = None;
    let mut reported_windows = 0u64;
    loop {
        let attempt = async {
            let conn = RedisConn::connect(&endpoint).await?;
            failing_since = None;
            reported_windows = 0;
            crate::info!("Redis connection established [{}] ({target})", role.name());
            match role {
                Role::Publisher => run_publisher(&link, conn).await,
                Role::Subscriber => run_subscriber(&state, &link, conn).await,
            }
        };
        // The publisher outlives the stop signal: a draining node still tells the
        // fleet about the presence leaves of the connections it closes. (Its tasks end
        // with the shard's executor.)
        let outcome = match role {
            Role::Publisher => Some(attempt.await),
            Role::Subscriber => with_stop(&state, attempt).await,
        };
        match role {
            Role::Publisher => link.set_up(Some(false), None),
            Role::Subscriber => link.set_up(None, Some(false)),
        }
        let Some(Err(e)) = outcome else { return };
        let since = *failing_since.get_or_insert_with(Instant::now);
        if reported_windows == 0 {
            crate::warn!("Disconnected from Redis [{}] ({target}): {e}", role.name());
        }
        let window = link.settings.timeout;
        let windows = since.elapsed().as_secs() / window;
        if windows > reported_windows {
            reported_windows = windows;
            crate::error!(
                "Failed to connect to Redis connection [{}] after retrying for {}s; still serving local traffic and retrying",
                role.name(),
                windows * window
            );
        }
        glommio::timer::sleep(RETRY).await;
        crate::debug!("Attempting reconnection to Redis [{}]", role.name());
    }
}

/// `fut`, or `None` once the shard is stopping.
pub(super) async fn with_stop<T>(
    state: &ShardState,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        state.stop.wait().await;
        None
    })
    .await
}

async fn run_publisher(link: &Link, mut conn: RedisConn) -> std::io::Result<()> {
    link.set_up(Some(true), None);
    let channel = link.settings.channel.clone();
    let mut out = Vec::new();
    loop {
        let batch = link.next_batch().await;
        out.clear();
        for item in &batch {
            resp::command(
                &[b"PUBLISH", channel.as_bytes(), item.json.as_bytes()],
                &mut out,
            );
        }
        if let Err(e) = conn.send(&out).await {
            link.requeue(batch);
            return Err(e);
        }
        let mut items = batch.into_iter();
        while let Some(item) = items.next() {
            match conn.read_frame().await {
                Ok(Frame::Integer(n)) => {
                    if let Some(key) = &item.query {
                        link.on_publish_reply(key, n.max(0) as usize);
                    }
                }
                Ok(other) => {
                    crate::warn!("Redis refused a PUBLISH: {other:?}");
                }
                Err(e) => {
                    // Unacknowledged: send again after reconnecting (Redis may have
                    // taken some; a rare duplicate beats a silent loss).
                    let mut rest = vec![item];
                    rest.extend(items);
                    link.requeue(rest);
                    return Err(e);
                }
            }
        }
    }
}

async fn run_subscriber(
    state: &Rc<ShardState>,
    link: &Rc<Link>,
    mut conn: RedisConn,
) -> std::io::Result<()> {
    let channel = link.settings.channel.clone();
    match conn.call(&[b"SUBSCRIBE", channel.as_bytes()]).await? {
        Frame::Array(parts) if parts.first().and_then(resp::bytes_of) == Some(b"subscribe") => {}
        other => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected SUBSCRIBE reply {other:?}"),
            ))
        }
    }
    link.set_up(None, Some(true));
    super::inbound::on_subscribed(link);
    loop {
        let frame = conn.read_frame().await?;
        let Frame::Array(parts) = frame else { continue };
        if parts.len() == 3 && resp::bytes_of(&parts[0]) == Some(b"message") {
            if let Some(payload) = resp::bytes_of(&parts[2]) {
                super::inbound::on_message(state, link, payload);
            }
        }
    }
}
