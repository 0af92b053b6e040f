//! Hugging Face router error responses -> [`gateway_core::Error`].
//!
//! Error bodies are not uniform: they come from the router or from the backend provider it chose.
//! The message is gathered the way the official SDK does it (`huggingface_hub/utils/_http.py::_format`):
//! the `X-Error-Message` header, then `error` (a string, a list of strings, or an OpenAI error
//! object), `error_description` (OAuth style) and `errors[].message`; a body that is not JSON is
//! used as it is unless it is HTML. See <https://github.com/huggingface/huggingface_hub/blob/main/src/huggingface_hub/utils/_http.py>.

use gateway_core::http::reqwest::header::HeaderMap;
use gateway_core::http::{error_message, is_html, kind_for_status};
use gateway_core::{Error, ErrorKind};

use crate::PROVIDER;
use crate::wire::{ErrorBody, ErrorField};

/// The error for a non-2xx answer of the router: kind from the status and, for a 429, the body.
///
/// - 402 is a billing stop (credits exhausted, pay-as-you-go unavailable): `QuotaExceeded`.
/// - 429 whose OpenAI error `code` or `type` is `insufficient_quota` is a quota, not a rate limit,
///   so it is not retried (OpenAI's convention, which OpenAI-compatible backends copy).
/// - Any other 429 is `RateLimited` with `Retry-After` when the router sends it.
/// - 503 with `estimated_time` is hf-inference loading a model: `Upstream { 503 }` (retryable).
/// - Everything else: [`kind_for_status`].
pub(crate) fn classify(status: u16, headers: &HeaderMap, body: &str) -> Error {
    let parsed: Option<ErrorBody> = serde_json::from_str(body).ok();
    let kind = match status {
        429 if parsed.as_ref().is_some_and(is_insufficient_quota) => ErrorKind::QuotaExceeded,
        _ => kind_for_status(status, headers),
    };
    if let Some(request_id) = request_id(headers) {
        // The request id is what HF support asks for; the error itself keeps no headers.
        tracing::debug!(status, request_id, "Hugging Face router error");
    }
    let mut parts = Vec::new();
    if let Some(header) = headers.get("x-error-message").and_then(|v| v.to_str().ok()) {
        parts.push(header.to_owned());
    }
    match &parsed {
        Some(body) => body_messages(body, &mut parts),
        None if !is_html(headers, body) => parts.push(body.to_owned()),
        None => {}
    }
    let mut message = error_message(parts);
    if message.is_empty() {
        message = format!("the Hugging Face router answered HTTP {status}");
    }
    if let Some(secs) = parsed.as_ref().and_then(|b| b.estimated_time) {
        message.push_str(&format!(" (model loading, estimated_time {secs}s)"));
    }
    Error::new(kind, message)
}

/// The error for an `{"error": ...}` event inside an otherwise successful stream.
pub(crate) fn stream_error(status: u16, error: &ErrorField, data: &str) -> Error {
    let mut parts = Vec::new();
    field_messages(error, &mut parts);
    let mut message = error_message(parts);
    if message.is_empty() {
        message = "the provider sent an error event mid-stream".to_owned();
    }
    Error::new(ErrorKind::Upstream { status }, message)
        .with_provider(PROVIDER)
        .with_status(status)
        .with_body(data)
}

fn is_insufficient_quota(body: &ErrorBody) -> bool {
    match &body.error {
        Some(ErrorField::Object(e)) => {
            e.kind.as_deref() == Some("insufficient_quota")
                || e.code.as_ref().and_then(|c| c.as_str()) == Some("insufficient_quota")
        }
        _ => false,
    }
}

fn body_messages(body: &ErrorBody, out: &mut Vec<String>) {
    if let Some(error) = &body.error {
        field_messages(error, out);
    }
    if let Some(description) = &body.error_description {
        out.push(description.clone());
    }
    for item in body.errors.iter().flatten() {
        if let Some(message) = &item.message {
            out.push(message.clone());
        }
    }
    match &body.detail {
        Some(serde_json::Value::String(detail)) => out.push(detail.clone()),
        Some(serde_json::Value::Array(items)) => out.extend(
            items
                .iter()
                .filter_map(|d| d.get("msg").and_then(serde_json::Value::as_str))
                .map(str::to_owned),
        ),
        _ => {}
    }
}

fn field_messages(error: &ErrorField, out: &mut Vec<String>) {
    match error {
        ErrorField::Message(message) => out.push(message.clone()),
        ErrorField::Messages(messages) => out.extend(messages.iter().cloned()),
        ErrorField::Object(object) => out.extend(object.message.clone()),
        ErrorField::Other(serde_json::Value::Null) => {}
        ErrorField::Other(value) => out.push(value.to_string()),
    }
}

fn request_id(headers: &HeaderMap) -> Option<&str> {
    ["x-request-id", "x-amzn-trace-id", "x-amz-cf-id"]
        .into_iter()
        .find_map(|name| headers.get(name).and_then(|v| v.to_str().ok()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use gateway_core::http::ERROR_MESSAGE_LIMIT;
    use gateway_core::testing::headers;

    struct Case {
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
        kind: ErrorKind,
        message: &'static str,
    }

    const fn case(
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
        kind: ErrorKind,
        message: &'static str,
    ) -> Case {
        Case {
            status,
            headers,
            body,
            kind,
            message,
        }
    }

    #[test]
    fn classify_table() {
        use ErrorKind::*;
        let cases = [
            // Body shapes (section 5 of the wire reference).
            case(
                400,
                &[("x-error-message", "Model not supported by provider")],
                "",
                InvalidRequest,
                "Model not supported by provider",
            ),
            case(
                400,
                &[],
                r#"{"error":"Input validation error: `inputs` must have less than 4096 tokens"}"#,
                InvalidRequest,
                "Input validation error: `inputs` must have less than 4096 tokens",
            ),
            case(
                422,
                &[],
                r#"{"error":["temperature must be positive","top_p must be < 1"]}"#,
                InvalidRequest,
                "temperature must be positive; top_p must be < 1",
            ),
            case(
                401,
                &[],
                r#"{"error":"invalid_grant","error_description":"The token has expired"}"#,
                Auth,
                "invalid_grant; The token has expired",
            ),
            case(
                400,
                &[],
                r#"{"errors":[{"message":"first"},{"message":"second"},{"code":7}]}"#,
                InvalidRequest,
                "first; second",
            ),
            case(
                400,
                &[],
                r#"{"error":{"message":"'messages' is required","type":"invalid_request_error","code":null}}"#,
                InvalidRequest,
                "'messages' is required",
            ),
            // The header and the body often repeat each other: said once.
            case(
                403,
                &[
                    ("x-error-message", "Gated model"),
                    ("x-error-code", "GatedRepo"),
                ],
                r#"{"error":"Gated model"}"#,
                Auth,
                "Gated model",
            ),
            // Plain text is kept, HTML is not.
            case(
                500,
                &[],
                "upstream connect error",
                Upstream { status: 500 },
                "upstream connect error",
            ),
            case(
                502,
                &[("content-type", "text/html")],
                "<html><body>Bad gateway</body></html>",
                Upstream { status: 502 },
                "the Hugging Face router answered HTTP 502",
            ),
            // Statuses.
            case(
                401,
                &[],
                r#"{"error":"Invalid credentials in Authorization header"}"#,
                Auth,
                "Invalid credentials in Authorization header",
            ),
            case(
                402,
                &[],
                r#"{"error":"You have exceeded your monthly included credits for Inference Providers."}"#,
                QuotaExceeded,
                "You have exceeded your monthly included credits for Inference Providers.",
            ),
            case(
                403,
                &[],
                r#"{"error":"This authentication method does not have sufficient permissions"}"#,
                Auth,
                "This authentication method does not have sufficient permissions",
            ),
            case(
                404,
                &[],
                r#"{"error":"Model not found"}"#,
                NotFound,
                "Model not found",
            ),
            case(
                422,
                &[],
                r#"{"error":{"message":"response_format is not supported","type":"invalid_request_error","code":"unsupported_parameter"}}"#,
                InvalidRequest,
                "response_format is not supported",
            ),
            case(
                429,
                &[],
                r#"{"error":"Rate limit reached"}"#,
                RateLimited { retry_after: None },
                "Rate limit reached",
            ),
            case(
                429,
                &[("retry-after", "12")],
                r#"{"error":{"message":"Too many requests","type":"rate_limit_error","code":"rate_limit_exceeded"}}"#,
                RateLimited {
                    retry_after: Some(Duration::from_secs(12)),
                },
                "Too many requests",
            ),
            case(
                429,
                &[("retry-after", "3")],
                r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
                QuotaExceeded,
                "You exceeded your current quota",
            ),
            case(
                429,
                &[],
                r#"{"error":{"message":"quota","type":"requests","code":"insufficient_quota"}}"#,
                QuotaExceeded,
                "quota",
            ),
            case(
                500,
                &[],
                r#"{"error":"Internal Server Error"}"#,
                Upstream { status: 500 },
                "Internal Server Error",
            ),
            case(
                503,
                &[],
                r#"{"error":"Model meta-llama/Llama-3.1-8B-Instruct is currently loading","estimated_time":20.0}"#,
                Upstream { status: 503 },
                "Model meta-llama/Llama-3.1-8B-Instruct is currently loading (model loading, estimated_time 20s)",
            ),
            case(
                504,
                &[],
                "",
                Timeout,
                "the Hugging Face router answered HTTP 504",
            ),
        ];
        for (i, c) in cases.iter().enumerate() {
            let err = classify(c.status, &headers(c.headers), c.body);
            assert_eq!(err.kind(), &c.kind, "case {i}: {} {}", c.status, c.body);
            assert_eq!(
                err.message(),
                c.message,
                "case {i}: {} {}",
                c.status,
                c.body
            );
        }
    }

    #[test]
    fn a_long_message_is_cut_on_a_char_boundary() {
        let body = format!(r#"{{"error":"{}"}}"#, "é".repeat(ERROR_MESSAGE_LIMIT));
        let err = classify(400, &HeaderMap::new(), &body);
        assert!(err.message().len() <= ERROR_MESSAGE_LIMIT + '…'.len_utf8());
        assert!(err.message().ends_with('…'));
    }

    #[test]
    fn rate_limit_keeps_retry_after_and_stays_retryable() {
        let err = classify(429, &headers(&[("retry-after", "1.5")]), "{}");
        assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
        assert!(err.is_retryable());
        let quota = classify(
            429,
            &headers(&[("retry-after", "1")]),
            r#"{"error":{"message":"q","type":"insufficient_quota"}}"#,
        );
        assert!(!quota.is_retryable());
        assert_eq!(quota.retry_after(), None);
    }

    #[test]
    fn stream_error_events() {
        let data = r#"{"error":{"message":"backend crashed","type":"server_error"}}"#;
        let field: ErrorField =
            serde_json::from_str(r#"{"message":"backend crashed","type":"server_error"}"#).unwrap();
        let err = stream_error(200, &field, data);
        assert_eq!(err.kind(), &ErrorKind::Upstream { status: 200 });
        assert_eq!(err.message(), "backend crashed");
        assert_eq!(err.provider(), PROVIDER);
        assert_eq!(err.body(), Some(data));
        let bare = stream_error(200, &ErrorField::Other(serde_json::Value::Null), "{}");
        assert_eq!(
            bare.message(),
            "the provider sent an error event mid-stream"
        );
    }

    #[test]
    fn recorded_embedding_error() {
        let path = format!(
            "{}/tests/fixtures/embed/404.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let e = classify(404, &HeaderMap::new(), &fixture["json"].to_string());
        assert_eq!(e.kind(), &ErrorKind::NotFound);
        assert!(e.message().contains("does not exist"), "{e}");
    }
}
