//! `whisper`: members of private (or presence) channels, subscriptions signed locally
//! with the secret, send client events at a rate, each from the next member in turn;
//! every other member of the sender's channel must get each one exactly once, and the
//! sender never. Same report as fanout: deliveries, latency, losses, duplicates.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::delivery::{report_sections, Deliveries, Received};
use super::{
    close_all, common_params, establish, seconds, server_sample, setup_all, subscribe, Prepared,
    Window,
};
use crate::bench::args::{Rate, WhisperArgs};
use crate::bench::client::Conn;
use crate::bench::clock;
use crate::bench::fail::Failures;
use crate::bench::live::{Live, Phase, Slot};
use crate::bench::payload::{self, channel_auth, Marker};
use crate::bench::report::{Report, Section};
use crate::bench::runner::{Env, Run};
use crate::bench::tracker::Tracker;

struct Shared {
    args: WhisperArgs,
    /// Per member: client events sent so far (its sequence numbers 0..n).
    sent: Vec<AtomicU64>,
    /// Events claimed so far against `--events`.
    claimed: AtomicU64,
    /// Per channel: members subscribed (the receivers of its events, plus the sender).
    subscribed: Vec<AtomicU64>,
    window: Window,
}

impl Shared {
    fn channels(&self) -> usize {
        self.args.channels
    }

    /// Member `i`'s channel and its position among that channel's members.
    fn place(&self, i: usize) -> (usize, usize) {
        (i % self.channels(), i / self.channels())
    }

    /// How many members channel `c` has.
    fn members_of(&self, c: usize) -> usize {
        (self.args.members + self.channels() - 1 - c) / self.channels()
    }

    fn channel_name(&self, c: usize) -> String {
        let kind = if self.args.presence {
            "presence"
        } else {
            "private"
        };
        format!("{kind}-bench-{c}")
    }
}

struct Member {
    index: usize,
    conn: Rc<Conn>,
    tracker: Rc<RefCell<Tracker>>,
    /// Next sequence number; `None` once sending failed.
    next_seq: Cell<Option<u64>>,
    _reader: glommio::Task<()>,
}

struct ShardOut {
    subscribed: u64,
    received: Received,
    lost: u64,
    sent: u64,
    setup_failures: Failures,
    run_failures: Failures,
    setup_done_ns: u64,
}

pub fn run(args: &WhisperArgs, prepared: &Prepared) -> Result<Report, String> {
    let common = &args.common;
    let live = Live::new(common.cores, "whispers", "deliveries");
    live.setup_target
        .store(args.members as u64, Ordering::Relaxed);
    let run = Arc::new(Run::new(common.clone(), prepared.endpoints.clone(), live));
    let shared = Arc::new(Shared {
        args: args.clone(),
        sent: (0..args.members).map(|_| AtomicU64::new(0)).collect(),
        claimed: AtomicU64::new(0),
        subscribed: (0..args.channels).map(|_| AtomicU64::new(0)).collect(),
        window: Window::default(),
    });
    let initial = server_sample(common);
    let started_ns = clock::now_ns();
    let outs = {
        let shared = shared.clone();
        run.launch(move |env| shard(env, shared.clone()))?
    };
    let ended_ns = clock::now_ns();

    let kind = if args.presence { "presence" } else { "private" };
    let mut report = Report::new(
        "whisper",
        format!(
            "{} members on {} {kind} channel(s), {} client events/s",
            args.members,
            args.channels,
            args.rate.describe()
        ),
    );
    report.interrupted = run.interrupted();
    common_params(&mut report, common);
    report.param("members", json!(args.members));
    report.param("channels", json!(args.channels));
    report.param("channel_kind", json!(kind));
    report.param("rate", args.rate.to_json());
    if let Some(n) = args.events {
        report.param("events", json!(n));
    }
    report.param("payload_bytes", json!(args.payload));
    super::source_address_hint(&mut report, common, args.members);
    report.elapsed_s = seconds(started_ns, ended_ns);

    let subscribed: u64 = outs.iter().map(|o| o.subscribed).sum();
    let setup_done = outs
        .iter()
        .map(|o| o.setup_done_ns)
        .max()
        .unwrap_or(started_ns);
    let mut setup_failures = Failures::default();
    let mut failures = Failures::default();
    for out in &outs {
        setup_failures.merge(out.setup_failures.clone());
        failures.merge(out.run_failures.clone());
    }
    let mut c = Section::new("connections", "members");
    c.int("target", "members asked for", args.members as u64)
        .int("subscribed", "subscribed", subscribed)
        .int("failed", "failed to set up", setup_failures.total())
        .float(
            "setup_s",
            "setup time",
            seconds(started_ns, setup_done),
            2,
            "s",
        );
    report.push(c);

    let run_start = run.passed_at(0);
    let send_end = run.passed_at(1).max(run_start);
    let sent: u64 = outs.iter().map(|o| o.sent).sum();
    let mut e = Section::new("events", "client events");
    e.int("sent", "sent", sent)
        .float(
            "send_s",
            "sending time",
            seconds(run_start, send_end),
            2,
            "s",
        )
        .rate(
            "per_s",
            "sent per second",
            sent,
            seconds(run_start, send_end),
        );
    report.push(e);

    // Each event is expected at every other subscribed member of its sender's channel
    // (only subscribed members send).
    let expected: u64 = (0..args.members)
        .map(|i| {
            let (c, _) = shared.place(i);
            let receivers = shared.subscribed[c]
                .load(Ordering::Acquire)
                .saturating_sub(1);
            shared.sent[i].load(Ordering::Acquire) * receivers
        })
        .sum();
    let lost = outs.iter().map(|o| o.lost).sum();
    let (deliveries, duplicates) = report_sections(
        &mut report,
        outs.iter().map(|o| &o.received),
        expected,
        lost,
        run_start,
        &mut failures,
    );
    failures.merge(setup_failures);
    report.failures = failures;
    let work = ("deliveries", "deliveries", deliveries);
    shared.window.sections(&mut report, common, initial, work);
    if sent > 0 && lost == 0 && duplicates == 0 && subscribed == args.members as u64 {
        report.notes.push(format!(
            "every member received every other member's events exactly once ({deliveries} \
             deliveries)"
        ));
    }
    Ok(report)
}

async fn shard(env: Rc<Env>, shared: Arc<Shared>) -> ShardOut {
    let args = &shared.args;
    let stats = Deliveries::new();
    let _live = stats.spawn_live_feed(&env);
    let setup_failures = RefCell::new(Failures::default());
    let members: Vec<Rc<Member>> = {
        let (env2, stats, shared) = (env.clone(), stats.clone(), shared.clone());
        setup_all(
            &env,
            env.mine(args.members).collect(),
            args.concurrency,
            &setup_failures,
            move |i| {
                let (env, stats, shared) = (env2.clone(), stats.clone(), shared.clone());
                async move {
                    let (conn, socket_id) = establish(&env, i).await?;
                    let (c, position) = shared.place(i);
                    let channel = shared.channel_name(c);
                    let data = shared.args.presence.then(|| {
                        format!(r#"{{"user_id":"bm{i}","user_info":{{"name":"bench"}}}}"#)
                    });
                    let common = env.common();
                    let auth = channel_auth(
                        &common.key,
                        &common.secret,
                        &socket_id,
                        &channel,
                        data.as_deref(),
                    );
                    subscribe(&env, &conn, &channel, Some(&auth), data.as_deref()).await?;
                    conn.trim();
                    shared.subscribed[c].fetch_add(1, Ordering::AcqRel);
                    let tracker = Rc::new(RefCell::new(Tracker::new(shared.members_of(c))));
                    let reader = stats.start_reader(&env, &conn, &tracker, Some(position as u32));
                    Ok(Rc::new(Member {
                        index: i,
                        conn,
                        tracker,
                        next_seq: Cell::new(Some(0)),
                        _reader: reader,
                    }))
                }
            },
        )
        .await
        .into_iter()
        .map(|(_, m)| m)
        .collect()
    };
    let setup_done_ns = clock::now_ns();

    let run_start_ns = env.barrier(0).await;
    env.run.live.enter(Phase::Running);
    if env.id == 0 {
        shared.window.mark(0, env.common());
    }
    let mut run_failures = Failures::default();
    let sent = send(&env, &shared, &members, run_start_ns, &mut run_failures).await;

    env.barrier(1).await;
    env.run.live.enter(Phase::Draining);
    let sent_by: Vec<u64> = shared
        .sent
        .iter()
        .map(|s| s.load(Ordering::Acquire))
        .collect();
    // What this executor's members should receive: everything the other members of
    // their channel sent.
    let channel_totals: Vec<u64> = (0..args.channels)
        .map(|c| {
            (c..args.members)
                .step_by(args.channels)
                .map(|j| sent_by[j])
                .sum()
        })
        .collect();
    let expected: u64 = members
        .iter()
        .map(|m| channel_totals[shared.place(m.index).0] - sent_by[m.index])
        .sum();
    let deadline = Instant::now() + env.common().drain;
    env.wait_for(deadline, || stats.fresh.get() >= expected)
        .await;
    env.barrier(2).await;
    if env.id == 0 {
        shared.window.mark(1, env.common());
    }

    env.run.live.enter(Phase::Closing);
    stats.closing();
    let conns: Vec<Rc<Conn>> = members.iter().map(|m| m.conn.clone()).collect();
    if !env.stopping() {
        close_all(&env, &conns, &stats.open_readers).await;
    }
    let mut lost = 0;
    for m in &members {
        let (c, own) = shared.place(m.index);
        let tracker = m.tracker.borrow();
        for (position, j) in (c..args.members).step_by(args.channels).enumerate() {
            if position != own {
                if let Some(seen) = tracker.sender(position) {
                    lost += seen.missing(sent_by[j], &[]);
                }
            }
        }
    }
    ShardOut {
        subscribed: members.len() as u64,
        received: stats.finish(),
        lost,
        sent,
        setup_failures: setup_failures.take(),
        run_failures,
        setup_done_ns,
    }
}

/// This executor's share of the schedule: its members in turn, at its share of the
/// rate (or back to back with `--rate max`), until the duration or `--events` is over.
async fn send(
    env: &Rc<Env>,
    shared: &Shared,
    members: &[Rc<Member>],
    start_ns: u64,
    failures: &mut Failures,
) -> u64 {
    let args = &shared.args;
    if members.is_empty() {
        return 0;
    }
    let start = clock::instant_of(start_ns);
    let end = start + env.common().duration;
    // Every executor owns about members/cores of the members: its share of the rate.
    let interval = match args.rate {
        Rate::PerSecond(r) => Some(Duration::from_secs_f64(
            args.members as f64 / (r * members.len() as f64),
        )),
        Rate::Max => None,
    };
    let mut body = Vec::with_capacity(256 + args.payload);
    let mut sent = 0u64;
    let mut live = 0u64;
    for k in 0u64.. {
        if let Some(interval) = interval {
            let due = start + interval.mul_f64(k as f64);
            if due >= end || !env.sleep_until(due).await {
                break;
            }
        } else if k % 64 == 0 {
            glommio::yield_if_needed().await;
        }
        if Instant::now() >= end || env.stopping() {
            break;
        }
        // The next member that can still send.
        let Some(member) = (0..members.len())
            .map(|d| &members[(k as usize + d) % members.len()])
            .find(|m| m.next_seq.get().is_some())
        else {
            break;
        };
        if let Some(cap) = args.events {
            if shared.claimed.fetch_add(1, Ordering::AcqRel) >= cap {
                break;
            }
        }
        let seq = member.next_seq.get().unwrap_or(0);
        let (c, position) = shared.place(member.index);
        body.clear();
        let _ = write!(
            body,
            r#"{{"event":"client-bench","channel":"{}","data":{{"m":""#,
            shared.channel_name(c)
        );
        payload::write_marker(
            &mut body,
            Marker {
                source: position as u32,
                seq,
                sent_ns: clock::now_ns(),
            },
        );
        body.extend_from_slice(br#"","p":""#);
        payload::write_padding(&mut body, args.payload);
        body.extend_from_slice(br#""}}"#);
        match member.conn.send_text(&body).await {
            Ok(()) => {
                member.next_seq.set(Some(seq + 1));
                shared.sent[member.index].store(seq + 1, Ordering::Release);
                sent += 1;
                live += 1;
                if live == 32 {
                    Slot::add(&env.slot().sent, live);
                    live = 0;
                }
            }
            Err(fail) => {
                member.next_seq.set(None);
                failures.add(&fail);
            }
        }
    }
    Slot::add(&env.slot().sent, live);
    sent
}
