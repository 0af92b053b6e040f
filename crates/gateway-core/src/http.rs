//! HTTP plumbing shared by provider crates (feature `http`): one client per provider, error-body
//! capture, and transport-error mapping that never keeps a URL (Gemini's would carry its key).

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::{Error, ErrorKind, ProviderConfig, Result};

pub use reqwest;

/// How many bytes of an error body are read before classifying it.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Turns an upstream error response (status, headers, body) into an [`Error`].
pub type Classify = fn(u16, &HeaderMap, &str) -> Error;

/// A `reqwest::Client` with the provider's connect and read timeouts.
///
/// A read timeout rather than a total one, so a long stream is not cut while bytes still flow.
pub fn client(cfg: &ProviderConfig) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(cfg.connect_timeout())
        .read_timeout(cfg.read_timeout())
        .build()
        .map_err(|e| Error::new(ErrorKind::Config, "cannot build the HTTP client").with_source(e))
}

/// Sends `request`; a non-2xx answer becomes the error `classify` makes of it.
pub async fn send(
    provider: &'static str,
    request: reqwest::RequestBuilder,
    classify: Classify,
) -> Result<reqwest::Response> {
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(provider, e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = read_limited(response, ERROR_BODY_LIMIT).await;
    let body = String::from_utf8_lossy(&body);
    Err(classify(status.as_u16(), &headers, &body)
        .with_provider(provider)
        .with_status(status.as_u16())
        .with_body(&body))
}

/// Reads the whole body and decodes it as `T`.
pub async fn read_json<T: DeserializeOwned>(
    provider: &'static str,
    response: reqwest::Response,
) -> Result<T> {
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_error(provider, e))?;
    serde_json::from_slice(&body).map_err(|e| {
        Error::decode(format!("unexpected response body: {e}"))
            .with_provider(provider)
            .with_body(&String::from_utf8_lossy(&body))
    })
}

/// The body as a byte stream whose errors say the stream broke off (or timed out).
pub fn byte_stream(
    provider: &'static str,
    response: reqwest::Response,
) -> BoxStream<'static, Result<Bytes>> {
    response
        .bytes_stream()
        .map(move |r| {
            r.map_err(|e| {
                let kind = if e.is_timeout() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::StreamInterrupted
                };
                Error::new(kind, "the response stream broke off")
                    .with_provider(provider)
                    .with_source(e.without_url())
            })
        })
        .boxed()
}

/// Maps a failure to get any response at all.
pub fn transport_error(provider: &'static str, e: reqwest::Error) -> Error {
    let (kind, message) = if e.is_timeout() {
        (ErrorKind::Timeout, "the provider did not answer in time")
    } else if e.is_connect() {
        (ErrorKind::Connect, "cannot connect to the provider")
    } else if e.is_decode() || e.is_body() {
        (
            ErrorKind::Connect,
            "the connection broke while reading the response",
        )
    } else {
        (ErrorKind::Connect, "the request to the provider failed")
    };
    Error::new(kind, message)
        .with_provider(provider)
        .with_source(e.without_url())
}

/// The error kind an HTTP status means when the body says nothing more specific.
pub fn kind_for_status(status: u16, headers: &HeaderMap) -> ErrorKind {
    match status {
        400 | 413 | 422 => ErrorKind::InvalidRequest,
        401 | 403 => ErrorKind::Auth,
        402 => ErrorKind::QuotaExceeded,
        404 => ErrorKind::NotFound,
        408 | 504 => ErrorKind::Timeout,
        429 => ErrorKind::RateLimited {
            retry_after: retry_after(headers),
        },
        status => ErrorKind::Upstream { status },
    }
}

/// The `Retry-After` header, in its delay-seconds form (fractions accepted).
///
/// The HTTP-date form is not read: none of our providers document sending it.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

async fn read_limited(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == limit {
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    fn with_retry_after(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(retry_after(&with_retry_after("0")), Some(Duration::ZERO));
        assert_eq!(
            retry_after(&with_retry_after(" 2 ")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&with_retry_after("1.5")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_after(&with_retry_after("-1")), None);
        assert_eq!(
            retry_after(&with_retry_after("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn status_table() {
        let h = HeaderMap::new();
        for (status, kind) in [
            (400, ErrorKind::InvalidRequest),
            (401, ErrorKind::Auth),
            (402, ErrorKind::QuotaExceeded),
            (403, ErrorKind::Auth),
            (404, ErrorKind::NotFound),
            (422, ErrorKind::InvalidRequest),
            (429, ErrorKind::RateLimited { retry_after: None }),
            (500, ErrorKind::Upstream { status: 500 }),
            (503, ErrorKind::Upstream { status: 503 }),
            (504, ErrorKind::Timeout),
            (529, ErrorKind::Upstream { status: 529 }),
        ] {
            assert_eq!(kind_for_status(status, &h), kind, "{status}");
        }
    }
}
