//! `GET /v1/models`: the announced models of every configured provider, each with what it
//! serves (`chat`, `embeddings`, ...).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/models", get(list))
}

/// OpenAI's list of models, each with `modalities` (a gateway extension) naming the services
/// it is announced for.
async fn list(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state
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
    Json(json!({"object": "list", "data": data}))
}
