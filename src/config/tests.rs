//! Tests of `load()` as a whole: source selection, precedence of the layers, the shipped
//! `config.toml`, validation errors and warnings. Per-layer details are tested next to
//! each layer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn opts(dir: &Path) -> LoadOptions {
    LoadOptions {
        cwd: dir.to_path_buf(),
        ..LoadOptions::default()
    }
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_ok(o: &LoadOptions) -> Loaded {
    match load(o) {
        Ok(l) => l,
        Err(e) => panic!("load failed: {e}"),
    }
}

fn load_err(o: &LoadOptions) -> String {
    match load(o) {
        Ok(l) => panic!("expected an error, got {:?}", l.config),
        Err(e) => e.to_string(),
    }
}

const ONE_APP: &str = "[[apps]]\napp_id = \"1\"\nkey = \"k1\"\nsecret = \"s1\"\n";

fn demo_app() -> AppConfig {
    let mut app = AppConfig::new("123456", "app-key", "app-secret");
    app.options = AppOptions {
        host: Some("localhost".into()),
        port: Some(8080),
        scheme: Some("http".into()),
        use_tls: Some(false),
    };
    app
}

fn defaults_with(apps: Vec<AppConfig>) -> Config {
    Config {
        server: ServerConfig::default(),
        scaling: ScalingConfig::default(),
        apps,
        pulse: PulseConfig::default(),
    }
}

// ---- the shipped configuration -------------------------------------------------------

#[test]
fn embedded_default_equals_defaults_plus_the_demo_app() {
    let dir = TempDir::new().unwrap();
    let l = load_ok(&opts(dir.path()));
    assert_eq!(l.config, defaults_with(vec![demo_app()]));
    assert_eq!(l.sources, vec!["embedded default configuration"]);
}

#[test]
fn shipped_config_toml_file_parses_to_the_same() {
    let dir = TempDir::new().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let l = load_ok(&LoadOptions {
        config_file: Some(file.clone()),
        ..opts(dir.path())
    });
    assert_eq!(l.config, defaults_with(vec![demo_app()]));
    assert_eq!(l.sources, vec![format!("config file {}", file.display())]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), EMBEDDED_DEFAULT);
}

#[test]
fn shipped_config_toml_commented_keys_are_all_valid() {
    // Uncommenting every `# key = value` line of the shipped file must still parse:
    // the documentation shows only real keys.
    let uncommented: String = EMBEDDED_DEFAULT
        .lines()
        .map(|l| {
            let t = l.trim_start_matches("# ");
            let looks_like_key = t.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            let header = t.starts_with("[[apps]]");
            if l.starts_with("# ") && (looks_like_key || header) {
                t.to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("c.pem"), "x").unwrap();
    let text = uncommented
        .replace(
            "/etc/ssl/ws.example.com.pem",
            &dir.path().join("c.pem").display().to_string(),
        )
        .replace(
            "/etc/ssl/ws.example.com.key",
            &dir.path().join("c.pem").display().to_string(),
        );
    let file = write(dir.path(), "config.toml", &text);
    let l = load_ok(&opts(dir.path()));
    assert_eq!(l.config.apps.len(), 2, "{file:?}");
    assert_eq!(l.config.server.hostname.as_deref(), Some("ws.example.com"));
    assert_eq!(
        l.config.scaling.redis.url.as_deref(),
        Some("redis://127.0.0.1:6379/0")
    );
    assert_eq!(l.config.apps[0].max_connections, Some(1000));
    assert!(l.config.server.tls.local_cert.is_some());
}

#[test]
fn demo_credentials_warning() {
    let dir = TempDir::new().unwrap();
    let l = load_ok(&opts(dir.path()));
    assert_eq!(
        l.warnings,
        vec![
            "app 123456 uses the demo credentials from the shipped config.toml (key app-key); \
             generate your own for anything but local development"
        ]
    );
    // Own credentials from the environment replace the demo app's: no warning.
    let l = load_ok(&LoadOptions {
        env: env(&[
            ("REVERB_APP_KEY", "real-key"),
            ("REVERB_APP_SECRET", "real-secret"),
        ]),
        ..opts(dir.path())
    });
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config.apps[0].app_id, "123456");
    assert_eq!(l.config.apps[0].key, "real-key");
}

// ---- source selection ------------------------------------------------------------------

#[test]
fn cwd_config_toml_and_dotenv_are_found() {
    let dir = TempDir::new().unwrap();
    let cfg = write(
        dir.path(),
        "config.toml",
        &format!("[server]\nport = 9000\n{ONE_APP}"),
    );
    let dot = write(dir.path(), ".env", "REVERB_SERVER_HOST=127.0.0.1\n");
    let l = load_ok(&LoadOptions {
        env: env(&[("REVERB_SERVER_PATH", "ws"), ("UNRELATED", "x")]),
        ..opts(dir.path())
    });
    assert_eq!(l.config.server.port, 9000);
    assert_eq!(l.config.server.host, "127.0.0.1");
    assert_eq!(l.config.server.path, "/ws");
    assert_eq!(
        l.sources,
        vec![
            format!("config file {}", cfg.display()),
            format!("env file {}", dot.display()),
            "environment: REVERB_SERVER_PATH".to_string(),
        ]
    );
}

#[test]
fn explicit_files_replace_the_cwd_ones() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "config.toml",
        &format!("[server]\nport = 9000\n{ONE_APP}"),
    );
    write(dir.path(), ".env", "REVERB_SERVER_HOST=127.0.0.1\n");
    let other = TempDir::new().unwrap();
    let cfg = write(
        other.path(),
        "other.toml",
        &format!("[server]\nport = 9100\n{ONE_APP}"),
    );
    let dot = write(other.path(), "laravel.env", "REVERB_SERVER_HOST=10.0.0.1\n");
    let l = load_ok(&LoadOptions {
        config_file: Some(cfg),
        env_file: Some(dot),
        flags: Flags {
            debug: true,
            ..Flags::default()
        },
        ..opts(dir.path())
    });
    assert_eq!(l.config.server.port, 9100);
    assert_eq!(l.config.server.host, "10.0.0.1");
    assert!(l.config.server.debug);
    assert_eq!(l.sources.last().unwrap(), "command-line flags: --debug");
}

#[test]
fn explicit_files_must_exist() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("nope.toml");
    let e = load_err(&LoadOptions {
        config_file: Some(missing.clone()),
        ..opts(dir.path())
    });
    assert!(
        e.starts_with(&format!(
            "--config {}: cannot read the file",
            missing.display()
        )),
        "{e}"
    );
    let missing = dir.path().join("nope.env");
    let e = load_err(&LoadOptions {
        env_file: Some(missing.clone()),
        ..opts(dir.path())
    });
    assert!(
        e.starts_with(&format!(
            "--env-file {}: cannot read the file",
            missing.display()
        )),
        "{e}"
    );
}

// ---- precedence ------------------------------------------------------------------------

#[test]
fn each_layer_overrides_the_one_below() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "config.toml",
        "[server]\nport = 9000\nhost = \"10.0.0.1\"\n\n\
         [[apps]]\napp_id = \"1\"\nkey = \"k\"\nsecret = \"s\"\nping_interval = 11\n",
    );
    let base = opts(dir.path());

    // TOML over defaults.
    let c = load_ok(&base).config;
    assert_eq!((c.server.port, c.server.host.as_str()), (9000, "10.0.0.1"));
    assert_eq!(c.apps[0].ping_interval, 11);
    assert_eq!(
        c.apps[0].activity_timeout, 30,
        "default for a key the file omits"
    );

    // .env over TOML.
    write(
        dir.path(),
        ".env",
        "REVERB_SERVER_PORT=9001\nREVERB_SERVER_HOST=10.0.0.2\nREVERB_APP_PING_INTERVAL=12\n",
    );
    let c = load_ok(&base).config;
    assert_eq!((c.server.port, c.server.host.as_str()), (9001, "10.0.0.2"));
    assert_eq!(c.apps[0].ping_interval, 12);

    // Process environment over .env.
    let with_env = LoadOptions {
        env: env(&[
            ("REVERB_SERVER_PORT", "9002"),
            ("REVERB_SERVER_HOST", "10.0.0.3"),
            ("REVERB_APP_PING_INTERVAL", "13"),
        ]),
        ..base.clone()
    };
    let c = load_ok(&with_env).config;
    assert_eq!((c.server.port, c.server.host.as_str()), (9002, "10.0.0.3"));
    assert_eq!(c.apps[0].ping_interval, 13);

    // Flags over the environment.
    let with_flags = LoadOptions {
        flags: Flags {
            port: Some(9003),
            host: Some("10.0.0.4".into()),
            path: Some("/x/".into()),
            hostname: Some("h.test".into()),
            cores: Some(Cores::Count(2)),
            debug: true,
            pid_file: None,
        },
        ..with_env.clone()
    };
    let c = load_ok(&with_flags).config;
    assert_eq!((c.server.port, c.server.host.as_str()), (9003, "10.0.0.4"));
    assert_eq!(c.server.path, "/x");
    assert_eq!(c.server.hostname.as_deref(), Some("h.test"));
    assert_eq!(c.server.cores, Cores::Count(2));
    assert!(c.server.debug);
    assert_eq!(c.apps[0].ping_interval, 13);
}

#[test]
fn empty_environment_value_falls_back_to_the_layer_below() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "config.toml",
        &format!("[server]\nport = 9000\n{ONE_APP}"),
    );
    write(dir.path(), ".env", "REVERB_SERVER_PORT=9001\n");
    let c = load_ok(&LoadOptions {
        env: env(&[("REVERB_SERVER_PORT", "")]),
        ..opts(dir.path())
    })
    .config;
    assert_eq!(
        c.server.port, 9000,
        "present-but-empty in the process hides .env, then means unset"
    );
}

#[test]
fn laravel_dotenv_configures_like_reverb() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "config.toml", "[server]\nport = 8080\n");
    let dot = write(
        dir.path(),
        "laravel.env",
        "APP_NAME=Laravel\n\
         # Reverb\n\
         REVERB_APP_ID=518000\n\
         export REVERB_APP_KEY=\"abc-key\"\n\
         REVERB_APP_SECRET='s3cr#t'\n\
         REVERB_HOST=\"localhost\"\n\
         REVERB_PORT=8080\n\
         REVERB_SCHEME=http # dev\n\
         REDIS_PASSWORD=null\n\
         REVERB_APP_MAX_CONNECTIONS=\n\
         REVERB_SCALING_ENABLED=(false)\n\
         VITE_REVERB_APP_KEY=\"${REVERB_APP_KEY}\"\n",
    );
    let l = load_ok(&LoadOptions {
        env_file: Some(dot),
        ..opts(dir.path())
    });
    let c = l.config;
    assert_eq!(c.apps.len(), 1);
    let a = &c.apps[0];
    assert_eq!(
        (a.app_id.as_str(), a.key.as_str(), a.secret.as_str()),
        ("518000", "abc-key", "s3cr#t")
    );
    assert_eq!(a.max_connections, None);
    assert_eq!(
        a.options,
        AppOptions {
            host: Some("localhost".into()),
            port: Some(8080),
            scheme: Some("http".into()),
            use_tls: Some(false),
        }
    );
    assert_eq!(c.server.hostname.as_deref(), Some("localhost"));
    assert_eq!(c.scaling.redis.password, None);
    assert!(!c.scaling.enabled);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn env_wins_over_dotenv_in_load() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "config.toml", ONE_APP);
    write(
        dir.path(),
        ".env",
        "REVERB_APP_KEY=from-file\nREVERB_SHARD_DEBUG=true\n",
    );
    let c = load_ok(&LoadOptions {
        env: env(&[("REVERB_APP_KEY", "from-env")]),
        ..opts(dir.path())
    })
    .config;
    assert_eq!(c.apps[0].key, "from-env");
    assert!(c.server.debug);
}

// ---- apps from the environment ---------------------------------------------------------

#[test]
fn reverb_app_vars_create_the_first_app_when_the_file_has_none() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "config.toml", "[server]\nport = 8080\n");
    let c = load_ok(&LoadOptions {
        env: env(&[
            ("REVERB_APP_ID", "7"),
            ("REVERB_APP_KEY", "k7"),
            ("REVERB_APP_SECRET", "s7"),
            ("REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM", "all"),
        ]),
        ..opts(dir.path())
    })
    .config;
    assert_eq!(c.apps.len(), 1);
    let a = &c.apps[0];
    assert_eq!(
        (a.app_id.as_str(), a.key.as_str(), a.secret.as_str()),
        ("7", "k7", "s7")
    );
    assert_eq!(a.accept_client_events_from, ClientEvents::All);
    assert_eq!(a.allowed_origins, vec!["*"]);
    assert_eq!(a.options.port, Some(443));

    let e = load_err(&LoadOptions {
        env: env(&[("REVERB_APP_ID", "7"), ("REVERB_APP_KEY", "k7")]),
        ..opts(dir.path())
    });
    assert!(e.starts_with("REVERB_APP_SECRET is not set"), "{e}");
}

#[test]
fn reverb_app_vars_apply_to_the_first_app_only() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "config.toml",
        &format!("{ONE_APP}\n[[apps]]\napp_id = \"2\"\nkey = \"k2\"\nsecret = \"s2\"\n"),
    );
    let c = load_ok(&LoadOptions {
        env: env(&[("REVERB_APP_MAX_MESSAGE_SIZE", "500")]),
        ..opts(dir.path())
    })
    .config;
    assert_eq!(c.apps[0].max_message_size, 500);
    assert_eq!(c.apps[1].max_message_size, 10_000);
}

#[test]
fn env_can_supply_credentials_the_first_entry_lacks() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "config.toml",
        "[[apps]]\napp_id = \"1\"\nkey = \"k\"\n",
    );
    let c = load_ok(&LoadOptions {
        env: env(&[("REVERB_APP_SECRET", "from-env")]),
        ..opts(dir.path())
    })
    .config;
    assert_eq!(c.apps[0].secret, "from-env");
}

// ---- validation errors -----------------------------------------------------------------

#[test]
fn no_apps_is_an_error_that_says_how_to_add_one() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "config.toml", "[server]\nport = 1\n");
    let e = load_err(&opts(dir.path()));
    assert!(e.starts_with("no apps configured"), "{e}");
    assert!(e.contains("[[apps]]") && e.contains("REVERB_APP_ID"), "{e}");
    let e = load_err(&LoadOptions {
        config_file: Some(write(dir.path(), "empty.toml", "apps = []\n")),
        ..opts(dir.path())
    });
    assert!(e.starts_with("no apps configured"), "{e}");
}

#[test]
fn missing_credentials_name_the_entry_and_line() {
    let dir = TempDir::new().unwrap();
    let p = write(
        dir.path(),
        "config.toml",
        "[server]\nport = 1\n\n[[apps]]\napp_id = \"1\"\nsecret = \"s\"\n",
    );
    let e = load_err(&opts(dir.path()));
    assert_eq!(
        e,
        format!(
            "[[apps]] entry #1 at {} line 4 has no key (the public key clients connect with): \
             add key = \"…\" to it, or set REVERB_APP_KEY",
            p.display()
        )
    );
    write(
        dir.path(),
        "config.toml",
        &format!("{ONE_APP}\n[[apps]]\nkey = \"k2\"\nsecret = \"s2\"\n"),
    );
    let e = load_err(&opts(dir.path()));
    assert!(
        e.contains("[[apps]] entry #2 at") && e.contains("line 6 has no app_id"),
        "{e}"
    );
    assert!(
        !e.contains("REVERB_APP_ID"),
        "env vars only feed the first app: {e}"
    );
    write(
        dir.path(),
        "config.toml",
        "[[apps]]\napp_id = \"1\"\nkey = \"k\"\n",
    );
    let e = load_err(&opts(dir.path()));
    assert!(
        e.contains("line 1 has no secret") && e.contains("REVERB_APP_SECRET"),
        "{e}"
    );
}

#[test]
fn duplicate_keys_and_ids_are_errors_naming_both() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "config.toml",
        &format!("{ONE_APP}\n[[apps]]\napp_id = \"2\"\nkey = \"k1\"\nsecret = \"s2\"\n"),
    );
    let e = load_err(&opts(dir.path()));
    assert!(
        e.starts_with("duplicate app key \"k1\": [[apps]] key at "),
        "{e}"
    );
    assert!(
        e.contains("line 3 and [[apps]] key at") && e.contains("line 8 both use it"),
        "{e}"
    );

    write(
        dir.path(),
        "config.toml",
        &format!("{ONE_APP}\n[[apps]]\napp_id = \"1\"\nkey = \"k2\"\nsecret = \"s2\"\n"),
    );
    let e = load_err(&opts(dir.path()));
    assert!(e.starts_with("duplicate app app_id \"1\""), "{e}");
    assert!(
        e.contains("line 2 and") && e.contains("line 7 both use it"),
        "{e}"
    );

    // A duplicate introduced by the environment names the variable.
    write(
        dir.path(),
        "config.toml",
        &format!("{ONE_APP}\n[[apps]]\napp_id = \"2\"\nkey = \"k2\"\nsecret = \"s2\"\n"),
    );
    let e = load_err(&LoadOptions {
        env: env(&[("REVERB_APP_KEY", "k2")]),
        ..opts(dir.path())
    });
    assert!(
        e.contains("REVERB_APP_KEY (from the environment) and [[apps]] key at"),
        "{e}"
    );
}

#[test]
fn toml_errors_through_load_name_file_key_and_line() {
    let dir = TempDir::new().unwrap();
    let p = write(
        dir.path(),
        "config.toml",
        "[server]\nport = 8080\n\n[[apps]]\napp_id = \"1\"\nkey = \"k\"\nsecret = \"s\"\nmax_message_size = -5\n",
    );
    let e = load_err(&opts(dir.path()));
    assert_eq!(
        e,
        format!(
            "{} line 8: [[apps]] max_message_size = -5: expected a positive integer (bytes)",
            p.display()
        )
    );
    write(
        dir.path(),
        "config.toml",
        &format!("{ONE_APP}[server]\nverbose = true\n"),
    );
    let e = load_err(&opts(dir.path()));
    assert!(
        e.contains("config.toml line 6: unknown key `verbose` in [server]"),
        "{e}"
    );
}

#[test]
fn env_errors_through_load_name_the_variable() {
    let dir = TempDir::new().unwrap();
    let e = load_err(&LoadOptions {
        env: env(&[("REVERB_SERVER_PORT", "abc")]),
        ..opts(dir.path())
    });
    assert!(
        e.starts_with("REVERB_SERVER_PORT=abc (from the environment): expected a port number"),
        "{e}"
    );
    let dot = write(dir.path(), ".env", "\nREVERB_SHARD_CORES=lots\n");
    let e = load_err(&opts(dir.path()));
    assert_eq!(
        e,
        format!(
            "REVERB_SHARD_CORES=lots (from {} line 2): expected \"auto\" or a whole number of shards >= 1",
            dot.display()
        )
    );
}

#[test]
fn port_zero_is_allowed() {
    let dir = TempDir::new().unwrap();
    let c = load_ok(&LoadOptions {
        env: env(&[("REVERB_SERVER_PORT", "0")]),
        ..opts(dir.path())
    })
    .config;
    assert_eq!(c.server.port, 0);
}

#[test]
fn tls_files_are_resolved_and_must_be_readable() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "cert.pem", "-----BEGIN CERTIFICATE-----\n");
    write(
        dir.path(),
        "config.toml",
        &format!("{ONE_APP}[server.tls]\nlocal_cert = \"cert.pem\"\nverify_peer = false\n"),
    );
    let l = load_ok(&opts(dir.path()));
    assert_eq!(
        l.config.server.tls.local_cert,
        Some(dir.path().join("cert.pem"))
    );
    assert!(
        l.warnings.iter().any(|w| w.contains("verify_peer")),
        "{:?}",
        l.warnings
    );

    let p = write(
        dir.path(),
        "config.toml",
        &format!("{ONE_APP}[server.tls]\nlocal_cert = \"missing.pem\"\n"),
    );
    let e = load_err(&opts(dir.path()));
    assert!(
        e.starts_with(&format!(
            "{} line 6: [server.tls] local_cert = \"missing.pem\": cannot read {}",
            p.display(),
            dir.path().join("missing.pem").display()
        )),
        "{e}"
    );
    assert!(e.contains("expected a readable PEM file"), "{e}");

    write(dir.path(), "config.toml", ONE_APP);
    let e = load_err(&LoadOptions {
        env: env(&[("REVERB_SHARD_TLS_KEY", "/nonexistent/key.pem")]),
        ..opts(dir.path())
    });
    assert!(e.starts_with("REVERB_SHARD_TLS_KEY=/nonexistent/key.pem (from the environment): local_pk is set but local_cert is not"), "{e}");
    let e = load_err(&LoadOptions {
        env: env(&[
            ("REVERB_SHARD_TLS_CERT", "cert.pem"),
            ("REVERB_SHARD_TLS_KEY", "/nonexistent/key.pem"),
        ]),
        ..opts(dir.path())
    });
    assert!(
        e.starts_with(
            "REVERB_SHARD_TLS_KEY=/nonexistent/key.pem (from the environment): cannot read"
        ),
        "{e}"
    );
}

#[test]
fn pid_file_is_resolved_against_cwd() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "config.toml",
        &format!("[server]\npid_file = \"run/rs.pid\"\n{ONE_APP}"),
    );
    let c = load_ok(&opts(dir.path())).config;
    assert_eq!(c.server.pid_file, Some(dir.path().join("run/rs.pid")));
}

#[test]
fn redis_url_is_checked_only_when_scaling_is_on() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "config.toml", ONE_APP);
    let bad = env(&[("REDIS_URL", "redis://u:hunter2@h:port/0")]);
    load_ok(&LoadOptions {
        env: bad.clone(),
        ..opts(dir.path())
    });
    let mut on = bad;
    on.insert("REVERB_SCALING_ENABLED".into(), "true".into());
    let e = load_err(&LoadOptions {
        env: on,
        ..opts(dir.path())
    });
    assert!(
        e.starts_with("REDIS_URL=redis://u:***@h:port/0 (from the environment): invalid port"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn use_tls_is_derived_from_scheme_when_absent() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "config.toml",
        &format!("{ONE_APP}[apps.options]\nscheme = \"https\"\n"),
    );
    let c = load_ok(&opts(dir.path())).config;
    assert_eq!(c.apps[0].options.use_tls, Some(true));
    assert_eq!(c.apps[0].options.port, None);
}

// ---- helpers of the public API -----------------------------------------------------------

#[test]
fn path_normalisation() {
    for (input, want) in [
        ("", ""),
        ("/", ""),
        ("ws", "/ws"),
        ("/ws", "/ws"),
        ("ws/", "/ws"),
        ("/ws/", "/ws"),
        ("//a//b/", "/a/b"),
        (" /api/v1 ", "/api/v1"),
    ] {
        assert_eq!(normalize_path(input), want, "{input:?}");
    }
}

#[test]
fn cores_parse() {
    assert_eq!(Cores::parse("auto"), Ok(Cores::Auto));
    assert_eq!(Cores::parse("AUTO"), Ok(Cores::Auto));
    assert_eq!(Cores::parse("4"), Ok(Cores::Count(4)));
    assert!(Cores::parse("0")
        .unwrap_err()
        .contains("\"auto\" or a whole number"));
    assert!(Cores::parse("-1").is_err());
    assert!(Cores::parse("two").is_err());
}

#[test]
fn client_events_parse() {
    assert_eq!(ClientEvents::parse("members"), ClientEvents::Members);
    assert_eq!(ClientEvents::parse("all"), ClientEvents::All);
    assert_eq!(
        ClientEvents::parse("none"),
        ClientEvents::Disabled("none".into())
    );
}

#[test]
fn app_config_new_has_the_spec_defaults() {
    let a = AppConfig::new("1", "k", "s");
    assert_eq!(a.allowed_origins, vec!["*"]);
    assert_eq!(
        (a.ping_interval, a.activity_timeout, a.max_message_size),
        (60, 30, 10_000)
    );
    assert_eq!(a.max_connections, None);
    assert_eq!(a.accept_client_events_from, ClientEvents::Members);
    assert_eq!(a.rate_limiting, RateLimiting::default());
    assert_eq!(a.options, AppOptions::default());
}
