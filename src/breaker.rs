//! Circuit breakers per provider route: stop calling a provider that keeps failing, and try it
//! again after a cool-down.
//!
//! A [`CircuitBreaker`] is **closed** (calls go through) until its route fails too often: a run
//! of [`BreakerConfig::consecutive_failures`] failures in a row, or a failure rate of at least
//! [`BreakerConfig::failure_rate_percent`] over the last [`BreakerConfig::window`] calls, once
//! the window holds [`BreakerConfig::min_calls`] calls. It then **opens**: every call is refused
//! at once, without reaching the provider, for [`BreakerConfig::cool_down_ms`]. After the
//! cool-down it is **half-open**: up to [`BreakerConfig::half_open_max_calls`] trial calls at a
//! time go through; [`BreakerConfig::half_open_successes`] successful trials close it, and one
//! failed trial opens it for another cool-down.
//!
//! [`Breakers`] holds one breaker per route key (a provider id such as `gemini`, or a
//! `provider/model` route such as `gemini/gemini-2.5-flash`), creates each on first use, and lists
//! their [`BreakerSnapshot`]s for a status endpoint or metrics.
//!
//! # What counts as a failure
//! Only failures that say the provider is unhealthy: those for which [`Error::is_retryable`] is
//! true (timeouts, connection failures, 5xx and 529, the provider's own 429s). A 400, a content
//! filter, a rejected key or a quota error says nothing about the provider's health: the caller
//! records it as neither success nor failure. [`Permit::record`] applies this rule; callers that
//! use [`Permit::success`] and [`Permit::failure`] directly must apply it themselves.
//!
//! A [`Permit`] dropped without a result (the call was cancelled, e.g. the client went away)
//! counts as neither, so cancellations never trip a breaker. Results of calls that began before
//! the breaker last changed state are ignored: ten calls that were already in flight when the
//! breaker opened do not extend its cool-down, and a slow call from before does not count as a
//! half-open trial.
//!
//! # Time
//! Breakers read the time from a [`Clock`]: [`SystemClock`] in production, a [`ManualClock`] in
//! tests, which then need no sleeps.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use llm_gateway::breaker::{BreakerConfig, BreakerState, Breakers, ManualClock};
//! use llm_gateway::{Error, ErrorKind, RouteId};
//!
//! let route = RouteId::new("gemini", "gemini-2.5-flash");
//! let clock = ManualClock::new();
//! let config = BreakerConfig { consecutive_failures: 2, cool_down_ms: 10_000, ..BreakerConfig::default() };
//! let breakers = Breakers::with_clock(config, Arc::new(clock.clone()));
//!
//! for _ in 0..2 {
//!     let permit = breakers.try_acquire(&route).expect("closed");
//!     let answer: llm_gateway::Result<()> = Err(Error::new(ErrorKind::Timeout, "slow"));
//!     permit.record(&answer);
//! }
//! let open = breakers.try_acquire(&route).unwrap_err();
//! assert_eq!(open.retry_after, Duration::from_secs(10));
//!
//! clock.advance(Duration::from_secs(10));
//! assert!(matches!(breakers.get(&route).state(), BreakerState::HalfOpen { .. }));
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use gateway_core::{Error, ErrorKind, Result, RouteId};
use serde::{Deserialize, Serialize};

/// A source of the current time, so breakers and limiters can be tested without sleeping.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock ([`Instant::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that stands still until it is told to move: for deterministic tests.
///
/// Clones share the same time, so a test keeps one clone and hands another to the code under test.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Instant>>,
}

impl ManualClock {
    /// A clock stopped at the current instant.
    pub fn new() -> Self {
        Self {
            now: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.now);
        *now += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *lock(&self.now)
    }
}

/// When a breaker opens, how long it stays open, and how it closes again.
///
/// Deserializes from a table in which every field is optional, e.g.
/// `{ consecutive_failures = 3, cool_down_ms = 10000 }`; unknown fields are rejected.
/// [`BreakerConfig::validate`] reports values that make no sense; a breaker built from such a
/// config clamps them to the nearest sensible value instead of failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Opens after this many failures in a row. `0` turns this rule off. Default 5.
    pub consecutive_failures: u32,
    /// Opens when at least this percentage of the calls in the window failed. `0` turns this rule
    /// off; at most 100. Default 50.
    pub failure_rate_percent: u8,
    /// The sliding window of the failure-rate rule: the last this many calls. Default 20.
    pub window: u32,
    /// The failure-rate rule applies only once the window holds at least this many calls, so two
    /// failures out of three calls after a restart do not open the breaker. Default 10.
    pub min_calls: u32,
    /// How long an open breaker refuses calls before it lets trial calls through, in
    /// milliseconds. Default 30 000.
    pub cool_down_ms: u64,
    /// How many trial calls a half-open breaker lets through at a time. Default 1.
    pub half_open_max_calls: u32,
    /// How many successful trial calls close a half-open breaker. Default 2.
    pub half_open_successes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate_percent: 50,
            window: 20,
            min_calls: 10,
            cool_down_ms: 30_000,
            half_open_max_calls: 1,
            half_open_successes: 2,
        }
    }
}

impl BreakerConfig {
    /// The cool-down as a [`Duration`].
    pub fn cool_down(&self) -> Duration {
        Duration::from_millis(self.cool_down_ms)
    }

    /// Checks that the values make sense together; the error (of kind [`ErrorKind::Config`])
    /// names the first field that does not.
    pub fn validate(&self) -> Result<()> {
        let problem = if self.failure_rate_percent > 100 {
            Some("failure_rate_percent must be at most 100")
        } else if self.failure_rate_percent > 0 && self.window == 0 {
            Some("window must be at least 1 when failure_rate_percent is set")
        } else if self.failure_rate_percent > 0 && self.min_calls > self.window {
            Some("min_calls must not exceed window, or the failure rate never applies")
        } else if self.half_open_max_calls == 0 {
            Some("half_open_max_calls must be at least 1, or a breaker never closes again")
        } else if self.half_open_successes == 0 {
            Some("half_open_successes must be at least 1")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(Error::new(ErrorKind::Config, format!("breaker: {problem}"))),
            None => Ok(()),
        }
    }

    /// The config with the values [`BreakerConfig::validate`] rejects clamped into range.
    fn clamped(mut self) -> Self {
        self.failure_rate_percent = self.failure_rate_percent.min(100);
        self.window = self.window.max(1);
        self.min_calls = self.min_calls.clamp(1, self.window);
        self.half_open_max_calls = self.half_open_max_calls.max(1);
        self.half_open_successes = self.half_open_successes.max(1);
        self
    }
}

/// A breaker refused a call: its route is open (or half-open with every trial slot taken).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerOpen {
    /// The route key of the breaker.
    pub route: Arc<str>,
    /// How long until the breaker lets a trial call through. While a half-open breaker's trials
    /// are still running their outcome is unknown; it then answers one second (or the cool-down,
    /// when shorter).
    pub retry_after: Duration,
}

impl fmt::Display for BreakerOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker for `{}` is open after repeated provider failures; retry in {} ms",
            self.route,
            self.retry_after.as_millis()
        )
    }
}

impl std::error::Error for BreakerOpen {}

impl From<BreakerOpen> for Error {
    /// An [`ErrorKind::Unavailable`]: nothing was sent upstream, and retrying the same route at
    /// once is pointless (the kind is not retryable); falling back to another provider is not.
    fn from(open: BreakerOpen) -> Self {
        Error::new(ErrorKind::Unavailable, open.to_string())
    }
}

/// The state of one breaker, for a status endpoint or metrics.
///
/// Serializes with a `state` tag: `{"state":"open","retry_after_ms":1200}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed {
        /// Failures since the last success.
        consecutive_failures: u32,
        /// Calls in the sliding window.
        window_calls: u32,
        /// Failures in the sliding window.
        window_failures: u32,
    },
    /// Calls are refused until `until`.
    Open {
        /// When the breaker turns half-open.
        #[serde(skip)]
        until: Instant,
        /// How long that is from the moment of the snapshot.
        #[serde(rename = "retry_after_ms", serialize_with = "as_millis")]
        retry_after: Duration,
    },
    /// Trial calls go through, a few at a time.
    HalfOpen {
        /// Trial calls running now.
        in_flight: u32,
        /// Successful trials so far.
        successes: u32,
    },
}

/// One breaker's route and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerSnapshot {
    /// The route key.
    pub route: String,
    /// The state.
    #[serde(flatten)]
    pub state: BreakerState,
    /// How many times the breaker has opened since it was created.
    pub times_opened: u64,
    /// How many times an open breaker's cool-down ended (it let trial calls through).
    pub times_half_opened: u64,
    /// How many times trial calls closed it again (the provider recovered).
    pub times_closed: u64,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A circuit breaker for one route. Cheap to clone: clones share the same state.
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

struct Shared {
    route: Arc<str>,
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    core: Mutex<Core>,
}

struct Core {
    phase: Phase,
    /// Bumped on every state change; a permit's result counts only in the generation it began in.
    generation: u64,
    consecutive_failures: u32,
    /// The outcomes of the last `config.window` calls while closed; `true` is a failure.
    window: VecDeque<bool>,
    window_failures: u32,
    times_opened: u64,
    times_half_opened: u64,
    times_closed: u64,
}

#[derive(Clone, Copy)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: u32, successes: u32 },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    /// Cancelled, or a failure that says nothing about the provider's health.
    Neither,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("route", &self.shared.route)
            .field("config", &self.shared.config)
            .field("state", &self.state())
            .finish()
    }
}

impl CircuitBreaker {
    /// A closed breaker for `route`, on the system clock.
    pub fn new(route: &str, config: BreakerConfig) -> Self {
        Self::with_clock(route, config, Arc::new(SystemClock))
    }

    /// A closed breaker for `route` that reads the time from `clock`.
    pub fn with_clock(route: &str, config: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        let config = config.clamped();
        Self {
            shared: Arc::new(Shared {
                route: route.into(),
                config,
                clock,
                core: Mutex::new(Core {
                    phase: Phase::Closed,
                    generation: 0,
                    consecutive_failures: 0,
                    window: VecDeque::with_capacity(config.window.min(1024) as usize),
                    window_failures: 0,
                    times_opened: 0,
                    times_half_opened: 0,
                    times_closed: 0,
                }),
            }),
        }
    }

    /// The route key.
    pub fn route(&self) -> &str {
        &self.shared.route
    }

    /// The config in force (after clamping).
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.config
    }

    /// Asks to make one call. A closed breaker always answers with a [`Permit`]; an open one
    /// refuses until its cool-down is over; a half-open one admits up to
    /// [`BreakerConfig::half_open_max_calls`] trial calls at a time.
    ///
    /// Record the call's result on the permit; dropping it counts as neither success nor failure.
    pub fn try_acquire(&self) -> Result<Permit, BreakerOpen> {
        let shared = &self.shared;
        let now = shared.clock.now();
        let mut core = lock(&shared.core);
        if let Phase::Open { until } = core.phase {
            if now < until {
                return Err(self.refusal(until - now));
            }
            core.set_phase(Phase::HalfOpen {
                in_flight: 0,
                successes: 0,
            });
            core.times_half_opened += 1;
            tracing::info!(route = %shared.route, "circuit breaker half-open: trying the provider again");
        }
        let trial = match &mut core.phase {
            Phase::Closed => false,
            Phase::HalfOpen { in_flight, .. } if *in_flight < shared.config.half_open_max_calls => {
                *in_flight += 1;
                true
            }
            Phase::HalfOpen { .. } | Phase::Open { .. } => {
                let wait = Duration::from_secs(1).min(shared.config.cool_down());
                return Err(self.refusal(wait));
            }
        };
        Ok(Permit {
            shared: Arc::clone(shared),
            generation: core.generation,
            trial,
            finished: false,
        })
    }

    /// The breaker's state now. An open breaker whose cool-down is over shows as half-open,
    /// which it becomes at the next [`CircuitBreaker::try_acquire`].
    pub fn state(&self) -> BreakerState {
        let now = self.shared.clock.now();
        let core = lock(&self.shared.core);
        match core.phase {
            Phase::Closed => BreakerState::Closed {
                consecutive_failures: core.consecutive_failures,
                window_calls: u32::try_from(core.window.len()).unwrap_or(u32::MAX),
                window_failures: core.window_failures,
            },
            Phase::Open { until } if now < until => BreakerState::Open {
                until,
                retry_after: until - now,
            },
            Phase::Open { .. } => BreakerState::HalfOpen {
                in_flight: 0,
                successes: 0,
            },
            Phase::HalfOpen {
                in_flight,
                successes,
            } => BreakerState::HalfOpen {
                in_flight,
                successes,
            },
        }
    }

    /// The route, the state and how often the breaker has opened.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let state = self.state();
        let core = lock(&self.shared.core);
        BreakerSnapshot {
            route: self.shared.route.to_string(),
            state,
            times_opened: core.times_opened,
            times_half_opened: core.times_half_opened,
            times_closed: core.times_closed,
        }
    }

    fn refusal(&self, retry_after: Duration) -> BreakerOpen {
        BreakerOpen {
            route: Arc::clone(&self.shared.route),
            retry_after,
        }
    }
}

impl Shared {
    fn finish(&self, generation: u64, trial: bool, outcome: Outcome) {
        let now = self.clock.now();
        let mut core = lock(&self.core);
        if generation != core.generation {
            // The call began before the breaker last changed state: its result is stale.
            return;
        }
        let config = &self.config;
        match core.phase {
            Phase::Closed => match outcome {
                Outcome::Success => {
                    core.consecutive_failures = 0;
                    core.push(false, config.window);
                }
                Outcome::Failure => {
                    core.consecutive_failures = core.consecutive_failures.saturating_add(1);
                    core.push(true, config.window);
                    if let Some(reason) = core.trip_reason(config) {
                        tracing::warn!(route = %self.route, reason, cool_down_ms = config.cool_down_ms, "circuit breaker opened");
                        core.open(now + config.cool_down());
                    }
                }
                Outcome::Neither => {}
            },
            Phase::HalfOpen {
                mut in_flight,
                mut successes,
            } if trial => {
                in_flight = in_flight.saturating_sub(1);
                match outcome {
                    Outcome::Success => {
                        successes += 1;
                        if successes >= config.half_open_successes {
                            tracing::info!(route = %self.route, "circuit breaker closed: the provider recovered");
                            core.set_phase(Phase::Closed);
                            core.times_closed += 1;
                        } else {
                            core.phase = Phase::HalfOpen {
                                in_flight,
                                successes,
                            };
                        }
                    }
                    Outcome::Failure => {
                        tracing::warn!(route = %self.route, cool_down_ms = config.cool_down_ms, "circuit breaker reopened: a trial call failed");
                        core.open(now + config.cool_down());
                    }
                    Outcome::Neither => {
                        core.phase = Phase::HalfOpen {
                            in_flight,
                            successes,
                        };
                    }
                }
            }
            // Open, or a non-trial permit in half-open: both only arise with a stale generation.
            Phase::HalfOpen { .. } | Phase::Open { .. } => {}
        }
    }
}

impl Core {
    /// Enters `phase`, which makes every permit given out before stale.
    fn set_phase(&mut self, phase: Phase) {
        self.phase = phase;
        self.generation += 1;
        self.consecutive_failures = 0;
        self.window.clear();
        self.window_failures = 0;
    }

    fn open(&mut self, until: Instant) {
        self.set_phase(Phase::Open { until });
        self.times_opened += 1;
    }

    fn push(&mut self, failed: bool, window: u32) {
        if self.window.len() >= window as usize
            && let Some(oldest) = self.window.pop_front()
            && oldest
        {
            self.window_failures -= 1;
        }
        self.window.push_back(failed);
        if failed {
            self.window_failures += 1;
        }
    }

    /// Why the breaker should open now, if it should.
    fn trip_reason(&self, config: &BreakerConfig) -> Option<&'static str> {
        if config.consecutive_failures > 0
            && self.consecutive_failures >= config.consecutive_failures
        {
            return Some("consecutive failures");
        }
        let calls = self.window.len() as u64;
        let rate_reached =
            u64::from(self.window_failures) * 100 >= u64::from(config.failure_rate_percent) * calls;
        (config.failure_rate_percent > 0 && calls >= u64::from(config.min_calls) && rate_reached)
            .then_some("failure rate")
    }
}

/// Leave to make one call through a breaker. Record its result with [`Permit::record`] (or
/// [`Permit::success`] / [`Permit::failure`]); dropped unrecorded, it counts as neither.
#[must_use = "a permit records nothing unless its call's result is given to it"]
pub struct Permit {
    shared: Arc<Shared>,
    generation: u64,
    trial: bool,
    finished: bool,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("route", &self.shared.route)
            .field("trial", &self.trial)
            .finish()
    }
}

impl Permit {
    /// Whether this is a half-open breaker's trial call.
    pub fn is_trial(&self) -> bool {
        self.trial
    }

    /// Records the call's result: `Ok` is a success, an error for which
    /// [`Error::is_retryable`] holds is a failure, any other error (the provider answered, but
    /// refused this request) is neither.
    pub fn record<T>(self, result: &Result<T>) {
        let outcome = match result {
            Ok(_) => Outcome::Success,
            Err(e) if e.is_retryable() => Outcome::Failure,
            Err(_) => Outcome::Neither,
        };
        self.finish(outcome);
    }

    /// Records a success.
    pub fn success(self) {
        self.finish(Outcome::Success);
    }

    /// Records a failure that says the provider is unhealthy (see the [module docs](self)).
    pub fn failure(self) {
        self.finish(Outcome::Failure);
    }

    fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        self.shared.finish(self.generation, self.trial, outcome);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.finished {
            self.shared
                .finish(self.generation, self.trial, Outcome::Neither);
        }
    }
}

/// One circuit breaker per route key, created on first use with a shared config.
///
/// Route keys should come from configuration or from routes that resolved to a configured
/// provider, not from raw client input: every distinct key holds a breaker for the life of the
/// registry.
pub struct Breakers {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    breakers: RwLock<BTreeMap<RouteId, CircuitBreaker>>,
}

impl fmt::Debug for Breakers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breakers")
            .field("config", &self.config)
            .field("routes", &self.snapshots().len())
            .finish()
    }
}

impl Breakers {
    /// An empty registry whose breakers use `config` and the system clock.
    pub fn new(config: BreakerConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// An empty registry whose breakers use `config` and `clock`.
    pub fn with_clock(config: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            clock,
            breakers: RwLock::new(BTreeMap::new()),
        }
    }

    /// The config every breaker is created with.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The breaker of `route`, created (closed) if it did not exist.
    pub fn get(&self, route: &RouteId) -> CircuitBreaker {
        if let Some(breaker) = self
            .breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(route)
        {
            return breaker.clone();
        }
        self.breakers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(route.clone())
            .or_insert_with(|| {
                CircuitBreaker::with_clock(&route.to_string(), self.config, Arc::clone(&self.clock))
            })
            .clone()
    }

    /// Shorthand for `self.get(route).try_acquire()`.
    pub fn try_acquire(&self, route: &RouteId) -> Result<Permit, BreakerOpen> {
        self.get(route).try_acquire()
    }

    /// Every breaker's snapshot, ordered by route.
    pub fn snapshots(&self) -> Vec<BreakerSnapshot> {
        let breakers: Vec<CircuitBreaker> = self
            .breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        breakers.iter().map(CircuitBreaker::snapshot).collect()
    }
}

/// Locks `m`, also after a panic elsewhere: every critical section here leaves the state whole.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
