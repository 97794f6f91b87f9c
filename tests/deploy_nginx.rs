//! The shipped nginx site (`deploy/nginx.conf`) under a real nginx: it must pass
//! `nginx -t`, and a WebSocket client must connect through it, subscribe, and receive
//! an event triggered through it with the HTTP API. The site is used as shipped, with
//! only the upstream address and the listen port replaced by loopback ports.
//!
//! Without an `nginx` binary the test says so loudly and passes, except under CI (the
//! `CI` variable set), where `.ci/run` installs nginx and a missing binary fails.

mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use support::http_api::{app_path, request_bytes, subscribe, until_event, Signer};
use support::{free_port, raw, Client, TestServer};

/// The shipped site, and the two lines an operator (and this test) adapts.
const SITE: &str = include_str!("../deploy/nginx.conf");
const UPSTREAM_LINE: &str = "server 127.0.0.1:8080;";
const LISTEN_LINE: &str = "listen 80;";

/// How long nginx may take to start listening, and to stop.
const NGINX_TIMEOUT: Duration = Duration::from_secs(10);

/// The nginx binary: on PATH, or in the sbin folders PATH often lacks for non-root.
fn find_nginx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

/// A running nginx, stopped (and reaped) when dropped, also when the test panics.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // `master_process off`: this one process is all of nginx, so killing it
        // leaves no workers behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

/// A minimal main config around the site: everything nginx writes stays in `dir`,
/// one process in the foreground.
fn main_config(nginx: &Path, dir: &Path) -> String {
    // Temp paths of the modules this nginx has (a build may leave some out, and the
    // built-in defaults point to system folders).
    let version = Command::new(nginx).arg("-V").output().expect("nginx -V");
    let built = String::from_utf8_lossy(&version.stderr).into_owned();
    let d = dir.display();
    let mut temp_paths =
        format!("    client_body_temp_path {d}/client_body;\n    proxy_temp_path {d}/proxy;\n");
    for module in ["fastcgi", "uwsgi", "scgi"] {
        if !built.contains(&format!("--without-http_{module}_module")) {
            temp_paths.push_str(&format!("    {module}_temp_path {d}/{module};\n"));
        }
    }
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\n\
         events {{\n    worker_connections 256;\n}}\n\
         http {{\n    access_log {d}/access.log;\n{temp_paths}    include {d}/site.conf;\n}}\n"
    )
}

/// Wait until something accepts connections on `addr`; panics with nginx's log if it
/// exits or never listens.
fn wait_listening(nginx: &mut Nginx, addr: &str) {
    let deadline = Instant::now() + NGINX_TIMEOUT;
    loop {
        if TcpStream::connect(addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = nginx.child.try_wait() {
            panic!("nginx exited with {status}:\n{}", nginx.error_log());
        }
        if Instant::now() > deadline {
            panic!("nginx did not listen on {addr}:\n{}", nginx.error_log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn websocket_and_http_api_through_the_shipped_nginx_site() {
    let Some(nginx) = find_nginx() else {
        if std::env::var_os("CI").is_some() {
            panic!("nginx is not installed, but CI must run this test (.ci/run installs it)");
        }
        eprintln!(
            "\n*** SKIPPED deploy_nginx: no nginx binary found (apt-get install nginx-light); \
             deploy/nginx.conf was NOT tested ***\n"
        );
        return;
    };

    // Operators adapt exactly these two lines; the test fails if they change shape.
    assert_eq!(SITE.matches(UPSTREAM_LINE).count(), 1, "{UPSTREAM_LINE}");
    assert_eq!(SITE.matches(LISTEN_LINE).count(), 1, "{LISTEN_LINE}");

    let server = TestServer::builder().start();
    let port = free_port();
    let site = SITE
        .replace(UPSTREAM_LINE, &format!("server 127.0.0.1:{};", server.port))
        .replace(LISTEN_LINE, &format!("listen 127.0.0.1:{port};"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("site.conf"), site).unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, main_config(&nginx, dir)).unwrap();

    let check = Command::new(&nginx)
        .arg("-t")
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .output()
        .expect("run nginx -t");
    assert!(
        check.status.success(),
        "nginx -t failed:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let child = Command::new(&nginx)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let mut proxy = Nginx {
        child,
        dir: dir.to_path_buf(),
    };
    let addr = format!("127.0.0.1:{port}");
    wait_listening(&mut proxy, &addr);

    // The WebSocket endpoint through nginx.
    let url = format!(
        "ws://{addr}/app/{}?protocol=7&client=js&version=8.4.0",
        support::APP_KEY
    );
    let mut client = Client::connect(&url, &[]);
    let socket_id = client.established();
    subscribe(&mut client, &socket_id, "news");

    // The HTTP API through nginx: a signed trigger reaches the subscriber.
    let body = json!({"name": "greeting", "channels": ["news"], "data": "{\"via\":\"nginx\"}"})
        .to_string();
    let target = Signer::default().target("POST", &app_path("/events"), &[], body.as_bytes());
    let (response, _) = raw::http_exchange(
        &addr,
        &request_bytes("POST", &target, body.as_bytes(), true),
    );
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (200, "{}"),
        "{response:?}\n{}",
        proxy.error_log()
    );
    let (event, _) = until_event(&mut client, "greeting", Some("news"));
    assert_eq!(event["data"], "{\"via\":\"nginx\"}", "{event}");

    // The health check too, and the WebSocket is still open after all that.
    let up = raw::get(&addr, "/up");
    assert_eq!(
        (up.status, up.body_text().as_str()),
        (200, r#"{"health":"OK"}"#)
    );
    client.assert_alive();

    drop(client);
    drop(proxy);
    assert!(server.stop().success());
}
