//! `GET /v1/usage`: the caller's own usage for a period and what is left of the plan.
//! Nobody sees another user's data: the user is the owner of the key, never a parameter.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use gw_store::{Allowance, SummaryRow};
use llm_gateway::Cost;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::app::{AppState, Caller};
use crate::error::ApiError;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/usage", get(usage))
}

#[derive(Debug, Deserialize)]
struct UsageQuery {
    /// A billing period such as `2026-11`; the current one by default.
    #[serde(default)]
    period: Option<String>,
}

async fn usage(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<UsageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) =
        query.map_err(|r| ApiError::invalid(Some("period".into()), r.body_text()))?;
    let store = state.store().ok_or_else(|| {
        ApiError::off("usage accounting is off: this gateway runs without a store")
    })?;
    // Usage rows are written in batches off the request path: include the caller's latest.
    store.flush().await;
    let allowance = store.remaining(&caller.user_id).await?;
    let period = match query.period {
        Some(p) if is_period(&p) => p,
        Some(p) => {
            return Err(ApiError::invalid(
                Some("period".into()),
                format!("period `{p}` is not a month such as 2026-11"),
            ));
        }
        None => allowance.period.clone(),
    };
    let rows = store.usage_summary(&caller.user_id, &period).await?;
    let mut body = summary_json(&period, &rows);
    body["object"] = json!("usage");
    body["user"] = json!({"id": caller.user_id, "name": caller.name, "plan": caller.plan});
    if period == allowance.period {
        body["allowance"] = allowance_json(&allowance);
    }
    Ok(Json(body))
}

/// `YYYY-MM`.
pub(crate) fn is_period(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && matches!(
            &p[5..],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        )
}

/// Totals and one entry per provider, model and modality; money as exact decimal strings.
pub(crate) fn summary_json(period: &str, rows: &[SummaryRow]) -> Value {
    let mut totals = (0u64, 0u64, 0u64, 0u64, 0u64, Cost::ZERO);
    let by_model: Vec<Value> = rows
        .iter()
        .map(|r| {
            totals.0 += r.requests;
            totals.1 += r.errors;
            totals.2 += r.input_tokens;
            totals.3 += r.output_tokens;
            totals.4 += r.units;
            totals.5 = totals.5 + r.cost;
            json!({
                "user_id": r.user_id,
                "provider": r.provider,
                "model": r.model,
                "modality": r.modality.as_str(),
                "requests": r.requests,
                "errors": r.errors,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "cached_input_tokens": r.cached_input_tokens,
                "reasoning_tokens": r.reasoning_tokens,
                "units": r.units,
                "cost_usd": r.cost.to_string(),
                "unpriced_requests": r.unpriced,
                "estimated_requests": r.estimated,
            })
        })
        .collect();
    json!({
        "period": period,
        "totals": {
            "requests": totals.0,
            "errors": totals.1,
            "input_tokens": totals.2,
            "output_tokens": totals.3,
            "units": totals.4,
            "cost_usd": totals.5.to_string(),
        },
        "by_model": by_model,
    })
}

/// `{"plan", "period", "counters": {"text_requests": {"used", "limit", "remaining"}, ...}}`,
/// `null` meaning unlimited; `cost_usd` values as decimal strings.
pub(crate) fn allowance_json(a: &Allowance) -> Value {
    let mut counters = Map::new();
    for r in &a.counters {
        let show = |v: u64| json_value(r.counter, v);
        counters.insert(
            r.counter.as_str().to_owned(),
            json!({
                "used": show(r.used),
                "limit": r.limit.map(show),
                "remaining": r.remaining.map(show),
            }),
        );
    }
    json!({"plan": a.plan, "period": a.period, "counters": counters})
}

fn json_value(counter: gw_store::Counter, value: u64) -> Value {
    if counter == gw_store::Counter::CostUsd {
        Value::String(counter.format_value(value))
    } else {
        json!(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        for ok in ["2026-11", "1999-01", "2026-12"] {
            assert!(is_period(ok), "{ok}");
        }
        for bad in ["2026-13", "2026-1", "2026/11", "", "abcd-ef", "2026-00"] {
            assert!(!is_period(bad), "{bad}");
        }
    }
}
