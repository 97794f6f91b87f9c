//! The command line: `reverb-shard [start] [flags]`. Parsing, configuration loading,
//! the start banner and exit codes (0 clean stop, 1 runtime failure, 2 configuration
//! error).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Cores, Flags, LoadOptions};
use crate::limits;
use crate::server::Server;

#[derive(Parser, Debug)]
#[command(
    name = "reverb-shard",
    version,
    about = "A thread-per-core Pusher Channels server: a drop-in replacement for Laravel Reverb",
    long_about = "A thread-per-core Pusher Channels server: a drop-in replacement for Laravel Reverb.\n\n\
        It serves the Pusher WebSocket protocol and HTTP API on one port, one shard per CPU core, \
        and reads the same REVERB_* variables as Reverb. Without a subcommand it runs `start`.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    start: StartArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the server (the default command).
    #[command(long_about = "Start the server.\n\n\
        Configuration is read, lowest to highest precedence, from: the built-in defaults; \
        the TOML file (--config, else ./config.toml, else the embedded default); the dotenv \
        file (--env-file, else ./.env) with Laravel's REVERB_* names; the process \
        environment; these flags.\n\n\
        Examples:\n  reverb-shard start\n  reverb-shard start --port 6001 --cores 4\n  \
        reverb-shard start --env-file /var/www/app/.env --debug")]
    Start(StartArgs),
    /// Create app credentials and the lines a Laravel app needs.
    #[command(
        long_about = "Create app credentials (Reverb's shapes, from the OS random source) and \
        the lines a Laravel app needs.\n\n\
        Without --write it prints them. With --env-file FILE --write it adds the missing \
        REVERB_* and VITE_REVERB_* lines to that .env and sets BROADCAST_CONNECTION=reverb; \
        existing values are kept (credentials already there are reused) unless --force. \
        With --config FILE --write it adds the [[apps]] entry unless an app with that key \
        exists. Running it twice changes nothing the second time.\n\n\
        Examples:\n  reverb-shard install\n  \
        reverb-shard install --env-file /var/www/app/.env --config config.toml --write"
    )]
    Install(InstallArgs),
    /// Tell the running server to restart without dropping anyone (SIGHUP).
    #[command(long_about = crate::restart::LONG_HELP)]
    Restart(crate::restart::RestartArgs),
    /// Load-test any Pusher-protocol server (reverb-shard, Reverb, soketi, sockudo).
    Bench(crate::bench::BenchArgs),
}

#[derive(Args, Debug, Clone)]
struct InstallArgs {
    /// The Laravel app's .env to read (and, with --write, update)
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// reverb-shard's TOML config to add the app to (with --write)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write the files instead of printing the lines
    #[arg(long)]
    write: bool,
    /// Replace REVERB_* values that are already set (new credentials)
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug, Default, Clone)]
struct StartArgs {
    /// Address to bind [env: REVERB_SERVER_HOST] [default: 0.0.0.0]
    #[arg(long, value_name = "IP")]
    host: Option<String>,
    /// Port for WebSocket and HTTP API [env: REVERB_SERVER_PORT] [default: 8080]
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Public host name (banner, Herd/Valet certificate lookup) [env: REVERB_HOST]
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// Prefix for every route, e.g. "ws" serves /ws/app/{key} [env: REVERB_SERVER_PATH]
    #[arg(long, value_name = "PREFIX")]
    path: Option<String>,
    /// Shards to run: "auto" (one per CPU this process may use) or a number
    #[arg(long, value_name = "auto|N", value_parser = parse_cores)]
    cores: Option<Cores>,
    /// Log every connection and message (slows the server; for development)
    #[arg(long)]
    debug: bool,
    /// TOML configuration file [default: ./config.toml when present]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Dotenv file with REVERB_* variables, e.g. a Laravel app's .env [default: ./.env when present]
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// Where to write this process's pid, for `reverb-shard restart` [env: REVERB_SHARD_PID_FILE] [default: $XDG_RUNTIME_DIR or the temp dir, reverb-shard-{port}.pid]
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
}

fn parse_cores(s: &str) -> Result<Cores, String> {
    Cores::parse(s)
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Start(args)) => start(args),
        Some(Command::Install(args)) => install(args),
        Some(Command::Restart(args)) => crate::restart::main(args),
        Some(Command::Bench(args)) => crate::bench::main(args),
        None => start(cli.start),
    }
}

fn start(args: StartArgs) -> ExitCode {
    let options = LoadOptions {
        config_file: args.config.clone(),
        env_file: args.env_file.clone(),
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        env: std::env::vars().collect::<HashMap<_, _>>(),
        flags: Flags {
            host: args.host,
            port: args.port,
            path: args.path,
            hostname: args.hostname,
            cores: args.cores,
            debug: args.debug,
            pid_file: args.pid_file,
        },
    };
    let loaded = match config::load(&options) {
        Ok(loaded) => loaded,
        Err(e) => {
            crate::error!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let config = loaded.config;
    crate::log::set_debug(config.server.debug);
    crate::info!("configuration from {}", loaded.sources.join(", "));
    for warning in &loaded.warnings {
        crate::warn!("{warning}");
    }

    let allowed = match shards::allowed_cpus() {
        Ok(cpus) => cpus.len(),
        Err(e) => {
            crate::error!("cannot read the CPU affinity mask: {e}");
            return ExitCode::from(1);
        }
    };
    let shards = match config.server.cores {
        Cores::Auto => allowed,
        Cores::Count(n) if n > allowed => {
            crate::error!(
                "--cores {n}: this process may only use {allowed} CPU(s) (its affinity mask); \
                 use --cores auto or a number up to {allowed}"
            );
            return ExitCode::from(2);
        }
        Cores::Count(n) => n,
    };
    if shards > crate::pusher::socket_id::MAX_SHARDS {
        // Socket ids carry the shard index in three digits.
        crate::error!(
            "--cores {shards}: at most {} shards per process",
            crate::pusher::socket_id::MAX_SHARDS
        );
        return ExitCode::from(2);
    }

    // TLS files are part of the configuration: a bad one exits 2 before anything listens.
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let tls = match crate::tls::load(&config.server, home.as_deref()) {
        Ok(tls) => tls,
        Err(e) => {
            crate::error!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(found) = tls.as_ref().and_then(|t| t.found.as_ref()) {
        crate::info!(
            "TLS with the Herd/Valet certificate {} and key {}",
            found.cert.display(),
            found.key.display()
        );
    }
    let secure = if tls.is_some() { "secure " } else { "" };

    let (soft, hard) = limits::raise_nofile();
    let server = match Server::bind(config.clone(), shards) {
        Ok(server) => server.with_tls(tls.map(|t| t.config)),
        Err(e) => {
            crate::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let addr = server.local_addr();
    let hostname = match &config.server.hostname {
        Some(h) if *h != config.server.host => format!(" ({h})"),
        _ => String::new(),
    };
    // The banner says "ready": print it only once the runtime is built, i.e. once
    // SIGINT/SIGTERM are handled. Printed earlier, a supervisor (or a test) that stops
    // the server right after the banner could kill it with the default signal action
    // instead of a graceful stop with exit code 0.
    let banner = move |_| {
        crate::info!(
            "Starting {secure}server on {}:{}{}{hostname}",
            config.server.host,
            addr.port(),
            config.server.path
        );
        let ceiling = limits::connection_ceiling(soft, shards);
        crate::info!(
            "{shards} shard(s), open-files limit {soft} (hard {hard}): room for about {ceiling} concurrent connections"
        );
        if ceiling < 10_000 {
            crate::warn!(
                "the open-files limit allows fewer than 10,000 connections; raise it (ulimit -n, \
                 systemd LimitNOFILE=, Supervisor minfds=) for production"
            );
        }
        crate::selfcheck::report();
    };
    match server.run(true, banner) {
        Ok(()) => {
            crate::info!("Stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            crate::error!("{e}");
            ExitCode::from(1)
        }
    }
}

fn install(args: InstallArgs) -> ExitCode {
    use crate::install;
    let env_text = match &args.env_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) => {
                eprintln!("error: cannot read --env-file {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let credentials = install::credentials_from(env_text.as_deref(), args.force);
    if !args.write {
        print!("{}", install::printed_instructions(&credentials));
        if args.env_file.is_some() || args.config.is_some() {
            println!("# Nothing was written: add --write to update the files named.");
        }
        return ExitCode::SUCCESS;
    }
    if args.env_file.is_none() && args.config.is_none() {
        eprintln!("error: --write needs --env-file FILE and/or --config FILE to write to");
        return ExitCode::from(2);
    }
    if let (Some(path), Some(text)) = (&args.env_file, &env_text) {
        let update = install::update_env(text, &credentials, args.force);
        if let Err(e) = std::fs::write(path, &update.text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
        if update.changes.is_empty() {
            println!("{}: already set up, nothing changed", path.display());
        }
        for change in &update.changes {
            println!("{}: {change}", path.display());
        }
    }
    if let Some(path) = &args.config {
        match install::update_config(path, &credentials) {
            Ok(true) => println!(
                "{}: added app {} (key {})",
                path.display(),
                credentials.app_id,
                credentials.key
            ),
            Ok(false) => println!(
                "{}: an app with key {} already exists, nothing changed",
                path.display(),
                credentials.key
            ),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    println!("Reverb installed successfully.");
    ExitCode::SUCCESS
}
