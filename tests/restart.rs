//! Restarting (operations.md §3) against the real binary: `reverb-shard restart` under
//! continuous traffic hands the port to a new process without failing one connection
//! attempt or losing one event; `restart` with no server fails clearly; restart_mode
//! "exit" drains and exits; a SIGTERM stop removes the pid file.
//!
//! The successor a hand-over starts is not our child: this test process makes itself
//! the "subreaper" of its descendants, so the successor is re-parented to it when the
//! old process exits, its exit status can be read, and a guard kills it at the end of
//! every test, failed or not.

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::http_api::{app_path, request_bytes, server_config, Signer};
use support::server::binary;
use support::{allowed_cpus, Client, Received, TestServer, APP_KEY};

/// Every wait in these tests gives up (and fails) after this long.
const PATIENCE: Duration = Duration::from_secs(60);
const CHANNEL: &str = "restart-feed";
const RESTARTING: (u16, &str) = (4200, "Server is restarting");
const SHUTTING_DOWN: (u16, &str) = (4200, "Server shutting down");

/// Make orphaned descendants (the successor, once the old process exits) children of
/// this process, so their exit status can be collected.
fn become_subreaper() {
    // SAFETY: prctl with an integer flag; affects only this process.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
}

/// At the end of a test, kills (SIGKILL) and reaps every successor a server started:
/// those named in its log (`started … (pid N) with the same arguments`) and those the
/// test saw in the pid file, whether or not the test got that far.
struct Reaper {
    logs: Arc<Mutex<Vec<String>>>,
    seen: Mutex<Vec<u32>>,
}

impl Reaper {
    fn new(server: &TestServer) -> Reaper {
        Reaper {
            logs: server.log_buffer(),
            seen: Mutex::new(Vec::new()),
        }
    }

    fn watch(&self, pid: u32) {
        self.seen.lock().unwrap().push(pid);
    }

    fn successors(&self) -> Vec<u32> {
        let logs = self.logs.lock().unwrap();
        let mut pids: Vec<u32> = logs
            .iter()
            .filter_map(|line| {
                line.split_once("(pid ")?
                    .1
                    .split_once(") with the same arguments")
            })
            .filter_map(|(pid, _)| pid.parse().ok())
            .collect();
        pids.extend(self.seen.lock().unwrap().iter());
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in self.successors() {
            if wait_exit(pid, Duration::ZERO).is_some() {
                continue;
            }
            // SAFETY: kill(2) on a process this test started (through the server).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            let _ = wait_exit(pid, Duration::from_secs(10));
        }
    }
}

/// Wait for a (re-parented) child to exit; its exit code, or -signal; `None` if it
/// still runs after `within`.
fn wait_exit(pid: u32, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on one pid, writing the status int it is given.
        let rc = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
        if rc == pid as i32 {
            return Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -libc::WTERMSIG(status)
            });
        }
        if rc < 0 && !alive(pid) {
            // Not (yet) our child and already gone: reaped by someone else.
            return Some(i32::MIN);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` exists and has not exited (a zombie counts as exited).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The pid in `path` once it satisfies `wanted`.
fn wait_for_pid_file(path: &Path, wanted: impl Fn(u32) -> bool) -> u32 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse().ok());
        if let Some(pid) = pid.filter(|&p| wanted(p)) {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "{} never named the expected process (holds {pid:?})",
            path.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Run `reverb-shard restart ARGS` in `dir`, isolated from the developer's REVERB_*.
fn restart_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary());
    command.current_dir(dir).arg("restart").args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("REVERB_") || key.starts_with("REDIS_") || key == "XDG_RUNTIME_DIR" {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("run reverb-shard restart")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

// ---------------------------------------------------------------------------------
// (a) The hand-over under traffic.
// ---------------------------------------------------------------------------------

/// How a WebSocket session ended.
#[derive(Debug, Clone, PartialEq)]
enum End {
    Close(u16, String),
    /// The client closed it (churners).
    ByClient,
    /// TCP ended without a close frame, or a read failed.
    Gone(String),
}

/// One WebSocket session, as its client saw it.
#[derive(Debug, Clone)]
struct Session {
    socket_id: String,
    /// When the client had read `subscription_succeeded`.
    acked: Instant,
    events: Vec<u64>,
    end: End,
}

impl Session {
    fn shard(&self) -> u64 {
        support::shard_of(&self.socket_id)
    }

    fn ended_with(&self, (code, reason): (u16, &str)) -> bool {
        self.end == End::Close(code, reason.into())
    }
}

/// One trigger through the HTTP API.
#[derive(Debug, Clone)]
struct Call {
    n: u64,
    start: Instant,
    end: Instant,
    outcome: Result<u16, String>,
}

/// What the client threads share.
#[derive(Default)]
struct Traffic {
    /// Set to end the churners and the publisher.
    quiet: AtomicBool,
    /// Set when the test gives up: every thread ends.
    abort: AtomicBool,
    /// Connection attempts that did not end in `connection_established`.
    failed_connects: Mutex<Vec<String>>,
    connects: AtomicUsize,
    calls: Mutex<Vec<Call>>,
    /// Per stayer: when its current session was acknowledged, and the highest event
    /// it received in it.
    stayers: Mutex<Vec<(Instant, u64)>>,
}

impl Traffic {
    fn fail(&self, why: String) {
        self.failed_connects.lock().unwrap().push(why);
    }

    fn ok_calls(&self) -> Vec<Call> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.outcome == Ok(200))
            .cloned()
            .collect()
    }
}

/// Connect, read `connection_established`, subscribe, read the acknowledgement.
fn open_session(url: &str, traffic: &Traffic) -> Option<(Client, String, Instant)> {
    traffic.connects.fetch_add(1, Ordering::Relaxed);
    let mut client = match Client::try_connect(url, &[]) {
        Ok(client) => client,
        Err(e) => {
            traffic.fail(format!("connect: {e}"));
            return None;
        }
    };
    let socket_id = match client.recv_within(Duration::from_secs(10)) {
        Received::Json(m) if m["event"] == "pusher:connection_established" => {
            let data: Value = serde_json::from_str(m["data"].as_str().unwrap()).unwrap();
            data["socket_id"].as_str().unwrap().to_string()
        }
        other => {
            traffic.fail(format!("instead of connection_established: {other:?}"));
            return None;
        }
    };
    client.send_json(&json!({"event": "pusher:subscribe", "data": {"channel": CHANNEL}}));
    match client.recv_within(Duration::from_secs(10)) {
        Received::Json(m) if m["event"] == "pusher_internal:subscription_succeeded" => {
            Some((client, socket_id, Instant::now()))
        }
        // Closed by the restart before the ack: a clean end, not a failed attempt.
        Received::Close(Some(c)) if (c.0, c.1.as_str()) == RESTARTING => None,
        // Nothing else may come first (an event cannot overtake the acknowledgement).
        other => {
            traffic.fail(format!("{socket_id}: instead of the ack: {other:?}"));
            None
        }
    }
}

/// Read ticks until the session ends; `stop_after` ends it from the client side after
/// that many events (churners).
fn read_session(
    mut client: Client,
    socket_id: String,
    acked: Instant,
    stop_after: Option<usize>,
    traffic: &Traffic,
    stayer: Option<usize>,
) -> Session {
    let mut events = Vec::new();
    let progress = |latest: u64| {
        if let Some(i) = stayer {
            traffic.stayers.lock().unwrap()[i] = (acked, latest);
        }
    };
    progress(0);
    let end = loop {
        if traffic.abort.load(Ordering::Relaxed) {
            break End::Gone("test aborted".into());
        }
        // A churner leaves after its events, or when the traffic ends.
        let leave = events.len() >= k_or_max(stop_after) || traffic.quiet.load(Ordering::Relaxed);
        if stop_after.is_some() && leave {
            client.close_with(1000, "");
            break End::ByClient;
        }
        match client.recv_within(Duration::from_millis(500)) {
            Received::Json(m) if m["event"] == "tick" && m["channel"] == CHANNEL => {
                let n: u64 = m["data"].as_str().unwrap().parse().unwrap();
                events.push(n);
                progress(events.iter().copied().max().unwrap_or(0));
            }
            // Answer the server's keep-alive, which a slow run may reach.
            Received::Json(m) if m["event"] == "pusher:ping" => {
                client.send_json(&json!({"event": "pusher:pong", "data": {}}));
            }
            Received::Json(_) | Received::Ping(_) | Received::Pong(_) | Received::Timeout => {}
            Received::Close(Some((code, reason))) => break End::Close(code, reason),
            Received::Close(None) => break End::Gone("close frame without a code".into()),
            Received::Gone => break End::Gone("TCP ended without a close frame".into()),
        }
    };
    Session {
        socket_id,
        acked,
        events,
        end,
    }
}

fn k_or_max(k: Option<usize>) -> usize {
    k.unwrap_or(usize::MAX)
}

/// A subscriber that stays until the server closes it, and reconnects after a
/// restart's close; ends after `Server shutting down`.
fn stayer(i: usize, url: String, traffic: Arc<Traffic>) -> Vec<Session> {
    let mut sessions = Vec::new();
    while !traffic.abort.load(Ordering::Relaxed) {
        let Some((client, id, acked)) = open_session(&url, &traffic) else {
            continue;
        };
        let session = read_session(client, id, acked, None, &traffic, Some(i));
        let last = session.ended_with(SHUTTING_DOWN) || !session.ended_with(RESTARTING);
        sessions.push(session);
        if last {
            break;
        }
    }
    sessions
}

/// A subscriber that connects, waits for one event and leaves, over and over: the
/// stream of connection attempts the switch must not fail.
fn churner(url: String, traffic: Arc<Traffic>) -> Vec<Session> {
    let mut sessions = Vec::new();
    while !traffic.quiet.load(Ordering::Relaxed) && !traffic.abort.load(Ordering::Relaxed) {
        if let Some((client, id, acked)) = open_session(&url, &traffic) {
            sessions.push(read_session(client, id, acked, Some(1), &traffic, None));
        }
    }
    sessions
}

/// Trigger numbered `tick` events one after the other, each on a new connection.
fn publisher(addr: String, traffic: Arc<Traffic>) {
    let mut n = 0;
    while !traffic.quiet.load(Ordering::Relaxed) && !traffic.abort.load(Ordering::Relaxed) {
        n += 1;
        let start = Instant::now();
        let outcome = trigger(&addr, n);
        let end = Instant::now();
        traffic.calls.lock().unwrap().push(Call {
            n,
            start,
            end,
            outcome,
        });
        thread::sleep(Duration::from_millis(3));
    }
}

/// One `POST /events` with `Connection: close`; the status, or what went wrong.
fn trigger(addr: &str, n: u64) -> Result<u16, String> {
    let body = json!({"name": "tick", "channels": [CHANNEL], "data": n.to_string()}).to_string();
    let target = Signer::default().target("POST", &app_path("/events"), &[], body.as_bytes());
    let request = request_bytes("POST", &target, body.as_bytes(), true);
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(&request)
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e} after {} bytes", response.len()))?;
    let head = String::from_utf8_lossy(&response);
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {head:?}"))
}

/// Wait for `done`, failing with `what` after PATIENCE.
/// Wait for `done`; fail at once when a connection attempt or an API call failed, and
/// after PATIENCE otherwise. Either way every client thread is told to end.
fn wait_until(what: &str, traffic: &Traffic, logs: impl Fn() -> String, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let failed = traffic.failed_connects.lock().unwrap().clone();
        let bad_calls: Vec<Call> = (traffic.calls.lock().unwrap().iter())
            .filter(|c| c.outcome != Ok(200))
            .cloned()
            .collect();
        let why = if !failed.is_empty() || !bad_calls.is_empty() {
            "a failure"
        } else if Instant::now() >= deadline {
            "a timeout"
        } else if done() {
            return;
        } else {
            thread::sleep(Duration::from_millis(20));
            continue;
        };
        traffic.abort.store(true, Ordering::Relaxed);
        let calls = traffic.calls.lock().unwrap().len();
        let stayers = traffic.stayers.lock().unwrap().clone();
        panic!(
            "{why} while waiting for {what}: {} of {} connection attempts failed: \
             {failed:#?}\nfailed API calls (of {calls}): {bad_calls:#?}\nstayers (acknowledged, \
             latest event): {stayers:?}\n--- server output ---\n{}",
            failed.len(),
            traffic.connects.load(Ordering::Relaxed),
            logs()
        );
    }
}

#[test]
fn restart_under_traffic_fails_no_connection_and_loses_no_event() {
    become_subreaper();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("reverb-shard.pid");
    let cores = allowed_cpus().min(2);
    let mut old = TestServer::builder()
        .cores(cores)
        .arg("--pid-file")
        .arg(pid_file.to_str().unwrap())
        .start();
    // Declared after the server, so it runs first when the test ends.
    let reaper = Reaper::new(&old);
    let old_pid = old.pid();
    assert_eq!(wait_for_pid_file(&pid_file, |p| p == old_pid), old_pid);
    let (url, addr) = (old.ws_url(APP_KEY), old.addr());
    let buffer = old.log_buffer();
    let logs = move || buffer.lock().unwrap().join("\n");

    const STAYERS: usize = 4;
    const CHURNERS: usize = 3;
    let traffic = Arc::new(Traffic::default());
    *traffic.stayers.lock().unwrap() = vec![(Instant::now(), 0); STAYERS];
    let stayers: Vec<_> = (0..STAYERS)
        .map(|i| {
            let (url, traffic) = (url.clone(), traffic.clone());
            thread::spawn(move || stayer(i, url, traffic))
        })
        .collect();
    let churners: Vec<_> = (0..CHURNERS)
        .map(|_| {
            let (url, traffic) = (url.clone(), traffic.clone());
            thread::spawn(move || churner(url, traffic))
        })
        .collect();
    let publishing = {
        let (addr, traffic) = (addr.clone(), traffic.clone());
        thread::spawn(move || publisher(addr, traffic))
    };

    // Traffic before the switch: events reach subscribers of the old process.
    wait_until("events before the restart", &traffic, &logs, || {
        traffic.ok_calls().len() >= 30
    });
    let switch_started = Instant::now();
    let restart = restart_command(dir.path(), &["--pid-file", pid_file.to_str().unwrap()], &[]);
    assert!(restart.status.success(), "{}", text(&restart));
    let said = String::from_utf8_lossy(&restart.stdout);
    assert!(
        said.contains(&format!("Sent SIGHUP to reverb-shard (pid {old_pid}")),
        "{said}"
    );

    // The old process hands over and exits 0; the pid file names its successor.
    let status = old.wait_exit(PATIENCE);
    let old_exited = Instant::now();
    let new_pid = wait_for_pid_file(&pid_file, |p| p != old_pid);
    reaper.watch(new_pid);
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "the old process must exit 0 after handing over\n{}",
        logs()
    );
    assert!(
        alive(new_pid),
        "pid file names {new_pid}, which is not running"
    );

    // Traffic after the switch, served by the successor alone, with every stayer
    // subscribed there again.
    wait_until(
        "events after the old process exited",
        &traffic,
        &logs,
        || {
            let after = (traffic.ok_calls().iter())
                .filter(|c| c.start > old_exited)
                .count();
            let back =
                (traffic.stayers.lock().unwrap().iter()).all(|(acked, _)| *acked > switch_started);
            after >= 30 && back
        },
    );
    traffic.quiet.store(true, Ordering::Relaxed);
    publishing.join().unwrap();
    let churned: Vec<Session> = churners
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    // A client that connects now is served by the successor.
    let mut late = Client::connect(&url, &[]);
    late.established();
    late.close_with(1000, "");

    // One more event, and once every stayer has it the successor is stopped: each
    // stayer then ends with "Server shutting down".
    let last = traffic
        .calls
        .lock()
        .unwrap()
        .last()
        .expect("events were triggered")
        .n
        + 1;
    let start = Instant::now();
    let outcome = trigger(&addr, last);
    let end = Instant::now();
    (traffic.calls.lock().unwrap()).push(Call {
        n: last,
        start,
        end,
        outcome,
    });
    wait_until("the last event at every stayer", &traffic, &logs, || {
        (traffic.stayers.lock().unwrap().iter()).all(|(_, latest)| *latest >= last)
    });
    let calls = traffic.calls.lock().unwrap().clone();
    // SAFETY: kill(2) on the successor, which this test started (indirectly).
    unsafe { libc::kill(new_pid as i32, libc::SIGTERM) };
    let stayed: Vec<Vec<Session>> = stayers.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        wait_exit(new_pid, PATIENCE),
        Some(0),
        "the successor must exit 0 on SIGTERM\n{}",
        logs()
    );
    assert!(
        !pid_file.exists(),
        "the successor removes its pid file on exit"
    );

    // 1. No connection attempt failed: every connect got connection_established (and
    //    its subscription acknowledged), and every API call answered 200.
    let failed = traffic.failed_connects.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "{} of {} connection attempts failed: {failed:#?}\n{}",
        failed.len(),
        traffic.connects.load(Ordering::Relaxed),
        logs()
    );
    let bad_calls: Vec<&Call> = calls.iter().filter(|c| c.outcome != Ok(200)).collect();
    assert!(
        bad_calls.is_empty(),
        "API calls failed: {bad_calls:#?}\n{}",
        logs()
    );

    // 2. Every session ended as it should: the old process's with the restart's close,
    //    each followed by a reconnect; the successor's with its shutdown's close.
    for (i, sessions) in stayed.iter().enumerate() {
        let (last_session, before) = sessions.split_last().expect("a stayer has sessions");
        assert!(
            last_session.ended_with(SHUTTING_DOWN),
            "stayer {i}: last session {last_session:?}"
        );
        assert!(
            before.iter().all(|s| s.ended_with(RESTARTING)),
            "stayer {i}: sessions before the last must end with the restart's close: {before:#?}"
        );
        assert!(
            sessions
                .iter()
                .any(|s| s.acked < switch_started && s.ended_with(RESTARTING)),
            "stayer {i}: the session it held before the restart got no restart close: {sessions:#?}"
        );
    }
    for s in &churned {
        assert!(
            s.end == End::ByClient || s.ended_with(RESTARTING),
            "churner session ended badly: {s:?}"
        );
    }

    // 3. No event was lost. The processes never accept at the same time (the
    //    successor starts accepting once the old one stopped), so:
    //    - a stayer session of the old process (closed by the restart) gets every
    //      event whose call started after its acknowledgement and ended before the
    //      `restart` command ran (the successor did not exist yet);
    //    - one of the successor (closed by the final SIGTERM) gets every event whose
    //      call started after its acknowledgement (such a call connected after the
    //      old process stopped accepting: the successor handled it);
    //    - old sessions on one shard that were subscribed before the switch are closed
    //      in one step, and a shard delivers an event to all its subscribers in one
    //      step: an event one of them got during the switch, all of them got.
    //    Events whose call overlapped the switch may have been handled by the old
    //    process after its subscribers were closed; nobody is owed those.
    let ok = traffic.ok_calls();
    let mut checked = 0;
    let sessions: Vec<&Session> = stayed.iter().flatten().collect();
    for s in &sessions {
        let got: HashSet<u64> = s.events.iter().copied().collect();
        let owed: Vec<u64> = if s.ended_with(RESTARTING) {
            ok.iter()
                .filter(|c| c.start > s.acked && c.end < switch_started)
                .map(|c| c.n)
                .collect()
        } else {
            ok.iter()
                .filter(|c| c.start > s.acked)
                .map(|c| c.n)
                .collect()
        };
        let missing: Vec<u64> = owed.iter().copied().filter(|n| !got.contains(n)).collect();
        assert!(
            missing.is_empty(),
            "session {} ({:?}) missed events {missing:?} of {} owed\n{}",
            s.socket_id,
            s.end,
            owed.len(),
            logs()
        );
        checked += owed.len();
    }
    let pre_switch: Vec<&&Session> = sessions
        .iter()
        .filter(|s| s.ended_with(RESTARTING) && s.acked < switch_started)
        .collect();
    for a in &pre_switch {
        for b in pre_switch.iter().filter(|b| b.shard() == a.shard()) {
            let got: HashSet<u64> = b.events.iter().copied().collect();
            for n in &a.events {
                let call = ok
                    .iter()
                    .find(|c| c.n == *n)
                    .expect("a received event was triggered");
                assert!(
                    call.start < b.acked || got.contains(n),
                    "event {n} reached {} but not {} on the same shard",
                    a.socket_id,
                    b.socket_id
                );
            }
        }
    }
    assert!(
        sessions
            .iter()
            .any(|s| s.ended_with(SHUTTING_DOWN) && !s.events.is_empty()),
        "the successor delivered events"
    );
    let in_switch = ok
        .iter()
        .filter(|c| c.end >= switch_started && c.start <= old_exited)
        .count();
    eprintln!(
        "{} connection attempts, {} events ({} during the switch), {checked} deliveries owed \
         to {} stayer sessions and all made, {} churner sessions",
        traffic.connects.load(Ordering::Relaxed),
        ok.len(),
        in_switch,
        sessions.len(),
        churned.len()
    );
}

// ---------------------------------------------------------------------------------
// (b) No server.
// ---------------------------------------------------------------------------------

#[test]
fn restart_without_a_running_server_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("rs.pid");
    let pid_arg = pid_file.to_str().unwrap();

    // No pid file at all.
    let out = restart_command(dir.path(), &["--pid-file", pid_arg], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no reverb-shard server is running") && err.contains(pid_arg),
        "{err}"
    );

    // The default location: reverb-shard-{port}.pid in $XDG_RUNTIME_DIR.
    let runtime_dir = dir.path().to_str().unwrap();
    let out = restart_command(
        dir.path(),
        &["--port", "6001"],
        &[("XDG_RUNTIME_DIR", runtime_dir)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = dir.path().join("reverb-shard-6001.pid");
    assert!(err.contains(expected.to_str().unwrap()), "{err}");

    // A stale file: the pid is beyond any pid the kernel hands out (pid_max ≤ 2^22).
    std::fs::write(&pid_file, "4194305\n").unwrap();
    let out = restart_command(dir.path(), &["--pid-file", pid_arg], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no reverb-shard server is running") && err.contains("4194305"),
        "{err}"
    );

    // A reused pid: this test process is alive but is not reverb-shard, and must not
    // get a SIGHUP (it would end it).
    std::fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
    let out = restart_command(dir.path(), &["--pid-file", pid_arg], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not reverb-shard"), "{err}");

    // Not a pid.
    std::fs::write(&pid_file, "hello\n").unwrap();
    let out = restart_command(dir.path(), &["--pid-file", pid_arg], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not hold a process id"),
        "{}",
        text(&out)
    );
}

// ---------------------------------------------------------------------------------
// (c) restart_mode = "exit".
// ---------------------------------------------------------------------------------

#[test]
fn exit_mode_closes_everyone_with_4200_and_exits_0() {
    become_subreaper();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("rs.pid");
    let config = server_config("restart_mode = \"exit\"");
    let config_file = dir.path().join("config.toml");
    std::fs::write(&config_file, &config).unwrap();
    let mut server = TestServer::builder()
        .config(&config)
        .arg("--pid-file")
        .arg(pid_file.to_str().unwrap())
        .start();
    let reaper = Reaper::new(&server);
    let pid = server.pid();
    wait_for_pid_file(&pid_file, |p| p == pid);
    let mut clients: Vec<Client> = (0..3).map(|_| server.connect_established().0).collect();

    let out = restart_command(
        dir.path(),
        &[
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--config",
            config_file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("restart_mode = \"exit\""),
        "{}",
        text(&out)
    );
    for (i, client) in clients.iter_mut().enumerate() {
        let close = client.expect_close();
        assert_eq!((close.0, close.1.as_str()), RESTARTING, "client {i}");
    }
    let status = server
        .wait_exit(PATIENCE)
        .expect("the server exits after SIGHUP");
    assert_eq!(status.code(), Some(0), "{}", server.logs().join("\n"));
    // Nothing took over: the pid file is gone and no successor was started.
    assert!(!pid_file.exists(), "the pid file is removed on exit");
    let banners = server
        .logs()
        .iter()
        .filter(|l| l.contains("Starting server on"))
        .count();
    assert_eq!(banners, 1, "{}", server.logs().join("\n"));
    assert!(
        reaper.successors().is_empty(),
        "exit mode starts no successor"
    );
}

// ---------------------------------------------------------------------------------
// (d) The pid file's life.
// ---------------------------------------------------------------------------------

#[test]
fn the_pid_file_is_written_at_the_default_place_and_removed_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let server = TestServer::builder()
        .env("XDG_RUNTIME_DIR", dir.path().to_str().unwrap())
        .arg("--port")
        .arg(&port.to_string())
        .start();
    let pid_file: PathBuf = dir.path().join(format!("reverb-shard-{port}.pid"));
    let pid = server.pid();
    assert_eq!(wait_for_pid_file(&pid_file, |p| p == pid), pid);
    let status = server.stop();
    assert_eq!(status.code(), Some(0));
    assert!(
        !pid_file.exists(),
        "the pid file is removed on a SIGTERM stop"
    );
}

// ---------------------------------------------------------------------------------
// (e) Kept-alive API connections do not hold a draining process.
// ---------------------------------------------------------------------------------

#[test]
fn an_idle_keep_alive_api_connection_is_closed_at_hand_over() {
    become_subreaper();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("rs.pid");
    // A long drain: the old process may only exit early if it closes the idle
    // keep-alive connection itself instead of waiting for it.
    let mut old = TestServer::builder()
        .config(&server_config("shutdown_timeout = 300"))
        .arg("--pid-file")
        .arg(pid_file.to_str().unwrap())
        .start();
    let reaper = Reaper::new(&old);
    let old_pid = old.pid();
    wait_for_pid_file(&pid_file, |p| p == old_pid);
    let mut keep_alive = support::http_api::KeepAlive::open(&old);
    let r = keep_alive.api("GET", "/channels", &[], "");
    assert_eq!(r.status, 200, "{r:?}");

    let out = restart_command(dir.path(), &["--pid-file", pid_file.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let status = old.wait_exit(PATIENCE);
    reaper.watch(wait_for_pid_file(&pid_file, |p| p != old_pid));
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "the old process must close idle API connections and exit\n{}",
        old.logs().join("\n")
    );
    // The client sees its connection closed (and would reconnect to the successor).
    keep_alive
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(keep_alive.stream.read(&mut byte).unwrap_or(0), 0);
}
