//! `POST /v1/fine_tuning/jobs`, `GET /v1/fine_tuning/jobs`, `GET /v1/fine_tuning/jobs/{id}`,
//! `GET /v1/fine_tuning/jobs/{id}/events` and `POST /v1/fine_tuning/jobs/{id}/cancel`: OpenAI's
//! fine-tuning API (<https://platform.openai.com/docs/api-reference/fine-tuning>) over the
//! providers that train LoRAs (WaveSpeed), as jobs kept in the store.
//!
//! `model` names the provider and base family (`wavespeed/flux-dev`); `training_file` a file of
//! purpose `fine-tune` (a zip of images). The trainer's own options (trigger word, steps, rank,
//! learning rate) go in `provider_options`, checked by the provider. OpenAI's options with no
//! equivalent here (`validation_file`, `seed`, `integrations`, DPO and reinforcement methods,
//! numeric epochs, batch sizes or learning-rate multipliers) are refused by name, never ignored.
//!
//! A create is checked against the caller's plan (training) before any provider call, quoted by
//! the provider, admitted at that price, submitted once and stored: it answers at once, `queued`.
//! The job's end is settled once by whichever replica sees it; its LoRA is then copied into the
//! gateway's media storage and usable as `fine_tuned_model` in `POST /v1/images/generations`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use gw_store::{FineTuningEvent, FineTuningJob, NewFineTuningJob};
use llm_gateway::{ErrorKind, MediaInput, TrainingRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::files::{FINE_TUNE, storage};
use super::{JsonBody, call_context, model_error, set_cost, set_route, store_accepted_job};
use crate::app::{AppState, Caller, RequestContext};
use crate::error::ApiError;
use crate::fine_tuning_jobs::advance;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/fine_tuning/jobs", post(create).get(list))
        .route("/v1/fine_tuning/jobs/{id}", get(retrieve))
        .route("/v1/fine_tuning/jobs/{id}/events", get(events))
        .route("/v1/fine_tuning/jobs/{id}/cancel", post(cancel))
        .route("/v1/fine_tuning/jobs/{id}/pause", post(not_offered))
        .route("/v1/fine_tuning/jobs/{id}/resume", post(not_offered))
        .route("/v1/fine_tuning/jobs/{id}/checkpoints", get(not_offered))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no fine-tuning job `{id}`")).with_code("fine_tuning_job_not_found")
}

/// A create as OpenAI's SDKs send it, plus `provider_options`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    model: String,
    training_file: String,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    seed: Option<Value>,
    #[serde(default)]
    validation_file: Option<Value>,
    #[serde(default)]
    hyperparameters: Option<Value>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default)]
    integrations: Option<Value>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    provider_options: Map<String, Value>,
}

/// OpenAI's hyperparameters, each of which LoRA trainers lack: `"auto"` (or nothing) is taken,
/// a value is refused with what to use instead.
fn check_hyperparameters(value: &Value, at: &str) -> Result<(), ApiError> {
    let Value::Object(fields) = value else {
        return Err(ApiError::invalid(
            Some(at.into()),
            format!("`{at}` must be an object"),
        ));
    };
    for (name, value) in fields {
        let instead = match name.as_str() {
            "n_epochs" => "set `provider_options.steps` (training steps) instead",
            "batch_size" => "the trainer picks its own batch size",
            "learning_rate_multiplier" => "set `provider_options.learning_rate` instead",
            _ => "OpenAI's hyperparameters are n_epochs, batch_size and learning_rate_multiplier",
        };
        let known = matches!(
            name.as_str(),
            "n_epochs" | "batch_size" | "learning_rate_multiplier"
        );
        if known && (value.is_null() || value == "auto") {
            continue;
        }
        return Err(ApiError::invalid(
            Some(format!("{at}.{name}")),
            format!("`{at}.{name}` is not supported by the LoRA trainers here: {instead}"),
        ));
    }
    Ok(())
}

/// `method`: supervised only, with hyperparameters as above.
fn check_method(method: &Value) -> Result<(), ApiError> {
    let Value::Object(fields) = method else {
        return Err(ApiError::invalid(
            Some("method".into()),
            "`method` must be an object",
        ));
    };
    match fields.get("type").and_then(Value::as_str) {
        Some("supervised") | None => {}
        Some(other) => {
            return Err(ApiError::invalid(
                Some("method.type".into()),
                format!(
                    "the `{other}` method is not supported: the LoRA trainers here do supervised training only"
                ),
            ));
        }
    }
    for (name, value) in fields {
        match name.as_str() {
            "type" => {}
            "supervised" => {
                if let Some(h) = value.get("hyperparameters") {
                    check_hyperparameters(h, "method.supervised.hyperparameters")?;
                }
            }
            other => {
                return Err(ApiError::invalid(
                    Some(format!("method.{other}")),
                    format!("`method.{other}` is not supported: supervised training only"),
                ));
            }
        }
    }
    Ok(())
}

impl CreateBody {
    /// Refuses what no trainer here offers, naming the field.
    fn check(&self) -> Result<(), ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::invalid(
                Some("model".into()),
                "`model` must name a base family, like `wavespeed/flux-dev`",
            ));
        }
        let present = |v: &Option<Value>| v.as_ref().is_some_and(|v| !v.is_null());
        if present(&self.validation_file) {
            return Err(ApiError::invalid(
                Some("validation_file".into()),
                "validation files are not supported: the LoRA trainers here train on one set",
            ));
        }
        if present(&self.seed) {
            return Err(ApiError::invalid(
                Some("seed".into()),
                "`seed` is not supported: the LoRA trainers here take no seed",
            ));
        }
        if let Some(integrations) = &self.integrations
            && !(integrations.is_null() || integrations.as_array().is_some_and(Vec::is_empty))
        {
            return Err(ApiError::invalid(
                Some("integrations".into()),
                "integrations (Weights & Biases) are not supported",
            ));
        }
        if let Some(h) = self.hyperparameters.as_ref().filter(|h| !h.is_null()) {
            check_hyperparameters(h, "hyperparameters")?;
        }
        if let Some(m) = self.method.as_ref().filter(|m| !m.is_null()) {
            check_method(m)?;
        }
        if let Some(suffix) = &self.suffix {
            let ok = suffix.len() <= 64
                && suffix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
            if !ok {
                return Err(ApiError::invalid(
                    Some("suffix".into()),
                    "`suffix` is up to 64 letters, digits, `-` or `_`",
                ));
            }
        }
        if let Some(metadata) = &self.metadata {
            if metadata.len() > 16 {
                return Err(ApiError::invalid(
                    Some("metadata".into()),
                    "`metadata` holds at most 16 pairs",
                ));
            }
            for (key, value) in metadata {
                let fits = key.len() <= 64 && value.as_str().is_some_and(|v| v.len() <= 512);
                if !fits {
                    return Err(ApiError::invalid(
                        Some(format!("metadata.{key}")),
                        "metadata keys are up to 64 characters and values strings of up to 512",
                    ));
                }
            }
        }
        Ok(())
    }
}

async fn create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<JsonBody<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let JsonBody(body) = body.map_err(ApiError::from_json)?;
    let (store, media) = storage(&state)?;
    body.check()?;
    let gateway = state.gateway();
    let route = gateway
        .route(&body.model)
        .map_err(|e| model_error(&state, &body.model, e))?;
    if let Some(refusal) = gateway.training_refusal(route.provider) {
        return Err(ApiError::from(refusal).with_code("fine_tuning_not_supported"));
    }
    let file = store
        .file(&body.training_file, &caller.user_id)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                Some("training_file".into()),
                format!("no file `{}`", body.training_file),
            )
        })?;
    if file.purpose != FINE_TUNE {
        return Err(ApiError::invalid(
            Some("training_file".into()),
            format!(
                "file `{}` has purpose `{}`: training needs a `{FINE_TUNE}` file",
                file.id, file.purpose
            ),
        ));
    }
    let data = match (&file.url, &file.storage_key) {
        (Some(url), _) => MediaInput::Url(url.clone()),
        (None, Some(key)) => {
            let bytes = media
                .get(key)
                .await?
                .ok_or_else(|| ApiError::internal("a stored file's bytes are missing"))?;
            MediaInput::bytes(bytes, "application/zip")
        }
        (None, None) => return Err(ApiError::internal("a stored file has no content")),
    };
    let mut req = TrainingRequest::new(body.model.clone(), data);
    req.options = body.provider_options.clone();
    let call = call_context(&ctx, caller.clone(), &headers, &[])?;
    let submitted = gateway
        .submit_training_with(&call, req)
        .await
        .map_err(|e| model_error(&state, &body.model, e))?;
    let steps = Some(submitted.estimate.units).filter(|s| *s > 0);
    let new = NewFineTuningJob {
        user_id: caller.user_id.to_string(),
        request_id: ctx.id.clone(),
        route: submitted.route.clone(),
        provider_job_id: submitted.job.0.clone(),
        training_file: file.id.clone(),
        suffix: body.suffix.clone(),
        trigger_word: body
            .provider_options
            .get("trigger_word")
            .and_then(Value::as_str)
            .map(str::to_owned),
        hyperparameters: body.provider_options.clone(),
        metadata: body.metadata.clone(),
        steps,
        reservation_id: submitted.reservation.as_ref().map(|r| r.id.clone()),
        estimate: submitted.estimate.cost,
        retries: submitted.retries,
    };
    let storing = store.clone();
    let job = store_accepted_job(
        "fine-tuning",
        &ctx,
        &submitted.job,
        &submitted.route,
        async move { storing.create_fine_tuning_job(new).await },
    )
    .await?;
    Ok(respond(&job))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

impl PageQuery {
    fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(20),
            Some(n @ 1..=100) => Ok(n),
            Some(n) => Err(ApiError::invalid(
                Some("limit".into()),
                format!("`limit` is 1 to 100, not {n}"),
            )),
        }
    }
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(page): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let (store, _) = storage(&state)?;
    let (jobs, has_more) = store
        .fine_tuning_jobs(&caller.user_id, page.after.as_deref(), page.limit()?)
        .await?;
    Ok(Json(json!({
        "object": "list",
        "data": jobs.iter().map(JobObject::of).collect::<Vec<_>>(),
        "has_more": has_more,
    }))
    .into_response())
}

async fn retrieve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (store, _) = storage(&state)?;
    let job = store
        .fine_tuning_job(&id, &caller.user_id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    // Asked of the provider only by the holder of the job's lease: a replica polling it already
    // (and maybe copying its LoRA) is not raced, nor this process's own poller; its owner sees
    // the job as stored meanwhile.
    let advancing = (!job.settled)
        .then(|| crate::video_jobs::Advancing::take(&id))
        .flatten();
    let job = if advancing.is_none() || !store.claim_fine_tuning_job(&id, JOB_STEP_LEASE).await? {
        job
    } else {
        let job = advance(&state, job).await;
        let _ = store.release_fine_tuning_job(&id).await;
        job
    };
    Ok(respond(&job))
}

/// How long a `GET` holds a job's lease while it advances it (its download of a LoRA included).
const JOB_STEP_LEASE: std::time::Duration = std::time::Duration::from_secs(900);

async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let (store, _) = storage(&state)?;
    let (events, has_more) = store
        .fine_tuning_events(&id, &caller.user_id, page.after.as_deref(), page.limit()?)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(json!({
        "object": "list",
        "data": events.iter().map(EventObject::of).collect::<Vec<_>>(),
        "has_more": has_more,
    }))
    .into_response())
}

async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (store, _) = storage(&state)?;
    let job = store
        .fine_tuning_job(&id, &caller.user_id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    if job.status.is_final() {
        return Err(ApiError::invalid(
            None,
            format!("fine-tuning job `{id}` has {} already", job.status.as_str()),
        ));
    }
    let route = state.gateway().route(&job.route_name())?;
    let job_id = llm_gateway::JobId(job.provider_job_id.clone());
    match state.gateway().cancel_training_with(&route, &job_id).await {
        Ok(()) => {
            // The provider stops the run; its next poll reports the end, which settles it.
            store
                .update_fine_tuning_job(&job.id, job.status, Some("Cancellation requested"))
                .await?;
            Ok(respond(&advance(&state, job).await))
        }
        Err(e) if *e.kind() == ErrorKind::Unsupported => {
            let mut err = ApiError::invalid(
                None,
                format!(
                    "{}; fine-tuning job `{id}` goes on running and is billed when it ends",
                    e.message()
                ),
            )
            .with_code("cancel_not_supported");
            err.status = StatusCode::CONFLICT;
            Err(err)
        }
        Err(e) => Err(ApiError::from(e)),
    }
}

/// Pausing, resuming and checkpoints are OpenAI's alone.
async fn not_offered(uri: axum::http::Uri) -> ApiError {
    let what = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    ApiError::invalid(
        None,
        format!("`{what}` is not supported: the LoRA trainers here run a job to its end"),
    )
    .with_code("unsupported_operation")
}

/// OpenAI's `fine_tuning.job`, with the gateway's `provider_options`, `trigger_word` and `usage`.
#[derive(Serialize)]
struct JobObject {
    id: String,
    object: &'static str,
    created_at: i64,
    finished_at: Option<i64>,
    estimated_finish: Option<i64>,
    model: String,
    fine_tuned_model: Option<String>,
    organization_id: String,
    status: &'static str,
    error: Option<Value>,
    hyperparameters: Value,
    method: Value,
    training_file: String,
    validation_file: Option<String>,
    result_files: Vec<String>,
    trained_tokens: Option<u64>,
    seed: Option<i64>,
    integrations: Option<Vec<Value>>,
    metadata: Option<Map<String, Value>>,
    user_provided_suffix: Option<String>,
    provider_options: Map<String, Value>,
    trigger_word: Option<String>,
    usage: Value,
}

impl JobObject {
    fn of(job: &FineTuningJob) -> Self {
        let auto =
            json!({"batch_size": "auto", "learning_rate_multiplier": "auto", "n_epochs": "auto"});
        let cost = if job.settled { job.cost } else { job.estimate };
        Self {
            id: job.id.clone(),
            object: "fine_tuning.job",
            created_at: job.created_at / 1000,
            finished_at: job.finished_at.map(|t| t / 1000),
            estimated_finish: None,
            model: job.route_name(),
            fine_tuned_model: job.fine_tuned_model.clone(),
            organization_id: job.user_id.clone(),
            status: job.status.as_str(),
            error: job
                .error
                .as_ref()
                .map(|e| json!({"code": e.code, "message": e.message, "param": null})),
            hyperparameters: auto.clone(),
            method: json!({"type": "supervised", "supervised": {"hyperparameters": auto}}),
            training_file: job.training_file.clone(),
            validation_file: None,
            result_files: job.result_file.iter().cloned().collect(),
            trained_tokens: None,
            seed: None,
            integrations: None,
            metadata: job.metadata.clone(),
            user_provided_suffix: job.suffix.clone(),
            provider_options: job.hyperparameters.clone(),
            trigger_word: job.trigger_word.clone(),
            usage: json!({
                "steps": job.steps,
                "cost_usd": cost.map(|c| c.to_string()),
                "estimated": !job.settled,
            }),
        }
    }
}

/// OpenAI's `fine_tuning.job.event`.
#[derive(Serialize)]
struct EventObject {
    id: String,
    object: &'static str,
    created_at: i64,
    level: &'static str,
    message: String,
    #[serde(rename = "type")]
    kind: &'static str,
    data: Option<Value>,
}

impl EventObject {
    fn of(event: &FineTuningEvent) -> Self {
        Self {
            id: event.id.clone(),
            object: "fine_tuning.job.event",
            created_at: event.created_at / 1000,
            level: event.level.as_str(),
            message: event.message.clone(),
            kind: "message",
            data: None,
        }
    }
}

fn respond(job: &FineTuningJob) -> Response {
    let mut response = Json(JobObject::of(job)).into_response();
    let cost = if job.settled { job.cost } else { job.estimate };
    set_cost(&mut response, cost);
    if let Ok(route) = llm_gateway::RouteId::parse(&job.route_name(), |p| {
        llm_gateway::COMPILED_PROVIDERS
            .iter()
            .copied()
            .find(|c| *c == p)
    }) {
        set_route(&mut response, &route);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: Value) -> Result<(), ApiError> {
        serde_json::from_value::<CreateBody>(v).unwrap().check()
    }

    #[test]
    fn openai_options_without_an_equivalent_are_refused_by_name() {
        let base = |extra: Value| {
            let mut body = json!({"model": "wavespeed/flux-dev", "training_file": "file-1"});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            body
        };
        for (extra, param) in [
            (json!({"validation_file": "file-2"}), "validation_file"),
            (json!({"seed": 42}), "seed"),
            (
                json!({"integrations": [{"type": "wandb", "wandb": {"project": "p"}}]}),
                "integrations",
            ),
            (
                json!({"hyperparameters": {"n_epochs": 3}}),
                "hyperparameters.n_epochs",
            ),
            (
                json!({"hyperparameters": {"batch_size": 8}}),
                "hyperparameters.batch_size",
            ),
            (json!({"method": {"type": "dpo", "dpo": {}}}), "method.type"),
            (json!({"method": {"type": "reinforcement"}}), "method.type"),
            (
                json!({"method": {"type": "supervised", "supervised": {"hyperparameters": {"learning_rate_multiplier": 2}}}}),
                "method.supervised.hyperparameters.learning_rate_multiplier",
            ),
            (json!({"suffix": "a:b"}), "suffix"),
            (json!({"metadata": {"k": 1}}), "metadata.k"),
        ] {
            let err = check(base(extra.clone())).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{extra}");
            assert_eq!(err.status.as_u16(), 400);
        }
        // OpenAI's defaults mean "let the trainer choose": taken.
        check(base(json!({
            "hyperparameters": {"n_epochs": "auto", "batch_size": "auto"},
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": "auto"}}},
            "seed": null, "validation_file": null, "integrations": [],
            "suffix": "my-face", "metadata": {"team": "x"},
        })))
        .unwrap();
    }
}
