//! `/admin/*`: the operator's routes, guarded by the admin key: users, plans, keys, usage.
//! The same operations as the `gateway admin` command line.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use gw_store::{KeyInfo, Store, User};
use serde::Deserialize;
use serde_json::{Value, json};

use super::JsonBody;
use crate::app::AppState;
use crate::error::ApiError;
use crate::routes::usage::{is_period, log_json, log_query, summary_json};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", post(create_user).get(list_users))
        .route("/admin/users/{user}", get(show_user).patch(update_user))
        .route("/admin/users/{user}/keys", post(create_key).get(list_keys))
        .route("/admin/keys/{key}", delete(revoke_key))
        .route("/admin/usage", get(usage))
        .route("/admin/usage/log", get(usage_log))
        .route("/admin/plans", get(plans))
        .route("/admin/routes", get(routes))
}

fn store(state: &AppState) -> Result<&Store, ApiError> {
    state.store().ok_or_else(|| {
        ApiError::off("this gateway runs without a store: there are no users to administer")
    })
}

fn body<T>(body: Result<JsonBody<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|JsonBody(b)| b)
        .map_err(|r| ApiError::invalid(None, r.body_text()))
}

/// The user `user` names: an id (`usr_...`) or a name.
pub(crate) async fn find_user(store: &Store, user: &str) -> Result<User, ApiError> {
    if let Some(found) = store.get_user(user).await? {
        return Ok(found);
    }
    store
        .get_user_by_name(user)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user `{user}`")).with_code("user_not_found"))
}

pub(crate) fn user_json(u: &User) -> Value {
    json!({"id": u.id, "name": u.name, "plan": u.plan, "created_at": gw_store::format_utc(u.created_at)})
}

pub(crate) fn key_json(k: &KeyInfo) -> Value {
    json!({
        "id": k.id,
        "user_id": k.user_id,
        "name": k.name,
        "prefix": k.prefix,
        "created_at": gw_store::format_utc(k.created_at),
        "revoked_at": k.revoked_at.map(gw_store::format_utc),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    plan: String,
}

async fn create_user(
    State(state): State<AppState>,
    b: Result<JsonBody<NewUser>, JsonRejection>,
) -> Result<Response, ApiError> {
    let b = body(b)?;
    let user = store(&state)?.create_user(&b.name, &b.plan).await?;
    Ok((StatusCode::CREATED, Json(user_json(&user))).into_response())
}

async fn list_users(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let users = store(&state)?.list_users().await?;
    Ok(Json(
        json!({"object": "list", "data": users.iter().map(user_json).collect::<Vec<_>>()}),
    ))
}

async fn show_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = store(&state)?;
    let user = find_user(store, &user).await?;
    let keys = store.list_keys(&user.id).await?;
    let mut out = user_json(&user);
    out["keys"] = keys.iter().map(key_json).collect();
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserUpdate {
    plan: String,
}

async fn update_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
    b: Result<JsonBody<UserUpdate>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let b = body(b)?;
    let store = store(&state)?;
    let user = find_user(store, &user).await?;
    let updated = store.set_plan(&user.id, &b.plan).await?;
    if let Some(cache) = state.key_cache() {
        cache.forget(|caller| *caller.user_id == *user.id);
    }
    Ok(Json(user_json(&updated)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    #[serde(default)]
    name: Option<String>,
}

async fn create_key(
    State(state): State<AppState>,
    Path(user): Path<String>,
    b: Option<Json<NewKey>>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let user = find_user(store, &user).await?;
    let name = b
        .and_then(|Json(b)| b.name)
        .unwrap_or_else(|| "default".into());
    let (info, secret) = store.create_key(&user.id, &name).await?;
    let mut out = key_json(&info);
    // Shown this once: the store keeps only its hash.
    out["key"] = json!(secret.expose());
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn list_keys(
    State(state): State<AppState>,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = store(&state)?;
    let user = find_user(store, &user).await?;
    let keys = store.list_keys(&user.id).await?;
    Ok(Json(
        json!({"object": "list", "data": keys.iter().map(key_json).collect::<Vec<_>>()}),
    ))
}

async fn revoke_key(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    store(&state)?.revoke_key(&key).await?;
    if let Some(cache) = state.key_cache() {
        cache.forget(|caller| *caller.key_id == *key);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

async fn usage(
    State(state): State<AppState>,
    q: Result<Query<UsageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|r| ApiError::invalid(None, r.body_text()))?;
    let store = store(&state)?;
    store.flush().await;
    let period = match q.period {
        Some(p) if is_period(&p) => p,
        Some(p) => {
            return Err(ApiError::invalid(
                Some("period".into()),
                format!("period `{p}` is not a month such as 2026-11"),
            ));
        }
        None => gw_store::Period::Month.key(std::time::SystemTime::now()),
    };
    let rows = match &q.user {
        Some(user) => {
            let user = find_user(store, user).await?;
            store.usage_summary(&user.id, &period).await?
        }
        None => store.usage_summary_all(&period).await?,
    };
    let mut out = summary_json(&period, &rows);
    out["object"] = json!("usage");
    Ok(Json(out))
}

/// Usage-log rows and totals of every user, or of `user` (an id or a name), filtered as
/// `GET /v1/usage/log` is.
async fn usage_log(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let (mut filter, user, limit) = log_query(&query, true)?;
    let store = store(&state)?;
    if let Some(user) = user {
        filter.user_id = Some(find_user(store, &user).await?.id);
    }
    Ok(Json(log_json(store, &filter, limit).await?))
}

async fn plans(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = store(&state)?;
    let plans: Vec<Value> = store
        .plans()
        .iter()
        .map(|p| {
            let mut limits = serde_json::Map::new();
            for (m, l) in &p.modalities {
                limits.insert(
                    m.as_str().into(),
                    json!({"requests": l.requests, "tokens": l.tokens, "units": l.units}),
                );
            }
            json!({
                "name": p.name,
                "period": p.period.as_str(),
                "cost_usd": p.cost_cap.map(|c| c.to_string()),
                "allow": p.allow,
                "allow_unpriced": p.allow_unpriced,
                "default_max_tokens": p.default_max_tokens,
                "modalities": limits,
            })
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": plans})))
}

/// Every route's circuit breaker (closed, open until when, half-open), and the aliases.
async fn routes(State(state): State<AppState>) -> Json<Value> {
    let breakers = state.gateway().breakers().snapshots();
    let aliases: serde_json::Map<String, Value> = state
        .gateway()
        .routing()
        .aliases
        .iter()
        .map(|(name, alias)| {
            let routes: Vec<&str> = alias.routes.iter().map(|r| r.model()).collect();
            (name.clone(), json!(routes))
        })
        .collect();
    Json(json!({
        "breakers": serde_json::to_value(breakers).unwrap_or(Value::Null),
        "aliases": aliases,
        "deadline_ms": state.gateway().routing().deadline_ms,
    }))
}
