//! Serper error answers -> [`gateway_core::Error`].
//!
//! Serper answers errors with a small JSON object, `{"message": "...", "statusCode": N}`
//! (<https://github.com/MiroMindAI/MiroFlow/issues/7>,
//! <https://github.com/crewAIInc/crewAI/issues/633>), and documents no rate-limit headers.

use gateway_core::http::reqwest::header::HeaderMap;
use gateway_core::http::{error_message, is_html, retry_after};
use gateway_core::{Error, ErrorKind};

use crate::wire::ErrorBody;

/// The error for a non-2xx answer of Serper.
///
/// - 401 and 403: Serper rejected the gateway's own key (it answers a bad or missing key with
///   `403 {"message":"Unauthorized."}`): `Auth`, which the server reports as a 502, never as
///   the client's 401.
/// - 400 `Not enough credits`: the account ran out of credits, which Serper reports as a bad
///   request rather than a 402 (quoted from real runs in many public projects): `QuotaExceeded`,
///   not retried. 402 (not observed) is `QuotaExceeded` too.
/// - Any other 400, and 422: `InvalidRequest` with Serper's message.
/// - 404: `NotFound`.
/// - 429: `RateLimited`, with the `Retry-After` delay if one is ever sent (none is documented).
/// - 5xx (and any other status): `Upstream`, retryable.
pub(crate) fn classify(status: u16, headers: &HeaderMap, body: &str) -> Error {
    let message = message(status, headers, body);
    let kind = match status {
        401 | 403 => ErrorKind::Auth,
        400 if is_out_of_credits(&message) => ErrorKind::QuotaExceeded,
        402 => ErrorKind::QuotaExceeded,
        400 | 422 => ErrorKind::InvalidRequest,
        404 => ErrorKind::NotFound,
        429 => ErrorKind::RateLimited {
            retry_after: retry_after(headers),
        },
        status => ErrorKind::Upstream { status },
    };
    Error::new(kind, message)
}

/// Whether a 400's message says the account has no credits left (`Not enough credits`).
fn is_out_of_credits(message: &str) -> bool {
    message.to_ascii_lowercase().contains("not enough credits")
}

/// Serper's `message`; else the body as text unless it is an HTML page (a proxy's); else a
/// sentence naming the status. At most [`ERROR_MESSAGE_LIMIT`] bytes.
fn message(status: u16, headers: &HeaderMap, body: &str) -> String {
    let parsed = serde_json::from_str::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.message);
    let text = match parsed {
        Some(message) => message,
        None if !is_html(headers, body) => body.to_owned(),
        None => String::new(),
    };
    let message = error_message([text]);
    if message.is_empty() {
        return format!("Serper answered HTTP {status}");
    }
    message
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use gateway_core::http::ERROR_MESSAGE_LIMIT;
    use gateway_core::testing::headers;

    /// The `json` of a recorded error answer under `tests/fixtures/`, as text.
    fn recorded(name: &str) -> (u16, String) {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
        let status = fixture["status"].as_u64().unwrap() as u16;
        (status, fixture["json"].to_string())
    }

    #[test]
    fn classify_recorded_answers() {
        use ErrorKind::*;
        for (file, kind, message) in [
            ("errors/403_unauthorized.json", Auth, "Unauthorized."),
            (
                "errors/400_not_enough_credits.json",
                QuotaExceeded,
                "Not enough credits",
            ),
        ] {
            let (status, body) = recorded(file);
            let err = classify(status, &HeaderMap::new(), &body);
            assert_eq!(err.kind(), &kind, "{file}");
            assert_eq!(err.message(), message, "{file}");
            assert!(!err.is_retryable(), "{file}");
        }
    }

    #[test]
    fn classify_table() {
        use ErrorKind::*;
        let json = "application/json";
        for (status, hdrs, body, kind, message) in [
            // The shape Serper uses for every error, with statuses it was not seen to send.
            (
                401,
                &[][..],
                r#"{"message":"Unauthorized.","statusCode":401}"#,
                Auth,
                "Unauthorized.",
            ),
            (
                400,
                &[("content-type", json)][..],
                r#"{"message":"Query not allowed","statusCode":400}"#,
                InvalidRequest,
                "Query not allowed",
            ),
            (
                400,
                &[][..],
                r#"{"message":"NOT ENOUGH CREDITS","statusCode":400}"#,
                QuotaExceeded,
                "NOT ENOUGH CREDITS",
            ),
            (
                402,
                &[][..],
                r#"{"message":"Payment required","statusCode":402}"#,
                QuotaExceeded,
                "Payment required",
            ),
            (
                422,
                &[][..],
                r#"{"message":"num must be a number","statusCode":422}"#,
                InvalidRequest,
                "num must be a number",
            ),
            (404, &[][..], "", NotFound, "Serper answered HTTP 404"),
            (
                429,
                &[][..],
                r#"{"message":"Too many requests","statusCode":429}"#,
                RateLimited { retry_after: None },
                "Too many requests",
            ),
            (
                429,
                &[("retry-after", "2")][..],
                "",
                RateLimited {
                    retry_after: Some(Duration::from_secs(2)),
                },
                "Serper answered HTTP 429",
            ),
            (
                500,
                &[][..],
                r#"{"message":"Internal server error","statusCode":500}"#,
                Upstream { status: 500 },
                "Internal server error",
            ),
            (
                502,
                &[("content-type", "text/html")][..],
                "<html><body>Bad gateway</body></html>",
                Upstream { status: 502 },
                "Serper answered HTTP 502",
            ),
            (
                503,
                &[][..],
                "upstream connect error",
                Upstream { status: 503 },
                "upstream connect error",
            ),
            (
                504,
                &[][..],
                "",
                Upstream { status: 504 },
                "Serper answered HTTP 504",
            ),
        ] {
            let err = classify(status, &headers(hdrs), body);
            assert_eq!(err.kind(), &kind, "{status} {body}");
            assert_eq!(err.message(), message, "{status} {body}");
        }
    }

    #[test]
    fn retryable_only_where_waiting_helps() {
        assert!(classify(429, &HeaderMap::new(), "").is_retryable());
        assert!(classify(503, &HeaderMap::new(), "").is_retryable());
        for status in [400, 401, 402, 403, 404, 422] {
            assert!(
                !classify(status, &HeaderMap::new(), "").is_retryable(),
                "{status}"
            );
        }
        let quota = classify(
            400,
            &HeaderMap::new(),
            r#"{"message":"Not enough credits"}"#,
        );
        assert!(!quota.is_retryable());
    }

    #[test]
    fn a_long_message_is_cut_on_a_char_boundary() {
        let body = format!(r#"{{"message":"{}"}}"#, "é".repeat(ERROR_MESSAGE_LIMIT));
        let err = classify(400, &HeaderMap::new(), &body);
        assert!(err.message().len() <= ERROR_MESSAGE_LIMIT + '…'.len_utf8());
        assert!(err.message().ends_with('…'));
    }
}
