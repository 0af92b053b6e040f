//! The one error response: OpenAI's envelope `{"error": {"message", "type", "param", "code"}}`.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use llm_gateway::{Error, ErrorKind};
use serde_json::json;

/// An error as the client sees it.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI's `error.type`.
    pub kind: &'static str,
    /// OpenAI's `error.code`.
    pub code: Option<&'static str>,
    /// A message for people.
    pub message: String,
    /// The request field at fault, where known.
    pub param: Option<String>,
    /// Sent as `Retry-After` (whole seconds, rounded up).
    pub retry_after: Option<Duration>,
}

/// Put on error responses so the request middleware logs each error once.
#[derive(Debug, Clone)]
pub(crate) struct LoggedError {
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            code,
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    /// 400 `invalid_request_error`, naming the field at fault.
    pub fn invalid(param: impl Into<Option<String>>, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                message,
            )
        }
    }

    /// 400 for a body that is not the JSON expected, naming the field at fault where the
    /// deserializer says which: axum puts the path before the message
    /// (`messages[0].content: invalid type ...`), and an unknown or missing field is named in
    /// the message (``unknown field `x` ``).
    pub fn from_json(rejection: JsonRejection) -> Self {
        let text = rejection.body_text();
        let param = json_error_field(&text);
        Self::invalid(param, text)
    }

    /// 401 `authentication_error`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            Some("invalid_api_key"),
            message,
        )
    }

    /// 404 `not_found_error`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            Some("model_not_found"),
            message,
        )
    }

    /// 404 for a feature that is switched off.
    pub fn off(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            Some("not_enabled"),
            message,
        )
    }

    /// 503 for a provider that is configured but could not be set up.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            Some("provider_unavailable"),
            message,
        )
    }

    /// 500 for a failure of the gateway itself.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            Some("internal_error"),
            message,
        )
    }

    /// Replaces the `code`.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The envelope's `error` object (also used for error events inside a stream).
    pub fn body(&self) -> serde_json::Value {
        json!({
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        })
    }
}

/// The field a JSON body error of axum's names, e.g. `messages[0].rol` for
/// "Failed to deserialize ...: messages[0].rol: unknown field `rol`, expected one of ...".
fn json_error_field(text: &str) -> Option<String> {
    let detail = text.split_once("target type: ").map_or(text, |(_, d)| d);
    let (path, message) = match detail.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => (Some(path), rest),
        _ => (None, detail),
    };
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|lead| message.strip_prefix(lead))
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field);
    // An unknown field is already the last step of the path; a missing one is not (its object
    // may end in the same letters: `image_url` missing its `url`).
    match (path.filter(|p| *p != "."), named) {
        (Some(path), Some(field)) if path.rsplit('.').next() != Some(field) => {
            Some(format!("{path}.{field}"))
        }
        (Some(path), _) => Some(path.to_owned()),
        (None, Some(field)) => Some(field.to_owned()),
        (None, None) => None,
    }
}

/// Maps a gateway error to what the client gets. The one place that decides HTTP statuses.
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        if about_the_gateways_account(&e) {
            // The client sees a neutral message; the operator needs the provider's own words.
            tracing::warn!(provider = e.provider(), error = %e, "the provider refused the gateway's account");
        }
        let param = e.param().map(str::to_owned);
        let mut api = Self::from_kind(&e);
        api.param = param;
        api
    }
}

/// Whether `e` is a provider's answer about the gateway's own account with it (its key, its
/// rate limits, its quota or credits): words about the operator's account and project, never
/// shown to a client.
fn about_the_gateways_account(e: &Error) -> bool {
    !e.provider().is_empty()
        && matches!(
            e.kind(),
            ErrorKind::Auth | ErrorKind::RateLimited { .. } | ErrorKind::QuotaExceeded
        )
}

impl ApiError {
    fn from_kind(e: &Error) -> Self {
        let provider = e.provider();
        let upstream = |code| {
            Self::new(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                Some(code),
                e.to_string(),
            )
        };
        // A provider's words about the gateway's own account are replaced (and logged by the
        // caller); the gateway's own refusals (plans, its rate limits) keep theirs.
        let own_account = about_the_gateways_account(e);
        match e.kind() {
            ErrorKind::RateLimited { retry_after } => Self {
                retry_after: *retry_after,
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    Some("rate_limit_exceeded"),
                    if own_account {
                        format!("provider `{provider}` is rate-limiting the gateway; retry later")
                    } else {
                        e.to_string()
                    },
                )
            },
            ErrorKind::QuotaExceeded => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                Some("insufficient_quota"),
                if own_account {
                    format!(
                        "provider `{provider}` refused the call: the gateway's account with it is out of quota or credits; the operator must check it"
                    )
                } else {
                    e.to_string()
                },
            ),
            ErrorKind::Timeout => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout_error",
                Some("upstream_timeout"),
                e.to_string(),
            ),
            // The provider rejected the gateway's own key: the client's key was fine, so this is
            // never a 401 to the client (and the provider's words about keys are not passed on).
            ErrorKind::Auth => Self::new(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                Some("upstream_auth"),
                format!(
                    "provider `{provider}` rejected the gateway's credentials; the operator must check its API key"
                ),
            ),
            ErrorKind::InvalidRequest => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                e.to_string(),
            ),
            ErrorKind::Unsupported => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("unsupported"),
                e.to_string(),
            ),
            ErrorKind::ContentFiltered => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("content_policy_violation"),
                e.to_string(),
            ),
            ErrorKind::NotFound => Self::not_found(e.to_string()),
            ErrorKind::PermissionDenied => Self::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                Some("not_in_plan"),
                e.to_string(),
            ),
            ErrorKind::Unavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                Some("service_unavailable"),
                e.to_string(),
            ),
            ErrorKind::Connect => upstream("upstream_unreachable"),
            ErrorKind::Decode => upstream("upstream_bad_response"),
            ErrorKind::StreamInterrupted => upstream("stream_interrupted"),
            ErrorKind::Config => Self::unavailable(e.to_string()),
            _ => upstream("upstream_error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, axum::Json(json!({ "error": self.body() }))).into_response();
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert("retry-after", v);
            }
        }
        response.extensions_mut().insert(LoggedError {
            kind: self.kind,
            message: self.message,
        });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_per_kind() {
        let cases = [
            (
                ErrorKind::RateLimited { retry_after: None },
                429,
                "rate_limit_error",
            ),
            (ErrorKind::QuotaExceeded, 429, "insufficient_quota"),
            (ErrorKind::Timeout, 504, "timeout_error"),
            (ErrorKind::Connect, 502, "upstream_error"),
            (ErrorKind::Auth, 502, "upstream_error"),
            (ErrorKind::InvalidRequest, 400, "invalid_request_error"),
            (ErrorKind::NotFound, 404, "not_found_error"),
            (ErrorKind::PermissionDenied, 403, "permission_error"),
            (ErrorKind::Unavailable, 503, "api_error"),
            (ErrorKind::Unsupported, 400, "invalid_request_error"),
            (ErrorKind::ContentFiltered, 400, "invalid_request_error"),
            (ErrorKind::Upstream { status: 503 }, 502, "upstream_error"),
            (ErrorKind::Decode, 502, "upstream_error"),
            (ErrorKind::StreamInterrupted, 502, "upstream_error"),
        ];
        for (kind, status, ty) in cases {
            let api = ApiError::from(Error::new(kind.clone(), "x"));
            assert_eq!((api.status.as_u16(), api.kind), (status, ty), "{kind:?}");
        }
    }

    #[test]
    fn the_field_at_fault_is_named() {
        let e = Error::unsupported("no audio here").with_param("messages[1].content[0]");
        let body = ApiError::from(e).body();
        assert_eq!(body["param"], "messages[1].content[0]");
    }

    #[test]
    fn json_body_errors_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Body {
            model: String,
            messages: Vec<Message>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Message {
            role: String,
        }
        for (body, param) in [
            (
                r#"{"model": "m", "messages": [], "top_k": 3}"#,
                Some("top_k"),
            ),
            (r#"{"messages": []}"#, Some("model")),
            (
                r#"{"model": "m", "messages": [{"role": "user"}, {"rol": "x"}]}"#,
                Some("messages[1].rol"),
            ),
            (r#"{"model": 7, "messages": []}"#, Some("model")),
            (r#"{"model": "m", "#, None),
        ] {
            let rejection = axum::Json::<Body>::from_bytes(body.as_bytes()).unwrap_err();
            let e = ApiError::from_json(rejection);
            assert_eq!(e.param.as_deref(), param, "{body}: {}", e.message);
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn upstream_auth_message_does_not_leak_the_provider_text() {
        let e = Error::new(ErrorKind::Auth, "API key not valid: AIza...").with_provider("gemini");
        let api = ApiError::from(e);
        assert!(!api.message.contains("AIza"), "{}", api.message);
    }

    #[test]
    fn provider_words_about_the_gateways_account_are_not_passed_on() {
        // Gemini's 429 message and its quota details (https://ai.google.dev/gemini-api/docs/troubleshooting),
        // and the router's 402 body (tests/contract/hf/error-402.json).
        let gemini = Error::new(
            ErrorKind::RateLimited { retry_after: None },
            "You exceeded your current quota, please check your plan and billing details.",
        )
        .with_provider("gemini")
        .with_body(
            r#"{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}]}]}}"#,
        );
        let hf = Error::new(
            ErrorKind::QuotaExceeded,
            "You have exceeded your monthly included credits for Inference Providers. Subscribe to PRO to get 20x more monthly included credits.",
        )
        .with_provider("hf");
        for (e, status, kind) in [
            (gemini, StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
            (hf, StatusCode::TOO_MANY_REQUESTS, "insufficient_quota"),
        ] {
            let api = ApiError::from(e);
            assert_eq!((api.status, api.kind), (status, kind));
            for words in [
                "plan and billing",
                "quotaMetric",
                "free_tier",
                "credits for",
                "PRO",
            ] {
                assert!(!api.message.contains(words), "{}", api.message);
            }
        }
        // The gateway's own refusals keep their words: they are about the caller.
        let plan = Error::new(ErrorKind::QuotaExceeded, "text_requests: 200 of 200 used");
        assert!(ApiError::from(plan).message.contains("text_requests"));
    }

    #[test]
    fn retry_after_rounds_up() {
        let api = ApiError::from(Error::new(
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_millis(1500)),
            },
            "slow",
        ));
        let response = api.into_response();
        assert_eq!(response.headers()["retry-after"], "2");
    }
}
