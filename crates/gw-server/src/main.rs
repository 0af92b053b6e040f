//! The `gateway` binary: `gateway serve` (the default) runs the server; `gateway admin ...`
//! manages users, plans, keys and usage in the store directly.

mod admin;

use std::path::PathBuf;
use std::process::ExitCode;

use std::io::IsTerminal;

use axum::serve::ListenerExt;
use clap::{Parser, Subcommand};
use gw_server::{AppState, Config, app};
use tracing_subscriber::EnvFilter;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let admin = matches!(cli.command, Some(Command::Admin { .. }));
    // The admin commands print tables; their logs stay quiet unless asked for.
    let default_filter = if admin { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let config = Config::load(&cli.config).map_err(|e| e.to_string())?;
        match cli.command {
            None | Some(Command::Serve) => serve(config).await,
            Some(Command::Admin { command }) => admin::run(&config, command)
                .await
                .map_err(|e| e.to_string()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let state = AppState::from_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    let providers = state.gateway().registry().providers();
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| {
            format!(
                "server.listen: cannot listen on {}: {e}",
                config.server.listen
            )
        })?;
    tracing::info!(
        listen = %config.server.listen,
        providers = ?providers,
        pricing = state.pricing().version(),
        store = state.store().map(|s| s.backend().as_str()).unwrap_or("off"),
        "gateway ready"
    );
    // Each SSE event is its own small write: without TCP_NODELAY the kernel holds the second
    // until the client's delayed ACK (about 40 ms), stalling every stream.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
    });
    let store = state.store().cloned();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    if let Some(store) = store {
        // Write the usage rows still queued before the process ends.
        store.close().await;
    }
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
    tracing::info!("shutting down: finishing requests in flight");
}
