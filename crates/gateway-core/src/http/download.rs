//! Bounded downloads of URLs the gateway did not choose: an image or video a provider left on its
//! CDN, or a file a caller points at.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use tokio::time::Instant;

use super::{MAX_RESPONSE_BYTES, check_ip, content_type, kind_for_status};
use crate::{Error, ErrorKind, Result};

/// The limits of a [`Downloader`].
///
/// The default suits generated images and short clips: at most [`MAX_RESPONSE_BYTES`] (32 MiB),
/// public addresses only, 5 redirects, 10 s to connect and 120 s for the whole download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadPolicy {
    /// The largest body accepted, in bytes.
    pub max_bytes: usize,
    /// Allows every address, loopback, private and link-local included (see [`check_ip`]): for
    /// operators whose media store is on their own network. The cloud metadata service
    /// (169.254.169.254) becomes reachable too.
    pub allow_private: bool,
    /// How many redirects are followed; each target is checked like the first URL.
    pub max_redirects: u8,
    /// How long to wait for each connection.
    pub connect_timeout: Duration,
    /// How long the whole download may take, redirects included. For a
    /// [`stream`](Downloader::stream), the time spent waiting for the server: the time its reader
    /// takes between chunks is not counted.
    pub timeout: Duration,
}

impl Default for DownloadPolicy {
    fn default() -> Self {
        Self {
            max_bytes: MAX_RESPONSE_BYTES,
            allow_private: false,
            max_redirects: 5,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
        }
    }
}

/// The limits on URLs a provider downloads for a caller (an image in a chat message), read from
/// the provider's `downloads` table, e.g. `[providers.gemini.downloads]`. Unset fields keep the
/// provider's default [`DownloadPolicy`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadSettings {
    /// The largest file accepted, in bytes.
    pub max_bytes: Option<usize>,
    /// Allows private, loopback and link-local addresses (see
    /// [`DownloadPolicy::allow_private`]).
    pub allow_private: Option<bool>,
    /// How long one download may take, in milliseconds.
    pub timeout_ms: Option<u64>,
}

impl DownloadSettings {
    /// `default` with these settings applied.
    pub fn apply(&self, default: DownloadPolicy) -> DownloadPolicy {
        DownloadPolicy {
            max_bytes: self.max_bytes.unwrap_or(default.max_bytes),
            allow_private: self.allow_private.unwrap_or(default.allow_private),
            timeout: self
                .timeout_ms
                .map_or(default.timeout, Duration::from_millis),
            ..default
        }
    }
}

/// Who handed the gateway the URL: this decides whose fault a refusal is, and so its
/// [`ErrorKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlOrigin {
    /// The caller sent it (e.g. an image to edit). A URL that is refused (its scheme, its
    /// address, too many redirects), a file that is too large, and a host that fails to serve
    /// it are the caller's [`ErrorKind::InvalidRequest`].
    Caller,
    /// The named provider answered with it (a generated image or video). The same refusals are
    /// [`ErrorKind::Decode`] errors of that provider: an answer the gateway cannot use, which is
    /// neither the caller's fault nor worth retrying as it is.
    Provider(&'static str),
}

impl UrlOrigin {
    /// A caller's URL that cannot be downloaded is the caller's to fix, whatever the cause (its
    /// host refuses, is missing, down or slow): every such failure is
    /// [`ErrorKind::InvalidRequest`], so the request is neither retried nor sent down a fallback
    /// chain, and no provider's circuit breaker counts it against the provider. The cause stays
    /// in the message, the status and the source.
    fn attribute(self, e: Error) -> Error {
        match self {
            Self::Caller if *e.kind() != ErrorKind::InvalidRequest => {
                let mut blamed = Error::new(ErrorKind::InvalidRequest, e.message().to_owned());
                if let Some(status) = e.status() {
                    blamed = blamed.with_status(status);
                }
                blamed.with_source(e)
            }
            _ => e,
        }
    }

    fn provider(self) -> &'static str {
        match self {
            Self::Caller => "",
            Self::Provider(provider) => provider,
        }
    }

    /// An error for a URL or a body the downloader will not take.
    fn refusal(self, message: String) -> Error {
        let kind = match self {
            Self::Caller => ErrorKind::InvalidRequest,
            Self::Provider(_) => ErrorKind::Decode,
        };
        Error::new(kind, message).with_provider(self.provider())
    }
}

/// Downloads URLs within a [`DownloadPolicy`], connecting only to addresses [`check_ip`] allows.
///
/// Such a URL may point anywhere, the gateway's own network included. The address check sits in
/// the DNS resolver of the downloader's own client, so the address checked is the address
/// connected to: a DNS server that answers a public address to a first lookup and a private one
/// to a second (DNS rebinding) gets only one lookup. IP literals, which skip the resolver, are
/// checked before sending, and redirects are followed one checked hop at a time.
///
/// Build one per process (or per provider) and clone it: clones share one connection pool. Its
/// client ignores proxy settings, because a proxy would resolve the host itself, out of the
/// checking resolver's sight. No credentials are sent, and error messages name the host only,
/// never the path or query (signed CDN URLs carry tokens there).
#[derive(Clone)]
pub struct Downloader {
    http: reqwest::Client,
    policy: DownloadPolicy,
    allows: Rule,
}

/// Whether an address may be connected to.
type Rule = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

impl Downloader {
    /// A downloader with its own client, enforcing `policy`. Fails ([`ErrorKind::Config`]) only
    /// if the TLS backend cannot be set up.
    pub fn new(policy: DownloadPolicy) -> Result<Self> {
        let allow_private = policy.allow_private;
        Self::with_rule(policy, Arc::new(move |ip| check_ip(ip, allow_private)))
    }

    /// A downloader whose address rule is `allows` instead of [`check_ip`]: tests use it to let
    /// one loopback address through and refuse another.
    fn with_rule(policy: DownloadPolicy, allows: Rule) -> Result<Self> {
        let http = reqwest::Client::builder()
            // Redirects are followed by `download`, which checks every target first.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(CheckingResolver {
                allows: allows.clone(),
            }))
            .connect_timeout(policy.connect_timeout)
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, "cannot build the download client").with_source(e)
            })?;
        Ok(Self {
            http,
            policy,
            allows,
        })
    }

    /// The policy this downloader enforces.
    pub fn policy(&self) -> &DownloadPolicy {
        &self.policy
    }

    /// GETs `url`, following redirects, and returns the body, read whole, with its
    /// `Content-Type`. [`stream`](Self::stream) passes the body on as it arrives instead, under
    /// the same checks.
    ///
    /// Errors (all with the provider of `origin`, if any):
    /// - a scheme other than http(s), a refused address, an invalid URL or redirect target,
    ///   more than `max_redirects` redirects, or a body over `max_bytes` (by `Content-Length`
    ///   before reading, else while reading): see [`UrlOrigin`] for the kind;
    /// - a non-2xx answer: the kind [`kind_for_status`] gives, except that 401/403 are not
    ///   [`ErrorKind::Auth`], which means the gateway's provider key is bad and none was sent
    ///   here: [`ErrorKind::Upstream`] for a provider's URL (e.g. an expired signed link);
    /// - no connection, a body that breaks off, or the policy's timeout: [`ErrorKind::Connect`],
    ///   [`ErrorKind::Timeout`].
    ///
    /// For a caller's URL every failure is [`ErrorKind::InvalidRequest`] (see
    /// [`UrlOrigin::Caller`]), its cause in the message.
    pub async fn download(&self, url: &str, origin: UrlOrigin) -> Result<(Bytes, Option<String>)> {
        let mut body = self.open(url, origin).await?;
        // At most `max_bytes` (`open` refused a larger declared length), so trusting the
        // declared length for the allocation is bounded.
        let mut data = Vec::with_capacity(body.content_length.map_or(0, |n| n as usize));
        while let Some(chunk) = body.next_chunk().await? {
            data.extend_from_slice(&chunk);
        }
        Ok((data.into(), body.content_type))
    }

    /// GETs `url` like [`download`](Self::download), and returns once the answer's headers are
    /// in, with its body as a stream of chunks and its `Content-Type`, so that a large file (a
    /// video) is passed on without being held in memory.
    ///
    /// Everything [`download`](Self::download) refuses before reading the body is refused here
    /// before this returns: the URL and every redirect target are checked the same way, and a
    /// declared `Content-Length` above `max_bytes` fails at once, before any byte is read.
    /// While the body is read, bytes are counted as they pass: the chunk that takes the count
    /// over `max_bytes` is not yielded, and the stream ends with that error instead. It ends
    /// with an error too when the connection breaks off (a body shorter than its declared
    /// length included) or the server keeps it waiting too long, so a reader that has passed
    /// the first chunks on can tell a cut body from a whole one: the stream ends without an
    /// error only after the whole body. Nothing is yielded after an error.
    ///
    /// The policy's `timeout` bounds the time spent waiting for the server over the whole
    /// download (the answer's headers, redirects included, then each chunk), not the time the
    /// reader takes between chunks: a slow client of a gateway passing the stream on does not
    /// cut it.
    ///
    /// The errors, before or during the stream, and their kinds are those of
    /// [`download`](Self::download).
    pub async fn stream(
        &self,
        url: &str,
        origin: UrlOrigin,
    ) -> Result<(BoxStream<'static, Result<Bytes>>, Option<String>)> {
        let mut body = self.open(url, origin).await?;
        let content_type = body.content_type.take();
        // `None` once the body has ended or failed: nothing more is read.
        let chunks = stream::unfold(Some(body), |body| async move {
            let mut body = body?;
            match body.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(body))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
        .fuse()
        .boxed();
        Ok((chunks, content_type))
    }

    /// Follows `url` to a successful answer within the policy (its addresses, redirects, time
    /// and declared length), its body still to be read.
    async fn open(&self, url: &str, origin: UrlOrigin) -> Result<Body> {
        let mut waiting = Waiting::new(self.policy.timeout);
        let answer = waiting
            .wait(self.follow(url, origin))
            .await
            .unwrap_or_else(|| Err(waiting.timed_out(origin)))
            .map_err(|e| origin.attribute(e))?;
        Ok(Body {
            response: answer.response,
            host: answer.host,
            content_type: answer.content_type,
            content_length: answer.content_length,
            origin,
            max_bytes: self.policy.max_bytes,
            read: 0,
            waiting,
        })
    }

    /// Follows redirects to a successful answer whose declared length (if any) is within
    /// `max_bytes`; its body is left unread.
    async fn follow(&self, url: &str, origin: UrlOrigin) -> Result<Answer> {
        let mut url = Url::parse(url)
            .map_err(|_| origin.refusal("the URL to download is not a valid URL".into()))?;
        let mut redirects = 0;
        loop {
            let host = self.check(&url, origin)?;
            let response = self
                .http
                .get(url.clone())
                .send()
                .await
                .map_err(|e| transport_error(&host, e, origin))?;
            let status = response.status();
            // A redirect without a `Location` is left to the status check below.
            let location = is_redirect(status.as_u16())
                .then(|| response.headers().get(reqwest::header::LOCATION))
                .flatten();
            if let Some(location) = location {
                if redirects == self.policy.max_redirects {
                    return Err(origin.refusal(format!(
                        "{host} redirected more than {} times",
                        self.policy.max_redirects
                    )));
                }
                redirects += 1;
                url = location
                    .to_str()
                    .ok()
                    .and_then(|location| url.join(location).ok())
                    .ok_or_else(|| {
                        origin.refusal(format!("{host} redirected to an invalid URL"))
                    })?;
                continue;
            }
            if !status.is_success() {
                return Err(status_error(
                    status.as_u16(),
                    response.headers(),
                    &host,
                    origin,
                ));
            }
            let content_length = response.content_length();
            if content_length.is_some_and(|n| n > self.policy.max_bytes as u64) {
                return Err(too_large(&host, self.policy.max_bytes, origin));
            }
            return Ok(Answer {
                content_type: content_type(&response),
                content_length,
                response,
                host,
            });
        }
    }

    /// Checks what can be checked before connecting, and returns the host for messages.
    fn check(&self, url: &Url, origin: UrlOrigin) -> Result<String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(origin.refusal(format!(
                "only http and https URLs are downloaded, not {}",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| origin.refusal("the URL to download has no host".into()))?;
        // The resolver is not consulted for an IP literal (hyper parses the host as one first),
        // so it is checked here. `Url` has already turned the other IPv4 forms (`2130706433`,
        // `0x7f.1`) into dotted decimal, the form hyper parses too.
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = literal.parse::<IpAddr>()
            && !(self.allows)(ip)
        {
            return Err(origin.refusal(format!(
                "refused to download from {host}: not a public address"
            )));
        }
        Ok(host.to_owned())
    }
}

impl fmt::Debug for Downloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Downloader")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A successful answer whose body is still to be read.
struct Answer {
    response: reqwest::Response,
    /// The host it came from, for messages.
    host: String,
    content_type: Option<String>,
    content_length: Option<u64>,
}

/// A body being read: each chunk counted against `max_bytes`, each wait for one taken from
/// the download's time.
struct Body {
    response: reqwest::Response,
    /// The host it comes from, for messages.
    host: String,
    content_type: Option<String>,
    /// The declared length: at most `max_bytes`.
    content_length: Option<u64>,
    origin: UrlOrigin,
    max_bytes: usize,
    /// Bytes read so far.
    read: usize,
    waiting: Waiting,
}

impl Body {
    /// The next chunk, or `None` at the body's end; errors as [`UrlOrigin`] attributes them.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        self.read_chunk()
            .await
            .map_err(|e| self.origin.attribute(e))
    }

    async fn read_chunk(&mut self) -> Result<Option<Bytes>> {
        let chunk = match self.waiting.wait(self.response.chunk()).await {
            Some(chunk) => chunk.map_err(|e| transport_error(&self.host, e, self.origin))?,
            None => return Err(self.waiting.timed_out(self.origin)),
        };
        let Some(chunk) = chunk else {
            return Ok(None);
        };
        self.read = self.read.saturating_add(chunk.len());
        if self.read > self.max_bytes {
            return Err(too_large(&self.host, self.max_bytes, self.origin));
        }
        Ok(Some(chunk))
    }
}

/// The time a download may still spend waiting for its server, out of the policy's `limit`.
struct Waiting {
    limit: Duration,
    left: Duration,
}

impl Waiting {
    fn new(limit: Duration) -> Self {
        Self { limit, left: limit }
    }

    /// The error of a download that ran out of time.
    fn timed_out(&self, origin: UrlOrigin) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "the download did not finish within {} s",
                self.limit.as_secs_f64()
            ),
        )
        .with_provider(origin.provider())
    }

    /// `f`'s output, unless the time left runs out first (`None`); the time waited is spent.
    async fn wait<T>(&mut self, f: impl Future<Output = T>) -> Option<T> {
        let started = Instant::now();
        let out = tokio::time::timeout(self.left, f).await.ok();
        self.left = self.left.saturating_sub(started.elapsed());
        out
    }
}

fn too_large(host: &str, max_bytes: usize, origin: UrlOrigin) -> Error {
    origin.refusal(format!(
        "the file at {host} is larger than {max_bytes} bytes"
    ))
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

fn status_error(status: u16, headers: &HeaderMap, host: &str, origin: UrlOrigin) -> Error {
    let kind = match (kind_for_status(status, headers), origin) {
        // `Auth` says the gateway's provider key is bad, and no key was sent: the URL needs
        // access the gateway does not have.
        (ErrorKind::Auth, UrlOrigin::Caller) => ErrorKind::InvalidRequest,
        (ErrorKind::Auth, UrlOrigin::Provider(_)) => ErrorKind::Upstream { status },
        (kind, _) => kind,
    };
    Error::new(kind, format!("the download from {host} answered {status}"))
        .with_provider(origin.provider())
        .with_status(status)
}

fn transport_error(host: &str, e: reqwest::Error, origin: UrlOrigin) -> Error {
    if let Some(refused) = refusal_in(&e) {
        return origin.refusal(refused.to_string());
    }
    let (kind, what) = if e.is_timeout() {
        (ErrorKind::Timeout, "timed out")
    } else if e.is_connect() {
        (ErrorKind::Connect, "could not connect")
    } else {
        (ErrorKind::Connect, "broke off")
    };
    Error::new(kind, format!("the download from {host} {what}"))
        .with_provider(origin.provider())
        .with_source(e.without_url())
}

/// The resolver's refusal, if that is why the request failed: reqwest reports it as a connect
/// error with the resolver's error somewhere down its source chain.
fn refusal_in(e: &reqwest::Error) -> Option<&Refused> {
    let mut source = e.source();
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return Some(refused);
        }
        source = err.source();
    }
    None
}

/// Resolves names with the system resolver (through tokio) and keeps only the addresses the rule
/// allows, failing if none is left. The connection is made to what this returns, so there is no
/// second lookup for a rebinding DNS server to answer differently.
struct CheckingResolver {
    allows: Rule,
}

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allows = self.allows.clone();
        Box::pin(async move {
            let host = name.as_str();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
                .await?
                .filter(|addr| allows(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(Refused(host.to_owned())) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A host all of whose addresses the rule refused.
#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused to download from {}: it resolves only to addresses that are not public",
            self.0
        )
    }
}

impl StdError for Refused {}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::super::test_server::{self, chunked, response};
    use super::*;

    #[test]
    fn settings_override_only_what_they_set() {
        let default = DownloadPolicy::default();
        assert_eq!(DownloadSettings::default().apply(default), default);
        let settings: DownloadSettings =
            toml::from_str("max_bytes = 1024\nallow_private = true").expect("valid settings");
        let policy = settings.apply(default);
        assert_eq!((policy.max_bytes, policy.allow_private), (1024, true));
        assert_eq!(policy.timeout, default.timeout);
        let wrong = toml::from_str::<DownloadSettings>("max_byte = 1").expect_err("a typo");
        assert!(wrong.message().contains("max_byte"), "{wrong}");
    }

    /// A server on 127.0.0.1 with the routes the tests need, and how many requests it got.
    async fn server() -> (SocketAddr, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let addr = test_server::serve(move |req| {
            counter.fetch_add(1, Ordering::SeqCst);
            let port = req
                .header("host")
                .and_then(|h| h.rsplit_once(':'))
                .map_or("", |(_, port)| port)
                .to_owned();
            let redirect = |to: &str| response(302, &[("location", to)], b"");
            match req.target.as_str() {
                "/image.png" => response(200, &[("content-type", "image/png")], b"PNGDATA"),
                "/100" => response(200, &[], &[7; 100]),
                "/101" => response(200, &[], &[7; 101]),
                "/lying-length" => b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n".to_vec(),
                "/chunked-100" => chunked(&[], &[&[1; 50], &[2; 50]]),
                "/chunked-120" => chunked(&[], &[&[1; 40], &[2; 40], &[3; 40]]),
                "/short" => {
                    let mut answer = b"HTTP/1.1 200 OK\r\ncontent-length: 80\r\n\r\n".to_vec();
                    answer.extend_from_slice(&[7; 50]);
                    answer
                }
                "/relative" => redirect("/image.png"),
                "/loop" => redirect("/loop"),
                "/to-127.0.0.2" => redirect(&format!("http://127.0.0.2:{port}/secret?token=t0k")),
                "/to-v6-loopback" => redirect(&format!("http://[::1]:{port}/image.png")),
                "/to-localhost" => redirect(&format!("http://localhost:{port}/image.png")),
                "/to-file" => redirect("file:///etc/passwd"),
                "/to-invalid" => redirect("http://[bad"),
                "/403" => response(403, &[], b"denied"),
                "/404" => response(404, &[], b""),
                "/503" => response(503, &[], b""),
                _ => response(500, &[], b"unexpected route"),
            }
        })
        .await;
        (addr, hits)
    }

    fn policy(allow_private: bool) -> DownloadPolicy {
        DownloadPolicy {
            max_bytes: 100,
            allow_private,
            max_redirects: 3,
            ..DownloadPolicy::default()
        }
    }

    fn downloader(allow_private: bool) -> Downloader {
        Downloader::new(policy(allow_private)).unwrap()
    }

    #[tokio::test]
    async fn downloads_from_loopback_when_private_is_allowed() {
        let (addr, _) = server().await;
        let d = downloader(true);
        let (body, content_type) = d
            .download(&format!("http://{addr}/image.png"), UrlOrigin::Caller)
            .await
            .unwrap();
        assert_eq!(&body[..], b"PNGDATA");
        assert_eq!(content_type.as_deref(), Some("image/png"));

        // Through the resolver, and through a relative redirect.
        let port = addr.port();
        let (body, _) = d
            .download(
                &format!("http://localhost:{port}/image.png"),
                UrlOrigin::Caller,
            )
            .await
            .unwrap();
        assert_eq!(&body[..], b"PNGDATA");
        for route in ["/relative", "/to-localhost"] {
            let (body, _) = d
                .download(&format!("http://{addr}{route}"), UrlOrigin::Caller)
                .await
                .unwrap();
            assert_eq!(&body[..], b"PNGDATA", "{route}");
        }
    }

    #[tokio::test]
    async fn loopback_literals_are_refused_before_connecting() {
        let (addr, hits) = server().await;
        let port = addr.port();
        let d = downloader(false);
        for url in [
            format!("http://{addr}/image.png"),
            format!("http://2130706433:{port}/image.png"),
            format!("http://0x7f.1:{port}/image.png"),
            format!("http://[::1]:{port}/image.png"),
            format!("http://[::ffff:127.0.0.1]:{port}/image.png"),
            format!("https://user:pw@0.0.0.0:{port}/image.png?sig=s3cr3t"),
        ] {
            let err = d.download(&url, UrlOrigin::Caller).await.unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{url}: {err}");
            assert!(err.to_string().contains("not a public address"), "{err}");
            assert!(!format!("{err:?}").contains("s3cr3t"), "{err:?}");
            assert!(!format!("{err:?}").contains("pw"), "{err:?}");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_provider_url_refusal_is_the_providers_decode_error() {
        let (addr, _) = server().await;
        let err = downloader(false)
            .download(
                &format!("http://{addr}/image.png"),
                UrlOrigin::Provider("p"),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Decode);
        assert_eq!(err.provider(), "p");
        assert!(
            err.to_string()
                .starts_with("p: refused to download from 127.0.0.1"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_by_the_resolver() {
        let (addr, hits) = server().await;
        let url = format!("http://localhost:{}/image.png", addr.port());
        let err = downloader(false)
            .download(&url, UrlOrigin::Caller)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{err:?}");
        assert_eq!(
            err.message(),
            "refused to download from localhost: it resolves only to addresses that are not public"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn schemes_other_than_http_are_refused() {
        let d = downloader(true);
        for url in [
            "file:///etc/passwd",
            "ftp://user:secret@example.com/a.png",
            "data:image/png;base64,AAAA",
            "gopher://127.0.0.1/",
        ] {
            let err = d.download(url, UrlOrigin::Caller).await.unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{url}");
            assert!(err.message().starts_with("only http and https"), "{err}");
            assert!(!err.message().contains("secret"), "{err}");
        }
        let err = d
            .download("not a url", UrlOrigin::Caller)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
    }

    #[tokio::test]
    async fn every_redirect_target_is_checked() {
        let (addr, hits) = server().await;
        // The first hop must be allowed for a redirect to be seen, so this rule lets the server
        // (127.0.0.1) through and refuses every other address, as `check_ip` would.
        let only_server = Arc::new(|ip: IpAddr| ip == IpAddr::from([127, 0, 0, 1]));
        let d = Downloader::with_rule(policy(false), only_server).unwrap();
        for (route, message) in [
            (
                "/to-127.0.0.2",
                "refused to download from 127.0.0.2: not a public address",
            ),
            (
                "/to-v6-loopback",
                "refused to download from [::1]: not a public address",
            ),
            (
                "/to-file",
                "only http and https URLs are downloaded, not file",
            ),
            ("/to-invalid", "127.0.0.1 redirected to an invalid URL"),
        ] {
            let err = d
                .download(&format!("http://{addr}{route}"), UrlOrigin::Caller)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{route}: {err}");
            assert_eq!(err.message(), message, "{route}");
            assert!(!format!("{err:?}").contains("t0k"), "{err:?}");
        }
        // One request per route: no refused target was requested.
        assert_eq!(hits.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn redirect_loops_are_cut() {
        let (addr, hits) = server().await;
        let err = downloader(true)
            .download(&format!("http://{addr}/loop"), UrlOrigin::Caller)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
        assert_eq!(err.message(), "127.0.0.1 redirected more than 3 times");
        // The first request and three redirects.
        assert_eq!(hits.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn the_size_cap_holds_with_and_without_a_length() {
        let (addr, _) = server().await;
        let d = downloader(true);
        for route in ["/100", "/chunked-100"] {
            let (body, _) = d
                .download(&format!("http://{addr}{route}"), UrlOrigin::Caller)
                .await
                .unwrap();
            assert_eq!(body.len(), 100, "{route}");
        }
        // `/lying-length` declares a megabyte and sends nothing: only a check of the declared
        // length, before reading, yields the size error rather than a broken download.
        for route in ["/101", "/lying-length", "/chunked-120"] {
            let err = d
                .download(&format!("http://{addr}{route}"), UrlOrigin::Provider("p"))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Decode, "{route}: {err}");
            assert_eq!(
                err.message(),
                "the file at 127.0.0.1 is larger than 100 bytes",
                "{route}"
            );
        }
    }

    #[tokio::test]
    async fn error_statuses() {
        let (addr, _) = server().await;
        let d = downloader(true);
        let p = UrlOrigin::Provider("p");
        for (status, origin, kind) in [
            (404, UrlOrigin::Caller, ErrorKind::InvalidRequest),
            (404, p, ErrorKind::NotFound),
            (503, UrlOrigin::Caller, ErrorKind::InvalidRequest),
            (503, p, ErrorKind::Upstream { status: 503 }),
            (403, UrlOrigin::Caller, ErrorKind::InvalidRequest),
            (403, p, ErrorKind::Upstream { status: 403 }),
        ] {
            let err = d
                .download(&format!("http://{addr}/{status}"), origin)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), &kind, "{status} {origin:?}");
            assert_eq!(err.provider(), origin.provider());
            assert_eq!(err.status(), Some(status));
            assert_eq!(
                err.message(),
                format!("the download from 127.0.0.1 answered {status}")
            );
        }
    }

    #[tokio::test]
    async fn the_timeout_covers_the_whole_download() {
        // A server that accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let d = Downloader::new(DownloadPolicy {
            timeout: Duration::from_millis(200),
            ..policy(true)
        })
        .unwrap();
        let url = format!("http://{addr}/");
        let err = d
            .download(&url, UrlOrigin::Provider("p"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Timeout);
        assert_eq!(err.message(), "the download did not finish within 0.2 s");
        // A caller's link that times out is the caller's to fix: not retried, no breaker.
        let err = d.download(&url, UrlOrigin::Caller).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
        assert!(!err.is_retryable());
        assert_eq!(err.message(), "the download did not finish within 0.2 s");
    }

    /// The whole body of `chunks`, or the error it ended with and how many bytes came first.
    async fn drain(
        mut chunks: BoxStream<'static, Result<Bytes>>,
    ) -> std::result::Result<Vec<u8>, (usize, Error)> {
        let mut body = Vec::new();
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(e) => {
                    assert!(chunks.next().await.is_none(), "a chunk after the error");
                    return Err((body.len(), e));
                }
            }
        }
        Ok(body)
    }

    #[tokio::test]
    async fn a_stream_passes_a_whole_body_on() {
        let (addr, _) = server().await;
        let d = downloader(true);
        for route in ["/100", "/chunked-100"] {
            let (chunks, _) = d
                .stream(&format!("http://{addr}{route}"), UrlOrigin::Caller)
                .await
                .unwrap();
            let body = drain(chunks).await.unwrap();
            assert_eq!(body.len(), 100, "{route}");
        }
        // Through a redirect, with the answer's content type.
        let (chunks, content_type) = d
            .stream(&format!("http://{addr}/relative"), UrlOrigin::Caller)
            .await
            .unwrap();
        assert_eq!(content_type.as_deref(), Some("image/png"));
        assert_eq!(drain(chunks).await.unwrap(), b"PNGDATA");
    }

    #[tokio::test]
    async fn a_stream_is_refused_like_a_download_before_connecting() {
        let (addr, hits) = server().await;
        let port = addr.port();
        let d = downloader(false);
        for url in [
            format!("http://{addr}/image.png"),
            format!("http://[::1]:{port}/image.png"),
            format!("http://localhost:{port}/image.png"),
        ] {
            let err = d
                .stream(&url, UrlOrigin::Caller)
                .await
                .map(drop)
                .expect_err("refused before streaming");
            assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{url}: {err}");
            assert!(
                err.message().starts_with("refused to download from"),
                "{err}"
            );
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        let only_server = Arc::new(|ip: IpAddr| ip == IpAddr::from([127, 0, 0, 1]));
        let d = Downloader::with_rule(policy(false), only_server).unwrap();
        let err = d
            .stream(
                &format!("http://{addr}/to-127.0.0.2"),
                UrlOrigin::Provider("p"),
            )
            .await
            .map(drop)
            .expect_err("refused before streaming");
        assert_eq!(err.kind(), &ErrorKind::Decode);
        assert_eq!(
            err.message(),
            "refused to download from 127.0.0.2: not a public address"
        );
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "the refused target was requested"
        );
    }

    #[tokio::test]
    async fn a_stream_over_the_cap_ends_with_an_error_not_a_short_body() {
        let (addr, _) = server().await;
        let d = downloader(true);
        let p = UrlOrigin::Provider("p");
        let too_large = "the file at 127.0.0.1 is larger than 100 bytes";
        // A declared length over the cap is refused before the stream starts.
        for route in ["/101", "/lying-length"] {
            let err = d
                .stream(&format!("http://{addr}{route}"), p)
                .await
                .map(drop)
                .expect_err("refused before streaming");
            assert_eq!(err.kind(), &ErrorKind::Decode, "{route}");
            assert_eq!(err.message(), too_large, "{route}");
        }
        // Without one, the stream starts, passes on what fits, and ends with the error in
        // place of the chunk that would pass the cap.
        let (chunks, _) = d
            .stream(&format!("http://{addr}/chunked-120"), p)
            .await
            .unwrap();
        let (passed, err) = drain(chunks).await.unwrap_err();
        assert!(passed <= 100, "{passed} bytes passed on");
        assert_eq!(err.kind(), &ErrorKind::Decode);
        assert_eq!(err.provider(), "p");
        assert_eq!(err.message(), too_large);
        // A body shorter than its declared length ends with an error too, not as if whole.
        let (chunks, _) = d.stream(&format!("http://{addr}/short"), p).await.unwrap();
        let (passed, err) = drain(chunks).await.unwrap_err();
        assert!(passed <= 50, "{passed} bytes passed on");
        assert_eq!(err.kind(), &ErrorKind::Connect, "{err}");
        assert_eq!(err.message(), "the download from 127.0.0.1 broke off");
        // A caller's link that breaks is the caller's to fix, mid-stream too.
        let (chunks, _) = d
            .stream(&format!("http://{addr}/chunked-120"), UrlOrigin::Caller)
            .await
            .unwrap();
        let (_, err) = drain(chunks).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
        assert_eq!(err.message(), too_large);
    }

    #[tokio::test]
    async fn a_stream_times_the_server_not_its_reader() {
        let d = Downloader::new(DownloadPolicy {
            timeout: Duration::from_millis(200),
            ..policy(true)
        })
        .unwrap();
        // A reader that takes longer than the timeout between chunks gets the whole body.
        let (addr, _) = server().await;
        let (mut chunks, _) = d
            .stream(&format!("http://{addr}/chunked-100"), UrlOrigin::Caller)
            .await
            .unwrap();
        let mut body = chunks.next().await.unwrap().unwrap().to_vec();
        tokio::time::sleep(Duration::from_millis(400)).await;
        body.extend(drain(chunks).await.unwrap());
        assert_eq!(body.len(), 100);

        // A server that sends the headers and a first chunk, then nothing: the stream ends with
        // the timeout once the waits add up to it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                // The request first (its head ends with an empty line), then the answer.
                let mut request = Vec::new();
                let mut buf = [0; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = chunked(&[], &[&[1; 10]]);
                // Up to the end of the first chunk, without the last (empty) one.
                let _ = stream.write_all(&answer[..answer.len() - 5]).await;
                held.push(stream);
            }
        });
        let (chunks, _) = d
            .stream(&format!("http://{addr}/"), UrlOrigin::Provider("p"))
            .await
            .unwrap();
        let (passed, err) = drain(chunks).await.unwrap_err();
        assert_eq!(passed, 10);
        assert_eq!(err.kind(), &ErrorKind::Timeout);
        assert_eq!(err.message(), "the download did not finish within 0.2 s");
    }
}
