//! The `gateway` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
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
        default_value = "crates/gw-server/gateway.toml"
    )]
    config: PathBuf,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> Result<(), String> {
    let config = Config::load(&cli.config).map_err(|e| e.to_string())?;
    let state = AppState::from_config(&config).map_err(|e| e.to_string())?;
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
        "gateway ready"
    );
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| format!("server error: {e}"))
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
