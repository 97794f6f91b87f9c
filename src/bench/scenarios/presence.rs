//! `presence`: a join/leave storm on presence channels. Watchers stay joined on every
//! channel; members join (signed `pusher:subscribe` with `channel_data`), stay for
//! `--hold`, and leave (`pusher:unsubscribe`), over and over at the join rate. Each
//! watcher checks that every join reaches it as one `member_added` and every leave as
//! one `member_removed`, in that order per member; what is left unmatched at the end
//! is reported.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

use super::{
    close_all, common_params, establish, seconds, server_sample, setup_all, spawn_reader,
    subscribe, Prepared, Window,
};
use crate::bench::args::{PresenceArgs, Rate};
use crate::bench::client::{within, Conn};
use crate::bench::clock;
use crate::bench::fail::{Fail, Failures};
use crate::bench::live::{Live, Phase, Slot};
use crate::bench::payload::{self, channel_auth};
use crate::bench::report::{histogram, latency_section, Report, Section};
use crate::bench::runner::{Env, Run};

const MEMBER_ADDED: &[u8] = b"pusher_internal:member_added";
const MEMBER_REMOVED: &[u8] = b"pusher_internal:member_removed";
const SUCCEEDED: &[u8] = b"pusher_internal:subscription_succeeded";

struct Shared {
    args: PresenceArgs,
    /// Per channel: joins acknowledged with subscription_succeeded.
    joins_ok: Vec<AtomicU64>,
    /// Per member: when its last join and leave were sent (`clock::now_ns`).
    join_sent_ns: Vec<AtomicU64>,
    leave_sent_ns: Vec<AtomicU64>,
    window: Window,
}

impl Shared {
    fn channel(&self, c: usize) -> String {
        format!("presence-bench-{c}")
    }
}

/// What one watcher saw of the members of its channel.
struct Watcher {
    conn: Rc<Conn>,
    channel: usize,
    /// Per member position in the channel: joined (1) or not (0), as the events say.
    present: RefCell<Vec<u8>>,
    added: Cell<u64>,
    removed: Cell<u64>,
    /// member_added for a member already present.
    double_added: Cell<u64>,
    /// member_removed for a member not present.
    unmatched_removed: Cell<u64>,
    _reader: RefCell<Option<glommio::Task<()>>>,
}

/// One executor's watcher-side counters.
struct Seen {
    latency: RefCell<Histogram<u64>>,
    events: Cell<u64>,
    other: Cell<u64>,
    open_readers: Cell<usize>,
    closing: Cell<bool>,
    failures: RefCell<Failures>,
}

struct Member {
    index: usize,
    conn: Rc<Conn>,
    channel_data: String,
    auth: String,
    busy: Cell<bool>,
    /// The connection ended: no more joins.
    dead: Cell<bool>,
    /// subscription_succeeded received so far, and a join waiting for the next one.
    acks: Cell<u64>,
    error: RefCell<Option<Fail>>,
    waiter: Cell<Option<Waker>>,
    _reader: RefCell<Option<glommio::Task<()>>>,
}

/// One executor's member-side counters.
#[derive(Default)]
struct Storm {
    joins: Cell<u64>,
    joins_ok: Cell<u64>,
    leaves: Cell<u64>,
    skipped: Cell<u64>,
    join_latency: RefCell<Option<Histogram<u64>>>,
    failures: RefCell<Failures>,
}

struct ShardOut {
    watchers: u64,
    members: u64,
    joins: u64,
    joins_ok: u64,
    leaves: u64,
    skipped: u64,
    added: u64,
    removed: u64,
    double_added: u64,
    unmatched_removed: u64,
    unmatched_added: u64,
    other: u64,
    last_event_ns: u64,
    event_latency: Histogram<u64>,
    join_latency: Histogram<u64>,
    setup_failures: Failures,
    run_failures: Failures,
}

pub fn run(args: &PresenceArgs, prepared: &Prepared) -> Result<Report, String> {
    let common = &args.common;
    let live = Live::new(common.cores, "joins", "member events");
    let watchers = args.watchers * args.channels;
    live.setup_target
        .store((watchers + args.members) as u64, Ordering::Relaxed);
    let run = Arc::new(Run::new(common.clone(), prepared.endpoints.clone(), live));
    let shared = Arc::new(Shared {
        args: args.clone(),
        joins_ok: (0..args.channels).map(|_| AtomicU64::new(0)).collect(),
        join_sent_ns: (0..args.members).map(|_| AtomicU64::new(0)).collect(),
        leave_sent_ns: (0..args.members).map(|_| AtomicU64::new(0)).collect(),
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
        "presence",
        format!(
            "{} members joining and leaving {} presence channel(s) at {} joins/s, {} watcher(s) \
             per channel",
            args.members,
            args.channels,
            args.rate.describe(),
            args.watchers
        ),
    );
    report.interrupted = run.interrupted();
    common_params(&mut report, common);
    report.param("members", json!(args.members));
    report.param("channels", json!(args.channels));
    report.param("watchers", json!(args.watchers));
    report.param("rate", args.rate.to_json());
    report.param("hold_s", json!(args.hold.as_secs_f64()));
    super::source_address_hint(
        &mut report,
        common,
        args.members + args.watchers * args.channels,
    );
    report.elapsed_s = seconds(started_ns, ended_ns);

    let sum = |f: fn(&ShardOut) -> u64| outs.iter().map(f).sum::<u64>();
    let mut setup_failures = Failures::default();
    let mut failures = Failures::default();
    let mut event_latency = histogram();
    let mut join_latency = histogram();
    for out in &outs {
        setup_failures.merge(out.setup_failures.clone());
        failures.merge(out.run_failures.clone());
        let _ = event_latency.add(&out.event_latency);
        let _ = join_latency.add(&out.join_latency);
    }
    let mut c = Section::new("connections", "connections");
    c.int("watchers", "watchers subscribed", sum(|o| o.watchers))
        .int("members", "members connected", sum(|o| o.members))
        .int("failed", "failed to set up", setup_failures.total());
    report.push(c);

    let run_start = run.passed_at(1);
    let storm_end = run.passed_at(2).max(run_start);
    let joins_ok = sum(|o| o.joins_ok);
    let mut j = Section::new("joins", "joins and leaves");
    j.int("joins", "joins sent", sum(|o| o.joins))
        .int("joins_ok", "joins acknowledged", joins_ok)
        .int("leaves", "leaves sent", sum(|o| o.leaves))
        .int(
            "skipped",
            "joins skipped (member still busy)",
            sum(|o| o.skipped),
        )
        .rate(
            "joins_per_s",
            "joins per second",
            joins_ok,
            seconds(run_start, storm_end),
        );
    report.push(j);

    // Every acknowledged join is expected once at every watcher of its channel.
    let watchers_per_channel = sum(|o| o.watchers) as f64 / args.channels as f64;
    let expected = (joins_ok as f64 * watchers_per_channel).round() as u64;
    let (added, removed) = (sum(|o| o.added), sum(|o| o.removed));
    let unmatched_added = sum(|o| o.unmatched_added);
    let unmatched_removed = sum(|o| o.unmatched_removed);
    let double_added = sum(|o| o.double_added);
    let last = outs.iter().map(|o| o.last_event_ns).max().unwrap_or(0);
    let mut m = Section::new("member_events", "member events (at the watchers)");
    m.int("expected_added", "member_added expected", expected)
        .int("added", "member_added received", added)
        .int("removed", "member_removed received", removed)
        .int(
            "unmatched_added",
            "member_added without member_removed",
            unmatched_added,
        )
        .int(
            "unmatched_removed",
            "member_removed without member_added",
            unmatched_removed,
        )
        .int("double_added", "member_added twice in a row", double_added)
        .int(
            "missing_added",
            "member_added missing",
            expected.saturating_sub(added),
        )
        .int("other_messages", "other messages", sum(|o| o.other))
        .rate(
            "per_s",
            "member events per second",
            added + removed,
            seconds(run_start, last.max(run_start)),
        );
    report.push(m);
    report.push(latency_section(
        "latency_us",
        "member event latency (join/leave sent -> watcher read)",
        &event_latency,
    ));
    report.push(latency_section(
        "join_latency_us",
        "join latency (subscribe -> subscription_succeeded)",
        &join_latency,
    ));
    failures.merge(setup_failures);
    report.failures = failures;
    let work = ("member_events", "member events", added + removed);
    shared.window.sections(&mut report, common, initial, work);
    if added > 0
        && unmatched_added == 0
        && unmatched_removed == 0
        && double_added == 0
        && added >= expected
    {
        report.notes.push(format!(
            "every member_added was matched by a member_removed ({added} of each)"
        ));
    }
    Ok(report)
}

async fn shard(env: Rc<Env>, shared: Arc<Shared>) -> ShardOut {
    let args = &shared.args;
    let seen = Rc::new(Seen {
        latency: RefCell::new(histogram()),
        events: Cell::new(0),
        other: Cell::new(0),
        open_readers: Cell::new(0),
        closing: Cell::new(false),
        failures: RefCell::new(Failures::default()),
    });
    let storm = Rc::new(Storm::default());
    *storm.join_latency.borrow_mut() = Some(histogram());
    let _live = {
        let (env, seen) = (env.clone(), seen.clone());
        glommio::spawn_local(async move {
            loop {
                env.slot()
                    .received
                    .store(seen.events.get(), Ordering::Relaxed);
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Watchers first (they must see every join), then the members (connected only).
    let setup_failures = RefCell::new(Failures::default());
    let total_watchers = args.watchers * args.channels;
    let watchers: Vec<Rc<Watcher>> = {
        let (env2, shared, seen) = (env.clone(), shared.clone(), seen.clone());
        setup_all(
            &env,
            env.mine(total_watchers).collect(),
            args.concurrency,
            &setup_failures,
            move |w| {
                let (env, shared, seen) = (env2.clone(), shared.clone(), seen.clone());
                async move { watcher(&env, &shared, &seen, w).await }
            },
        )
        .await
        .into_iter()
        .map(|(_, w)| w)
        .collect()
    };
    env.barrier(0).await;
    let members: Vec<Rc<Member>> = {
        let (env2, shared) = (env.clone(), shared.clone());
        setup_all(
            &env,
            env.mine(args.members).collect(),
            args.concurrency,
            &setup_failures,
            move |i| {
                let (env, shared) = (env2.clone(), shared.clone());
                async move { member(&env, &shared, i).await }
            },
        )
        .await
        .into_iter()
        .map(|(_, m)| m)
        .collect()
    };

    // The storm.
    let start_ns = env.barrier(1).await;
    env.run.live.enter(Phase::Running);
    if env.id == 0 {
        shared.window.mark(0, env.common());
    }
    storm_run(&env, &shared, &storm, &members, start_ns).await;
    // Let every cycle in progress finish its leave.
    let settle = Instant::now() + args.hold + env.common().connect_timeout;
    env.wait_for(settle, || members.iter().all(|m| !m.busy.get()))
        .await;

    env.barrier(2).await;
    env.run.live.enter(Phase::Draining);
    let deadline = Instant::now() + env.common().drain;
    env.wait_for(deadline, || {
        watchers.iter().all(|w| {
            w.added.get() >= shared.joins_ok[w.channel].load(Ordering::Acquire)
                && w.present.borrow().iter().all(|p| *p == 0)
        })
    })
    .await;
    env.barrier(3).await;
    if env.id == 0 {
        shared.window.mark(1, env.common());
    }

    env.run.live.enter(Phase::Closing);
    seen.closing.set(true);
    let conns: Vec<Rc<Conn>> = watchers
        .iter()
        .map(|w| w.conn.clone())
        .chain(members.iter().map(|m| m.conn.clone()))
        .collect();
    if !env.stopping() {
        close_all(&env, &conns, &seen.open_readers).await;
    }
    let sum = |f: fn(&Watcher) -> u64| watchers.iter().map(|w| f(w)).sum::<u64>();
    let unmatched_added = watchers
        .iter()
        .map(|w| w.present.borrow().iter().filter(|p| **p == 1).count() as u64)
        .sum();
    let mut run_failures = seen.failures.take();
    run_failures.merge(storm.failures.take());
    ShardOut {
        watchers: watchers.len() as u64,
        members: members.len() as u64,
        joins: storm.joins.get(),
        joins_ok: storm.joins_ok.get(),
        leaves: storm.leaves.get(),
        skipped: storm.skipped.get(),
        added: sum(|w| w.added.get()),
        removed: sum(|w| w.removed.get()),
        double_added: sum(|w| w.double_added.get()),
        unmatched_removed: sum(|w| w.unmatched_removed.get()),
        unmatched_added,
        other: seen.other.get(),
        last_event_ns: LAST_EVENT.with(Cell::get),
        event_latency: seen.latency.replace(histogram()),
        join_latency: storm.join_latency.take().unwrap_or_else(histogram),
        setup_failures: setup_failures.take(),
        run_failures,
    }
}

thread_local! {
    /// When this executor's watchers last read a member event.
    static LAST_EVENT: Cell<u64> = const { Cell::new(0) };
}

/// Watcher `w`: joins channel `w % channels` as user `bw{w}` and checks member events.
async fn watcher(
    env: &Rc<Env>,
    shared: &Arc<Shared>,
    seen: &Rc<Seen>,
    w: usize,
) -> Result<Rc<Watcher>, Fail> {
    let args = &shared.args;
    let c = w % args.channels;
    let channel = shared.channel(c);
    let (conn, socket_id) = establish(env, w).await?;
    let data = format!(r#"{{"user_id":"bw{w}","user_info":{{"name":"watcher"}}}}"#);
    let common = env.common();
    let auth = channel_auth(
        &common.key,
        &common.secret,
        &socket_id,
        &channel,
        Some(&data),
    );
    subscribe(env, &conn, &channel, Some(&auth), Some(&data)).await?;
    conn.trim();
    // Member n of this channel is at position n / channels.
    let positions = args.members / args.channels + 1;
    let watcher = Rc::new(Watcher {
        conn: conn.clone(),
        channel: c,
        present: RefCell::new(vec![0; positions]),
        added: Cell::new(0),
        removed: Cell::new(0),
        double_added: Cell::new(0),
        unmatched_removed: Cell::new(0),
        _reader: RefCell::new(None),
    });
    seen.open_readers.set(seen.open_readers.get() + 1);
    let (me, s, end, shared2) = (watcher.clone(), seen.clone(), seen.clone(), shared.clone());
    let reader = spawn_reader(
        env,
        conn,
        move |text, now| on_watcher_message(&me, &s, &shared2, text, now),
        move |fail| {
            end.open_readers.set(end.open_readers.get() - 1);
            if !end.closing.get() {
                end.failures.borrow_mut().add(&fail);
            }
        },
    );
    *watcher._reader.borrow_mut() = Some(reader);
    Ok(watcher)
}

fn on_watcher_message(w: &Watcher, seen: &Seen, shared: &Shared, text: &[u8], now: u64) {
    let event = payload::event_name(text);
    let added = event == Some(MEMBER_ADDED);
    if !added && event != Some(MEMBER_REMOVED) {
        seen.other.set(seen.other.get() + 1);
        return;
    }
    let Some(n) = payload::user_number(text, b"bm").map(|n| n as usize) else {
        // Another watcher joining (bw*), or an id that is not ours.
        seen.other.set(seen.other.get() + 1);
        return;
    };
    let channels = shared.args.channels;
    if n >= shared.args.members || n % channels != w.channel {
        seen.other.set(seen.other.get() + 1);
        return;
    }
    seen.events.set(seen.events.get() + 1);
    LAST_EVENT.with(|l| l.set(now));
    let mut present = w.present.borrow_mut();
    let slot = &mut present[n / channels];
    let sent = if added {
        w.added.set(w.added.get() + 1);
        if *slot == 1 {
            w.double_added.set(w.double_added.get() + 1);
        }
        *slot = 1;
        shared.join_sent_ns[n].load(Ordering::Acquire)
    } else {
        w.removed.set(w.removed.get() + 1);
        if *slot == 0 {
            w.unmatched_removed.set(w.unmatched_removed.get() + 1);
        }
        *slot = 0;
        shared.leave_sent_ns[n].load(Ordering::Acquire)
    };
    if sent > 0 {
        seen.latency
            .borrow_mut()
            .saturating_record(clock::micros_between(sent, now).max(1));
    }
}

/// Member `i`: connected (not joined); its reader reports acknowledgments.
async fn member(env: &Rc<Env>, shared: &Arc<Shared>, i: usize) -> Result<Rc<Member>, Fail> {
    let args = &shared.args;
    // Members come after the watchers in the connection numbering (URL, source address).
    let (conn, socket_id) = establish(env, args.watchers * args.channels + i).await?;
    conn.trim();
    let channel = shared.channel(i % args.channels);
    let channel_data = format!(r#"{{"user_id":"bm{i}","user_info":{{"name":"bench"}}}}"#);
    let common = env.common();
    let auth = channel_auth(
        &common.key,
        &common.secret,
        &socket_id,
        &channel,
        Some(&channel_data),
    );
    let member = Rc::new(Member {
        index: i,
        conn: conn.clone(),
        channel_data,
        auth,
        busy: Cell::new(false),
        dead: Cell::new(false),
        acks: Cell::new(0),
        error: RefCell::new(None),
        waiter: Cell::new(None),
        _reader: RefCell::new(None),
    });
    let (me, end) = (member.clone(), member.clone());
    let reader = spawn_reader(
        env,
        conn,
        move |text, _| {
            match payload::event_name(text) {
                Some(SUCCEEDED) => me.acks.set(me.acks.get() + 1),
                Some(b"pusher:error") => {
                    let fail = crate::bench::client::parse(text)
                        .map(|m| m.pusher_error())
                        .unwrap_or(Fail::Protocol("unreadable pusher:error"));
                    *me.error.borrow_mut() = Some(fail);
                }
                _ => return,
            }
            if let Some(w) = me.waiter.take() {
                w.wake();
            }
        },
        move |fail| {
            end.dead.set(true);
            *end.error.borrow_mut() = Some(fail);
            if let Some(w) = end.waiter.take() {
                w.wake();
            }
        },
    );
    *member._reader.borrow_mut() = Some(reader);
    Ok(member)
}

impl Member {
    /// Wait for the acknowledgment after `before` were counted.
    async fn acked(&self, before: u64, deadline: Instant) -> Result<(), Fail> {
        within(
            deadline,
            "subscription_succeeded",
            poll_fn(|cx| {
                if self.acks.get() > before {
                    return Poll::Ready(Ok(()));
                }
                if let Some(fail) = self.error.borrow_mut().take() {
                    return Poll::Ready(Err(fail));
                }
                self.waiter.set(Some(cx.waker().clone()));
                Poll::Pending
            }),
        )
        .await?
    }
}

/// Joins on schedule (or every member cycling back to back with `--rate max`) until
/// the duration is over.
async fn storm_run(
    env: &Rc<Env>,
    shared: &Arc<Shared>,
    storm: &Rc<Storm>,
    members: &[Rc<Member>],
    start_ns: u64,
) {
    if members.is_empty() {
        return;
    }
    let args = &shared.args;
    let start = clock::instant_of(start_ns);
    let end = start + env.common().duration;
    match args.rate {
        Rate::Max => {
            let loops: Vec<_> = members
                .iter()
                .map(|m| {
                    let (env, shared, storm, m) =
                        (env.clone(), shared.clone(), storm.clone(), m.clone());
                    glommio::spawn_local(async move {
                        while Instant::now() < end && !env.stopping() && !m.dead.get() {
                            cycle(&env, &shared, &storm, &m).await;
                        }
                    })
                })
                .collect();
            for task in loops {
                task.await;
            }
        }
        Rate::PerSecond(r) => {
            let interval =
                Duration::from_secs_f64(args.members as f64 / (r * members.len() as f64));
            let mut next = 0usize;
            for k in 0u64.. {
                let due = start + interval.mul_f64(k as f64);
                if due >= end || !env.sleep_until(due).await {
                    break;
                }
                let idle = (0..members.len())
                    .map(|d| &members[(next + d) % members.len()])
                    .position(|m| !m.busy.get() && !m.dead.get());
                match idle {
                    Some(d) => {
                        let m = members[(next + d) % members.len()].clone();
                        next = (next + d + 1) % members.len();
                        m.busy.set(true);
                        let (env, shared, storm) = (env.clone(), shared.clone(), storm.clone());
                        glommio::spawn_local(async move { cycle(&env, &shared, &storm, &m).await })
                            .detach();
                    }
                    None => storm.skipped.set(storm.skipped.get() + 1),
                }
            }
        }
    }
}

/// One join, hold and leave of a member.
async fn cycle(env: &Env, shared: &Shared, storm: &Storm, m: &Member) {
    m.busy.set(true);
    let i = m.index;
    let c = i % shared.args.channels;
    let channel = shared.channel(c);
    let before = m.acks.get();
    let sent = clock::now_ns();
    shared.join_sent_ns[i].store(sent, Ordering::Release);
    storm.joins.set(storm.joins.get() + 1);
    Slot::add(&env.slot().sent, 1);
    let joined = match m
        .conn
        .subscribe(&channel, Some(&m.auth), Some(&m.channel_data))
        .await
    {
        Ok(()) => {
            m.acked(before, Instant::now() + env.common().connect_timeout)
                .await
        }
        Err(fail) => Err(fail),
    };
    match joined {
        Ok(()) => {
            storm.joins_ok.set(storm.joins_ok.get() + 1);
            shared.joins_ok[c].fetch_add(1, Ordering::AcqRel);
            if let Some(h) = storm.join_latency.borrow_mut().as_mut() {
                h.saturating_record(clock::micros_between(sent, clock::now_ns()).max(1));
            }
        }
        Err(fail) => storm.failures.borrow_mut().add(&fail),
    }
    if !shared.args.hold.is_zero() {
        env.sleep_until(Instant::now() + shared.args.hold).await;
    }
    shared.leave_sent_ns[i].store(clock::now_ns(), Ordering::Release);
    if m.conn.unsubscribe(&channel).await.is_ok() {
        storm.leaves.set(storm.leaves.get() + 1);
    }
    m.busy.set(false);
}
