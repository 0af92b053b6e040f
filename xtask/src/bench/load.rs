//! The load generator: a fixed number of simulated clients, each on its own kept-alive HTTP/1
//! connection, sending the same request in a closed loop for a warm-up and then a measured
//! window. Latencies go into HDR histograms (microseconds); for streams also the time to the
//! first body byte and the gaps between content chunks (found by the mock's `Zq` marker).
//!
//! It is deliberately wrk-like (raw hyper connections, no pool, no retries, no JSON parsing) so
//! that it costs little CPU next to the servers it measures on the same machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

/// One request, sent over and over.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) path: String,
    pub(crate) body: Bytes,
    /// `Authorization: Bearer ...`, taken in turn request after request (none: no header).
    pub(crate) keys: Vec<String>,
    /// Content chunks (`Zq` markers) each answer must hold; an answer with fewer is an error.
    pub(crate) chunks: u64,
    /// Whether the answer is a stream (only then are gaps between chunks recorded).
    pub(crate) stream: bool,
    /// Whether each answer must end with `data: [DONE]` (the OpenAI stream format).
    pub(crate) expect_done: bool,
}

/// How to drive a target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    pub(crate) concurrency: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    /// One request per client, all at once, measured in full (no warm-up, no window): for
    /// holding many slow streams open.
    pub(crate) once: bool,
}

/// What a run measured (only requests that completed inside the measured window count).
pub(crate) struct Outcome {
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) window: Duration,
    /// Whole request, send to last body byte (µs).
    pub(crate) latency: Histogram<u64>,
    /// Send to the first body byte (µs).
    pub(crate) ttfb: Histogram<u64>,
    /// Between two content chunks of one answer (µs); 0 when two arrived in one read.
    pub(crate) gaps: Histogram<u64>,
    /// The most requests in flight at once.
    pub(crate) max_open: usize,
}

impl Outcome {
    fn new() -> Self {
        Self {
            ok: 0,
            errors: 0,
            first_error: None,
            window: Duration::ZERO,
            latency: histogram(),
            ttfb: histogram(),
            gaps: histogram(),
            max_open: 0,
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        // The bounds are the same, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.ttfb.add(&other.ttfb);
        let _ = self.gaps.add(&other.gaps);
    }

    fn error(&mut self, message: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message());
        }
    }

    /// Completed requests per second in the window.
    pub(crate) fn throughput(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 min at 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Microseconds, at least 1 (the histogram's lowest value).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Runs `load` against `target` on the current runtime.
pub(crate) async fn run(target: &Target, load: Load) -> Outcome {
    let target = Arc::new(target.clone());
    let open = Arc::new(AtomicUsize::new(0));
    let max_open = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let (measure_from, end) = if load.once {
        (start, None)
    } else {
        let from = start + load.warmup;
        (from, Some(from + load.duration))
    };
    let workers: Vec<_> = (0..load.concurrency)
        .map(|i| {
            let target = target.clone();
            let open = open.clone();
            let max_open = max_open.clone();
            let first_key = i * target.keys.len() / load.concurrency.max(1);
            tokio::spawn(async move {
                client(&target, first_key, measure_from, end, &open, &max_open).await
            })
        })
        .collect();
    let mut outcome = Outcome::new();
    for worker in workers {
        match worker.await {
            Ok(o) => outcome.merge(o),
            Err(e) => outcome.error(|| format!("a load worker failed: {e}")),
        }
    }
    outcome.window = match end {
        Some(end) => end - measure_from,
        None => start.elapsed(),
    };
    outcome.max_open = max_open.load(Ordering::Relaxed);
    outcome
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("handshake with {addr}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One simulated client: requests back to back until `end` (or one request when `end` is
/// `None`); the request in flight at `end` completes but does not count.
async fn client(
    target: &Target,
    first_key: usize,
    measure_from: Instant,
    end: Option<Instant>,
    open: &AtomicUsize,
    max_open: &AtomicUsize,
) -> Outcome {
    let mut outcome = Outcome::new();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let host = HeaderValue::from_str(&target.addr.to_string()).expect("an address is a header");
    let auths: Vec<HeaderValue> = target
        .keys
        .iter()
        .map(|k| HeaderValue::from_str(&format!("Bearer {k}")).expect("keys are ASCII"))
        .collect();
    // Clients start at different keys, so a short run still spreads over all of them.
    let mut turn = first_key;
    loop {
        if end.is_some_and(|end| Instant::now() >= end) {
            break;
        }
        let conn = match &mut sender {
            Some(s) => s,
            None => match connect(target.addr).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    outcome.error(|| e);
                    if end.is_none() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        if conn.ready().await.is_err() {
            sender = None;
            continue;
        }
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(target.path.as_str())
            .header(HOST, host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if !auths.is_empty() {
            request = request.header(AUTHORIZATION, auths[turn % auths.len()].clone());
            turn = turn.wrapping_add(1);
        }
        let request = request
            .body(Full::new(target.body.clone()))
            .expect("a valid request");
        let now = open.fetch_add(1, Ordering::Relaxed) + 1;
        max_open.fetch_max(now, Ordering::Relaxed);
        let sent = Instant::now();
        let result = exchange(conn, request, target, sent).await;
        open.fetch_sub(1, Ordering::Relaxed);
        let done = Instant::now();
        let counts = done >= measure_from && end.is_none_or(|end| done <= end);
        match result {
            Ok(timing) => {
                if counts {
                    outcome.ok += 1;
                    let _ = outcome.latency.record(micros(done - sent));
                    let _ = outcome.ttfb.record(micros(timing.first_byte - sent));
                    for gap in timing.gaps.into_iter().filter(|_| target.stream) {
                        let _ = outcome.gaps.record(micros(gap).saturating_sub(1));
                    }
                }
            }
            Err(Failure { message, reconnect }) => {
                if counts || end.is_none() {
                    outcome.error(|| message);
                }
                if reconnect {
                    sender = None;
                }
            }
        }
        if end.is_none() {
            break;
        }
    }
    outcome
}

struct Timing {
    first_byte: Instant,
    gaps: Vec<Duration>,
}

struct Failure {
    message: String,
    reconnect: bool,
}

async fn exchange(
    conn: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    target: &Target,
    sent: Instant,
) -> Result<Timing, Failure> {
    let transport = |e: hyper::Error| Failure {
        message: format!("transport: {e}"),
        reconnect: true,
    };
    let response = conn.send_request(request).await.map_err(transport)?;
    let status = response.status();
    let mut body = response.into_body();
    let mut first_byte = None;
    let mut last_chunk: Option<Instant> = None;
    let mut gaps = Vec::new();
    let mut markers = 0u64;
    // The last bytes of the body, to check the end of a stream.
    const TAIL: usize = 16;
    let mut tail: Vec<u8> = Vec::with_capacity(2 * TAIL);
    let mut carry: Option<u8> = None;
    let mut error_body: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(transport)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        let now = Instant::now();
        first_byte.get_or_insert(now);
        if !status.is_success() {
            error_body.extend_from_slice(&data[..data.len().min(300)]);
            continue;
        }
        // A marker may straddle two reads.
        let straddles = carry == Some(b'Z') && data[0] == b'q';
        let found = count(&data, gw_mock::bench::CONTENT_MARKER) + usize::from(straddles);
        for _ in 0..found {
            markers += 1;
            if let Some(previous) = last_chunk {
                gaps.push(now - previous);
            }
            last_chunk = Some(now);
        }
        carry = data.last().copied();
        tail.extend_from_slice(&data[data.len().saturating_sub(TAIL)..]);
        let excess = tail.len().saturating_sub(TAIL);
        tail.drain(..excess);
    }
    if !status.is_success() {
        return Err(Failure {
            message: format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&error_body).trim()
            ),
            reconnect: false,
        });
    }
    if markers != target.chunks {
        return Err(Failure {
            message: format!(
                "the answer held {markers} content chunks, expected {}",
                target.chunks
            ),
            reconnect: false,
        });
    }
    if target.expect_done && !tail.ends_with(b"[DONE]\n\n") {
        return Err(Failure {
            message: format!(
                "the stream did not end with `data: [DONE]` (ended with {:?})",
                String::from_utf8_lossy(&tail)
            ),
            reconnect: false,
        });
    }
    Ok(Timing {
        first_byte: first_byte.unwrap_or(sent),
        gaps,
    })
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    if haystack.len() < needle.len() {
        return 0;
    }
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}
