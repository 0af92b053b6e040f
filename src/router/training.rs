//! Fine-tuning through the attempt loop, as a job: the caller's plan is checked for training
//! before any call, the provider quotes the run's price, the run is admitted (a reservation of
//! its steps and quoted cost), submitted once, then polled (possibly by another process after a
//! restart) and settled once when it ends, exactly as video jobs are ([`super::video`]).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use gateway_core::{
    Admission, Amount, Cost, DynTrainingModel, Error, ErrorKind, JobId, JobStatus, LoraModel,
    Modality, PriceCatalog, Registry, Reservation, Result, RouteId, Service, TrainingOutput,
    TrainingRequest, UsageRecord,
};
use tracing::Instrument;

use super::Gateway;
use super::op::{Estimate, Operation, billed_estimate, unpriced_by_usage};
use super::video::{JobCharge, JobRef};
use crate::metering::{CallContext, Pricer};

/// The operation name usage logs give a training job.
pub(crate) const OPERATION: &str = "fine_tuning.jobs";

/// A training run (`fine_tuning.jobs`): the call is the submission, priced at the provider's
/// quote when it gave one.
struct Submit {
    quote: Option<Cost>,
}

impl Operation for Submit {
    type Model = dyn DynTrainingModel;
    type Request = TrainingRequest;
    type Output = JobId;

    const SERVICE: Service = Service::Training;
    const PRICER: Pricer = unpriced_by_usage;

    fn name(&self) -> &'static str {
        OPERATION
    }

    fn model(&self, registry: &Registry, provider: &str) -> Option<Arc<dyn DynTrainingModel>> {
        registry.training(provider).cloned()
    }

    fn check(
        &self,
        model: &dyn DynTrainingModel,
        route: &RouteId,
        req: &TrainingRequest,
    ) -> Result<()> {
        model.check_training_dyn(&request_for(req, route))
    }

    fn estimate(
        &self,
        model: &dyn DynTrainingModel,
        req: &TrainingRequest,
        route: &RouteId,
        pricing: &PriceCatalog,
    ) -> Estimate {
        let mut billing = model.training_billing_dyn(&request_for(req, route));
        billing.reported_cost = self.quote.or(billing.reported_cost);
        billed_estimate(pricing, route, &billing)
    }

    fn call(
        &self,
        model: Arc<dyn DynTrainingModel>,
        route: &RouteId,
        req: &TrainingRequest,
    ) -> BoxFuture<'static, Result<JobId>> {
        let req = request_for(req, route);
        // A submit that may have created the run comes back in doubt from the provider, and the
        // loop neither retries it nor falls back.
        Box::pin(async move { model.submit_training_dyn(req).await })
    }
}

/// `req` addressed to `route`'s model id.
fn request_for(req: &TrainingRequest, route: &RouteId) -> TrainingRequest {
    let mut req = req.clone();
    req.model = String::from(&*route.model);
    req
}

/// A training run the provider accepted, with what polling and settling it later need. Keep it:
/// the reservation stays open until the run's end is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrainingSubmission {
    /// The provider's id for the run.
    pub job: JobId,
    /// The route that took it.
    pub route: RouteId,
    /// What was reserved for it (`None` without accounting): settle it once, when the run ends.
    pub reservation: Option<Reservation>,
    /// What the run is expected to bill: its steps (plan units) and their expected cost.
    pub estimate: Amount,
    /// The provider's quote, when it gave one.
    pub quote: Option<Cost>,
    /// Retries the submission took.
    pub retries: u32,
}

impl Gateway {
    /// The fine-tuning provider of `route`, or why there is none: a provider that is configured
    /// but trains nothing (the Gemini API, Stability) is a 400 naming `model`.
    fn trainer(&self, route: &RouteId) -> Result<Arc<dyn DynTrainingModel>> {
        self.registry
            .training(route.provider)
            .cloned()
            .ok_or_else(|| no_fine_tuning(route.provider))
    }

    /// Why `provider` cannot train (a 400 naming `model`, saying why for the Gemini API and
    /// Stability), or `None` when it has a fine-tuning provider registered.
    pub fn training_refusal(&self, provider: &str) -> Option<Error> {
        self.registry
            .training(provider)
            .is_none()
            .then(|| no_fine_tuning(provider))
    }

    /// Starts a training run for `ctx`'s caller: the request is checked against the trainer
    /// (family, options) before any IO, the caller's plan is asked whether it includes training
    /// on this model before the provider is (a plan without training makes no upstream call),
    /// the provider quotes the run, and the run is admitted at that price and submitted once.
    ///
    /// A quote that fails leaves the catalog's price (`training_step`) to price the run; where the
    /// catalog has none, plans that refuse unpriced models refuse it.
    pub async fn submit_training_with(
        &self,
        ctx: &CallContext,
        req: TrainingRequest,
    ) -> Result<TrainingSubmission> {
        let trace = self.trace("fine_tuning", &req.model, ctx, false);
        async {
            let route = self.route(&req.model)?;
            let model = self.trainer(&route)?;
            let routed = request_for(&req, &route);
            model.check_training_dyn(&routed)?;
            if let (Some(accounting), Some(user_id)) = (&self.accounting, &ctx.user_id) {
                accounting
                    .permits(Admission {
                        request_id: ctx.request_id.clone(),
                        user_id: user_id.clone(),
                        route: route.clone(),
                        modality: Modality::Training,
                        operation: OPERATION,
                        estimate: Amount::default(),
                        open_output: None,
                        priced: true,
                    })
                    .await?;
            }
            let quote = match model.quote_training_dyn(&routed).await {
                Ok(quote) => quote,
                Err(e) if e.is_retryable() || *e.kind() == ErrorKind::Auth => return Err(e),
                Err(e) => {
                    tracing::warn!(route = %route, error = %e, "the provider gave no quote for a training run; the catalog prices it");
                    None
                }
            };
            let op = Submit { quote };
            let served = match self.attempt(&op, ctx, &trace, &req.model, &req).await {
                Ok(served) => served,
                Err(failed) => return Err(failed.settle().await),
            };
            let meter = served.meter;
            let estimate = meter
                .reservation
                .as_ref()
                .map(|r| r.estimate)
                .unwrap_or_else(|| {
                    op.estimate(model.as_ref(), &req, &meter.route, &self.pricing)
                        .amount
                });
            Ok(TrainingSubmission {
                job: served.value,
                route: meter.route.clone(),
                reservation: meter.reservation.clone(),
                estimate,
                quote,
                retries: served.retries,
            })
        }
        .instrument(trace.span())
        .await
    }

    /// Asks `route`'s provider once where training run `job` is. Polling only reads, so a caller
    /// may ask again after any error; the run's end is charged with [`Gateway::training_record`].
    pub async fn poll_training_with(
        &self,
        route: &RouteId,
        job: &JobId,
    ) -> Result<JobStatus<TrainingOutput>> {
        let Some(model) = self.registry.training(route.provider) else {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "provider `{}` does not train here any more: job `{job}` cannot be polled",
                    route.provider
                ),
            ));
        };
        model.poll_training_dyn(job).await
    }

    /// Asks `route`'s provider to cancel run `job`; most cannot (an `Unsupported` error).
    pub async fn cancel_training_with(&self, route: &RouteId, job: &JobId) -> Result<()> {
        self.trainer(route)?.cancel_training_dyn(job).await
    }

    /// The image model that serves LoRAs trained on `route` (a provider and base family).
    pub fn lora_model(&self, route: &RouteId) -> Result<LoraModel> {
        self.trainer(route)?
            .lora_model_dyn(&route.model)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Unsupported,
                    format!("`{route}` has no image model that takes its LoRAs"),
                )
            })
    }

    /// The usage record (and cost) of a run that ended with `status`: a completed run is charged
    /// what its provider billed (its steps as plan units, at the cost the provider reported,
    /// else at `quote`, the price it gave before the submit, else at the catalog's price); a
    /// failed one nothing; `None` while it runs.
    pub fn training_record(
        &self,
        job: &JobRef<'_>,
        status: &JobStatus<TrainingOutput>,
        quote: Option<Cost>,
    ) -> Option<JobCharge> {
        let billing;
        let end = match status {
            JobStatus::Completed(output) => {
                let mut billed = output.billing.clone();
                billed.reported_cost = billed.reported_cost.or(quote);
                billing = billed;
                Ok(&billing)
            }
            JobStatus::Failed(error) => Err(error),
            _ => return None,
        };
        Some(self.job_record(job, Modality::Training, OPERATION, end))
    }

    /// Tells the gateway's observer (metrics) that a training run ended and was settled with
    /// `record`, once, by whoever settled it.
    pub fn report_training_end(&self, request_model: &str, record: &UsageRecord) {
        self.report_job_end("fine_tuning", request_model, record);
    }
}

/// The 400 for a provider that offers no fine-tuning.
fn no_fine_tuning(provider: &str) -> Error {
    let why = match provider {
        "gemini" => {
            ": the Gemini API has had no tunable model since May 2025 \
             (https://ai.google.dev/gemini-api/docs/model-tuning)"
        }
        "stability" => ": Stability AI's API has no fine-tuning endpoint",
        _ => "",
    };
    Error::invalid_request(format!(
        "provider `{provider}` offers no fine-tuning{why}; WaveSpeed trains LoRAs (`wavespeed/flux-dev`)"
    ))
    .with_param("model")
}

#[cfg(test)]
mod tests;
