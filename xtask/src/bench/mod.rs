//! `cargo xtask bench`: the gateway's benchmark suite.
//!
//! Builds `gateway` and this tool in release mode (a debug `cargo xtask` only launches the
//! release build, so the load generator is never a debug build), starts the benchmark mock
//! upstream (`gw_mock::bench`), nginx as a plain reverse proxy when it is installed, and the
//! gateway in each configuration (`proxy`: no store; `full-sqlite`: plans, cost and usage log on
//! SQLite; `full-postgres` when `GATEWAY_TEST_POSTGRES_URL` is set), all on loopback. It then
//! drives each scenario at each concurrency against every target, checks chunk pacing, holds
//! many slow streams open for memory, and re-measures after a million usage rows; prints a line
//! per run and writes the tables into `BENCHMARKS.md` (between its `bench:begin`/`bench:end`
//! markers, so the hand-written findings around them stay).
//!
//! `cargo xtask bench mock` serves the benchmark mock alone, for profiling by hand.
//!
//! Never part of `cargo test` or CI: it takes minutes and its figures depend on the machine.

mod floor;
mod load;
mod procs;
mod report;
mod semantic;
mod suite;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use clap::{Args, Subcommand};

use suite::{Plan, Scenario};

/// `cargo xtask bench` options.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    /// A short run (about 2 minutes): shorter windows, fewer scenarios, fewer open streams.
    #[arg(long)]
    quick: bool,
    /// Run only these parts: hf, gemini, stream, stream-gemini, pacing, memory, growth, semantic
    /// (repeat the flag or separate with commas).
    #[arg(long = "scenario", value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Where to write the report, relative to the workspace root.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Seconds measured per run, after a warm-up (default 5, or 1.5 with --quick).
    #[arg(long)]
    duration: Option<f64>,
    /// A release `gateway` binary to use instead of building one (set by the launcher).
    #[arg(long, hide = true)]
    gateway_bin: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Serve the benchmark mock upstream on a local port.
    Mock {
        /// Where to listen (port 0: any free port, printed on the first line).
        #[arg(long, default_value = "127.0.0.1:9200")]
        listen: SocketAddr,
        /// Milliseconds to wait before each answer.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Content chunks per stream (and words per answer).
        #[arg(long, default_value_t = 20)]
        chunks: u32,
        /// Milliseconds between two chunks of a stream.
        #[arg(long, default_value_t = 0)]
        interval_ms: u64,
        /// Runtime worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Serve the floor proxy: hyper's server and pooled client on one runtime per thread,
    /// forwarding to one upstream and doing nothing else (the stack's own cost, for reference).
    Floor {
        #[arg(long, default_value = "127.0.0.1:9500")]
        listen: SocketAddr,
        /// The upstream (the benchmark mock).
        #[arg(long, default_value = "127.0.0.1:9200")]
        upstream: SocketAddr,
        /// Threads, each a current-thread runtime listening on the port.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Drive one server with one scenario (e.g. while profiling it) and print the figures.
    Load {
        /// The server (the gateway, the mock or nginx).
        #[arg(long)]
        addr: SocketAddr,
        /// hf, gemini, stream or stream-gemini.
        #[arg(long, default_value = "hf")]
        scenario: String,
        /// Send the upstream's own request (to the mock or nginx) instead of the gateway's.
        #[arg(long)]
        upstream: bool,
        /// The gateway key; several (repeated or comma-separated) are taken by the clients in
        /// turn, as the suite's full configurations do with their 1,000 users.
        #[arg(long, value_delimiter = ',')]
        key: Vec<String>,
        /// Clients.
        #[arg(long, short = 'c', default_value_t = 64)]
        concurrency: usize,
        /// Seconds measured, after a 1 s warm-up.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Appended to the mock's model name, e.g. `-n5-i100` (5 chunks 100 ms apart).
        #[arg(long, default_value = "")]
        model_suffix: String,
        /// Content chunks each answer holds (must match the mock's).
        #[arg(long, default_value_t = 20)]
        chunks: u64,
    },
}

/// Runs `cargo xtask bench ...`.
pub(crate) fn run(args: BenchArgs) -> ExitCode {
    if let Some(BenchCommand::Mock {
        listen,
        latency_ms,
        chunks,
        interval_ms,
        threads,
    }) = args.command
    {
        let options = gw_mock::bench::BenchOptions {
            latency: Duration::from_millis(latency_ms),
            chunks,
            interval: Duration::from_millis(interval_ms),
        };
        let runtime = runtime(threads);
        return match runtime.block_on(gw_mock::bench::bind_and_serve(listen, options)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench mock: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(BenchCommand::Floor {
        listen,
        upstream,
        threads,
    }) = args.command
    {
        return match floor::serve(listen, upstream, threads) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench floor: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(BenchCommand::Load {
        addr,
        scenario,
        upstream,
        key,
        concurrency,
        duration,
        model_suffix,
        chunks,
    }) = args.command
    {
        let Some(scenario) = Scenario::ALL.into_iter().find(|s| s.name() == scenario) else {
            eprintln!("bench load: unknown scenario `{scenario}`");
            return ExitCode::FAILURE;
        };
        let shape = if upstream {
            suite::Shape::Upstream
        } else {
            suite::Shape::Gateway
        };
        let target = suite::request(scenario, shape, &model_suffix, chunks, addr, &key);
        let load = load::Load {
            concurrency,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs_f64(duration.max(0.1)),
            once: false,
        };
        let outcome = runtime(2).block_on(load::run(&target, load));
        suite::print_outcome(scenario.name(), "load", concurrency, &outcome);
        return if outcome.errors == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    match run_suite(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_suite(args: BenchArgs) -> Result<ExitCode, String> {
    let root = crate::workspace_root();
    let plan = plan(&args)?;
    let (gateway, xtask) = match &args.gateway_bin {
        Some(gateway) => (
            gateway.clone(),
            std::env::current_exe().map_err(|e| e.to_string())?,
        ),
        None => build(&root)?,
    };
    if cfg!(debug_assertions) && args.gateway_bin.is_none() {
        // This is `cargo xtask` (a debug build): hand over to the release build.
        let status = Command::new(&xtask)
            .args(std::env::args_os().skip(1))
            .arg("--gateway-bin")
            .arg(&gateway)
            .current_dir(&root)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", xtask.display()))?;
        return Ok(if status.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let target_dir = gateway
        .parent()
        .and_then(Path::parent)
        .ok_or("the gateway binary is in <target>/release")?;
    let env = suite::Env {
        gateway: gateway.clone(),
        xtask,
        dir: suite::run_dir(target_dir)?,
        nginx: procs::which("nginx"),
        postgres: std::env::var("GATEWAY_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.trim().is_empty()),
    };
    eprintln!(
        "bench: {} run; configs, databases and logs in {}",
        if plan.quick { "quick" } else { "full" },
        env.dir.display()
    );
    // Read before the run: the commit (and whether the tree had changes) is the one the
    // binaries under test were built from, not what the tree became while they ran.
    let machine = report::Machine::detect(&env);
    let runtime = runtime(2);
    let results = runtime.block_on(suite::run(plan, &env))?;
    let section = report::render(&results, &machine, &args_line(&args));
    println!("{section}");
    let out = root.join(&args.out);
    report::write(&out, &section)?;
    eprintln!(
        "bench: wrote {} ({:.0} s)",
        out.display(),
        results.elapsed.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn args_line(args: &BenchArgs) -> String {
    let mut line = String::from("cargo xtask bench");
    if args.quick {
        line.push_str(" --quick");
    }
    for s in &args.scenarios {
        line.push_str(" --scenario ");
        line.push_str(s);
    }
    if let Some(d) = args.duration {
        line.push_str(&format!(" --duration {d}"));
    }
    line
}

fn plan(args: &BenchArgs) -> Result<Plan, String> {
    let quick = args.quick;
    let known = [
        "hf",
        "gemini",
        "stream",
        "stream-gemini",
        "pacing",
        "memory",
        "growth",
        "semantic",
    ];
    for s in &args.scenarios {
        if !known.contains(&s.as_str()) {
            return Err(format!(
                "unknown scenario `{s}` (known: {})",
                known.join(", ")
            ));
        }
    }
    let wanted = |name: &str, by_default: bool| {
        if args.scenarios.is_empty() {
            by_default
        } else {
            args.scenarios.iter().any(|s| s == name)
        }
    };
    let scenarios = Scenario::ALL
        .into_iter()
        .filter(|s| wanted(s.name(), !(quick && *s == Scenario::StreamGemini)))
        .collect();
    let duration = match args.duration {
        Some(d) if d > 0.0 => Duration::from_secs_f64(d),
        Some(_) => return Err("--duration must be positive".into()),
        None if quick => Duration::from_millis(1500),
        None => Duration::from_secs(5),
    };
    Ok(Plan {
        quick,
        scenarios,
        pacing: wanted("pacing", true),
        memory: wanted("memory", true),
        growth: wanted("growth", true),
        semantic: wanted("semantic", true),
        concurrency: vec![1, 16, 64],
        warmup: if quick {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(1)
        },
        duration,
        streams: 1000,
        prefill_rows: 1_000_000,
        mock_threads: 1,
    })
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("a tokio runtime starts on any supported platform")
}

/// Builds `gateway` and `xtask` in release mode; returns their paths.
fn build(root: &Path) -> Result<(PathBuf, PathBuf), String> {
    eprintln!("bench: cargo build --release -p gw-server -p xtask ...");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "gw-server",
            "--bin",
            "gateway",
            "-p",
            "xtask",
            "--bin",
            "xtask",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err("the release build failed".into());
    }
    let mut gateway = None;
    let mut xtask = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let name = message.pointer("/target/name").and_then(|v| v.as_str());
        let exe = message.get("executable").and_then(|v| v.as_str());
        match (name, exe) {
            (Some("gateway"), Some(exe)) => gateway = Some(PathBuf::from(exe)),
            (Some("xtask"), Some(exe)) => xtask = Some(PathBuf::from(exe)),
            _ => {}
        }
    }
    match (gateway, xtask) {
        (Some(g), Some(x)) => Ok((g, x)),
        _ => Err("cargo did not report the gateway and xtask executables".into()),
    }
}
