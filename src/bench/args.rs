//! The `bench` command line: one subcommand per scenario, the flags every scenario
//! shares ([`Common`]), and the parsers that turn a bad value into a clap error naming
//! its flag (exit code 2).

use std::time::Duration;

use clap::{Args, Subcommand};

use super::target::{HttpTarget, WsTarget};

const ABOUT: &str =
    "Load-test any Pusher-protocol server (reverb-shard, Laravel Reverb, soketi, sockudo)";

const LONG_ABOUT: &str = "\
Load-test any Pusher-protocol server (reverb-shard, Laravel Reverb, soketi, sockudo).

Each scenario opens real WebSocket connections from this process (one client executor \
per --cores), drives the server for --duration, waits at most --drain for what is still \
in flight, closes everything and prints a table; with --json it prints exactly one JSON \
object on stdout instead. Every run stops by itself; Ctrl-C ends it early and still \
prints what was measured (a second Ctrl-C exits at once). With --server-pid (the server \
must run on this machine) the report adds the server's CPU seconds and memory (RSS) from \
/proc.

Scenarios:
  connect   open N connections at a concurrency and hold them: establish rate, failures
            by cause, server RSS per connection
  fanout    S subscribers on C public channels, events published through the signed HTTP
            API: deliveries/s, end-to-end latency percentiles, losses, duplicates, server
            CPU-seconds per million deliveries
  whisper   client events (client-*) among members of private or presence channels
  presence  join/leave storm on presence channels: member events/s, and every
            member_added matched by a member_removed
  churn     connect -> subscribe -> disconnect cycles: cycles/s, server RSS before and
            after (leak check)

Run `reverb-shard bench <scenario> --help` for each scenario's flags.";

const EXAMPLES: &str = "\
Examples (the shipped config's demo app; use your server's credentials):
  reverb-shard bench fanout --url ws://127.0.0.1:8080 --app-id 123456 --key app-key \\
      --secret app-secret --subscribers 1000 --rate 200 --duration 10
  reverb-shard bench connect --url ws://127.0.0.1:8080 --app-id 123456 --key app-key \\
      --secret app-secret --connections 19000 --source-ips 4 --server-pid $(pidof reverb-shard)
  reverb-shard bench whisper --url ws://127.0.0.1:8080 --app-id 123456 --key app-key \\
      --secret app-secret --members 100 --rate 500 --json > whisper.json

--app-id, --key and --secret may also come from REVERB_APP_ID, REVERB_APP_KEY and \
REVERB_APP_SECRET (a Laravel app's .env, exported).";

/// `reverb-shard bench <scenario> ...`
#[derive(Args, Debug, Clone)]
#[command(about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Scenario {
    /// Open N connections at a concurrency and hold them; establish rate, failures, RSS per connection
    #[command(
        long_about = "Open --connections WebSocket connections, at most --concurrency of them \
            being set up at any moment, and hold them all for --duration (answering the \
            server's pings), then close them.\n\n\
            Reports the establish rate (connection_established received per second while \
            connecting), the time from TCP connect to connection_established, failures by \
            cause (refused, timeout, handshake status, pusher:error code, ...) and, with \
            --server-pid, the server's RSS before and while holding, the RSS per connection \
            and its CPU seconds. With --channels N every connection also subscribes to one of \
            N public channels (Reverb only pings and counts subscribed connections).",
        after_help = "Examples:\n  \
            reverb-shard bench connect --url ws://127.0.0.1:8080 --app-id 123456 --key app-key \\\n      \
            --secret app-secret --connections 10000 --concurrency 200 --duration 30\n  \
            reverb-shard bench connect --url ws://127.0.0.1:8080 --app-id 123456 --key app-key \\\n      \
            --secret app-secret --connections 19000 --source-ips 4 --server-pid 4242 --json"
    )]
    Connect(ConnectArgs),
    /// Subscribers on public channels, events published through the HTTP API; latency, loss
    #[command(
        long_about = "Connect --subscribers clients spread round-robin over --channels public \
            channels (bench-0, bench-1, ...) and over every --url, then publish events through \
            the signed HTTP API (POST /apps/{id}/events, one event to all the channels at \
            once, at most 100 channels per request) at --rate events per second for \
            --duration, or as fast as the server accepts them with --rate max.\n\n\
            Every event carries its publisher, a sequence number and its send time, so each \
            subscriber's deliveries are checked for losses and duplicates and the end-to-end \
            latency (publish request sent -> frame read by the subscriber) goes into an HDR \
            histogram. Expected deliveries = subscribers x events published. With \
            --server-pid the report adds the server's CPU seconds per million deliveries.\n\n\
            --url may be given several times (subscribers round-robin over the servers) and \
            --api-url picks where events are published: a two-node setup sharing a Redis \
            shows whether every node delivers every event.",
        after_help = "Examples:\n  \
            reverb-shard bench fanout --url ws://127.0.0.1:8080 --app-id 123456 --key app-key \\\n      \
            --secret app-secret --subscribers 1000 --rate 200 --duration 10\n  \
            reverb-shard bench fanout --url ws://127.0.0.1:8080 --app-id 123456 --key app-key \\\n      \
            --secret app-secret --subscribers 5000 --channels 1 --rate max --publishers 4\n  \
            reverb-shard bench fanout --url ws://127.0.0.1:8080 --url ws://127.0.0.1:8081 \\\n      \
            --api-url http://127.0.0.1:8080 --app-id 123456 --key app-key --secret app-secret"
    )]
    Fanout(FanoutArgs),
    /// Client events (client-*) among members of private or presence channels
    #[command(
        long_about = "Connect --members clients, spread round-robin over --channels private \
            channels (private-bench-0, ...; presence-bench-* with --presence), subscriptions \
            signed locally with --secret, then send client events (client-bench) at --rate \
            per second in total, each from the next member in turn, for --duration.\n\n\
            Every other member of the sender's channel should receive each event (the sender \
            never does), so expected deliveries = events x (members per channel - 1). Reports \
            deliveries/s, end-to-end latency, losses and duplicates like fanout. The server \
            must accept client events (Reverb's accept_client_events_from = members, the \
            default) and not rate-limit them.",
        after_help = "Examples:\n  \
            reverb-shard bench whisper --url ws://127.0.0.1:8080 --app-id 123456 --key app-key \\\n      \
            --secret app-secret --members 100 --channels 10 --rate 500\n  \
            reverb-shard bench whisper --url ws://127.0.0.1:8080 --app-id 123456 --key app-key \\\n      \
            --secret app-secret --presence --members 1000 --rate max --duration 5"
    )]
    Whisper(WhisperArgs),
    /// Join/leave storm on presence channels; member events/s and their correctness
    #[command(
        long_about = "Connect --watchers clients per presence channel (presence-bench-0, ...) \
            that stay joined and watch, and --members clients that join and leave one of the \
            --channels presence channels over and over: --rate joins per second in total, \
            each member staying joined for --hold before it unsubscribes.\n\n\
            Every join must reach every watcher of the channel as one member_added and every \
            leave as one member_removed. The report counts joins, leaves and member events, \
            the member events per second, the latency from the join (or leave) being sent to \
            the watcher reading its event, and the unmatched events: a member_added without \
            its member_removed (or the other way round) at the end of the run.",
        after_help = "Examples:\n  \
            reverb-shard bench presence --url ws://127.0.0.1:8080 --app-id 123456 --key app-key \\\n      \
            --secret app-secret --members 200 --channels 10 --rate 200\n  \
            reverb-shard bench presence --url ws://127.0.0.1:8080 --app-id 123456 --key app-key \\\n      \
            --secret app-secret --members 1000 --watchers 3 --rate max --json"
    )]
    Presence(PresenceArgs),
    /// Connect -> subscribe -> disconnect cycles; cycles/s and server RSS before/after
    #[command(
        long_about = "Run --concurrency workers that each repeat one cycle until --duration \
            is over: connect, wait for connection_established, subscribe to one of \
            --channels public channels (signed private ones with --private), wait for \
            subscription_succeeded, then close with a WebSocket Close and wait for the \
            server to close its side. --rate caps the cycles per second in total.\n\n\
            Reports cycles per second, the cycle time, failures by cause and, with \
            --server-pid, the server's RSS before the first cycle and after the last one \
            (once --settle has passed): a server that leaks per connection grows here.",
        after_help = "Examples:\n  \
            reverb-shard bench churn --url ws://127.0.0.1:8080 --app-id 123456 --key app-key \\\n      \
            --secret app-secret --concurrency 50 --duration 30 --server-pid 4242\n  \
            reverb-shard bench churn --url ws://127.0.0.1:8080 --app-id 123456 --key app-key \\\n      \
            --secret app-secret --private --rate 500 --source-ips 4"
    )]
    Churn(ChurnArgs),
}

impl Scenario {
    pub fn common(&self) -> &Common {
        match self {
            Scenario::Connect(a) => &a.common,
            Scenario::Fanout(a) => &a.common,
            Scenario::Whisper(a) => &a.common,
            Scenario::Presence(a) => &a.common,
            Scenario::Churn(a) => &a.common,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Connect(_) => "connect",
            Scenario::Fanout(_) => "fanout",
            Scenario::Whisper(_) => "whisper",
            Scenario::Presence(_) => "presence",
            Scenario::Churn(_) => "churn",
        }
    }
}

/// The flags every scenario takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Server WebSocket endpoint, ws://HOST:PORT[/PREFIX] (PREFIX = the server's path
    /// setting); repeat it to spread connections round-robin over several servers
    #[arg(long = "url", value_name = "URL", required = true, value_parser = WsTarget::parse)]
    pub urls: Vec<WsTarget>,
    /// App id (the HTTP API's /apps/{id})
    #[arg(long, value_name = "ID", env = "REVERB_APP_ID")]
    pub app_id: String,
    /// App key (the WebSocket path /app/{key})
    #[arg(long, value_name = "KEY", env = "REVERB_APP_KEY")]
    pub key: String,
    /// App secret: signs HTTP API requests and private/presence subscriptions locally
    #[arg(
        long,
        value_name = "SECRET",
        env = "REVERB_APP_SECRET",
        hide_env_values = true
    )]
    pub secret: String,
    /// Client executors (threads pinned to the first N CPUs this process may use), each
    /// owning its share of the connections
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_positive)]
    pub cores: usize,
    /// How long the measured phase lasts: 10, 2.5, 500ms, 2m
    #[arg(long, value_name = "TIME", default_value = "10", value_parser = parse_duration)]
    pub duration: Duration,
    /// After --duration, how long to wait at most for deliveries still in flight
    #[arg(long, value_name = "TIME", default_value = "5", value_parser = parse_duration)]
    pub drain: Duration,
    /// Print exactly one JSON object on stdout instead of the table
    #[arg(long)]
    pub json: bool,
    /// The server's process id (on this machine): adds its CPU seconds and RSS from /proc
    /// to the report; repeat it for several processes (summed)
    #[arg(long = "server-pid", value_name = "PID", value_parser = parse_pid)]
    pub server_pids: Vec<u32>,
    /// Bind client sockets to N loopback source addresses, 127.0.0.1 .. 127.0.0.N
    /// (round-robin): one address has ~28,000 ephemeral ports and connect() slows down
    /// well before they run out (one address per 5,000 connections is a good
    /// spread); loopback servers only
    #[arg(long, value_name = "N", value_parser = parse_source_ips)]
    pub source_ips: Option<u8>,
    /// Limit for each step of setting up one connection (TCP connect, handshake,
    /// connection_established, subscription_succeeded)
    #[arg(long, value_name = "TIME", default_value = "10", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Limit for the whole setup phase (opening every connection) before the measured phase
    #[arg(long, value_name = "TIME", default_value = "120", value_parser = parse_duration)]
    pub setup_timeout: Duration,
    /// Origin header sent with each handshake (for servers with allowed_origins)
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,
}

/// `connect`'s flags.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections to open and hold
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = parse_positive)]
    pub connections: usize,
    /// Connections being set up at the same moment
    #[arg(long, value_name = "C", default_value_t = 100, value_parser = parse_positive)]
    pub concurrency: usize,
    /// Subscribe every connection to one of N public channels (0: no subscription)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub channels: usize,
}

/// `fanout`'s flags.
#[derive(Args, Debug, Clone)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    /// Subscriber connections
    #[arg(long, value_name = "S", default_value_t = 1000, value_parser = parse_positive)]
    pub subscribers: usize,
    /// Public channels the subscribers are spread over (each event goes to all of them)
    #[arg(long, value_name = "C", default_value_t = 10, value_parser = parse_positive)]
    pub channels: usize,
    /// Events per second in total, or "max": as fast as the server answers the publishers
    #[arg(long, value_name = "R|max", default_value = "100", value_parser = Rate::parse)]
    pub rate: Rate,
    /// Concurrent HTTP publishers, each with its own keep-alive connection and its share of
    /// the rate; a publisher waits for each answer [default: 4]
    #[arg(long, value_name = "P", value_parser = parse_positive)]
    pub publishers: Option<usize>,
    /// Stop publishing after this many events in total (else --duration ends it)
    #[arg(long, value_name = "N", value_parser = parse_positive_u64)]
    pub events: Option<u64>,
    /// Pad each event's data to about this many bytes
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub payload: usize,
    /// Subscribers being set up at the same moment
    #[arg(long, value_name = "C", default_value_t = 100, value_parser = parse_positive)]
    pub concurrency: usize,
    /// Where events are published, http://HOST:PORT[/PREFIX] [default: the first --url]
    #[arg(long, value_name = "URL", value_parser = HttpTarget::parse)]
    pub api_url: Option<HttpTarget>,
}

/// `whisper`'s flags.
#[derive(Args, Debug, Clone)]
pub struct WhisperArgs {
    #[command(flatten)]
    pub common: Common,
    /// Member connections, spread round-robin over the channels
    #[arg(long, value_name = "M", default_value_t = 100, value_parser = parse_positive)]
    pub members: usize,
    /// Private channels (presence channels with --presence)
    #[arg(long, value_name = "C", default_value_t = 10, value_parser = parse_positive)]
    pub channels: usize,
    /// Client events sent per second in total, or "max"
    #[arg(long, value_name = "R|max", default_value = "100", value_parser = Rate::parse)]
    pub rate: Rate,
    /// Use presence-bench-* channels instead of private-bench-*
    #[arg(long)]
    pub presence: bool,
    /// Stop after this many client events in total (else --duration ends it)
    #[arg(long, value_name = "N", value_parser = parse_positive_u64)]
    pub events: Option<u64>,
    /// Pad each event's data to about this many bytes
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub payload: usize,
    /// Members being set up at the same moment
    #[arg(long, value_name = "C", default_value_t = 100, value_parser = parse_positive)]
    pub concurrency: usize,
}

/// `presence`'s flags.
#[derive(Args, Debug, Clone)]
pub struct PresenceArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections that join and leave over and over
    #[arg(long, value_name = "M", default_value_t = 200, value_parser = parse_positive)]
    pub members: usize,
    /// Presence channels
    #[arg(long, value_name = "C", default_value_t = 10, value_parser = parse_positive)]
    pub channels: usize,
    /// Connections per channel that stay joined and check the member events
    #[arg(long, value_name = "W", default_value_t = 1, value_parser = parse_positive)]
    pub watchers: usize,
    /// Joins per second in total, or "max" (every member joins again as soon as it left)
    #[arg(long, value_name = "R|max", default_value = "100", value_parser = Rate::parse)]
    pub rate: Rate,
    /// How long a member stays joined before it leaves
    #[arg(long, value_name = "TIME", default_value = "0", value_parser = parse_duration)]
    pub hold: Duration,
    /// Connections being set up at the same moment
    #[arg(long, value_name = "C", default_value_t = 100, value_parser = parse_positive)]
    pub concurrency: usize,
}

/// `churn`'s flags.
#[derive(Args, Debug, Clone)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub common: Common,
    /// Cycles running at the same moment
    #[arg(long, value_name = "C", default_value_t = 50, value_parser = parse_positive)]
    pub concurrency: usize,
    /// Cycles per second in total, or "max"
    #[arg(long, value_name = "R|max", default_value = "max", value_parser = Rate::parse)]
    pub rate: Rate,
    /// Public channels the cycles subscribe to (private channels with --private)
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = parse_positive)]
    pub channels: usize,
    /// Subscribe to private-churn-* channels (signed) instead of public ones
    #[arg(long)]
    pub private: bool,
    /// After the last cycle, how long to let the server settle before its RSS is read
    #[arg(long, value_name = "TIME", default_value = "1", value_parser = parse_duration)]
    pub settle: Duration,
}

/// A target rate: so many per second, or as fast as possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    PerSecond(f64),
    Max,
}

impl Rate {
    pub fn parse(s: &str) -> Result<Rate, String> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        match s.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(Rate::PerSecond(r)),
            _ => Err(format!(
                "`{s}` is not a rate: give a positive number per second or `max`"
            )),
        }
    }

    /// The JSON/table form: the number, or "max".
    pub fn describe(&self) -> String {
        match self {
            Rate::PerSecond(r) => format_number(*r),
            Rate::Max => "max".into(),
        }
    }

    pub fn to_json(self) -> serde_json::Value {
        match self {
            Rate::PerSecond(r) => serde_json::json!(r),
            Rate::Max => serde_json::json!("max"),
        }
    }
}

fn format_number(r: f64) -> String {
    if r.fract() == 0.0 {
        format!("{}", r as u64)
    } else {
        format!("{r}")
    }
}

/// `10`, `2.5` (seconds), `500ms`, `10s`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * scale <= 7.0 * 86_400.0 => {
            Ok(Duration::from_secs_f64(v * scale))
        }
        _ => Err(format!(
            "`{s}` is not a duration: give seconds (10, 2.5) or a unit (500ms, 10s, 2m), \
             at most a week"
        )),
    }
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}` is not a positive whole number")),
    }
}

fn parse_positive_u64(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}` is not a positive whole number")),
    }
}

fn parse_pid(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}` is not a process id")),
    }
}

fn parse_source_ips(s: &str) -> Result<u8, String> {
    match s.parse::<u8>() {
        Ok(n) if (1..=254).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}`: give the number of loopback addresses to use, 1 to 254"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("1e12").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(Rate::parse("max").unwrap(), Rate::Max);
        assert_eq!(Rate::parse("200").unwrap(), Rate::PerSecond(200.0));
        assert_eq!(Rate::parse("0.5").unwrap(), Rate::PerSecond(0.5));
        assert!(Rate::parse("0").is_err());
        assert!(Rate::parse("fast").is_err());
        assert_eq!(Rate::PerSecond(200.0).describe(), "200");
    }
}
