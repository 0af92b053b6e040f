//! Server-sent events: one incremental parser for every provider stream.
//!
//! Follows the WHATWG event-stream rules: lines end in `\r\n`, `\n` or `\r` (a `\r\n` split across
//! two reads is still one line end); a line starting with `:` is a comment; a blank line dispatches
//! the event; `data` lines of one event are joined with `\n`; a leading byte-order mark is
//! skipped; an event not closed by a blank line when the stream ends is dropped. Bytes are buffered
//! until a line is complete, so a UTF-8 character split across reads decodes intact.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};

use crate::text::{TextChunk, TextStream};
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

/// An incremental event-stream parser: feed it bytes as they arrive, take events as they complete.
#[derive(Debug, Default)]
pub struct SseDecoder {
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
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the stream.
    pub fn push(&mut self, mut bytes: &[u8]) {
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
            return self.push(&buffered);
        }
        while !bytes.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.line.extend_from_slice(&bytes[..end]);
                    self.after_cr = bytes[end] == b'\r';
                    bytes = &bytes[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    self.on_line(&line);
                }
                None => {
                    self.line.extend_from_slice(bytes);
                    break;
                }
            }
        }
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
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
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

/// Turns a byte stream into a stream of events. Errors of the byte stream pass through.
pub fn sse_events<S, E>(bytes: S) -> impl Stream<Item = Result<SseEvent, E>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: Send,
{
    stream::unfold(
        (bytes, SseDecoder::new(), false),
        |(mut bytes, mut decoder, mut ended)| async move {
            loop {
                if let Some(event) = decoder.next_event() {
                    return Some((Ok(event), (bytes, decoder, ended)));
                }
                if ended {
                    return None;
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => decoder.push(&chunk),
                    Some(Err(e)) => {
                        ended = true;
                        return Some((Err(e), (bytes, decoder, ended)));
                    }
                    None => ended = true,
                }
            }
        },
    )
}

/// What a provider's stream decoder says after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseStep {
    /// Keep reading.
    Continue,
    /// The provider signalled its normal end (e.g. `data: [DONE]`); stop reading.
    Done,
}

/// Maps one provider's events onto [`TextChunk`]s.
pub trait SseTextDecoder: Send + 'static {
    /// Handles one event, appending chunks to `out`.
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<TextChunk>) -> Result<SseStep>;

    /// The byte stream ended without [`SseStep::Done`]. Appends any last chunks, or fails with
    /// [`ErrorKind::StreamInterrupted`] if the provider's stream was not complete.
    fn on_eof(&mut self, out: &mut Vec<TextChunk>) -> Result<()>;
}

/// Builds a [`TextStream`] from a provider's byte stream and its event decoder.
///
/// The first error ends the stream; a stream that ends early yields the decoder's error.
pub fn text_stream<S, D>(bytes: S, decoder: D) -> TextStream
where
    S: Stream<Item = Result<Bytes>> + Send + Unpin + 'static,
    D: SseTextDecoder,
{
    struct State<E, D> {
        events: E,
        decoder: D,
        pending: VecDeque<Result<TextChunk>>,
        finished: bool,
    }
    let state = State {
        events: Box::pin(sse_events(bytes)),
        decoder,
        pending: VecDeque::new(),
        finished: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.pending.pop_front() {
                return Some((item, st));
            }
            if st.finished {
                return None;
            }
            let mut out = Vec::new();
            let result = match st.events.next().await {
                Some(Ok(event)) => match st.decoder.on_event(event, &mut out) {
                    Ok(SseStep::Continue) => Ok(()),
                    Ok(SseStep::Done) => {
                        st.finished = true;
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                Some(Err(e)) => Err(e),
                None => {
                    st.finished = true;
                    st.decoder.on_eof(&mut out)
                }
            };
            st.pending.extend(out.into_iter().map(Ok));
            if let Err(e) = result {
                st.finished = true;
                st.pending.push_back(Err(e));
            }
        }
    })
    .boxed()
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
    use super::*;
    use proptest::prelude::*;

    fn parse_in_pieces(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            let cut = cut.clamp(start, input.len());
            decoder.push(&input[start..cut]);
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
        let parts: Vec<Result<Bytes, &str>> = vec![
            Ok(Bytes::from_static(b"data: a\n")),
            Ok(Bytes::from_static(b"\ndata: b")),
            Err("reset"),
        ];
        let events: Vec<_> = sse_events(stream::iter(parts)).collect().await;
        assert_eq!(events, vec![Ok(data("a")), Err("reset")]);
    }
}
