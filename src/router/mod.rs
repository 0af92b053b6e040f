//! The router: model names to routes, one attempt loop for every modality (retries, fallbacks,
//! deadlines, breakers, rate limits, plan admission and settlement), and each modality's entry
//! points on [`Gateway`].
//!
//! - `op.rs`: [`Operation`](op::Operation), the small per-modality adapter the loop is generic
//!   over (look the model up, check capabilities, estimate the plan amount and price, call).
//! - `attempt.rs`: the attempt loop, written once.
//! - `text.rs`, `embed.rs`, `search.rs`: the modalities' operations and their public methods.

mod attempt;
mod audio;
#[cfg(test)]
mod cache_tests;
mod cached;
mod embed;
mod image;
mod op;
mod search;
#[cfg(test)]
mod tests;
mod text;
mod training;
mod video;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use gateway_core::{Error, ErrorKind, PriceCatalog, Registry, Result, RouteId};

use crate::breaker::{Breakers, CircuitBreaker};
use crate::ratelimit::RateLimiter;
use crate::routing::{Aliases, RoutingConfig};

pub use training::TrainingSubmission;
pub use video::{JobCharge, JobRef, VideoSubmission};

/// When and how long to wait before retrying a failed provider call.
///
/// Only retryable errors ([`Error::is_retryable`]) are retried. The wait is the provider's
/// `Retry-After` when it gave one, else exponential backoff with jitter: attempt `n` waits a
/// random time between half and all of `initial_backoff × 2ⁿ`, capped at `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts in all).
    pub max_retries: u32,
    /// The backoff before the first retry.
    pub initial_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// A provider asking for a longer wait than this is not retried: its error is returned at once.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// How long to wait before retry number `retry` (0-based) after `error`, or `None` to give up.
    pub fn delay(&self, retry: u32, error: &Error) -> Option<Duration> {
        if retry >= self.max_retries || !error.is_retryable() {
            return None;
        }
        if let Some(wait) = error.retry_after() {
            return (wait <= self.max_retry_after).then_some(wait);
        }
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32 << retry.min(20))
            .min(self.max_backoff);
        let half = ceiling / 2;
        let jitter = half.mul_f64(fastrand::f64());
        Some(half + jitter)
    }
}

/// Outgoing rate limits of one provider key.
#[derive(Clone, Default)]
pub struct ProviderLimits {
    /// Requests (checked with cost 1).
    pub requests: Option<Arc<dyn RateLimiter>>,
    /// Tokens (checked with the request's estimate: prompt plus `max_tokens`).
    pub tokens: Option<Arc<dyn RateLimiter>>,
}

/// The router: configured providers, model-name routing, retries, and (with an
/// [`Accounting`](gateway_core::Accounting)) plan admission before every call and usage
/// settlement after it.
#[derive(Clone)]
pub struct Gateway {
    registry: Arc<Registry>,
    /// Providers this build knows, registered or not (a compiled provider without its key is
    /// known: its routes are skipped, not refused as unknown).
    known_providers: Arc<[&'static str]>,
    retry: RetryPolicy,
    pricing: Arc<PriceCatalog>,
    accounting: Option<Arc<dyn gateway_core::Accounting>>,
    routing: Arc<RoutingConfig>,
    aliases: Arc<Aliases>,
    breakers: Arc<Breakers>,
    /// Routes named in the configuration (announced models, alias routes): each has its own
    /// circuit breaker; any other model shares its provider's (`<provider>/*`), so clients
    /// cannot grow the breaker table without bound.
    known_routes: Arc<HashSet<RouteId>>,
    provider_wide: Arc<HashMap<&'static str, RouteId>>,
    limits: Arc<BTreeMap<&'static str, ProviderLimits>>,
    telemetry: crate::trace::Telemetry,
    cache: Option<crate::cache::Cache>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("registry", &self.registry)
            .field("retry", &self.retry)
            .field("pricing", &self.pricing.version())
            .field("accounting", &self.accounting.is_some())
            .field("aliases", &self.routing.aliases.keys().collect::<Vec<_>>())
            .field("limited_providers", &self.limits.keys().collect::<Vec<_>>())
            .field("cache", &self.cache)
            .finish()
    }
}

impl Gateway {
    /// A gateway over `registry` with the default [`RetryPolicy`], the prices the registered
    /// providers ship ([`Registry::prices`]), and no accounting.
    pub fn new(registry: Registry) -> Self {
        let known_routes = registry.models().map(|(route, _)| route).collect();
        let routing = RoutingConfig::default();
        let pricing = Arc::new(registry.prices().clone());
        let mut known: Vec<&'static str> = registry.providers();
        for p in crate::COMPILED_PROVIDERS {
            if !known.contains(p) {
                known.push(p);
            }
        }
        let provider_wide = known.iter().map(|p| (*p, RouteId::new(p, "*"))).collect();
        Self {
            registry: Arc::new(registry),
            known_providers: known.into(),
            retry: RetryPolicy::default(),
            pricing,
            accounting: None,
            breakers: Arc::new(Breakers::new(routing.breaker)),
            routing: Arc::new(routing),
            aliases: Arc::new(Aliases::default()),
            known_routes: Arc::new(known_routes),
            provider_wide: Arc::new(provider_wide),
            limits: Arc::new(BTreeMap::new()),
            telemetry: crate::trace::Telemetry::default(),
            cache: None,
        }
    }

    /// The static id of a provider this gateway knows (registered, or compiled in).
    fn provider_id(&self, name: &str) -> Option<&'static str> {
        self.known_providers.iter().copied().find(|p| *p == name)
    }

    /// Parses `<provider>/<model id>` into a route of a provider this gateway knows.
    pub fn route(&self, name: &str) -> Result<RouteId> {
        RouteId::parse(name, |p| self.provider_id(p)).map_err(|e| {
            if e.kind() == &ErrorKind::NotFound {
                let configured = self.registry.providers().join(", ");
                Error::new(
                    ErrorKind::NotFound,
                    format!("{} (configured: {configured})", e.message()),
                )
            } else {
                e
            }
        })
    }

    /// Sets deadlines, aliases (fallback chains) and circuit-breaker rules. Fails, naming the
    /// field, on a malformed alias. An alias route whose provider is not registered (e.g. its
    /// API key is not set) is skipped at request time, so one missing provider does not take a
    /// whole chain down.
    pub fn with_routing(mut self, routing: RoutingConfig) -> Result<Self> {
        routing.validate(|p| self.provider_id(p).is_some())?;
        let aliases = Aliases::compile(&routing, |p| self.provider_id(p))?;
        let registered = self.registry.providers();
        let mut known: HashSet<RouteId> = (*self.known_routes).clone();
        for route in aliases.routes() {
            if !registered.contains(&route.provider) {
                tracing::warn!(route = %route, "alias route of a provider that is not available: it will be skipped");
            }
            known.insert(route.clone());
        }
        self.known_routes = Arc::new(known);
        self.aliases = Arc::new(aliases);
        self.breakers = Arc::new(Breakers::new(routing.breaker));
        self.routing = Arc::new(routing);
        Ok(self)
    }

    /// Limits the calls made to `provider` (with the gateway's key), per minute. Fails on a
    /// provider this gateway does not know.
    pub fn with_provider_limits(mut self, provider: &str, limits: ProviderLimits) -> Result<Self> {
        let id = self.provider_id(provider).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!("rate_limits.providers.{provider}: unknown provider"),
            )
        })?;
        Arc::make_mut(&mut self.limits).insert(id, limits);
        Ok(self)
    }

    /// The circuit breakers, for a status endpoint.
    pub fn breakers(&self) -> &Breakers {
        &self.breakers
    }

    /// The breaker of `route`: its own when the configuration names it, else its provider's.
    fn breaker(&self, route: &RouteId) -> CircuitBreaker {
        if self.known_routes.contains(route) {
            return self.breakers.get(route);
        }
        match self.provider_wide.get(route.provider) {
            Some(wide) => self.breakers.get(wide),
            None => self.breakers.get(&RouteId::new(route.provider, "*")),
        }
    }

    /// The routing configuration in force.
    pub fn routing(&self) -> &RoutingConfig {
        &self.routing
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Replaces the pricing catalog (the registered providers' prices are dropped).
    pub fn with_pricing(mut self, pricing: PriceCatalog) -> Self {
        self.pricing = Arc::new(pricing);
        self
    }

    /// Adds an operator's price overrides over the prices in force.
    pub fn with_price_overrides(mut self, overrides: PriceCatalog) -> Self {
        Arc::make_mut(&mut self.pricing).merge(overrides);
        self
    }

    /// Checks every call against the caller's plan before it reaches a provider, and records
    /// its usage after. Calls must then name their user ([`CallContext::user_id`](crate::CallContext)).
    pub fn with_accounting(mut self, accounting: Arc<dyn gateway_core::Accounting>) -> Self {
        self.accounting = Some(accounting);
        self
    }

    /// Answers repeated requests from `cache` (see [`crate::cache`]). Fails, naming the field,
    /// when the semantic cache's embedding model is not one this gateway can route.
    pub fn with_cache(mut self, cache: crate::cache::Cache) -> Result<Self> {
        if let Some(model) = &cache.config().semantic.embedding_model
            && !self.aliases.contains(model)
        {
            self.route(model).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!("cache.semantic.embedding_model: {}", e.message()),
                )
            })?;
        }
        self.cache = Some(cache);
        Ok(self)
    }

    /// The response cache, if any.
    pub fn cache(&self) -> Option<&crate::cache::Cache> {
        self.cache.as_ref()
    }

    /// Reports every request's end (and every refusal before a provider call) to `observer`,
    /// for metrics. Spans need no setting: they are `tracing` spans under
    /// [`OTEL_TARGET`](gateway_core::telemetry::OTEL_TARGET), which a subscriber takes or leaves.
    pub fn with_observer(mut self, observer: Arc<dyn gateway_core::telemetry::Observer>) -> Self {
        self.telemetry.observer = Some(observer);
        self
    }

    /// Records chat prompts and answers on the request spans (off by default: they can hold
    /// personal data), each cut to `capture.max_bytes`.
    pub fn with_content_capture(
        mut self,
        capture: gateway_core::telemetry::ContentCapture,
    ) -> Self {
        self.telemetry.content = capture;
        self
    }

    /// Starts the telemetry of one request.
    fn trace(
        &self,
        operation: &'static str,
        model: &str,
        ctx: &crate::CallContext,
        stream: bool,
    ) -> crate::trace::Trace {
        if self.telemetry.observer.is_none()
            && !tracing::enabled!(
                target: gateway_core::telemetry::OTEL_TARGET,
                tracing::Level::INFO
            )
        {
            return crate::trace::Trace::default();
        }
        // `<provider>/<model id>` names the provider's model: the conventions' request model is
        // the id (the provider is `gen_ai.provider.name`); an alias is reported as named.
        let model = match model.split_once('/') {
            Some((provider, id))
                if self.provider_id(provider).is_some() && !self.aliases.contains(model) =>
            {
                id
            }
            _ => model,
        };
        crate::trace::Trace::start(
            &self.telemetry,
            &self.registry,
            operation,
            model,
            ctx,
            stream,
        )
    }

    /// The prices in force.
    pub fn pricing(&self) -> &PriceCatalog {
        &self.pricing
    }

    /// The providers.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    fn rate_limited(after: Option<Duration>) -> Error {
        Error::new(ErrorKind::RateLimited { retry_after: after }, "slow down")
    }

    #[test]
    fn honours_retry_after_within_bounds() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(0, &rate_limited(Some(Duration::from_secs(3)))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            p.delay(0, &rate_limited(Some(Duration::from_secs(31)))),
            None
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_stops() {
        let p = RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(1),
        };
        let e = Error::new(ErrorKind::Upstream { status: 503 }, "down");
        for _ in 0..100 {
            let d0 = p.delay(0, &e).unwrap();
            assert!(
                d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100),
                "{d0:?}"
            );
            let d2 = p.delay(2, &e).unwrap();
            assert!(
                d2 >= Duration::from_millis(150) && d2 <= Duration::from_millis(300),
                "{d2:?}"
            );
        }
        assert_eq!(p.delay(3, &e), None);
        assert_eq!(p.delay(0, &Error::invalid_request("bad")), None);
    }
}
