//! One module per API area; each returns its `Router`. What every model-calling route shares
//! (the caller's context, the deadline header, the route and cost headers, mapping a missing
//! provider to 503) lives here.

pub(crate) mod admin;
pub(crate) mod audio;
pub(crate) mod chat;
pub(crate) mod embeddings;
pub(crate) mod files;
pub(crate) mod fine_tuning;
pub(crate) mod images;
pub(crate) mod models;
pub(crate) mod search;
pub(crate) mod upload;
pub(crate) mod usage;
pub(crate) mod videos;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use llm_gateway::{CallContext, Cost, ErrorKind, RouteId};

use crate::app::{AppState, COST_HEADER, Caller, RequestContext};
use crate::error::ApiError;

/// The header a client uses to shorten (or lengthen) the request's total deadline.
const DEADLINE_HEADER: &str = "x-gateway-deadline-ms";
/// The longest deadline a request may ask for.
const MAX_DEADLINE: Duration = Duration::from_secs(600);
/// The header naming the route that served a request.
const ROUTE_HEADER: &str = "x-gateway-route";
/// The most fallbacks a request may name.
const MAX_FALLBACKS: usize = 8;

/// The call context of a request by `caller` with `headers`, adding `fallbacks`.
pub(crate) fn call_context(
    ctx: &RequestContext,
    caller: Caller,
    headers: &HeaderMap,
    fallbacks: &[String],
) -> Result<CallContext, ApiError> {
    if fallbacks.len() > MAX_FALLBACKS {
        return Err(ApiError::invalid(
            Some("fallbacks".into()),
            format!("at most {MAX_FALLBACKS} fallbacks"),
        ));
    }
    if let Some(i) = fallbacks.iter().position(|f| f.trim().is_empty()) {
        return Err(ApiError::invalid(
            Some(format!("fallbacks[{i}]")),
            "a fallback must name a model",
        ));
    }
    Ok(CallContext {
        request_id: ctx.id.clone(),
        user_id: Some(caller.user_id),
        deadline: deadline(headers)?,
        fallbacks: fallbacks.to_vec(),
        tags: Arc::default(),
        plan: Some(caller.plan),
        untraced: !ctx.traced,
    })
}

/// The request's deadline from `x-gateway-deadline-ms`, if it set one.
fn deadline(headers: &HeaderMap) -> Result<Option<Duration>, ApiError> {
    let Some(value) = headers.get(DEADLINE_HEADER) else {
        return Ok(None);
    };
    let ms = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .filter(|d| !d.is_zero() && *d <= MAX_DEADLINE);
    match ms {
        Some(d) => Ok(Some(d)),
        None => Err(ApiError::invalid(
            Some(DEADLINE_HEADER.into()),
            format!(
                "{DEADLINE_HEADER} must be a whole number of milliseconds from 1 to {}",
                MAX_DEADLINE.as_millis()
            ),
        )),
    }
}

/// The client's error for `e` on a request for `model`: a 503 saying why when the model's
/// provider is configured but could not be set up (its key is not set), else the usual mapping.
pub(crate) fn model_error(state: &AppState, model: &str, e: llm_gateway::Error) -> ApiError {
    let provider = model.split_once('/').map_or(model, |(p, _)| p);
    match (e.kind(), state.unavailable(provider)) {
        (ErrorKind::NotFound, Some(why)) => ApiError::unavailable(why.to_owned()),
        _ => ApiError::from(e),
    }
}

/// Names the route that served the request (`x-gateway-route`).
pub(crate) fn set_route(response: &mut Response, route: &RouteId) {
    if let Ok(v) = HeaderValue::from_str(&route.to_string()) {
        response.headers_mut().insert(ROUTE_HEADER, v);
    }
}

/// The recorded cost (`x-gateway-cost-usd`): exact decimal USD, or `unknown`.
pub(crate) fn set_cost(response: &mut Response, cost: Option<Cost>) {
    let value = cost
        .and_then(|c| HeaderValue::from_str(&c.to_string()).ok())
        .unwrap_or(HeaderValue::from_static("unknown"));
    response.headers_mut().insert(COST_HEADER, value);
}
