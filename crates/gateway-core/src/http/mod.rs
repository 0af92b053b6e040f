//! HTTP plumbing shared by provider crates (feature `http`): one client per provider ([`Upstream`]:
//! JSON, multipart, raw-bytes and GET requests), error-body capture, bounded reads of JSON and
//! binary answers, and transport-error mapping that never keeps a URL (Gemini's would carry its
//! key).
//!
//! [`Downloader`] fetches URLs the gateway did not choose (a provider's CDN link to a generated
//! image, a caller's image to edit) within size, redirect and time limits, and only from public
//! addresses ([`check_ip`]) unless the operator allows private ones.

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::{Error, ErrorKind, ProviderConfig, Result, SecretString};

pub use reqwest;

mod addr;
mod direct;
mod download;
mod pool;
pub use addr::check_ip;
pub use download::{DownloadPolicy, DownloadSettings, Downloader, UrlOrigin};

#[cfg(test)]
mod test_server;

/// How many bytes of an error body are read before classifying it.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Turns an upstream error response (status, headers, body) into an [`Error`].
pub type Classify = fn(u16, &HeaderMap, &str) -> Error;

/// A `reqwest::Client` with the provider's connect and read timeouts.
///
/// A read timeout rather than a total one, so a long stream is not cut while bytes still flow.
pub fn client(cfg: &ProviderConfig) -> Result<reqwest::Client> {
    Timeouts::of(cfg).build()
}

/// The settings a provider's client is built from, kept so that a thread with clients of its
/// own ([`use_thread_clients`]) can build its copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timeouts {
    connect: Duration,
    read: Duration,
}

impl Timeouts {
    fn of(cfg: &ProviderConfig) -> Self {
        Self {
            connect: cfg.connect_timeout(),
            read: cfg.read_timeout(),
        }
    }

    fn build(self) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .connect_timeout(self.connect)
            .read_timeout(self.read)
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, "cannot build the HTTP client").with_source(e)
            })
    }
}

/// A thread's own clients ([`use_thread_clients`]), one per [`Timeouts`].
#[derive(Default)]
struct ThreadClients {
    reqwest: Vec<(Timeouts, reqwest::Client)>,
    /// Pools for direct calls ([`direct`]); `None` where a proxy is configured.
    direct: Vec<(Timeouts, Option<direct::Direct>)>,
}

thread_local! {
    /// This thread's own clients, once [`use_thread_clients`] was called on it; `None` on every
    /// other thread.
    static THREAD_CLIENTS: std::cell::RefCell<Option<ThreadClients>> =
        const { std::cell::RefCell::new(None) };
}

/// Makes the provider calls made on this thread use connection pools of the thread's own,
/// instead of the pool each provider shares across threads.
///
/// For a server that runs one single-threaded runtime per core (the `gateway` binary does):
/// a connection belongs to the runtime that opened it, so a request served on one core that
/// picks up a connection another core opened pays a cross-thread wake-up on every read and
/// write. With this, each core opens, keeps and reuses its own upstream connections. Clients
/// a caller built and handed over ([`UpstreamBuilder::http`]) are always shared: their settings
/// cannot be copied.
pub fn use_thread_clients() {
    THREAD_CLIENTS.with(|clients| {
        clients
            .borrow_mut()
            .get_or_insert_with(ThreadClients::default);
    });
}

/// The client of `timeouts` on this thread, when it has clients of its own.
fn thread_client(timeouts: Timeouts) -> Option<reqwest::Client> {
    THREAD_CLIENTS.with(|clients| {
        let mut clients = clients.borrow_mut();
        let clients = &mut clients.as_mut()?.reqwest;
        if let Some((_, client)) = clients.iter().find(|(t, _)| *t == timeouts) {
            return Some(client.clone());
        }
        let client = timeouts.build().ok()?;
        clients.push((timeouts, client.clone()));
        Some(client)
    })
}

/// This thread's pool for direct calls with `timeouts`, when it has clients of its own: `None`
/// when it has not, `Some(None)` when calls must go through reqwest (a proxy is configured).
fn thread_direct(timeouts: Timeouts) -> Option<Option<direct::Direct>> {
    THREAD_CLIENTS.with(|clients| {
        let mut clients = clients.borrow_mut();
        let pools = &mut clients.as_mut()?.direct;
        if let Some((_, pool)) = pools.iter().find(|(t, _)| *t == timeouts) {
            return Some(pool.clone());
        }
        let pool = direct::Direct::new(timeouts);
        pools.push((timeouts, pool.clone()));
        Some(pool)
    })
}

/// Sends `request`; a non-2xx answer becomes the error `classify` makes of it.
pub async fn send(
    provider: &'static str,
    request: reqwest::RequestBuilder,
    classify: Classify,
) -> Result<reqwest::Response> {
    let (client, request) = request.build_split();
    let request = request.map_err(|e| transport_error(provider, e))?;
    let span = client_span(request.method(), request.url());
    let response = client
        .execute(request)
        .instrument(span.clone())
        .await
        .map_err(|e| transport_error(provider, e));
    answered(provider, span, response, classify).await
}

/// The answer of a call made inside `span` (the call awaited by the caller); a non-2xx answer
/// becomes the error `classify` makes of it.
///
/// The call is awaited where it is made, not passed in: an async fn keeps a future it is handed
/// in a slot of its own beside the one it awaits it in, so taking the call here doubled this
/// future's size (and every future around it), and each move of the request's future copied
/// both.
async fn answered(
    provider: &'static str,
    span: tracing::Span,
    response: Result<reqwest::Response>,
    classify: Classify,
) -> Result<reqwest::Response> {
    let response = response.inspect_err(|_| {
        span.record("error.type", "transport");
        span.record("otel.status_code", "error");
    })?;
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_success() {
        return Ok(response);
    }
    span.record("error.type", status.as_str());
    span.record("otel.status_code", "error");
    let headers = response.headers().clone();
    let body = read_limited(response, ERROR_BODY_LIMIT).await;
    let body = String::from_utf8_lossy(&body);
    Err(classify(status.as_u16(), &headers, &body)
        .with_provider(provider)
        .with_status(status.as_u16())
        .with_body(&body))
}

/// Whether the current span is one of the gateway's traced ones (telemetry is on), so a call
/// gets a client span of its own.
fn traced() -> bool {
    tracing::Span::current()
        .metadata()
        .is_some_and(|m| m.target() == crate::telemetry::OTEL_TARGET)
}

/// The span of one provider call, per the OpenTelemetry HTTP client conventions
/// (<https://opentelemetry.io/docs/specs/semconv/http/http-spans/>). The URL is recorded without
/// its query: some providers take their key there.
///
/// Only inside one of the gateway's attempt spans: a request sampled out of tracing has none,
/// and its provider call must not start a trace of its own.
fn client_span(method: &reqwest::Method, url: &reqwest::Url) -> tracing::Span {
    if !traced() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        target: crate::telemetry::OTEL_TARGET,
        "http.client",
        otel.name = method.as_str(),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = method.as_str(),
        server.address = url.host_str().unwrap_or_default(),
        server.port = i64::from(url.port_or_known_default().unwrap_or_default()),
        url.full = %UrlWithoutQuery(url),
        http.response.status_code = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
    )
}

/// A URL shown without its user info, query or fragment.
struct UrlWithoutQuery<'a>(&'a reqwest::Url);

impl std::fmt::Display for UrlWithoutQuery<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.0;
        write!(
            f,
            "{}://{}",
            url.scheme(),
            url.host_str().unwrap_or_default()
        )?;
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(url.path())
    }
}

/// The largest successful response body read into memory (32 MiB): far above any JSON answer,
/// inline images included, and a bound on what a faulty upstream can make one request allocate.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// Reads the whole body (at most [`MAX_RESPONSE_BYTES`]) and decodes it as `T`.
pub async fn read_json<T: DeserializeOwned>(
    provider: &'static str,
    response: reqwest::Response,
) -> Result<T> {
    let body = read_bounded(response, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| e.into_error(provider))?;
    crate::from_json_bytes(&body).map_err(|e| {
        Error::decode(format!("unexpected response body: {e}"))
            .with_provider(provider)
            .with_body(&String::from_utf8_lossy(&body))
    })
}

/// [`read_json`] with a hand reader tried first: `scan` reads the body when it is one of the
/// plain shapes it knows (see [`crate::json::Scan`]), and gives the rest (`None`) to
/// serde_json, which decides, errors included.
pub async fn read_json_scanned<T: DeserializeOwned>(
    provider: &'static str,
    response: reqwest::Response,
    scan: fn(&str) -> Option<T>,
) -> Result<T> {
    let body = read_bounded(response, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| e.into_error(provider))?;
    if let Some(value) = std::str::from_utf8(&body).ok().and_then(scan) {
        return Ok(value);
    }
    crate::from_json_bytes(&body).map_err(|e| {
        Error::decode(format!("unexpected response body: {e}"))
            .with_provider(provider)
            .with_body(&String::from_utf8_lossy(&body))
    })
}

/// Reads the whole body (at most [`MAX_RESPONSE_BYTES`]) as bytes, with the `Content-Type` the
/// provider declared (an image, audio, ...), if it is valid text.
pub async fn read_bytes(
    provider: &'static str,
    response: reqwest::Response,
) -> Result<(Bytes, Option<String>)> {
    let content_type = content_type(&response);
    let body = read_bounded(response, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| e.into_error(provider))?;
    Ok((body, content_type))
}

/// The response's `Content-Type`, when it is valid text.
fn content_type(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)?
        .to_str()
        .ok()
        .map(str::to_owned)
}

/// Why [`read_bounded`] stopped short of a whole body.
pub(crate) enum BodyError {
    /// The body is, or was declared to be, larger than the limit.
    TooLarge,
    /// The connection failed (or timed out) mid-body.
    Transport(reqwest::Error),
}

impl BodyError {
    /// The error a provider call reports: a body too large for us is a provider answer we
    /// cannot use (`Decode`), not a transport failure.
    fn into_error(self, provider: &'static str) -> Error {
        match self {
            Self::TooLarge => too_large(provider),
            Self::Transport(e) => transport_error(provider, e),
        }
    }
}

/// Reads the whole body, at most `limit` bytes: a `Content-Length` above it fails before any
/// byte is read, and a body without one (chunked) fails as soon as the count passes it, so a
/// faulty or hostile server cannot make one request allocate more than `limit`.
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> std::result::Result<Bytes, BodyError> {
    let declared = response.content_length();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    // The declared length is at most `limit` here, so trusting it for the allocation is bounded.
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

fn too_large(provider: &'static str) -> Error {
    Error::decode(format!(
        "the response is larger than {} MiB",
        MAX_RESPONSE_BYTES / (1024 * 1024)
    ))
    .with_provider(provider)
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

/// A request body that cannot be encoded as JSON: an invalid request, not a transport error.
pub fn cannot_encode(provider: &'static str, e: &serde_json::Error) -> Error {
    Error::invalid_request(format!("cannot encode the request: {e}")).with_provider(provider)
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

/// Whether `e` is a call that never reached the provider: no connection could be made (refused,
/// unresolvable, a connect timeout, a failed TLS handshake), so nothing was sent. Whichever
/// client carried the call, reqwest or hyper's pool ([`Upstream::post_json`]).
pub fn never_connected(e: &Error) -> bool {
    let Some(source) = std::error::Error::source(e) else {
        return false;
    };
    source
        .downcast_ref::<reqwest::Error>()
        .is_some_and(reqwest::Error::is_connect)
        || source
            .downcast_ref::<pool::CallError>()
            .is_some_and(|e| matches!(e, pool::CallError::Connect(_)))
}

/// The most bytes of message [`error_message`] keeps (a provider's whole body is kept apart, on
/// the error, truncated by [`Error::with_body`]).
pub const ERROR_MESSAGE_LIMIT: usize = 512;

/// A provider error's message from the texts its body holds: each trimmed, empty ones and
/// repeats left out, joined with `; `, and cut to [`ERROR_MESSAGE_LIMIT`] bytes on a character
/// boundary (marked with `…`). Empty when no text says anything.
pub fn error_message<S: AsRef<str>>(parts: impl IntoIterator<Item = S>) -> String {
    let mut kept: Vec<String> = Vec::new();
    for part in parts {
        let part = part.as_ref().trim();
        if !part.is_empty() && !kept.iter().any(|k| k == part) {
            kept.push(part.to_owned());
        }
    }
    let mut message = kept.join("; ");
    if message.len() > ERROR_MESSAGE_LIMIT {
        let mut end = ERROR_MESSAGE_LIMIT;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// Whether an error answer is an HTML page (a proxy's or load balancer's error page), which says
/// nothing worth keeping as a message.
pub fn is_html(headers: &HeaderMap, body: &str) -> bool {
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    content_type.to_ascii_lowercase().contains("html") || body.trim_start().starts_with('<')
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

    #[test]
    fn error_messages_keep_each_text_once_and_stay_short() {
        assert_eq!(error_message([" a ", "", "b", "a"]), "a; b");
        assert_eq!(error_message(Vec::<String>::new()), "");
        let long = error_message(["é".repeat(ERROR_MESSAGE_LIMIT)]);
        assert!(long.ends_with('…'));
        assert!(long.len() <= ERROR_MESSAGE_LIMIT + '…'.len_utf8());
        let html = HeaderMap::from_iter([(
            reqwest::header::CONTENT_TYPE,
            "text/html; charset=utf-8".parse().unwrap(),
        )]);
        assert!(is_html(&html, "Bad gateway"));
        assert!(is_html(
            &HeaderMap::new(),
            "  <html><body>502</body></html>"
        ));
        assert!(!is_html(&HeaderMap::new(), r#"{"error": "x"}"#));
    }
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
    fn upstream_settings_are_checked_without_leaking() {
        for (key, base) in [
            (None, None),
            (Some("  "), None),
            (Some("k\nsecret"), None),
            (Some("k"), Some("not a url")),
            (Some("k"), Some("ftp://x")),
            (Some("k"), Some("http://x/?key=1")),
        ] {
            let mut b = UpstreamBuilder::default();
            if let Some(key) = key {
                b.api_key(key.into());
            }
            if let Some(base) = base {
                b.base_url(base.into());
            }
            let err = b
                .build("p", "https://example.test", Auth::Bearer)
                .unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Config);
            assert!(
                !err.to_string().contains("secret") && !err.to_string().contains("key=1"),
                "{err}"
            );
        }
    }

    #[test]
    fn upstream_hides_its_key_and_trims_the_base() {
        let mut b = UpstreamBuilder::default();
        b.api_key("supersecret".into());
        b.base_url("http://127.0.0.1:9/".into());
        let up = b
            .build("p", "https://example.test", Auth::Header("x-api-key"))
            .unwrap();
        assert_eq!(up.base_url(), "http://127.0.0.1:9");
        assert!(!format!("{up:?}").contains("supersecret"));
        let req = up.post("/v1/x").build().unwrap();
        assert_eq!(req.url().as_str(), "http://127.0.0.1:9/v1/x");
        assert!(req.headers()["x-api-key"].is_sensitive());
    }

    /// The key, content type and body each helper sends, as the echo server saw them.
    #[derive(Debug, serde::Deserialize)]
    struct Echo {
        method: String,
        target: String,
        key: Option<String>,
        accept: Option<String>,
        content_type: Option<String>,
        body: String,
    }

    /// An upstream whose server answers every request with an [`Echo`] of it, except for
    /// `/fail`, which answers 503.
    #[test]
    fn urls_are_the_base_and_the_path_as_joined_text_would_parse() {
        for (base, path) in [
            ("https://example.test", "/v1/chat/completions"),
            ("https://example.test/", "/v1/chat/completions"),
            (
                "http://127.0.0.1:9/api/v2",
                "/models/a:generateContent?alt=sse",
            ),
            (
                "http://user:pw@example.test:8080/x/",
                "/tasks/abc%20d/result",
            ),
            ("https://example.test", "/models/org/some model:predict"),
        ] {
            let mut b = UpstreamBuilder::default();
            b.api_key("k".into());
            b.base_url(base.into());
            let upstream = b.build("p", "https://unused.test", Auth::Bearer).unwrap();
            let joined = format!("{}{path}", base.trim_end_matches('/'));
            let parsed = reqwest::Url::parse(&joined).unwrap();
            let built = upstream.url(path);
            assert_eq!(built.path(), parsed.path(), "{base} {path}");
            assert_eq!(built.query(), parsed.query(), "{base} {path}");
            assert_eq!(built.host_str(), parsed.host_str(), "{base} {path}");
            assert_eq!(built.port(), parsed.port(), "{base} {path}");
            assert_eq!(built.username(), parsed.username(), "{base} {path}");
        }
        // Credentials in the base URL keep the calls on reqwest, which sends them.
        let mut b = UpstreamBuilder::default();
        b.api_key("k".into());
        b.base_url("http://user:pw@example.test".into());
        assert!(
            b.build("p", "https://unused.test", Auth::Bearer)
                .unwrap()
                .direct
                .is_none()
        );
        // Where joined text would cut the path at a `#` (a fragment, never sent), the path is
        // sent whole, the `#` escaped.
        let mut b = UpstreamBuilder::default();
        b.api_key("k".into());
        let upstream = b.build("p", "https://example.test", Auth::Bearer).unwrap();
        let url = upstream.url("/models/a#1:predict");
        assert_eq!(url.path(), "/models/a%231:predict");
        assert_eq!(url.fragment(), None);
    }

    #[tokio::test]
    async fn a_thread_with_clients_of_its_own_calls_through_its_own_pool() {
        let upstream = echo_upstream().await;
        assert!(thread_client(upstream.timeouts.unwrap()).is_none());
        let shared = upstream.get_json::<serde_json::Value>("/a", classify).await;
        assert_eq!(shared.unwrap()["target"], "/a");
        use_thread_clients();
        let first = thread_client(upstream.timeouts.unwrap()).expect("this thread's client");
        let again = thread_client(upstream.timeouts.unwrap()).unwrap();
        assert_eq!(
            THREAD_CLIENTS.with(|c| c.borrow().as_ref().unwrap().reqwest.len()),
            1
        );
        drop((first, again));
        let pool = thread_direct(upstream.timeouts.unwrap()).expect("this thread's pools");
        assert!(
            pool.is_some(),
            "a pool for direct calls (is a proxy variable set?)"
        );
        let local = upstream
            .get_json::<serde_json::Value>("/b?x=1", classify)
            .await;
        assert_eq!(local.unwrap()["target"], "/b?x=1");
        // A client the caller handed over is never replaced.
        let mut b = UpstreamBuilder::default();
        b.api_key("k".into());
        b.http(reqwest::Client::new());
        let handed = b.build("p", "https://example.test", Auth::Bearer).unwrap();
        assert!(handed.timeouts.is_none());
    }

    async fn echo_upstream() -> Upstream {
        let addr = test_server::serve(|req| {
            if req.target == "/fail" {
                return test_server::response(503, &[], b"{\"error\":\"busy\"}");
            }
            let echo = serde_json::json!({
                "method": req.method,
                "target": req.target,
                "key": req.header("x-api-key"),
                "accept": req.header("accept"),
                "content_type": req.header("content-type"),
                "host": req.header("host"),
                "body": String::from_utf8_lossy(&req.body),
            });
            test_server::response(
                200,
                &[("content-type", "application/json")],
                echo.to_string().as_bytes(),
            )
        })
        .await;
        let mut b = UpstreamBuilder::default();
        b.api_key("k1".into());
        b.base_url(format!("http://{addr}"));
        b.build("p", "https://example.test", Auth::Header("x-api-key"))
            .unwrap()
    }

    fn classify(status: u16, headers: &HeaderMap, _body: &str) -> Error {
        Error::new(kind_for_status(status, headers), "classified")
    }

    #[tokio::test]
    async fn get_json_sends_the_key() {
        let up = echo_upstream().await;
        let echo: Echo = up.get_json("/v1/jobs/7?x=1", classify).await.unwrap();
        assert_eq!(echo.method, "GET");
        assert_eq!(echo.target, "/v1/jobs/7?x=1");
        assert_eq!(echo.key.as_deref(), Some("k1"));
        assert_eq!(echo.body, "");

        let err = up.get_json::<Echo>("/fail", classify).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Upstream { status: 503 });
        assert_eq!(err.provider(), "p");
        assert_eq!(err.body(), Some("{\"error\":\"busy\"}"));
    }

    #[tokio::test]
    async fn get_takes_extra_headers() {
        let up = echo_upstream().await;
        let request = up
            .get("/v1/search")
            .header(reqwest::header::ACCEPT, "text/plain");
        let response = send("p", request, classify).await.unwrap();
        let echo: Echo = read_json("p", response).await.unwrap();
        assert_eq!(echo.method, "GET");
        assert_eq!(echo.key.as_deref(), Some("k1"));
        assert_eq!(echo.accept.as_deref(), Some("text/plain"));
    }

    #[tokio::test]
    async fn post_multipart_sends_a_form() {
        let up = echo_upstream().await;
        let form = reqwest::multipart::Form::new()
            .text("model", "whisper-1")
            .part(
                "file",
                reqwest::multipart::Part::bytes(&b"RIFFdata"[..])
                    .file_name("a.wav")
                    .mime_str("audio/wav")
                    .unwrap(),
            );
        let response = up
            .post_multipart("/v1/audio", form, classify)
            .await
            .unwrap();
        let echo: Echo = read_json("p", response).await.unwrap();
        assert_eq!(echo.method, "POST");
        assert_eq!(echo.key.as_deref(), Some("k1"));
        let content_type = echo.content_type.unwrap();
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap_or_else(|| panic!("{content_type}"));
        assert!(echo.body.contains(boundary), "{}", echo.body);
        assert!(echo.body.contains("name=\"model\"\r\n\r\nwhisper-1"));
        assert!(echo.body.contains("filename=\"a.wav\""));
        assert!(
            echo.body
                .contains("Content-Type: audio/wav\r\n\r\nRIFFdata")
        );
    }

    #[tokio::test]
    async fn post_bytes_sends_its_content_type() {
        let up = echo_upstream().await;
        let response = up
            .post_bytes(
                "/v1/upload",
                Bytes::from_static(b"\x89PNG"),
                "image/png",
                classify,
            )
            .await
            .unwrap();
        let echo: Echo = read_json("p", response).await.unwrap();
        assert_eq!(echo.method, "POST");
        assert_eq!(echo.key.as_deref(), Some("k1"));
        assert_eq!(echo.content_type.as_deref(), Some("image/png"));
        assert_eq!(echo.body, "\u{fffd}PNG");

        let err = up
            .post_bytes("/v1/upload", Bytes::new(), "image/png\n", classify)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
    }

    /// A response from a one-answer server.
    async fn answer(raw: Vec<u8>) -> reqwest::Response {
        let addr = test_server::serve(move |req| {
            // A panic here drops the connection, which fails the test's request.
            assert_eq!((req.method.as_str(), req.target.as_str()), ("GET", "/"));
            raw.clone()
        })
        .await;
        reqwest::get(format!("http://{addr}/")).await.unwrap()
    }

    #[tokio::test]
    async fn read_bytes_keeps_the_content_type() {
        let png = b"\x89PNG\r\n\x1a\n\0\0";
        let response = answer(test_server::response(
            200,
            &[("content-type", "image/png")],
            png,
        ))
        .await;
        let (body, content_type) = read_bytes("p", response).await.unwrap();
        assert_eq!(&body[..], png);
        assert_eq!(content_type.as_deref(), Some("image/png"));

        let response = answer(test_server::chunked(&[], &[b"ab", b"cd"])).await;
        let (body, content_type) = read_bytes("p", response).await.unwrap();
        assert_eq!(&body[..], b"abcd");
        assert_eq!(content_type, None);
    }

    #[tokio::test]
    async fn a_declared_length_above_the_cap_fails_before_reading() {
        // The server declares more than the cap and sends nothing: reading would fail with a
        // transport error, so a `Decode` error shows the length was refused up front.
        let raw = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            MAX_RESPONSE_BYTES + 1
        );
        let err = read_bytes("p", answer(raw.into_bytes()).await)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Decode, "{err}");
        assert!(err.to_string().contains("larger than 32 MiB"), "{err}");
    }

    #[tokio::test]
    async fn read_bounded_counts_chunks() {
        let response = answer(test_server::chunked(&[], &[b"abc", b"def"])).await;
        assert!(matches!(
            read_bounded(response, 5).await,
            Err(BodyError::TooLarge)
        ));
        let response = answer(test_server::chunked(&[], &[b"abc", b"de"])).await;
        assert_eq!(&read_bounded(response, 5).await.ok().unwrap()[..], b"abcde");
    }

    /// An upstream on `addr` whose reads time out after `read`.
    fn upstream_with_read_timeout(addr: std::net::SocketAddr, read: Duration) -> Upstream {
        let cfg = ProviderConfig {
            read_timeout_ms: Some(read.as_millis() as u64),
            ..ProviderConfig::default()
        };
        let mut b = UpstreamBuilder::default();
        b.api_key("k1".into());
        b.base_url(format!("http://{addr}"));
        b.http = Some(Timeouts::of(&cfg).build().unwrap());
        b.timeouts = Some(Timeouts::of(&cfg));
        let up = b
            .build("p", "https://example.test", Auth::Header("x-api-key"))
            .unwrap();
        assert!(
            up.direct.is_some(),
            "JSON POSTs go out on hyper's pool (is a proxy variable set?)"
        );
        up
    }

    #[tokio::test]
    async fn a_direct_post_sends_the_key_the_json_and_the_callers_headers() {
        let up = echo_upstream().await;
        assert!(up.direct.is_some());
        let extra = [(
            reqwest::header::HeaderName::from_static("x-hf-bill-to"),
            reqwest::header::HeaderValue::from_static("acme"),
        )];
        let response = up
            .post_json_with(
                "/v1/chat?x=1",
                &serde_json::json!({"a": 1}),
                &extra,
                classify,
            )
            .await
            .unwrap();
        assert_eq!(
            response.url(),
            &up.base,
            "the answer names the provider's base URL"
        );
        let echo: serde_json::Value = read_json("p", response).await.unwrap();
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["target"], "/v1/chat?x=1");
        assert_eq!(echo["key"], "k1");
        assert_eq!(echo["accept"], "*/*");
        assert_eq!(echo["content_type"], "application/json");
        assert_eq!(
            echo["host"],
            up.base.host_str().unwrap().to_owned() + ":" + &up.base.port().unwrap().to_string()
        );
        assert_eq!(echo["body"], r#"{"a":1}"#);

        // A path `reqwest::Url` would change goes out as it changes it.
        for (path, sent) in [
            ("/v1/a b?q=1 2", "/v1/a%20b?q=1%202"),
            ("/v1/x/../y", "/v1/y"),
        ] {
            let response = up
                .post_json(path, &serde_json::json!({}), classify)
                .await
                .unwrap();
            let echo: serde_json::Value = read_json("p", response).await.unwrap();
            assert_eq!(echo["target"], sent, "{path}");
        }

        // A non-2xx answer is classified, with its body, as on reqwest's path.
        let err = up
            .post_json("/fail", &serde_json::json!({}), classify)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Upstream { status: 503 });
        assert_eq!(err.status(), Some(503));
    }

    #[tokio::test]
    async fn a_direct_post_times_out_waiting_for_the_head() {
        let head = test_server::response(200, &[], b"{}");
        let addr = test_server::serve_slowly(vec![(Duration::from_millis(600), head)]).await;
        let up = upstream_with_read_timeout(addr, Duration::from_millis(150));
        let started = std::time::Instant::now();
        let err = up
            .post_json("/v1/x", &serde_json::json!({}), classify)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Timeout, "{err}");
        assert!(started.elapsed() < Duration::from_millis(550));
    }

    /// The answer of a server that writes `steps`, read with a read timeout of `read`.
    async fn stream_from(steps: Vec<(Duration, Vec<u8>)>, read: Duration) -> reqwest::Response {
        let addr = test_server::serve_slowly(steps).await;
        upstream_with_read_timeout(addr, read)
            .post_json("/v1/stream", &serde_json::json!({}), classify)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_steady_stream_outlasts_the_read_timeout_and_a_stalled_one_is_cut() {
        let read = Duration::from_millis(250);
        let step = Duration::from_millis(100);
        // Six chunks 100 ms apart: 600 ms in all, never 250 ms without a byte.
        let mut steps = vec![(Duration::ZERO, test_server::chunked_head(&[]))];
        steps.extend((0..6).map(|i| (step, test_server::chunk(format!("c{i}").as_bytes()))));
        steps.push((step, b"0\r\n\r\n".to_vec()));
        let parts: Vec<Bytes> = byte_stream("p", stream_from(steps, read).await)
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(parts.concat(), b"c0c1c2c3c4c5");

        // One chunk, then nothing: cut after the read timeout, as a timeout.
        let steps = vec![
            (Duration::ZERO, test_server::chunked_head(&[])),
            (Duration::ZERO, test_server::chunk(b"first")),
        ];
        let response = stream_from(steps, read).await;
        let started = std::time::Instant::now();
        let mut stream = byte_stream("p", response);
        assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"first");
        let err = stream.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Timeout, "{err}");
        let waited = started.elapsed();
        assert!(
            waited >= read && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn a_direct_post_to_a_closed_port_cannot_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let up = upstream_with_read_timeout(addr, Duration::from_secs(5));
        let err = up
            .post_json("/v1/x", &serde_json::json!({}), classify)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Connect, "{err}");
        assert!(never_connected(&err), "{err:?}");
        assert!(!format!("{err:?}").contains("k1"), "{err:?}");
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

/// How a provider wants its API key sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key alone in the named header (e.g. `x-goog-api-key`).
    Header(&'static str),
}

/// What every provider client holds: one HTTP client (one connection pool), the base URL, and
/// the key as a header value marked sensitive, so neither `Debug` nor reqwest ever shows it.
/// Keys are never put in URLs.
#[derive(Clone)]
pub struct Upstream {
    provider: &'static str,
    http: reqwest::Client,
    /// The settings `http` was built from, when the gateway built it: a thread with clients of
    /// its own then uses its copy.
    timeouts: Option<Timeouts>,
    /// The pool JSON POSTs go out on, when the gateway built the client and no proxy is
    /// configured ([`direct`]).
    direct: Option<direct::Direct>,
    base_url: String,
    /// `base_url`, parsed.
    base: reqwest::Url,
    /// `base` taken apart for direct calls.
    target: Option<direct::Target>,
    auth_header: reqwest::header::HeaderName,
    auth_value: reqwest::header::HeaderValue,
}

impl Upstream {
    /// The provider id.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A POST to `{base}{path}` with the key header.
    ///
    /// Add headers (e.g. `Accept`) to the builder and pass it to [`send`], which classifies any
    /// non-2xx answer.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }

    /// A GET of `{base}{path}` with the key header (job status, model lists, search APIs).
    ///
    /// Add headers or a query to the builder and pass it to [`send`], which classifies any
    /// non-2xx answer.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let local = self.timeouts.and_then(thread_client);
        local
            .as_ref()
            .unwrap_or(&self.http)
            .request(method, self.url(path))
            .header(self.auth_header.clone(), self.auth_value.clone())
    }

    /// `{base}{path}` (`path` may end in a query): the base URL parsed once, when the client was
    /// built, and only the path and query set here, so no request parses a host again.
    fn url(&self, path: &str) -> reqwest::Url {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let mut url = self.base.clone();
        let base_path = self.base.path().trim_end_matches('/');
        let mut full = String::with_capacity(base_path.len() + path.len());
        full.push_str(base_path);
        full.push_str(path);
        url.set_path(&full);
        url.set_query(query);
        url
    }

    /// GETs `{base}{path}` and decodes the JSON answer (at most [`MAX_RESPONSE_BYTES`]); a
    /// non-2xx answer becomes the error `classify` makes of it.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str, classify: Classify) -> Result<T> {
        let response = send(self.provider, self.get(path), classify).await?;
        read_json(self.provider, response).await
    }

    /// POSTs a `multipart/form-data` body (an image to edit, audio to transcribe) to
    /// `{base}{path}`; reqwest writes the `Content-Type` with its boundary. A non-2xx answer
    /// becomes the error `classify` makes of it.
    pub async fn post_multipart(
        &self,
        path: &str,
        form: reqwest::multipart::Form,
        classify: Classify,
    ) -> Result<reqwest::Response> {
        send(self.provider, self.post(path).multipart(form), classify).await
    }

    /// POSTs raw bytes (audio, an image) with the given `Content-Type` to `{base}{path}`; a
    /// non-2xx answer becomes the error `classify` makes of it.
    pub async fn post_bytes(
        &self,
        path: &str,
        body: Bytes,
        content_type: &str,
        classify: Classify,
    ) -> Result<reqwest::Response> {
        // Checked here: reqwest would only fail at `send`, and `send` would report a transport
        // error, which is retryable, for what is a bad request.
        let content_type = reqwest::header::HeaderValue::from_str(content_type).map_err(|_| {
            Error::invalid_request("the content type cannot be sent as an HTTP header")
                .with_provider(self.provider)
        })?;
        let request = self
            .post(path)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        send(self.provider, request, classify).await
    }

    /// POSTs `body` as JSON to `{base}{path}`; a non-2xx answer becomes the error `classify`
    /// makes of it.
    pub async fn post_json<T: serde::Serialize + Sync + ?Sized>(
        &self,
        path: &str,
        body: &T,
        classify: Classify,
    ) -> Result<reqwest::Response> {
        self.post_json_with(path, body, &[], classify).await
    }

    /// [`post_json`](Self::post_json) with headers of the caller's besides the key's (e.g. who
    /// is billed).
    ///
    /// On the gateway's own clients it goes out on hyper's pool directly ([`direct`]), the
    /// provider's hot path; through reqwest where a proxy is configured or the caller handed
    /// over a client.
    pub async fn post_json_with<T: serde::Serialize + Sync + ?Sized>(
        &self,
        path: &str,
        body: &T,
        headers: &[(reqwest::header::HeaderName, reqwest::header::HeaderValue)],
        classify: Classify,
    ) -> Result<reqwest::Response> {
        // Encoded here so a failure is an invalid request, not a transport error.
        let body = serde_json::to_vec(body).map_err(|e| cannot_encode(self.provider, &e))?;
        self.post_encoded_with(path, body, headers, classify).await
    }

    /// [`post_json_with`](Self::post_json_with) with a body the caller encoded as JSON: for a
    /// request written by hand on the hot path.
    pub async fn post_encoded_with(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(reqwest::header::HeaderName, reqwest::header::HeaderValue)],
        classify: Classify,
    ) -> Result<reqwest::Response> {
        let Some(direct) = self.direct() else {
            let mut request = self
                .post(path)
                .header(reqwest::header::CONTENT_TYPE, "application/json");
            for (name, value) in headers {
                request = request.header(name.clone(), value.clone());
            }
            return send(self.provider, request.body(body), classify).await;
        };
        let uri = match self.target.as_ref().and_then(|t| t.uri(path)) {
            Some(uri) => uri,
            None => self.url(path).as_str().parse().map_err(|_| {
                Error::invalid_request("the provider URL cannot be sent")
                    .with_provider(self.provider)
            })?,
        };
        let mut all = HeaderMap::with_capacity(4 + headers.len());
        all.insert(self.auth_header.clone(), self.auth_value.clone());
        all.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        all.insert(reqwest::header::ACCEPT, direct::default_accept());
        for (name, value) in headers {
            all.insert(name.clone(), value.clone());
        }
        // The call's whole URL is built only for a span that shows it.
        let span = if traced() {
            client_span(&reqwest::Method::POST, &self.url(path))
        } else {
            tracing::Span::none()
        };
        let response = direct
            .post(self.provider, uri, &self.base, all, body)
            .instrument(span.clone())
            .await;
        answered(self.provider, span, response, classify).await
    }

    /// The pool for direct calls: this thread's when it has pools of its own, else the shared
    /// one; `None` when calls go through reqwest.
    fn direct(&self) -> Option<direct::Direct> {
        // No shared pool, no thread's pool either: the calls are reqwest's.
        let shared = self.direct.as_ref()?;
        let timeouts = self.timeouts?;
        thread_direct(timeouts).unwrap_or_else(|| Some(shared.clone()))
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("api_key", &"***")
            .finish_non_exhaustive()
    }
}

/// The settings every provider's client builder takes: key, base URL, HTTP client.
#[derive(Debug, Clone, Default)]
pub struct UpstreamBuilder {
    api_key: Option<SecretString>,
    base_url: Option<String>,
    http: Option<reqwest::Client>,
    /// Set while `http` is the one built from these settings (not one the caller handed over).
    timeouts: Option<Timeouts>,
}

impl UpstreamBuilder {
    /// The settings of a provider's configuration section: its key (or key variable, else
    /// `default_env`), base URL, and a client with its timeouts.
    pub fn from_config(
        cfg: &ProviderConfig,
        provider: &'static str,
        default_env: &str,
    ) -> Result<Self> {
        let timeouts = Timeouts::of(cfg);
        Ok(Self {
            api_key: Some(cfg.resolve_api_key(provider, default_env)?),
            base_url: cfg.base_url.clone(),
            http: Some(timeouts.build().map_err(|e| e.with_provider(provider))?),
            timeouts: Some(timeouts),
        })
    }

    /// Sets the API key.
    pub fn api_key(&mut self, api_key: SecretString) {
        self.api_key = Some(api_key);
    }

    /// Overrides the base URL (a mock server, a proxy).
    pub fn base_url(&mut self, base_url: String) {
        self.base_url = Some(base_url);
    }

    /// Shares an HTTP client (its pool and timeouts).
    pub fn http(&mut self, http: reqwest::Client) {
        self.http = Some(http);
        self.timeouts = None;
    }

    /// Checks the settings. Errors are [`ErrorKind::Config`] and never repeat the key or the URL,
    /// since configuration errors end up in logs.
    pub fn build(self, provider: &'static str, default_base: &str, auth: Auth) -> Result<Upstream> {
        let config_error =
            |message: &str| Error::new(ErrorKind::Config, message).with_provider(provider);
        let api_key = self
            .api_key
            .filter(|k| !k.expose().trim().is_empty())
            .ok_or_else(|| config_error("no API key was given"))?;
        let (auth_header, value) = match auth {
            Auth::Bearer => (
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", api_key.expose().trim()),
            ),
            Auth::Header(name) => (
                reqwest::header::HeaderName::from_static(name),
                api_key.expose().trim().to_owned(),
            ),
        };
        let mut auth_value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| config_error("the API key has characters an HTTP header cannot carry"))?;
        auth_value.set_sensitive(true);

        let base_url = self
            .base_url
            .as_deref()
            .unwrap_or(default_base)
            .trim_end_matches('/')
            .to_owned();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|_| config_error("the base URL is not a valid URL"))?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(config_error(
                "the base URL must be http(s), without a query or fragment",
            ));
        }
        let (http, timeouts) = match self.http {
            Some(http) => (http, self.timeouts),
            None => {
                let timeouts = Timeouts::of(&ProviderConfig::default());
                let http = timeouts.build().map_err(|e| e.with_provider(provider))?;
                (http, Some(timeouts))
            }
        };
        Ok(Upstream {
            provider,
            http,
            // Credentials in the base URL are reqwest's to send (as basic auth).
            direct: timeouts
                .filter(|_| parsed.username().is_empty() && parsed.password().is_none())
                .and_then(direct::Direct::new),
            timeouts,
            base_url,
            target: direct::Target::new(&parsed),
            base: parsed,
            auth_header,
            auth_value,
        })
    }
}
