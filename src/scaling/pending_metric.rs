//! The metrics request (scaling.md §4.3): a serialized
//! `Laravel\Reverb\Protocols\Pusher\PendingMetric` carried as the `payload` of a
//! `metrics` envelope. reverb-shard writes one for every fleet-wide HTTP query and
//! reads those of every node (its own included) to answer them.
//!
//! Writing follows Reverb exactly — all 6 protected properties, in order, with the types
//! its typed properties demand — because a Reverb node that cannot unserialize a request
//! stops (scaling.md §8). Reading is lenient about order, visibility and extra
//! properties, strict about what an answer depends on: the key, the type and the
//! application.

use super::application;
use super::php::{self, protected, Key, Value};
use crate::config::AppConfig;
use std::fmt;

/// PHP class of the request.
pub const CLASS: &str = "Laravel\\Reverb\\Protocols\\Pusher\\PendingMetric";

/// PHP enum class of the request type.
pub const METRIC_TYPE_CLASS: &str = "Laravel\\Reverb\\Protocols\\Pusher\\MetricType";

/// Length of a request key (Reverb: `Str::random(10)`).
pub const KEY_LEN: usize = 10;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Connections,
    Channel,
    Channels,
    ChannelUsers,
}

impl MetricType {
    /// The enum case name in PHP.
    pub fn case(self) -> &'static str {
        match self {
            MetricType::Connections => "CONNECTIONS",
            MetricType::Channel => "CHANNEL",
            MetricType::Channels => "CHANNELS",
            MetricType::ChannelUsers => "CHANNEL_USERS",
        }
    }

    /// The type for a case name (exact, as PHP enum cases are case-sensitive).
    pub fn from_case(case: &str) -> Option<MetricType> {
        [
            MetricType::Connections,
            MetricType::Channel,
            MetricType::Channels,
            MetricType::ChannelUsers,
        ]
        .into_iter()
        .find(|t| t.case() == case)
    }

    pub fn to_value(self) -> Value {
        Value::Enum {
            class: METRIC_TYPE_CLASS.to_string(),
            case: self.case().to_string(),
        }
    }
}

/// One value of the request's `options` array: Reverb sends strings, nulls (an HTTP
/// parameter that was not given) and, for `channels`, a list of names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    Null,
    Str(String),
    List(Vec<String>),
}

impl OptionValue {
    fn to_value(&self) -> Value {
        match self {
            OptionValue::Null => Value::Null,
            OptionValue::Str(s) => Value::str(s),
            OptionValue::List(items) => Value::list(items.iter().map(|s| Value::str(s))),
        }
    }
}

/// Options as [`write_request`] takes them, in the order they are written.
pub type RequestOptions = Vec<(&'static str, OptionValue)>;

fn opt(s: Option<&str>) -> OptionValue {
    s.map_or(OptionValue::Null, |s| OptionValue::Str(s.to_string()))
}

/// Options of `GET /channels` (scaling.md §5.1): `filter`, `info`, each null when the
/// query parameter is absent.
pub fn channels_query_options(
    filter_by_prefix: Option<&str>,
    info: Option<&str>,
) -> RequestOptions {
    vec![("filter", opt(filter_by_prefix)), ("info", opt(info))]
}

/// Options of `GET /channels/{c}`: `channel`, and `info` with `occupied` appended as
/// Reverb does (`"{info},occupied"`, or `"occupied"` when `info` is absent or empty).
pub fn channel_query_options(channel: &str, info: Option<&str>) -> RequestOptions {
    let info = match info {
        Some(i) if !i.is_empty() => format!("{i},occupied"),
        _ => "occupied".to_string(),
    };
    vec![
        ("channel", OptionValue::Str(channel.to_string())),
        ("info", OptionValue::Str(info)),
    ]
}

/// Options of `GET /channels/{c}/users`.
pub fn channel_users_options(channel: &str) -> RequestOptions {
    vec![("channel", OptionValue::Str(channel.to_string()))]
}

/// Options of `POST /events` with `info`: `info`, then the list of channel names.
pub fn event_info_options(info: &str, channels: &[String]) -> RequestOptions {
    vec![
        ("info", OptionValue::Str(info.to_string())),
        ("channels", OptionValue::List(channels.to_vec())),
    ]
}

/// Options of a batch item with `info` (a `channel` request; no implicit `occupied`).
pub fn batch_item_options(channel: &str, info: &str) -> RequestOptions {
    vec![
        ("channel", OptionValue::Str(channel.to_string())),
        ("info", OptionValue::Str(info.to_string())),
    ]
}

/// The serialized request, ready for the `payload` string of a `metrics` envelope.
/// `GET /connections` passes no options (`a:0:{}`).
pub fn write_request(
    key: &str,
    app: &AppConfig,
    kind: MetricType,
    options: &[(&str, OptionValue)],
) -> String {
    let options = Value::Array(
        options
            .iter()
            .map(|(k, v)| (Key::Str(k.as_bytes().to_vec()), v.to_value()))
            .collect(),
    );
    let request = Value::Object {
        class: CLASS.to_string(),
        props: vec![
            (protected("subscribers"), Value::Null),
            (protected("data"), Value::Array(Vec::new())),
            (protected("key"), Value::str(key)),
            (protected("application"), application::to_value(app)),
            (protected("type"), kind.to_value()),
            (protected("options"), options),
        ],
    };
    let mut out = Vec::new();
    php::write(&request, &mut out);
    // All parts are Rust strings or ASCII.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The options a responder uses; absent, null and unusable values are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricOptions {
    pub channel: Option<String>,
    pub info: Option<String>,
    pub filter: Option<String>,
    pub channels: Option<Vec<String>>,
}

/// A request read from another node (or from this one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricRequest {
    pub key: String,
    pub app_id: String,
    pub kind: MetricType,
    pub options: MetricOptions,
}

/// Why a request could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    Php(php::Error),
    /// Not a `PendingMetric` object.
    WrongClass,
    /// A required property is absent.
    Missing(&'static str),
    /// A property has a type or value reverb-shard cannot answer.
    Invalid(&'static str),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Php(e) => write!(f, "metrics request: {e}"),
            RequestError::WrongClass => write!(f, "metrics request: not a {CLASS} object"),
            RequestError::Missing(p) => write!(f, "metrics request: no `{p}` property"),
            RequestError::Invalid(p) => write!(f, "metrics request: unusable `{p}` property"),
        }
    }
}

impl std::error::Error for RequestError {}

/// Whether `key` is a request key reverb-shard will answer under: 10 ASCII letters or
/// digits. The answer is published with the key as its envelope `type`, so a key such
/// as `message` or `terminate` would make reverb-shard publish an envelope that stops
/// Reverb nodes (scaling.md §8); only keys of Reverb's own shape are accepted.
pub fn is_valid_key(key: &str) -> bool {
    key.len() == KEY_LEN && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Reads a serialized request: any property order, public or protected names, extra
/// properties ignored. `key`, `type` and `application` are required; a missing or
/// non-array `options` counts as no options.
pub fn parse_request(serialized: &str) -> Result<MetricRequest, RequestError> {
    let value = php::parse(serialized.as_bytes()).map_err(RequestError::Php)?;
    if value.class() != Some(CLASS) {
        return Err(RequestError::WrongClass);
    }
    let key = value
        .prop("key")
        .ok_or(RequestError::Missing("key"))?
        .as_str()
        .filter(|k| is_valid_key(k))
        .ok_or(RequestError::Invalid("key"))?
        .to_string();
    let kind = match value.prop("type").ok_or(RequestError::Missing("type"))? {
        Value::Enum { class, case } if class == METRIC_TYPE_CLASS => {
            MetricType::from_case(case).ok_or(RequestError::Invalid("type"))?
        }
        _ => return Err(RequestError::Invalid("type")),
    };
    let app_id = application::app_id_of_value(
        value
            .prop("application")
            .ok_or(RequestError::Missing("application"))?,
    )
    .ok_or(RequestError::Invalid("application"))?;
    let options = value.prop("options").map(read_options).unwrap_or_default();
    Ok(MetricRequest {
        key,
        app_id,
        kind,
        options,
    })
}

/// A scalar option as text: strings as they are, integers as PHP would print them
/// (a numeric channel name written by hand); anything else is unusable.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::Str(b) => String::from_utf8(b.clone()).ok(),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn read_options(value: &Value) -> MetricOptions {
    let channels = match value.get("channels") {
        // Reverb sends a list; any array's values are the names, in order.
        Some(Value::Array(entries)) => Some(entries.iter().filter_map(|(_, v)| text(v)).collect()),
        _ => None,
    };
    MetricOptions {
        channel: value.get("channel").and_then(text),
        info: value.get("info").and_then(text),
        filter: value.get("filter").and_then(text),
        channels,
    }
}

/// A new request key: 10 characters `[A-Za-z0-9]`, uniformly drawn from the OS random
/// source (rejection sampling keeps the 62 symbols equally likely).
pub fn fresh_key() -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut key = String::with_capacity(KEY_LEN);
    let mut buf = [0u8; 32];
    while key.len() < KEY_LEN {
        getrandom::getrandom(&mut buf).expect("the OS random source failed");
        for &b in &buf {
            // 248 = 4 * 62: bytes above it would favour the first symbols.
            if b < 248 && key.len() < KEY_LEN {
                key.push(ALPHABET[usize::from(b % 62)] as char);
            }
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppConfig {
        AppConfig::new("123456", "app-key", "app-secret")
    }

    /// scaling.md §4.3 example with the §4.2 application spelled out.
    fn example() -> String {
        format!(
            "O:45:\"Laravel\\Reverb\\Protocols\\Pusher\\PendingMetric\":6:{{s:14:\"\0*\0subscribers\";N;s:7:\"\0*\0data\";a:0:{{}}s:6:\"\0*\0key\";s:10:\"Xy12Ab34Cd\";s:14:\"\0*\0application\";{}s:7:\"\0*\0type\";E:50:\"Laravel\\Reverb\\Protocols\\Pusher\\MetricType:CHANNEL\";s:10:\"\0*\0options\";a:2:{{s:7:\"channel\";s:15:\"presence-room.1\";s:4:\"info\";s:19:\"user_count,occupied\";}}}}",
            application::serialize(&app())
        )
    }

    #[test]
    fn writes_the_spec_example() {
        let written = write_request(
            "Xy12Ab34Cd",
            &app(),
            MetricType::Channel,
            &batch_item_options("presence-room.1", "user_count,occupied"),
        );
        assert_eq!(written, example());
        // The application inside is exactly the §4.2 example.
        assert!(written
            .contains("O:26:\"Laravel\\Reverb\\Application\":11:{s:5:\"\0*\0id\";s:6:\"123456\";"));
    }

    #[test]
    fn enum_encodings_are_exact() {
        let enc = |t: MetricType| {
            let mut out = Vec::new();
            php::write(&t.to_value(), &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            enc(MetricType::Connections),
            "E:54:\"Laravel\\Reverb\\Protocols\\Pusher\\MetricType:CONNECTIONS\";"
        );
        assert_eq!(
            enc(MetricType::Channel),
            "E:50:\"Laravel\\Reverb\\Protocols\\Pusher\\MetricType:CHANNEL\";"
        );
        assert_eq!(
            enc(MetricType::Channels),
            "E:51:\"Laravel\\Reverb\\Protocols\\Pusher\\MetricType:CHANNELS\";"
        );
        assert_eq!(
            enc(MetricType::ChannelUsers),
            "E:56:\"Laravel\\Reverb\\Protocols\\Pusher\\MetricType:CHANNEL_USERS\";"
        );
        assert_eq!(CLASS.len(), 45);
        assert_eq!(MetricType::from_case("channel"), None);
    }

    #[test]
    fn parses_the_spec_example() {
        let r = parse_request(&example()).unwrap();
        assert_eq!(
            r,
            MetricRequest {
                key: "Xy12Ab34Cd".into(),
                app_id: "123456".into(),
                kind: MetricType::Channel,
                options: MetricOptions {
                    channel: Some("presence-room.1".into()),
                    info: Some("user_count,occupied".into()),
                    filter: None,
                    channels: None,
                },
            }
        );
    }

    #[test]
    fn option_shapes_of_every_http_call() {
        let cases: Vec<(MetricType, RequestOptions, &str, MetricOptions)> = vec![
            (
                MetricType::Channels,
                channels_query_options(None, None),
                "a:2:{s:6:\"filter\";N;s:4:\"info\";N;}",
                MetricOptions::default(),
            ),
            (
                MetricType::Channels,
                channels_query_options(Some("presence-"), Some("user_count")),
                "a:2:{s:6:\"filter\";s:9:\"presence-\";s:4:\"info\";s:10:\"user_count\";}",
                MetricOptions {
                    filter: Some("presence-".into()),
                    info: Some("user_count".into()),
                    ..Default::default()
                },
            ),
            (
                MetricType::Channel,
                channel_query_options("orders", Some("subscription_count")),
                "a:2:{s:7:\"channel\";s:6:\"orders\";s:4:\"info\";s:27:\"subscription_count,occupied\";}",
                MetricOptions {
                    channel: Some("orders".into()),
                    info: Some("subscription_count,occupied".into()),
                    ..Default::default()
                },
            ),
            (
                MetricType::Channel,
                channel_query_options("orders", None),
                "a:2:{s:7:\"channel\";s:6:\"orders\";s:4:\"info\";s:8:\"occupied\";}",
                MetricOptions {
                    channel: Some("orders".into()),
                    info: Some("occupied".into()),
                    ..Default::default()
                },
            ),
            (
                MetricType::ChannelUsers,
                channel_users_options("presence-a"),
                "a:1:{s:7:\"channel\";s:10:\"presence-a\";}",
                MetricOptions {
                    channel: Some("presence-a".into()),
                    ..Default::default()
                },
            ),
            (
                MetricType::Connections,
                Vec::new(),
                "a:0:{}",
                MetricOptions::default(),
            ),
            (
                MetricType::Channels,
                event_info_options("user_count", &["a".into(), "bc".into()]),
                "a:2:{s:4:\"info\";s:10:\"user_count\";s:8:\"channels\";a:2:{i:0;s:1:\"a\";i:1;s:2:\"bc\";}}",
                MetricOptions {
                    info: Some("user_count".into()),
                    channels: Some(vec!["a".into(), "bc".into()]),
                    ..Default::default()
                },
            ),
        ];
        for (kind, options, encoded, parsed) in cases {
            let key = fresh_key();
            let text = write_request(&key, &app(), kind, &options);
            let expected_tail = format!("s:10:\"\0*\0options\";{encoded}}}");
            assert!(text.ends_with(&expected_tail), "{text:?} !~ {encoded}");
            let r = parse_request(&text).unwrap();
            assert_eq!(r.key, key);
            assert_eq!(r.kind, kind);
            assert_eq!(r.app_id, "123456");
            assert_eq!(r.options, parsed, "{encoded}");
        }
    }

    #[test]
    fn lenient_reading() {
        // Public names, shuffled order, extra properties, no options, no subscribers/data.
        let text = format!(
            "O:45:\"{CLASS}\":4:{{s:4:\"type\";E:51:\"{METRIC_TYPE_CLASS}:CHANNELS\";s:5:\"extra\";a:0:{{}}s:11:\"application\";O:26:\"Laravel\\Reverb\\Application\":1:{{s:2:\"id\";s:1:\"7\";}}s:3:\"key\";s:10:\"abcdeFGHIJ\";}}"
        );
        let r = parse_request(&text).unwrap();
        assert_eq!(r.kind, MetricType::Channels);
        assert_eq!(r.app_id, "7");
        assert_eq!(r.key, "abcdeFGHIJ");
        assert_eq!(r.options, MetricOptions::default());

        // Options with odd values: ints as text, other types dropped, channels from a map.
        let text = format!(
            "O:45:\"{CLASS}\":4:{{s:3:\"key\";s:10:\"abcdeFGHIJ\";s:4:\"type\";E:50:\"{METRIC_TYPE_CLASS}:CHANNEL\";s:11:\"application\";O:26:\"Laravel\\Reverb\\Application\":1:{{s:2:\"id\";s:1:\"7\";}}s:7:\"options\";a:4:{{s:7:\"channel\";i:12;s:4:\"info\";b:1;s:6:\"filter\";a:0:{{}}s:8:\"channels\";a:3:{{i:5;s:1:\"x\";s:1:\"k\";N;i:9;i:3;}}}}}}"
        );
        let r = parse_request(&text).unwrap();
        assert_eq!(
            r.options,
            MetricOptions {
                channel: Some("12".into()),
                info: None,
                filter: None,
                channels: Some(vec!["x".into(), "3".into()]),
            }
        );
    }

    #[test]
    fn rejects_unusable_requests() {
        let app_obj = application::serialize(&app());
        let ty = format!("E:50:\"{METRIC_TYPE_CLASS}:CHANNEL\";");
        let build = |props: &[(&str, String)]| {
            let mut s = format!("O:45:\"{CLASS}\":{}:{{", props.len());
            for (name, value) in props {
                s.push_str(&format!("s:{}:\"{name}\";{value}", name.len()));
            }
            s.push('}');
            s
        };
        let key = ("key", "s:10:\"Xy12Ab34Cd\";".to_string());
        let typ = ("type", ty.clone());
        let appl = ("application", app_obj.clone());
        assert!(parse_request(&build(&[key.clone(), typ.clone(), appl.clone()])).is_ok());

        assert_eq!(
            parse_request(&build(&[typ.clone(), appl.clone()])),
            Err(RequestError::Missing("key"))
        );
        assert_eq!(
            parse_request(&build(&[key.clone(), appl.clone()])),
            Err(RequestError::Missing("type"))
        );
        assert_eq!(
            parse_request(&build(&[key.clone(), typ.clone()])),
            Err(RequestError::Missing("application"))
        );
        for bad_key in [
            "s:7:\"message\";",
            "s:9:\"terminate\";",
            "s:10:\"Xy12Ab34C:\";",
            "s:11:\"Xy12Ab34Cde\";",
            "i:1234567890;",
            "N;",
        ] {
            let k = ("key", bad_key.to_string());
            assert_eq!(
                parse_request(&build(&[k, typ.clone(), appl.clone()])),
                Err(RequestError::Invalid("key")),
                "{bad_key}"
            );
        }
        for bad_type in [
            "s:7:\"CHANNEL\";".to_string(),
            "E:9:\"X:CHANNEL\";".to_string(),
            format!("E:51:\"{METRIC_TYPE_CLASS}:PRESENCE\";"),
            format!("E:56:\"{METRIC_TYPE_CLASS}:PRESENCE_DATA\";"),
        ] {
            let t = ("type", bad_type.clone());
            assert_eq!(
                parse_request(&build(&[key.clone(), t, appl.clone()])),
                Err(RequestError::Invalid("type")),
                "{bad_type}"
            );
        }
        let wrong_app = app_obj.replace("Application\"", "Applicatiom\"");
        assert_eq!(
            parse_request(&build(&[
                key.clone(),
                typ.clone(),
                ("application", wrong_app)
            ])),
            Err(RequestError::Invalid("application"))
        );
        let other_class = build(&[key, typ, appl]).replace("PendingMetric", "PendingMetrix");
        assert_eq!(parse_request(&other_class), Err(RequestError::WrongClass));
        assert!(matches!(parse_request(""), Err(RequestError::Php(_))));
        assert!(matches!(
            parse_request("{\"type\":\"metrics\"}"),
            Err(RequestError::Php(_))
        ));
        assert!(RequestError::Missing("key").to_string().contains("key"));
    }

    #[test]
    fn truncated_or_mutated_requests_never_panic() {
        let text = example();
        let bytes = text.as_bytes();
        for cut in 0..bytes.len() {
            let prefix = String::from_utf8_lossy(&bytes[..cut]);
            assert!(parse_request(&prefix).is_err(), "prefix {cut}");
        }
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3_000 {
            let mut m = bytes.to_vec();
            for _ in 0..1 + next() % 4 {
                let i = (next() % m.len() as u64) as usize;
                m[i] = b"0123456789:;{}\"sNaOE\0"[(next() % 21) as usize];
            }
            let _ = parse_request(&String::from_utf8_lossy(&m));
        }
        // Huge counts and lengths are refused before anything is allocated.
        let huge = text.replacen(":6:{", ":4000000000:{", 1);
        assert!(parse_request(&huge).is_err());
        let huge = text.replacen("a:2:{", "a:999999999999:{", 1);
        assert!(parse_request(&huge).is_err());
    }

    #[test]
    fn fresh_keys() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let k = fresh_key();
            assert!(is_valid_key(&k), "{k}");
            seen.insert(k);
        }
        assert_eq!(seen.len(), 200);
    }
}
