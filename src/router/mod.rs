//! Routing by model name, retries with backoff, and per-request tracing.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gateway_core::{
    Accounting, Attempt, DynTextModel, Error, ErrorKind, PriceCatalog, Registry, Result,
    TextRequest, TextResponse, TextStream, TokenUsage,
};
use tracing::Instrument;

use crate::breaker::Breakers;
use crate::metering::{
    CallContext, Metered, MeteredStream, TextMeter, prompt_estimate, text_admission,
};
use crate::ratelimit::RateLimiter;
use crate::routing::{RoutingConfig, chain};

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

/// A model name resolved to its provider.
#[derive(Clone)]
pub struct Route {
    /// The provider id (`gemini`).
    pub provider: &'static str,
    /// The provider-local model id (`gemini-2.5-flash`).
    pub model: String,
    /// The provider.
    pub text: Arc<dyn DynTextModel>,
}

/// The router: configured providers, model-name routing, retries, and (with an
/// [`Accounting`]) plan admission before every call and usage settlement after it.
#[derive(Clone)]
pub struct Gateway {
    registry: Arc<Registry>,
    retry: RetryPolicy,
    pricing: Arc<PriceCatalog>,
    accounting: Option<Arc<dyn Accounting>>,
    routing: Arc<RoutingConfig>,
    breakers: Arc<Breakers>,
    /// Routes named in the configuration (announced models, alias routes): each has its own
    /// circuit breaker; any other model shares its provider's, so clients cannot grow the
    /// breaker table without bound.
    known_routes: Arc<HashSet<String>>,
    limits: Arc<BTreeMap<String, ProviderLimits>>,
}

/// Outgoing rate limits of one provider key.
#[derive(Clone, Default)]
pub struct ProviderLimits {
    /// Requests (checked with cost 1).
    pub requests: Option<Arc<dyn RateLimiter>>,
    /// Tokens (checked with the request's estimate: prompt plus `max_tokens`).
    pub tokens: Option<Arc<dyn RateLimiter>>,
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
            .finish()
    }
}

impl Gateway {
    /// A gateway over `registry` with the default [`RetryPolicy`], the built-in pricing catalog,
    /// and no accounting.
    pub fn new(registry: Registry) -> Self {
        let known_routes = registry.model_names().into_iter().collect();
        let routing = RoutingConfig::default();
        Self {
            registry: Arc::new(registry),
            retry: RetryPolicy::default(),
            pricing: Arc::new(PriceCatalog::builtin()),
            accounting: None,
            breakers: Arc::new(Breakers::new(routing.breaker)),
            routing: Arc::new(routing),
            known_routes: Arc::new(known_routes),
            limits: Arc::new(BTreeMap::new()),
        }
    }

    /// Sets deadlines, aliases (fallback chains) and circuit-breaker rules. Fails, naming the
    /// field, on a malformed alias. An alias route whose provider is not registered (e.g. its
    /// API key is not set) is skipped at request time, so one missing provider does not take a
    /// whole chain down.
    pub fn with_routing(mut self, routing: RoutingConfig) -> Result<Self> {
        routing
            .validate(|_| true)
            .map_err(|e| Error::new(ErrorKind::Config, e))?;
        for (name, alias) in &routing.aliases {
            for route in &alias.routes {
                let provider = route.model().split('/').next().unwrap_or_default();
                if self.registry.text(provider).is_none() {
                    tracing::warn!(alias = %name, route = route.model(), "alias route of a provider that is not available: it will be skipped");
                }
            }
        }
        let mut known: HashSet<String> = (*self.known_routes).clone();
        for alias in routing.aliases.values() {
            known.extend(alias.routes.iter().map(|r| r.model().to_owned()));
        }
        self.known_routes = Arc::new(known);
        self.breakers = Arc::new(Breakers::new(routing.breaker));
        self.routing = Arc::new(routing);
        Ok(self)
    }

    /// Limits the calls made to `provider` (with the gateway's key), per minute.
    pub fn with_provider_limits(mut self, provider: &str, limits: ProviderLimits) -> Self {
        Arc::make_mut(&mut self.limits).insert(provider.to_owned(), limits);
        self
    }

    /// The circuit breakers, for a status endpoint.
    pub fn breakers(&self) -> &Breakers {
        &self.breakers
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

    /// Replaces the pricing catalog.
    pub fn with_pricing(mut self, pricing: PriceCatalog) -> Self {
        self.pricing = Arc::new(pricing);
        self
    }

    /// Checks every call against the caller's plan before it reaches a provider, and records
    /// its usage after. Calls must then name their user ([`CallContext::user_id`]).
    pub fn with_accounting(mut self, accounting: Arc<dyn Accounting>) -> Self {
        self.accounting = Some(accounting);
        self
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

    /// Resolves `<provider>/<model id>` to a text provider.
    ///
    /// Everything after the first `/` is the provider's model id, verbatim: Hugging Face ids keep
    /// their own slash and an optional `:provider` suffix.
    pub fn route_text(&self, model: &str) -> Result<Route> {
        let Some((provider, id)) = model
            .split_once('/')
            .filter(|(p, id)| !p.is_empty() && !id.is_empty())
        else {
            return Err(Error::invalid_request(format!(
                "model `{model}` must be named `<provider>/<model id>`, e.g. `gemini/gemini-2.5-flash`"
            )));
        };
        let text = self.registry.text(provider).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "model `{model}`: provider `{provider}` is not configured (configured: {})",
                    self.registry.providers().join(", ")
                ),
            )
        })?;
        Ok(Route {
            provider: text.provider_dyn(),
            model: id.to_owned(),
            text: text.clone(),
        })
    }

    /// Generates a complete answer; `req.model` is `<provider>/<model id>`.
    ///
    /// Without accounting this needs no caller; with it, use [`Gateway::generate_with`].
    pub async fn generate(&self, req: TextRequest) -> Result<TextResponse> {
        Ok(self
            .generate_with(&CallContext::default(), req)
            .await?
            .value)
    }

    /// Streams an answer; `req.model` is `<provider>/<model id>`.
    pub async fn stream(&self, req: TextRequest) -> Result<TextStream> {
        Ok(self.stream_with(&CallContext::default(), req).await?.value)
    }

    /// Generates a complete answer for `ctx`'s caller: the plan is checked and the estimate
    /// reserved before any provider is called, the routes of the model's fallback chain are
    /// tried in order (each with its retries) within the request's deadline, and the real usage
    /// is settled after, with every attempt.
    pub async fn generate_with(
        &self,
        ctx: &CallContext,
        req: TextRequest,
    ) -> Result<Metered<TextResponse>> {
        let span = tracing::debug_span!("gateway.generate", request_id = %ctx.request_id, model = %req.model, route = tracing::field::Empty);
        async {
            let served = self
                .attempt_chain(ctx, &req, "chat", |text, req| async move {
                    text.generate_dyn(req).await
                })
                .await;
            let Served {
                value: answer,
                meter,
                retries,
            } = match served {
                Ok(served) => served,
                Err(failed) => return Err(failed.settle().await),
            };
            tracing::Span::current().record("route", format!("{}/{}", meter.provider, meter.model));
            let (usage, estimated) = if answer.usage == TokenUsage::default() {
                // The provider reported nothing: count locally, and say so.
                let local = TokenUsage {
                    input_tokens: meter.prompt_tokens,
                    output_tokens: gateway_core::accounting::estimate_tokens(&answer.content),
                    ..TokenUsage::default()
                };
                (local, true)
            } else {
                (answer.usage, false)
            };
            let cost = meter.cost(&usage);
            meter
                .settle(meter.record(usage, estimated, None, true, retries, None))
                .await;
            let route = format!("{}/{}", meter.provider, meter.model);
            Ok(Metered {
                value: answer,
                route,
                cost,
                retries,
            })
        }
        .instrument(span)
        .await
    }

    /// Streams an answer for `ctx`'s caller, checked against the plan before the provider is
    /// called. Routes of the fallback chain are tried only until a stream is open: once the
    /// client may have received a byte, an error is final. The usage is settled when the stream
    /// ends, breaks off, or is dropped (a client that disconnects is charged for what was
    /// produced); a stream silent for longer than the idle timeout is cut as timed out.
    pub async fn stream_with(
        &self,
        ctx: &CallContext,
        req: TextRequest,
    ) -> Result<Metered<TextStream>> {
        let span = tracing::debug_span!("gateway.stream", request_id = %ctx.request_id, model = %req.model, route = tracing::field::Empty);
        async {
            let served = self
                .attempt_chain(ctx, &req, "chat.stream", |text, req| async move {
                    if !text.capabilities_dyn().streaming {
                        return Err(Error::unsupported(format!(
                            "provider `{}` does not stream",
                            text.provider_dyn()
                        )));
                    }
                    text.stream_dyn(req).await
                })
                .await;
            match served {
                Ok(Served {
                    value,
                    meter,
                    retries,
                }) => {
                    tracing::Span::current()
                        .record("route", format!("{}/{}", meter.provider, meter.model));
                    let idle = self.routing.stream_idle_timeout();
                    let route = format!("{}/{}", meter.provider, meter.model);
                    let stream =
                        MeteredStream::new(idle_timeout(value, idle), meter, retries).boxed();
                    Ok(Metered {
                        value: stream,
                        route,
                        cost: None,
                        retries,
                    })
                }
                Err(failed) => Err(failed.settle().await),
            }
        }
        .instrument(span)
        .await
    }

    /// The cost of `usage` on `provider`'s text model `model`, if priced.
    pub fn text_cost(
        &self,
        provider: &str,
        model: &str,
        usage: &TokenUsage,
    ) -> Option<gateway_core::Cost> {
        self.pricing.text_cost(provider, model, usage)
    }

    /// Tries the routes of `req.model`'s chain in order, each with its retries, within the
    /// deadline. The plan is checked (and the estimate reserved) once, on the first route that
    /// can be tried; a fallback route must also be allowed by the plan.
    async fn attempt_chain<T, F, Fut>(
        &self,
        ctx: &CallContext,
        req: &TextRequest,
        operation: &'static str,
        call: F,
    ) -> std::result::Result<Served<T>, Failed>
    where
        F: Fn(Arc<dyn DynTextModel>, TextRequest) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let fail = |error: Error| Failed {
            error,
            meter: None,
            retries: 0,
        };
        let deadline = ctx.deadline.unwrap_or_else(|| self.routing.deadline());
        let deadline_at = Instant::now() + deadline;
        let names = chain(&self.routing, &req.model, &ctx.fallbacks);
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut last_error: Option<Error> = None;
        // The model the caller named must resolve; a later route that does not (its provider is
        // not available) is skipped.
        let mut routes = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            match self.route_text(name) {
                Ok(route) => routes.push(route),
                Err(e) if i == 0 && !self.routing.aliases.contains_key(&req.model) => {
                    return Err(fail(e));
                }
                Err(e) => {
                    attempts.push(Attempt {
                        route: name.clone(),
                        outcome: "not_available".into(),
                        latency: Duration::ZERO,
                    });
                    last_error.get_or_insert(e);
                }
            }
        }
        if routes.is_empty() {
            return Err(fail(last_error.unwrap_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("model `{}` has no route", req.model),
                )
            })));
        }

        let mut meter: Option<TextMeter> = None;
        let mut calls: u32 = 0;
        let skip = |attempts: &mut Vec<Attempt>, route: &Route, outcome: &str| {
            attempts.push(Attempt {
                route: format!("{}/{}", route.provider, route.model),
                outcome: outcome.to_owned(),
                latency: Duration::ZERO,
            });
        };
        for (index, route) in routes.iter().enumerate() {
            let only = routes.len() == 1;
            let mut route_req = req.clone();
            route_req.model = route.model.clone();
            let route_name = format!("{}/{}", route.provider, route.model);

            // Structured output only on routes that support it.
            if let Err(e) = route
                .text
                .capabilities_dyn()
                .check(route.provider, &route_req)
            {
                if only {
                    return Err(fail(e));
                }
                skip(&mut attempts, route, "unsupported");
                last_error.get_or_insert(e);
                continue;
            }

            // The plan: admitted once, on the first route tried; later routes must be allowed.
            match &mut meter {
                None => match self.admit(ctx, route.provider, &route_req, operation).await {
                    Ok(m) => meter = Some(m),
                    Err(e) => return Err(fail(e)),
                },
                Some(m) => {
                    if let Some(accounting) = &self.accounting {
                        let price = self.pricing.text_price(route.provider, &route.model);
                        let admission = text_admission(
                            ctx,
                            &m.user_id,
                            route.provider,
                            &route_req,
                            operation,
                            price,
                        );
                        match accounting.permits(admission).await {
                            Ok(()) => {}
                            Err(e) if *e.kind() == ErrorKind::PermissionDenied => {
                                skip(&mut attempts, route, "not_in_plan");
                                last_error.get_or_insert(e);
                                continue;
                            }
                            Err(e) => {
                                return Err(Failed {
                                    error: e,
                                    meter: meter.take().map(|m| m.with_attempts(attempts)),
                                    retries: calls.saturating_sub(1),
                                });
                            }
                        }
                    }
                    m.retarget(
                        route.provider,
                        &route.model,
                        self.pricing
                            .text_price(route.provider, &route.model)
                            .copied(),
                    );
                }
            }

            // Outgoing rate limits of the provider's key.
            if let Some(limits) = self.limits.get(route.provider) {
                match check_limits(limits, route.provider, &route_req).await {
                    Ok(None) => {}
                    Ok(Some(e)) => {
                        skip(&mut attempts, route, "rate_limited_locally");
                        last_error = Some(e);
                        continue;
                    }
                    Err(e) => {
                        let meter = meter.take().map(|m| m.with_attempts(attempts));
                        return Err(Failed {
                            error: e,
                            meter,
                            retries: calls.saturating_sub(1),
                        });
                    }
                }
            }

            let breaker_key = if self.known_routes.contains(&route_name) {
                route_name.clone()
            } else {
                route.provider.to_owned()
            };
            let breaker = self.breakers.get(&breaker_key);
            let mut retry = 0;
            loop {
                let permit = match breaker.try_acquire() {
                    Ok(permit) => permit,
                    Err(open) => {
                        skip(&mut attempts, route, "circuit_open");
                        last_error = Some(open.into());
                        break;
                    }
                };
                let Some(remaining) = deadline_at
                    .checked_duration_since(Instant::now())
                    .filter(|d| !d.is_zero())
                else {
                    drop(permit);
                    let error = deadline_error(deadline);
                    let meter = meter.take().map(|m| m.with_attempts(attempts));
                    return Err(Failed {
                        error,
                        meter,
                        retries: calls.saturating_sub(1),
                    });
                };
                let started = Instant::now();
                calls += 1;
                let result = match tokio::time::timeout(
                    remaining,
                    call(route.text.clone(), route_req.clone()),
                )
                .await
                {
                    Ok(result) => {
                        permit.record(&result);
                        result
                    }
                    // The caller's deadline, not the provider's health: a short deadline must
                    // not open the circuit for everyone, so the permit counts as neither.
                    Err(_) => {
                        drop(permit);
                        Err(deadline_error(deadline).with_provider(route.provider))
                    }
                };
                attempts.push(Attempt {
                    route: route_name.clone(),
                    outcome: match &result {
                        Ok(_) => "ok".to_owned(),
                        Err(e) => e.kind().as_str().to_owned(),
                    },
                    latency: started.elapsed(),
                });
                let error = match result {
                    Ok(value) => {
                        let meter = meter
                            .take()
                            .map(|m| m.with_attempts(attempts))
                            .expect("admitted before the first call");
                        return Ok(Served {
                            value,
                            meter,
                            retries: calls - 1,
                        });
                    }
                    Err(e) => e,
                };
                let past_deadline = Instant::now() >= deadline_at;
                if past_deadline || !self.falls_back_on(&error) {
                    let meter = meter.take().map(|m| m.with_attempts(attempts));
                    let error = if past_deadline {
                        deadline_error(deadline)
                    } else {
                        error
                    };
                    return Err(Failed {
                        error,
                        meter,
                        retries: calls - 1,
                    });
                }
                match self.retry.delay(retry, &error) {
                    Some(wait) if Instant::now() + wait < deadline_at => {
                        tracing::warn!(route = %route_name, error = %error, retry = retry + 1, wait_ms = wait.as_millis() as u64, "retrying provider call");
                        tokio::time::sleep(wait).await;
                        retry += 1;
                    }
                    _ => {
                        if index + 1 < routes.len() {
                            tracing::warn!(route = %route_name, error = %error, "falling back to the next route");
                        }
                        last_error = Some(error);
                        break;
                    }
                }
            }
        }
        let error = last_error.unwrap_or_else(|| {
            Error::new(ErrorKind::Unavailable, "no route could serve the request")
        });
        let meter = meter.map(|m| m.with_attempts(attempts));
        Err(Failed {
            error,
            meter,
            retries: calls.saturating_sub(1),
        })
    }

    /// Whether `error` on one route is worth trying the next: provider trouble is; the caller's
    /// own mistakes and plan refusals are not, and a content-filter refusal only if configured.
    fn falls_back_on(&self, error: &Error) -> bool {
        match error.kind() {
            ErrorKind::InvalidRequest | ErrorKind::PermissionDenied => false,
            ErrorKind::ContentFiltered => self.routing.fallback_on_content_filter,
            _ => true,
        }
    }

    /// Admits the call (when there is an accounting) and returns what settling it needs.
    async fn admit(
        &self,
        ctx: &CallContext,
        provider: &'static str,
        req: &TextRequest,
        operation: &'static str,
    ) -> Result<TextMeter> {
        let price = self.pricing.text_price(provider, &req.model).copied();
        let user_id = ctx.user_id.clone().unwrap_or_default();
        let reservation = match &self.accounting {
            Some(accounting) => {
                if user_id.is_empty() {
                    return Err(Error::new(
                        ErrorKind::PermissionDenied,
                        "this gateway checks plans: the call must name its user",
                    ));
                }
                let admission =
                    text_admission(ctx, &user_id, provider, req, operation, price.as_ref());
                Some(accounting.admit(admission).await?)
            }
            None => None,
        };
        Ok(TextMeter {
            accounting: self.accounting.clone(),
            reservation,
            request_id: ctx.request_id.clone(),
            user_id,
            provider,
            model: req.model.clone(),
            operation,
            prompt_tokens: prompt_estimate(req),
            price,
            pricing_version: self.pricing.version().to_owned(),
            started: std::time::Instant::now(),
            attempts: Vec::new(),
        })
    }
}

/// A route that answered, with what settling its request needs.
struct Served<T> {
    value: T,
    meter: TextMeter,
    retries: u32,
}

/// A request that failed, with its meter when it had been admitted.
struct Failed {
    error: Error,
    meter: Option<TextMeter>,
    retries: u32,
}

impl Failed {
    /// Releases the reservation (nothing billable), logging every attempt, and returns the error.
    async fn settle(self) -> Error {
        if let Some(meter) = &self.meter {
            meter
                .settle(meter.record(
                    TokenUsage::default(),
                    false,
                    Some(&self.error),
                    false,
                    self.retries,
                    None,
                ))
                .await;
        }
        self.error
    }
}

fn deadline_error(deadline: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("the request deadline of {} ms passed", deadline.as_millis()),
    )
}

/// `Ok(None)` when `provider`'s limits allow `req`, `Ok(Some(error))` when they do not (try
/// another route), `Err` when the limiter itself failed (its store is down: never allow blindly).
async fn check_limits(
    limits: &ProviderLimits,
    provider: &str,
    req: &TextRequest,
) -> Result<Option<Error>> {
    let tokens = prompt_estimate(req) + u64::from(req.max_tokens.unwrap_or(0));
    let checks = [
        (limits.requests.as_ref(), 1u64),
        (limits.tokens.as_ref(), tokens),
    ];
    for (limiter, cost) in checks {
        let Some(limiter) = limiter else { continue };
        let cost = u32::try_from(cost)
            .unwrap_or(u32::MAX)
            .min(limiter.quota().burst());
        let decision = limiter.check(provider, cost).await?;
        if let Some(wait) = decision.retry_after() {
            return Ok(Some(Error::new(
                ErrorKind::RateLimited {
                    retry_after: Some(wait),
                },
                format!("the gateway's own rate limit for provider `{provider}` is reached"),
            )));
        }
    }
    Ok(None)
}

/// Cuts `stream` with a timeout error when no item arrives for `idle`.
fn idle_timeout(stream: TextStream, idle: Duration) -> TextStream {
    futures_util::stream::unfold((stream, false), move |(mut stream, done)| async move {
        if done {
            return None;
        }
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(item)) => Some((item, (stream, false))),
            Ok(None) => None,
            Err(_) => Some((
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!("the provider sent nothing for {} ms", idle.as_millis()),
                )),
                (stream, true),
            )),
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
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
