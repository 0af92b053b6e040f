//! The upstream connections direct calls ([`super::direct`]) go out on: hyper's HTTP/1 and
//! HTTP/2 client connections, kept per host in a pool of our own.
//!
//! hyper-util's pool (which this replaced) hashes its key three times a call, wraps every
//! connection it lends in a guard, and for an HTTP/1 answer with a body spawns a task per call
//! that waits for the connection to be ready again and only then puts it back. Here a host is
//! found by comparing its scheme and authority with the few a pool has seen, an HTTP/1
//! connection goes back when its answer's body has been read to the end (by the body itself,
//! [`Lent::give_back`]), and one HTTP/2 connection a host is shared by every call to it. What
//! hyper-util does for correctness is kept: a request that an idle connection closed before it
//! was sent is sent again on a new connection; `Host` is written for HTTP/1 as hyper-util writes
//! it; a request goes out on HTTP/1 in origin form; an idle connection is dropped after
//! `idle_timeout`.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::client::conn::{http1, http2};
use hyper::header::{HOST, HeaderValue};
use hyper::http::uri::{Authority, Scheme};
use hyper::{Request, Response, Uri};
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// Any error a connector or hyper gives.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What opens the pool's connections: TCP, and TLS where the scheme asks for it.
pub(crate) trait Connect: Clone + Send + Sync + 'static {
    /// A connection's stream.
    type Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static;

    /// A connection to `uri`'s host, and whether HTTP/2 was agreed on it (TLS's ALPN).
    fn connect(&self, uri: Uri) -> impl Future<Output = Result<(Self::Io, bool), BoxError>> + Send;
}

/// Why a call got no answer.
#[derive(Debug)]
pub(crate) enum CallError {
    /// No connection could be opened.
    Connect(BoxError),
    /// The request failed on its connection.
    Request(hyper::Error),
    /// The URI has no scheme or host.
    NoHost,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "cannot connect: {e}"),
            Self::Request(e) => write!(f, "the request failed: {e}"),
            Self::NoHost => f.write_str("the URI names no host"),
        }
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) => Some(&**e),
            Self::Request(e) => Some(e),
            Self::NoHost => None,
        }
    }
}

/// A pool of connections to any number of hosts. Clones share it.
pub(crate) struct Pool<C> {
    connector: C,
    hosts: Arc<Hosts>,
}

impl<C: Clone> Clone for Pool<C> {
    fn clone(&self) -> Self {
        Self {
            connector: self.connector.clone(),
            hosts: Arc::clone(&self.hosts),
        }
    }
}

/// The hosts a pool has called.
struct Hosts {
    /// In the order they were first called: a host's place never changes, so a lent
    /// connection goes back by it.
    all: Mutex<Vec<Host>>,
    /// How long an HTTP/1 connection is kept idle. Idle connections are dropped as the host's
    /// connections are taken or given back, not by a timer: a host no longer called keeps its
    /// idle connections until it closes them (servers close idle keep-alive connections).
    idle_timeout: Duration,
}

impl Hosts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Host>> {
        self.all.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One host's connections.
struct Host {
    scheme: Scheme,
    authority: Authority,
    /// `Host` for HTTP/1 as hyper-util writes it: the host, and the port unless it is the
    /// scheme's default.
    host: Option<HeaderValue>,
    /// HTTP/1 connections not in use, the most recently used last.
    idle: VecDeque<Idle>,
    /// The host's HTTP/2 connection, shared by all its calls.
    shared: Option<http2::SendRequest<Full<Bytes>>>,
}

impl Host {
    /// Drops the idle connections kept longer than `timeout` at `now`.
    fn expire(&mut self, now: Instant, timeout: Duration) {
        while self
            .idle
            .front()
            .is_some_and(|i| now.duration_since(i.since) > timeout)
        {
            self.idle.pop_front();
        }
    }
}

struct Idle {
    sender: http1::SendRequest<Full<Bytes>>,
    since: Instant,
}

/// A connection taken for one call.
enum Conn {
    One(http1::SendRequest<Full<Bytes>>),
    Shared(http2::SendRequest<Full<Bytes>>),
}

/// An HTTP/1 connection lent to one call, given back to its host's idle connections once its
/// answer's body has been read to the end; dropped before that, the connection is closed (hyper
/// cannot reuse a connection whose answer was not read).
pub(crate) struct Lent {
    hosts: Arc<Hosts>,
    at: usize,
    sender: http1::SendRequest<Full<Bytes>>,
}

impl std::fmt::Debug for Lent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lent")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl Lent {
    /// Puts the connection back among its host's idle ones (unless it is closed).
    pub(crate) fn give_back(self) {
        if self.sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut hosts = self.hosts.lock();
        if let Some(host) = hosts.get_mut(self.at) {
            host.expire(now, self.hosts.idle_timeout);
            host.idle.push_back(Idle {
                sender: self.sender,
                since: now,
            });
        }
    }
}

impl<C: Connect> Pool<C> {
    pub(crate) fn new(connector: C, idle_timeout: Duration) -> Self {
        Self {
            connector,
            hosts: Arc::new(Hosts {
                all: Mutex::new(Vec::new()),
                idle_timeout,
            }),
        }
    }

    /// Sends `request` (its URI absolute) on a pooled connection to its host, or a new one. The
    /// answer comes with the HTTP/1 connection it came on, to give back once its body is read
    /// ([`Lent::give_back`]); `None` when there is nothing to give back (HTTP/2, or an answer
    /// without a body, whose connection went back at once).
    pub(crate) async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Option<Lent>), CallError> {
        let uri = request.uri().clone();
        let (at, host) = self.host(&uri).ok_or(CallError::NoHost)?;
        loop {
            let (conn, reused) = match self.checkout(at).await {
                Some(conn) => (conn, true),
                // Boxed: a connection's setup (TLS, the HTTP/2 handshake) is a large future
                // that every call's future would otherwise carry, and copy as it is moved.
                None => (Box::pin(self.connect(at, &uri)).await?, false),
            };
            let mut unsent = match conn {
                Conn::One(mut sender) => {
                    for_http1(&mut request, host.as_ref());
                    match sender.try_send_request(request).await {
                        Ok(response) => {
                            let lent = Lent {
                                hosts: Arc::clone(&self.hosts),
                                at,
                                sender,
                            };
                            if response.body().is_end_stream() {
                                lent.give_back();
                                return Ok((response, None));
                            }
                            return Ok((response, Some(lent)));
                        }
                        Err(e) => e,
                    }
                }
                Conn::Shared(mut sender) => match sender.try_send_request(request).await {
                    Ok(response) => return Ok((response, None)),
                    Err(e) => e,
                },
            };
            match unsent.take_message() {
                // Not sent, on a connection that was idle: the host closed it meanwhile (a
                // keep-alive that timed out on its side). Sent again, as hyper-util does; a new
                // connection's failure is the answer.
                Some(again) if reused => {
                    request = again;
                    *request.uri_mut() = uri.clone();
                }
                _ => return Err(CallError::Request(unsent.into_error())),
            }
        }
    }

    /// The place of `uri`'s host, added at first sight, and its `Host` for HTTP/1.
    fn host(&self, uri: &Uri) -> Option<(usize, Option<HeaderValue>)> {
        let scheme = uri.scheme()?;
        let authority = uri.authority()?;
        let mut hosts = self.hosts.lock();
        if let Some(at) = hosts
            .iter()
            .position(|h| h.scheme == *scheme && h.authority == *authority)
        {
            return Some((at, hosts[at].host.clone()));
        }
        let host = host_header(scheme, authority);
        hosts.push(Host {
            scheme: scheme.clone(),
            authority: authority.clone(),
            host: host.clone(),
            idle: VecDeque::new(),
            shared: None,
        });
        Some((hosts.len() - 1, host))
    }

    /// A connection to the host at `at` that is open, ready for a request: its HTTP/2
    /// connection, else its most recently used idle HTTP/1 one; `None` when it has neither.
    async fn checkout(&self, at: usize) -> Option<Conn> {
        loop {
            let mut sender = {
                let mut hosts = self.hosts.lock();
                let host = hosts.get_mut(at)?;
                if let Some(shared) = &host.shared {
                    if !shared.is_closed() {
                        return Some(Conn::Shared(shared.clone()));
                    }
                    host.shared = None;
                }
                host.expire(Instant::now(), self.hosts.idle_timeout);
                loop {
                    let idle = host.idle.pop_back()?;
                    if !idle.sender.is_closed() {
                        break idle.sender;
                    }
                }
            };
            // A connection goes back as its answer's last byte is read, which may be a moment
            // before hyper has made it ready for the next request; it becomes ready, or it
            // closes.
            if sender.is_ready() || sender.ready().await.is_ok() {
                return Some(Conn::One(sender));
            }
        }
    }

    /// A new connection to the host at `at` (`uri`'s), HTTP/2 when the host agreed to it.
    async fn connect(&self, at: usize, uri: &Uri) -> Result<Conn, CallError> {
        let (io, h2) = self
            .connector
            .connect(uri.clone())
            .await
            .map_err(CallError::Connect)?;
        if h2 {
            let (mut sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(CallError::Request)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "upstream HTTP/2 connection failed");
                }
            });
            sender.ready().await.map_err(CallError::Request)?;
            let mut hosts = self.hosts.lock();
            if let Some(host) = hosts.get_mut(at) {
                host.shared = Some(sender.clone());
            }
            return Ok(Conn::Shared(sender));
        }
        let (mut sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(CallError::Request)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream HTTP/1 connection failed");
            }
        });
        sender.ready().await.map_err(CallError::Request)?;
        Ok(Conn::One(sender))
    }
}

/// `request` made ready for an HTTP/1 connection: `host` written as `Host` when the caller did
/// not write one, the URI in origin form (a path and query), as hyper-util sends it.
fn for_http1(request: &mut Request<Full<Bytes>>, host: Option<&HeaderValue>) {
    if let Some(host) = host
        && !request.headers().contains_key(HOST)
    {
        request.headers_mut().insert(HOST, host.clone());
    }
    let uri = request.uri_mut();
    let origin = match uri.path_and_query() {
        Some(path) if path.as_str() != "/" => Uri::from(path.clone()),
        _ => Uri::default(),
    };
    *uri = origin;
}

/// `Host` for HTTP/1 calls to `authority`: its host, with its port when that is not `scheme`'s
/// default (as hyper-util writes it).
fn host_header(scheme: &Scheme, authority: &Authority) -> Option<HeaderValue> {
    let default_port = match scheme.as_str() {
        "https" | "wss" => Some(443),
        "http" | "ws" => Some(80),
        _ => None,
    };
    match authority.port_u16() {
        Some(port) if Some(port) != default_port => {
            HeaderValue::from_str(&format!("{}:{port}", authority.host())).ok()
        }
        _ => HeaderValue::from_str(authority.host()).ok(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// Plain TCP, saying HTTP/2 was agreed when `h2` (as TLS's ALPN would).
    #[derive(Clone)]
    struct Plain {
        h2: bool,
    }

    impl Connect for Plain {
        type Io = TokioIo<TcpStream>;

        async fn connect(&self, uri: Uri) -> Result<(Self::Io, bool), BoxError> {
            let authority = uri.authority().ok_or("no host")?;
            let stream = TcpStream::connect(authority.as_str()).await?;
            Ok((TokioIo::new(stream), self.h2))
        }
    }

    /// How an HTTP/1 test host ends each answer's connection.
    #[derive(Clone, Copy)]
    enum After {
        KeepAlive,
        /// Closes the connection right after each answer, saying nothing (as a host whose
        /// keep-alive timed out does).
        Close,
    }

    /// An HTTP/1 host answering every request with `body`; it counts its connections and keeps
    /// each request's head.
    struct Http1Host {
        addr: std::net::SocketAddr,
        connections: Arc<AtomicUsize>,
        heads: Arc<Mutex<Vec<String>>>,
    }

    async fn http1_host(after: After, body: &'static str) -> Http1Host {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (count, kept) = (Arc::clone(&connections), Arc::clone(&heads));
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let kept = Arc::clone(&kept);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let Some(head) = read_request(&mut socket, &mut buf).await else {
                            return;
                        };
                        kept.lock().unwrap().push(head);
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                        if let After::Close = after {
                            return;
                        }
                    }
                });
            }
        });
        Http1Host {
            addr,
            connections,
            heads,
        }
    }

    /// The head of the next request on `socket` (its body, by `content-length`, read and
    /// dropped); `None` at the connection's end.
    async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(buf[..end].to_vec()).unwrap();
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                while buf.len() < end + 4 + length {
                    let mut more = [0u8; 4096];
                    let n = socket.read(&mut more).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    buf.extend_from_slice(&more[..n]);
                }
                buf.drain(..end + 4 + length);
                return Some(head);
            }
            let mut more = [0u8; 4096];
            let n = socket.read(&mut more).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&more[..n]);
        }
    }

    fn post(uri: &str) -> Request<Full<Bytes>> {
        Request::post(uri)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    }

    /// Sends `request` on `pool` and reads the answer's body to its end, giving the
    /// connection back as a body read by the gateway does.
    async fn call(pool: &Pool<Plain>, request: Request<Full<Bytes>>) -> String {
        use http_body_util::BodyExt;
        let (response, lent) = pool.send(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        if let Some(lent) = lent {
            lent.give_back();
        }
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_answer_is_read() {
        let host = http1_host(After::KeepAlive, "ok").await;
        let pool = Pool::new(Plain { h2: false }, Duration::from_secs(90));
        let uri = format!("http://{}/v1/chat/completions", host.addr);
        for _ in 0..10 {
            assert_eq!(call(&pool, post(&uri)).await, "ok");
        }
        assert_eq!(host.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_answer_dropped_unread_takes_its_connection_with_it() {
        let host = http1_host(After::KeepAlive, "a longer body").await;
        let pool = Pool::new(Plain { h2: false }, Duration::from_secs(90));
        let uri = format!("http://{}/x", host.addr);
        let (response, lent) = pool.send(post(&uri)).await.unwrap();
        assert!(lent.is_some(), "an answer with a body lends its connection");
        drop((response, lent));
        assert_eq!(call(&pool, post(&uri)).await, "a longer body");
        assert_eq!(host.connections.load(Ordering::SeqCst), 2);
    }

    /// The closed connection is almost always seen before it is lent (`is_closed`, or `ready`
    /// failing), so a new one carries the call. Not tested: the resend in [`Pool::send`] of a
    /// request hyper gives back unsent, which needs the host to close in the instant between
    /// the pool's readiness check and hyper's write; no test host can time that.
    #[tokio::test]
    async fn a_host_that_closes_each_connection_still_answers_every_call() {
        let host = http1_host(After::Close, "ok").await;
        let pool = Pool::new(Plain { h2: false }, Duration::from_secs(90));
        let uri = format!("http://{}/x", host.addr);
        for _ in 0..20 {
            assert_eq!(call(&pool, post(&uri)).await, "ok");
        }
        assert_eq!(host.connections.load(Ordering::SeqCst), 20);
    }

    #[tokio::test]
    async fn an_idle_connection_is_dropped_after_the_idle_timeout() {
        let host = http1_host(After::KeepAlive, "ok").await;
        let pool = Pool::new(Plain { h2: false }, Duration::from_millis(20));
        let uri = format!("http://{}/x", host.addr);
        call(&pool, post(&uri)).await;
        call(&pool, post(&uri)).await;
        assert_eq!(host.connections.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(60)).await;
        call(&pool, post(&uri)).await;
        assert_eq!(host.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn http1_requests_go_in_origin_form_with_the_host_hyper_util_writes() {
        let host = http1_host(After::KeepAlive, "ok").await;
        let pool = Pool::new(Plain { h2: false }, Duration::from_secs(90));
        call(&pool, post(&format!("http://{}/v1/x?alt=sse", host.addr))).await;
        let mut own_host = post(&format!("http://{}/", host.addr));
        own_host
            .headers_mut()
            .insert(HOST, HeaderValue::from_static("given.example"));
        call(&pool, own_host).await;
        let heads = host.heads.lock().unwrap().clone();
        let first: Vec<&str> = heads[0].lines().collect();
        assert_eq!(first[0], "POST /v1/x?alt=sse HTTP/1.1");
        assert!(
            first.contains(&format!("host: {}", host.addr).as_str()),
            "{first:?}"
        );
        let second: Vec<&str> = heads[1].lines().collect();
        assert_eq!(second[0], "POST / HTTP/1.1");
        assert!(second.contains(&"host: given.example"), "{second:?}");
    }

    #[test]
    fn host_is_written_with_its_port_only_where_it_is_not_the_default() {
        let host = |uri: &str| {
            let uri: Uri = uri.parse().unwrap();
            let value = host_header(uri.scheme().unwrap(), uri.authority().unwrap());
            value.unwrap().to_str().unwrap().to_owned()
        };
        assert_eq!(host("http://127.0.0.1:9200/x"), "127.0.0.1:9200");
        assert_eq!(host("http://[::1]:8080/v1"), "[::1]:8080");
        assert_eq!(host("http://example.test:80/"), "example.test");
        assert_eq!(host("http://example.test/"), "example.test");
        assert_eq!(host("https://example.test:443/"), "example.test");
        assert_eq!(host("https://example.test:8443/"), "example.test:8443");
        assert_eq!(
            host("https://user:pw@example.test:8443/"),
            "example.test:8443"
        );
    }

    #[tokio::test]
    async fn a_call_to_a_host_that_is_not_there_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let pool = Pool::new(Plain { h2: false }, Duration::from_secs(90));
        let error = pool
            .send(post(&format!("http://{addr}/x")))
            .await
            .unwrap_err();
        assert!(matches!(error, CallError::Connect(_)), "{error}");
        let error = pool.send(post("/no/host")).await.unwrap_err();
        assert!(matches!(error, CallError::NoHost), "{error}");
    }

    #[tokio::test]
    async fn an_http2_host_gets_one_connection_shared_by_concurrent_calls() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let authorities = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (Arc::clone(&connections), Arc::clone(&authorities));
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut connection = h2::server::handshake(socket).await.unwrap();
                    while let Some(Ok((request, mut respond))) = connection.accept().await {
                        seen.lock().unwrap().push(request.uri().to_string());
                        let mut body = respond
                            .send_response(hyper::Response::new(()), false)
                            .unwrap();
                        body.send_data(Bytes::from_static(b"two"), true).unwrap();
                    }
                });
            }
        });
        let pool = Pool::new(Plain { h2: true }, Duration::from_secs(90));
        let uri = format!("http://{addr}/v1/x");
        let first = call(&pool, post(&uri)).await;
        assert_eq!(first, "two");
        let calls = (0..8).map(|_| call(&pool, post(&uri)));
        for body in futures_util::future::join_all(calls).await {
            assert_eq!(body, "two");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        let authorities = authorities.lock().unwrap();
        assert_eq!(authorities.len(), 9);
        assert!(authorities.iter().all(|u| *u == uri), "{authorities:?}");
    }
}
