//! Interop with the real clients from npm: runs the Node suite in `tests/interop/`
//! (laravel-echo, pusher-js, the `pusher` server SDK; `node --test`) against this build's
//! binary. Skipped, with a message, only when `node` is not installed; installs the npm
//! packages (`npm ci`) when `tests/interop/node_modules` is missing; fails with Node's
//! output when the suite fails or runs past its time limit.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The whole Node suite normally takes a few seconds.
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
}

/// Written straight to the process's stderr so that it shows without `--nocapture`.
fn notice(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Run `cmd` in its own process group; kill the whole group (the test runner's workers and
/// the servers they started) when it runs past `limit`. Returns the exit status (None on
/// timeout) and stdout + stderr.
fn run_bounded(cmd: &mut Command, limit: Duration) -> (Option<ExitStatus>, String) {
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut pipe| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    })
    .collect();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the process group this child leads.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Once the group is gone the pipes close and the readers finish.
    let output = readers
        .into_iter()
        .map(|r| r.join().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n--- stderr ---\n");
    (status, output)
}

#[test]
fn node_clients_interoperate() {
    let node_version = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(out) => panic!("`node --version` failed: {out:?}"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            notice(
                "SKIPPED interop::node_clients_interoperate: `node` is not installed, so the \
                 pusher-js / laravel-echo / pusher SDK suite in tests/interop did not run \
                 (install Node.js 18+ and npm; .ci/run does)",
            );
            return;
        }
        Err(e) => panic!("cannot run `node --version`: {e}"),
    };
    let dir = interop_dir();

    let installed = ["pusher-js", "laravel-echo", "pusher"].iter().all(|p| {
        dir.join("node_modules")
            .join(p)
            .join("package.json")
            .is_file()
    });
    if !installed {
        notice("interop: installing the npm packages (npm ci in tests/interop)");
        let (status, output) = run_bounded(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
            NPM_CI_TIMEOUT,
        );
        match status {
            Some(s) if s.success() => {}
            Some(s) => panic!("`npm ci` in {} failed ({s}):\n{output}", dir.display()),
            None => panic!("`npm ci` ran past {NPM_CI_TIMEOUT:?}:\n{output}"),
        }
    }

    let started = Instant::now();
    let (status, output) = run_bounded(
        Command::new("node")
            .arg("--test")
            .current_dir(&dir)
            .env("REVERB_SHARD_BIN", env!("CARGO_BIN_EXE_reverb-shard")),
        SUITE_TIMEOUT,
    );
    let took = started.elapsed();
    match status {
        Some(s) if s.success() => {
            println!("node {node_version}: interop suite passed in {took:.1?}\n{output}");
        }
        Some(s) => panic!(
            "the Node interop suite failed ({s}, node {node_version}, {took:.1?}):\n{output}"
        ),
        None => panic!(
            "the Node interop suite ran past {SUITE_TIMEOUT:?} and was killed (node \
             {node_version}):\n{output}"
        ),
    }
}
