//! The response cache's step of a request: decided before the attempt loop, looked up (by the
//! exact request, then by meaning), a hit admitted and logged like any call (the plan must
//! allow the route the answer came from), and an answer kept after the loop when allowed.

use std::time::Duration;

use gateway_core::{
    Amount, CacheHit, Cost, EmbeddingRequest, ErrorKind, Modality, Result, RouteId, Usage,
    UsageRecord,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Gateway;
use super::op::Estimate;
use crate::cache::{
    CacheStatus, Decision, ENTRY_VERSION, Entry, Kind, Plan, SemanticEntry, now_ms, unit,
};
use crate::metering::{CallContext, End, Metered};
use crate::routing::chain;
use crate::trace::Trace;

/// An answer found in the cache.
pub(crate) struct Found<T> {
    pub(crate) value: T,
    pub(crate) route: RouteId,
    pub(crate) saved: Option<Cost>,
    pub(crate) status: CacheStatus,
}

/// The cache's part of one request, carried from the lookup to the write.
pub(crate) struct Step {
    pub(crate) plan: Option<Plan>,
    /// What the lookup found out, for the answer's header.
    pub(crate) status: CacheStatus,
    /// The embedding of the last user turn, once computed.
    vector: Option<Vec<f32>>,
}

impl Step {
    fn without(status: CacheStatus) -> Self {
        Self {
            plan: None,
            status,
            vector: None,
        }
    }
}

impl<T> Found<T> {
    /// The same find with its answer turned into another type.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Found<U> {
        Found {
            value: f(self.value),
            route: self.route,
            saved: self.saved,
            status: self.status,
        }
    }
}

impl Gateway {
    /// The step of a request the cache leaves out whatever is configured (a media request
    /// without a seed): `skip` when a cache is configured.
    pub(crate) fn cache_step_skipped(&self) -> Step {
        Step::without(match self.cache {
            Some(_) => CacheStatus::Skip,
            None => CacheStatus::Unused,
        })
    }

    /// How a request of `kind` for `model` uses the cache; `request` is the request as its key
    /// covers it, `semantic` (chat) gives the request without its last user turn and that
    /// turn's text. Nothing is written out for the key unless the request uses the cache.
    pub(crate) fn cache_step(
        &self,
        kind: Kind,
        ctx: &CallContext,
        model: &str,
        request: &impl Serialize,
        semantic: impl FnOnce() -> Option<(serde_json::Value, String)>,
    ) -> Result<Step> {
        let Some(cache) = &self.cache else {
            return Ok(Step::without(CacheStatus::Unused));
        };
        // An alias's routes as a set: its order may be drawn by weight per request.
        let routes = || {
            let routes = chain(&self.aliases, model, &ctx.fallbacks, |m| self.route(m)).ok()?;
            let mut names: Vec<String> = routes.iter().map(ToString::to_string).collect();
            names.sort();
            Some(names)
        };
        let without_model = |mut value: serde_json::Value| {
            if let Some(object) = value.as_object_mut() {
                object.remove("model");
            }
            value
        };
        let request = || serde_json::to_value(request).ok().map(without_model);
        let semantic = || semantic().map(|(rest, text)| (without_model(rest), text));
        Ok(
            match cache.decide(kind, model, ctx, routes, request, semantic)? {
                Decision::Unused => Step::without(CacheStatus::Unused),
                Decision::Skip => Step::without(CacheStatus::Skip),
                Decision::Use(plan) => Step {
                    plan: Some(plan),
                    status: CacheStatus::Miss,
                    vector: None,
                },
            },
        )
    }

    /// Reports a lookup's outcome to the observer.
    fn cache_outcome(&self, operation: &'static str, outcome: &'static str) {
        if let Some(observer) = &self.telemetry.observer {
            observer.cache_lookup(operation, outcome);
        }
    }

    /// Looks the answer up: by the exact request, then (when planned) by the meaning of the
    /// last user turn. `None` when nothing fit (the step's status then says why).
    pub(crate) async fn cache_lookup<T: DeserializeOwned>(
        &self,
        step: &mut Step,
        ctx: &CallContext,
        operation: &'static str,
    ) -> Option<Found<T>> {
        let (Some(cache), Some(plan)) = (&self.cache, &step.plan) else {
            if step.status == CacheStatus::Skip {
                self.cache_outcome(operation, "skip");
            }
            return None;
        };
        if !plan.read {
            // A refresh: the provider answers and the answer is kept, as on a miss.
            self.cache_outcome(operation, "miss");
            return None;
        }
        let Some(exact) = cache.within("get", cache.backend.get(&plan.key)).await else {
            step.status = CacheStatus::Unavailable;
            self.cache_outcome(operation, "unavailable");
            return None;
        };
        if let Some(found) = exact.and_then(|bytes| self.parse_entry(&bytes, plan, None)) {
            step.status = found.status;
            self.cache_outcome(operation, "hit");
            return Some(found);
        }
        let Some((group, text)) = &plan.semantic else {
            self.cache_outcome(operation, "miss");
            return None;
        };
        let Some(vector) = self.cache_embedding(ctx, text).await else {
            step.status = CacheStatus::Unavailable;
            self.cache_outcome(operation, "unavailable");
            return None;
        };
        let nearest = cache
            .within(
                "nearest",
                cache.backend.nearest(&plan.namespace, group, &vector),
            )
            .await;
        step.vector = Some(vector);
        let Some(nearest) = nearest else {
            step.status = CacheStatus::Unavailable;
            self.cache_outcome(operation, "unavailable");
            return None;
        };
        let threshold = cache.config.semantic.threshold;
        if let Some(near) = nearest.filter(|n| n.similarity >= threshold)
            && let Some(Some(bytes)) = cache.within("get", cache.backend.get(&near.key)).await
            && let Some(found) = self.parse_entry(&bytes, plan, Some(near.similarity))
        {
            step.status = found.status;
            self.cache_outcome(operation, "semantic_hit");
            return Some(found);
        }
        self.cache_outcome(operation, "miss");
        None
    }

    /// The answer in `bytes`, when it is of this format, young enough, and its route still
    /// known.
    fn parse_entry<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        plan: &Plan,
        similarity: Option<f32>,
    ) -> Option<Found<T>> {
        let entry: Entry<T> = serde_json::from_slice(bytes).ok()?;
        if entry.v != ENTRY_VERSION {
            return None;
        }
        let age = Duration::from_millis(now_ms().saturating_sub(entry.created_ms));
        if plan.max_age.is_some_and(|max| age > max) {
            return None;
        }
        let route = self.route(&entry.route).ok()?;
        let status = match similarity {
            Some(similarity) => CacheStatus::SemanticHit { similarity, age },
            None => CacheStatus::Hit { age },
        };
        Some(Found {
            value: entry.value,
            route,
            saved: entry.cost_nanos.map(Cost::from_nanos),
            status,
        })
    }

    /// The unit-length embedding of `text`, through the gateway's own embeddings (the caller's
    /// plan pays for it and the call is logged under `<request id>.cache`); `None` when it
    /// failed or took longer than the semantic cache's timeout.
    async fn cache_embedding(&self, ctx: &CallContext, text: &str) -> Option<Vec<f32>> {
        let cache = self.cache.as_ref()?;
        let model = cache.config.semantic.embedding_model.as_deref()?;
        let timeout = Duration::from_millis(cache.config.semantic.timeout_ms);
        let mut embed_ctx = ctx.clone();
        embed_ctx.request_id = format!("{}.cache", ctx.request_id);
        embed_ctx.fallbacks = Vec::new();
        embed_ctx.deadline = Some(timeout);
        // The request's own cache controls are about its answer, not about this embedding.
        embed_ctx.cache = crate::cache::CacheControl::default();
        let req = EmbeddingRequest::new(model).input(text);
        match Box::pin(self.embed_with(&embed_ctx, req)).await {
            Ok(metered) => metered.value.embeddings.first().and_then(|v| unit(v)),
            Err(e) => {
                tracing::warn!(request_id = %ctx.request_id, error = %e, "the semantic cache's embedding failed: looked up by the exact request only");
                None
            }
        }
    }

    /// The cached answer of the step's request, served (admitted and logged) when the lookup
    /// finds one the caller's plan allows: the lookup's find is `stored`, turned into the answer
    /// by `answer`. `Ok(None)` when the request must go to the providers.
    pub(crate) async fn answer_from_cache<S: DeserializeOwned, T>(
        &self,
        step: &mut Step,
        ctx: &CallContext,
        trace: &Trace,
        (modality, operation): (Modality, &'static str),
        answer: impl FnOnce(S) -> T,
    ) -> Result<Option<Metered<T>>> {
        let Some(found) = self.cache_lookup::<S>(step, ctx, operation).await else {
            return Ok(None);
        };
        let hit = self
            .serve_hit(ctx, trace, found.map(answer), modality, operation)
            .await?;
        if hit.is_none() {
            step.status = CacheStatus::Miss;
        }
        Ok(hit)
    }

    /// Serves `found` to `ctx`'s caller: admitted on the route it came from (so the plan must
    /// allow that model, and a hit counts as one request when the operator counts hits), then
    /// logged as cached at no cost. `Ok(None)` when the plan does not allow the route: the
    /// request then goes to the providers like any other.
    pub(crate) async fn serve_hit<T>(
        &self,
        ctx: &CallContext,
        trace: &Trace,
        found: Found<T>,
        modality: Modality,
        operation: &'static str,
    ) -> Result<Option<Metered<T>>> {
        let count = self.cache.as_ref().is_none_or(|c| c.config.count_hits);
        let estimate = Estimate {
            amount: Amount {
                requests: u64::from(count),
                tokens: 0,
                units: 0,
                cost: Some(Cost::ZERO),
            },
            open_output: None,
            prompt_tokens: 0,
        };
        let meter = match self
            .admit_as(ctx, trace, &found.route, modality, operation, &estimate)
            .await
        {
            Ok(meter) => meter,
            Err(e) if *e.kind() == ErrorKind::PermissionDenied => return Ok(None),
            Err(e) => {
                trace.refused(Some(&found.route), &e);
                return Err(e);
            }
        };
        let end = End {
            billable: count,
            ..End::default()
        };
        let hit = CacheHit {
            semantic: matches!(found.status, CacheStatus::SemanticHit { .. }),
            saved: found.saved,
        };
        meter
            .settle(|| UsageRecord {
                cached: Some(hit),
                ..meter.record_priced(Usage::default(), end, Some(Cost::ZERO))
            })
            .await;
        Ok(Some(Metered {
            value: found.value,
            route: found.route,
            cost: Some(Cost::ZERO),
            usage: Some(Usage::default()),
            estimated: false,
            retries: 0,
            cache: found.status,
        }))
    }

    /// Keeps `value`, the answer `route` gave for `cost`, when the step allows it. The answer is
    /// written before this returns (within the cache's time budget), so the caller's next
    /// identical request finds it, and so is its semantic index entry when the lookup already
    /// embedded the question (else in the background: it needs an embedding call first).
    pub(crate) async fn cache_store<T: Serialize + Sync>(
        &self,
        step: Step,
        ctx: &CallContext,
        route: &RouteId,
        cost: Option<Cost>,
        value: &T,
    ) {
        let (Some(cache), Some(plan)) = (self.cache.clone(), step.plan) else {
            return;
        };
        if !plan.write {
            return;
        }
        let entry = Entry {
            v: ENTRY_VERSION,
            route: route.to_string(),
            created_ms: now_ms(),
            cost_nanos: cost.map(Cost::nanos),
            value,
        };
        let Ok(bytes) = serde_json::to_vec(&entry) else {
            return;
        };
        if bytes.len() > cache.config.max_entry_bytes {
            tracing::debug!(
                bytes = bytes.len(),
                "answer larger than cache.max_entry_bytes: not cached"
            );
            return;
        }
        if cache
            .within("put", cache.backend.put(&plan.key, bytes, plan.ttl))
            .await
            .is_none()
        {
            return;
        }
        let Some((group, text)) = plan.semantic else {
            return;
        };
        let remember = self.clone().remember(
            cache,
            plan.namespace,
            plan.key,
            plan.ttl,
            group,
            text,
            step.vector.clone(),
            ctx.clone(),
        );
        // With the question's vector at hand (the lookup computed it), indexing is one backend
        // call within the budget: done before returning, like the answer. Without it (a refresh
        // that skipped the lookup), the embedding call would delay the answer: done after.
        if step.vector.is_some() {
            remember.await;
        } else {
            tokio::spawn(remember);
        }
    }

    /// Indexes the answer under `key` by the meaning of `text` (embedded first, when the lookup
    /// did not). A named future type: the embedding goes through
    /// [`Gateway::embed_with`], which itself stores answers, and an opaque type here would make
    /// that cycle unprovable as `Send`.
    #[allow(clippy::too_many_arguments)]
    fn remember(
        self,
        cache: crate::cache::Cache,
        namespace: String,
        key: String,
        ttl: Duration,
        group: String,
        text: String,
        vector: Option<Vec<f32>>,
        ctx: CallContext,
    ) -> futures_util::future::BoxFuture<'static, ()> {
        Box::pin(async move {
            let vector = match vector {
                Some(vector) => Some(vector),
                None => self.cache_embedding(&ctx, &text).await,
            };
            let Some(vector) = vector else { return };
            let entry = SemanticEntry { group, vector, key };
            let max_entries = cache.config.semantic.max_entries;
            cache
                .within(
                    "remember",
                    cache.backend.remember(&namespace, entry, ttl, max_entries),
                )
                .await;
        })
    }
}
