//! Gemini's error answers as [`gateway_core::Error`]s.

use std::time::Duration;

use gateway_core::http::kind_for_status;
use gateway_core::http::reqwest::header::HeaderMap;
use gateway_core::{Error, ErrorKind};

use crate::PROVIDER;
use crate::wire::{self, Status};

/// The longest wait a `retryDelay` may ask for (the same cap `Retry-After` gets in core).
const MAX_RETRY_DELAY: Duration = Duration::from_secs(86_400);

/// Turns an error answer (HTTP status, headers, body) into an [`Error`] whose message is
/// `error.message`. Also used for an error event inside a stream, with `error.code` as status.
///
/// The kind comes from `error.status` (the canonical code name), not the HTTP status alone:
/// - `INVALID_ARGUMENT` / `FAILED_PRECONDITION` → `InvalidRequest`, except that a bad key is
///   `Auth`: Gemini answers it with a 400 `INVALID_ARGUMENT` whose details carry a
///   `google.rpc.ErrorInfo` with reason `API_KEY_INVALID`
///   (e.g. <https://github.com/cequence-io/openai-scala-client/issues/109>).
/// - `UNAUTHENTICATED` / `PERMISSION_DENIED` → `Auth`; `NOT_FOUND` → `NotFound`.
/// - `RESOURCE_EXHAUSTED` → `RateLimited`, waiting for the `Retry-After` header if there is one,
///   else the `google.rpc.RetryInfo` `retryDelay` (the signal Gemini documents in practice,
///   <https://ai.google.dev/gemini-api/docs/troubleshooting>).
/// - `INTERNAL` / `UNAVAILABLE` → `Upstream`; `DEADLINE_EXCEEDED` → `Timeout`.
/// - Anything else, or a body that is not Gemini's envelope → the generic status mapping.
pub(crate) fn classify(status: u16, headers: &HeaderMap, body: &str) -> Error {
    let error = match serde_json::from_str::<wire::ErrorEnvelope>(body) {
        Ok(envelope) => envelope.error,
        Err(_) => {
            return Error::new(
                kind_for_status(status, headers),
                format!("HTTP {status} without a Gemini error body"),
            )
            .with_provider(PROVIDER)
            .with_status(status)
            .with_body(body);
        }
    };
    let details = error.details.as_deref().unwrap_or_default();
    let retry_after = || {
        gateway_core::http::retry_after(headers).or_else(|| {
            details
                .iter()
                .find_map(|d| d.retry_delay.as_deref().and_then(parse_retry_delay))
        })
    };
    let key_invalid = details
        .iter()
        .any(|d| d.reason.as_deref() == Some("API_KEY_INVALID"));
    let kind = match error.status {
        _ if key_invalid => ErrorKind::Auth,
        Some(Status::InvalidArgument | Status::FailedPrecondition) => ErrorKind::InvalidRequest,
        Some(Status::Unauthenticated | Status::PermissionDenied) => ErrorKind::Auth,
        Some(Status::NotFound) => ErrorKind::NotFound,
        Some(Status::ResourceExhausted) => ErrorKind::RateLimited {
            retry_after: retry_after(),
        },
        Some(Status::Internal | Status::Unavailable) => ErrorKind::Upstream { status },
        Some(Status::DeadlineExceeded) => ErrorKind::Timeout,
        Some(Status::Unknown) | None => match kind_for_status(status, headers) {
            // A plain 429 may still carry a RetryInfo.
            ErrorKind::RateLimited { .. } => ErrorKind::RateLimited {
                retry_after: retry_after(),
            },
            kind => kind,
        },
    };
    let message = match error.message {
        Some(m) if !m.trim().is_empty() => m,
        _ => format!("HTTP {status} from Gemini"),
    };
    Error::new(kind, message)
        .with_provider(PROVIDER)
        .with_status(status)
        .with_body(body)
}

/// A `google.protobuf.Duration` in its JSON form (`"34s"`, `"1.5s"`, `"0.000001s"`), exactly.
/// Negative, malformed or more-than-nanosecond values give `None`; long ones are capped.
fn parse_retry_delay(s: &str) -> Option<Duration> {
    let number = s.trim().strip_suffix('s')?;
    let (secs, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if secs.is_empty() || !digits(secs) || !digits(frac) || frac.len() > 9 {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Some(Duration::new(secs, nanos).min(MAX_RETRY_DELAY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::http::reqwest::header::{HeaderValue, RETRY_AFTER};
    use serde_json::json;

    fn envelope(code: u16, status: &str, details: serde_json::Value) -> String {
        json!({"error": {
            "code": code,
            "message": format!("message of {status}"),
            "status": status,
            "details": details
        }})
        .to_string()
    }

    fn headers(retry_after: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[test]
    fn classify_table() {
        let api_key_invalid = json!([
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
             "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
             "message": "API key not valid. Please pass a valid API key."}
        ]);
        let retry_info = json!([
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                 "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34s"}
        ]);
        let fractional =
            json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]);
        let none = json!([]);
        let table: Vec<(&str, u16, Option<&str>, String, ErrorKind)> = vec![
            (
                "400 INVALID_ARGUMENT",
                400,
                None,
                envelope(400, "INVALID_ARGUMENT", none.clone()),
                ErrorKind::InvalidRequest,
            ),
            (
                "400 FAILED_PRECONDITION",
                400,
                None,
                envelope(400, "FAILED_PRECONDITION", none.clone()),
                ErrorKind::InvalidRequest,
            ),
            (
                "400 API_KEY_INVALID",
                400,
                None,
                envelope(400, "INVALID_ARGUMENT", api_key_invalid),
                ErrorKind::Auth,
            ),
            (
                "401 UNAUTHENTICATED",
                401,
                None,
                envelope(401, "UNAUTHENTICATED", none.clone()),
                ErrorKind::Auth,
            ),
            (
                "403 PERMISSION_DENIED",
                403,
                None,
                envelope(403, "PERMISSION_DENIED", none.clone()),
                ErrorKind::Auth,
            ),
            (
                "404 NOT_FOUND",
                404,
                None,
                envelope(404, "NOT_FOUND", none.clone()),
                ErrorKind::NotFound,
            ),
            (
                "429 with RetryInfo",
                429,
                None,
                envelope(429, "RESOURCE_EXHAUSTED", retry_info.clone()),
                ErrorKind::RateLimited {
                    retry_after: secs(34),
                },
            ),
            (
                "429 with a fractional RetryInfo",
                429,
                None,
                envelope(429, "RESOURCE_EXHAUSTED", fractional),
                ErrorKind::RateLimited {
                    retry_after: Some(Duration::from_millis(1500)),
                },
            ),
            (
                "429 Retry-After wins over RetryInfo",
                429,
                Some("7"),
                envelope(429, "RESOURCE_EXHAUSTED", retry_info),
                ErrorKind::RateLimited {
                    retry_after: secs(7),
                },
            ),
            (
                "429 with neither",
                429,
                None,
                envelope(429, "RESOURCE_EXHAUSTED", none.clone()),
                ErrorKind::RateLimited { retry_after: None },
            ),
            (
                "500 INTERNAL",
                500,
                None,
                envelope(500, "INTERNAL", none.clone()),
                ErrorKind::Upstream { status: 500 },
            ),
            (
                "503 UNAVAILABLE",
                503,
                None,
                envelope(503, "UNAVAILABLE", none.clone()),
                ErrorKind::Upstream { status: 503 },
            ),
            (
                "504 DEADLINE_EXCEEDED",
                504,
                None,
                envelope(504, "DEADLINE_EXCEEDED", none.clone()),
                ErrorKind::Timeout,
            ),
            (
                "409 ABORTED (unknown status)",
                409,
                None,
                envelope(409, "ABORTED", none.clone()),
                ErrorKind::Upstream { status: 409 },
            ),
            (
                "non-JSON 502",
                502,
                None,
                "<html><body>Bad Gateway</body></html>".into(),
                ErrorKind::Upstream { status: 502 },
            ),
            (
                "non-JSON 429 with Retry-After",
                429,
                Some("3"),
                "Too Many Requests".into(),
                ErrorKind::RateLimited {
                    retry_after: secs(3),
                },
            ),
            ("non-JSON 401", 401, None, String::new(), ErrorKind::Auth),
            (
                "JSON that is not the envelope",
                400,
                None,
                r#"{"message":"bad"}"#.into(),
                ErrorKind::InvalidRequest,
            ),
        ];
        for (name, status, retry_after, body, expected) in table {
            let err = classify(status, &headers(retry_after), &body);
            assert_eq!(err.kind(), &expected, "{name}");
            assert_eq!(err.provider(), PROVIDER, "{name}");
            assert_eq!(err.status(), Some(status), "{name}");
            assert!(err.body().is_some(), "{name}");
        }
    }

    #[test]
    fn message_is_error_message() {
        let err = classify(
            404,
            &HeaderMap::new(),
            &envelope(404, "NOT_FOUND", json!([])),
        );
        assert_eq!(err.message(), "message of NOT_FOUND");
        assert_eq!(err.to_string(), "gemini: message of NOT_FOUND");

        let err = classify(500, &HeaderMap::new(), r#"{"error":{"code":500}}"#);
        assert_eq!(err.message(), "HTTP 500 from Gemini");
        let err = classify(502, &HeaderMap::new(), "<html>");
        assert_eq!(err.message(), "HTTP 502 without a Gemini error body");
    }

    #[test]
    fn retry_delays() {
        for (s, expected) in [
            ("34s", secs(34)),
            ("0s", Some(Duration::ZERO)),
            ("1.5s", Some(Duration::from_millis(1500))),
            (" 0.000000001s ", Some(Duration::from_nanos(1))),
            ("999999999s", Some(MAX_RETRY_DELAY)),
            ("34", None),
            ("-1s", None),
            ("1.s", Some(Duration::from_secs(1))),
            (".5s", None),
            ("1.0000000001s", None),
            ("1e3s", None),
            ("s", None),
            ("", None),
        ] {
            assert_eq!(parse_retry_delay(s), expected, "{s:?}");
        }
    }

    #[test]
    fn recorded_embedding_errors() {
        for (name, kind) in [
            ("embed/404.json", ErrorKind::NotFound),
            ("embed/400_batch_limit.json", ErrorKind::InvalidRequest),
        ] {
            let recorded = gw_mock::fixture::Respond::recorded(env!("CARGO_MANIFEST_DIR"), name);
            let body = recorded.json.unwrap_or_default().to_string();
            let e = classify(recorded.status, &HeaderMap::new(), &body);
            assert_eq!(e.kind(), &kind, "{name}");
        }
    }
}
