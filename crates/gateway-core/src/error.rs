//! The one error type every crate of the gateway returns.

use std::fmt;
use std::time::Duration;

/// How many bytes of an upstream error body an [`Error`] keeps.
const BODY_LIMIT: usize = 2048;

/// What went wrong, as a caller needs to know it: is it worth retrying, whose fault is it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The provider asked us to slow down (HTTP 429 that is not a quota or billing limit).
    RateLimited {
        /// How long the provider asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// A billing or quota limit that waiting will not lift (e.g. 402, 429 `insufficient_quota`).
    QuotaExceeded,
    /// The request or the provider took too long.
    Timeout,
    /// No connection could be made, or it broke before a response arrived.
    Connect,
    /// The provider rejected the gateway's own provider key (upstream 401/403).
    Auth,
    /// The request is malformed or has a value the provider refuses (400/413/422).
    InvalidRequest,
    /// Unknown model, provider or job id.
    NotFound,
    /// The caller's plan does not include this model or modality.
    PermissionDenied,
    /// Something the gateway needs (its database) cannot be reached; nothing was sent upstream.
    Unavailable,
    /// The provider cannot do what was asked; detected before any IO.
    Unsupported,
    /// The provider's safety system refused to produce the output.
    ContentFiltered,
    /// The provider failed (5xx, 529 overloaded, or any unexpected status).
    Upstream {
        /// The HTTP status the provider answered with.
        status: u16,
    },
    /// The provider's answer did not match its documented format: drift or a bug of ours.
    Decode,
    /// A stream ended before the provider's normal end of stream.
    StreamInterrupted,
    /// The gateway itself is misconfigured (e.g. a provider without an API key).
    Config,
}

impl ErrorKind {
    /// The kind in snake case, as usage logs and metrics name it (`rate_limited`, `upstream`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::QuotaExceeded => "quota_exceeded",
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Auth => "auth",
            Self::InvalidRequest => "invalid_request",
            Self::NotFound => "not_found",
            Self::PermissionDenied => "permission_denied",
            Self::Unavailable => "unavailable",
            Self::Unsupported => "unsupported",
            Self::ContentFiltered => "content_filtered",
            Self::Upstream { .. } => "upstream",
            Self::Decode => "decode",
            Self::StreamInterrupted => "stream_interrupted",
            Self::Config => "config",
        }
    }
}

/// An error from the gateway or one of its providers.
///
/// A small boxed struct: callers ask it questions ([`Error::kind`], [`Error::is_retryable`],
/// [`Error::retry_after`]) rather than parse its message. Upstream bodies are kept truncated and
/// never contain the provider key, because no URL or header is ever stored.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    provider: &'static str,
    status: Option<u16>,
    message: String,
    param: Option<String>,
    body: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    in_doubt: bool,
}

impl Error {
    /// A new error of `kind` with a human-readable `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                provider: "",
                status: None,
                message: message.into(),
                param: None,
                body: None,
                source: None,
                in_doubt: false,
            }),
        }
    }

    /// Shorthand for [`ErrorKind::InvalidRequest`].
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    /// Shorthand for [`ErrorKind::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Shorthand for [`ErrorKind::Decode`].
    pub fn decode(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Decode, message)
    }

    /// Sets the provider this error came from (`"gemini"`, `"hf"`, ...).
    pub fn with_provider(mut self, provider: &'static str) -> Self {
        self.inner.provider = provider;
        self
    }

    /// Sets the upstream HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.inner.status = Some(status);
        self
    }

    /// Names the request field at fault (`messages[1].content[0]`, `input`), for a client to
    /// see where its request went wrong (OpenAI's `error.param`).
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.inner.param = Some(param.into());
        self
    }

    /// Keeps a truncated copy of the upstream body for diagnosis.
    pub fn with_body(mut self, body: &str) -> Self {
        self.inner.body = Some(truncate(body, BODY_LIMIT).to_owned());
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// Marks a failure after which the provider may have acted on the request all the same: a
    /// job submit whose answer was lost (a timeout, a connection broken after the request was
    /// sent). Such a call is neither retried nor sent to another route, which could run and bill
    /// the work twice; the failure is reported instead.
    pub fn in_doubt(mut self) -> Self {
        self.inner.in_doubt = true;
        self
    }

    /// Whether the provider may have acted on the request although it failed (see
    /// [`Error::in_doubt`]).
    pub fn is_in_doubt(&self) -> bool {
        self.inner.in_doubt
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The provider this error came from, or `""` if it arose in the gateway itself.
    pub fn provider(&self) -> &'static str {
        self.inner.provider
    }

    /// The upstream HTTP status, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// The message, without the provider prefix.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The request field at fault, when the error names one.
    pub fn param(&self) -> Option<&str> {
        self.inner.param.as_deref()
    }

    /// The truncated upstream body, when one was kept.
    pub fn body(&self) -> Option<&str> {
        self.inner.body.as_deref()
    }

    /// Whether sending the same request again may succeed.
    ///
    /// Rate limits, timeouts, connection failures and provider 5xx are; a broken stream is not,
    /// because the client has already received part of it, and nor is a failure
    /// [in doubt](Error::in_doubt), which might run the work twice.
    pub fn is_retryable(&self) -> bool {
        !self.inner.in_doubt
            && matches!(
                self.inner.kind,
                ErrorKind::RateLimited { .. }
                    | ErrorKind::Timeout
                    | ErrorKind::Connect
                    | ErrorKind::Upstream { .. }
            )
    }

    /// How long the provider asked us to wait before retrying, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.inner.kind {
            ErrorKind::RateLimited { retry_after } => retry_after,
            _ => None,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        if !self.inner.provider.is_empty() {
            d.field("provider", &self.inner.provider);
        }
        if let Some(status) = self.inner.status {
            d.field("status", &status);
        }
        d.field("message", &self.inner.message);
        if let Some(param) = &self.inner.param {
            d.field("param", param);
        }
        if let Some(body) = &self.inner.body {
            d.field("body", body);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        if self.inner.in_doubt {
            d.field("in_doubt", &true);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.inner.provider.is_empty() {
            write!(f, "{}: ", self.inner.provider)?;
        }
        f.write_str(&self.inner.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The result type of the gateway.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds() {
        let retryable = [
            ErrorKind::RateLimited { retry_after: None },
            ErrorKind::Timeout,
            ErrorKind::Connect,
            ErrorKind::Upstream { status: 503 },
        ];
        for kind in retryable {
            assert!(Error::new(kind.clone(), "x").is_retryable(), "{kind:?}");
        }
        let permanent = [
            ErrorKind::QuotaExceeded,
            ErrorKind::Auth,
            ErrorKind::InvalidRequest,
            ErrorKind::NotFound,
            ErrorKind::PermissionDenied,
            ErrorKind::Unavailable,
            ErrorKind::Unsupported,
            ErrorKind::ContentFiltered,
            ErrorKind::Decode,
            ErrorKind::StreamInterrupted,
            ErrorKind::Config,
        ];
        for kind in permanent {
            assert!(!Error::new(kind.clone(), "x").is_retryable(), "{kind:?}");
        }
    }

    #[test]
    fn retry_after_only_from_rate_limits() {
        let e = Error::new(
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            },
            "slow down",
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(Error::new(ErrorKind::Timeout, "t").retry_after(), None);
    }

    #[test]
    fn body_is_truncated_on_a_char_boundary() {
        let body = "é".repeat(BODY_LIMIT);
        let e = Error::new(ErrorKind::Decode, "x").with_body(&body);
        let kept = e.body().unwrap();
        assert!(kept.len() <= BODY_LIMIT);
        assert!(kept.chars().all(|c| c == 'é'));
    }

    #[test]
    fn display_names_the_provider() {
        let e = Error::new(ErrorKind::Auth, "key rejected").with_provider("gemini");
        assert_eq!(e.to_string(), "gemini: key rejected");
    }
}
