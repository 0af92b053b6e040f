//! `GET /v1/models`: the announced models of every configured provider, each with what it
//! serves (`chat`, `embeddings`, ...), and the caller's own fine-tuned models, as OpenAI lists an
//! organisation's.

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use gw_store::FineTuningStatus;
use serde_json::{Value, json};

use crate::app::{AppState, Caller};
use crate::error::ApiError;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/models", get(list))
}

/// OpenAI's list of models, each with `modalities` (a gateway extension) naming the services
/// it is announced for.
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let mut data: Vec<Value> = state
        .gateway()
        .registry()
        .models()
        .map(|(route, services)| {
            let modalities: Vec<&str> = services.iter().map(|s| s.as_str()).collect();
            json!({
                "id": route.to_string(),
                "object": "model",
                "created": 0,
                "owned_by": route.provider,
                "modalities": modalities,
            })
        })
        .collect();
    if let Some(store) = state.store() {
        // The caller's fine-tuned models, newest first; a few pages at most.
        let mut after: Option<String> = None;
        for _ in 0..10 {
            let (jobs, more) = store
                .fine_tuning_jobs(&caller.user_id, after.as_deref(), 100)
                .await?;
            for job in &jobs {
                if let (FineTuningStatus::Succeeded, Some(model)) =
                    (job.status, &job.fine_tuned_model)
                {
                    data.push(json!({
                        "id": model,
                        "object": "model",
                        "created": job.finished_at.unwrap_or(job.created_at) / 1000,
                        "owned_by": &*caller.user_id,
                        "modalities": ["images"],
                    }));
                }
            }
            after = jobs.last().map(|j| j.id.clone());
            if !more || after.is_none() {
                break;
            }
        }
    }
    Ok(Json(json!({"object": "list", "data": data})))
}
