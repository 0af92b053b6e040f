//! Provider calls on hyper's client connections directly, without reqwest's layers.
//!
//! reqwest wraps hyper's client in a stack of its own: per request it clones the header map,
//! parses the URL into a URI (and its redirect layer parses it again), boxes a timeout future
//! and a retry policy, and adds extensions. On the gateway's hot path (a chat completion, a
//! stream) none of that is used: there is no redirect to follow, the URL is the provider's base
//! and a path, and the headers are the key and a content type. So when the gateway built the
//! client itself and no proxy is configured, a JSON POST goes out here: on a pool of its own
//! ([`super::pool`]), with the same TLS (rustls with the webpki roots and the process's crypto
//! provider, else ring, as reqwest builds it), HTTP/2 where the provider offers it over TLS, and
//! the same connect and read timeouts. The answer is handed back as a `reqwest::Response`, so
//! everything that reads answers stays as it is.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::http::uri::{Authority, Scheme};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use reqwest::ResponseBuilderExt;
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::time::Sleep;

use super::Timeouts;
use super::pool::{BoxError, CallError, Connect, Lent, Pool};
use crate::{Error, ErrorKind, Result};

/// The environment variables through which reqwest (and curl) take a proxy. When any is set,
/// provider calls stay on reqwest, which honours them (`NO_PROXY` included).
const PROXY_VARIABLES: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether any proxy variable is set (not empty), `var` reading the environment.
fn proxy_configured(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    PROXY_VARIABLES
        .iter()
        .any(|name| var(name).is_some_and(|v| !v.is_empty()))
}

/// How long an idle pooled connection is kept: reqwest's default.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// One pool of upstream connections with the provider's timeouts.
#[derive(Clone)]
pub(crate) struct Direct {
    pool: Pool<Tls>,
    read: Duration,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl Direct {
    /// A pool with `timeouts`, or `None` when a proxy is configured in the environment (reqwest
    /// then carries the calls) or TLS cannot be set up.
    pub(crate) fn new(timeouts: Timeouts) -> Option<Self> {
        if proxy_configured(|name| std::env::var_os(name)) {
            return None;
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeouts.connect));
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .ok()?
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        Some(Self {
            pool: Pool::new(Tls(https), POOL_IDLE),
            read: timeouts.read,
        })
    }

    /// POSTs `body` to `uri` with `headers`; the answer's head must come within the read
    /// timeout, and then each part of its body. The answer carries `url` as its
    /// [`reqwest::Response::url`].
    pub(crate) async fn post(
        &self,
        provider: &'static str,
        uri: hyper::Uri,
        url: &reqwest::Url,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<reqwest::Response> {
        let mut request = hyper::Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = hyper::Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let (response, lent) = tokio::time::timeout(self.read, self.pool.send(request))
            .await
            .map_err(|_| timed_out(provider))?
            .map_err(|e| request_error(provider, e))?;
        let read = self.read;
        let mut response = response.map(|body| {
            reqwest::Body::wrap(ReadTimeout {
                body,
                read,
                last: Instant::now(),
                timer: None,
                lent,
            })
        });
        // Without a URL of its own, `reqwest::Response::from` parses a placeholder one for
        // every answer (about 3,500 instructions); a clone of one parsed already is cheaper.
        if let Ok(marked) = hyper::Response::builder().url(url.clone()).body(()) {
            response
                .extensions_mut()
                .extend(marked.into_parts().0.extensions);
        }
        Ok(reqwest::Response::from(response))
    }
}

/// Where an upstream's direct calls go: its base URL taken apart once, so that a call builds
/// its URI from its path alone instead of parsing a whole URL (twice: as a `reqwest::Url`,
/// then as hyper's `Uri`).
#[derive(Clone, Debug)]
pub(crate) struct Target {
    scheme: Scheme,
    authority: Authority,
    /// The base URL's path without its trailing slash (empty at the root).
    base_path: String,
}

impl Target {
    /// `base` taken apart; `None` when hyper cannot take it as a URI.
    pub(crate) fn new(base: &reqwest::Url) -> Option<Self> {
        let uri: hyper::Uri = base.as_str().parse().ok()?;
        let scheme = uri.scheme()?.clone();
        let authority = uri.authority()?.clone();
        Some(Self {
            scheme,
            authority,
            base_path: base.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The URI of `path` (which may end in a query) under the base, when `path` is one that
    /// `reqwest::Url` would take as it is: `None` for anything it would change (a character it
    /// percent-encodes, a `.` segment it resolves, an escape), which then goes the long way.
    pub(crate) fn uri(&self, path: &str) -> Option<hyper::Uri> {
        let plain = path.starts_with('/')
            && !path.contains("/.")
            && path.bytes().all(|b| PLAIN[usize::from(b)]);
        if !plain {
            return None;
        }
        let mut full = String::with_capacity(self.base_path.len() + path.len());
        full.push_str(&self.base_path);
        full.push_str(path);
        hyper::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(full)
            .build()
            .ok()
    }
}

/// The bytes a path is taken with as it is (see [`Target::uri`]): letters, digits and
/// `-._~!$&()*+,;=:@/?`, looked up rather than searched for (a Gemini path has a dozen).
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~!$&()*+,;=:@/?";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

/// The pool's connector: TCP with `TCP_NODELAY` and the connect timeout, TLS for `https`.
#[derive(Clone, Debug)]
pub(crate) struct Tls(HttpsConnector<HttpConnector>);

impl Connect for Tls {
    type Io = <HttpsConnector<HttpConnector> as tower_service::Service<hyper::Uri>>::Response;

    async fn connect(&self, uri: hyper::Uri) -> std::result::Result<(Self::Io, bool), BoxError> {
        use tower_service::Service;
        let mut connector = self.0.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx)).await?;
        let io = connector.call(uri).await?;
        let h2 = io.connected().is_negotiated_h2();
        Ok((io, h2))
    }
}

/// The `accept` header reqwest sends by default, sent here too so that a provider sees the
/// same request whichever client carried it.
pub(crate) fn default_accept() -> HeaderValue {
    HeaderValue::from_static("*/*")
}

fn timed_out(provider: &'static str) -> Error {
    Error::new(ErrorKind::Timeout, "the provider did not answer in time").with_provider(provider)
}

/// The error of a call that got no answer. hyper's errors carry no URL.
fn request_error(provider: &'static str, e: CallError) -> Error {
    // A connect timeout comes as an I/O error somewhere down the chain.
    let connect_timed_out =
        std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
            e.source()
        })
        .any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        });
    let error = if connect_timed_out {
        timed_out(provider)
    } else if matches!(e, CallError::Connect(_)) {
        Error::new(ErrorKind::Connect, "cannot connect to the provider").with_provider(provider)
    } else {
        Error::new(ErrorKind::Connect, "the request to the provider failed").with_provider(provider)
    };
    error.with_source(e)
}

/// A response body whose every wait for data is bounded by the read timeout, as reqwest's
/// `read_timeout` bounds it: a stream that keeps sending is never cut, one that stalls is.
///
/// The timer is armed only while the body waits, and moved only when it fires: each frame just
/// notes the time, so a fast stream does not touch the timer wheel per frame.
///
/// It also holds the HTTP/1 connection the answer came on, and gives it back to the pool as
/// the body's last byte is read; a body that fails or is dropped before its end takes its
/// connection with it.
struct ReadTimeout {
    body: Incoming,
    read: Duration,
    /// When the last frame (or the head) arrived.
    last: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    lent: Option<Lent>,
}

impl ReadTimeout {
    /// The body is read to its end: its connection goes back.
    fn ended(&mut self) {
        if let Some(lent) = self.lent.take() {
            lent.give_back();
        }
    }
}

impl Body for ReadTimeout {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            this.last = Instant::now();
            match &frame {
                None => this.ended(),
                Some(Ok(_)) if this.body.is_end_stream() => this.ended(),
                Some(Ok(_)) => {}
                Some(Err(_)) => this.lent = None,
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let timer = this.timer.get_or_insert_with(|| {
            Box::pin(tokio::time::sleep_until((this.last + this.read).into()))
        });
        loop {
            ready!(timer.as_mut().poll(cx));
            let deadline = this.last + this.read;
            if Instant::now() >= deadline {
                this.lent = None;
                return Poll::Ready(Some(Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no data from the provider within the read timeout",
                )))));
            }
            timer.as_mut().reset(deadline.into());
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_targets_uris_are_the_urls_reqwest_would_build() {
        let paths = [
            "/v1/chat/completions",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            "/models/org/model-1.5_v2~x?a=1&b=2",
            "/",
        ];
        for base in [
            "http://127.0.0.1:9200",
            "https://router.example/v1/",
            "http://h:80/p",
        ] {
            let url = reqwest::Url::parse(base).unwrap();
            let target = Target::new(&url).unwrap();
            for path in paths {
                let uri = target.uri(path).unwrap();
                let mut expected = url.clone();
                let (p, query) = path
                    .split_once('?')
                    .map_or((path, None), |(p, q)| (p, Some(q)));
                expected.set_path(&format!("{}{p}", url.path().trim_end_matches('/')));
                expected.set_query(query);
                assert_eq!(uri.to_string(), expected.as_str(), "{base} {path}");
            }
        }
        // What `reqwest::Url` would encode or resolve is left to it.
        let target = Target::new(&reqwest::Url::parse("http://h:1").unwrap()).unwrap();
        for path in [
            "/a b",
            "/x/../y",
            "/x/./y",
            "/%2e%2e/y",
            "/é",
            "/a'b",
            "/a\\b",
            "a",
            "/a#b",
        ] {
            assert!(target.uri(path).is_none(), "{path}");
        }
    }

    #[test]
    fn the_plain_bytes_are_letters_digits_and_the_listed_marks() {
        for b in 0..=255u8 {
            let listed = b.is_ascii_alphanumeric() || b"-._~!$&()*+,;=:@/?".contains(&b);
            assert_eq!(PLAIN[usize::from(b)], listed, "{b:#04x}");
        }
    }

    #[test]
    fn any_proxy_variable_keeps_the_calls_on_reqwest() {
        assert!(!proxy_configured(|_| None));
        for name in PROXY_VARIABLES {
            assert!(
                proxy_configured(|v| (v == name).then(|| "http://proxy:3128".into())),
                "{name}"
            );
            assert!(
                !proxy_configured(|v| (v == name).then(std::ffi::OsString::new)),
                "{name} set but empty"
            );
        }
        // `NO_PROXY` alone names exceptions, not a proxy.
        assert!(!proxy_configured(|v| (v == "NO_PROXY").then(|| "*".into())));
    }
}
