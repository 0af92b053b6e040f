//! `GET /v1/usage`: the caller's own usage for a period and what is left of the plan;
//! `GET /v1/usage/log`: the caller's own usage-log rows and their totals, filtered by period,
//! end user and `metadata` tags. Nobody sees another user's data: the user is the owner of the
//! key, never a parameter.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use gw_store::{Allowance, LogFilter, SummaryRow, UsageLogRow};
use llm_gateway::Cost;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::app::{AppState, Caller};
use crate::error::ApiError;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/usage", get(usage))
        .route("/v1/usage/log", get(own_log))
}

/// The rows a usage-log read returns unless it sets `limit`, and the most it may ask for.
const DEFAULT_LOG_ROWS: u32 = 100;
const MAX_LOG_ROWS: u32 = 1000;

/// A usage-log read's query: `period`, `end_user`, `metadata.<key>=<value>` (repeatable, every
/// tag must match), `limit`; `user` too when `operator` (the admin read). Anything else is
/// refused by name.
pub(crate) fn log_query(
    query: &[(String, String)],
    operator: bool,
) -> Result<(LogFilter, Option<String>, u32), ApiError> {
    let mut filter = LogFilter::default();
    let mut user = None;
    let mut limit = DEFAULT_LOG_ROWS;
    for (name, value) in query {
        let tag = name
            .strip_prefix("metadata.")
            .or_else(|| name.strip_prefix("metadata[")?.strip_suffix(']'));
        match (name.as_str(), tag) {
            (_, Some(key)) => {
                if filter.metadata.len() == LogFilter::MAX_TAGS {
                    return Err(ApiError::invalid(
                        Some(name.clone()),
                        format!("filter by at most {} tags", LogFilter::MAX_TAGS),
                    ));
                }
                filter.metadata.push((key.to_owned(), value.clone()));
            }
            ("period", _) if is_period(value) => filter.period = Some(value.clone()),
            ("period", _) => {
                return Err(ApiError::invalid(
                    Some("period".into()),
                    format!("period `{value}` is not a month such as 2026-11"),
                ));
            }
            ("end_user", _) => filter.end_user = Some(value.clone()),
            ("user", _) if operator => user = Some(value.clone()),
            ("limit", _) => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LOG_ROWS).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid(
                            Some("limit".into()),
                            format!("`limit` must be a whole number from 1 to {MAX_LOG_ROWS}"),
                        )
                    })?;
            }
            _ => {
                let known = if operator {
                    "period, end_user, metadata.<key>, limit, user"
                } else {
                    "period, end_user, metadata.<key>, limit"
                };
                return Err(ApiError::invalid(
                    Some(name.clone()),
                    format!("unknown parameter `{name}` (known: {known})"),
                ));
            }
        }
    }
    Ok((filter, user, limit))
}

/// `{"object": "list", "data": [rows, newest first], "totals": {...}}`: the totals cover every
/// row the filter selects, not only the `limit` returned.
pub(crate) async fn log_json(
    store: &gw_store::Store,
    filter: &LogFilter,
    limit: u32,
) -> Result<Value, ApiError> {
    // Usage rows are written in batches off the request path: include the latest.
    store.flush().await;
    let rows = store.usage_log_where(filter, limit).await?;
    let totals = store.usage_totals(filter).await?;
    Ok(json!({
        "object": "list",
        "data": rows.iter().map(log_row_json).collect::<Vec<_>>(),
        "totals": {
            "requests": totals.requests,
            "errors": totals.errors,
            "input_tokens": totals.input_tokens,
            "output_tokens": totals.output_tokens,
            "units": totals.units,
            "cost_usd": totals.cost.to_string(),
            "unpriced_requests": totals.unpriced,
            "cached_requests": totals.cached_requests,
            "cost_saved_usd": totals.cost_saved.to_string(),
            "over_reservation_requests": totals.over_reservation,
        },
    }))
}

fn log_row_json(r: &UsageLogRow) -> Value {
    let ms = |d: Option<std::time::Duration>| {
        d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    };
    let attempts: Vec<Value> = r
        .attempts
        .iter()
        .map(|a| json!({"route": a.route, "outcome": a.outcome, "latency_ms": ms(Some(a.latency))}))
        .collect();
    json!({
        "request_id": r.request_id,
        "created_at": gw_store::format_utc(r.created_at),
        "user_id": r.user_id,
        "period": r.period,
        "route": format!("{}/{}", r.provider, r.model),
        "modality": r.modality.as_str(),
        "operation": r.operation,
        "status": r.status,
        "error": r.error_message,
        "usage": {
            "input_tokens": r.tokens.input_tokens,
            "output_tokens": r.tokens.output_tokens,
            "cached_input_tokens": r.tokens.cached_input_tokens,
            "reasoning_tokens": r.tokens.reasoning_tokens,
            "units": r.units,
        },
        "cost_usd": r.cost.map(|c| c.to_string()),
        // How the response cache answered it (`null`: it did not), and what the cached answer
        // had cost when it was made (`null` unless a hit whose original answer was priced).
        "cache": r.cached.map(|hit| if hit.semantic { "semantic" } else { "exact" }),
        "cost_saved_usd": r.cost_saved().map(|c| c.to_string()),
        // The provider went past what admission reserved (it ignored the request's bound): the
        // real usage was charged all the same.
        "over_reservation": r.over_reservation,
        "estimated": r.estimated,
        "latency_ms": ms(r.latency),
        "time_to_first_token_ms": ms(r.time_to_first_token),
        "retries": r.retries,
        "end_user": r.end_user,
        "metadata": r.metadata,
        "attempts": attempts,
    })
}

async fn own_log(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let (mut filter, _, limit) = log_query(&query, false)?;
    let store = state.store().ok_or_else(|| {
        ApiError::off("usage accounting is off: this gateway runs without a store")
    })?;
    filter.user_id = Some(caller.user_id.to_string());
    Ok(Json(log_json(store, &filter, limit).await?))
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
    body["user"] = json!({"id": &*caller.user_id, "name": &*caller.name, "plan": &*caller.plan});
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
    let (mut cached_requests, mut cost_saved) = (0u64, Cost::ZERO);
    let mut over_reservation = 0u64;
    let by_model: Vec<Value> = rows
        .iter()
        .map(|r| {
            totals.0 += r.requests;
            totals.1 += r.errors;
            totals.2 += r.input_tokens;
            totals.3 += r.output_tokens;
            totals.4 += r.units;
            totals.5 = totals.5 + r.cost;
            cached_requests += r.cached_requests;
            cost_saved = cost_saved + r.cost_saved;
            over_reservation += r.over_reservation;
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
                "cached_requests": r.cached_requests,
                "cost_saved_usd": r.cost_saved.to_string(),
                "over_reservation_requests": r.over_reservation,
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
            "cached_requests": cached_requests,
            "cost_saved_usd": cost_saved.to_string(),
            "over_reservation_requests": over_reservation,
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
    fn log_queries_name_what_is_wrong() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let (filter, user, limit) = log_query(
            &q(&[
                ("metadata.team", "search"),
                ("metadata[env]", "prod"),
                ("end_user", "u-1"),
                ("period", "2026-11"),
                ("limit", "5"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(
            filter.metadata,
            vec![
                ("team".into(), "search".into()),
                ("env".into(), "prod".into())
            ]
        );
        assert_eq!(filter.end_user.as_deref(), Some("u-1"));
        assert_eq!(
            (filter.period.as_deref(), user, limit),
            (Some("2026-11"), None, 5)
        );
        for (pairs, operator, param) in [
            (q(&[("limit", "0")]), false, "limit"),
            (q(&[("limit", "1001")]), false, "limit"),
            (q(&[("period", "2026-13")]), false, "period"),
            (q(&[("user", "bob")]), false, "user"),
            (q(&[("team", "x")]), true, "team"),
        ] {
            let err = log_query(&pairs, operator).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param));
        }
        let (_, user, _) = log_query(&q(&[("user", "bob")]), true).unwrap();
        assert_eq!(user.as_deref(), Some("bob"));
    }

    fn log_row(cached: Option<llm_gateway::CacheHit>, over_reservation: bool) -> UsageLogRow {
        UsageLogRow {
            id: 1,
            request_id: "req_1".into(),
            reservation_id: Some("res_1".into()),
            user_id: "usr_1".into(),
            period: "2026-11".into(),
            provider: "gemini".into(),
            model: "gemini-2.5-flash".into(),
            modality: llm_gateway::Modality::Text,
            operation: "chat".into(),
            status: "ok".into(),
            error_message: None,
            tokens: llm_gateway::TokenUsage::default(),
            units: 0,
            cost: Some(Cost::ZERO),
            pricing_version: Some("v1".into()),
            estimated: false,
            billable: true,
            latency: Some(std::time::Duration::from_millis(3)),
            time_to_first_token: None,
            retries: 0,
            cached,
            over_reservation,
            created_at: std::time::UNIX_EPOCH,
            attempts: Vec::new(),
            end_user: None,
            metadata: Default::default(),
        }
    }

    #[test]
    fn log_rows_say_how_the_cache_answered() {
        let hit = |semantic, saved: Option<&str>| {
            Some(llm_gateway::CacheHit {
                semantic,
                saved: saved.map(|s| s.parse().unwrap()),
            })
        };
        for (cached, cache, saved) in [
            (None, Value::Null, Value::Null),
            (hit(false, Some("0.0004")), json!("exact"), json!("0.0004")),
            (
                hit(true, Some("0.000002")),
                json!("semantic"),
                json!("0.000002"),
            ),
            // The cached answer was not priced: what it saved is not known.
            (hit(false, None), json!("exact"), Value::Null),
        ] {
            let row = log_row_json(&log_row(cached, false));
            assert_eq!(row["cache"], cache, "{row}");
            assert_eq!(row["cost_saved_usd"], saved, "{row}");
            assert_eq!(row["cost_usd"], "0", "{row}");
            assert_eq!(row["over_reservation"], false, "{row}");
        }
    }

    #[test]
    fn log_rows_say_when_usage_passed_the_reservation() {
        let row = log_row_json(&log_row(None, true));
        assert_eq!(row["over_reservation"], true, "{row}");
        let row = log_row_json(&log_row(None, false));
        assert_eq!(row["over_reservation"], false, "{row}");
    }

    /// A summary of `requests` text requests on Gemini's `model` that used nothing.
    fn summary_row(model: &str, requests: u64) -> SummaryRow {
        SummaryRow {
            user_id: "usr_1".into(),
            period: "2026-11".into(),
            provider: "gemini".into(),
            model: model.into(),
            modality: llm_gateway::Modality::Text,
            requests,
            errors: 0,
            input_tokens: 0,
            output_tokens: 0,
            cached_input_tokens: 0,
            reasoning_tokens: 0,
            units: 0,
            cost: Cost::ZERO,
            unpriced: 0,
            estimated: 0,
            cached_requests: 0,
            cost_saved: Cost::ZERO,
            over_reservation: 0,
        }
    }

    #[test]
    fn summaries_count_cache_hits_and_savings() {
        let row = |model: &str, requests, cached_requests, cost: &str, saved: &str| SummaryRow {
            cost: cost.parse().unwrap(),
            cached_requests,
            cost_saved: saved.parse().unwrap(),
            ..summary_row(model, requests)
        };
        let body = summary_json(
            "2026-11",
            &[
                row("gemini-2.5-flash", 4, 3, "0.0004", "0.0006"),
                row("gemini-2.5-pro", 2, 0, "0.01", "0"),
            ],
        );
        let flash = &body["by_model"][0];
        assert_eq!(flash["cached_requests"], 3, "{body}");
        assert_eq!(flash["cost_saved_usd"], "0.0006", "{body}");
        assert_eq!(body["by_model"][1]["cost_saved_usd"], "0", "{body}");
        let totals = &body["totals"];
        assert_eq!(totals["requests"], 6, "{body}");
        assert_eq!(totals["cached_requests"], 3, "{body}");
        assert_eq!(totals["cost_saved_usd"], "0.0006", "{body}");
        assert_eq!(totals["cost_usd"], "0.0104", "{body}");
    }

    #[test]
    fn summaries_count_rows_over_their_reservation() {
        let row = |model: &str, requests, over_reservation| SummaryRow {
            over_reservation,
            ..summary_row(model, requests)
        };
        let body = summary_json(
            "2026-11",
            &[
                row("gemini-2.5-flash", 4, 1),
                row("gemini-2.5-pro", 3, 2),
                row("gemini-2.5-flash-lite", 2, 0),
            ],
        );
        let over: Vec<&Value> = (0..3)
            .map(|i| &body["by_model"][i]["over_reservation_requests"])
            .collect();
        assert_eq!(over, [&json!(1), &json!(2), &json!(0)], "{body}");
        assert_eq!(body["totals"]["over_reservation_requests"], 3, "{body}");
    }

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
