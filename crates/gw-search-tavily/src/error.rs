//! Tavily error answers -> [`gateway_core::Error`].
//!
//! Tavily writes `{"detail": {"error": "..."}}`, which is where the official SDK reads the
//! message (`_handle_error_response`,
//! <https://github.com/tavily-ai/tavily-python/blob/bf176448a0d773871e01e88320669c9cfbb1cb82/tavily/tavily.py#L116-L143>);
//! request validation failures are FastAPI's `{"detail": [{"loc", "msg", ...}]}`; keyless
//! clients get `{"error": {"code", "message", "retry_after_seconds"}}`.

use gateway_core::http::reqwest::header::HeaderMap;
use gateway_core::http::{error_message, is_html, kind_for_status, retry_after};
use gateway_core::{Error, ErrorKind};

use crate::wire::{ErrorBody, ErrorDetail, ErrorField};

/// The error for a non-2xx answer of Tavily.
///
/// - 401 (and 403): the gateway's key was refused: `Auth`, which the server answers as 502.
/// - 432 ("This request exceeds your plan's set usage limit", seen in real answers) and 433 (the
///   pay-as-you-go limit, per Tavily's docs; no body seen): the account is out of credit for now:
///   `QuotaExceeded`, not retried. The SDK raises `ForbiddenError` for both, as for 403.
/// - 429: `RateLimited`, with the delay of `Retry-After`, else of the keyless envelope's
///   `retry_after_seconds`.
/// - 400 and 422: `InvalidRequest`, with Tavily's message.
/// - 5xx: `Upstream`, retryable.
pub(crate) fn classify(status: u16, headers: &HeaderMap, body: &str) -> Error {
    let parsed: Option<ErrorBody> = serde_json::from_str(body).ok();
    let kind = match status {
        432 | 433 => ErrorKind::QuotaExceeded,
        429 => ErrorKind::RateLimited {
            retry_after: retry_after(headers).or_else(|| body_retry_after(parsed.as_ref())),
        },
        500..=599 => ErrorKind::Upstream { status },
        _ => kind_for_status(status, headers),
    };
    let mut parts = Vec::new();
    match &parsed {
        Some(body) => body_messages(body, &mut parts),
        None if !is_html(headers, body) => parts.push(body.to_owned()),
        None => {}
    }
    let mut message = error_message(parts);
    if message.is_empty() {
        message = format!("Tavily answered HTTP {status}");
    }
    Error::new(kind, message)
}

fn body_retry_after(body: Option<&ErrorBody>) -> Option<std::time::Duration> {
    match body?.error.as_ref()? {
        ErrorField::Envelope(e) => e
            .retry_after_seconds
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| std::time::Duration::from_secs_f64(s.min(86_400.0))),
        _ => None,
    }
}

fn body_messages(body: &ErrorBody, out: &mut Vec<String>) {
    match &body.detail {
        Some(ErrorDetail::Message(message)) => out.push(message.clone()),
        Some(ErrorDetail::Object(object)) => match &object.error {
            Some(serde_json::Value::String(message)) => out.push(message.clone()),
            Some(serde_json::Value::Null) | None => {}
            Some(other) => out.push(other.to_string()),
        },
        Some(ErrorDetail::Validation(items)) => {
            for item in items {
                let at: Vec<String> = item
                    .loc
                    .iter()
                    .map(|part| match part {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                let msg = item.msg.as_deref().unwrap_or("invalid");
                out.push(if at.is_empty() {
                    msg.to_owned()
                } else {
                    format!("{}: {msg}", at.join("."))
                });
            }
        }
        Some(ErrorDetail::Other(serde_json::Value::Null)) | None => {}
        Some(ErrorDetail::Other(other)) => out.push(other.to_string()),
    }
    match &body.error {
        Some(ErrorField::Message(message)) => out.push(message.clone()),
        Some(ErrorField::Envelope(e)) => match (&e.code, &e.message) {
            (Some(code), Some(message)) => out.push(format!("{code}: {message}")),
            (None, Some(message)) => out.push(message.clone()),
            (Some(code), None) => out.push(code.clone()),
            (None, None) => {}
        },
        Some(ErrorField::Other(serde_json::Value::Null)) | None => {}
        Some(ErrorField::Other(other)) => out.push(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A recorded error answer of this crate: `tests/fixtures/errors/<name>`.
    fn recorded(name: &str) -> (u16, HeaderMap, String) {
        gateway_core::testing::recorded_error(env!("CARGO_MANIFEST_DIR"), name)
    }
    use gateway_core::http::ERROR_MESSAGE_LIMIT;
    use gateway_core::testing::headers;

    #[test]
    fn classify_the_recorded_error_bodies() {
        use ErrorKind::*;
        let cases: [(&str, ErrorKind, &str); 5] = [
            (
                "401.json",
                Auth,
                "Unauthorized: missing or invalid API key.",
            ),
            ("422.json", InvalidRequest, "body.query: Field required"),
            (
                "429.json",
                RateLimited { retry_after: None },
                "Tavily answered HTTP 429",
            ),
            (
                "432.json",
                QuotaExceeded,
                "This request exceeds your plan's set usage limit",
            ),
            (
                "500.json",
                Upstream { status: 500 },
                "Internal Server Error",
            ),
        ];
        for (file, kind, message) in cases {
            let (status, h, body) = recorded(file);
            let err = classify(status, &h, &body);
            assert_eq!(err.kind(), &kind, "{file}: {err}");
            assert_eq!(err.message(), message, "{file}");
        }
    }

    #[test]
    fn classify_table() {
        use ErrorKind::*;
        type Case = (
            u16,
            &'static [(&'static str, &'static str)],
            &'static str,
            ErrorKind,
            &'static str,
        );
        let cases: [Case; 12] = [
            // The SDK's envelope, whatever the status.
            (
                401,
                &[],
                r#"{"detail":{"error":"Invalid API key"}}"#,
                Auth,
                "Invalid API key",
            ),
            (
                403,
                &[],
                r#"{"detail":{"error":"Forbidden"}}"#,
                Auth,
                "Forbidden",
            ),
            (
                432,
                &[("retry-after", "5")],
                r#"{"detail":{"error":"This request exceeds your plan's set usage limit"}}"#,
                QuotaExceeded,
                "This request exceeds your plan's set usage limit",
            ),
            (433, &[], "", QuotaExceeded, "Tavily answered HTTP 433"),
            // FastAPI's validation list: every item, where and what.
            (
                422,
                &[],
                r#"{"detail":[{"type":"missing","loc":["body","query"],"msg":"Field required","input":{}},{"loc":["body","max_results"],"msg":"Input should be less than or equal to 20"}]}"#,
                InvalidRequest,
                "body.query: Field required; body.max_results: Input should be less than or equal to 20",
            ),
            (
                400,
                &[],
                r#"{"detail":"max_results must be between 0 and 20"}"#,
                InvalidRequest,
                "max_results must be between 0 and 20",
            ),
            // 429: `Retry-After` first, then the keyless envelope's hint.
            (
                429,
                &[("retry-after", "7")],
                r#"{"detail":{"error":"Too many requests"}}"#,
                RateLimited {
                    retry_after: Some(Duration::from_secs(7)),
                },
                "Too many requests",
            ),
            (
                429,
                &[],
                r#"{"error":{"code":"rate_limited","message":"Slow down","window":"minute","retry_after_seconds":30,"next_actions":[]}}"#,
                RateLimited {
                    retry_after: Some(Duration::from_secs(30)),
                },
                "rate_limited: Slow down",
            ),
            (
                429,
                &[],
                "Too Many Requests",
                RateLimited { retry_after: None },
                "Too Many Requests",
            ),
            // 5xx, including the ones `kind_for_status` would call a timeout.
            (
                503,
                &[],
                r#"{"detail":{"error":"Service temporarily unavailable"}}"#,
                Upstream { status: 503 },
                "Service temporarily unavailable",
            ),
            (
                504,
                &[("content-type", "text/html")],
                "<html><body>504 Gateway Time-out</body></html>",
                Upstream { status: 504 },
                "Tavily answered HTTP 504",
            ),
            (404, &[], r#"{"detail":"Not Found"}"#, NotFound, "Not Found"),
        ];
        for (i, (status, h, body, kind, message)) in cases.into_iter().enumerate() {
            let err = classify(status, &headers(h), body);
            assert_eq!(err.kind(), &kind, "case {i}: {status} {body}");
            assert_eq!(err.message(), message, "case {i}: {status} {body}");
        }
    }

    #[test]
    fn retry_hints_decide_what_is_retried() {
        let rate = classify(429, &headers(&[("retry-after", "1.5")]), "{}");
        assert_eq!(rate.retry_after(), Some(Duration::from_millis(1500)));
        assert!(rate.is_retryable());
        let quota = classify(432, &headers(&[("retry-after", "1")]), "{}");
        assert!(!quota.is_retryable());
        assert_eq!(quota.retry_after(), None);
        assert!(!classify(401, &HeaderMap::new(), "{}").is_retryable());
        assert!(classify(500, &HeaderMap::new(), "{}").is_retryable());
    }

    #[test]
    fn a_long_message_is_cut_on_a_char_boundary() {
        let body = format!(
            r#"{{"detail":{{"error":"{}"}}}}"#,
            "é".repeat(ERROR_MESSAGE_LIMIT)
        );
        let err = classify(400, &HeaderMap::new(), &body);
        assert!(err.message().len() <= ERROR_MESSAGE_LIMIT + '…'.len_utf8());
        assert!(err.message().ends_with('…'));
    }
}
