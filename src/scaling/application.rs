//! The serialized `Laravel\Reverb\Application` object (scaling.md §4.2): written into
//! every `message`/`terminate` envelope and metrics request reverb-shard publishes, and
//! read (only its `id`) from those of other nodes.
//!
//! Reverb's `unserialize()` rebuilds the object with typed properties, so every one of
//! the 11 must be present with the right PHP type, or the receiving Reverb node stops
//! (scaling.md §8). Mapping decisions where reverb-shard's configuration differs in shape
//! from Laravel's array:
//! - `rateLimiting`: `N` when rate limiting is disabled (Reverb's own fallback when an
//!   app has no `rate_limiting` entry, and what it treats as "off"), else the array
//!   `enabled, max_attempts, decay_seconds, terminate_on_limit` with bool/int/int/bool.
//! - `options`: only the keys that are configured, in Laravel's order `host, port,
//!   scheme, useTLS` (string, int, string, bool); nothing configured = `a:0:{}`, Reverb's
//!   fallback for a missing `options`. Receivers never read it.
//! - Integers beyond PHP's `i64` range are clamped to `i64::MAX` (a limit that large
//!   means "no practical limit" either way).

use super::php::{self, protected, Key, Value};
use crate::config::{AppConfig, ClientEvents};

/// PHP class of the object.
pub const CLASS: &str = "Laravel\\Reverb\\Application";

fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn entry(key: &str, value: Value) -> (Key, Value) {
    (Key::Str(key.as_bytes().to_vec()), value)
}

/// The object as a PHP value, with its 11 protected properties in Reverb's order.
pub fn to_value(app: &AppConfig) -> Value {
    let accept = match &app.accept_client_events_from {
        ClientEvents::Members => "members",
        ClientEvents::All => "all",
        ClientEvents::Disabled(s) => s.as_str(),
    };
    let rate_limiting = if app.rate_limiting.enabled {
        let r = &app.rate_limiting;
        Value::Array(vec![
            entry("enabled", Value::Bool(true)),
            entry("max_attempts", int(u64::from(r.max_attempts))),
            entry("decay_seconds", int(r.decay_seconds)),
            entry("terminate_on_limit", Value::Bool(r.terminate_on_limit)),
        ])
    } else {
        Value::Null
    };
    let o = &app.options;
    let mut options = Vec::new();
    if let Some(host) = &o.host {
        options.push(entry("host", Value::str(host)));
    }
    if let Some(port) = o.port {
        options.push(entry("port", int(u64::from(port))));
    }
    if let Some(scheme) = &o.scheme {
        options.push(entry("scheme", Value::str(scheme)));
    }
    if let Some(tls) = o.use_tls {
        options.push(entry("useTLS", Value::Bool(tls)));
    }
    let props = vec![
        (protected("id"), Value::str(&app.app_id)),
        (protected("key"), Value::str(&app.key)),
        (protected("secret"), Value::str(&app.secret)),
        (protected("pingInterval"), int(app.ping_interval)),
        (protected("activityTimeout"), int(app.activity_timeout)),
        (
            protected("allowedOrigins"),
            Value::list(app.allowed_origins.iter().map(|s| Value::str(s))),
        ),
        (
            protected("maxMessageSize"),
            int(u64::try_from(app.max_message_size).unwrap_or(u64::MAX)),
        ),
        (
            protected("maxConnections"),
            app.max_connections.map_or(Value::Null, int),
        ),
        (protected("acceptClientEventsFrom"), Value::str(accept)),
        (protected("rateLimiting"), rate_limiting),
        (protected("options"), Value::Array(options)),
    ];
    Value::Object {
        class: CLASS.to_string(),
        props,
    }
}

/// Appends the serialized object.
pub fn write(app: &AppConfig, out: &mut Vec<u8>) {
    php::write(&to_value(app), out);
}

/// The serialized object as text, ready to be put in a JSON string (serde_json escapes
/// the NULs as `\u0000` and `\` as `\\`).
pub fn serialize(app: &AppConfig) -> String {
    let mut out = Vec::new();
    write(app, &mut out);
    // Every piece written is a Rust `String` or ASCII, so the bytes are UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The app id of a serialized `Laravel\Reverb\Application` (the `application` field of
/// an envelope). `None` if it does not parse, is another class, or has no usable `id`.
pub fn app_id_of(serialized: &str) -> Option<String> {
    app_id_of_value(&php::parse(serialized.as_bytes()).ok()?)
}

/// The app id of an already parsed application object (e.g. inside a metrics request).
/// The id is a string in Reverb; an integer id (a hand-written config with a numeric
/// `app_id`) is accepted as its decimal text, as PHP would compare it.
pub fn app_id_of_value(value: &Value) -> Option<String> {
    if value.class() != Some(CLASS) {
        return None;
    }
    match value.prop("id")? {
        Value::Str(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AppOptions, RateLimiting};

    /// scaling.md §4.2 example, NUL written as `\0`.
    const EXAMPLE: &str = "O:26:\"Laravel\\Reverb\\Application\":11:{s:5:\"\0*\0id\";s:6:\"123456\";s:6:\"\0*\0key\";s:7:\"app-key\";s:9:\"\0*\0secret\";s:10:\"app-secret\";s:15:\"\0*\0pingInterval\";i:60;s:18:\"\0*\0activityTimeout\";i:30;s:17:\"\0*\0allowedOrigins\";a:1:{i:0;s:1:\"*\";}s:17:\"\0*\0maxMessageSize\";i:10000;s:17:\"\0*\0maxConnections\";N;s:25:\"\0*\0acceptClientEventsFrom\";s:7:\"members\";s:15:\"\0*\0rateLimiting\";N;s:10:\"\0*\0options\";a:0:{}}";

    /// The same inside the JSON envelope.
    const EXAMPLE_JSON: &str = r#""O:26:\"Laravel\\Reverb\\Application\":11:{s:5:\"\u0000*\u0000id\";s:6:\"123456\";s:6:\"\u0000*\u0000key\";s:7:\"app-key\";s:9:\"\u0000*\u0000secret\";s:10:\"app-secret\";s:15:\"\u0000*\u0000pingInterval\";i:60;s:18:\"\u0000*\u0000activityTimeout\";i:30;s:17:\"\u0000*\u0000allowedOrigins\";a:1:{i:0;s:1:\"*\";}s:17:\"\u0000*\u0000maxMessageSize\";i:10000;s:17:\"\u0000*\u0000maxConnections\";N;s:25:\"\u0000*\u0000acceptClientEventsFrom\";s:7:\"members\";s:15:\"\u0000*\u0000rateLimiting\";N;s:10:\"\u0000*\u0000options\";a:0:{}}""#;

    fn example_app() -> AppConfig {
        AppConfig::new("123456", "app-key", "app-secret")
    }

    #[test]
    fn writes_the_spec_example_byte_for_byte() {
        assert_eq!(serialize(&example_app()), EXAMPLE);
        assert_eq!(
            serde_json::to_string(&serialize(&example_app())).unwrap(),
            EXAMPLE_JSON
        );
        let from_json: String = serde_json::from_str(EXAMPLE_JSON).unwrap();
        assert_eq!(from_json, EXAMPLE);
    }

    #[test]
    fn reads_the_id_of_the_example() {
        assert_eq!(app_id_of(EXAMPLE).as_deref(), Some("123456"));
    }

    #[test]
    fn full_configuration_types() {
        let mut app = AppConfig::new("1", "k", "s");
        app.allowed_origins = vec!["a.example.com".into(), "localhost".into()];
        app.max_connections = Some(1000);
        app.accept_client_events_from = ClientEvents::Disabled("none".into());
        app.rate_limiting = RateLimiting {
            enabled: true,
            max_attempts: 5,
            decay_seconds: 2,
            terminate_on_limit: true,
        };
        app.options = AppOptions {
            host: Some("localhost".into()),
            port: Some(8080),
            scheme: Some("http".into()),
            use_tls: Some(false),
        };
        let text = serialize(&app);
        assert!(text.contains(
            "s:17:\"\0*\0allowedOrigins\";a:2:{i:0;s:13:\"a.example.com\";i:1;s:9:\"localhost\";}"
        ));
        assert!(text.contains("s:17:\"\0*\0maxConnections\";i:1000;"));
        assert!(text.contains("s:25:\"\0*\0acceptClientEventsFrom\";s:4:\"none\";"));
        assert!(text.contains("s:15:\"\0*\0rateLimiting\";a:4:{s:7:\"enabled\";b:1;s:12:\"max_attempts\";i:5;s:13:\"decay_seconds\";i:2;s:18:\"terminate_on_limit\";b:1;}"));
        assert!(text.ends_with("s:10:\"\0*\0options\";a:4:{s:4:\"host\";s:9:\"localhost\";s:4:\"port\";i:8080;s:6:\"scheme\";s:4:\"http\";s:6:\"useTLS\";b:0;}}"));
        // It parses back, with all 11 properties in order.
        let v = php::parse(text.as_bytes()).unwrap();
        let Value::Object { props, .. } = &v else {
            panic!("not an object")
        };
        let names: Vec<_> = props
            .iter()
            .map(|(n, _)| String::from_utf8_lossy(&n[3..]).into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "id",
                "key",
                "secret",
                "pingInterval",
                "activityTimeout",
                "allowedOrigins",
                "maxMessageSize",
                "maxConnections",
                "acceptClientEventsFrom",
                "rateLimiting",
                "options"
            ]
        );
        assert_eq!(app_id_of(&text).as_deref(), Some("1"));

        let mut partial = AppConfig::new("1", "k", "s");
        partial.accept_client_events_from = ClientEvents::All;
        partial.options.port = Some(443);
        let text = serialize(&partial);
        assert!(text.contains("s:3:\"all\";"));
        assert!(text.ends_with("s:10:\"\0*\0options\";a:1:{s:4:\"port\";i:443;}}"));
    }

    #[test]
    fn huge_integers_are_clamped() {
        let mut app = AppConfig::new("1", "k", "s");
        app.ping_interval = u64::MAX;
        app.max_connections = Some(u64::MAX);
        let text = serialize(&app);
        assert!(text.contains("\0*\0pingInterval\";i:9223372036854775807;"));
        assert!(text.contains("\0*\0maxConnections\";i:9223372036854775807;"));
        assert!(php::parse(text.as_bytes()).is_ok());
    }

    #[test]
    fn utf8_and_special_bytes_in_strings() {
        let app = AppConfig::new("ïd\"x;", "k\\ey", "s");
        let text = serialize(&app);
        assert!(text.contains("s:6:\"ïd\"x;\";"));
        assert_eq!(app_id_of(&text).as_deref(), Some("ïd\"x;"));
    }

    #[test]
    fn id_lookup_variants() {
        // Public name, other property order, extra properties.
        let public =
            "O:26:\"Laravel\\Reverb\\Application\":2:{s:5:\"extra\";b:1;s:2:\"id\";s:3:\"abc\";}";
        assert_eq!(app_id_of(public).as_deref(), Some("abc"));
        let int_id = "O:26:\"Laravel\\Reverb\\Application\":1:{s:5:\"\0*\0id\";i:42;}";
        assert_eq!(app_id_of(int_id).as_deref(), Some("42"));
        let no_id = "O:26:\"Laravel\\Reverb\\Application\":1:{s:6:\"\0*\0key\";s:1:\"k\";}";
        assert_eq!(app_id_of(no_id), None);
        let null_id = "O:26:\"Laravel\\Reverb\\Application\":1:{s:5:\"\0*\0id\";N;}";
        assert_eq!(app_id_of(null_id), None);
        let wrong_class = "O:26:\"Laravel\\Reverb\\Applicatiom\":1:{s:5:\"\0*\0id\";s:1:\"1\";}";
        assert_eq!(app_id_of(wrong_class), None);
        let not_object = "a:1:{s:2:\"id\";s:1:\"1\";}";
        assert_eq!(app_id_of(not_object), None);
        assert_eq!(app_id_of(""), None);
        assert_eq!(app_id_of("{\"id\":\"1\"}"), None);
    }

    #[test]
    fn truncated_or_mutated_examples_never_panic() {
        let bytes = EXAMPLE.as_bytes();
        for cut in 0..bytes.len() {
            let prefix = String::from_utf8_lossy(&bytes[..cut]);
            assert_eq!(app_id_of(&prefix), None, "prefix {cut}");
        }
        // Every single-byte change: either an error or still some id.
        for i in 0..bytes.len() {
            for b in [b'0', b'9', b':', b';', b'"', b'{', b'}', b'x', 0] {
                let mut m = bytes.to_vec();
                m[i] = b;
                let text = String::from_utf8_lossy(&m);
                let _ = app_id_of(&text);
            }
        }
    }
}
