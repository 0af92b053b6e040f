//! WaveSpeedAI's error answers, and failed tasks, -> [`gateway_core::Error`].
//!
//! An error answer is the envelope `{"code", "message", "data": null}`, sometimes with an
//! `error_code` (<https://wavespeed.ai/docs/submit-task>; the official AI SDK provider's
//! `wavespeed-error.ts` reads the same fields). A task that fails is no HTTP error: it ends with
//! `status: "failed"` and a message in `error`, which [`failed_task`] classifies.

use gateway_core::http::reqwest::header::HeaderMap;
use gateway_core::http::{error_message, is_html, kind_for_status, retry_after};
use gateway_core::{Error, ErrorKind};

use crate::wire::Envelope;

/// Words of WaveSpeed (and of the models it hosts) about the account's money rather than the
/// request: the account is out of balance, which waiting does not fix.
const BALANCE_WORDS: [&str; 6] = [
    "insufficient",
    "balance",
    "credit",
    "top up",
    "recharge",
    "quota",
];

/// Words of a moderation refusal (WaveSpeed's safety checker, `enable_safety_checker`, and the
/// hosted models' own filters).
const MODERATION_WORDS: [&str; 11] = [
    "nsfw",
    "content policy",
    "content_policy",
    "moderation",
    "sensitive content",
    "inappropriate",
    "safety check",
    "unsafe content",
    "prohibited",
    "violates",
    "not allowed content",
];

/// Words of a task that failed on its input: a bad image, a face that is not there.
const INPUT_WORDS: [&str; 9] = [
    "invalid",
    "not a valid",
    "unsupported",
    "failed to download",
    "cannot identify image",
    "can not identify image",
    "no face",
    "face not detected",
    "must be",
];

fn mentions(message: &str, words: &[&str]) -> bool {
    let lower = message.to_ascii_lowercase();
    words.iter().any(|w| lower.contains(w))
}

/// The error for a non-2xx answer of WaveSpeed.
///
/// - 401: the gateway's key was refused: `Auth` (the server answers 502, never 401).
/// - 402, and 403 or 429 whose message speaks of balance or credit: `QuotaExceeded`, not
///   retried. WaveSpeed's exact status for an empty balance is not documented (403 "Account
///   issue" in third-party copies of its table), so the words decide; any other 403 is `Auth`.
/// - 429: `RateLimited`, with `Retry-After` when sent.
/// - 400/413/422: `InvalidRequest` with WaveSpeed's message, or `ContentFiltered` when the
///   message is a moderation refusal.
/// - 404: `NotFound` (an unknown model path or task id).
/// - 5xx, 504 included: `Upstream`, retried (the official SDK retries 500/502/503/504 polls).
pub(crate) fn classify(status: u16, headers: &HeaderMap, body: &str) -> Error {
    let parsed: Option<Envelope> = serde_json::from_str(body).ok();
    let mut message = parsed.as_ref().map(envelope_message).unwrap_or_default();
    if message.is_empty() && parsed.is_none() && !is_html(headers, body) {
        message = error_message([body.trim()]);
    }
    if message.is_empty() {
        message = format!("WaveSpeed answered HTTP {status}");
    }
    Error::new(kind_of(status, headers, &message), message)
}

/// The error for an answer with HTTP 200 whose envelope `code` is not 200: WaveSpeed refused,
/// and the code says how, as an HTTP status would.
pub(crate) fn envelope_error(envelope: &Envelope) -> Error {
    let code = envelope.code.unwrap_or_default();
    let mut message = envelope_message(envelope);
    if message.is_empty() {
        message = format!("WaveSpeed answered code {code}");
    }
    let kind = match u16::try_from(code) {
        Ok(status @ 400..=599) => kind_of(status, &HeaderMap::new(), &message),
        _ => ErrorKind::Upstream { status: 502 },
    };
    Error::new(kind, message)
}

fn kind_of(status: u16, headers: &HeaderMap, message: &str) -> ErrorKind {
    match status {
        402 => ErrorKind::QuotaExceeded,
        403 | 429 if mentions(message, &BALANCE_WORDS) => ErrorKind::QuotaExceeded,
        429 => ErrorKind::RateLimited {
            retry_after: retry_after(headers),
        },
        400 | 413 | 422 if mentions(message, &MODERATION_WORDS) => ErrorKind::ContentFiltered,
        // 504 too: a gateway timeout of WaveSpeed's is its failure, retried like the others.
        500..=599 => ErrorKind::Upstream { status },
        _ => kind_for_status(status, headers),
    }
}

/// The error of a task that ended without outputs (`failed`, `cancelled`, `timeout`), by its
/// message: a moderation refusal is `ContentFiltered`; an input the model could not use is
/// `InvalidRequest`; a task WaveSpeed timed out is `Timeout`; anything else is the provider's
/// failure, `Upstream` (a new task may succeed: the router decides).
pub(crate) fn failed_task(job: &str, status: &str, message: Option<&str>) -> Error {
    let said = message.map(str::trim).filter(|m| !m.is_empty());
    let text = match said {
        Some(m) => format!("task `{job}` {status}: {}", error_message([m])),
        None => format!("task `{job}` {status}"),
    };
    let m = said.unwrap_or_default();
    let kind = if mentions(m, &MODERATION_WORDS) {
        ErrorKind::ContentFiltered
    } else if status == "timeout" {
        ErrorKind::Timeout
    } else if mentions(m, &INPUT_WORDS) {
        ErrorKind::InvalidRequest
    } else {
        ErrorKind::Upstream { status: 502 }
    };
    Error::new(kind, text)
}

/// `message [error_code]`, as the official clients show it.
fn envelope_message(envelope: &Envelope) -> String {
    let message = envelope.message.as_deref().unwrap_or_default().trim();
    let code = match &envelope.error_code {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    match (message.is_empty(), code) {
        (false, Some(code)) => error_message([format!("{message} [{code}]")]),
        (false, None) => error_message([message]),
        (true, Some(code)) => code,
        (true, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use gateway_core::http::ERROR_MESSAGE_LIMIT;
    use gateway_core::testing::headers;

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
            // The official AI SDK provider's test body for a bad key.
            (
                401,
                &[],
                r#"{"code":401,"message":"Invalid API key","data":null}"#,
                Auth,
                "Invalid API key",
            ),
            (
                402,
                &[],
                r#"{"code":402,"message":"Payment required","data":null}"#,
                QuotaExceeded,
                "Payment required",
            ),
            (
                403,
                &[],
                r#"{"code":403,"message":"Insufficient balance","data":null}"#,
                QuotaExceeded,
                "Insufficient balance",
            ),
            (
                403,
                &[],
                r#"{"code":403,"message":"This key's role cannot call the model","error_code":"ROLE_FORBIDDEN"}"#,
                Auth,
                "This key's role cannot call the model [ROLE_FORBIDDEN]",
            ),
            (
                429,
                &[("retry-after", "2")],
                r#"{"code":429,"message":"Too many requests","data":null}"#,
                RateLimited {
                    retry_after: Some(Duration::from_secs(2)),
                },
                "Too many requests",
            ),
            (
                429,
                &[],
                r#"{"code":429,"message":"Insufficient credits, please top up","data":null}"#,
                QuotaExceeded,
                "Insufficient credits, please top up",
            ),
            (
                400,
                &[],
                r#"{"code":400,"message":"size: must be between 512 and 1536","data":null}"#,
                InvalidRequest,
                "size: must be between 512 and 1536",
            ),
            (
                400,
                &[],
                r#"{"code":400,"message":"The prompt was flagged as NSFW content","data":null}"#,
                ContentFiltered,
                "The prompt was flagged as NSFW content",
            ),
            (
                404,
                &[],
                r#"{"code":404,"message":"model not found","data":null}"#,
                NotFound,
                "model not found",
            ),
            (
                503,
                &[],
                "Service Unavailable",
                Upstream { status: 503 },
                "Service Unavailable",
            ),
            (
                504,
                &[("content-type", "text/html")],
                "<html>504 Gateway Time-out</html>",
                Upstream { status: 504 },
                "WaveSpeed answered HTTP 504",
            ),
            (
                500,
                &[],
                r#"{"code":500,"message":"","data":null}"#,
                Upstream { status: 500 },
                "WaveSpeed answered HTTP 500",
            ),
        ];
        for (i, (status, h, body, kind, message)) in cases.into_iter().enumerate() {
            let err = classify(status, &headers(h), body);
            assert_eq!(err.kind(), &kind, "case {i}: {status} {body}");
            assert_eq!(err.message(), message, "case {i}");
        }
    }

    #[test]
    fn envelope_codes_on_http_200_are_errors() {
        let env = |code: i64, message: &str| Envelope {
            code: Some(code),
            message: Some(message.into()),
            error_code: None,
            data: None,
        };
        assert_eq!(
            envelope_error(&env(401, "Unauthorized")).kind(),
            &ErrorKind::Auth
        );
        assert_eq!(
            envelope_error(&env(400, "prompt is required")).kind(),
            &ErrorKind::InvalidRequest
        );
        assert_eq!(
            envelope_error(&env(5004, "odd")).kind(),
            &ErrorKind::Upstream { status: 502 }
        );
        let e = envelope_error(&Envelope {
            code: Some(500),
            message: None,
            error_code: None,
            data: None,
        });
        assert_eq!(e.message(), "WaveSpeed answered code 500");
        assert!(e.is_retryable());
    }

    #[test]
    fn failed_tasks_by_their_words() {
        use ErrorKind::*;
        for (status, message, kind) in [
            ("failed", Some("NSFW content detected"), ContentFiltered),
            (
                "failed",
                Some("Your request was rejected by the safety checker"),
                ContentFiltered,
            ),
            (
                "failed",
                Some("No face detected in face_image"),
                InvalidRequest,
            ),
            ("failed", Some("Failed to download image"), InvalidRequest),
            ("failed", Some("Model error"), Upstream { status: 502 }),
            ("failed", None, Upstream { status: 502 }),
            (
                "cancelled",
                Some("Task cancelled by server"),
                Upstream { status: 502 },
            ),
            ("timeout", Some("Task timeout by server"), Timeout),
        ] {
            let e = failed_task("req-123", status, message);
            assert_eq!(e.kind(), &kind, "{status} {message:?}");
            assert!(e.message().contains("req-123"), "{e}");
        }
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let body = format!(
            r#"{{"code":400,"message":"{}"}}"#,
            "é".repeat(ERROR_MESSAGE_LIMIT)
        );
        let err = classify(400, &HeaderMap::new(), &body);
        assert!(err.message().len() <= ERROR_MESSAGE_LIMIT + '…'.len_utf8());
        assert!(err.message().ends_with('…'));
    }
}
