//! `reverb-shard install`: a sample Laravel `.env` gets exactly the right lines, a
//! second run changes nothing, and the server then accepts the new app's key.

mod support;

use std::process::Command;

use support::server::binary;
use support::{Client, TestServer};

const LARAVEL_ENV: &str =
    "APP_NAME=Laravel\nAPP_ENV=local\nBROADCAST_CONNECTION=log\nQUEUE_CONNECTION=database\n";

fn install(dir: &std::path::Path) -> String {
    let out = Command::new(binary())
        .current_dir(dir)
        .args([
            "install",
            "--env-file",
            ".env",
            "--config",
            "config.toml",
            "--write",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn writes_the_laravel_lines_once_and_the_server_accepts_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), LARAVEL_ENV).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[server]\nhost = \"127.0.0.1\"\nport = 0\n",
    )
    .unwrap();

    install(dir.path());
    let env = std::fs::read_to_string(dir.path().join(".env")).unwrap();
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n))
        .collect();
    assert_eq!(
        names,
        [
            "APP_NAME",
            "APP_ENV",
            "BROADCAST_CONNECTION",
            "QUEUE_CONNECTION",
            "REVERB_APP_ID",
            "REVERB_APP_KEY",
            "REVERB_APP_SECRET",
            "REVERB_HOST",
            "REVERB_PORT",
            "REVERB_SCHEME",
            "VITE_REVERB_APP_KEY",
            "VITE_REVERB_HOST",
            "VITE_REVERB_PORT",
            "VITE_REVERB_SCHEME"
        ]
    );
    assert!(env.contains("BROADCAST_CONNECTION=reverb\n"));
    let key = env
        .lines()
        .find_map(|l| l.strip_prefix("REVERB_APP_KEY="))
        .unwrap()
        .to_string();
    assert_eq!(key.len(), 20);

    let config_before = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    let second = install(dir.path());
    assert!(second.contains("nothing changed"), "{second}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".env")).unwrap(),
        env
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("config.toml")).unwrap(),
        config_before
    );

    // The server started on that config accepts the generated key.
    let config = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    let server = TestServer::builder().config(&config).start();
    let mut client = Client::connect(&server.ws_url(&key), &[]);
    client.established();
}
