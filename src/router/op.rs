//! The per-modality adapter the attempt loop is generic over.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use gateway_core::{Amount, Cost, OpenOutput, PriceCatalog, Registry, Result, RouteId, Service};

use crate::metering::Pricer;

/// What a request is expected to use on one route, before the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Estimate {
    /// The plan amount: one request, tokens or units, and their cost when priced.
    pub(crate) amount: Amount,
    /// Set when the output has no bound the request gave (the plan's default applies).
    pub(crate) open_output: Option<OpenOutput>,
    /// The prompt (input) tokens alone, for a usage counted locally.
    pub(crate) prompt_tokens: u64,
}

impl Estimate {
    /// Whether the route's price is known.
    pub(crate) fn priced(&self) -> bool {
        self.amount.cost.is_some()
    }
}

/// One modality's part of the attempt loop: everything that differs between chat, embeddings,
/// images and the rest. Retries, fallbacks, deadlines, breakers, rate limits, admission and
/// settlement are the loop's, the same for all.
pub(crate) trait Operation: Sync {
    /// The provider trait object the registry holds for this service.
    type Model: ?Sized + Send + Sync + 'static;
    /// The request (with the caller's model name; the loop calls with each route's model id).
    type Request: Send + Sync;
    /// What a successful call returns.
    type Output: Send + 'static;

    /// The service, which names the registry map and the plan modality.
    const SERVICE: Service;

    /// Prices a call's usage on its serving route.
    const PRICER: Pricer;

    /// The operation as usage logs name it (`chat`, `chat.stream`, `embeddings`).
    fn name(&self) -> &'static str;

    /// The provider of this service with id `provider`, if registered.
    fn model(&self, registry: &Registry, provider: &str) -> Option<Arc<Self::Model>>;

    /// Refuses, before any IO, a request `model` cannot serve: `Unsupported` moves on to the
    /// next route, `InvalidRequest` ends the request.
    fn check(&self, model: &Self::Model, route: &RouteId, req: &Self::Request) -> Result<()>;

    /// What `req` is expected to use on `route` (served by `model`), priced with `pricing`.
    fn estimate(
        &self,
        model: &Self::Model,
        req: &Self::Request,
        route: &RouteId,
        pricing: &PriceCatalog,
    ) -> Estimate;

    /// Calls `model` with `req` addressed to `route`'s model id.
    fn call(
        &self,
        model: Arc<Self::Model>,
        route: &RouteId,
        req: &Self::Request,
    ) -> BoxFuture<'static, Result<Self::Output>>;
}

/// Prices token usage with the route's token rates (`[[text]]`, or `[[unit]]` token entries).
pub(crate) fn token_cost(
    pricing: &PriceCatalog,
    route: &RouteId,
    usage: &gateway_core::Usage,
) -> Option<Cost> {
    pricing.token_cost(route.provider, &route.model, &usage.tokens, &[])
}
