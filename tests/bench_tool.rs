//! `reverb-shard bench` against the real server: every scenario runs briefly (small
//! counts, a few seconds) through the real binary with `--json`, and the report's
//! counts must add up (fanout deliveries = subscribers x events, no loss, no
//! duplicates; whisper likewise; every presence member_added matched; every connection
//! established; churn cycles without failures). `--server-pid` adds the server's RSS
//! and CPU; bad flags exit 2 naming the flag; an unreachable server exits 1; Ctrl-C
//! still reports. No timing thresholds.

mod support;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::http_api::shards;
use support::{free_port, server::binary, TestServer, APP_ID, APP_KEY, APP_SECRET};

/// No bench run in these tests may take longer than this.
const RUN_LIMIT: Duration = Duration::from_secs(90);

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Start `reverb-shard bench ARGS` (no REVERB_* from the environment).
fn spawn_bench(args: &[String]) -> Child {
    let mut cmd = Command::new(binary());
    cmd.arg("bench").args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("REVERB_") {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn reverb-shard bench")
}

/// Wait for the run to end (killing it after `RUN_LIMIT`) and collect its output.
fn finish(mut child: Child) -> Outcome {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bench did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        code: status.code(),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

fn bench(args: &[String]) -> Outcome {
    finish(spawn_bench(args))
}

/// The flags every run against `server` needs.
fn target(server: &TestServer) -> Vec<String> {
    [
        "--url",
        &format!("ws://127.0.0.1:{}", server.port),
        "--app-id",
        APP_ID,
        "--key",
        APP_KEY,
        "--secret",
        APP_SECRET,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn args(scenario: &str, server: &TestServer, extra: &[&str]) -> Vec<String> {
    let mut all = vec![scenario.to_string()];
    all.extend(target(server));
    all.extend(extra.iter().map(|s| s.to_string()));
    all
}

/// Run with `--json`; the run must succeed and print exactly one JSON object.
fn bench_json(scenario: &str, server: &TestServer, extra: &[&str]) -> Value {
    let mut all = args(scenario, server, extra);
    all.push("--json".into());
    let out = bench(&all);
    assert_eq!(
        out.code,
        Some(0),
        "bench {scenario} failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(
        out.stdout.trim().lines().count(),
        1,
        "--json prints one line:\n{}",
        out.stdout
    );
    let report: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.stdout));
    assert_eq!(report["scenario"], scenario, "{report}");
    assert_eq!(report["interrupted"], false, "{report}");
    report
}

fn u(report: &Value, section: &str, key: &str) -> u64 {
    report[section][key]
        .as_u64()
        .unwrap_or_else(|| panic!("{section}.{key} is not a count in {report}"))
}

fn no_failures(report: &Value) {
    assert_eq!(report["failures"]["total"], 0, "{report}");
}

fn two_shard_server() -> TestServer {
    TestServer::start(&support::app_config(""), shards())
}

fn cores() -> String {
    shards().to_string()
}

#[test]
fn fanout_delivers_every_event_to_every_subscriber_once() {
    let server = two_shard_server();
    let cores = cores();
    let report = bench_json(
        "fanout",
        &server,
        &[
            "--subscribers",
            "30",
            "--channels",
            "4",
            "--rate",
            "100",
            "--events",
            "60",
            "--duration",
            "3",
            "--cores",
            &cores,
        ],
    );
    assert_eq!(u(&report, "connections", "subscribed"), 30);
    assert_eq!(u(&report, "events", "published"), 60);
    assert_eq!(u(&report, "events", "failed"), 0);
    assert_eq!(u(&report, "deliveries", "expected"), 30 * 60);
    assert_eq!(u(&report, "deliveries", "deliveries"), 30 * 60);
    assert_eq!(u(&report, "deliveries", "lost"), 0);
    assert_eq!(u(&report, "deliveries", "duplicates"), 0);
    assert_eq!(u(&report, "deliveries", "garbled"), 0);
    assert_eq!(u(&report, "latency_us", "count"), 30 * 60);
    for key in ["p50", "p90", "p99", "p99_9", "max"] {
        assert!(report["latency_us"][key].is_u64(), "{key}: {report}");
    }
    assert_eq!(report["parameters"]["subscribers"], 30);
    assert_eq!(
        report["server"],
        Value::Null,
        "no --server-pid, no server figures"
    );
    no_failures(&report);
}

#[test]
fn fanout_at_max_rate_with_several_publishers_and_server_figures() {
    let server = two_shard_server();
    let pid = server.pid().to_string();
    let report = bench_json(
        "fanout",
        &server,
        &[
            "--subscribers",
            "20",
            "--channels",
            "2",
            "--rate",
            "max",
            "--publishers",
            "3",
            "--events",
            "90",
            "--duration",
            "3",
            "--payload",
            "200",
            "--server-pid",
            &pid,
        ],
    );
    let published = u(&report, "events", "published");
    assert_eq!(published, 90);
    assert_eq!(u(&report, "deliveries", "deliveries"), 20 * published);
    assert_eq!(u(&report, "deliveries", "lost"), 0);
    assert_eq!(u(&report, "deliveries", "duplicates"), 0);
    let server_figures = &report["server"];
    for key in [
        "rss_initial_kib",
        "rss_before_kib",
        "rss_after_kib",
        "cpu_s",
        "cpu_s_per_million_deliveries",
    ] {
        assert!(server_figures[key].is_number(), "{key}: {report}");
    }
    assert!(server_figures["rss_after_kib"].as_u64().unwrap() > 0);
    no_failures(&report);
}

#[test]
fn whisper_reaches_every_other_member_once() {
    let server = two_shard_server();
    let cores = cores();
    // 4 members per channel: each whisper has 3 receivers.
    let report = bench_json(
        "whisper",
        &server,
        &[
            "--members",
            "12",
            "--channels",
            "3",
            "--rate",
            "60",
            "--events",
            "45",
            "--duration",
            "3",
            "--cores",
            &cores,
        ],
    );
    assert_eq!(u(&report, "connections", "subscribed"), 12);
    assert_eq!(u(&report, "events", "sent"), 45);
    assert_eq!(u(&report, "deliveries", "expected"), 45 * 3);
    assert_eq!(u(&report, "deliveries", "deliveries"), 45 * 3);
    assert_eq!(u(&report, "deliveries", "lost"), 0);
    assert_eq!(u(&report, "deliveries", "duplicates"), 0);
    assert_eq!(u(&report, "deliveries", "echoed"), 0);
    no_failures(&report);
}

#[test]
fn whisper_on_presence_channels() {
    let server = two_shard_server();
    let report = bench_json(
        "whisper",
        &server,
        &[
            "--presence",
            "--members",
            "6",
            "--channels",
            "2",
            "--rate",
            "max",
            "--events",
            "30",
            "--duration",
            "3",
        ],
    );
    assert_eq!(report["parameters"]["channel_kind"], "presence");
    assert_eq!(u(&report, "events", "sent"), 30);
    assert_eq!(u(&report, "deliveries", "deliveries"), 30 * 2);
    assert_eq!(u(&report, "deliveries", "lost"), 0);
    assert_eq!(u(&report, "deliveries", "duplicates"), 0);
    no_failures(&report);
}

#[test]
fn presence_storm_matches_every_member_added() {
    let server = two_shard_server();
    let cores = cores();
    let report = bench_json(
        "presence",
        &server,
        &[
            "--members",
            "12",
            "--channels",
            "3",
            "--watchers",
            "2",
            "--rate",
            "40",
            "--duration",
            "2",
            "--cores",
            &cores,
        ],
    );
    assert_eq!(u(&report, "connections", "watchers"), 6);
    assert_eq!(u(&report, "connections", "members"), 12);
    let joins = u(&report, "joins", "joins_ok");
    assert!(joins > 0, "{report}");
    assert_eq!(u(&report, "joins", "joins"), joins);
    assert_eq!(u(&report, "joins", "leaves"), joins);
    // Two watchers per channel: every join is seen twice, every leave too.
    assert_eq!(u(&report, "member_events", "expected_added"), 2 * joins);
    assert_eq!(u(&report, "member_events", "added"), 2 * joins);
    assert_eq!(u(&report, "member_events", "removed"), 2 * joins);
    assert_eq!(u(&report, "member_events", "unmatched_added"), 0);
    assert_eq!(u(&report, "member_events", "unmatched_removed"), 0);
    assert_eq!(u(&report, "member_events", "double_added"), 0);
    no_failures(&report);
}

#[test]
fn connect_holds_every_connection_and_measures_the_server() {
    let server = two_shard_server();
    let pid = server.pid().to_string();
    let report = bench_json(
        "connect",
        &server,
        &[
            "--connections",
            "60",
            "--concurrency",
            "15",
            "--channels",
            "5",
            "--duration",
            "1",
            "--server-pid",
            &pid,
        ],
    );
    assert_eq!(u(&report, "connections", "attempted"), 60);
    assert_eq!(u(&report, "connections", "established"), 60);
    assert_eq!(u(&report, "connections", "failed"), 0);
    assert_eq!(u(&report, "hold", "dropped"), 0);
    assert_eq!(u(&report, "establish_latency_us", "count"), 60);
    for key in [
        "rss_before_kib",
        "rss_held_kib",
        "rss_per_connection_bytes",
        "cpu_setup_s",
        "cpu_hold_s",
    ] {
        assert!(report["server"][key].is_number(), "{key}: {report}");
    }
    no_failures(&report);
}

#[test]
fn connect_spread_over_source_addresses_and_two_urls() {
    let server = two_shard_server();
    let url = format!("ws://127.0.0.1:{}", server.port);
    let report = bench_json(
        "connect",
        &server,
        &[
            "--url",
            &url,
            "--connections",
            "20",
            "--source-ips",
            "3",
            "--duration",
            "0.5",
        ],
    );
    assert_eq!(u(&report, "connections", "established"), 20);
    assert_eq!(report["parameters"]["urls"].as_array().unwrap().len(), 2);
    assert_eq!(report["parameters"]["source_ips"], 3);
    no_failures(&report);
}

#[test]
fn churn_cycles_without_failures_and_reports_rss() {
    let server = two_shard_server();
    let pid = server.pid().to_string();
    let report = bench_json(
        "churn",
        &server,
        &[
            "--concurrency",
            "4",
            "--duration",
            "2",
            "--private",
            "--settle",
            "0.2",
            "--server-pid",
            &pid,
        ],
    );
    assert!(u(&report, "cycles", "cycles") > 0, "{report}");
    assert_eq!(u(&report, "cycles", "failed"), 0);
    for key in [
        "rss_before_kib",
        "rss_after_kib",
        "rss_settled_kib",
        "rss_growth_kib",
        "cpu_s",
    ] {
        assert!(report["server"][key].is_number(), "{key}: {report}");
    }
    no_failures(&report);
}

#[test]
fn the_table_is_printed_without_json() {
    let server = two_shard_server();
    let out = bench(&args(
        "churn",
        &server,
        &["--concurrency", "2", "--duration", "0.5", "--rate", "20"],
    ));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("reverb-shard bench churn"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("cycles per second"), "{}", out.stdout);
    assert!(out.stdout.contains("failures\n  none"), "{}", out.stdout);
    // stderr is not a terminal here: no progress line.
    assert!(out.stderr.trim().is_empty(), "{}", out.stderr);
}

#[test]
fn ctrl_c_ends_the_run_early_and_still_reports() {
    let server = two_shard_server();
    let mut all = args(
        "fanout",
        &server,
        &["--subscribers", "10", "--rate", "50", "--duration", "60"],
    );
    all.push("--json".into());
    let started = Instant::now();
    let child = spawn_bench(&all);
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = finish(child);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "Ctrl-C did not end the run"
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON report");
    assert_eq!(report["interrupted"], true, "{report}");
    assert_eq!(u(&report, "connections", "subscribed"), 10);
    assert!(out.stderr.contains("interrupted"), "{}", out.stderr);
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let url = "ws://127.0.0.1:9".to_string();
    let base = |scenario: &str| -> Vec<String> {
        vec![
            scenario.into(),
            "--url".into(),
            url.clone(),
            "--app-id".into(),
            APP_ID.into(),
            "--key".into(),
            APP_KEY.into(),
            "--secret".into(),
            APP_SECRET.into(),
        ]
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            [base("fanout"), vec!["--rate".into(), "fast".into()]].concat(),
            "--rate",
        ),
        (
            [base("connect"), vec!["--duration".into(), "soon".into()]].concat(),
            "--duration",
        ),
        (
            [base("connect"), vec!["--connections".into(), "0".into()]].concat(),
            "--connections",
        ),
        (
            [base("whisper"), vec!["--cores".into(), "0".into()]].concat(),
            "--cores",
        ),
        (
            [base("connect"), vec!["--cores".into(), "4096".into()]].concat(),
            "--cores",
        ),
        (
            [base("churn"), vec!["--server-pid".into(), "4000000".into()]].concat(),
            "--server-pid",
        ),
        (
            [base("presence"), vec!["--source-ips".into(), "0".into()]].concat(),
            "--source-ips",
        ),
        (
            vec![
                "fanout".into(),
                "--url".into(),
                "http://127.0.0.1:9".into(),
                "--app-id".into(),
                "1".into(),
                "--key".into(),
                "k".into(),
                "--secret".into(),
                "s".into(),
            ],
            "--url",
        ),
        (
            vec!["fanout".into(), "--url".into(), url.clone()],
            "--app-id",
        ),
        ([base("connect"), vec!["--nope".into()]].concat(), "--nope"),
        (
            [base("whisper"), vec!["--members".into(), "3".into()]].concat(),
            "--members",
        ),
    ];
    for (args, flag) in cases {
        let out = bench(&args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(flag),
            "{args:?}: the error should name {flag}:\n{}",
            out.stderr
        );
    }
    let out = bench(&["stampede".to_string()]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn an_unreachable_server_exits_1() {
    let port = free_port();
    let out = bench(&[
        "connect".into(),
        "--url".into(),
        format!("ws://127.0.0.1:{port}"),
        "--app-id".into(),
        APP_ID.into(),
        "--key".into(),
        APP_KEY.into(),
        "--secret".into(),
        APP_SECRET.into(),
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("cannot reach"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn wrong_credentials_exit_1_with_the_servers_answer() {
    let server = two_shard_server();
    let mut wrong_key = target(&server);
    wrong_key[5] = "no-such-key".into();
    let out = bench(&[vec!["connect".to_string()], wrong_key].concat());
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("4001"), "{}", out.stderr);

    let mut wrong_secret = target(&server);
    wrong_secret[7] = "not-the-secret".into();
    let out = bench(&[vec!["fanout".to_string()], wrong_secret].concat());
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("401"), "{}", out.stderr);
}

#[test]
fn help_teaches_every_scenario() {
    let out = bench(&["--help".to_string()]);
    assert_eq!(out.code, Some(0));
    for scenario in ["connect", "fanout", "whisper", "presence", "churn"] {
        assert!(out.stdout.contains(scenario), "{}", out.stdout);
        let out = bench(&[scenario.to_string(), "--help".to_string()]);
        assert_eq!(out.code, Some(0));
        assert!(out.stdout.contains("Examples:"), "{}", out.stdout);
        for flag in [
            "--url",
            "--app-id",
            "--key",
            "--secret",
            "--cores",
            "--duration",
            "--json",
            "--server-pid",
        ] {
            assert!(out.stdout.contains(flag), "{scenario} --help lacks {flag}");
        }
    }
}
