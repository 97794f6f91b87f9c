//! The Laravel Pulse writer (operations.md §7.1): what Reverb's `ReverbMessages`
//! recorder stores, so the Pulse dashboard's Reverb messages card works against
//! reverb-shard.
//!
//! Every `pulse_ingest_interval` seconds each shard hands the writer thread its new
//! sent/received counts per app (a `try_send` on a bounded channel: a shard never
//! waits). The thread adds them to Pulse's four aggregate periods and upserts the rows
//! on its own connection, so a slow or unreachable database costs the shards nothing;
//! a failed write is logged (naming the host, never the password) and its rows wait
//! for the next attempt.

pub mod postgres;
pub mod rows;

use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::server::shard::ShardState;
use rows::{Kind, Pending};

/// Reports waiting for the writer before shards start keeping theirs (a report per
/// shard per interval, so this is minutes of backlog).
const CHANNEL_BOUND: usize = 4096;
/// How long a stopping process waits for the last write.
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);

/// What the shards tell the writer thread.
pub enum Report {
    /// New counts of one shard: (app index, sent, received), counted by unix time `at`.
    Counts {
        at: u64,
        apps: Vec<(usize, u64, u64)>,
    },
    /// The process is stopping: write what is left, then end.
    Finish,
}

/// The shards' end of the writer: cheap to clone, `Send`.
#[derive(Clone)]
pub struct Feed {
    tx: Sender<Report>,
    pub every: Duration,
}

/// The running writer thread.
pub struct Writer {
    feed: Feed,
    thread: JoinHandle<()>,
    done: Receiver<()>,
}

impl Writer {
    /// Start the writer for `database_url`. `app_ids[i]` is the Pulse key of app index
    /// `i`. An unusable URL is an error (whose text never repeats the URL).
    pub fn start(
        database_url: &str,
        every: Duration,
        app_ids: Vec<String>,
    ) -> Result<Writer, String> {
        let scheme = database_url
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default();
        if scheme != "postgres" && scheme != "postgresql" {
            return Err(format!(
                "[pulse] database_url: only postgres:// URLs are supported (got {}://)",
                if scheme.is_empty() {
                    "no scheme"
                } else {
                    &scheme
                }
            ));
        }
        let target = postgres::Target::parse(database_url)
            .map_err(|e| format!("[pulse] database_url: {e}"))?;
        let (tx, rx) = crossbeam_channel::bounded(CHANNEL_BOUND);
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("pulse".into())
            .spawn(move || {
                run(&target, &rx, every, &app_ids);
                let _ = done_tx.send(());
            })
            .map_err(|e| format!("cannot start the Pulse writer thread: {e}"))?;
        crate::info!(
            "Pulse: writing Reverb message counts every {}s",
            every.as_secs()
        );
        Ok(Writer {
            feed: Feed { tx, every },
            thread,
            done,
        })
    }

    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }

    /// Write the last counts and stop the thread; gives up waiting (leaving the thread
    /// to the process exit) after a bounded time, so an unreachable database cannot hold
    /// up a shutdown.
    pub fn finish(self) {
        let deadline = Instant::now() + FINISH_TIMEOUT;
        let _ = self.feed.tx.send_deadline(Report::Finish, deadline);
        match self.done.recv_deadline(deadline) {
            Ok(()) => {
                let _ = self.thread.join();
            }
            Err(_) => crate::warn!("Pulse: the last write did not finish in time; giving up on it"),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The writer thread: gather reports, write every interval, once more at the end.
fn run(target: &postgres::Target, rx: &Receiver<Report>, every: Duration, app_ids: &[String]) {
    let mut pending = Pending::default();
    let mut db: Option<postgres::Writer> = None;
    let mut failing = false;
    let mut next_write = Instant::now() + every;
    loop {
        let finish = match rx.recv_timeout(next_write.saturating_duration_since(Instant::now())) {
            Ok(Report::Counts { at, apps }) => {
                for (app, sent, received) in apps {
                    pending.add(at, app, Kind::Sent, sent);
                    pending.add(at, app, Kind::Received, received);
                }
                continue;
            }
            Ok(Report::Finish) | Err(RecvTimeoutError::Disconnected) => true,
            Err(RecvTimeoutError::Timeout) => false,
        };
        // Take whatever else is already queued, so one write carries it all.
        while let Ok(Report::Counts { at, apps }) = rx.try_recv() {
            for (app, sent, received) in apps {
                pending.add(at, app, Kind::Sent, sent);
                pending.add(at, app, Kind::Received, received);
            }
        }
        write(target, &mut db, &mut pending, &mut failing, app_ids);
        if finish {
            return;
        }
        next_write = Instant::now() + every;
    }
}

/// One write attempt of everything pending; on failure the rows stay for the next.
fn write(
    target: &postgres::Target,
    db: &mut Option<postgres::Writer>,
    pending: &mut Pending,
    failing: &mut bool,
    app_ids: &[String],
) {
    pending.trim(unix_now());
    if pending.is_empty() {
        return;
    }
    if db.as_ref().is_some_and(|w| w.is_closed()) {
        *db = None;
    }
    let result = match db {
        Some(writer) => writer.write(pending, app_ids),
        None => postgres::Writer::connect(target).and_then(|mut writer| {
            let written = writer.write(pending, app_ids);
            *db = Some(writer);
            written
        }),
    };
    match result {
        Ok(()) => {
            if *failing {
                crate::info!("Pulse: writing to the database at {} again", target.label);
                *failing = false;
            }
            pending.clear();
        }
        Err(e) => {
            crate::warn!(
                "Pulse: cannot write to the database at {}: {e}; keeping {} row(s) for the next attempt",
                target.label,
                pending.len()
            );
            *failing = true;
            // Reconnect next time: the connection may be what failed.
            *db = None;
        }
    }
}

/// Per-shard bookkeeping: the counts already handed to the writer.
#[derive(Debug, Default)]
pub struct Reported {
    /// (sent, received) per app index.
    apps: Vec<(u64, u64)>,
}

/// Hand the writer this shard's counts since the last report. Never waits: when the
/// writer's queue is full the counts stay unreported and go with the next report.
pub fn report(state: &ShardState, feed: &Feed) {
    let mut reported = state.metrics.pulse_reported.borrow_mut();
    let counters = state.metrics.counters.apps();
    reported.apps.resize(counters.len(), (0, 0));
    let apps: Vec<(usize, u64, u64)> = counters
        .iter()
        .zip(reported.apps.iter())
        .enumerate()
        .map(|(i, (c, &(sent, received)))| {
            (
                i,
                c.sent.get().wrapping_sub(sent),
                c.received.get().wrapping_sub(received),
            )
        })
        .filter(|&(_, sent, received)| sent > 0 || received > 0)
        .collect();
    if apps.is_empty() {
        return;
    }
    match feed.tx.try_send(Report::Counts {
        at: unix_now(),
        apps,
    }) {
        Ok(()) => {
            for (c, r) in counters.iter().zip(reported.apps.iter_mut()) {
                *r = (c.sent.get(), c.received.get());
            }
        }
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
    }
}

/// The shard's reporting task: one report per interval until the shard stops (the
/// shard sends a last one after draining its connections).
pub async fn report_loop(state: std::rc::Rc<ShardState>, feed: Feed) {
    loop {
        let stopped = futures_lite::future::or(
            async {
                glommio::timer::sleep(feed.every).await;
                false
            },
            async {
                state.stop.wait().await;
                true
            },
        )
        .await;
        if stopped {
            return;
        }
        report(&state, &feed);
    }
}
