//! The router's answers and stream chunks read by hand, for the plain ones.
//!
//! serde_json reads a stream chunk of a chat answer (about 190 bytes) in some 4,400
//! instructions, most of them in the derived visitors of fields the gateway drops; [`Scan`]
//! reads it in a fraction of that, and a chunk that repeats the last one's [`TextShape`] in
//! less again. What is read here is what serde_json reads (the tests hold it to that); whatever
//! is not one of the plain shapes (tool calls, log probabilities, `x_groq`, an error, a field
//! given twice, anything [`Scan`] gives up on) gives `None`, and the caller reads the text with
//! serde_json, which decides.

use std::borrow::Cow;
use std::ops::Range;

use gateway_core::json::{Scan, Seen};

use super::{
    ChatCompletion, ChatCompletionChunk, Choice, ChunkChoice, CompletionTokensDetails, Delta,
    FinishReason, PromptTokensDetails, ResponseMessage, Usage,
};

impl ChatCompletion {
    /// A blocking answer read by hand when its messages are text, or `None` (see the module).
    pub(crate) fn scan(text: &str) -> Option<Self> {
        let mut scan = Scan::new(text);
        let mut object = scan.object()?;
        let mut answer = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "id" => {
                    seen.first(0)?;
                    answer.id = scan.or_null(Scan::string)?;
                }
                "model" => {
                    seen.first(1)?;
                    answer.model = scan.or_null(Scan::string)?;
                }
                "choices" => {
                    seen.first(2)?;
                    answer.choices = scan.list(Choice::scan)?;
                }
                "usage" => {
                    seen.first(3)?;
                    answer.usage = scan.or_null(Usage::scan)?;
                }
                _ => scan.skip()?,
            }
        }
        scan.end()?;
        Some(answer)
    }
}

impl Choice {
    fn scan(scan: &mut Scan<'_>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut choice = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "index" => {
                    seen.first(0)?;
                    choice.index = scan.or_null(Scan::u32)?;
                }
                "message" => {
                    seen.first(1)?;
                    choice.message = scan.or_null(ResponseMessage::scan)?;
                }
                "finish_reason" => {
                    seen.first(2)?;
                    choice.finish_reason = scan.or_null(Scan::named::<FinishReason>)?;
                }
                "logprobs" => {
                    seen.first(3)?;
                    scan.null().then_some(())?;
                }
                _ => scan.skip()?,
            }
        }
        Some(choice)
    }
}

impl ResponseMessage {
    fn scan(scan: &mut Scan<'_>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut message = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "content" => {
                    seen.first(0)?;
                    message.content = scan.or_null(Scan::string)?;
                }
                "tool_calls" => {
                    seen.first(1)?;
                    scan.null().then_some(())?;
                }
                _ => scan.skip()?,
            }
        }
        Some(message)
    }
}

impl Usage {
    fn scan(scan: &mut Scan<'_>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut usage = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "prompt_tokens" => {
                    seen.first(0)?;
                    usage.prompt_tokens = scan.or_null(Scan::u64)?;
                }
                "completion_tokens" => {
                    seen.first(1)?;
                    usage.completion_tokens = scan.or_null(Scan::u64)?;
                }
                "prompt_tokens_details" => {
                    seen.first(2)?;
                    usage.prompt_tokens_details = scan.or_null(|s| {
                        let cached_tokens = one_count(s, "cached_tokens")?;
                        Some(PromptTokensDetails { cached_tokens })
                    })?;
                }
                "completion_tokens_details" => {
                    seen.first(3)?;
                    usage.completion_tokens_details = scan.or_null(|s| {
                        let reasoning_tokens = one_count(s, "reasoning_tokens")?;
                        Some(CompletionTokensDetails { reasoning_tokens })
                    })?;
                }
                _ => scan.skip()?,
            }
        }
        Some(usage)
    }
}

impl ChatCompletionChunk {
    /// The chunk read by hand when it is one of the plain shapes a stream is made of (text
    /// deltas, the role, the finish, the usage), or `None` (see the module). With the chunk
    /// comes its [`TextShape`] when it is a plain text chunk.
    pub(crate) fn scan(data: &str) -> Option<(Self, Option<TextShape>)> {
        let mut scan = Scan::new(data);
        let mut object = scan.object()?;
        let mut chunk = Self::default();
        let mut seen = Seen::default();
        let mut text_at = None;
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "choices" => {
                    seen.first(0)?;
                    chunk.choices = scan.list(|s| ChunkChoice::scan(s, &mut text_at))?;
                }
                "usage" => {
                    seen.first(1)?;
                    chunk.usage = scan.or_null(Usage::scan)?;
                }
                "x_groq" | "error" => {
                    seen.first(if key == "x_groq" { 2 } else { 3 })?;
                    scan.null().then_some(())?;
                }
                _ => scan.skip()?,
            }
        }
        scan.end()?;
        let shape = match (&chunk.choices[..], text_at) {
            ([only], Some(at)) if only.finish_reason.is_none() && chunk.usage.is_none() => {
                Some(TextShape {
                    head: data[..at.start].into(),
                    tail: data[at.end..].into(),
                    index: only.index,
                })
            }
            _ => None,
        };
        Some((chunk, shape))
    }
}

/// A plain text chunk (one choice, a text delta, nothing else) with its text cut out: the bytes
/// before the text's JSON string and after it. A stream repeats one such chunk with only the
/// text changing (the id, model and timestamps stay), so the next chunk is most often the same
/// bytes around another string: that chunk is the shape's chunk with that text, read by
/// comparing bytes. A chunk that does not fit is read in full (and gives the next shape).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TextShape {
    head: Box<str>,
    tail: Box<str>,
    index: Option<u32>,
}

impl TextShape {
    /// The text of `data` when it is this shape's chunk with another text: what
    /// [`TextShape::chunk`] reads, without the chunk built around it.
    pub(crate) fn text<'d>(&self, data: &'d str) -> Option<Cow<'d, str>> {
        let rest = data.strip_prefix(&*self.head)?;
        let mut scan = Scan::new(rest);
        let text = scan.str()?;
        (scan.rest() == &*self.tail).then_some(text)
    }

    /// Whether the shape's chunk is of the first answer (`index` 0, or none).
    pub(crate) fn is_first_answer(&self) -> bool {
        self.index.unwrap_or(0) == 0
    }

    /// `data` as a chunk, when it is this shape's chunk with another text. Every byte but the
    /// string's is the same as in the chunk the shape was read from, and the string is read as
    /// [`Scan`] reads it, so the chunk is the one a full read gives.
    pub(crate) fn chunk(&self, data: &str) -> Option<ChatCompletionChunk> {
        let text = self.text(data)?;
        Some(ChatCompletionChunk {
            choices: vec![ChunkChoice {
                index: self.index,
                delta: Some(Delta {
                    content: Some(text.into_owned()),
                    tool_calls: None,
                }),
                finish_reason: None,
            }],
            ..ChatCompletionChunk::default()
        })
    }
}

impl ChunkChoice {
    /// A choice read by hand ([`ChatCompletionChunk::scan`]); `text_at` is where its text's
    /// string is, if it has one.
    fn scan(scan: &mut Scan<'_>, text_at: &mut Option<Range<usize>>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut choice = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "index" => {
                    seen.first(0)?;
                    choice.index = scan.or_null(Scan::u32)?;
                }
                "delta" => {
                    seen.first(1)?;
                    choice.delta = scan.or_null(|s| Delta::scan(s, text_at))?;
                }
                "finish_reason" => {
                    seen.first(2)?;
                    choice.finish_reason = scan.or_null(Scan::named::<FinishReason>)?;
                }
                _ => scan.skip()?,
            }
        }
        Some(choice)
    }
}

impl Delta {
    /// A delta read by hand ([`ChatCompletionChunk::scan`]); tool calls are left to serde.
    fn scan(scan: &mut Scan<'_>, text_at: &mut Option<Range<usize>>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut delta = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "content" => {
                    seen.first(0)?;
                    delta.content = scan.or_null(|s| {
                        let (text, at) = s.str_at()?;
                        *text_at = Some(at);
                        Some(text.into_owned())
                    })?;
                }
                "tool_calls" => {
                    seen.first(1)?;
                    scan.null().then_some(())?;
                }
                _ => scan.skip()?,
            }
        }
        Some(delta)
    }
}

/// An object of which only the count `name` is read (a usage's details).
fn one_count(scan: &mut Scan<'_>, name: &str) -> Option<Option<u64>> {
    let mut object = scan.object()?;
    let mut count = None;
    let mut seen = Seen::default();
    while let Some(key) = scan.key(&mut object)? {
        if key == name {
            seen.first(0)?;
            count = scan.or_null(Scan::u64)?;
        } else {
            scan.skip()?;
        }
    }
    Some(count)
}
