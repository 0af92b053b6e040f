//! Exa's error answers -> [`gateway_core::Error`].
//!
//! Exa answers `{"requestId", "error", "tag"}` (<https://exa.ai/docs/reference/error-codes>); a
//! rate-limited request may get `{"error"}` alone, and the official JS SDK also reads a
//! `message`. The HTTP status decides first, as Exa's docs advise; the tag only marks billing
//! stops, whatever their status.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateway_core::http::reqwest::header::HeaderMap;
use gateway_core::http::{error_message, is_html, kind_for_status, retry_after};
use gateway_core::{Error, ErrorKind};
use serde_json::Value;

use crate::wire::ErrorBody;

/// Tags of a billing stop: out of credits, or a spending budget reached (Exa's error-codes page
/// and the `ErrorResponse` tags of <https://exa.ai/docs/reference/answer>).
const QUOTA_TAGS: [&str; 3] = [
    "NO_MORE_CREDITS",
    "API_KEY_BUDGET_EXCEEDED",
    "TEAM_BUDGET_EXCEEDED",
];

/// The longest wait a rate-limit header is taken at.
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// The error for a non-2xx answer of Exa.
///
/// - 401 (and 403): the gateway's own key was refused: `Auth`, which the server answers as 502.
/// - 402, or any status with a credits or budget tag: `QuotaExceeded`, never retried.
/// - 429: `RateLimited`, after `Retry-After`, else Exa's `x-ratelimit-reset` (a Unix time in
///   seconds, recorded on Exa's answers:
///   <https://github.com/crewAIInc/crewAI/blob/f4731f5025f861c78e3af0487cc80bf5e7c64782/lib/crewai/tests/cassettes/agents/TestResponseFormatWithKickoff.test_kickoff_response_format_with_planning_and_tools.yaml#L1278-L1324>).
/// - 400 and 422: `InvalidRequest` with Exa's message; 404: `NotFound`.
/// - 5xx: `Upstream` (retryable), 504 included: Exa documents 500 and 503 as "retry".
pub(crate) fn classify(status: u16, headers: &HeaderMap, body: &str) -> Error {
    classify_at(status, headers, body, SystemTime::now())
}

/// [`classify`] at the time `now` (which a rate-limit reset time is counted from).
pub(crate) fn classify_at(status: u16, headers: &HeaderMap, body: &str, now: SystemTime) -> Error {
    let parsed: Option<ErrorBody> = serde_json::from_str(body).ok();
    let tag = parsed.as_ref().and_then(|b| b.tag.as_deref());
    let kind = match status {
        _ if tag.is_some_and(|t| QUOTA_TAGS.contains(&t)) => ErrorKind::QuotaExceeded,
        429 => ErrorKind::RateLimited {
            retry_after: retry_after(headers).or_else(|| reset_wait(headers, now)),
        },
        500..=599 => ErrorKind::Upstream { status },
        _ => kind_for_status(status, headers),
    };
    if let Some(request_id) = parsed.as_ref().and_then(|b| b.request_id.as_deref()) {
        // What Exa's support asks for; the error itself keeps no identifiers.
        tracing::debug!(status, request_id, tag, "Exa error");
    }
    let mut message = match &parsed {
        Some(body) => body_message(body),
        None if !is_html(headers, body) => body.trim().to_owned(),
        None => String::new(),
    };
    if message.is_empty() {
        message = format!("Exa answered HTTP {status}");
    }
    Error::new(kind, error_message([message]))
}

/// `error`, then `. message` (as exa-js joins them), then ` (TAG)`.
fn body_message(body: &ErrorBody) -> String {
    let mut message = match &body.error {
        Some(Value::String(s)) => s.trim().to_owned(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    };
    if let Some(extra) = body
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        if !message.is_empty() {
            message.push_str(". ");
        }
        message.push_str(extra);
    }
    if let Some(tag) = body.tag.as_deref().filter(|t| !t.is_empty()) {
        if message.is_empty() {
            message = tag.to_owned();
        } else {
            message = format!("{message} ({tag})");
        }
    }
    message
}

/// The wait until `x-ratelimit-reset` (Unix seconds); zero when that time has passed.
fn reset_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let reset: u64 = headers
        .get("x-ratelimit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now)).min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::http::ERROR_MESSAGE_LIMIT;
    use gateway_core::testing::headers;

    /// Fixed "now" of the table: 2026-02-11T01:02:58Z, the `Date` of the recorded answer whose
    /// `x-ratelimit-reset` was 1770771778.
    const NOW: u64 = 1_770_771_778;

    fn recorded(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/errors/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let fixture: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        fixture["json"].to_string()
    }

    /// Status, headers, body, expected kind, expected message.
    type Row = (
        u16,
        &'static [(&'static str, &'static str)],
        String,
        ErrorKind,
        &'static str,
    );

    #[test]
    fn classify_table() {
        use ErrorKind::*;
        let secs = |s| RateLimited {
            retry_after: Some(Duration::from_secs(s)),
        };
        let cases: Vec<Row> = vec![
            // The recorded bodies.
            (
                400,
                &[],
                recorded("400.json"),
                InvalidRequest,
                "Invalid request body | Validation error: Invalid enum value. Expected 'auto' | 'fast' | 'instant' | 'deep-lite' | 'deep' | 'deep-reasoning', received 'slow' at \"type\" (INVALID_REQUEST_BODY)",
            ),
            (401, &[], recorded("401.json"), Auth, "Invalid API key (INVALID_API_KEY)"),
            (
                402,
                &[],
                recorded("402.json"),
                QuotaExceeded,
                "You have exceeded your credits limit. Please top up to keep using Exa at dashboard.exa.ai (NO_MORE_CREDITS)",
            ),
            (
                429,
                &[],
                recorded("429.json"),
                RateLimited { retry_after: None },
                "You've exceeded your Exa rate limit of 10 requests per second. If you want this increased, please email hello@exa.ai :)",
            ),
            // Variants: no requestId, a budget tag, the spec's 429 with a tag, exa-js's `message`.
            (
                401,
                &[],
                r#"{"error":"Invalid API key","tag":"INVALID_API_KEY"}"#.into(),
                Auth,
                "Invalid API key (INVALID_API_KEY)",
            ),
            (
                402,
                &[],
                r#"{"error":"API key budget exceeded","tag":"API_KEY_BUDGET_EXCEEDED"}"#.into(),
                QuotaExceeded,
                "API key budget exceeded (API_KEY_BUDGET_EXCEEDED)",
            ),
            (
                429,
                &[],
                r#"{"error":"Team budget exceeded","tag":"TEAM_BUDGET_EXCEEDED"}"#.into(),
                QuotaExceeded,
                "Team budget exceeded (TEAM_BUDGET_EXCEEDED)",
            ),
            (
                429,
                &[("retry-after", "3")],
                r#"{"requestId":"7f9b","error":"You've exceeded the Exa rate limit for your network.","tag":"RATE_LIMIT_EXCEEDED"}"#.into(),
                secs(3),
                "You've exceeded the Exa rate limit for your network. (RATE_LIMIT_EXCEEDED)",
            ),
            (
                400,
                &[],
                r#"{"error":"Invalid request","message":"numResults must be at most 100"}"#.into(),
                InvalidRequest,
                "Invalid request. numResults must be at most 100",
            ),
            // Rate-limit waits: Retry-After first, else the reset time, never negative.
            (429, &[("x-ratelimit-reset", "1770771823")], "{}".into(), secs(45), "Exa answered HTTP 429"),
            (429, &[("x-ratelimit-reset", "1770771700")], "{}".into(), secs(0), "Exa answered HTTP 429"),
            (
                429,
                &[("retry-after", "2"), ("x-ratelimit-reset", "1770771823")],
                "{}".into(),
                secs(2),
                "Exa answered HTTP 429",
            ),
            (429, &[("x-ratelimit-reset", "soon")], "".into(), RateLimited { retry_after: None }, "Exa answered HTTP 429"),
            // Other statuses.
            (403, &[], r#"{"error":"Feature not enabled","tag":"FEATURE_DISABLED"}"#.into(), Auth, "Feature not enabled (FEATURE_DISABLED)"),
            (404, &[], r#"{"error":"Not found","tag":"NOT_FOUND"}"#.into(), NotFound, "Not found (NOT_FOUND)"),
            (422, &[], r#"{"error":"Could not process the URL"}"#.into(), InvalidRequest, "Could not process the URL"),
            (
                500,
                &[],
                r#"{"requestId":"9b1d","error":"Sorry, we encountered an error while processing your request. Please try again later","tag":"DEFAULT_ERROR"}"#.into(),
                Upstream { status: 500 },
                "Sorry, we encountered an error while processing your request. Please try again later (DEFAULT_ERROR)",
            ),
            (
                503,
                &[],
                r#"{"error":"Exa is temporarily over capacity. Please retry with exponential backoff.","tag":"SERVICE_OVERLOADED"}"#.into(),
                Upstream { status: 503 },
                "Exa is temporarily over capacity. Please retry with exponential backoff. (SERVICE_OVERLOADED)",
            ),
            (504, &[], "".into(), Upstream { status: 504 }, "Exa answered HTTP 504"),
            (502, &[("content-type", "text/html")], "<html>Bad gateway</html>".into(), Upstream { status: 502 }, "Exa answered HTTP 502"),
            (500, &[], "upstream connect error".into(), Upstream { status: 500 }, "upstream connect error"),
        ];
        let now = UNIX_EPOCH + Duration::from_secs(NOW);
        for (i, (status, h, body, kind, message)) in cases.iter().enumerate() {
            let err = classify_at(*status, &headers(h), body, now);
            assert_eq!(err.kind(), kind, "case {i}: {status} {body}");
            assert_eq!(err.message(), *message, "case {i}: {status} {body}");
        }
    }

    #[test]
    fn retryable_only_when_waiting_helps() {
        let now = UNIX_EPOCH + Duration::from_secs(NOW);
        let h = HeaderMap::new();
        assert!(classify_at(429, &h, &recorded("429.json"), now).is_retryable());
        assert!(classify_at(503, &h, "", now).is_retryable());
        for (status, name) in [(400, "400.json"), (401, "401.json"), (402, "402.json")] {
            assert!(!classify_at(status, &h, &recorded(name), now).is_retryable());
        }
    }

    #[test]
    fn a_long_message_is_cut_on_a_char_boundary() {
        let body = format!(r#"{{"error":"{}"}}"#, "é".repeat(ERROR_MESSAGE_LIMIT));
        let err = classify(400, &HeaderMap::new(), &body);
        assert!(err.message().len() <= ERROR_MESSAGE_LIMIT + '…'.len_utf8());
        assert!(err.message().ends_with('…'));
    }
}
