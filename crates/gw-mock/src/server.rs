//! The mock upstream server.
//!
//! It serves with `axum::serve` over its own listener, whose connections count themselves while
//! open and can be ended by the mock: reset on purpose (`respond.reset`), or closed when the mock
//! is dropped.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use base64::Engine;
use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::body::{self, Breaker};
use crate::fixture::{Respond, UpstreamStep};
use crate::matcher::{differences, scalar_matches};

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct Received {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Headers with lower-case names, in order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Bytes,
}

impl Received {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// What became of the mock's answer to one request: one per request received, in the order of
/// [`MockUpstream::received`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseRecord {
    /// When the whole request had been read and the mock started on its step.
    pub received_at: Instant,
    /// When the status and headers were handed to the connection and the body began. `None` if
    /// the answer never got that far (`never`, `reset` without `stall_after`, a client that left
    /// during `delay_ms`).
    pub body_started_at: Option<Instant>,
    /// How and when the answer ended; `None` while the mock is still at it.
    pub ended: Option<(ResponseEnd, Instant)>,
}

impl ResponseRecord {
    /// How long the answer lasted: from the start of the body (or, without one, from the
    /// request) to its end. `None` while it is still going.
    pub fn duration(&self) -> Option<Duration> {
        let (_, end) = self.ended?;
        Some(end.saturating_duration_since(self.body_started_at.unwrap_or(self.received_at)))
    }
}

/// How the mock's answer to a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseEnd {
    /// The whole body was handed to the connection (which does not prove the peer read it).
    Complete,
    /// The answer was dropped before it was complete: the client disconnected or gave up (or
    /// the mock itself was dropped).
    Dropped,
    /// The step's `reset` closed the connection.
    Reset,
}

struct Log {
    steps: Vec<UpstreamStep>,
    received: Vec<Received>,
    responses: Vec<ResponseRecord>,
}

/// What the server, its connections and the [`MockUpstream`] handle share.
pub(crate) struct Inner {
    state: Mutex<Log>,
    open_connections: AtomicUsize,
    /// The connections that may still be open, to close them when the mock is dropped.
    connections: Mutex<Vec<Weak<ConnCtl>>>,
    /// Bumped on every change a test may wait for (a request, an answer's end, a connection).
    changed: watch::Sender<()>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed.send_modify(|()| ());
    }

    /// Records a request; returns its index and the step that answers it.
    fn record_request(&self, received: Received) -> (usize, Option<Respond>) {
        let out = {
            let mut state = self.lock();
            let index = state.received.len();
            state.received.push(received);
            state.responses.push(ResponseRecord {
                received_at: Instant::now(),
                body_started_at: None,
                ended: None,
            });
            (index, state.steps.get(index).map(|s| s.respond.clone()))
        };
        self.bump();
        out
    }

    fn record_body_started(&self, index: usize) {
        if let Some(record) = self.lock().responses.get_mut(index) {
            record.body_started_at = Some(Instant::now());
        }
    }

    /// Records how the answer to request `index` ended; only the first end counts.
    pub(crate) fn record_end(&self, index: usize, how: ResponseEnd) {
        let first = match self.lock().responses.get_mut(index) {
            Some(record) if record.ended.is_none() => {
                record.ended = Some((how, Instant::now()));
                true
            }
            _ => false,
        };
        if first {
            self.bump();
        }
    }
}

/// A local HTTP server that answers the `i`-th request with the `i`-th step's `respond`.
///
/// A request beyond the last step gets a 500 and is reported by [`MockUpstream::verify`] as an
/// unexpected extra call. The server, and every connection to it, stops when the value is
/// dropped.
///
/// Besides the fixture format's answers it plays the fault-injection fields of
/// [`Respond`](crate::fixture::Respond) (`reset`, `stall_ms`, `never`, `body_bytes`), and it can
/// be watched to prove a client leaks nothing and cancels promptly: [`open_connections`],
/// [`active_responses`], [`responses`], [`wait_response_closed`] and [`wait_for`].
///
/// [`open_connections`]: MockUpstream::open_connections
/// [`active_responses`]: MockUpstream::active_responses
/// [`responses`]: MockUpstream::responses
/// [`wait_response_closed`]: MockUpstream::wait_response_closed
/// [`wait_for`]: MockUpstream::wait_for
pub struct MockUpstream {
    url: String,
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

impl MockUpstream {
    /// Starts a mock on a free loopback port.
    pub async fn start(steps: Vec<UpstreamStep>) -> std::io::Result<Self> {
        Self::start_with(|_| steps).await
    }

    /// Starts a mock on a free loopback port, playing the steps `steps` makes of its base URL:
    /// for answers that link back to the mock (a provider's output URL the gateway downloads).
    pub async fn start_with(
        steps: impl FnOnce(&str) -> Vec<UpstreamStep>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let steps = steps(&url);
        let inner = Arc::new(Inner {
            state: Mutex::new(Log {
                steps,
                received: Vec::new(),
                responses: Vec::new(),
            }),
            open_connections: AtomicUsize::new(0),
            connections: Mutex::new(Vec::new()),
            changed: watch::channel(()).0,
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone())
            .into_make_service_with_connect_info::<Conn>();
        let listener = Counted {
            listener,
            inner: inner.clone(),
        };
        let task = tokio::spawn(async move {
            // Serving ends only when the task is aborted on drop.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, inner, task })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().received.clone()
    }

    /// TCP connections currently open to the mock, idle keep-alive ones included. A connection
    /// counts until the mock has closed its end, which it does as soon as it sees the peer's
    /// close (or error), or when it resets one.
    pub fn open_connections(&self) -> usize {
        self.inner.open_connections.load(Ordering::SeqCst)
    }

    /// Answers still in progress: requests being delayed or held (`delay_ms`, `never`) and
    /// bodies still being sent. Zero once every answer has completed or been dropped.
    pub fn active_responses(&self) -> usize {
        self.inner
            .lock()
            .responses
            .iter()
            .filter(|r| r.ended.is_none())
            .count()
    }

    /// What became of the answer to each request so far, in the order of [`received`].
    ///
    /// [`received`]: MockUpstream::received
    pub fn responses(&self) -> Vec<ResponseRecord> {
        self.inner.lock().responses.clone()
    }

    /// Waits until the answer to request `index` (counting from 0 across the mock's life) has
    /// ended, in whatever way ([`ResponseRecord::ended`] says which), and returns how long it
    /// lasted ([`ResponseRecord::duration`]). `None` if it has not ended within `timeout`,
    /// including when that request has not even arrived.
    ///
    /// A client that drops a streaming body shows here as [`ResponseEnd::Dropped`] as soon as the
    /// mock sees the connection close, typically within milliseconds.
    pub async fn wait_response_closed(&self, index: usize, timeout: Duration) -> Option<Duration> {
        let mut duration = None;
        self.wait_for(timeout, |mock| {
            duration = mock
                .inner
                .lock()
                .responses
                .get(index)
                .and_then(ResponseRecord::duration);
            duration.is_some()
        })
        .await;
        duration
    }

    /// Waits until `check` holds, re-checking whenever the mock's state changes (a request, the
    /// end of an answer, a connection opened or closed). `false` if it still does not hold after
    /// `timeout`. E.g. `mock.wait_for(Duration::from_secs(1), |m| m.open_connections() == 0)`.
    pub async fn wait_for(&self, timeout: Duration, mut check: impl FnMut(&Self) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribing before checking: a change between the check and the wait is not lost.
        let mut changes = self.inner.changed.subscribe();
        loop {
            if check(self) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives as long as `self`; a timeout is the only way out.
                Ok(Err(_)) | Err(_) => return check(self),
            }
        }
    }

    /// Every difference between the steps and what was received: request mismatches, missing
    /// calls and unexpected extra calls. Empty when everything matched.
    pub fn verify(&self) -> Vec<String> {
        let shared = self.inner.lock();
        let mut out = Vec::new();
        for (i, step) in shared.steps.iter().enumerate() {
            match shared.received.get(i) {
                Some(got) => {
                    for d in step_differences(step, got) {
                        out.push(format!("upstream request {i} mismatch: {d}"));
                    }
                }
                None => out.push(format!(
                    "missing upstream call {i}: expected {} {}",
                    step.expect.method.as_deref().unwrap_or("a request"),
                    step.expect.path.as_deref().unwrap_or("")
                )),
            }
        }
        for (i, got) in shared.received.iter().enumerate().skip(shared.steps.len()) {
            out.push(format!(
                "unexpected extra upstream call {i}: {} {}",
                got.method, got.path
            ));
        }
        out
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        // Stop accepting, then end every connection: `axum::serve` runs each one in a task of its
        // own, which aborting the server task would not stop.
        self.task.abort();
        let connections = std::mem::take(
            &mut *self
                .inner
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for ctl in connections.iter().filter_map(Weak::upgrade) {
            ctl.end(CLOSE);
        }
    }
}

/// The mock's listener: a TCP listener whose connections count themselves while open and can
/// be ended from outside.
struct Counted {
    listener: TcpListener,
    inner: Arc<Inner>,
}

impl Listener for Counted {
    type Io = Socket;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Socket, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (Socket::new(stream, &self.inner), addr);
                }
                // Out of file descriptors and the like: wait a little instead of spinning, as
                // axum's own listener does.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// The handle of the connection a request came on, given to the handler as its connect info.
#[derive(Clone)]
struct Conn(Arc<ConnCtl>);

impl Connected<IncomingStream<'_, Counted>> for Conn {
    fn connect_info(stream: IncomingStream<'_, Counted>) -> Self {
        Self(stream.io().ctl.clone())
    }
}

const OPEN: u8 = 0;
const RESET: u8 = 1;
const CLOSE: u8 = 2;

/// Ends one connection from outside hyper: once ended, every read, write and flush on the
/// socket fails, so hyper drops the connection (and whatever handler or body it was running)
/// the next time it touches it, which the stored waker makes happen at once.
pub(crate) struct ConnCtl {
    ending: AtomicU8,
    waker: Mutex<Option<Waker>>,
}

impl ConnCtl {
    /// Resets the connection: it is closed with `SO_LINGER` 0, so the peer sees a reset.
    pub(crate) fn reset(&self) {
        self.end(RESET);
    }

    fn end(&self, how: u8) {
        if self
            .ending
            .compare_exchange(OPEN, how, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            let waker = self
                .waker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// An error once the connection has been ended; until then, remembers who to wake.
    fn check(&self, cx: &Context<'_>) -> Option<io::Error> {
        {
            let mut waker = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
            match &*waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
        }
        // Checked after storing the waker: an `end` in between finds the waker and wakes it.
        match self.ending.load(Ordering::SeqCst) {
            OPEN => None,
            RESET => Some(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "mock upstream: connection reset on purpose",
            )),
            _ => Some(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "mock upstream: the mock was dropped",
            )),
        }
    }
}

/// Counts an open connection while alive.
struct OpenConnection(Arc<Inner>);

impl OpenConnection {
    fn new(inner: Arc<Inner>) -> Self {
        inner.open_connections.fetch_add(1, Ordering::SeqCst);
        inner.bump();
        Self(inner)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::SeqCst);
        self.0.bump();
    }
}

/// An accepted connection. It counts as open until dropped (when hyper is done with it), and
/// fails every operation once its [`ConnCtl`] has ended it.
struct Socket {
    stream: TcpStream,
    ctl: Arc<ConnCtl>,
    _open: OpenConnection,
}

impl Socket {
    fn new(stream: TcpStream, inner: &Arc<Inner>) -> Self {
        let ctl = Arc::new(ConnCtl {
            ending: AtomicU8::new(OPEN),
            waker: Mutex::new(None),
        });
        {
            let mut connections = inner
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            connections.retain(|c| c.strong_count() > 0);
            connections.push(Arc::downgrade(&ctl));
        }
        Self {
            stream,
            ctl,
            _open: OpenConnection::new(inner.clone()),
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if self.ctl.ending.load(Ordering::SeqCst) == RESET {
            // Linger 0: the close that follows (when `stream` drops, right after this) sends
            // RST at once and discards unsent data. A zero linger never blocks on close.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.ctl.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.ctl.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.ctl.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // hyper flushes on every turn of its loop, so an ended connection is noticed here even
        // when hyper is neither reading nor writing.
        let this = self.get_mut();
        if let Some(e) = this.ctl.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The answer to one request while it is alive: dropped before the answer ended, it records
/// [`ResponseEnd::Dropped`].
pub(crate) struct Answer {
    pub(crate) inner: Arc<Inner>,
    pub(crate) index: usize,
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.inner.record_end(self.index, ResponseEnd::Dropped);
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    ConnectInfo(Conn(ctl)): ConnectInfo<Conn>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let received = Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let (index, step) = inner.record_request(received);
    // From here on, however this answer ends (completed, or dropped with its connection while
    // waiting or streaming), its end is recorded.
    let answer = Answer {
        inner: inner.clone(),
        index,
    };
    let Some(respond) = step else {
        inner.record_body_started(index);
        inner.record_end(index, ResponseEnd::Complete);
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            Body::from(r#"{"error":"mock upstream: unexpected extra upstream call"}"#),
        );
    };
    if let Some(ms) = respond.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if respond.never {
        // hyper drops this future, and the answer with it, once the client has gone.
        std::future::pending::<()>().await;
    }
    if respond.reset && respond.stall_after.is_none() {
        inner.record_end(index, ResponseEnd::Reset);
        ctl.reset();
        // hyper drops this future with the connection.
        std::future::pending::<()>().await;
    }
    inner.record_body_started(index);
    let (content_type, body) = body::build(
        &respond,
        answer,
        Breaker {
            ctl,
            inner: inner.clone(),
            index,
        },
    );
    let status = StatusCode::from_u16(respond.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = plain(status, content_type, body.body);
    if let Some(len) = body.streamed_len {
        response
            .headers_mut()
            .insert("content-length", HeaderValue::from(len));
    }
    for (name, value) in &respond.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().insert(n, v);
        }
    }
    response
}

fn plain(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    response
}

fn step_differences(step: &UpstreamStep, got: &Received) -> Vec<String> {
    let expect = &step.expect;
    let mut out = Vec::new();
    if let Some(method) = &expect.method
        && !method.eq_ignore_ascii_case(&got.method)
    {
        out.push(format!("method: expected {method}, got {}", got.method));
    }
    if let Some(path) = &expect.path
        && *path != got.path
    {
        out.push(format!("path: expected {path}, got {}", got.path));
    }
    for (name, want) in &expect.query {
        match got.query.iter().find(|(n, _)| n == name) {
            Some((_, v)) if scalar_matches(want, v) => {}
            Some((_, v)) => out.push(format!("query {name}: expected {want}, got {v:?}")),
            None => out.push(format!("query {name}: missing (expected {want})")),
        }
    }
    for (name, want) in &expect.headers {
        match got.header(name) {
            Some(v) if scalar_matches(want, v) => {}
            Some(v) => out.push(format!("header {name}: expected {want}, got {v:?}")),
            None => out.push(format!("header {name}: missing (expected {want})")),
        }
    }
    if let Some(want) = &expect.json {
        match got.json() {
            Some(actual) => out.extend(
                differences(want, &actual)
                    .into_iter()
                    .map(|d| format!("body {d}")),
            ),
            None => out.push("body: expected JSON, got a body that is not JSON".into()),
        }
    }
    if let Some(want) = &expect.multipart {
        match parse_multipart(got) {
            Some(fields) => out.extend(multipart_differences(want, &fields)),
            None => out.push("body: expected a multipart form, got something else".into()),
        }
    }
    out
}

/// A multipart part: text value or file bytes with their content type.
struct Part {
    content_type: Option<String>,
    filename: Option<String>,
    data: Bytes,
}

fn parse_multipart(got: &Received) -> Option<BTreeMap<String, Part>> {
    let content_type = got.header("content-type")?;
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let body = &got.body[..];
    let mut fields = BTreeMap::new();
    let mut rest = body;
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let rest_after_crlf = rest.strip_prefix(b"\r\n").unwrap_or(rest);
        let header_end = find(rest_after_crlf, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&rest_after_crlf[..header_end]).into_owned();
        let content = &rest_after_crlf[header_end + 4..];
        let end = find(content, format!("\r\n{delimiter}").as_bytes())?;
        let data = Bytes::copy_from_slice(&content[..end]);
        rest = &content[end + 2..];
        let mut name = None;
        let mut filename = None;
        let mut part_type = None;
        for line in head.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                name = attribute(line, "name");
                filename = attribute(line, "filename");
            } else if lower.starts_with("content-type:") {
                part_type = Some(line["content-type:".len()..].trim().to_owned());
            }
        }
        fields.insert(
            name?,
            Part {
                content_type: part_type,
                filename,
                data,
            },
        );
    }
    Some(fields)
}

fn attribute(line: &str, key: &str) -> Option<String> {
    line.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.eq_ignore_ascii_case(key)).then(|| v.trim_matches('"').to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn multipart_differences(
    want: &BTreeMap<String, Value>,
    got: &BTreeMap<String, Part>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, expected) in want {
        let Some(part) = got.get(name) else {
            out.push(format!("multipart {name}: missing"));
            continue;
        };
        match expected {
            Value::String(s) if s == "<any>" => {}
            Value::String(s) if part.filename.is_none() => {
                let actual = String::from_utf8_lossy(&part.data);
                if *s != actual {
                    out.push(format!("multipart {name}: expected {s:?}, got {actual:?}"));
                }
            }
            Value::Object(file) => {
                if let Some(ct) = file.get("content_type").and_then(Value::as_str)
                    && part.content_type.as_deref() != Some(ct)
                {
                    out.push(format!(
                        "multipart {name}: expected content type {ct}, got {:?}",
                        part.content_type
                    ));
                }
                if let Some(b64) = file.get("base64").and_then(Value::as_str) {
                    let want = base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap_or_default();
                    if want != part.data {
                        out.push(format!("multipart {name}: file bytes differ"));
                    }
                }
            }
            other => out.push(format!("multipart {name}: cannot compare with {other}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::UpstreamExpect;
    use serde_json::json;

    fn step(path: &str, respond: Respond) -> UpstreamStep {
        UpstreamStep {
            expect: UpstreamExpect {
                method: Some("POST".into()),
                path: Some(path.into()),
                ..UpstreamExpect::default()
            },
            respond,
        }
    }

    async fn post(url: &str, body: &str) -> (u16, String) {
        // A hand-rolled HTTP/1.1 request keeps this crate free of an HTTP client.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let path = url
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .unwrap_or("/".into());
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out[9..12].parse().unwrap();
        (status, out)
    }

    #[tokio::test]
    async fn plays_steps_in_order_and_reports_differences() {
        let mock = MockUpstream::start(vec![
            step(
                "/a",
                Respond::json(json!({"ok": 1}))
                    .status(429)
                    .header("retry-after", "0"),
            ),
            step("/b", Respond::sse(["{\"x\":1}", "[DONE]"])),
        ])
        .await
        .unwrap();
        let (status, text) = post(&format!("{}/a", mock.url()), "{}").await;
        assert_eq!(status, 429);
        assert!(text.contains("retry-after: 0"), "{text}");
        let (status, text) = post(&format!("{}/wrong", mock.url()), "{}").await;
        assert_eq!(status, 200);
        assert!(text.contains("data: [DONE]"), "{text}");
        let (status, _) = post(&format!("{}/c", mock.url()), "{}").await;
        assert_eq!(status, 500);
        let report = mock.verify();
        assert_eq!(report.len(), 2, "{report:?}");
        assert!(
            report[0].contains("path: expected /b, got /wrong"),
            "{report:?}"
        );
        assert!(
            report[1].contains("unexpected extra upstream call 2"),
            "{report:?}"
        );
    }

    #[tokio::test]
    async fn reports_missing_calls() {
        let mock = MockUpstream::start(vec![step("/a", Respond::default())])
            .await
            .unwrap();
        assert_eq!(
            mock.verify(),
            vec!["missing upstream call 0: expected POST /a".to_owned()]
        );
    }
}
