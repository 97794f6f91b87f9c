//! `reverb-shard restart`: find the running server through its pid file and send it
//! SIGHUP (operations.md §3). What SIGHUP then does (hand over to a new process, or
//! drain and exit) is the server's `restart_mode`; see `server::handover`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::config::{self, Flags, LoadOptions, RestartMode};
use crate::pidfile::{self, ReadError};

/// `reverb-shard restart --help`.
pub const LONG_HELP: &str =
    "Tell the running server to restart without dropping anyone: it gets SIGHUP, \
        like `php artisan reverb:restart` tells Reverb.\n\n\
        The server is found through its pid file: --pid-file, else [server] pid_file \
        (REVERB_SHARD_PID_FILE), else reverb-shard-{port}.pid in $XDG_RUNTIME_DIR or the temp \
        dir. Give the same --config/--env-file/--port as to `start` so the port and pid file \
        match. Exits 1 when no server is running there.\n\n\
        What SIGHUP does is the server's [server] restart_mode (REVERB_SHARD_RESTART_MODE):\n\n  \
        handover (default): a new process with the same arguments takes over the listening \
        sockets; then the old one stops accepting, closes every WebSocket with 4200 \"Server is \
        restarting\" (clients reconnect at once, to the new process), drains for at most \
        shutdown_timeout seconds and exits 0. No connection attempt is refused. If the new \
        process fails to start, the old one logs why and keeps serving. Use it for a new \
        binary or a changed configuration (the address cannot change this way).\n\n  \
        exit: the server closes every WebSocket with 4200 and exits 0, and the process \
        manager starts it again (connections are refused until it is back).\n\n\
        systemd (deploy/reverb-shard.service): Type=notify, NotifyAccess=all and \
        ExecReload=/bin/kill -HUP $MAINPID with restart_mode = \"handover\"; then \
        `systemctl reload reverb-shard` restarts it and systemd follows the new pid.\n\
        Supervisor (deploy/supervisor.conf) cannot follow a new pid: set restart_mode = \
        \"exit\" and autorestart=true, then run `reverb-shard restart` (or \
        `supervisorctl signal HUP reverb-shard`).\n\n\
        Examples:\n  reverb-shard restart\n  reverb-shard restart --port 6001\n  \
        reverb-shard restart --pid-file /run/reverb-shard/reverb-shard.pid";

#[derive(Args, Debug, Clone)]
pub struct RestartArgs {
    /// The running server's pid file [default: [server] pid_file, else reverb-shard-{port}.pid in $XDG_RUNTIME_DIR or the temp dir]
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// The port the server listens on, which names its default pid file [env: REVERB_SERVER_PORT]
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// The server's TOML configuration file [default: ./config.toml when present]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The server's dotenv file [default: ./.env when present]
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
}

pub fn main(args: RestartArgs) -> ExitCode {
    let options = LoadOptions {
        config_file: args.config.clone(),
        env_file: args.env_file.clone(),
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        env: std::env::vars().collect::<HashMap<_, _>>(),
        flags: Flags {
            port: args.port,
            pid_file: args.pid_file.clone(),
            ..Flags::default()
        },
    };
    // The configuration only locates the pid file (and names the mode in the message),
    // so with an explicit --pid-file a broken one does not stand in the way.
    let (path, mode) = match (config::load(&options), &args.pid_file) {
        (Ok(loaded), _) => {
            let server = loaded.config.server;
            match pidfile::resolve(server.pid_file.as_deref(), server.port) {
                Some(path) => (path, Some(server.restart_mode)),
                None => {
                    eprintln!(
                        "error: the configured port is 0 (chosen by the system), so there is no \
                         default pid file: pass --pid-file FILE, or --port with the port the \
                         server printed at start"
                    );
                    return ExitCode::from(1);
                }
            }
        }
        (Err(e), Some(path)) => {
            eprintln!(
                "warning: configuration error: {e}\n(if the server runs with this configuration, \
                 its new process will fail to start and the running one keeps serving)"
            );
            (path.clone(), None)
        }
        (Err(e), None) => {
            eprintln!("error: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match signal(&path) {
        Ok(pid) => {
            println!(
                "Sent SIGHUP to reverb-shard (pid {pid}, from {}).",
                path.display()
            );
            println!("{}", what_happens(mode));
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("error: {why}");
            ExitCode::from(1)
        }
    }
}

fn what_happens(mode: Option<RestartMode>) -> &'static str {
    match mode {
        Some(RestartMode::Handover) => {
            "With restart_mode = \"handover\" (as configured here) it starts a new process that \
             takes over the port, then closes its connections with 4200 \"Server is \
             restarting\" (clients reconnect at once) and exits; the server's log shows the new pid."
        }
        Some(RestartMode::Exit) => {
            "With restart_mode = \"exit\" (as configured here) it closes every connection with \
             4200 \"Server is restarting\" and exits 0; the process manager starts it again."
        }
        None => "What happens next depends on the server's restart_mode; see its log.",
    }
}

/// Send SIGHUP to the reverb-shard process the pid file names; its pid, or why not.
fn signal(path: &Path) -> Result<u32, String> {
    let shown = path.display();
    let pid = match pidfile::read(path) {
        Ok(pid) => pid,
        Err(ReadError::Missing) => {
            return Err(format!(
                "no reverb-shard server is running: there is no pid file {shown} (a running \
                 server writes it; pass --pid-file, or the --port/--config it was started with)"
            ))
        }
        Err(ReadError::Unreadable(e)) => return Err(format!("cannot read {shown}: {e}")),
        Err(ReadError::Garbled(text)) => {
            return Err(format!(
                "{shown} does not hold a process id (it holds {text:?}); remove it"
            ))
        }
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    if unsafe { libc::kill(pid as i32, 0) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ESRCH) => format!(
                "no reverb-shard server is running: {shown} names pid {pid}, which does not \
                 exist (a stale file left by a server that was killed; remove it)"
            ),
            Some(libc::EPERM) => format!(
                "pid {pid} (from {shown}) belongs to another user: run this as the user that \
                 runs the server, or use `systemctl reload reverb-shard`"
            ),
            _ => format!("cannot signal pid {pid} (from {shown}): {e}"),
        });
    }
    if let Some(other) = not_reverb_shard(pid) {
        return Err(format!(
            "no reverb-shard server is running: {shown} names pid {pid}, which is {other:?}, not \
             reverb-shard (a stale file whose pid was reused; remove it)"
        ));
    }
    // SAFETY: kill(2) with a pid checked above.
    if unsafe { libc::kill(pid as i32, libc::SIGHUP) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("cannot send SIGHUP to pid {pid}: {e}"));
    }
    Ok(pid)
}

/// The process's program name when it is plainly not this program (a reused pid must
/// not get a SIGHUP, which ends most programs); `None` when it is, or when /proc does
/// not tell.
fn not_reverb_shard(pid: u32) -> Option<String> {
    if pid == std::process::id() {
        return Some("this very command".into());
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let argv0 = String::from_utf8_lossy(argv0).into_owned();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let ours = std::env::current_exe().ok();
    let file_name = |p: &Path| {
        p.file_name().map(|n| {
            n.to_string_lossy()
                .trim_end_matches(" (deleted)")
                .to_string()
        })
    };
    let names: Vec<String> = [Some(Path::new(&argv0)), exe.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(file_name)
        .collect();
    let our_name = ours.as_deref().and_then(file_name);
    let is_ours = names
        .iter()
        .any(|n| n.starts_with("reverb-shard") || Some(n) == our_name.as_ref());
    (!is_ours).then_some(argv0)
}
