//! Project automation, run as `cargo xtask <command>`.
//!
//! - `contract [--fixtures DIR]... [--filter TEXT]`: replays the contract fixtures of
//!   `tests/contract/FORMAT.md` through the whole gateway stack against a mock upstream.
//! - `features`: checks the umbrella crate with each provider feature alone, so a missing
//!   `#[cfg]` or a provider leaking into another's build is caught.
//! - `mock-upstream [--listen ADDR]`: serves canned Gemini and OpenAI-style answers, to try the
//!   gateway by hand without provider keys.
//! - `bench [--quick] [--scenario NAME]... [--out FILE]`: the benchmark suite (see `bench/mod.rs`).

mod bench;
mod contract;
mod features;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay contract fixtures against the real gateway stack and a mock upstream.
    Contract {
        /// Directories to search for `*.json` fixtures (recursively). Default: tests/contract.
        #[arg(long = "fixtures", num_args = 1..)]
        fixtures: Vec<PathBuf>,
        /// Run only fixtures whose file path contains this text.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Check the umbrella crate with each provider feature on its own.
    Features,
    /// Serve canned provider answers on a local port (for trying the gateway by hand).
    MockUpstream {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: std::net::SocketAddr,
    },
    /// Benchmark the gateway against a mock upstream and nginx; write BENCHMARKS.md.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Contract { fixtures, filter } => {
            let dirs = if fixtures.is_empty() {
                vec![workspace_root().join("tests/contract")]
            } else {
                fixtures
            };
            let runtime = runtime();
            let summary = runtime.block_on(contract::run(
                &dirs,
                filter.as_deref(),
                &mut std::io::stdout(),
            ));
            if summary.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Features => features::run(),
        Command::Bench(args) => bench::run(args),
        Command::MockUpstream { listen } => {
            let runtime = runtime();
            match runtime.block_on(gw_mock::canned::serve(listen)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mock-upstream: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts on any supported platform")
}

/// The workspace root (the parent of this crate's directory).
pub(crate) fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}
