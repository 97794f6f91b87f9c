//! The scenarios, one per file, and the steps they share: opening a connection up to
//! `connection_established`, subscribing, setting up many connections at a bounded
//! concurrency within the setup deadline, keeping a reader task on each connection,
//! closing them all, and the report's common parts (parameters, server figures).

pub mod churn;
pub mod connect;
pub mod delivery;
pub mod fanout;
pub mod presence;
pub mod whisper;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::Task;
use serde_json::json;

use super::args::Common;
use super::client::{Conn, Endpoint};
use super::clock;
use super::fail::{Fail, Failures};
use super::http::ApiTarget;
use super::live::Slot;
use super::proc_stats::{self, Sample};
use super::report::{Report, Section, Val};
use super::runner::Env;

/// How long closing all connections may take at the end of a run.
pub const CLOSE_LIMIT: Duration = Duration::from_secs(3);

/// What `bench::main` resolved before the run.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// One per `--url`.
    pub endpoints: Vec<Endpoint>,
    /// The HTTP API (fanout).
    pub api: Option<ApiTarget>,
}

/// TCP connect, handshake and `connection_established` for connection number `i`;
/// returns the connection and its socket id.
pub async fn establish(env: &Env, i: usize) -> Result<(Rc<Conn>, String), Fail> {
    let limit = env.common().connect_timeout;
    let conn = Conn::open(env.endpoint(i), env.source(i), limit, &env.scratch).await?;
    let socket_id = conn
        .established(&env.scratch, Instant::now() + limit)
        .await?;
    Ok((conn, socket_id))
}

/// Subscribe and wait for the acknowledgment; returns its `data`.
pub async fn subscribe(
    env: &Env,
    conn: &Conn,
    channel: &str,
    auth: Option<&str>,
    channel_data: Option<&str>,
) -> Result<String, Fail> {
    conn.subscribe(channel, auth, channel_data).await?;
    conn.subscribed(
        channel,
        &env.scratch,
        Instant::now() + env.common().connect_timeout,
    )
    .await
}

/// Set up `items` with at most `concurrency` (this executor's share) at a time, until
/// all are done or the setup deadline passes (the rest fail with `timeout_setup`).
/// Counts ready and failed in the live slot; returns what succeeded, by item.
pub async fn setup_all<T, F, Fut>(
    env: &Rc<Env>,
    items: Vec<usize>,
    concurrency: usize,
    failures: &RefCell<Failures>,
    setup: F,
) -> Vec<(usize, T)>
where
    T: 'static,
    F: Fn(usize) -> Fut + 'static,
    Fut: Future<Output = Result<T, Fail>> + 'static,
{
    let share = concurrency
        .div_ceil(env.count)
        .max(1)
        .min(items.len().max(1));
    let items = Rc::new(items);
    let next = Rc::new(Cell::new(0usize));
    let finished = Rc::new(Cell::new(0usize));
    let done: Rc<RefCell<Vec<(usize, T)>>> = Rc::new(RefCell::new(Vec::new()));
    let failed: Rc<RefCell<Failures>> = Rc::new(RefCell::new(Failures::default()));
    let setup = Rc::new(setup);
    let workers: Vec<Task<()>> = (0..share)
        .map(|_| {
            let (env, items, next, finished, done, failed, setup) = (
                env.clone(),
                items.clone(),
                next.clone(),
                finished.clone(),
                done.clone(),
                failed.clone(),
                setup.clone(),
            );
            glommio::spawn_local(async move {
                loop {
                    let k = next.get();
                    if k >= items.len() || env.stopping() {
                        return;
                    }
                    next.set(k + 1);
                    let item = items[k];
                    match setup(item).await {
                        Ok(value) => {
                            Slot::add(&env.slot().ready, 1);
                            done.borrow_mut().push((item, value));
                        }
                        Err(fail) => {
                            Slot::add(&env.slot().failed, 1);
                            failed.borrow_mut().add(&fail);
                        }
                    }
                    finished.set(finished.get() + 1);
                }
            })
        })
        .collect();
    let deadline = Instant::now() + env.common().setup_timeout;
    let total = items.len();
    env.wait_for(deadline, || finished.get() >= total).await;
    drop(workers);
    let left = total - finished.get();
    let mut failures = failures.borrow_mut();
    failures.merge(failed.take());
    if left > 0 && !env.stopping() {
        for _ in 0..left {
            failures.add(&Fail::Timeout("setup"));
        }
        Slot::add(&env.slot().failed, left as u64);
    }
    done.take()
}

/// Keep reading `conn` in a task of its own: `on_batch(messages, now_ns)` gets each
/// read's messages (`now_ns` read once per read), `on_end` the reason it ended.
pub fn spawn_reader<H, E>(env: &Rc<Env>, conn: Rc<Conn>, mut on_text: H, on_end: E) -> Task<()>
where
    H: FnMut(&[u8], u64) + 'static,
    E: FnOnce(Fail) + 'static,
{
    let env = env.clone();
    glommio::spawn_local(async move {
        let mut fail = conn.take_buffered(|t| on_text(t, clock::now_ns())).err();
        while fail.is_none() {
            let mut now = 0;
            if let Err(f) = conn
                .read_some(&env.scratch, |t| {
                    if now == 0 {
                        now = clock::now_ns();
                    }
                    on_text(t, now)
                })
                .await
            {
                fail = Some(f);
            }
        }
        on_end(fail.unwrap_or(Fail::Eof));
    })
}

/// Close every connection (WebSocket Close, then wait for the readers to see the
/// server's answer), at most [`CLOSE_LIMIT`]; the sockets are reset when the caller
/// drops them (see [`Conn::discard`]).
pub async fn close_all(env: &Env, conns: &[Rc<Conn>], open_readers: &Cell<usize>) {
    let deadline = Instant::now() + CLOSE_LIMIT;
    for conn in conns {
        if Instant::now() >= deadline {
            break;
        }
        let _ = conn.start_close().await;
    }
    env.wait_for(deadline, || open_readers.get() == 0).await;
    for conn in conns {
        conn.discard();
    }
}

/// The report's heading parameters every scenario shares.
pub fn common_params(report: &mut Report, common: &Common) {
    report.param(
        "urls",
        json!(common
            .urls
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()),
    );
    report.param("app_id", json!(common.app_id));
    report.param("key", json!(common.key));
    report.param("cores", json!(common.cores));
    report.param("duration_s", json!(common.duration.as_secs_f64()));
    report.param("drain_s", json!(common.drain.as_secs_f64()));
    if let Some(n) = common.source_ips {
        report.param("source_ips", json!(n));
    }
    if !common.server_pids.is_empty() {
        report.param("server_pids", json!(common.server_pids));
    }
}

/// A note for runs of many connections from one source address: connect() slows down
/// (stalls of about 1 s) as that address's ephemeral ports fill up.
pub fn source_address_hint(report: &mut Report, common: &Common, connections: usize) {
    if common.source_ips.is_none() && connections > 10_000 {
        report.notes.push(format!(
            "{connections} connections from one source address: connect() slows down as its \
             ephemeral ports fill (stalls of about 1 s); against a loopback server give \
             --source-ips {} to spread them over 127.0.0.1..N",
            connections.div_ceil(5_000).min(254)
        ));
    }
}

/// The server's figures now (`None` without --server-pid or when it exited).
pub fn server_sample(common: &Common) -> Option<Sample> {
    proc_stats::sample(&common.server_pids)
}

/// The `server` section (`None` without --server-pid): RSS before connecting
/// (`initial`), at the start and at the end of the measured phase, CPU time over it,
/// and, for `work = (key, label, count)`, the CPU seconds per million of that work and
/// that work per CPU second.
pub fn server_section(
    common: &Common,
    initial: Option<Sample>,
    start: Option<Sample>,
    end: Option<Sample>,
    work: Option<(&str, &str, u64)>,
) -> Option<Section> {
    if common.server_pids.is_empty() {
        return None;
    }
    let mut s = Section::new("server", "server (from /proc)");
    let kib = |v: Option<Sample>| v.map_or(Val::None, |v| Val::Int(v.rss_kib));
    if initial.is_some() {
        s.put(
            "rss_initial_kib",
            "RSS before connecting",
            kib(initial),
            "KiB",
        );
    }
    s.put(
        "rss_before_kib",
        "RSS at the start of the run",
        kib(start),
        "KiB",
    )
    .put(
        "rss_after_kib",
        "RSS at the end of the run",
        kib(end),
        "KiB",
    );
    let cpu = match (start, end) {
        (Some(a), Some(b)) => Some(b.cpu_s - a.cpu_s),
        _ => None,
    };
    s.put(
        "cpu_s",
        "CPU time during the run",
        cpu.map_or(Val::None, |c| Val::Float(c, 2)),
        "s",
    );
    if let Some((key, label, count)) = work {
        let per_million = match cpu {
            Some(c) if count > 0 => Val::Float(c / (count as f64 / 1e6), 3),
            _ => Val::None,
        };
        let per_cpu_s = match cpu {
            Some(c) if c > 0.0 => Val::Float(count as f64 / c, 0),
            _ => Val::None,
        };
        s.put(
            &format!("cpu_s_per_million_{key}"),
            &format!("CPU seconds per million {label}"),
            per_million,
            "s",
        )
        .put(
            &format!("{key}_per_cpu_s"),
            &format!("{label} per CPU second"),
            per_cpu_s,
            "",
        );
    }
    Some(s)
}

/// The measured phase's two ends: server and tool samples taken (by executor 0) when
/// it starts and when it ends.
#[derive(Debug, Default)]
pub struct Window {
    marks: std::sync::Mutex<[Option<Mark>; 2]>,
}

/// One end of a [`Window`]: server sample, tool sample, `clock::now_ns`.
type Mark = (Option<Sample>, Option<Sample>, u64);

impl Window {
    /// Take the samples for end `i` (0: start, 1: end).
    pub fn mark(&self, i: usize, common: &Common) {
        let server = server_sample(common);
        let client = proc_stats::sample(&[std::process::id()]);
        self.lock()[i] = Some((server, client, clock::now_ns()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Option<Mark>; 2]> {
        self.marks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fill the report's `server` section (from /proc, with `initial` taken before
    /// anything connected) and add the `client` section, both over this window and per
    /// million of `work`.
    pub fn sections(
        &self,
        report: &mut Report,
        common: &Common,
        initial: Option<Sample>,
        work: (&str, &str, u64),
    ) {
        let (start, end) = self.server();
        report.server = server_section(common, initial, start, end, Some(work));
        report.push(self.client_section(common.cores, work));
    }

    /// The server samples at both ends.
    pub fn server(&self) -> (Option<Sample>, Option<Sample>) {
        let marks = self.lock();
        (marks[0].and_then(|m| m.0), marks[1].and_then(|m| m.0))
    }

    /// The `client` section: this tool's own CPU time over the window (to tell
    /// whether the load generator kept up), per million of `work`.
    pub fn client_section(&self, cores: usize, work: (&str, &str, u64)) -> Section {
        let marks = self.lock();
        let (key, label, count) = work;
        let mut s = Section::new("client", "client (this tool)");
        s.int("cores", "executors", cores as u64);
        let (cpu, wall) = match (marks[0], marks[1]) {
            (Some((_, Some(a), t0)), Some((_, Some(b), t1))) => {
                (Some(b.cpu_s - a.cpu_s), seconds(t0, t1))
            }
            _ => (None, 0.0),
        };
        s.put(
            "cpu_s",
            "CPU time during the run",
            cpu.map_or(Val::None, |c| Val::Float(c, 2)),
            "s",
        )
        .put(
            "cpu_busy_percent",
            "busy, share of its executors",
            match cpu {
                Some(c) if wall > 0.0 => Val::Float(100.0 * c / (wall * cores as f64), 1),
                _ => Val::None,
            },
            "%",
        )
        .put(
            &format!("cpu_s_per_million_{key}"),
            &format!("CPU seconds per million {label}"),
            match cpu {
                Some(c) if count > 0 => Val::Float(c / (count as f64 / 1e6), 3),
                _ => Val::None,
            },
            "s",
        );
        s
    }
}

/// Seconds between two `clock::now_ns` readings.
pub fn seconds(from_ns: u64, to_ns: u64) -> f64 {
    to_ns.saturating_sub(from_ns) as f64 / 1e9
}
