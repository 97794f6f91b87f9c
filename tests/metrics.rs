//! `GET /metrics` against the real binary: the answer is strict Prometheus text, the
//! figures follow what clients and API callers do (connections 0→2→0, exact message
//! counts, HTTP statuses, rate-limited messages, slow consumers), and access is
//! enforced — a bearer token when one is configured, loopback peers only otherwise
//! (checked from a non-loopback address inside a network namespace of the test's own),
//! 404 when metrics are off.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

use serde_json::json;
use support::http_api::{self, eventually, Signer};
use support::raw::{self, frame_bytes, tiny_receiver, wait_closed, HttpResponse, FIN, OP_TEXT};
use support::{RawWs, TestServer, APP_ID, APP_KEY};

// ---------------------------------------------------------------------------------------
// A strict parser of the text exposition format (version 0.0.4).

/// One sample: metric name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Default)]
struct Exposition {
    /// name → (help, type)
    families: HashMap<String, (String, String)>,
    samples: Vec<Sample>,
}

impl Exposition {
    /// The value of the one sample with this name and exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// Sum of every sample of `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
            })
            .map(|s| s.value)
            .sum()
    }

    fn kind(&self, name: &str) -> &str {
        &self.families[name].1
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parse `{a="x",b="y"}` at the start of `s`; returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("labels must open with {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, '\n')) => return Err("raw line feed in a label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("labels must be separated by commas".into());
        }
    }
}

/// Parse a whole exposition; every rule broken is an error naming the line.
fn parse_exposition(text: &str) -> Result<Exposition, String> {
    if !text.ends_with('\n') {
        return Err("the text must end with a line feed".into());
    }
    let mut out = Exposition::default();
    let mut helps: HashMap<String, String> = HashMap::new();
    // Families whose samples are finished (another family's sample came after them).
    let mut closed: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series: HashSet<(String, BTreeMap<String, String>)> = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |why: String| format!("line {}: {why}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(at("empty line".into()));
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest
                .split_once(' ')
                .ok_or_else(|| at("HELP without text".into()))?;
            if !is_metric_name(name) {
                return Err(at("bad metric name".into()));
            }
            if helps.insert(name.to_string(), help.to_string()).is_some() {
                return Err(at("second HELP".into()));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| at("TYPE without type".into()))?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(at(format!("unknown type {kind}")));
            }
            if out.samples.iter().any(|s| s.name == name) {
                return Err(at("TYPE after the family's samples".into()));
            }
            let help = helps
                .get(name)
                .cloned()
                .ok_or_else(|| at("TYPE without a HELP before it".into()))?;
            if out
                .families
                .insert(name.to_string(), (help, kind.to_string()))
                .is_some()
            {
                return Err(at("second TYPE".into()));
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(at("unexpected comment".into()));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(at("bad metric name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("one space before the value".into()))?;
        if value.contains(' ') {
            return Err(at("timestamps are not expected".into()));
        }
        let value: f64 = value
            .parse()
            .map_err(|_| at("value is not a number".into()))?;
        let (_, kind) = out
            .families
            .get(name)
            .ok_or_else(|| at("sample without a TYPE line".into()))?;
        if kind == "counter" && (!name.ends_with("_total") || value < 0.0) {
            return Err(at("counters are named *_total and never negative".into()));
        }
        if current.as_deref() != Some(name) {
            if closed.contains(name) {
                return Err(at("the family's samples are not in one group".into()));
            }
            if let Some(previous) = current.replace(name.to_string()) {
                closed.insert(previous);
            }
        }
        if !series.insert((name.to_string(), labels.clone())) {
            return Err(at("the same series twice".into()));
        }
        out.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    if let Some(orphan) = helps.keys().find(|h| !out.families.contains_key(*h)) {
        return Err(format!("HELP without TYPE for {orphan}"));
    }
    Ok(out)
}

#[test]
fn the_parser_is_strict() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\\\"\"} 2\n";
    assert_eq!(
        parse_exposition(good)
            .unwrap()
            .value("a_total", &[("x", "1\"")]),
        Some(2.0)
    );
    for bad in [
        "a 1\n",
        "# TYPE a gauge\na 1\n",
        "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n",
        "# HELP a A.\n# TYPE a gauge\na  1\n",
        "# HELP a A.\n# TYPE a gauge\na 1",
        "# HELP a A.\n# TYPE a gauge\na one\n",
        "# HELP a A.\n# TYPE a counter\na 1\n",
        "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\na 1\nb 1\na{x=\"2\"} 1\n",
        "# HELP a A.\n# TYPE a gauge\na 1\na 2\n",
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn request(path: &str, method: &str, authorization: Option<&str>) -> Vec<u8> {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n")
        .into_bytes()
}

fn get_metrics(addr: &str, authorization: Option<&str>) -> HttpResponse {
    raw::http_exchange(addr, &request("/metrics", "GET", authorization)).0
}

/// A scrape that must succeed, parsed.
fn scrape(server: &TestServer) -> Exposition {
    let r = get_metrics(&server.addr(), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{r:?}"
    );
    parse_exposition(&r.body_text())
        .unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{}", r.body_text()))
}

fn app_value(server: &TestServer, name: &str) -> u64 {
    scrape(server).sum(name, &[("app", APP_ID)]) as u64
}

fn config(server_lines: &str, app_lines: &str) -> String {
    support::app_config(app_lines).replace("port = 0\n", &format!("port = 0\n{server_lines}\n"))
}

// ---------------------------------------------------------------------------------------
// What the figures say.

#[test]
fn figures_follow_connections_messages_and_api_calls() {
    let shards = http_api::shards();
    let server = TestServer::start(&config("", ""), shards);
    let first = scrape(&server);
    for (name, kind) in [
        ("reverb_connections", "gauge"),
        ("reverb_subscriptions", "gauge"),
        ("reverb_channels", "gauge"),
        ("reverb_messages_received_total", "counter"),
        ("reverb_messages_sent_total", "counter"),
        ("reverb_bytes_received_total", "counter"),
        ("reverb_bytes_sent_total", "counter"),
        ("reverb_http_requests_total", "counter"),
        ("reverb_rate_limited_messages_total", "counter"),
        ("reverb_slow_consumers_closed_total", "counter"),
        ("reverb_mesh_queue_full_total", "counter"),
        ("reverb_mesh_parked_messages", "gauge"),
        ("reverb_redis_link_up", "gauge"),
        ("reverb_redis_dropped_publishes_total", "counter"),
        ("reverb_open_fds", "gauge"),
        ("reverb_max_fds", "gauge"),
    ] {
        assert_eq!(first.kind(name), kind, "{name}");
    }
    // One connections series per shard, all zero; one mesh series per shard.
    for shard in 0..shards {
        let s = shard.to_string();
        let labels = [("app", APP_ID), ("shard", s.as_str())];
        assert_eq!(first.value("reverb_connections", &labels), Some(0.0));
        assert!(first
            .value("reverb_mesh_queue_full_total", &[("shard", &s)])
            .is_some());
        assert_eq!(
            first.value("reverb_mesh_parked_messages", &[("shard", &s)]),
            Some(0.0)
        );
    }
    assert_eq!(
        first.value("reverb_messages_sent_total", &[("app", APP_ID)]),
        Some(0.0)
    );
    assert_eq!(first.value("reverb_redis_link_up", &[]), Some(0.0));
    let fds = first.value("reverb_open_fds", &[]).unwrap();
    assert!(fds > 0.0 && fds <= first.value("reverb_max_fds", &[]).unwrap());

    // Two clients: the gauge goes to 2; each got connection_established (2 sent).
    let (mut a, _) = server.connect_established();
    let (mut b, _) = server.connect_established();
    eventually(2, || app_value(&server, "reverb_connections"));
    // Both subscribe to one channel: 2 received, 2 succeeded sent.
    for client in [&mut a, &mut b] {
        client.send_json(&json!({"event": "pusher:subscribe", "data": {"channel": "news"}}));
        assert_eq!(
            client.recv_json()["event"],
            "pusher_internal:subscription_succeeded"
        );
    }
    // A ping: 1 received, 1 pong sent.
    a.assert_alive();
    // An event through the API reaches both: 2 sent.
    let r = http_api::trigger(
        &server,
        &json!({"name": "e", "channel": "news", "data": "{}"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    for client in [&mut a, &mut b] {
        assert_eq!(client.recv_json()["event"], "e");
    }
    // A wrongly signed call: 401.
    let wrong = Signer {
        secret: "not-the-secret".into(),
        ..Signer::default()
    };
    let r = http_api::call_signed(
        &server,
        &wrong,
        "GET",
        &http_api::app_path("/channels"),
        &[],
        "",
    );
    assert_eq!(r.status, 401, "{r:?}");

    eventually(7, || app_value(&server, "reverb_messages_sent_total"));
    let m = scrape(&server);
    assert_eq!(m.sum("reverb_connections", &[("app", APP_ID)]), 2.0);
    assert_eq!(
        m.value("reverb_messages_received_total", &[("app", APP_ID)]),
        Some(3.0)
    );
    assert_eq!(
        m.value("reverb_messages_sent_total", &[("app", APP_ID)]),
        Some(7.0)
    );
    assert_eq!(
        m.value("reverb_subscriptions", &[("app", APP_ID)]),
        Some(2.0)
    );
    assert_eq!(m.value("reverb_channels", &[("app", APP_ID)]), Some(1.0));
    let events_ok = [("route", "events"), ("status", "200")];
    assert_eq!(m.value("reverb_http_requests_total", &events_ok), Some(1.0));
    let channels_401 = [("route", "channels"), ("status", "401")];
    assert_eq!(
        m.value("reverb_http_requests_total", &channels_401),
        Some(1.0)
    );
    // Bytes: every frame in counts (the 3 client messages, masked, at least their
    // payloads) and every frame out (7 messages at least their payloads).
    let bytes_in = m
        .value("reverb_bytes_received_total", &[("app", APP_ID)])
        .unwrap();
    let bytes_out = m
        .value("reverb_bytes_sent_total", &[("app", APP_ID)])
        .unwrap();
    assert!(bytes_in >= 3.0 * 20.0, "{bytes_in}");
    assert!(bytes_out >= 7.0 * 20.0, "{bytes_out}");
    assert_eq!(
        m.value("reverb_rate_limited_messages_total", &[("app", APP_ID)]),
        Some(0.0)
    );

    // Both leave: the gauges go back to 0; counters keep what happened.
    a.close_with(1000, "");
    b.close_with(1000, "");
    eventually(0, || app_value(&server, "reverb_connections"));
    let m = scrape(&server);
    assert_eq!(
        m.value("reverb_subscriptions", &[("app", APP_ID)]),
        Some(0.0)
    );
    assert_eq!(m.value("reverb_channels", &[("app", APP_ID)]), Some(0.0));
    assert_eq!(
        m.value("reverb_messages_received_total", &[("app", APP_ID)]),
        Some(3.0)
    );
    assert_eq!(
        m.value("reverb_messages_sent_total", &[("app", APP_ID)]),
        Some(7.0)
    );
    // Scrapes themselves are not API requests.
    assert_eq!(m.sum("reverb_http_requests_total", &[]), 2.0);
}

#[test]
fn rate_limited_messages_are_counted_and_not_received() {
    let server = TestServer::start(
        &config(
            "",
            "\n[apps.rate_limiting]\nenabled = true\nmax_attempts = 2\ndecay_seconds = 60\n",
        ),
        1,
    );
    let (mut client, _) = server.connect_established();
    client.assert_alive();
    client.assert_alive();
    client.send_json(&json!({"event": "pusher:ping", "data": {}}));
    client.expect_error(4301);
    eventually(1, || {
        app_value(&server, "reverb_rate_limited_messages_total")
    });
    assert_eq!(app_value(&server, "reverb_messages_received_total"), 2);
    // established, 2 pongs, the error.
    eventually(4, || app_value(&server, "reverb_messages_sent_total"));
}

#[test]
fn a_slow_consumer_cut_off_is_counted() {
    let server = TestServer::start(&config("outbound_buffer = 65536", ""), 1);
    let addr = server.addr();
    let mut slow = RawWs::upgrade_on(tiny_receiver(&addr), &addr, &format!("/app/{APP_KEY}"), &[]);
    assert_eq!(slow.expect_json()["event"], "pusher:connection_established");
    let mut stream = slow.stream.try_clone().unwrap();
    // Pipelined pings whose pongs are never read, until the server hangs up.
    let burst = frame_bytes(FIN | OP_TEXT, true, br#"{"event":"pusher:ping"}"#).repeat(2_000);
    let started = Instant::now();
    'flood: for _ in 0..150 {
        let mut at = 0;
        while at < burst.len() {
            match stream.write(&burst[at..]) {
                Ok(0) => break 'flood,
                Ok(n) => at += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if started.elapsed() > Duration::from_secs(30) {
                        break 'flood;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break 'flood,
            }
        }
    }
    wait_closed(&mut stream, Duration::from_secs(15));
    eventually(1, || {
        app_value(&server, "reverb_slow_consumers_closed_total")
    });
    eventually(0, || app_value(&server, "reverb_connections"));
}

// ---------------------------------------------------------------------------------------
// Who may read it.

#[test]
fn a_token_is_required_when_one_is_set() {
    let server = TestServer::start(
        &config("metrics_token = \"s3cret-token\"\npath = \"/ws\"", ""),
        1,
    );
    let addr = server.addr();
    let at = |auth: Option<&str>| raw::http_exchange(&addr, &request("/ws/metrics", "GET", auth)).0;
    let none = at(None);
    assert_eq!(none.status, 401, "{none:?}");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert_eq!(at(Some("Bearer wrong")).status, 401);
    assert_eq!(at(Some("Basic s3cret-token")).status, 401);
    assert_eq!(at(Some("Bearer s3cret-token-and-more")).status, 401);
    let ok = at(Some("Bearer s3cret-token"));
    assert_eq!(ok.status, 200, "{ok:?}");
    parse_exposition(&ok.body_text()).unwrap();
    // Only under the prefix, and only GET/HEAD.
    assert_eq!(get_metrics(&addr, Some("Bearer s3cret-token")).status, 404);
    let post = raw::http_exchange(
        &addr,
        &request("/ws/metrics", "POST", Some("Bearer s3cret-token")),
    )
    .0;
    assert_eq!(post.status, 405);
}

#[test]
fn metrics_off_is_an_unknown_path() {
    let server = TestServer::start(&config("metrics = false", ""), 1);
    let r = get_metrics(&server.addr(), None);
    assert_eq!(r.status, 404, "{r:?}");
    // The rest of the server is unaffected.
    assert_eq!(raw::get(&server.addr(), "/up").status, 200);
}

/// A non-loopback address on this machine's loopback device, inside a network namespace
/// that only this test's thread (and the server it starts) lives in: traffic to it
/// never leaves the namespace.
const OWN_ADDRESS: &str = "198.51.100.7";

/// Run `f` on a thread in a fresh network namespace where `OWN_ADDRESS` is local.
/// `None` when namespaces are not available here.
fn in_own_network<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    std::thread::spawn(move || {
        // SAFETY: unshare(CLONE_NEWNET) moves only the calling thread (and the processes
        // it spawns from now on) into a new network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            eprintln!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
            return None;
        }
        for args in [
            &["link", "set", "lo", "up"][..],
            &["addr", "add", &format!("{OWN_ADDRESS}/32"), "dev", "lo"][..],
        ] {
            let status = std::process::Command::new("ip").args(args).status();
            if !status.as_ref().is_ok_and(|s| s.success()) {
                eprintln!("ip {args:?} failed: {status:?}");
                return None;
            }
        }
        Some(f())
    })
    .join()
    .expect("the namespaced test thread")
}

fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why} (required in CI)");
    }
    eprintln!("\n*** SKIPPED: {why} ***\n");
}

#[test]
fn without_a_token_only_loopback_peers_may_scrape() {
    let ran = in_own_network(|| {
        let all_interfaces =
            |extra: &str| config(extra, "").replace("host = \"127.0.0.1\"", "host = \"0.0.0.0\"");
        let server = TestServer::start(&all_interfaces(""), 1);
        let port = server.port;
        let from_loopback = get_metrics(&format!("127.0.0.1:{port}"), None);
        let from_outside = get_metrics(&format!("{OWN_ADDRESS}:{port}"), None);
        // A proxy on this host (nginx) forwarding someone's request.
        let proxied = raw::http_exchange(
            &format!("127.0.0.1:{port}"),
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.5\r\n\r\n",
        )
        .0;
        // The rest of the server still answers that peer.
        let up = raw::get(&format!("{OWN_ADDRESS}:{port}"), "/up");
        drop(server);
        // With a token, the address does not matter.
        let server = TestServer::start(&all_interfaces("metrics_token = \"t\""), 1);
        let with_token = get_metrics(&format!("{OWN_ADDRESS}:{}", server.port), Some("Bearer t"));
        (from_loopback, from_outside, proxied, up, with_token)
    });
    let Some((from_loopback, from_outside, proxied, up, with_token)) = ran else {
        return skip_or_fail("no network namespace for a non-loopback peer");
    };
    assert_eq!(from_loopback.status, 200, "{from_loopback:?}");
    assert_eq!(from_outside.status, 403, "{from_outside:?}");
    assert_eq!(proxied.status, 403, "{proxied:?}");
    assert_eq!(up.status, 200, "{up:?}");
    assert_eq!(with_token.status, 200, "{with_token:?}");
}
