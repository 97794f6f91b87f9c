//! Configuration: the types the server runs on, their defaults (config.md §1–§2.3) and
//! [`load`], which layers the sources of config.md §2.1 — built-in defaults < TOML file <
//! dotenv file < process environment < command-line flags — and validates the result.
//!
//! Each source lives in its own file: `toml_file.rs` (the TOML layer, with line numbers
//! for errors), `dotenv.rs` (Laravel `.env` syntax), `env.rs` (the `REVERB_*`/`REDIS_*`
//! mapping and Laravel's `env()` value rules), `flags.rs` (command-line overrides) and
//! `validate.rs` (the checks that need every layer applied). `draft.rs` holds the
//! work-in-progress configuration with the provenance used in error messages.

mod dotenv;
mod draft;
mod env;
mod error;
mod flags;
mod forms;
mod redis_url;
mod toml_file;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use error::ConfigError;
pub use redis_url::RedisEndpoint;

/// The shipped, documented `config.toml`; used when there is no `--config` and no
/// `./config.toml`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config.toml");

/// The effective configuration of one process.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub scaling: ScalingConfig,
    pub apps: Vec<AppConfig>,
    pub pulse: PulseConfig,
}

/// `[server]`: the process (Reverb's `servers.reverb` plus reverb-shard's own keys).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Normalised: `""` or `"/segment[/more]"` (no trailing slash).
    pub path: String,
    pub hostname: Option<String>,
    pub max_request_size: usize,
    pub pulse_ingest_interval: u64,
    pub telescope_ingest_interval: u64,
    pub tls: TlsConfig,
    pub cores: Cores,
    pub debug: bool,
    /// Seconds a stopping/restarting process drains before it force-closes.
    pub shutdown_timeout: u64,
    /// Bytes queued per connection before it counts as a slow consumer.
    pub outbound_buffer: usize,
    pub pusher_limits: bool,
    /// `None` = the default location (operations.md §3), decided by the caller.
    pub pid_file: Option<PathBuf>,
    pub restart_mode: RestartMode,
    pub metrics: bool,
    pub metrics_token: Option<String>,
}

/// `[server.tls]`: TLS is on iff `local_cert` or `local_pk` is set. Relative paths are
/// resolved against [`LoadOptions::cwd`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsConfig {
    pub local_cert: Option<PathBuf>,
    pub local_pk: Option<PathBuf>,
    pub passphrase: Option<String>,
}

/// Number of shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cores {
    /// One shard per CPU in the process's affinity mask.
    Auto,
    /// Always >= 1.
    Count(usize),
}

/// What SIGHUP does (operations.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartMode {
    Handover,
    Exit,
}

/// `[scaling]`: Redis pub/sub between nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingConfig {
    pub enabled: bool,
    pub channel: String,
    pub redis: RedisConfig,
    /// `None` = random per start.
    pub node_id: Option<String>,
    /// Presence across nodes (scaling.md §6).
    pub presence: PresenceScope,
}

/// `[scaling] presence`: whose members a presence channel lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceScope {
    /// Members of the whole fleet (reverb-shard nodes share joins and leaves).
    Fleet,
    /// Members on this node only, like Reverb (for fleets mixed with Reverb nodes).
    Node,
}

impl PresenceScope {
    /// `"fleet"` or `"node"` (case-insensitive).
    pub fn parse(s: &str) -> Result<PresenceScope, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fleet" => Ok(PresenceScope::Fleet),
            "node" => Ok(PresenceScope::Node),
            _ => Err(format!(
                "invalid presence {s:?}: expected \"fleet\" or \"node\""
            )),
        }
    }
}

/// `[scaling.redis]`. When `url` is set its parts override the other fields; use
/// [`RedisConfig::endpoint`] for the effective target.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {
    pub url: Option<String>,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub database: u32,
    /// Reconnection window: number of 1-second retries.
    pub timeout: u64,
}

/// `[pulse]`: the optional direct Pulse writer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PulseConfig {
    pub database_url: Option<String>,
}

/// One `[[apps]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AppConfig {
    pub app_id: String,
    pub key: String,
    pub secret: String,
    pub allowed_origins: Vec<String>,
    pub ping_interval: u64,
    pub activity_timeout: u64,
    pub max_connections: Option<u64>,
    pub max_message_size: usize,
    pub accept_client_events_from: ClientEvents,
    pub rate_limiting: RateLimiting,
    pub options: AppOptions,
}

/// `accept_client_events_from`: `members`, `all`, any other string disables client events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvents {
    Members,
    All,
    /// Client events are refused; keeps the configured string.
    Disabled(String),
}

/// `[apps.rate_limiting]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimiting {
    pub enabled: bool,
    pub max_attempts: u32,
    pub decay_seconds: u64,
    pub terminate_on_limit: bool,
}

/// `[apps.options]`: where Laravel and clients reach the server (informational; not used
/// by the server itself). TOML key of `use_tls` is `useTLS`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppOptions {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub scheme: Option<String>,
    pub use_tls: Option<bool>,
}

/// Command-line overrides (highest precedence). `None` = not given.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub hostname: Option<String>,
    pub cores: Option<Cores>,
    pub debug: bool,
    /// `--pid-file`: where `start` writes its pid and `restart` looks.
    pub pid_file: Option<PathBuf>,
}

/// Where [`load`] reads from.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--config`: must exist.
    pub config_file: Option<PathBuf>,
    /// `--env-file`: must exist.
    pub env_file: Option<PathBuf>,
    /// Where `./config.toml` and `./.env` are looked for when the options above are
    /// `None`; relative TLS and pid-file paths are resolved against it.
    pub cwd: PathBuf,
    /// Snapshot of the process environment.
    pub env: HashMap<String, String>,
    pub flags: Flags,
}

/// The result of [`load`].
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// Human-readable list of what was read, lowest precedence first.
    pub sources: Vec<String>,
    pub warnings: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "0.0.0.0".to_string(),
            port: 8080,
            path: String::new(),
            hostname: None,
            max_request_size: 10_000,
            pulse_ingest_interval: 15,
            telescope_ingest_interval: 15,
            tls: TlsConfig::default(),
            cores: Cores::Auto,
            debug: false,
            shutdown_timeout: 10,
            outbound_buffer: 1_048_576,
            pusher_limits: true,
            pid_file: None,
            restart_mode: RestartMode::Handover,
            metrics: true,
            metrics_token: None,
        }
    }
}

impl Default for ScalingConfig {
    fn default() -> Self {
        ScalingConfig {
            enabled: false,
            channel: "reverb".to_string(),
            redis: RedisConfig::default(),
            node_id: None,
            presence: PresenceScope::Fleet,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            host: "127.0.0.1".to_string(),
            port: 6379,
            username: None,
            password: None,
            database: 0,
            timeout: 60,
        }
    }
}

impl Default for RateLimiting {
    fn default() -> Self {
        RateLimiting {
            enabled: false,
            max_attempts: 60,
            decay_seconds: 60,
            terminate_on_limit: false,
        }
    }
}

impl AppConfig {
    /// An app with the given credentials and every other setting at its default.
    pub fn new(
        app_id: impl Into<String>,
        key: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        AppConfig {
            app_id: app_id.into(),
            key: key.into(),
            secret: secret.into(),
            allowed_origins: vec!["*".to_string()],
            ping_interval: 60,
            activity_timeout: 30,
            max_connections: None,
            max_message_size: 10_000,
            accept_client_events_from: ClientEvents::Members,
            rate_limiting: RateLimiting::default(),
            options: AppOptions::default(),
        }
    }
}

impl ClientEvents {
    /// `"members"` → `Members`, `"all"` → `All`, anything else → `Disabled` (exact match,
    /// as Reverb).
    pub fn parse(s: &str) -> ClientEvents {
        match s {
            "members" => ClientEvents::Members,
            "all" => ClientEvents::All,
            other => ClientEvents::Disabled(other.to_string()),
        }
    }
}

impl Cores {
    /// `"auto"` or an integer >= 1 (also used by the CLI flag parser).
    pub fn parse(s: &str) -> Result<Cores, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("auto") {
            return Ok(Cores::Auto);
        }
        match t.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Cores::Count(n)),
            _ => Err(format!(
                "invalid cores value {s:?}: expected \"auto\" or a whole number of shards >= 1"
            )),
        }
    }
}

impl RestartMode {
    /// `"handover"` or `"exit"` (case-insensitive).
    pub fn parse(s: &str) -> Result<RestartMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "handover" => Ok(RestartMode::Handover),
            "exit" => Ok(RestartMode::Exit),
            _ => Err(format!(
                "invalid restart_mode {s:?}: expected \"handover\" or \"exit\""
            )),
        }
    }
}

/// Normalises a route prefix: `""` or `"/segment[/more]"`, no trailing slash, no empty
/// segments. `"ws"`, `"/ws"`, `"ws/"` → `"/ws"`; `"/"` → `""`.
pub fn normalize_path(p: &str) -> String {
    let mut out = String::new();
    for segment in p.trim().split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(segment);
    }
    out
}

/// Reads every source, applies them in precedence order and validates the result.
pub fn load(opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let mut sources = Vec::new();
    let mut warnings = Vec::new();
    let mut draft = draft::Draft::default();

    // 2. TOML file: --config, else ./config.toml, else the embedded default.
    let cwd_config = opts.cwd.join("config.toml");
    let (label, text) = if let Some(path) = &opts.config_file {
        sources.push(format!("config file {}", display(path)));
        (display(path), read_required(path, "--config")?)
    } else if cwd_config.exists() {
        sources.push(format!("config file {}", display(&cwd_config)));
        (
            display(&cwd_config),
            read_required(&cwd_config, "config file")?,
        )
    } else {
        sources.push("embedded default configuration".to_string());
        (
            "embedded default config.toml".to_string(),
            EMBEDDED_DEFAULT.to_string(),
        )
    };
    toml_file::apply(&text, &label, &mut draft, &mut warnings)?;

    // 3. dotenv file (its values lose against the process environment).
    let env_file = match &opts.env_file {
        Some(path) => Some((display(path), read_required(path, "--env-file")?)),
        None => {
            let path = opts.cwd.join(".env");
            if path.exists() {
                Some((display(&path), read_required(&path, "env file")?))
            } else {
                None
            }
        }
    };
    let dotenv_entries = match &env_file {
        Some((label, text)) => {
            sources.push(format!("env file {label}"));
            Some((
                label.as_str(),
                dotenv::parse(text, label, &opts.env, &mut warnings)?,
            ))
        }
        None => None,
    };

    // 4. process environment.
    let vars = env::EnvVars::collect(dotenv_entries, &opts.env);
    let from_process = vars.known_from_process();
    if !from_process.is_empty() {
        sources.push(format!("environment: {}", from_process.join(", ")));
    }
    env::apply(&vars, &mut draft, &mut warnings)?;

    // 5. command-line flags.
    let given = flags::apply(&opts.flags, &mut draft)?;
    if !given.is_empty() {
        sources.push(format!("command-line flags: {}", given.join(", ")));
    }

    let config = validate::finish(draft, &opts.cwd, &mut warnings)?;
    Ok(Loaded {
        config,
        sources,
        warnings,
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn read_required(path: &Path, what: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(format!(
            "{what} {}: cannot read the file: {e}",
            path.display()
        ))
    })
}
