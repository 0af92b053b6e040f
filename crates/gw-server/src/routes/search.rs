//! `POST /v1/search`: web search on Tavily, Serper or Exa with one request and result shape,
//! through the same router as chat (plans, fallbacks, retries, usage); and
//! `POST /v1/search/{provider}`, the request and answer of LiteLLM's search route, so clients
//! written for it work unchanged.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use llm_gateway::{Cost, Metered, RequestTags, SearchRequest, SearchResponse, TimeRange};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{JsonBody, call_context, model_error, set_cache, set_cost, set_route};
use crate::app::{AppState, Caller, RequestContext};
use crate::error::ApiError;
use crate::openai::end_user_tags;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/search", post(search))
        .route("/v1/search/{provider}", post(litellm_search))
}

/// The most results a request may ask for.
const MAX_RESULTS: u32 = 100;

/// The body of `POST /v1/search`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    /// A provider (`tavily`), one of its endpoints (`serper/news`) or an alias.
    model: String,
    query: String,
    #[serde(default)]
    max_results: Option<u32>,
    /// `day`, `week`, `month` or `year`.
    #[serde(default)]
    time_range: Option<String>,
    #[serde(default)]
    include_domains: Vec<String>,
    #[serde(default)]
    exclude_domains: Vec<String>,
    /// ISO 3166-1 alpha-2 (`us`).
    #[serde(default)]
    country: Option<String>,
    /// ISO 639-1 (`en`).
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    include_content: bool,
    #[serde(default)]
    include_answer: bool,
    /// Provider-specific options, passed on; a provider refuses one it does not know.
    #[serde(default)]
    options: Map<String, Value>,
    /// Routes (or providers, or aliases) to try, in order, when `model`'s fail.
    #[serde(default)]
    fallbacks: Vec<String>,
    /// The caller's end user, kept in the usage log.
    #[serde(default)]
    user: Option<String>,
}

/// `day`, `week`, `month`, `year` (and their first letters, as Tavily takes them).
fn time_range(value: &str) -> Result<TimeRange, ApiError> {
    match value.to_ascii_lowercase().as_str() {
        "day" | "d" => Ok(TimeRange::Day),
        "week" | "w" => Ok(TimeRange::Week),
        "month" | "m" => Ok(TimeRange::Month),
        "year" | "y" => Ok(TimeRange::Year),
        other => Err(ApiError::invalid(
            Some("time_range".into()),
            format!("`time_range` must be day, week, month or year, not `{other}`"),
        )),
    }
}

fn check_query(model: &str, query: &str, max_results: Option<u32>) -> Result<(), ApiError> {
    if model.trim().is_empty() {
        return Err(ApiError::invalid(
            Some("model".into()),
            "`model` must name a search provider (`tavily`, `serper`, `exa`) or an alias",
        ));
    }
    if query.trim().is_empty() {
        return Err(ApiError::invalid(
            Some("query".into()),
            "`query` must not be empty",
        ));
    }
    match max_results {
        Some(0) => Err(ApiError::invalid(
            Some("max_results".into()),
            "`max_results` must be at least 1",
        )),
        Some(n) if n > MAX_RESULTS => Err(ApiError::invalid(
            Some("max_results".into()),
            format!("`max_results` must be at most {MAX_RESULTS}"),
        )),
        _ => Ok(()),
    }
}

impl SearchBody {
    fn to_core(&self) -> Result<SearchRequest, ApiError> {
        check_query(&self.model, &self.query, self.max_results)?;
        let mut req = SearchRequest::new(self.model.clone(), self.query.clone());
        req.max_results = self.max_results;
        req.time_range = self.time_range.as_deref().map(time_range).transpose()?;
        req.include_domains = self.include_domains.clone();
        req.exclude_domains = self.exclude_domains.clone();
        req.country = self.country.clone();
        req.language = self.language.clone();
        req.include_content = self.include_content;
        req.include_answer = self.include_answer;
        req.options = self.options.clone();
        Ok(req)
    }
}

#[derive(Serialize)]
struct SearchAnswer<'a> {
    object: &'static str,
    model: &'a str,
    query: &'a str,
    answer: Option<&'a str>,
    results: Vec<ResultItem<'a>>,
    usage: SearchUsage,
}

#[derive(Serialize)]
struct ResultItem<'a> {
    title: &'a str,
    url: &'a str,
    snippet: &'a str,
    score: Option<f64>,
    published_date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
}

/// What the search used: one request, the provider's units (credits, or searches and pages),
/// and its cost in USD (`null` when unknown; the exact decimal is in `x-gateway-cost-usd`).
#[derive(Serialize)]
struct SearchUsage {
    requests: u64,
    units: u64,
    cost_usd: Option<f64>,
}

fn usd(cost: Option<Cost>) -> Option<f64> {
    cost.map(|c| c.nanos() as f64 / 1e9)
}

/// Runs `req` for the caller; the answer, the route and the cost.
async fn run(
    state: &AppState,
    ctx: &RequestContext,
    caller: Caller,
    headers: &HeaderMap,
    fallbacks: &[String],
    tags: RequestTags,
    req: SearchRequest,
) -> Result<Metered<SearchResponse>, ApiError> {
    let mut call = call_context(ctx, caller, headers, fallbacks)?;
    call.tags = Arc::new(tags);
    let model = req.model.clone();
    state
        .gateway()
        .search_with(&call, req)
        .await
        .map_err(|e| model_error(state, &model, e))
}

fn respond(body: impl Serialize, metered: &Metered<SearchResponse>) -> Response {
    let mut response = Json(body).into_response();
    set_cost(&mut response, metered.cost);
    set_route(&mut response, &metered.route);
    set_cache(&mut response, &metered.cache);
    response
}

async fn search(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<JsonBody<SearchBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let JsonBody(body) = body.map_err(ApiError::from_json)?;
    let req = body.to_core()?;
    let tags = end_user_tags(body.user.as_ref())?;
    let metered = run(&state, &ctx, caller, &headers, &body.fallbacks, tags, req).await?;
    let answer = &metered.value;
    let results = answer
        .results
        .iter()
        .map(|r| ResultItem {
            title: &r.title,
            url: &r.url,
            snippet: &r.snippet,
            score: r.score,
            published_date: r.published_date.as_deref(),
            content: r.content.as_deref(),
            image: r.image.as_deref(),
        })
        .collect();
    let out = SearchAnswer {
        object: "search.result",
        model: &body.model,
        query: &body.query,
        answer: answer.answer.as_deref(),
        results,
        usage: SearchUsage {
            requests: 1,
            units: answer.billing.units,
            cost_usd: usd(metered.cost),
        },
    };
    Ok(respond(out, &metered))
}

/// The body of LiteLLM's search route (`POST /v1/search/{search_tool_name}`), which follows the
/// Perplexity Search API: <https://docs.litellm.ai/docs/search> (`litellm/proxy/search_endpoints/endpoints.py`).
/// Fields it does not name are the provider's own and pass on as `options`.
#[derive(Debug, Deserialize)]
struct LiteLlmBody {
    /// A string, or a list of strings joined with spaces (as LiteLLM joins them).
    query: Value,
    #[serde(default)]
    max_results: Option<u32>,
    #[serde(default)]
    search_domain_filter: Vec<String>,
    /// LiteLLM ignores it for Tavily, Serper and Exa; so does the gateway.
    #[serde(default)]
    #[allow(dead_code)]
    max_tokens_per_page: Option<u32>,
    #[serde(default)]
    country: Option<String>,
    /// Named in the path instead; accepted when it agrees.
    #[serde(default)]
    search_tool_name: Option<String>,
    #[serde(flatten)]
    options: Map<String, Value>,
}

impl LiteLlmBody {
    fn to_core(&self, provider: &str) -> Result<SearchRequest, ApiError> {
        let query = match &self.query {
            Value::String(q) => q.clone(),
            Value::Array(parts) if parts.iter().all(Value::is_string) => parts
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            _ => {
                return Err(ApiError::invalid(
                    Some("query".into()),
                    "`query` must be a string or a list of strings",
                ));
            }
        };
        if let Some(named) = &self.search_tool_name
            && named != provider
        {
            return Err(ApiError::invalid(
                Some("search_tool_name".into()),
                format!("`search_tool_name` `{named}` differs from the path's `{provider}`"),
            ));
        }
        check_query(provider, &query, self.max_results)?;
        let mut req = SearchRequest::new(provider, query);
        req.max_results = self.max_results;
        req.include_domains = self.search_domain_filter.clone();
        req.country = self.country.clone();
        req.options = self.options.clone();
        Ok(req)
    }
}

/// LiteLLM's search answer: `{"object": "search", "results": [{title, url, snippet, date,
/// last_updated}]}`.
#[derive(Serialize)]
struct LiteLlmAnswer<'a> {
    object: &'static str,
    results: Vec<LiteLlmResult<'a>>,
}

#[derive(Serialize)]
struct LiteLlmResult<'a> {
    title: &'a str,
    url: &'a str,
    snippet: &'a str,
    date: Option<&'a str>,
    last_updated: Option<&'a str>,
}

async fn litellm_search(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<JsonBody<LiteLlmBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let JsonBody(body) = body.map_err(ApiError::from_json)?;
    let req = body.to_core(&provider)?;
    let tags = RequestTags::default();
    let metered = run(&state, &ctx, caller, &headers, &[], tags, req).await?;
    let results = metered
        .value
        .results
        .iter()
        .map(|r| LiteLlmResult {
            title: &r.title,
            url: &r.url,
            snippet: &r.snippet,
            date: r.published_date.as_deref(),
            last_updated: None,
        })
        .collect();
    let out = LiteLlmAnswer {
        object: "search",
        results,
    };
    Ok(respond(out, &metered))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Result<SearchRequest, ApiError> {
        serde_json::from_value::<SearchBody>(v)
            .map_err(|e| ApiError::invalid(None, e.to_string()))?
            .to_core()
    }

    #[test]
    fn the_gateway_body_maps_every_field() {
        let req = body(json!({
            "model": "tavily", "query": "rust", "max_results": 3, "time_range": "week",
            "include_domains": ["a.org"], "exclude_domains": ["b.org"], "country": "de",
            "language": "de", "include_content": true, "include_answer": true,
            "options": {"search_depth": "advanced"}, "fallbacks": ["exa"]
        }))
        .unwrap();
        assert_eq!(req.model, "tavily");
        assert_eq!(req.max_results, Some(3));
        assert_eq!(req.time_range, Some(TimeRange::Week));
        assert_eq!(
            (req.include_domains.len(), req.exclude_domains.len()),
            (1, 1)
        );
        assert!(req.include_content && req.include_answer);
        assert_eq!(req.options["search_depth"], "advanced");
    }

    #[test]
    fn the_gateway_body_refuses_by_name() {
        for (v, param) in [
            (json!({"model": "tavily", "query": " "}), "query"),
            (json!({"model": "", "query": "q"}), "model"),
            (
                json!({"model": "tavily", "query": "q", "max_results": 0}),
                "max_results",
            ),
            (
                json!({"model": "tavily", "query": "q", "time_range": "hour"}),
                "time_range",
            ),
        ] {
            let err = body(v).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param));
        }
        // An unknown top-level field is refused, not dropped.
        assert!(body(json!({"model": "tavily", "query": "q", "max_result": 3})).is_err());
    }

    #[test]
    fn litellm_bodies_join_lists_and_pass_the_rest_on() {
        let b: LiteLlmBody = serde_json::from_value(json!({
            "query": ["latest", "AI"], "max_results": 5, "search_domain_filter": ["arxiv.org"],
            "country": "US", "max_tokens_per_page": 1024, "topic": "news"
        }))
        .unwrap();
        let req = b.to_core("tavily").unwrap();
        assert_eq!(req.query, "latest AI");
        assert_eq!(req.include_domains, ["arxiv.org"]);
        assert_eq!(req.country.as_deref(), Some("US"));
        assert_eq!(req.options.len(), 1, "{:?}", req.options);
        assert_eq!(req.options["topic"], "news");
        let b: LiteLlmBody =
            serde_json::from_value(json!({"query": "q", "search_tool_name": "exa"})).unwrap();
        assert_eq!(
            b.to_core("tavily").unwrap_err().param.as_deref(),
            Some("search_tool_name")
        );
    }
}
