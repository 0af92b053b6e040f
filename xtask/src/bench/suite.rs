//! The benchmark run: which processes, which scenarios, in which order.
//!
//! Every target runs side by side for the whole run (the mock, nginx, and each gateway
//! configuration, idle when not driven), and the loops go scenario, then concurrency, then
//! target, so the figures of one table are taken seconds apart on the same machine state.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::load::{self, Load, Outcome, Target};
use super::procs::{self, Proc};

/// The scenarios of the main tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// OpenAI-shaped chat through the Hugging Face route (passed through).
    Hf,
    /// Gemini `generateContent`, translated both ways.
    Gemini,
    /// OpenAI-shaped SSE through the Hugging Face route (parsed and re-encoded per chunk).
    Stream,
    /// Gemini SSE, translated to OpenAI chunks.
    StreamGemini,
}

impl Scenario {
    pub(crate) const ALL: [Scenario; 4] = [
        Scenario::Hf,
        Scenario::Gemini,
        Scenario::Stream,
        Scenario::StreamGemini,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Hf => "hf",
            Self::Gemini => "gemini",
            Self::Stream => "stream",
            Self::StreamGemini => "stream-gemini",
        }
    }

    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::Hf => "Hugging Face route: OpenAI chat completion passed through (JSON)",
            Self::Gemini => "Gemini route: chat completion translated to generateContent and back",
            Self::Stream => {
                "Streaming, Hugging Face route: 20 SSE chunks parsed and re-encoded (no pacing)"
            }
            Self::StreamGemini => {
                "Streaming, Gemini route: 20 streamGenerateContent events translated to OpenAI chunks (no pacing)"
            }
        }
    }

    pub(crate) fn streams(self) -> bool {
        matches!(self, Self::Stream | Self::StreamGemini)
    }

    fn gemini(self) -> bool {
        matches!(self, Self::Gemini | Self::StreamGemini)
    }
}

/// Where a target sends requests: straight to the upstream's API (the mock, or nginx in front
/// of it) or to the gateway's OpenAI-compatible API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Upstream,
    Gateway,
}

const PROMPT: &str = "Summarise in one sentence why a gateway should add little latency.";
/// Content chunks of the mock's default answer.
pub(crate) const CHUNKS: u64 = 20;

/// The request of `scenario` in `shape`, for the mock model with `suffix` (`-n5-i100`).
pub(crate) fn request(
    scenario: Scenario,
    shape: Shape,
    suffix: &str,
    chunks: u64,
    addr: SocketAddr,
    keys: &[String],
) -> Target {
    let stream = scenario.streams();
    let (path, body) = match (shape, scenario.gemini()) {
        (Shape::Upstream, true) => {
            let method = if stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            (
                format!("/v1beta/models/bench-chat{suffix}:{method}"),
                serde_json::json!({
                    "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
                    "generationConfig": {"maxOutputTokens": 64},
                }),
            )
        }
        (Shape::Upstream, false) | (Shape::Gateway, _) => {
            let model = match (shape, scenario.gemini()) {
                (Shape::Upstream, _) => format!("bench/chat{suffix}"),
                (Shape::Gateway, false) => format!("hf/bench/chat{suffix}"),
                (Shape::Gateway, true) => format!("gemini/bench-chat{suffix}"),
            };
            let mut body = serde_json::json!({
                "model": model,
                "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": 64,
            });
            if stream {
                body["stream"] = true.into();
                body["stream_options"] = serde_json::json!({"include_usage": true});
            }
            ("/v1/chat/completions".to_owned(), body)
        }
    };
    Target {
        addr,
        path,
        body: Bytes::from(body.to_string()),
        keys: keys.to_vec(),
        chunks,
        stream,
        expect_done: stream && !(shape == Shape::Upstream && scenario.gemini()),
    }
}

/// What to run and for how long.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) quick: bool,
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) pacing: bool,
    pub(crate) memory: bool,
    pub(crate) growth: bool,
    /// The semantic cache's lookup with 10,000 entries (memory, and Redis when
    /// `GATEWAY_TEST_REDIS_URL` is set).
    pub(crate) semantic: bool,
    pub(crate) concurrency: Vec<usize>,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    /// Open streams of the memory check.
    pub(crate) streams: usize,
    /// Rows written before the second half of the growth check.
    pub(crate) prefill_rows: u64,
    pub(crate) mock_threads: usize,
}

/// A process the load is aimed at.
pub(crate) struct Endpoint {
    pub(crate) name: &'static str,
    pub(crate) shape: Shape,
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
    pub(crate) keys: Vec<String>,
}

/// One measured run.
pub(crate) struct Measured {
    pub(crate) scenario: &'static str,
    pub(crate) target: &'static str,
    pub(crate) concurrency: usize,
    pub(crate) outcome: Outcome,
    /// CPU time the target process used per completed request in the window (the mock's for
    /// `direct`), µs.
    pub(crate) target_cpu_us: f64,
    /// The mock's CPU time per request in the window, µs.
    pub(crate) mock_cpu_us: f64,
}

/// Memory of one gateway configuration.
pub(crate) struct Memory {
    pub(crate) target: &'static str,
    /// VmRSS right after start.
    pub(crate) idle: u64,
    /// VmHWM at the end of the main run, or of the open-streams check.
    pub(crate) peak: u64,
    /// The open-streams check (for its table); `None` for the main-run figure.
    pub(crate) streams: Option<Outcome>,
}

/// The growth check of one store.
pub(crate) struct Growth {
    pub(crate) target: &'static str,
    pub(crate) rows_before: i64,
    pub(crate) rows_after: i64,
    pub(crate) before: Outcome,
    pub(crate) after: Outcome,
    pub(crate) prefill: Duration,
}

/// Everything a run produced.
pub(crate) struct Results {
    pub(crate) started: SystemTime,
    /// `/proc/loadavg` at the start and at the end (other work on the machine skews figures).
    pub(crate) load_average: (String, String),
    pub(crate) elapsed: Duration,
    pub(crate) plan: Plan,
    pub(crate) targets: Vec<&'static str>,
    pub(crate) notes: Vec<String>,
    pub(crate) runs: Vec<Measured>,
    pub(crate) pacing: Vec<Measured>,
    pub(crate) memory: Vec<Memory>,
    pub(crate) growth: Vec<Growth>,
    pub(crate) semantic: Vec<super::semantic::Lookup>,
}

/// Paths and tools of a run.
pub(crate) struct Env {
    pub(crate) gateway: PathBuf,
    pub(crate) xtask: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) nginx: Option<PathBuf>,
    pub(crate) postgres: Option<String>,
}

fn say(message: impl AsRef<str>) {
    eprintln!("bench: {}", message.as_ref());
}

/// Runs `plan`.
pub(crate) async fn run(plan: Plan, env: &Env) -> Result<Results, String> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let mut results = Results {
        started,
        load_average: (load_average(), String::new()),
        elapsed: Duration::ZERO,
        plan: plan.clone(),
        targets: Vec::new(),
        notes: Vec::new(),
        runs: Vec::new(),
        pacing: Vec::new(),
        memory: Vec::new(),
        growth: Vec::new(),
        semantic: Vec::new(),
    };
    let mock = procs::start_mock(&env.xtask, plan.mock_threads, &env.dir.join("mock.log"))?;
    say(format!("mock upstream on {}", mock.addr));

    let mut procs: Vec<Proc> = Vec::new();
    let mut endpoints = vec![Endpoint {
        name: "direct",
        shape: Shape::Upstream,
        addr: mock.addr,
        pid: mock.pid(),
        keys: Vec::new(),
    }];
    match &env.nginx {
        Some(nginx) => {
            let addr = procs::free_port()?;
            let proc = procs::start_nginx(nginx, &env.dir.join("nginx"), addr, mock.addr)?;
            say(format!("nginx on {addr}"));
            endpoints.push(Endpoint {
                name: "nginx",
                shape: Shape::Upstream,
                addr,
                pid: proc.pid(),
                keys: Vec::new(),
            });
            procs.push(proc);
        }
        None => results.notes.push(
            "nginx is not installed (`apt-get install nginx`), so there is no reverse-proxy \
             baseline in this run"
                .into(),
        ),
    }
    // The gateway's stack alone, as a reference: what is above it is the gateway's own work.
    let floor = procs::start_floor(&env.xtask, mock.addr, &env.dir.join("floor.log"))?;
    say(format!("floor proxy on {}", floor.addr));
    endpoints.push(Endpoint {
        name: "floor",
        shape: Shape::Upstream,
        addr: floor.addr,
        pid: floor.pid(),
        keys: Vec::new(),
    });
    procs.push(floor);
    let mut configs = vec![
        Config::Proxy,
        Config::ProxyOtel,
        Config::ProxyCache,
        Config::FullSqlite,
    ];
    if env.postgres.is_some() {
        configs.push(Config::FullPostgres);
    } else {
        results.notes.push(
            "GATEWAY_TEST_POSTGRES_URL is not set, so the `full` configuration ran on SQLite only"
                .into(),
        );
    }
    let sink = otlp_sink().await?;
    say(format!("OTLP receiver on {}", sink.addr));
    let mut gateways = Vec::new();
    for config in &configs {
        let gw = start_gateway(*config, env, mock.addr, "main", Some(sink.addr)).await?;
        say(format!("gateway `{}` on {}", config.name(), gw.proc.addr));
        endpoints.push(Endpoint {
            name: config.name(),
            shape: Shape::Gateway,
            addr: gw.proc.addr,
            pid: gw.proc.pid(),
            keys: gw.keys.clone(),
        });
        gateways.push(gw);
    }
    results.targets = endpoints.iter().map(|e| e.name).collect();

    let load = Load {
        concurrency: 1,
        warmup: plan.warmup,
        duration: plan.duration,
        once: false,
    };
    for &scenario in &plan.scenarios {
        for &concurrency in &plan.concurrency {
            for endpoint in &endpoints {
                let load = Load {
                    concurrency,
                    ..load
                };
                let target = request(
                    scenario,
                    endpoint.shape,
                    "",
                    CHUNKS,
                    endpoint.addr,
                    &endpoint.keys,
                );
                let m = measure(scenario.name(), endpoint, &mock, &target, load).await;
                report_line(&m);
                results.runs.push(m);
            }
        }
    }

    if plan.pacing {
        // 5 chunks 100 ms apart, 16 clients.
        let load = Load {
            concurrency: 16,
            warmup: Duration::from_millis(600),
            duration: if plan.quick {
                Duration::from_secs(2)
            } else {
                Duration::from_secs(4)
            },
            once: false,
        };
        for endpoint in &endpoints {
            let target = request(
                Scenario::Stream,
                endpoint.shape,
                "-n5-i100",
                5,
                endpoint.addr,
                &endpoint.keys,
            );
            let m = measure("pacing", endpoint, &mock, &target, load).await;
            report_line(&m);
            results.pacing.push(m);
        }
    }

    for gw in &mut gateways {
        gw.proc.check_alive()?;
        results.memory.push(Memory {
            target: gw.config.name(),
            idle: gw.idle_rss,
            peak: procs::status_bytes(gw.proc.pid(), "VmHWM").unwrap_or(0),
            streams: None,
        });
    }
    for gw in gateways {
        gw.stop().await;
    }
    let exported = sink.received();
    results.notes.push(format!(
        "`proxy-otel` exported {} OTLP requests ({:.1} MB) to a local receiver during the run",
        exported.0,
        exported.1 as f64 / 1e6
    ));
    for proc in procs {
        proc.stop();
    }

    if plan.memory {
        for config in [Config::Proxy, Config::FullSqlite] {
            let gw = start_gateway(config, env, mock.addr, "memory", None).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let idle = procs::status_bytes(gw.proc.pid(), "VmRSS").unwrap_or(0);
            // Each stream: 10 chunks 1 s apart (5 in a quick run), all opened at once.
            let chunks: u64 = if plan.quick { 5 } else { 10 };
            let target = request(
                Scenario::Stream,
                Shape::Gateway,
                &format!("-n{chunks}-i1000"),
                chunks,
                gw.proc.addr,
                &gw.keys,
            );
            say(format!(
                "{} streams held open through `{}` ...",
                plan.streams,
                config.name()
            ));
            let outcome = load::run(
                &target,
                Load {
                    concurrency: plan.streams,
                    warmup: Duration::ZERO,
                    duration: Duration::ZERO,
                    once: true,
                },
            )
            .await;
            let peak = procs::status_bytes(gw.proc.pid(), "VmHWM").unwrap_or(0);
            say(format!(
                "  {} ok, {} errors, at most {} open at once, peak RSS {:.1} MB",
                outcome.ok,
                outcome.errors,
                outcome.max_open,
                peak as f64 / 1e6
            ));
            if let Some(e) = &outcome.first_error {
                say(format!("  first error: {e}"));
            }
            results.memory.push(Memory {
                target: config.name(),
                idle,
                peak,
                streams: Some(outcome),
            });
            gw.stop().await;
        }
    }

    if plan.semantic {
        let redis = std::env::var("GATEWAY_TEST_REDIS_URL").ok();
        if redis.is_none() {
            results.notes.push(
                "GATEWAY_TEST_REDIS_URL is not set, so the semantic lookup ran on the in-memory \
                 backend only"
                    .into(),
            );
        }
        say("semantic cache lookups, 10,000 entries ...");
        match super::semantic::measure(redis.as_deref()).await {
            Ok(lookups) => results.semantic = lookups,
            Err(e) => results
                .notes
                .push(format!("the semantic lookup failed: {e}")),
        }
    }
    if plan.growth {
        let mut stores = vec![Config::FullSqlite];
        if env.postgres.is_some() {
            stores.push(Config::FullPostgres);
        }
        for config in stores {
            results
                .growth
                .push(growth(config, &plan, env, &mock).await?);
        }
    }
    mock.stop();
    results.elapsed = clock.elapsed();
    results.load_average.1 = load_average();
    Ok(results)
}

async fn measure(
    scenario: &'static str,
    endpoint: &Endpoint,
    mock: &Proc,
    target: &Target,
    load: Load,
) -> Measured {
    let mock_pid = mock.pid();
    let target_pid = endpoint.pid;
    let cpu = async {
        tokio::time::sleep(load.warmup).await;
        let t0 = procs::cpu_time(target_pid);
        let m0 = procs::cpu_time(mock_pid);
        tokio::time::sleep(load.duration).await;
        (
            procs::cpu_time(target_pid).saturating_sub(t0),
            procs::cpu_time(mock_pid).saturating_sub(m0),
        )
    };
    let (outcome, (target_cpu, mock_cpu)) = tokio::join!(load::run(target, load), cpu);
    let per = |d: Duration| {
        if outcome.ok == 0 {
            0.0
        } else {
            d.as_secs_f64() * 1e6 / outcome.ok as f64
        }
    };
    Measured {
        scenario,
        target: endpoint.name,
        concurrency: load.concurrency,
        target_cpu_us: per(target_cpu),
        mock_cpu_us: per(mock_cpu),
        outcome,
    }
}

fn report_line(m: &Measured) {
    print_outcome(m.scenario, m.target, m.concurrency, &m.outcome);
}

/// One line of figures on stderr.
pub(crate) fn print_outcome(scenario: &str, target: &str, concurrency: usize, o: &Outcome) {
    let ms = |v: u64| v as f64 / 1000.0;
    let mut line = format!(
        "{scenario:<13} c{concurrency:<3} {target:<13} {:>8.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms",
        o.throughput(),
        ms(o.latency.value_at_quantile(0.5)),
        ms(o.latency.value_at_quantile(0.99)),
    );
    if !o.gaps.is_empty() {
        line.push_str(&format!(
            "  ttfb p50 {:.3} ms  gap p50 {:.3} p99 {:.3} ms",
            ms(o.ttfb.value_at_quantile(0.5)),
            ms(o.gaps.value_at_quantile(0.5)),
            ms(o.gaps.value_at_quantile(0.99))
        ));
    }
    if o.errors > 0 {
        line.push_str(&format!(
            "  {} errors ({})",
            o.errors,
            o.first_error.as_deref().unwrap_or("")
        ));
    }
    say(line);
}

/// A gateway configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Config {
    /// No store: static keys, no plans, no usage log.
    Proxy,
    /// Plans, cost and usage log on a SQLite file.
    FullSqlite,
    /// Plans, cost and usage log on PostgreSQL.
    FullPostgres,
    /// As `Proxy`, with traces and metrics exported over OTLP and `/metrics` on.
    ProxyOtel,
    /// As `Proxy`, with the exact response cache on (in memory): every request after the
    /// first is a hit.
    ProxyCache,
}

impl Config {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::FullSqlite => "full-sqlite",
            Self::FullPostgres => "full-postgres",
            Self::ProxyOtel => "proxy-otel",
            Self::ProxyCache => "proxy-cache",
        }
    }
}

/// A running gateway and what its clients need.
struct Gateway {
    config: Config,
    proc: Proc,
    /// The keys clients take in turn: the proxy's one static key; for a store, half of them
    /// the hot user's, the others one each for 999 more users.
    keys: Vec<String>,
    idle_rss: u64,
    /// The store URL (full configurations).
    store_url: Option<String>,
    /// A PostgreSQL database made for this gateway, dropped when it stops: (server URL, name).
    created_db: Option<(String, String)>,
}

impl Gateway {
    async fn stop(self) {
        self.proc.stop();
        if let Some((server, name)) = self.created_db {
            let _ = drop_database(&server, &name).await;
        }
    }
}

/// The model names the runs use, each priced (a bench price) so that cost is computed as for a
/// real model.
fn price_overrides() -> String {
    let mut text = String::from("version = \"bench\"\n");
    for suffix in ["", "-n5-i100", "-n5-i1000", "-n10-i1000"] {
        for (provider, model) in [("hf", "bench/chat"), ("gemini", "bench-chat")] {
            text.push_str(&format!(
                "\n[[text]]\nprovider = \"{provider}\"\nmodel = \"{model}{suffix}\"\ninput = \"0.30\"\noutput = \"2.50\"\nsource = \"cargo xtask bench: a made-up price\"\n"
            ));
        }
    }
    text
}

async fn start_gateway(
    config: Config,
    env: &Env,
    upstream: SocketAddr,
    tag: &str,
    otlp: Option<SocketAddr>,
) -> Result<Gateway, String> {
    let dir = env.dir.join(format!("{}-{tag}", config.name()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let addr = procs::free_port()?;
    let providers = format!(
        "[providers.gemini]\napi_key = \"bench\"\nbase_url = \"http://{upstream}\"\n\n\
         [providers.hf]\napi_key = \"bench\"\nbase_url = \"http://{upstream}\"\n"
    );
    let prices = dir.join("prices.toml");
    std::fs::write(&prices, price_overrides()).map_err(|e| e.to_string())?;
    let mut created_db = None;
    let (store, keys, store_url) = match config {
        Config::Proxy | Config::ProxyOtel | Config::ProxyCache => {
            let key = "sk-bench-proxy-0123456789abcdef".to_owned();
            (
                format!(
                    "[store]\nenabled = false\n\n[[auth.keys]]\nname = \"bench\"\nkey = \"{key}\"\n"
                ),
                vec![key],
                None,
            )
        }
        Config::FullSqlite | Config::FullPostgres => {
            let url = match config {
                Config::FullSqlite => format!("sqlite://{}", dir.join("gateway.db").display()),
                _ => {
                    let server = env.postgres.clone().ok_or("no PostgreSQL URL")?;
                    let name = format!("gw_bench_{}_{tag}", std::process::id());
                    let url = create_database(&server, &name).await?;
                    created_db = Some((server, name));
                    url
                }
            };
            let plans = dir.join("plans.toml");
            std::fs::write(&plans, BENCH_PLANS).map_err(|e| e.to_string())?;
            let keys = create_users_and_keys(&url, &plans).await?;
            // PostgreSQL gets a journal as a replica should (SQLite has one beside its file),
            // so both admit from leases.
            let journal = match config {
                Config::FullPostgres => format!(
                    "journal = \"{}\"\n",
                    dir.join("gateway.settlements").display()
                ),
                _ => String::new(),
            };
            (
                format!(
                    "[store]\nurl = \"{url}\"\nplans = \"{}\"\n{journal}",
                    plans.display()
                ),
                keys,
                Some(url),
            )
        }
    };
    let telemetry = match (config, otlp) {
        (Config::ProxyOtel, Some(sink)) => {
            format!("[telemetry]\notlp_endpoint = \"http://{sink}\"\nprometheus = \"admin\"\n\n")
        }
        (Config::ProxyOtel, None) => return Err("proxy-otel needs a receiver".into()),
        (Config::ProxyCache, _) => "[cache]\nenabled = true\n\n".to_owned(),
        _ => String::new(),
    };
    let toml = format!(
        "# Written by `cargo xtask bench`.\n[server]\nlisten = \"{addr}\"\n\n{store}\n\
         [pricing]\noverrides = \"{}\"\n\n{telemetry}{providers}",
        prices.display()
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, toml).map_err(|e| e.to_string())?;
    let proc = procs::start_gateway(
        config.name(),
        &env.gateway,
        &path,
        addr,
        &dir.join("gateway.log"),
    )?;
    let idle_rss = procs::status_bytes(proc.pid(), "VmRSS").unwrap_or(0);
    Ok(Gateway {
        config,
        proc,
        keys,
        idle_rss,
        store_url,
        created_db,
    })
}

/// The plan of the full configurations' users: every limit a plan can set, high enough that no
/// request of the bench is refused, so admission checks and reserves them all (the money cap
/// and the token caps included) without ever saying no.
const BENCH_PLANS: &str = r#"
[plans.bench]
cost_usd = "1000000000"
allow = ["*"]
allow_unpriced = true
default_max_tokens = 1024

[plans.bench.text]
requests = 1000000000000
tokens = 1000000000000000
"#;

/// Users on the bench plan with a key each: `bench` (the hot user) and 999 more; returns the
/// keys clients take in turn, every other one the hot user's.
async fn create_users_and_keys(url: &str, plans: &Path) -> Result<Vec<String>, String> {
    let plans = gw_store::Plans::load(plans).map_err(|e| format!("bench plans: {e}"))?;
    let store = gw_store::Store::connect_with(url, gw_store::StoreOptions::new().plans(plans))
        .await
        .map_err(|e| format!("store: {e}"))?;
    let mut keys = Vec::with_capacity(2 * USERS);
    let mut hot = String::new();
    for i in 0..USERS {
        let name = if i == 0 {
            "bench".to_owned()
        } else {
            format!("bench-{i}")
        };
        let user = store
            .create_user(&name, "bench")
            .await
            .map_err(|e| format!("creating the bench user {name}: {e}"))?;
        let (_, key) = store
            .create_key(&user.id, "bench")
            .await
            .map_err(|e| format!("creating the key of {name}: {e}"))?;
        let key = key.expose().to_owned();
        if i == 0 {
            hot = key;
        } else {
            keys.push(hot.clone());
            keys.push(key);
        }
    }
    store.close().await;
    Ok(keys)
}

/// Users of the full configurations: one hot one and 999 others.
const USERS: usize = 1000;

/// `server` with its database replaced by `name`.
fn with_database(server: &str, name: &str) -> Result<String, String> {
    let (base, query) = server.split_once('?').unwrap_or((server, ""));
    let scheme_end = base.find("://").ok_or("a postgres:// URL")? + 3;
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..path_start]);
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

async fn create_database(server: &str, name: &str) -> Result<String, String> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(server)
        .await
        .map_err(|e| format!("PostgreSQL (GATEWAY_TEST_POSTGRES_URL): {e}"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&mut conn)
    .await
    .map_err(|e| format!("PostgreSQL: {e}"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("PostgreSQL: cannot create the bench database {name}: {e}"))?;
    let _ = conn.close().await;
    with_database(server, name)
}

async fn drop_database(server: &str, name: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(server)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    let _ = conn.close().await;
    Ok(())
}

/// Rows in the usage log.
async fn usage_rows(url: &str) -> Result<i64, String> {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_log")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let _ = conn.close().await;
    Ok(n)
}

/// Writes `rows` usage-log rows for the bench user in one statement.
async fn prefill(url: &str, rows: u64) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let user: String = sqlx::query_scalar("SELECT id FROM users WHERE name = 'bench'")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let period = gw_store::Plans::parse("bench plans", BENCH_PLANS)
        .and_then(|p| p.require("bench").cloned())
        .map_err(|e| e.to_string())?
        .current_period();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let postgres = url.starts_with("postgres");
    let numbers = if postgres {
        format!("SELECT generate_series(1, {rows}) AS i")
    } else {
        format!(
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {rows}) \
             SELECT i FROM seq"
        )
    };
    let sql = format!(
        "INSERT INTO usage_log (request_id, reservation_id, user_id, period, provider, model,
            modality, operation, status, error_message, input_tokens, output_tokens,
            cached_input_tokens, reasoning_tokens, units, cost_nanos, pricing_version, estimated,
            billable, latency_ms, ttft_ms, retries, cached, created_at)
         SELECT 'prefill-' || CAST(n.i AS TEXT), NULL, $1, $2, 'hf', 'bench/chat', 'text', 'chat',
            'ok', NULL, 12, 20, 0, 0, 0, 53600, 'bench', 0, 1, 3, NULL, 0, 0, $3 - n.i
         FROM ({numbers}) AS n"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .bind(period)
        .bind(now)
        .execute(&mut conn)
        .await
        .map_err(|e| format!("prefilling the usage log: {e}"))?;
    if !postgres {
        // The insert above is one transaction of a million rows, all of it in the WAL: copied
        // back here, rather than by the gateway's writer at its next commit, so the run after
        // measures the gateway with a larger log and not the checkpoint of the bench's insert
        // (which a gateway writing those rows itself would have made in small steps).
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await
            .map_err(|e| format!("checkpointing the prefilled usage log: {e}"))?;
    }
    let _ = conn.close().await;
    Ok(())
}

/// The `hf` scenario at the highest concurrency on a fresh store, then again after `rows`
/// more usage-log rows.
async fn growth(config: Config, plan: &Plan, env: &Env, mock: &Proc) -> Result<Growth, String> {
    let gw = start_gateway(config, env, mock.addr, "growth", None).await?;
    let url = gw
        .store_url
        .clone()
        .ok_or("a full configuration has a store")?;
    let concurrency = plan.concurrency.iter().copied().max().unwrap_or(64);
    let endpoint = Endpoint {
        name: config.name(),
        shape: Shape::Gateway,
        addr: gw.proc.addr,
        pid: gw.proc.pid(),
        keys: gw.keys.clone(),
    };
    let target = request(
        Scenario::Hf,
        Shape::Gateway,
        "",
        CHUNKS,
        endpoint.addr,
        &gw.keys,
    );
    let load = Load {
        concurrency,
        warmup: plan.warmup,
        duration: plan.duration,
        once: false,
    };
    let before = measure("growth", &endpoint, mock, &target, load).await;
    report_line(&before);
    let rows_before = usage_rows(&url).await?;
    say(format!(
        "writing {} usage rows into `{}` ...",
        plan.prefill_rows,
        config.name()
    ));
    let t = Instant::now();
    prefill(&url, plan.prefill_rows).await?;
    let prefill_time = t.elapsed();
    say(format!("  done in {:.1} s", prefill_time.as_secs_f64()));
    let rows_mid = usage_rows(&url).await?;
    let after = measure("growth", &endpoint, mock, &target, load).await;
    report_line(&after);
    gw.stop().await;
    Ok(Growth {
        target: config.name(),
        rows_before,
        rows_after: rows_mid,
        before: before.outcome,
        after: after.outcome,
        prefill: prefill_time,
    })
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The directory for this run's configs, databases and logs (emptied first).
pub(crate) fn run_dir(target_dir: &Path) -> Result<PathBuf, String> {
    let dir = target_dir.join("bench");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Absolute, because nginx resolves its paths against its own prefix.
    std::fs::canonicalize(&dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// A local OTLP/HTTP receiver that accepts everything and counts it: what a collector on the
/// same machine costs the gateway, without a collector's own CPU in the figures.
struct OtlpSink {
    addr: SocketAddr,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
    bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl OtlpSink {
    /// OTLP requests and bytes received so far.
    fn received(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.requests.load(Relaxed), self.bytes.load(Relaxed))
    }
}

async fn otlp_sink() -> Result<OtlpSink, String> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("OTLP receiver: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let (r, b) = (Arc::clone(&requests), Arc::clone(&bytes));
    let accept = move |body: bytes::Bytes| {
        r.fetch_add(1, Relaxed);
        b.fetch_add(body.len() as u64, Relaxed);
        async { "" }
    };
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(accept.clone()))
        .route("/v1/metrics", axum::routing::post(accept));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(OtlpSink {
        addr,
        requests,
        bytes,
    })
}
