//! The `gateway` binary: `gateway serve` (the default) runs the server; `gateway admin ...`
//! manages users, plans, keys and usage in the store directly; `gateway speak`, `gateway
//! transcribe`, `gateway video` and `gateway tune` are clients of a running gateway.

mod admin;
mod client;

/// jemalloc rather than glibc's allocator: measured faster on the server's JSON paths, and no
/// slower on streams (BENCHMARKS.md, "The request path"); the `jemalloc` feature, on by default.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use gw_server::log_writer::{Flusher, LogWriter};
use gw_server::telemetry::PrometheusMode;
use gw_server::workers::Workers;
use gw_server::{AppState, Config, Telemetry, app};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// An OpenAI-compatible gateway to many LLM, media and search providers.
#[derive(Debug, Parser)]
#[command(name = "gateway", version)]
struct Cli {
    /// The configuration file (TOML). Every value can be overridden by a GATEWAY__SECTION__FIELD
    /// environment variable.
    #[arg(
        long,
        short,
        env = "GATEWAY_CONFIG",
        default_value = "crates/gw-server/gateway.toml",
        global = true
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage users, plans, keys and usage in the store.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Speak text through a running gateway and write the audio to a file.
    Speak(client::Speak),
    /// Transcribe an audio file through a running gateway and print the text.
    Transcribe(client::Transcribe),
    /// Make a video through a running gateway, following the job to the end.
    Video(client::Video),
    /// Train a LoRA on a zip of images through a running gateway, following the job to the end
    /// and printing the trained model's name.
    Tune(client::Tune),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Speak(_) | Command::Transcribe(_) | Command::Video(_) | Command::Tune(_)) =
        &cli.command
    {
        return run_client(cli.command);
    }
    let admin = matches!(cli.command, Some(Command::Admin { .. }));
    let config = match Config::load(&cli.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Built before the runtime: the OTLP exporters' HTTP client blocks, on threads of its own.
    let telemetry = if admin {
        Telemetry::off()
    } else {
        match Telemetry::init(&config.telemetry) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("gateway: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let log = match init_logging(admin, &telemetry) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("gateway: cannot start the log writer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = Arc::new(telemetry);
    let result = runtime.block_on(async {
        match cli.command {
            None | Some(Command::Serve) => serve(config, Arc::clone(&telemetry)).await,
            Some(Command::Admin { command }) => admin::run(&config, command)
                .await
                .map_err(|e| e.to_string()),
            Some(
                Command::Speak(_) | Command::Transcribe(_) | Command::Video(_) | Command::Tune(_),
            ) => Ok(()),
        }
    });
    drop(runtime);
    // The spans and metrics still buffered.
    telemetry.shutdown();
    // The log lines still buffered.
    if let Some(log) = log {
        log.finish();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a client command: no configuration, no logging beyond errors.
fn run_client(command: Option<Command>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), client::Stop> = runtime.block_on(async {
        match command {
            Some(Command::Speak(args)) => client::speak(args).await.map_err(Into::into),
            Some(Command::Transcribe(args)) => client::transcribe(args).await.map_err(Into::into),
            Some(Command::Video(args)) => client::video(args).await,
            Some(Command::Tune(args)) => client::tune(args).await,
            _ => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(stop) => {
            eprintln!("gateway: {}", stop.message);
            ExitCode::from(stop.code)
        }
    }
}

/// Logs to stderr (`RUST_LOG`, default `info`; `warn` for the admin commands, which print
/// tables), and the gateway's spans to OpenTelemetry when traces are exported. The server
/// writes its log from a thread of its own ([`LogWriter`]); the returned [`Flusher`] writes what
/// is left at exit.
fn init_logging(admin: bool, telemetry: &Telemetry) -> std::io::Result<Option<Flusher>> {
    let default_filter = if admin { "warn" } else { "info" };
    let rust_log = std::env::var("RUST_LOG").unwrap_or_default();
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // The OpenTelemetry spans are for the exporter: the log leaves them out unless asked.
    if !rust_log.contains(llm_gateway::telemetry::OTEL_TARGET)
        && let Ok(off) = format!("{}=off", llm_gateway::telemetry::OTEL_TARGET).parse()
    {
        filter = filter.add_directive(off);
    }
    let ansi = std::io::stderr().is_terminal();
    let (writer, flusher) = if admin {
        (BoxMakeWriter::new(std::io::stderr), None)
    } else {
        let (writer, flusher) = LogWriter::start(std::io::stderr())?;
        writer.take_request_lines(ansi);
        (BoxMakeWriter::new(writer), Some(flusher))
    };
    match telemetry.layer() {
        // Each layer with its own filter: the log, and the spans for OpenTelemetry.
        Some(otel) => tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(ansi)
                    .with_filter(filter),
            )
            .with(
                otel.with_filter(
                    tracing_subscriber::filter::Targets::new()
                        .with_target(llm_gateway::telemetry::OTEL_TARGET, tracing::Level::INFO),
                ),
            )
            .init(),
        // One global filter: the gateway's spans are then off at their call sites, and cost
        // nothing (an absent layer would still ask for every span).
        None => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(ansi)
            .init(),
    }
    Ok(flusher)
}

async fn serve(config: Config, telemetry: Arc<Telemetry>) -> Result<(), String> {
    let state = AppState::from_config(&config)
        .await
        .map_err(|e| e.to_string())?
        .with_telemetry(Arc::clone(&telemetry));
    if let PrometheusMode::Listen(addr) = telemetry.prometheus_mode() {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("telemetry.prometheus: cannot listen on {addr}: {e}"))?;
        let metrics = gw_server::app::metrics_app(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, metrics).await {
                tracing::error!("the metrics listener failed: {e}");
            }
        });
        tracing::info!(listen = %addr, "metrics at /metrics");
    }
    let providers = state.gateway().registry().providers();
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| {
            format!(
                "server.listen: cannot listen on {}: {e}",
                config.server.listen
            )
        })?;
    let store = state.store().cloned();
    let drain = state.drain();
    let drain_time = Duration::from_millis(config.server.drain_ms);
    let count = gw_server::workers::count(config.server.workers);
    tracing::info!(
        listen = %config.server.listen,
        workers = count,
        providers = ?providers,
        pricing = state.pricing().version(),
        store = state.store().map(|s| s.backend().as_str()).unwrap_or("off"),
        "gateway ready"
    );
    let mut workers = Workers::start(listener, count, app(state))
        .map_err(|e| format!("cannot start the server's worker threads: {e}"))?;
    let stopper = workers.stopper();
    let stop = async {
        shutdown().await;
        drain.begin();
        stopper.stop();
        tracing::info!(
            in_flight = drain.in_flight(),
            drain_ms = drain_time.as_millis() as u64,
            "shutting down: no new connections; finishing requests in flight"
        );
        drain.draining().await;
        tokio::time::sleep(drain_time).await;
    };
    tokio::select! {
        served = workers.served() => served.map_err(|e| format!("server error: {e}"))?,
        () = stop => {
            tracing::warn!(
                in_flight = drain.in_flight(),
                "the drain time is over: cancelling the requests still in flight"
            );
            drain.cancel();
            if !drain.idle(Duration::from_secs(5)).await {
                tracing::error!(
                    in_flight = drain.in_flight(),
                    "requests still running after their cancellation: recovery settles them"
                );
            }
        }
    }
    // A cancelled request settles from a task of its own: let those run before the flush.
    tokio::time::sleep(Duration::from_millis(50)).await;
    if let Some(store) = store {
        // Write the usage rows still queued before the process ends.
        store.close().await;
    }
    workers.exit();
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
