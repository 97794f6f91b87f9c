//! `connect`: open N connections at a concurrency and hold them for the duration
//! (answering the server's pings); report the establish rate, the time to
//! `connection_established`, failures by cause, and with `--server-pid` the server's
//! RSS per held connection and CPU time.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::json;

use super::{
    close_all, common_params, establish, seconds, server_sample, setup_all, spawn_reader,
    subscribe, Prepared, Window,
};
use crate::bench::args::ConnectArgs;
use crate::bench::client::Conn;
use crate::bench::clock;
use crate::bench::fail::Failures;
use crate::bench::live::{Live, Phase};
use crate::bench::proc_stats::Sample;
use crate::bench::report::{histogram, latency_section, Report, Section, Val};
use crate::bench::runner::{Env, Run};

/// How long after closing the server's RSS is read again.
const SETTLE: Duration = Duration::from_secs(1);

struct Shared {
    args: ConnectArgs,
    /// Samples at the start (everything established) and end of the hold.
    window: Window,
}

struct ShardOut {
    established: u64,
    setup_end_ns: u64,
    latency: Histogram<u64>,
    messages: u64,
    dropped: u64,
    setup_failures: Failures,
    hold_failures: Failures,
}

struct Held {
    conn: Rc<Conn>,
    _reader: glommio::Task<()>,
}

struct Stats {
    messages: Cell<u64>,
    open_readers: Cell<usize>,
    closing: Cell<bool>,
    dropped: Cell<u64>,
    failures: RefCell<Failures>,
    latency: RefCell<Histogram<u64>>,
}

pub fn run(args: &ConnectArgs, prepared: &Prepared) -> Result<Report, String> {
    let common = &args.common;
    let live = Live::new(common.cores, "-", "messages");
    live.setup_target
        .store(args.connections as u64, Ordering::Relaxed);
    let run = Arc::new(Run::new(common.clone(), prepared.endpoints.clone(), live));
    let shared = Arc::new(Shared {
        args: args.clone(),
        window: Window::default(),
    });
    let initial = server_sample(common);
    let started_ns = clock::now_ns();
    let outs = {
        let shared = shared.clone();
        run.launch(move |env| shard(env, shared.clone()))?
    };
    let ended_ns = clock::now_ns();
    let after_close = if common.server_pids.is_empty() || run.interrupted() {
        None
    } else {
        std::thread::sleep(SETTLE);
        server_sample(common)
    };

    let mut report = Report::new(
        "connect",
        format!(
            "{} connections, {} at a time, held {:.1} s",
            args.connections,
            args.concurrency,
            common.duration.as_secs_f64()
        ),
    );
    report.interrupted = run.interrupted();
    common_params(&mut report, common);
    report.param("connections", json!(args.connections));
    report.param("concurrency", json!(args.concurrency));
    report.param("channels", json!(args.channels));
    super::source_address_hint(&mut report, common, args.connections);
    report.elapsed_s = seconds(started_ns, ended_ns);

    let established: u64 = outs.iter().map(|o| o.established).sum();
    let setup_end = outs
        .iter()
        .map(|o| o.setup_end_ns)
        .max()
        .unwrap_or(started_ns);
    let mut setup_failures = Failures::default();
    let mut failures = Failures::default();
    let mut latency = histogram();
    for out in &outs {
        setup_failures.merge(out.setup_failures.clone());
        failures.merge(out.hold_failures.clone());
        let _ = latency.add(&out.latency);
    }
    let setup_s = seconds(started_ns, setup_end);
    let mut c = Section::new("connections", "connections");
    c.int("attempted", "attempted", args.connections as u64)
        .int("established", "established", established)
        .int("failed", "failed", setup_failures.total())
        .float("setup_s", "time to open them all", setup_s, 2, "s")
        .rate("established_per_s", "establish rate", established, setup_s);
    report.push(c);
    report.push(latency_section(
        "establish_latency_us",
        "TCP connect -> connection_established",
        &latency,
    ));
    let hold_start = run.passed_at(0);
    let hold_end = run.passed_at(1).max(hold_start);
    let mut h = Section::new("hold", "hold");
    h.float("held_s", "held for", seconds(hold_start, hold_end), 2, "s")
        .int(
            "dropped",
            "dropped by the server while held",
            outs.iter().map(|o| o.dropped).sum(),
        )
        .int(
            "messages",
            "messages received while held",
            outs.iter().map(|o| o.messages).sum(),
        );
    report.push(h);
    failures.merge(setup_failures);
    report.failures = failures;

    if !common.server_pids.is_empty() {
        let (held, hold_end_sample) = shared.window.server();
        let mut s = Section::new("server", "server (from /proc)");
        let kib = |v: Option<Sample>| v.map_or(Val::None, |v| Val::Int(v.rss_kib));
        s.put(
            "rss_before_kib",
            "RSS before connecting",
            kib(initial),
            "KiB",
        )
        .put(
            "rss_held_kib",
            "RSS holding the connections",
            kib(hold_end_sample.or(held)),
            "KiB",
        )
        .put(
            "rss_after_close_kib",
            "RSS 1 s after closing them",
            kib(after_close),
            "KiB",
        );
        let per_conn = match (initial, hold_end_sample.or(held)) {
            (Some(b), Some(h)) if established > 0 => Val::Float(
                (h.rss_kib as f64 - b.rss_kib as f64) * 1024.0 / established as f64,
                0,
            ),
            _ => Val::None,
        };
        s.put(
            "rss_per_connection_bytes",
            "RSS per connection",
            per_conn,
            "bytes",
        );
        let cpu = |a: Option<Sample>, b: Option<Sample>| match (a, b) {
            (Some(a), Some(b)) => Val::Float(b.cpu_s - a.cpu_s, 2),
            _ => Val::None,
        };
        s.put(
            "cpu_setup_s",
            "CPU time while connecting",
            cpu(initial, held),
            "s",
        )
        .put(
            "cpu_hold_s",
            "CPU time while holding",
            cpu(held, hold_end_sample),
            "s",
        );
        report.server = Some(s);
    }
    if established == args.connections as u64 {
        report.notes.push(format!(
            "all {established} connections were established and held"
        ));
    }
    Ok(report)
}

async fn shard(env: Rc<Env>, shared: Arc<Shared>) -> ShardOut {
    let args = &shared.args;
    let stats = Rc::new(Stats {
        messages: Cell::new(0),
        open_readers: Cell::new(0),
        closing: Cell::new(false),
        dropped: Cell::new(0),
        failures: RefCell::new(Failures::default()),
        latency: RefCell::new(histogram()),
    });
    let setup_failures = RefCell::new(Failures::default());
    let held = {
        let (env2, stats, channels) = (env.clone(), stats.clone(), args.channels);
        setup_all(
            &env,
            env.mine(args.connections).collect(),
            args.concurrency,
            &setup_failures,
            move |i| {
                let (env, stats) = (env2.clone(), stats.clone());
                async move {
                    let start = clock::now_ns();
                    let (conn, _) = establish(&env, i).await?;
                    stats
                        .latency
                        .borrow_mut()
                        .saturating_record(clock::micros_between(start, clock::now_ns()).max(1));
                    if channels > 0 {
                        let channel = format!("bench-connect-{}", i % channels);
                        subscribe(&env, &conn, &channel, None, None).await?;
                    }
                    conn.trim();
                    stats.open_readers.set(stats.open_readers.get() + 1);
                    let (s, end) = (stats.clone(), stats.clone());
                    let reader = spawn_reader(
                        &env,
                        conn.clone(),
                        move |_, _| s.messages.set(s.messages.get() + 1),
                        move |fail| {
                            end.open_readers.set(end.open_readers.get() - 1);
                            if !end.closing.get() {
                                end.dropped.set(end.dropped.get() + 1);
                                end.failures.borrow_mut().add(&fail);
                            }
                        },
                    );
                    Ok(Held {
                        conn,
                        _reader: reader,
                    })
                }
            },
        )
        .await
    };
    let setup_end_ns = clock::now_ns();

    let hold_start = env.barrier(0).await;
    env.run.live.enter(Phase::Running);
    if env.id == 0 {
        shared.window.mark(0, env.common());
    }
    env.sleep_until(clock::instant_of(hold_start) + env.common().duration)
        .await;
    env.barrier(1).await;
    if env.id == 0 {
        shared.window.mark(1, env.common());
    }

    env.run.live.enter(Phase::Closing);
    stats.closing.set(true);
    let conns: Vec<Rc<Conn>> = held.iter().map(|(_, h)| h.conn.clone()).collect();
    if !env.stopping() {
        close_all(&env, &conns, &stats.open_readers).await;
    }
    ShardOut {
        established: held.len() as u64,
        setup_end_ns,
        latency: stats.latency.replace(histogram()),
        messages: stats.messages.get(),
        dropped: stats.dropped.get(),
        setup_failures: setup_failures.take(),
        hold_failures: stats.failures.take(),
    }
}
