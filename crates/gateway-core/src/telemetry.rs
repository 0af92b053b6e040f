//! Telemetry without a telemetry dependency: the gateway describes each request as `tracing`
//! spans named and attributed per the OpenTelemetry GenAI semantic conventions
//! (<https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/>), under the target
//! [`OTEL_TARGET`], and reports each finished request to an [`Observer`] for metrics. A binary
//! that wants OpenTelemetry bridges the spans (`tracing-opentelemetry`) and implements the
//! observer; a library user who wants neither pays for neither.
//!
//! Span fields follow the conventions' names (`gen_ai.operation.name`, `gen_ai.usage.input_tokens`,
//! `error.type`, ...), plus `otel.name` / `otel.kind` / `otel.status_code`, which the bridge turns
//! into the span's name, kind and status. The gateway's own attributes are under `gateway.`.

use crate::{Amount, Error, RouteId, UsageRecord};

/// The `tracing` target of every span and event the gateway emits for OpenTelemetry: a log
/// subscriber can leave them out (`llm_gateway::otel=off`) while an OpenTelemetry layer takes them.
pub const OTEL_TARGET: &str = "llm_gateway::otel";

/// The `gen_ai.provider.name` of a gateway provider id: the conventions' well-known value where
/// they define one (`gcp.gemini` for the Gemini API at generativelanguage.googleapis.com), else
/// the gateway's own id (`hf`, `tavily`, `serper`, `exa`).
pub fn provider_name(provider: &str) -> &str {
    match provider {
        "gemini" => "gcp.gemini",
        other => other,
    }
}

/// A request that ended after it was admitted: what the metrics need.
#[derive(Debug, Clone, Copy)]
pub struct RequestEnd<'a> {
    /// The conventions' operation name (`chat`, `embeddings`, `retrieval`).
    pub operation: &'static str,
    /// The model the caller asked for (a route or an alias).
    pub request_model: &'a str,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// The usage-log row of the request: its serving route, outcome, usage, cost, latency,
    /// retries and attempts.
    pub record: &'a UsageRecord,
    /// What admission reserved, when plans are checked.
    pub reserved: Option<&'a Amount>,
}

/// A request refused before any provider was called (the plan, an unknown model, a capability
/// the route lacks).
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    /// The conventions' operation name.
    pub operation: &'static str,
    /// The model the caller asked for.
    pub request_model: &'a str,
    /// The route it would have used, when one was resolved.
    pub route: Option<&'a RouteId>,
    /// Why it was refused.
    pub error: &'a Error,
}

/// Receives every request's end, for metrics. Called on the request's task, once per request;
/// keep it cheap (update counters, never block).
pub trait Observer: Send + Sync + 'static {
    /// A request that was admitted ended (answered, failed, or its stream closed).
    fn request_ended(&self, end: &RequestEnd<'_>);

    /// A request was refused before any provider call.
    fn refused(&self, refusal: &Refusal<'_>);

    /// The response cache looked a request of `operation` up: `outcome` is `hit`,
    /// `semantic_hit`, `miss`, `skip`, or `unavailable` (the cache was bypassed because its
    /// backend failed or was too slow).
    fn cache_lookup(&self, operation: &'static str, outcome: &'static str) {
        let _ = (operation, outcome);
    }
}

/// Whether (and how much of) prompts and answers are recorded on spans. Off by default: content
/// can hold personal data and secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContentCapture {
    /// Record the input and output messages as the conventions' event.
    pub enabled: bool,
    /// The most bytes of each of input and output recorded (the rest is cut, at a character
    /// boundary, and the cut marked).
    pub max_bytes: usize,
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut.
pub fn truncate_content(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_at_a_character_boundary() {
        assert_eq!(truncate_content("héllo", 10), "héllo");
        assert_eq!(truncate_content("héllo", 2), "h…");
        assert_eq!(truncate_content("héllo", 3), "hé…");
    }

    #[test]
    fn gemini_has_the_well_known_provider_name() {
        assert_eq!(provider_name("gemini"), "gcp.gemini");
        assert_eq!(provider_name("hf"), "hf");
    }
}
