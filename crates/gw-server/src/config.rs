//! The server configuration: one TOML file, every value overridable by environment variable.
//!
//! An environment variable `GATEWAY__<SECTION>__<FIELD>` (double underscores between levels,
//! case-insensitive) overrides the value at `section.field`, e.g.
//! `GATEWAY__SERVER__LISTEN=0.0.0.0:8080` or `GATEWAY__PROVIDERS__GEMINI__BASE_URL=http://...`.
//! Values are read as TOML scalars where they parse as one (`8080`, `true`), else as strings.
//! API keys are never written in the file: `api_key_env` and `key_env` name the variables that
//! hold them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeMap;

use llm_gateway::CacheConfig;
use llm_gateway::ratelimit::{LimiterBackend, RateLimitConfig};
use llm_gateway::{ProvidersConfig, RetryPolicy, RoutingConfig, SecretString};
use serde::Deserialize;

/// The prefix of override variables.
pub const ENV_PREFIX: &str = "GATEWAY__";

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: where to listen.
    #[serde(default)]
    pub server: ServerSection,
    /// `[auth]`: the gateway keys clients use.
    #[serde(default)]
    pub auth: AuthSection,
    /// `[retry]`: how provider calls are retried.
    #[serde(default)]
    pub retry: RetrySection,
    /// `[pricing]`: operator price overrides.
    #[serde(default)]
    pub pricing: PricingSection,
    /// `[store]`: users, keys, plans and usage.
    #[serde(default)]
    pub store: StoreSection,
    /// `[admin]`: the operator's key for the admin routes.
    #[serde(default)]
    pub admin: AdminSection,
    /// `[routing]`: deadlines, fallback chains (aliases) and circuit breakers.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// `[rate_limits]`: per provider key (outgoing), per user and per gateway key (incoming).
    #[serde(default)]
    pub rate_limits: RateLimitsSection,
    /// `[providers.<id>]`: each provider's key, base URL and models.
    #[serde(default)]
    pub providers: ProvidersConfig,
    /// `[telemetry]`: OpenTelemetry traces and metrics, and Prometheus' `/metrics`.
    #[serde(default)]
    pub telemetry: crate::telemetry::TelemetrySection,
    /// `[jobs]`: how video jobs are followed and their output served.
    #[serde(default)]
    pub jobs: crate::video_jobs::JobsSection,
    /// `[media]`: where uploaded files and trained LoRAs are kept.
    #[serde(default)]
    pub media: crate::media::MediaSection,
    /// `[cache]`: the response cache, off unless the section is present.
    #[serde(default)]
    pub cache: Option<CacheSection>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// The address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// The largest image one edit request may upload (each `image` and the `mask`), in bytes.
    #[serde(default = "default_max_image")]
    pub max_image_bytes: usize,
    /// On SIGTERM, how long the requests in flight may run on before they are cancelled, in
    /// milliseconds (default 30000).
    #[serde(default = "default_drain_ms")]
    pub drain_ms: u64,
    /// How many threads serve connections, each a single-threaded runtime that keeps a
    /// connection, its provider calls and its answer on one core; 0 (the default) is one per
    /// CPU.
    #[serde(default)]
    pub workers: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_body_bytes: default_max_body(),
            max_image_bytes: default_max_image(),
            drain_ms: default_drain_ms(),
            workers: 0,
        }
    }
}

fn default_drain_ms() -> u64 {
    30_000
}

fn default_max_image() -> usize {
    20 * 1024 * 1024
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_body() -> usize {
    32 * 1024 * 1024
}

/// `[store]`: where users, keys, plans and usage live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// With `false` the gateway runs without plans or usage accounting (a plain proxy), and
    /// clients authenticate with the static `[[auth.keys]]`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `sqlite://PATH` (created on first start), `sqlite::memory:`, or `postgres://...` for
    /// several replicas sharing one database. Prefer `GATEWAY__STORE__URL` for a URL with a
    /// password.
    #[serde(default = "default_store_url")]
    pub url: String,
    /// A plans file replacing the built-in table (relative paths are relative to the config file).
    #[serde(default)]
    pub plans: Option<PathBuf>,
    /// The most database connections in the pool (a SQLite file has one more, for writes).
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// How often this process records its heartbeat and recovers what dead ones left open.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// After how long without a heartbeat another gateway process counts as dead, and its open
    /// reservations are settled at their estimate.
    #[serde(default = "default_stale_after_ms")]
    pub stale_after_ms: u64,
    /// How long a checked gateway key is remembered when the store cannot be asked for changes
    /// (see `auth_poll_ms`): while it can, about five minutes, so most requests need no lookup.
    /// Default 10 000 ms; 0 turns the key cache off.
    #[serde(default = "default_key_cache_ms")]
    pub key_cache_ms: u64,
    /// How often the store is asked whether a key was revoked or a plan changed anywhere (another
    /// replica, `gateway admin`); remembered keys and plans are dropped when one was (default
    /// 500 ms: a change applies everywhere within it; on this replica at once).
    #[serde(default = "default_auth_poll_ms")]
    pub auth_poll_ms: u64,
    /// Where the gateway keeps each reservation and settlement until the database has it, so
    /// usage survives the process being killed (relative paths are relative to the config
    /// file). With a journal, admission is decided in memory from leases of each user's
    /// allowance, without a database transaction per request. Default: beside a SQLite file,
    /// `<file>.settlements`; none for PostgreSQL or an in-memory database unless set. Each
    /// replica needs its own (replicas on one host given the same path take `<path>-2`,
    /// `<path>-3`, ...).
    #[serde(default)]
    pub journal: Option<PathBuf>,
}

impl StoreSection {
    /// The settlement journal: [`StoreSection::journal`], or its default for the URL.
    pub fn journal_path(&self) -> Option<PathBuf> {
        if self.journal.is_some() {
            return self.journal.clone();
        }
        let file = self.url.strip_prefix("sqlite://")?;
        let file = file.split('?').next().unwrap_or(file);
        (!file.is_empty() && !file.contains(":memory:"))
            .then(|| PathBuf::from(format!("{file}.settlements")))
    }
}

fn default_auth_poll_ms() -> u64 {
    500
}

fn default_key_cache_ms() -> u64 {
    10_000
}

fn default_true() -> bool {
    true
}
fn default_store_url() -> String {
    "sqlite://gateway.db".into()
}
fn default_heartbeat_ms() -> u64 {
    gw_store::Maintenance::default().every.as_millis() as u64
}
fn default_stale_after_ms() -> u64 {
    gw_store::Maintenance::default().stale_after.as_millis() as u64
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            enabled: true,
            url: default_store_url(),
            plans: None,
            max_connections: None,
            heartbeat_ms: default_heartbeat_ms(),
            stale_after_ms: default_stale_after_ms(),
            key_cache_ms: default_key_cache_ms(),
            auth_poll_ms: default_auth_poll_ms(),
            journal: None,
        }
    }
}

impl StoreSection {
    /// The maintenance schedule of the store.
    pub fn maintenance(&self) -> gw_store::Maintenance {
        gw_store::Maintenance {
            every: Duration::from_millis(self.heartbeat_ms),
            stale_after: Duration::from_millis(self.stale_after_ms),
            ..gw_store::Maintenance::default()
        }
    }
}

/// `[rate_limits]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsSection {
    /// `[rate_limits.store]`: `backend = "local"` (each process on its own, the default) or
    /// `backend = "redis"` with `url` (one limit across every replica). Prefer
    /// `GATEWAY__RATE_LIMITS__STORE__URL` for a URL with a password.
    #[serde(default)]
    pub store: LimiterBackend,
    /// `[rate_limits.providers.<id>]`: calls made with the gateway's key of that provider:
    /// `requests_per_minute`, `tokens_per_minute` (prompt estimate plus `max_tokens`), bursts.
    #[serde(default)]
    pub providers: BTreeMap<String, RateLimitConfig>,
    /// `[rate_limits.users]`: requests per minute of each user (all their keys together).
    #[serde(default)]
    pub users: Option<RateLimitConfig>,
    /// `[rate_limits.keys]`: requests per minute of each gateway key.
    #[serde(default)]
    pub keys: Option<RateLimitConfig>,
}

/// `[cache]`: the response cache. Off unless the section is present; with it, the cache is
/// there for requests that ask for it (`x-gateway-cache: exact`), for the models of
/// `[cache.models]` that enable it, and for every chat model with `enabled = true`.
///
/// The section holds every field of [`CacheConfig`] (`enabled`, `ttl_secs`, `max_ttl_secs`,
/// `share`, `groups`, `count_hits`, `budget_ms`, `max_entry_bytes`, `[cache.models]`,
/// `[cache.semantic]`, `[cache.embeddings]`, `[cache.search]`, `[cache.images]`,
/// `[cache.speech]`) and `[cache.store]`, where entries live.
#[derive(Debug, Clone, Default)]
pub struct CacheSection {
    /// What is cached, for how long, and who shares entries.
    pub config: CacheConfig,
    /// `[cache.store]`: `backend = "memory"` (the default) or `backend = "redis"`.
    pub store: CacheStore,
}

impl<'de> Deserialize<'de> for CacheSection {
    // By hand: `#[serde(flatten)]` would let a misspelt field of `[cache]` pass unnoticed
    // (flattening turns `deny_unknown_fields` off), so `store` is taken out and the rest read as
    // a `CacheConfig`, which refuses unknown fields.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut table = toml::Table::deserialize(d)?;
        let store = match table.remove("store") {
            None => CacheStore::default(),
            Some(toml::Value::Table(mut store)) => {
                // `backend` may be left out for the default, as `[cache.store] max_bytes = ...`.
                store
                    .entry("backend")
                    .or_insert_with(|| toml::Value::String("memory".into()));
                CacheStore::deserialize(toml::Value::Table(store))
                    .map_err(|e| D::Error::custom(at_field("cache.store", &e)))?
            }
            Some(_) => return Err(D::Error::custom("cache.store: expected a table")),
        };
        let config = CacheConfig::deserialize(toml::Value::Table(table))
            .map_err(|e| D::Error::custom(at_field("cache", &e)))?;
        Ok(Self { config, store })
    }
}

/// `e`, a TOML error found under `section`, as `<section>.<field>: <problem>`: the field
/// comes from the error's own path (`unknown field ... in `semantic``).
fn at_field(section: &str, e: &toml::de::Error) -> String {
    let text = e.to_string();
    let text = text.trim_end();
    match text.rsplit_once("\nin `") {
        Some((problem, path)) => {
            let path = path.trim_end_matches('`');
            format!("{section}.{path}: {}", problem.trim_end())
        }
        None => format!("{section}: {text}"),
    }
}

/// `[cache.store]`: where cache entries live.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum CacheStore {
    /// In this process (the default): nothing is shared between replicas, nothing survives a
    /// restart.
    Memory(MemoryCacheStore),
    /// In a Redis every replica shares.
    Redis(RedisCacheStore),
}

impl Default for CacheStore {
    fn default() -> Self {
        Self::Memory(MemoryCacheStore::default())
    }
}

/// `[cache.store] backend = "memory"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryCacheStore {
    /// The most bytes of answers kept (the oldest go first). Default 64 MiB.
    #[serde(default = "default_cache_max_bytes")]
    pub max_bytes: usize,
}

impl Default for MemoryCacheStore {
    fn default() -> Self {
        Self {
            max_bytes: default_cache_max_bytes(),
        }
    }
}

fn default_cache_max_bytes() -> usize {
    64 << 20
}

/// `[cache.store] backend = "redis"`: as `[rate_limits.store]`, with the cache's own prefix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisCacheStore {
    /// `redis://[user:password@]host:port[/db]` (or `unix:///path`). It may hold a password, so
    /// it is kept as a secret and never appears in errors or logs; prefer
    /// `GATEWAY__CACHE__STORE__URL`.
    pub url: SecretString,
    /// Every key is written under `gw:cache:<prefix>:`, so several gateways or environments can
    /// share one Redis without sharing entries. Default empty (`gw:cache:`).
    #[serde(default)]
    pub prefix: String,
    /// Longest wait for a connection, in milliseconds. Default 500.
    #[serde(default = "default_cache_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Longest wait for an answer of Redis, in milliseconds (a request waits at most
    /// `cache.budget_ms` for it, whatever this says). Default 1000.
    #[serde(default = "default_cache_response_timeout_ms")]
    pub response_timeout_ms: u64,
    /// The most namespaces whose semantic index each replica mirrors (the least recently used
    /// go first). Default 256.
    #[serde(default = "default_mirror_namespaces")]
    pub mirror_namespaces: usize,
    /// The most memory each replica's mirrors of semantic indexes take, in bytes. Default
    /// 256 MiB.
    #[serde(default = "default_mirror_bytes")]
    pub mirror_bytes: usize,
}

fn default_cache_connect_timeout_ms() -> u64 {
    500
}
fn default_cache_response_timeout_ms() -> u64 {
    1_000
}
fn default_mirror_namespaces() -> usize {
    256
}
fn default_mirror_bytes() -> usize {
    256 << 20
}

impl CacheSection {
    /// Checks the settings, naming the field at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.config.validate().map_err(ConfigError::from)?;
        let positive = |field: &str, value: u64| {
            if value == 0 {
                Err(ConfigError::new(
                    format!("cache.store.{field}"),
                    "must be at least 1",
                ))
            } else {
                Ok(())
            }
        };
        match &self.store {
            CacheStore::Memory(memory) => positive("max_bytes", memory.max_bytes as u64),
            CacheStore::Redis(redis) => {
                if redis.url.expose().trim().is_empty() {
                    return Err(ConfigError::new(
                        "cache.store.url",
                        "must name the Redis (redis://host:port)",
                    ));
                }
                positive("connect_timeout_ms", redis.connect_timeout_ms)?;
                positive("response_timeout_ms", redis.response_timeout_ms)?;
                positive("mirror_namespaces", redis.mirror_namespaces as u64)?;
                positive("mirror_bytes", redis.mirror_bytes as u64)
            }
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// The environment variable holding the admin key that guards `/admin/*`; the admin routes
    /// are off when unset.
    #[serde(default)]
    pub key_env: Option<String>,
}

/// `[auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// `[[auth.keys]]`: static keys clients send as `Authorization: Bearer <key>`, for a gateway
    /// running without a store (`[store] enabled = false`). With a store, keys are created with
    /// `gateway admin key create`.
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
}

/// One gateway key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// Who the key belongs to; shown in logs instead of the key.
    pub name: String,
    /// The key itself (only for local development; prefer `key_env`).
    #[serde(default)]
    pub key: Option<SecretString>,
    /// The environment variable that holds the key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// The plan of the key's user (`free`, `basic`, `pro`, `enterprise`).
    #[serde(default)]
    pub plan: Option<String>,
}

/// `[retry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    /// Retries after the first attempt.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// Backoff before the first retry, in milliseconds.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff_ms: u64,
    /// Longest backoff, in milliseconds.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_ms: u64,
    /// A provider asking to wait longer than this (milliseconds) is not retried.
    #[serde(default = "default_max_retry_after")]
    pub max_retry_after_ms: u64,
}

fn default_retries() -> u32 {
    RetryPolicy::default().max_retries
}
fn default_initial_backoff() -> u64 {
    RetryPolicy::default().initial_backoff.as_millis() as u64
}
fn default_max_backoff() -> u64 {
    RetryPolicy::default().max_backoff.as_millis() as u64
}
fn default_max_retry_after() -> u64 {
    RetryPolicy::default().max_retry_after.as_millis() as u64
}

impl Default for RetrySection {
    fn default() -> Self {
        Self {
            max_retries: default_retries(),
            initial_backoff_ms: default_initial_backoff(),
            max_backoff_ms: default_max_backoff(),
            max_retry_after_ms: default_max_retry_after(),
        }
    }
}

impl RetrySection {
    /// As the router's policy.
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries,
            initial_backoff: Duration::from_millis(self.initial_backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms),
            max_retry_after: Duration::from_millis(self.max_retry_after_ms),
        }
    }
}

/// `[pricing]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingSection {
    /// A catalog file in the format of the built-in `pricing.toml` whose prices override it
    /// (relative paths are relative to the config file).
    #[serde(default)]
    pub overrides: Option<PathBuf>,
}

/// A configuration problem, naming the file, variable or field at fault.
#[derive(Debug)]
pub struct ConfigError {
    /// Where the mistake is: the file or environment variable, and the field
    /// (`gateway.toml: store.url`); empty when the problem says it.
    pub at: String,
    /// What is wrong there.
    pub problem: String,
}

impl ConfigError {
    /// A mistake `at` a place, described by `problem`.
    pub fn new(at: impl Into<String>, problem: impl std::fmt::Display) -> Self {
        Self {
            at: at.into(),
            problem: problem.to_string(),
        }
    }
}

/// A gateway error found while setting up (its message names the field).
impl From<llm_gateway::Error> for ConfigError {
    fn from(e: llm_gateway::Error) -> Self {
        Self::new(String::new(), e)
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.at.is_empty() {
            f.write_str(&self.problem)
        } else {
            write!(f, "{}: {}", self.at, self.problem)
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads `path`, then applies the `GATEWAY__*` variables of the process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                path.display().to_string(),
                format!("cannot read the config file: {e}"),
            )
        })?;
        let mut config = Self::from_toml(&text, &path.display().to_string(), std::env::vars())?;
        let base = path.parent().unwrap_or(Path::new("."));
        for file in [
            &mut config.pricing.overrides,
            &mut config.store.plans,
            &mut config.store.journal,
        ]
        .into_iter()
        .flatten()
        {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        Ok(config)
    }

    /// Parses `text` (from `origin`), then applies the `GATEWAY__*` variables among `env`.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        // Parse the file alone first, so its errors carry line, column and field.
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::new(origin, e))?;
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        let config = if overrides.is_empty() {
            config
        } else {
            overrides.sort();
            let mut table: toml::Table =
                toml::from_str(text).map_err(|e| ConfigError::new(origin, e))?;
            for (name, value) in &overrides {
                apply_override(&mut table, name, value)?;
            }
            let names: Vec<&str> = overrides.iter().map(|(k, _)| k.as_str()).collect();
            toml::Value::Table(table).try_into().map_err(|e| {
                ConfigError::new(
                    format!(
                        "{origin} with the environment overrides {}",
                        names.join(", ")
                    ),
                    e,
                )
            })?
        };
        config.validate(origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        for (i, key) in self.auth.keys.iter().enumerate() {
            if key.key.is_some() == key.key_env.is_some() {
                return Err(ConfigError::new(
                    format!("{origin}: auth.keys[{i}]"),
                    format!("(`{}`) set exactly one of `key` and `key_env`", key.name),
                ));
            }
        }
        if self.store.enabled && !self.auth.keys.is_empty() {
            return Err(ConfigError::new(
                format!("{origin}: auth.keys"),
                "static keys are for a gateway without a store ([store] enabled = false); \
                 with a store, create keys with `gateway admin key create`",
            ));
        }
        for (name, limits) in [
            ("users", &self.rate_limits.users),
            ("keys", &self.rate_limits.keys),
        ] {
            if let Some(limits) = limits {
                if limits.tokens_per_minute.is_some() || limits.token_burst.is_some() {
                    return Err(ConfigError::new(
                        format!("{origin}: rate_limits.{name}"),
                        "incoming limits count requests; tokens_per_minute applies to rate_limits.providers",
                    ));
                }
                limits
                    .validate()
                    .map_err(|e| ConfigError::new(format!("{origin}: rate_limits.{name}"), e))?;
            }
        }
        for (provider, limits) in &self.rate_limits.providers {
            limits.validate().map_err(|e| {
                ConfigError::new(format!("{origin}: rate_limits.providers.{provider}"), e)
            })?;
        }
        self.routing
            .breaker
            .validate()
            .map_err(|e| ConfigError::new(format!("{origin}: routing.breaker"), e))?;
        if let Some(cache) = &self.cache {
            cache.validate().map_err(|e| {
                ConfigError::new(
                    if e.at.is_empty() {
                        origin.to_owned()
                    } else {
                        format!("{origin}: {}", e.at)
                    },
                    e.problem,
                )
            })?;
        }
        if self.retry.initial_backoff_ms > self.retry.max_backoff_ms {
            return Err(ConfigError::new(
                format!("{origin}: retry.initial_backoff_ms"),
                format!(
                    "{} is larger than retry.max_backoff_ms ({})",
                    self.retry.initial_backoff_ms, self.retry.max_backoff_ms
                ),
            ));
        }
        Ok(())
    }

    /// The gateway keys with their secrets resolved from the environment.
    pub fn resolve_keys(&self) -> Result<Vec<(KeyEntry, SecretString)>, ConfigError> {
        self.auth
            .keys
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let secret = match (&entry.key, &entry.key_env) {
                    (Some(key), _) => key.clone(),
                    (None, Some(var)) => match std::env::var(var) {
                        Ok(v) if !v.trim().is_empty() => SecretString::new(v.trim()),
                        _ => {
                            return Err(ConfigError::new(
                                format!("auth.keys[{i}]"),
                                format!(
                                    "(`{}`) the environment variable {var} named by key_env is not set",
                                    entry.name
                                ),
                            ));
                        }
                    },
                    (None, None) => {
                        return Err(ConfigError::new(
                            format!("auth.keys[{i}]"),
                            format!("(`{}`) set `key` or `key_env`", entry.name),
                        ));
                    }
                };
                Ok((entry.clone(), secret))
            })
            .collect()
    }
}

fn apply_override(table: &mut toml::Table, name: &str, raw: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = name[ENV_PREFIX.len()..]
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect();
    if path.iter().any(String::is_empty) {
        return Err(ConfigError::new(
            name,
            "an override names a path such as GATEWAY__SERVER__LISTEN",
        ));
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_table())
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let (last, parents) = path.split_last().expect("split yields at least one part");
    let mut here = table;
    for part in parents {
        let next = here
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = next.as_table_mut().ok_or_else(|| {
            ConfigError::new(
                name,
                format!("`{part}` is not a section, so it has no fields to override"),
            )
        })?;
    }
    here.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[server]
listen = "127.0.0.1:9000"

[store]
enabled = false

[[auth.keys]]
name = "dev"
key = "sk-dev"

[providers.gemini]
api_key_env = "GEMINI_API_KEY"
"#;

    #[test]
    fn the_settlement_journal_sits_beside_a_sqlite_file_unless_set() {
        let store = |url: &str, journal: Option<&str>| StoreSection {
            url: url.into(),
            journal: journal.map(PathBuf::from),
            ..StoreSection::default()
        };
        let path = |s: StoreSection| s.journal_path().map(|p| p.display().to_string());
        assert_eq!(
            path(store("sqlite://data/gateway.db?mode=rwc", None)).as_deref(),
            Some("data/gateway.db.settlements")
        );
        assert_eq!(path(store("sqlite::memory:", None)), None);
        assert_eq!(path(store("sqlite://:memory:", None)), None);
        assert_eq!(path(store("postgres://db/gw", None)), None);
        assert_eq!(
            path(store("postgres://db/gw", Some("/var/lib/gw/a.settlements"))).as_deref(),
            Some("/var/lib/gw/a.settlements")
        );
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_file() {
        let c = Config::from_toml(SAMPLE, "g.toml", env(&[])).unwrap();
        assert!(!c.store.enabled);
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.retry.max_retries, 2);
        assert!(c.providers.contains_key("gemini"));
    }

    #[test]
    fn env_overrides_any_value() {
        let c = Config::from_toml(
            SAMPLE,
            "g.toml",
            env(&[
                ("GATEWAY__SERVER__LISTEN", "0.0.0.0:7000"),
                ("GATEWAY__PROVIDERS__GEMINI__BASE_URL", "http://127.0.0.1:1"),
                ("GATEWAY__PROVIDERS__HF__API_KEY_ENV", "MY_HF"),
                ("GATEWAY__RETRY__MAX_RETRIES", "5"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.to_string(), "0.0.0.0:7000");
        assert_eq!(
            c.providers["gemini"].base_url.as_deref(),
            Some("http://127.0.0.1:1")
        );
        assert_eq!(c.providers["hf"].api_key_env.as_deref(), Some("MY_HF"));
        assert_eq!(c.retry.max_retries, 5);
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let err = Config::from_toml("[server]\nlisen = 1\n", "g.toml", env(&[])).unwrap_err();
        assert_eq!(err.at, "g.toml", "{err}");
        assert!(err.to_string().contains("lisen"), "{err}");

        let err = Config::from_toml(
            SAMPLE,
            "g.toml",
            env(&[("GATEWAY__RETRY__MAX_RETRIES", "-1")]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("GATEWAY__RETRY__MAX_RETRIES"),
            "{err}"
        );

        let err =
            Config::from_toml("[[auth.keys]]\nname = \"x\"\n", "g.toml", env(&[])).unwrap_err();
        assert_eq!(err.at, "g.toml: auth.keys[0]", "{err}");
    }

    #[test]
    fn the_cache_is_off_unless_its_section_is_there() {
        let c = Config::from_toml(SAMPLE, "g.toml", env(&[])).unwrap();
        assert!(c.cache.is_none());

        let text = format!(
            "{SAMPLE}\n[cache]\nenabled = true\nttl_secs = 60\n\
             [cache.semantic]\nembedding_model = \"gemini/gemini-embedding-001\"\nthreshold = 0.9\n\
             [cache.models.\"gemini/*\"]\nsemantic = true\n"
        );
        let c = Config::from_toml(&text, "g.toml", env(&[])).unwrap();
        let cache = c.cache.unwrap();
        assert!(cache.config.enabled);
        assert_eq!(cache.config.ttl_secs, 60);
        assert_eq!(cache.config.semantic.threshold, 0.9);
        assert_eq!(cache.config.models["gemini/*"].semantic, Some(true));
        assert!(
            matches!(cache.store, CacheStore::Memory(m) if m.max_bytes == 64 << 20),
            "memory by default"
        );

        // An override alone turns it on.
        let c = Config::from_toml(
            SAMPLE,
            "g.toml",
            env(&[("GATEWAY__CACHE__ENABLED", "true")]),
        )
        .unwrap();
        assert!(c.cache.unwrap().config.enabled);
    }

    #[test]
    fn the_cache_store_is_memory_or_redis() {
        let c = Config::from_toml(
            &format!("{SAMPLE}\n[cache.store]\nmax_bytes = 1024\n"),
            "g.toml",
            env(&[]),
        )
        .unwrap();
        assert!(matches!(c.cache.unwrap().store, CacheStore::Memory(m) if m.max_bytes == 1024));

        let c = Config::from_toml(
            &format!("{SAMPLE}\n[cache.store]\nbackend = \"redis\"\nurl = \"redis://:hunter2@127.0.0.1:6379\"\n"),
            "g.toml",
            env(&[("GATEWAY__CACHE__STORE__PREFIX", "staging")]),
        )
        .unwrap();
        let CacheStore::Redis(redis) = c.cache.unwrap().store else {
            panic!("not redis");
        };
        assert_eq!(redis.prefix, "staging");
        assert_eq!(redis.connect_timeout_ms, 500);
        assert!(
            !format!("{redis:?}").contains("hunter2"),
            "the URL is a secret"
        );
    }

    #[test]
    fn cache_errors_name_the_field() {
        for (section, named) in [
            (
                "[cache]\nenabeld = true\n",
                "cache: unknown field `enabeld`",
            ),
            (
                "[cache.semantic]\nthresold = 0.9\n",
                "cache.semantic: unknown field `thresold`",
            ),
            (
                "[cache]\nttl_secs = \"long\"\n",
                "cache.ttl_secs: invalid type",
            ),
            (
                "[cache.semantic]\nthreshold = 1.5\n",
                "cache.semantic.threshold: must be in (0, 1]",
            ),
            (
                "[cache]\nttl_secs = 0\n",
                "cache.ttl_secs: must be at least 1",
            ),
            (
                "[cache.semantic]\nenabled = true\n",
                "cache.semantic.enabled: needs cache.semantic.embedding_model",
            ),
            (
                "[cache.store]\nbackend = \"disk\"\n",
                "cache.store.backend: unknown variant `disk`",
            ),
            (
                "[cache.store]\nmax_bites = 1\n",
                "cache.store: unknown field `max_bites`",
            ),
            (
                "[cache.store]\nmax_bytes = 0\n",
                "cache.store.max_bytes: must be at least 1",
            ),
            (
                "[cache.store]\nbackend = \"redis\"\n",
                "cache.store: missing field `url`",
            ),
            (
                "[cache.store]\nbackend = \"redis\"\nurl = \"redis://x\"\nresponse_timeout_ms = 0\n",
                "cache.store.response_timeout_ms: must be at least 1",
            ),
        ] {
            let err = Config::from_toml(&format!("{SAMPLE}\n{section}"), "g.toml", env(&[]))
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(err.contains(named), "{section}: {err}");
        }
    }

    #[test]
    fn the_commented_cache_example_of_gateway_toml_is_valid() {
        let file = include_str!("../gateway.toml");
        let start = file
            .find("\n# [cache]\n")
            .expect("gateway.toml shows [cache]")
            + 1;
        let block: String = file[start..]
            .lines()
            .take_while(|l| !l.is_empty())
            .filter(|l| !l.starts_with("# #"))
            .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
            .collect();
        let c = Config::from_toml(&format!("{SAMPLE}\n{block}"), "gateway.toml", env(&[]))
            .unwrap_or_else(|e| panic!("{e}\n{block}"));
        let cache = c.cache.unwrap();
        assert!(cache.config.enabled);
        assert!(cache.config.search.enabled);
        assert_eq!(cache.config.groups["team-a"].len(), 2);
    }

    #[test]
    fn unset_key_env_is_named() {
        let c = Config::from_toml(
            "[store]\nenabled = false\n[[auth.keys]]\nname = \"ci\"\nkey_env = \"GW_TEST_SURELY_UNSET\"\n",
            "g.toml",
            env(&[]),
        )
        .unwrap();
        let err = c.resolve_keys().unwrap_err();
        assert!(err.to_string().contains("GW_TEST_SURELY_UNSET"), "{err}");
    }
}
