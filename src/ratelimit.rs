//! Rate limits: how many requests (or tokens) a key may spend per period, in one process or
//! shared by every gateway replica through Redis.
//!
//! A [`RateLimiter`] answers [`RateLimiter::check`] for a key (a provider key's name, a user id, a
//! gateway key id) and a cost (1 for a request, the estimated tokens for a token limit) with a
//! [`Decision`]: [`Decision::Allowed`], which has used up the cost, or [`Decision::Limited`] with
//! the time after which the same check would pass. Every limiter applies one [`Quota`] with the
//! generic cell rate algorithm (GCRA): `count` units replenish evenly over `period`, and up to
//! `burst` units may be spent at once.
//!
//! - [`LocalLimiter`]: in-process, on `governor`; each replica limits on its own.
//! - `RedisLimiter` (feature `redis`): one atomic Lua script per check on a shared Redis, so
//!   a limit configured once holds across all replicas together. It reads Redis' own clock, so
//!   replicas whose clocks disagree still agree on the limit.
//!
//! [`LimiterBackend`] selects one of the two in configuration and [`RateLimiters`] builds
//! limiters on it; [`RateLimitConfig`] is the per-minute shape of a limit
//! (`{ requests_per_minute = 60, burst = 10, tokens_per_minute = 100000 }`).
//!
//! # Keys
//! A key names what is limited; it must not be a secret. To limit per provider API key, pass the
//! key's name from configuration (or a hash of it), never the key itself: the shared limiter
//! stores keys in Redis.
//!
//! # When the store fails
//! A `RedisLimiter` that cannot reach Redis answers [`ErrorKind::Unavailable`]; it never lets
//! the request through unchecked. A limit that silently stops holding whenever Redis hiccups
//! would let every replica spend the full budget at once against a provider; callers that prefer
//! availability can catch the error and decide, per limit, to go ahead.
//!
//! # Example
//! ```
//! # async fn run() -> llm_gateway::Result<()> {
//! use std::num::NonZeroU32;
//! use llm_gateway::ratelimit::{Decision, Quota, RateLimiters};
//!
//! let per_user = Quota::per_minute(NonZeroU32::new(60).unwrap())
//!     .with_burst(NonZeroU32::new(10).unwrap());
//! let limiter = RateLimiters::local().limiter("user-requests", per_user);
//! match limiter.check("user-42", 1).await? {
//!     Decision::Allowed => { /* serve the request */ }
//!     Decision::Limited { retry_after } => { /* 429 with Retry-After: ceil(retry_after) */ }
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use gateway_core::{Error, ErrorKind, Result, SecretString};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use serde::Deserialize;

use crate::breaker::{Clock, SystemClock};

/// The answer to a rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a limited request must be refused"]
pub enum Decision {
    /// Within the limit; the cost has been spent.
    Allowed,
    /// Over the limit; nothing was spent. The same check passes after `retry_after` at the
    /// earliest (if nothing else spends the key's budget meanwhile).
    Limited {
        /// How long to wait. A `Retry-After` header carries whole seconds: round up.
        retry_after: Duration,
    },
}

impl Decision {
    /// Whether the request may go ahead.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed)
    }

    /// How long to wait, when limited.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Allowed => None,
            Self::Limited { retry_after } => Some(*retry_after),
        }
    }

    /// `Ok(())` when allowed, else an [`ErrorKind::RateLimited`] error carrying the wait, which
    /// the server answers with 429 and `Retry-After`.
    pub fn into_result(self) -> Result<()> {
        match self {
            Self::Allowed => Ok(()),
            Self::Limited { retry_after } => Err(Error::new(
                ErrorKind::RateLimited {
                    retry_after: Some(retry_after),
                },
                format!(
                    "rate limit reached; retry in {} ms",
                    retry_after.as_millis().max(1)
                ),
            )),
        }
    }
}

/// A rate: `count` units per `period`, replenished evenly, and at most `burst` units at once.
///
/// `Quota::per_minute(60)` replenishes one unit a second and, by default, lets all 60 be spent at
/// once; `.with_burst(10)` caps that at 10. A unit is whatever the caller counts: a request, or a
/// token for a cost-weighted limit (check with the request's token estimate as the cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    count: NonZeroU32,
    period: Duration,
    burst: NonZeroU32,
}

impl Quota {
    /// `count` units per `period`, with a burst of `count`; `None` when `period` is zero.
    pub const fn new(count: NonZeroU32, period: Duration) -> Option<Self> {
        if period.is_zero() {
            return None;
        }
        Some(Self {
            count,
            period,
            burst: count,
        })
    }

    /// `count` units per second, with a burst of `count`.
    pub const fn per_second(count: NonZeroU32) -> Self {
        Self {
            count,
            period: Duration::from_secs(1),
            burst: count,
        }
    }

    /// `count` units per minute, with a burst of `count`.
    pub const fn per_minute(count: NonZeroU32) -> Self {
        Self {
            count,
            period: Duration::from_secs(60),
            burst: count,
        }
    }

    /// `count` units per hour, with a burst of `count`.
    pub const fn per_hour(count: NonZeroU32) -> Self {
        Self {
            count,
            period: Duration::from_secs(3600),
            burst: count,
        }
    }

    /// The same rate with at most `burst` units at once. A cost above the burst can never pass.
    pub const fn with_burst(mut self, burst: NonZeroU32) -> Self {
        self.burst = burst;
        self
    }

    /// Units per period.
    pub fn count(&self) -> u32 {
        self.count.get()
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The most units that may be spent at once.
    pub fn burst(&self) -> u32 {
        self.burst.get()
    }

    /// How often one unit replenishes: `period / count` (at least one nanosecond).
    pub fn interval(&self) -> Duration {
        (self.period / self.count.get()).max(Duration::from_nanos(1))
    }

    fn to_governor(self) -> governor::Quota {
        governor::Quota::with_period(self.interval())
            .expect("the interval is at least one nanosecond")
            .allow_burst(self.burst)
    }
}

/// A request and token limit per minute, as configuration writes it:
/// `{ requests_per_minute = 60, burst = 10, tokens_per_minute = 100000 }`.
///
/// Every field is optional (an absent rate is no limit); zero is rejected. Unknown fields are
/// rejected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per minute.
    #[serde(default)]
    pub requests_per_minute: Option<NonZeroU32>,
    /// Requests that may be made at once; default `requests_per_minute`.
    #[serde(default)]
    pub burst: Option<NonZeroU32>,
    /// Tokens (prompt estimate plus `max_tokens`, as the caller counts them) per minute.
    #[serde(default)]
    pub tokens_per_minute: Option<NonZeroU32>,
    /// Tokens that may be spent at once; default `tokens_per_minute`. A single request costing
    /// more can never pass.
    #[serde(default)]
    pub token_burst: Option<NonZeroU32>,
}

impl RateLimitConfig {
    /// The request quota (check with cost 1), if requests are limited.
    pub fn requests(&self) -> Option<Quota> {
        let count = self.requests_per_minute?;
        Some(Quota::per_minute(count).with_burst(self.burst.unwrap_or(count)))
    }

    /// The token quota (check with the request's tokens as the cost), if tokens are limited.
    pub fn tokens(&self) -> Option<Quota> {
        let count = self.tokens_per_minute?;
        Some(Quota::per_minute(count).with_burst(self.token_burst.unwrap_or(count)))
    }

    /// Checks that no burst is given without its rate (which would be silently ignored).
    pub fn validate(&self) -> Result<()> {
        let problem = if self.burst.is_some() && self.requests_per_minute.is_none() {
            Some("burst is set without requests_per_minute")
        } else if self.token_burst.is_some() && self.tokens_per_minute.is_none() {
            Some("token_burst is set without tokens_per_minute")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(Error::new(
                ErrorKind::Config,
                format!("rate limit: {problem}"),
            )),
            None => Ok(()),
        }
    }
}

/// A rate limiter over many keys, all with the same [`Quota`].
///
/// Object safe, so a server can hold `Arc<dyn RateLimiter>` whatever the backend.
pub trait RateLimiter: Send + Sync {
    /// Spends `cost` units of `key`'s budget if it has them, else says how long to wait.
    /// A cost of 0 is always allowed.
    ///
    /// Fails with [`ErrorKind::QuotaExceeded`] when `cost` exceeds the quota's burst (such a
    /// request can never pass, so waiting is pointless), and with [`ErrorKind::Unavailable`]
    /// when a shared store cannot be reached.
    fn check<'a>(&'a self, key: &'a str, cost: u32) -> BoxFuture<'a, Result<Decision>>;

    /// The quota this limiter applies.
    fn quota(&self) -> Quota;
}

fn too_costly(cost: u32, quota: Quota) -> Error {
    Error::new(
        ErrorKind::QuotaExceeded,
        format!(
            "a cost of {cost} exceeds this limit's burst of {}: it can never pass",
            quota.burst()
        ),
    )
}

/// Runs `governor` on a [`Clock`] of ours, so tests can drive it with a
/// [`ManualClock`](crate::breaker::ManualClock).
#[derive(Clone)]
struct GovernorClock(Arc<dyn Clock>);

impl governor::clock::Clock for GovernorClock {
    type Instant = Instant;

    fn now(&self) -> Instant {
        self.0.now()
    }
}

type KeyedGovernor = governor::RateLimiter<
    String,
    DashMapStateStore<String>,
    GovernorClock,
    NoOpMiddleware<Instant>,
>;

/// How many checks a [`LocalLimiter`] makes between sweeps of keys whose budget is full again.
const SWEEP_EVERY: u64 = 4096;

/// An in-process keyed rate limiter on `governor`. Each replica limits on its own: with N
/// replicas behind a load balancer, a key may spend up to N times its quota.
///
/// Keys whose budget has fully replenished are dropped every few thousand checks, so memory
/// follows the active keys, not every key ever seen.
pub struct LocalLimiter {
    quota: Quota,
    clock: Arc<dyn Clock>,
    limiter: KeyedGovernor,
    checks: AtomicU64,
}

impl fmt::Debug for LocalLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalLimiter")
            .field("quota", &self.quota)
            .field("keys", &self.limiter.len())
            .finish()
    }
}

impl LocalLimiter {
    /// A limiter applying `quota` to every key, on the system clock.
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, Arc::new(SystemClock))
    }

    /// A limiter applying `quota` to every key, reading the time from `clock`.
    pub fn with_clock(quota: Quota, clock: Arc<dyn Clock>) -> Self {
        Self {
            quota,
            limiter: governor::RateLimiter::dashmap_with_clock(
                quota.to_governor(),
                GovernorClock(Arc::clone(&clock)),
            ),
            clock,
            checks: AtomicU64::new(0),
        }
    }

    /// [`RateLimiter::check`] without the future: a local check never waits.
    pub fn check_now(&self, key: &str, cost: u32) -> Result<Decision> {
        let Some(cost_units) = NonZeroU32::new(cost) else {
            return Ok(Decision::Allowed);
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key_n(&key.to_owned(), cost_units) {
            Ok(Ok(())) => Ok(Decision::Allowed),
            Ok(Err(not_until)) => Ok(Decision::Limited {
                retry_after: not_until.wait_time_from(self.clock.now()),
            }),
            Err(governor::InsufficientCapacity(_)) => Err(too_costly(cost, self.quota)),
        }
    }

    /// How many keys the limiter holds state for.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether the limiter holds no key.
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }

    /// Drops the keys whose budget has fully replenished (they are indistinguishable from new
    /// keys). [`LocalLimiter::check_now`] also does this every few thousand checks.
    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

impl RateLimiter for LocalLimiter {
    fn check<'a>(&'a self, key: &'a str, cost: u32) -> BoxFuture<'a, Result<Decision>> {
        Box::pin(std::future::ready(self.check_now(key, cost)))
    }

    fn quota(&self) -> Quota {
        self.quota
    }
}

/// Where rate limits are kept, as configuration selects it: `backend = "local"` (the default)
/// or `backend = "redis"` with the fields of [`RedisConfig`].
///
/// Both parse in every build; building a Redis backend without the `redis` feature fails with
/// [`ErrorKind::Config`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum LimiterBackend {
    /// In each process ([`LocalLimiter`]).
    #[default]
    Local,
    /// Shared through Redis by every replica (`RedisLimiter`).
    Redis(RedisConfig),
}

/// How to reach the Redis that holds shared rate limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` (or `unix:///path`). It may hold a password, so
    /// it is kept as a secret and never appears in errors or logs.
    pub url: SecretString,
    /// Prefix of every key the limiters write (`<prefix>:<limiter name>:<key>`), so several
    /// gateways or environments can share one Redis. Default `llm-gateway:ratelimit`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Longest wait for a connection, in milliseconds. Default 2000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Longest wait for a check's answer, in milliseconds. Default 1000.
    #[serde(default = "default_response_timeout_ms")]
    pub response_timeout_ms: u64,
}

fn default_prefix() -> String {
    "llm-gateway:ratelimit".to_owned()
}

fn default_connect_timeout_ms() -> u64 {
    2000
}

fn default_response_timeout_ms() -> u64 {
    1000
}

impl RedisConfig {
    /// The config for `url`, with the default prefix and timeouts.
    pub fn new(url: impl Into<SecretString>) -> Self {
        Self {
            url: url.into(),
            prefix: default_prefix(),
            connect_timeout_ms: default_connect_timeout_ms(),
            response_timeout_ms: default_response_timeout_ms(),
        }
    }

    /// The same config with another key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// Builds limiters on the configured backend; on Redis, they all share one connection.
#[derive(Clone)]
pub struct RateLimiters {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Local(Arc<dyn Clock>),
    #[cfg(feature = "redis")]
    Redis(RedisStore),
}

impl fmt::Debug for RateLimiters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match &self.backend {
            Backend::Local(_) => "local",
            #[cfg(feature = "redis")]
            Backend::Redis(_) => "redis",
        };
        f.debug_struct("RateLimiters")
            .field("backend", &backend)
            .finish()
    }
}

impl RateLimiters {
    /// In-process limiters on the system clock.
    pub fn local() -> Self {
        Self::local_with_clock(Arc::new(SystemClock))
    }

    /// In-process limiters reading the time from `clock`.
    pub fn local_with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            backend: Backend::Local(clock),
        }
    }

    /// Limiters on `backend`. For Redis this connects first, so a wrong address or a Redis that
    /// is down fails here ([`ErrorKind::Unavailable`]) rather than on the first request.
    pub async fn from_config(backend: &LimiterBackend) -> Result<Self> {
        match backend {
            LimiterBackend::Local => Ok(Self::local()),
            #[cfg(feature = "redis")]
            LimiterBackend::Redis(config) => Ok(Self {
                backend: Backend::Redis(RedisStore::connect(config).await?),
            }),
            #[cfg(not(feature = "redis"))]
            LimiterBackend::Redis(_) => Err(Error::new(
                ErrorKind::Config,
                "rate limits: backend \"redis\" needs llm-gateway built with the `redis` feature",
            )),
        }
    }

    /// Whether limits are shared by every replica (Redis) rather than kept per process.
    pub fn is_shared(&self) -> bool {
        !matches!(self.backend, Backend::Local(_))
    }

    /// A limiter applying `quota`. `name` tells limiters apart in a shared store (e.g.
    /// `in-user-requests`, `out-gemini-tokens`); two replicas' limiters with the same name and
    /// quota share their budget. Keep `:` out of names.
    pub fn limiter(&self, name: &str, quota: Quota) -> Arc<dyn RateLimiter> {
        match &self.backend {
            Backend::Local(clock) => {
                let _ = name;
                Arc::new(LocalLimiter::with_clock(quota, Arc::clone(clock)))
            }
            #[cfg(feature = "redis")]
            Backend::Redis(store) => Arc::new(store.limiter(name, quota)),
        }
    }
}

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use shared::{RedisLimiter, RedisStore};
#[cfg(feature = "redis")]
pub(crate) use shared::{redact, redis_unavailable};

#[cfg(feature = "redis")]
mod shared {
    use std::fmt;
    use std::sync::{Arc, LazyLock};
    use std::time::Duration;

    use futures_util::future::BoxFuture;
    use gateway_core::{Error, ErrorKind, Result};
    use redis::aio::{ConnectionManager, ConnectionManagerConfig};
    use tokio::sync::OnceCell;

    use super::{Decision, Quota, RateLimiter, RedisConfig, too_costly};

    /// GCRA in one script, so reading and updating a key's state is atomic across replicas.
    ///
    /// KEYS[1]: the key. ARGV[1]: the emission interval (one unit) in nanoseconds; ARGV[2]: the
    /// burst in units; ARGV[3]: the cost in units (at least 1).
    /// Returns `{1, 0}` when allowed, `{0, wait in µs}` when limited, `{-1, 0}` when the cost
    /// exceeds the burst.
    ///
    /// The key holds the theoretical arrival time (TAT) in µs since 2023-11-14 (an epoch close
    /// enough that µs stay exact in a Lua double, with sub-µs fractions), read from Redis' `TIME`
    /// so replicas with skewed clocks agree. It expires once the budget is full again, when it is
    /// indistinguishable from an absent key.
    pub(super) const GCRA_LUA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1700000000) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
if cost > burst then
  return {-1, 0}
end
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local new_tat = tat + cost * interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, math.ceil(allow_at - now)}
end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', string.format('%d', ttl_ms))
return {1, 0}
";

    pub(super) static GCRA: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(GCRA_LUA));

    /// A script's source and the SHA-1 that `EVALSHA` names it by.
    pub(super) struct LuaScript {
        source: String,
        sha1: String,
    }

    impl LuaScript {
        pub(super) fn new(source: &str) -> Self {
            Self {
                source: source.to_owned(),
                sha1: redis::Script::new(source).get_hash().to_owned(),
            }
        }

        pub(super) fn sha1(&self) -> &str {
            &self.sha1
        }
    }

    /// A connection to the Redis that holds shared rate limits, and the key prefix. Cheap to
    /// clone: clones share the connection, which reconnects by itself after a failure.
    #[derive(Clone)]
    pub struct RedisStore {
        inner: Arc<StoreInner>,
    }

    struct StoreInner {
        client: redis::Client,
        manager_config: ConnectionManagerConfig,
        /// Set by the first successful connect; a failed connect leaves it empty, so the next
        /// check tries again.
        conn: OnceCell<ConnectionManager>,
        prefix: String,
        /// The URL and its password, blanked out of every error message.
        secrets: Vec<String>,
    }

    impl fmt::Debug for RedisStore {
        // Not derived: the client's Debug prints the connection info, password included.
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RedisStore")
                .field("prefix", &self.inner.prefix)
                .field("connected", &self.inner.conn.initialized())
                .finish_non_exhaustive()
        }
    }

    impl RedisStore {
        /// Connects to `config.url`. Fails with [`ErrorKind::Config`] for a URL that does not
        /// parse, and [`ErrorKind::Unavailable`] when Redis cannot be reached.
        pub async fn connect(config: &RedisConfig) -> Result<Self> {
            let store = Self::connect_lazy(config)?;
            store.connection().await?;
            Ok(store)
        }

        /// Like [`RedisStore::connect`], but connects on the first check: the gateway starts
        /// while Redis is down, and its checks fail with [`ErrorKind::Unavailable`] until Redis
        /// is back. Fails only for a URL that does not parse.
        pub fn connect_lazy(config: &RedisConfig) -> Result<Self> {
            let url = config.url.expose();
            let mut secrets = vec![url.to_owned()];
            let client = redis::Client::open(url).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    redact(
                        format!("rate limits: the Redis URL is not valid: {e}"),
                        &secrets,
                    ),
                )
            })?;
            if let Some(password) = &client.get_connection_info().redis.password
                && !password.is_empty()
            {
                secrets.push(password.clone());
            }
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Duration::from_millis(config.connect_timeout_ms))
                .set_response_timeout(Duration::from_millis(config.response_timeout_ms))
                // Requests wait on connection attempts: make one per failure, not a backoff
                // series. A check that finds the connection broken starts the next attempt.
                .set_number_of_retries(0);
            Ok(Self {
                inner: Arc::new(StoreInner {
                    client,
                    manager_config,
                    conn: OnceCell::new(),
                    prefix: config.prefix.clone(),
                    secrets,
                }),
            })
        }

        async fn connection(&self) -> Result<ConnectionManager> {
            let inner = &*self.inner;
            inner
                .conn
                .get_or_try_init(|| {
                    ConnectionManager::new_with_config(
                        inner.client.clone(),
                        inner.manager_config.clone(),
                    )
                })
                .await
                .cloned()
                .map_err(|e| unavailable("connect", &e, &inner.secrets))
        }

        /// A limiter applying `quota` under `<prefix>:<name>:`. Limiters of every replica with
        /// the same prefix, name and quota share one budget per key.
        pub fn limiter(&self, name: &str, quota: Quota) -> RedisLimiter {
            RedisLimiter {
                store: self.clone(),
                namespace: format!("{}:{name}:", self.inner.prefix),
                quota,
            }
        }
    }

    /// A rate limiter whose state lives in Redis, shared by every replica. Made by
    /// [`RedisStore::limiter`].
    ///
    /// Each check is one `EVALSHA` of a GCRA script (`EVAL` when Redis does not have it cached
    /// yet, after a restart or `SCRIPT FLUSH`): atomic, one round trip, timed by Redis' own
    /// clock. Replicas must configure the same quota for a name, or they disagree on the rate.
    #[derive(Clone)]
    pub struct RedisLimiter {
        store: RedisStore,
        namespace: String,
        quota: Quota,
    }

    impl fmt::Debug for RedisLimiter {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RedisLimiter")
                .field("namespace", &self.namespace)
                .field("quota", &self.quota)
                .finish()
        }
    }

    impl RedisLimiter {
        /// The Redis key that holds `key`'s state.
        pub fn redis_key(&self, key: &str) -> String {
            format!("{}{key}", self.namespace)
        }

        pub(super) async fn check_with(
            &self,
            script: &LuaScript,
            key: &str,
            cost: u32,
        ) -> Result<Decision> {
            if cost == 0 {
                return Ok(Decision::Allowed);
            }
            if cost > self.quota.burst() {
                return Err(too_costly(cost, self.quota));
            }
            let interval_ns = u64::try_from(self.quota.interval().as_nanos()).unwrap_or(u64::MAX);
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(script.sha1())
                .arg(1)
                .arg(self.redis_key(key))
                .arg(interval_ns)
                .arg(self.quota.burst())
                .arg(cost);
            let mut conn = self.store.connection().await?;
            let answer: redis::RedisResult<(i64, i64)> = match cmd.query_async(&mut conn).await {
                Err(e) if e.code() == Some("NOSCRIPT") => {
                    // Not cached (Redis restarted, or SCRIPT FLUSH): send the source, which
                    // also caches it for the next EVALSHA.
                    let mut eval = redis::cmd("EVAL");
                    eval.arg(&script.source)
                        .arg(1)
                        .arg(self.redis_key(key))
                        .arg(interval_ns)
                        .arg(self.quota.burst())
                        .arg(cost);
                    eval.query_async(&mut conn).await
                }
                other => other,
            };
            match answer.map_err(|e| unavailable("check", &e, &self.store.inner.secrets))? {
                (1, _) => Ok(Decision::Allowed),
                (0, wait_us) => Ok(Decision::Limited {
                    retry_after: Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)),
                }),
                (-1, _) => Err(too_costly(cost, self.quota)),
                (code, _) => Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("rate limits: the Redis script answered an unknown code {code}"),
                )),
            }
        }
    }

    impl RateLimiter for RedisLimiter {
        fn check<'a>(&'a self, key: &'a str, cost: u32) -> BoxFuture<'a, Result<Decision>> {
            Box::pin(self.check_with(&GCRA, key, cost))
        }

        fn quota(&self) -> Quota {
            self.quota
        }
    }

    /// An [`ErrorKind::Unavailable`] for a failed Redis `action`, without any secret.
    fn unavailable(action: &str, e: &redis::RedisError, secrets: &[String]) -> Error {
        redis_unavailable("rate limits", action, e, secrets)
    }

    /// An [`ErrorKind::Unavailable`] for a failed Redis `action` of `component` (the rate
    /// limits, the response cache), without any of `secrets` (the URL, its password).
    pub(crate) fn redis_unavailable(
        component: &str,
        action: &str,
        e: &redis::RedisError,
        secrets: &[String],
    ) -> Error {
        Error::new(
            ErrorKind::Unavailable,
            redact(
                format!("{component}: Redis {action} failed ({}): {e}", e.category()),
                secrets,
            ),
        )
    }

    /// `message` with each of `secrets` replaced by `***`.
    pub(crate) fn redact(mut message: String, secrets: &[String]) -> String {
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            message = message.replace(secret.as_str(), "***");
        }
        message
    }
}

#[cfg(test)]
mod tests;

/// Against a real Redis at `GATEWAY_TEST_REDIS_URL`.
#[cfg(all(test, feature = "redis"))]
mod redis_tests;
