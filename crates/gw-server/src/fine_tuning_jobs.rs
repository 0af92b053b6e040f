//! Fine-tuning jobs in flight, as [`crate::video_jobs`] follows videos: one step of a job (ask
//! its provider once, record what it said, and at its end copy the trained LoRA into the
//! gateway's media storage and settle the job exactly once), shared by
//! `GET /v1/fine_tuning/jobs/{id}` and the background poller, which advances every unfinished
//! job on whichever replica takes its lease, after a restart included.
//!
//! Also what makes a fine-tuned model usable by name: an image request for
//! `ft:<provider>/<family>:<suffix>:<job id>` runs the family's LoRA model with the stored LoRA,
//! for the job's owner only.

use std::time::Duration;

use gw_store::{FineTuningEnd, FineTuningJob, FineTuningStatus, JobError, NewFile, Store};
use llm_gateway::http::UrlOrigin;
use llm_gateway::{ErrorKind, Gateway, ImageRequest, JobId, JobRef, JobStatus, TrainingOutput};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;
use crate::media::Media;
use crate::routes::files::FINE_TUNE_RESULTS;

/// How long a provider's own URL of trained weights is trusted to work: WaveSpeed keeps its
/// outputs 7 days ("a temporary storage URL that is valid for 7 days",
/// <https://doc.wavespeed.ai/docs-api/wan-14b-trainer>); a day less, to be safe.
const PROVIDER_URL_LIFETIME: Duration = Duration::from_secs(6 * 24 * 3600);

/// The model id a finished job's LoRA is used by:
/// `ft:<provider>/<family>:<suffix>:<job id>`, or `ft:<provider>/<family>:<job id>` without a
/// suffix (OpenAI's `ft:<base>:<org>:<suffix>:<id>`, with the route for the base and no org).
pub(crate) fn fine_tuned_model(job: &FineTuningJob) -> String {
    match job.suffix.as_deref().filter(|s| !s.is_empty()) {
        Some(suffix) => format!("ft:{}:{suffix}:{}", job.route_name(), job.id),
        None => format!("ft:{}:{}", job.route_name(), job.id),
    }
}

/// Where `job`'s trained LoRA is kept in the media storage.
fn weights_key(job: &FineTuningJob) -> String {
    format!("loras/{}.safetensors", job.id)
}

/// Asks `job`'s provider once where it is and records the answer: its status for a job still
/// running; for one that ended, its LoRA copied and its end settled exactly once (whichever
/// replica sees it first). A poll or a copy that fails is logged and changes nothing (the job is
/// asked again later), except a provider that no longer knows the job: it failed. Returns the job
/// as stored afterwards.
pub(crate) async fn advance(state: &AppState, job: FineTuningJob) -> FineTuningJob {
    let (Some(store), Some(media)) = (state.store(), state.media()) else {
        return job;
    };
    if job.settled {
        return job;
    }
    let gateway = state.gateway();
    let route = match gateway.route(&job.route_name()) {
        Ok(route) => route,
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "a fine-tuning job's route is unknown here");
            return job;
        }
    };
    let provider_job = JobId(job.provider_job_id.clone());
    let status = match gateway.poll_training_with(&route, &provider_job).await {
        Ok(status) => status,
        Err(e) if *e.kind() == ErrorKind::NotFound => JobStatus::Failed(e),
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "polling a fine-tuning job failed; it is asked again later");
            return job;
        }
    };
    let recorded = match &status {
        JobStatus::Queued => store
            .update_fine_tuning_job(&job.id, FineTuningStatus::Queued, None)
            .await
            .map(drop),
        JobStatus::InProgress { progress } => {
            let message = progress.map(|p| format!("Training: {p}% done"));
            store
                .update_fine_tuning_job(&job.id, FineTuningStatus::Running, message.as_deref())
                .await
                .map(drop)
        }
        JobStatus::Completed(output) => {
            // Kept first: the provider's URL serves the LoRA while it lasts, should no link to
            // the stored copy be possible.
            let _ = store
                .set_fine_tuning_weights(&job.id, &output.weights_url)
                .await;
            match keep_weights(state, store, media, &route, &job, output).await {
                Ok(kept) => finish(gateway, store, &job, &route, &status, Some(kept)).await,
                Err(e) => {
                    // The provider keeps the weights for days: the next poll copies them again.
                    tracing::warn!(job = %job.id, error = %e, "a trained LoRA could not be copied; trying again later");
                    store
                        .update_fine_tuning_job(
                            &job.id,
                            FineTuningStatus::Running,
                            Some("Training done; copying the trained weights"),
                        )
                        .await
                        .map(drop)
                }
            }
        }
        _ => finish(gateway, store, &job, &route, &status, None).await,
    };
    if let Err(e) = recorded {
        tracing::warn!(job = %job.id, error = %e, "a fine-tuning job's state could not be stored");
    }
    match store.fine_tuning_job_by_id(&job.id).await {
        Ok(Some(stored)) => stored,
        _ => job,
    }
}

/// A LoRA copied into the media storage: its key and the result file that lists it.
struct Kept {
    key: String,
    file: String,
}

/// Copies the weights of a finished run from the provider's URL into the media storage and
/// lists them as a `fine-tune-results` file of the job's owner.
async fn keep_weights(
    state: &AppState,
    store: &Store,
    media: &Media,
    route: &llm_gateway::RouteId,
    job: &FineTuningJob,
    output: &TrainingOutput,
) -> Result<Kept, String> {
    let downloader = state
        .video_jobs()
        .weights_downloader(route.provider)
        .ok_or("no downloader for trained weights")?;
    let (data, _) = downloader
        .download(&output.weights_url, UrlOrigin::Provider(route.provider))
        .await
        .map_err(|e| e.to_string())?;
    let key = weights_key(job);
    let bytes = data.len() as u64;
    media.put(&key, data).await.map_err(|e| e.message)?;
    let file = store
        .create_file(NewFile {
            user_id: job.user_id.clone(),
            purpose: FINE_TUNE_RESULTS.into(),
            filename: format!("{}.safetensors", job.id),
            bytes,
            content_type: "application/octet-stream".into(),
            storage_key: Some(key.clone()),
            url: None,
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(Kept { key, file: file.id })
}

/// Records the end of `job` and settles it, once.
async fn finish(
    gateway: &Gateway,
    store: &Store,
    job: &FineTuningJob,
    route: &llm_gateway::RouteId,
    status: &JobStatus<TrainingOutput>,
    kept: Option<Kept>,
) -> llm_gateway::Result<()> {
    // The quote the run was admitted at is what it costs, unless the provider reports a cost.
    let charge = gateway.training_record(
        &JobRef {
            request_id: &job.request_id,
            user_id: &job.user_id,
            route,
            age: job.age(),
            retries: job.retries,
        },
        status,
        job.estimate,
    );
    let cost = charge.as_ref().and_then(|c| c.cost);
    let end = match status {
        JobStatus::Completed(output) => FineTuningEnd {
            status: FineTuningStatus::Succeeded,
            weights_key: kept.as_ref().map(|k| k.key.clone()),
            result_file: kept.as_ref().map(|k| k.file.clone()),
            fine_tuned_model: Some(fine_tuned_model(job)),
            error: None,
            cost,
            steps: Some(output.billing.units).filter(|s| *s > 0),
        },
        JobStatus::Failed(error) => FineTuningEnd {
            status: FineTuningStatus::Failed,
            weights_key: None,
            result_file: None,
            fine_tuned_model: None,
            error: Some(JobError {
                code: error.kind().as_str().to_owned(),
                message: error.message().to_owned(),
            }),
            cost,
            steps: None,
        },
        _ => return Ok(()),
    };
    let record = charge.map(|c| c.record);
    if store
        .finish_fine_tuning_job(&job.id, &end, record.clone())
        .await?
    {
        tracing::info!(job = %job.id, status = end.status.as_str(), "fine-tuning job ended");
        if let Some(record) = &record {
            gateway.report_training_end(&job.route_name(), record);
        }
    }
    Ok(())
}

/// How many jobs one round of the poller takes at most.
const ROUND: u32 = 100;

/// One round of the poller: each due job whose lease this instance gets (for `lease`, while it
/// asks) is advanced once; one still running is then held for `every` more.
pub(crate) async fn poll_due(state: &AppState, lease: Duration, every: Duration) {
    let Some(store) = state.store() else {
        return;
    };
    let due = match store.fine_tuning_jobs_due(ROUND).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the fine-tuning jobs due");
            return;
        }
    };
    for job in due {
        // Not while an owner's request of this process advances it.
        let Some(_advancing) = crate::video_jobs::Advancing::take(&job.id) else {
            continue;
        };
        match store.claim_fine_tuning_job(&job.id, lease).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "cannot take a fine-tuning job's lease");
                continue;
            }
        }
        let id = job.id.clone();
        let after = advance(state, job).await;
        if !after.settled {
            let _ = store.claim_fine_tuning_job(&id, every).await;
        }
    }
}

/// The image request `req` for a fine-tuned model (`ft:...`) of `user_id`: addressed to the
/// LoRA model of the job's base family, with the job's LoRA (at `options.lora_scale`, default 1)
/// ahead of any the caller added in `options.loras`. A model id that is not one of the caller's
/// succeeded jobs is a 404, as an unknown model is.
pub(crate) async fn lora_request(
    state: &AppState,
    user_id: &str,
    mut req: ImageRequest,
) -> Result<ImageRequest, ApiError> {
    let model = req.model.clone();
    let unknown = || {
        ApiError::not_found(format!(
            "the model `{model}` does not exist, or is not yours"
        ))
        .with_code("model_not_found")
    };
    let (Some(store), Some(media)) = (state.store(), state.media()) else {
        return Err(unknown());
    };
    let job_id = model.rsplit(':').next().unwrap_or_default();
    let job = store
        .fine_tuning_job(job_id, user_id)
        .await?
        .ok_or_else(unknown)?;
    if job.fine_tuned_model.as_deref() != Some(model.as_str()) {
        return Err(unknown());
    }
    let route = state.gateway().route(&job.route_name())?;
    let lora = state.gateway().lora_model(&route)?;
    let link = match &job.weights_key {
        Some(key) => media.link(key).await?,
        None => None,
    };
    let path = match link {
        Some(link) => link,
        None => match (&job.weights_url, job.finished_at) {
            (Some(url), Some(at))
                if crate::app::RequestContext::unix_now().saturating_mul(1000)
                    < (at as u64).saturating_add(PROVIDER_URL_LIFETIME.as_millis() as u64) =>
            {
                url.clone()
            }
            _ => {
                return Err(ApiError::unavailable(format!(
                    "the LoRA of `{model}` is stored here, but the provider cannot be given a link to it: set [media] public_url (the gateway's address as providers reach it) or an S3 bucket"
                )));
            }
        },
    };
    let scale = match req.options.remove("lora_scale") {
        None => json!(1.0),
        Some(Value::Number(n)) => Value::Number(n),
        Some(_) => {
            return Err(ApiError::invalid(
                Some("options.lora_scale".into()),
                "`lora_scale` must be a number",
            ));
        }
    };
    let mut loras = vec![json!({"path": path, "scale": scale})];
    match req.options.remove("loras") {
        None => {}
        Some(Value::Array(more)) => loras.extend(more),
        Some(_) => {
            return Err(ApiError::invalid(
                Some("options.loras".into()),
                "`loras` must be an array of {\"path\", \"scale\"}",
            ));
        }
    }
    req.options.insert("loras".into(), Value::Array(loras));
    req.model = format!("{}/{}", route.provider, lora.model);
    Ok(req)
}
