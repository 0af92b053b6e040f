//! Stability AI error answers -> [`gateway_core::Error`].
//!
//! Every error is `{"id", "name", "errors": [...]}` (the error responses of
//! <https://platform.stability.ai/docs/api-reference>); the official ComfyUI nodes branch on
//! `name` (`unauthorized`, `payment_required`, `bad_request`:
//! <https://github.com/Stability-AI/ComfyUI-SAI_API/blob/6c0e3a21639304755861fd7d5865580d986eb3e3/stability_api.py#L160-L170>).

use gateway_core::http::reqwest::header::HeaderMap;
use gateway_core::http::{error_message, is_html, kind_for_status, retry_after};
use gateway_core::{Error, ErrorKind};

use crate::wire::ErrorBody;

/// The error for a non-2xx answer of Stability AI.
///
/// - `name: "content_moderation"` (documented with 403: "Your request was flagged by our content
///   moderation system"; not charged): `ContentFiltered`, which the server answers as a 400
///   `content_policy_violation`, with Stability's words.
/// - 402, or `name: "payment_required"` ("You lack sufficient credits"): the gateway's own
///   Stability account is out of credits: `QuotaExceeded`, not retried, with a neutral message
///   (the body keeps Stability's).
/// - 401, and a 403 that is not moderation: the gateway's key was refused: `Auth` (502 to
///   the client, never 401).
/// - 400, 413 (over 10 MiB), 422 (e.g. a prompt in a language it does not take):
///   `InvalidRequest`, with the `errors[]` text.
/// - 429 (150 requests in 10 s): `RateLimited`, with `Retry-After` if sent.
/// - 5xx: `Upstream`, retryable.
pub(crate) fn classify(status: u16, headers: &HeaderMap, body: &str) -> Error {
    let parsed: ErrorBody = serde_json::from_str(body).unwrap_or_default();
    let name = parsed.name.as_deref().unwrap_or_default();
    let kind = match status {
        _ if name == "content_moderation" => ErrorKind::ContentFiltered,
        _ if status == 402 || name == "payment_required" => ErrorKind::QuotaExceeded,
        429 => ErrorKind::RateLimited {
            retry_after: retry_after(headers),
        },
        500..=599 => ErrorKind::Upstream { status },
        _ => kind_for_status(status, headers),
    };
    if kind == ErrorKind::QuotaExceeded {
        // Stability's words are about the gateway's account, not the caller's request.
        return Error::new(
            kind,
            "the provider account has no credits left for this request",
        );
    }
    let mut parts: Vec<&str> = parsed.errors.iter().map(String::as_str).collect();
    parts.extend(parsed.message.as_deref());
    if parts.iter().all(|p| p.trim().is_empty()) && parsed.name.is_none() && !is_html(headers, body)
    {
        parts.push(body);
    }
    let mut message = error_message(&parts);
    if message.is_empty() {
        message = match &parsed.name {
            Some(name) => format!("Stability AI answered HTTP {status} ({name})"),
            None => format!("Stability AI answered HTTP {status}"),
        };
    }
    Error::new(kind, message)
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
        let cases: [(&str, ErrorKind, &str); 8] = [
            ("400.json", InvalidRequest, "some-field: is required"),
            (
                "401.json",
                Auth,
                "authorization: invalid or missing header value",
            ),
            (
                "402.json",
                QuotaExceeded,
                "the provider account has no credits left for this request",
            ),
            (
                "403.json",
                ContentFiltered,
                "Your request was flagged by our content moderation system, as a result your \
                 request was denied and you were not charged.",
            ),
            (
                "413.json",
                InvalidRequest,
                "body: payloads cannot be larger than 10MiB in size",
            ),
            (
                "422.json",
                InvalidRequest,
                "English is the only supported language for this service.",
            ),
            (
                "429.json",
                RateLimited { retry_after: None },
                "You have exceeded the rate limit of 150 requests within a 10 second period, \
                 and have been timed out for 60 seconds.",
            ),
            (
                "500.json",
                Upstream { status: 500 },
                "An unexpected server error has occurred, please try again later.",
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
        let cases: [Case; 9] = [
            // Moderation is known by its name, whatever the status.
            (
                400,
                &[],
                r#"{"id":"1","name":"content_moderation","errors":["flagged"]}"#,
                ContentFiltered,
                "flagged",
            ),
            // A 403 that is not moderation is the key.
            (
                403,
                &[],
                r#"{"id":"1","name":"forbidden","errors":["not allowed"]}"#,
                Auth,
                "not allowed",
            ),
            (
                403,
                &[("content-type", "text/html")],
                "<html>Forbidden</html>",
                Auth,
                "Stability AI answered HTTP 403",
            ),
            // Credits: by status or by name, never Stability's words.
            (
                403,
                &[],
                r#"{"id":"a3","name":"payment_required","errors":["lacking credits"]}"#,
                QuotaExceeded,
                "the provider account has no credits left for this request",
            ),
            (
                429,
                &[("retry-after", "7")],
                r#"{"id":"1","name":"rate_limit_exceeded","errors":["slow down"]}"#,
                RateLimited {
                    retry_after: Some(Duration::from_secs(7)),
                },
                "slow down",
            ),
            (
                422,
                &[],
                r#"{"id":"1","name":"invalid_language","errors":["English is the only supported language for this service."]}"#,
                InvalidRequest,
                "English is the only supported language for this service.",
            ),
            // Several messages, joined; a v1-style `message`.
            (
                400,
                &[],
                r#"{"id":"1","name":"bad_request","errors":["prompt: is required","seed: must be a number"]}"#,
                InvalidRequest,
                "prompt: is required; seed: must be a number",
            ),
            (
                404,
                &[],
                r#"{"id":"1","name":"not_found","message":"no such thing"}"#,
                NotFound,
                "no such thing",
            ),
            // 5xx is `Upstream`, even those `kind_for_status` calls a timeout.
            (
                504,
                &[("content-type", "text/html")],
                "<html><body>504 Gateway Time-out</body></html>",
                Upstream { status: 504 },
                "Stability AI answered HTTP 504",
            ),
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
        for status in [400, 401, 402, 403, 413, 422] {
            assert!(
                !classify(status, &HeaderMap::new(), "{}").is_retryable(),
                "{status}"
            );
        }
        assert!(classify(500, &HeaderMap::new(), "{}").is_retryable());
        assert!(classify(503, &HeaderMap::new(), "").is_retryable());
    }

    #[test]
    fn a_body_that_is_not_stabilitys_is_kept_as_the_message() {
        let err = classify(502, &HeaderMap::new(), "upstream connect error");
        assert_eq!(err.message(), "upstream connect error");
        let long = format!(
            r#"{{"name":"bad_request","errors":["{}"]}}"#,
            "é".repeat(ERROR_MESSAGE_LIMIT)
        );
        let err = classify(400, &HeaderMap::new(), &long);
        assert!(err.message().len() <= ERROR_MESSAGE_LIMIT + '…'.len_utf8());
        assert!(err.message().ends_with('…'));
    }
}
