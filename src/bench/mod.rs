//! `reverb-shard bench`: the load-test tool, for any Pusher-protocol server
//! (reverb-shard, Laravel Reverb, soketi, sockudo), loopback or not.
//!
//! The client runs on the `shards` runtime, one pinned executor per `--cores`, each
//! owning its share of the connections (glommio sockets, handshake and frames done
//! here with the crate's frame codec). A run checks its flags (exit 2 naming the flag),
//! raises its open-files limit, checks that every server answers (exit 1 if not),
//! runs the scenario for `--duration` plus at most `--drain`, and prints a table or,
//! with `--json`, exactly one JSON object on stdout. Ctrl-C stops it early and it still
//! reports.
//!
//! Layout: [`args`] (flags), [`target`] (URLs), [`dial`] and [`client`] (the WebSocket
//! client), [`http`] (the signed HTTP API client), [`payload`] (what events carry),
//! [`tracker`] (loss/duplicate bookkeeping), [`runner`] (executors, barriers, Ctrl-C),
//! [`live`] and [`progress`] (the live line), [`proc_stats`] (the server's CPU and
//! RSS), [`report`] (table and JSON), [`preflight`] and one file per scenario under
//! [`scenarios`].

pub mod args;
pub mod client;
pub mod clock;
pub mod dial;
pub mod fail;
pub mod http;
pub mod live;
pub mod payload;
pub mod preflight;
pub mod proc_stats;
pub mod progress;
pub mod report;
pub mod runner;
pub mod scenarios;
pub mod target;
pub mod tracker;

use std::process::ExitCode;

pub use args::BenchArgs;
use args::{Common, Scenario};
use scenarios::Prepared;

/// How a bench command ends when it cannot report.
enum Exit {
    /// Bad flags: exit code 2.
    Usage(String),
    /// The servers could not be used: exit code 1.
    Failed(String),
}

pub fn main(args: BenchArgs) -> ExitCode {
    match run(&args.scenario) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Exit::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(scenario: &Scenario) -> Result<(), Exit> {
    let common = scenario.common();
    check_flags(scenario)?;
    let connections = connections_needed(scenario);
    let (soft, _hard) = crate::limits::raise_nofile();
    if soft > 0 && connections + 64 > soft {
        eprintln!(
            "warning: {connections} connections need about {} open files but the limit is \
             {soft} (ulimit -n): expect too_many_open_files failures",
            connections + 64
        );
    }
    let prepared = prepare(scenario)?;
    // Start the shared clock before any connection exists.
    clock::now_ns();
    let report = match scenario {
        Scenario::Connect(a) => scenarios::connect::run(a, &prepared),
        Scenario::Fanout(a) => scenarios::fanout::run(a, &prepared),
        Scenario::Whisper(a) => scenarios::whisper::run(a, &prepared),
        Scenario::Presence(a) => scenarios::presence::run(a, &prepared),
        Scenario::Churn(a) => scenarios::churn::run(a, &prepared),
    }
    .map_err(Exit::Failed)?;
    if common.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

/// Checks clap cannot express: the CPUs allowed, the server pids, source addresses.
fn check_flags(scenario: &Scenario) -> Result<(), Exit> {
    let common = scenario.common();
    let allowed = shards::allowed_cpus()
        .map(|c| c.len())
        .map_err(|e| Exit::Failed(format!("cannot read the CPU affinity mask: {e}")))?;
    if common.cores > allowed {
        return Err(Exit::Usage(format!(
            "--cores {}: this process may only use {allowed} CPU(s) (its affinity mask)",
            common.cores
        )));
    }
    for pid in &common.server_pids {
        if !proc_stats::exists(*pid) {
            return Err(Exit::Usage(format!(
                "--server-pid {pid}: no such process on this machine"
            )));
        }
    }
    if common.source_ips.is_some() {
        for url in &common.urls {
            let loopback = url
                .endpoint
                .resolve()
                .map(|a| a.ip().is_loopback() && a.is_ipv4())
                .unwrap_or(false);
            if !loopback {
                return Err(Exit::Usage(format!(
                    "--source-ips: only for servers on an IPv4 loopback address, and --url \
                     {url} is not one"
                )));
            }
        }
    }
    if let (Scenario::Fanout(a), Some(_)) = (scenario, common.source_ips) {
        if let Some(api) = &a.api_url {
            let loopback = api
                .endpoint
                .resolve()
                .is_ok_and(|a| a.ip().is_loopback() && a.is_ipv4());
            if !loopback {
                return Err(Exit::Usage(format!(
                    "--source-ips: only for servers on an IPv4 loopback address, and --api-url \
                     {api} is not one"
                )));
            }
        }
    }
    if let Scenario::Fanout(a) = scenario {
        if a.payload > 1 << 20 {
            return Err(Exit::Usage("--payload: at most 1048576 bytes".into()));
        }
    }
    if let Scenario::Whisper(a) = scenario {
        if a.members < 2 * a.channels {
            return Err(Exit::Usage(format!(
                "--members {}: give at least 2 per channel (--channels {}) so each whisper \
                 has a receiver",
                a.members, a.channels
            )));
        }
    }
    Ok(())
}

/// Connections the scenario holds at once, for the open-files check.
fn connections_needed(scenario: &Scenario) -> u64 {
    (match scenario {
        Scenario::Connect(a) => a.connections,
        Scenario::Fanout(a) => a.subscribers + a.publishers.unwrap_or(4),
        Scenario::Whisper(a) => a.members,
        Scenario::Presence(a) => a.members + a.watchers * a.channels,
        Scenario::Churn(a) => a.concurrency,
    }) as u64
}

/// Resolve every endpoint and check that the servers answer.
fn prepare(scenario: &Scenario) -> Result<Prepared, Exit> {
    let common: &Common = scenario.common();
    let mut endpoints = Vec::new();
    for url in &common.urls {
        let addr = url.endpoint.resolve().map_err(Exit::Failed)?;
        let endpoint = client::Endpoint {
            addr,
            host: url.endpoint.authority(),
            path: url.path_for(&common.key),
            origin: common.origin.clone(),
        };
        preflight::websocket(&url.to_string(), &endpoint, &common.key).map_err(Exit::Failed)?;
        endpoints.push(endpoint);
    }
    let api = match scenario {
        Scenario::Fanout(a) => {
            let target = a.api_url.clone().unwrap_or_else(|| common.urls[0].api());
            let addr = target.endpoint.resolve().map_err(Exit::Failed)?;
            let api =
                http::ApiTarget::new(&target, addr, &common.app_id, &common.key, &common.secret);
            preflight::api(&target.to_string(), &api).map_err(Exit::Failed)?;
            Some(api)
        }
        _ => None,
    };
    Ok(Prepared { endpoints, api })
}
