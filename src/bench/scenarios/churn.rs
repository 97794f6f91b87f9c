//! `churn`: workers repeat connect -> `connection_established` -> subscribe ->
//! `subscription_succeeded` -> WebSocket close (the server closes TCP first) until the
//! duration is over, optionally capped at a rate. Reports cycles per second, the
//! cycle time, failures by cause, and the server's RSS before the first cycle and
//! after the last (after `--settle`): memory a server leaks per connection shows here.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

use super::{
    common_params, establish, seconds, server_sample, server_section, subscribe, Prepared, Window,
};
use crate::bench::args::{ChurnArgs, Rate};
use crate::bench::clock;
use crate::bench::fail::{Fail, Failures};
use crate::bench::live::{Live, Phase, Slot};
use crate::bench::payload::channel_auth;
use crate::bench::report::{histogram, latency_section, Report, Section, Val};
use crate::bench::runner::{Env, Run};

/// How long one cycle's closing handshake may take.
const CLOSE_LIMIT: Duration = Duration::from_secs(2);

struct ShardOut {
    cycles: u64,
    failed: u64,
    ready_latency: Histogram<u64>,
    cycle_latency: Histogram<u64>,
    failures: Failures,
}

/// One executor's counters, shared by its workers.
struct Counts {
    cycles: std::cell::Cell<u64>,
    failed: std::cell::Cell<u64>,
    ready_latency: RefCell<Histogram<u64>>,
    cycle_latency: RefCell<Histogram<u64>>,
    failures: RefCell<Failures>,
}

pub fn run(args: &ChurnArgs, prepared: &Prepared) -> Result<Report, String> {
    let common = &args.common;
    let live = Live::new(common.cores, "cycles", "cycles done");
    live.setup_target
        .store(args.concurrency as u64, Ordering::Relaxed);
    let run = Arc::new(Run::new(common.clone(), prepared.endpoints.clone(), live));
    let before = server_sample(common);
    let started_ns = clock::now_ns();
    let probe = Arc::new(Window::default());
    let outs = {
        let (args, probe) = (Arc::new(args.clone()), probe.clone());
        run.launch(move |env| shard(env, args.clone(), probe.clone()))?
    };
    let ended_ns = clock::now_ns();
    let end_of_run = server_sample(common);
    let after = if common.server_pids.is_empty() || run.interrupted() {
        end_of_run
    } else {
        std::thread::sleep(args.settle);
        server_sample(common)
    };

    let kind = if args.private { "private" } else { "public" };
    let mut report = Report::new(
        "churn",
        format!(
            "{} workers: connect, subscribe to one of {} {kind} channel(s), close; {} cycles/s",
            args.concurrency,
            args.channels,
            args.rate.describe()
        ),
    );
    report.interrupted = run.interrupted();
    common_params(&mut report, common);
    report.param("concurrency", json!(args.concurrency));
    report.param("channels", json!(args.channels));
    report.param("channel_kind", json!(kind));
    report.param("rate", args.rate.to_json());
    report.param("settle_s", json!(args.settle.as_secs_f64()));
    report.elapsed_s = seconds(started_ns, ended_ns);

    let cycles: u64 = outs.iter().map(|o| o.cycles).sum();
    let failed: u64 = outs.iter().map(|o| o.failed).sum();
    let mut failures = Failures::default();
    let (mut ready, mut whole) = (histogram(), histogram());
    for out in &outs {
        failures.merge(out.failures.clone());
        let _ = ready.add(&out.ready_latency);
        let _ = whole.add(&out.cycle_latency);
    }
    let run_start = run.passed_at(0);
    let window = seconds(run_start, ended_ns.max(run_start));
    let mut c = Section::new("cycles", "cycles");
    c.int("cycles", "completed", cycles)
        .int("failed", "failed", failed)
        .rate("per_s", "cycles per second", cycles, window);
    report.push(c);
    report.push(latency_section(
        "subscribed_latency_us",
        "connect -> subscription_succeeded",
        &ready,
    ));
    report.push(latency_section(
        "cycle_latency_us",
        "whole cycle (connect -> server closed)",
        &whole,
    ));
    report.failures = failures;
    if let Some(mut server) = server_section(
        common,
        None,
        before,
        end_of_run,
        Some(("cycles", "cycles", cycles)),
    ) {
        let growth = match (before, after) {
            (Some(b), Some(a)) => Val::Float(a.rss_kib as f64 - b.rss_kib as f64, 0),
            _ => Val::None,
        };
        server
            .put(
                "rss_settled_kib",
                "RSS after the settle time",
                after.map_or(Val::None, |a| Val::Int(a.rss_kib)),
                "KiB",
            )
            .put(
                "rss_growth_kib",
                "RSS growth over the run",
                growth.clone(),
                "KiB",
            )
            .put(
                "rss_growth_per_1000_cycles_kib",
                "RSS growth per 1000 cycles",
                match growth {
                    Val::Float(g, _) if cycles > 0 => Val::Float(g * 1000.0 / cycles as f64, 1),
                    _ => Val::None,
                },
                "KiB",
            );
        report.server = Some(server);
    }
    report.push(probe.client_section(common.cores, ("cycles", "cycles", cycles)));
    if cycles > 0 && failed == 0 {
        report.notes.push(format!("{cycles} cycles, none failed"));
    }
    Ok(report)
}

async fn shard(env: Rc<Env>, args: Arc<ChurnArgs>, window: Arc<Window>) -> ShardOut {
    let counts = Rc::new(Counts {
        cycles: Default::default(),
        failed: Default::default(),
        ready_latency: RefCell::new(histogram()),
        cycle_latency: RefCell::new(histogram()),
        failures: RefCell::new(Failures::default()),
    });
    let start_ns = env.barrier(0).await;
    env.run.live.enter(Phase::Running);
    if env.id == 0 {
        window.mark(0, env.common());
    }
    let workers: Vec<_> = env
        .mine(args.concurrency)
        .map(|w| {
            let (env, args, counts) = (env.clone(), args.clone(), counts.clone());
            glommio::spawn_local(async move { worker(&env, &args, &counts, w, start_ns).await })
        })
        .collect();
    Slot::add(&env.slot().ready, workers.len() as u64);
    for task in workers {
        task.await;
    }
    env.barrier(1).await;
    if env.id == 0 {
        window.mark(1, env.common());
    }
    env.run.live.enter(Phase::Closing);
    ShardOut {
        cycles: counts.cycles.get(),
        failed: counts.failed.get(),
        ready_latency: counts.ready_latency.replace(histogram()),
        cycle_latency: counts.cycle_latency.replace(histogram()),
        failures: counts.failures.take(),
    }
}

/// Worker `w`: cycles until the end; connection numbers `w, w + C, ...` pick the URL
/// and source address round-robin.
async fn worker(env: &Env, args: &ChurnArgs, counts: &Counts, w: usize, start_ns: u64) {
    let start = clock::instant_of(start_ns);
    let end = start + env.common().duration;
    // Each worker paces itself at its share of the rate.
    let interval = match args.rate {
        Rate::PerSecond(r) => Some(Duration::from_secs_f64(args.concurrency as f64 / r)),
        Rate::Max => None,
    };
    for k in 0u64.. {
        if let Some(interval) = interval {
            // Workers start spread over one interval, not all at once.
            let offset = interval.mul_f64(w as f64 / args.concurrency as f64);
            let due = start + offset + interval.mul_f64(k as f64);
            if due >= end || !env.sleep_until(due).await {
                return;
            }
        }
        if Instant::now() >= end || env.stopping() {
            return;
        }
        let number = w + k as usize * args.concurrency;
        let begun = clock::now_ns();
        match env
            .unless_stopped(one_cycle(env, args, number, begun, counts))
            .await
        {
            Some(Ok(())) => {
                counts.cycles.set(counts.cycles.get() + 1);
                Slot::add(&env.slot().received, 1);
                Slot::add(&env.slot().sent, 1);
                counts
                    .cycle_latency
                    .borrow_mut()
                    .saturating_record(clock::micros_between(begun, clock::now_ns()).max(1));
            }
            Some(Err(fail)) => {
                counts.failed.set(counts.failed.get() + 1);
                Slot::add(&env.slot().failed, 1);
                Slot::add(&env.slot().sent, 1);
                counts.failures.borrow_mut().add(&fail);
            }
            None => return,
        }
    }
}

async fn one_cycle(
    env: &Env,
    args: &ChurnArgs,
    number: usize,
    begun: u64,
    counts: &Counts,
) -> Result<(), Fail> {
    let (conn, socket_id) = establish(env, number).await?;
    let c = number % args.channels;
    let result = if args.private {
        let channel = format!("private-churn-{c}");
        let common = env.common();
        let auth = channel_auth(&common.key, &common.secret, &socket_id, &channel, None);
        subscribe(env, &conn, &channel, Some(&auth), None).await
    } else {
        subscribe(env, &conn, &format!("churn-{c}"), None, None).await
    };
    if result.is_ok() {
        counts
            .ready_latency
            .borrow_mut()
            .saturating_record(clock::micros_between(begun, clock::now_ns()).max(1));
    }
    conn.close(&env.scratch, CLOSE_LIMIT).await;
    result.map(|_| ())
}
