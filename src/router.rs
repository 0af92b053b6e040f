//! Routing by model name, retries with backoff, and per-request tracing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gateway_core::{
    DynTextModel, Error, ErrorKind, Registry, Result, TextRequest, TextResponse, TextStream,
};
use tracing::Instrument;

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

/// The router: configured providers, model-name routing, retries.
#[derive(Debug, Clone)]
pub struct Gateway {
    registry: Arc<Registry>,
    retry: RetryPolicy,
}

impl Gateway {
    /// A gateway over `registry` with the default [`RetryPolicy`].
    pub fn new(registry: Registry) -> Self {
        Self {
            registry: Arc::new(registry),
            retry: RetryPolicy::default(),
        }
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
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
    pub async fn generate(&self, mut req: TextRequest) -> Result<TextResponse> {
        let route = self.route_text(&req.model)?;
        route.text.capabilities_dyn().check(route.provider, &req)?;
        req.model = route.model.clone();
        let span = tracing::info_span!("gateway.generate", provider = route.provider, model = %route.model);
        self.with_retries(|| route.text.generate_dyn(req.clone()))
            .instrument(span)
            .await
    }

    /// Streams an answer; `req.model` is `<provider>/<model id>`.
    ///
    /// Only the start of the stream is retried (up to the first byte); an error item in the
    /// stream is final.
    pub async fn stream(&self, mut req: TextRequest) -> Result<TextStream> {
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
        let span =
            tracing::info_span!("gateway.stream", provider = route.provider, model = %route.model);
        self.with_retries(|| route.text.stream_dyn(req.clone()))
            .instrument(span)
            .await
    }

    async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut retry = 0;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
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
                    None => return Err(error),
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
