//! The JSON of Exa's `/search` and `/answer`, field for field (camelCase on the wire).
//!
//! Outbound types leave out what is not set and carry the caller's provider options flattened in
//! (checked by name first, in `convert`). Inbound types name only what the gateway reads and
//! accept every other field: Exa adds top-level fields without notice (`effectiveFilters`,
//! `warnings`, `notices`) and omits unknown values rather than sending `null`, so everything is
//! optional.
//!
//! Reference: <https://exa.ai/docs/reference/search>, <https://exa.ai/docs/reference/answer>,
//! <https://exa.ai/docs/reference/error-codes>, and the official SDK
//! (<https://github.com/exa-labs/exa-py/blob/7537a5ebc4175143e3a582eb0f9239d3a1bbf311/exa_py/api.py>).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body of `POST /search`.
///
/// <https://exa.ai/docs/reference/search>
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchRequest {
    pub(crate) query: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) num_results: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) include_domains: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) exclude_domains: Vec<String>,
    /// `YYYY-MM-DD`: a date alone is accepted (recorded in
    /// <https://github.com/crewAIInc/crewAI/blob/f4731f5025f861c78e3af0487cc80bf5e7c64782/lib/crewai/tests/cassettes/agents/TestResponseFormatWithKickoff.test_kickoff_response_format_with_planning_and_tools.yaml#L334-L357>).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) start_published_date: Option<String>,
    /// A two-letter ISO 3166-1 country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) user_location: Option<String>,
    pub(crate) contents: Contents,
    /// The caller's other documented fields (`type`, `category`, `includeText`, ...), as given.
    #[serde(flatten)]
    pub(crate) options: Map<String, Value>,
}

/// `contents` of a search: what page content to return with each result.
///
/// <https://exa.ai/docs/reference/search> (`contents`), SDK `ContentsOptions`
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub(crate) struct Contents {
    /// `true` or `{query, maxCharacters}`: short query-relevant excerpts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) highlights: Option<Value>,
    /// `true` or `{maxCharacters, includeHtmlTags, verbosity}`: the page text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) text: Option<Value>,
    /// The caller's other `contents` keys (`summary`, `livecrawl`, `maxAgeHours`, ...).
    #[serde(flatten)]
    pub(crate) rest: Map<String, Value>,
}

/// The body of `POST /answer`.
///
/// <https://exa.ai/docs/reference/answer>
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnswerRequest {
    pub(crate) query: String,
    /// Whether citations carry their page text.
    pub(crate) text: bool,
    /// A two-letter ISO 3166-1 country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) user_location: Option<String>,
    /// The caller's other documented fields (`model`, `systemPrompt`, `outputSchema`), as given.
    #[serde(flatten)]
    pub(crate) options: Map<String, Value>,
}

/// The answer of `POST /search`.
///
/// <https://exa.ai/docs/reference/search> (response), SDK `SearchResponse`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchResponse {
    #[serde(default)]
    pub(crate) request_id: Option<String>,
    /// What `auto` ran as (`neural`, `fast`, ...; recorded as `""` too).
    #[serde(default)]
    pub(crate) resolved_search_type: Option<String>,
    /// Missing or `null` is no results.
    #[serde(default)]
    pub(crate) results: Option<Vec<ResultItem>>,
    /// The synthesized output of deep search types and of `outputSchema`.
    #[serde(default)]
    pub(crate) output: Option<Output>,
    #[serde(default)]
    pub(crate) cost_dollars: Option<CostDollars>,
}

/// One of `results` (and of `/answer`'s `citations`).
///
/// <https://exa.ai/docs/reference/search> (response `results`), SDK `Result`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResultItem {
    /// The URL again, as a temporary document id.
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) title: Option<String>,
    /// Absent for `auto`/`neural` searches (recorded), present on some endpoints.
    #[serde(default)]
    pub(crate) score: Option<f64>,
    /// ISO 8601 (`2025-12-29T00:00:00.000Z`), or absent.
    #[serde(default)]
    pub(crate) published_date: Option<String>,
    #[serde(default)]
    pub(crate) text: Option<String>,
    #[serde(default)]
    pub(crate) highlights: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) summary: Option<String>,
}

/// `output` of a search: a string, or an object matching `outputSchema`.
///
/// SDK `parse_deep_search_output`
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Output {
    #[serde(default)]
    pub(crate) content: Option<Value>,
}

/// `costDollars`: the breakdown varies by endpoint and over time; only `total` is read.
///
/// <https://exa.ai/docs/reference/search> (`CostDollars`)
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CostDollars {
    #[serde(default)]
    pub(crate) total: Option<f64>,
}

/// The answer of `POST /answer`.
///
/// <https://exa.ai/docs/reference/answer> (`AnswerResponse`)
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnswerResponse {
    #[serde(default)]
    pub(crate) request_id: Option<String>,
    /// A string, or an object matching `outputSchema`.
    #[serde(default)]
    pub(crate) answer: Option<Value>,
    /// Missing or `null` is no citations.
    #[serde(default)]
    pub(crate) citations: Option<Vec<ResultItem>>,
    #[serde(default)]
    pub(crate) cost_dollars: Option<CostDollars>,
}

/// An error answer: `{"requestId", "error", "tag"}`; a 429 may carry `error` alone, and the
/// official JS SDK also reads a `message`.
///
/// <https://exa.ai/docs/reference/error-codes>,
/// <https://github.com/exa-labs/exa-js/blob/8dfeef310007b5b8e8da26fb788acf59d94fb925/src/index.ts#L958-L962>
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) request_id: Option<String>,
    /// A string in every recorded body; anything else is shown as JSON.
    #[serde(default)]
    pub(crate) error: Option<Value>,
    #[serde(default)]
    pub(crate) message: Option<String>,
    /// `INVALID_API_KEY`, `NO_MORE_CREDITS`, ...: an open set.
    #[serde(default)]
    pub(crate) tag: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_leave_out_what_is_unset() {
        let req = SearchRequest {
            query: "q".into(),
            num_results: None,
            include_domains: vec![],
            exclude_domains: vec![],
            start_published_date: None,
            user_location: None,
            contents: Contents {
                highlights: Some(json!(true)),
                ..Contents::default()
            },
            options: Map::new(),
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"query": "q", "contents": {"highlights": true}})
        );
    }

    #[test]
    fn responses_take_nulls_and_unknown_fields() {
        let r: SearchResponse = serde_json::from_value(json!({
            "results": null, "effectiveFilters": {}, "warnings": [], "costDollars": {"total": 0.007, "search": {"neural": 0.007}}
        }))
        .unwrap();
        assert!(r.results.is_none());
        assert_eq!(r.cost_dollars.unwrap().total, Some(0.007));
        let item: ResultItem =
            serde_json::from_value(json!({"url": "u", "author": null, "favicon": "f"})).unwrap();
        assert_eq!(item.url.as_deref(), Some("u"));
    }
}
