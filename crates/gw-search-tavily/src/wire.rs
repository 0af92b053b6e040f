//! The JSON of Tavily's search endpoint, field for field.
//!
//! Outbound types leave out what is not set; inbound types accept fields they do not name, and
//! read every field leniently (absent or `null` is `None`), because the answers carry more than
//! the gateway uses (`images`, `follow_up_questions`, `response_time`, which the docs' own
//! example writes as a string).
//!
//! References: <https://docs.tavily.com/documentation/api-reference/endpoint/search> and the
//! official Python SDK, which builds the request body and reads errors
//! (<https://github.com/tavily-ai/tavily-python/blob/bf176448a0d773871e01e88320669c9cfbb1cb82/tavily/tavily.py>).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// The body of `POST /search`.
///
/// <https://docs.tavily.com/documentation/api-reference/endpoint/search>; the SDK's `_search`
/// sends the same names and drops unset ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SearchRequest {
    pub(crate) query: String,
    /// 0 to 20; Tavily's default is 5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_results: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) time_range: Option<TimeRange>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) include_domains: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) exclude_domains: Vec<String>,
    /// A lowercase English country name from Tavily's list (see `country.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) country: Option<&'static str>,
    /// `true` (a quick answer), or `"basic"` / `"advanced"`; only `true` is sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) include_answer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) include_raw_content: Option<RawContent>,
    /// Adds `usage.credits` to the answer: what the call billed.
    pub(crate) include_usage: bool,
    /// The caller's `options`: Tavily's other documented fields, checked by name before.
    #[serde(flatten)]
    pub(crate) options: Map<String, Value>,
}

/// `time_range`: how far back from today results may be published (Tavily also takes the
/// first letters, `d`, `w`, `m`, `y`).
///
/// <https://docs.tavily.com/documentation/api-reference/endpoint/search#body-time-range>
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TimeRange {
    Day,
    Week,
    Month,
    Year,
}

/// `include_raw_content`: the format of each result's `raw_content` (`true` means markdown).
///
/// <https://docs.tavily.com/documentation/api-reference/endpoint/search#body-include-raw-content>
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawContent {
    Markdown,
}

/// The answer of `POST /search`: `query`, `answer`, `results`, `usage` (with `include_usage`),
/// `auto_parameters` (with `auto_parameters: true`), `request_id`; the rest is not read.
///
/// <https://docs.tavily.com/documentation/api-reference/endpoint/search>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct SearchResponse {
    #[serde(default)]
    pub(crate) query: Option<String>,
    /// `null` unless `include_answer` was sent.
    #[serde(default)]
    pub(crate) answer: Option<String>,
    /// Absent means none (the SDK does `setdefault("results", [])`).
    #[serde(default)]
    pub(crate) results: Option<Vec<SearchResult>>,
    #[serde(default)]
    pub(crate) usage: Option<Usage>,
    /// The parameters Tavily picked with `auto_parameters: true`, e.g.
    /// `{"topic": "general", "search_depth": "basic"}` (the docs' example answer).
    #[serde(default)]
    pub(crate) auto_parameters: Option<Value>,
    #[serde(default)]
    pub(crate) request_id: Option<String>,
}

/// One of `results`.
///
/// <https://docs.tavily.com/documentation/api-reference/endpoint/search>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct SearchResult {
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) url: Option<String>,
    /// The query-relevant snippet (chunks joined by ` [...] ` with `advanced` depth).
    #[serde(default)]
    pub(crate) content: Option<String>,
    /// Relevance, 0 to 1.
    #[serde(default)]
    pub(crate) score: Option<f64>,
    /// With `topic: "news"`, as an HTTP date (`"Fri, 28 Nov 2025 06:34:57 GMT"`).
    #[serde(default)]
    pub(crate) published_date: Option<String>,
    /// The page, with `include_raw_content`; `null` otherwise, or when Tavily has none.
    #[serde(default)]
    pub(crate) raw_content: Option<String>,
}

/// `usage`, present with `include_usage: true`.
///
/// <https://docs.tavily.com/documentation/api-reference/endpoint/search>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Usage {
    /// The credits the call billed; a number, read as the JSON wrote it.
    #[serde(default)]
    pub(crate) credits: Option<Number>,
}

/// An error answer. Tavily's own: `{"detail": {"error": "..."}}` (the SDK's
/// `_handle_error_response` reads `detail.error`); FastAPI's validation errors (422):
/// `{"detail": [{"loc": [...], "msg": "...", ...}]}`; the keyless envelope:
/// `{"error": {"code", "message", "retry_after_seconds", ...}}` (the SDK's
/// `_raise_keyless_envelope`).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) detail: Option<ErrorDetail>,
    #[serde(default)]
    pub(crate) error: Option<ErrorField>,
}

/// `detail`: Tavily's object, FastAPI's list, or a plain string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum ErrorDetail {
    Message(String),
    Validation(Vec<ValidationError>),
    Object(DetailObject),
    Other(Value),
}

/// `detail` as Tavily writes it: `{"error": "..."}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct DetailObject {
    #[serde(default)]
    pub(crate) error: Option<Value>,
}

/// One FastAPI validation error: where (`["body", "query"]`) and what.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ValidationError {
    #[serde(default)]
    pub(crate) loc: Vec<Value>,
    #[serde(default)]
    pub(crate) msg: Option<String>,
}

/// A top-level `error`: the keyless envelope, or a plain string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum ErrorField {
    Message(String),
    Envelope(ErrorEnvelope),
    Other(Value),
}

/// The keyless envelope's `error`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorEnvelope {
    #[serde(default)]
    pub(crate) code: Option<String>,
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default)]
    pub(crate) retry_after_seconds: Option<f64>,
}
