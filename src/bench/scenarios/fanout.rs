//! `fanout`: S subscribers on C public channels, events published through the signed
//! HTTP API at a rate (or as fast as the server answers), each event sent to every
//! channel. Every delivery is checked against its publisher's sequence (losses,
//! duplicates) and timed from the publish to the read (end-to-end latency).

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

use super::delivery::{report_sections, Deliveries, Received};
use super::{
    close_all, common_params, establish, seconds, server_sample, setup_all, subscribe, Prepared,
    Window,
};
use crate::bench::args::{FanoutArgs, Rate};
use crate::bench::client::Conn;
use crate::bench::clock;
use crate::bench::fail::{Fail, Failures};
use crate::bench::http::{ApiClient, ApiTarget};
use crate::bench::live::{Live, Phase, Slot};
use crate::bench::payload::{self, Marker};
use crate::bench::report::{histogram, latency_section, Report, Section};
use crate::bench::runner::{Env, Run};
use crate::bench::tracker::Tracker;

/// Pusher's limit of channels per `POST /events`.
const CHANNELS_PER_REQUEST: usize = 100;
/// Publishers when --publishers is not given: a publisher waits for each answer, and a
/// server answers after it started delivering, so one alone falls behind a fast
/// schedule on a big fan-out.
const DEFAULT_PUBLISHERS: usize = 4;
/// Limit for one publish request.
const PUBLISH_LIMIT: Duration = Duration::from_secs(10);

/// What the executors share besides the run.
struct Shared {
    args: FanoutArgs,
    publishers: usize,
    api: ApiTarget,
    /// Per publisher: sequence numbers used so far (0..n).
    attempted: Vec<AtomicU64>,
    /// Per publisher: sequence numbers whose publish failed.
    failed: Mutex<Vec<Vec<u64>>>,
    /// Events claimed so far against `--events`.
    claimed: AtomicU64,
    /// Server and tool samples when the run started and when the drain ended.
    window: Window,
}

/// One executor's results.
struct ShardOut {
    subscribed: u64,
    received: Received,
    lost: u64,
    publish_latency: Histogram<u64>,
    published: u64,
    publish_failed: u64,
    setup_failures: Failures,
    run_failures: Failures,
    setup_done_ns: u64,
}

struct Sub {
    conn: Rc<Conn>,
    tracker: Rc<RefCell<Tracker>>,
    _reader: glommio::Task<()>,
}

pub fn run(args: &FanoutArgs, prepared: &Prepared) -> Result<Report, String> {
    let common = &args.common;
    let publishers = args.publishers.unwrap_or(DEFAULT_PUBLISHERS);
    let live = Live::new(common.cores, "events", "deliveries");
    live.setup_target
        .store(args.subscribers as u64, Ordering::Relaxed);
    let run = Arc::new(Run::new(common.clone(), prepared.endpoints.clone(), live));
    let shared = Arc::new(Shared {
        args: args.clone(),
        publishers,
        api: prepared
            .api
            .clone()
            .ok_or("fanout needs the HTTP API target")?,
        attempted: (0..publishers).map(|_| AtomicU64::new(0)).collect(),
        failed: Mutex::new(vec![Vec::new(); publishers]),
        claimed: AtomicU64::new(0),
        window: Window::default(),
    });
    let initial = server_sample(common);
    let started_ns = clock::now_ns();
    let outs = {
        let shared = shared.clone();
        run.launch(move |env| shard(env, shared.clone()))?
    };
    let ended_ns = clock::now_ns();

    let mut report = Report::new(
        "fanout",
        format!(
            "{} subscribers on {} public channel(s), {} events/s, {} publisher(s)",
            args.subscribers,
            args.channels,
            args.rate.describe(),
            publishers
        ),
    );
    report.interrupted = run.interrupted();
    common_params(&mut report, common);
    report.param("api_url", json!(shared.api_url()));
    report.param("subscribers", json!(args.subscribers));
    report.param("channels", json!(args.channels));
    report.param("rate", args.rate.to_json());
    report.param("publishers", json!(publishers));
    if let Some(n) = args.events {
        report.param("events", json!(n));
    }
    report.param("payload_bytes", json!(args.payload));
    super::source_address_hint(&mut report, common, args.subscribers);
    report.elapsed_s = seconds(started_ns, ended_ns);

    let sum = |f: fn(&ShardOut) -> u64| outs.iter().map(f).sum::<u64>();
    let subscribed = sum(|o| o.subscribed);
    let setup_done = outs
        .iter()
        .map(|o| o.setup_done_ns)
        .max()
        .unwrap_or(started_ns);
    let mut setup_failures = Failures::default();
    let mut failures = Failures::default();
    let mut publish_latency = histogram();
    for out in &outs {
        setup_failures.merge(out.setup_failures.clone());
        failures.merge(out.run_failures.clone());
        let _ = publish_latency.add(&out.publish_latency);
    }

    let mut conns = Section::new("connections", "subscribers");
    conns
        .int("target", "subscribers asked for", args.subscribers as u64)
        .int("subscribed", "subscribed", subscribed)
        .int("failed", "failed to set up", setup_failures.total())
        .float(
            "setup_s",
            "setup time",
            seconds(started_ns, setup_done),
            2,
            "s",
        )
        .rate(
            "setup_per_s",
            "set up per second",
            subscribed,
            seconds(started_ns, setup_done),
        );
    report.push(conns);

    let run_start = run.passed_at(0);
    let publish_end = run.passed_at(1).max(run_start);
    let published = sum(|o| o.published);
    let publish_failed = sum(|o| o.publish_failed);
    let mut events = Section::new("events", "events (HTTP API)");
    events
        .int("published", "published (HTTP 200)", published)
        .int("failed", "publish failed", publish_failed)
        .float(
            "publish_s",
            "publishing time",
            seconds(run_start, publish_end),
            2,
            "s",
        )
        .rate(
            "per_s",
            "events per second",
            published,
            seconds(run_start, publish_end),
        );
    report.push(events);

    let lost = sum(|o| o.lost);
    let (deliveries, duplicates) = report_sections(
        &mut report,
        outs.iter().map(|o| &o.received),
        subscribed * published,
        lost,
        run_start,
        &mut failures,
    );
    report.push(latency_section(
        "publish_latency_us",
        "publish request round trip",
        &publish_latency,
    ));

    failures.merge(setup_failures);
    report.failures = failures;

    let work = ("deliveries", "deliveries", deliveries);
    shared.window.sections(&mut report, common, initial, work);
    if let (Rate::PerSecond(asked), None) = (args.rate, args.events) {
        let achieved = published as f64 / seconds(run_start, publish_end).max(1e-9);
        if !report.interrupted && achieved < 0.9 * asked {
            report.notes.push(format!(
                "only {achieved:.1} of the {asked} events/s asked for were published: each \
                 publisher waits for the server's answer (publish round trip above); more \
                 --publishers keep the schedule if the server has CPU left"
            ));
        }
    }
    if subscribed > 0 && published > 0 && lost == 0 && duplicates == 0 {
        report.notes.push(format!(
            "every subscriber received every event exactly once ({} deliveries)",
            deliveries
        ));
    }
    Ok(report)
}

impl Shared {
    fn api_url(&self) -> String {
        format!("http://{}{}", self.api.host, self.api.prefix)
    }
}

async fn shard(env: Rc<Env>, shared: Arc<Shared>) -> ShardOut {
    let args = &shared.args;
    let stats = Deliveries::new();
    let _live = stats.spawn_live_feed(&env);

    // Setup: every subscriber connected and subscribed, its reader running.
    let setup_failures = RefCell::new(Failures::default());
    let subs = {
        let (env2, stats, publishers, channels) =
            (env.clone(), stats.clone(), shared.publishers, args.channels);
        setup_all(
            &env,
            env.mine(args.subscribers).collect(),
            args.concurrency,
            &setup_failures,
            move |i| {
                let (env, stats) = (env2.clone(), stats.clone());
                async move {
                    let (conn, _) = establish(&env, i).await?;
                    let channel = format!("bench-{}", i % channels);
                    subscribe(&env, &conn, &channel, None, None).await?;
                    conn.trim();
                    let tracker = Rc::new(RefCell::new(Tracker::new(publishers)));
                    let reader = stats.start_reader(&env, &conn, &tracker, None);
                    Ok(Sub {
                        conn,
                        tracker,
                        _reader: reader,
                    })
                }
            },
        )
        .await
    };
    let setup_done_ns = clock::now_ns();

    // Run: publish for --duration (or --events).
    let run_start_ns = env.barrier(0).await;
    env.run.live.enter(Phase::Running);
    if env.id == 0 {
        shared.window.mark(0, env.common());
    }
    let publishers: Vec<_> = env
        .mine(shared.publishers)
        .map(|p| glommio::spawn_local(publisher(env.clone(), shared.clone(), p, run_start_ns)))
        .collect();
    let mut publish_latency = histogram();
    let (mut published, mut publish_failed) = (0, 0);
    let mut run_failures = Failures::default();
    for task in publishers {
        let out = task.await;
        let _ = publish_latency.add(&out.latency);
        published += out.ok;
        publish_failed += out.failed;
        run_failures.merge(out.failures);
    }

    // Drain: wait for what is still in flight to this executor's subscribers.
    env.barrier(1).await;
    env.run.live.enter(Phase::Draining);
    let (sent, failed) = shared.totals();
    let per_sub: u64 = (0..shared.publishers)
        .map(|p| sent[p] - failed[p].len() as u64)
        .sum();
    let deadline = Instant::now() + env.common().drain;
    env.wait_for(deadline, || {
        stats.fresh.get() >= per_sub * stats.open_readers.get() as u64
    })
    .await;
    env.barrier(2).await;
    if env.id == 0 {
        shared.window.mark(1, env.common());
    }

    // Close, then count what never arrived.
    env.run.live.enter(Phase::Closing);
    stats.closing();
    let conns: Vec<Rc<Conn>> = subs.iter().map(|(_, s)| s.conn.clone()).collect();
    if !env.stopping() {
        close_all(&env, &conns, &stats.open_readers).await;
    }
    let mut lost = 0;
    for (_, sub) in &subs {
        let tracker = sub.tracker.borrow();
        for (p, failed) in failed.iter().enumerate() {
            if let Some(seen) = tracker.sender(p) {
                lost += seen.missing(sent[p], failed);
            }
        }
    }
    ShardOut {
        subscribed: subs.len() as u64,
        received: stats.finish(),
        lost,
        publish_latency,
        published,
        publish_failed,
        setup_failures: setup_failures.take(),
        run_failures,
        setup_done_ns,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Per publisher: sequence numbers used, and those that failed.
    fn totals(&self) -> (Vec<u64>, Vec<Vec<u64>>) {
        let sent = self
            .attempted
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .collect();
        (sent, lock(&self.failed).clone())
    }
}

struct PublisherOut {
    ok: u64,
    failed: u64,
    latency: Histogram<u64>,
    failures: Failures,
}

/// One publisher: its own keep-alive API connection, events `p, p + P, ...` of the
/// schedule (paced) or back to back (`--rate max`).
async fn publisher(env: Rc<Env>, shared: Arc<Shared>, p: usize, start_ns: u64) -> PublisherOut {
    let args = &shared.args;
    let mut out = PublisherOut {
        ok: 0,
        failed: 0,
        latency: histogram(),
        failures: Failures::default(),
    };
    let mut client = ApiClient::new(shared.api.clone(), env.source(p));
    let path = format!("/apps/{}/events", shared.api.app_id);
    let chunks: Vec<String> = (0..args.channels)
        .collect::<Vec<_>>()
        .chunks(CHANNELS_PER_REQUEST)
        .map(|chunk| {
            serde_json::to_string(
                &chunk
                    .iter()
                    .map(|c| format!("bench-{c}"))
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default()
        })
        .collect();
    let start = clock::instant_of(start_ns);
    let end = start + env.common().duration;
    let interval = match args.rate {
        Rate::PerSecond(r) => Some(Duration::from_secs_f64(1.0 / r)),
        Rate::Max => None,
    };
    let mut body = Vec::with_capacity(256 + args.payload);
    for seq in 0u64.. {
        if let Some(cap) = args.events {
            if shared.claimed.fetch_add(1, Ordering::AcqRel) >= cap {
                break;
            }
        }
        if let Some(interval) = interval {
            let k = seq as f64 * shared.publishers as f64 + p as f64;
            let due = start + interval.mul_f64(k);
            if due >= end || !env.sleep_until(due).await {
                break;
            }
        }
        if Instant::now() >= end || env.stopping() {
            break;
        }
        let sent_ns = clock::now_ns();
        let marker = Marker {
            source: p as u32,
            seq,
            sent_ns,
        };
        let mut ok = true;
        for chunk in &chunks {
            body.clear();
            let _ = write!(
                body,
                r#"{{"name":"bench","channels":{chunk},"data":"{{\"m\":\""#
            );
            payload::write_marker(&mut body, marker);
            let _ = write!(body, r#"\",\"p\":\""#);
            payload::write_padding(&mut body, args.payload);
            body.extend_from_slice(br#"\"}"}"#);
            let sent = clock::now_ns();
            let answer = client.post(&path, &body, PUBLISH_LIMIT).await;
            out.latency
                .saturating_record(clock::micros_between(sent, clock::now_ns()).max(1));
            match answer {
                Ok(a) if a.status == 200 => {}
                Ok(a) => {
                    ok = false;
                    out.failures.add(&Fail::HttpStatus(
                        a.status,
                        String::from_utf8_lossy(&a.body).into_owned(),
                    ));
                }
                Err(fail) => {
                    ok = false;
                    out.failures.add(&fail);
                }
            }
        }
        shared.attempted[p].store(seq + 1, Ordering::Release);
        if ok {
            out.ok += 1;
        } else {
            out.failed += 1;
            lock(&shared.failed)[p].push(seq);
        }
        Slot::add(&env.slot().sent, 1);
    }
    out
}
