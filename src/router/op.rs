//! The per-modality adapter the attempt loop is generic over.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use gateway_core::{
    Amount, Billing, Cost, OpenOutput, PriceCatalog, Registry, Result, RouteId, Service,
    TokenUsage, Usage,
};

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

    /// [`Operation::call`] with the output bounded to `output_bound` per answer, when the
    /// reservation gave one (the request set none, and the plan limits what output costs): the
    /// provider is told the bound, so what comes back cannot pass what was reserved. Operations
    /// whose output is not counted in tokens ignore it.
    fn call_bounded(
        &self,
        model: Arc<Self::Model>,
        route: &RouteId,
        req: &Self::Request,
        output_bound: Option<u64>,
    ) -> BoxFuture<'static, Result<Self::Output>> {
        let _ = output_bound;
        self.call(model, route, req)
    }
}

/// Prices token usage with the route's token rates (`[[text]]`, or `[[unit]]` token entries).
pub(crate) fn token_cost(
    pricing: &PriceCatalog,
    route: &RouteId,
    usage: &gateway_core::Usage,
) -> Option<Cost> {
    pricing.token_cost(route.provider, &route.model, &usage.tokens, &[])
}

/// The pricer of the operations priced from the provider's charges ([`billed_cost`]) rather than
/// from a usage count: nothing to price from usage alone.
pub(crate) fn unpriced_by_usage(_: &PriceCatalog, _: &RouteId, _: &Usage) -> Option<Cost> {
    None
}

/// What `billing` costs on `route`: the provider's own figure when it reported one, else the
/// catalog's price of its charges (`None` when any charge has no price).
pub(crate) fn billed_cost(
    pricing: &PriceCatalog,
    route: &RouteId,
    billing: &Billing,
) -> Option<Cost> {
    billing
        .reported_cost
        .or_else(|| pricing.charges_cost(route.provider, &route.model, &billing.charges))
}

/// The estimate of a call expected to bill `billing`: one request of its units, at its cost.
pub(crate) fn billed_estimate(
    pricing: &PriceCatalog,
    route: &RouteId,
    billing: &Billing,
) -> Estimate {
    Estimate {
        amount: Amount::new(0, billing.units, billed_cost(pricing, route, billing)),
        open_output: None,
        prompt_tokens: 0,
    }
}

/// What a call that billed `billing` (and reported `tokens`) settles at: its units and tokens,
/// and their cost.
pub(crate) fn billed(
    pricing: &PriceCatalog,
    route: &RouteId,
    billing: &Billing,
    tokens: TokenUsage,
) -> (Usage, Option<Cost>) {
    let usage = Usage {
        tokens,
        units: billing.units,
    };
    (usage, billed_cost(pricing, route, billing))
}
