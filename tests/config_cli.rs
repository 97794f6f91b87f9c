//! Configuration and the command line, through the real binary: source precedence,
//! `REVERB_APP_*` variables, configuration errors (exit 2), a port in use (exit 1),
//! `--help`/`--version`, the demo-credentials warning and `--debug` logging.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::server::binary;
use support::{app_config, established_data, free_port, Client, TestServer, APP_KEY};

/// Run the binary with these arguments in an empty directory (no ./config.toml, no
/// ./.env) and no REVERB_* from the outside; returns (exit code, stdout + stderr).
fn run_binary(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir.path()).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("REVERB_") || key.starts_with("REDIS_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("reverb-shard {args:?} did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    (status.code(), text)
}

/// The first app's `activity_timeout` as advertised to a client of `key`.
fn advertised_activity_timeout(server: &TestServer, key: &str) -> u64 {
    let mut client = server.connect(key);
    established_data(&client.recv_json()).1
}

/// A TOML config with the demo app on `port` and `activity_timeout`.
fn toml_with(port: u16, activity_timeout: u64) -> String {
    app_config(&format!("activity_timeout = {activity_timeout}"))
        .replace("port = 0\n", &format!("port = {port}\n"))
}

#[test]
fn precedence_is_toml_then_dotenv_then_environment_then_flags() {
    let (p_toml, p_dotenv, p_env, p_flag) = (free_port(), free_port(), free_port(), free_port());
    let dotenv = format!("REVERB_SERVER_PORT={p_dotenv}\nREVERB_APP_ACTIVITY_TIMEOUT=12\n");

    // TOML alone.
    let server = TestServer::builder().config(&toml_with(p_toml, 11)).start();
    assert_eq!(server.port, p_toml);
    assert_eq!(advertised_activity_timeout(&server, APP_KEY), 11);
    drop(server);

    // .env beats TOML.
    let server = TestServer::builder()
        .config(&toml_with(p_toml, 11))
        .env_file(&dotenv)
        .start();
    assert_eq!(server.port, p_dotenv);
    assert_eq!(advertised_activity_timeout(&server, APP_KEY), 12);
    drop(server);

    // The process environment beats .env.
    let server = TestServer::builder()
        .config(&toml_with(p_toml, 11))
        .env_file(&dotenv)
        .env("REVERB_SERVER_PORT", &p_env.to_string())
        .env("REVERB_APP_ACTIVITY_TIMEOUT", "13")
        .start();
    assert_eq!(server.port, p_env);
    assert_eq!(advertised_activity_timeout(&server, APP_KEY), 13);
    drop(server);

    // Flags beat everything.
    let server = TestServer::builder()
        .config(&toml_with(p_toml, 11))
        .env_file(&dotenv)
        .env("REVERB_SERVER_PORT", &p_env.to_string())
        .env("REVERB_APP_ACTIVITY_TIMEOUT", "13")
        .arg("--port")
        .arg(&p_flag.to_string())
        .start();
    assert_eq!(server.port, p_flag);
    assert_eq!(advertised_activity_timeout(&server, APP_KEY), 13);
    let (mut client, _) = server.connect_established();
    client.assert_alive();
}

#[test]
fn reverb_app_variables_create_the_first_app() {
    let server = TestServer::builder()
        .config("[server]\nhost = \"127.0.0.1\"\nport = 0\n")
        .env("REVERB_APP_ID", "777")
        .env("REVERB_APP_KEY", "env-key")
        .env("REVERB_APP_SECRET", "env-secret")
        .env("REVERB_APP_ACTIVITY_TIMEOUT", "21")
        .start();
    assert_eq!(advertised_activity_timeout(&server, "env-key"), 21);
    let mut unknown = server.connect(APP_KEY);
    assert_eq!(unknown.expect_error(4001), "Application does not exist");
}

#[test]
fn reverb_app_variables_override_the_first_app() {
    let server = TestServer::builder()
        .env("REVERB_APP_KEY", "env-key")
        .env_file("REVERB_APP_SECRET=\"dotenv-secret\"\nREVERB_APP_ID=42\n")
        .start();
    let mut client = Client::connect(&server.ws_url("env-key"), &[]);
    client.established();
    client.assert_alive();
    // The TOML key is replaced, not added.
    let mut old = server.connect(APP_KEY);
    assert_eq!(old.expect_error(4001), "Application does not exist");
}

#[test]
fn an_unknown_toml_key_exits_2_naming_the_key_and_line() {
    let config = "[server]\nhost = \"127.0.0.1\"\nprot = 8080\n\n[[apps]]\napp_id = \"1\"\nkey = \"k\"\nsecret = \"s\"\n";
    let (code, out) = TestServer::builder().config(config).run_to_exit();
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("prot"), "{out}");
    assert!(out.contains("line 3"), "{out}");
    assert!(!out.contains("Starting server"), "{out}");
}

#[test]
fn an_unknown_app_key_in_toml_exits_2() {
    let (code, out) = TestServer::builder()
        .config(&app_config("max_conections = 5"))
        .run_to_exit();
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("max_conections"), "{out}");
    assert!(out.contains("line 9"), "{out}");
}

#[test]
fn an_unusable_environment_value_exits_2_naming_the_variable() {
    let (code, out) = TestServer::builder()
        .env("REVERB_SERVER_PORT", "abc")
        .run_to_exit();
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("REVERB_SERVER_PORT"), "{out}");
    assert!(out.contains("abc"), "{out}");

    let (code, out) = TestServer::builder()
        .env("REVERB_APP_PING_INTERVAL", "soon")
        .run_to_exit();
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("REVERB_APP_PING_INTERVAL"), "{out}");
}

#[test]
fn unknown_reverb_variables_are_ignored() {
    let server = TestServer::builder()
        .env("REVERB_SOMETHING_NEW", "x")
        .start();
    let (mut client, _) = server.connect_established();
    client.assert_alive();
}

#[test]
fn a_missing_config_file_exits_2() {
    let (code, out) = run_binary(
        &["start", "--config", "/nonexistent/reverb-shard.toml"],
        &[],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("/nonexistent/reverb-shard.toml"), "{out}");
    let (code, out) = run_binary(&["--env-file", "/nonexistent/.env"], &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("/nonexistent/.env"), "{out}");
}

#[test]
fn bad_cores_values_exit_2() {
    for bad in ["0", "many"] {
        let (code, out) = run_binary(&["start", "--port", "0", "--cores", bad], &[]);
        assert_eq!(code, Some(2), "--cores {bad}: {out}");
        assert!(out.contains("cores"), "--cores {bad}: {out}");
    }
    let (code, out) = run_binary(&["start", "--port", "0"], &[("REVERB_SHARD_CORES", "0")]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("REVERB_SHARD_CORES"), "{out}");
}

#[test]
fn a_port_in_use_exits_1_naming_host_and_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, out) = TestServer::builder()
        .arg("--port")
        .arg(&port.to_string())
        .run_to_exit();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("127.0.0.1:{port}")), "{out}");
    drop(taken);
}

#[test]
fn help_and_version() {
    for args in [&["--help"][..], &["start", "--help"], &["help", "start"]] {
        let (code, out) = run_binary(args, &[]);
        assert_eq!(code, Some(0), "{args:?}: {out}");
        assert!(out.contains("--cores"), "{args:?}: {out}");
        assert!(out.contains("--port"), "{args:?}: {out}");
    }
    let (code, out) = run_binary(&["--version"], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("reverb-shard {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    let (code, out) = run_binary(&["--no-such-flag"], &[]);
    assert_eq!(code, Some(2), "{out}");
}

#[test]
fn the_demo_credentials_are_warned_about() {
    let server = TestServer::builder().start();
    assert!(
        server.wait_for_log("demo credentials", Duration::from_secs(5)),
        "{:?}",
        server.logs()
    );
    // Own credentials: no warning.
    let server = TestServer::builder()
        .config("[server]\nhost = \"127.0.0.1\"\nport = 0\n\n[[apps]]\napp_id = \"9\"\nkey = \"own-key\"\nsecret = \"own-secret\"\n")
        .start();
    let (mut client, _) = {
        let mut c = server.connect("own-key");
        let id = c.established();
        (c, id)
    };
    client.assert_alive();
    assert!(
        !server.logs().iter().any(|l| l.contains("demo credentials")),
        "{:?}",
        server.logs()
    );
}

#[test]
fn debug_logs_connections_and_messages_with_the_socket_id() {
    let server = TestServer::builder().arg("--debug").start();
    let (mut client, socket_id) = server.connect_established();
    client.assert_alive();
    let established = format!("Connection Established {socket_id}");
    let received = format!("Message Received {socket_id}");
    assert!(
        server.wait_for_log(&established, Duration::from_secs(5)),
        "{:?}",
        server.logs()
    );
    assert!(
        server.wait_for_log(&received, Duration::from_secs(5)),
        "{:?}",
        server.logs()
    );
}

#[test]
fn without_debug_there_are_no_traffic_lines() {
    let server = TestServer::builder().start();
    let (mut client, socket_id) = server.connect_established();
    client.assert_alive();
    client.close_with(1000, "");
    let _ = client.expect_close();
    drop(client);
    // A --debug server on the same traffic logs within milliseconds; give it a margin.
    std::thread::sleep(Duration::from_millis(300));
    let logs = server.logs();
    assert!(
        !logs
            .iter()
            .any(|l| l.contains(&socket_id) || l.contains("Message Received")),
        "{logs:?}"
    );
}

#[test]
fn debug_can_come_from_the_environment() {
    let server = TestServer::builder()
        .env("REVERB_SHARD_DEBUG", "true")
        .start();
    let (_client, socket_id) = server.connect_established();
    assert!(
        server.wait_for_log(
            &format!("Connection Established {socket_id}"),
            Duration::from_secs(5)
        ),
        "{:?}",
        server.logs()
    );
}
