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

/// One dispatched event, borrowed from the decoder: what [`SseDecode::on_event`] reads. An
/// event whose one `data` line came whole in one read is lent where it lies, without a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SseEventRef<'a> {
    /// The `event` field, if the event had one.
    pub event: Option<&'a str>,
    /// The `data` lines joined with `\n`.
    pub data: &'a str,
    /// The `id` field, if the event had one.
    pub id: Option<&'a str>,
}

impl SseEvent {
    /// The event, borrowed.
    pub fn as_event_ref(&self) -> SseEventRef<'_> {
        SseEventRef {
            event: self.event.as_deref(),
            data: &self.data,
            id: self.id.as_deref(),
        }
    }
}

impl SseEventRef<'_> {
    /// The event, owned.
    pub fn to_event(&self) -> SseEvent {
        SseEvent {
            event: self.event.map(str::to_owned),
            data: self.data.to_owned(),
            id: self.id.map(str::to_owned),
        }
    }
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

/// The largest event buffer [`SseDecoder`] keeps from one event to the next.
const KEPT_EVENT_BUFFER: usize = 64 * 1024;

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
        let mut ready = std::mem::take(&mut self.ready);
        let pushed = self.push_with(bytes, &mut |event| {
            ready.push_back(event.to_event());
            true
        });
        if pushed.is_ok() {
            self.ready = ready;
        }
        pushed
    }

    /// Feeds the next bytes of the stream, handing each event completed to `on_event` as it
    /// completes, borrowed (see [`SseEventRef`]); `on_event` returns `false` to stop: the rest
    /// of `bytes` is then not read. Fails as [`SseDecoder::push`] does.
    pub fn push_with(
        &mut self,
        bytes: &[u8],
        on_event: &mut dyn FnMut(SseEventRef<'_>) -> bool,
    ) -> Result<(), SseOverflow> {
        if let Some(overflow) = self.overflow {
            return Err(overflow);
        }
        self.feed(bytes, on_event);
        match self.overflow {
            Some(overflow) => Err(overflow),
            None => Ok(()),
        }
    }

    fn feed(&mut self, mut bytes: &[u8], on_event: &mut dyn FnMut(SseEventRef<'_>) -> bool) {
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
            return self.feed(&buffered, on_event);
        }
        // The data of the event being read while it is one line of `bytes`, not copied yet.
        let mut lent: Option<&str> = None;
        let mut go_on = true;
        while go_on && !bytes.is_empty() && self.overflow.is_none() {
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
                        go_on = self.on_line(&bytes[..end], Some(&mut lent), on_event);
                    } else {
                        self.keep(&mut lent);
                        self.line.extend_from_slice(&bytes[..end]);
                        let mut line = std::mem::take(&mut self.line);
                        go_on = self.on_line(&line, None, on_event);
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
        // The event goes on in the next read: what was lent from this one is copied (unless a
        // limit was passed: nothing more is read then, and its buffers were given back).
        if self.overflow.is_none() {
            self.keep(&mut lent);
        }
        self.check_line();
    }

    /// Copies the data lent from the current read, if any, into the event's buffer.
    fn keep(&mut self, lent: &mut Option<&str>) {
        if let Some(data) = lent.take() {
            self.data.push_str(data);
        }
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

    /// Reads one line. `lent` holds the event's data while it lies in the read that `line` is
    /// part of; it is `None` for a line put together from several reads, which is never lent
    /// (what was lent before it was copied). `false` when `on_event` asked to stop.
    fn on_line<'b>(
        &mut self,
        line: &'b [u8],
        lent: Option<&mut Option<&'b str>>,
        on_event: &mut dyn FnMut(SseEventRef<'_>) -> bool,
    ) -> bool {
        if line.is_empty() {
            let data = lent.and_then(Option::take);
            return self.dispatch(data, on_event);
        }
        if line[0] == b':' {
            return true;
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
                let held = match lent.as_deref() {
                    Some(Some(data)) => data.len(),
                    _ => self.data.len(),
                };
                let joined = usize::from(self.has_data);
                if held + joined + value.len() > self.limits.max_event {
                    self.fail("event", self.limits.max_event);
                    return true;
                }
                match (value, lent) {
                    // The event's first line, valid text, whole in this read: lent for now.
                    (std::borrow::Cow::Borrowed(value), Some(lent)) if !self.has_data => {
                        *lent = Some(value);
                    }
                    (value, lent) => {
                        if let Some(lent) = lent {
                            self.keep(lent);
                        }
                        if self.has_data {
                            self.data.push('\n');
                        }
                        self.data.push_str(&value);
                    }
                }
                self.has_data = true;
            }
            b"event" => self.event = Some(text(value).into_owned()),
            b"id" if !value.contains(&0) => self.id = Some(text(value).into_owned()),
            _ => {} // `retry` and unknown fields: nothing a client of ours acts on.
        }
        true
    }

    /// Hands the event read to `on_event`, its data `lent` or copied; `false` when `on_event`
    /// asked to stop.
    fn dispatch(
        &mut self,
        lent: Option<&str>,
        on_event: &mut dyn FnMut(SseEventRef<'_>) -> bool,
    ) -> bool {
        let go_on = if std::mem::take(&mut self.has_data) {
            on_event(SseEventRef {
                event: self.event.as_deref(),
                data: lent.unwrap_or(&self.data),
                id: self.id.as_deref(),
            })
        } else {
            true
        };
        // Kept for the next event that needs copying (one split across reads, several lines),
        // unless an event as large as an inline image left it large: given back then, so that a
        // stream does not hold its largest event's size to its end.
        if self.data.capacity() > KEPT_EVENT_BUFFER {
            self.data = String::new();
        } else {
            self.data.clear();
        }
        self.event = None;
        self.id = None;
        go_on
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
    fn on_event(&mut self, event: SseEventRef<'_>, out: &mut Vec<Self::Item>) -> Result<SseStep>;

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
        bytes,
        sse: SseDecoder::new(),
        decoder,
        out: Vec::new(),
        pending: VecDeque::new(),
        finished: false,
    }
    .boxed()
}

/// [`decode_stream`]'s stream: polled by hand rather than built from `unfold`, which moves its
/// whole state into a new future for every item (about twenty per answer). Each read's events
/// go to the provider's decoder as the parser completes them, borrowed where they lie in the
/// read ([`SseDecoder::push_with`]).
struct Decoded<S, D: SseDecode> {
    bytes: S,
    sse: SseDecoder,
    decoder: D,
    /// The decoder's items for one read, moved to `pending` (kept for its buffer).
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
    /// Queues the items of one read, then its error, which ends the stream.
    fn queue(&mut self, step: Result<()>) {
        self.pending.extend(self.out.drain(..).map(Ok));
        if let Err(e) = step {
            self.finished = true;
            self.pending.push_back(Err(e));
        }
    }

    /// Hands the events of `bytes` to the decoder, until it says it is done or fails.
    fn read(&mut self, bytes: &[u8]) -> Result<()> {
        let (decoder, out) = (&mut self.decoder, &mut self.out);
        let mut step = Ok(());
        let mut done = false;
        let pushed = self.sse.push_with(bytes, &mut |event| {
            match decoder.on_event(event, out) {
                Ok(SseStep::Continue) => return true,
                Ok(SseStep::Done) => done = true,
                Err(e) => step = Err(e),
            }
            false
        });
        if done {
            self.finished = true;
        }
        step?;
        pushed.map_err(Error::from)
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
            let step = match std::task::ready!(this.bytes.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => this.read(&chunk),
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
    fn events_are_lent_as_they_complete_and_reading_stops_when_asked() {
        let mut decoder = SseDecoder::new();
        let mut seen = Vec::new();
        // `a` lies whole in the read, `b` has two lines, `c` is cut across the two reads.
        let reads: [&[u8]; 2] = [
            b"data: a\n\nevent: e\ndata: b1\ndata: b2\nid: 9\n\ndata: c",
            b"1\n\ndata: d\n\ndata: never\n\n",
        ];
        for read in reads {
            decoder
                .push_with(read, &mut |event| {
                    seen.push(event.to_event());
                    event.data != "d"
                })
                .unwrap();
        }
        let b = SseEvent {
            event: Some("e".into()),
            data: "b1\nb2".into(),
            id: Some("9".into()),
        };
        assert_eq!(seen, [data("a"), b, data("c1"), data("d")]);
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

    #[test]
    fn an_event_lent_then_too_long_keeps_nothing() {
        let limits = SseLimits {
            max_line: 64,
            max_event: 10,
        };
        let mut decoder = SseDecoder::with_limits(limits);
        // The first line is lent from the read; the second takes the event past its limit.
        let err = decoder.push(b"data: 01234\ndata: 56789012\n").unwrap_err();
        assert_eq!(err.what, "event");
        assert_eq!(
            decoder.data.capacity(),
            0,
            "the event's buffer is given back"
        );
    }

    #[test]
    fn a_large_event_cut_across_reads_leaves_no_large_buffer_behind() {
        let mut decoder = SseDecoder::new();
        let big = "x".repeat(2 * KEPT_EVENT_BUFFER);
        let mut seen = 0;
        // Cut across two reads, so that it is copied rather than lent.
        let (first, rest) = big.split_at(KEPT_EVENT_BUFFER);
        for read in [format!("data: {first}"), format!("{rest}\n\n")] {
            decoder
                .push_with(read.as_bytes(), &mut |event| {
                    seen += event.data.len();
                    true
                })
                .unwrap();
        }
        assert_eq!(seen, big.len());
        assert!(decoder.data.capacity() <= KEPT_EVENT_BUFFER);
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
