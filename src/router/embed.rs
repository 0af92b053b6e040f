//! Embeddings through the attempt loop: planned as text tokens, priced per input token.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use gateway_core::accounting::estimate_tokens;
use gateway_core::{
    Amount, DynEmbeddingModel, EmbeddingRequest, EmbeddingResponse, Modality, PriceCatalog,
    Registry, Result, RouteId, Service, TokenUsage, Usage,
};
use tracing::Instrument;

use super::Gateway;
use super::op::{Estimate, Operation, token_cost};
use std::convert::identity;

use crate::cache::Kind;
use crate::metering::{CallContext, Metered, Pricer};

/// Embeddings (`embeddings`).
pub(crate) struct Embed;

/// The input tokens of `req`, estimated.
fn input_estimate(req: &EmbeddingRequest) -> u64 {
    req.inputs.iter().map(|t| estimate_tokens(t)).sum()
}

impl Operation for Embed {
    type Model = dyn DynEmbeddingModel;
    type Request = EmbeddingRequest;
    type Output = EmbeddingResponse;

    const SERVICE: Service = Service::Embeddings;
    const PRICER: Pricer = token_cost;

    fn name(&self) -> &'static str {
        "embeddings"
    }

    fn model(&self, registry: &Registry, provider: &str) -> Option<Arc<dyn DynEmbeddingModel>> {
        registry.embedding(provider).cloned()
    }

    fn check(
        &self,
        model: &dyn DynEmbeddingModel,
        route: &RouteId,
        req: &EmbeddingRequest,
    ) -> Result<()> {
        model
            .embedding_capabilities_dyn()
            .check(route.provider, req)
    }

    fn estimate(
        &self,
        _model: &dyn DynEmbeddingModel,
        req: &EmbeddingRequest,
        route: &RouteId,
        pricing: &PriceCatalog,
    ) -> Estimate {
        let input = input_estimate(req);
        let usage = Usage::tokens(TokenUsage {
            input_tokens: input,
            ..TokenUsage::default()
        });
        Estimate {
            amount: Amount::new(input, 0, token_cost(pricing, route, &usage)),
            open_output: None,
            prompt_tokens: input,
        }
    }

    fn call(
        &self,
        model: Arc<dyn DynEmbeddingModel>,
        route: &RouteId,
        req: &EmbeddingRequest,
    ) -> BoxFuture<'static, Result<EmbeddingResponse>> {
        let mut req = req.clone();
        req.model = String::from(&*route.model);
        Box::pin(async move { model.embed_dyn(req).await })
    }
}

impl Gateway {
    /// Embeds `req.inputs`; `req.model` is `<provider>/<model id>` or an alias.
    ///
    /// Without accounting this needs no caller; with it, use [`Gateway::embed_with`].
    pub async fn embed(&self, req: EmbeddingRequest) -> Result<EmbeddingResponse> {
        Ok(self.embed_with(&CallContext::default(), req).await?.value)
    }

    /// Embeds for `ctx`'s caller, through the same loop as chat: plan checked before any call,
    /// the chain's routes tried in order within the deadline, the usage settled after. A
    /// provider that reports no token count (Gemini's embeddings often do not) is charged for
    /// the gateway's own estimate of the input, marked as estimated.
    pub async fn embed_with(
        &self,
        ctx: &CallContext,
        req: EmbeddingRequest,
    ) -> Result<Metered<EmbeddingResponse>> {
        let trace = self.trace("embeddings", &req.model, ctx, false);
        async {
            let mut step = self.cache_step(Kind::Embeddings, ctx, &req.model, &req, || None)?;
            let what = (Modality::Text, "embeddings");
            if let Some(hit) = self
                .answer_from_cache(&mut step, ctx, &trace, what, identity::<EmbeddingResponse>)
                .await?
            {
                return Ok(hit);
            }
            let served = match self.attempt(&Embed, ctx, &trace, &req.model, &req).await {
                Ok(served) => served,
                Err(failed) => return Err(failed.settle().await),
            };
            let local = Usage::tokens(TokenUsage {
                input_tokens: served.meter.prompt_tokens,
                ..TokenUsage::default()
            });
            let reported = Usage::tokens(served.value.usage);
            let mut metered = served.settle(reported, local).await;
            metered.cache = step.status;
            self.cache_store(step, ctx, &metered.route, metered.cost, &metered.value)
                .await;
            Ok(metered)
        }
        .instrument(trace.span())
        .await
    }
}
