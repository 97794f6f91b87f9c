//! Starting and stopping the real server binary for a test.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::Client;

/// How long the server may take to print its start banner.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping server may take to exit before the test kills it.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

pub struct TestServerBuilder {
    config: Option<String>,
    cores: usize,
    env: Vec<(String, String)>,
    args: Vec<String>,
    env_file: Option<String>,
}

impl TestServerBuilder {
    /// The TOML config to pass with `--config` (None: no --config, run in an empty dir).
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_string());
        self
    }

    pub fn cores(mut self, n: usize) -> Self {
        self.cores = n;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Contents of a `.env` file written next to the config and passed with --env-file.
    pub fn env_file(mut self, contents: &str) -> Self {
        self.env_file = Some(contents.into());
        self
    }

    /// Start and wait for the banner; panics with the server's output on failure.
    pub fn start(self) -> TestServer {
        match self.try_start() {
            Ok(server) => server,
            Err((why, logs)) => panic!(
                "server did not start: {why}\n--- server output ---\n{}",
                logs.join("\n")
            ),
        }
    }

    /// Start; `Err((reason, output))` if it exited or never printed the banner.
    pub fn try_start(self) -> Result<TestServer, (String, Vec<String>)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(binary());
        cmd.current_dir(dir.path())
            .arg("start")
            .arg("--cores")
            .arg(self.cores.to_string());
        if let Some(toml) = &self.config {
            let path = dir.path().join("config.toml");
            std::fs::write(&path, toml).unwrap();
            cmd.arg("--config").arg(&path);
        }
        if let Some(contents) = &self.env_file {
            let path = dir.path().join("test.env");
            std::fs::write(&path, contents).unwrap();
            cmd.arg("--env-file").arg(&path);
        }
        cmd.args(&self.args);
        // Isolate from the developer's environment: only what the test sets.
        for (key, _) in std::env::vars() {
            if key.starts_with("REVERB_") || key.starts_with("REDIS_") {
                cmd.env_remove(key);
            }
        }
        // The default pid file goes to $XDG_RUNTIME_DIR: keep it in the test's own
        // directory (a test can still set the variable itself).
        cmd.env("XDG_RUNTIME_DIR", dir.path());
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn reverb-shard");
        let logs = Arc::new(Mutex::new(Vec::<String>::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel::<u16>();
        for pipe in [
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            let port_tx = port_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(port) = banner_port(&line) {
                        let _ = port_tx.send(port);
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(port) = port_rx.recv_timeout(Duration::from_millis(50)) {
                return Ok(TestServer {
                    child: Some(child),
                    port,
                    logs,
                    _dir: dir,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                let out = logs.lock().unwrap().clone();
                return Err((format!("exited with {status}"), out));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = logs.lock().unwrap().clone();
                return Err(("no start banner in time".into(), out));
            }
        }
    }

    /// Run to completion (for commands that must fail); returns (exit code, output).
    pub fn run_to_exit(self) -> (Option<i32>, String) {
        match self.try_start() {
            Ok(mut server) => {
                let out = server.logs().join("\n");
                server.kill();
                panic!("expected the server to exit, but it started:\n{out}");
            }
            Err((why, logs)) => {
                let code = why
                    .strip_prefix("exited with exit status: ")
                    .and_then(|c| c.parse().ok());
                (code, logs.join("\n"))
            }
        }
    }
}

/// The banner line is `... Starting [secure ]server on HOST:PORT[/path] [(hostname)]`.
fn banner_port(line: &str) -> Option<u16> {
    let rest = line
        .split("Starting server on ")
        .nth(1)
        .or_else(|| line.split("Starting secure server on ").nth(1))?;
    let addr = rest.split_whitespace().next()?;
    let addr = addr.split('/').next()?;
    addr.rsplit(':').next()?.parse().ok()
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reverb-shard"))
}

/// A running server; killed on drop if the test did not stop it.
pub struct TestServer {
    child: Option<Child>,
    pub port: u16,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// One app (demo credentials), `--cores 1`.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder {
            config: Some(super::app_config("")),
            cores: 1,
            env: Vec::new(),
            args: Vec::new(),
            env_file: None,
        }
    }

    /// Start with a config and shard count.
    pub fn start(config: &str, cores: usize) -> TestServer {
        TestServer::builder().config(config).cores(cores).start()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn ws_url(&self, key: &str) -> String {
        format!(
            "ws://127.0.0.1:{}/app/{key}?protocol=7&client=js&version=8.4.0&flash=false",
            self.port
        )
    }

    /// `ws://` URL of any path on this server (e.g. `/ws/app/app-key`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("ws://127.0.0.1:{}{path_and_query}", self.port)
    }

    /// A WebSocket client connected to `/app/{key}` (the handshake done, nothing read).
    pub fn connect(&self, key: &str) -> Client {
        Client::connect(&self.ws_url(key), &[])
    }

    /// A client connected to the demo app that has read `connection_established`.
    pub fn connect_established(&self) -> (Client, String) {
        let mut client = self.connect(super::APP_KEY);
        let socket_id = client.established();
        (client, socket_id)
    }

    /// Everything the server printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The shared log buffer itself, for a reader that must not borrow the server
    /// (e.g. while it is waited for); a restarted successor writes here too.
    pub fn log_buffer(&self) -> Arc<Mutex<Vec<String>>> {
        self.logs.clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Send SIGTERM and wait for the exit status (killing it after a timeout).
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "server did not stop within {STOP_TIMEOUT:?} of SIGTERM:\n{}",
                    self.logs().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until a log line contains `needle`; false if none did within `within`.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.logs().iter().any(|l| l.contains(needle)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send a signal without waiting (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid() as i32, signal) };
    }

    /// Wait for the process to exit by itself; None if it is still running after
    /// `within` (it is then killed).
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                self.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}
