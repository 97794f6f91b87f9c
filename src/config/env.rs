//! The environment layer: the `REVERB_*`/`REDIS_*` variables of config.md §2.2–§2.3, from
//! the dotenv file and the process environment (a variable present in the process wins),
//! read with Laravel's `env()` rules (§1.3): `null`/`empty` (optionally in parentheses,
//! any case) and the empty string mean unset, `true`/`false` are booleans, one pair of
//! surrounding quotes is removed. `REVERB_APP_*` apply to the first app and create it when
//! the TOML defined none. Unknown variables are ignored.

use std::collections::HashMap;

use super::dotenv::Entry;
use super::draft::{AppDraft, Draft, Origin, Tracked};
use super::forms::{self, IntForm};
use super::toml_file::client_events_warning;
use super::{ClientEvents, ConfigError, Cores, PresenceScope, RestartMode};

const REVERB_APP_ID: &str = "REVERB_APP_ID";
const REVERB_APP_KEY: &str = "REVERB_APP_KEY";
const REVERB_APP_SECRET: &str = "REVERB_APP_SECRET";

/// Variables that configure the first app (any of them creates it when there is none).
const APP_VARS: &[&str] = &[
    REVERB_APP_ID,
    REVERB_APP_KEY,
    REVERB_APP_SECRET,
    "REVERB_APP_PING_INTERVAL",
    "REVERB_APP_ACTIVITY_TIMEOUT",
    "REVERB_APP_MAX_CONNECTIONS",
    "REVERB_APP_MAX_MESSAGE_SIZE",
    "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM",
    "REVERB_APP_RATE_LIMITING_ENABLED",
    "REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS",
    "REVERB_APP_RATE_LIMIT_DECAY_SECONDS",
    "REVERB_APP_RATE_LIMIT_TERMINATE",
];

/// Every other variable read here.
const OTHER_VARS: &[&str] = &[
    "REVERB_SERVER",
    "REVERB_SERVER_HOST",
    "REVERB_SERVER_PORT",
    "REVERB_SERVER_PATH",
    "REVERB_HOST",
    "REVERB_PORT",
    "REVERB_SCHEME",
    "REVERB_MAX_REQUEST_SIZE",
    "REVERB_PULSE_INGEST_INTERVAL",
    "REVERB_TELESCOPE_INGEST_INTERVAL",
    "REVERB_SHARD_TLS_CERT",
    "REVERB_SHARD_TLS_KEY",
    "REVERB_SHARD_TLS_PASSPHRASE",
    "REVERB_SCALING_ENABLED",
    "REVERB_SCALING_CHANNEL",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_USERNAME",
    "REDIS_PASSWORD",
    "REDIS_DB",
    "REDIS_TIMEOUT",
    "REVERB_SHARD_CORES",
    "REVERB_SHARD_DEBUG",
    "REVERB_SHARD_SHUTDOWN_TIMEOUT",
    "REVERB_SHARD_OUTBOUND_BUFFER",
    "REVERB_SHARD_PUSHER_LIMITS",
    "REVERB_SHARD_PID_FILE",
    "REVERB_SHARD_RESTART_MODE",
    "REVERB_SHARD_METRICS",
    "REVERB_SHARD_METRICS_TOKEN",
    "REVERB_SHARD_NODE_ID",
    "REVERB_SHARD_PRESENCE",
    "REVERB_SHARD_PULSE_DATABASE_URL",
];

fn is_known(name: &str) -> bool {
    APP_VARS.contains(&name) || OTHER_VARS.contains(&name)
}

/// Laravel `env()`: `None` for unset (`null`, `empty`, `""`), else the value with one
/// pair of surrounding quotes removed; `(true)`/`(false)` become `true`/`false`.
pub(super) fn interpret(raw: &str) -> Option<String> {
    let value = match raw.to_ascii_lowercase().as_str() {
        "null" | "(null)" | "empty" | "(empty)" => return None,
        "true" | "(true)" => "true".to_string(),
        "false" | "(false)" => "false".to_string(),
        _ => {
            let b = raw.as_bytes();
            if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
                raw[1..raw.len() - 1].to_string()
            } else {
                raw.to_string()
            }
        }
    };
    Some(value).filter(|v| !v.is_empty())
}

/// One variable as found: raw value and where.
#[derive(Debug, Clone)]
struct EnvVar {
    raw: String,
    /// "the environment" or "/app/.env line 3".
    from: String,
    from_process: bool,
}

/// The known variables of the dotenv file and the process environment, merged.
#[derive(Debug, Default)]
pub(super) struct EnvVars {
    map: HashMap<String, EnvVar>,
}

impl EnvVars {
    /// Merges the dotenv entries (`label` = the file) and the process environment; a
    /// variable present in the process environment wins, even when empty.
    pub fn collect(dotenv: Option<(&str, Vec<Entry>)>, process: &HashMap<String, String>) -> Self {
        let mut map = HashMap::new();
        if let Some((label, entries)) = dotenv {
            for e in entries.into_iter().filter(|e| is_known(&e.name)) {
                let from = format!("{label} line {}", e.line);
                map.insert(
                    e.name,
                    EnvVar {
                        raw: e.value,
                        from,
                        from_process: false,
                    },
                );
            }
        }
        for (name, raw) in process.iter().filter(|(n, _)| is_known(n)) {
            map.insert(
                name.clone(),
                EnvVar {
                    raw: raw.clone(),
                    from: "the environment".to_string(),
                    from_process: true,
                },
            );
        }
        EnvVars { map }
    }

    /// Names of the known variables set (non-empty) in the process environment, sorted.
    pub fn known_from_process(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .map
            .iter()
            .filter(|(_, v)| v.from_process && interpret(&v.raw).is_some())
            .map(|(k, _)| k.clone())
            .collect();
        names.sort();
        names
    }

    fn string(&self, name: &str) -> Option<String> {
        self.map.get(name).and_then(|v| interpret(&v.raw))
    }

    fn origin(&self, name: &str) -> Origin {
        let from = self
            .map
            .get(name)
            .map_or_else(|| "the environment".to_string(), |v| v.from.clone());
        Origin::Env {
            var: name.to_string(),
            from,
        }
    }

    fn bad(&self, name: &str, expected: &str) -> ConfigError {
        let raw = self.map.get(name).map_or("", |v| v.raw.as_str());
        ConfigError::new(format!(
            "{}: expected {expected}",
            self.origin(name).show(raw)
        ))
    }

    /// A set variable converted by `parse`; `None` from `parse` is an error.
    fn parsed<T>(
        &self,
        name: &str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.string(name) {
            None => Ok(None),
            Some(s) => parse(&s).map(Some).ok_or_else(|| self.bad(name, expected)),
        }
    }

    fn int(&self, name: &str, form: &IntForm) -> Result<Option<u64>, ConfigError> {
        self.parsed(name, form.expected, |s| form.accept_str(s))
    }

    fn size(&self, name: &str, form: &IntForm) -> Result<Option<usize>, ConfigError> {
        Ok(self
            .int(name, form)?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        self.parsed(
            name,
            "true or false (also 1/0, yes/no, on/off)",
            forms::parse_bool,
        )
    }
}

/// Applies the variables to the draft.
pub(super) fn apply(
    v: &EnvVars,
    d: &mut Draft,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    if let Some(driver) = v.string("REVERB_SERVER") {
        if driver != "reverb" {
            return Err(v.bad("REVERB_SERVER", "\"reverb\" (the only server driver)"));
        }
    }
    apply_server(v, d)?;
    apply_scaling(v, d)?;
    if let Some(url) = v.string("REVERB_SHARD_PULSE_DATABASE_URL") {
        d.pulse.database_url = Some(url);
    }
    apply_first_app(v, d, warnings)
}

fn apply_server(v: &EnvVars, d: &mut Draft) -> Result<(), ConfigError> {
    let s = &mut d.server;
    if let Some(x) = v.string("REVERB_SERVER_HOST") {
        s.host = x;
    }
    if let Some(x) = v.int("REVERB_SERVER_PORT", &forms::PORT)? {
        s.port = x as u16;
    }
    if let Some(x) = v.parsed("REVERB_SERVER_PATH", forms::PATH, forms::parse_path)? {
        s.path = x;
    }
    if let Some(x) = v.string("REVERB_HOST") {
        s.hostname = Some(x);
    }
    if let Some(x) = v.size("REVERB_MAX_REQUEST_SIZE", &forms::BYTES)? {
        s.max_request_size = x;
    }
    if let Some(x) = v.int("REVERB_PULSE_INGEST_INTERVAL", &forms::POSITIVE_SECONDS)? {
        s.pulse_ingest_interval = x;
    }
    if let Some(x) = v.int("REVERB_TELESCOPE_INGEST_INTERVAL", &forms::POSITIVE_SECONDS)? {
        s.telescope_ingest_interval = x;
    }
    if let Some(x) = v.string("REVERB_SHARD_TLS_CERT") {
        s.tls.local_cert = Some(x.into());
        d.origins
            .insert(Tracked::TlsCert, v.origin("REVERB_SHARD_TLS_CERT"));
    }
    if let Some(x) = v.string("REVERB_SHARD_TLS_KEY") {
        s.tls.local_pk = Some(x.into());
        d.origins
            .insert(Tracked::TlsKey, v.origin("REVERB_SHARD_TLS_KEY"));
    }
    if let Some(x) = v.string("REVERB_SHARD_TLS_PASSPHRASE") {
        s.tls.passphrase = Some(x);
    }
    if let Some(x) = v.parsed("REVERB_SHARD_CORES", forms::CORES, |s| Cores::parse(s).ok())? {
        s.cores = x;
    }
    if let Some(x) = v.boolean("REVERB_SHARD_DEBUG")? {
        s.debug = x;
    }
    if let Some(x) = v.int("REVERB_SHARD_SHUTDOWN_TIMEOUT", &forms::SECONDS)? {
        s.shutdown_timeout = x;
    }
    if let Some(x) = v.size("REVERB_SHARD_OUTBOUND_BUFFER", &forms::BYTES)? {
        s.outbound_buffer = x;
    }
    if let Some(x) = v.boolean("REVERB_SHARD_PUSHER_LIMITS")? {
        s.pusher_limits = x;
    }
    if let Some(x) = v.string("REVERB_SHARD_PID_FILE") {
        s.pid_file = Some(x.into());
        d.origins
            .insert(Tracked::PidFile, v.origin("REVERB_SHARD_PID_FILE"));
    }
    if let Some(x) = v.parsed("REVERB_SHARD_RESTART_MODE", forms::RESTART_MODE, |s| {
        RestartMode::parse(s).ok()
    })? {
        s.restart_mode = x;
    }
    if let Some(x) = v.boolean("REVERB_SHARD_METRICS")? {
        s.metrics = x;
    }
    if let Some(x) = v.string("REVERB_SHARD_METRICS_TOKEN") {
        s.metrics_token = Some(x);
    }
    Ok(())
}

fn apply_scaling(v: &EnvVars, d: &mut Draft) -> Result<(), ConfigError> {
    let sc = &mut d.scaling;
    if let Some(x) = v.boolean("REVERB_SCALING_ENABLED")? {
        sc.enabled = x;
    }
    if let Some(x) = v.string("REVERB_SCALING_CHANNEL") {
        sc.channel = x;
    }
    if let Some(x) = v.string("REVERB_SHARD_NODE_ID") {
        sc.node_id = Some(x);
    }
    if let Some(x) = v.parsed("REVERB_SHARD_PRESENCE", forms::PRESENCE_SCOPE, |s| {
        PresenceScope::parse(s).ok()
    })? {
        sc.presence = x;
    }
    let r = &mut sc.redis;
    if let Some(x) = v.string("REDIS_URL") {
        r.url = Some(x);
        d.origins.insert(Tracked::RedisUrl, v.origin("REDIS_URL"));
    }
    if let Some(x) = v.string("REDIS_HOST") {
        r.host = x;
    }
    if let Some(x) = v.int("REDIS_PORT", &forms::REMOTE_PORT)? {
        r.port = x as u16;
    }
    if let Some(x) = v.string("REDIS_USERNAME") {
        r.username = Some(x);
    }
    if let Some(x) = v.string("REDIS_PASSWORD") {
        r.password = Some(x);
    }
    if let Some(x) = v.int("REDIS_DB", &forms::DATABASE)? {
        r.database = x as u32;
    }
    if let Some(x) = v.int("REDIS_TIMEOUT", &forms::SECONDS)? {
        r.timeout = x;
    }
    Ok(())
}

fn apply_first_app(
    v: &EnvVars,
    d: &mut Draft,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    if d.apps.is_empty() {
        let set: Vec<&str> = APP_VARS
            .iter()
            .copied()
            .filter(|n| v.string(n).is_some())
            .collect();
        let Some(first_set) = set.first() else {
            return Ok(());
        };
        for required in [REVERB_APP_ID, REVERB_APP_KEY, REVERB_APP_SECRET] {
            if v.string(required).is_none() {
                return Err(ConfigError::new(format!(
                    "{required} is not set: {} is set and the configuration file has no \
                     [[apps]] entry, so the app is defined by the REVERB_APP_* variables, \
                     which needs REVERB_APP_ID, REVERB_APP_KEY and REVERB_APP_SECRET \
                     (or add an [[apps]] entry to config.toml)",
                    v.origin(first_set).place()
                )));
            }
        }
        let mut app = AppDraft::new("the app defined by the REVERB_APP_* variables".to_string());
        // Laravel's config/reverb.php defaults for the env-defined app.
        app.app.options.port = Some(443);
        app.app.options.scheme = Some("https".to_string());
        app.app.options.use_tls = Some(true);
        d.apps.push(app);
    }
    let Some(first) = d.apps.first_mut() else {
        return Ok(());
    };
    let a = &mut first.app;
    if let Some(x) = v.string(REVERB_APP_ID) {
        a.app_id = x;
        first.app_id_from = Some(v.origin(REVERB_APP_ID));
    }
    if let Some(x) = v.string(REVERB_APP_KEY) {
        a.key = x;
        first.key_from = Some(v.origin(REVERB_APP_KEY));
    }
    if let Some(x) = v.string(REVERB_APP_SECRET) {
        a.secret = x;
        first.secret_from = Some(v.origin(REVERB_APP_SECRET));
    }
    if let Some(x) = v.int("REVERB_APP_PING_INTERVAL", &forms::POSITIVE_SECONDS)? {
        a.ping_interval = x;
    }
    if let Some(x) = v.int("REVERB_APP_ACTIVITY_TIMEOUT", &forms::SECONDS)? {
        a.activity_timeout = x;
    }
    if let Some(x) = v.int("REVERB_APP_MAX_CONNECTIONS", &forms::MAX_CONNECTIONS)? {
        a.max_connections = Some(x);
    }
    if let Some(x) = v.size("REVERB_APP_MAX_MESSAGE_SIZE", &forms::BYTES)? {
        a.max_message_size = x;
    }
    if let Some(x) = v.string("REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM") {
        if let Some(w) = client_events_warning(&x) {
            let place = v.origin("REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM").place();
            warnings.push(format!("{place}: {w}"));
        }
        a.accept_client_events_from = ClientEvents::parse(&x);
    }
    let rl = &mut a.rate_limiting;
    if let Some(x) = v.boolean("REVERB_APP_RATE_LIMITING_ENABLED")? {
        rl.enabled = x;
    }
    if let Some(x) = v.int("REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS", &forms::ATTEMPTS)? {
        rl.max_attempts = x as u32;
    }
    if let Some(x) = v.int(
        "REVERB_APP_RATE_LIMIT_DECAY_SECONDS",
        &forms::POSITIVE_SECONDS,
    )? {
        rl.decay_seconds = x;
    }
    if let Some(x) = v.boolean("REVERB_APP_RATE_LIMIT_TERMINATE")? {
        rl.terminate_on_limit = x;
    }
    let o = &mut a.options;
    if let Some(x) = v.string("REVERB_HOST") {
        o.host = Some(x);
    }
    if let Some(x) = v.int("REVERB_PORT", &forms::REMOTE_PORT)? {
        o.port = Some(x as u16);
    }
    if let Some(x) = v.string("REVERB_SCHEME") {
        // Laravel: 'useTLS' => env('REVERB_SCHEME', 'https') === 'https'
        o.use_tls = Some(x == "https");
        o.scheme = Some(x);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(process: &[(&str, &str)], dotenv: &[(&str, &str)]) -> EnvVars {
        let p: HashMap<String, String> = process
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let entries = dotenv
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Entry {
                name: k.to_string(),
                value: v.to_string(),
                line: i + 1,
            })
            .collect();
        EnvVars::collect(Some(("/app/.env", entries)), &p)
    }

    fn apply_err(process: &[(&str, &str)], dotenv: &[(&str, &str)]) -> String {
        let mut d = Draft::default();
        apply(&vars(process, dotenv), &mut d, &mut Vec::new())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn laravel_keywords_and_quotes() {
        assert_eq!(interpret("null"), None);
        assert_eq!(interpret("(NULL)"), None);
        assert_eq!(interpret("empty"), None);
        assert_eq!(interpret("(empty)"), None);
        assert_eq!(interpret(""), None);
        assert_eq!(interpret("\"\""), None);
        assert_eq!(interpret("(true)").as_deref(), Some("true"));
        assert_eq!(interpret("FALSE").as_deref(), Some("false"));
        assert_eq!(interpret("'quoted'").as_deref(), Some("quoted"));
        assert_eq!(interpret("\"q\"").as_deref(), Some("q"));
        assert_eq!(interpret("\"mismatch'").as_deref(), Some("\"mismatch'"));
        assert_eq!(interpret("plain").as_deref(), Some("plain"));
    }

    #[test]
    fn process_environment_wins_over_dotenv_even_when_empty() {
        let v = vars(
            &[("REVERB_SERVER_PORT", "9001"), ("REVERB_SERVER_HOST", "")],
            &[
                ("REVERB_SERVER_PORT", "9000"),
                ("REVERB_SERVER_HOST", "1.2.3.4"),
            ],
        );
        let mut d = Draft::default();
        apply(&v, &mut d, &mut Vec::new()).unwrap();
        assert_eq!(d.server.port, 9001);
        assert_eq!(d.server.host, "0.0.0.0"); // empty = unset → the layer below
        assert_eq!(v.known_from_process(), vec!["REVERB_SERVER_PORT"]);
    }

    #[test]
    fn keywords_in_values() {
        let v = vars(
            &[],
            &[
                ("REVERB_SCALING_ENABLED", "(true)"),
                ("REDIS_PASSWORD", "null"),
                ("REVERB_SHARD_PUSHER_LIMITS", "false"),
                ("REVERB_APP_MAX_CONNECTIONS", ""),
            ],
        );
        let mut d = Draft::default();
        d.apps.push(AppDraft::new("test".into()));
        apply(&v, &mut d, &mut Vec::new()).unwrap();
        assert!(d.scaling.enabled);
        assert_eq!(d.scaling.redis.password, None);
        assert!(!d.server.pusher_limits);
        assert_eq!(d.apps[0].app.max_connections, None);
    }

    #[test]
    fn errors_name_the_variable_value_and_source() {
        let e = apply_err(&[("REVERB_SERVER_PORT", "abc")], &[]);
        assert_eq!(
            e,
            "REVERB_SERVER_PORT=abc (from the environment): expected a port number 0-65535 \
             (0 = any free port)"
        );
        let e = apply_err(&[], &[("X", "1"), ("REVERB_SHARD_CORES", "0")]);
        assert!(
            e.starts_with("REVERB_SHARD_CORES=0 (from /app/.env line 2): expected \"auto\""),
            "{e}"
        );
        let cases: &[(&str, &str, &str)] = &[
            (
                "REVERB_MAX_REQUEST_SIZE",
                "0",
                "expected a positive integer (bytes)",
            ),
            (
                "REVERB_SHARD_OUTBOUND_BUFFER",
                "-1",
                "expected a positive integer (bytes)",
            ),
            ("REVERB_SCALING_ENABLED", "maybe", "expected true or false"),
            ("REDIS_PORT", "0", "expected a port number 1-65535"),
            ("REDIS_DB", "x", "expected a Redis database number"),
            (
                "REVERB_SHARD_RESTART_MODE",
                "reload",
                "expected \"handover\" or \"exit\"",
            ),
            ("REVERB_SERVER_PATH", "/a b", "expected a URL path prefix"),
            ("REVERB_SERVER", "pusher", "expected \"reverb\""),
        ];
        for (name, value, want) in cases {
            let e = apply_err(&[(name, value)], &[]);
            assert!(
                e.starts_with(&format!("{name}={value} (from the environment): {want}")),
                "{e}"
            );
        }
        // App variables are checked once the app exists.
        for (name, value, want) in [
            (
                "REVERB_APP_PING_INTERVAL",
                "0",
                "expected a positive integer (seconds)",
            ),
            (
                "REVERB_APP_MAX_MESSAGE_SIZE",
                "-5",
                "expected a positive integer (bytes)",
            ),
            (
                "REVERB_APP_RATE_LIMIT_DECAY_SECONDS",
                "0",
                "expected a positive integer",
            ),
            (
                "REVERB_APP_MAX_CONNECTIONS",
                "lots",
                "expected a whole number",
            ),
            ("REVERB_PORT", "http", "expected a port number 1-65535"),
        ] {
            let v = vars(&[(name, value)], &[]);
            let mut d = Draft::default();
            d.apps.push(AppDraft::new("test".into()));
            let e = apply(&v, &mut d, &mut Vec::new()).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{name}={value} (from the environment): {want}")),
                "{e}"
            );
        }
    }

    #[test]
    fn creating_the_first_app_needs_id_key_and_secret() {
        let e = apply_err(&[("REVERB_APP_ID", "1"), ("REVERB_APP_SECRET", "s")], &[]);
        assert!(e.starts_with("REVERB_APP_KEY is not set"), "{e}");
        assert!(
            e.contains("REVERB_APP_ID (from the environment) is set"),
            "{e}"
        );
        let e = apply_err(&[], &[("REVERB_APP_PING_INTERVAL", "5")]);
        assert!(e.starts_with("REVERB_APP_ID is not set"), "{e}");
        assert!(
            e.contains("REVERB_APP_PING_INTERVAL (from /app/.env line 1)"),
            "{e}"
        );
    }

    #[test]
    fn env_created_app_gets_laravel_option_defaults() {
        let v = vars(
            &[],
            &[
                ("REVERB_APP_ID", "1"),
                ("REVERB_APP_KEY", "k"),
                ("REVERB_APP_SECRET", "s"),
            ],
        );
        let mut d = Draft::default();
        apply(&v, &mut d, &mut Vec::new()).unwrap();
        let o = &d.apps[0].app.options;
        assert_eq!(
            (o.port, o.scheme.as_deref(), o.use_tls),
            (Some(443), Some("https"), Some(true))
        );
        assert_eq!(o.host, None);
    }

    #[test]
    fn scheme_derives_use_tls_and_host_feeds_both() {
        let v = vars(
            &[("REVERB_SCHEME", "http"), ("REVERB_HOST", "laravel.test")],
            &[],
        );
        let mut d = Draft::default();
        d.apps.push(AppDraft::new("test".into()));
        apply(&v, &mut d, &mut Vec::new()).unwrap();
        let o = &d.apps[0].app.options;
        assert_eq!(
            (o.scheme.as_deref(), o.use_tls),
            (Some("http"), Some(false))
        );
        assert_eq!(o.host.as_deref(), Some("laravel.test"));
        assert_eq!(d.server.hostname.as_deref(), Some("laravel.test"));
    }

    #[test]
    fn host_port_scheme_alone_do_not_create_an_app() {
        let v = vars(&[("REVERB_HOST", "h"), ("REVERB_SCHEME", "http")], &[]);
        let mut d = Draft::default();
        apply(&v, &mut d, &mut Vec::new()).unwrap();
        assert!(d.apps.is_empty());
    }

    #[test]
    fn unknown_variables_are_ignored() {
        let v = vars(&[("REVERB_NOPE", "x"), ("REVERB_APP_FOO", "y")], &[]);
        let mut d = Draft::default();
        apply(&v, &mut d, &mut Vec::new()).unwrap();
        assert!(d.apps.is_empty());
        assert!(v.known_from_process().is_empty());
    }
}
