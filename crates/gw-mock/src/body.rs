//! Response bodies, including the fault-injection ones: stalls, breaks, enormous bodies.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use base64::Engine;
use bytes::Bytes;

use crate::fixture::Respond;
use crate::server::{Answer, ConnCtl, Inner, ResponseEnd};

/// Bytes per chunk of a generated body.
const CHUNK: u64 = 64 * 1024;

/// What a body needs to reset its connection in the middle.
pub(crate) struct Breaker {
    pub(crate) ctl: Arc<ConnCtl>,
    pub(crate) inner: Arc<Inner>,
    pub(crate) index: usize,
}

impl Breaker {
    fn fire(&self) {
        self.inner.record_end(self.index, ResponseEnd::Reset);
        self.ctl.reset();
    }
}

/// A response body, ready to send.
pub(crate) struct Built {
    pub(crate) body: Body,
    /// The `content-length` to announce for a body streamed with a known length.
    pub(crate) streamed_len: Option<u64>,
}

/// The content type and the body of `respond`. The body records the end of `answer`: a plain
/// body is complete once handed over; a streamed one when its last byte is, or when dropped.
pub(crate) fn build(respond: &Respond, answer: Answer, breaker: Breaker) -> (&'static str, Built) {
    let (content_type, source) = if let Some(json) = &respond.json {
        (
            "application/json",
            Source::Bytes(Bytes::from(json.to_string())),
        )
    } else if let Some(events) = &respond.sse {
        let frames = events
            .iter()
            .map(|e| Bytes::from(format!("data: {e}\n\n")))
            .collect();
        ("text/event-stream", Source::Events(frames))
    } else if let Some(b64) = &respond.base64 {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap_or_else(|e| {
                format!("mock upstream: respond.base64 is not base64: {e}").into_bytes()
            });
        (
            "application/octet-stream",
            Source::Bytes(Bytes::from(bytes)),
        )
    } else if let Some(text) = &respond.text {
        (
            "text/plain; charset=utf-8",
            Source::Bytes(Bytes::from(text.clone())),
        )
    } else if respond.body_bytes.is_some() {
        ("application/json", Source::Nothing)
    } else {
        ("application/json", Source::Bytes(Bytes::new()))
    };
    let breaks = respond.reset && respond.stall_after.is_some();
    let plain = respond.stall_ms.is_none() && !breaks && respond.body_bytes.is_none();
    let units = match source {
        Source::Events(frames) => Units::Events(frames),
        Source::Bytes(bytes) if plain => {
            // As the format has always answered: one body with its length.
            answer.inner.record_end(answer.index, ResponseEnd::Complete);
            let body = if bytes.is_empty() {
                Body::empty()
            } else {
                Body::from(bytes)
            };
            let built = Built {
                body,
                streamed_len: None,
            };
            return (content_type, built);
        }
        Source::Bytes(bytes) => Units::Bytes(Padded {
            len: respond.body_bytes.unwrap_or(bytes.len() as u64),
            base: bytes,
            fill: b' ',
            close: None,
        }),
        // A JSON string: `"xxx…x"`.
        Source::Nothing => Units::Bytes(Padded {
            base: Bytes::from_static(b"\""),
            fill: b'x',
            close: Some(b'"'),
            len: respond.body_bytes.unwrap_or(0),
        }),
    };
    let total = units.total();
    // A body that breaks off goes in chunks: with a length, hyper would stop polling it once it
    // had every byte, and never reach the break.
    let streamed_len = match &units {
        Units::Bytes(padded) if !breaks => Some(padded.len),
        _ => None,
    };
    let script = Script {
        units,
        pos: 0,
        total,
        interval: respond.sse_interval_ms.map(Duration::from_millis),
        break_at: respond.stall_after.map_or(total, |n| (n as u64).min(total)),
        stall: respond.stall_ms.map(Duration::from_millis),
        breaker: breaks.then_some(breaker),
        at_break_done: false,
        complete_with_last_byte: streamed_len.is_some(),
        answer,
    };
    let body = Body::from_stream(futures_util::stream::unfold(script, Script::next));
    (content_type, Built { body, streamed_len })
}

enum Source {
    /// The body of `json`, `text` or `base64`.
    Bytes(Bytes),
    /// `sse` frames.
    Events(Vec<Bytes>),
    /// No body form given, but a `body_bytes`.
    Nothing,
}

/// What is sent, in units: events, or bytes.
enum Units {
    Events(Vec<Bytes>),
    Bytes(Padded),
}

impl Units {
    fn total(&self) -> u64 {
        match self {
            Units::Events(frames) => frames.len() as u64,
            Units::Bytes(padded) => padded.len,
        }
    }
}

/// `base` cut or padded with `fill` to `len` bytes; with `close`, the last byte is that (so `"`
/// padded with `x` and closed by `"` is a JSON string). Generated chunk by chunk.
struct Padded {
    base: Bytes,
    fill: u8,
    close: Option<u8>,
    len: u64,
}

impl Padded {
    /// Bytes `start..end` of the body.
    fn chunk(&self, start: u64, end: u64) -> Bytes {
        let base_len = self.base.len() as u64;
        let mut out = Vec::with_capacity((end - start) as usize);
        if start < base_len {
            out.extend_from_slice(&self.base[start as usize..end.min(base_len) as usize]);
        }
        out.resize((end - start) as usize, self.fill);
        if let Some(close) = self.close
            && end == self.len
            && self.len >= 2
            && let Some(last) = out.last_mut()
        {
            *last = close;
        }
        Bytes::from(out)
    }
}

/// A body being played: the units up to `break_at`, the stall or break there, then the rest.
struct Script {
    units: Units,
    /// Units sent so far.
    pos: u64,
    total: u64,
    /// Pause between two events.
    interval: Option<Duration>,
    /// Where the body stalls or breaks (`total` when `stall_after` is not given).
    break_at: u64,
    stall: Option<Duration>,
    /// `Some` when the body breaks off at `break_at` with a reset.
    breaker: Option<Breaker>,
    at_break_done: bool,
    /// With a `content-length`, hyper drops the body once it has every byte without asking
    /// for its end: the answer is complete with its last byte.
    complete_with_last_byte: bool,
    answer: Answer,
}

impl Script {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        if self.pos == self.break_at && !self.at_break_done {
            self.at_break_done = true;
            if let Some(stall) = self.stall {
                tokio::time::sleep(stall).await;
            }
            if let Some(breaker) = &self.breaker {
                // Going pending once lets hyper flush what came before, so that the peer has
                // it before the reset.
                tokio::task::yield_now().await;
                breaker.fire();
                // hyper drops the connection, and this body with it, right away.
                std::future::pending::<()>().await;
            }
        }
        if self.pos >= self.total {
            self.complete();
            return None;
        }
        let data = match &self.units {
            Units::Events(frames) => {
                if let (Some(wait), true) = (self.interval, self.pos > 0) {
                    tokio::time::sleep(wait).await;
                }
                let frame = frames[self.pos as usize].clone();
                self.pos += 1;
                frame
            }
            Units::Bytes(padded) => {
                let limit = if self.pos < self.break_at {
                    self.break_at
                } else {
                    self.total
                };
                let end = limit.min(self.pos + CHUNK);
                let chunk = padded.chunk(self.pos, end);
                self.pos = end;
                chunk
            }
        };
        if self.complete_with_last_byte && self.pos == self.total {
            self.complete();
        }
        Some((Ok(data), self))
    }

    fn complete(&self) {
        self.answer
            .inner
            .record_end(self.answer.index, ResponseEnd::Complete);
    }
}
