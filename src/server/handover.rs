//! The process's life around the shards: readiness (pid file, systemd `READY=1`),
//! SIGHUP, and the graceful restart by hand-over of operations.md §3.
//!
//! `restart_mode = "exit"`: SIGHUP stops the server like SIGTERM does, except that
//! clients are told `Server is restarting`; the supervisor starts it again.
//!
//! `restart_mode = "handover"` (the default), step by step, with the reason for each:
//!
//! 1. On SIGHUP the old process starts a successor: its own executable with the same
//!    arguments and environment, plus the numbers of its listening sockets in
//!    `REVERB_SHARD_LISTEN_FDS` and one end of a socket pair in
//!    `REVERB_SHARD_HANDOVER_FD` (FD_CLOEXEC is cleared on those in the child only).
//!    The sockets themselves change hands, not just the port: with `SO_REUSEPORT`
//!    every listener has its own accept queue, and closing one resets the connections
//!    waiting in it. A shared socket closes only when its last holder closes it.
//! 2. The successor adopts the sockets (listening again with the current somaxconn),
//!    starts its shards, writes the pid file, tells systemd `MAINPID=`/`READY=1`, and
//!    writes `R` on the pair. Its shards do not accept yet.
//! 3. On `R` the old process stops. Its accept loops do not cancel the accept that
//!    io_uring already armed (a cancel can cross the kernel completing it, and that
//!    connection would be lost): they let it complete, and the old process connects
//!    to its own port until every one has.
//! 4. Then it closes its end of the pair; on that end-of-file the successor's shards
//!    start accepting. So at any moment exactly one process accepts: a connection
//!    arriving in between waits some milliseconds in the kernel's queue, none is
//!    refused, and no API request is served by one process while its subscribers
//!    already moved to the other.
//! 5. The old process closes every WebSocket with 4200 `Server is restarting`
//!    (pusher-js reconnects at once, to the successor), waits for them and for any
//!    socket it accepted (at most `shutdown_timeout`), and exits 0. The pid file now
//!    names the successor, so it is left alone.
//!
//! If the successor exits or is not ready within [`READY_LIMIT`], the old process
//! kills it, logs why and keeps serving. A successor that runs more shards binds the
//! extra listeners only once it accepts (a successor that fails before would reset
//! what queued in them); one that runs fewer gives some shards several sockets.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::AsyncReadExt;
use shards::{StopCause, StopHandle, StopSignal};
use socket2::Socket;

use crate::config::{Config, RestartMode};
use crate::pidfile;

/// The listening sockets a successor inherits: comma-separated descriptor numbers.
pub const LISTEN_FDS_VAR: &str = "REVERB_SHARD_LISTEN_FDS";
/// The successor's end of the hand-over socket pair: one descriptor number.
pub const HANDOVER_FD_VAR: &str = "REVERB_SHARD_HANDOVER_FD";

/// How long a successor may take to become ready before the old process gives up.
pub const READY_LIMIT: Duration = Duration::from_secs(30);
/// How long a stopping accept loop waits for the accept it already armed.
pub const ACCEPT_FINISH_LIMIT: Duration = Duration::from_secs(5);
/// How long a successor waits for the old process to stop accepting before it
/// accepts anyway (the old process hangs or was stopped by a debugger).
const GATE_LIMIT: Duration = Duration::from_secs(15);
/// Pause between the old process's connections to itself while accepts are pending.
const NUDGE_PAUSE: Duration = Duration::from_millis(5);
/// At most this many such connections (each holds a descriptor until the end).
const MAX_NUDGES: usize = 1000;

/// The listening sockets of a process about to start its shards.
pub struct Bound {
    pub listeners: Vec<TcpListener>,
    /// The address they share (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// Set when this process is a successor: the link to the process it replaces.
    pub predecessor: Option<UnixStream>,
}

/// Take over the sockets of the process this one replaces, or bind `shards` new ones.
pub fn bind(host: &str, port: u16, shards: usize) -> io::Result<Bound> {
    let Some(inherited) = Inherited::take() else {
        let (listeners, addr) = super::listener::bind(host, port, shards)?;
        return Ok(Bound {
            listeners,
            addr,
            predecessor: None,
        });
    };
    match adopt(inherited.listeners, host, port) {
        Ok((listeners, addr)) => {
            crate::info!(
                "took over {} listening socket(s) on {addr} from the previous process",
                listeners.len()
            );
            Ok(Bound {
                listeners,
                addr,
                predecessor: inherited.link,
            })
        }
        Err(why) => {
            crate::warn!("{why}");
            let (listeners, addr) = super::listener::bind(host, port, shards)?;
            Ok(Bound {
                listeners,
                addr,
                predecessor: inherited.link,
            })
        }
    }
}

/// What the previous process handed over through the environment.
struct Inherited {
    listeners: Vec<Socket>,
    link: Option<UnixStream>,
}

impl Inherited {
    /// Read and clear the variables (so they reach no later child by accident).
    fn take() -> Option<Inherited> {
        let fds = std::env::var(LISTEN_FDS_VAR).ok();
        let link = std::env::var(HANDOVER_FD_VAR).ok();
        if fds.is_none() && link.is_none() {
            return None;
        }
        // Called on the main thread before any other thread starts.
        std::env::remove_var(LISTEN_FDS_VAR);
        std::env::remove_var(HANDOVER_FD_VAR);
        let listeners = fds
            .iter()
            .flat_map(|list| list.split(','))
            .filter_map(|fd| fd.trim().parse::<RawFd>().ok())
            .filter_map(listening_socket)
            .collect();
        let link = link
            .and_then(|fd| fd.trim().parse::<RawFd>().ok())
            .filter(|&fd| is_socket(fd))
            .map(|fd| {
                // SAFETY: a socket descriptor handed to this process for this use only.
                let link = unsafe { UnixStream::from_raw_fd(fd) };
                set_cloexec(fd);
                link
            });
        Some(Inherited { listeners, link })
    }
}

/// The inherited descriptor as a listening socket, or `None` (left open: it is not
/// ours to close) when it is not one.
fn listening_socket(fd: RawFd) -> Option<Socket> {
    if fd <= 2 || !is_socket(fd) {
        crate::warn!("{LISTEN_FDS_VAR}: descriptor {fd} is not a socket; ignored");
        return None;
    }
    // SAFETY: the previous process handed this socket to this one.
    let socket = unsafe { Socket::from_raw_fd(fd) };
    if !socket.is_listener().unwrap_or(false) {
        let _ = socket.into_raw_fd();
        crate::warn!("{LISTEN_FDS_VAR}: descriptor {fd} is not a listening socket; ignored");
        return None;
    }
    let _ = socket.set_cloexec(true);
    Some(socket)
}

/// Use the inherited sockets when they listen where the configuration says.
fn adopt(
    sockets: Vec<Socket>,
    host: &str,
    port: u16,
) -> Result<(Vec<TcpListener>, SocketAddr), String> {
    let addrs: Vec<Option<SocketAddr>> = sockets
        .iter()
        .map(|s| s.local_addr().ok().and_then(|a| a.as_socket()))
        .collect();
    let Some(Some(first)) = addrs.first().copied() else {
        return Err("no usable listening socket was handed over; binding anew".into());
    };
    let wanted = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next());
    let same = |a: &Option<SocketAddr>| *a == Some(first);
    let fits = wanted.is_some_and(|w| w.ip() == first.ip() && (port == 0 || port == first.port()));
    if !addrs.iter().all(same) || !fits {
        // Dropping our copies is safe: the old process still serves their queues.
        return Err(format!(
            "the previous process listens on {first}, but the configuration now asks for \
             {host}:{port}; binding anew (changing the address needs a stop and a start)"
        ));
    }
    let listeners = sockets
        .into_iter()
        .map(|s| {
            // Listening again only updates the queue length: a raised somaxconn takes
            // effect with a restart, and nothing queued is touched.
            let _ = s.listen(super::listener::backlog());
            let _ = s.set_nonblocking(true);
            TcpListener::from(s)
        })
        .collect();
    Ok((listeners, first))
}

fn is_socket(fd: RawFd) -> bool {
    // SAFETY: fstat only writes the struct it is given; a bad fd is an error.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
    }
}

fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

/// One process's readiness, pid file and SIGHUP handling, shared by its shards.
pub struct Lifecycle {
    /// `None` for a server run without signal handling (embedded in a benchmark or a
    /// test): no pid file, no systemd notification, no SIGHUP.
    restart: Option<RestartMode>,
    pid_file: Option<PathBuf>,
    addr: SocketAddr,
    /// Every listening socket of this process, as handed to a successor.
    listen_fds: Mutex<Vec<RawFd>>,
    /// The listening sockets each shard accepts on.
    per_shard: Vec<Vec<RawFd>>,
    /// Shards that bind a listener of their own once they may accept.
    bind_later: Vec<bool>,
    /// This process replaces another: the link to it.
    predecessor: Option<UnixStream>,
    /// Shards not yet ready; the last one makes the process ready.
    pending_ready: AtomicUsize,
    /// A SIGHUP hand-over is under way (from SIGHUP until it fails or ends).
    restarting: AtomicBool,
    /// The successor is ready and this process is stepping down.
    handing_over: AtomicBool,
    /// One message per accept loop that finished while handing over.
    accept_done: Sender<()>,
    accept_done_rx: Mutex<Option<Receiver<()>>>,
    /// A successor that is still starting (killed if this process stops meanwhile).
    successor: Mutex<Option<Child>>,
}

impl Lifecycle {
    /// `listeners` as bound (adopted ones first); `signals` says whether this is the
    /// real process (pid file, systemd, SIGHUP) or an embedded server.
    pub fn new(
        config: &Config,
        listeners: Vec<RawFd>,
        addr: SocketAddr,
        shards: usize,
        predecessor: Option<UnixStream>,
        signals: bool,
    ) -> Arc<Lifecycle> {
        let mut per_shard = vec![Vec::new(); shards];
        for (k, fd) in listeners.iter().enumerate() {
            per_shard[k % shards].push(*fd);
        }
        if listeners.len() > shards {
            // Closing a socket would reset what is queued in it; serve them all.
            crate::info!(
                "{shards} shard(s) serve the {} sockets taken over: some accept on several",
                listeners.len()
            );
        }
        let bind_later = (0..shards).map(|i| i >= listeners.len()).collect();
        let (accept_done, rx) = mpsc::channel();
        Arc::new(Lifecycle {
            restart: signals.then_some(config.server.restart_mode),
            pid_file: pidfile::resolve(config.server.pid_file.as_deref(), config.server.port),
            addr,
            listen_fds: Mutex::new(listeners),
            per_shard,
            bind_later,
            predecessor,
            pending_ready: AtomicUsize::new(shards),
            restarting: AtomicBool::new(false),
            handing_over: AtomicBool::new(false),
            accept_done,
            accept_done_rx: Mutex::new(Some(rx)),
            successor: Mutex::new(None),
        })
    }

    /// Add the SIGHUP handling of the configured restart mode (nothing when embedded).
    pub fn register(self: &Arc<Self>, builder: shards::Builder) -> shards::Builder {
        let Some(mode) = self.restart else {
            return builder;
        };
        let me = self.clone();
        builder.on_signal(libc::SIGHUP, move |stop| me.on_sighup(mode, stop))
    }

    /// The listening sockets shard `shard` accepts on, once it may: at once, or for a
    /// successor when the old process stopped accepting. Empty when the runtime
    /// stops first.
    pub async fn open_listeners(&self, shard: usize, stop: &StopSignal) -> Vec<RawFd> {
        if let Some(link) = &self.predecessor {
            let opened = futures_lite::future::or(async { Some(wait_for_go(link).await) }, async {
                stop.wait().await;
                None
            })
            .await;
            match opened {
                None => {
                    // Never accepted on: a successor of ours need not wait for them.
                    for _ in &self.per_shard[shard] {
                        self.accept_loop_done();
                    }
                    return Vec::new();
                }
                Some(false) if shard == 0 => crate::warn!(
                    "the previous process did not stop accepting within {} s; accepting anyway",
                    GATE_LIMIT.as_secs()
                ),
                Some(_) => {}
            }
        }
        let mut fds = self.per_shard[shard].clone();
        if self.bind_later[shard] && !stop.fired() {
            match super::listener::bind_one(self.addr) {
                Ok(listener) => {
                    let fd = listener.into_raw_fd();
                    self.listen_fds.lock().unwrap().push(fd);
                    fds.push(fd);
                }
                Err(e) => crate::error!(
                    "shard {shard}: cannot add a listener on {}: {e}; this shard accepts no \
                     connections",
                    self.addr
                ),
            }
        }
        fds
    }

    /// Called by each shard once it runs; the last one makes the process ready.
    pub fn shard_ready(&self) {
        if self.pending_ready.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ready();
        }
    }

    /// Whether stopping accept loops must let their armed accept complete (step 3).
    pub fn handing_over(&self) -> bool {
        self.handing_over.load(Ordering::Acquire)
    }

    /// An accept loop ended while handing over.
    pub fn accept_loop_done(&self) {
        let _ = self.accept_done.send(());
    }

    /// At exit: stop a successor that is still starting, and remove the pid file if it
    /// still names this process.
    pub fn finish(&self) {
        let starting = self.successor.lock().unwrap().take();
        if let Some(mut child) = starting {
            let _ = child.kill();
            let _ = child.wait();
            crate::warn!(
                "stopped the new process (pid {}) that was still starting",
                child.id()
            );
        }
        if let (Some(_), Some(path)) = (self.restart, &self.pid_file) {
            pidfile::remove_if_ours(path, std::process::id());
        }
    }

    /// Every shard runs: write the pid file, tell systemd, tell the predecessor.
    fn ready(&self) {
        if self.restart.is_none() {
            return;
        }
        let pid = std::process::id();
        match &self.pid_file {
            Some(path) => match pidfile::write(path, pid) {
                Ok(()) => crate::info!("pid {pid} written to {}", path.display()),
                Err(e) => crate::warn!(
                    "cannot write the pid file {}: {e}; `reverb-shard restart` will not find \
                     this server (send SIGHUP to pid {pid} instead)",
                    path.display()
                ),
            },
            None => crate::debug!(
                "no pid file: the system chooses the port (port 0); set [server] pid_file or \
                 --pid-file to use `reverb-shard restart`"
            ),
        }
        match &self.predecessor {
            Some(link) => {
                sd_notify(&format!("MAINPID={pid}\nREADY=1"));
                let mut link: &UnixStream = link;
                let _ = link.write_all(b"R");
            }
            None => sd_notify("READY=1"),
        }
    }

    fn on_sighup(self: &Arc<Self>, mode: RestartMode, stop: &StopHandle) {
        if stop.is_stopped() {
            return;
        }
        match mode {
            RestartMode::Exit => {
                crate::info!(
                    "SIGHUP (restart_mode = \"exit\"): closing every connection with 4200 \
                     \"Server is restarting\" and exiting; the process manager starts the server \
                     again"
                );
                stop.stop_with(StopCause::Signal(libc::SIGHUP));
            }
            RestartMode::Handover => {
                if self.restarting.swap(true, Ordering::AcqRel) {
                    crate::info!("SIGHUP: a restart is already under way; ignored");
                    return;
                }
                let (me, stop) = (self.clone(), stop.clone());
                let spawned = std::thread::Builder::new()
                    .name("handover".into())
                    .spawn(move || me.hand_over(&stop));
                if let Err(e) = spawned {
                    crate::error!("restart failed: cannot start a thread: {e}; still serving");
                    self.restarting.store(false, Ordering::Release);
                }
            }
        }
    }

    /// The old process's side of steps 1–4 (runs on its own thread).
    fn hand_over(&self, stop: &StopHandle) {
        crate::info!(
            "SIGHUP: starting a new process to take over {} (restart_mode = \"handover\")",
            self.addr
        );
        sd_notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
        match self.start_successor(stop) {
            Ok((pid, link)) => self.step_down(stop, pid, link),
            // A SIGTERM/SIGINT arrived meanwhile: this process stops, and so did the new one.
            Err(why) if stop.is_stopped() => crate::info!("restart abandoned: {why}"),
            Err(why) => {
                crate::error!(
                    "restart failed: {why}; this process (pid {}) keeps serving",
                    std::process::id()
                );
                sd_notify("READY=1\nSTATUS=restart failed; still serving");
                self.restarting.store(false, Ordering::Release);
            }
        }
    }

    /// Start the successor and wait until it is ready; its pid and the link.
    fn start_successor(&self, stop: &StopHandle) -> Result<(u32, UnixStream), String> {
        let exe = successor_exe()
            .map_err(|e| format!("cannot find this program's executable to start it: {e}"))?;
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| format!("cannot create a socket pair: {e}"))?;
        let fds = self.listen_fds.lock().unwrap().clone();
        let mut inherit = fds.clone();
        inherit.push(theirs.as_raw_fd());
        let list: Vec<String> = fds.iter().map(|fd| fd.to_string()).collect();
        let mut command = Command::new(&exe);
        command
            .args(std::env::args_os().skip(1))
            .env(LISTEN_FDS_VAR, list.join(","))
            .env(HANDOVER_FD_VAR, theirs.as_raw_fd().to_string());
        // SAFETY: runs in the forked child before exec. fcntl is async-signal-safe and
        // `inherit` was allocated before the fork; the parent's descriptors keep
        // FD_CLOEXEC, so nothing else it starts inherits them.
        unsafe {
            command.pre_exec(move || {
                for &fd in &inherit {
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        drop(theirs);
        let pid = child.id();
        crate::info!(
            "started {} (pid {pid}) with the same arguments; waiting until it is ready",
            exe.display()
        );
        *self.successor.lock().unwrap() = Some(child);
        let outcome = wait_ready(&ours, stop);
        // `None` when the process is exiting and `finish` already stopped it.
        let child = self.successor.lock().unwrap().take();
        let Some(mut child) = child else {
            return Err("this process is stopping".into());
        };
        let why = match outcome {
            Ready::Yes if stop.is_stopped() => {
                // A SIGTERM crossed the restart: the successor must not outlive us.
                // SAFETY: kill(2) on our own child, not yet reaped.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
                let _ = child.wait();
                return Err("a stop was requested meanwhile; the new process was stopped".into());
            }
            Ready::Yes => return Ok((pid, ours)),
            Ready::Gone => match wait_a_moment(&mut child) {
                Some(status) => format!("the new process (pid {pid}) exited ({status}) before it was ready; its messages are above"),
                None => format!("the new process (pid {pid}) closed the hand-over link before it was ready"),
            },
            Ready::TimedOut => format!(
                "the new process (pid {pid}) was not ready within {} s",
                READY_LIMIT.as_secs()
            ),
            Ready::Stopping => "a stop was requested meanwhile".to_string(),
        };
        let _ = child.kill();
        let _ = child.wait();
        Err(why)
    }

    /// Steps 3 and 4: stop, let the accept loops finish, then let the successor accept.
    fn step_down(&self, stop: &StopHandle, successor: u32, link: UnixStream) {
        crate::info!(
            "the new process (pid {successor}) is ready; this one (pid {}) stops accepting, \
             closes its connections with 4200 \"Server is restarting\" and exits",
            std::process::id()
        );
        let done = self.accept_done_rx.lock().unwrap().take();
        let total = self.listen_fds.lock().unwrap().len();
        self.handing_over.store(true, Ordering::Release);
        stop.stop_with(StopCause::Signal(libc::SIGHUP));
        let nudges = match done {
            Some(done) => self.finish_accepts(&done, total),
            None => Vec::new(),
        };
        // End-of-file on the pair: the successor's shards start accepting.
        drop(link);
        drop(nudges);
        crate::info!("handed the port over to pid {successor}");
    }

    /// Wait until `total` accept loops ended; an armed accept completes only with a
    /// connection, so make some when no client does. The connections are returned to
    /// be closed after the hand-over.
    fn finish_accepts(&self, done: &Receiver<()>, total: usize) -> Vec<TcpStream> {
        let target = loopback_for(self.addr);
        let deadline = Instant::now() + ACCEPT_FINISH_LIMIT + Duration::from_secs(1);
        let (mut finished, mut nudges, mut warned) = (0, Vec::new(), false);
        while finished < total {
            if Instant::now() >= deadline {
                crate::warn!(
                    "{} accept loop(s) did not finish in time; handing over anyway",
                    total - finished
                );
                break;
            }
            match done.recv_timeout(NUDGE_PAUSE) {
                Ok(()) => finished += 1,
                Err(RecvTimeoutError::Timeout) if nudges.len() < MAX_NUDGES => {
                    match TcpStream::connect_timeout(&target, Duration::from_secs(1)) {
                        Ok(stream) => nudges.push(stream),
                        Err(e) if !warned => {
                            warned = true;
                            crate::warn!(
                                "cannot connect to {target} to finish pending accepts: {e}"
                            );
                        }
                        Err(_) => {}
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        nudges
    }
}

/// How waiting for the successor ended.
enum Ready {
    Yes,
    /// It closed the link (it exited).
    Gone,
    TimedOut,
    /// This process was asked to stop meanwhile.
    Stopping,
}

fn wait_ready(link: &UnixStream, stop: &StopHandle) -> Ready {
    let deadline = Instant::now() + READY_LIMIT;
    // Short reads so a SIGTERM meanwhile is noticed.
    let _ = link.set_read_timeout(Some(Duration::from_millis(200)));
    let mut byte = [0u8; 1];
    loop {
        match (&*link).read(&mut byte) {
            Ok(1) => return Ready::Yes,
            Ok(_) => return Ready::Gone,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return Ready::Gone,
        }
        if stop.is_stopped() {
            return Ready::Stopping;
        }
        if Instant::now() >= deadline {
            return Ready::TimedOut;
        }
    }
}

/// The exit status of a child that is exiting, if it exits within a second.
fn wait_a_moment(child: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Resolves when the old process closed its end of the pair: true, or false after
/// [`GATE_LIMIT`].
async fn wait_for_go(link: &UnixStream) -> bool {
    // Each shard reads its own duplicate: all of them see the end-of-file.
    // SAFETY: fcntl on a descriptor this process owns.
    let dup = unsafe { libc::fcntl(link.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return true;
    }
    // SAFETY: a fresh duplicate, owned by the stream from here on.
    let mut stream = unsafe { glommio::net::UnixStream::from_raw_fd(dup) };
    let mut byte = [0u8; 1];
    futures_lite::future::or(
        async {
            let _ = stream.read(&mut byte).await;
            true
        },
        async {
            glommio::timer::sleep(GATE_LIMIT).await;
            false
        },
    )
    .await
}

/// This program, to start again: after an upgrade replaced the file, Linux names the
/// running one `PATH (deleted)`, and the new file at PATH is the one to run.
fn successor_exe() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    if exe.exists() {
        return Ok(exe);
    }
    let text = exe.to_string_lossy();
    match text.strip_suffix(" (deleted)") {
        Some(path) if Path::new(path).exists() => Ok(PathBuf::from(path)),
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} no longer exists", exe.display()),
        )),
    }
}

/// Where the process can reach its own listeners.
fn loopback_for(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// Tell systemd (`Type=notify`) about the service's state; nothing without
/// `NOTIFY_SOCKET`. Names starting with `@` are abstract socket names.
pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = notify_to(&path, state) {
        crate::warn!("cannot notify systemd at {}: {e}", path.to_string_lossy());
    }
}

fn notify_to(path: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
    let addr = match path.as_bytes().strip_prefix(b"@") {
        Some(name) => UnixAddr::from_abstract_name(name)?,
        None => UnixAddr::from_pathname(path)?,
    };
    UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the struct it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_replaces_only_the_wildcard() {
        let v4: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert_eq!(loopback_for(v4), "127.0.0.1:80".parse().unwrap());
        let v6: SocketAddr = "[::]:80".parse().unwrap();
        assert_eq!(loopback_for(v6), "[::1]:80".parse().unwrap());
        let ip: SocketAddr = "10.1.2.3:80".parse().unwrap();
        assert_eq!(loopback_for(ip), ip);
    }

    #[test]
    fn notifications_reach_a_path_or_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let by_path = UnixDatagram::bind(&path).unwrap();
        let name = format!("reverb-shard-test-{}", std::process::id());
        let abstract_addr = UnixAddr::from_abstract_name(name.as_bytes()).unwrap();
        let by_name = UnixDatagram::bind_addr(&abstract_addr).unwrap();
        notify_to(path.as_os_str(), "READY=1").unwrap();
        notify_to(format!("@{name}").as_ref(), "MAINPID=7\nREADY=1").unwrap();
        let mut buf = [0u8; 64];
        for (socket, expected) in [
            (&by_path, &b"READY=1"[..]),
            (&by_name, &b"MAINPID=7\nREADY=1"[..]),
        ] {
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let n = socket.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], expected);
        }
    }

    #[test]
    fn inherited_listeners_are_adopted_only_where_the_config_listens() {
        let (listeners, addr) = super::super::listener::bind("127.0.0.1", 0, 2).unwrap();
        let sockets: Vec<Socket> = listeners.into_iter().map(Socket::from).collect();
        let elsewhere = adopt(
            sockets.iter().map(|s| s.try_clone().unwrap()).collect(),
            "127.0.0.1",
            addr.port().wrapping_add(1).max(1),
        );
        assert!(elsewhere.is_err());
        let (adopted, at) = adopt(sockets, "127.0.0.1", addr.port()).unwrap();
        assert_eq!((adopted.len(), at), (2, addr));
    }
}
