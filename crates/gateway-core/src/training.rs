//! Fine-tuning: training a LoRA on a base model family, as a long job ([`crate::job`]), and the
//! model that serves images with the trained LoRA.
//!
//! A provider's trainer is named by its base family (`flux-dev` for WaveSpeed's
//! `wavespeed-ai/flux-dev-lora-trainer`); the trained weights come back as a URL the gateway
//! copies into its own storage, and [`TrainingModel::lora_model`] says which of the provider's
//! image models takes them (`loras: [{path, scale}]`).

use std::future::Future;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use crate::job::{JobId, JobStatus};
use crate::{Billing, Charge, Cost, Error, MediaInput, PriceUnit, Result};

/// A training request, addressed to one provider's base family (after routing).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TrainingRequest {
    /// The provider's base family id (`flux-dev`).
    pub model: String,
    /// The training data: a zip of images with optional `.txt` captions, as a URL the provider
    /// can fetch, or bytes the provider uploads to its own storage first.
    pub data: MediaInput,
    /// The word that calls up what was trained, in prompts.
    pub trigger_word: Option<String>,
    /// The trainer's own options (steps, rank, learning rate, ...); a provider refuses one it
    /// does not know or a value out of its range, naming it.
    pub options: Map<String, Value>,
}

impl TrainingRequest {
    /// A request to train `model` on `data`.
    pub fn new(model: impl Into<String>, data: MediaInput) -> Self {
        Self {
            model: model.into(),
            data,
            trigger_word: None,
            options: Map::new(),
        }
    }
}

/// A finished training run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TrainingOutput {
    /// Where the trained weights are (a provider URL, usually temporary).
    pub weights_url: String,
    /// What the run billed: its steps (plan units) and their cost.
    pub billing: Billing,
}

impl TrainingOutput {
    /// Weights at `weights_url`, billed `billing`.
    pub fn new(weights_url: impl Into<String>, billing: Billing) -> Self {
        Self {
            weights_url: weights_url.into(),
            billing,
        }
    }
}

/// The image model that serves a family's trained LoRAs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoraModel {
    /// The provider's image model id (`wavespeed-ai/flux-dev-lora`).
    pub model: String,
    /// How many LoRAs one request may carry.
    pub max_loras: u32,
}

impl LoraModel {
    /// `model`, taking up to `max_loras` LoRAs.
    pub fn new(model: impl Into<String>, max_loras: u32) -> Self {
        Self {
            model: model.into(),
            max_loras,
        }
    }
}

/// What `steps` training steps are expected to bill: the steps as plan units and as one charge.
pub fn per_step_billing(steps: u64) -> Billing {
    Billing::new(steps, vec![Charge::new(PriceUnit::TrainingStep, steps)])
}

/// A provider of fine-tuning.
///
/// `submit_training` must not be retried blindly: a second submit after a timeout may train
/// (and bill) twice. Polling is safe to repeat.
pub trait TrainingModel: Send + Sync {
    /// The provider id.
    fn provider(&self) -> &'static str;

    /// Refuses, before any IO and naming the field, a run the trainer cannot do: an unknown
    /// family, an option the trainer does not have or a value out of its range.
    fn check_training(&self, req: &TrainingRequest) -> Result<()>;

    /// What the run is expected to bill, for admission before the submit: its steps (the
    /// trainer's default when none is asked) priced by the catalog.
    fn training_billing(&self, req: &TrainingRequest) -> Billing;

    /// The provider's own price for this run, asked before the submit (`None` when the provider
    /// has no quote, and the catalog prices it). A quote is a read: safe to repeat.
    fn quote_training(
        &self,
        req: &TrainingRequest,
    ) -> impl Future<Output = Result<Option<Cost>>> + Send {
        let _ = req;
        async { Ok(None) }
    }

    /// Starts a run (uploading bytes of training data to the provider first).
    fn submit_training(&self, req: TrainingRequest) -> impl Future<Output = Result<JobId>> + Send;

    /// Asks once where the run is.
    fn poll_training(
        &self,
        job: &JobId,
    ) -> impl Future<Output = Result<JobStatus<TrainingOutput>>> + Send;

    /// Cancels the run. The default refuses: few providers can.
    fn cancel_training(&self, job: &JobId) -> impl Future<Output = Result<()>> + Send {
        let provider = self.provider();
        let job = job.clone();
        async move {
            Err(Error::unsupported(format!(
                "provider `{provider}` cannot cancel a training job (`{job}`): it runs to its end"
            )))
        }
    }

    /// The image model that takes LoRAs trained on `family`, if the provider serves one.
    fn lora_model(&self, family: &str) -> Option<LoraModel>;
}

/// The object-safe twin of [`TrainingModel`].
pub trait DynTrainingModel: Send + Sync {
    /// See [`TrainingModel::provider`].
    fn provider_dyn(&self) -> &'static str;
    /// See [`TrainingModel::check_training`].
    fn check_training_dyn(&self, req: &TrainingRequest) -> Result<()>;
    /// See [`TrainingModel::training_billing`].
    fn training_billing_dyn(&self, req: &TrainingRequest) -> Billing;
    /// See [`TrainingModel::quote_training`].
    fn quote_training_dyn<'a>(
        &'a self,
        req: &'a TrainingRequest,
    ) -> BoxFuture<'a, Result<Option<Cost>>>;
    /// See [`TrainingModel::submit_training`].
    fn submit_training_dyn(&self, req: TrainingRequest) -> BoxFuture<'_, Result<JobId>>;
    /// See [`TrainingModel::poll_training`].
    fn poll_training_dyn<'a>(
        &'a self,
        job: &'a JobId,
    ) -> BoxFuture<'a, Result<JobStatus<TrainingOutput>>>;
    /// See [`TrainingModel::cancel_training`].
    fn cancel_training_dyn<'a>(&'a self, job: &'a JobId) -> BoxFuture<'a, Result<()>>;
    /// See [`TrainingModel::lora_model`].
    fn lora_model_dyn(&self, family: &str) -> Option<LoraModel>;
}

impl<T: TrainingModel> DynTrainingModel for T {
    fn provider_dyn(&self) -> &'static str {
        self.provider()
    }

    fn check_training_dyn(&self, req: &TrainingRequest) -> Result<()> {
        self.check_training(req)
    }

    fn training_billing_dyn(&self, req: &TrainingRequest) -> Billing {
        self.training_billing(req)
    }

    fn quote_training_dyn<'a>(
        &'a self,
        req: &'a TrainingRequest,
    ) -> BoxFuture<'a, Result<Option<Cost>>> {
        Box::pin(self.quote_training(req))
    }

    fn submit_training_dyn(&self, req: TrainingRequest) -> BoxFuture<'_, Result<JobId>> {
        Box::pin(self.submit_training(req))
    }

    fn poll_training_dyn<'a>(
        &'a self,
        job: &'a JobId,
    ) -> BoxFuture<'a, Result<JobStatus<TrainingOutput>>> {
        Box::pin(self.poll_training(job))
    }

    fn cancel_training_dyn<'a>(&'a self, job: &'a JobId) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.cancel_training(job))
    }

    fn lora_model_dyn(&self, family: &str) -> Option<LoraModel> {
        self.lora_model(family)
    }
}
