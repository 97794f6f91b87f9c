//! The Prometheus text exposition format (version 0.0.4): every family with its `# HELP`
//! and `# TYPE` lines, then `name{label="value",…} value` samples. Per-app figures are
//! summed over the shards; connections keep a `shard` label too, so an unbalanced
//! spread across cores shows.

use std::fmt::Write;

use super::http::ApiRoute;
use super::process;
use super::snapshot::{distinct_channels, AppSnapshot, ShardSnapshot};

/// The `Content-Type` of a scrape answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Process-wide figures that do not come from the shards.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessFigures {
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub redis_link_up: bool,
    pub redis_dropped: u64,
}

impl ProcessFigures {
    /// Read them now.
    pub fn now() -> ProcessFigures {
        let (redis_link_up, redis_dropped) = process::redis();
        ProcessFigures {
            open_fds: process::open_fds(),
            max_fds: process::max_fds(),
            redis_link_up,
            redis_dropped,
        }
    }
}

/// Reads one figure of an app's snapshot.
type AppFigure = fn(&AppSnapshot) -> u64;

/// Render a scrape: `app_ids[i]` names app index `i`; `shards` are every shard's
/// snapshot, in shard order.
pub fn render(app_ids: &[&str], shards: &[ShardSnapshot], process: &ProcessFigures) -> String {
    let mut out = Exposition::default();

    out.family(
        "reverb_shards",
        "Shards (cores) this process runs.",
        "gauge",
    );
    out.sample("reverb_shards", &[], shards.len() as u64);

    out.family(
        "reverb_connections",
        "Open WebSocket connections, per app and shard.",
        "gauge",
    );
    for (index, app) in app_ids.iter().enumerate() {
        for shard in shards {
            let n = shard.apps.get(index).map_or(0, |a| a.connections);
            let shard_id = shard.shard.to_string();
            out.sample(
                "reverb_connections",
                &[("app", app), ("shard", &shard_id)],
                n,
            );
        }
    }

    out.family(
        "reverb_subscriptions",
        "Channel subscriptions of open connections, per app.",
        "gauge",
    );
    per_app(&mut out, "reverb_subscriptions", app_ids, shards, |a| {
        a.subscriptions
    });

    out.family(
        "reverb_channels",
        "Occupied channels (at least one subscriber on any shard), per app.",
        "gauge",
    );
    for (index, app) in app_ids.iter().enumerate() {
        out.sample(
            "reverb_channels",
            &[("app", app)],
            distinct_channels(shards, index),
        );
    }

    let counters: [(&str, &str, AppFigure); 6] = [
        (
            "reverb_messages_received_total",
            "Client messages handled (passed the rate limit and parsed), per app.",
            |a| a.received,
        ),
        (
            "reverb_messages_sent_total",
            "Messages (data frames) written to clients, per app.",
            |a| a.sent,
        ),
        (
            "reverb_bytes_received_total",
            "Bytes read from WebSocket connections, per app.",
            |a| a.bytes_in,
        ),
        (
            "reverb_bytes_sent_total",
            "Bytes written to WebSocket connections (all frames), per app.",
            |a| a.bytes_out,
        ),
        (
            "reverb_rate_limited_messages_total",
            "Client messages refused by the app's rate limit, per app.",
            |a| a.rate_limited,
        ),
        (
            "reverb_slow_consumers_closed_total",
            "Connections closed because they fell behind their outbound buffer, per app.",
            |a| a.slow_consumers,
        ),
    ];
    for (name, help, value) in counters {
        out.family(name, help, "counter");
        per_app(&mut out, name, app_ids, shards, value);
    }

    out.family(
        "reverb_http_requests_total",
        "HTTP API requests answered, by route and status.",
        "counter",
    );
    let mut http: Vec<(ApiRoute, u16, u64)> = Vec::new();
    for (route, status, n) in shards.iter().flat_map(|s| s.http.iter().copied()) {
        match http
            .iter_mut()
            .find(|(r, s, _)| *r == route && *s == status)
        {
            Some((_, _, total)) => *total += n,
            None => http.push((route, status, n)),
        }
    }
    http.sort();
    for (route, status, n) in http {
        let status = status.to_string();
        out.sample(
            "reverb_http_requests_total",
            &[("route", route.label()), ("status", &status)],
            n,
        );
    }

    out.family(
        "reverb_mesh_queue_full_total",
        "Non-waiting sends between shards that found the target queue full, per sending shard.",
        "counter",
    );
    for shard in shards {
        let shard_id = shard.shard.to_string();
        out.sample(
            "reverb_mesh_queue_full_total",
            &[("shard", &shard_id)],
            shard.mesh_full_events,
        );
    }

    out.family(
        "reverb_mesh_parked_messages",
        "Messages a shard holds back because the queue to another shard is full (mesh queue depth beyond the queue itself).",
        "gauge",
    );
    for shard in shards {
        let shard_id = shard.shard.to_string();
        out.sample(
            "reverb_mesh_parked_messages",
            &[("shard", &shard_id)],
            shard.mesh_parked as u64,
        );
    }

    out.family(
        "reverb_redis_link_up",
        "1 while the Redis scaling link is connected, else 0.",
        "gauge",
    );
    out.sample(
        "reverb_redis_link_up",
        &[],
        u64::from(process.redis_link_up),
    );
    out.family(
        "reverb_redis_dropped_publishes_total",
        "Publishes to Redis that were dropped (link down or backlog full).",
        "counter",
    );
    out.sample(
        "reverb_redis_dropped_publishes_total",
        &[],
        process.redis_dropped,
    );

    out.family(
        "reverb_open_fds",
        "File descriptors open in the process.",
        "gauge",
    );
    if let Some(n) = process.open_fds {
        out.sample("reverb_open_fds", &[], n);
    }
    out.family(
        "reverb_max_fds",
        "The open-files limit (soft): the ceiling on connections.",
        "gauge",
    );
    if let Some(n) = process.max_fds {
        out.sample("reverb_max_fds", &[], n);
    }

    out.text
}

/// One sample per app: the figure summed over the shards.
fn per_app(
    out: &mut Exposition,
    name: &str,
    app_ids: &[&str],
    shards: &[ShardSnapshot],
    value: impl Fn(&AppSnapshot) -> u64,
) {
    for (index, app) in app_ids.iter().enumerate() {
        let total = shards
            .iter()
            .filter_map(|s| s.apps.get(index))
            .map(&value)
            .fold(0u64, u64::wrapping_add);
        out.sample(name, &[("app", app)], total);
    }
}

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(label);
                self.text.push_str("=\"");
                escape_label(&mut self.text, value);
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// Label values escape backslash, double quote and line feed (the format's rule); app
/// ids come from configuration and may hold any of them.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn shard(id: usize, apps: Vec<AppSnapshot>) -> ShardSnapshot {
        ShardSnapshot {
            shard: id,
            apps,
            http: vec![(ApiRoute::Events, 200, 2)],
            mesh_full_events: id as u64,
            mesh_parked: 0,
        }
    }

    #[test]
    fn sums_over_shards_and_keeps_shard_labels_for_connections() {
        let a = |connections, sent, channels: &[&str]| AppSnapshot {
            connections,
            sent,
            subscriptions: channels.len() as u64,
            channels: channels.iter().map(|c| Arc::from(*c)).collect(),
            ..AppSnapshot::default()
        };
        let shards = [
            shard(0, vec![a(2, 5, &["x"]), a(0, 0, &[])]),
            shard(1, vec![a(1, 7, &["x", "y"]), a(3, 1, &[])]),
        ];
        let text = render(&["app-1", "app\"2"], &shards, &ProcessFigures::default());
        for line in [
            "reverb_shards 2",
            "reverb_connections{app=\"app-1\",shard=\"0\"} 2",
            "reverb_connections{app=\"app-1\",shard=\"1\"} 1",
            "reverb_connections{app=\"app\\\"2\",shard=\"1\"} 3",
            "reverb_messages_sent_total{app=\"app-1\"} 12",
            "reverb_messages_sent_total{app=\"app\\\"2\"} 1",
            "reverb_subscriptions{app=\"app-1\"} 3",
            "reverb_channels{app=\"app-1\"} 2",
            "reverb_http_requests_total{route=\"events\",status=\"200\"} 4",
            "reverb_mesh_queue_full_total{shard=\"1\"} 1",
            "reverb_redis_link_up 0",
            "# TYPE reverb_messages_received_total counter",
            "# TYPE reverb_connections gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every family is announced exactly once, before its samples.
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!(types, helps);
    }

    #[test]
    fn label_escapes() {
        let mut s = String::new();
        escape_label(&mut s, "a\\b\"c\nd");
        assert_eq!(s, "a\\\\b\\\"c\\nd");
    }
}
