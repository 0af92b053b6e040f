//! `GET /v1/models`: the announced models of every configured provider.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/models", get(list))
}

async fn list(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state
        .gateway()
        .registry()
        .model_names()
        .into_iter()
        .map(|id| {
            let owner = id.split('/').next().unwrap_or_default().to_owned();
            json!({"id": id, "object": "model", "created": 0, "owned_by": owner})
        })
        .collect();
    Json(json!({"object": "list", "data": data}))
}
