//! Web search through the attempt loop: planned as searches and the provider's units, priced
//! from the provider's charges (its credits, searches and pages).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use gateway_core::{
    Amount, DynSearchProvider, Modality, PriceCatalog, Registry, Result, RouteId, SearchRequest,
    SearchResponse, Service, Usage,
};
use tracing::Instrument;

use super::Gateway;
use super::op::{Estimate, Operation, unpriced_by_usage};
use std::convert::identity;

use crate::cache::Kind;
use crate::metering::{CallContext, Metered, Pricer};

/// Web search (`search`).
pub(crate) struct Search;

/// The endpoint a search model name without one goes to: `tavily` is `tavily/search`.
pub(crate) const DEFAULT_ENDPOINT: &str = "search";

impl Operation for Search {
    type Model = dyn DynSearchProvider;
    type Request = SearchRequest;
    type Output = SearchResponse;

    const SERVICE: Service = Service::Search;
    const PRICER: Pricer = unpriced_by_usage;

    fn name(&self) -> &'static str {
        "search"
    }

    fn model(&self, registry: &Registry, provider: &str) -> Option<Arc<dyn DynSearchProvider>> {
        registry.search(provider).cloned()
    }

    fn check(
        &self,
        model: &dyn DynSearchProvider,
        route: &RouteId,
        req: &SearchRequest,
    ) -> Result<()> {
        model.check_dyn(&for_route(req, route))
    }

    fn estimate(
        &self,
        model: &dyn DynSearchProvider,
        req: &SearchRequest,
        route: &RouteId,
        pricing: &PriceCatalog,
    ) -> Estimate {
        let billing = model.billing_dyn(&for_route(req, route));
        let cost = pricing.charges_cost(route.provider, &route.model, &billing.charges);
        Estimate {
            amount: Amount::new(0, billing.units, cost),
            open_output: None,
            prompt_tokens: 0,
        }
    }

    fn call(
        &self,
        model: Arc<dyn DynSearchProvider>,
        route: &RouteId,
        req: &SearchRequest,
    ) -> BoxFuture<'static, Result<SearchResponse>> {
        let req = for_route(req, route);
        Box::pin(async move { model.search_dyn(req).await })
    }
}

/// `req` addressed to `route`'s endpoint.
fn for_route(req: &SearchRequest, route: &RouteId) -> SearchRequest {
    let mut req = req.clone();
    req.model = String::from(&*route.model);
    req
}

/// A search model name as routes have it: a bare provider (`tavily`) is its search endpoint
/// (`tavily/search`); a route or an alias stays as it is.
fn with_endpoint(gateway: &Gateway, name: &str) -> String {
    if name.contains('/') || gateway.aliases.contains(name) {
        name.to_owned()
    } else {
        format!("{name}/{DEFAULT_ENDPOINT}")
    }
}

impl Gateway {
    /// Runs a web search; `req.model` names a provider (`tavily`), one of its endpoints
    /// (`serper/news`) or an alias.
    ///
    /// Without accounting this needs no caller; with it, use [`Gateway::search_with`].
    pub async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        Ok(self.search_with(&CallContext::default(), req).await?.value)
    }

    /// Runs a web search for `ctx`'s caller through the same loop as chat: the plan checked
    /// (one search and the provider's expected units) before any call, the chain's routes
    /// tried in order within the deadline (a bare provider name among `ctx`'s fallbacks is its
    /// search endpoint), and the call settled after at what the provider reported it billed.
    pub async fn search_with(
        &self,
        ctx: &CallContext,
        req: SearchRequest,
    ) -> Result<Metered<SearchResponse>> {
        let trace = self.trace("retrieval", &req.model, ctx, false);
        async {
            let model = with_endpoint(self, &req.model);
            let mut ctx = ctx.clone();
            ctx.fallbacks = ctx
                .fallbacks
                .iter()
                .map(|f| with_endpoint(self, f))
                .collect();
            let mut step = self.cache_step(Kind::Search, &ctx, &model, &req, || None)?;
            let what = (Modality::Search, "search");
            if let Some(hit) = self
                .answer_from_cache(&mut step, &ctx, &trace, what, identity::<SearchResponse>)
                .await?
            {
                return Ok(hit);
            }
            let served = match self.attempt(&Search, &ctx, &trace, &model, &req).await {
                Ok(served) => served,
                Err(failed) => return Err(failed.settle().await),
            };
            let route = served.meter.route.clone();
            let billing = &served.value.billing;
            let usage = Usage::units(billing.units);
            let cost = billing.reported_cost.or_else(|| {
                self.pricing
                    .charges_cost(route.provider, &route.model, &billing.charges)
            });
            let mut metered = served.settle_priced(usage, false, cost).await;
            metered.cache = step.status;
            self.cache_store(step, &ctx, &metered.route, metered.cost, &metered.value)
                .await;
            Ok(metered)
        }
        .instrument(trace.span())
        .await
    }
}
