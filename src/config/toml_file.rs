//! The TOML layer (config.md §2.2–§2.4): reads `config.toml` with `toml_edit`, which keeps
//! the position of every key and value, so that an unknown key, a wrong type or an
//! out-of-range value is reported with the file, the line, the key and the expected form.
//! Keys that are present override the defaults in the draft; absent keys leave them.

use std::ops::Range;

use toml_edit::{ImDocument, Item, TableLike};

use super::draft::{AppDraft, Draft, Origin, Tracked};
use super::forms::{self, IntForm};
use super::{ClientEvents, ConfigError, Cores, PresenceScope, RestartMode};

const ROOT_KEYS: &[&str] = &["server", "scaling", "apps", "pulse"];
const SERVER_KEYS: &[&str] = &[
    "host",
    "port",
    "path",
    "hostname",
    "max_request_size",
    "pulse_ingest_interval",
    "telescope_ingest_interval",
    "tls",
    "cores",
    "debug",
    "shutdown_timeout",
    "outbound_buffer",
    "pusher_limits",
    "pid_file",
    "restart_mode",
    "metrics",
    "metrics_token",
];
const TLS_KEYS: &[&str] = &["local_cert", "local_pk", "passphrase"];
/// PHP `ssl` stream-context options: accepted in `[server.tls]` (a Reverb config may carry
/// them) and ignored with a warning.
const PHP_TLS_OPTIONS: &[&str] = &[
    "peer_name",
    "verify_peer",
    "verify_peer_name",
    "allow_self_signed",
    "cafile",
    "capath",
    "verify_depth",
    "ciphers",
    "capture_peer_cert",
    "capture_peer_cert_chain",
    "SNI_enabled",
    "SNI_server_name",
    "SNI_server_certs",
    "disable_compression",
    "peer_fingerprint",
    "security_level",
    "crypto_method",
    "honor_cipher_order",
    "single_dh_use",
    "single_ecdh_use",
    "ecdh_curve",
    "dh_param",
    "rsa_key_size",
    "alpn_protocols",
    "session_id_context",
    "reneg_limit",
    "reneg_window",
    "no_ticket",
];
const SCALING_KEYS: &[&str] = &["enabled", "channel", "redis", "node_id", "presence"];
const REDIS_KEYS: &[&str] = &[
    "url", "host", "port", "username", "password", "database", "timeout",
];
const PULSE_KEYS: &[&str] = &["database_url"];
const APP_KEYS: &[&str] = &[
    "app_id",
    "key",
    "secret",
    "allowed_origins",
    "ping_interval",
    "activity_timeout",
    "max_connections",
    "max_message_size",
    "accept_client_events_from",
    "rate_limiting",
    "options",
];
const RATE_KEYS: &[&str] = &[
    "enabled",
    "max_attempts",
    "decay_seconds",
    "terminate_on_limit",
];
const OPTIONS_KEYS: &[&str] = &["host", "port", "scheme", "useTLS"];

/// Applies the TOML text `src` (called `label` in messages) to `draft`.
pub(super) fn apply(
    src: &str,
    label: &str,
    draft: &mut Draft,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let doc = ImDocument::parse(src).map_err(|e| {
        let r = Reader { src, label };
        let message = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        ConfigError::new(format!(
            "{}: invalid TOML: {message}",
            r.at(e.span().map(|s| s.start))
        ))
    })?;
    let r = Reader { src, label };
    for f in r.fields(doc.as_table(), "", ROOT_KEYS)? {
        match f.name {
            "server" => r.server(r.table(&f)?, draft, warnings)?,
            "scaling" => r.scaling(r.table(&f)?, draft)?,
            "pulse" => {
                for p in r.fields(r.table(&f)?, "[pulse]", PULSE_KEYS)? {
                    draft.pulse.database_url = r.optional_string(&p)?;
                }
            }
            "apps" => r.apps(&f, draft, warnings)?,
            _ => unreachable!("checked by fields()"),
        }
    }
    Ok(())
}

/// Line number (1-based) of byte offset `pos` in `src`.
fn line_of(src: &str, pos: usize) -> usize {
    let pos = pos.min(src.len());
    src.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// One `key = value` of a section.
struct Field<'t> {
    section: &'static str,
    name: &'t str,
    key_span: Option<Range<usize>>,
    item: &'t Item,
}

struct Reader<'a> {
    src: &'a str,
    label: &'a str,
}

impl Reader<'_> {
    /// "config.toml line 12" (or just the file when the position is unknown).
    fn at(&self, pos: Option<usize>) -> String {
        match pos {
            Some(p) => format!("{} line {}", self.label, line_of(self.src, p)),
            None => self.label.to_string(),
        }
    }

    fn at_field(&self, f: &Field) -> String {
        let pos = f
            .item
            .span()
            .or_else(|| f.key_span.clone())
            .map(|s| s.start);
        self.at(pos)
    }

    /// The value as written in the file (shortened).
    fn raw(&self, f: &Field) -> String {
        if f.item.is_table() || f.item.is_array_of_tables() {
            return "(a table)".to_string();
        }
        let text = f
            .item
            .span()
            .and_then(|s| self.src.get(s))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| f.item.to_string().trim().to_string());
        shorten(&text)
    }

    fn bad(&self, f: &Field, expected: &str) -> ConfigError {
        ConfigError::new(format!(
            "{}: {} = {}: expected {expected}",
            self.at_field(f),
            key_name(f),
            self.raw(f)
        ))
    }

    fn origin(&self, f: &Field) -> Origin {
        Origin::Toml {
            at: self.at_field(f),
            key: key_name(f),
        }
    }

    /// The keys of a table; an unknown key is an error naming it and its line.
    fn fields<'t>(
        &self,
        table: &'t dyn TableLike,
        section: &'static str,
        known: &[&str],
    ) -> Result<Vec<Field<'t>>, ConfigError> {
        let mut out = Vec::new();
        for (name, item) in table.iter() {
            let key_span = table.get_key_value(name).and_then(|(k, _)| k.span());
            if !known.contains(&name) {
                let pos = key_span.clone().or_else(|| item.span()).map(|s| s.start);
                let place = if section.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in {section}")
                };
                return Err(ConfigError::new(format!(
                    "{}: unknown key `{name}` {place}; expected one of: {}",
                    self.at(pos),
                    known.join(", ")
                )));
            }
            out.push(Field {
                section,
                name,
                key_span,
                item,
            });
        }
        Ok(out)
    }

    fn table<'t>(&self, f: &Field<'t>) -> Result<&'t dyn TableLike, ConfigError> {
        f.item.as_table_like().ok_or_else(|| self.bad(f, "a table"))
    }

    fn string(&self, f: &Field) -> Result<String, ConfigError> {
        f.item
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.bad(f, "a string"))
    }

    fn nonempty_string(&self, f: &Field) -> Result<String, ConfigError> {
        match f.item.as_str() {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(self.bad(f, "a non-empty string")),
        }
    }

    /// A string where `""` means unset.
    fn optional_string(&self, f: &Field) -> Result<Option<String>, ConfigError> {
        self.string(f).map(|s| Some(s).filter(|s| !s.is_empty()))
    }

    fn int(&self, f: &Field, form: &IntForm) -> Result<u64, ConfigError> {
        f.item
            .as_integer()
            .and_then(|n| form.accept_i64(n))
            .ok_or_else(|| self.bad(f, form.expected))
    }

    fn size(&self, f: &Field, form: &IntForm) -> Result<usize, ConfigError> {
        self.int(f, form)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn boolean(&self, f: &Field) -> Result<bool, ConfigError> {
        f.item.as_bool().ok_or_else(|| self.bad(f, forms::BOOL))
    }

    fn server(
        &self,
        t: &dyn TableLike,
        draft: &mut Draft,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let s = &mut draft.server;
        for f in self.fields(t, "[server]", SERVER_KEYS)? {
            match f.name {
                "host" => s.host = self.nonempty_string(&f)?,
                "port" => s.port = self.int(&f, &forms::PORT)? as u16,
                "path" => {
                    s.path = forms::parse_path(&self.string(&f)?)
                        .ok_or_else(|| self.bad(&f, forms::PATH))?
                }
                "hostname" => s.hostname = self.optional_string(&f)?,
                "max_request_size" => s.max_request_size = self.size(&f, &forms::BYTES)?,
                "pulse_ingest_interval" => {
                    s.pulse_ingest_interval = self.int(&f, &forms::POSITIVE_SECONDS)?
                }
                "telescope_ingest_interval" => {
                    s.telescope_ingest_interval = self.int(&f, &forms::POSITIVE_SECONDS)?
                }
                "cores" => {
                    s.cores = match (f.item.as_integer(), f.item.as_str()) {
                        (Some(n), _) if n >= 1 => {
                            Cores::Count(usize::try_from(n).unwrap_or(usize::MAX))
                        }
                        (_, Some(text)) => {
                            Cores::parse(text).map_err(|_| self.bad(&f, forms::CORES))?
                        }
                        _ => return Err(self.bad(&f, forms::CORES)),
                    }
                }
                "debug" => s.debug = self.boolean(&f)?,
                "shutdown_timeout" => s.shutdown_timeout = self.int(&f, &forms::SECONDS)?,
                "outbound_buffer" => s.outbound_buffer = self.size(&f, &forms::BYTES)?,
                "pusher_limits" => s.pusher_limits = self.boolean(&f)?,
                "pid_file" => {
                    s.pid_file = self.optional_string(&f)?.map(Into::into);
                    draft.origins.insert(Tracked::PidFile, self.origin(&f));
                }
                "restart_mode" => {
                    s.restart_mode = RestartMode::parse(&self.string(&f)?)
                        .map_err(|_| self.bad(&f, forms::RESTART_MODE))?
                }
                "metrics" => s.metrics = self.boolean(&f)?,
                "metrics_token" => s.metrics_token = self.optional_string(&f)?,
                "tls" => {
                    let tls_table = self.table(&f)?;
                    let known: Vec<&str> =
                        TLS_KEYS.iter().chain(PHP_TLS_OPTIONS).copied().collect();
                    for k in self.fields(tls_table, "[server.tls]", &known)? {
                        match k.name {
                            "local_cert" => {
                                s.tls.local_cert = self.optional_string(&k)?.map(Into::into);
                                draft.origins.insert(Tracked::TlsCert, self.origin(&k));
                            }
                            "local_pk" => {
                                s.tls.local_pk = self.optional_string(&k)?.map(Into::into);
                                draft.origins.insert(Tracked::TlsKey, self.origin(&k));
                            }
                            "passphrase" => s.tls.passphrase = self.optional_string(&k)?,
                            other => warnings.push(format!(
                                "{}: [server.tls] {other} is a PHP TLS context option that \
                                 reverb-shard ignores (only local_cert, local_pk and \
                                 passphrase are used)",
                                self.at_field(&k)
                            )),
                        }
                    }
                }
                _ => unreachable!("checked by fields()"),
            }
        }
        Ok(())
    }

    fn scaling(&self, t: &dyn TableLike, draft: &mut Draft) -> Result<(), ConfigError> {
        for f in self.fields(t, "[scaling]", SCALING_KEYS)? {
            let sc = &mut draft.scaling;
            match f.name {
                "enabled" => sc.enabled = self.boolean(&f)?,
                "channel" => sc.channel = self.nonempty_string(&f)?,
                "node_id" => sc.node_id = self.optional_string(&f)?,
                "presence" => {
                    sc.presence = PresenceScope::parse(&self.string(&f)?)
                        .map_err(|_| self.bad(&f, forms::PRESENCE_SCOPE))?
                }
                "redis" => {
                    for k in self.fields(self.table(&f)?, "[scaling.redis]", REDIS_KEYS)? {
                        let r = &mut draft.scaling.redis;
                        match k.name {
                            "url" => {
                                r.url = self.optional_string(&k)?;
                                draft.origins.insert(Tracked::RedisUrl, self.origin(&k));
                            }
                            "host" => r.host = self.nonempty_string(&k)?,
                            "port" => r.port = self.int(&k, &forms::REMOTE_PORT)? as u16,
                            "username" => r.username = self.optional_string(&k)?,
                            "password" => r.password = self.optional_string(&k)?,
                            "database" => r.database = self.int(&k, &forms::DATABASE)? as u32,
                            "timeout" => r.timeout = self.int(&k, &forms::SECONDS)?,
                            _ => unreachable!("checked by fields()"),
                        }
                    }
                }
                _ => unreachable!("checked by fields()"),
            }
        }
        Ok(())
    }

    fn apps(
        &self,
        f: &Field,
        draft: &mut Draft,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let mut entries: Vec<(&dyn TableLike, Option<usize>)> = Vec::new();
        if let Some(aot) = f.item.as_array_of_tables() {
            for t in aot.iter() {
                entries.push((t, t.span().map(|s| s.start)));
            }
        } else if let Some(array) = f.item.as_array() {
            for v in array.iter() {
                match v.as_inline_table() {
                    Some(t) => entries.push((t, v.span().map(|s| s.start))),
                    None => {
                        return Err(self.bad(f, "[[apps]] entries (an array of tables)"));
                    }
                }
            }
        } else {
            return Err(self.bad(f, "[[apps]] entries (an array of tables)"));
        }
        for (i, (table, pos)) in entries.into_iter().enumerate() {
            let mut app = AppDraft::new(format!("[[apps]] entry #{} at {}", i + 1, self.at(pos)));
            self.app(table, &mut app, warnings)?;
            draft.apps.push(app);
        }
        Ok(())
    }

    fn app(
        &self,
        t: &dyn TableLike,
        d: &mut AppDraft,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        for f in self.fields(t, "[[apps]]", APP_KEYS)? {
            let a = &mut d.app;
            match f.name {
                "app_id" => {
                    a.app_id = match f.item.as_integer() {
                        Some(n) => forms::APP_ID_INT
                            .accept_i64(n)
                            .ok_or_else(|| self.bad(&f, forms::APP_ID_INT.expected))?
                            .to_string(),
                        None => self.nonempty_string(&f)?,
                    };
                    d.app_id_from = Some(self.origin(&f));
                }
                "key" => {
                    a.key = self.nonempty_string(&f)?;
                    d.key_from = Some(self.origin(&f));
                }
                "secret" => {
                    a.secret = self.nonempty_string(&f)?;
                    d.secret_from = Some(self.origin(&f));
                }
                "allowed_origins" => a.allowed_origins = self.origins_list(&f)?,
                "ping_interval" => a.ping_interval = self.int(&f, &forms::POSITIVE_SECONDS)?,
                "activity_timeout" => a.activity_timeout = self.int(&f, &forms::SECONDS)?,
                "max_connections" => {
                    a.max_connections = Some(self.int(&f, &forms::MAX_CONNECTIONS)?)
                }
                "max_message_size" => a.max_message_size = self.size(&f, &forms::BYTES)?,
                "accept_client_events_from" => {
                    let v = self.string(&f)?;
                    if let Some(w) = client_events_warning(&v) {
                        warnings.push(format!("{}: {w}", self.at_field(&f)));
                    }
                    a.accept_client_events_from = ClientEvents::parse(&v);
                }
                "rate_limiting" => {
                    let rl = &mut a.rate_limiting;
                    for k in self.fields(self.table(&f)?, "[apps.rate_limiting]", RATE_KEYS)? {
                        match k.name {
                            "enabled" => rl.enabled = self.boolean(&k)?,
                            "max_attempts" => {
                                rl.max_attempts = self.int(&k, &forms::ATTEMPTS)? as u32
                            }
                            "decay_seconds" => {
                                rl.decay_seconds = self.int(&k, &forms::POSITIVE_SECONDS)?
                            }
                            "terminate_on_limit" => rl.terminate_on_limit = self.boolean(&k)?,
                            _ => unreachable!("checked by fields()"),
                        }
                    }
                }
                "options" => {
                    let o = &mut a.options;
                    for k in self.fields(self.table(&f)?, "[apps.options]", OPTIONS_KEYS)? {
                        match k.name {
                            "host" => o.host = self.optional_string(&k)?,
                            "port" => o.port = Some(self.int(&k, &forms::REMOTE_PORT)? as u16),
                            "scheme" => o.scheme = self.optional_string(&k)?,
                            "useTLS" => o.use_tls = Some(self.boolean(&k)?),
                            _ => unreachable!("checked by fields()"),
                        }
                    }
                }
                _ => unreachable!("checked by fields()"),
            }
        }
        Ok(())
    }

    /// `allowed_origins`: an array of strings; a bad element is reported at its own line.
    fn origins_list(&self, f: &Field) -> Result<Vec<String>, ConfigError> {
        const EXPECTED: &str =
            "an array of strings, e.g. [\"*\"] or [\"app.example.com\", \"*.example.com\"]";
        let array = f.item.as_array().ok_or_else(|| self.bad(f, EXPECTED))?;
        let mut out = Vec::new();
        for v in array.iter() {
            match v.as_str() {
                Some(s) if !s.is_empty() => out.push(s.to_string()),
                _ => {
                    let raw = v
                        .span()
                        .and_then(|s| self.src.get(s))
                        .map(|s| shorten(s.trim()))
                        .unwrap_or_default();
                    return Err(ConfigError::new(format!(
                        "{}: {} {} contains {raw}: expected {EXPECTED}",
                        self.at(v.span().or_else(|| f.item.span()).map(|s| s.start)),
                        f.section,
                        f.name
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// "[server] port", or just "server" for a top-level key.
fn key_name(f: &Field) -> String {
    if f.section.is_empty() {
        f.name.to_string()
    } else {
        format!("{} {}", f.section, f.name)
    }
}

/// A warning for values that look like a mistyped `members`/`all` (they disable client
/// events, as in Reverb).
pub(super) fn client_events_warning(v: &str) -> Option<String> {
    let lower = v.trim().to_ascii_lowercase();
    if (lower == "members" || lower == "all") && v != lower {
        Some(format!(
            "accept_client_events_from = {v:?} disables client events (only the exact, \
             lowercase \"members\" or \"all\" enable them)"
        ))
    } else {
        None
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AppOptions, RedisConfig};

    fn parse(src: &str) -> Result<(Draft, Vec<String>), String> {
        let mut d = Draft::default();
        let mut w = Vec::new();
        apply(src, "config.toml", &mut d, &mut w).map_err(|e| e.to_string())?;
        Ok((d, w))
    }

    fn err(src: &str) -> String {
        parse(src).expect_err("expected an error")
    }

    #[test]
    fn reads_every_section() {
        let (d, w) = parse(
            r#"
[server]
host = "127.0.0.1"
port = 0
path = "ws/"
hostname = "ws.example.com"
max_request_size = 2000
pulse_ingest_interval = 5
telescope_ingest_interval = 7
cores = 3
debug = true
shutdown_timeout = 0
outbound_buffer = 4096
pusher_limits = false
pid_file = "/run/rs.pid"
restart_mode = "exit"
metrics = false
metrics_token = "tok"

[server.tls]
local_cert = "cert.pem"
local_pk = "key.pem"
passphrase = "pw"

[scaling]
enabled = true
channel = "fleet"
node_id = "node-1"

[scaling.redis]
url = "redis://r:6380/2"
host = "redis.local"
port = 6380
username = "u"
password = "p"
database = 3
timeout = 5

[pulse]
database_url = "mysql://x"

[[apps]]
app_id = 42
key = "k"
secret = "s"
allowed_origins = ["a.test", "*.b.test"]
ping_interval = 10
activity_timeout = 20
max_connections = 5
max_message_size = 100
accept_client_events_from = "none"

[apps.rate_limiting]
enabled = true
max_attempts = 3
decay_seconds = 9
terminate_on_limit = true

[apps.options]
host = "h"
port = 443
scheme = "https"
useTLS = true

[[apps]]
app_id = "2"
key = "k2"
secret = "s2"
"#,
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        let s = &d.server;
        assert_eq!(
            (s.host.as_str(), s.port, s.path.as_str()),
            ("127.0.0.1", 0, "/ws")
        );
        assert_eq!(s.hostname.as_deref(), Some("ws.example.com"));
        assert_eq!((s.max_request_size, s.pulse_ingest_interval), (2000, 5));
        assert_eq!(s.telescope_ingest_interval, 7);
        assert_eq!(s.cores, Cores::Count(3));
        assert!(s.debug && !s.pusher_limits && !s.metrics);
        assert_eq!((s.shutdown_timeout, s.outbound_buffer), (0, 4096));
        assert_eq!(
            s.pid_file.as_deref(),
            Some(std::path::Path::new("/run/rs.pid"))
        );
        assert_eq!(s.restart_mode, RestartMode::Exit);
        assert_eq!(s.metrics_token.as_deref(), Some("tok"));
        assert_eq!(
            s.tls.local_cert.as_deref(),
            Some(std::path::Path::new("cert.pem"))
        );
        assert_eq!(
            s.tls.local_pk.as_deref(),
            Some(std::path::Path::new("key.pem"))
        );
        assert_eq!(s.tls.passphrase.as_deref(), Some("pw"));
        assert!(d.scaling.enabled);
        assert_eq!(d.scaling.channel, "fleet");
        assert_eq!(d.scaling.node_id.as_deref(), Some("node-1"));
        assert_eq!(
            d.scaling.redis,
            RedisConfig {
                url: Some("redis://r:6380/2".into()),
                host: "redis.local".into(),
                port: 6380,
                username: Some("u".into()),
                password: Some("p".into()),
                database: 3,
                timeout: 5,
            }
        );
        assert_eq!(d.pulse.database_url.as_deref(), Some("mysql://x"));
        assert_eq!(d.apps.len(), 2);
        let a = &d.apps[0].app;
        assert_eq!(
            (a.app_id.as_str(), a.key.as_str(), a.secret.as_str()),
            ("42", "k", "s")
        );
        assert_eq!(a.allowed_origins, vec!["a.test", "*.b.test"]);
        assert_eq!((a.ping_interval, a.activity_timeout), (10, 20));
        assert_eq!((a.max_connections, a.max_message_size), (Some(5), 100));
        assert_eq!(
            a.accept_client_events_from,
            ClientEvents::Disabled("none".into())
        );
        assert!(a.rate_limiting.enabled && a.rate_limiting.terminate_on_limit);
        assert_eq!(
            (a.rate_limiting.max_attempts, a.rate_limiting.decay_seconds),
            (3, 9)
        );
        assert_eq!(
            a.options,
            AppOptions {
                host: Some("h".into()),
                port: Some(443),
                scheme: Some("https".into()),
                use_tls: Some(true)
            }
        );
        assert_eq!(d.apps[1].app.app_id, "2");
        assert!(
            d.apps[0].origin.ends_with("config.toml line 42"),
            "{}",
            d.apps[0].origin
        );
        assert!(d.apps[1].origin.contains("line 65"), "{}", d.apps[1].origin);
    }

    #[test]
    fn inline_tables_and_dotted_keys_work() {
        let (d, _) = parse(
            "server.port = 9000\n\
             apps = [{ app_id = \"1\", key = \"k\", secret = \"s\", options = { useTLS = false } }]\n",
        )
        .unwrap();
        assert_eq!(d.server.port, 9000);
        assert_eq!(d.apps[0].app.options.use_tls, Some(false));
    }

    #[test]
    fn unknown_keys_are_errors_with_their_line() {
        let e = err("[server]\nport = 1\nprot = 2\n");
        assert!(
            e.starts_with("config.toml line 3: unknown key `prot` in [server]"),
            "{e}"
        );
        let e = err("[servers]\nport = 1\n");
        assert!(
            e.starts_with("config.toml line 1: unknown key `servers` at the top level"),
            "{e}"
        );
        let e = err("[[apps]]\napp_id = \"1\"\n\n[apps.options]\nuse_tls = true\n");
        assert!(
            e.starts_with("config.toml line 5: unknown key `use_tls` in [apps.options]"),
            "{e}"
        );
        assert!(e.contains("useTLS"), "{e}");
        let e = err("[[apps]]\nkey = \"k\"\n[apps.rate_limiting]\nenable = true\n");
        assert!(
            e.starts_with("config.toml line 4: unknown key `enable` in [apps.rate_limiting]"),
            "{e}"
        );
        let e = err("[scaling.redis]\ndb = 1\n");
        assert!(
            e.starts_with("config.toml line 2: unknown key `db` in [scaling.redis]"),
            "{e}"
        );
        let e = err("[server.tls]\nlocal_crt = \"x\"\n");
        assert!(
            e.starts_with("config.toml line 2: unknown key `local_crt` in [server.tls]"),
            "{e}"
        );
    }

    #[test]
    fn php_tls_options_only_warn() {
        let (d, w) = parse("[server.tls]\nverify_peer = false\nlocal_cert = \"c.pem\"\n").unwrap();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("line 2") && w[0].contains("verify_peer"),
            "{w:?}"
        );
        assert!(d.server.tls.local_cert.is_some());
    }

    #[test]
    fn wrong_types_and_ranges_name_key_value_and_line() {
        let cases: &[(&str, &str)] = &[
            (
                "[server]\nport = \"abc\"\n",
                "config.toml line 2: [server] port = \"abc\": expected a port number 0-65535",
            ),
            ("[server]\nport = 70000\n", "line 2: [server] port = 70000: expected a port"),
            ("[server]\nmax_request_size = 0\n", "line 2: [server] max_request_size = 0: expected a positive integer (bytes)"),
            ("[server]\noutbound_buffer = -1\n", "line 2: [server] outbound_buffer = -1: expected a positive integer (bytes)"),
            ("[server]\ncores = 0\n", "line 2: [server] cores = 0: expected \"auto\" or a whole number"),
            ("[server]\ncores = \"many\"\n", "line 2: [server] cores = \"many\": expected \"auto\""),
            ("[server]\nrestart_mode = \"reload\"\n", "[server] restart_mode = \"reload\": expected \"handover\" or \"exit\""),
            ("[server]\ndebug = \"yes\"\n", "[server] debug = \"yes\": expected true or false"),
            ("[server]\npath = \"/a b\"\n", "[server] path = \"/a b\": expected a URL path prefix"),
            ("[server]\nhost = \"\"\n", "[server] host = \"\": expected a non-empty string"),
            ("server = 5\n", "config.toml line 1: server = 5: expected a table"),
            ("[scaling.redis]\nport = 0\n", "[scaling.redis] port = 0: expected a port number 1-65535"),
            ("[scaling]\nchannel = \"\"\n", "[scaling] channel = \"\": expected a non-empty string"),
            (
                "[[apps]]\napp_id = \"1\"\nkey = \"k\"\nsecret = \"s\"\nmax_message_size = -5\n",
                "config.toml line 5: [[apps]] max_message_size = -5: expected a positive integer (bytes)",
            ),
            ("[[apps]]\nping_interval = 0\n", "line 2: [[apps]] ping_interval = 0: expected a positive integer (seconds)"),
            ("[[apps]]\nkey = 5\n", "line 2: [[apps]] key = 5: expected a non-empty string"),
            ("[[apps]]\nsecret = \"\"\n", "[[apps]] secret = \"\": expected a non-empty string"),
            ("[[apps]]\nallowed_origins = \"*\"\n", "[[apps]] allowed_origins = \"*\": expected an array of strings"),
            ("[[apps]]\nallowed_origins = [\n  \"a\",\n  3,\n]\n", "line 4: [[apps]] allowed_origins contains 3"),
            ("[[apps]]\n[apps.rate_limiting]\ndecay_seconds = 0\n", "line 3: [apps.rate_limiting] decay_seconds = 0: expected a positive integer (seconds)"),
            ("[[apps]]\n[apps.rate_limiting]\nmax_attempts = 5000000000\n", "[apps.rate_limiting] max_attempts = 5000000000: expected a whole number"),
            ("[[apps]]\n[apps.options]\nuseTLS = \"no\"\n", "line 3: [apps.options] useTLS = \"no\": expected true or false"),
            ("[apps]\napp_id = \"1\"\n", "expected [[apps]] entries"),
        ];
        for (src, want) in cases {
            let e = err(src);
            assert!(e.contains(want), "for {src:?}\n got: {e}\nwant: {want}");
        }
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = err("[server]\nport = 1\nport = 2\n");
        assert!(e.starts_with("config.toml line 3: invalid TOML"), "{e}");
        let e = err("[server]\nhost = \"unterminated\n");
        assert!(e.starts_with("config.toml line 2: invalid TOML"), "{e}");
    }

    #[test]
    fn empty_strings_mean_unset_for_optional_keys() {
        let (d, _) = parse("[server]\nhostname = \"\"\nmetrics_token = \"\"\n").unwrap();
        assert_eq!(d.server.hostname, None);
        assert_eq!(d.server.metrics_token, None);
    }

    #[test]
    fn client_events_case_typo_warns() {
        let (d, w) = parse("[[apps]]\naccept_client_events_from = \"Members\"\n").unwrap();
        assert_eq!(
            d.apps[0].app.accept_client_events_from,
            ClientEvents::Disabled("Members".into())
        );
        assert!(
            w[0].contains("line 2") && w[0].contains("disables client events"),
            "{w:?}"
        );
    }
}
