//! Server-sent events: one incremental parser for every provider stream.
//!
//! Follows the WHATWG event-stream rules: lines end in `\r\n`, `\n` or `\r` (a `\r\n` split across
//! two reads is still one line end); a line starting with `:` is a comment; a blank line dispatches
//! the event; `data` lines of one event are joined with `\n`; a leading byte-order mark is
//! skipped; an event not closed by a blank line when the stream ends is dropped. Bytes are buffered
//! until a line is complete, so a UTF-8 character split across reads decodes intact.
//!
//! Both buffers are bounded ([`SseLimits`]): a provider that sends an endless line or event gets
//! an error, not unbounded memory.
//!
//! [`decode_stream`] turns a provider's byte stream into a stream of any item type through the
//! provider's [`SseDecode`]: text chunks for chat, audio chunks for streamed speech, and so on.

use std::collections::VecDeque;
use std::fmt;

use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};

use crate::{Error, ErrorKind, Result};

/// One dispatched server-sent event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event` field, if the event had one.
    pub event: Option<String>,
    /// The `data` lines joined with `\n`.
    pub data: String,
    /// The `id` field, if the event had one.
    pub id: Option<String>,
}

/// The most an [`SseDecoder`] buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseLimits {
    /// The longest line, in bytes.
    pub max_line: usize,
    /// The most `data` one event may carry, in bytes.
    pub max_event: usize,
}

impl Default for SseLimits {
    /// 16 MiB per line and 32 MiB per event: room for an inline image or audio clip in one
    /// event (Gemini streams those base64-encoded), a bound on what one stream can allocate.
    fn default() -> Self {
        Self {
            max_line: 16 * 1024 * 1024,
            max_event: 32 * 1024 * 1024,
        }
    }
}

/// A stream passed one of its [`SseLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseOverflow {
    /// `line` or `event`.
    pub what: &'static str,
    /// The limit, in bytes.
    pub limit: usize,
}

impl fmt::Display for SseOverflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the event stream sent an {} longer than {} bytes",
            self.what, self.limit
        )
    }
}

impl std::error::Error for SseOverflow {}

impl From<SseOverflow> for Error {
    fn from(e: SseOverflow) -> Self {
        Error::decode(e.to_string())
    }
}

/// An incremental event-stream parser: feed it bytes as they arrive, take events as they complete.
#[derive(Debug, Default)]
pub struct SseDecoder {
    limits: SseLimits,
    overflow: Option<SseOverflow>,
    line: Vec<u8>,
    after_cr: bool,
    started: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    ready: VecDeque<SseEvent>,
}

impl SseDecoder {
    /// A parser at the start of a stream, with the default [`SseLimits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser with `limits`.
    pub fn with_limits(limits: SseLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Feeds the next bytes of the stream. Fails once a line or an event passes its limit; the
    /// parser then refuses everything after (the stream cannot be resynchronised).
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), SseOverflow> {
        if let Some(overflow) = self.overflow {
            return Err(overflow);
        }
        self.feed(bytes);
        match self.overflow {
            Some(overflow) => Err(overflow),
            None => Ok(()),
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        if !self.started {
            // The BOM may itself arrive split; wait until three bytes (or a line end) are there.
            self.line.extend_from_slice(bytes);
            if self.line.len() < 3 && !self.line.iter().any(|&b| b == b'\n' || b == b'\r') {
                return;
            }
            self.started = true;
            let mut buffered = std::mem::take(&mut self.line);
            if buffered.starts_with(b"\xEF\xBB\xBF") {
                buffered.drain(..3);
            }
            return self.feed(&buffered);
        }
        while !bytes.is_empty() && self.overflow.is_none() {
            if self.after_cr {
                self.after_cr = false;
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            match memchr::memchr2(b'\n', b'\r', bytes) {
                Some(end) => {
                    self.after_cr = bytes[end] == b'\r';
                    if self.line.is_empty() {
                        // The whole line is in this read (the usual case): read where it lies.
                        self.on_line(&bytes[..end]);
                    } else {
                        self.line.extend_from_slice(&bytes[..end]);
                        let mut line = std::mem::take(&mut self.line);
                        self.on_line(&line);
                        if self.overflow.is_none() {
                            // Its buffer serves the next split line.
                            line.clear();
                            self.line = line;
                        }
                    }
                    bytes = &bytes[end + 1..];
                }
                None => {
                    self.line.extend_from_slice(bytes);
                    break;
                }
            }
            self.check_line();
        }
        self.check_line();
    }

    fn check_line(&mut self) {
        if self.line.len() > self.limits.max_line {
            self.fail("line", self.limits.max_line);
        }
    }

    fn fail(&mut self, what: &'static str, limit: usize) {
        self.overflow.get_or_insert(SseOverflow { what, limit });
        // What was buffered will never be used: give the memory back now.
        self.line = Vec::new();
        self.data = String::new();
        self.ready.clear();
    }

    /// The next complete event, if one is ready.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.ready.pop_front()
    }

    fn on_line(&mut self, line: &[u8]) {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        // A field name that is not UTF-8 matches none of these, as the standard's decoding
        // (invalid bytes replaced) would not either.
        match field {
            b"data" => {
                let value = text(value);
                if self.has_data {
                    self.data.push('\n');
                }
                if self.data.len() + value.len() > self.limits.max_event {
                    return self.fail("event", self.limits.max_event);
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event = Some(text(value).into_owned()),
            b"id" if !value.contains(&0) => self.id = Some(text(value).into_owned()),
            _ => {} // `retry` and unknown fields: nothing a client of ours acts on.
        }
    }

    fn dispatch(&mut self) {
        let event = self.event.take();
        let id = self.id.take();
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        self.ready.push_back(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            id,
        });
    }
}

/// `bytes` as text, invalid UTF-8 replaced as the standard decodes a stream; valid text (all a
/// provider sends) is only checked, by the standard library's faster validator.
fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Turns a byte stream into a stream of events. Errors of the byte stream pass through; a
/// stream that passes the default [`SseLimits`] ends with that error.
pub fn sse_events<S, E>(bytes: S) -> impl Stream<Item = Result<SseEvent, E>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: From<SseOverflow> + Send,
{
    Events::new(bytes)
}

/// [`sse_events`]'s stream: polled by hand rather than built from `unfold`, which moves its
/// whole state into a new future for every event (about twenty per answer).
struct Events<S> {
    bytes: S,
    decoder: SseDecoder,
    /// `bytes` ended, or failed.
    ended: bool,
}

impl<S> Events<S> {
    fn new(bytes: S) -> Self {
        Events {
            bytes,
            decoder: SseDecoder::new(),
            ended: false,
        }
    }
}

impl<S, E> Stream for Events<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: From<SseOverflow>,
{
    type Item = Result<SseEvent, E>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            // Every event of what was read before reading more.
            if let Some(event) = this.decoder.next_event() {
                return Poll::Ready(Some(Ok(event)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match std::task::ready!(this.bytes.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => {
                    if let Err(overflow) = this.decoder.push(&chunk) {
                        this.ended = true;
                        return Poll::Ready(Some(Err(overflow.into())));
                    }
                }
                Some(Err(e)) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => this.ended = true,
            }
        }
    }
}

/// What a provider's stream decoder says after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseStep {
    /// Keep reading.
    Continue,
    /// The provider signalled its normal end (e.g. `data: [DONE]`); stop reading.
    Done,
}

/// Maps one provider's events onto items of the stream it serves ([`TextChunk`](crate::TextChunk)s
/// for chat).
pub trait SseDecode: Send + 'static {
    /// What the stream yields.
    type Item: Send + 'static;

    /// Handles one event, appending items to `out`.
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<Self::Item>) -> Result<SseStep>;

    /// The byte stream ended without [`SseStep::Done`]. Appends any last items, or fails with
    /// [`ErrorKind::StreamInterrupted`] if the provider's stream was not complete.
    fn on_eof(&mut self, out: &mut Vec<Self::Item>) -> Result<()>;
}

/// Builds a stream of `D::Item`s from a provider's byte stream and its event decoder.
///
/// The first error ends the stream; a stream that ends early yields the decoder's error.
pub fn decode_stream<S, D>(bytes: S, decoder: D) -> BoxStream<'static, Result<D::Item>>
where
    S: Stream<Item = Result<Bytes>> + Send + Unpin + 'static,
    D: SseDecode,
{
    Decoded {
        events: Events::new(bytes),
        decoder,
        out: Vec::new(),
        pending: VecDeque::new(),
        finished: false,
    }
    .boxed()
}

/// [`decode_stream`]'s stream: polled by hand rather than built from `unfold`, which moves its
/// whole state into a new future for every item (about twenty per answer).
struct Decoded<S, D: SseDecode> {
    events: Events<S>,
    decoder: D,
    /// The decoder's items for one event, moved to `pending` (kept for its buffer).
    out: Vec<D::Item>,
    pending: VecDeque<Result<D::Item>>,
    /// Nothing more is read: the provider said it was done, or something failed.
    finished: bool,
}

// Nothing in it is ever pinned (the byte stream is `Unpin`; items are moved, never polled), so
// it can be moved whatever its items are.
impl<S: Unpin, D: SseDecode> Unpin for Decoded<S, D> {}

impl<S, D> Decoded<S, D>
where
    D: SseDecode,
{
    /// Queues the items of one step of the decoder, then its error, which ends the stream.
    fn queue(&mut self, step: Result<()>) {
        self.pending.extend(self.out.drain(..).map(Ok));
        if let Err(e) = step {
            self.finished = true;
            self.pending.push_back(Err(e));
        }
    }
}

impl<S, D> Stream for Decoded<S, D>
where
    S: Stream<Item = Result<Bytes>> + Unpin,
    D: SseDecode,
{
    type Item = Result<D::Item>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            if let Some(item) = this.pending.pop_front() {
                return Poll::Ready(Some(item));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            let step = match std::task::ready!(this.events.poll_next_unpin(cx)) {
                Some(Ok(event)) => match this.decoder.on_event(event, &mut this.out) {
                    Ok(SseStep::Continue) => Ok(()),
                    Ok(SseStep::Done) => {
                        this.finished = true;
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                Some(Err(e)) => Err(e),
                None => {
                    this.finished = true;
                    this.decoder.on_eof(&mut this.out)
                }
            };
            this.queue(step);
        }
    }
}

/// The error for a provider stream that ended before its normal end.
pub fn interrupted(provider: &'static str, what: &str) -> Error {
    Error::new(
        ErrorKind::StreamInterrupted,
        format!("the stream ended before {what}"),
    )
    .with_provider(provider)
}

#[cfg(test)]
mod tests {
    use futures_util::stream;

    use super::*;
    use proptest::prelude::*;

    fn parse_in_pieces(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            let cut = cut.clamp(start, input.len());
            decoder.push(&input[start..cut]).unwrap();
            start = cut;
            while let Some(e) = decoder.next_event() {
                events.push(e);
            }
        }
        events
    }

    fn data(d: &str) -> SseEvent {
        SseEvent {
            data: d.to_owned(),
            ..SseEvent::default()
        }
    }

    const SAMPLE: &str = "\u{feff}: keep-alive\r\n\
        data: {\"text\":\"héllo 👋\"}\r\n\r\n\
        event: update\nid: 7\ndata: line one\ndata:line two\n\n\
        retry: 100\rdata: cr only\r\r\
        data\n\n\
        : trailing comment\n\
        data: [DONE]\n\n\
        data: never closed";

    fn sample_events() -> Vec<SseEvent> {
        vec![
            data("{\"text\":\"héllo 👋\"}"),
            SseEvent {
                event: Some("update".into()),
                data: "line one\nline two".into(),
                id: Some("7".into()),
            },
            data("cr only"),
            data(""),
            data("[DONE]"),
        ]
    }

    #[test]
    fn parses_every_line_ending_comment_and_field() {
        assert_eq!(parse_in_pieces(SAMPLE.as_bytes(), &[]), sample_events());
    }

    #[test]
    fn same_events_whatever_the_single_split() {
        let input = SAMPLE.as_bytes();
        for cut in 0..=input.len() {
            assert_eq!(
                parse_in_pieces(input, &[cut]),
                sample_events(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn byte_by_byte() {
        let input = SAMPLE.as_bytes();
        let cuts: Vec<usize> = (0..input.len()).collect();
        assert_eq!(parse_in_pieces(input, &cuts), sample_events());
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        assert_eq!(parse_in_pieces(b"event: ping\n\n: x\n\n", &[]), vec![]);
    }

    proptest! {
        #[test]
        fn any_splits_give_the_same_events(mut cuts in proptest::collection::vec(0usize..SAMPLE.len(), 0..12)) {
            cuts.sort_unstable();
            prop_assert_eq!(parse_in_pieces(SAMPLE.as_bytes(), &cuts), sample_events());
        }

        #[test]
        fn arbitrary_payloads_survive_any_split(
            payloads in proptest::collection::vec("[^\r\n]{0,40}", 1..6),
            crlf in any::<bool>(),
            cut in 0usize..400,
        ) {
            let nl = if crlf { "\r\n" } else { "\n" };
            let input: String = payloads.iter().map(|p| format!("data: {p}{nl}{nl}")).collect();
            let expected: Vec<SseEvent> = payloads.iter().map(|p| data(p)).collect();
            prop_assert_eq!(parse_in_pieces(input.as_bytes(), &[cut]), expected);
        }
    }

    #[tokio::test]
    async fn the_stream_adapter_yields_events_and_errors() {
        let parts: Vec<Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"data: a\n")),
            Ok(Bytes::from_static(b"\ndata: b")),
            Err(Error::new(ErrorKind::StreamInterrupted, "reset")),
        ];
        let events: Vec<_> = sse_events(stream::iter(parts)).collect().await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].as_ref().unwrap(), &data("a"));
        assert_eq!(
            events[1].as_ref().unwrap_err().kind(),
            &ErrorKind::StreamInterrupted
        );
    }

    #[test]
    fn an_endless_line_is_refused_not_buffered() {
        let limits = SseLimits {
            max_line: 64,
            max_event: 1024,
        };
        let mut decoder = SseDecoder::with_limits(limits);
        decoder.push(b"data: ok\n\n").unwrap();
        let mut failed = None;
        for _ in 0..100 {
            if let Err(e) = decoder.push(&[b'x'; 10]) {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("the limit was passed");
        assert_eq!(e.what, "line");
        assert!(decoder.line.capacity() <= 64, "the buffer was released");
        // Everything after is refused, and nothing half-parsed comes out.
        assert_eq!(decoder.push(b"\n\ndata: more\n\n").unwrap_err(), e);
        assert_eq!(decoder.next_event(), None);
    }

    #[test]
    fn an_endless_event_is_refused_even_in_short_lines() {
        let limits = SseLimits {
            max_line: 64,
            max_event: 100,
        };
        let mut decoder = SseDecoder::with_limits(limits);
        let mut result = Ok(());
        for _ in 0..20 {
            result = decoder.push(b"data: 0123456789\n");
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result.unwrap_err().what, "event");
    }

    #[tokio::test]
    async fn the_stream_adapter_ends_with_an_overflow_error() {
        let big = Bytes::from(vec![b'x'; SseLimits::default().max_line + 1]);
        let parts: Vec<Result<Bytes>> = vec![Ok(Bytes::from_static(b"data: a\n\n")), Ok(big)];
        let events: Vec<_> = sse_events(stream::iter(parts)).collect().await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].as_ref().unwrap_err().kind(), &ErrorKind::Decode);
    }
}
