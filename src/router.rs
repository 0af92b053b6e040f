//! Routing by model name, retries with backoff, and per-request tracing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gateway_core::{
    Accounting, DynTextModel, Error, ErrorKind, PriceCatalog, Registry, Result, TextRequest,
    TextResponse, TextStream, TokenUsage,
};
use tracing::Instrument;

use crate::metering::{
    CallContext, Metered, MeteredStream, TextMeter, prompt_estimate, text_admission,
};

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
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("registry", &self.registry)
            .field("retry", &self.retry)
            .field("pricing", &self.pricing.version())
            .field("accounting", &self.accounting.is_some())
            .finish()
    }
}

impl Gateway {
    /// A gateway over `registry` with the default [`RetryPolicy`], the built-in pricing catalog,
    /// and no accounting.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry: Arc::new(registry),
            retry: RetryPolicy::default(),
            pricing: Arc::new(PriceCatalog::builtin()),
            accounting: None,
        }
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
        self.stream_with(&CallContext::default(), req).await
    }

    /// Generates a complete answer for `ctx`'s caller: the plan is checked and the estimate
    /// reserved before any provider is called, and the real usage settled after.
    pub async fn generate_with(
        &self,
        ctx: &CallContext,
        mut req: TextRequest,
    ) -> Result<Metered<TextResponse>> {
        let route = self.route_text(&req.model)?;
        route.text.capabilities_dyn().check(route.provider, &req)?;
        req.model = route.model.clone();
        let span = tracing::info_span!("gateway.generate", request_id = %ctx.request_id, provider = route.provider, model = %route.model);
        async {
            let meter = self.admit(ctx, route.provider, &req, "chat").await?;
            let (result, retries) = self
                .with_retries(|| route.text.generate_dyn(req.clone()))
                .await;
            match result {
                Ok(answer) => {
                    let (usage, estimated) = if answer.usage == TokenUsage::default() {
                        // The provider reported nothing: count locally, and say so.
                        let local = TokenUsage {
                            input_tokens: meter.prompt_tokens,
                            output_tokens: gateway_core::accounting::estimate_tokens(
                                &answer.content,
                            ),
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
                    Ok(Metered {
                        value: answer,
                        cost,
                        retries,
                    })
                }
                Err(error) => {
                    meter
                        .settle(meter.record(
                            TokenUsage::default(),
                            false,
                            Some(&error),
                            false,
                            retries,
                            None,
                        ))
                        .await;
                    Err(error)
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Streams an answer for `ctx`'s caller, checked against the plan before the provider is
    /// called. The usage is settled when the stream ends, breaks off, or is dropped (a client
    /// that disconnects is charged for what was produced).
    ///
    /// Only the start of the stream is retried (up to the first byte); an error item in the
    /// stream is final.
    pub async fn stream_with(&self, ctx: &CallContext, mut req: TextRequest) -> Result<TextStream> {
        let route = self.route_text(&req.model)?;
        let caps = route.text.capabilities_dyn();
        if !caps.streaming {
            return Err(Error::unsupported(format!(
                "provider `{}` does not stream",
                route.provider
            )));
        }
        caps.check(route.provider, &req)?;
        req.model = route.model.clone();
        let span = tracing::info_span!("gateway.stream", request_id = %ctx.request_id, provider = route.provider, model = %route.model);
        async {
            let meter = self.admit(ctx, route.provider, &req, "chat.stream").await?;
            let (result, retries) = self
                .with_retries(|| route.text.stream_dyn(req.clone()))
                .await;
            match result {
                Ok(stream) => Ok(MeteredStream::new(stream, meter, retries).boxed()),
                Err(error) => {
                    meter
                        .settle(meter.record(
                            TokenUsage::default(),
                            false,
                            Some(&error),
                            false,
                            retries,
                            None,
                        ))
                        .await;
                    Err(error)
                }
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
        })
    }

    /// Runs `attempt` until it succeeds or the policy gives up; also returns the retries made.
    async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> (Result<T>, u32)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut retry = 0;
        loop {
            match attempt().await {
                Ok(value) => return (Ok(value), retry),
                Err(error) => match self.retry.delay(retry, &error) {
                    Some(wait) => {
                        tracing::warn!(
                            provider = error.provider(),
                            error = %error,
                            retry = retry + 1,
                            wait_ms = wait.as_millis() as u64,
                            "retrying provider call"
                        );
                        tokio::time::sleep(wait).await;
                        retry += 1;
                    }
                    None => return (Err(error), retry),
                },
            }
        }
    }
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
