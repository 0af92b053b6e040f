//! Pure mapping between the core search types and Tavily's JSON: no IO here.
//!
//! Every refusal happens in [`search_request`], which [`check`] runs before any IO, so the
//! router can fall back on what Tavily cannot do (`Unsupported`) and stop on what no provider
//! could (`InvalidRequest`).

use gateway_core::{
    Billing, Charge, Error, ErrorKind, PriceUnit, Result, SearchRequest, SearchResponse,
    SearchResult, TimeRange,
};
use serde_json::Value;

use crate::{ENDPOINTS, PROVIDER, country, wire};

/// The most results one search returns ("0 <= x <= 20",
/// <https://docs.tavily.com/documentation/api-reference/endpoint/search#body-max-results>).
pub(crate) const MAX_RESULTS: u32 = 20;

/// Tavily's request fields that `options` may set, as documented: the SDK's `_search` parameters
/// (<https://github.com/tavily-ai/tavily-python/blob/bf176448a0d773871e01e88320669c9cfbb1cb82/tavily/tavily.py#L167-L187>)
/// and the API reference's `include_image_descriptions` and `chunks_per_source`
/// (<https://docs.tavily.com/documentation/api-reference/endpoint/search>), less the fields the
/// core request already has ([`CORE_FIELDS`]) and `include_usage`, which the gateway sets.
const OPTIONS: [&str; 11] = [
    "search_depth",
    "topic",
    "start_date",
    "end_date",
    "days",
    "chunks_per_source",
    "include_images",
    "include_image_descriptions",
    "include_favicon",
    "auto_parameters",
    "exact_match",
];

/// Tavily fields the core request sets, and the core field to use instead.
const CORE_FIELDS: [(&str, &str); 8] = [
    ("query", "query"),
    ("max_results", "max_results"),
    ("time_range", "time_range"),
    ("include_domains", "include_domains"),
    ("exclude_domains", "exclude_domains"),
    ("country", "country"),
    ("include_answer", "include_answer"),
    ("include_raw_content", "include_content"),
];

/// `search_depth` values and the credits each costs: "basic/fast/ultra-fast = 1 API Credit;
/// advanced = 2 API Credits" (the `search_depth` description of
/// <https://docs.tavily.com/documentation/api-reference/endpoint/search>;
/// <https://docs.tavily.com/documentation/api-credits>).
const DEPTHS: [(&str, u64); 4] = [
    ("basic", 1),
    ("advanced", 2),
    ("fast", 1),
    ("ultra-fast", 1),
];

/// Tavily's default `search_depth`.
const DEFAULT_DEPTH: &str = "basic";

/// `topic` values (the SDK's `Literal["general", "news", "finance"]`).
const TOPICS: [&str; 3] = ["general", "news", "finance"];

/// Refuses, before any IO, what Tavily cannot do with `req`.
pub(crate) fn check(req: &SearchRequest) -> Result<()> {
    search_request(req).map(drop)
}

/// The body of `POST /search` for `req`.
///
/// - `model` must be `search` (`NotFound` otherwise); `query` must not be blank.
/// - `max_results` above 20 and `language` (Tavily has no such field) are `Unsupported`.
/// - `country` is an ISO 3166-1 alpha-2 code, or a name on Tavily's list, sent as that name;
///   anything else is `InvalidRequest`, and so is a country with a `topic` other than
///   `general` ("Available only if topic is general").
/// - `include_content` asks for each page as markdown; `include_answer` for Tavily's answer;
///   `include_usage` is always sent, for billing.
/// - `options` must name Tavily's documented fields and not the core ones; `search_depth`,
///   `topic` and `auto_parameters`, which the gateway reads, must have a valid value; the rest
///   go as given, for Tavily to validate.
pub(crate) fn search_request(req: &SearchRequest) -> Result<wire::SearchRequest> {
    if !ENDPOINTS.contains(&req.model.as_str()) {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "Tavily has no search endpoint `{}`; it has: {}",
                req.model,
                ENDPOINTS.join(", ")
            ),
        )
        .with_provider(PROVIDER)
        .with_param("model"));
    }
    if req.query.trim().is_empty() {
        return Err(invalid("`query` must not be empty", "query"));
    }
    if let Some(n) = req.max_results.filter(|&n| n > MAX_RESULTS) {
        return Err(unsupported(
            format!("Tavily returns at most {MAX_RESULTS} results per search, not {n}"),
            "max_results",
        ));
    }
    if req.language.is_some() {
        return Err(unsupported(
            "Tavily search has no language setting",
            "language",
        ));
    }
    check_options(req)?;
    let country = match req.country.as_deref() {
        Some(value) => Some(country(value, req)?),
        None => None,
    };
    Ok(wire::SearchRequest {
        query: req.query.clone(),
        max_results: req.max_results,
        time_range: req.time_range.map(time_range).transpose()?,
        include_domains: req.include_domains.clone(),
        exclude_domains: req.exclude_domains.clone(),
        country,
        include_answer: req.include_answer.then_some(true),
        include_raw_content: req.include_content.then_some(wire::RawContent::Markdown),
        include_usage: true,
        options: req.options.clone(),
    })
}

fn check_options(req: &SearchRequest) -> Result<()> {
    for (name, value) in &req.options {
        let param = format!("options.{name}");
        if let Some((_, core)) = CORE_FIELDS.iter().find(|(field, _)| field == name) {
            return Err(invalid(
                format!("`{param}`: set the request's `{core}` field instead"),
                param,
            ));
        }
        if name == "include_usage" {
            return Err(invalid(
                format!(
                    "`{param}`: the gateway always sends `include_usage: true`, to bill the \
                     credits Tavily reports"
                ),
                param,
            ));
        }
        if !OPTIONS.contains(&name.as_str()) {
            return Err(invalid(
                format!(
                    "`{param}` is not a Tavily search option; Tavily takes: {}",
                    OPTIONS.join(", ")
                ),
                param,
            ));
        }
        let valid = match name.as_str() {
            "search_depth" => one_of(value, &DEPTHS.map(|(d, _)| d)),
            "topic" => one_of(value, &TOPICS),
            "auto_parameters" => value.is_boolean(),
            _ => true,
        };
        if !valid {
            let expected = match name.as_str() {
                "search_depth" => DEPTHS.map(|(d, _)| d).join(", "),
                "topic" => TOPICS.join(", "),
                _ => "true or false".to_owned(),
            };
            return Err(invalid(
                format!("`{param}` must be one of: {expected}; not {value}"),
                param,
            ));
        }
    }
    // Tavily's own MCP server drops `time_range` when a date is set, "or else start_date and
    // end_date will always cause errors when sent"
    // (https://github.com/tavily-ai/tavily-mcp/blob/7bcf90750ef5180968b78abb891eed837d9f7c20/src/index.ts#L617-L622):
    // refused here rather than guessing which one the caller meant.
    if req.time_range.is_some()
        && let Some(name) = ["start_date", "end_date"]
            .into_iter()
            .find(|n| req.options.contains_key(*n))
    {
        return Err(invalid(
            format!(
                "`options.{name}` cannot be combined with `time_range`: Tavily takes one or the \
                 other"
            ),
            format!("options.{name}"),
        ));
    }
    Ok(())
}

fn one_of(value: &Value, allowed: &[&str]) -> bool {
    value.as_str().is_some_and(|v| allowed.contains(&v))
}

/// Tavily's name for the request's `country`, refused with a `topic` other than `general`.
fn country(value: &str, req: &SearchRequest) -> Result<&'static str> {
    let name = country::tavily_name(value).ok_or_else(|| {
        invalid(
            format!(
                "`country` must be an ISO 3166-1 alpha-2 code of a country Tavily supports (or \
                 its name on Tavily's list), not `{value}`"
            ),
            "country",
        )
    })?;
    let topic = req.options.get("topic").and_then(Value::as_str);
    if let Some(topic) = topic.filter(|t| *t != "general") {
        return Err(invalid(
            format!("Tavily boosts a `country` only for `topic: \"general\"`, not `{topic}`"),
            "country",
        ));
    }
    Ok(name)
}

fn time_range(range: TimeRange) -> Result<wire::TimeRange> {
    Ok(match range {
        TimeRange::Day => wire::TimeRange::Day,
        TimeRange::Week => wire::TimeRange::Week,
        TimeRange::Month => wire::TimeRange::Month,
        TimeRange::Year => wire::TimeRange::Year,
        other => {
            return Err(unsupported(
                format!("Tavily has no time range {other:?}"),
                "time_range",
            ));
        }
    })
}

/// What `req` will bill, before the call: one search at its depth, in credits.
///
/// The depth is `options.search_depth`, else `advanced` when `auto_parameters` is on (Tavily
/// "may automatically set search_depth to advanced ... This uses 2 API credits", so the plan
/// check counts the most it can cost), else Tavily's default, `basic`.
pub(crate) fn estimate(req: &SearchRequest) -> Billing {
    let explicit = req.options.get("search_depth").and_then(Value::as_str);
    let auto = req.options.get("auto_parameters") == Some(&Value::Bool(true));
    let depth = match explicit {
        Some(depth) => depth,
        None if auto => "advanced",
        None => DEFAULT_DEPTH,
    };
    depth_billing(depth)
}

/// One search at `depth`: its credits as units, priced as a search of that depth.
fn depth_billing(depth: &str) -> Billing {
    let credits = DEPTHS
        .iter()
        .find(|(d, _)| *d == depth)
        .map_or(1, |(_, credits)| *credits);
    Billing::new(
        credits,
        vec![Charge::new(PriceUnit::Search, 1).depth(depth)],
    )
}

/// The core answer to `req` from Tavily's `answer`.
///
/// Each result's `content` (Tavily's snippet) is the snippet, and its `raw_content` the
/// content, when asked for. What the call bills: the credits of `usage.credits` when Tavily
/// reports them (a fraction of a credit, never seen, counts as a whole one), else the estimate
/// for the depth Tavily says it used (`auto_parameters.search_depth`) or was asked for.
pub(crate) fn search_response(req: &SearchRequest, answer: wire::SearchResponse) -> SearchResponse {
    if let Some(id) = &answer.request_id {
        tracing::debug!(request_id = %id, "Tavily search answered");
    }
    let results = answer
        .results
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let mut out = SearchResult::new(
                r.title.unwrap_or_default(),
                r.url.unwrap_or_default(),
                r.content.unwrap_or_default(),
            );
            out.score = r.score;
            out.published_date = r.published_date;
            out.content = r.raw_content.filter(|_| req.include_content);
            out
        })
        .collect();
    let reported = answer
        .usage
        .and_then(|u| u.credits)
        .and_then(|credits| whole_credits(&credits));
    let billing = match reported {
        Some(credits) => Billing::new(credits, vec![Charge::new(PriceUnit::Credit, credits)]),
        None => {
            let chosen = answer
                .auto_parameters
                .as_ref()
                .and_then(|a| a.get("search_depth"))
                .and_then(Value::as_str)
                .filter(|d| DEPTHS.iter().any(|(known, _)| known == d));
            match chosen {
                Some(depth) => depth_billing(depth),
                None => estimate(req),
            }
        }
    };
    let query = answer.query.unwrap_or_else(|| req.query.clone());
    let mut out = SearchResponse::new(req.model.clone(), query, results, billing);
    out.answer = answer.answer.filter(|a| !a.trim().is_empty());
    out
}

/// `credits` as a whole number: a fraction rounds up; a negative or absurd value is ignored.
fn whole_credits(credits: &serde_json::Number) -> Option<u64> {
    if let Some(n) = credits.as_u64() {
        return Some(n);
    }
    let f = credits.as_f64()?;
    (0.0..1e9).contains(&f).then(|| f.ceil() as u64)
}

fn invalid(message: impl Into<String>, param: impl Into<String>) -> Error {
    Error::invalid_request(message)
        .with_provider(PROVIDER)
        .with_param(param)
}

fn unsupported(message: impl Into<String>, param: impl Into<String>) -> Error {
    Error::unsupported(message)
        .with_provider(PROVIDER)
        .with_param(param)
}

#[cfg(test)]
mod tests;
